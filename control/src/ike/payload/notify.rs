//! Notify payload (RFC 7296 §3.10):
//! `| Protocol ID | SPI Size | Notify Message Type (2) | SPI | Notification Data |`.

use crate::ike::IkeError;
use crate::ike::reader::Reader;

/// Notify Message Type (RFC 7296 §3.10.1 and IANA "IKEv2 Notify Message Types").
/// Types below 16384 are errors, 16384 and above are status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotifyType(pub u16);

impl NotifyType {
    // --- error types (§3.10.1) ---
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: Self = Self(1);
    pub const INVALID_IKE_SPI: Self = Self(4);
    pub const INVALID_MAJOR_VERSION: Self = Self(5);
    pub const INVALID_SYNTAX: Self = Self(7);
    pub const INVALID_MESSAGE_ID: Self = Self(9);
    pub const INVALID_SPI: Self = Self(11);
    pub const NO_PROPOSAL_CHOSEN: Self = Self(14);
    pub const INVALID_KE_PAYLOAD: Self = Self(17);
    pub const AUTHENTICATION_FAILED: Self = Self(24);
    pub const SINGLE_PAIR_REQUIRED: Self = Self(34);
    pub const NO_ADDITIONAL_SAS: Self = Self(35);
    pub const INTERNAL_ADDRESS_FAILURE: Self = Self(36);
    pub const FAILED_CP_REQUIRED: Self = Self(37);
    pub const TS_UNACCEPTABLE: Self = Self(38);
    pub const INVALID_SELECTORS: Self = Self(39);
    pub const TEMPORARY_FAILURE: Self = Self(43);
    pub const CHILD_SA_NOT_FOUND: Self = Self(44);
    // --- status types (§3.10.1) ---
    pub const INITIAL_CONTACT: Self = Self(16384);
    pub const SET_WINDOW_SIZE: Self = Self(16385);
    pub const ADDITIONAL_TS_POSSIBLE: Self = Self(16386);
    pub const IPCOMP_SUPPORTED: Self = Self(16387);
    /// §2.23: SHA-1(SPIi | SPIr | source IP | source port).
    pub const NAT_DETECTION_SOURCE_IP: Self = Self(16388);
    /// §2.23: SHA-1(SPIi | SPIr | destination IP | destination port).
    pub const NAT_DETECTION_DESTINATION_IP: Self = Self(16389);
    /// §2.6: stateless cookie.
    pub const COOKIE: Self = Self(16390);
    pub const USE_TRANSPORT_MODE: Self = Self(16391);
    pub const HTTP_CERT_LOOKUP_SUPPORTED: Self = Self(16392);
    pub const REKEY_SA: Self = Self(16393);
    pub const ESP_TFC_PADDING_NOT_SUPPORTED: Self = Self(16394);
    pub const NON_FIRST_FRAGMENTS_ALSO: Self = Self(16395);
    /// RFC 4555.
    pub const MOBIKE_SUPPORTED: Self = Self(16396);
    /// RFC 4739.
    pub const MULTIPLE_AUTH_SUPPORTED: Self = Self(16404);
    /// RFC 5685.
    pub const REDIRECT_SUPPORTED: Self = Self(16406);
    /// RFC 5998.
    pub const EAP_ONLY_AUTHENTICATION: Self = Self(16417);
    /// RFC 6023.
    pub const CHILDLESS_IKEV2_SUPPORTED: Self = Self(16418);
    /// RFC 6311.
    pub const IKEV2_MESSAGE_ID_SYNC_SUPPORTED: Self = Self(16420);
    /// RFC 7383 §2.3.
    pub const IKEV2_FRAGMENTATION_SUPPORTED: Self = Self(16430);
    /// RFC 7427 §4.
    pub const SIGNATURE_HASH_ALGORITHMS: Self = Self(16431);

    /// Error types are below 16384 (§3.10.1).
    pub fn is_error(self) -> bool {
        self.0 < 16384
    }
}

/// Notify payload body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NotifyPayload {
    /// Protocol ID (0 when the notification is not about a particular SA; 1 IKE, 2 AH, 3 ESP).
    pub protocol: u8,
    /// SPI of the SA concerned (empty, or 4 / 8 bytes).
    pub spi: Vec<u8>,
    pub ty: NotifyType,
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// A notification about no particular SA.
    pub fn new(ty: NotifyType, data: &[u8]) -> Self {
        Self {
            protocol: 0,
            spi: Vec::new(),
            ty,
            data: data.to_vec(),
        }
    }

    /// INVALID_KE_PAYLOAD naming the group we want (§1.2: "the accepted D-H Group number
    /// ... in network order").
    pub fn invalid_ke(group: u16) -> Self {
        Self::new(NotifyType::INVALID_KE_PAYLOAD, &group.to_be_bytes())
    }

    /// The group named by an INVALID_KE_PAYLOAD notification.
    pub fn invalid_ke_group(&self) -> Option<u16> {
        match (self.ty, self.data.as_slice()) {
            (NotifyType::INVALID_KE_PAYLOAD, [a, b]) => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }

    /// Parse the payload body.
    pub fn parse(body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadNotifyPayload);
        let protocol = r.u8()?;
        let spi_size = r.u8()?;
        let ty = NotifyType(r.u16()?);
        if !matches!(spi_size, 0 | 4 | 8) {
            return Err(IkeError::BadNotifyPayload);
        }
        let spi = r.take(usize::from(spi_size))?.to_vec();
        let data = r.rest().to_vec();
        // §2.23 / §2.6: NAT detection data is a SHA-1 digest; a cookie is 1..=64 octets.
        let ok = match ty {
            NotifyType::NAT_DETECTION_SOURCE_IP | NotifyType::NAT_DETECTION_DESTINATION_IP => {
                data.len() == 20
            }
            NotifyType::COOKIE => (1..=64).contains(&data.len()),
            NotifyType::INVALID_KE_PAYLOAD => data.len() == 2,
            _ => true,
        };
        if !ok {
            return Err(IkeError::BadNotifyPayload);
        }
        Ok(Self {
            protocol,
            spi,
            ty,
            data,
        })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        let spi_size = u8::try_from(self.spi.len()).map_err(|_| IkeError::PayloadTooLong)?;
        out.extend_from_slice(&[self.protocol, spi_size]);
        out.extend_from_slice(&self.ty.0.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn natd_group_none() -> Option<u16> {
        NotifyPayload::new(NotifyType::COOKIE, &[1, 2]).invalid_ke_group()
    }

    #[test]
    fn round_trip_and_checks() {
        let n = NotifyPayload {
            protocol: 3,
            spi: vec![1, 2, 3, 4],
            ty: NotifyType::REKEY_SA,
            data: vec![],
        };
        let mut out = Vec::new();
        n.emit(&mut out).unwrap();
        assert_eq!(NotifyPayload::parse(&out), Ok(n));
        let natd = NotifyPayload::new(NotifyType::NAT_DETECTION_SOURCE_IP, &[7; 20]);
        let mut out = Vec::new();
        natd.emit(&mut out).unwrap();
        assert_eq!(NotifyPayload::parse(&out), Ok(natd));
        assert_eq!(
            NotifyPayload::parse(&out[..out.len() - 1]),
            Err(IkeError::BadNotifyPayload)
        );
        assert_eq!(
            NotifyPayload::parse(&[0, 3, 0x40, 0]),
            Err(IkeError::BadNotifyPayload)
        );
        assert_eq!(
            NotifyPayload::parse(&[0, 4, 0x40, 0, 1]),
            Err(IkeError::BadNotifyPayload)
        );
        assert!(NotifyType::NO_PROPOSAL_CHOSEN.is_error());
        let ike = NotifyPayload::invalid_ke(31);
        let mut out = Vec::new();
        ike.emit(&mut out).unwrap();
        assert_eq!(
            NotifyPayload::parse(&out).unwrap().invalid_ke_group(),
            Some(31)
        );
        assert_eq!(natd_group_none(), None);
        assert!(!NotifyType::COOKIE.is_error());
    }
}
