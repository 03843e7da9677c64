//! Ephemeral Diffie-Hellman with `ring`: ECP groups 19 / 20 (RFC 5903) and Curve25519
//! (group 31, RFC 8031).
//!
//! RFC 5903 §7: the KE payload of an ECP group carries x ‖ y, each coordinate the field
//! size, *without* the 0x04 prefix of SEC1's uncompressed form that `ring` uses; the shared
//! secret is the x coordinate of the product. RFC 8031 §3: Curve25519 public values and the
//! shared secret are 32 octets; an all-zero result must be rejected (ring refuses it).

use ring::agreement;
use zeroize::Zeroizing;

use super::Secret;
use super::transform::DhGroup;
use crate::ike::IkeError;
use crate::ike::payload::KePayload;

/// One side of a key exchange: our private key and the public value for the KE payload.
#[derive(Debug)]
pub struct KeyExchange {
    group: DhGroup,
    private: agreement::EphemeralPrivateKey,
    public: Vec<u8>,
}

fn algorithm(group: DhGroup) -> &'static agreement::Algorithm {
    match group {
        DhGroup::Ecp256 => &agreement::ECDH_P256,
        DhGroup::Ecp384 => &agreement::ECDH_P384,
        DhGroup::Curve25519 => &agreement::X25519,
    }
}

impl KeyExchange {
    /// Generate a fresh private key.
    pub fn generate(group: DhGroup, rng: &dyn ring::rand::SecureRandom) -> Result<Self, IkeError> {
        let private = agreement::EphemeralPrivateKey::generate(algorithm(group), rng)
            .map_err(|_| IkeError::RandomFailed)?;
        let pk = private
            .compute_public_key()
            .map_err(|_| IkeError::RandomFailed)?;
        let pk = pk.as_ref();
        let public = match group {
            // strip SEC1's 0x04 (RFC 5903 §7)
            DhGroup::Ecp256 | DhGroup::Ecp384 => pk.get(1..).unwrap_or_default().to_vec(),
            DhGroup::Curve25519 => pk.to_vec(),
        };
        Ok(Self {
            group,
            private,
            public,
        })
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value, as the KE payload's Key Exchange Data.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// Combine with the peer's KE data into the shared secret g^ir (consumes the private key).
    pub fn agree(self, peer: &[u8]) -> Result<Secret, IkeError> {
        if peer.len() != self.group.public_len() {
            return Err(IkeError::BadPublicKey);
        }
        let mut sec1 = Vec::with_capacity(peer.len() + 1);
        if self.group != DhGroup::Curve25519 {
            sec1.push(0x04);
        }
        sec1.extend_from_slice(peer);
        let peer_key = agreement::UnparsedPublicKey::new(algorithm(self.group), sec1);
        agreement::agree_ephemeral(self.private, &peer_key, |s| Zeroizing::new(s.to_vec()))
            .map_err(|_| IkeError::KeyAgreementFailed)
    }
}

/// Check a received KE payload against the negotiated group: a different group is
/// `ke_group_mismatch` (answer INVALID_KE_PAYLOAD naming ours, RFC 7296 §1.2, §3.10.1),
/// a wrong data length `bad_public_key` (RFC 5903 §7, RFC 8031 §3).
pub fn check_ke(ke: &KePayload, group: DhGroup) -> Result<(), IkeError> {
    if ke.group != group.id() {
        return Err(IkeError::KeGroupMismatch);
    }
    if ke.data.len() != group.public_len() {
        return Err(IkeError::BadPublicKey);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn both_sides_agree() {
        let rng = SystemRandom::new();
        for (g, secret_len) in [
            (DhGroup::Curve25519, 32),
            (DhGroup::Ecp256, 32),
            (DhGroup::Ecp384, 48),
        ] {
            let a = KeyExchange::generate(g, &rng).unwrap();
            let b = KeyExchange::generate(g, &rng).unwrap();
            assert_eq!(a.public_value().len(), g.public_len());
            assert_eq!(a.group(), g);
            let pa = a.public_value().to_vec();
            let sa = a.agree(b.public_value()).unwrap();
            let sb = b.agree(&pa).unwrap();
            assert_eq!(sa, sb);
            assert_eq!(sa.len(), secret_len);
        }
    }

    #[test]
    fn ke_checks() {
        let ke = KePayload {
            group: 31,
            data: vec![1; 32],
        };
        assert_eq!(check_ke(&ke, DhGroup::Curve25519), Ok(()));
        assert_eq!(
            check_ke(&ke, DhGroup::Ecp256),
            Err(IkeError::KeGroupMismatch)
        );
        let short = KePayload {
            group: 19,
            data: vec![1; 63],
        };
        assert_eq!(
            check_ke(&short, DhGroup::Ecp256),
            Err(IkeError::BadPublicKey)
        );
    }

    #[test]
    fn bad_peer_values() {
        let rng = SystemRandom::new();
        let a = KeyExchange::generate(DhGroup::Ecp256, &rng).unwrap();
        assert_eq!(a.agree(&[1; 65]).unwrap_err(), IkeError::BadPublicKey);
        // not a point on the curve
        let a = KeyExchange::generate(DhGroup::Ecp256, &rng).unwrap();
        assert_eq!(a.agree(&[1; 64]).unwrap_err(), IkeError::KeyAgreementFailed);
        // low-order Curve25519 point gives an all-zero secret (RFC 8031 §2.3)
        let a = KeyExchange::generate(DhGroup::Curve25519, &rng).unwrap();
        assert_eq!(a.agree(&[0; 32]).unwrap_err(), IkeError::KeyAgreementFailed);
    }
}
