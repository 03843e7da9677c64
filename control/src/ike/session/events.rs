//! What goes in and out of the [`Engine`](super::Engine): datagrams, transmits, events,
//! listings and errors.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Serialize, Serializer};
use xdpsec_dataplane::sa::{IpPrefix, SaParams};

/// A received IKE message. `bytes` is the IKE message itself: on port 4500 the caller has
/// removed the 4-byte non-ESP marker (RFC 3948 §2.2). `dst.port()` tells 500 from 4500.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Where it came from (the peer's, possibly NAT-mapped, endpoint).
    pub src: SocketAddr,
    /// Our address and port it arrived on.
    pub dst: SocketAddr,
    /// The IKE message.
    pub bytes: &'a [u8],
}

/// What a [`Transmit`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransmitKind {
    /// An IKE message. On port 4500 the caller prepends the 4-byte zero non-ESP marker
    /// (RFC 3948 §2.2; see [`Transmit::needs_non_esp_marker`]).
    Ike,
    /// A NAT-keepalive: `bytes` is the single octet 0xFF (RFC 3948 §2.3).
    Keepalive,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port to send from. An unspecified address means "any": the socket
    /// bound to that port picks it.
    pub src: SocketAddr,
    /// The peer's endpoint.
    pub dst: SocketAddr,
    /// The payload.
    pub bytes: Vec<u8>,
    /// IKE message or keepalive.
    pub kind: TransmitKind,
}

impl Transmit {
    /// True for IKE messages on port 4500, which take the non-ESP marker (RFC 3948 §2.2).
    pub fn needs_non_esp_marker(&self) -> bool {
        self.kind == TransmitKind::Ike && (self.src.port() == 4500 || self.dst.port() == 4500)
    }
}

/// Something the daemon acts on. Order matters: a rekeyed child's `ChildUp` comes before the
/// old pair's `ChildDown` (make-before-break), an IKE SA's `IkeUp` before its `ChildUp`.
///
/// Every child SA that was announced with `ChildUp` ends with exactly one `ChildDown`;
/// `IkeDown` never implies it. `IkeDown` also ends an attempt that never reached `IkeUp`
/// (an initiator's failed or timed-out handshake), and an IKE SA replaced by a rekey
/// (`reason = "rekeyed"`, after the new SA's `IkeUp`; its children live on under the new SPI).
// Events are rare (a handful per SA lifetime); the API keeps `SaParams` unboxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IkeEvent {
    /// An IKE SA is established (IKE_AUTH done, or a rekeyed IKE SA replaced an old one).
    IkeUp {
        conn: String,
        /// Our SPI of the IKE SA.
        ike_spi: u64,
        /// The peer's current endpoint.
        remote: SocketAddr,
    },
    /// An IKE SA (or an attempt at one) is gone.
    IkeDown {
        conn: String,
        ike_spi: u64,
        /// Stable name: `terminated` (by us), `deleted_by_peer`, `peer_timeout` (no answer
        /// after the retransmissions, §2.4), `rekeyed` (replaced, §2.18), `expired` (IKE
        /// lifetime ran out without a rekey), `no_child` (its child SA could not be kept),
        /// `initial_contact` (the peer started afresh, §2.4), or why a handshake failed:
        /// `authentication_failed`, `no_proposal_chosen`, `invalid_ke_payload`,
        /// `ts_unacceptable`, `internal_address_failure`, `failed_cp_required`, `id_mismatch`,
        /// `missing_payload`, ... — and two refusals of SAs the dataplane could not serve
        /// (it only does ESP in UDP, RFC 3948): `peer_without_nat_t` (the responder sent no
        /// NAT detection, §2.23) and `encap_off_without_nat` (no NAT and config `encap` off).
        reason: &'static str,
    },
    /// A child SA pair to install.
    ChildUp {
        conn: String,
        /// Our SPI of the IKE SA the child belongs to.
        ike_spi: u64,
        /// We decrypt with it: our SPI.
        inbound: SaParams,
        /// We encrypt with it: the peer's SPI.
        outbound: SaParams,
        /// Initiator: the address the responder assigned us. Responder: the address we
        /// assigned the peer.
        virtual_ip: Option<IpAddr>,
        /// The inbound SPI of the pair this one rekeys (§2.8; its `ChildDown` follows once
        /// the old pair is deleted); `None` for a new pair.
        replaces: Option<u32>,
    },
    /// A child SA pair to remove.
    ChildDown {
        conn: String,
        inbound_spi: u32,
        outbound_spi: u32,
    },
    /// An authenticated message came from a new address or port (RFC 7296 §2.23): send
    /// ESP there (`SaCommand::UpdatePeer` for the IKE SA's children).
    PeerMoved {
        conn: String,
        ike_spi: u64,
        remote: SocketAddr,
    },
    /// A message was discarded (or refused without creating state); `reason` is stable:
    /// a parse or crypto error ([`IkeError`](crate::ike::IkeError) names such as
    /// `truncated_header`, `integrity_check_failed`), or `unknown_spi`, `bad_header`,
    /// `unexpected_response`, `unexpected_exchange`, `message_id_old`, `message_id_ahead`
    /// (§2.2), `missing_payload`, `init_retransmit`, `no_matching_conn`, `cookie_required`
    /// (§2.6), `half_open_limit`, `ike_sa_limit`, `half_open_timeout`, and refusals we
    /// answered: `no_proposal_chosen`, `invalid_ke_payload`, `authentication_failed`, ...,
    /// `peer_without_nat_t` and `encap_off_without_nat` (IKE_SA_INIT refused with
    /// NO_PROPOSAL_CHOSEN: ESP with that peer could not be UDP-encapsulated, RFC 3948).
    Dropped { reason: &'static str },
}

impl IkeEvent {
    /// A stable snake_case name of the event's kind (`ike_up`, `child_down`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            IkeEvent::IkeUp { .. } => "ike_up",
            IkeEvent::IkeDown { .. } => "ike_down",
            IkeEvent::ChildUp { .. } => "child_up",
            IkeEvent::ChildDown { .. } => "child_down",
            IkeEvent::PeerMoved { .. } => "peer_moved",
            IkeEvent::Dropped { .. } => "dropped",
        }
    }
}

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// No connection of that name.
    UnknownConn(String),
    /// The connection has no `remote` to initiate to.
    NotInitiator(String),
    /// The connection already has an IKE SA (connecting or established).
    AlreadyActive(String),
    /// The connection has no IKE SA to terminate.
    NotActive(String),
    /// The engine holds as many IKE SAs as it accepts.
    TooManySas,
    /// The connection's IKE SAs hold as many child SA pairs as they may.
    TooManyChildren(String),
    /// The random source or the crypto failed (the [`IkeError`](crate::ike::IkeError) name).
    Crypto(&'static str),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::UnknownConn(c) => write!(f, "no connection named {c:?}"),
            SessionError::NotInitiator(c) => write!(f, "connection {c:?} has no remote"),
            SessionError::AlreadyActive(c) => write!(f, "connection {c:?} is already up"),
            SessionError::NotActive(c) => write!(f, "connection {c:?} is not up"),
            SessionError::TooManySas => f.write_str("too many IKE SAs"),
            SessionError::TooManyChildren(c) => {
                write!(f, "connection {c:?} has as many child SAs as it may")
            }
            SessionError::Crypto(e) => write!(f, "crypto failure: {e}"),
        }
    }
}

impl std::error::Error for SessionError {}

/// Durations as (fractional) seconds in JSON.
fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn prefixes<S: Serializer>(p: &[IpPrefix], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(p.iter().map(ToString::to_string))
}

/// One child SA pair, for `xdpsec sa list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChildInfo {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    /// ESP suite, e.g. `aes128gcm16`.
    pub esp: String,
    #[serde(serialize_with = "prefixes")]
    pub local_ts: Vec<IpPrefix>,
    #[serde(serialize_with = "prefixes")]
    pub remote_ts: Vec<IpPrefix>,
    pub virtual_ip: Option<IpAddr>,
    /// Time since it was installed (seconds in JSON).
    #[serde(serialize_with = "secs")]
    pub age: Duration,
    /// Time until it is rekeyed, if a rekey is scheduled.
    #[serde(serialize_with = "opt_secs")]
    pub rekey_in: Option<Duration>,
}

/// One IKE SA, for `xdpsec conn list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IkeSaInfo {
    pub conn: String,
    /// `connecting`, `established`, `rekeying` or `deleting`.
    pub state: &'static str,
    /// `initiator` or `responder` of this IKE SA.
    pub role: &'static str,
    /// Our SPI, 16 hex digits.
    pub our_spi: String,
    /// The peer's SPI (zeros while unknown).
    pub their_spi: String,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// We are behind a NAT (RFC 7296 §2.23): we send keepalives.
    pub nat_local: bool,
    /// The peer is behind a NAT, or forces UDP encapsulation by faking its NAT detection
    /// (the two look the same, §2.23).
    pub nat_remote: bool,
    /// We force UDP encapsulation (config `encap`): our NAT detection told the peer we are
    /// behind a NAT, so ESP is UDP-encapsulated on port 4500 even when there is none.
    pub encap_forced: bool,
    /// Negotiated suite, e.g. `aes128gcm16-prfsha256-x25519` (empty while connecting).
    pub ike_suite: String,
    /// The peer's authenticated identity.
    pub remote_id: Option<String>,
    /// Time since the IKE SA was established.
    #[serde(serialize_with = "opt_secs")]
    pub established_age: Option<Duration>,
    /// Time until the IKE SA is rekeyed.
    #[serde(serialize_with = "opt_secs")]
    pub rekey_in: Option<Duration>,
    /// Messages for this IKE SA that were discarded.
    pub dropped: u64,
    pub children: Vec<ChildInfo>,
}

/// Engine-wide counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// IKE SAs in the table (any state).
    pub ike_sas: usize,
    /// Responder IKE SAs waiting for IKE_AUTH.
    pub half_open: usize,
    /// Datagrams handled.
    pub received: u64,
    /// Transmits produced.
    pub sent: u64,
    /// Discarded messages by reason.
    pub drops: BTreeMap<&'static str, u64>,
}
