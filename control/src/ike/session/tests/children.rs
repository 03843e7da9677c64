//! Additional child SAs (CREATE_CHILD_SA without REKEY_SA, RFC 7296 §1.3.1): from either side,
//! up to the per-IKE SA limit, rekeyed and moved with the IKE SA like the first one.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

/// Both sides list the same pairs; returns A's (inbound, outbound) SPIs.
fn pairs(net: &Net) -> Vec<(u32, u32)> {
    let mut a: Vec<(u32, u32)> = net
        .a
        .list()
        .iter()
        .flat_map(|s| s.children.iter().map(|c| (c.inbound_spi, c.outbound_spi)))
        .collect();
    let mut b: Vec<(u32, u32)> = net
        .b
        .list()
        .iter()
        .flat_map(|s| s.children.iter().map(|c| (c.outbound_spi, c.inbound_spi)))
        .collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "both sides hold the same pairs");
    a
}

/// Every ChildUp has at most one ChildDown, and what is still up is what the engine lists.
fn up_minus_down(net: &Net, side: Side) -> Vec<u32> {
    let mut up: HashMap<u32, u32> = HashMap::new();
    for e in net.events(side) {
        match e {
            IkeEvent::ChildUp { inbound, .. } => *up.entry(inbound.spi).or_default() += 1,
            IkeEvent::ChildDown { inbound_spi, .. } => {
                let n = up.get_mut(inbound_spi).expect("ChildDown after ChildUp");
                assert_eq!(*n, 1, "one ChildDown per ChildUp");
                *n = 0;
            }
            _ => {}
        }
    }
    let mut live: Vec<u32> = up
        .into_iter()
        .filter(|(_, n)| *n == 1)
        .map(|(s, _)| s)
        .collect();
    live.sort_unstable();
    live
}

fn count(net: &Net, side: Side, kind: &str) -> usize {
    net.kinds(side).iter().filter(|k| **k == kind).count()
}

#[test]
fn additional_children_from_either_side() {
    let mut net = Net::road_warrior();
    net.initiate();
    // the initiator asks for a second pair: same selectors as the first, other SPIs and keys
    net.a.create_child(net.now, "gw").unwrap();
    net.run();
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up", "child_up"]);
    assert_eq!(net.kinds(Side::B), ["ike_up", "child_up", "child_up"]);
    let (a, b) = (net.child_ups(Side::A), net.child_ups(Side::B));
    assert_paired(&a[1], &b[1]);
    assert_ne!(a[1].0.spi, a[0].0.spi);
    assert_ne!(a[1].0.key, a[0].0.key);
    assert_eq!(a[1].1.selectors, a[0].1.selectors);
    assert_eq!(b[1].0.selectors, b[0].0.selectors);
    assert_eq!((a[1].1.local, a[1].1.remote), (a[0].1.local, a[0].1.remote));
    match net.events_b.last() {
        Some(IkeEvent::ChildUp { virtual_ip, .. }) => {
            assert_eq!(*virtual_ip, Some(ip("10.99.0.1")));
        }
        e => panic!("{e:?}"),
    }
    // the responder asks for a third
    net.b.create_child(net.now, "rw").unwrap();
    net.run();
    assert_eq!(count(&net, Side::A, "child_up"), 3);
    assert_paired(&net.child_ups(Side::A)[2], &net.child_ups(Side::B)[2]);
    assert_eq!(pairs(&net).len(), 3);
    // both at once for a fourth: each side counts its own request, so each refuses the
    // other's (§3.10.1 NO_ADDITIONAL_SAS) and the IKE SA carries on
    net.a.create_child(net.now, "gw").unwrap();
    net.b.create_child(net.now, "rw").unwrap();
    net.run();
    assert_eq!(net.drops(Side::A), ["no_additional_sas"]);
    assert_eq!(net.drops(Side::B), ["no_additional_sas"]);
    assert_eq!(pairs(&net).len(), 3);
    // the fourth, then the limit
    net.a.create_child(net.now, "gw").unwrap();
    net.run();
    assert_eq!(pairs(&net).len(), 4);
    assert_eq!(
        net.a.create_child(net.now, "gw"),
        Err(SessionError::TooManyChildren("gw".into()))
    );
    assert_eq!(
        net.b.create_child(net.now, "rw"),
        Err(SessionError::TooManyChildren("rw".into()))
    );
    assert_eq!(
        net.b.create_child(net.now, "nope"),
        Err(SessionError::UnknownConn("nope".into()))
    );
    for side in [Side::A, Side::B] {
        assert_eq!(up_minus_down(&net, side).len(), 4);
    }
    // liveness checks and keepalives go on; nothing else happens
    net.advance(Duration::from_secs(100));
    assert_eq!(count(&net, Side::A, "child_up"), 4);
    // a delete ends every pair, once
    net.a.terminate(net.now, "gw").unwrap();
    net.run();
    for side in [Side::A, Side::B] {
        assert_eq!(count(&net, side, "child_down"), 4, "{side:?}");
        assert_eq!(net.kinds(side).last(), Some(&"ike_down"));
        assert!(up_minus_down(&net, side).is_empty());
    }
    assert_eq!(
        net.a.create_child(net.now, "gw"),
        Err(SessionError::NotActive("gw".into()))
    );
}

#[test]
fn additional_children_are_rekeyed_and_move_with_the_ike_sa() {
    let (mut a, mut b) = (client_conn(), gw_conn());
    // PFS on every CREATE_CHILD_SA
    for c in [&mut a, &mut b] {
        c.esp = vec![crate::ike::crypto::transform::EspSuite {
            dh: Some(crate::ike::crypto::transform::DhGroup::Curve25519),
            ..ESP_GCM128
        }];
    }
    a.timers.child_lifetime = Duration::from_secs(600);
    a.timers.ike_lifetime = Duration::from_secs(1000);
    a.timers.rekey_margin = Duration::from_secs(60);
    let mut net = Net::new(a, b, true);
    net.initiate();
    net.a.create_child(net.now, "gw").unwrap();
    net.run();
    net.b.create_child(net.now, "rw").unwrap();
    net.run();
    let first = pairs(&net);
    assert_eq!(first.len(), 3);
    // every pair rekeyed (twice), the IKE SA once; three pairs all along
    net.advance(Duration::from_secs(1150));
    assert!(
        count(&net, Side::A, "child_up") >= 9,
        "{:?}",
        net.kinds(Side::A)
    );
    assert_eq!(count(&net, Side::A, "ike_up"), 2);
    let now = pairs(&net);
    assert_eq!(now.len(), 3);
    assert!(now.iter().all(|p| !first.contains(p)));
    for side in [Side::A, Side::B] {
        let live = up_minus_down(&net, side);
        assert_eq!(live.len(), 3, "{side:?}");
    }
    let mut listed: Vec<u32> = net.a.list()[0]
        .children
        .iter()
        .map(|c| c.inbound_spi)
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, up_minus_down(&net, Side::A));
    assert!(net.drops(Side::A).is_empty() && net.drops(Side::B).is_empty());
}
