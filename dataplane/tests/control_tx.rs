//! The control plane's outbound path: a [`ControlDatagram`] handed to a running worker on
//! the socket backend leaves the gateway's NAT-T socket and arrives at a peer's UDP socket —
//! IKE behind the non-ESP marker (RFC 3948 §2.2), keepalives as the single octet 0xFF
//! (§2.3). Runs as root in a private network namespace of the test thread (TUN + loopback).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use xdpsec_dataplane::batch::{Config, Pipeline};
use xdpsec_dataplane::handoff::Handoff;
use xdpsec_dataplane::io::socket::UdpPort;
use xdpsec_dataplane::io::tun::Tun;
use xdpsec_dataplane::worker::{ControlDatagram, Worker};

use common::{links, private_netns, recv, run};

#[test]
fn control_datagrams_leave_through_the_worker() {
    private_netns();
    let gw: SocketAddr = "127.0.0.1:4500".parse().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let port = UdpPort::bind(gw).unwrap();
    let tun = Tun::open("xdpt-ctl0", 1400, false).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (links, ends) = links(&Arc::new(Handoff::new(1, 1).unwrap()), 0, &stop);
    let transmit_tx = ends.transmit.clone();
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
    let (n, from) = recv(&peer, &mut buf, "IKE");
    assert_eq!(from, gw, "IKE leaves from the NAT-T socket");
    assert_eq!(&buf[..4], &[0, 0, 0, 0], "non-ESP marker (RFC 3948 §2.2)");
    assert_eq!(&buf[4..n], &ike[..]);
    let (n, from) = recv(&peer, &mut buf, "keepalive");
    assert_eq!((from, &buf[..n]), (gw, &[0xFFu8][..]), "keepalive (§2.3)");

    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    let s = ends.stats.lock().unwrap().clone();
    assert_eq!((s.control_tx, s.control_drops), (2, 0));
}

/// AF_XDP: the worker builds Ethernet too. Nothing has been received yet, so the next hop's
/// MAC comes from the kernel's neighbour table (a static entry here); the peer's kernel accepts
/// the datagram, which also checks the IP and UDP checksums the worker wrote.
#[test]
fn control_datagrams_leave_through_an_afxdp_worker() {
    use xdpsec_dataplane::io::afxdp::{AfxdpWan, NextHop, XskConfig, XskPort};

    private_netns();
    let pid = std::process::id();
    let peer_ns = format!("xdt-{pid}-peer");
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &peer_ns])
        .output();
    run(&["ip", "netns", "add", &peer_ns]);
    struct DelNs(String);
    impl Drop for DelNs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .output();
        }
    }
    let _guard = DelNs(peer_ns.clone());
    #[rustfmt::skip]
    run(&["ip", "link", "add", "xdtg", "address", "02:00:00:00:53:01", "type", "veth",
          "peer", "name", "xdtp", "address", "02:00:00:00:53:02", "netns", &peer_ns]);
    run(&["ethtool", "-K", "xdtg", "tx", "off"]);
    run(&["ip", "addr", "add", "10.253.0.1/24", "dev", "xdtg"]);
    run(&["ip", "link", "set", "xdtg", "up"]);
    #[rustfmt::skip]
    run(&["ip", "neigh", "replace", "10.253.0.2", "lladdr", "02:00:00:00:53:02", "dev", "xdtg", "nud", "permanent"]);
    run(&[
        "ip",
        "-n",
        &peer_ns,
        "addr",
        "add",
        "10.253.0.2/24",
        "dev",
        "xdtp",
    ]);
    run(&["ip", "-n", &peer_ns, "link", "set", "xdtp", "up"]);

    // The peer's socket lives in its namespace.
    let ns_path = format!("/var/run/netns/{peer_ns}");
    let peer = std::thread::spawn(move || {
        let f = std::fs::File::open(&ns_path).unwrap();
        // SAFETY: a valid namespace fd; affects only this thread.
        let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns");
        UdpSocket::bind("10.253.0.2:7000").unwrap()
    })
    .join()
    .unwrap();

    let cfg = XskConfig {
        frame_count: 512,
        ring_size: 256,
        ..XskConfig::default()
    };
    let port = XskPort::open("xdtg", 0, &cfg).expect("AF_XDP socket on the veth");
    let wan = AfxdpWan::new(port, [2, 0, 0, 0, 0x53, 1], NextHop::Learn);
    let tun = Tun::open("xdpt-ctl1", 1400, false).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handoff = Arc::new(Handoff::new(1, 1).unwrap());
    let (links, ends) = links(&handoff, 0, &stop);
    let transmit_tx = ends.transmit.clone();
    let worker = Worker::new(wan, tun, Pipeline::new(Config::default()), links);
    let handle = std::thread::spawn(move || worker.run());

    let gw: SocketAddr = "10.253.0.1:4500".parse().unwrap();
    let to: SocketAddr = "10.253.0.2:7000".parse().unwrap();
    let ike: Vec<u8> = (0..80u8).collect();
    transmit_tx
        .send(ControlDatagram::ike(gw, to, ike.clone()))
        .unwrap();
    // Wake the idle worker at once rather than at its next poll timeout.
    handoff.mailbox(0).unwrap().notify();

    let mut buf = [0u8; 2048];
    let (n, from) = recv(&peer, &mut buf, "IKE datagram via AF_XDP");
    assert_eq!(from, gw);
    assert_eq!(&buf[..4], &[0, 0, 0, 0], "non-ESP marker (RFC 3948 §2.2)");
    assert_eq!(&buf[4..n], &ike[..]);

    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap().unwrap();
    let s = ends.stats.lock().unwrap().clone();
    assert_eq!((s.control_tx, s.control_drops), (1, 0), "{s:?}");
}
