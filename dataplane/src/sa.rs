//! Security Association parameters, as configured (static SAs) or negotiated by IKE.
//!
//! These are the values the control plane pushes to the workers (`SaCommand::Install`); the
//! runtime state built from them (expanded keys, replay window, counters) lives in [`crate::sad`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use zeroize::Zeroizing;

/// Which way an SA protects traffic, seen from this gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We decrypt: the SPI is ours.
    In,
    /// We encrypt: the SPI is the peer's.
    Out,
}

/// ESP mode (RFC 4303 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The whole inner IP packet is protected (site-to-site, road warriors).
    Tunnel,
    /// Only the upper-layer payload is protected (L2TP over IPsec, RFC 3193).
    Transport,
}

/// Combined-mode algorithm (RFC 4106: AES-GCM with a 16-byte ICV, RFC 8221 "MUST").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aead {
    /// AES-128-GCM with 16-byte ICV (ENCR_AES_GCM_16, key length 128).
    Aes128Gcm16,
    /// AES-256-GCM with 16-byte ICV (ENCR_AES_GCM_16, key length 256).
    Aes256Gcm16,
}

impl Aead {
    /// Length of the 4-byte salt that follows the key in the key material (RFC 4106 §8.1).
    pub const SALT_LEN: usize = 4;
    /// Length of the explicit IV carried in every packet (RFC 4106 §3.1).
    pub const IV_LEN: usize = 8;
    /// Length of the ICV (the "16" of AES-GCM-16).
    pub const ICV_LEN: usize = 16;

    /// AES key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm16 => 16,
            Aead::Aes256Gcm16 => 32,
        }
    }

    /// Length of key‖salt as configured.
    pub const fn keymat_len(self) -> usize {
        self.key_len() + Self::SALT_LEN
    }

    /// Name used in configuration files and output (strongSwan's proposal keywords).
    pub const fn name(self) -> &'static str {
        match self {
            Aead::Aes128Gcm16 => "aes128gcm16",
            Aead::Aes256Gcm16 => "aes256gcm16",
        }
    }
}

impl FromStr for Aead {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "aes128gcm16" => Ok(Aead::Aes128Gcm16),
            "aes256gcm16" => Ok(Aead::Aes256Gcm16),
            other => Err(format!(
                "unknown AEAD \"{other}\" (expected \"aes128gcm16\" or \"aes256gcm16\")"
            )),
        }
    }
}

/// Key material: the AES key followed by the 4-byte salt (RFC 4106 §8.1, the order strongSwan
/// logs and Wireshark's ESP SA table use). Zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Wrap `bytes` for `aead`; the length must be `aead.keymat_len()`.
    pub fn new(aead: Aead, bytes: Vec<u8>) -> Result<Self, String> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() != aead.keymat_len() {
            return Err(format!(
                "{} needs {} bytes of key material (key {} + salt 4), got {}",
                aead.name(),
                aead.keymat_len(),
                aead.key_len(),
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// The AES key.
    pub fn key(&self) -> &[u8] {
        &self.0[..self.0.len() - Aead::SALT_LEN]
    }

    /// The 4-byte salt (implicit part of the GCM nonce).
    pub fn salt(&self) -> [u8; 4] {
        let s = &self.0[self.0.len() - Aead::SALT_LEN..];
        [s[0], s[1], s[2], s[3]]
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial(<redacted>)")
    }
}

/// An address prefix such as `10.9.0.0/24` (a traffic selector, RFC 4301 §4.4.1.1, restricted
/// to prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// All IPv4 addresses.
    pub const ANY_V4: IpPrefix = IpPrefix {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        len: 0,
    };
    /// All IPv6 addresses.
    pub const ANY_V6: IpPrefix = IpPrefix {
        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        len: 0,
    };

    /// A prefix; host bits of `addr` are cleared. `len` beyond the family's width is an error.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("prefix length {len} exceeds {max}"));
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(len))),
        };
        Ok(Self { addr, len })
    }

    /// A single host (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for a zero-length prefix (matches its whole family).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address if this prefix is a single host.
    pub fn as_host(&self) -> Option<IpAddr> {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        (self.len == full).then_some(self.addr)
    }

    /// Whether `ip` lies inside the prefix (never across families).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => u32::from(a) & mask32(self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                u128::from(a) & mask128(self.len) == u128::from(net)
            }
            _ => false,
        }
    }

    /// Whether every address of `other` is inside this prefix.
    pub fn covers(&self, other: &IpPrefix) -> bool {
        self.len <= other.len && self.contains(other.addr)
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

impl FromStr for IpPrefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IP prefix"))?;
        match len {
            None => Ok(Self::host(addr)),
            Some(l) => {
                let len = l
                    .parse::<u8>()
                    .map_err(|_| format!("\"{s}\": bad prefix length"))?;
                Self::new(addr, len).map_err(|e| format!("\"{s}\": {e}"))
            }
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Traffic selectors of an SA (RFC 4301 §4.4.2): which inner addresses it carries. An empty
/// list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    /// Our side's addresses (inner source when sending).
    pub local: Vec<IpPrefix>,
    /// The peer's side (inner destination when sending).
    pub remote: Vec<IpPrefix>,
}

impl Selectors {
    /// Whether a packet from `src` to `dst` (as we send it) matches.
    #[inline]
    pub fn matches_outbound(&self, src: IpAddr, dst: IpAddr) -> bool {
        any_contains(&self.local, src) && any_contains(&self.remote, dst)
    }

    /// Whether a packet from `src` to `dst` (as we receive it) matches.
    #[inline]
    pub fn matches_inbound(&self, src: IpAddr, dst: IpAddr) -> bool {
        any_contains(&self.remote, src) && any_contains(&self.local, dst)
    }
}

fn any_contains(list: &[IpPrefix], ip: IpAddr) -> bool {
    list.is_empty() || list.iter().any(|p| p.contains(ip))
}

/// Soft and hard limits on one quantity (RFC 4301 §4.4.2.1). `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limit {
    /// Crossing it asks the control plane to rekey.
    pub soft: Option<u64>,
    /// Reaching it ends the SA: packets are dropped as `sa_expired`.
    pub hard: Option<u64>,
}

/// Byte and packet lifetimes of an SA. Time lifetimes are the control plane's (it has the clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Limit on protected payload bytes.
    pub bytes: Limit,
    /// Limit on packets.
    pub packets: Limit,
}

/// Original addresses for the transport-mode checksum fix-up (RFC 3948 §3.1.2): the addresses
/// the sender used when it computed the inner TCP/UDP checksum. `None` = as on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatOa {
    /// The peer's original address (NAT-OAi when the peer initiated).
    pub remote: Option<IpAddr>,
    /// Our address as the peer knew it.
    pub local: Option<IpAddr>,
}

/// Identifies the peer an SA belongs to: SAs of one peer share its (NAT-mapped) endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

/// Everything needed to install one SA in a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaParams {
    /// Security Parameter Index (RFC 4303 §2.1); 0..=255 are reserved.
    pub spi: u32,
    /// In or out.
    pub direction: Direction,
    /// Tunnel or transport.
    pub mode: Mode,
    /// AES-GCM variant.
    pub aead: Aead,
    /// Key ‖ salt.
    pub key: KeyMaterial,
    /// Our outer endpoint (source of what we send).
    pub local: SocketAddr,
    /// The peer's outer endpoint, or `None` to learn it from authenticated packets.
    pub remote: Option<SocketAddr>,
    /// The peer this SA belongs to.
    pub peer: PeerId,
    /// Extended sequence numbers (RFC 4304).
    pub esn: bool,
    /// Anti-replay window size in packets (inbound).
    pub replay_window: u32,
    /// Traffic selectors.
    pub selectors: Selectors,
    /// Transport-mode NAT original addresses.
    pub nat_oa: NatOa,
    /// Byte and packet lifetimes.
    pub lifetime: Lifetime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_match() {
        let p: IpPrefix = "10.9.0.77/24".parse().unwrap();
        assert_eq!(p.to_string(), "10.9.0.0/24");
        assert!(p.contains("10.9.0.1".parse().unwrap()));
        assert!(!p.contains("10.9.1.1".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        assert!(IpPrefix::ANY_V4.contains("1.2.3.4".parse().unwrap()));
        let h: IpPrefix = "fd00::1".parse().unwrap();
        assert_eq!(h.as_host(), Some("fd00::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpPrefix>().is_err());
        assert!("nonsense".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn key_material_checks_length_and_hides_itself() {
        assert!(KeyMaterial::new(Aead::Aes128Gcm16, vec![0; 19]).is_err());
        let k = KeyMaterial::new(Aead::Aes256Gcm16, (0..36).collect()).unwrap();
        assert_eq!(k.key().len(), 32);
        assert_eq!(k.salt(), [32, 33, 34, 35]);
        assert_eq!(format!("{k:?}"), "KeyMaterial(<redacted>)");
    }

    #[test]
    fn empty_selectors_match_everything() {
        let s = Selectors::default();
        assert!(s.matches_outbound("1.1.1.1".parse().unwrap(), "::1".parse().unwrap()));
    }
}
