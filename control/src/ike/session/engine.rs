//! The engine: the table of IKE SAs, dispatch of received messages (RFC 7296 §2.1 - §2.2
//! message-ID rules), the request window and retransmission, timers, output queues.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ring::rand::SecureRandom;
use xdpsec_dataplane::sa::PeerId;

use super::config::ConnConfig;
use super::cookie::CookieSecrets;
use super::events::{
    ChildInfo, Datagram, EngineStats, IkeEvent, IkeSaInfo, SessionError, Transmit, TransmitKind,
};
use super::ike_sa::{ChildState, IkeSa, Intent, Outstanding, Phase, Request};
use super::pool::Pool;
use crate::ike::IkeError;
use crate::ike::crypto::RandomSource;
use crate::ike::crypto::sk::Opened;
use crate::ike::header::ExchangeType;
use crate::ike::message::{Message, parse_message};
use crate::ike::payload::{NotifyType, Payload};
use crate::ike::suite_names::{esp_name, ike_name};

/// Half-open responder SAs we keep at most (§2.6: beyond the cookie threshold they cost a
/// round trip; beyond this they are refused).
pub(super) const MAX_HALF_OPEN: usize = 4096;
/// IKE SAs we keep at most.
pub(super) const MAX_IKE_SAS: usize = 65_536;
/// Child SA pairs in use on one IKE SA at most: the first one and additional ones made with
/// CREATE_CHILD_SA (§1.3.1; beyond: NO_ADDITIONAL_SAS).
pub(super) const MAX_CHILD_PAIRS: usize = 4;
/// Child SAs one IKE SA holds at most, counting pairs being replaced by a rekey.
pub(super) const MAX_CHILDREN: usize = 3 * MAX_CHILD_PAIRS;
/// A responder SA waiting this long for IKE_AUTH is forgotten.
pub(super) const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// After TEMPORARY_FAILURE, wait at least this long before retrying (§2.25: "MUST NOT
/// immediately retry").
pub(super) const TEMPORARY_FAILURE_WAIT: Duration = Duration::from_secs(10);

/// `t + d`, saturating at ten years from `t` (timer values come from configuration; an
/// overflowing `Instant` would panic).
pub(super) fn later(t: Instant, d: Duration) -> Instant {
    const CAP: Duration = Duration::from_secs(10 * 365 * 86_400);
    t.checked_add(d.min(CAP)).unwrap_or(t)
}

/// `ring`'s RNG as the codec's [`RandomSource`].
pub(super) struct Rng<'a>(pub &'a dyn SecureRandom);

impl RandomSource for Rng<'_> {
    fn fill(&self, dest: &mut [u8]) -> Result<(), IkeError> {
        self.0.fill(dest).map_err(|_| IkeError::RandomFailed)
    }
}

/// Every IKE SA of the gateway; see the [module documentation](super).
pub struct Engine {
    pub(super) conns: Vec<ConnConfig>,
    pub(super) rng: Box<dyn SecureRandom + Send>,
    /// IKE SAs by our SPI.
    pub(super) sas: HashMap<u64, IkeSa>,
    /// Responder SAs by (SPIi, IKE_SA_INIT source) to recognise retransmitted IKE_SA_INIT.
    pub(super) init_index: HashMap<([u8; 8], SocketAddr), u64>,
    pub(super) half_open: usize,
    /// Our inbound ESP SPIs in use.
    pub(super) inbound_spis: HashSet<u32>,
    /// Virtual IP pools by connection index.
    pub(super) pools: HashMap<usize, Pool>,
    /// Stateless cookie secrets (§2.6).
    pub(super) cookies: CookieSecrets,
    pub(super) next_peer: u32,
    /// The latest instant passed in (ages in listings are relative to it).
    pub(super) last_now: Option<Instant>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<IkeEvent>,
    pub(super) stats: EngineStats,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("conns", &self.conns.len())
            .field("ike_sas", &self.sas.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for these connections, drawing SPIs, nonces, keys and jitter from `rng`.
    pub fn new(conns: Vec<ConnConfig>, rng: Box<dyn SecureRandom + Send>) -> Self {
        Self {
            conns,
            rng,
            sas: HashMap::new(),
            init_index: HashMap::new(),
            half_open: 0,
            inbound_spis: HashSet::new(),
            pools: HashMap::new(),
            cookies: CookieSecrets::default(),
            next_peer: 1,
            last_now: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EngineStats::default(),
        }
    }

    /// Process one received IKE message (without the non-ESP marker).
    pub fn handle(&mut self, now: Instant, dgram: Datagram<'_>) {
        self.stats.received += 1;
        self.tick(now);
        if let Err(reason) = self.dispatch(now, dgram) {
            self.drop_msg(reason);
        }
    }

    /// Start an IKE SA for connection `conn` (IKE_SA_INIT to its `remote`).
    pub fn initiate(&mut self, now: Instant, conn: &str) -> Result<(), SessionError> {
        self.tick(now);
        self.start_initiator(now, conn)
    }

    /// Delete the IKE SAs of `conn` (Delete payload, RFC 7296 §1.4.1); connection attempts
    /// in progress are abandoned.
    pub fn terminate(&mut self, now: Instant, conn: &str) -> Result<(), SessionError> {
        self.tick(now);
        let idx = self.conn_index(conn)?;
        let spis: Vec<u64> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == idx)
            .map(|(spi, _)| *spi)
            .collect();
        let mut any = false;
        for spi in spis {
            let Some(mut sa) = self.take(spi) else {
                continue;
            };
            match sa.phase {
                Phase::Established => {
                    any = true;
                    sa.queue.clear();
                    sa.queue.push_back(Intent::DeleteIke);
                    self.pump(now, &mut sa);
                }
                Phase::InitSent | Phase::AuthSent | Phase::HalfOpen { .. } => {
                    any = true;
                    self.close(&mut sa, "terminated");
                }
                Phase::Deleting | Phase::Superseded { .. } | Phase::Gone => {}
            }
            self.put_back(sa);
        }
        if any {
            Ok(())
        } else {
            Err(SessionError::NotActive(conn.to_string()))
        }
    }

    /// Ask for one more child SA pair (CREATE_CHILD_SA, RFC 7296 §1.3.1) on each established
    /// IKE SA of `conn`, with the connection's traffic selectors — e.g. a pair per worker,
    /// whose inbound SPIs spread over the SPI owners. The pair is announced with `ChildUp`;
    /// a refusal by the peer comes as `Dropped` with its reason (`no_additional_sas`, ...).
    /// At most four pairs per IKE SA.
    pub fn create_child(&mut self, now: Instant, conn: &str) -> Result<(), SessionError> {
        self.tick(now);
        let idx = self.conn_index(conn)?;
        let spis: Vec<u64> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.conn == idx && sa.phase == Phase::Established)
            .map(|(spi, _)| *spi)
            .collect();
        if spis.is_empty() {
            return Err(SessionError::NotActive(conn.to_string()));
        }
        let mut any = false;
        for spi in spis {
            let Some(mut sa) = self.take(spi) else {
                continue;
            };
            if sa.live_children() < MAX_CHILD_PAIRS {
                any = true;
                sa.queue.push_back(Intent::NewChild);
                self.pump(now, &mut sa);
            }
            self.put_back(sa);
        }
        if any {
            Ok(())
        } else {
            Err(SessionError::TooManyChildren(conn.to_string()))
        }
    }

    /// Run the timers that are due at `now`: retransmissions, half-open expiry, NAT
    /// keepalives, liveness checks, rekeying and expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let spis: Vec<u64> = self.sas.keys().copied().collect();
        for spi in spis {
            if let Some(mut sa) = self.take(spi) {
                self.on_timer(now, &mut sa);
                self.put_back(sa);
            }
        }
    }

    /// The earliest time [`Engine::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas
            .values()
            .filter_map(|sa| {
                sa.deadline(
                    self.conns
                        .get(sa.conn)
                        .map_or(Duration::ZERO, |c| c.timers.dpd),
                )
            })
            .min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<IkeEvent> {
        self.events.pop_front()
    }

    /// Every IKE SA with its children; ages and times to rekey are relative to the latest
    /// instant the engine was given.
    pub fn list(&self) -> Vec<IkeSaInfo> {
        let mut v: Vec<IkeSaInfo> = self
            .sas
            .values()
            .map(|sa| self.info(sa, self.last_now.unwrap_or(sa.last_heard)))
            .collect();
        v.sort_by(|a, b| (&a.conn, &a.our_spi).cmp(&(&b.conn, &b.our_spi)));
        v
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats.clone();
        s.ike_sas = self.sas.len();
        s.half_open = self.half_open;
        s
    }

    // ----- internals -----

    fn tick(&mut self, now: Instant) {
        self.last_now = Some(self.last_now.map_or(now, |t| t.max(now)));
    }

    fn info(&self, sa: &IkeSa, now: Instant) -> IkeSaInfo {
        let conn = self.conns.get(sa.conn);
        let until = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(now));
        IkeSaInfo {
            conn: conn.map(|c| c.name.clone()).unwrap_or_default(),
            state: sa.state_name(),
            role: if sa.initiator {
                "initiator"
            } else {
                "responder"
            },
            our_spi: format!("{:016x}", sa.our_spi()),
            their_spi: hex_spi(&sa.their_spi()),
            local: sa.local,
            remote: sa.remote,
            nat_local: sa.nat_local,
            nat_remote: sa.nat_remote,
            encap_forced: sa.encap_forced,
            ike_suite: sa
                .crypto
                .as_ref()
                .map(|c| ike_name(&c.suite))
                .unwrap_or_default(),
            remote_id: sa.remote_id.as_ref().map(|i| format!("{i:?}")),
            established_age: sa.established.map(|t| now.saturating_duration_since(t)),
            rekey_in: until(sa.rekey_at),
            dropped: sa.dropped,
            children: sa
                .children
                .iter()
                .map(|c| ChildInfo {
                    inbound_spi: c.inbound_spi,
                    outbound_spi: c.outbound_spi,
                    esp: esp_name(&c.suite),
                    local_ts: c.local_ts.clone(),
                    remote_ts: c.remote_ts.clone(),
                    virtual_ip: sa.vip,
                    age: now.saturating_duration_since(c.created),
                    rekey_in: until(c.rekey_at),
                })
                .collect(),
        }
    }

    pub(super) fn conn_index(&self, name: &str) -> Result<usize, SessionError> {
        self.conns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| SessionError::UnknownConn(name.to_string()))
    }

    pub(super) fn conn_name(&self, idx: usize) -> String {
        self.conns
            .get(idx)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    pub(super) fn random(&self, buf: &mut [u8]) -> Result<(), &'static str> {
        self.rng
            .fill(buf)
            .map_err(|_| IkeError::RandomFailed.name())
    }

    /// A 32-byte nonce (§2.10: at least half the PRF key size, and 128 bits).
    pub(super) fn nonce(&self) -> Result<Vec<u8>, &'static str> {
        let mut n = vec![0u8; 32];
        self.random(&mut n)?;
        Ok(n)
    }

    /// A fresh IKE SPI of ours (non-zero, unused).
    pub(super) fn new_ike_spi(&self) -> Result<[u8; 8], &'static str> {
        loop {
            let mut spi = [0u8; 8];
            self.random(&mut spi)?;
            let v = u64::from_be_bytes(spi);
            if v != 0 && !self.sas.contains_key(&v) {
                return Ok(spi);
            }
        }
    }

    /// A fresh inbound ESP SPI (≥ 256: 1..=255 are reserved, RFC 4303 §2.1), reserved now.
    pub(super) fn new_child_spi(&mut self) -> Result<u32, &'static str> {
        loop {
            let mut b = [0u8; 4];
            self.random(&mut b)?;
            let v = u32::from_be_bytes(b);
            if v >= 256 && self.inbound_spis.insert(v) {
                return Ok(v);
            }
        }
    }

    pub(super) fn new_peer_id(&mut self) -> PeerId {
        let id = PeerId(self.next_peer);
        self.next_peer = self.next_peer.wrapping_add(1).max(1);
        id
    }

    /// Up to 10 % of `margin`, random (§2.8.1 asks for jitter against simultaneous rekeys).
    pub(super) fn jitter(&self, margin: Duration) -> Duration {
        let mut b = [0u8; 2];
        if self.random(&mut b).is_err() {
            return Duration::ZERO;
        }
        margin.mul_f64(f64::from(u16::from_be_bytes(b)) / f64::from(u16::MAX) / 10.0)
    }

    /// (rekey at, expire at) for something created at `now` with `lifetime`.
    pub(super) fn lifetimes(
        &self,
        now: Instant,
        lifetime: Duration,
        margin: Duration,
    ) -> (Option<Instant>, Option<Instant>) {
        if lifetime.is_zero() {
            return (None, None);
        }
        let margin = margin.min(lifetime / 2);
        let rekey = lifetime.saturating_sub(margin.saturating_add(self.jitter(margin)));
        (Some(later(now, rekey)), Some(later(now, lifetime)))
    }

    pub(super) fn drop_msg(&mut self, reason: &'static str) {
        *self.stats.drops.entry(reason).or_default() += 1;
        self.events.push_back(IkeEvent::Dropped { reason });
    }

    pub(super) fn event(&mut self, e: IkeEvent) {
        self.events.push_back(e);
    }

    pub(super) fn transmit(&mut self, src: SocketAddr, dst: SocketAddr, bytes: Vec<u8>) {
        self.stats.sent += 1;
        self.transmits.push_back(Transmit {
            src,
            dst,
            bytes,
            kind: TransmitKind::Ike,
        });
    }

    /// Take an SA out of the table to work on it (see [`Engine::put_back`]).
    pub(super) fn take(&mut self, spi: u64) -> Option<IkeSa> {
        let sa = self.sas.remove(&spi)?;
        if matches!(sa.phase, Phase::HalfOpen { .. }) {
            self.half_open = self.half_open.saturating_sub(1);
        }
        if let Some(src) = sa.init_src {
            self.init_index.remove(&(sa.spi_i, src));
        }
        Some(sa)
    }

    /// Handle a message with SA `spi` taken out of the table: `f`'s error is counted as a
    /// message dropped for that SA; the SA goes back (or is released) either way.
    pub(super) fn with_sa(
        &mut self,
        spi: u64,
        f: impl FnOnce(&mut Self, &mut IkeSa) -> Result<(), &'static str>,
    ) -> Result<(), &'static str> {
        let mut sa = self.take(spi).ok_or("unknown_spi")?;
        let r = f(self, &mut sa);
        if r.is_err() {
            sa.dropped += 1;
        }
        self.put_back(sa);
        r
    }

    /// Return an SA to the table, or release what a finished one held.
    pub(super) fn put_back(&mut self, sa: IkeSa) {
        if sa.phase == Phase::Gone {
            for c in &sa.children {
                self.inbound_spis.remove(&c.inbound_spi);
            }
            if let Some(hs) = &sa.hs {
                self.inbound_spis.remove(&hs.child_spi);
            }
            if let Some(spi) = sa.outstanding.as_ref().and_then(|o| o.kind.reserved_spi()) {
                self.inbound_spis.remove(&spi);
            }
            if let (true, Some(ip)) = (sa.leased, sa.vip)
                && let Some(pool) = self.pools.get_mut(&sa.conn)
            {
                pool.release(ip);
            }
            return;
        }
        if matches!(sa.phase, Phase::HalfOpen { .. }) {
            self.half_open += 1;
        }
        if let Some(src) = sa.init_src {
            self.init_index.insert((sa.spi_i, src), sa.our_spi());
        }
        self.sas.insert(sa.our_spi(), sa);
    }

    /// End an SA: ChildDown for every announced child, IkeDown if the daemon knows the SA.
    pub(super) fn close(&mut self, sa: &mut IkeSa, reason: &'static str) {
        let conn = self.conn_name(sa.conn);
        for c in sa.children.iter().filter(|c| c.announced) {
            self.events.push_back(IkeEvent::ChildDown {
                conn: conn.clone(),
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
            });
        }
        if sa.announced {
            self.events.push_back(IkeEvent::IkeDown {
                conn,
                ike_spi: sa.our_spi(),
                reason,
            });
        }
        sa.phase = Phase::Gone;
    }

    /// Remove one child: ChildDown if announced, SPI released. When we removed the last one
    /// (our delete at expiry, or the peer no longer had it), the IKE SA has nothing to carry:
    /// it is deleted, and an initiating runtime can start afresh. After a delete by the peer,
    /// what happens to the IKE SA is the peer's call.
    pub(super) fn remove_child(&mut self, sa: &mut IkeSa, inbound: u32, by_peer: bool) {
        if let Some(pos) = sa.children.iter().position(|c| c.inbound_spi == inbound) {
            let c = sa.children.remove(pos);
            self.inbound_spis.remove(&c.inbound_spi);
            if c.announced {
                let conn = self.conn_name(sa.conn);
                self.events.push_back(IkeEvent::ChildDown {
                    conn,
                    inbound_spi: c.inbound_spi,
                    outbound_spi: c.outbound_spi,
                });
            }
        }
        if !by_peer
            && sa.children.is_empty()
            && sa.phase == Phase::Established
            && !sa.queue.contains(&Intent::DeleteIke)
        {
            sa.delete_reason = "no_child";
            sa.queue.push_back(Intent::DeleteIke);
        }
    }

    fn dispatch(&mut self, now: Instant, d: Datagram<'_>) -> Result<(), &'static str> {
        let msg = parse_message(d.bytes).map_err(IkeError::name)?;
        let h = msg.header;
        if h.flags.version {
            return Err("bad_header");
        }
        if h.exchange == ExchangeType::IKE_SA_INIT {
            return if h.flags.response {
                self.init_response(now, d, &msg)
            } else {
                self.init_request(now, d, &msg)
            };
        }
        // §3.1: the I flag names the original initiator; our SPI is the other side's.
        let ours = if h.flags.initiator { h.spi_r } else { h.spi_i };
        self.with_sa(u64::from_be_bytes(ours), |e, sa| {
            e.on_message(now, d, &msg, sa)
        })
    }

    fn on_message(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        msg: &Message,
        sa: &mut IkeSa,
    ) -> Result<(), &'static str> {
        let h = msg.header;
        if h.flags.initiator == sa.initiator || sa.crypto.is_none() {
            return Err("unknown_spi");
        }
        let theirs = if sa.initiator { h.spi_r } else { h.spi_i };
        if theirs != sa.their_spi() {
            return Err("unknown_spi");
        }
        if h.flags.response {
            match &sa.outstanding {
                Some(o) if o.id == h.message_id && o.exchange == h.exchange => {}
                _ => return Err("unexpected_response"),
            }
            let opened = sa.open(d.bytes).map_err(IkeError::name)?;
            let Some(out) = sa.outstanding.take() else {
                return Err("unexpected_response");
            };
            self.heard(now, d, sa);
            let r = self.on_response(now, d, sa, out, opened);
            self.pump(now, sa);
            return r;
        }
        // a request: §2.2 message-ID window of one
        let id = h.message_id;
        if id != sa.peer_next_id {
            let last = sa.peer_next_id.wrapping_sub(1);
            return match &sa.cached {
                Some((cid, bytes)) if id == last && *cid == last => {
                    // §2.1: a retransmitted request gets the same response, after the
                    // message proved authentic.
                    sa.open(d.bytes).map_err(IkeError::name)?;
                    let bytes = bytes.clone();
                    self.heard(now, d, sa);
                    self.transmit(d.dst, d.src, bytes);
                    Ok(())
                }
                _ if id.wrapping_sub(sa.peer_next_id) < u32::MAX / 2 => Err("message_id_ahead"),
                _ => Err("message_id_old"),
            };
        }
        if !accepts_request(sa.phase, h.exchange) {
            return Err("unexpected_exchange");
        }
        let opened = sa.open(d.bytes).map_err(IkeError::name)?;
        sa.peer_next_id = sa.peer_next_id.wrapping_add(1);
        self.heard(now, d, sa);
        let reply = match h.exchange {
            ExchangeType::IKE_AUTH => self.auth_request(now, d, sa, &opened),
            ExchangeType::CREATE_CHILD_SA => self.create_child_request(now, sa, &opened),
            _ => self.informational_request(now, sa, &opened),
        };
        let (payloads, result) = match reply {
            Ok(p) => (p, Ok(())),
            // §2.21: a request we cannot parse gets INVALID_SYNTAX.
            Err(reason) => (
                vec![super::exchange::notification(NotifyType::INVALID_SYNTAX)],
                Err(reason),
            ),
        };
        self.respond(sa, d, h.exchange, id, &payloads)?;
        if result.is_err() && h.exchange == ExchangeType::IKE_AUTH {
            // §2.21.2: a failed IKE_AUTH leaves no IKE SA
            self.close(sa, "invalid_syntax");
        }
        self.pump(now, sa);
        result
    }

    /// Authenticated traffic from the peer: liveness, and NAT mapping changes (§2.23).
    fn heard(&mut self, now: Instant, d: Datagram<'_>, sa: &mut IkeSa) {
        sa.last_heard = now;
        if sa.local.ip().is_unspecified() && !d.dst.ip().is_unspecified() {
            sa.local = SocketAddr::new(d.dst.ip(), sa.local.port());
        }
        if d.src == sa.remote {
            return;
        }
        // §2.23: follow the peer only when a NAT is involved (IKE floated to 4500 or NAT-D said
        // so); otherwise address changes are MOBIKE's business.
        let natted = sa.nat_local || sa.nat_remote || d.dst.port() == 4500;
        if !natted {
            return;
        }
        sa.remote = d.src;
        sa.local = d.dst;
        if sa.phase == Phase::Established {
            let conn = self.conn_name(sa.conn);
            self.events.push_back(IkeEvent::PeerMoved {
                conn,
                ike_spi: sa.our_spi(),
                remote: d.src,
            });
        }
    }

    /// Seal and send a response (to where the request came from, §2.11) and cache it.
    pub(super) fn respond(
        &mut self,
        sa: &mut IkeSa,
        d: Datagram<'_>,
        exchange: ExchangeType,
        id: u32,
        payloads: &[Payload],
    ) -> Result<(), &'static str> {
        let h = sa.header(exchange, true, id);
        let rng = Rng(&*self.rng);
        let bytes = sa.seal(&h, payloads, &rng).map_err(IkeError::name)?;
        sa.cached = Some((id, bytes.clone()));
        self.transmit(d.dst, d.src, bytes);
        Ok(())
    }

    /// Seal and send a request; it stays outstanding until answered (window 1, §2.3).
    pub(super) fn send_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        exchange: ExchangeType,
        payloads: &[Payload],
        kind: Request,
    ) -> Result<(), &'static str> {
        let id = sa.next_req_id;
        let h = sa.header(exchange, false, id);
        let rng = Rng(&*self.rng);
        let bytes = sa.seal(&h, payloads, &rng).map_err(IkeError::name)?;
        sa.next_req_id = id.wrapping_add(1);
        self.transmit(sa.local, sa.remote, bytes.clone());
        let base = self.timers(sa).retransmit_base;
        sa.outstanding = Some(Outstanding {
            id,
            exchange,
            bytes,
            kind,
            sent: 1,
            next: later(now, base),
        });
        Ok(())
    }

    pub(super) fn timers(&self, sa: &IkeSa) -> super::Timers {
        self.conns
            .get(sa.conn)
            .map(|c| c.timers)
            .unwrap_or_default()
    }

    /// Send queued requests while the window is open.
    pub(super) fn pump(&mut self, now: Instant, sa: &mut IkeSa) {
        while sa.outstanding.is_none() && sa.phase != Phase::Gone {
            let Some(intent) = sa.queue.pop_front() else {
                return;
            };
            let usable = match intent {
                Intent::DeleteIke => matches!(sa.phase, Phase::Established | Phase::Deleting),
                _ => sa.phase == Phase::Established,
            };
            if !usable {
                continue;
            }
            let r = match intent {
                Intent::Dpd => {
                    self.send_request(now, sa, ExchangeType::INFORMATIONAL, &[], Request::Dpd)
                }
                Intent::DeleteIke => self.start_delete_ike(now, sa),
                Intent::DeleteChild(spi) => self.start_delete_child(now, sa, spi),
                Intent::RekeyChild(spi) => self.start_child_rekey(now, sa, spi),
                Intent::RekeyIke => self.start_ike_rekey(now, sa),
                Intent::NewChild => self.start_new_child(now, sa),
            };
            if let Err(reason) = r {
                // only local failures (RNG, crypto) end up here
                self.drop_msg(reason);
                self.close(sa, reason);
            }
        }
    }

    fn on_response(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        sa: &mut IkeSa,
        out: Outstanding,
        opened: Opened,
    ) -> Result<(), &'static str> {
        match out.kind {
            Request::Init => Err("unexpected_response"),
            Request::Auth => self.auth_response(now, d, sa, &opened),
            Request::Dpd => Ok(()),
            Request::DeleteIke => {
                let reason = sa.delete_reason;
                self.close(sa, reason);
                Ok(())
            }
            Request::DeleteChild { inbound } => {
                self.remove_child(sa, inbound, false);
                Ok(())
            }
            kind @ Request::RekeyChild { .. } => self.child_rekey_response(now, sa, kind, &opened),
            kind @ Request::RekeyIke { .. } => self.ike_rekey_response(now, sa, kind, &opened),
            kind @ Request::NewChild { .. } => self.new_child_response(now, sa, kind, &opened),
        }
    }

    /// Timers of one SA.
    fn on_timer(&mut self, now: Instant, sa: &mut IkeSa) {
        let timers = self.timers(sa);
        match sa.phase {
            Phase::HalfOpen { deadline } if now >= deadline => {
                self.drop_msg("half_open_timeout");
                sa.phase = Phase::Gone;
                return;
            }
            Phase::Superseded { until } if now >= until => {
                self.close(sa, "rekeyed");
                return;
            }
            _ => {}
        }
        if let Some(out) = &mut sa.outstanding
            && now >= out.next
        {
            if out.sent > timers.retransmit_tries {
                // §2.4: no answer after the retransmissions: the peer is gone
                let reason = match out.kind {
                    Request::DeleteIke => sa.delete_reason,
                    _ => "peer_timeout",
                };
                self.close(sa, reason);
                return;
            }
            // §2.1: same bytes, exponential backoff
            let factor = 1u32.checked_shl(out.sent).unwrap_or(u32::MAX);
            out.next = later(now, timers.retransmit_base.saturating_mul(factor));
            out.sent += 1;
            let bytes = out.bytes.clone();
            self.transmit(sa.local, sa.remote, bytes);
        }
        if sa.phase != Phase::Established {
            self.pump(now, sa);
            return;
        }
        if let Some(t) = sa.next_keepalive
            && now >= t
        {
            // RFC 3948 §2.3, §4: one 0xFF octet from the NATed side
            self.stats.sent += 1;
            self.transmits.push_back(Transmit {
                src: sa.local,
                dst: sa.remote,
                bytes: vec![0xff],
                kind: TransmitKind::Keepalive,
            });
            sa.next_keepalive = Some(later(now, timers.keepalive.max(Duration::from_secs(1))));
        }
        if sa.expire_at.is_some_and(|t| now >= t) {
            sa.expire_at = None;
            sa.rekey_at = None;
            sa.delete_reason = "expired";
            sa.queue.clear();
            sa.queue.push_back(Intent::DeleteIke);
        } else if sa.rekey_at.is_some_and(|t| now >= t) {
            sa.rekey_at = None;
            sa.queue.push_back(Intent::RekeyIke);
        }
        for c in &mut sa.children {
            // a passed deadline is always cleared, so poll_timeout never stays in the past
            if c.expire_at.is_some_and(|t| now >= t) {
                c.expire_at = None;
                c.rekey_at = None;
                if c.state != ChildState::Deleting {
                    sa.queue.push_back(Intent::DeleteChild(c.inbound_spi));
                }
            } else if c.rekey_at.is_some_and(|t| now >= t) {
                c.rekey_at = None;
                if c.state == ChildState::Installed {
                    sa.queue.push_back(Intent::RekeyChild(c.inbound_spi));
                }
            }
        }
        if !timers.dpd.is_zero()
            && sa.outstanding.is_none()
            && sa.queue.is_empty()
            && now >= later(sa.last_heard, timers.dpd)
        {
            // §1.4: an empty INFORMATIONAL request checks the peer is alive
            sa.queue.push_back(Intent::Dpd);
        }
        self.pump(now, sa);
    }
}

/// Which requests a phase answers.
fn accepts_request(phase: Phase, exchange: ExchangeType) -> bool {
    match phase {
        Phase::HalfOpen { .. } => exchange == ExchangeType::IKE_AUTH,
        Phase::Established | Phase::Deleting | Phase::Superseded { .. } => matches!(
            exchange,
            ExchangeType::INFORMATIONAL | ExchangeType::CREATE_CHILD_SA
        ),
        Phase::InitSent | Phase::AuthSent | Phase::Gone => false,
    }
}

fn hex_spi(spi: &[u8; 8]) -> String {
    format!("{:016x}", u64::from_be_bytes(*spi))
}

/// The name of an error notification we report (for events and counters).
pub(super) fn notify_name(ty: NotifyType) -> &'static str {
    match ty {
        NotifyType::NO_PROPOSAL_CHOSEN => "no_proposal_chosen",
        NotifyType::INVALID_KE_PAYLOAD => "invalid_ke_payload",
        NotifyType::AUTHENTICATION_FAILED => "authentication_failed",
        NotifyType::TS_UNACCEPTABLE => "ts_unacceptable",
        NotifyType::INTERNAL_ADDRESS_FAILURE => "internal_address_failure",
        NotifyType::FAILED_CP_REQUIRED => "failed_cp_required",
        NotifyType::SINGLE_PAIR_REQUIRED => "single_pair_required",
        NotifyType::NO_ADDITIONAL_SAS => "no_additional_sas",
        NotifyType::TEMPORARY_FAILURE => "temporary_failure",
        NotifyType::CHILD_SA_NOT_FOUND => "child_sa_not_found",
        NotifyType::INVALID_SYNTAX => "invalid_syntax",
        NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD => "unsupported_critical_payload",
        _ => "error_notify",
    }
}
