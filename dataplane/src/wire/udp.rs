//! UDP datagram view (RFC 768), with the IPv6 checksum rules of RFC 8200 §8.1.

use std::net::IpAddr;

use crate::drop::DropReason;

use super::{EmitError, IpProtocol, be16, checksum, put_be16};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Wrap without checking; accessors may panic on a short or inconsistent buffer.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Datagram { buffer }
    }

    /// Wrap and validate: at least [`HEADER_LEN`] bytes and `8 ≤ length ≤ buffer length`
    /// (RFC 768 "Length"), else [`DropReason::BadUdpLength`]. A buffer longer than the length
    /// field is accepted; [`Self::payload`] stops at the length field.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let data = buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(DropReason::BadUdpLength);
        }
        let len = usize::from(be16(data, field::LENGTH));
        if !(HEADER_LEN..=data.len()).contains(&len) {
            return Err(DropReason::BadUdpLength);
        }
        Ok(Datagram { buffer })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header plus payload.
    #[inline]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// True when the datagram has no payload (length field 8).
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Sum over pseudo-header, header and payload (up to the length field).
    #[inline]
    fn full_sum(&self, src: IpAddr, dst: IpAddr) -> u32 {
        let len = self.len();
        let d = &self.buffer.as_ref()[..usize::from(len)];
        checksum::add(
            checksum::pseudo_header(src, dst, IpProtocol::UDP, u32::from(len)),
            checksum::sum(d),
        )
    }

    /// Verify the checksum against the pseudo-header of `src`/`dst`.
    ///
    /// A zero checksum over IPv4 means "no checksum" (RFC 768) and verifies; over IPv6 a zero
    /// checksum is invalid (RFC 8200 §8.1) and fails.
    #[inline]
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 && src.is_ipv4() && dst.is_ipv4() {
            return true;
        }
        checksum::fold(self.full_sum(src, dst)) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Datagram<T> {
    /// Set the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Set the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Set the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put_be16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Compute and write the checksum over the pseudo-header of `src`/`dst` (mixed families:
    /// see [`checksum::pseudo_header`]), header and payload up to the length field. A
    /// computed zero is transmitted as `0xFFFF` (RFC 768; RFC 8200 §8.1).
    #[inline]
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let c = checksum::finish(self.full_sum(src, dst));
        self.set_checksum(if c == 0 { 0xFFFF } else { c });
    }

    /// The payload (up to the length field), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// High-level form of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes (length field − 8).
    pub payload_len: u16,
}

impl Repr {
    /// Read a checked datagram's header.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(d: &Datagram<T>) -> Self {
        Repr {
            src_port: d.src_port(),
            dst_port: d.dst_port(),
            payload_len: d.len().saturating_sub(HEADER_LEN as u16),
        }
    }

    /// Write the 8-byte header into the start of `buf` with a **zero** checksum (fill it
    /// afterwards with [`Datagram::fill_checksum`] when needed).
    ///
    /// Errors: [`EmitError::NoRoom`] if `buf` is shorter than [`HEADER_LEN`],
    /// [`EmitError::TooLong`] if `8 + payload_len` exceeds 65535.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), EmitError> {
        let len = self
            .payload_len
            .checked_add(HEADER_LEN as u16)
            .ok_or(EmitError::TooLong)?;
        let h = buf.get_mut(..HEADER_LEN).ok_or(EmitError::NoRoom)?;
        let mut d = Datagram::new_unchecked(h);
        d.set_src_port(self.src_port);
        d.set_dst_port(self.dst_port);
        d.set_len(len);
        d.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4() -> (IpAddr, IpAddr) {
        (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(198, 51, 100, 2).into(),
        )
    }

    fn v6() -> (IpAddr, IpAddr) {
        (
            "2001:db8::1".parse::<Ipv6Addr>().unwrap().into(),
            "2001:db8::2".parse::<Ipv6Addr>().unwrap().into(),
        )
    }

    fn build(payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN + payload.len()];
        Repr {
            src_port: 4500,
            dst_port: 4501,
            payload_len: payload.len() as u16,
        }
        .emit(&mut v)
        .unwrap();
        v[HEADER_LEN..].copy_from_slice(payload);
        v
    }

    #[test]
    fn parses_fields() {
        let buf = build(b"hello");
        let d = Datagram::new_checked(&buf[..]).unwrap();
        assert_eq!(d.src_port(), 4500);
        assert_eq!(d.dst_port(), 4501);
        assert_eq!(d.len(), 13);
        assert!(!d.is_empty());
        assert_eq!(d.checksum(), 0);
        assert_eq!(d.payload(), b"hello");
        assert_eq!(Repr::parse(&d).payload_len, 5);
    }

    #[test]
    fn trailing_bytes_are_excluded() {
        let mut buf = build(b"ab");
        buf.extend_from_slice(b"zz");
        assert_eq!(Datagram::new_checked(&buf[..]).unwrap().payload(), b"ab");
    }

    #[test]
    fn bad_lengths() {
        let e = |b: &[u8]| Datagram::new_checked(b).unwrap_err();
        let buf = build(b"hello");
        assert_eq!(e(&[]), DropReason::BadUdpLength);
        assert_eq!(e(&buf[..7]), DropReason::BadUdpLength);
        assert_eq!(e(&buf[..12]), DropReason::BadUdpLength);
        let mut b = buf.clone();
        b[5] = 7;
        assert_eq!(e(&b), DropReason::BadUdpLength);
        b[5] = 8;
        assert!(Datagram::new_checked(&b[..]).unwrap().is_empty());
    }

    #[test]
    fn checksum_v4() {
        let (s, d) = v4();
        let mut buf = build(b"some payload, odd");
        assert!(
            Datagram::new_checked(&buf[..])
                .unwrap()
                .verify_checksum(s, d)
        );
        let mut dg = Datagram::new_checked(&mut buf[..]).unwrap();
        dg.fill_checksum(s, d);
        assert_ne!(dg.checksum(), 0);
        assert!(dg.verify_checksum(s, d));
        let other: IpAddr = Ipv4Addr::new(192, 0, 2, 9).into();
        assert!(!dg.verify_checksum(other, d));
        dg.payload_mut()[0] ^= 0x40;
        assert!(!dg.verify_checksum(s, d));
    }

    #[test]
    fn checksum_v6_zero_is_invalid() {
        let (s, d) = v6();
        let mut buf = build(b"x");
        assert!(
            !Datagram::new_checked(&buf[..])
                .unwrap()
                .verify_checksum(s, d)
        );
        let mut dg = Datagram::new_checked(&mut buf[..]).unwrap();
        dg.fill_checksum(s, d);
        assert!(dg.verify_checksum(s, d));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose the payload so the checksum computes to zero: make the complete sum 0xFFFF.
        let (s, d) = v4();
        let mut buf = build(&[0, 0]);
        let partial = checksum::add(
            checksum::pseudo_header(s, d, IpProtocol::UDP, buf.len() as u32),
            checksum::sum(&buf),
        );
        let fill = 0xFFFF - checksum::fold(partial);
        buf[8..10].copy_from_slice(&fill.to_be_bytes());
        let mut dg = Datagram::new_checked(&mut buf[..]).unwrap();
        dg.fill_checksum(s, d);
        assert_eq!(dg.checksum(), 0xFFFF);
        assert!(dg.verify_checksum(s, d));
    }

    #[test]
    fn emit_errors() {
        let r = Repr {
            src_port: 1,
            dst_port: 2,
            payload_len: 0,
        };
        assert_eq!(r.emit(&mut [0u8; 7]), Err(EmitError::NoRoom));
        let big = Repr {
            payload_len: 65528,
            ..r
        };
        assert_eq!(big.emit(&mut [0u8; 8]), Err(EmitError::TooLong));
    }
}
