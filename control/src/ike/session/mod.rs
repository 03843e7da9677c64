//! The IKEv2 state machine (RFC 7296), sans-IO, in the style of `quinn-proto`.
//!
//! An [`Engine`] holds every IKE SA of the gateway and is driven from outside:
//!
//! - inputs: [`Engine::handle`] (a received IKE message with its addresses),
//!   [`Engine::handle_timeout`] (the clock passed [`Engine::poll_timeout`]),
//!   [`Engine::initiate`] / [`Engine::terminate`] / [`Engine::create_child`] (operator or
//!   config);
//! - outputs, drained after every input: [`Engine::poll_transmit`] (IKE messages and
//!   NAT-keepalives to send), [`Engine::poll_event`] (child SAs to install or remove, peers
//!   that moved, discarded messages), [`Engine::poll_timeout`] (when to call
//!   `handle_timeout` next).
//!
//! Time is always passed in (`now: Instant`), randomness comes from the injected RNG, and
//! nothing touches a socket, so the whole protocol — retransmission, liveness, rekeying — is
//! testable with a fake clock.
//!
//! What it implements:
//! - IKE_SA_INIT (§1.2) with NAT detection (§2.23), INVALID_KE_PAYLOAD retry (§1.2),
//!   stateless cookies under load (§2.6, secret rotated every two minutes), and IKE_AUTH with PSK (§2.15), a tunnel-mode
//!   child SA, traffic selector narrowing (§2.9) and a virtual IP from a pool (§2.19, §3.15);
//!   both as initiator and responder. After NAT detection the initiator floats to port 4500
//!   (§2.23) and the side behind the NAT sends keepalives (RFC 3948 §4). The dataplane only
//!   does ESP in UDP, so by default UDP encapsulation is forced without a NAT too (a
//!   NAT_DETECTION_SOURCE_IP that cannot match, like strongSwan's `encap = yes`), and an SA
//!   whose ESP would not be encapsulated is refused before anything is installed.
//! - Message IDs, retransmission with exponential backoff and cached responses
//!   (§2.1, §2.2); half-open SAs time out.
//! - INFORMATIONAL: Delete of IKE and child SAs (§1.4.1), liveness checks (§1.4).
//! - CREATE_CHILD_SA: additional child SAs, up to four pairs per IKE SA (§1.3.1), child rekey
//!   (§1.3.3, make-before-break) and IKE SA rekey (§1.3.2, §2.18); collisions resolved by
//!   nonces (§2.8.1: the lower nonce loses).
//! - NAT mapping changes learnt from authenticated messages only (§2.23).
//!
//! Every discarded message yields [`IkeEvent::Dropped`] with a stable reason and is counted
//! in [`EngineStats`]; nothing from the wire can panic the engine or grow it without bound.
//!
//! A runtime drives it like this (the daemon does the same with its sockets):
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use xdpsec_control::ike::payload::Identity;
//! use xdpsec_control::ike::session::{ConnConfig, Datagram, Engine, IkeEvent};
//!
//! let conn = ConnConfig::responder("rw", Identity::Fqdn("gw.example".into()), b"secret");
//! conn.validate().expect("a usable connection");
//! let mut engine = Engine::new(vec![conn], Box::new(ring::rand::SystemRandom::new()));
//! # let (src, dst): (SocketAddr, SocketAddr) = ("192.0.2.1:4500".parse().unwrap(), "192.0.2.2:4500".parse().unwrap());
//! # let payload: &[u8] = &[];
//! // a datagram from UDP 500, or from 4500 with the non-ESP marker removed; `dst` is the
//! // address it really arrived on (NAT detection hashes it)
//! engine.handle(Instant::now(), Datagram { src, dst, bytes: payload });
//! // ... or the time in engine.poll_timeout() came: engine.handle_timeout(Instant::now());
//! while let Some(t) = engine.poll_transmit() {
//!     // send t.bytes from t.src to t.dst, after 4 zero octets if t.needs_non_esp_marker()
//! }
//! while let Some(e) = engine.poll_event() {
//!     match e {
//!         IkeEvent::ChildUp { inbound, outbound, .. } => { /* SaCommand::Install both */ }
//!         IkeEvent::ChildDown { inbound_spi, outbound_spi, .. } => { /* SaCommand::Remove */ }
//!         IkeEvent::PeerMoved { remote, .. } => { /* SaCommand::UpdatePeer */ }
//!         _ => {}
//!     }
//! }
//! ```

mod child;
mod config;
mod cookie;
mod engine;
mod events;
mod exchange;
mod ike_sa;
mod nat;
mod pool;
mod ts;

pub use config::{
    ConnConfig, DEFAULT_REPLAY_WINDOW, ESP_GCM128, ESP_GCM256, IKE_GCM128_X25519, IKE_GCM256_P384,
    Role, Timers,
};
pub use engine::Engine;
pub use events::{
    ChildInfo, Datagram, EngineStats, IkeEvent, IkeSaInfo, SessionError, Transmit, TransmitKind,
};

#[cfg(test)]
mod tests;
