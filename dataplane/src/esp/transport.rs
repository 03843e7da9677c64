//! Transport mode over UDP encapsulation: the inner TCP/UDP checksum fix-up of RFC 3948
//! §3.1.2.
//!
//! In transport mode the upper-layer checksum covers a pseudo-header with the sender's IP
//! addresses. Behind a NAT those are not the addresses the receiver sees, so after
//! decapsulation the receiver adjusts the checksum from the original addresses (NAT-OA) to the
//! ones in the delivered IP header — incrementally (RFC 1624), without touching the payload.

use std::net::IpAddr;

use crate::wire::checksum;

use super::next_header;

/// Offset of the checksum inside a TCP header.
const TCP_CHECKSUM: usize = 16;
/// Offset of the checksum inside a UDP header.
const UDP_CHECKSUM: usize = 6;

/// Adjust the TCP or UDP checksum in `l4` (the upper-layer segment) whose pseudo-header changed
/// from `old` = (source, destination) to `new`. Other protocols, truncated segments, mixed
/// address families and IPv4 UDP without checksum (0, RFC 768) are left alone.
pub fn fix_checksum(l4: &mut [u8], protocol: u8, old: (IpAddr, IpAddr), new: (IpAddr, IpAddr)) {
    if old == new {
        return;
    }
    let at = match protocol {
        next_header::TCP => TCP_CHECKSUM,
        next_header::UDP => UDP_CHECKSUM,
        _ => return,
    };
    let Some(field) = l4.get_mut(at..at + 2) else {
        return;
    };
    let current = u16::from_be_bytes([field[0], field[1]]);
    let v4 = new.0.is_ipv4();
    if protocol == next_header::UDP && v4 && current == 0 {
        return;
    }
    let (mut o, mut n) = ([0u8; 32], [0u8; 32]);
    let (Some(ol), Some(nl)) = (addr_pair(old, &mut o), addr_pair(new, &mut n)) else {
        return;
    };
    if ol != nl {
        return;
    }
    let mut updated = checksum::update(current, &o[..ol], &n[..nl]);
    // A UDP checksum that computes to zero is sent as all ones (RFC 768).
    if protocol == next_header::UDP && updated == 0 {
        updated = 0xFFFF;
    }
    field.copy_from_slice(&updated.to_be_bytes());
}

/// Write source ‖ destination into `out`; `None` if the families differ.
fn addr_pair((src, dst): (IpAddr, IpAddr), out: &mut [u8; 32]) -> Option<usize> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out[..4].copy_from_slice(&s.octets());
            out[4..8].copy_from_slice(&d.octets());
            Some(8)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            out[..16].copy_from_slice(&s.octets());
            out[16..].copy_from_slice(&d.octets());
            Some(32)
        }
        _ => None,
    }
}
