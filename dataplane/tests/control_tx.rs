//! The control plane's outbound path: a [`ControlDatagram`] handed to a running worker on
//! the socket backend leaves the gateway's NAT-T socket and arrives at a peer's UDP socket —
//! IKE behind the non-ESP marker (RFC 3948 §2.2), keepalives as the single octet 0xFF
//! (§2.3). Runs as root in a private network namespace of the test thread (TUN + loopback).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::bounded;
use xdpsec_dataplane::batch::{Config, Pipeline};
use xdpsec_dataplane::handoff::Handoff;
use xdpsec_dataplane::io::socket::UdpPort;
use xdpsec_dataplane::io::tun::Tun;
use xdpsec_dataplane::worker::{ControlDatagram, Links, Worker, WorkerStats};

/// Move this thread (and the threads and processes it starts) into a new network namespace
/// with loopback up. Fails loudly: the test needs root.
fn private_netns() {
    // SAFETY: unshare has no memory preconditions; it affects only the calling thread.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        r,
        0,
        "unshare(CLONE_NEWNET) failed (needs root): {}",
        std::io::Error::last_os_error()
    );
    let st = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("ip");
    assert!(st.success(), "ip link set lo up");
}

#[test]
fn control_datagrams_leave_through_the_worker() {
    private_netns();
    let gw: SocketAddr = "127.0.0.1:4500".parse().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let port = UdpPort::bind(gw).unwrap();
    let tun = Tun::open("xdpt-ctl0", 1400, false).unwrap();
    let stats = Arc::new(Mutex::new(WorkerStats::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let (_cmd_tx, commands) = bounded(4);
    let (_query_tx, queries) = bounded(4);
    let (events, _events_rx) = bounded(16);
    let (transmit_tx, transmit) = bounded(16);
    let links = Links {
        commands,
        queries,
        events,
        stats: Arc::clone(&stats),
        stop: Arc::clone(&stop),
        transmit,
        handoff: Arc::new(Handoff::new(1, 4).unwrap()),
        worker: 0,
    };
    let worker = Worker::new(port, tun, Pipeline::new(Config::default()), links);
    let handle = std::thread::spawn(move || worker.run());

    let ike: Vec<u8> = (0..60u8).map(|b| b.wrapping_mul(7) | 1).collect();
    transmit_tx
        .send(ControlDatagram::ike(gw, peer_addr, ike.clone()))
        .unwrap();
    transmit_tx
        .send(ControlDatagram::keepalive(gw, peer_addr))
        .unwrap();

    let mut buf = [0u8; 2048];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(from, gw, "IKE leaves from the NAT-T socket");
    assert_eq!(&buf[..4], &[0, 0, 0, 0], "non-ESP marker (RFC 3948 §2.2)");
    assert_eq!(&buf[4..n], &ike[..]);
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((from, &buf[..n]), (gw, &[0xFFu8][..]), "keepalive (§2.3)");

    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    let s = stats.lock().unwrap().clone();
    assert_eq!((s.control_tx, s.control_drops), (2, 0));
}
