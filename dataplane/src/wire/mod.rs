//! Wire formats: zero-copy views of Ethernet, IPv4, IPv6 and UDP headers, Internet checksums,
//! and the whole-frame helpers the batch pipeline uses.
//!
//! The shape follows smoltcp's `wire` module. Each header is a view `Packet<T: AsRef<[u8]>>`
//! (`Frame` for Ethernet, `Datagram` for UDP) with
//! - `new_unchecked(buf)`: no validation — accessors may then panic on short buffers;
//! - `new_checked(buf) -> Result<Self, DropReason>`: lengths validated once, so every
//!   accessor is panic-free afterwards (hostile input is normal input);
//! - getters, and setters when `T: AsMut<[u8]>`;
//! - a small `Repr` with `emit` that writes a fresh header.
//!
//! Nothing here allocates, performs I/O or reads a clock.
//!
//! | module | holds |
//! |---|---|
//! | [`checksum`] | RFC 1071 Internet checksum, pseudo-headers, RFC 1624 incremental update |
//! | [`ethernet`] | Ethernet II frames, [`MacAddr`], [`EtherType`] |
//! | [`ipv4`] | IPv4 header view (RFC 791) |
//! | [`ipv6`] | IPv6 fixed header view (RFC 8200) |
//! | [`udp`] | UDP datagram view (RFC 768) |
//! | [`frame`] | whole-frame parse ([`parse_udp`], [`locate_udp`], [`parse_ip`]) and emit ([`push_udp_ip`], [`push_ethernet`]) |

pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod ipv4;
pub mod ipv6;
pub mod udp;

pub use ethernet::{EtherType, MacAddr};
pub use frame::{
    IpInfo, Link, UdpFrame, UdpLayout, locate_udp, parse_ip, parse_udp, push_ethernet,
    push_ethernet_type, push_udp_ip, udp_destination, udp_source,
};

use crate::buf::NoRoom;
use crate::drop::DropReason;

/// IP protocol / IPv6 next-header numbers used by xdpsec (IANA "Assigned Internet Protocol
/// Numbers"). A namespace: `IpProtocol::UDP` is a `u8`.
#[derive(Debug, Clone, Copy)]
pub enum IpProtocol {}

impl IpProtocol {
    /// IPv6 Hop-by-Hop Options (RFC 8200 §4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulated (IP-in-IP): ESP next header for a tunnelled IPv4 packet.
    pub const IPV4: u8 = 4;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// IPv6 encapsulated: ESP next header for a tunnelled IPv6 packet.
    pub const IPV6: u8 = 41;
    /// IPv6 Routing header (RFC 8200 §4.4).
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 Fragment header (RFC 8200 §4.5).
    pub const IPV6_FRAG: u8 = 44;
    /// ESP (RFC 4303).
    pub const ESP: u8 = 50;
    /// AH (RFC 4302).
    pub const AH: u8 = 51;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
    /// No next header: an ESP dummy packet (RFC 4303 §2.6).
    pub const NO_NEXT_HEADER: u8 = 59;
    /// IPv6 Destination Options (RFC 8200 §4.6).
    pub const IPV6_OPTS: u8 = 60;
}

/// Why a header could not be written.
///
/// Converts into a [`DropReason`] for the batch pipeline: [`EmitError::NoRoom`] and
/// [`EmitError::TooLong`] become [`DropReason::TooBig`], [`EmitError::FamilyMismatch`]
/// becomes [`DropReason::BadOutboundPacket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// Not enough headroom (or buffer) for the header.
    NoRoom,
    /// Source and destination addresses are of different IP families.
    FamilyMismatch,
    /// The payload is too long for a 16-bit IP or UDP length field.
    TooLong,
}

impl From<NoRoom> for EmitError {
    #[inline]
    fn from(_: NoRoom) -> Self {
        EmitError::NoRoom
    }
}

impl From<EmitError> for DropReason {
    #[inline]
    fn from(e: EmitError) -> Self {
        match e {
            EmitError::NoRoom | EmitError::TooLong => DropReason::TooBig,
            EmitError::FamilyMismatch => DropReason::BadOutboundPacket,
        }
    }
}

/// Read a big-endian `u16` at `at`. Callers index only inside a length-checked view.
#[inline]
pub(crate) fn be16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Write a big-endian `u16` at `at`. Callers index only inside a length-checked view.
#[inline]
pub(crate) fn put_be16(data: &mut [u8], at: usize, v: u16) {
    let b = v.to_be_bytes();
    data[at] = b[0];
    data[at + 1] = b[1];
}
