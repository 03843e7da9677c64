//! What one connection is allowed to negotiate: pure data the daemon builds from its TOML.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use xdpsec_dataplane::sa::IpPrefix;
use zeroize::Zeroizing;

use crate::ike::crypto::transform::{DhGroup, Encr, EspSuite, IkeSuite, Prf};
use crate::ike::payload::Identity;

/// Which side of IKE_SA_INIT a connection plays by default. Either side answers requests
/// that match it; only an initiator connection can be started with
/// [`Engine::initiate`](super::Engine::initiate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Waits for peers (a gateway for road warriors).
    Responder,
    /// Starts the IKE SA towards `remote` (a client behind a NAT, or a site).
    Initiator,
}

impl Role {
    /// `"responder"` or `"initiator"`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Responder => "responder",
            Role::Initiator => "initiator",
        }
    }
}

/// Timers of a connection (RFC 7296 §2.1 retransmission, §1.4 liveness, §2.8 rekeying;
/// RFC 3948 §4 NAT keepalives; §2.6 cookies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// First retransmission after this long; doubles each time (§2.1). Default 1 s.
    pub retransmit_base: Duration,
    /// Retransmissions before the peer is declared dead (§2.4). Default 5.
    pub retransmit_tries: u32,
    /// NAT keepalive interval when we are behind a NAT (RFC 3948 §4). Default 20 s.
    pub keepalive: Duration,
    /// Send an empty INFORMATIONAL after this much silence from the peer (§1.4);
    /// zero turns liveness checks off. Default 30 s.
    pub dpd: Duration,
    /// IKE SA lifetime; rekeyed `rekey_margin` before (§2.18). Zero = never. Default 4 h.
    pub ike_lifetime: Duration,
    /// Child SA lifetime; rekeyed `rekey_margin` before (§2.8). Zero = never. Default 1 h.
    pub child_lifetime: Duration,
    /// How long before expiry a rekey starts (minus up to 10 % random jitter, §2.8.1 advises
    /// randomness against collisions). Capped at half the lifetime. Default 9 min.
    pub rekey_margin: Duration,
    /// Half-open IKE SAs before IKE_SA_INIT must carry a COOKIE (§2.6). Default 64.
    pub cookie_threshold: usize,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            retransmit_base: Duration::from_secs(1),
            retransmit_tries: 5,
            keepalive: Duration::from_secs(20),
            dpd: Duration::from_secs(30),
            ike_lifetime: Duration::from_secs(4 * 3600),
            child_lifetime: Duration::from_secs(3600),
            rekey_margin: Duration::from_secs(9 * 60),
            cookie_threshold: 64,
        }
    }
}

/// One connection: identities, PSK, algorithms, traffic selectors, address pool, timers.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnConfig {
    /// Unique name (`xdpsec conn up NAME`, events, listings).
    pub name: String,
    /// Initiator or responder.
    pub role: Role,
    /// Our address; `None` = whatever address a packet arrived on (the responder) or the one
    /// the socket picks (the initiator: [`Transmit::src`](super::Transmit) is then unspecified).
    pub local: Option<IpAddr>,
    /// Initiator: where IKE_SA_INIT goes (normally port 500). Responder: the only peer
    /// address accepted, or `None` for any.
    pub remote: Option<SocketAddr>,
    /// Our identity (IDi / IDr, RFC 7296 §3.5).
    pub local_id: Identity,
    /// The peer's identity; `None` accepts any identity that authenticates with the PSK.
    pub remote_id: Option<Identity>,
    /// The pre-shared key (RFC 7296 §2.15). Never printed.
    pub psk: Zeroizing<Vec<u8>>,
    /// IKE proposals, most preferred first.
    pub ike: Vec<IkeSuite>,
    /// ESP proposals, most preferred first (AES-GCM-16 only: that is what the dataplane does;
    /// a D-H group here is used for PFS in CREATE_CHILD_SA, §1.3.1).
    pub esp: Vec<EspSuite>,
    /// Our side's inner networks (TSi for the initiator, TSr for the responder; §2.9).
    /// Empty = any address.
    pub local_ts: Vec<IpPrefix>,
    /// The peer's inner networks. Empty = any address.
    pub remote_ts: Vec<IpPrefix>,
    /// Responder: virtual IPs to hand out on CFG_REQUEST (first address, count; §3.15).
    pub pool: Option<(IpAddr, u32)>,
    /// Initiator: ask for a virtual IP (CFG_REQUEST with INTERNAL_IP4_ADDRESS, §2.19).
    pub request_vip: bool,
    /// Anti-replay window of inbound child SAs (packets).
    pub replay_window: u32,
    /// Force UDP encapsulation of ESP (RFC 3948) even without a NAT, as strongSwan's
    /// `encap = yes` does: our NAT_DETECTION_SOURCE_IP cannot match, so the peer believes we
    /// are behind a NAT and both sides move to port 4500 (RFC 7296 §2.23). The dataplane only
    /// does ESP-in-UDP, so the default is `true`; with `false` an IKE SA comes up only when a
    /// real NAT is detected (the peer cannot do NAT-T otherwise), and is refused with the
    /// reason `encap_off_without_nat` when none is.
    pub encap: bool,
    /// Retransmission, liveness, keepalive, lifetimes, cookies.
    pub timers: Timers,
}

impl fmt::Debug for ConnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("psk", &"<redacted>")
            .field("ike", &self.ike)
            .field("esp", &self.esp)
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .field("pool", &self.pool)
            .field("request_vip", &self.request_vip)
            .field("replay_window", &self.replay_window)
            .field("encap", &self.encap)
            .field("timers", &self.timers)
            .finish()
    }
}

/// `aes128gcm16-prfsha256-x25519`: what strongSwan proposes first by default.
pub const IKE_GCM128_X25519: IkeSuite = IkeSuite {
    encr: Encr::AesGcm16 { key_bits: 128 },
    prf: Prf::HmacSha256,
    integ: None,
    dh: DhGroup::Curve25519,
};
/// `aes256gcm16-prfsha384-ecp384`.
pub const IKE_GCM256_P384: IkeSuite = IkeSuite {
    encr: Encr::AesGcm16 { key_bits: 256 },
    prf: Prf::HmacSha384,
    integ: None,
    dh: DhGroup::Ecp384,
};
/// ESP `aes128gcm16`.
pub const ESP_GCM128: EspSuite = EspSuite {
    encr: Encr::AesGcm16 { key_bits: 128 },
    integ: None,
    dh: None,
    esn: false,
};
/// ESP `aes256gcm16`.
pub const ESP_GCM256: EspSuite = EspSuite {
    encr: Encr::AesGcm16 { key_bits: 256 },
    integ: None,
    dh: None,
    esn: false,
};

/// Default anti-replay window (DESIGN: at least 128 under multi-queue reordering).
pub const DEFAULT_REPLAY_WINDOW: u32 = 256;

impl ConnConfig {
    /// A responder accepting any peer and any identity with `psk`: IKE
    /// `aes128gcm16-prfsha256-x25519, aes256gcm16-prfsha384-ecp384`, ESP `aes128gcm16,
    /// aes256gcm16`, any traffic selectors, UDP encapsulation forced, default timers.
    pub fn responder(name: &str, local_id: Identity, psk: &[u8]) -> Self {
        Self {
            name: name.to_string(),
            role: Role::Responder,
            local: None,
            remote: None,
            local_id,
            remote_id: None,
            psk: Zeroizing::new(psk.to_vec()),
            ike: vec![IKE_GCM128_X25519, IKE_GCM256_P384],
            esp: vec![ESP_GCM128, ESP_GCM256],
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            pool: None,
            request_vip: false,
            replay_window: DEFAULT_REPLAY_WINDOW,
            encap: true,
            timers: Timers::default(),
        }
    }

    /// An initiator towards `remote` with the same defaults as [`ConnConfig::responder`].
    pub fn initiator(name: &str, remote: SocketAddr, local_id: Identity, psk: &[u8]) -> Self {
        Self {
            role: Role::Initiator,
            remote: Some(remote),
            ..Self::responder(name, local_id, psk)
        }
    }

    /// Check what the engine relies on; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        if self.ike.is_empty() {
            return Err(format!("conn {n}: ike: no proposal"));
        }
        if self.esp.is_empty() {
            return Err(format!("conn {n}: esp: no proposal"));
        }
        for s in &self.ike {
            if s.check().is_err() || matches!(s.encr, Encr::AesGcm16 { key_bits: 192 }) {
                return Err(format!("conn {n}: ike: unusable suite {s:?}"));
            }
        }
        for s in &self.esp {
            if !matches!(
                s.encr,
                Encr::AesGcm16 {
                    key_bits: 128 | 256
                }
            ) || s.integ.is_some()
            {
                return Err(format!(
                    "conn {n}: esp: the dataplane does aes128gcm16 / aes256gcm16 only"
                ));
            }
        }
        if self.role == Role::Initiator && self.remote.is_none() {
            return Err(format!("conn {n}: remote: an initiator needs one"));
        }
        if self.psk.is_empty() {
            return Err(format!("conn {n}: psk: empty"));
        }
        if let Some((_, 0)) = self.pool {
            return Err(format!("conn {n}: pool: zero addresses"));
        }
        Ok(())
    }
}
