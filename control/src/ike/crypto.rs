//! IKEv2 cryptography over `ring` (and `aes` + `cbc` for ENCR_AES_CBC), sans-IO.
//!
//! - [`transform`]: the transform IDs we implement and the suites built from them (§3.3.2).
//! - [`prf`]: `prf` and `prf+` (RFC 7296 §2.13).
//! - [`keys`]: SKEYSEED and SK_d/ai/ar/ei/er/pi/pr (§2.14, §2.18), child SA KEYMAT (§2.17).
//! - [`sk`]: the Encrypted payload (§3.14) for AES-GCM-16 (RFC 5282) and AES-CBC + HMAC-SHA2.
//! - [`dh`]: key exchange for groups 19, 20 (RFC 5903) and 31 (RFC 8031).
//! - [`auth`]: PSK AUTH (§2.15) and NAT detection hashes (§2.23).
//! - [`cookie`]: stateless COOKIE values (§2.6).
//!
//! Key material lives in [`Secret`]s, zeroized on drop. Randomness comes from a
//! [`RandomSource`] the caller passes in, so tests are deterministic.

pub mod auth;
pub mod cookie;
pub mod dh;
pub mod keys;
pub mod prf;
pub mod sk;
pub mod transform;

use zeroize::Zeroizing;

use super::IkeError;

/// Key material: a byte vector wiped when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

/// Where random bytes (IVs, SPIs, nonces) come from. `ring`'s `SecureRandom` is sealed, so
/// this trait lets tests inject a deterministic source.
pub trait RandomSource {
    /// Fill `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), IkeError>;
}

impl RandomSource for ring::rand::SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), IkeError> {
        ring::rand::SecureRandom::fill(self, dest).map_err(|_| IkeError::RandomFailed)
    }
}

/// Constant-time equality of two byte strings (for ICVs and AUTH values).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use std::cell::Cell;

    /// A deterministic byte stream (a counter), for tests.
    #[derive(Debug, Default)]
    pub struct CountingRandom(pub Cell<u8>);

    impl RandomSource for CountingRandom {
        fn fill(&self, dest: &mut [u8]) -> Result<(), IkeError> {
            for b in dest {
                *b = self.0.get();
                self.0.set(self.0.get().wrapping_add(1));
            }
            Ok(())
        }
    }

    pub fn h(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }
}
