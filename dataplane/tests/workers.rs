//! Two workers on the socket backend (two `SO_REUSEPORT` sockets, a 2-queue TUN) in a private
//! network namespace: every SA has one owner (`spi % 2`) and the other worker hands it what it
//! receives.
//!
//! - Inbound: a peer sends one SA's ESP from many source ports, so the kernel spreads it over
//!   both sockets; the owner decapsulates every packet once, and when the peer replays them
//!   all, every copy is refused by the owner's window whichever worker received it.
//! - Outbound: the kernel spreads inner flows over both TUN queues; the owner of the outbound
//!   SA encrypts all of them, so the peer sees sequence numbers 1, 2, 3, … in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use xdpsec_dataplane::batch::{Config, Ingress, Pipeline, Verdict};
use xdpsec_dataplane::buf::{HEADROOM, PacketBuf, TAILROOM};
use xdpsec_dataplane::handoff::Handoff;
use xdpsec_dataplane::io::socket::UdpPort;
use xdpsec_dataplane::io::tun::Tun;
use xdpsec_dataplane::sa::{
    Aead, Direction, KeyMaterial, Lifetime, Mode, NatOa, PeerId, SaParams, Selectors,
};
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::wire::frame;
use xdpsec_dataplane::worker::{ControlDatagram, Worker, WorkerStats};

use common::{links, private_netns, recv, run};

/// Owned by worker 1.
const SPI_IN: u32 = 0x4000_0001;
/// Owned by worker 0.
const SPI_OUT: u32 = 0x5000_0000;
const GW: &str = "127.0.0.1:4500";
const PEER: &str = "127.0.0.1:4600";
const N: usize = 64;

fn sa(spi: u32, direction: Direction, local: &str, remote: &str) -> SaParams {
    SaParams {
        spi,
        direction,
        mode: Mode::Tunnel,
        aead: Aead::Aes128Gcm16,
        key: KeyMaterial::new(Aead::Aes128Gcm16, vec![spi as u8; 20]).unwrap(),
        local: local.parse().unwrap(),
        remote: remote.parse().ok(),
        peer: PeerId(1),
        esn: false,
        replay_window: 128,
        selectors: Selectors::default(),
        nat_oa: NatOa::default(),
        lifetime: Lifetime::default(),
    }
}

fn pipeline(sas: &[SaParams]) -> Pipeline {
    let mut p = Pipeline::new(Config::default());
    for s in sas {
        p.sad
            .apply(SaCommand::Install(Box::new(s.clone())))
            .unwrap();
    }
    p
}

/// The peer's ESP packets (UDP payloads) for inner datagrams 10.99.0.5 → 10.9.0.7.
fn peer_esp(p: &mut Pipeline, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let body = format!("inbound {i}");
            let mut mem = vec![0u8; HEADROOM + 28 + body.len() + TAILROOM];
            mem[HEADROOM + 28..HEADROOM + 28 + body.len()].copy_from_slice(body.as_bytes());
            let mut pkt = PacketBuf::new(&mut mem, HEADROOM + 28, body.len());
            let (s, d): (SocketAddr, SocketAddr) = (
                "10.99.0.5:1000".parse().unwrap(),
                "10.9.0.7:2000".parse().unwrap(),
            );
            frame::push_udp_ip(&mut pkt, s, d, 64, 0).unwrap();
            let len = pkt.len();
            let mut frames = [PacketBuf::new(&mut mem, HEADROOM, len)];
            let mut v = [Verdict::Keepalive];
            p.encap_batch(&mut frames, &mut v);
            assert!(matches!(v[0], Verdict::Wire { .. }));
            frames[0].data()[28..].to_vec()
        })
        .collect()
}

fn stats(ends: &[common::Ends]) -> Vec<WorkerStats> {
    ends.iter()
        .map(|e| e.stats.lock().unwrap().clone())
        .collect()
}

/// Wait (≤ 5 s) until `done` holds for the workers' published counters.
fn wait(ends: &[common::Ends], done: impl Fn(&[WorkerStats]) -> bool) -> Vec<WorkerStats> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = stats(ends);
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_workers_one_owner_per_sa_both_ways() {
    private_netns();
    let gw: SocketAddr = GW.parse().unwrap();
    let tuns = Tun::open_queues("xdpt-w0", 1400, false, 2).unwrap();
    run(&["ip", "addr", "add", "10.9.0.1/32", "dev", "xdpt-w0"]);
    run(&["ip", "route", "add", "10.99.0.0/24", "dev", "xdpt-w0"]);
    let gw_sas = [
        sa(SPI_IN, Direction::In, GW, PEER),
        sa(SPI_OUT, Direction::Out, GW, PEER),
    ];
    let handoff = Arc::new(Handoff::new(2, 256).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut ends = Vec::new();
    let mut handles = Vec::new();
    for (i, tun) in tuns.into_iter().enumerate() {
        let (l, e) = links(&handoff, i, &stop);
        let port = UdpPort::bind_shared(gw).unwrap();
        let w = Worker::new(port, tun, pipeline(&gw_sas), l);
        handles.push(std::thread::spawn(move || w.run()));
        ends.push(e);
    }

    // Inbound: one SA from 16 source ports.
    let mut peer_out = pipeline(&[sa(SPI_IN, Direction::Out, PEER, GW)]);
    let esp = peer_esp(&mut peer_out, N);
    let senders: Vec<UdpSocket> = (0..16)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let send_all = |packets: &[Vec<u8>]| {
        for (i, p) in packets.iter().enumerate() {
            senders[i % senders.len()].send_to(p, gw).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    send_all(&esp);
    let s = wait(&ends, |s| {
        s.iter().map(|w| w.pipeline.decap_packets).sum::<u64>() >= N as u64
    });
    let rx: Vec<u64> = s.iter().map(|w| w.pipeline.rx_frames).collect();
    assert!(rx.iter().all(|&r| r > 0), "both sockets received: {rx:?}");
    assert_eq!(rx.iter().sum::<u64>(), N as u64);
    assert_eq!(
        [s[0].pipeline.decap_packets, s[1].pipeline.decap_packets],
        [0, N as u64],
        "all by the owner"
    );
    assert_eq!(
        s[0].handoff_tx, rx[0],
        "worker 0 handed off all it received"
    );
    assert_eq!(s[1].handoff_rx, rx[0]);

    // Replays of everything, again spread over both sockets: all refused by the owner.
    send_all(&esp);
    let s = wait(&ends, |s| {
        s[1].pipeline.drops.nonzero().map(|(_, n)| n).sum::<u64>() >= N as u64
    });
    let drops: Vec<(&str, u64)> = s[1]
        .pipeline
        .drops
        .nonzero()
        .map(|(r, n)| (r.name(), n))
        .collect();
    assert_eq!(
        drops,
        vec![("replay_duplicate", N as u64)],
        "exact replay window"
    );
    assert_eq!(
        s.iter().map(|w| w.pipeline.decap_packets).sum::<u64>(),
        N as u64
    );

    // Outbound: inner flows (distinct ports) routed into the TUN land on both queues; the
    // owner of SPI_OUT (worker 0) encrypts them all, in one sequence.
    let peer = UdpSocket::bind(PEER).unwrap();
    let inner = UdpSocket::bind("10.9.0.1:0").unwrap();
    for i in 0..N {
        inner
            .send_to(
                format!("outbound {i}").as_bytes(),
                ("10.99.0.5", 5000 + i as u16),
            )
            .unwrap();
    }
    let mut peer_in = pipeline(&[sa(SPI_OUT, Direction::In, PEER, GW)]);
    let mut seqs = Vec::new();
    let mut buf = vec![0u8; 4096];
    while seqs.len() < N {
        let (n, from) = recv(&peer, &mut buf[HEADROOM..], "ESP from the gateway");
        assert_eq!(from, gw);
        let seq = u32::from_be_bytes(buf[HEADROOM + 4..HEADROOM + 8].try_into().unwrap());
        let spi = u32::from_be_bytes(buf[HEADROOM..HEADROOM + 4].try_into().unwrap());
        assert_eq!(spi, SPI_OUT);
        let mut frames = [PacketBuf::new(&mut buf, HEADROOM, n)];
        let mut v = [Verdict::Keepalive];
        peer_in.decap_batch(
            Ingress::Udp(&[(gw, PEER.parse().unwrap())]),
            &mut frames,
            &mut v,
        );
        assert_eq!(v[0], Verdict::Inner, "seq {seq}");
        seqs.push(seq);
    }
    assert_eq!(
        seqs,
        (1..=N as u32).collect::<Vec<_>>(),
        "one owner: 1, 2, 3, …"
    );
    let s = wait(&ends, |s| s[0].pipeline.encap_packets >= N as u64);
    assert!(
        s.iter().all(|w| w.tun_rx > 0),
        "both TUN queues carried flows: {:?}",
        s.iter().map(|w| w.tun_rx).collect::<Vec<_>>()
    );
    assert_eq!(
        [s[0].pipeline.encap_packets, s[1].pipeline.encap_packets],
        [N as u64, 0]
    );
    assert_eq!(
        s[1].handoff_tx, s[1].tun_rx,
        "worker 1 handed its TUN packets to the owner"
    );
    assert_eq!(s.iter().map(|w| w.handoff_full).sum::<u64>(), 0);

    // A keepalive for the peer through worker 0, from the shared NAT-T port.
    ends[0]
        .transmit
        .send(ControlDatagram::keepalive(gw, PEER.parse().unwrap()))
        .unwrap();
    handoff.mailbox(0).unwrap().notify();
    let (n, from) = recv(&peer, &mut buf, "keepalive");
    assert_eq!((from, &buf[..n]), (gw, &[0xFFu8][..]));

    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap().unwrap();
    }
}
