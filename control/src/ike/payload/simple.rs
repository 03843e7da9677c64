//! Small fixed-layout payloads: Key Exchange (RFC 7296 §3.4), Authentication (§3.8), and the
//! raw form kept for payloads we do not interpret (CERT, CERTREQ, EAP, unknown non-critical).

use super::PayloadType;
use crate::ike::IkeError;
use crate::ike::reader::Reader;

/// Key Exchange payload (RFC 7296 §3.4): `| DH Group Num (2) | RESERVED (2) | KE Data |`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KePayload {
    /// Diffie-Hellman group (transform type 4 IDs).
    pub group: u16,
    /// The public value (for ECP groups x‖y, RFC 5903 §7; for Curve25519 32 bytes, RFC 8031).
    pub data: Vec<u8>,
}

impl KePayload {
    /// Parse the payload body.
    pub fn parse(body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadKePayload);
        let group = r.u16()?;
        let _reserved = r.u16()?;
        if r.is_empty() {
            return Err(IkeError::BadKePayload);
        }
        Ok(Self {
            group,
            data: r.rest().to_vec(),
        })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// Authentication method (RFC 7296 §3.8, IANA "IKEv2 Authentication Method").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthMethod(pub u8);

impl AuthMethod {
    pub const RSA_SIGNATURE: Self = Self(1);
    /// Shared Key Message Integrity Code (PSK, §2.15).
    pub const SHARED_KEY_MIC: Self = Self(2);
    pub const DSS_SIGNATURE: Self = Self(3);
    /// Digital Signature (RFC 7427).
    pub const DIGITAL_SIGNATURE: Self = Self(14);
}

/// Authentication payload (RFC 7296 §3.8): `| Auth Method | RESERVED (3) | Auth Data |`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthPayload {
    pub method: AuthMethod,
    pub data: Vec<u8>,
}

impl AuthPayload {
    /// Parse the payload body.
    pub fn parse(body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadAuthPayload);
        let method = AuthMethod(r.u8()?);
        r.take(3)?;
        if r.is_empty() {
            return Err(IkeError::BadAuthPayload);
        }
        Ok(Self {
            method,
            data: r.rest().to_vec(),
        })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        out.extend_from_slice(&[self.method.0, 0, 0, 0]);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// A payload kept as bytes: its type, the critical bit as received, and the body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawPayload {
    pub ty: PayloadType,
    pub critical: bool,
    pub body: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ke_and_auth_round_trip() {
        let ke = KePayload {
            group: 31,
            data: vec![9; 32],
        };
        let mut out = Vec::new();
        ke.emit(&mut out).unwrap();
        assert_eq!(KePayload::parse(&out), Ok(ke));
        assert_eq!(KePayload::parse(&out[..4]), Err(IkeError::BadKePayload));
        let a = AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: vec![1; 32],
        };
        let mut out = Vec::new();
        a.emit(&mut out).unwrap();
        assert_eq!(AuthPayload::parse(&out), Ok(a));
        assert_eq!(AuthPayload::parse(&out[..3]), Err(IkeError::BadAuthPayload));
    }
}
