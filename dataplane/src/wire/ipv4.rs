//! IPv4 header view (RFC 791 §3.1).

use std::net::Ipv4Addr;

use crate::drop::DropReason;

use super::{EmitError, be16, checksum, put_be16};

/// Length of an IPv4 header without options (IHL = 5).
pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Flags/fragment-offset bits (RFC 791 §3.1 "Flags", "Fragment Offset").
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1FFF;

/// A view of an IPv4 packet.
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

    /// Wrap and validate, in this order (RFC 791 §3.1, RFC 1122 §3.2.1):
    /// - at least [`HEADER_LEN`] bytes, else [`DropReason::TruncatedIp`];
    /// - version 4, else [`DropReason::BadIpVersion`];
    /// - IHL ≥ 5 and the header fits the buffer, else [`DropReason::BadIpHeaderLength`];
    /// - header length ≤ total length ≤ buffer length, else [`DropReason::BadIpLength`].
    ///
    /// A buffer longer than the total length (Ethernet padding) is accepted; [`Self::payload`]
    /// stops at the total length. The header checksum is not checked here
    /// ([`Self::verify_checksum`]).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let data = buffer.as_ref();
        let Some(&ver_ihl) = data.get(field::VER_IHL) else {
            return Err(DropReason::TruncatedIp);
        };
        if data.len() < HEADER_LEN {
            return Err(DropReason::TruncatedIp);
        }
        if ver_ihl >> 4 != 4 {
            return Err(DropReason::BadIpVersion);
        }
        let header_len = usize::from(ver_ihl & 0x0F) * 4;
        if header_len < HEADER_LEN || header_len > data.len() {
            return Err(DropReason::BadIpHeaderLength);
        }
        let total_len = usize::from(be16(data, field::LENGTH));
        if total_len < header_len || total_len > data.len() {
            return Err(DropReason::BadIpLength);
        }
        Ok(Packet { buffer })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble (4 on a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0F) * 4
    }

    /// DSCP and ECN, the former type-of-service byte (RFC 2474 §3, RFC 3168 §5).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLG_OFF)
    }

    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// True for any fragment: MF set or a non-zero offset (RFC 791 §3.2 "Fragmentation and
    /// reassembly").
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol number (e.g. [`super::IpProtocol::UDP`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// True when the header (options included) sums to all ones (RFC 791 §3.1 "Header
    /// Checksum", RFC 1071).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::finish(self.header_sum()) == 0
    }

    /// Ones-complement sum of the header, options included (fast path without options).
    #[inline]
    fn header_sum(&self) -> u32 {
        let h = &self.buffer.as_ref()[..self.header_len()];
        match <&[u8; HEADER_LEN]>::try_from(h) {
            Ok(h) => checksum::sum_ipv4_header(h),
            Err(_) => checksum::sum(h),
        }
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        Ipv4Addr::new(d[12], d[13], d[14], d[15])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let d = self.buffer.as_ref();
        Ipv4Addr::new(d[16], d[17], d[18], d[19])
    }

    /// The options (empty when IHL = 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload, from the end of the header to the total length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let end = usize::from(self.total_len());
        &self.buffer.as_ref()[self.header_len()..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set version and IHL from a header length in bytes (must be a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0F);
    }

    /// Set DSCP/ECN.
    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Set the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Set the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::IDENT, v);
    }

    #[inline]
    fn set_flags_offset(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Set or clear Don't Fragment.
    #[inline]
    pub fn set_dont_frag(&mut self, on: bool) {
        let v = self.flags_offset() & !FLAG_DF;
        self.set_flags_offset(v | if on { FLAG_DF } else { 0 });
    }

    /// Set or clear More Fragments.
    #[inline]
    pub fn set_more_frags(&mut self, on: bool) {
        let v = self.flags_offset() & !FLAG_MF;
        self.set_flags_offset(v | if on { FLAG_MF } else { 0 });
    }

    /// Set the fragment offset in bytes (rounded down to a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = self.flags_offset() & !OFFSET_MASK;
        self.set_flags_offset(v | ((bytes >> 3) & OFFSET_MASK));
    }

    /// Set the TTL.
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Set the protocol.
    #[inline]
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Set the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// Compute and write the header checksum (RFC 791 §3.1: over the header with the
    /// checksum field zero).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::finish(self.header_sum());
        self.set_checksum(c);
    }

    /// The payload (up to the total length), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len());
        &mut self.buffer.as_mut()[start..end]
    }
}

/// High-level form of an option-less IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number.
    pub protocol: u8,
    /// Payload length in bytes (total length − 20).
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// DSCP/ECN byte.
    pub dscp_ecn: u8,
}

impl Repr {
    /// Read a checked packet's header (options are ignored; `payload_len` is total length
    /// minus the header length).
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Self {
        Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len().saturating_sub(p.header_len() as u16),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
        }
    }

    /// Write a 20-byte header into the start of `buf`: identification 0 and DF set (an
    /// atomic datagram, RFC 6864 §4.1), checksum filled.
    ///
    /// Errors: [`EmitError::NoRoom`] if `buf` is shorter than [`HEADER_LEN`],
    /// [`EmitError::TooLong`] if `20 + payload_len` exceeds 65535.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        let total = self
            .payload_len
            .checked_add(HEADER_LEN as u16)
            .ok_or(EmitError::TooLong)?;
        let h = buf.get_mut(..HEADER_LEN).ok_or(EmitError::NoRoom)?;
        let mut p = Packet::new_unchecked(h);
        p.set_version_header_len(HEADER_LEN);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len(total);
        p.set_ident(0);
        p.set_flags_offset(FLAG_DF);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        // The checksum from the field values (RFC 1071 over the ten 16-bit words, the
        // checksum word and the zero identification left out), not by reading back the bytes
        // just written: those small stores cannot be forwarded to the wide loads of a sum,
        // which would stall the transmit path on them.
        let word = |hi: u8, lo: u8| u32::from(u16::from_be_bytes([hi, lo]));
        let addr = |a: Ipv4Addr| {
            let [a, b, c, d] = a.octets();
            word(a, b) + word(c, d)
        };
        let sum = word(0x45, self.dscp_ecn)
            + u32::from(total)
            + u32::from(FLAG_DF)
            + word(self.ttl, self.protocol)
            + addr(self.src)
            + addr(self.dst);
        p.set_checksum(checksum::finish(sum));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpProtocol;

    /// 20-byte header, total length 0x73 = 115, UDP, 192.168.0.1 → 192.168.0.199, DF.
    fn sample() -> Vec<u8> {
        let mut v = hex::decode("45000073000040004011b861c0a80001c0a800c7").unwrap();
        v.resize(115, 0xAB);
        v
    }

    #[test]
    fn parses_fields() {
        let buf = sample();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 115);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 95);
        assert_eq!(Repr::parse(&p).payload_len, 95);
    }

    #[test]
    fn padding_is_excluded() {
        let mut buf = sample();
        buf.extend_from_slice(&[0; 10]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload().len(), 95);
    }

    #[test]
    fn bad_cases() {
        let buf = sample();
        let e = |b: &[u8]| Packet::new_checked(b).unwrap_err();
        assert_eq!(e(&[]), DropReason::TruncatedIp);
        assert_eq!(e(&buf[..19]), DropReason::TruncatedIp);
        let mut b = buf.clone();
        b[0] = 0x65;
        assert_eq!(e(&b), DropReason::BadIpVersion);
        b[0] = 0x44;
        assert_eq!(e(&b), DropReason::BadIpHeaderLength);
        b[0] = 0x4F; // 60-byte header: fits 115 bytes...
        assert!(Packet::new_checked(&b[..]).is_ok());
        assert_eq!(e(&b[..40]), DropReason::BadIpHeaderLength); // ...but not 40
        b[0] = 0x46; // 24-byte header, total length 115 ≥ 24 fine
        b[2] = 0;
        b[3] = 23; // total length < header length
        assert_eq!(e(&b), DropReason::BadIpLength);
        let mut b = buf.clone();
        b[3] = 116; // beyond buffer
        assert_eq!(e(&b), DropReason::BadIpLength);
        let mut b = buf.clone();
        b[11] ^= 1;
        assert!(!Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn fragments() {
        let mut buf = sample();
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_more_frags(true);
        assert!(p.is_fragment() && p.dont_frag());
        p.set_more_frags(false);
        p.set_frag_offset(1480);
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        p.set_frag_offset(0);
        p.set_dont_frag(false);
        assert!(!p.is_fragment() && !p.dont_frag());
        p.fill_checksum();
        assert!(p.verify_checksum());
    }

    #[test]
    fn options_and_checksum() {
        let mut buf = [0u8; 28];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version_header_len(24);
        p.set_total_len(28);
        p.set_ttl(1);
        p.set_protocol(IpProtocol::UDP);
        p.fill_checksum();
        p.payload_mut().fill(7);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.options(), &[0, 0, 0, 0]);
        assert_eq!(p.payload(), &[7, 7, 7, 7]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn repr_emit_round_trip() {
        let r = Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::UDP,
            payload_len: 8,
            ttl: 64,
            dscp_ecn: 0xb8,
        };
        let mut buf = [0u8; 28];
        r.emit(&mut buf).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.dont_frag());
        assert_eq!(p.ident(), 0);
        assert_eq!(Repr::parse(&p), r);
        assert_eq!(r.emit(&mut [0u8; 19]), Err(EmitError::NoRoom));
        let big = Repr {
            payload_len: 65516,
            ..r
        };
        assert_eq!(big.emit(&mut buf), Err(EmitError::TooLong));
    }

    proptest::proptest! {
        #[test]
        fn emitted_checksum_matches_the_bytes(
            src: [u8; 4], dst: [u8; 4], proto: u8, ttl: u8, tos: u8, len in 0u16..65515,
        ) {
            let mut h = [0u8; HEADER_LEN];
            Repr {
                src: src.into(),
                dst: dst.into(),
                protocol: proto,
                payload_len: len,
                ttl,
                dscp_ecn: tos,
            }
            .emit(&mut h)
            .unwrap();
            let emitted = h;
            let mut p = Packet::new_unchecked(&mut h[..]);
            p.fill_checksum();
            proptest::prop_assert_eq!(emitted, h);
            proptest::prop_assert!(Packet::new_unchecked(&h[..]).verify_checksum());
        }
    }
}
