//! ESP (RFC 4303) with AES-GCM-16 (RFC 4106): the per-SA state machines.
//!
//! Packet format on the wire (RFC 4303 §2, RFC 4106 §3):
//!
//! ```text
//! | SPI (4) | Sequence Number (4) | IV (8) | ciphertext: payload | padding | pad len | next hdr | ICV (16) |
//! ```
//!
//! The functions here work on the ESP bytes only; outer headers (IP, UDP) and the choice of
//! tunnel or transport post-processing belong to [`crate::batch`].
//!
//! Keys are expanded once per SA ([`cipher::GcmKey`]); each packet costs one one-shot AEAD call.

pub mod cipher;
pub mod inbound;
pub mod outbound;
pub mod transport;

pub use inbound::InboundSa;
pub use outbound::OutboundSa;

/// SPI + sequence number.
pub const HEADER_LEN: usize = 8;
/// Explicit IV of AES-GCM (RFC 4106 §3.1).
pub const IV_LEN: usize = 8;
/// ICV of AES-GCM-16.
pub const ICV_LEN: usize = 16;
/// Pad length + next header.
pub const TRAILER_LEN: usize = 2;
/// Smallest valid ESP packet: header, IV, the two trailer bytes and the ICV.
pub const MIN_LEN: usize = HEADER_LEN + IV_LEN + TRAILER_LEN + ICV_LEN;
/// Largest growth of a packet by ESP: header, IV, ≤ 3 padding bytes, trailer, ICV.
pub const MAX_OVERHEAD: usize = HEADER_LEN + IV_LEN + 3 + TRAILER_LEN + ICV_LEN;

/// IP protocol numbers used as ESP "next header" values (IANA).
pub mod next_header {
    /// IPv4 inside (tunnel mode).
    pub const IPV4: u8 = 4;
    /// IPv6 inside (tunnel mode).
    pub const IPV6: u8 = 41;
    /// Dummy packet: discard (RFC 4303 §2.6).
    pub const NO_NEXT: u8 = 59;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// Per-SA counters, readable by the stats path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaCounters {
    /// Packets protected (out) or accepted (in).
    pub packets: u64,
    /// Bytes of ESP payload (inner packet or upper-layer payload) protected or accepted.
    pub bytes: u64,
    /// Inbound packets refused by the replay window.
    pub replay_drops: u64,
    /// Inbound packets whose ICV did not verify.
    pub auth_failures: u64,
}

/// Something a worker reports to the control plane; rare, never per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifetimeEvent {
    /// The soft limit was crossed: rekey now (RFC 4301 §4.4.2.1).
    Soft,
    /// The hard limit was reached: the SA is dead.
    Hard,
}

/// The additional authenticated data: SPI ‖ seq, or SPI ‖ seq-hi ‖ seq-lo with ESN
/// (RFC 4106 §5). Returns the buffer and the used length.
#[inline]
pub(crate) fn aad(spi: u32, seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut a = [0u8; 12];
    a[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        a[4..12].copy_from_slice(&seq.to_be_bytes());
        (a, 12)
    } else {
        // Without ESN the sequence number is 32 bits; seq < 2^32 is guaranteed by the SA.
        a[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        (a, 8)
    }
}

/// Padding so that payload + padding + trailer ends on a 4-byte boundary (RFC 4303 §2.4;
/// AES-GCM needs no more, RFC 4106 §3.2).
#[inline]
pub const fn pad_len(payload_len: usize) -> usize {
    (4 - (payload_len + TRAILER_LEN) % 4) % 4
}

/// Lifetime accounting shared by both directions: add one packet of `bytes`, and say whether
/// a limit was crossed by this packet.
#[inline]
pub(crate) fn account(
    counters: &mut SaCounters,
    lifetime: &crate::sa::Lifetime,
    bytes: usize,
) -> Option<LifetimeEvent> {
    let before = *counters;
    counters.packets += 1;
    counters.bytes += bytes as u64;
    let crossed =
        |limit: Option<u64>, old: u64, new: u64| limit.is_some_and(|l| old < l && new >= l);
    if crossed(lifetime.packets.hard, before.packets, counters.packets)
        || crossed(lifetime.bytes.hard, before.bytes, counters.bytes)
    {
        Some(LifetimeEvent::Hard)
    } else if crossed(lifetime.packets.soft, before.packets, counters.packets)
        || crossed(lifetime.bytes.soft, before.bytes, counters.bytes)
    {
        Some(LifetimeEvent::Soft)
    } else {
        None
    }
}

/// Whether the hard lifetime is already used up.
#[inline]
pub(crate) fn expired(counters: &SaCounters, lifetime: &crate::sa::Lifetime) -> bool {
    lifetime.packets.hard.is_some_and(|l| counters.packets >= l)
        || lifetime.bytes.hard.is_some_and(|l| counters.bytes >= l)
}

#[cfg(test)]
pub(crate) mod tests;
