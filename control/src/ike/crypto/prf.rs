//! `prf` and `prf+` (RFC 7296 §2.13).
//!
//! ```text
//! prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//! T1 = prf (K, S | 0x01)
//! T2 = prf (K, T1 | S | 0x02)
//! ...
//! ```
//! "The prf+ function is not defined beyond 255 times the size of the prf function output."

use ring::hmac;
use zeroize::Zeroizing;

use super::Secret;
use super::transform::Prf;
use crate::ike::IkeError;

/// `prf(key, parts[0] | parts[1] | ...)`.
pub fn prf(alg: Prf, key: &[u8], parts: &[&[u8]]) -> Secret {
    let k = hmac::Key::new(alg.hmac(), key);
    let mut ctx = hmac::Context::with_key(&k);
    for p in parts {
        ctx.update(p);
    }
    Zeroizing::new(ctx.sign().as_ref().to_vec())
}

/// `prf+(key, seed[0] | seed[1] | ...)` truncated to `len` bytes (§2.13).
pub fn prf_plus(alg: Prf, key: &[u8], seed: &[&[u8]], len: usize) -> Result<Secret, IkeError> {
    if len > 255 * alg.out_len() {
        return Err(IkeError::PrfPlusTooLong);
    }
    let k = hmac::Key::new(alg.hmac(), key);
    let mut out = Zeroizing::new(Vec::with_capacity(len + alg.out_len()));
    let mut prev: Option<hmac::Tag> = None;
    let mut counter = 1u8;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&k);
        if let Some(t) = &prev {
            ctx.update(t.as_ref());
        }
        for s in seed {
            ctx.update(s);
        }
        ctx.update(&[counter]);
        let t = ctx.sign();
        out.extend_from_slice(t.as_ref());
        prev = Some(t);
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::crypto::test_util::h;

    /// RFC 4231 §4.2 (test case 1) and §4.3 (test case 2).
    #[test]
    fn hmac_rfc4231() {
        let key = [0x0b; 20];
        assert_eq!(
            *prf(Prf::HmacSha256, &key, &[b"Hi ", b"There"]),
            h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            *prf(Prf::HmacSha384, &key, &[b"Hi There"]),
            h(
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c
               faea9ea9076ede7f4af152e8b2fa9cb6"
            )
        );
        assert_eq!(
            *prf(Prf::HmacSha512, &key, &[b"Hi There"]),
            h(
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
               daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
            )
        );
        assert_eq!(
            *prf(Prf::HmacSha256, b"Jefe", &[b"what do ya want for nothing?"]),
            h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    /// Cross-checked with an independent implementation (Python `hmac`).
    #[test]
    fn prf_plus_known_answer() {
        let key: Vec<u8> = (0..32).collect();
        let out = prf_plus(Prf::HmacSha256, &key, &[b"seed-", b"data"], 100).unwrap();
        assert_eq!(
            *out,
            h(
                "30e2ea880da7b33695536209f56e1f28c89be69cb21e8727c3b75e1a53d6c156
               95f47992d7b932ed3f8d0304670d2b922920f9ca8911ec60a406fe25fb089794
               362284fea833d62f28f90ce0590a037ec2fe5e1a908f1e6792095a24c5bcbec0
               67cb8afc"
            )
        );
        // prefix property: a shorter output is a prefix of a longer one
        let short = prf_plus(Prf::HmacSha256, &key, &[b"seed-data"], 33).unwrap();
        assert_eq!(*short, out[..33]);
        assert_eq!(
            prf_plus(Prf::HmacSha256, &key, &[], 255 * 32)
                .unwrap()
                .len(),
            255 * 32
        );
        assert_eq!(
            prf_plus(Prf::HmacSha256, &key, &[], 255 * 32 + 1),
            Err(IkeError::PrfPlusTooLong)
        );
    }
}
