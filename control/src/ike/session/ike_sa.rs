//! One IKE SA: its keys, message-ID windows (RFC 7296 §2.1 - §2.3), the request in flight,
//! cached response, child SAs and timers.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use xdpsec_dataplane::sa::{IpPrefix, PeerId};

use crate::ike::IkeError;
use crate::ike::crypto::RandomSource;
use crate::ike::crypto::dh::KeyExchange;
use crate::ike::crypto::keys::IkeSaKeys;
use crate::ike::crypto::sk::{Opened, SkContext, open, seal};
use crate::ike::crypto::transform::{DhGroup, EspSuite, IkeSuite};
use crate::ike::header::{ExchangeType, Flags, Header};
use crate::ike::payload::{Identity, Payload, PayloadType};

/// Where an IKE SA stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Initiator: IKE_SA_INIT sent, no answer yet.
    InitSent,
    /// Initiator: IKE_AUTH sent.
    AuthSent,
    /// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH until `deadline`.
    HalfOpen { deadline: Instant },
    /// Authenticated; children may come and go.
    Established,
    /// We sent (or are about to send) Delete for this IKE SA.
    Deleting,
    /// The peer rekeyed this IKE SA (§2.18); waiting for its Delete until `until`.
    Superseded { until: Instant },
    /// Finished: the engine releases it when it puts it back.
    Gone,
}

/// State of IKE_SA_INIT / IKE_AUTH, dropped once the SA is established.
pub(super) struct Handshake {
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// The IKE_SA_INIT request as sent (signed by the initiator's AUTH, §2.15).
    pub init_req: Vec<u8>,
    /// The IKE_SA_INIT response as sent (signed by the responder's AUTH).
    pub init_resp: Vec<u8>,
    /// Initiator: our private D-H value until the response arrives.
    pub ke: Option<KeyExchange>,
    /// Initiator: COOKIE to echo (§2.6).
    pub cookie: Option<Vec<u8>>,
    /// Initiator: restarts after COOKIE or INVALID_KE_PAYLOAD (bounded).
    pub restarts: u8,
    /// Initiator: our inbound ESP SPI offered in IKE_AUTH.
    pub child_spi: u32,
}

/// The negotiated suite, keys and SK contexts of an IKE SA.
pub(super) struct Crypto {
    pub suite: IkeSuite,
    pub keys: IkeSaKeys,
    out: SkContext,
    inbound: SkContext,
}

impl Crypto {
    /// Contexts for our direction: the original initiator seals with SK_ei/SK_ai (§2.14).
    pub fn new(suite: IkeSuite, keys: IkeSaKeys, initiator: bool) -> Result<Self, IkeError> {
        let (i2r, r2i) = SkContext::pair(&keys, &suite)?;
        let (out, inbound) = if initiator { (i2r, r2i) } else { (r2i, i2r) };
        Ok(Self {
            suite,
            keys,
            out,
            inbound,
        })
    }
}

/// A request we sent that awaits its response (window size 1, §2.3).
pub(super) struct Outstanding {
    pub id: u32,
    pub exchange: ExchangeType,
    /// Retransmissions resend exactly these bytes (§2.1).
    pub bytes: Vec<u8>,
    pub kind: Request,
    /// Transmissions so far.
    pub sent: u32,
    /// When to retransmit (or give up).
    pub next: Instant,
}

/// What a request was for, with what its response needs.
pub(super) enum Request {
    Init,
    Auth,
    Dpd,
    DeleteIke,
    DeleteChild {
        inbound: u32,
    },
    RekeyChild {
        old_inbound: u32,
        new_inbound: u32,
        /// The selectors we offered (TSi, TSr).
        local_ts: Vec<IpPrefix>,
        remote_ts: Vec<IpPrefix>,
        ni: Vec<u8>,
        ke: Option<KeyExchange>,
        /// The peer rekeyed the same child meanwhile and we answered (§2.8.1).
        collision: Option<Collision>,
    },
    RekeyIke {
        new_spi: [u8; 8],
        ni: Vec<u8>,
        ke: Option<KeyExchange>,
        collision: Option<Collision>,
    },
    /// An additional child SA pair (§1.3.1).
    NewChild {
        inbound: u32,
        /// The selectors we offered (TSi, TSr).
        local_ts: Vec<IpPrefix>,
        remote_ts: Vec<IpPrefix>,
        ni: Vec<u8>,
        ke: Option<KeyExchange>,
    },
}

/// The peer's simultaneous rekey of the same SA, which we answered: its nonces decide with
/// ours which new SA survives (§2.8.1, §2.8.2), and what it created.
pub(super) struct Collision {
    /// The peer's Ni and our Nr of its exchange.
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// What the peer's exchange created: our inbound SPI of the new child, or our SPI of the
    /// new IKE SA.
    pub created: u64,
}

impl Collision {
    /// §2.8.1: "the SA created with the lowest of the four nonces" is redundant. True when
    /// that is ours (the exchange with `our_ni`, `their_nr`).
    pub fn ours_is_redundant(&self, our_ni: &[u8], their_nr: &[u8]) -> bool {
        let ours = our_ni.min(their_nr);
        let theirs = self.ni.as_slice().min(self.nr.as_slice());
        ours < theirs
    }
}

impl Request {
    pub fn is_rekey(&self) -> bool {
        matches!(self, Request::RekeyChild { .. } | Request::RekeyIke { .. })
    }

    /// The inbound ESP SPI reserved for the child SA this request would create.
    pub fn reserved_spi(&self) -> Option<u32> {
        match self {
            Request::RekeyChild { new_inbound, .. } => Some(*new_inbound),
            Request::NewChild { inbound, .. } => Some(*inbound),
            _ => None,
        }
    }
}

/// A request waiting for the window to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Intent {
    Dpd,
    DeleteIke,
    DeleteChild(u32),
    RekeyChild(u32),
    RekeyIke,
    NewChild,
}

/// Where a child SA pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChildState {
    Installed,
    /// Our CREATE_CHILD_SA for it is in flight.
    Rekeying,
    /// Replaced by a new pair; deleted by the rekey's initiator (§1.3.3), or by us at expiry.
    Rekeyed,
    /// Our Delete for it is in flight.
    Deleting,
}

/// A child SA pair (ESP, tunnel mode).
pub(super) struct Child {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub suite: EspSuite,
    pub local_ts: Vec<IpPrefix>,
    pub remote_ts: Vec<IpPrefix>,
    pub created: Instant,
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    pub state: ChildState,
    /// ChildUp was emitted (so ChildDown must be).
    pub announced: bool,
    /// PFS group the peer asked for with INVALID_KE_PAYLOAD.
    pub pfs_group: Option<DhGroup>,
}

/// One IKE SA.
pub(super) struct IkeSa {
    pub conn: usize,
    pub phase: Phase,
    /// We are the original initiator of this IKE SA (the I flag, §3.1; after a rekey, the
    /// side that rekeyed, §2.18).
    pub initiator: bool,
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Responder: where the IKE_SA_INIT request came from (to spot its retransmissions).
    pub init_src: Option<SocketAddr>,
    pub nat_local: bool,
    pub nat_remote: bool,
    /// We sent a NAT_DETECTION_SOURCE_IP that cannot match (config `encap`, §2.23).
    pub encap_forced: bool,
    pub hs: Option<Handshake>,
    pub crypto: Option<Crypto>,
    pub next_req_id: u32,
    pub outstanding: Option<Outstanding>,
    pub queue: VecDeque<Intent>,
    /// Next request ID we expect from the peer.
    pub peer_next_id: u32,
    /// Our last response (ID, bytes), resent when that request is retransmitted (§2.1).
    pub cached: Option<(u32, Vec<u8>)>,
    pub children: Vec<Child>,
    pub peer: PeerId,
    pub remote_id: Option<Identity>,
    /// Virtual IP: assigned to the peer (responder) or to us (initiator).
    pub vip: Option<IpAddr>,
    /// The virtual IP came from our pool and goes back when the SA ends.
    pub leased: bool,
    pub established: Option<Instant>,
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    /// PFS group the peer asked for in an IKE rekey (INVALID_KE_PAYLOAD).
    pub rekey_group: Option<DhGroup>,
    /// Last authenticated message from the peer (for liveness checks, §1.4).
    pub last_heard: Instant,
    pub next_keepalive: Option<Instant>,
    /// The daemon knows of it (initiate() or IkeUp): it must see IkeDown.
    pub announced: bool,
    /// Reason reported when our Delete completes.
    pub delete_reason: &'static str,
    /// After a rekey: the IKE SA that took over the children.
    pub successor: Option<u64>,
    pub dropped: u64,
}

impl IkeSa {
    /// A fresh SA; the caller sets SPIs, phase and handshake.
    pub fn new(
        conn: usize,
        initiator: bool,
        local: SocketAddr,
        remote: SocketAddr,
        peer: PeerId,
        now: Instant,
    ) -> Self {
        Self {
            conn,
            phase: Phase::InitSent,
            initiator,
            spi_i: [0; 8],
            spi_r: [0; 8],
            local,
            remote,
            init_src: None,
            nat_local: false,
            nat_remote: false,
            encap_forced: false,
            hs: None,
            crypto: None,
            next_req_id: 0,
            outstanding: None,
            queue: VecDeque::new(),
            peer_next_id: 0,
            cached: None,
            children: Vec::new(),
            peer,
            remote_id: None,
            vip: None,
            leased: false,
            established: None,
            rekey_at: None,
            expire_at: None,
            rekey_group: None,
            last_heard: now,
            next_keepalive: None,
            announced: false,
            delete_reason: "terminated",
            successor: None,
            dropped: 0,
        }
    }

    /// Our SPI (the table key).
    pub fn our_spi(&self) -> u64 {
        u64::from_be_bytes(if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        })
    }

    /// The peer's SPI.
    pub fn their_spi(&self) -> [u8; 8] {
        if self.initiator {
            self.spi_r
        } else {
            self.spi_i
        }
    }

    /// A header for a message of ours (§3.1: I set by the original initiator).
    pub fn header(&self, exchange: ExchangeType, response: bool, message_id: u32) -> Header {
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: PayloadType::NONE,
            minor_version: 0,
            exchange,
            flags: Flags {
                initiator: self.initiator,
                version: false,
                response,
            },
            message_id,
            length: 0,
        }
    }

    /// Seal `inner` into an SK payload (§3.14).
    pub fn seal(
        &mut self,
        header: &Header,
        inner: &[Payload],
        rng: &dyn RandomSource,
    ) -> Result<Vec<u8>, IkeError> {
        let c = self.crypto.as_mut().ok_or(IkeError::UnsupportedTransform)?;
        seal(&mut c.out, header, &[], inner, rng)
    }

    /// Verify and decrypt a message from the peer (§3.14).
    pub fn open(&self, raw: &[u8]) -> Result<Opened, IkeError> {
        let c = self.crypto.as_ref().ok_or(IkeError::BadEncryptedPayload)?;
        open(&c.inbound, raw)
    }

    pub fn child(&self, inbound: u32) -> Option<&Child> {
        self.children.iter().find(|c| c.inbound_spi == inbound)
    }

    pub fn child_mut(&mut self, inbound: u32) -> Option<&mut Child> {
        self.children.iter_mut().find(|c| c.inbound_spi == inbound)
    }

    /// Child SA pairs in use or on their way: installed ones (not yet replaced or being
    /// deleted) and additional ones we asked for.
    pub fn live_children(&self) -> usize {
        let installed = self
            .children
            .iter()
            .filter(|c| matches!(c.state, ChildState::Installed | ChildState::Rekeying))
            .count();
        let queued = self
            .queue
            .iter()
            .filter(|i| **i == Intent::NewChild)
            .count();
        let asked = self
            .outstanding
            .as_ref()
            .is_some_and(|o| matches!(o.kind, Request::NewChild { .. }));
        installed + queued + usize::from(asked)
    }

    /// `connecting`, `established`, `rekeying` or `deleting` (for listings).
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::InitSent | Phase::AuthSent | Phase::HalfOpen { .. } => "connecting",
            Phase::Established => {
                let rekeying = self.outstanding.as_ref().is_some_and(|o| o.kind.is_rekey())
                    || self
                        .children
                        .iter()
                        .any(|c| c.state == ChildState::Rekeying);
                if rekeying { "rekeying" } else { "established" }
            }
            Phase::Deleting | Phase::Superseded { .. } | Phase::Gone => "deleting",
        }
    }

    /// The earliest instant a timer of this SA fires.
    pub fn deadline(&self, dpd: std::time::Duration) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        at(self.outstanding.as_ref().map(|o| o.next));
        if self.outstanding.is_none() && !self.queue.is_empty() {
            // requests waiting for the window (e.g. moved here by an IKE rekey): now
            at(Some(self.last_heard));
        }
        match self.phase {
            Phase::HalfOpen { deadline } => at(Some(deadline)),
            Phase::Superseded { until } => at(Some(until)),
            Phase::Established => {
                at(self.next_keepalive);
                at(self.rekey_at);
                at(self.expire_at);
                if !dpd.is_zero() && self.outstanding.is_none() && self.queue.is_empty() {
                    at(Some(super::engine::later(self.last_heard, dpd)));
                }
                for c in &self.children {
                    at(c.rekey_at);
                    at(c.expire_at);
                }
            }
            _ => {}
        }
        t
    }
}
