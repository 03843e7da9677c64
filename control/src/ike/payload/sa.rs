//! Security Association payload: proposals, transforms, attributes (RFC 7296 §3.3).
//!
//! ```text
//! Proposal:  | 0 (last) or 2 | RESERVED | Proposal Length | Proposal Num | Protocol ID |
//!            | SPI Size | Num Transforms | SPI (variable) | <Transforms> |
//! Transform: | 0 (last) or 3 | RESERVED | Transform Length | Transform Type | RESERVED |
//!            | Transform ID (2) | Transform Attributes |
//! Attribute: |A| Attribute Type (15) | AF=1: Attribute Value (2) | AF=0: Length (2) + Value |
//! ```

use crate::ike::IkeError;
use crate::ike::reader::{Reader, len_u16, patch_u16};

/// Most proposals in one SA payload.
pub const MAX_PROPOSALS: usize = 32;
/// Most transforms in one proposal.
pub const MAX_TRANSFORMS: usize = 64;
/// Key Length attribute type (RFC 7296 §3.3.5), always TV format.
pub const ATTR_KEY_LENGTH: u16 = 14;

/// Protocol ID of a proposal (RFC 7296 §3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolId(pub u8);

impl ProtocolId {
    pub const IKE: Self = Self(1);
    pub const AH: Self = Self(2);
    pub const ESP: Self = Self(3);
}

/// Transform type (RFC 7296 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransformType(pub u8);

impl TransformType {
    /// Encryption Algorithm (ENCR).
    pub const ENCR: Self = Self(1);
    /// Pseudorandom Function (PRF).
    pub const PRF: Self = Self(2);
    /// Integrity Algorithm (INTEG).
    pub const INTEG: Self = Self(3);
    /// Diffie-Hellman group (D-H, "Key Exchange Method" since RFC 9370).
    pub const DH: Self = Self(4);
    /// Extended Sequence Numbers (ESN).
    pub const ESN: Self = Self(5);
}

/// One transform. Only the Key Length attribute is understood (§3.3.5); any other attribute
/// is kept raw in `other_attributes` so the proposal selector can refuse the transform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transform {
    pub ty: TransformType,
    pub id: u16,
    /// Key Length in bits (attribute 14), for variable-key-length ciphers.
    pub key_length: Option<u16>,
    /// Encoded attributes other than Key Length, in received order.
    pub other_attributes: Vec<u8>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(ty: TransformType, id: u16) -> Self {
        Self {
            ty,
            id,
            key_length: None,
            other_attributes: Vec::new(),
        }
    }

    /// A transform with a Key Length attribute.
    pub fn with_key_length(ty: TransformType, id: u16, bits: u16) -> Self {
        Self {
            key_length: Some(bits),
            ..Self::new(ty, id)
        }
    }

    fn parse(buf: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(buf, IkeError::BadTransform);
        let ty = TransformType(r.u8()?);
        let _reserved = r.u8()?;
        let id = r.u16()?;
        let mut key_length = None;
        let mut other_attributes = Vec::new();
        let mut attrs = Reader::new(r.rest(), IkeError::BadAttribute);
        let mut count = 0;
        while !attrs.is_empty() {
            count += 1;
            if count > 16 {
                return Err(IkeError::TooManyItems);
            }
            let start = attrs.rest();
            let af_type = attrs.u16()?;
            let tv = af_type & 0x8000 != 0;
            let kind = af_type & 0x7fff;
            let consumed = if tv {
                let v = attrs.u16()?;
                if kind == ATTR_KEY_LENGTH {
                    if key_length.replace(v).is_some() {
                        return Err(IkeError::BadAttribute);
                    }
                    0
                } else {
                    4
                }
            } else {
                // §3.3.5: Key Length "MUST use TV format"; a TLV Key Length is malformed.
                if kind == ATTR_KEY_LENGTH {
                    return Err(IkeError::BadAttribute);
                }
                let len = usize::from(attrs.u16()?);
                attrs.take(len)?;
                4 + len
            };
            if consumed > 0 {
                other_attributes
                    .extend_from_slice(start.get(..consumed).ok_or(IkeError::BadAttribute)?);
            }
        }
        Ok(Self {
            ty,
            id,
            key_length,
            other_attributes,
        })
    }

    fn emit(&self, out: &mut Vec<u8>, last: bool) -> Result<(), IkeError> {
        let start = out.len();
        out.extend_from_slice(&[if last { 0 } else { 3 }, 0, 0, 0, self.ty.0, 0]);
        out.extend_from_slice(&self.id.to_be_bytes());
        if let Some(bits) = self.key_length {
            out.extend_from_slice(&(0x8000 | ATTR_KEY_LENGTH).to_be_bytes());
            out.extend_from_slice(&bits.to_be_bytes());
        }
        out.extend_from_slice(&self.other_attributes);
        let len = out.len() - start;
        patch_u16(out, start + 2, len)
    }
}

/// One proposal (RFC 7296 §3.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// Proposal Num: 1 for the first, each next one more (§3.3.1); in a reply, the number
    /// of the accepted proposal.
    pub num: u8,
    pub protocol: ProtocolId,
    /// Sender's SPI: empty for the initial IKE SA negotiation, 8 bytes for IKE rekeying,
    /// 4 bytes for ESP/AH.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

impl Proposal {
    fn parse(buf: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(buf, IkeError::BadProposal);
        let num = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = r.u8()?;
        let num_transforms = usize::from(r.u8()?);
        if !matches!(spi_size, 0 | 4 | 8) {
            return Err(IkeError::BadProposal);
        }
        let spi = r.take(usize::from(spi_size))?.to_vec();
        if num_transforms > MAX_TRANSFORMS {
            return Err(IkeError::TooManyItems);
        }
        let mut transforms = Vec::with_capacity(num_transforms);
        let mut t = Reader::new(r.rest(), IkeError::BadTransform);
        loop {
            let last = t.u8()?;
            let _reserved = t.u8()?;
            let len = usize::from(t.u16()?);
            let body = t.take(len.checked_sub(4).ok_or(IkeError::BadTransform)?)?;
            transforms.push(Transform::parse(body)?);
            match last {
                0 => break,
                3 if transforms.len() < num_transforms => {}
                _ => return Err(IkeError::BadTransform),
            }
        }
        if transforms.len() != num_transforms || !t.is_empty() {
            return Err(IkeError::BadProposal);
        }
        Ok(Self {
            num,
            protocol,
            spi,
            transforms,
        })
    }

    fn emit(&self, out: &mut Vec<u8>, last: bool) -> Result<(), IkeError> {
        let start = out.len();
        let spi_size = u8::try_from(self.spi.len()).map_err(|_| IkeError::PayloadTooLong)?;
        let n = u8::try_from(self.transforms.len()).map_err(|_| IkeError::PayloadTooLong)?;
        out.extend_from_slice(&[
            if last { 0 } else { 2 },
            0,
            0,
            0,
            self.num,
            self.protocol.0,
            spi_size,
            n,
        ]);
        out.extend_from_slice(&self.spi);
        for (i, t) in self.transforms.iter().enumerate() {
            t.emit(out, i + 1 == self.transforms.len())?;
        }
        let len = out.len() - start;
        len_u16(len)?;
        patch_u16(out, start + 2, len)
    }

    /// The transforms of one type, in offered order.
    pub fn transforms_of(&self, ty: TransformType) -> impl Iterator<Item = &Transform> {
        self.transforms.iter().filter(move |t| t.ty == ty)
    }
}

/// Security Association payload (RFC 7296 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SaPayload {
    pub proposals: Vec<Proposal>,
}

impl SaPayload {
    /// Parse the payload body (generic header removed).
    pub fn parse(body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadProposal);
        let mut proposals: Vec<Proposal> = Vec::new();
        loop {
            if proposals.len() >= MAX_PROPOSALS {
                return Err(IkeError::TooManyItems);
            }
            let last = r.u8()?;
            let _reserved = r.u8()?;
            let len = usize::from(r.u16()?);
            let p = Proposal::parse(r.take(len.checked_sub(4).ok_or(IkeError::BadProposal)?)?)?;
            // §3.3.1: "The first Proposal MUST have a Proposal Num of one (1). ... each
            // subsequent proposal MUST be one more than the previous proposal" — but a reply's
            // single proposal carries "the number on the proposal sent that was accepted",
            // so the first number is checked once we know whether there are several.
            let ok = match proposals.last() {
                Some(prev) => p.num == prev.num.wrapping_add(1) && prev.num != 0,
                None => p.num != 0,
            };
            if !ok {
                return Err(IkeError::BadProposal);
            }
            proposals.push(p);
            match last {
                0 => break,
                2 => {}
                _ => return Err(IkeError::BadProposal),
            }
        }
        let several = proposals.len() > 1;
        if !r.is_empty() || (several && proposals.first().is_some_and(|p| p.num != 1)) {
            return Err(IkeError::BadProposal);
        }
        Ok(Self { proposals })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        for (i, p) in self.proposals.iter().enumerate() {
            p.emit(out, i + 1 == self.proposals.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SaPayload {
        SaPayload {
            proposals: vec![
                Proposal {
                    num: 1,
                    protocol: ProtocolId::IKE,
                    spi: vec![],
                    transforms: vec![
                        Transform::with_key_length(TransformType::ENCR, 20, 128),
                        Transform::new(TransformType::PRF, 5),
                        Transform::new(TransformType::DH, 31),
                    ],
                },
                Proposal {
                    num: 2,
                    protocol: ProtocolId::ESP,
                    spi: vec![1, 2, 3, 4],
                    transforms: vec![
                        Transform::with_key_length(TransformType::ENCR, 20, 256),
                        Transform::new(TransformType::ESN, 0),
                    ],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let sa = sample();
        let mut out = Vec::new();
        sa.emit(&mut out).unwrap();
        assert_eq!(SaPayload::parse(&out).unwrap(), sa);
    }

    #[test]
    fn malformed_is_named() {
        let mut out = Vec::new();
        sample().emit(&mut out).unwrap();
        // every truncation fails with a named error, never panics
        for n in 0..out.len() {
            assert!(SaPayload::parse(&out[..n]).is_err());
        }
        // wrong proposal numbers
        let mut bad = out.clone();
        bad[4] = 2;
        assert_eq!(SaPayload::parse(&bad), Err(IkeError::BadProposal));
        let mut bad = out.clone();
        bad[4] = 0;
        assert_eq!(SaPayload::parse(&bad), Err(IkeError::BadProposal));
        // a reply's single proposal may carry any accepted number
        let reply = SaPayload {
            proposals: vec![Proposal {
                num: 2,
                ..sample().proposals[1].clone()
            }],
        };
        let mut one = Vec::new();
        reply.emit(&mut one).unwrap();
        assert_eq!(SaPayload::parse(&one), Ok(reply));
        // bad SPI size
        let mut bad = out.clone();
        bad[6] = 3;
        assert!(SaPayload::parse(&bad).is_err());
        // transform count disagrees
        let mut bad = out.clone();
        bad[7] = 4;
        assert!(SaPayload::parse(&bad).is_err());
        // TLV key length is malformed
        let t = [20u8, 0, 0, 0, 0x00, 14, 0, 2, 0, 128];
        assert_eq!(Transform::parse(&t), Err(IkeError::BadAttribute));
    }

    #[test]
    fn unknown_attribute_kept() {
        let t = [1u8, 0, 0, 12, 0x80, 14, 0, 128, 0x00, 99, 0, 1, 7];
        let tr = Transform::parse(&t).unwrap();
        assert_eq!(tr.key_length, Some(128));
        assert_eq!(tr.other_attributes, vec![0x00, 99, 0, 1, 7]);
    }
}
