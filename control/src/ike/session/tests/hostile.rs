//! Garbage, truncated, tampered, misdirected and replayed input: always a named drop,
//! never a panic, never unbounded state.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::ike::header::HEADER_LEN;
use crate::ike::message::parse_message;

fn gw() -> (Engine, SocketAddr, SocketAddr) {
    let e = Engine::new(vec![gw_conn()], Box::new(SystemRandom::new()));
    (
        e,
        SocketAddr::new(ip(NAT_PUBLIC), 30000),
        SocketAddr::new(ip(GW), 500),
    )
}

fn drops(e: &mut Engine) -> Vec<&'static str> {
    std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| match ev {
            IkeEvent::Dropped { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

/// The client's IKE_SA_INIT request and IKE_AUTH request, as sent through the NAT.
fn client_requests() -> (Vec<u8>, Vec<u8>) {
    let mut net = Net::road_warrior();
    net.initiate();
    let req: Vec<Vec<u8>> = net
        .wire
        .iter()
        .filter(|(s, _)| *s == Side::A)
        .map(|(_, t)| t.bytes.clone())
        .collect();
    (req[0].clone(), req[1].clone())
}

#[test]
fn truncated_and_garbage_messages_are_named_drops() {
    let (init, _) = client_requests();
    let (mut e, src, dst) = gw();
    let now = Instant::now();
    for n in 0..init.len() {
        e.handle(
            now,
            Datagram {
                src,
                dst,
                bytes: &init[..n],
            },
        );
        let d = drops(&mut e);
        assert_eq!(d.len(), 1, "{n}");
        assert!(!d[0].is_empty());
    }
    for junk in [&[][..], &[0xff], &[0; 4], &[0; 28], &[0xff; 300]] {
        e.handle(
            now,
            Datagram {
                src,
                dst,
                bytes: junk,
            },
        );
        assert_eq!(drops(&mut e).len(), 1);
    }
    assert!(e.list().is_empty());
    assert_eq!(e.poll_transmit(), None);
    let s = e.stats();
    assert!(s.drops.values().sum::<u64>() >= init.len() as u64);
    assert!(s.drops.contains_key("truncated_header"));
}

#[test]
fn tampered_and_misdirected_messages() {
    let mut net = Net::road_warrior();
    // hold back the IKE_AUTH request, then tamper with it
    let mut held = None;
    net.filter = Box::new(|side, t| !(side == Side::A && t.dst.port() == 4500));
    net.initiate();
    for (s, t) in &net.wire {
        if *s == Side::A && t.dst.port() == 4500 {
            held = Some(t.clone());
        }
    }
    let auth = held.unwrap();
    let src = SocketAddr::new(ip(NAT_PUBLIC), 30001);
    let now = net.now;
    let mut flipped = auth.bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    net.b.handle(
        now,
        Datagram {
            src,
            dst: auth.dst,
            bytes: &flipped,
        },
    );
    // unknown SPI
    let mut other = auth.bytes.clone();
    other[8] ^= 0xff;
    net.b.handle(
        now,
        Datagram {
            src,
            dst: auth.dst,
            bytes: &other,
        },
    );
    // a response flag on a request nobody sent
    let mut resp = auth.bytes.clone();
    resp[19] |= 0x20;
    net.b.handle(
        now,
        Datagram {
            src,
            dst: auth.dst,
            bytes: &resp,
        },
    );
    // a message ID far ahead
    let mut ahead = auth.bytes.clone();
    ahead[20..24].copy_from_slice(&7u32.to_be_bytes());
    net.b.handle(
        now,
        Datagram {
            src,
            dst: auth.dst,
            bytes: &ahead,
        },
    );
    // an exchange the half-open SA does not take
    let mut info = auth.bytes.clone();
    info[18] = 37;
    net.b.handle(
        now,
        Datagram {
            src,
            dst: auth.dst,
            bytes: &info,
        },
    );
    assert_eq!(
        drops(&mut net.b),
        [
            "integrity_check_failed",
            "unknown_spi",
            "unexpected_response",
            "message_id_ahead",
            "unexpected_exchange"
        ]
    );
    assert_eq!(net.b.list()[0].dropped, 4);
    assert_eq!(net.b.poll_transmit(), None);
    // the genuine message still works (its answer is lost: the NAT never saw it go out;
    // the client's retransmission gets the cached response)
    net.b.handle(
        now,
        Datagram {
            src,
            dst: auth.dst,
            bytes: &auth.bytes,
        },
    );
    net.filter = Box::new(|_, _| true);
    net.advance(Duration::from_secs(2));
    assert_eq!(net.kinds(Side::B), ["ike_up", "child_up"]);
    assert_eq!(net.kinds(Side::A), ["ike_up", "child_up"]);
    // a stray IKE_SA_INIT response for nobody
    let (init, _) = client_requests();
    let mut m = parse_message(&init).unwrap();
    m.header.flags.response = true;
    m.header.flags.initiator = false;
    let bytes = m.emit().unwrap();
    net.a.handle(
        now,
        Datagram {
            src: SocketAddr::new(ip(GW), 500),
            dst: SocketAddr::new(ip(CLIENT), 500),
            bytes: &bytes,
        },
    );
    assert_eq!(drops(&mut net.a), ["unknown_spi"]);
}

#[test]
fn cookies_bound_half_open_state() {
    let (mut e, _, dst) = gw();
    let (init, _) = client_requests();
    let now = Instant::now();
    for i in 0..100u16 {
        // a different SPIi and source each time, as a flood would
        let mut m = parse_message(&init).unwrap();
        m.header.spi_i[..2].copy_from_slice(&i.to_be_bytes());
        let bytes = m.emit().unwrap();
        let src = SocketAddr::new(ip("198.51.100.7"), 1000 + i);
        e.handle(
            now,
            Datagram {
                src,
                dst,
                bytes: &bytes,
            },
        );
    }
    assert_eq!(e.stats().half_open, 64);
    assert_eq!(e.stats().drops.get("cookie_required"), Some(&36));
    // all of it is forgotten after the half-open timeout
    e.handle_timeout(now + Duration::from_secs(31));
    assert_eq!(e.stats().ike_sas, 0);
    assert_eq!(e.poll_timeout(), None);
    assert!(init.len() > HEADER_LEN);
}

#[test]
fn replayed_messages_after_establishment() {
    let mut net = Net::road_warrior();
    net.initiate();
    net.advance(Duration::from_secs(35));
    let a_requests: Vec<Transmit> = net
        .wire
        .iter()
        .filter(|(s, t)| *s == Side::A && t.kind == TransmitKind::Ike)
        .map(|(_, t)| t.clone())
        .collect();
    let b_responses: Vec<Transmit> = net
        .wire
        .iter()
        .filter(|(s, t)| *s == Side::B && t.kind == TransmitKind::Ike)
        .map(|(_, t)| t.clone())
        .collect();
    let src = net.b.list()[0].remote;
    let now = net.now;
    // an old request (IKE_AUTH, ID 1) after a newer one was answered: dropped
    net.b.handle(
        now,
        Datagram {
            src,
            dst: a_requests[1].dst,
            bytes: &a_requests[1].bytes,
        },
    );
    // a replayed response to the client
    let dst = SocketAddr::new(ip(CLIENT), 4500);
    for r in &b_responses {
        net.a.handle(
            now,
            Datagram {
                src: r.src,
                dst,
                bytes: &r.bytes,
            },
        );
    }
    let db = drops(&mut net.b);
    let da = drops(&mut net.a);
    assert!(db.iter().all(|d| *d == "message_id_old"), "{db:?}");
    assert!(!db.is_empty());
    assert!(
        da.iter()
            .all(|d| matches!(*d, "unexpected_response" | "unknown_spi")),
        "{da:?}"
    );
    assert_eq!(net.a.list()[0].state, "established");
}

proptest::proptest! {
    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        port in proptest::sample::select(vec![500u16, 4500]),
    ) {
        let (mut e, src, _) = gw();
        let dst = SocketAddr::new(ip(GW), port);
        e.handle(Instant::now(), Datagram { src, dst, bytes: &bytes });
        proptest::prop_assert_eq!(drops(&mut e).len(), 1);
        proptest::prop_assert!(e.list().is_empty());
    }

    /// Bit flips anywhere in a real exchange: a named drop or a normal answer, no panic.
    #[test]
    fn flipped_bits_in_real_messages(which in 0usize..2, at in 0usize..400, bit in 0u8..8) {
        let mut net = Net::road_warrior();
        net.filter = Box::new(|_, _| false);
        net.initiate();
        let (_, t) = net.wire[0].clone();
        let mut b = t.bytes.clone();
        let i = at % b.len();
        b[i] ^= 1 << bit;
        let src = SocketAddr::new(ip(NAT_PUBLIC), 30000);
        if which == 0 {
            net.b.handle(net.now, Datagram { src, dst: t.dst, bytes: &b });
        } else {
            net.a.handle(net.now, Datagram { src: t.dst, dst: t.src, bytes: &b });
        }
        net.advance(Duration::from_secs(70));
    }
}
