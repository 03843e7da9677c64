//! AES-GCM for ESP (RFC 4106) on top of `ring`: keys expanded once per SA, one-shot seal and
//! open in place.

use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::sa::{Aead, KeyMaterial};

/// An expanded AES-GCM key with its salt.
///
/// `ring` keeps the expanded key schedule in its own memory and does not zeroize it on drop;
/// the raw key material ([`KeyMaterial`]) is zeroized.
pub struct GcmKey {
    key: LessSafeKey,
    salt: [u8; 4],
}

impl std::fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcmKey(<redacted>)")
    }
}

/// The ICV did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthError;

impl GcmKey {
    /// Expand `km` for `aead`. [`KeyMaterial`] guarantees the length, so this cannot fail.
    pub fn new(aead: Aead, km: &KeyMaterial) -> Self {
        let alg = match aead {
            Aead::Aes128Gcm16 => &AES_128_GCM,
            Aead::Aes256Gcm16 => &AES_256_GCM,
        };
        // ring only rejects a key of the wrong length; KeyMaterial::new checked it.
        let unbound = match UnboundKey::new(alg, km.key()) {
            Ok(k) => k,
            Err(_) => unreachable!("KeyMaterial length is validated for {}", aead.name()),
        };
        Self {
            key: LessSafeKey::new(unbound),
            salt: km.salt(),
        }
    }

    /// The 12-byte nonce: salt ‖ explicit IV (RFC 4106 §4).
    #[inline]
    fn nonce(&self, iv: &[u8; 8]) -> Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(iv);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypt `in_out` in place and return the 16-byte ICV.
    #[inline]
    pub fn seal(&self, iv: &[u8; 8], aad: &[u8], in_out: &mut [u8]) -> [u8; 16] {
        // ring fails only when the input exceeds GCM's 2^36-byte limit: impossible for a frame.
        match self
            .key
            .seal_in_place_separate_tag(self.nonce(iv), Aad::from(aad), in_out)
        {
            Ok(tag) => tag_bytes(tag),
            Err(_) => unreachable!("frame larger than the GCM input limit"),
        }
    }

    /// Decrypt `ciphertext_and_icv` in place; on success the first `len - 16` bytes hold the
    /// plaintext.
    #[inline]
    pub fn open(
        &self,
        iv: &[u8; 8],
        aad: &[u8],
        ciphertext_and_icv: &mut [u8],
    ) -> Result<(), AuthError> {
        self.key
            .open_in_place(self.nonce(iv), Aad::from(aad), ciphertext_and_icv)
            .map(|_| ())
            .map_err(|_| AuthError)
    }
}

fn tag_bytes(tag: Tag) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(tag.as_ref());
    out
}
