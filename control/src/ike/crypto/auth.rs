//! Pre-shared-key authentication (RFC 7296 §2.15) and NAT detection hashes (§2.23).
//!
//! ```text
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <InitiatorSignedOctets>)
//! InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//! MACedIDForI = prf(SK_pi, IDType | RESERVED | InitIDData)
//! ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//! MACedIDForR = prf(SK_pr, IDType | RESERVED | RespIDData)
//! ```

use std::net::IpAddr;

use ring::digest;

use super::prf::prf;
use super::transform::Prf;
use super::{Secret, ct_eq};
use crate::ike::IkeError;

/// The 17 ASCII characters of §2.15, without a terminator.
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The AUTH payload data for PSK authentication (§2.15).
///
/// For the initiator: `real_message` = its IKE_SA_INIT request as sent, `peer_nonce` = Nr,
/// `sk_p` = SK_pi, `id_body` = IDi'. For the responder: its IKE_SA_INIT response, Ni,
/// SK_pr, IDr'.
pub fn psk_auth(
    alg: Prf,
    psk: &[u8],
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Secret {
    let maced_id = prf(alg, sk_p, &[id_body]);
    let key = prf(alg, psk, &[KEY_PAD]);
    prf(alg, &key, &[real_message, peer_nonce, &maced_id])
}

/// Check a peer's PSK AUTH data in constant time (§2.15).
pub fn verify_psk_auth(
    alg: Prf,
    psk: &[u8],
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
    received: &[u8],
) -> Result<(), IkeError> {
    let expected = psk_auth(alg, psk, real_message, peer_nonce, sk_p, id_body);
    if ct_eq(&expected, received) {
        Ok(())
    } else {
        Err(IkeError::AuthenticationFailed)
    }
}

/// NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | Port) (§2.23), the address in network
/// order (4 or 16 octets), the port as 2 octets. In IKE_SA_INIT requests SPIr is zero.
pub fn nat_detection_hash(spi_i: &[u8; 8], spi_r: &[u8; 8], ip: IpAddr, port: u16) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(spi_i);
    ctx.update(spi_r);
    match ip {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&port.to_be_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::crypto::keys::tests::{CBC_SUITE, GCM_SUITE, capture};
    use crate::ike::crypto::keys::{IkeSaKeys, skeyseed};
    use crate::ike::crypto::sk::{SkContext, open};
    use crate::ike::crypto::test_util::h;
    use crate::ike::payload::Payload;

    const PSK: &[u8] = b"interop-test-psk-0123456789";

    /// strongSwan's AUTH values for both sides, recomputed and verified.
    #[test]
    fn strongswan_psk_auth() {
        for (tag, suite) in [("gcm", GCM_SUITE), ("cbc", CBC_SUITE)] {
            let c = capture(tag);
            let (ni, nr) = c.nonces();
            let (spi_i, spi_r) = c.spis();
            let seed = skeyseed(suite.prf, &ni, &nr, c.key("shared Diffie Hellman secret"));
            let k = IkeSaKeys::derive(&suite, &seed, &ni, &nr, &spi_i, &spi_r).unwrap();
            let (i2r, r2i) = SkContext::pair(&k, &suite).unwrap();
            let req = open(&i2r, &c.auth_req).unwrap();
            let resp = open(&r2i, &c.auth_resp).unwrap();
            let find = |p: &[Payload]| {
                let id = p.iter().find_map(|x| match x {
                    Payload::IdI(id) | Payload::IdR(id) => Some(id.body()),
                    _ => None,
                });
                let auth = p.iter().find_map(|x| match x {
                    Payload::Auth(a) => Some(a.data.clone()),
                    _ => None,
                });
                (id.unwrap(), auth.unwrap())
            };
            let (idi, auth_i) = find(&req.inner);
            let (idr, auth_r) = find(&resp.inner);
            let logged = &c.keys["AUTH = prf(prf(secret, keypad), octets)"];
            let mine_i = psk_auth(suite.prf, PSK, &c.init_req, &nr, &k.sk_pi, &idi);
            assert_eq!(*mine_i, logged[0]);
            assert_eq!(*mine_i, auth_i);
            let mine_r = psk_auth(suite.prf, PSK, &c.init_resp, &ni, &k.sk_pr, &idr);
            assert_eq!(*mine_r, logged[1]);
            verify_psk_auth(suite.prf, PSK, &c.init_resp, &ni, &k.sk_pr, &idr, &auth_r).unwrap();
            assert_eq!(
                verify_psk_auth(
                    suite.prf,
                    b"wrong",
                    &c.init_resp,
                    &ni,
                    &k.sk_pr,
                    &idr,
                    &auth_r
                ),
                Err(IkeError::AuthenticationFailed)
            );
            assert_eq!(
                *prf(suite.prf, PSK, &[KEY_PAD]),
                c.key("prf(secret, keypad)")
            );
        }
    }

    /// strongSwan's NAT-D inputs (SPIi | SPIr | IP | port) and digests from its log.
    #[test]
    fn strongswan_nat_detection() {
        for tag in ["gcm", "cbc"] {
            let c = capture(tag);
            let chunks = &c.keys["natd_chunk"];
            let hashes = &c.keys["natd_hash"];
            assert_eq!(chunks.len(), 4);
            for (chunk, hash) in chunks.iter().zip(hashes) {
                let spi_i: [u8; 8] = chunk[..8].try_into().unwrap();
                let spi_r: [u8; 8] = chunk[8..16].try_into().unwrap();
                let ip: [u8; 4] = chunk[16..20].try_into().unwrap();
                let port = u16::from_be_bytes([chunk[20], chunk[21]]);
                assert_eq!(
                    nat_detection_hash(&spi_i, &spi_r, IpAddr::from(ip), port).to_vec(),
                    *hash
                );
            }
        }
        // IPv6 input: 8 + 8 + 16 + 2 octets (cross-checked with Python hashlib)
        let v6 = nat_detection_hash(&[1; 8], &[2; 8], "2001:db8::1".parse().unwrap(), 4500);
        assert_eq!(v6.to_vec(), h("252e224e9669b45987ec5b0c78f78077dcd943d7"));
    }
}
