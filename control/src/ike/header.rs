//! The IKE header (RFC 7296 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |                       IKE SA Initiator's SPI                  |
//! |                       IKE SA Responder's SPI                  |
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! |                          Message ID                           |
//! |                            Length                             |
//! ```

use super::IkeError;
use super::payload::PayloadType;
use super::reader::Reader;

/// Length of the IKE header (RFC 7296 §3.1).
pub const HEADER_LEN: usize = 28;
/// Largest IKE message we parse or build (a UDP datagram; RFC 7296 §2 needs only 1280/3000).
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// Exchange type (RFC 7296 §3.1). Unknown values are kept so they can be answered or logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExchangeType(pub u8);

impl ExchangeType {
    pub const IKE_SA_INIT: Self = Self(34);
    pub const IKE_AUTH: Self = Self(35);
    pub const CREATE_CHILD_SA: Self = Self(36);
    pub const INFORMATIONAL: Self = Self(37);
}

/// Header flags (RFC 7296 §3.1). Reserved bits are ignored on receipt and sent as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    /// I (bit 3): set by the original initiator of the IKE SA.
    pub initiator: bool,
    /// V (bit 4): "higher version supported"; MUST be zero in IKEv2.
    pub version: bool,
    /// R (bit 5): this message is a response.
    pub response: bool,
}

impl Flags {
    const I: u8 = 0x08;
    const V: u8 = 0x10;
    const R: u8 = 0x20;

    /// Decode the flags octet.
    pub fn from_bits(b: u8) -> Self {
        Self {
            initiator: b & Self::I != 0,
            version: b & Self::V != 0,
            response: b & Self::R != 0,
        }
    }

    /// Encode the flags octet.
    pub fn bits(self) -> u8 {
        (if self.initiator { Self::I } else { 0 })
            | (if self.version { Self::V } else { 0 })
            | (if self.response { Self::R } else { 0 })
    }
}

/// A parsed IKE header. `next_payload` and `length` are kept as received; [`Header::emit`]
/// writes the values it is given so a message can compute them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub next_payload: PayloadType,
    /// Minor version (RFC 7296 §3.1: sent as 0, ignored on receipt).
    pub minor_version: u8,
    pub exchange: ExchangeType,
    pub flags: Flags,
    pub message_id: u32,
    /// Length of the whole message, header included.
    pub length: u32,
}

impl Header {
    /// Parse the header at the start of `buf` (RFC 7296 §3.1). Checks the major version
    /// and that `length` is at least the header; the caller checks it against the datagram.
    pub fn parse(buf: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(buf, IkeError::TruncatedHeader);
        let spi_i = r.array()?;
        let spi_r = r.array()?;
        let next_payload = PayloadType(r.u8()?);
        let version = r.u8()?;
        let exchange = ExchangeType(r.u8()?);
        let flags = Flags::from_bits(r.u8()?);
        let message_id = r.u32()?;
        let length = r.u32()?;
        // §3.1: "Implementations based on this version of the protocol MUST set the major
        // version to 2" and drop (or answer INVALID_MAJOR_VERSION to) messages with a higher one.
        if version >> 4 != 2 {
            return Err(IkeError::UnsupportedMajorVersion);
        }
        if (length as usize) < HEADER_LEN {
            return Err(IkeError::BadMessageLength);
        }
        Ok(Self {
            spi_i,
            spi_r,
            next_payload,
            minor_version: version & 0x0f,
            exchange,
            flags,
            message_id,
            length,
        })
    }

    /// Append the 28 header bytes to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i);
        out.extend_from_slice(&self.spi_r);
        out.push(self.next_payload.0);
        out.push(0x20 | (self.minor_version & 0x0f));
        out.push(self.exchange.0);
        out.push(self.flags.bits());
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        for b in 0..=255u8 {
            let f = Flags::from_bits(b);
            assert_eq!(f.bits(), b & 0x38);
        }
    }

    #[test]
    fn header_round_trip_and_errors() {
        let h = Header {
            spi_i: [1; 8],
            spi_r: [0; 8],
            next_payload: PayloadType::SA,
            minor_version: 0,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags {
                initiator: true,
                ..Flags::default()
            },
            message_id: 0,
            length: 28,
        };
        let mut v = Vec::new();
        h.emit(&mut v);
        assert_eq!(v.len(), HEADER_LEN);
        assert_eq!(Header::parse(&v), Ok(h));
        assert_eq!(Header::parse(&v[..27]), Err(IkeError::TruncatedHeader));
        let mut bad = v.clone();
        bad[17] = 0x10;
        assert_eq!(Header::parse(&bad), Err(IkeError::UnsupportedMajorVersion));
        bad[17] = 0x20;
        bad[27] = 27;
        assert_eq!(Header::parse(&bad), Err(IkeError::BadMessageLength));
    }
}
