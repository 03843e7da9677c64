//! An IKE_SA_INIT + IKE_AUTH exchange between two in-memory peers, built only from this
//! module's pieces (messages, proposal selection, DH, key derivation, SK, PSK AUTH, NAT-D):
//! shows how they compose for the state machine, and that both sides agree on every key.

use std::net::IpAddr;

use ring::rand::SystemRandom;

use super::IkeError;
use super::crypto::auth::{nat_detection_hash, psk_auth, verify_psk_auth};
use super::crypto::dh::{KeyExchange, check_ke};
use super::crypto::keys::{ChildSaKeys, IkeSaKeys, skeyseed};
use super::crypto::sk::{SkContext, open, seal};
use super::crypto::transform::{DH_CURVE25519, DhGroup, Encr, EspSuite, IkeSuite, Prf};
use super::crypto::{RandomSource, test_util::CountingRandom};
use super::header::{ExchangeType, Flags, Header};
use super::message::{Message, parse_message};
use super::payload::{
    AuthMethod, AuthPayload, IdPayload, Identity, KePayload, NotifyPayload, NotifyType, Payload,
    PayloadType, SaPayload, TrafficSelector, TsPayload,
};
use super::proposal::{accept_esp_reply, accept_ike_reply, select_esp, select_ike};

const PSK: &[u8] = b"a pre-shared key of decent length";

fn header(
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    ex: ExchangeType,
    initiator: bool,
    response: bool,
    id: u32,
) -> Header {
    Header {
        spi_i,
        spi_r,
        next_payload: PayloadType::NONE,
        minor_version: 0,
        exchange: ex,
        flags: Flags {
            initiator,
            version: false,
            response,
        },
        message_id: id,
        length: 0,
    }
}

fn find<T>(p: &[Payload], f: impl Fn(&Payload) -> Option<&T>) -> &T {
    p.iter().find_map(f).unwrap()
}

#[test]
fn in_memory_handshake() {
    let sys = SystemRandom::new();
    let rng = CountingRandom::default();
    let (ip_i, ip_r): (IpAddr, IpAddr) =
        ("10.0.1.2".parse().unwrap(), "192.0.2.2".parse().unwrap());
    let ike_i = [
        IkeSuite {
            encr: Encr::AesGcm16 { key_bits: 256 },
            prf: Prf::HmacSha384,
            integ: None,
            dh: DhGroup::Ecp384,
        },
        IkeSuite {
            encr: Encr::AesGcm16 { key_bits: 128 },
            prf: Prf::HmacSha256,
            integ: None,
            dh: DhGroup::Curve25519,
        },
    ];
    let ike_r = [ike_i[1], ike_i[0]];
    let esp = [EspSuite {
        encr: Encr::AesGcm16 { key_bits: 128 },
        integ: None,
        dh: None,
        esn: false,
    }];

    // --- initiator: IKE_SA_INIT request ---
    let mut spi_i = [0u8; 8];
    rng.fill(&mut spi_i).unwrap();
    let ke_i = KeyExchange::generate(ike_i[0].dh, &sys).unwrap();
    let mut ni = vec![0u8; 32];
    rng.fill(&mut ni).unwrap();
    let sa_i = SaPayload {
        proposals: ike_i
            .iter()
            .zip(1..)
            .map(|(s, n)| s.proposal(n, &[]))
            .collect(),
    };
    let req1 = Message {
        header: header(spi_i, [0; 8], ExchangeType::IKE_SA_INIT, true, false, 0),
        payloads: vec![
            Payload::Sa(sa_i),
            Payload::Ke(KePayload {
                group: ke_i.group().id(),
                data: ke_i.public_value().to_vec(),
            }),
            Payload::Nonce(ni.clone()),
            Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_SOURCE_IP,
                &nat_detection_hash(&spi_i, &[0; 8], ip_i, 500),
            )),
            Payload::Notify(NotifyPayload::new(
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                &nat_detection_hash(&spi_i, &[0; 8], ip_r, 500),
            )),
        ],
    };
    let raw1 = req1.emit().unwrap();

    // --- responder: choose, answer ---
    let m1 = parse_message(&raw1).unwrap();
    let chosen = select_ike(m1.sa().unwrap(), &ike_r).unwrap();
    assert_eq!(chosen.suite, ike_r[0], "responder's preference wins");
    let suite = chosen.suite;
    // the initiator guessed ECP-384 in its KE: the responder answers INVALID_KE_PAYLOAD
    assert_eq!(
        check_ke(m1.ke().unwrap(), suite.dh),
        Err(IkeError::KeGroupMismatch)
    );
    let nak = NotifyPayload::invalid_ke(suite.dh.id());
    assert_eq!(nak.invalid_ke_group(), Some(DH_CURVE25519));
    // ... and the initiator retries with the right group (message rebuilt, same SPI)
    let ke_i = KeyExchange::generate(suite.dh, &sys).unwrap();
    let mut req1 = req1;
    req1.payloads[1] = Payload::Ke(KePayload {
        group: suite.dh.id(),
        data: ke_i.public_value().to_vec(),
    });
    let raw1 = req1.emit().unwrap();
    let m1 = parse_message(&raw1).unwrap();
    check_ke(m1.ke().unwrap(), suite.dh).unwrap();
    // responder checks the NAT-D it received against what it sees (no NAT here)
    let natd_src = m1
        .notifies(NotifyType::NAT_DETECTION_SOURCE_IP)
        .next()
        .unwrap();
    assert_eq!(
        natd_src.data,
        nat_detection_hash(&spi_i, &[0; 8], ip_i, 500)
    );

    let mut spi_r = [0u8; 8];
    rng.fill(&mut spi_r).unwrap();
    let ke_r = KeyExchange::generate(suite.dh, &sys).unwrap();
    let mut nr = vec![0u8; 32];
    rng.fill(&mut nr).unwrap();
    let resp1 = Message {
        header: header(spi_i, spi_r, ExchangeType::IKE_SA_INIT, false, true, 0),
        payloads: vec![
            Payload::Sa(chosen.reply(&[])),
            Payload::Ke(KePayload {
                group: suite.dh.id(),
                data: ke_r.public_value().to_vec(),
            }),
            Payload::Nonce(nr.clone()),
        ],
    };
    let raw2 = resp1.emit().unwrap();
    let g_r = ke_r.agree(&m1.ke().unwrap().data).unwrap();
    let keys_r = IkeSaKeys::derive(
        &suite,
        &skeyseed(suite.prf, &ni, &nr, &g_r),
        &ni,
        &nr,
        &spi_i,
        &spi_r,
    )
    .unwrap();

    // --- initiator: accept, derive ---
    let m2 = parse_message(&raw2).unwrap();
    let acc = accept_ike_reply(m2.sa().unwrap(), &ike_i).unwrap();
    assert_eq!(acc.suite, suite);
    let g_i = ke_i.agree(&m2.ke().unwrap().data).unwrap();
    let spi_r_seen = m2.header.spi_r;
    let nr_seen = m2.nonce().unwrap().to_vec();
    let keys_i = IkeSaKeys::derive(
        &suite,
        &skeyseed(suite.prf, &ni, &nr_seen, &g_i),
        &ni,
        &nr_seen,
        &spi_i,
        &spi_r_seen,
    )
    .unwrap();
    assert_eq!(keys_i, keys_r);

    // --- IKE_AUTH request ---
    let (mut i_out, i_in) = SkContext::pair(&keys_i, &suite).unwrap();
    let (r_in, mut r_out) = SkContext::pair(&keys_r, &suite).unwrap();
    let idi = IdPayload::new(&Identity::Fqdn("client.example".into()));
    let auth_i = psk_auth(suite.prf, PSK, &raw1, &nr_seen, &keys_i.sk_pi, &idi.body());
    let mut esp_spi_i = [0u8; 4];
    rng.fill(&mut esp_spi_i).unwrap();
    let ts_any = TsPayload {
        selectors: vec![TrafficSelector::range(
            "0.0.0.0".parse().unwrap(),
            "255.255.255.255".parse().unwrap(),
        )],
    };
    let inner = vec![
        Payload::IdI(idi),
        Payload::Auth(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: auth_i.to_vec(),
        }),
        Payload::Sa(SaPayload {
            proposals: vec![esp[0].proposal(1, esp_spi_i)],
        }),
        Payload::TsI(ts_any.clone()),
        Payload::TsR(ts_any.clone()),
    ];
    let raw3 = seal(
        &mut i_out,
        &header(spi_i, spi_r_seen, ExchangeType::IKE_AUTH, true, false, 1),
        &[],
        &inner,
        &rng,
    )
    .unwrap();

    // --- responder: open, authenticate, choose the child SA, answer ---
    let o3 = open(&r_in, &raw3).unwrap();
    assert_eq!(o3.inner, inner);
    let idi_r = find(&o3.inner, |p| {
        if let Payload::IdI(x) = p {
            Some(x)
        } else {
            None
        }
    });
    let auth_r_in = find(&o3.inner, |p| {
        if let Payload::Auth(x) = p {
            Some(x)
        } else {
            None
        }
    });
    verify_psk_auth(
        suite.prf,
        PSK,
        &raw1,
        &nr,
        &keys_r.sk_pi,
        &idi_r.body(),
        &auth_r_in.data,
    )
    .unwrap();
    let sa3 = find(&o3.inner, |p| {
        if let Payload::Sa(x) = p {
            Some(x)
        } else {
            None
        }
    });
    let child = select_esp(sa3, &esp).unwrap();
    let child_keys_r =
        ChildSaKeys::derive(suite.prf, &keys_r.sk_d, &child.suite, None, &ni, &nr).unwrap();
    let idr = IdPayload::new(&Identity::Fqdn("gw.example".into()));
    let auth_r = psk_auth(suite.prf, PSK, &raw2, &ni, &keys_r.sk_pr, &idr.body());
    let esp_spi_r = [0xc0, 0xff, 0xee, 0x01];
    let inner4 = vec![
        Payload::IdR(idr),
        Payload::Auth(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: auth_r.to_vec(),
        }),
        Payload::Sa(child.reply(esp_spi_r)),
        Payload::TsI(ts_any.clone()),
        Payload::TsR(ts_any),
    ];
    let raw4 = seal(
        &mut r_out,
        &header(spi_i, spi_r, ExchangeType::IKE_AUTH, false, true, 1),
        &[],
        &inner4,
        &rng,
    )
    .unwrap();

    // --- initiator: open, authenticate the responder, install the child SA ---
    let o4 = open(&i_in, &raw4).unwrap();
    let idr_i = find(&o4.inner, |p| {
        if let Payload::IdR(x) = p {
            Some(x)
        } else {
            None
        }
    });
    let auth4 = find(&o4.inner, |p| {
        if let Payload::Auth(x) = p {
            Some(x)
        } else {
            None
        }
    });
    verify_psk_auth(
        suite.prf,
        PSK,
        &raw2,
        &ni,
        &keys_i.sk_pr,
        &idr_i.body(),
        &auth4.data,
    )
    .unwrap();
    let sa4 = find(&o4.inner, |p| {
        if let Payload::Sa(x) = p {
            Some(x)
        } else {
            None
        }
    });
    let acc_child = accept_esp_reply(sa4, &esp).unwrap();
    assert_eq!(acc_child.peer_spi, esp_spi_r);
    assert_eq!(child.peer_spi, esp_spi_i);
    let child_keys_i = ChildSaKeys::derive(
        suite.prf,
        &keys_i.sk_d,
        &acc_child.suite,
        None,
        &ni,
        &nr_seen,
    )
    .unwrap();
    assert_eq!(child_keys_i, child_keys_r);
    assert_eq!(
        child_keys_i.encr_i.len(),
        20,
        "AES-128 key + 4-byte salt (RFC 4106 §8.1)"
    );

    // a forged response (wrong PSK on the responder) is refused by the initiator
    let bad_auth = psk_auth(
        suite.prf,
        b"wrong",
        &raw2,
        &ni,
        &keys_r.sk_pr,
        &idr_i.body(),
    );
    assert!(
        verify_psk_auth(
            suite.prf,
            PSK,
            &raw2,
            &ni,
            &keys_i.sk_pr,
            &idr_i.body(),
            &bad_auth
        )
        .is_err()
    );
}
