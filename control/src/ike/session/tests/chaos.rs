//! Long runs over a lossy network with replays, short lifetimes (many rekeys), additional
//! child SAs asked for by either side and a runtime that reconnects: afterwards both sides
//! agree, and the events account for every SA.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::*;

/// Replays the event stream: every ChildDown / IkeDown names something that was up, and what
/// is still up is returned (our IKE SPIs, inbound child SPIs).
fn account(events: &[IkeEvent]) -> (BTreeSet<u64>, BTreeSet<u32>) {
    let (mut ike, mut child) = (BTreeSet::new(), BTreeSet::new());
    for e in events {
        match e {
            IkeEvent::IkeUp { ike_spi, .. } => assert!(ike.insert(*ike_spi), "IkeUp twice"),
            IkeEvent::IkeDown { ike_spi, .. } => _ = ike.remove(ike_spi),
            IkeEvent::ChildUp { inbound, .. } => {
                assert!(child.insert(inbound.spi), "ChildUp twice")
            }
            IkeEvent::ChildDown { inbound_spi, .. } => {
                assert!(child.remove(inbound_spi), "ChildDown for an SA never up")
            }
            _ => {}
        }
    }
    (ike, child)
}

fn listed(e: &Engine) -> (BTreeSet<u64>, BTreeSet<u32>) {
    let l = e.list();
    let ike = l
        .iter()
        .map(|s| u64::from_str_radix(&s.our_spi, 16).unwrap())
        .collect();
    let child = l
        .iter()
        .flat_map(|s| s.children.iter().map(|c| c.inbound_spi))
        .collect();
    (ike, child)
}

fn short(c: &mut ConnConfig) {
    c.timers.child_lifetime = Duration::from_secs(120);
    c.timers.ike_lifetime = Duration::from_secs(300);
    c.timers.rekey_margin = Duration::from_secs(30);
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 16, ..Default::default() })]
    #[test]
    fn lossy_network_with_rekeys(
        seed in proptest::num::u64::ANY,
        loss_percent in 0u64..35,
        steps in proptest::collection::vec((1u64..25, proptest::num::u16::ANY), 40..80),
    ) {
        let (mut a, mut b) = (client_conn(), gw_conn());
        short(&mut a);
        short(&mut b);
        let mut net = Net::new(a, b, true);
        let mut state = seed | 1;
        net.filter = Box::new(move |_, _| {
            // xorshift: deterministic per case
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 100 >= loss_percent
        });
        net.initiate();
        for (secs, replay) in steps {
            net.advance(Duration::from_secs(secs));
            // now and then an old datagram comes back (a replay, or a late duplicate)
            if replay % 3 == 0 && !net.wire.is_empty() {
                let (from, t) = net.wire[usize::from(replay) % net.wire.len()].clone();
                if t.kind == TransmitKind::Ike {
                    let now = net.now;
                    match from {
                        Side::A => net.b.handle(now, Datagram { src: SocketAddr::new(ip(NAT_PUBLIC), 30001), dst: t.dst, bytes: &t.bytes }),
                        Side::B => net.a.handle(now, Datagram { src: t.src, dst: SocketAddr::new(ip(CLIENT), t.dst.port()), bytes: &t.bytes }),
                    }
                    net.run();
                }
            }
            // now and then either side wants another child pair (refusals are fine)
            if replay % 5 == 2 {
                _ = net.a.create_child(net.now, "gw");
                net.run();
            } else if replay % 11 == 3 {
                _ = net.b.create_child(net.now, "rw");
                net.run();
            }
            // now and then the NAT forgets its mappings (§2.23: the peer must follow)
            if replay % 7 == 1 && let Some(nat) = &mut net.nat {
                nat.rebind();
            }
            // the runtime brings the tunnel back when it died
            if net.a.list().is_empty() {
                net.initiate();
            }
        }
        // heal the network; stale state dies by liveness checks, the client reconnects
        net.filter = Box::new(|_, _| true);
        net.advance(Duration::from_secs(200));
        if net.a.list().is_empty() {
            net.initiate();
        }
        net.advance(Duration::from_secs(100));
        let one = |e: &Engine| e.list().len() == 1 && !e.list()[0].children.is_empty();
        if !one(&net.a) || !one(&net.b) {
            for side in [Side::A, Side::B] {
                let v: Vec<String> = net.events(side).iter().map(|e| match e {
                    IkeEvent::ChildUp { inbound, .. } => format!("ChildUp({:x})", inbound.spi),
                    IkeEvent::ChildDown { inbound_spi, .. } => format!("ChildDown({inbound_spi:x})"),
                    IkeEvent::IkeUp { ike_spi, .. } => format!("IkeUp({ike_spi:x})"),
                    IkeEvent::IkeDown { ike_spi, reason, .. } => format!("IkeDown({ike_spi:x},{reason})"),
                    e => format!("{e:?}"),
                }).collect();
                eprintln!("{side:?}: {}", v.join(" "));
            }
            eprintln!("A {:#?}\nB {:#?}", net.a.list(), net.b.list());
            let t0 = net.sent_at[0];
            for ((side, t), at) in net.wire.iter().zip(&net.sent_at) {
                if let Ok(m) = crate::ike::message::parse_message(&t.bytes) {
                    eprintln!("W {:>5.1} {side:?} spi_i={:02x}{:02x} spi_r={:02x}{:02x} ex={} resp={} id={} len={}", (*at - t0).as_secs_f64(), m.header.spi_i[0], m.header.spi_i[1], m.header.spi_r[0], m.header.spi_r[1], m.header.exchange.0, m.header.flags.response, m.header.message_id, t.bytes.len());
                }
            }
        }
        for (side, e) in [(Side::A, &net.a), (Side::B, &net.b)] {
            let (ike, child) = account(net.events(side));
            let (l_ike, l_child) = listed(e);
            proptest::prop_assert_eq!(&ike, &l_ike, "{:?}: IKE SAs up vs listed", side);
            proptest::prop_assert_eq!(&child, &l_child, "{:?}: children up vs listed", side);
            proptest::prop_assert_eq!(ike.len(), 1, "{:?}", side);
            proptest::prop_assert!((1..=4).contains(&child.len()), "{:?}: {:?}", side, child);
        }
        let (la, lb) = (net.a.list(), net.b.list());
        // the gateway talks to the client's current NAT mapping
        let nat = net.nat.as_ref().unwrap();
        let public = nat.ports.get(&4500).copied();
        proptest::prop_assert_eq!(Some(lb[0].remote), public.map(|p| SocketAddr::new(ip(NAT_PUBLIC), p)));
        proptest::prop_assert_eq!(&la[0].our_spi, &lb[0].their_spi);
        let pairs = |l: &[IkeSaInfo], flip: bool| -> BTreeSet<(u32, u32)> {
            l[0].children.iter().map(|c| if flip { (c.outbound_spi, c.inbound_spi) } else { (c.inbound_spi, c.outbound_spi) }).collect()
        };
        proptest::prop_assert_eq!(pairs(&la, false), pairs(&lb, true));
    }
}
