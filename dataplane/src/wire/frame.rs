//! Whole-frame helpers for the batch pipeline: parse a received Ethernet/IP/UDP frame in one
//! call, and prepend outer UDP/IP and Ethernet headers in place.

use std::net::{IpAddr, SocketAddr};

use crate::buf::{NoRoom, PacketBuf};
use crate::drop::DropReason;

use super::ethernet::{self, EtherType, MacAddr};
use super::{EmitError, IpProtocol, ipv4, ipv6, udp};

/// How a received buffer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// An Ethernet II header, then IP (AF_XDP frames).
    Ethernet,
    /// Directly an IP header (TUN devices, UDP sockets' reconstructed frames).
    Ip,
}

/// Where the parts of a UDP-in-IP frame are, as offsets into the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrame {
    /// Offset of the IP header: 14 for [`Link::Ethernet`], 0 for [`Link::Ip`].
    pub ip_offset: usize,
    /// Offset of the UDP header.
    pub udp_offset: usize,
    /// Offset of the UDP payload.
    pub payload_offset: usize,
    /// UDP payload length (from the UDP length field; padding excluded).
    pub payload_len: usize,
    /// Outer source address and port.
    pub src: SocketAddr,
    /// Outer destination address and port.
    pub dst: SocketAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 DSCP/ECN or IPv6 traffic class.
    pub tos: u8,
}

impl UdpFrame {
    /// The UDP payload's byte range inside the frame.
    #[inline]
    pub fn payload_range(&self) -> core::ops::Range<usize> {
        self.payload_offset..self.payload_offset + self.payload_len
    }
}

/// Version-independent facts about an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 protocol, or the IPv6 fixed header's next header (extension headers not walked).
    pub protocol: u8,
    /// IPv4 header length with options; 40 for IPv6.
    pub header_len: usize,
    /// IPv4 total length, or 40 + IPv6 payload length (padding excluded).
    pub total_len: usize,
    /// IPv4 MF or non-zero offset. Always false for IPv6 (a Fragment header shows as
    /// `protocol == 44`).
    pub is_fragment: bool,
}

/// Where the parts of a UDP-in-IP frame are, as offsets into the frame: what
/// [`locate_udp`] validates. No address is built — the pipeline's per-packet path reads the
/// endpoints only when it needs them ([`udp_source`], [`udp_destination`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpLayout {
    /// Offset of the IP header: 14 for [`Link::Ethernet`], 0 for [`Link::Ip`].
    pub ip_offset: usize,
    /// Offset of the UDP header.
    pub udp_offset: usize,
    /// Offset of the UDP payload.
    pub payload_offset: usize,
    /// UDP payload length (from the UDP length field; padding excluded).
    pub payload_len: usize,
}

/// Source address and port of a datagram whose IPv4/IPv6 header is at `ip_offset` and UDP
/// header at `udp_offset` of `frame` (as [`locate_udp`] found them); `None` if `frame` is too
/// short or the IP version is neither 4 nor 6.
#[inline]
pub fn udp_source(frame: &[u8], ip_offset: usize, udp_offset: usize) -> Option<SocketAddr> {
    endpoint(frame, ip_offset, (12..16, 8..24), udp_offset)
}

/// Destination address and port of a datagram, as [`udp_source`].
#[inline]
pub fn udp_destination(frame: &[u8], ip_offset: usize, udp_offset: usize) -> Option<SocketAddr> {
    endpoint(frame, ip_offset, (16..20, 24..40), udp_offset + 2)
}

/// The address at `v4` or `v6` (by version) of the IP header at `ip`, and the port at `port`.
#[inline]
fn endpoint(
    frame: &[u8],
    ip: usize,
    (v4, v6): (core::ops::Range<usize>, core::ops::Range<usize>),
    port: usize,
) -> Option<SocketAddr> {
    let header = frame.get(ip..)?;
    let addr: IpAddr = match header.first()? >> 4 {
        4 => <[u8; 4]>::try_from(header.get(v4)?).ok()?.into(),
        6 => <[u8; 16]>::try_from(header.get(v6)?).ok()?.into(),
        _ => return None,
    };
    let port = <[u8; 2]>::try_from(frame.get(port..port + 2)?).ok()?;
    Some(SocketAddr::new(addr, u16::from_be_bytes(port)))
}

/// The facts of a checked IP header that the fast path needs; addresses, TTL and TOS are
/// read from the packet only by the callers that use them.
#[derive(Debug, Clone, Copy)]
struct IpHeader {
    header_len: usize,
    total_len: usize,
    protocol: u8,
    is_fragment: bool,
    v6: bool,
}

/// Validate an IPv4 or IPv6 header. `expect` is the version the link layer announced, if any.
#[inline(always)]
fn ip_header(packet: &[u8], expect: Option<u8>, verify: Checksum) -> Result<IpHeader, DropReason> {
    let Some(&first) = packet.first() else {
        return Err(DropReason::TruncatedIp);
    };
    match expect.unwrap_or(first >> 4) {
        4 => {
            let p = ipv4::Packet::new_checked(packet)?;
            // RFC 791 §3.1 / RFC 1122 §3.2.1.2: a datagram with a bad header checksum is
            // silently discarded.
            if verify == Checksum::Verify && !p.verify_checksum() {
                return Err(DropReason::BadIpChecksum);
            }
            Ok(IpHeader {
                header_len: p.header_len(),
                total_len: usize::from(p.total_len()),
                protocol: p.protocol(),
                is_fragment: p.is_fragment(),
                v6: false,
            })
        }
        6 => {
            let p = ipv6::Packet::new_checked(packet)?;
            Ok(IpHeader {
                header_len: ipv6::HEADER_LEN,
                total_len: ipv6::HEADER_LEN + usize::from(p.payload_len()),
                protocol: p.next_header(),
                is_fragment: false,
                v6: true,
            })
        }
        _ => Err(DropReason::BadIpVersion),
    }
}

/// Source and destination of a header [`ip_header`] checked.
#[inline]
fn ip_addresses(packet: &[u8], v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        let p = ipv6::Packet::new_unchecked(packet);
        (p.src_addr().into(), p.dst_addr().into())
    } else {
        let p = ipv4::Packet::new_unchecked(packet);
        (p.src_addr().into(), p.dst_addr().into())
    }
}

/// Which UDP port marks NAT-T traffic (RFC 3948 §2: ESP-in-UDP and IKE share port 4500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMatch {
    /// Sent to this port: what a gateway receives.
    Destination(u16),
    /// Sent to or from this port: any packet of a capture, whichever side it was taken on
    /// (the far side of a NAT uses an arbitrary port).
    Either(u16),
}

impl PortMatch {
    /// Whether a datagram from port `src` to port `dst` matches.
    #[inline]
    pub fn matches(self, src: u16, dst: u16) -> bool {
        match self {
            PortMatch::Destination(p) => dst == p,
            PortMatch::Either(p) => dst == p || src == p,
        }
    }
}

impl From<u16> for PortMatch {
    fn from(port: u16) -> Self {
        PortMatch::Destination(port)
    }
}

/// Parse Ethernet (if `link == Ethernet`) → IPv4/IPv6 → UDP and check the UDP port against
/// `port` (a plain `u16` means the destination port); return the offsets (and, read from the
/// checked headers, the endpoints, TTL and TOS). [`locate_udp`] does the same checks and
/// returns only the offsets.
///
/// Errors, in the order checked: [`DropReason::TruncatedEthernet`],
/// [`DropReason::UnsupportedEthertype`] (neither IPv4 nor IPv6, VLAN tags included),
/// [`DropReason::TruncatedIp`], [`DropReason::BadIpVersion`] (also when the version nibble
/// disagrees with the ethertype), [`DropReason::BadIpHeaderLength`],
/// [`DropReason::BadIpLength`], [`DropReason::BadIpChecksum`] (the IPv4 header checksum is
/// verified), [`DropReason::IpFragment`] (any IPv4 fragment: RFC 3948 leaves reassembly to the
/// IP stack, so fragments go to the kernel), [`DropReason::Ipv6ExtensionHeader`] (an IPv6 next
/// header that is an extension header, see [`ipv6::is_extension_header`]; this includes the
/// Fragment header 44), [`DropReason::NotUdp`], [`DropReason::BadUdpLength`],
/// [`DropReason::NotNattPort`].
///
/// The **UDP checksum is not verified**: RFC 3948 §2.1 says it SHOULD be sent as zero for
/// IPv4 and that receivers MUST NOT depend on it; on veth, TX checksum offload leaves it
/// partial (see NOTES.md); and the ESP ICV (RFC 4303 §3.4.4) or the IKE integrity check
/// protects the whole payload far more strongly than a 16-bit sum would.
#[inline]
pub fn parse_udp(
    frame: &[u8],
    link: Link,
    port: impl Into<PortMatch>,
) -> Result<UdpFrame, DropReason> {
    let l = locate_udp(frame, link, port)?;
    // In range: locate_udp validated both headers inside `frame`.
    let ip = frame.get(l.ip_offset..).unwrap_or(&[]);
    let v6 = ip.first().is_some_and(|b| b >> 4 == 6);
    let (src, dst) = ip_addresses(ip, v6);
    let (ttl, tos) = if v6 {
        let p = ipv6::Packet::new_unchecked(ip);
        (p.hop_limit(), p.traffic_class())
    } else {
        let p = ipv4::Packet::new_unchecked(ip);
        (p.ttl(), p.dscp_ecn())
    };
    let udp = udp::Datagram::new_unchecked(frame.get(l.udp_offset..).unwrap_or(&[]));
    Ok(UdpFrame {
        ip_offset: l.ip_offset,
        udp_offset: l.udp_offset,
        payload_offset: l.payload_offset,
        payload_len: l.payload_len,
        src: SocketAddr::new(src, udp.src_port()),
        dst: SocketAddr::new(dst, udp.dst_port()),
        ttl,
        tos,
    })
}

/// [`parse_udp`]'s checks (same errors, same order), returning only where the parts are:
/// the pipeline's per-packet path, which builds no address unless it needs one.
#[inline]
pub fn locate_udp(
    frame: &[u8],
    link: Link,
    port: impl Into<PortMatch>,
) -> Result<UdpLayout, DropReason> {
    let (ip_offset, expect) = match link {
        Link::Ethernet => {
            let eth = ethernet::Frame::new_checked(frame)?;
            let v = match eth.ethertype() {
                EtherType::IPV4 => 4,
                EtherType::IPV6 => 6,
                _ => return Err(DropReason::UnsupportedEthertype),
            };
            (ethernet::HEADER_LEN, Some(v))
        }
        Link::Ip => (0, None),
    };
    let packet = frame.get(ip_offset..).ok_or(DropReason::TruncatedIp)?;
    let ip = ip_header(packet, expect, Checksum::Verify)?;
    if ip.is_fragment {
        return Err(DropReason::IpFragment);
    }
    if ip.protocol != IpProtocol::UDP {
        if ip.v6 && ipv6::is_extension_header(ip.protocol) {
            return Err(DropReason::Ipv6ExtensionHeader);
        }
        return Err(DropReason::NotUdp);
    }
    // In range: the IP header checks guarantee header_len <= total_len <= packet.len().
    let payload = packet.get(ip.header_len..ip.total_len).unwrap_or(&[]);
    let dg = udp::Datagram::new_checked(payload)?;
    if !port.into().matches(dg.src_port(), dg.dst_port()) {
        return Err(DropReason::NotNattPort);
    }
    let udp_offset = ip_offset + ip.header_len;
    Ok(UdpLayout {
        ip_offset,
        udp_offset,
        payload_offset: udp_offset + udp::HEADER_LEN,
        payload_len: usize::from(dg.len()) - udp::HEADER_LEN,
    })
}

/// Whether to verify the IPv4 header checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checksum {
    Verify,
    Skip,
}

/// Parse an IP packet with no link header, as found on a TUN device or inside a tunnel.
///
/// The version comes from the first nibble. Errors: [`DropReason::TruncatedIp`],
/// [`DropReason::BadIpVersion`], [`DropReason::BadIpHeaderLength`],
/// [`DropReason::BadIpLength`]. Fragments are reported in [`IpInfo::is_fragment`], not
/// refused. For IPv6, `protocol` is the fixed header's next header and `header_len` is 40.
///
/// The IPv4 **header checksum is not verified** here: these packets are either inner packets
/// whose every byte the ESP ICV just authenticated, or packets our own kernel wrote into the
/// TUN; the receiving stack verifies it again on delivery. (Outer headers, which the ICV does
/// not cover and whose addresses teach the NAT mapping, are verified by [`parse_udp`].)
#[inline]
pub fn parse_ip(packet: &[u8]) -> Result<IpInfo, DropReason> {
    let ip = ip_header(packet, None, Checksum::Skip)?;
    let (src, dst) = ip_addresses(packet, ip.v6);
    Ok(IpInfo {
        src,
        dst,
        protocol: ip.protocol,
        header_len: ip.header_len,
        total_len: ip.total_len,
        is_fragment: ip.is_fragment,
    })
}

/// Prepend a UDP header and an IPv4 or IPv6 header, chosen by the family of `src`/`dst`, in
/// front of the packet's current data (the UDP payload, e.g. an ESP packet).
///
/// - IPv4: 20-byte header, identification 0, DF set, TTL `ttl`, DSCP/ECN `tos`, header
///   checksum filled; **UDP checksum 0** (RFC 3948 §2.1: it SHOULD be transmitted as zero).
/// - IPv6: 40-byte header, hop limit `ttl`, traffic class `tos`, flow label 0; **UDP
///   checksum computed** (mandatory for IPv6, RFC 8200 §8.1).
///
/// Errors (the packet is left unchanged): [`EmitError::FamilyMismatch`] when `src` and
/// `dst` are of different families, [`EmitError::TooLong`] when the UDP or IP length would
/// exceed 65535, [`EmitError::NoRoom`] when the headroom is too small (28 bytes for IPv4,
/// 48 for IPv6). `DropReason::from(err)` gives the drop reason for the batch pipeline.
#[inline]
pub fn push_udp_ip(
    pkt: &mut PacketBuf<'_>,
    src: SocketAddr,
    dst: SocketAddr,
    ttl: u8,
    tos: u8,
) -> Result<(), EmitError> {
    let payload_len = u16::try_from(pkt.len()).map_err(|_| EmitError::TooLong)?;
    let udp_len = payload_len
        .checked_add(udp::HEADER_LEN as u16)
        .ok_or(EmitError::TooLong)?;
    let udp_repr = udp::Repr {
        src_port: src.port(),
        dst_port: dst.port(),
        payload_len,
    };
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            udp_len
                .checked_add(ipv4::HEADER_LEN as u16)
                .ok_or(EmitError::TooLong)?;
            let hdr = pkt.push_front(ipv4::HEADER_LEN + udp::HEADER_LEN)?;
            let (ip_hdr, udp_hdr) = hdr.split_at_mut(ipv4::HEADER_LEN);
            ipv4::Repr {
                src: s,
                dst: d,
                protocol: IpProtocol::UDP,
                payload_len: udp_len,
                ttl,
                dscp_ecn: tos,
            }
            .emit(ip_hdr)?;
            udp_repr.emit(udp_hdr)?;
            Ok(())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let hdr = pkt.push_front(ipv6::HEADER_LEN + udp::HEADER_LEN)?;
            let (ip_hdr, udp_hdr) = hdr.split_at_mut(ipv6::HEADER_LEN);
            ipv6::Repr {
                src: s,
                dst: d,
                next_header: IpProtocol::UDP,
                payload_len: udp_len,
                hop_limit: ttl,
                traffic_class: tos,
            }
            .emit(ip_hdr)?;
            udp_repr.emit(udp_hdr)?;
            if let Some(datagram) = pkt.data_mut().get_mut(ipv6::HEADER_LEN..) {
                udp::Datagram::new_unchecked(datagram).fill_checksum(src.ip(), dst.ip());
            }
            Ok(())
        }
        _ => Err(EmitError::FamilyMismatch),
    }
}

/// Prepend an Ethernet header. The ethertype comes from the IP version nibble of the current
/// first byte: 6 → [`EtherType::IPV6`], anything else (including an empty packet) →
/// [`EtherType::IPV4`]; call after [`push_udp_ip`], or use [`push_ethernet_type`].
#[inline]
pub fn push_ethernet(pkt: &mut PacketBuf<'_>, src: MacAddr, dst: MacAddr) -> Result<(), NoRoom> {
    let ethertype = match pkt.data().first().map(|b| b >> 4) {
        Some(6) => EtherType::IPV6,
        _ => EtherType::IPV4,
    };
    push_ethernet_type(pkt, src, dst, ethertype)
}

/// Prepend an Ethernet header with an explicit ethertype.
#[inline]
pub fn push_ethernet_type(
    pkt: &mut PacketBuf<'_>,
    src: MacAddr,
    dst: MacAddr,
    ethertype: u16,
) -> Result<(), NoRoom> {
    let hdr = pkt.push_front(ethernet::HEADER_LEN)?;
    ethernet::Repr {
        src,
        dst,
        ethertype,
    }
    .emit(hdr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HEADROOM;
    use crate::wire::checksum;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

    fn v4_pair() -> (SocketAddr, SocketAddr) {
        (
            SocketAddr::new(Ipv4Addr::new(192, 0, 2, 2).into(), 31337),
            SocketAddr::new(Ipv4Addr::new(192, 0, 2, 1).into(), 4500),
        )
    }

    fn v6_pair() -> (SocketAddr, SocketAddr) {
        (
            SocketAddr::new("2001:db8::2".parse::<Ipv6Addr>().unwrap().into(), 4500),
            SocketAddr::new("2001:db8::1".parse::<Ipv6Addr>().unwrap().into(), 4500),
        )
    }

    /// Build a frame around `payload` with the crate's own emitters.
    fn build(payload: &[u8], src: SocketAddr, dst: SocketAddr, link: Link) -> Vec<u8> {
        let mut mem = vec![0u8; HEADROOM + payload.len()];
        mem[HEADROOM..].copy_from_slice(payload);
        let mut pkt = PacketBuf::new(&mut mem, HEADROOM, payload.len());
        push_udp_ip(&mut pkt, src, dst, 64, 0x28).unwrap();
        if link == Link::Ethernet {
            push_ethernet(&mut pkt, MAC_A, MAC_B).unwrap();
        }
        pkt.data().to_vec()
    }

    #[test]
    fn round_trip_v4_ethernet() {
        let (s, d) = v4_pair();
        let payload = [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 0xAA];
        let f = build(&payload, s, d, Link::Ethernet);
        assert_eq!(f.len(), 14 + 20 + 8 + payload.len());
        let eth = ethernet::Frame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::IPV4);
        assert_eq!((eth.src_addr(), eth.dst_addr()), (MAC_A, MAC_B));
        let u = parse_udp(&f, Link::Ethernet, 4500).unwrap();
        assert_eq!(
            u,
            UdpFrame {
                ip_offset: 14,
                udp_offset: 34,
                payload_offset: 42,
                payload_len: payload.len(),
                src: s,
                dst: d,
                ttl: 64,
                tos: 0x28,
            }
        );
        assert_eq!(&f[u.payload_range()], &payload);
        // RFC 3948 §2.1: UDP checksum zero on IPv4; IPv4 header: atomic, DF.
        let ip = ipv4::Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.dont_frag() && ip.verify_checksum());
        assert_eq!(
            udp::Datagram::new_checked(ip.payload()).unwrap().checksum(),
            0
        );
    }

    #[test]
    fn round_trip_v6_both_links() {
        let (s, d) = v6_pair();
        let payload: Vec<u8> = (0..=200u8).collect();
        for link in [Link::Ethernet, Link::Ip] {
            let f = build(&payload, s, d, link);
            let u = parse_udp(&f, link, 4500).unwrap();
            let off = if link == Link::Ethernet { 14 } else { 0 };
            assert_eq!(u.ip_offset, off);
            assert_eq!(u.udp_offset, off + 40);
            assert_eq!((u.src, u.dst, u.ttl, u.tos), (s, d, 64, 0x28));
            assert_eq!(&f[u.payload_range()], &payload[..]);
        }
        let f = build(&payload, s, d, Link::Ethernet);
        assert_eq!(
            ethernet::Frame::new_checked(&f[..]).unwrap().ethertype(),
            EtherType::IPV6
        );
    }

    /// Independent IPv6 UDP checksum: explicit pseudo-header bytes (RFC 8200 §8.1) and a
    /// textbook 16-bit loop.
    #[test]
    fn v6_udp_checksum_is_correct() {
        let (s, d) = v6_pair();
        for n in [0usize, 1, 2, 3, 17, 1400, 1401] {
            let payload: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let f = build(&payload, s, d, Link::Ip);
            let udp_bytes = &f[40..];
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&f[8..40]); // src, dst
            pseudo.extend_from_slice(&(udp_bytes.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
            let mut all = pseudo.clone();
            all.extend_from_slice(udp_bytes);
            all[pseudo.len() + 6] = 0;
            all[pseudo.len() + 7] = 0;
            let mut acc: u64 = 0;
            for w in all.chunks(2) {
                acc += (u64::from(w[0]) << 8) | u64::from(*w.get(1).unwrap_or(&0));
            }
            while acc > 0xFFFF {
                acc = (acc & 0xFFFF) + (acc >> 16);
            }
            let mut expect = !(acc as u16);
            if expect == 0 {
                expect = 0xFFFF;
            }
            let got = u16::from_be_bytes([udp_bytes[6], udp_bytes[7]]);
            assert_eq!(got, expect, "payload len {n}");
            let dg = udp::Datagram::new_checked(udp_bytes).unwrap();
            assert!(dg.verify_checksum(s.ip(), d.ip()));
        }
    }

    #[test]
    fn push_errors_leave_packet_unchanged() {
        let (s4, d4) = v4_pair();
        let (s6, _) = v6_pair();
        let mut mem = [0u8; 64];
        let mut pkt = PacketBuf::new(&mut mem, 27, 10);
        assert_eq!(push_udp_ip(&mut pkt, s4, d4, 64, 0), Err(EmitError::NoRoom));
        assert_eq!((pkt.head(), pkt.len()), (27, 10));
        assert_eq!(
            push_udp_ip(&mut pkt, s6, d4, 64, 0),
            Err(EmitError::FamilyMismatch)
        );
        assert_eq!(
            DropReason::from(EmitError::FamilyMismatch),
            DropReason::BadOutboundPacket
        );
        assert_eq!(DropReason::from(EmitError::NoRoom), DropReason::TooBig);
        let mut mem = [0u8; 40];
        let mut pkt = PacketBuf::new(&mut mem, 28, 12);
        assert!(push_udp_ip(&mut pkt, s4, d4, 64, 0).is_ok());
        assert_eq!(push_ethernet(&mut pkt, MAC_A, MAC_B), Err(NoRoom));
        assert_eq!(pkt.len(), 40);
        let mut mem = [0u8; 47 + 8];
        let mut pkt = PacketBuf::new(&mut mem, 47, 8);
        assert_eq!(
            push_udp_ip(&mut pkt, v6_pair().0, v6_pair().1, 1, 0),
            Err(EmitError::NoRoom)
        );
    }

    #[test]
    fn push_too_long() {
        let (s4, d4) = v4_pair();
        let (s6, d6) = v6_pair();
        // IPv4: 20 + 8 + 65508 = 65536 > 65535.
        let mut mem = vec![0u8; 64 + 65508];
        let mut pkt = PacketBuf::new(&mut mem, 64, 65508);
        assert_eq!(push_udp_ip(&mut pkt, s4, d4, 1, 0), Err(EmitError::TooLong));
        // IPv6 allows it (payload length counts UDP only): 8 + 65508 ≤ 65535.
        assert!(push_udp_ip(&mut pkt, s6, d6, 1, 0).is_ok());
        let mut mem = vec![0u8; 64 + 65528];
        let mut pkt = PacketBuf::new(&mut mem, 64, 65528);
        assert_eq!(push_udp_ip(&mut pkt, s6, d6, 1, 0), Err(EmitError::TooLong));
        assert_eq!(pkt.head(), 64);
    }

    #[test]
    fn push_ethernet_type_explicit() {
        let mut mem = [0u8; 20];
        let mut pkt = PacketBuf::new(&mut mem, 14, 0);
        push_ethernet(&mut pkt, MAC_A, MAC_B).unwrap();
        assert_eq!(
            ethernet::Frame::new_checked(pkt.data())
                .unwrap()
                .ethertype(),
            EtherType::IPV4
        );
        let mut mem = [0u8; 20];
        let mut pkt = PacketBuf::new(&mut mem, 14, 0);
        push_ethernet_type(&mut pkt, MAC_A, MAC_B, EtherType::ARP).unwrap();
        assert_eq!(
            ethernet::Frame::new_checked(pkt.data())
                .unwrap()
                .ethertype(),
            EtherType::ARP
        );
    }

    fn v4_frame() -> Vec<u8> {
        let (s, d) = v4_pair();
        build(&[1, 2, 3, 4, 5, 6, 7, 8], s, d, Link::Ethernet)
    }

    fn v6_frame() -> Vec<u8> {
        let (s, d) = v6_pair();
        build(&[1, 2, 3, 4, 5, 6, 7, 8], s, d, Link::Ethernet)
    }

    /// Fix the IPv4 header checksum of an Ethernet frame after editing it.
    fn refill(f: &mut [u8]) {
        ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
    }

    #[test]
    fn every_bad_case() {
        let e = |f: &[u8]| parse_udp(f, Link::Ethernet, 4500).unwrap_err();
        let good = v4_frame();
        assert_eq!(e(&good[..13]), DropReason::TruncatedEthernet);
        let mut f = good.clone();
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        assert_eq!(e(&f), DropReason::UnsupportedEthertype);
        assert_eq!(e(&good[..14]), DropReason::TruncatedIp);
        assert_eq!(e(&good[..33]), DropReason::TruncatedIp);
        // Ethertype IPv6 on an IPv4 packet: version mismatch.
        let mut f = good.clone();
        f[12..14].copy_from_slice(&EtherType::IPV6.to_be_bytes());
        f.resize(80, 0);
        assert_eq!(e(&f), DropReason::BadIpVersion);
        let mut f = good.clone();
        f[14] = 0x44;
        assert_eq!(e(&f), DropReason::BadIpHeaderLength);
        let mut f = good.clone();
        f[17] += 1; // total length one beyond the frame
        refill(&mut f);
        assert_eq!(e(&f), DropReason::BadIpLength);
        let mut f = good.clone();
        f[22] = 63; // TTL changed, checksum stale
        assert_eq!(e(&f), DropReason::BadIpChecksum);
        let mut f = good.clone();
        f[20] |= 0x20; // MF
        refill(&mut f);
        assert_eq!(e(&f), DropReason::IpFragment);
        let mut f = good.clone();
        f[20] = 0x40;
        f[21] = 0x01; // offset 8
        refill(&mut f);
        assert_eq!(e(&f), DropReason::IpFragment);
        let mut f = good.clone();
        f[23] = IpProtocol::TCP;
        refill(&mut f);
        assert_eq!(e(&f), DropReason::NotUdp);
        let mut f = good.clone();
        f[23] = IpProtocol::ESP; // ESP without UDP is not an IPv6 extension case on IPv4
        refill(&mut f);
        assert_eq!(e(&f), DropReason::NotUdp);
        let mut f = good.clone();
        f[39] = 7; // UDP length 7
        assert_eq!(e(&f), DropReason::BadUdpLength);
        let mut f = good.clone();
        f[39] += 1; // UDP length beyond the IP payload
        assert_eq!(e(&f), DropReason::BadUdpLength);
        // IP total length too short for a UDP header.
        let mut f = good.clone();
        f[16] = 0;
        f[17] = 27;
        refill(&mut f);
        assert_eq!(e(&f), DropReason::BadUdpLength);
        assert_eq!(
            parse_udp(&good, Link::Ethernet, 500).unwrap_err(),
            DropReason::NotNattPort
        );
        assert_eq!(
            parse_udp(&good[14..], Link::Ethernet, 4500).unwrap_err(),
            DropReason::UnsupportedEthertype
        );
    }

    #[test]
    fn ipv6_bad_cases() {
        let e = |f: &[u8]| parse_udp(f, Link::Ethernet, 4500).unwrap_err();
        let good = v6_frame();
        assert_eq!(e(&good[..53]), DropReason::TruncatedIp);
        let mut f = good.clone();
        f[14] = 0x40;
        assert_eq!(e(&f), DropReason::BadIpVersion);
        assert_eq!(e(&good[..good.len() - 1]), DropReason::BadIpLength);
        for nh in [0u8, 43, 44, 60, 51, 50, 135, 139, 140, 253, 254] {
            let mut f = good.clone();
            f[20] = nh;
            assert_eq!(e(&f), DropReason::Ipv6ExtensionHeader, "nh {nh}");
        }
        let mut f = good.clone();
        f[20] = IpProtocol::ICMPV6;
        assert_eq!(e(&f), DropReason::NotUdp);
        let mut f = good.clone();
        f[18] = 0;
        f[19] = 0; // payload length 0: no room for UDP
        assert_eq!(e(&f), DropReason::BadUdpLength);
        let mut f = good.clone();
        f[56..58].copy_from_slice(&4501u16.to_be_bytes());
        assert_eq!(e(&f), DropReason::NotNattPort);
    }

    #[test]
    fn link_ip_version_nibble() {
        let e = |f: &[u8]| parse_udp(f, Link::Ip, 4500).unwrap_err();
        assert_eq!(e(&[]), DropReason::TruncatedIp);
        assert_eq!(e(&[0x45]), DropReason::TruncatedIp);
        assert_eq!(e(&[0x60; 39]), DropReason::TruncatedIp);
        assert_eq!(e(&[0x50; 60]), DropReason::BadIpVersion);
        assert_eq!(e(&[0x00]), DropReason::BadIpVersion);
        let f = v4_frame();
        assert_eq!(parse_udp(&f[14..], Link::Ip, 4500).unwrap().ip_offset, 0);
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        let mut f = v4_frame();
        f.resize(60, 0);
        let u = parse_udp(&f, Link::Ethernet, 4500).unwrap();
        assert_eq!(u.payload_len, 8);
    }

    #[test]
    fn parse_ip_v4_and_v6() {
        let f = v4_frame();
        let i = parse_ip(&f[14..]).unwrap();
        assert_eq!(
            i,
            IpInfo {
                src: v4_pair().0.ip(),
                dst: v4_pair().1.ip(),
                protocol: IpProtocol::UDP,
                header_len: 20,
                total_len: 36,
                is_fragment: false,
            }
        );
        let mut g = f.clone();
        g[20] |= 0x20;
        refill(&mut g);
        assert!(parse_ip(&g[14..]).unwrap().is_fragment);
        g[22] = 1;
        assert!(
            parse_ip(&g[14..]).is_ok(),
            "inner/TUN packets: checksum left to the kernel"
        );
        assert_eq!(
            parse_udp(&g, Link::Ethernet, 4500).unwrap_err(),
            DropReason::BadIpChecksum
        );
        let f = v6_frame();
        let i = parse_ip(&f[14..]).unwrap();
        assert_eq!((i.header_len, i.total_len, i.protocol), (40, 56, 17));
        assert_eq!(i.src, v6_pair().0.ip());
        let mut g = f.clone();
        g[20] = 44;
        let i = parse_ip(&g[14..]).unwrap();
        assert_eq!((i.protocol, i.is_fragment), (44, false));
        assert_eq!(parse_ip(&[]).unwrap_err(), DropReason::TruncatedIp);
        assert_eq!(parse_ip(&[0x70; 80]).unwrap_err(), DropReason::BadIpVersion);
        assert_eq!(parse_ip(&f[14..50]).unwrap_err(), DropReason::TruncatedIp);
        assert_eq!(parse_ip(&f[14..60]).unwrap_err(), DropReason::BadIpLength);
    }

    #[test]
    fn checksum_reference_on_v4() {
        // The IPv4 header checksum written by push_udp_ip matches a full recomputation.
        let f = v4_frame();
        let mut h = f[14..34].to_vec();
        let c = u16::from_be_bytes([h[10], h[11]]);
        h[10] = 0;
        h[11] = 0;
        assert_eq!(c, checksum::finish(checksum::sum(&h)));
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), port: u16) {
            let _ = parse_udp(&data, Link::Ethernet, port);
            let _ = parse_udp(&data, Link::Ip, port);
            let _ = parse_ip(&data);
        }

        /// Mutations of valid frames reach deep into the parsers.
        #[test]
        fn mutated_frames_never_panic(
            v6: bool,
            edits in proptest::collection::vec((0usize..80, any::<u8>()), 0..6),
            cut in 0usize..90,
        ) {
            let mut f = if v6 { v6_frame() } else { v4_frame() };
            for (at, b) in edits {
                if let Some(x) = f.get_mut(at) {
                    *x = b;
                }
            }
            f.truncate(cut);
            if let Ok(u) = parse_udp(&f, Link::Ethernet, 4500) {
                prop_assert!(u.payload_offset + u.payload_len <= f.len());
            }
            if let Ok(i) = parse_ip(f.get(14..).unwrap_or(&[])) {
                prop_assert!(i.total_len <= f.len() - 14 && i.header_len <= i.total_len);
            }
        }

        #[test]
        fn round_trip_any_payload(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            v6: bool, ttl: u8, tos: u8, sport: u16,
        ) {
            let (mut s, d) = if v6 { v6_pair() } else { v4_pair() };
            s.set_port(sport);
            let mut mem = vec![0u8; HEADROOM + payload.len()];
            mem[HEADROOM..].copy_from_slice(&payload);
            let mut pkt = PacketBuf::new(&mut mem, HEADROOM, payload.len());
            push_udp_ip(&mut pkt, s, d, ttl, tos).unwrap();
            push_ethernet(&mut pkt, MAC_A, MAC_B).unwrap();
            let f = pkt.data();
            let u = parse_udp(f, Link::Ethernet, 4500).unwrap();
            prop_assert_eq!((u.src, u.dst, u.ttl, u.tos), (s, d, ttl, tos));
            prop_assert_eq!(&f[u.payload_range()], &payload[..]);
            let udp_bytes = &f[u.udp_offset..];
            prop_assert!(udp::Datagram::new_checked(udp_bytes).unwrap().verify_checksum(s.ip(), d.ip()));
        }
    }
}
