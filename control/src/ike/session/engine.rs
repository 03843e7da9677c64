//! The engine: the table of IKE SAs, dispatch of received messages, timers, output queues.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use super::config::ConnConfig;
use super::events::{Datagram, EngineStats, IkeEvent, IkeSaInfo, SessionError, Transmit};

/// Every IKE SA of the gateway; see the [module documentation](super).
pub struct Engine {
    conns: Vec<ConnConfig>,
    rng: Box<dyn ring::rand::SecureRandom + Send>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<IkeEvent>,
    stats: EngineStats,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("conns", &self.conns.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for these connections, drawing SPIs, nonces, keys and jitter from `rng`.
    pub fn new(conns: Vec<ConnConfig>, rng: Box<dyn ring::rand::SecureRandom + Send>) -> Self {
        Self {
            conns,
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EngineStats::default(),
        }
    }

    /// Process one received IKE message.
    pub fn handle(&mut self, _now: Instant, _dgram: Datagram<'_>) {
        self.stats.received += 1;
        self.drop_msg("not_implemented");
    }

    /// Start an IKE SA for the initiator connection `conn`.
    pub fn initiate(&mut self, _now: Instant, conn: &str) -> Result<(), SessionError> {
        let _ = &self.rng;
        Err(SessionError::UnknownConn(conn.to_string()))
    }

    /// Delete the IKE SAs of `conn` (Delete payload, RFC 7296 §1.4.1).
    pub fn terminate(&mut self, _now: Instant, conn: &str) -> Result<(), SessionError> {
        Err(SessionError::NotActive(conn.to_string()))
    }

    /// Run the timers that are due at `now`.
    pub fn handle_timeout(&mut self, _now: Instant) {}

    /// The earliest time [`Engine::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<IkeEvent> {
        self.events.pop_front()
    }

    /// Every IKE SA with its children.
    pub fn list(&self) -> Vec<IkeSaInfo> {
        Vec::new()
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        self.stats.clone()
    }

    fn drop_msg(&mut self, reason: &'static str) {
        *self.stats.drops.entry(reason).or_default() += 1;
        self.events.push_back(IkeEvent::Dropped { reason });
    }
}
