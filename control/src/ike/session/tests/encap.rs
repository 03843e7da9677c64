//! Forced UDP encapsulation (config `encap`, RFC 7296 §2.23 faked NAT detection) and the
//! refusal of SAs whose ESP would not be UDP-encapsulated (the dataplane does ESP-in-UDP only).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::ike::crypto::auth::nat_detection_hash;
use crate::ike::message::parse_message;
use crate::ike::payload::{NotifyType, Payload};

/// Every ChildUp uses port 4500 on both ends (the gateway sees the NAT's port, if any).
fn children_on_4500(net: &Net) {
    for side in [Side::A, Side::B] {
        let ups = net.child_ups(side);
        assert!(!ups.is_empty(), "{side:?}: no ChildUp");
        for (i, o) in ups {
            for p in [i, o] {
                assert_eq!(p.local.port(), 4500, "{side:?} {p:?}");
                if side == Side::A || net.nat.is_none() {
                    assert_eq!(p.remote.map(|r| r.port()), Some(4500), "{side:?} {p:?}");
                }
            }
        }
    }
}

fn keepalives(net: &Net) -> Vec<Side> {
    net.wire
        .iter()
        .filter(|(_, t)| t.kind == TransmitKind::Keepalive)
        .map(|(s, _)| *s)
        .collect()
}

#[test]
fn without_nat_both_float_to_4500() {
    let mut net = Net::new(client_conn(), gw_conn(), false);
    net.initiate();
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    assert_eq!(net.kinds(Side::B), ["ike_up", "child_up"]);
    let ports: Vec<(u16, u16)> = net
        .wire
        .iter()
        .map(|(_, t)| (t.src.port(), t.dst.port()))
        .collect();
    assert_eq!(ports, [(500, 500), (500, 500), (4500, 4500), (4500, 4500)]);
    children_on_4500(&net);
    let (a, b) = (net.child_ups(Side::A), net.child_ups(Side::B));
    assert_paired(&a[0], &b[0]);
    assert_eq!(b[0].1.remote, Some(SocketAddr::new(ip(CLIENT), 4500)));
    assert_eq!(a[0].1.remote, Some(SocketAddr::new(ip(GW), 4500)));
    // the real detection result: nobody is behind a NAT, each forced the other to believe it
    let la = &net.a.list()[0];
    let lb = &net.b.list()[0];
    assert_eq!(
        (la.nat_local, la.nat_remote, la.encap_forced),
        (false, true, true)
    );
    assert_eq!(
        (lb.nat_local, lb.nat_remote, lb.encap_forced),
        (false, true, true)
    );
    assert_eq!((la.local.port(), la.remote.port()), (4500, 4500));
    assert_eq!((lb.local.port(), lb.remote.port()), (4500, 4500));
    // our source hash cannot match; the destination hash is the real one
    let req = parse_message(&net.wire[0].1.bytes).unwrap();
    let (spi_i, t) = (req.header.spi_i, &net.wire[0].1);
    let src = req
        .notifies(NotifyType::NAT_DETECTION_SOURCE_IP)
        .next()
        .unwrap();
    let dst = req
        .notifies(NotifyType::NAT_DETECTION_DESTINATION_IP)
        .next()
        .unwrap();
    assert_ne!(
        src.data,
        nat_detection_hash(&spi_i, &[0; 8], t.src.ip(), t.src.port())
    );
    assert_eq!(
        dst.data,
        nat_detection_hash(&spi_i, &[0; 8], t.dst.ip(), t.dst.port())
    );
    // no keepalives: nobody is really behind a NAT (RFC 3948 §4)
    net.wire.clear();
    net.advance(Duration::from_secs(65));
    assert!(keepalives(&net).is_empty());
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    // an IKE rekey keeps the setting
    let mut a = client_conn();
    a.timers.ike_lifetime = Duration::from_secs(120);
    a.timers.rekey_margin = Duration::from_secs(30);
    let mut net = Net::new(a, gw_conn(), false);
    net.initiate();
    net.advance(Duration::from_secs(100));
    assert_eq!(
        net.kinds(Side::A),
        ["ike_up", "child_up", "ike_up", "ike_down"]
    );
    let la = &net.a.list()[0];
    assert_eq!(
        (la.nat_local, la.nat_remote, la.encap_forced),
        (false, true, true)
    );
}

#[test]
fn one_side_forcing_is_enough() {
    for (a_encap, b_encap) in [(false, true), (true, false)] {
        let (mut a, mut b) = (client_conn(), gw_conn());
        a.encap = a_encap;
        b.encap = b_encap;
        let mut net = Net::new(a, b, false);
        net.initiate();
        assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"], "{a_encap}");
        assert_eq!(net.kinds(Side::B), ["ike_up", "child_up"], "{a_encap}");
        children_on_4500(&net);
        let la = &net.a.list()[0];
        let lb = &net.b.list()[0];
        assert_eq!((la.nat_local, la.nat_remote), (false, b_encap));
        assert_eq!((lb.nat_local, lb.nat_remote), (false, a_encap));
        assert_eq!((la.encap_forced, lb.encap_forced), (a_encap, b_encap));
    }
}

#[test]
fn encap_off_needs_a_real_nat() {
    let (mut a, mut b) = (client_conn(), gw_conn());
    a.encap = false;
    b.encap = false;
    // behind the NAT: works, with the real detection result and keepalives from the client
    let mut net = Net::new(a.clone(), b.clone(), true);
    net.initiate();
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    children_on_4500(&net);
    let la = &net.a.list()[0];
    let lb = &net.b.list()[0];
    assert_eq!(
        (la.nat_local, la.nat_remote, la.encap_forced),
        (true, false, false)
    );
    assert_eq!(
        (lb.nat_local, lb.nat_remote, lb.encap_forced),
        (false, true, false)
    );
    net.advance(Duration::from_secs(21));
    assert_eq!(keepalives(&net), [Side::A]);
    // without a NAT: the responder refuses (the child SAs would be plain ESP)
    let mut net = Net::new(a, b, false);
    net.initiate();
    assert_eq!(net.drops(Side::B), ["encap_off_without_nat"]);
    assert!(net.kinds(Side::B).is_empty());
    assert_eq!(net.down_reasons(Side::A), ["no_proposal_chosen"]);
    assert!(net.a.list().is_empty() && net.b.list().is_empty());
    assert_eq!(net.b.stats().half_open, 0);
}

/// `bytes` (an unencrypted message) with its payloads changed by `f`, given the header.
fn rewrite(
    bytes: &[u8],
    f: impl FnOnce(&mut Vec<Payload>, &crate::ike::header::Header),
) -> Vec<u8> {
    let mut m = parse_message(bytes).unwrap();
    let h = m.header;
    f(&mut m.payloads, &h);
    m.emit().unwrap()
}

fn without_natd(p: &mut Vec<Payload>, _: &crate::ike::header::Header) {
    p.retain(|p| {
        !matches!(p, Payload::Notify(n) if n.ty == NotifyType::NAT_DETECTION_SOURCE_IP
            || n.ty == NotifyType::NAT_DETECTION_DESTINATION_IP)
    });
}

/// Runs IKE_SA_INIT between a client and a gateway engine without a NAT, passing the request
/// and the response through `req` and `resp`; returns both engines' events.
fn init_through(
    client: ConnConfig,
    req: impl FnOnce(&[u8]) -> Vec<u8>,
    resp: impl FnOnce(&[u8], &Transmit) -> Vec<u8>,
) -> (Vec<IkeEvent>, Vec<IkeEvent>, Option<Transmit>) {
    let now = Instant::now();
    let mut a = Engine::new(vec![client], Box::new(SystemRandom::new()));
    let mut b = Engine::new(vec![gw_conn()], Box::new(SystemRandom::new()));
    a.initiate(now, "gw").unwrap();
    let t = a.poll_transmit().unwrap();
    let bytes = req(&t.bytes);
    b.handle(
        now,
        Datagram {
            src: t.src,
            dst: t.dst,
            bytes: &bytes,
        },
    );
    let r = b.poll_transmit().unwrap();
    let bytes = resp(&r.bytes, &r);
    a.handle(
        now,
        Datagram {
            src: r.src,
            dst: r.dst,
            bytes: &bytes,
        },
    );
    let next = a.poll_transmit();
    (
        std::iter::from_fn(|| a.poll_event()).collect(),
        std::iter::from_fn(|| b.poll_event()).collect(),
        next,
    )
}

#[test]
fn peers_without_nat_t_are_refused() {
    // an initiator that sends no NAT detection: NO_PROPOSAL_CHOSEN
    let (ev_a, ev_b, next) = init_through(
        client_conn(),
        |b| rewrite(b, without_natd),
        |b, _| b.to_vec(),
    );
    assert_eq!(
        ev_b,
        [IkeEvent::Dropped {
            reason: "peer_without_nat_t"
        }]
    );
    assert!(next.is_none(), "no IKE_AUTH");
    assert!(matches!(
        &ev_a[..],
        [IkeEvent::IkeDown {
            reason: "no_proposal_chosen",
            ..
        }]
    ));
    // a responder that sends none: we give up before IKE_AUTH
    let (ev_a, _, next) = init_through(client_conn(), <[u8]>::to_vec, |b, _| {
        rewrite(b, without_natd)
    });
    assert!(next.is_none(), "no IKE_AUTH");
    assert!(
        matches!(
            &ev_a[..],
            [IkeEvent::IkeDown {
                reason: "peer_without_nat_t",
                ..
            }]
        ),
        "{ev_a:?}"
    );
    // encap off, and a responder whose NAT detection finds no NAT: refused as well
    let mut c = client_conn();
    c.encap = false;
    let (ev_a, _, next) = init_through(c, <[u8]>::to_vec, |b, t| {
        rewrite(b, |p, h| {
            // the gateway forces encapsulation; make its source hash the real one
            for p in p.iter_mut() {
                if let Payload::Notify(n) = p
                    && n.ty == NotifyType::NAT_DETECTION_SOURCE_IP
                {
                    n.data =
                        nat_detection_hash(&h.spi_i, &h.spi_r, t.src.ip(), t.src.port()).to_vec();
                }
            }
        })
    });
    assert!(next.is_none(), "no IKE_AUTH");
    assert!(
        matches!(
            &ev_a[..],
            [IkeEvent::IkeDown {
                reason: "encap_off_without_nat",
                ..
            }]
        ),
        "{ev_a:?}"
    );
}
