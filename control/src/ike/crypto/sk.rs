//! The Encrypted and Authenticated payload SK (RFC 7296 §3.14): sealing inner payloads into
//! a message and opening them again.
//!
//! ```text
//! | Next Payload (first inner) |C| RESERVED | Payload Length |
//! | Initialization Vector | Encrypted IKE Payloads | Padding | Pad Length | ICV |
//! ```
//! - AES-GCM-16 (RFC 5282 §3 - §5): 8-byte explicit IV, nonce = salt (last 4 bytes of SK_e,
//!   §7.1) ‖ IV, AAD = the message from the IKE header through the SK generic payload header
//!   (§5.1), 16-byte ICV = the GCM tag. No block alignment; the Pad Length octet is present.
//! - AES-CBC + HMAC-SHA2 (RFC 7296 §3.14): random 16-byte IV, plaintext padded to the block
//!   size, ICV = truncated HMAC over the whole message from the IKE header through the
//!   ciphertext.

use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ring::aead;
use ring::hmac;
use zeroize::Zeroizing;

use super::keys::{IkeSaKeys, split_gcm_salt};
use super::transform::{Encr, IkeSuite, Integ};
use super::{RandomSource, Secret, ct_eq};
use crate::ike::IkeError;
use crate::ike::header::Header;
use crate::ike::message::{Message, parse_message};
use crate::ike::payload::{EncryptedPayload, Payload, emit_chain, parse_chain};

const AES_BLOCK: usize = 16;
const GCM_IV_LEN: usize = 8;
const GCM_ICV_LEN: usize = 16;

/// The keys and state to seal or open SK payloads in one direction (initiator → responder
/// uses SK_ei / SK_ai, responder → initiator SK_er / SK_ar).
#[derive(Debug)]
pub struct SkContext {
    encr: Encr,
    integ: Option<Integ>,
    key: Secret,
    salt: [u8; 4],
    sk_a: Secret,
    /// Next explicit GCM IV: a counter, so an IV never repeats under one key (RFC 5282 §3.1).
    iv_counter: u64,
}

impl SkContext {
    /// A context from SK_e (key ‖ salt for GCM) and SK_a (empty for GCM).
    pub fn new(
        encr: Encr,
        integ: Option<Integ>,
        sk_e: &[u8],
        sk_a: &[u8],
    ) -> Result<Self, IkeError> {
        if encr.is_aead() == integ.is_some() {
            return Err(IkeError::UnsupportedTransform);
        }
        if sk_e.len() != encr.keymat_len() || sk_a.len() != integ.map_or(0, |i| i.key_len()) {
            return Err(IkeError::BadKeyLength);
        }
        let (key, salt) = match encr {
            // ring implements AES-128-GCM and AES-256-GCM only.
            Encr::AesGcm16 { key_bits: 192 } => return Err(IkeError::UnsupportedTransform),
            Encr::AesGcm16 { .. } => {
                let (k, s) = split_gcm_salt(sk_e)?;
                (k.to_vec(), s)
            }
            Encr::AesCbc { .. } => (sk_e.to_vec(), [0; 4]),
        };
        Ok(Self {
            encr,
            integ,
            key: Zeroizing::new(key),
            salt,
            sk_a: Zeroizing::new(sk_a.to_vec()),
            iv_counter: 0,
        })
    }

    /// The two directions of an IKE SA: (initiator → responder, responder → initiator).
    /// The initiator seals with the first and opens with the second; the responder the reverse.
    pub fn pair(keys: &IkeSaKeys, suite: &IkeSuite) -> Result<(Self, Self), IkeError> {
        Ok((
            Self::new(suite.encr, suite.integ, &keys.sk_ei, &keys.sk_ai)?,
            Self::new(suite.encr, suite.integ, &keys.sk_er, &keys.sk_ar)?,
        ))
    }

    fn iv_len(&self) -> usize {
        if self.encr.is_aead() {
            GCM_IV_LEN
        } else {
            AES_BLOCK
        }
    }

    fn icv_len(&self) -> usize {
        self.integ.map_or(GCM_ICV_LEN, Integ::icv_len)
    }

    /// Padding so that plaintext + Pad Length fills whole blocks (CBC), none for GCM.
    fn pad_len(&self, inner_len: usize) -> usize {
        if self.encr.is_aead() {
            0
        } else {
            (AES_BLOCK - (inner_len + 1) % AES_BLOCK) % AES_BLOCK
        }
    }

    fn gcm_key(&self) -> Result<aead::LessSafeKey, IkeError> {
        let alg = match self.key.len() {
            16 => &aead::AES_128_GCM,
            32 => &aead::AES_256_GCM,
            _ => return Err(IkeError::BadKeyLength),
        };
        let k = aead::UnboundKey::new(alg, &self.key).map_err(|_| IkeError::BadKeyLength)?;
        Ok(aead::LessSafeKey::new(k))
    }

    fn gcm_nonce(&self, iv: &[u8]) -> Result<aead::Nonce, IkeError> {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(iv.get(..GCM_IV_LEN).ok_or(IkeError::BadEncryptedPayload)?);
        Ok(aead::Nonce::assume_unique_for_key(n))
    }

    fn icv(&self, integ: Integ, data: &[u8]) -> Vec<u8> {
        let tag = hmac::sign(&hmac::Key::new(integ.hmac(), &self.sk_a), data);
        tag.as_ref()
            .get(..integ.icv_len())
            .unwrap_or_default()
            .to_vec()
    }
}

/// A message whose SK payload was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub header: Header,
    /// Payloads before the SK payload (normally none).
    pub clear: Vec<Payload>,
    /// The decrypted inner payloads.
    pub inner: Vec<Payload>,
}

/// Build a message whose payloads are `clear` followed by an SK payload holding `inner`
/// (§3.14). The header's Next Payload and Length are filled in. GCM takes the next counter
/// IV from `ctx`; CBC takes a random IV from `rng` (§3.14: IVs "MUST be unpredictable").
pub fn seal(
    ctx: &mut SkContext,
    header: &Header,
    clear: &[Payload],
    inner: &[Payload],
    rng: &dyn RandomSource,
) -> Result<Vec<u8>, IkeError> {
    let mut iv = [0u8; AES_BLOCK];
    let iv = if ctx.encr.is_aead() {
        ctx.iv_counter = ctx
            .iv_counter
            .checked_add(1)
            .ok_or(IkeError::UnsupportedTransform)?;
        iv[..GCM_IV_LEN].copy_from_slice(&ctx.iv_counter.to_be_bytes());
        &iv[..GCM_IV_LEN]
    } else {
        rng.fill(&mut iv)?;
        &iv[..]
    };
    seal_with_iv(ctx, header, clear, inner, iv, None)
}

/// [`seal`] with a given IV and optional pad length (tests reproduce a peer's bytes with it).
pub(crate) fn seal_with_iv(
    ctx: &SkContext,
    header: &Header,
    clear: &[Payload],
    inner: &[Payload],
    iv: &[u8],
    pad: Option<usize>,
) -> Result<Vec<u8>, IkeError> {
    if iv.len() != ctx.iv_len() {
        return Err(IkeError::BadEncryptedPayload);
    }
    let mut pt = Zeroizing::new(Vec::with_capacity(512));
    let inner_next = emit_chain(inner, &mut pt)?;
    let pad = pad.unwrap_or_else(|| ctx.pad_len(pt.len()));
    let pad_u8 = u8::try_from(pad).map_err(|_| IkeError::BadPadding)?;
    let padded = pt.len() + pad;
    pt.resize(padded, 0);
    pt.push(pad_u8);
    if !ctx.encr.is_aead() && pt.len() % AES_BLOCK != 0 {
        return Err(IkeError::BadPadding);
    }
    let body_len = iv.len() + pt.len() + ctx.icv_len();
    let mut payloads = clear.to_vec();
    payloads.push(Payload::Encrypted(EncryptedPayload {
        inner_next,
        body: vec![0; body_len],
    }));
    let mut msg = Message {
        header: *header,
        payloads,
    }
    .emit()?;
    let body_at = msg.len() - body_len;
    let (head, body) = msg.split_at_mut(body_at);
    let (iv_dst, rest) = body.split_at_mut(iv.len());
    iv_dst.copy_from_slice(iv);
    let (ct, icv_dst) = rest.split_at_mut(pt.len());
    ct.copy_from_slice(&pt);
    match ctx.integ {
        None => {
            let tag = ctx
                .gcm_key()?
                .seal_in_place_separate_tag(ctx.gcm_nonce(iv)?, aead::Aad::from(&*head), ct)
                .map_err(|_| IkeError::BadCiphertextLength)?;
            icv_dst.copy_from_slice(tag.as_ref());
        }
        Some(integ) => {
            cbc_encrypt(&ctx.key, iv, ct)?;
            let icv_at = msg.len() - ctx.icv_len();
            let icv = ctx.icv(integ, msg.get(..icv_at).unwrap_or_default());
            if let Some(dst) = msg.get_mut(icv_at..) {
                dst.copy_from_slice(&icv);
            }
        }
    }
    Ok(msg)
}

/// Verify and decrypt the SK payload of the message `raw` (§3.14, RFC 5282 §5). Fails with
/// `integrity_check_failed` on any tampering, before anything inside is parsed.
pub fn open(ctx: &SkContext, raw: &[u8]) -> Result<Opened, IkeError> {
    let mut msg = parse_message(raw)?;
    let Some(Payload::Encrypted(enc)) = msg.payloads.pop() else {
        return Err(IkeError::BadEncryptedPayload);
    };
    let (iv_len, icv_len) = (ctx.iv_len(), ctx.icv_len());
    // at least the Pad Length octet (GCM) or one block (CBC)
    let min_ct = if ctx.encr.is_aead() { 1 } else { AES_BLOCK };
    let ct_len = enc
        .body
        .len()
        .checked_sub(iv_len + icv_len)
        .filter(|n| *n >= min_ct)
        .ok_or(IkeError::BadEncryptedPayload)?;
    let aad_len = raw.len() - enc.body.len();
    let aad = raw.get(..aad_len).ok_or(IkeError::BadEncryptedPayload)?;
    let (iv, rest) = enc.body.split_at(iv_len);
    let mut buf = Zeroizing::new(rest.to_vec());
    let pt_len = match ctx.integ {
        None => ctx
            .gcm_key()?
            .open_in_place(ctx.gcm_nonce(iv)?, aead::Aad::from(aad), &mut buf)
            .map_err(|_| IkeError::IntegrityCheckFailed)?
            .len(),
        Some(integ) => {
            if ct_len % AES_BLOCK != 0 {
                return Err(IkeError::BadCiphertextLength);
            }
            let icv_at = raw.len() - icv_len;
            let expected = ctx.icv(integ, raw.get(..icv_at).unwrap_or_default());
            if !ct_eq(&expected, raw.get(icv_at..).unwrap_or_default()) {
                return Err(IkeError::IntegrityCheckFailed);
            }
            let ct = buf.get_mut(..ct_len).ok_or(IkeError::BadCiphertextLength)?;
            cbc_decrypt(&ctx.key, iv, ct)?;
            ct_len
        }
    };
    let pt = buf.get(..pt_len).ok_or(IkeError::BadCiphertextLength)?;
    let (&pad, rest) = pt.split_last().ok_or(IkeError::BadPadding)?;
    let inner_len = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or(IkeError::BadPadding)?;
    let inner = parse_chain(enc.inner_next, rest.get(..inner_len).unwrap_or_default())?;
    // An SK payload nested inside another one is meaningless (§3.14): refuse it.
    if inner
        .iter()
        .any(|p| matches!(p, Payload::Encrypted(_) | Payload::EncryptedFragment(_)))
    {
        return Err(IkeError::BadEncryptedPayload);
    }
    Ok(Opened {
        header: msg.header,
        clear: msg.payloads,
        inner,
    })
}

fn cbc_encrypt(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), IkeError> {
    let n = buf.len();
    let r = match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| IkeError::BadKeyLength)?
            .encrypt_padded_mut::<NoPadding>(buf, n)
            .map(|_| ()),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|_| IkeError::BadKeyLength)?
            .encrypt_padded_mut::<NoPadding>(buf, n)
            .map(|_| ()),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| IkeError::BadKeyLength)?
            .encrypt_padded_mut::<NoPadding>(buf, n)
            .map(|_| ()),
        _ => return Err(IkeError::BadKeyLength),
    };
    r.map_err(|_| IkeError::BadCiphertextLength)
}

fn cbc_decrypt(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), IkeError> {
    let r = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|_| IkeError::BadKeyLength)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ()),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|_| IkeError::BadKeyLength)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ()),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|_| IkeError::BadKeyLength)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ()),
        _ => return Err(IkeError::BadKeyLength),
    };
    r.map_err(|_| IkeError::BadCiphertextLength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::crypto::keys::tests::{CBC_SUITE, GCM_SUITE, capture};
    use crate::ike::crypto::keys::{IkeSaKeys, skeyseed};
    use crate::ike::crypto::test_util::CountingRandom;
    use crate::ike::payload::{CfgType, ConfigAttribute, Identity, NotifyType, PayloadType};

    fn contexts(
        tag: &str,
    ) -> (
        SkContext,
        SkContext,
        crate::ike::crypto::keys::tests::Capture,
    ) {
        let suite = if tag == "gcm" { GCM_SUITE } else { CBC_SUITE };
        let c = capture(tag);
        let (ni, nr) = c.nonces();
        let (spi_i, spi_r) = c.spis();
        let seed = skeyseed(suite.prf, &ni, &nr, c.key("shared Diffie Hellman secret"));
        let keys = IkeSaKeys::derive(&suite, &seed, &ni, &nr, &spi_i, &spi_r).unwrap();
        let (i2r, r2i) = SkContext::pair(&keys, &suite).unwrap();
        (i2r, r2i, c)
    }

    fn types(p: &[Payload]) -> Vec<PayloadType> {
        p.iter().map(Payload::payload_type).collect()
    }

    /// Open strongSwan's IKE_AUTH request and response (GCM and CBC+HMAC), check their content,
    /// and re-seal them with strongSwan's IV and padding: the bytes must be identical.
    #[test]
    fn strongswan_ike_auth_open_and_reseal() {
        for tag in ["gcm", "cbc"] {
            let (i2r, r2i, c) = contexts(tag);
            let req = open(&i2r, &c.auth_req).unwrap();
            assert!(req.clear.is_empty());
            assert_eq!(
                types(&req.inner),
                [
                    PayloadType::IDI,
                    PayloadType::NOTIFY,
                    PayloadType::IDR,
                    PayloadType::AUTH,
                    PayloadType::CP,
                    PayloadType::SA,
                    PayloadType::TSI,
                    PayloadType::TSR,
                    PayloadType::NOTIFY,
                    PayloadType::NOTIFY,
                    PayloadType::NOTIFY,
                ],
                "{tag}"
            );
            let Payload::IdI(id) = &req.inner[0] else {
                panic!()
            };
            assert_eq!(
                id.identity().unwrap(),
                Identity::Fqdn("client.example".into())
            );
            let Payload::Notify(n) = &req.inner[1] else {
                panic!()
            };
            assert_eq!(n.ty, NotifyType::INITIAL_CONTACT);
            let Payload::Config(cp) = &req.inner[4] else {
                panic!()
            };
            assert_eq!(cp.cfg_type, CfgType::REQUEST);
            assert!(
                cp.attributes
                    .iter()
                    .any(|a| a.ty == ConfigAttribute::INTERNAL_IP4_ADDRESS && a.value.is_empty())
            );
            let Payload::Notify(n) = &req.inner[8] else {
                panic!()
            };
            assert_eq!(n.ty, NotifyType::MULTIPLE_AUTH_SUPPORTED);
            let Payload::Notify(n) = &req.inner[9] else {
                panic!()
            };
            assert_eq!(n.ty, NotifyType::EAP_ONLY_AUTHENTICATION);
            let Payload::Notify(n) = &req.inner[10] else {
                panic!()
            };
            assert_eq!(n.ty, NotifyType::IKEV2_MESSAGE_ID_SYNC_SUPPORTED);

            let resp = open(&r2i, &c.auth_resp).unwrap();
            assert_eq!(
                types(&resp.inner),
                [
                    PayloadType::IDR,
                    PayloadType::AUTH,
                    PayloadType::CP,
                    PayloadType::NOTIFY
                ]
            );
            let Payload::Config(cp) = &resp.inner[2] else {
                panic!()
            };
            assert_eq!(cp.cfg_type, CfgType::REPLY);
            assert_eq!(
                cp.attributes[0].as_ipv4(),
                Some(std::net::Ipv4Addr::new(10, 99, 0, 1))
            );
            let Payload::Notify(n) = &resp.inner[3] else {
                panic!()
            };
            assert_eq!(n.ty, NotifyType::TS_UNACCEPTABLE);

            // wrong direction's keys: integrity failure
            assert_eq!(open(&r2i, &c.auth_req), Err(IkeError::IntegrityCheckFailed));

            // re-seal with the peer's IV and pad length: bit-identical
            for (ctx, raw, opened) in [(&i2r, &c.auth_req, &req), (&r2i, &c.auth_resp, &resp)] {
                let m = parse_message(raw).unwrap();
                let enc = m.encrypted().unwrap();
                let iv = &enc.body[..ctx.iv_len()];
                let mut pt = enc.body[ctx.iv_len()..].to_vec();
                // recover the pad length from a decryption of our own
                let pad = {
                    let inner_len = {
                        let mut v = Vec::new();
                        emit_chain(&opened.inner, &mut v).unwrap();
                        v.len()
                    };
                    pt.truncate(pt.len() - ctx.icv_len());
                    pt.len() - inner_len - 1
                };
                let again = seal_with_iv(
                    ctx,
                    &opened.header,
                    &opened.clear,
                    &opened.inner,
                    iv,
                    Some(pad),
                )
                .unwrap();
                if ctx.integ.is_none() {
                    assert_eq!(&again, raw, "{tag}");
                } else {
                    // strongSwan fills CBC padding with random bytes: all blocks but the
                    // last (which holds the padding) must match.
                    assert_eq!(again.len(), raw.len());
                    let cut = raw.len() - ctx.icv_len() - AES_BLOCK;
                    assert_eq!(again[..cut], raw[..cut], "{tag}");
                }
            }
        }
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        for tag in ["gcm", "cbc"] {
            let (mut i2r, r2i, c) = contexts(tag);
            let req = open(&i2r, &c.auth_req).unwrap();
            let rng = CountingRandom::default();
            let a = seal(&mut i2r, &req.header, &[], &req.inner, &rng).unwrap();
            let b = seal(&mut i2r, &req.header, &[], &req.inner, &rng).unwrap();
            assert_ne!(a, b, "fresh IV each time");
            assert_eq!(open(&i2r, &a).unwrap(), req);
            assert_eq!(open(&i2r, &b).unwrap(), req);
            if tag == "cbc" {
                assert_eq!((a.len() - 28 - 4 - 16 - 16) % 16, 0);
            }
            // every single-bit flip after the IKE header's length is caught (or fails parsing)
            for i in 0..a.len() {
                let mut t = a.clone();
                t[i] ^= 0x01;
                assert!(open(&i2r, &t).is_err(), "{tag} byte {i}");
            }
            // flips in the SK body are integrity failures specifically
            let mut t = a.clone();
            let last = t.len() - 1;
            t[last] ^= 0x80;
            assert_eq!(open(&i2r, &t), Err(IkeError::IntegrityCheckFailed));
            let mut t = a.clone();
            t[40] ^= 0x80;
            assert_eq!(open(&i2r, &t), Err(IkeError::IntegrityCheckFailed));
            // other direction cannot open
            assert_eq!(open(&r2i, &a), Err(IkeError::IntegrityCheckFailed));
            // truncated SK body
            let m = parse_message(&a).unwrap();
            let mut short = m.clone();
            if let Some(Payload::Encrypted(e)) = short.payloads.last_mut() {
                e.body.truncate(20);
            }
            assert_eq!(
                open(&i2r, &short.emit().unwrap()),
                Err(IkeError::BadEncryptedPayload)
            );
        }
    }

    #[test]
    fn nested_sk_is_refused() {
        let (mut i2r, _, c) = contexts("gcm");
        let req = open(&i2r, &c.auth_req).unwrap();
        let nested = vec![Payload::Encrypted(EncryptedPayload {
            inner_next: PayloadType::NONE,
            body: vec![0; 30],
        })];
        let raw = seal(
            &mut i2r,
            &req.header,
            &[],
            &nested,
            &CountingRandom::default(),
        )
        .unwrap();
        assert_eq!(open(&i2r, &raw), Err(IkeError::BadEncryptedPayload));
    }

    #[test]
    fn context_checks() {
        use crate::ike::crypto::transform::{Encr, Integ};
        let gcm = Encr::AesGcm16 { key_bits: 128 };
        assert_eq!(
            SkContext::new(gcm, None, &[0; 16], &[]).unwrap_err(),
            IkeError::BadKeyLength
        );
        assert_eq!(
            SkContext::new(gcm, Some(Integ::HmacSha256_128), &[0; 20], &[0; 32]).unwrap_err(),
            IkeError::UnsupportedTransform
        );
        assert_eq!(
            SkContext::new(Encr::AesGcm16 { key_bits: 192 }, None, &[0; 28], &[]).unwrap_err(),
            IkeError::UnsupportedTransform
        );
        assert!(
            SkContext::new(
                Encr::AesCbc { key_bits: 256 },
                Some(Integ::HmacSha512_256),
                &[0; 32],
                &[0; 64]
            )
            .is_ok()
        );
        // no SK payload at all
        let ctx = SkContext::new(gcm, None, &[0; 20], &[]).unwrap();
        let raw =
            hex::decode(include_str!("../testdata/strongswan_gcm_init_req.hex").trim()).unwrap();
        assert_eq!(open(&ctx, &raw), Err(IkeError::BadEncryptedPayload));
    }
}
