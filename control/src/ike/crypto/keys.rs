//! Key derivation: SKEYSEED and the IKE SA keys (RFC 7296 §2.14), SKEYSEED on IKE SA rekey
//! (§2.18), and child SA KEYMAT (§2.17).
//!
//! ```text
//! SKEYSEED = prf(Ni | Nr, g^ir)
//! {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
//! KEYMAT = prf+(SK_d, Ni | Nr)              (IKE_AUTH, CREATE_CHILD_SA without PFS)
//! KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr) (CREATE_CHILD_SA with PFS)
//! ```

use zeroize::Zeroizing;

use super::Secret;
use super::prf::{prf, prf_plus};
use super::transform::{EspSuite, IkeSuite, Prf};
use crate::ike::IkeError;

/// SKEYSEED = prf(Ni | Nr, g^ir) (§2.14).
pub fn skeyseed(alg: Prf, ni: &[u8], nr: &[u8], shared: &[u8]) -> Secret {
    let mut key = Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf(alg, &key, &[shared])
}

/// SKEYSEED for a rekeyed IKE SA: prf(SK_d (old), g^ir (new) | Ni | Nr) (§2.18), where the
/// PRF is the *old* SA's and Ni, Nr are the CREATE_CHILD_SA nonces.
pub fn skeyseed_rekey(
    old_prf: Prf,
    old_sk_d: &[u8],
    shared: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Secret {
    prf(old_prf, old_sk_d, &[shared, ni, nr])
}

/// The seven IKE SA secrets (§2.14). SK_ai / SK_ar are empty with an AEAD cipher; SK_ei /
/// SK_er include the 4-byte salt for AES-GCM (RFC 5282 §7.1). Zeroized on drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaKeys {
    pub sk_d: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_pi: Secret,
    pub sk_pr: Secret,
}

impl IkeSaKeys {
    /// Derive all seven from SKEYSEED (§2.14). SK_d, SK_pi, SK_pr take the PRF's preferred
    /// key length (its output length for HMAC).
    pub fn derive(
        suite: &IkeSuite,
        skeyseed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: &[u8; 8],
        spi_r: &[u8; 8],
    ) -> Result<Self, IkeError> {
        suite.check()?;
        let p = suite.prf.out_len();
        let a = suite.integ.map_or(0, |i| i.key_len());
        let e = suite.encr.keymat_len();
        let total = 3 * p + 2 * a + 2 * e;
        let km = prf_plus(suite.prf, skeyseed, &[ni, nr, spi_i, spi_r], total)?;
        let mut cut = Cutter { km: &km, at: 0 };
        Ok(Self {
            sk_d: cut.next(p)?,
            sk_ai: cut.next(a)?,
            sk_ar: cut.next(a)?,
            sk_ei: cut.next(e)?,
            sk_er: cut.next(e)?,
            sk_pi: cut.next(p)?,
            sk_pr: cut.next(p)?,
        })
    }
}

/// Child SA keys (§2.17): "All keys for SAs carrying data from the initiator to the responder
/// are taken before SAs going from the responder to the initiator", encryption before
/// integrity. For AES-GCM each encryption key is key‖salt (RFC 4106 §8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaKeys {
    /// Initiator → responder encryption key (‖ salt for GCM).
    pub encr_i: Secret,
    /// Initiator → responder integrity key (empty for AEAD).
    pub integ_i: Secret,
    /// Responder → initiator encryption key (‖ salt for GCM).
    pub encr_r: Secret,
    /// Responder → initiator integrity key (empty for AEAD).
    pub integ_r: Secret,
}

impl ChildSaKeys {
    /// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (§2.17).
    pub fn derive(
        prf_alg: Prf,
        sk_d: &[u8],
        suite: &EspSuite,
        pfs_shared: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
    ) -> Result<Self, IkeError> {
        suite.check()?;
        let e = suite.encr.keymat_len();
        let a = suite.integ.map_or(0, |i| i.key_len());
        let km = match pfs_shared {
            Some(g) => prf_plus(prf_alg, sk_d, &[g, ni, nr], 2 * (e + a))?,
            None => prf_plus(prf_alg, sk_d, &[ni, nr], 2 * (e + a))?,
        };
        let mut cut = Cutter { km: &km, at: 0 };
        Ok(Self {
            encr_i: cut.next(e)?,
            integ_i: cut.next(a)?,
            encr_r: cut.next(e)?,
            integ_r: cut.next(a)?,
        })
    }
}

/// Split an AES-GCM keymat into the key and the 4-byte salt (RFC 4106 §8.1, RFC 5282 §7.1).
pub fn split_gcm_salt(keymat: &[u8]) -> Result<(&[u8], [u8; 4]), IkeError> {
    let (key, salt) = keymat
        .split_last_chunk::<4>()
        .ok_or(IkeError::BadKeyLength)?;
    if !matches!(key.len(), 16 | 24 | 32) {
        return Err(IkeError::BadKeyLength);
    }
    Ok((key, *salt))
}

/// Takes consecutive slices of keying material.
struct Cutter<'a> {
    km: &'a [u8],
    at: usize,
}

impl Cutter<'_> {
    fn next(&mut self, n: usize) -> Result<Secret, IkeError> {
        let s = self
            .km
            .get(self.at..self.at + n)
            .ok_or(IkeError::BadKeyLength)?;
        self.at += n;
        Ok(Zeroizing::new(s.to_vec()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ike::crypto::test_util::h;
    use crate::ike::crypto::transform::{DhGroup, Encr, Integ};
    use crate::ike::message::parse_message;

    pub(crate) struct Capture {
        pub init_req: Vec<u8>,
        pub init_resp: Vec<u8>,
        pub auth_req: Vec<u8>,
        pub auth_resp: Vec<u8>,
        pub keys: std::collections::HashMap<String, Vec<Vec<u8>>>,
    }

    /// A strongSwan 5.9.8 exchange captured on this machine (see testdata/README.md).
    pub(crate) fn capture(tag: &str) -> Capture {
        let (msgs, keys) = match tag {
            "gcm" => (
                [
                    include_str!("../testdata/strongswan_gcm_init_req.hex"),
                    include_str!("../testdata/strongswan_gcm_init_resp.hex"),
                    include_str!("../testdata/strongswan_gcm_auth_req.hex"),
                    include_str!("../testdata/strongswan_gcm_auth_resp.hex"),
                ],
                include_str!("../testdata/strongswan_gcm_keys.txt"),
            ),
            _ => (
                [
                    include_str!("../testdata/strongswan_cbc_init_req.hex"),
                    include_str!("../testdata/strongswan_cbc_init_resp.hex"),
                    include_str!("../testdata/strongswan_cbc_auth_req.hex"),
                    include_str!("../testdata/strongswan_cbc_auth_resp.hex"),
                ],
                include_str!("../testdata/strongswan_cbc_keys.txt"),
            ),
        };
        let mut map: std::collections::HashMap<String, Vec<Vec<u8>>> = Default::default();
        for line in keys.lines() {
            if let Some((k, v)) = line.rsplit_once(" = ") {
                map.entry(k.to_string()).or_default().push(h(v));
            }
        }
        Capture {
            init_req: h(msgs[0]),
            init_resp: h(msgs[1]),
            auth_req: h(msgs[2]),
            auth_resp: h(msgs[3]),
            keys: map,
        }
    }

    impl Capture {
        pub fn key(&self, name: &str) -> &[u8] {
            &self.keys[name][0]
        }
        pub fn nonces(&self) -> (Vec<u8>, Vec<u8>) {
            let ni = parse_message(&self.init_req)
                .unwrap()
                .nonce()
                .unwrap()
                .to_vec();
            let nr = parse_message(&self.init_resp)
                .unwrap()
                .nonce()
                .unwrap()
                .to_vec();
            (ni, nr)
        }
        pub fn spis(&self) -> ([u8; 8], [u8; 8]) {
            let hd = parse_message(&self.init_resp).unwrap().header;
            (hd.spi_i, hd.spi_r)
        }
    }

    pub(crate) const GCM_SUITE: IkeSuite = IkeSuite {
        encr: Encr::AesGcm16 { key_bits: 128 },
        prf: Prf::HmacSha256,
        integ: None,
        dh: DhGroup::Curve25519,
    };
    pub(crate) const CBC_SUITE: IkeSuite = IkeSuite {
        encr: Encr::AesCbc { key_bits: 128 },
        prf: Prf::HmacSha256,
        integ: Some(Integ::HmacSha256_128),
        dh: DhGroup::Ecp256,
    };

    /// SKEYSEED and all SK_* of two real strongSwan IKE SAs, from the DH secret it logged.
    #[test]
    fn strongswan_key_derivation() {
        for (tag, suite) in [("gcm", GCM_SUITE), ("cbc", CBC_SUITE)] {
            let c = capture(tag);
            let (ni, nr) = c.nonces();
            let (spi_i, spi_r) = c.spis();
            let seed = skeyseed(suite.prf, &ni, &nr, c.key("shared Diffie Hellman secret"));
            assert_eq!(*seed, c.key("SKEYSEED"), "{tag}");
            let k = IkeSaKeys::derive(&suite, &seed, &ni, &nr, &spi_i, &spi_r).unwrap();
            assert_eq!(*k.sk_d, c.key("Sk_d secret"));
            assert_eq!(*k.sk_ei, c.key("Sk_ei secret"));
            assert_eq!(*k.sk_er, c.key("Sk_er secret"));
            assert_eq!(*k.sk_pi, c.key("Sk_pi secret"));
            assert_eq!(*k.sk_pr, c.key("Sk_pr secret"));
            if tag == "cbc" {
                assert_eq!(*k.sk_ai, c.key("Sk_ai secret"));
                assert_eq!(*k.sk_ar, c.key("Sk_ar secret"));
            } else {
                assert!(k.sk_ai.is_empty() && k.sk_ar.is_empty());
            }
        }
    }

    /// KEYMAT layout cross-checked with an independent prf+ (Python `hmac`).
    #[test]
    fn child_keymat() {
        let sk_d = [0x11u8; 32];
        let ni = [0x22u8; 32];
        let nr = [0x33u8; 32];
        let suite = EspSuite {
            encr: Encr::AesGcm16 { key_bits: 128 },
            integ: None,
            dh: None,
            esn: false,
        };
        let k = ChildSaKeys::derive(Prf::HmacSha256, &sk_d, &suite, None, &ni, &nr).unwrap();
        let km = prf_plus(Prf::HmacSha256, &sk_d, &[&ni, &nr], 40).unwrap();
        assert_eq!(*k.encr_i, km[..20]);
        assert_eq!(*k.encr_r, km[20..40]);
        assert!(k.integ_i.is_empty());
        assert_eq!(*k.encr_i, h("6271cf5645c423a4be195e1cd0afacdc90618213"));
        let (key, salt) = split_gcm_salt(&k.encr_i).unwrap();
        assert_eq!((key.len(), salt), (16, [0x90, 0x61, 0x82, 0x13]));
        // with PFS the shared secret comes first
        let pfs = ChildSaKeys::derive(Prf::HmacSha256, &sk_d, &suite, Some(&[0x44; 32]), &ni, &nr)
            .unwrap();
        let km = prf_plus(Prf::HmacSha256, &sk_d, &[&[0x44; 32], &ni, &nr], 40).unwrap();
        assert_eq!(*pfs.encr_r, km[20..40]);
        // CBC + HMAC: encr_i, integ_i, encr_r, integ_r
        let cbc = EspSuite {
            encr: Encr::AesCbc { key_bits: 256 },
            integ: Some(Integ::HmacSha256_128),
            dh: None,
            esn: true,
        };
        let k = ChildSaKeys::derive(Prf::HmacSha256, &sk_d, &cbc, None, &ni, &nr).unwrap();
        let km = prf_plus(Prf::HmacSha256, &sk_d, &[&ni, &nr], 128).unwrap();
        assert_eq!(
            (&*k.encr_i, &*k.integ_i, &*k.encr_r, &*k.integ_r),
            (
                &km[..32].to_vec(),
                &km[32..64].to_vec(),
                &km[64..96].to_vec(),
                &km[96..].to_vec()
            )
        );
        assert_eq!(split_gcm_salt(&[0; 10]), Err(IkeError::BadKeyLength));
    }

    #[test]
    fn rekey_skeyseed() {
        let s = skeyseed_rekey(Prf::HmacSha256, &[1; 32], &[2; 32], &[3; 32], &[4; 32]);
        assert_eq!(
            *s,
            *prf(Prf::HmacSha256, &[1; 32], &[&[2; 32], &[3; 32], &[4; 32]])
        );
    }
}
