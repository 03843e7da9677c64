//! Transport mode over UDP encapsulation (RFC 3948 §2.1, §3.1.2): the IP header stays, UDP ‖
//! ESP go between it and the upper-layer payload, and the receiver fixes the inner TCP/UDP
//! checksum.
//!
//! In transport mode the upper-layer checksum covers a pseudo-header with the sender's IP
//! addresses. Behind a NAT those are not the addresses the receiver sees, so after
//! decapsulation the receiver adjusts the checksum from the original addresses (NAT-OA) to the
//! ones in the delivered IP header — incrementally (RFC 1624), without touching the payload.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::sa::NatOa;
use crate::wire::frame::IpInfo;
use crate::wire::{checksum, ipv4, ipv6, udp};

use super::{LifetimeEvent, OutboundSa, next_header};

/// Receive side: `pkt` holds the outer IP header at `ip_header` and the decrypted upper-layer
/// payload at `payload`. Move the IP header up against the payload (dropping UDP ‖ ESP), give
/// it the ESP next header and the new length, then fix the upper-layer checksum from the
/// NAT original addresses to the addresses on the wire, `wire` = (source, destination).
pub fn decapsulate(
    pkt: &mut PacketBuf<'_>,
    ip_header: Range<usize>,
    payload: Range<usize>,
    protocol: u8,
    wire: (IpAddr, IpAddr),
    nat_oa: NatOa,
) {
    let hlen = ip_header.len();
    let start = payload.start - hlen;
    pkt.data_mut().copy_within(ip_header, start);
    pkt.pull_front(start);
    pkt.truncate(hlen + payload.len());
    let data = pkt.data_mut();
    set_ip_header(&mut data[..hlen], protocol, payload.len(), None);
    let original = (
        nat_oa.remote.unwrap_or(wire.0),
        nat_oa.local.unwrap_or(wire.1),
    );
    fix_checksum(&mut data[hlen..], protocol, original, wire);
}

/// Send side: `pkt` holds an IP packet described by `info`. Keep its IP header (ident, TTL,
/// flags, TOS), with the addresses set to our endpoint and the peer's, encrypt the upper-layer
/// payload, and insert UDP (`local` port → `dst` port, checksum 0 for IPv4 per RFC 3948 §2.1,
/// computed for IPv6) ‖ ESP.
pub fn encapsulate(
    sa: &mut OutboundSa,
    pkt: &mut PacketBuf<'_>,
    info: &IpInfo,
    local: SocketAddr,
    dst: SocketAddr,
) -> Result<Option<LifetimeEvent>, DropReason> {
    let hlen = info.header_len;
    let v4 = info.src.is_ipv4();
    if info.is_fragment || local.is_ipv4() != v4 || dst.is_ipv4() != v4 || hlen > 60 {
        return Err(DropReason::BadOutboundPacket);
    }
    let mut header = [0u8; 60];
    header[..hlen].copy_from_slice(&pkt.data()[..hlen]);
    pkt.pull_front(hlen);
    let event = sa.seal(pkt, info.protocol)?;
    let udp_len = pkt.len() + udp::HEADER_LEN;
    let out = pkt
        .push_front(hlen + udp::HEADER_LEN)
        .map_err(|_| DropReason::TooBig)?;
    out[..hlen].copy_from_slice(&header[..hlen]);
    set_ip_header(
        &mut out[..hlen],
        next_header::UDP,
        udp_len,
        Some((local.ip(), dst.ip())),
    );
    let repr = udp::Repr {
        src_port: local.port(),
        dst_port: dst.port(),
        payload_len: (udp_len - udp::HEADER_LEN) as u16,
    };
    repr.emit(&mut out[hlen..])
        .map_err(|_| DropReason::TooBig)?;
    if !v4 {
        udp::Datagram::new_unchecked(&mut pkt.data_mut()[hlen..])
            .fill_checksum(local.ip(), dst.ip());
    }
    Ok(event)
}

/// Set the protocol (next header), the length for `payload_len` bytes after the header and,
/// if given, the addresses of an IPv4 or IPv6 header (IPv4: checksum refreshed). The header
/// was validated when the packet was parsed.
fn set_ip_header(
    hdr: &mut [u8],
    protocol: u8,
    payload_len: usize,
    addrs: Option<(IpAddr, IpAddr)>,
) {
    let hlen = hdr.len();
    if hdr.first().is_some_and(|b| b >> 4 == 4) {
        let mut ip = ipv4::Packet::new_unchecked(hdr);
        ip.set_protocol(protocol);
        ip.set_total_len((hlen + payload_len) as u16);
        if let Some((IpAddr::V4(s), IpAddr::V4(d))) = addrs {
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
        }
        ip.fill_checksum();
    } else {
        let mut ip = ipv6::Packet::new_unchecked(hdr);
        ip.set_next_header(protocol);
        ip.set_payload_len(payload_len as u16);
        if let Some((IpAddr::V6(s), IpAddr::V6(d))) = addrs {
            ip.set_src_addr(&s);
            ip.set_dst_addr(&d);
        }
    }
}

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
