//! Issue #3 end to end: `xdpsec run` with two workers on a 2-queue veth (AF_XDP), one worker
//! per RX queue, replay protection exact across queues.
//!
//! ```text
//! [peer ns] mqp<pid> 10.252.0.2 ==(veth, 2 RX/TX queues)== mqg<pid> 10.252.0.1 [gw ns: xdpsec]
//! ```
//!
//! The peer sends the ESP-in-UDP of one inbound SA, all from one socket address, half of it
//! on each queue: XPS on the peer's device maps TX queue `k` to CPU `k` and the sending
//! thread is pinned to that CPU (veth delivers on the RX queue of the sender's TX queue).
//! Queue `q` is served by worker `q`; the SA's owner is worker `spi % 2`, so the packets on
//! the other queue are handed off. Then it replays one packet on the queue that did not carry
//! the original, both ways. Expected: every original decapsulated once by the owner, both
//! replays dropped as `replay_duplicate` (the owner's window saw every packet), and the
//! handoff counters match the packets of the other queue.
//!
//! Needs root and two CPUs; fails loudly otherwise, never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use xdpsec_dataplane::batch::{Config, Pipeline, Verdict};
use xdpsec_dataplane::buf::{HEADROOM, PacketBuf, TAILROOM};
use xdpsec_dataplane::sa::{
    Aead, Direction, KeyMaterial, Lifetime, Mode, NatOa, PeerId, SaParams, Selectors,
};
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::wire::frame;

/// Odd: owned by worker 1, so the frames of queue 0 are handed off.
const SPI: u32 = 0x3000_0001;
const KEY: &str = "0x000102030405060708090a0b0c0d0e0f10111213";
const PER_QUEUE: usize = 20;

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a 2-queue veth pair; removed (with the gateway) on drop.
struct Topology {
    gw: String,
    peer: String,
    dev_gw: String,
    dev_peer: String,
    child: Option<Child>,
}

impl Topology {
    fn up() -> Self {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "needs root (netns, XDP)");
        let pid = std::process::id();
        let t = Self {
            gw: format!("mq-{pid}-gw"),
            peer: format!("mq-{pid}-peer"),
            dev_gw: format!("mqg{pid}"),
            dev_peer: format!("mqp{pid}"),
            child: None,
        };
        let (g, p, dg, dp) = (&t.gw, &t.peer, &t.dev_gw, &t.dev_peer);
        sh(&["ip", "netns", "add", g]);
        sh(&["ip", "netns", "add", p]);
        #[rustfmt::skip]
        sh(&["ip", "-n", g, "link", "add", dg, "numrxqueues", "2", "numtxqueues", "2",
             "type", "veth", "peer", "name", dp, "numrxqueues", "2", "numtxqueues", "2", "netns", p]);
        for (ns, dev, addr) in [(g, dg, "10.252.0.1/24"), (p, dp, "10.252.0.2/24")] {
            // veth may start with one real queue pair; the NOTES.md checksum trap: tx off.
            let _ = Command::new("ip")
                .args([
                    "netns", "exec", ns, "ethtool", "-L", dev, "rx", "2", "tx", "2",
                ])
                .output();
            sh(&["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off"]);
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        // XPS: TX queue k of the peer's device for CPU k, so the sending CPU picks the queue.
        for (q, mask) in [(0, "1"), (1, "2")] {
            let path = format!("/sys/class/net/{dp}/queues/tx-{q}/xps_cpus");
            sh(&[
                "ip",
                "netns",
                "exec",
                p,
                "sh",
                "-c",
                &format!("echo {mask} > {path}"),
            ]);
        }
        t
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // SAFETY: kill(2) of our own child; SIGINT lets xdpsec detach XDP cleanly.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.gw, &self.peer] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The peer's outbound SA, matching the gateway's inbound one.
fn peer_pipeline() -> Pipeline {
    let hex = KEY.trim_start_matches("0x");
    let key: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut p = Pipeline::new(Config::default());
    p.sad
        .apply(SaCommand::Install(Box::new(SaParams {
            spi: SPI,
            direction: Direction::Out,
            mode: Mode::Tunnel,
            aead: Aead::Aes128Gcm16,
            key: KeyMaterial::new(Aead::Aes128Gcm16, key).unwrap(),
            local: "10.252.0.2:4500".parse().unwrap(),
            remote: "10.252.0.1:4500".parse().ok(),
            peer: PeerId(0),
            esn: false,
            replay_window: 128,
            selectors: Selectors::default(),
            nat_oa: NatOa::default(),
            lifetime: Lifetime::default(),
        })))
        .unwrap();
    p
}

/// The next ESP packet (UDP payload) of the peer: an inner UDP datagram 10.99.0.5 → 10.9.0.7.
fn next_esp(p: &mut Pipeline, i: usize) -> Vec<u8> {
    let payload = format!("packet {i}");
    let mut mem = vec![0u8; HEADROOM + 28 + payload.len() + TAILROOM + 64];
    mem[HEADROOM + 28..HEADROOM + 28 + payload.len()].copy_from_slice(payload.as_bytes());
    let mut pkt = PacketBuf::new(&mut mem, HEADROOM + 28, payload.len());
    let (src, dst): (SocketAddr, SocketAddr) = (
        "10.99.0.5:1000".parse().unwrap(),
        "10.9.0.7:2000".parse().unwrap(),
    );
    frame::push_udp_ip(&mut pkt, src, dst, 64, 0).unwrap();
    let len = pkt.len();
    let mut frames = [PacketBuf::new(&mut mem, HEADROOM, len)];
    let mut v = [Verdict::Keepalive];
    p.encap_batch(&mut frames, &mut v);
    assert!(matches!(v[0], Verdict::Wire { .. }), "{:?}", v[0]);
    // Outer IPv4 (20) and UDP (8) headers off: the socket adds its own.
    frames[0].data()[28..].to_vec()
}

/// Send `packets` from 10.252.0.2:4500 in the peer namespace, on a thread pinned to `cpu`
/// (XPS then picks TX queue `cpu`, and veth delivers on RX queue `cpu`).
fn send_on_queue(ns: &str, cpu: usize, packets: Vec<Vec<u8>>) {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap();
        // SAFETY: a valid namespace fd; setns affects only this thread.
        assert_eq!(
            unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        // SAFETY: a zeroed cpu_set_t with one CPU set, for this thread only.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                0,
                "pin to CPU {cpu} (the test needs two CPUs)"
            );
        }
        let sock = UdpSocket::bind("10.252.0.2:4500").unwrap();
        for p in packets {
            sock.send_to(&p, "10.252.0.1:4500").unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    })
    .join()
    .unwrap();
}

fn config(dev: &str, tun: &str) -> String {
    format!(
        r#"[gateway]
listen = "10.252.0.1:4500"
wan = "{dev}"
backend = "afxdp"
workers = 2
tun = "{tun}"

[[sa]]
spi = {SPI:#x}
direction = "in"
mode = "tunnel"
aead = "aes128gcm16"
key = "{KEY}"
local = "10.252.0.1:4500"
remote = "10.252.0.2:4500"
"#
    )
}

fn read_stats(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Poll the stats file until `done` holds (or 10 s pass); returns the last snapshot.
fn stats_until(path: &Path, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = read_stats(path)
            && (done(&v) || Instant::now() > deadline)
        {
            return v;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(1),
            "no stats"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn worker(v: &Value, i: usize, key: &str) -> u64 {
    v["workers"][i][key].as_u64().unwrap_or(0)
}

fn sum(v: &Value, key: &str) -> u64 {
    (0..2).map(|i| worker(v, i, key)).sum()
}

#[test]
fn one_sa_on_two_queues_is_decapsulated_by_its_owner_with_an_exact_replay_window() {
    let mut topo = Topology::up();
    let dir = PathBuf::from(format!("/tmp/xdpsec-mq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cfg_path, stats_path, sock_path, log_path) = (
        dir.join("gw.toml"),
        dir.join("stats.json"),
        dir.join("ctl.sock"),
        dir.join("gw.log"),
    );
    let tun = format!("mqt{}", std::process::id() % 100_000);
    std::fs::write(&cfg_path, config(&topo.dev_gw, &tun)).unwrap();
    let log = File::create(&log_path).unwrap();
    topo.child = Some(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &topo.gw,
                env!("CARGO_BIN_EXE_xdpsec"),
                "run",
            ])
            .args(["--config", cfg_path.to_str().unwrap()])
            .args(["--stats", stats_path.to_str().unwrap()])
            .args(["--socket", sock_path.to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let gw_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let up = stats_until(&stats_path, |v| v["workers"].as_array().is_some());
    assert_eq!(
        up["workers"].as_array().map(Vec::len),
        Some(2),
        "two workers: {up}\n{}",
        gw_log()
    );
    assert!(
        up["backend"].as_str().unwrap_or("").contains("2 queues"),
        "{up}"
    );

    // Originals: seq 1..=2N, odd ones on queue 0, even ones on queue 1.
    let mut peer = peer_pipeline();
    let esp: Vec<Vec<u8>> = (0..2 * PER_QUEUE).map(|i| next_esp(&mut peer, i)).collect();
    let (q0, q1): (Vec<_>, Vec<_>) = esp
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, Vec<u8>)>| v.into_iter().map(|(_, p)| p).collect::<Vec<_>>();
    send_on_queue(&topo.peer, 0, strip(q0));
    send_on_queue(&topo.peer, 1, strip(q1));
    let n = 2 * PER_QUEUE as u64;
    let after = stats_until(&stats_path, |v| sum(v, "decap_packets") >= n);
    assert_eq!(
        [
            worker(&after, 0, "rx_frames"),
            worker(&after, 1, "rx_frames")
        ],
        [PER_QUEUE as u64; 2],
        "half the packets on each queue (worker q serves queue q): {after}"
    );
    // Every packet decapsulated exactly once, by the owner (worker 1).
    assert_eq!(
        [
            worker(&after, 0, "decap_packets"),
            worker(&after, 1, "decap_packets")
        ],
        [0, n],
        "{after}"
    );
    assert_eq!(worker(&after, 0, "handoff_tx"), PER_QUEUE as u64, "{after}");
    assert_eq!(worker(&after, 1, "handoff_rx"), PER_QUEUE as u64, "{after}");
    assert_eq!(sum(&after, "handoff_full"), 0, "{after}");
    assert_eq!(sum(&after, "tun_tx"), n, "{after}");

    // Replays on the other queue: seq 1 (first sent on queue 0) now on queue 1, seq 2 (first
    // on queue 1) now on queue 0, where it is handed to the owner again.
    send_on_queue(&topo.peer, 1, vec![esp[0].clone()]);
    send_on_queue(&topo.peer, 0, vec![esp[1].clone()]);
    let last = stats_until(&stats_path, |v| {
        v["workers"][1]["drops"]["replay_duplicate"].as_u64() >= Some(2)
    });
    assert_eq!(
        last["workers"][1]["drops"]["replay_duplicate"].as_u64(),
        Some(2),
        "both replays refused by the owner's window: {last}"
    );
    assert_eq!(
        sum(&last, "decap_packets"),
        n,
        "nothing delivered twice: {last}"
    );
    assert_eq!(
        worker(&last, 0, "handoff_tx"),
        PER_QUEUE as u64 + 1,
        "{last}"
    );
    assert_eq!(
        worker(&last, 1, "handoff_rx"),
        PER_QUEUE as u64 + 1,
        "{last}"
    );
    assert!(
        last["workers"][0]["drops"]
            .as_object()
            .is_none_or(|d| d.is_empty()),
        "the non-owner drops nothing: it hands off: {last}"
    );

    // `xdpsec stats` shows one block per worker, with the handoff counters.
    let table = sh(&[
        env!("CARGO_BIN_EXE_xdpsec"),
        "stats",
        "--socket",
        sock_path.to_str().unwrap(),
    ]);
    for row in [
        "worker 0 (afxdp):",
        "worker 1 (afxdp):",
        "handoff_tx",
        "handoff_rx",
    ] {
        assert!(table.contains(row), "{row} in:\n{table}");
    }

    // `xdpsec sa list` reports the SA once, from its owner.
    let list = sh(&[
        env!("CARGO_BIN_EXE_xdpsec"),
        "sa",
        "list",
        "--json",
        "--socket",
        sock_path.to_str().unwrap(),
    ]);
    let sas: Value = serde_json::from_str(&list).unwrap();
    let sas = sas.as_array().unwrap();
    assert_eq!(sas.len(), 1, "{list}");
    assert_eq!(sas[0]["packets"].as_u64(), Some(n), "{list}");
    assert_eq!(sas[0]["replay_drops"].as_u64(), Some(2), "{list}");
    drop(topo);
    let _ = std::fs::remove_dir_all(&dir);
}
