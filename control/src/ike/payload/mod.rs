//! IKEv2 payloads: the generic payload header chain (RFC 7296 §3.2) and each payload body
//! (§3.3 - §3.15), as `Repr`-style types with symmetric `parse` / `emit`.
//!
//! ```text
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! ```
//! Every payload starts with this 4-byte header; Payload Length includes it. An unknown
//! payload type with the critical bit set fails the whole message (§2.5:
//! UNSUPPORTED_CRITICAL_PAYLOAD); without it the payload is kept as [`RawPayload`] and skipped.

pub mod config;
pub mod delete;
pub mod encrypted;
pub mod id;
pub mod notify;
pub mod sa;
pub mod simple;
pub mod ts;

pub use config::{CfgType, ConfigAttribute, ConfigPayload};
pub use delete::DeletePayload;
pub use encrypted::{EncryptedFragment, EncryptedPayload};
pub use id::{IdPayload, IdType, Identity};
pub use notify::{NotifyPayload, NotifyType};
pub use sa::{Proposal, ProtocolId, SaPayload, Transform, TransformType};
pub use simple::{AuthMethod, AuthPayload, KePayload, RawPayload};
pub use ts::{TrafficSelector, TsPayload};

use super::IkeError;
use super::reader::{Reader, patch_u16};

/// Generic payload header length (RFC 7296 §3.2).
pub const GENERIC_HEADER_LEN: usize = 4;
/// Most payloads we parse in one message (or inside one Encrypted payload).
pub const MAX_PAYLOADS: usize = 64;

/// Payload type (RFC 7296 §3.2, IANA "IKEv2 Payload Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadType(pub u8);

impl PayloadType {
    pub const NONE: Self = Self(0);
    pub const SA: Self = Self(33);
    pub const KE: Self = Self(34);
    pub const IDI: Self = Self(35);
    pub const IDR: Self = Self(36);
    pub const CERT: Self = Self(37);
    pub const CERTREQ: Self = Self(38);
    pub const AUTH: Self = Self(39);
    pub const NONCE: Self = Self(40);
    pub const NOTIFY: Self = Self(41);
    pub const DELETE: Self = Self(42);
    pub const VENDOR_ID: Self = Self(43);
    pub const TSI: Self = Self(44);
    pub const TSR: Self = Self(45);
    pub const SK: Self = Self(46);
    pub const CP: Self = Self(47);
    pub const EAP: Self = Self(48);
    /// Encrypted and Authenticated Fragment (RFC 7383 §2.5).
    pub const SKF: Self = Self(53);

    /// Types this implementation recognises (even if it keeps some, like CERT, raw).
    pub fn is_known(self) -> bool {
        matches!(self.0, 33..=48 | 53)
    }
}

/// One IKEv2 payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Security Association (§3.3).
    Sa(SaPayload),
    /// Key Exchange (§3.4).
    Ke(KePayload),
    /// Identification - Initiator (§3.5).
    IdI(IdPayload),
    /// Identification - Responder (§3.5).
    IdR(IdPayload),
    /// Authentication (§3.8).
    Auth(AuthPayload),
    /// Nonce data, 16 to 256 bytes (§3.9).
    Nonce(Vec<u8>),
    /// Notify (§3.10).
    Notify(NotifyPayload),
    /// Delete (§3.11).
    Delete(DeletePayload),
    /// Vendor ID, opaque (§3.12).
    VendorId(Vec<u8>),
    /// Traffic Selector - Initiator (§3.13).
    TsI(TsPayload),
    /// Traffic Selector - Responder (§3.13).
    TsR(TsPayload),
    /// Encrypted and Authenticated (§3.14); always the last payload.
    Encrypted(EncryptedPayload),
    /// Encrypted and Authenticated Fragment (RFC 7383 §2.5); always the last payload.
    EncryptedFragment(EncryptedFragment),
    /// Configuration (§3.15).
    Config(ConfigPayload),
    /// CERT, CERTREQ, EAP, or a non-critical unknown payload, kept as bytes.
    Other(RawPayload),
}

impl Payload {
    /// The payload's type (what the previous Next Payload field names).
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SA,
            Payload::Ke(_) => PayloadType::KE,
            Payload::IdI(_) => PayloadType::IDI,
            Payload::IdR(_) => PayloadType::IDR,
            Payload::Auth(_) => PayloadType::AUTH,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notify(_) => PayloadType::NOTIFY,
            Payload::Delete(_) => PayloadType::DELETE,
            Payload::VendorId(_) => PayloadType::VENDOR_ID,
            Payload::TsI(_) => PayloadType::TSI,
            Payload::TsR(_) => PayloadType::TSR,
            Payload::Encrypted(_) => PayloadType::SK,
            Payload::EncryptedFragment(_) => PayloadType::SKF,
            Payload::Config(_) => PayloadType::CP,
            Payload::Other(raw) => raw.ty,
        }
    }

    /// Parse one payload body of type `ty` (the generic header already removed).
    fn parse_body(ty: PayloadType, critical: bool, body: &[u8]) -> Result<Self, IkeError> {
        Ok(match ty {
            PayloadType::SA => Payload::Sa(SaPayload::parse(body)?),
            PayloadType::KE => Payload::Ke(KePayload::parse(body)?),
            PayloadType::IDI => Payload::IdI(IdPayload::parse(body)?),
            PayloadType::IDR => Payload::IdR(IdPayload::parse(body)?),
            PayloadType::AUTH => Payload::Auth(AuthPayload::parse(body)?),
            PayloadType::NONCE => {
                // §3.9: "the size of the Nonce Data MUST be between 16 and 256 octets".
                if !(16..=256).contains(&body.len()) {
                    return Err(IkeError::BadNonceLength);
                }
                Payload::Nonce(body.to_vec())
            }
            PayloadType::NOTIFY => Payload::Notify(NotifyPayload::parse(body)?),
            PayloadType::DELETE => Payload::Delete(DeletePayload::parse(body)?),
            PayloadType::VENDOR_ID => Payload::VendorId(body.to_vec()),
            PayloadType::TSI => Payload::TsI(TsPayload::parse(body)?),
            PayloadType::TSR => Payload::TsR(TsPayload::parse(body)?),
            PayloadType::CP => Payload::Config(ConfigPayload::parse(body)?),
            // §2.5: an unrecognised payload with the critical bit set rejects the message.
            _ if !ty.is_known() && critical => return Err(IkeError::UnsupportedCriticalPayload),
            _ => Payload::Other(RawPayload {
                ty,
                critical,
                body: body.to_vec(),
            }),
        })
    }

    /// Append this payload's body (no generic header).
    fn emit_body(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        match self {
            Payload::Sa(p) => p.emit(out),
            Payload::Ke(p) => p.emit(out),
            Payload::IdI(p) | Payload::IdR(p) => p.emit(out),
            Payload::Auth(p) => p.emit(out),
            Payload::Nonce(b) | Payload::VendorId(b) => {
                out.extend_from_slice(b);
                Ok(())
            }
            Payload::Notify(p) => p.emit(out),
            Payload::Delete(p) => p.emit(out),
            Payload::TsI(p) | Payload::TsR(p) => p.emit(out),
            Payload::Encrypted(p) => p.emit(out),
            Payload::EncryptedFragment(p) => p.emit(out),
            Payload::Config(p) => p.emit(out),
            Payload::Other(raw) => {
                out.extend_from_slice(&raw.body);
                Ok(())
            }
        }
    }

    /// The critical bit we send: zero for every type defined in RFC 7296 (§3.2).
    fn critical(&self) -> bool {
        matches!(self, Payload::Other(raw) if raw.critical)
    }

    /// The Next Payload value this payload's own header carries when it is last: the
    /// Encrypted payloads name their first inner payload (§3.14), others carry 0.
    fn trailing_next(&self) -> PayloadType {
        match self {
            Payload::Encrypted(p) => p.inner_next,
            Payload::EncryptedFragment(p) => p.inner_next,
            _ => PayloadType::NONE,
        }
    }
}

/// Parse a chain of payloads starting with type `first` that must fill `buf` exactly
/// (RFC 7296 §3.2). An Encrypted payload (SK or SKF) ends the chain and must be last (§3.14).
pub fn parse_chain(first: PayloadType, buf: &[u8]) -> Result<Vec<Payload>, IkeError> {
    let mut out = Vec::new();
    let mut next = first;
    let mut r = Reader::new(buf, IkeError::TruncatedPayload);
    while next != PayloadType::NONE {
        if out.len() >= MAX_PAYLOADS {
            return Err(IkeError::TooManyPayloads);
        }
        let next_field = PayloadType(r.u8()?);
        let critical = r.u8()? & 0x80 != 0;
        let len = usize::from(r.u16()?);
        let body_len = len
            .checked_sub(GENERIC_HEADER_LEN)
            .ok_or(IkeError::BadPayloadLength)?;
        let body = r.take(body_len)?;
        match next {
            PayloadType::SK | PayloadType::SKF => {
                let p = if next == PayloadType::SK {
                    Payload::Encrypted(EncryptedPayload::parse(next_field, body)?)
                } else {
                    Payload::EncryptedFragment(EncryptedFragment::parse(next_field, body)?)
                };
                out.push(p);
                // §3.14: "the Encrypted payload, if present in a message, MUST be the last".
                if !r.is_empty() {
                    return Err(IkeError::EncryptedPayloadNotLast);
                }
                return Ok(out);
            }
            ty => out.push(Payload::parse_body(ty, critical, body)?),
        }
        next = next_field;
    }
    if !r.is_empty() {
        return Err(IkeError::TrailingBytes);
    }
    Ok(out)
}

/// Append `payloads` with their generic headers; returns the type of the first one (for
/// the IKE header's or the Encrypted payload's Next Payload field).
pub fn emit_chain(payloads: &[Payload], out: &mut Vec<u8>) -> Result<PayloadType, IkeError> {
    for (i, p) in payloads.iter().enumerate() {
        let next = match payloads.get(i + 1) {
            Some(n) => {
                if matches!(p, Payload::Encrypted(_) | Payload::EncryptedFragment(_)) {
                    return Err(IkeError::EncryptedPayloadNotLast);
                }
                n.payload_type()
            }
            None => p.trailing_next(),
        };
        let start = out.len();
        out.push(next.0);
        out.push(if p.critical() { 0x80 } else { 0 });
        out.extend_from_slice(&[0, 0]);
        p.emit_body(out)?;
        let len = out.len() - start;
        patch_u16(out, start + 2, len)?;
    }
    Ok(payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_critical_payload_is_rejected() {
        // type 200, critical, 4 bytes of body
        let buf = [0, 0x80, 0, 8, 1, 2, 3, 4];
        assert_eq!(
            parse_chain(PayloadType(200), &buf),
            Err(IkeError::UnsupportedCriticalPayload)
        );
        // without the critical bit it is skipped (kept raw) and round-trips
        let buf = [0, 0x00, 0, 8, 1, 2, 3, 4];
        let p = parse_chain(PayloadType(200), &buf).unwrap();
        assert_eq!(p.len(), 1);
        let mut out = Vec::new();
        assert_eq!(emit_chain(&p, &mut out), Ok(PayloadType(200)));
        assert_eq!(out, buf);
    }

    #[test]
    fn chain_errors() {
        assert_eq!(
            parse_chain(PayloadType::VENDOR_ID, &[0, 0, 0, 3]),
            Err(IkeError::BadPayloadLength)
        );
        assert_eq!(
            parse_chain(PayloadType::VENDOR_ID, &[0, 0, 0, 9, 1]),
            Err(IkeError::TruncatedPayload)
        );
        assert_eq!(
            parse_chain(PayloadType::VENDOR_ID, &[0, 0, 0, 4, 9]),
            Err(IkeError::TrailingBytes)
        );
        assert_eq!(
            parse_chain(PayloadType::VENDOR_ID, &[43, 0, 0, 4]),
            Err(IkeError::TruncatedPayload)
        );
        // a chain of VIDs pointing at each other forever is cut at MAX_PAYLOADS
        let many: Vec<u8> = std::iter::repeat_n([43u8, 0, 0, 4], 100)
            .flatten()
            .collect();
        assert_eq!(
            parse_chain(PayloadType::VENDOR_ID, &many),
            Err(IkeError::TooManyPayloads)
        );
        // nonce bounds
        let mut n = vec![0u8, 0, 0, 4 + 15];
        n.extend_from_slice(&[0; 15]);
        assert_eq!(
            parse_chain(PayloadType::NONCE, &n),
            Err(IkeError::BadNonceLength)
        );
    }

    #[test]
    fn encrypted_must_be_last() {
        // SK (inner next = IDi) followed by stray bytes
        let mut buf = vec![35u8, 0, 0, 4 + 24];
        buf.extend_from_slice(&[0; 24]);
        assert!(parse_chain(PayloadType::SK, &buf).is_ok());
        buf.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(
            parse_chain(PayloadType::SK, &buf),
            Err(IkeError::EncryptedPayloadNotLast)
        );
        let sk = Payload::Encrypted(EncryptedPayload {
            inner_next: PayloadType::IDI,
            body: vec![0; 24],
        });
        let v = Payload::VendorId(vec![1]);
        assert_eq!(
            emit_chain(&[sk, v], &mut Vec::new()),
            Err(IkeError::EncryptedPayloadNotLast)
        );
    }
}
