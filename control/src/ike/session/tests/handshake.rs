//! IKE_SA_INIT + IKE_AUTH between two engines: NAT traversal, suites, virtual IP, retries.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xdpsec_dataplane::sa::{Aead, Direction, IpPrefix, Mode, PeerId};

use super::*;
use crate::ike::crypto::transform::{DhGroup, Encr, IkeSuite, Integ, Prf};
use crate::ike::message::parse_message;
use crate::ike::payload::{NotifyType, Payload};

#[test]
fn road_warrior_behind_nat() {
    let mut net = Net::road_warrior();
    net.initiate();
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    assert_eq!(net.kinds(Side::B), ["ike_up", "child_up"]);
    assert!(net.drops(Side::A).is_empty() && net.drops(Side::B).is_empty());
    let a = net.child_ups(Side::A);
    let b = net.child_ups(Side::B);
    assert_paired(&a[0], &b[0]);
    let (a_in, a_out) = &a[0];
    let (b_in, b_out) = &b[0];
    assert_eq!(
        (a_in.direction, a_out.direction),
        (Direction::In, Direction::Out)
    );
    assert_eq!(a_in.mode, Mode::Tunnel);
    assert_eq!(a_in.aead, Aead::Aes128Gcm16);
    // the initiator floated to 4500; the responder answers the NAT's mapping of it
    let public = SocketAddr::new(ip(NAT_PUBLIC), 30001);
    assert_eq!(a_out.local, SocketAddr::new(ip(CLIENT), 4500));
    assert_eq!(a_out.remote, Some(SocketAddr::new(ip(GW), 4500)));
    assert_eq!(b_out.local, SocketAddr::new(ip(GW), 4500));
    assert_eq!(b_out.remote, Some(public));
    // virtual IP from the pool; selectors narrowed to it and to the LAN
    let vip = ip("10.99.0.1");
    match &net.events_a[1] {
        IkeEvent::ChildUp { virtual_ip, .. } => assert_eq!(*virtual_ip, Some(vip)),
        e => panic!("{e:?}"),
    }
    assert_eq!(a_out.selectors.local, [IpPrefix::host(vip)]);
    assert_eq!(a_out.selectors.remote, ["10.9.0.0/24".parse().unwrap()]);
    assert_eq!(b_in.selectors.remote, [IpPrefix::host(vip)]);
    assert_eq!(b_in.selectors.local, ["10.9.0.0/24".parse().unwrap()]);
    assert_ne!(a_in.peer, PeerId(0));
    // NAT detection: the client knows it is behind a NAT, the gateway knows the peer is; the
    // client sees the gateway "behind a NAT" too, because the gateway forces encapsulation
    let la = &net.a.list()[0];
    let lb = &net.b.list()[0];
    assert_eq!((la.nat_local, la.nat_remote), (true, true));
    assert_eq!((lb.nat_local, lb.nat_remote), (false, true));
    assert!(la.encap_forced && lb.encap_forced);
    assert_eq!((la.state, lb.state), ("established", "established"));
    assert_eq!(la.ike_suite, "aes128gcm16-prfsha256-x25519");
    assert_eq!(la.our_spi, lb.their_spi);
    assert_eq!(lb.remote, public);
    assert_eq!(lb.children[0].virtual_ip, Some(vip));
    assert_eq!(lb.remote_id.as_deref(), Some("Fqdn(\"client.example\")"));
    // IKE_SA_INIT on 500, the rest on 4500 (the marker is the caller's job)
    let ports: Vec<(u16, u16)> = net
        .wire
        .iter()
        .map(|(_, t)| (t.src.port(), t.dst.port()))
        .collect();
    assert_eq!(
        ports,
        [(500, 500), (500, 30000), (4500, 4500), (4500, 30001)]
    );
    assert!(!net.wire[0].1.needs_non_esp_marker());
    assert!(net.wire[2].1.needs_non_esp_marker());
    // keepalives from the NATed side only, every 20 s
    net.wire.clear();
    net.advance(Duration::from_secs(61));
    let keepalives: Vec<Side> = net
        .wire
        .iter()
        .filter(|(_, t)| t.kind == TransmitKind::Keepalive)
        .map(|(s, t)| {
            assert_eq!(t.bytes, [0xff]);
            assert_eq!((t.src.port(), t.dst.port()), (4500, 4500));
            *s
        })
        .collect();
    assert_eq!(keepalives, [Side::A, Side::A, Side::A]);
    // DPD kept both sides alive meanwhile
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    let json = serde_json::to_string(&net.b.list()).unwrap();
    assert!(json.contains("\"state\":\"established\""), "{json}");
}

const CBC: IkeSuite = IkeSuite {
    encr: Encr::AesCbc { key_bits: 128 },
    prf: Prf::HmacSha256,
    integ: Some(Integ::HmacSha256_128),
    dh: DhGroup::Ecp256,
};

#[test]
fn every_suite() {
    for (ike, esp, aead, name) in [
        (
            IKE_GCM128_X25519,
            ESP_GCM128,
            Aead::Aes128Gcm16,
            "aes128gcm16-prfsha256-x25519",
        ),
        (
            IKE_GCM256_P384,
            ESP_GCM256,
            Aead::Aes256Gcm16,
            "aes256gcm16-prfsha384-ecp384",
        ),
        (
            CBC,
            ESP_GCM256,
            Aead::Aes256Gcm16,
            "aes128-sha256-prfsha256-ecp256",
        ),
    ] {
        let mut a = client_conn();
        let mut b = gw_conn();
        a.ike = vec![ike];
        a.esp = vec![esp];
        b.ike = vec![IKE_GCM128_X25519, IKE_GCM256_P384, CBC];
        b.esp = vec![ESP_GCM128, ESP_GCM256];
        let mut net = Net::new(a, b, true);
        net.initiate();
        assert_eq!(net.kinds(Side::B), ["ike_up", "child_up"], "{name}");
        let (a, b) = (net.child_ups(Side::A), net.child_ups(Side::B));
        assert_paired(&a[0], &b[0]);
        assert_eq!(a[0].0.aead, aead);
        assert_eq!(net.a.list()[0].ike_suite, name);
        assert_eq!(net.b.list()[0].children[0].esp, aead.name());
    }
}

#[test]
fn invalid_ke_payload_retry() {
    let mut a = client_conn();
    let mut b = gw_conn();
    a.ike = vec![IKE_GCM128_X25519, IKE_GCM256_P384];
    b.ike = vec![IKE_GCM256_P384];
    let mut net = Net::new(a, b, true);
    net.initiate();
    assert_eq!(net.drops(Side::B), ["invalid_ke_payload"]);
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    assert_eq!(net.a.list()[0].ike_suite, "aes256gcm16-prfsha384-ecp384");
    // the retry: same SPIi, a KE of group 20
    let retry = parse_message(&net.wire[2].1.bytes).unwrap();
    let first = parse_message(&net.wire[0].1.bytes).unwrap();
    assert_eq!(retry.header.spi_i, first.header.spi_i);
    assert_eq!(retry.ke().unwrap().group, 20);
    assert_paired(&net.child_ups(Side::A)[0], &net.child_ups(Side::B)[0]);
}

#[test]
fn cookie_when_busy() {
    let mut b = gw_conn();
    b.timers.cookie_threshold = 0;
    let mut net = Net::new(client_conn(), b, true);
    net.initiate();
    assert_eq!(net.drops(Side::B), ["cookie_required"]);
    let cookie_reply = parse_message(&net.wire[1].1.bytes).unwrap();
    assert_eq!(cookie_reply.notifies(NotifyType::COOKIE).count(), 1);
    let retry = parse_message(&net.wire[2].1.bytes).unwrap();
    assert!(matches!(&retry.payloads[0], Payload::Notify(n) if n.ty == NotifyType::COOKIE));
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    assert_eq!(net.kinds(Side::B), ["ike_up", "child_up"]);
}

/// The COOKIE in an IKE_SA_INIT response, if that is what it is.
fn cookie_of(t: &Transmit) -> Option<Vec<u8>> {
    let m = parse_message(&t.bytes).unwrap();
    m.notifies(NotifyType::COOKIE)
        .next()
        .map(|n| n.data.clone())
}

/// `t` delivered to `e` at `now` (no NAT); what `e` sends back.
fn deliver(e: &mut Engine, now: Instant, t: &Transmit) -> Transmit {
    e.handle(
        now,
        Datagram {
            src: t.src,
            dst: t.dst,
            bytes: &t.bytes,
        },
    );
    e.poll_transmit().expect("an answer")
}

#[test]
fn cookie_secret_rotation() {
    let mut gw = gw_conn();
    gw.timers.cookie_threshold = 0;
    let mut b = Engine::new(vec![gw], Box::new(SystemRandom::new()));
    let client = || Engine::new(vec![client_conn()], Box::new(SystemRandom::new()));
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    // a cookie made at t0, answered late: after the secret changed (another initiator's
    // request rotated it at 2 min) it is still honoured for a while
    let mut a = client();
    a.initiate(t0, "gw").unwrap();
    let req = a.poll_transmit().unwrap();
    let c1 = deliver(&mut b, t0, &req);
    let v1 = cookie_of(&c1).unwrap()[0];
    let mut x = client();
    x.initiate(at(121), "gw").unwrap();
    let cx = deliver(&mut b, at(121), &x.poll_transmit().unwrap());
    assert_eq!(cookie_of(&cx).unwrap()[0], v1.wrapping_add(1));
    let retry = deliver(&mut a, at(125), &c1);
    let resp = deliver(&mut b, at(125), &retry);
    assert_eq!(cookie_of(&resp), None, "accepted with the previous secret");
    assert!(parse_message(&resp.bytes).unwrap().sa().is_some());
    assert_eq!(b.stats().half_open, 1);
    // a cookie from two secrets ago is refused with a fresh one
    let retry = deliver(&mut x, at(400), &cx);
    let again = deliver(&mut b, at(400), &retry);
    let fresh = cookie_of(&again).expect("a new cookie");
    assert_eq!(fresh[0], v1.wrapping_add(2));
    assert_eq!(b.stats().half_open, 1);
    // ... with which the initiator gets in
    let retry = deliver(&mut x, at(401), &again);
    let resp = deliver(&mut b, at(401), &retry);
    assert_eq!(cookie_of(&resp), None);
    assert_eq!(b.stats().half_open, 2);
    let drops: Vec<&str> = std::iter::from_fn(|| b.poll_event())
        .filter_map(|e| match e {
            IkeEvent::Dropped { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        drops,
        ["cookie_required", "cookie_required", "cookie_required"]
    );
}

#[test]
fn wrong_psk() {
    let mut b = gw_conn();
    b.psk = zeroize::Zeroizing::new(b"another key entirely".to_vec());
    let mut net = Net::new(client_conn(), b, true);
    net.initiate();
    assert_eq!(net.drops(Side::B), ["authentication_failed"]);
    assert!(net.kinds(Side::B).is_empty());
    assert_eq!(net.down_reasons(Side::A), ["authentication_failed"]);
    assert!(net.a.list().is_empty() && net.b.list().is_empty());
    // the responder's pool lease is back
    assert_eq!(net.b.stats().half_open, 0);
}

#[test]
fn responder_refuses_what_it_cannot_do() {
    // no common IKE suite: NO_PROPOSAL_CHOSEN
    let mut a = client_conn();
    a.ike = vec![CBC];
    let mut net = Net::new(a, gw_conn(), true);
    net.initiate();
    assert_eq!(net.drops(Side::B), ["no_proposal_chosen"]);
    assert_eq!(net.down_reasons(Side::A), ["no_proposal_chosen"]);
    // traffic selectors that do not meet: TS_UNACCEPTABLE, IKE SA deleted by the initiator
    let mut a = client_conn();
    a.remote_ts = vec!["172.16.0.0/12".parse().unwrap()];
    let mut net = Net::new(a, gw_conn(), true);
    net.initiate();
    assert_eq!(net.drops(Side::A), ["ts_unacceptable"]);
    assert_eq!(net.kinds(Side::A), ["ike_up", "ike_down"]);
    assert_eq!(net.down_reasons(Side::A), ["ts_unacceptable"]);
    assert_eq!(net.kinds(Side::B), ["ike_up", "ike_down"]);
    assert_eq!(net.down_reasons(Side::B), ["deleted_by_peer"]);
    // an identity we do not expect
    let mut a = client_conn();
    a.remote_id = Some(fqdn("other.example"));
    let mut net = Net::new(a, gw_conn(), false);
    net.initiate();
    assert_eq!(net.down_reasons(Side::A), ["id_mismatch"]);
}

#[test]
fn lost_packets_are_retransmitted_with_backoff() {
    let mut net = Net::road_warrior();
    // lose the first two IKE_AUTH requests
    let mut lost = 0;
    net.filter = Box::new(move |side, t| {
        if side == Side::A && t.dst.port() == 4500 && lost < 2 {
            lost += 1;
            return false;
        }
        true
    });
    let t0 = net.now;
    net.initiate();
    assert!(net.kinds(Side::A).is_empty());
    net.advance(Duration::from_secs(10));
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    let auth: Vec<&Transmit> = net
        .wire
        .iter()
        .filter(|(s, t)| *s == Side::A && t.dst.port() == 4500)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(auth.len(), 3);
    assert!(auth.iter().all(|t| t.bytes == auth[0].bytes), "same bytes");
    // sent at once, after 1 s, after 2 s more
    let at: Vec<u64> = net
        .wire
        .iter()
        .zip(&net.sent_at)
        .filter(|((s, t), _)| *s == Side::A && t.dst.port() == 4500)
        .map(|(_, at)| (*at - t0).as_secs())
        .collect();
    assert_eq!(at, [0, 1, 3]);
}

#[test]
fn retransmission_timing_and_give_up() {
    let mut net = Net::road_warrior();
    net.filter = Box::new(|side, _| side == Side::B);
    let t0 = net.now;
    net.initiate();
    let mut sends = vec![];
    for _ in 0..100 {
        match net.a.poll_timeout() {
            Some(t) => {
                net.now = t;
                net.a.handle_timeout(t);
                sends.push(t - t0);
                net.run();
            }
            None => break,
        }
    }
    // retransmissions after 1, 3, 7, 15, 31 s; given up at 63 s
    let secs: Vec<u64> = sends.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [1, 3, 7, 15, 31, 63]);
    assert_eq!(net.down_reasons(Side::A), ["peer_timeout"]);
    assert!(net.a.list().is_empty());
}

#[test]
fn duplicate_request_gets_the_cached_response() {
    let mut net = Net::road_warrior();
    net.initiate();
    // replay the IKE_INIT and IKE_AUTH requests as they reached the gateway
    let requests: Vec<Transmit> = net
        .wire
        .iter()
        .filter(|(s, _)| *s == Side::A)
        .map(|(_, t)| t.clone())
        .collect();
    let responses: Vec<Vec<u8>> = net
        .wire
        .iter()
        .filter(|(s, _)| *s == Side::B)
        .map(|(_, t)| t.bytes.clone())
        .collect();
    // IKE_AUTH: the same response again
    let src = SocketAddr::new(ip(NAT_PUBLIC), 30001);
    net.b.handle(
        net.now,
        Datagram {
            src,
            dst: requests[1].dst,
            bytes: &requests[1].bytes,
        },
    );
    let again = net.b.poll_transmit().expect("a response");
    assert_eq!(
        (again.bytes.as_slice(), again.dst),
        (responses[1].as_slice(), src)
    );
    // IKE_SA_INIT after IKE_AUTH: the initiator had the response; no new SA
    let src = SocketAddr::new(ip(NAT_PUBLIC), 30000);
    net.b.handle(
        net.now,
        Datagram {
            src,
            dst: requests[0].dst,
            bytes: &requests[0].bytes,
        },
    );
    assert_eq!(net.b.poll_transmit(), None);
    assert_eq!(
        net.b.poll_event(),
        Some(IkeEvent::Dropped {
            reason: "init_retransmit"
        })
    );
    assert_eq!(net.b.list().len(), 1);
    // an older request ID: dropped
    net.advance(Duration::from_secs(31)); // a DPD exchange from either side moves the IDs on
    net.b.handle(
        net.now,
        Datagram {
            src: SocketAddr::new(ip(NAT_PUBLIC), 30001),
            dst: requests[1].dst,
            bytes: &requests[1].bytes,
        },
    );
    assert!(net.b.poll_transmit().is_none());
}

#[test]
fn strongswan_ike_sa_init_request() {
    let raw =
        hex::decode(include_str!("../../testdata/strongswan_gcm_init_req.hex").trim()).unwrap();
    let mut e = Engine::new(vec![gw_conn()], Box::new(SystemRandom::new()));
    let now = Instant::now();
    let src = SocketAddr::new(ip("10.252.0.1"), 500);
    let dst = SocketAddr::new(ip(GW), 500);
    e.handle(
        now,
        Datagram {
            src,
            dst,
            bytes: &raw,
        },
    );
    let t = e.poll_transmit().unwrap();
    assert_eq!((t.src, t.dst), (dst, src));
    let resp = parse_message(&t.bytes).unwrap();
    assert!(resp.header.flags.response && !resp.header.flags.initiator);
    let sa = resp.sa().unwrap();
    assert_eq!(sa.proposals.len(), 1);
    assert_eq!(
        sa.proposals[0].num, 1,
        "aes128gcm16-prfsha256-x25519 is proposal 1"
    );
    assert_eq!(resp.ke().unwrap().group, 31);
    assert_eq!(
        resp.notifies(NotifyType::NAT_DETECTION_SOURCE_IP).count(),
        1
    );
    let info = &e.list()[0];
    assert_eq!(info.state, "connecting");
    assert_eq!(info.ike_suite, "aes128gcm16-prfsha256-x25519");
    // strongSwan's capture had no NAT but its libipsec fakes one: a random source hash
    assert!(info.nat_remote);
    // with only the GCM-256 suite configured, proposal 2 is chosen
    let mut c = gw_conn();
    c.ike = vec![IKE_GCM256_P384];
    let mut e = Engine::new(vec![c], Box::new(SystemRandom::new()));
    e.handle(
        now,
        Datagram {
            src,
            dst,
            bytes: &raw,
        },
    );
    let resp = parse_message(&e.poll_transmit().unwrap().bytes).unwrap();
    // the KE was x25519: INVALID_KE_PAYLOAD asking for group 20
    let n = resp
        .notifies(NotifyType::INVALID_KE_PAYLOAD)
        .next()
        .unwrap();
    assert_eq!(n.invalid_ke_group(), Some(20));
    assert_eq!(
        e.poll_event(),
        Some(IkeEvent::Dropped {
            reason: "invalid_ke_payload"
        })
    );
}
