//! Delete payload (RFC 7296 §3.11):
//! `| Protocol ID | SPI Size | Num of SPIs (2) | SPIs |`.

use crate::ike::IkeError;
use crate::ike::reader::Reader;

/// Most SPIs we accept in one Delete payload.
pub const MAX_DELETE_SPIS: usize = 256;

/// Delete payload body. For the IKE SA (protocol 1) the SPI size and count are zero;
/// for ESP/AH every SPI is 4 bytes (§3.11).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeletePayload {
    pub protocol: u8,
    /// SPIs being deleted (the receiver's inbound SPIs for ESP/AH).
    pub spis: Vec<[u8; 4]>,
}

impl DeletePayload {
    /// Parse the payload body.
    pub fn parse(body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadDeletePayload);
        let protocol = r.u8()?;
        let spi_size = r.u8()?;
        let n = usize::from(r.u16()?);
        let ok = match protocol {
            // §3.11: "For the IKE SA, the SPI Size is 0 ... Num of SPIs ... zero".
            1 => spi_size == 0 && n == 0,
            2 | 3 => spi_size == 4 && n <= MAX_DELETE_SPIS,
            _ => false,
        };
        if !ok || r.rest().len() != n * usize::from(spi_size) {
            return Err(IkeError::BadDeletePayload);
        }
        let mut spis = Vec::with_capacity(n);
        for _ in 0..n {
            spis.push(r.array()?);
        }
        Ok(Self { protocol, spis })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        let n = u16::try_from(self.spis.len()).map_err(|_| IkeError::PayloadTooLong)?;
        out.extend_from_slice(&[self.protocol, if self.protocol == 1 { 0 } else { 4 }]);
        out.extend_from_slice(&n.to_be_bytes());
        for s in &self.spis {
            out.extend_from_slice(s);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        for d in [
            DeletePayload {
                protocol: 1,
                spis: vec![],
            },
            DeletePayload {
                protocol: 3,
                spis: vec![[1, 2, 3, 4], [5, 6, 7, 8]],
            },
        ] {
            let mut out = Vec::new();
            d.emit(&mut out).unwrap();
            assert_eq!(DeletePayload::parse(&out), Ok(d));
        }
        assert_eq!(
            DeletePayload::parse(&[3, 4, 0, 2, 1, 2, 3, 4]),
            Err(IkeError::BadDeletePayload)
        );
        assert_eq!(
            DeletePayload::parse(&[1, 8, 0, 0]),
            Err(IkeError::BadDeletePayload)
        );
        assert_eq!(
            DeletePayload::parse(&[3, 4, 0xff, 0xff]),
            Err(IkeError::BadDeletePayload)
        );
    }
}
