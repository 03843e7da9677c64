//! IPv6 fixed header view (RFC 8200 §3). Extension headers are not walked.

use std::net::Ipv6Addr;

use crate::drop::DropReason;

use super::{EmitError, IpProtocol, be16, put_be16};

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = 40;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// True for the next-header values that are IPv6 extension headers (RFC 8200 §4; IANA
/// "IPv6 Extension Header Types", RFC 7045 §2): Hop-by-Hop 0, Routing 43, Fragment 44,
/// Destination Options 60, AH 51, ESP 50, Mobility 135, HIP 139, Shim6 140, and the
/// experimental 253 and 254.
#[inline]
pub const fn is_extension_header(next_header: u8) -> bool {
    matches!(
        next_header,
        0 | 43 | 44 | 60 | 51 | 50 | 135 | 139 | 140 | 253 | 254
    )
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking; accessors may panic on a short or inconsistent buffer.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap and validate (RFC 8200 §3):
    /// - at least [`HEADER_LEN`] bytes, else [`DropReason::TruncatedIp`];
    /// - version 6, else [`DropReason::BadIpVersion`];
    /// - payload length ≤ buffer − 40, else [`DropReason::BadIpLength`];
    /// - a payload length of 0 with a Hop-by-Hop header announces a jumbogram (RFC 2675 §3),
    ///   which the fast path refuses: [`DropReason::BadIpLength`].
    ///
    /// A longer buffer (Ethernet padding) is fine: [`Self::payload`] stops at the payload
    /// length.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let data = buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(DropReason::TruncatedIp);
        }
        if data[0] >> 4 != 6 {
            return Err(DropReason::BadIpVersion);
        }
        let payload_len = usize::from(be16(data, field::LENGTH));
        if payload_len > data.len() - HEADER_LEN {
            return Err(DropReason::BadIpLength);
        }
        if payload_len == 0 && data[field::NEXT_HEADER] == IpProtocol::HOP_BY_HOP {
            return Err(DropReason::BadIpLength);
        }
        Ok(Packet { buffer })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn word0(&self) -> u32 {
        let d = self.buffer.as_ref();
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// Version nibble (6 on a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.word0() >> 28) as u8
    }

    /// Traffic class: DSCP and ECN (RFC 8200 §7, RFC 2474, RFC 3168).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }

    /// 20-bit flow label (RFC 6437).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000F_FFFF
    }

    /// Payload length: bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Next header (first extension header or upper-layer protocol).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        Ipv6Addr::from(a)
    }

    /// The payload, up to the payload length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_word0(&mut self, v: u32) {
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&v.to_be_bytes());
    }

    /// Set the version nibble to 6.
    #[inline]
    pub fn set_version(&mut self) {
        let w = self.word0() & 0x0FFF_FFFF;
        self.set_word0(w | 0x6000_0000);
    }

    /// Set the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = self.word0() & 0xF00F_FFFF;
        self.set_word0(w | (u32::from(tc) << 20));
    }

    /// Set the flow label (only the low 20 bits are used).
    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        let w = self.word0() & 0xFFF0_0000;
        self.set_word0(w | (label & 0x000F_FFFF));
    }

    /// Set the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Set the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Set the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Set the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// The payload (up to the payload length), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// High-level form of an IPv6 fixed header (flow label 0 on emit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length in bytes.
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
}

impl Repr {
    /// Read a checked packet's fixed header.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Self {
        Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
        }
    }

    /// Write the 40-byte fixed header into the start of `buf`;
    /// [`EmitError::NoRoom`] if `buf` is shorter.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        let h = buf.get_mut(..HEADER_LEN).ok_or(EmitError::NoRoom)?;
        let mut p = Packet::new_unchecked(h);
        p.set_word0(0x6000_0000 | (u32::from(self.traffic_class) << 20));
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(&self.src);
        p.set_dst_addr(&self.dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: usize) -> Vec<u8> {
        let r = Repr {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            next_header: IpProtocol::UDP,
            payload_len: payload as u16,
            hop_limit: 63,
            traffic_class: 0xb8,
        };
        let mut v = vec![0u8; HEADER_LEN + payload];
        r.emit(&mut v).unwrap();
        v
    }

    #[test]
    fn parses_fields() {
        let mut buf = sample(12);
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_flow_label(0xABCDE);
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0xABCDE);
        p.set_traffic_class(1);
        assert_eq!(
            (p.traffic_class(), p.flow_label(), p.version()),
            (1, 0xABCDE, 6)
        );
        assert_eq!(p.payload_len(), 12);
        assert_eq!(p.next_header(), IpProtocol::UDP);
        assert_eq!(p.hop_limit(), 63);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload().len(), 12);
        p.payload_mut().fill(9);
        let r = Repr::parse(&p);
        assert_eq!(r.payload_len, 12);
        assert_eq!(r.traffic_class, 1);
    }

    #[test]
    fn padding_is_excluded() {
        let mut buf = sample(4);
        buf.extend_from_slice(&[0; 6]);
        assert_eq!(Packet::new_checked(&buf[..]).unwrap().payload().len(), 4);
    }

    #[test]
    fn bad_cases() {
        let e = |b: &[u8]| Packet::new_checked(b).unwrap_err();
        let buf = sample(8);
        assert_eq!(e(&[]), DropReason::TruncatedIp);
        assert_eq!(e(&buf[..39]), DropReason::TruncatedIp);
        let mut b = buf.clone();
        b[0] = 0x45;
        assert_eq!(e(&b), DropReason::BadIpVersion);
        assert_eq!(e(&buf[..47]), DropReason::BadIpLength);
        // Jumbogram: payload length 0 and a Hop-by-Hop header.
        let mut b = sample(0);
        b[field::NEXT_HEADER] = 0;
        assert_eq!(e(&b), DropReason::BadIpLength);
        // Payload length 0 with UDP is merely empty.
        let b = sample(0);
        assert!(Packet::new_checked(&b[..]).unwrap().payload().is_empty());
    }

    #[test]
    fn extension_headers() {
        for nh in [0u8, 43, 44, 60, 51, 50, 135, 139, 140, 253, 254] {
            assert!(is_extension_header(nh));
        }
        for nh in [6u8, 17, 58, 59, 4, 41] {
            assert!(!is_extension_header(nh));
        }
    }

    #[test]
    fn emit_too_short() {
        let r = Repr::parse(&Packet::new_checked(&sample(0)[..]).unwrap());
        assert_eq!(r.emit(&mut [0u8; 39]), Err(EmitError::NoRoom));
        let mut p = Packet::new_unchecked([0u8; 40]);
        p.set_version();
        assert_eq!(p.version(), 6);
    }
}
