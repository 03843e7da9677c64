//! Transform IDs we implement (RFC 7296 §3.3.2, IANA "IKEv2 Transform Type N Transform IDs")
//! and the suites negotiated from them.

use crate::ike::IkeError;
use crate::ike::payload::{Proposal, ProtocolId, Transform, TransformType};

/// ENCR_AES_CBC (RFC 3602; IKEv2 use RFC 7296 §3.3.2), key length attribute required.
pub const ENCR_AES_CBC: u16 = 12;
/// ENCR_AES_GCM_16 (RFC 4106 for ESP, RFC 5282 for IKE), key length attribute required.
pub const ENCR_AES_GCM_16: u16 = 20;
/// PRF_HMAC_SHA2_256 (RFC 4868).
pub const PRF_HMAC_SHA2_256: u16 = 5;
/// PRF_HMAC_SHA2_384 (RFC 4868).
pub const PRF_HMAC_SHA2_384: u16 = 6;
/// PRF_HMAC_SHA2_512 (RFC 4868).
pub const PRF_HMAC_SHA2_512: u16 = 7;
/// INTEG NONE (used with combined-mode ciphers, RFC 5282 §8).
pub const AUTH_NONE: u16 = 0;
/// AUTH_HMAC_SHA2_256_128 (RFC 4868).
pub const AUTH_HMAC_SHA2_256_128: u16 = 12;
/// AUTH_HMAC_SHA2_384_192 (RFC 4868).
pub const AUTH_HMAC_SHA2_384_192: u16 = 13;
/// AUTH_HMAC_SHA2_512_256 (RFC 4868).
pub const AUTH_HMAC_SHA2_512_256: u16 = 14;
/// 256-bit random ECP group (RFC 5903).
pub const DH_ECP_256: u16 = 19;
/// 384-bit random ECP group (RFC 5903).
pub const DH_ECP_384: u16 = 20;
/// Curve25519 (RFC 8031).
pub const DH_CURVE25519: u16 = 31;
/// ESN transform: no extended sequence numbers.
pub const ESN_NO: u16 = 0;
/// ESN transform: extended sequence numbers (RFC 4304).
pub const ESN_YES: u16 = 1;

/// Encryption algorithm with its key size in bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encr {
    /// AES-CBC, 128/192/256-bit key; needs an integrity algorithm.
    AesCbc { key_bits: u16 },
    /// AES-GCM with a 16-octet ICV, 128/192/256-bit key; combined mode.
    AesGcm16 { key_bits: u16 },
}

impl Encr {
    /// From a transform (type ENCR), if we implement it with that key length.
    pub fn from_transform(t: &Transform) -> Option<Self> {
        if t.ty != TransformType::ENCR || !t.other_attributes.is_empty() {
            return None;
        }
        let key_bits = t.key_length.filter(|k| matches!(k, 128 | 192 | 256))?;
        match t.id {
            ENCR_AES_CBC => Some(Self::AesCbc { key_bits }),
            ENCR_AES_GCM_16 => Some(Self::AesGcm16 { key_bits }),
            _ => None,
        }
    }

    /// The transform that offers this algorithm.
    pub fn transform(self) -> Transform {
        match self {
            Self::AesCbc { key_bits } => {
                Transform::with_key_length(TransformType::ENCR, ENCR_AES_CBC, key_bits)
            }
            Self::AesGcm16 { key_bits } => {
                Transform::with_key_length(TransformType::ENCR, ENCR_AES_GCM_16, key_bits)
            }
        }
    }

    /// Cipher key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::AesCbc { key_bits } | Self::AesGcm16 { key_bits } => usize::from(key_bits / 8),
        }
    }

    /// Keying material taken per direction: for GCM the key plus a 4-byte salt (RFC 5282
    /// §7.1 for IKE, RFC 4106 §8.1 for ESP).
    pub fn keymat_len(self) -> usize {
        match self {
            Self::AesCbc { .. } => self.key_len(),
            Self::AesGcm16 { .. } => self.key_len() + 4,
        }
    }

    /// True for combined-mode (AEAD) ciphers, which take no INTEG transform.
    pub fn is_aead(self) -> bool {
        matches!(self, Self::AesGcm16 { .. })
    }
}

/// Pseudorandom function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prf {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Prf {
    /// From a transform (type PRF).
    pub fn from_transform(t: &Transform) -> Option<Self> {
        if t.ty != TransformType::PRF || t.key_length.is_some() || !t.other_attributes.is_empty() {
            return None;
        }
        match t.id {
            PRF_HMAC_SHA2_256 => Some(Self::HmacSha256),
            PRF_HMAC_SHA2_384 => Some(Self::HmacSha384),
            PRF_HMAC_SHA2_512 => Some(Self::HmacSha512),
            _ => None,
        }
    }

    /// The transform that offers this PRF.
    pub fn transform(self) -> Transform {
        let id = match self {
            Self::HmacSha256 => PRF_HMAC_SHA2_256,
            Self::HmacSha384 => PRF_HMAC_SHA2_384,
            Self::HmacSha512 => PRF_HMAC_SHA2_512,
        };
        Transform::new(TransformType::PRF, id)
    }

    /// The ring HMAC algorithm.
    pub fn hmac(self) -> ring::hmac::Algorithm {
        match self {
            Self::HmacSha256 => ring::hmac::HMAC_SHA256,
            Self::HmacSha384 => ring::hmac::HMAC_SHA384,
            Self::HmacSha512 => ring::hmac::HMAC_SHA512,
        }
    }

    /// Output length, which is also the preferred key length (SK_d, SK_pi, SK_pr: §2.14).
    pub fn out_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }
}

/// Integrity algorithm (HMAC-SHA2 with truncated output, RFC 4868).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integ {
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl Integ {
    /// From a transform (type INTEG); `Ok(None)` for AUTH_NONE.
    pub fn from_transform(t: &Transform) -> Option<Option<Self>> {
        if t.ty != TransformType::INTEG || t.key_length.is_some() || !t.other_attributes.is_empty()
        {
            return None;
        }
        match t.id {
            AUTH_NONE => Some(None),
            AUTH_HMAC_SHA2_256_128 => Some(Some(Self::HmacSha256_128)),
            AUTH_HMAC_SHA2_384_192 => Some(Some(Self::HmacSha384_192)),
            AUTH_HMAC_SHA2_512_256 => Some(Some(Self::HmacSha512_256)),
            _ => None,
        }
    }

    /// The transform that offers this algorithm.
    pub fn transform(self) -> Transform {
        let id = match self {
            Self::HmacSha256_128 => AUTH_HMAC_SHA2_256_128,
            Self::HmacSha384_192 => AUTH_HMAC_SHA2_384_192,
            Self::HmacSha512_256 => AUTH_HMAC_SHA2_512_256,
        };
        Transform::new(TransformType::INTEG, id)
    }

    /// The ring HMAC algorithm.
    pub fn hmac(self) -> ring::hmac::Algorithm {
        match self {
            Self::HmacSha256_128 => ring::hmac::HMAC_SHA256,
            Self::HmacSha384_192 => ring::hmac::HMAC_SHA384,
            Self::HmacSha512_256 => ring::hmac::HMAC_SHA512,
        }
    }

    /// Key length in bytes (RFC 4868 §2.1.1: the hash output size).
    pub fn key_len(self) -> usize {
        match self {
            Self::HmacSha256_128 => 32,
            Self::HmacSha384_192 => 48,
            Self::HmacSha512_256 => 64,
        }
    }

    /// Truncated ICV length in bytes (RFC 4868 §2.3: half the output).
    pub fn icv_len(self) -> usize {
        self.key_len() / 2
    }
}

/// Diffie-Hellman group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// 256-bit random ECP group (19).
    Ecp256,
    /// 384-bit random ECP group (20).
    Ecp384,
    /// Curve25519 (31).
    Curve25519,
}

impl DhGroup {
    /// From its transform ID / KE payload group number.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            DH_ECP_256 => Some(Self::Ecp256),
            DH_ECP_384 => Some(Self::Ecp384),
            DH_CURVE25519 => Some(Self::Curve25519),
            _ => None,
        }
    }

    /// The group number.
    pub fn id(self) -> u16 {
        match self {
            Self::Ecp256 => DH_ECP_256,
            Self::Ecp384 => DH_ECP_384,
            Self::Curve25519 => DH_CURVE25519,
        }
    }

    /// The transform that offers this group.
    pub fn transform(self) -> Transform {
        Transform::new(TransformType::DH, self.id())
    }

    /// Length of the KE payload's data (RFC 5903 §7: x‖y; RFC 8031 §3: 32 octets).
    pub fn public_len(self) -> usize {
        match self {
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            Self::Curve25519 => 32,
        }
    }
}

/// An IKE SA suite: what one IKE proposal negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeSuite {
    pub encr: Encr,
    pub prf: Prf,
    /// `None` with an AEAD cipher (RFC 5282 §8), required otherwise.
    pub integ: Option<Integ>,
    pub dh: DhGroup,
}

impl IkeSuite {
    /// The transforms of this suite, in the order strongSwan and RFC 7296 §3.3 examples use.
    pub fn transforms(&self) -> Vec<Transform> {
        let mut v = vec![self.encr.transform()];
        v.extend(self.integ.map(Integ::transform));
        v.push(self.prf.transform());
        v.push(self.dh.transform());
        v
    }

    /// A proposal offering exactly this suite.
    pub fn proposal(&self, num: u8, spi: &[u8]) -> Proposal {
        Proposal {
            num,
            protocol: ProtocolId::IKE,
            spi: spi.to_vec(),
            transforms: self.transforms(),
        }
    }

    /// Reject combinations that cannot work: AEAD with an INTEG, or a plain cipher without.
    pub fn check(&self) -> Result<(), IkeError> {
        if self.encr.is_aead() == self.integ.is_some() {
            return Err(IkeError::UnsupportedTransform);
        }
        Ok(())
    }
}

/// A child SA (ESP) suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspSuite {
    pub encr: Encr,
    pub integ: Option<Integ>,
    /// PFS group for CREATE_CHILD_SA (absent in IKE_AUTH, §1.2).
    pub dh: Option<DhGroup>,
    /// Extended sequence numbers (RFC 4304).
    pub esn: bool,
}

impl EspSuite {
    /// The transforms of this suite.
    pub fn transforms(&self) -> Vec<Transform> {
        let mut v = vec![self.encr.transform()];
        v.extend(self.integ.map(Integ::transform));
        v.extend(self.dh.map(DhGroup::transform));
        v.push(Transform::new(
            TransformType::ESN,
            if self.esn { ESN_YES } else { ESN_NO },
        ));
        v
    }

    /// A proposal offering exactly this suite with our inbound SPI.
    pub fn proposal(&self, num: u8, spi: [u8; 4]) -> Proposal {
        Proposal {
            num,
            protocol: ProtocolId::ESP,
            spi: spi.to_vec(),
            transforms: self.transforms(),
        }
    }

    /// Reject combinations that cannot work (see [`IkeSuite::check`]).
    pub fn check(&self) -> Result<(), IkeError> {
        if self.encr.is_aead() == self.integ.is_some() {
            return Err(IkeError::UnsupportedTransform);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_round_trip() {
        for e in [
            Encr::AesGcm16 { key_bits: 128 },
            Encr::AesGcm16 { key_bits: 256 },
            Encr::AesCbc { key_bits: 192 },
        ] {
            assert_eq!(Encr::from_transform(&e.transform()), Some(e));
        }
        assert_eq!(
            Encr::from_transform(&Transform::new(TransformType::ENCR, ENCR_AES_GCM_16)),
            None
        );
        assert_eq!(
            Encr::from_transform(&Transform::with_key_length(TransformType::ENCR, 20, 100)),
            None
        );
        for p in [Prf::HmacSha256, Prf::HmacSha384, Prf::HmacSha512] {
            assert_eq!(Prf::from_transform(&p.transform()), Some(p));
        }
        for i in [
            Integ::HmacSha256_128,
            Integ::HmacSha384_192,
            Integ::HmacSha512_256,
        ] {
            assert_eq!(Integ::from_transform(&i.transform()), Some(Some(i)));
        }
        for g in [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Curve25519] {
            assert_eq!(DhGroup::from_id(g.id()), Some(g));
        }
        assert_eq!(Encr::AesGcm16 { key_bits: 128 }.keymat_len(), 20);
        let bad = IkeSuite {
            encr: Encr::AesGcm16 { key_bits: 128 },
            prf: Prf::HmacSha256,
            integ: Some(Integ::HmacSha256_128),
            dh: DhGroup::Curve25519,
        };
        assert_eq!(bad.check(), Err(IkeError::UnsupportedTransform));
    }
}
