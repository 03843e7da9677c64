//! IKEv2 interoperability with strongSwan (Debian's charon, userspace ESP via kernel-libipsec)
//! across the NAT of `scripts/netns/topo.sh`:
//!
//! ```text
//! [client 10.0.1.2] -- [nat: nftables masquerade] -- [gw 192.0.2.2] -- [lan 10.9.0.2]
//! ```
//!
//! - strongSwan initiator in `client` → xdpsec responder in `gw` on the AF_XDP backend: both
//!   suites (AES-128-GCM/X25519, AES-256-GCM/ECP-384), a virtual IP from xdpsec's pool, pings
//!   to the LAN through the XDP path, then a child rekey from each side and an IKE rekey while
//!   pings flow — not one may be lost.
//! - xdpsec initiator in `client` (AF_XDP backend too: its first IKE message on 4500 goes out
//!   before any frame came back, so the next hop comes from the kernel's neighbour table) →
//!   strongSwan responder in `gw`: xdpsec gets a virtual IP, pings the LAN, sends
//!   NAT-keepalives, `conn down` / `conn up` work.
//! - the same responder on the socket backend (one suite, pings).
//!
//! In the XDP runs, a capture on the NAT's public side shows IKE floating from 500 to 4500
//! (non-ESP marker) and NAT-keepalives. Needs root; fails loudly without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netns;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use netns::{Topology, read_json, root, sh, wait_for};
use serde_json::Value;

const PSK: &str = "interop-test-psk-0123456789";

/// A scratch folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xdpsec-ike-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let psk = dir.join("psk");
    std::fs::write(&psk, PSK).unwrap();
    std::fs::set_permissions(&psk, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

/// strongSwan's control script for one test (instances live under `dir`).
fn ss(dir: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/interop/ss.sh"))
        .args(args)
        .env("SS_RUN", dir.join("strongswan"))
        .output()
        .unwrap()
}

fn ss_ok(dir: &Path, args: &[&str]) -> String {
    let out = ss(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ss.sh {args:?} failed:\n{text}");
    text
}

/// Starts a charon in namespace `ns` with `conf` loaded.
fn start_strongswan(t: &Topology, dir: &Path, ns: &str, conf: &str) {
    let ns = t.ns(ns);
    ss_ok(dir, &["start", &ns]);
    let conf = root().join("scripts/interop/strongswan").join(conf);
    ss_ok(dir, &["load", &ns, conf.to_str().unwrap()]);
}

fn strongswan_log(dir: &Path, t: &Topology, ns: &str) -> String {
    std::fs::read_to_string(dir.join("strongswan").join(t.ns(ns)).join("charon.log"))
        .unwrap_or_default()
}

/// Starts `xdpsec run` in namespace `ns`; returns its control socket path.
fn start_xdpsec(t: &mut Topology, dir: &Path, ns: &str, config: &str) -> String {
    let cfg = dir.join("gw.toml");
    std::fs::write(&cfg, config).unwrap();
    let socket = dir.join("api.sock");
    let stats = dir.join("stats.json");
    t.spawn(
        ns,
        &[
            env!("CARGO_BIN_EXE_xdpsec"),
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
            "--stats",
            stats.to_str().unwrap(),
            "--log",
            "debug",
        ],
        &dir.join("xdpsec.log"),
    );
    wait_for(&stats, "xdpsec's stats file (see xdpsec.log)");
    socket.to_str().unwrap().to_string()
}

fn xdpsec_json(socket: &str, args: &[&str]) -> Value {
    let mut full = vec![env!("CARGO_BIN_EXE_xdpsec")];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--socket", socket, "--json"]);
    serde_json::from_slice(&sh(&full).stdout).unwrap()
}

/// Polls `conn list` until a connection named `conn` is established with a child SA.
fn wait_established(socket: &str, conn: &str, dir: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = xdpsec_json(socket, &["conn", "list"]);
        if let Some(c) = list.as_array().unwrap().iter().find(|c| {
            c["conn"] == conn
                && c["state"] == "established"
                && !c["children"].as_array().unwrap().is_empty()
        }) {
            return c.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{conn} not established: {list}\n{}",
            std::fs::read_to_string(dir.join("xdpsec.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `ping` from `ns`; returns ping's summary.
fn ping(t: &Topology, ns: &str, args: &[&str]) -> String {
    let mut full = vec!["ping", "-n"];
    full.extend_from_slice(args);
    t.run(ns, &full)
}

/// A packet capture (UDP 500 and 4500) while the test runs: on the NAT's public side, since
/// what XDP redirects to AF_XDP on the gateway never reaches a capture there.
fn capture(t: &mut Topology, dir: &Path, ns: &str, iface: &str) -> PathBuf {
    let pcap = dir.join("wan.pcap");
    t.spawn(
        ns,
        &[
            "tcpdump",
            "-i",
            iface,
            "-U",
            "-w",
            pcap.to_str().unwrap(),
            "udp port 500 or udp port 4500",
        ],
        &dir.join("tcpdump.log"),
    );
    std::thread::sleep(Duration::from_millis(500));
    pcap
}

/// Counts packets in `pcap` matching a tcpdump filter.
fn count(pcap: &Path, filter: &str) -> usize {
    let out = sh(&["tcpdump", "-n", "-r", pcap.to_str().unwrap(), filter]);
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// IKE on 4500 carries the non-ESP marker (four zero bytes after the UDP header); a
/// NAT-keepalive is one 0xFF byte (UDP length 9). RFC 3948 §2.2, §2.3.
fn check_wire(pcap: &Path) {
    let ike500 = count(pcap, "udp port 500");
    let ike4500 = count(pcap, "udp port 4500 and udp[8:4] = 0");
    let keepalives = count(pcap, "udp port 4500 and udp[4:2] = 9 and udp[8:1] = 0xff");
    assert!(ike500 >= 2, "IKE_SA_INIT on port 500: {ike500}");
    assert!(
        ike4500 >= 2,
        "IKE floated to 4500 with the non-ESP marker: {ike4500}"
    );
    assert!(keepalives >= 1, "NAT-keepalives on the wire: {keepalives}");
}

fn gw_responder_config(dir: &Path, backend: &str) -> String {
    format!(
        r#"
[gateway]
listen = "192.0.2.2:4500"
wan = "g-eth0"
backend = "{backend}"
tun = "xdpsec0"
routes = ["10.99.0.0/24"]

[[conn]]
name = "rw"
local_id = "gw.example"
remote_id = "client.example"
psk_file = "{psk}"
ike = ["aes128gcm16-prfsha256-x25519", "aes256gcm16-prfsha384-ecp384"]
esp = ["aes128gcm16", "aes256gcm16"]
local_ts = ["10.9.0.0/24"]
pool = "10.99.0.0/24"
child_lifetime = "16s"
rekey_margin = "8s"
"#,
        psk = dir.join("psk").display()
    )
}

/// strongSwan in `client` brings up `child` (connection of the same name) to the xdpsec
/// responder: negotiated `suite`, NAT seen on the peer's side, a virtual IP, pings to the LAN;
/// then strongSwan deletes the IKE SA and xdpsec forgets it.
fn strongswan_connects(t: &Topology, dir: &Path, socket: &str, child: &str, suite: &str) {
    let out = ss_ok(
        dir,
        &["ctl", &t.ns("client"), "--initiate", "--child", child],
    );
    assert!(out.contains("established"), "{out}");
    let c = wait_established(socket, "rw", dir);
    assert_eq!(c["ike_suite"], suite, "{c}");
    assert_eq!(c["nat_remote"], true, "the client is behind the NAT: {c}");
    assert!(
        c["remote"].as_str().unwrap().starts_with("192.0.2.1:"),
        "the NAT's public mapping: {c}"
    );
    let vip = c["children"][0]["virtual_ip"].as_str().unwrap().to_string();
    assert!(vip.starts_with("10.99.0."), "virtual IP from the pool: {c}");
    let summary = ping(t, "client", &["-c", "3", "-W", "2", "10.9.0.2"]);
    assert!(summary.contains(" 0% packet loss"), "{summary}");
    ss_ok(
        dir,
        &["ctl", &t.ns("client"), "--terminate", "--ike", child],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !xdpsec_json(socket, &["conn", "list"])
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "IKE SA not deleted");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn strongswan_initiator_behind_nat_to_xdpsec_responder_on_xdp() {
    let dir = scratch("resp");
    let mut t = Topology::up("ir-");
    let pcap = capture(&mut t, &dir, "nat", "n-out");
    let socket = start_xdpsec(&mut t, &dir, "gw", &gw_responder_config(&dir, "afxdp"));
    start_strongswan(&t, &dir, "client", "client.conf");

    for (child, suite) in [
        ("gcm128", "aes128gcm16-prfsha256-x25519"),
        ("gcm256", "aes256gcm16-prfsha384-ecp384"),
    ] {
        strongswan_connects(&t, &dir, &socket, child, suite);
    }

    // Rekeying under traffic: strongSwan rekeys the child, xdpsec rekeys it when its 16 s
    // lifetime nears (margin 8 s), strongSwan rekeys the IKE SA. Pings every 20 ms throughout.
    ss_ok(
        &dir,
        &["ctl", &t.ns("client"), "--initiate", "--child", "gcm128"],
    );
    let before = wait_established(&socket, "rw", &dir);
    let first_in = before["children"][0]["inbound_spi"].as_u64().unwrap();
    let pinger = {
        let ns = t.ns("client");
        std::thread::spawn(move || {
            let out = Command::new("ip")
                .args([
                    "netns", "exec", &ns, "ping", "-n", "-D", "-i", "0.02", "-c", "650", "-W", "2",
                ])
                .arg("10.9.0.2")
                .output()
                .unwrap();
            // The summary, and which requests were never answered (with the time they were
            // sent, `-D`, to line up with the gateway's log).
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let answered: std::collections::HashSet<u64> = text
                .lines()
                .filter(|l| l.contains("bytes from"))
                .filter_map(|l| l.split("icmp_seq=").nth(1)?.split(' ').next()?.parse().ok())
                .collect();
            let start = text
                .lines()
                .find_map(|l| l.strip_prefix('[')?.split(']').next()?.parse::<f64>().ok())
                .unwrap_or(0.0);
            let missing: Vec<String> = (1..=650)
                .filter(|n| !answered.contains(n))
                .map(|n| {
                    format!(
                        "seq {n} (sent about {:.2} s in, epoch {start:.3})",
                        n as f64 * 0.02
                    )
                })
                .collect();
            let summary: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("packet loss") || l.starts_with("rtt"))
                .collect();
            format!("{}\nunanswered: {missing:?}", summary.join("\n"))
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    ss_ok(
        &dir,
        &["ctl", &t.ns("client"), "--rekey", "--child", "gcm128"],
    );
    std::thread::sleep(Duration::from_secs(2));
    ss_ok(
        &dir,
        &["ctl", &t.ns("client"), "--rekey", "--ike", "gcm128"],
    );
    let summary = pinger.join().unwrap();
    assert!(
        summary.contains(" 0% packet loss"),
        "a rekey under traffic lost packets: {summary}\n{}",
        std::fs::read_to_string(dir.join("xdpsec.log")).unwrap_or_default()
    );
    let after = wait_established(&socket, "rw", &dir);
    assert_ne!(
        after["children"][0]["inbound_spi"].as_u64().unwrap(),
        first_in,
        "the child SA was rekeyed: {after}"
    );
    let log = std::fs::read_to_string(dir.join("xdpsec.log")).unwrap();
    let rekeys = strongswan_log(&dir, &t, "client")
        .matches("CHILD_SA gcm128")
        .count();
    assert!(
        rekeys >= 3,
        "strongSwan saw the child rekeyed from both sides:\n{log}"
    );

    // Idle for a moment: strongSwan sends NAT-keepalives (every 2 s here) only when nothing
    // else went to us for that long (RFC 3948 §4).
    std::thread::sleep(Duration::from_secs(5));
    // The packets took the XDP path: IKE on 4500, keepalives and ESP all reached the worker.
    let stats = read_json(&dir.join("stats.json"));
    assert!(
        stats["backend"].as_str().unwrap().starts_with("afxdp"),
        "{stats}"
    );
    // Summed over the workers (one per RX queue): which one counts a packet depends on the
    // queue it landed on and on the SA's owner.
    let sum = |k: &str| -> u64 {
        stats["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w[k].as_u64().unwrap())
            .sum()
    };
    assert!(sum("ike") >= 4, "IKE on 4500 via AF_XDP: {stats}");
    assert!(sum("keepalives") >= 1, "keepalives: {stats}");
    assert!(sum("decap_packets") >= 300, "ESP via AF_XDP: {stats}");
    assert!(
        stats["xdp"]["redirected"].as_u64().unwrap() >= 300,
        "{stats}"
    );
    check_wire(&pcap);
}

/// The same responder on the socket backend (one `SO_REUSEPORT` socket per worker): IKE on
/// 4500 in through the workers' sockets and out through worker 0's.
#[test]
fn strongswan_initiator_behind_nat_to_xdpsec_responder_on_sockets() {
    let dir = scratch("resp-sock");
    let mut t = Topology::up("is-");
    let socket = start_xdpsec(&mut t, &dir, "gw", &gw_responder_config(&dir, "socket"));
    start_strongswan(&t, &dir, "client", "client.conf");
    strongswan_connects(&t, &dir, &socket, "gcm128", "aes128gcm16-prfsha256-x25519");
    let stats = read_json(&dir.join("stats.json"));
    assert!(
        stats["backend"].as_str().unwrap().starts_with("socket"),
        "{stats}"
    );
}

#[test]
fn xdpsec_initiator_behind_nat_to_strongswan_responder() {
    let dir = scratch("init");
    let mut t = Topology::up("ii-");
    let pcap = capture(&mut t, &dir, "nat", "n-out");
    start_strongswan(&t, &dir, "gw", "gw.conf");
    let config = format!(
        r#"
[gateway]
listen = "10.0.1.2:4500"
wan = "c-eth0"
backend = "afxdp"
tun = "xdpsec0"

[[conn]]
name = "home"
role = "initiator"
remote = "192.0.2.2"
local_id = "client.example"
remote_id = "gw.example"
psk_file = "{psk}"
ike = ["aes256gcm16-prfsha384-ecp384"]
esp = ["aes256gcm16"]
remote_ts = ["10.9.0.0/24"]
request_vip = true
keepalive = "2s"
"#,
        psk = dir.join("psk").display()
    );
    let socket = start_xdpsec(&mut t, &dir, "client", &config);
    let c = wait_established(&socket, "home", &dir);
    assert_eq!(c["nat_local"], true, "we are behind the NAT: {c}");
    assert_eq!(c["ike_suite"], "aes256gcm16-prfsha384-ecp384");
    assert_eq!(c["children"][0]["virtual_ip"], "10.99.0.1", "{c}");
    let summary = ping(&t, "client", &["-c", "3", "-W", "2", "10.9.0.2"]);
    assert!(summary.contains(" 0% packet loss"), "{summary}");
    let sas = ss_ok(&dir, &["ctl", &t.ns("gw"), "--list-sas"]);
    assert!(
        sas.contains("ESTABLISHED") && sas.contains("10.99.0.1/32"),
        "{sas}"
    );
    std::thread::sleep(Duration::from_secs(3)); // a keepalive or two

    // conn down deletes the IKE SA on both sides; conn up brings it back.
    sh(&[
        env!("CARGO_BIN_EXE_xdpsec"),
        "conn",
        "down",
        "home",
        "--socket",
        &socket,
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ss_ok(&dir, &["ctl", &t.ns("gw"), "--list-sas"]).contains("ESTABLISHED") {
        assert!(Instant::now() < deadline, "strongSwan kept the IKE SA");
        std::thread::sleep(Duration::from_millis(200));
    }
    sh(&[
        env!("CARGO_BIN_EXE_xdpsec"),
        "conn",
        "up",
        "home",
        "--socket",
        &socket,
    ]);
    wait_established(&socket, "home", &dir);
    let summary = ping(&t, "client", &["-c", "2", "-W", "2", "10.9.0.2"]);
    assert!(summary.contains(" 0% packet loss"), "{summary}");
    std::thread::sleep(Duration::from_millis(500));
    let stats = read_json(&dir.join("stats.json"));
    assert!(
        stats["backend"].as_str().unwrap().starts_with("afxdp"),
        "{stats}"
    );
    assert!(
        stats["xdp"]["redirected"].as_u64().unwrap() >= 5,
        "IKE on 4500 and ESP came in through XDP: {stats}"
    );
    check_wire(&pcap);
}
