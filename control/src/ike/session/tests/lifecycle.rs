//! INFORMATIONAL: deletes from either side, liveness checks, NAT rebinding, half-open expiry.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

#[test]
fn delete_from_the_initiator() {
    let mut net = Net::road_warrior();
    net.initiate();
    let (a_in, a_out) = net.child_ups(Side::A)[0].clone();
    net.a.terminate(net.now, "gw").unwrap();
    net.run();
    assert_eq!(
        net.kinds(Side::A),
        ["ike_up", "child_up", "child_down", "ike_down"]
    );
    assert_eq!(
        net.kinds(Side::B),
        ["ike_up", "child_up", "child_down", "ike_down"]
    );
    assert_eq!(net.down_reasons(Side::A), ["terminated"]);
    assert_eq!(net.down_reasons(Side::B), ["deleted_by_peer"]);
    match &net.events_a[2] {
        IkeEvent::ChildDown {
            conn,
            inbound_spi,
            outbound_spi,
        } => assert_eq!(
            (conn.as_str(), *inbound_spi, *outbound_spi),
            ("gw", a_in.spi, a_out.spi)
        ),
        e => panic!("{e:?}"),
    }
    assert!(net.a.list().is_empty() && net.b.list().is_empty());
    assert_eq!(
        net.a.terminate(net.now, "gw"),
        Err(SessionError::NotActive("gw".into()))
    );
    assert_eq!(
        net.a.terminate(net.now, "nope"),
        Err(SessionError::UnknownConn("nope".into()))
    );
    // and up again: the address went back to the pool
    net.initiate();
    assert_eq!(net.kinds(Side::A).len(), 6);
    assert_eq!(
        net.a.initiate(net.now, "gw"),
        Err(SessionError::AlreadyActive("gw".into()))
    );
}

#[test]
fn delete_from_the_responder() {
    let mut net = Net::road_warrior();
    net.initiate();
    net.b.terminate(net.now, "rw").unwrap();
    net.run();
    assert_eq!(
        net.kinds(Side::A),
        ["ike_up", "child_up", "child_down", "ike_down"]
    );
    assert_eq!(
        net.kinds(Side::B),
        ["ike_up", "child_up", "child_down", "ike_down"]
    );
    assert_eq!(net.down_reasons(Side::A), ["deleted_by_peer"]);
    assert_eq!(net.down_reasons(Side::B), ["terminated"]);
}

#[test]
fn dead_peer_detection() {
    let mut net = Net::road_warrior();
    net.initiate();
    // the gateway's replies stop arriving
    net.filter = Box::new(|side, _| side == Side::A);
    let t0 = net.now;
    net.advance(Duration::from_secs(29));
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    net.advance(Duration::from_secs(200));
    assert_eq!(
        net.kinds(Side::A),
        ["ike_up", "child_up", "child_down", "ike_down"]
    );
    assert_eq!(net.down_reasons(Side::A), ["peer_timeout"]);
    // DPD after 30 s of silence, then retransmissions after 1, 2, 4, 8, 16 s, then 32 s
    // until the peer is declared dead
    let sent: Vec<u64> = net
        .wire
        .iter()
        .zip(&net.sent_at)
        .filter(|((s, t), _)| *s == Side::A && t.kind == TransmitKind::Ike)
        .skip(2)
        .map(|(_, at)| (*at - t0).as_secs())
        .collect();
    assert_eq!(sent, [30, 31, 33, 37, 45, 61]);
    match net
        .events_a
        .iter()
        .find(|e| matches!(e, IkeEvent::IkeDown { .. }))
    {
        Some(IkeEvent::IkeDown { conn, .. }) => assert_eq!(conn, "gw"),
        e => panic!("{e:?}"),
    }
    // the gateway heard the requests but got no answer to its own checks: down as well
    assert_eq!(net.down_reasons(Side::B), ["peer_timeout"]);
    assert!(net.a.list().is_empty() && net.b.list().is_empty());
}

#[test]
fn liveness_checks_keep_a_quiet_tunnel_up() {
    let mut net = Net::road_warrior();
    net.initiate();
    net.advance(Duration::from_secs(600));
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    assert_eq!(net.kinds(Side::B), ["ike_up", "child_up"]);
    assert!(net.drops(Side::A).is_empty() && net.drops(Side::B).is_empty());
}

#[test]
fn nat_rebinding_moves_the_peer() {
    let mut net = Net::road_warrior();
    net.initiate();
    let before = net.b.list()[0].remote;
    if let Some(nat) = &mut net.nat {
        nat.rebind();
    }
    net.advance(Duration::from_secs(40));
    let after = net.b.list()[0].remote;
    assert_ne!(before, after);
    assert_eq!(after.ip(), ip(NAT_PUBLIC));
    let moved: Vec<SocketAddr> = net
        .events_b
        .iter()
        .filter_map(|e| match e {
            IkeEvent::PeerMoved { remote, conn, .. } => {
                assert_eq!(conn, "rw");
                Some(*remote)
            }
            _ => None,
        })
        .collect();
    assert_eq!(moved, [after]);
    // still alive both ways afterwards
    net.advance(Duration::from_secs(120));
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    assert_eq!(net.kinds(Side::B), ["ike_up", "child_up", "peer_moved"]);
}

#[test]
fn half_open_sas_expire() {
    let mut net = Net::road_warrior();
    net.filter = Box::new(|side, t| !(side == Side::A && t.dst.port() == 4500));
    net.initiate();
    assert_eq!(net.b.stats().half_open, 1);
    assert_eq!(net.b.list()[0].state, "connecting");
    net.advance(Duration::from_secs(31));
    assert_eq!(net.b.stats().half_open, 0);
    assert!(net.b.list().is_empty());
    assert!(net.drops(Side::B).contains(&"half_open_timeout"));
    assert!(net.kinds(Side::B).is_empty());
}

#[test]
fn initial_contact_replaces_a_stale_sa() {
    let mut net = Net::road_warrior();
    net.initiate();
    // the client restarts and forgets everything; the gateway still holds the old SA
    net.a = Engine::new(vec![client_conn()], Box::new(SystemRandom::new()));
    net.initiate();
    assert_eq!(
        net.kinds(Side::B),
        [
            "ike_up",
            "child_up",
            "child_down",
            "ike_down",
            "ike_up",
            "child_up"
        ]
    );
    assert_eq!(net.down_reasons(Side::B), ["initial_contact"]);
    assert_eq!(net.b.list().len(), 1);
}

#[test]
fn refused_rekey_ends_in_expiry() {
    // the client wants PFS on rekeys, the gateway does not: the rekey is refused, the child
    // expires and is deleted, and the IKE SA, left with nothing to carry, goes too
    let mut a = client_conn();
    a.esp = vec![crate::ike::crypto::transform::EspSuite {
        dh: Some(crate::ike::crypto::transform::DhGroup::Curve25519),
        ..ESP_GCM128
    }];
    a.timers.child_lifetime = Duration::from_secs(300);
    a.timers.rekey_margin = Duration::from_secs(60);
    let mut net = Net::new(a, gw_conn(), true);
    net.initiate();
    net.advance(Duration::from_secs(250));
    assert_eq!(net.drops(Side::A), ["no_proposal_chosen"]);
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    assert_eq!(net.a.list()[0].children[0].rekey_in, None);
    net.advance(Duration::from_secs(60));
    for side in [Side::A, Side::B] {
        assert_eq!(
            net.kinds(side),
            ["ike_up", "child_up", "child_down", "ike_down"]
        );
    }
    assert_eq!(net.down_reasons(Side::A), ["no_child"]);
    assert_eq!(net.down_reasons(Side::B), ["deleted_by_peer"]);
    assert!(net.a.list().is_empty() && net.b.list().is_empty());
}

#[test]
fn ike_sa_expires_when_it_cannot_be_rekeyed() {
    let mut a = client_conn();
    a.timers.ike_lifetime = Duration::from_secs(600);
    a.timers.rekey_margin = Duration::from_secs(60);
    // the gateway does not do the client's first choice for the rekey... nor any: make the
    // gateway refuse by offering nothing it takes (only possible through its own config)
    let mut b = gw_conn();
    b.ike = vec![IKE_GCM128_X25519];
    a.ike = vec![IKE_GCM128_X25519];
    let mut net = Net::new(a, b, true);
    net.initiate();
    // swap the client's proposals after the fact: its rekey now offers only GCM-256/P-384
    net.a.conns[0].ike = vec![IKE_GCM256_P384];
    net.advance(Duration::from_secs(601));
    assert_eq!(net.down_reasons(Side::A), ["expired"]);
    assert_eq!(
        net.kinds(Side::A),
        ["ike_up", "child_up", "child_down", "ike_down"]
    );
    assert_eq!(net.down_reasons(Side::B), ["deleted_by_peer"]);
}

#[test]
fn terminate_while_connecting() {
    let mut net = Net::road_warrior();
    net.filter = Box::new(|_, _| false);
    net.initiate();
    assert_eq!(net.a.list()[0].state, "connecting");
    net.a.terminate(net.now, "gw").unwrap();
    net.run();
    assert_eq!(net.down_reasons(Side::A), ["terminated"]);
    assert!(net.a.list().is_empty());
    assert_eq!(net.a.poll_timeout(), None);
}

#[test]
fn initiator_without_a_configured_address() {
    let mut a = client_conn();
    a.local = None;
    let mut net = Net::new(a, gw_conn(), true);
    net.initiate();
    assert!(net.wire[0].1.src.ip().is_unspecified());
    assert_eq!(net.wire[0].1.src.port(), 500);
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    // the address it was reached on is learnt from the response
    assert_eq!(net.a.list()[0].local, SocketAddr::new(ip(CLIENT), 4500));
}

#[test]
fn responder_insists_on_an_identity() {
    let mut b = gw_conn();
    b.remote_id = Some(fqdn("someone-else.example"));
    let mut net = Net::new(client_conn(), b, true);
    net.initiate();
    assert_eq!(net.drops(Side::B), ["authentication_failed"]);
    assert_eq!(net.down_reasons(Side::A), ["authentication_failed"]);
}

#[test]
fn ipv6_with_a_virtual_address() {
    let gw6: IpAddr = ip("2001:db8:1::2");
    let mut a = ConnConfig::initiator("gw", SocketAddr::new(gw6, 500), fqdn("client.example"), PSK);
    a.local = Some(ip("2001:db8:2::2"));
    a.request_vip = true;
    a.remote_ts = vec!["fd00:9::/64".parse().unwrap()];
    let mut b = ConnConfig::responder("rw", fqdn("gw.example"), PSK);
    b.local = Some(gw6);
    b.local_ts = vec!["fd00:9::/64".parse().unwrap()];
    b.pool = Some((ip("fd00:99::1"), 10));
    let mut net = Net::new(a, b, false);
    net.initiate();
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    let (a_in, a_out) = &net.child_ups(Side::A)[0];
    assert_paired(&(a_in.clone(), a_out.clone()), &net.child_ups(Side::B)[0]);
    let vip = ip("fd00:99::1");
    assert_eq!(
        a_out.selectors.local,
        [xdpsec_dataplane::sa::IpPrefix::host(vip)]
    );
    assert_eq!(a_out.selectors.remote, ["fd00:9::/64".parse().unwrap()]);
    assert_eq!(net.b.list()[0].children[0].virtual_ip, Some(vip));
}

/// The virtual IP of the last ChildUp on one side.
fn last_vip(net: &Net, side: Side) -> Option<std::net::IpAddr> {
    net.events(side).iter().rev().find_map(|e| match e {
        IkeEvent::ChildUp { virtual_ip, .. } => *virtual_ip,
        _ => None,
    })
}

#[test]
fn virtual_ip_follows_the_identity() {
    let mut net = Net::road_warrior();
    let first = ip("10.99.0.1");
    // deleted by the client, by the gateway, by a timeout: the address comes back each time
    for end in ["client", "gateway", "timeout", "client"] {
        net.initiate();
        assert_eq!(last_vip(&net, Side::A), Some(first), "{end}");
        assert_eq!(last_vip(&net, Side::B), Some(first), "{end}");
        match end {
            "client" => net.a.terminate(net.now, "gw").unwrap(),
            "gateway" => net.b.terminate(net.now, "rw").unwrap(),
            _ => {
                // the client vanishes; the gateway's liveness checks give up on it
                net.filter = Box::new(|side, _| side == Side::B);
                net.advance(Duration::from_secs(120));
                net.filter = Box::new(|_, _| true);
                assert_eq!(net.down_reasons(Side::B).last(), Some(&"peer_timeout"));
                net.a = Engine::new(vec![client_conn()], Box::new(SystemRandom::new()));
            }
        }
        net.run();
        assert!(net.b.list().is_empty(), "{end}");
    }
    // another identity gets another address, also while the first one is offline
    net.initiate();
    let mut other = client_conn();
    other.local_id = fqdn("other.example");
    let mut second = Engine::new(vec![other], Box::new(SystemRandom::new()));
    std::mem::swap(&mut net.a, &mut second);
    net.initiate();
    assert_eq!(last_vip(&net, Side::B), Some(ip("10.99.0.2")));
    std::mem::swap(&mut net.a, &mut second);
    net.a.terminate(net.now, "gw").unwrap();
    net.run();
    let mut third = client_conn();
    third.local_id = fqdn("third.example");
    net.a = Engine::new(vec![third], Box::new(SystemRandom::new()));
    net.initiate();
    assert_eq!(last_vip(&net, Side::B), Some(ip("10.99.0.3")));
    assert_eq!(net.b.list().len(), 2);
}
