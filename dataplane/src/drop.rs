//! Named reasons for every packet the dataplane refuses, and their counters.
//!
//! Hostile input is normal input: every parser and every ESP step returns one of these
//! instead of panicking, and the worker counts it. Names are stable (`snake_case`) because
//! they appear in `xdpsec stats`, JSON output and Prometheus metrics.

macro_rules! drop_reasons {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )+) => {
        /// Why a frame was dropped. Each variant has a stable `snake_case` name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl DropReason {
            /// Every reason, in declaration order (the order of [`DropCounters`]).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];

            /// Stable name used in stats output.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)+ }
            }
        }
    };
}

drop_reasons! {
    // --- link and network layer ---
    /// Frame shorter than an Ethernet header.
    TruncatedEthernet => "truncated_ethernet",
    /// Ethertype is neither IPv4 nor IPv6 (VLAN tags are not handled here).
    UnsupportedEthertype => "unsupported_ethertype",
    /// Shorter than the IP header it claims to carry.
    TruncatedIp => "truncated_ip",
    /// IP version nibble does not match the ethertype, or is neither 4 nor 6.
    BadIpVersion => "bad_ip_version",
    /// IPv4 IHL below 5 or beyond the packet.
    BadIpHeaderLength => "bad_ip_header_length",
    /// IP total/payload length disagrees with the frame.
    BadIpLength => "bad_ip_length",
    /// IPv4 header checksum is wrong.
    BadIpChecksum => "bad_ip_checksum",
    /// An IP fragment: reassembly belongs to the kernel, not to the fast path.
    IpFragment => "ip_fragment",
    /// IPv6 extension headers before UDP (not handled on the fast path).
    Ipv6ExtensionHeader => "ipv6_extension_header",
    /// Not UDP.
    NotUdp => "not_udp",
    /// Shorter than a UDP header, or UDP length disagrees with IP.
    BadUdpLength => "bad_udp_length",
    /// UDP destination port is not the NAT-T port.
    NotNattPort => "not_natt_port",
    // --- RFC 3948 §2 classification ---
    /// Zero-length UDP payload.
    EmptyPayload => "empty_payload",
    /// Payload shorter than an ESP header (and not a keepalive).
    TruncatedEsp => "truncated_esp",
    /// Starts with the non-ESP marker but holds no IKE header.
    TruncatedIke => "truncated_ike",
    /// SPI 1..=255: reserved by IANA (RFC 4303 §2.1).
    ReservedSpi => "reserved_spi",
    // --- ESP (RFC 4303) ---
    /// No inbound SA has this SPI.
    UnknownSpi => "unknown_spi",
    /// Sequence number already received (RFC 4303 §3.4.3).
    ReplayDuplicate => "replay_duplicate",
    /// Sequence number left of the replay window (RFC 4303 §3.4.3).
    ReplayTooOld => "replay_too_old",
    /// Integrity check failed (RFC 4303 §3.4.4): forged, corrupted or wrong key.
    AuthFailed => "auth_failed",
    /// Ciphertext length impossible for the SA's algorithm.
    BadCiphertextLength => "bad_ciphertext_length",
    /// Pad length exceeds the plaintext, or padding bytes are not 1, 2, 3, … (RFC 4303 §2.4).
    BadPadding => "bad_padding",
    /// Next-header 59 (dummy packet, RFC 4303 §2.6): discarded silently, but counted.
    DummyPacket => "dummy_packet",
    /// Next-header value the SA's mode cannot deliver.
    BadNextHeader => "bad_next_header",
    /// Decrypted inner packet is not a well-formed IP packet.
    BadInnerPacket => "bad_inner_packet",
    /// Decrypted inner packet is outside the SA's traffic selectors (RFC 4301 §5.2).
    SelectorMismatch => "selector_mismatch",
    /// The SA reached its hard lifetime (RFC 4301 §4.4.2.1).
    SaExpired => "sa_expired",
    // --- outbound ---
    /// No outbound SA's traffic selectors match the packet.
    NoOutboundSa => "no_outbound_sa",
    /// The outbound SA's peer endpoint is not known yet (`remote = "any"`, nothing received).
    PeerUnknown => "peer_unknown",
    /// The outbound sequence number would wrap: the SA must be rekeyed (RFC 4303 §3.3.3).
    SequenceExhausted => "sequence_exhausted",
    /// The encapsulated packet would not fit the buffer or the link MTU.
    TooBig => "too_big",
    /// Inner packet handed to the encapsulator is not IPv4 or IPv6.
    BadOutboundPacket => "bad_outbound_packet",
}

/// Per-reason counters, indexed by `DropReason as usize`. Plain integers: each worker owns
/// its own set and the stats path sums them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::ALL.len()]);

impl Default for DropCounters {
    fn default() -> Self {
        Self([0; DropReason::ALL.len()])
    }
}

impl DropCounters {
    /// Count one drop.
    #[inline]
    pub fn count(&mut self, reason: DropReason) {
        self.0[reason as usize] += 1;
    }

    /// How many frames were dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize]
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Non-zero counters with their names, in declaration order.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n != 0)
    }

    /// Add another set of counters into this one (for totals across workers).
    pub fn merge(&mut self, other: &DropCounters) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| {
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
    }

    #[test]
    fn counters_count_and_merge() {
        let mut a = DropCounters::default();
        a.count(DropReason::AuthFailed);
        a.count(DropReason::AuthFailed);
        let mut b = DropCounters::default();
        b.count(DropReason::UnknownSpi);
        a.merge(&b);
        assert_eq!(a.get(DropReason::AuthFailed), 2);
        assert_eq!(a.total(), 3);
        assert_eq!(a.nonzero().count(), 2);
    }
}
