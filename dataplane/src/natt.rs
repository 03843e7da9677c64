//! RFC 3948 §2 classification of the payload of a UDP datagram received on the NAT-T port.
//!
//! Port 4500 carries three things, told apart by their first bytes:
//! - **NAT-keepalive** (RFC 3948 §2.3): a single octet `0xFF`;
//! - **IKE** (RFC 3948 §2.2): a 4-byte non-ESP marker of zeros, then an IKE header
//!   (RFC 7296 §3.1, 28 bytes);
//! - **ESP** (RFC 3948 §2.1): the ESP header (RFC 4303 §2) directly: SPI, sequence number.
//!   An SPI is never zero on the wire (RFC 4303 §2.1), which is what makes the marker
//!   unambiguous.

use crate::buf::{NoRoom, PacketBuf};
use crate::drop::DropReason;

/// UDP port of NAT-T: IKE after the float, and ESP-in-UDP (RFC 3948 §1, RFC 7296 §2.23).
pub const NATT_PORT: u16 = 4500;
/// UDP port of IKE before NAT detection (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;
/// The non-ESP marker prepended to IKE messages on port 4500 (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The single octet of a NAT-keepalive packet (RFC 3948 §2.3).
pub const KEEPALIVE: u8 = 0xFF;
/// Length of the IKE header (RFC 7296 §3.1).
pub const IKE_HEADER_LEN: usize = 28;
/// Length of the ESP header: SPI and sequence number (RFC 4303 §2).
pub const ESP_HEADER_LEN: usize = 8;

/// What a UDP/4500 payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An IKE message behind the non-ESP marker: hand [`ike_message`] to the control plane.
    Ike,
    /// A NAT-keepalive: count it and drop it (RFC 3948 §2.3, "the receiver SHOULD ignore").
    Keepalive,
    /// An ESP packet with this SPI and (low 32 bits of the) sequence number.
    Esp {
        /// Security Parameters Index (RFC 4303 §2.1), ≥ 256.
        spi: u32,
        /// Sequence number field (RFC 4303 §2.2).
        seq: u32,
    },
}

/// Classify a UDP/4500 payload (RFC 3948 §2). Rules, in order:
/// - empty → [`DropReason::EmptyPayload`];
/// - exactly one byte: `0xFF` → [`Class::Keepalive`] (RFC 3948 §2.3), anything else →
///   [`DropReason::TruncatedEsp`];
/// - first four bytes zero (the non-ESP marker, RFC 3948 §2.2) → [`Class::Ike`] when an IKE
///   header (RFC 7296 §3.1) follows (≥ 4 + 28 bytes), else [`DropReason::TruncatedIke`];
/// - otherwise ESP (RFC 3948 §2.1): fewer than 8 bytes → [`DropReason::TruncatedEsp`];
///   SPI 1..=255, reserved by IANA (RFC 4303 §2.1) → [`DropReason::ReservedSpi`];
///   else [`Class::Esp`].
#[inline]
pub fn classify(payload: &[u8]) -> Result<Class, DropReason> {
    match payload {
        [] => Err(DropReason::EmptyPayload),
        [KEEPALIVE] => Ok(Class::Keepalive),
        [_] => Err(DropReason::TruncatedEsp),
        [0, 0, 0, 0, rest @ ..] => {
            if rest.len() >= IKE_HEADER_LEN {
                Ok(Class::Ike)
            } else {
                Err(DropReason::TruncatedIke)
            }
        }
        [s0, s1, s2, s3, q0, q1, q2, q3, ..] => {
            let spi = u32::from_be_bytes([*s0, *s1, *s2, *s3]);
            if spi <= 255 {
                // SPI 0 is the non-ESP marker, matched above.
                return Err(DropReason::ReservedSpi);
            }
            Ok(Class::Esp {
                spi,
                seq: u32::from_be_bytes([*q0, *q1, *q2, *q3]),
            })
        }
        _ => Err(DropReason::TruncatedEsp),
    }
}

/// The IKE message behind the non-ESP marker (RFC 3948 §2.2).
///
/// Precondition: [`classify`] returned [`Class::Ike`] for `payload`. Otherwise the first four
/// bytes are dropped all the same (an empty slice if there are fewer); this never panics.
#[inline]
pub fn ike_message(payload: &[u8]) -> &[u8] {
    payload.get(NON_ESP_MARKER.len()..).unwrap_or(&[])
}

/// Prepend the non-ESP marker to an IKE message about to be sent on port 4500
/// (RFC 3948 §2.2, RFC 7296 §2.23).
#[inline]
pub fn push_non_esp_marker(pkt: &mut PacketBuf<'_>) -> Result<(), NoRoom> {
    pkt.push_front(NON_ESP_MARKER.len())?
        .copy_from_slice(&NON_ESP_MARKER);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ike(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; 4];
        v.extend((0..len).map(|i| i as u8 | 1));
        v
    }

    #[test]
    fn keepalive() {
        assert_eq!(classify(&[0xFF]), Ok(Class::Keepalive));
        assert_eq!(classify(&[0x00]), Err(DropReason::TruncatedEsp));
        assert_eq!(classify(&[0xFE]), Err(DropReason::TruncatedEsp));
        // 0xFF followed by more is an ESP packet attempt, not a keepalive.
        assert_eq!(classify(&[0xFF, 0xFF]), Err(DropReason::TruncatedEsp));
    }

    #[test]
    fn empty() {
        assert_eq!(classify(&[]), Err(DropReason::EmptyPayload));
    }

    #[test]
    fn ike_marker() {
        assert_eq!(classify(&ike(28)), Ok(Class::Ike));
        assert_eq!(classify(&ike(500)), Ok(Class::Ike));
        assert_eq!(classify(&ike(27)), Err(DropReason::TruncatedIke));
        assert_eq!(classify(&ike(0)), Err(DropReason::TruncatedIke));
        assert_eq!(
            classify(&[0, 0, 0, 0, 0, 0, 0, 1]),
            Err(DropReason::TruncatedIke)
        );
        // Fewer than four zero bytes cannot be a marker: too short for ESP.
        assert_eq!(classify(&[0, 0, 0]), Err(DropReason::TruncatedEsp));
        assert_eq!(classify(&[0, 0]), Err(DropReason::TruncatedEsp));
        let m = ike(30);
        assert_eq!(ike_message(&m), &m[4..]);
        assert_eq!(ike_message(&m).len(), 30);
        assert!(ike_message(&[0, 0]).is_empty());
    }

    #[test]
    fn esp() {
        let p = [0x00, 0x00, 0x01, 0x00, 0, 0, 0, 7, 0xAA];
        assert_eq!(classify(&p), Ok(Class::Esp { spi: 256, seq: 7 }));
        let p = [0xC0, 0xFF, 0xEE, 0x01, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            classify(&p),
            Ok(Class::Esp {
                spi: 0xC0FF_EE01,
                seq: u32::MAX
            })
        );
        assert_eq!(classify(&p[..7]), Err(DropReason::TruncatedEsp));
        assert_eq!(classify(&p[..4]), Err(DropReason::TruncatedEsp));
        assert_eq!(classify(&p[..2]), Err(DropReason::TruncatedEsp));
        for spi in [1u32, 2, 255] {
            let mut p = spi.to_be_bytes().to_vec();
            p.extend_from_slice(&[0, 0, 0, 1, 9, 9]);
            assert_eq!(classify(&p), Err(DropReason::ReservedSpi), "spi {spi}");
        }
    }

    #[test]
    fn marker_push() {
        let mut mem = [9u8; 12];
        let mut pkt = PacketBuf::new(&mut mem, 4, 8);
        push_non_esp_marker(&mut pkt).unwrap();
        assert_eq!(&pkt.data()[..4], &NON_ESP_MARKER);
        assert_eq!(pkt.len(), 12);
        assert_eq!(push_non_esp_marker(&mut pkt), Err(NoRoom));
    }

    proptest! {
        #[test]
        fn classify_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            match classify(&data) {
                Ok(Class::Esp { spi, .. }) => prop_assert!(spi > 255 && data.len() >= 8),
                Ok(Class::Ike) => prop_assert!(data.len() >= 32 && data[..4] == [0; 4]),
                Ok(Class::Keepalive) => prop_assert_eq!(&data[..], &[0xFF][..]),
                Err(_) => {}
            }
            let _ = ike_message(&data);
        }
    }
}
