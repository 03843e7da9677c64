//! CREATE_CHILD_SA: child and IKE SA rekeying, make-before-break, PFS, collisions.

use std::time::Duration;

use super::*;
use crate::ike::crypto::transform::DhGroup;
use crate::ike::session::ike_sa::Phase;

fn short_child(c: &mut ConnConfig) {
    c.timers.child_lifetime = Duration::from_secs(600);
    c.timers.rekey_margin = Duration::from_secs(60);
}

fn short_ike(c: &mut ConnConfig) {
    c.timers.ike_lifetime = Duration::from_secs(1200);
    c.timers.rekey_margin = Duration::from_secs(60);
}

/// SPIs of the children each side lists, checked to pair up.
fn children_pair(net: &Net) -> Vec<(u32, u32)> {
    let a: Vec<(u32, u32)> = net
        .a
        .list()
        .iter()
        .flat_map(|s| s.children.iter().map(|c| (c.inbound_spi, c.outbound_spi)))
        .collect();
    let b: Vec<(u32, u32)> = net
        .b
        .list()
        .iter()
        .flat_map(|s| s.children.iter().map(|c| (c.outbound_spi, c.inbound_spi)))
        .collect();
    let mut a2 = a.clone();
    let mut b2 = b;
    a2.sort();
    b2.sort();
    assert_eq!(a2, b2, "both sides hold the same pairs");
    a
}

fn child_rekey(initiator_rekeys: bool) {
    let (mut a, mut b) = (client_conn(), gw_conn());
    short_child(if initiator_rekeys { &mut a } else { &mut b });
    let mut net = Net::new(a, b, true);
    net.initiate();
    let first = children_pair(&net);
    // rekey at 600 - 60 s minus up to 10 % of the margin as jitter
    net.advance(Duration::from_secs(533));
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    net.advance(Duration::from_secs(32));
    // make-before-break on both sides: new pair up, then the old one down
    for side in [Side::A, Side::B] {
        assert_eq!(
            net.kinds(side),
            ["ike_up", "child_up", "child_up", "child_down"],
            "{side:?}"
        );
    }
    let ups_a = net.child_ups(Side::A);
    let ups_b = net.child_ups(Side::B);
    assert_paired(&ups_a[1], &ups_b[1]);
    assert_ne!(ups_a[1].0.spi, ups_a[0].0.spi);
    assert_ne!(ups_a[1].0.key, ups_a[0].0.key);
    let now = children_pair(&net);
    assert_eq!(now.len(), 1);
    assert_ne!(now, first);
    assert_eq!(now[0].0, ups_a[1].0.spi);
    match net
        .events_a
        .iter()
        .rev()
        .find(|e| matches!(e, IkeEvent::ChildDown { .. }))
    {
        Some(IkeEvent::ChildDown { inbound_spi, .. }) => assert_eq!(*inbound_spi, first[0].0),
        e => panic!("{e:?}"),
    }
    // the virtual IP and selectors carry over
    assert_eq!(ups_a[1].1.selectors, ups_a[0].1.selectors);
    assert_eq!(ups_b[1].0.selectors, ups_b[0].0.selectors);
    // and it keeps going: a second rekey
    net.advance(Duration::from_secs(600));
    assert_eq!(net.kinds(Side::A).len(), 6);
    assert_eq!(children_pair(&net).len(), 1);
    assert!(net.drops(Side::A).is_empty() && net.drops(Side::B).is_empty());
}

#[test]
fn initiator_rekeys_the_child() {
    child_rekey(true);
}

#[test]
fn responder_rekeys_the_child() {
    child_rekey(false);
}

#[test]
fn child_rekey_with_pfs() {
    let (mut a, mut b) = (client_conn(), gw_conn());
    short_child(&mut a);
    for c in [&mut a, &mut b] {
        c.esp = vec![crate::ike::crypto::transform::EspSuite {
            dh: Some(DhGroup::Curve25519),
            ..ESP_GCM128
        }];
    }
    let mut net = Net::new(a, b, true);
    net.initiate();
    net.advance(Duration::from_secs(600));
    assert_eq!(
        net.kinds(Side::B),
        ["ike_up", "child_up", "child_up", "child_down"]
    );
    let rekey = net
        .wire
        .iter()
        .filter(|(s, _)| *s == Side::A)
        .map(|(_, t)| t.bytes.len())
        .max()
        .unwrap();
    assert!(rekey > 200);
    assert_paired(&net.child_ups(Side::A)[1], &net.child_ups(Side::B)[1]);
}

fn ike_rekey(initiator_rekeys: bool) {
    let (mut a, mut b) = (client_conn(), gw_conn());
    short_ike(if initiator_rekeys { &mut a } else { &mut b });
    let mut net = Net::new(a, b, true);
    net.initiate();
    let spi_a = net.a.list()[0].our_spi.clone();
    let first = children_pair(&net);
    net.advance(Duration::from_secs(1150));
    for side in [Side::A, Side::B] {
        assert_eq!(
            net.kinds(side),
            ["ike_up", "child_up", "ike_up", "ike_down"],
            "{side:?}"
        );
        assert_eq!(net.down_reasons(side), ["rekeyed"]);
    }
    let la = net.a.list();
    assert_eq!(la.len(), 1);
    assert_ne!(la[0].our_spi, spi_a);
    assert_eq!(
        la[0].role,
        if initiator_rekeys {
            "initiator"
        } else {
            "responder"
        }
    );
    assert_eq!(la[0].state, "established");
    assert_eq!(net.b.list()[0].their_spi, la[0].our_spi);
    assert_eq!(
        children_pair(&net),
        first,
        "the children moved to the new IKE SA"
    );
    // the new IKE SA works: liveness checks, and a delete takes the children with it
    net.advance(Duration::from_secs(100));
    assert_eq!(net.kinds(Side::A).len(), 4);
    net.a.terminate(net.now, "gw").unwrap();
    net.run();
    assert_eq!(
        net.kinds(Side::B),
        [
            "ike_up",
            "child_up",
            "ike_up",
            "ike_down",
            "child_down",
            "ike_down"
        ]
    );
    assert!(net.drops(Side::A).is_empty() && net.drops(Side::B).is_empty());
}

#[test]
fn initiator_rekeys_the_ike_sa() {
    ike_rekey(true);
}

#[test]
fn responder_rekeys_the_ike_sa() {
    ike_rekey(false);
}

/// Make both sides start rekeying at the same instant.
fn collide(net: &mut Net, what: &str) {
    let now = net.now;
    for e in [&mut net.a, &mut net.b] {
        for sa in e.sas.values_mut() {
            match what {
                "child" => sa.children.iter_mut().for_each(|c| c.rekey_at = Some(now)),
                _ => sa.rekey_at = Some(now),
            }
        }
    }
    net.a.handle_timeout(now);
    net.b.handle_timeout(now);
    net.run();
    net.advance(Duration::from_secs(20));
}

#[test]
fn simultaneous_child_rekey() {
    let mut net = Net::road_warrior();
    net.initiate();
    collide(&mut net, "child");
    let pairs = children_pair(&net);
    assert_eq!(pairs.len(), 1, "exactly one pair survives");
    for side in [Side::A, Side::B] {
        // every announced child is either listed or went down
        let ups = net.kinds(side).iter().filter(|k| **k == "child_up").count();
        let downs = net
            .kinds(side)
            .iter()
            .filter(|k| **k == "child_down")
            .count();
        assert_eq!(ups - downs, 1, "{side:?}: {:?}", net.kinds(side));
        assert!(!net.kinds(side).contains(&"ike_down"));
    }
    net.advance(Duration::from_secs(100));
    assert_eq!(children_pair(&net).len(), 1);
}

#[test]
fn simultaneous_ike_rekey() {
    let mut net = Net::road_warrior();
    net.initiate();
    let first = children_pair(&net);
    collide(&mut net, "ike");
    net.advance(Duration::from_secs(100));
    let (la, lb) = (net.a.list(), net.b.list());
    assert_eq!((la.len(), lb.len()), (1, 1), "{la:?} {lb:?}");
    assert_eq!(la[0].our_spi, lb[0].their_spi);
    assert_eq!(children_pair(&net), first);
    for e in [&net.a, &net.b] {
        assert!(e.sas.values().all(|sa| sa.phase == Phase::Established));
    }
}
