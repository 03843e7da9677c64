//! Encrypted and Authenticated payload SK (RFC 7296 §3.14) and its fragment form SKF
//! (RFC 7383 §2.5), as carried on the wire: IV, ciphertext and ICV, undecrypted.
//! Decryption and encryption live in [`crate::ike::crypto::sk`].

use super::PayloadType;
use crate::ike::IkeError;
use crate::ike::reader::Reader;

/// SK payload: its Next Payload field names the first inner payload (§3.14); `body` is
/// `IV | ciphertext | ICV` (for AES-GCM, RFC 5282 §3: 8-byte IV and 16-byte ICV).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedPayload {
    pub inner_next: PayloadType,
    pub body: Vec<u8>,
}

impl EncryptedPayload {
    /// Keep the body; its layout depends on the negotiated algorithm.
    pub fn parse(inner_next: PayloadType, body: &[u8]) -> Result<Self, IkeError> {
        if body.is_empty() {
            return Err(IkeError::BadEncryptedPayload);
        }
        Ok(Self {
            inner_next,
            body: body.to_vec(),
        })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        out.extend_from_slice(&self.body);
        Ok(())
    }
}

/// SKF payload (RFC 7383 §2.5): `| Fragment Number (2) | Total Fragments (2) | IV |
/// ciphertext | ICV |`; Next Payload names the first inner payload in fragment 1, else 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedFragment {
    pub inner_next: PayloadType,
    pub number: u16,
    pub total: u16,
    pub body: Vec<u8>,
}

impl EncryptedFragment {
    /// Parse: RFC 7383 §2.5 requires 1 ≤ Fragment Number ≤ Total Fragments.
    pub fn parse(inner_next: PayloadType, body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadEncryptedPayload);
        let number = r.u16()?;
        let total = r.u16()?;
        if number == 0 || number > total || r.is_empty() {
            return Err(IkeError::BadEncryptedPayload);
        }
        Ok(Self {
            inner_next,
            number,
            total,
            body: r.rest().to_vec(),
        })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&self.body);
        Ok(())
    }
}
