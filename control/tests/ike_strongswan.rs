//! Interop of the sans-IO IKEv2 engine (`ike::session`) with strongSwan 5.9.8 in the project's
//! NAT topology (`scripts/netns/topo.sh`):
//!
//! ```text
//! [client] 10.0.1.2 -- [nat: masquerade] 192.0.2.1 -- 192.0.2.2 [gw]
//! ```
//!
//! - strongSwan initiates from behind the NAT (`scripts/interop/strongswan/client.conf`) to the
//!   engine on the gateway: both IKE suites, a virtual IP from the engine's pool, a child rekey
//!   and an IKE rekey started by strongSwan, deletes from either side.
//! - the engine initiates from behind the NAT to strongSwan on the gateway
//!   (`scripts/interop/strongswan/gw.conf`): float to 4500, keepalives, virtual IP from
//!   strongSwan's pool, child and IKE rekeys started by the engine, delete.
//! - without a NAT (the engine in `gw`, strongSwan in `nat` at 192.0.2.1, directly connected),
//!   in both roles: the engine forces UDP encapsulation (`encap`, RFC 7296 §2.23), strongSwan
//!   believes it is behind a NAT, both sides use port 4500, and strongSwan's ESP arrives in UDP
//!   4500 (captured with tcpdump; no plain ESP on the wire); the initiator adds a second child
//!   SA on the IKE SA (CREATE_CHILD_SA, RFC 7296 §1.3.1).
//!
//! The engine runs on plain UDP sockets in a thread that entered the namespace (a minimal
//! stand-in for the daemon: the non-ESP marker is added and removed here). strongSwan's view
//! (`swanctl --list-sas`) is checked against the engine's events: same SPIs, same addresses.
//!
//! Needs root and strongSwan (`scripts/setup.sh` installs it); fails loudly otherwise.

// Test code: failing loudly on an unexpected error is the point (see clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use xdpsec_control::ike::payload::Identity;
use xdpsec_control::ike::session::{
    ConnConfig, Datagram, ESP_GCM128, ESP_GCM256, Engine, IKE_GCM128_X25519, IKE_GCM256_P384,
    IkeEvent, IkeSaInfo, Transmit, TransmitKind,
};

const PSK: &[u8] = b"interop-test-psk-0123456789";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn sh(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces and one charon; all removed on drop, also when the test fails.
struct Lab {
    prefix: String,
    charon_ns: String,
    ss_run: PathBuf,
}

impl Lab {
    /// Topology `prefix`, charon in namespace `prefix + charon_in` with the swanctl.conf
    /// `conf`: a file of `scripts/interop/strongswan`, or the text itself (with a newline).
    fn up(prefix: &str, charon_in: &str, conf: &str) -> Self {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "the interop tests need root");
        assert!(
            Path::new("/usr/lib/ipsec/charon").exists(),
            "strongSwan is not installed: run scripts/setup.sh"
        );
        let topo = root().join("scripts/netns/topo.sh");
        sh(&["bash", topo.to_str().unwrap(), "up", prefix]);
        let lab = Self {
            prefix: prefix.to_string(),
            charon_ns: format!("{prefix}{charon_in}"),
            ss_run: std::env::temp_dir().join(format!("xdpsec-ike-ss-{prefix}")),
        };
        lab.ss(&["start", &lab.charon_ns]);
        let conf = if conf.contains('\n') {
            let path = lab.ss_run.join(format!("{}.swanctl.conf", lab.charon_ns));
            std::fs::write(&path, conf).unwrap();
            path
        } else {
            root().join("scripts/interop/strongswan").join(conf)
        };
        lab.ss(&["load", &lab.charon_ns, conf.to_str().unwrap()]);
        lab
    }

    fn ss(&self, args: &[&str]) -> String {
        let script = root().join("scripts/interop/ss.sh");
        let out = Command::new("bash")
            .arg(script)
            .args(args)
            .env("SS_RUN", &self.ss_run)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ss.sh {args:?} failed:\n{}\n{}\n--- charon.log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `swanctl --OP ARGS` against this lab's charon.
    fn ctl(&self, op: &str, args: &[&str]) -> String {
        let mut a = vec!["ctl", self.charon_ns.as_str(), op];
        a.extend_from_slice(args);
        self.ss(&a)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.ss_run.join(&self.charon_ns).join("charon.log"))
            .unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let script = root().join("scripts/interop/ss.sh");
        let _ = Command::new("bash")
            .arg(script)
            .args(["stop", &self.charon_ns])
            .env("SS_RUN", &self.ss_run)
            .output();
        let topo = root().join("scripts/netns/topo.sh");
        let _ = run(&["bash", topo.to_str().unwrap(), "down", &self.prefix]);
    }
}

/// What the test asks of the engine thread.
enum Cmd {
    Initiate(&'static str),
    Terminate(&'static str),
    CreateChild(&'static str),
}

/// The engine on UDP 500/4500 inside a namespace: a minimal daemon.
struct Node {
    events: Arc<Mutex<Vec<IkeEvent>>>,
    list: Arc<Mutex<Vec<IkeSaInfo>>>,
    keepalives: Arc<Mutex<u32>>,
    /// SPIs of the ESP packets that arrived on UDP 4500 (RFC 3948 §2.1).
    esp: Arc<Mutex<Vec<u32>>>,
    cmds: Sender<Cmd>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Node {
    fn start(ns: &str, addr: IpAddr, conns: Vec<ConnConfig>) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let list = Arc::new(Mutex::new(Vec::new()));
        let keepalives = Arc::new(Mutex::new(0));
        let esp = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (cmds, rx) = channel();
        let ns_path = format!("/var/run/netns/{ns}");
        let io = Io {
            events: events.clone(),
            list: list.clone(),
            keepalives: keepalives.clone(),
            esp: esp.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::spawn(move || {
            let f = std::fs::File::open(&ns_path).unwrap();
            // SAFETY: setns on a valid namespace fd; it changes only this thread's namespace.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns {ns_path}: {}",
                std::io::Error::last_os_error()
            );
            serve(addr, conns, rx, &io);
        });
        Self {
            events,
            list,
            keepalives,
            esp,
            cmds,
            stop,
            thread: Some(thread),
        }
    }

    fn events(&self) -> Vec<IkeEvent> {
        self.events.lock().unwrap().clone()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.events()
            .iter()
            .filter(|e| !matches!(e, IkeEvent::Dropped { .. }))
            .map(IkeEvent::kind)
            .collect()
    }

    fn list(&self) -> Vec<IkeSaInfo> {
        self.list.lock().unwrap().clone()
    }

    /// Wait until the events satisfy `cond`.
    fn wait(&self, what: &str, secs: u64, lab: &Lab, cond: impl Fn(&[&'static str]) -> bool) {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if cond(&self.kinds()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{what}: events {:?}\n{:#?}\n--- charon.log ---\n{}",
            self.kinds(),
            self.events(),
            lab.log()
        );
    }

    /// The (inbound, outbound) SPIs of the last ChildUp, and its virtual IP.
    fn last_child(&self) -> (u32, u32, Option<IpAddr>) {
        self.events()
            .iter()
            .rev()
            .find_map(|e| match e {
                IkeEvent::ChildUp {
                    inbound,
                    outbound,
                    virtual_ip,
                    ..
                } => Some((inbound.spi, outbound.spi, *virtual_ip)),
                _ => None,
            })
            .unwrap()
    }
}

impl Node {
    /// key ‖ salt of the last ChildUp: (inbound, outbound).
    fn last_keys(&self) -> (Vec<u8>, Vec<u8>) {
        self.events()
            .iter()
            .rev()
            .find_map(|e| match e {
                IkeEvent::ChildUp {
                    inbound, outbound, ..
                } => Some((
                    [inbound.key.key(), &inbound.key.salt()].concat(),
                    [outbound.key.key(), &outbound.key.salt()].concat(),
                )),
                _ => None,
            })
            .unwrap()
    }
}

/// The child SA keys charon logged (`chd = 4`), in order: (initiator's, responder's) key ‖
/// salt, "initiator" being whoever started the exchange that made the child (RFC 7296 §2.17).
fn ss_child_keys(log: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut keys = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut pending: Vec<Vec<u8>> = Vec::new();
    for line in log.lines() {
        let body = line.split_once("] ").map_or("", |(_, b)| b);
        if body.starts_with("encryption initiator key =>")
            || body.starts_with("encryption responder key =>")
        {
            pending.extend(current.take());
            current = Some(Vec::new());
            continue;
        }
        match (&mut current, body.trim_start().split_once(": ")) {
            (Some(k), Some((off, rest))) if off.chars().all(|c| c.is_ascii_digit()) => {
                let hex = rest.split("  ").next().unwrap_or("");
                for b in hex.split_whitespace() {
                    k.push(u8::from_str_radix(b, 16).unwrap());
                }
            }
            _ => pending.extend(current.take()),
        }
        if pending.len() == 2 {
            let r = pending.pop().unwrap();
            let i = pending.pop().unwrap();
            keys.push((i, r));
        }
    }
    keys
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the engine thread shares with the test.
struct Io {
    events: Arc<Mutex<Vec<IkeEvent>>>,
    list: Arc<Mutex<Vec<IkeSaInfo>>>,
    keepalives: Arc<Mutex<u32>>,
    esp: Arc<Mutex<Vec<u32>>>,
    stop: Arc<AtomicBool>,
}

fn serve(addr: IpAddr, conns: Vec<ConnConfig>, cmds: Receiver<Cmd>, io: &Io) {
    let s500 = UdpSocket::bind(SocketAddr::new(addr, 500)).unwrap();
    let s4500 = UdpSocket::bind(SocketAddr::new(addr, 4500)).unwrap();
    for s in [&s500, &s4500] {
        s.set_nonblocking(true).unwrap();
    }
    let mut engine = Engine::new(conns, Box::new(SystemRandom::new()));
    let mut buf = vec![0u8; 65536];
    while !io.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Ok(cmd) = cmds.try_recv() {
            match cmd {
                Cmd::Initiate(c) => engine.initiate(now, c).unwrap(),
                Cmd::Terminate(c) => engine.terminate(now, c).unwrap(),
                Cmd::CreateChild(c) => engine.create_child(now, c).unwrap(),
            }
        }
        for (sock, port) in [(&s500, 500u16), (&s4500, 4500)] {
            while let Ok((n, src)) = sock.recv_from(&mut buf) {
                let dst = SocketAddr::new(addr, port);
                let bytes = &buf[..n];
                // RFC 3948 §2.2: on 4500 IKE follows the non-ESP marker; skip keepalives, ESP
                let ike = match (port, bytes) {
                    (500, b) => b,
                    (_, [0, 0, 0, 0, rest @ ..]) => rest,
                    (_, [a, b, c, d, _, _, _, _, ..]) => {
                        io.esp
                            .lock()
                            .unwrap()
                            .push(u32::from_be_bytes([*a, *b, *c, *d]));
                        continue;
                    }
                    _ => continue,
                };
                engine.handle(
                    Instant::now(),
                    Datagram {
                        src,
                        dst,
                        bytes: ike,
                    },
                );
            }
        }
        if engine.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            engine.handle_timeout(Instant::now());
        }
        while let Some(t) = engine.poll_transmit() {
            send(&s500, &s4500, &t);
            if t.kind == TransmitKind::Keepalive {
                *io.keepalives.lock().unwrap() += 1;
            }
        }
        {
            let mut ev = io.events.lock().unwrap();
            ev.extend(std::iter::from_fn(|| engine.poll_event()));
        }
        *io.list.lock().unwrap() = engine.list();
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn send(s500: &UdpSocket, s4500: &UdpSocket, t: &Transmit) {
    let sock = if t.src.port() == 4500 { s4500 } else { s500 };
    let mut out = Vec::with_capacity(t.bytes.len() + 4);
    if t.needs_non_esp_marker() {
        out.extend_from_slice(&[0; 4]);
    }
    out.extend_from_slice(&t.bytes);
    sock.send_to(&out, t.dst).unwrap();
}

/// The (in, out) SPIs of the installed children strongSwan lists (hex as it prints them).
fn ss_spis(list_sas: &str) -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    let mut lines = list_sas.lines();
    let mut installed = false;
    while let Some(l) = lines.next() {
        let l = l.trim();
        if l.contains(", reqid ") {
            installed = l.contains("INSTALLED");
        }
        if let Some(rest) = l.strip_prefix("in  ")
            && installed
        {
            let inb = u32::from_str_radix(rest.split(',').next().unwrap().trim(), 16).unwrap();
            let out_line = lines.next().unwrap().trim().to_string();
            let out_hex = out_line
                .strip_prefix("out ")
                .unwrap()
                .split(',')
                .next()
                .unwrap();
            v.push((inb, u32::from_str_radix(out_hex.trim(), 16).unwrap()));
        }
    }
    v
}

fn id(s: &str) -> Identity {
    Identity::Fqdn(s.into())
}

/// strongSwan behind the NAT initiates to the engine on the gateway.
#[test]
fn strongswan_initiates_to_the_engine() {
    let lab = Lab::up("xik", "client", "client.conf");
    let mut gw = ConnConfig::responder("rw", id("gw.example"), PSK);
    gw.local = Some("192.0.2.2".parse().unwrap());
    gw.local_ts = vec!["10.9.0.0/24".parse().unwrap()];
    gw.pool = Some(("10.99.0.1".parse().unwrap(), 100));
    gw.ike = vec![IKE_GCM128_X25519, IKE_GCM256_P384];
    gw.esp = vec![ESP_GCM128, ESP_GCM256];
    let node = Node::start("xikgw", "192.0.2.2".parse().unwrap(), vec![gw]);

    // --- aes128gcm16-prfsha256-x25519, ESP aes128gcm16 ---
    let out = lab.ctl("--initiate", &["--child", "gcm128"]);
    assert!(out.contains("completed successfully"), "{out}");
    node.wait("IKE_AUTH", 10, &lab, |k| k == ["ike_up", "child_up"]);
    let (inb, outb, vip) = node.last_child();
    assert_eq!(vip, Some("10.99.0.1".parse().unwrap()));
    let sas = lab.ctl("--list-sas", &[]);
    assert!(sas.contains("ESTABLISHED"), "{sas}");
    assert!(
        sas.contains("AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519"),
        "{sas}"
    );
    assert!(sas.contains("local  10.99.0.1/32"), "{sas}");
    assert!(sas.contains("remote 10.9.0.0/24"), "{sas}");
    // strongSwan's inbound is our outbound and vice versa; its initiator key is our inbound
    assert_eq!(ss_spis(&sas), [(outb, inb)], "{sas}");
    let (k_in, k_out) = node.last_keys();
    assert_eq!(ss_child_keys(&lab.log()), [(k_in, k_out)]);
    let info = &node.list()[0];
    assert!(info.nat_remote, "strongSwan is behind the NAT: {info:?}");
    assert_eq!(info.local.port(), 4500);
    assert_eq!(info.remote.ip(), "192.0.2.1".parse::<IpAddr>().unwrap());

    // --- child rekey started by strongSwan: new pair up, old one down ---
    lab.ctl("--rekey", &["--child", "gcm128"]);
    node.wait("child rekey", 10, &lab, |k| {
        k == ["ike_up", "child_up", "child_up", "child_down"]
    });
    let (inb2, outb2, _) = node.last_child();
    assert_ne!(inb2, inb);
    let sas = lab.ctl("--list-sas", &[]);
    assert_eq!(ss_spis(&sas), [(outb2, inb2)], "{sas}");
    let (k_in, k_out) = node.last_keys();
    assert_eq!(ss_child_keys(&lab.log()).last(), Some(&(k_in, k_out)));

    // --- IKE rekey started by strongSwan: the child moves to the new IKE SA ---
    lab.ctl("--rekey", &["--ike", "gcm128"]);
    node.wait("IKE rekey", 10, &lab, |k| {
        k == [
            "ike_up",
            "child_up",
            "child_up",
            "child_down",
            "ike_up",
            "ike_down",
        ]
    });
    let l = node.list();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].children.len(), 1);
    assert_eq!(l[0].children[0].inbound_spi, inb2);

    // --- strongSwan deletes ---
    lab.ctl("--terminate", &["--ike", "gcm128"]);
    node.wait("delete from strongSwan", 10, &lab, |k| k.len() == 8);
    assert_eq!(&node.kinds()[6..], ["child_down", "ike_down"]);
    assert!(node.list().is_empty());

    // --- aes256gcm16-prfsha384-ecp384, deleted by the engine ---
    let out = lab.ctl("--initiate", &["--child", "gcm256"]);
    assert!(out.contains("completed successfully"), "{out}");
    node.wait("second suite", 10, &lab, |k| k.len() == 10);
    assert_eq!(node.list()[0].ike_suite, "aes256gcm16-prfsha384-ecp384");
    let sas = lab.ctl("--list-sas", &[]);
    assert!(
        sas.contains("AES_GCM_16-256/PRF_HMAC_SHA2_384/ECP_384"),
        "{sas}"
    );
    let (inb, outb, _) = node.last_child();
    assert_eq!(ss_spis(&sas), [(outb, inb)], "{sas}");
    node.cmds.send(Cmd::Terminate("rw")).unwrap();
    node.wait("delete from the engine", 10, &lab, |k| k.len() == 12);
    std::thread::sleep(Duration::from_millis(300));
    let sas = lab.ctl("--list-sas", &[]);
    assert!(!sas.contains("ESTABLISHED"), "{sas}");
    let drops: Vec<IkeEvent> = node
        .events()
        .into_iter()
        .filter(|e| matches!(e, IkeEvent::Dropped { .. }))
        .collect();
    assert!(drops.is_empty(), "{drops:?}");
}

/// The engine behind the NAT initiates to strongSwan on the gateway, and rekeys on its own.
#[test]
fn engine_initiates_to_strongswan() {
    let lab = Lab::up("xij", "gw", "gw.conf");
    let mut c = ConnConfig::initiator(
        "gw",
        "192.0.2.2:500".parse().unwrap(),
        id("client.example"),
        PSK,
    );
    c.local = Some("10.0.1.2".parse().unwrap());
    c.remote_id = Some(id("gw.example"));
    c.remote_ts = vec!["10.9.0.0/24".parse().unwrap()];
    c.request_vip = true;
    c.timers.keepalive = Duration::from_secs(2);
    c.timers.dpd = Duration::from_secs(5);
    c.timers.child_lifetime = Duration::from_secs(16);
    c.timers.ike_lifetime = Duration::from_secs(40);
    c.timers.rekey_margin = Duration::from_secs(6);
    let node = Node::start("xijclient", "10.0.1.2".parse().unwrap(), vec![c]);
    node.cmds.send(Cmd::Initiate("gw")).unwrap();
    node.wait("IKE_AUTH", 10, &lab, |k| k == ["ike_up", "child_up"]);
    let (inb, outb, vip) = node.last_child();
    assert_eq!(vip, Some("10.99.0.1".parse().unwrap()));
    let info = &node.list()[0];
    assert!(info.nat_local, "{info:?}");
    assert_eq!((info.local.port(), info.remote.port()), (4500, 4500));
    let sas = lab.ctl("--list-sas", &[]);
    assert!(sas.contains("ESTABLISHED"), "{sas}");
    assert!(sas.contains("local  10.9.0.0/24"), "{sas}");
    assert!(sas.contains("remote 10.99.0.1/32"), "{sas}");
    assert_eq!(ss_spis(&sas), [(outb, inb)], "{sas}");
    // child rekey by the engine at ~10 s, IKE rekey at ~34 s (a second child rekey between)
    node.wait("child rekey", 20, &lab, |k| {
        k == ["ike_up", "child_up", "child_up", "child_down"]
    });
    let (inb2, outb2, _) = node.last_child();
    std::thread::sleep(Duration::from_millis(300));
    let sas = lab.ctl("--list-sas", &[]);
    assert_eq!(ss_spis(&sas), [(outb2, inb2)], "{sas}");
    let (k_in, k_out) = node.last_keys();
    assert_eq!(ss_child_keys(&lab.log()).last(), Some(&(k_out, k_in)));
    node.wait("IKE rekey", 40, &lab, |k| k.contains(&"ike_down"));
    assert_eq!(node.list().len(), 1);
    assert!(node.kinds().iter().filter(|k| **k == "ike_up").count() == 2);
    // a child rekey under the new IKE SA (keys from its SK_d)
    let ups = |k: &[&str]| k.iter().filter(|x| **x == "child_up").count();
    let n = ups(&node.kinds());
    node.wait("child rekey after IKE rekey", 15, &lab, |k| ups(k) > n);
    std::thread::sleep(Duration::from_millis(300));
    // keepalives from behind the NAT
    assert!(*node.keepalives.lock().unwrap() >= 10);
    // the tunnel is still there on strongSwan's side
    let sas = lab.ctl("--list-sas", &[]);
    assert!(sas.contains("ESTABLISHED"), "{sas}");
    let (inb3, outb3, _) = node.last_child();
    assert_eq!(ss_spis(&sas), [(outb3, inb3)], "{sas}");
    // children rekeyed under the new IKE SA (its SK_d) still agree with strongSwan
    let (k_in, k_out) = node.last_keys();
    assert_eq!(ss_child_keys(&lab.log()).last(), Some(&(k_out, k_in)));
    node.cmds.send(Cmd::Terminate("gw")).unwrap();
    node.wait("delete", 10, &lab, |k| {
        k.last() == Some(&"ike_down") && k.iter().filter(|x| **x == "ike_down").count() == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    let sas = lab.ctl("--list-sas", &[]);
    assert!(!sas.contains("ESTABLISHED"), "{sas}");
    let drops: Vec<IkeEvent> = node
        .events()
        .into_iter()
        .filter(|e| matches!(e, IkeEvent::Dropped { .. }))
        .collect();
    assert!(drops.is_empty(), "{drops:?}");
}

/// A packet capture on one interface of a namespace (tcpdump), stopped on drop.
struct Capture {
    child: std::process::Child,
    pcap: PathBuf,
}

impl Capture {
    fn start(ns: &str, iface: &str, pcap: PathBuf) -> Self {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tcpdump",
                "-i",
                iface,
                "--immediate-mode",
                "-U",
                "-w",
            ])
            .arg(&pcap)
            .arg("esp or udp port 500 or udp port 4500")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tcpdump");
        std::thread::sleep(Duration::from_millis(500));
        Self { child, pcap }
    }

    /// Stop capturing (SIGTERM: tcpdump flushes the file).
    fn stop(&mut self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    /// Packets matching a tcpdump filter.
    fn count(&self, filter: &str) -> usize {
        sh(&["tcpdump", "-n", "-r", self.pcap.to_str().unwrap(), filter])
            .lines()
            .count()
    }

    /// The whole capture, one line per packet with its first octets.
    fn dump(&self) -> String {
        sh(&["tcpdump", "-n", "-x", "-r", self.pcap.to_str().unwrap()])
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// strongSwan at 192.0.2.1 (the `nat` namespace's public side: no NAT in between) with its
/// site 10.0.1.0/24, talking to the engine's site 10.9.0.0/24 at 192.0.2.2.
fn direct_conf(initiator: bool) -> String {
    let addrs = if initiator {
        "local_addrs = 192.0.2.1\n        remote_addrs = 192.0.2.2"
    } else {
        "local_addrs = 192.0.2.1"
    };
    format!(
        r#"connections {{
    direct {{
        version = 2
        mobike = no
        {addrs}
        proposals = aes128gcm16-prfsha256-x25519
        local {{
            auth = psk
            id = site-a.example
        }}
        remote {{
            auth = psk
            id = site-b.example
        }}
        children {{
            direct {{
                local_ts = 10.0.1.0/24
                remote_ts = 10.9.0.0/24
                esp_proposals = aes128gcm16
                mode = tunnel
                start_action = none
            }}
            second {{
                local_ts = 10.0.1.0/25
                remote_ts = 10.9.0.128/25
                esp_proposals = aes128gcm16
                mode = tunnel
                start_action = none
            }}
        }}
    }}
}}
secrets {{
    ike-psk {{
        id-1 = site-a.example
        id-2 = site-b.example
        secret = "interop-test-psk-0123456789"
    }}
}}
"#
    )
}

/// The engine's side of [`direct_conf`].
fn direct_conn(initiator: bool) -> ConnConfig {
    let mut c = if initiator {
        ConnConfig::initiator(
            "direct",
            "192.0.2.1:500".parse().unwrap(),
            id("site-b.example"),
            PSK,
        )
    } else {
        ConnConfig::responder("direct", id("site-b.example"), PSK)
    };
    c.local = Some("192.0.2.2".parse().unwrap());
    c.remote_id = Some(id("site-a.example"));
    c.local_ts = vec!["10.9.0.0/24".parse().unwrap()];
    c.remote_ts = vec!["10.0.1.0/24".parse().unwrap()];
    assert!(c.encap, "UDP encapsulation is forced by default");
    c
}

/// Without a NAT between the engine (gw namespace) and strongSwan (nat namespace, 192.0.2.1):
/// the engine forces UDP encapsulation; strongSwan sees the engine "behind a NAT", both use
/// port 4500, and strongSwan's ESP arrives in UDP 4500 with the engine's inbound SPIs. The
/// initiator then adds a second child SA with CREATE_CHILD_SA (RFC 7296 §1.3.1).
fn without_nat(prefix: &str, engine_initiates: bool) {
    let lab = Lab::up(prefix, "nat", &direct_conf(!engine_initiates));
    let gw_ns = format!("{prefix}gw");
    let node = Node::start(
        &gw_ns,
        "192.0.2.2".parse().unwrap(),
        vec![direct_conn(engine_initiates)],
    );
    let mut cap = Capture::start(&gw_ns, "g-eth0", lab.ss_run.join("g-eth0.pcap"));
    if engine_initiates {
        node.cmds.send(Cmd::Initiate("direct")).unwrap();
    } else {
        let out = lab.ctl("--initiate", &["--child", "direct"]);
        assert!(out.contains("completed successfully"), "{out}");
    }
    node.wait("IKE_AUTH", 10, &lab, |k| k == ["ike_up", "child_up"]);
    let (inb, outb, _) = node.last_child();
    let ups: Vec<(SocketAddr, Option<SocketAddr>)> = node
        .events()
        .iter()
        .filter_map(|e| match e {
            IkeEvent::ChildUp {
                inbound, outbound, ..
            } => Some((inbound.local, outbound.remote)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ups,
        [(
            "192.0.2.2:4500".parse().unwrap(),
            Some("192.0.2.1:4500".parse().unwrap())
        )]
    );
    // our view: no NAT here, encapsulation forced (strongSwan's libipsec forces it too, so
    // it looks "behind a NAT")
    let info = &node.list()[0];
    assert!(!info.nat_local && info.encap_forced, "{info:?}");
    assert_eq!((info.local.port(), info.remote.port()), (4500, 4500));
    // strongSwan's view: same SPIs, UDP-encapsulated, and we look behind a NAT
    let sas = lab.ctl("--list-sas", &[]);
    assert!(sas.contains("ESTABLISHED"), "{sas}");
    assert_eq!(ss_spis(&sas), [(outb, inb)], "{sas}");
    assert!(sas.contains("192.0.2.2[4500]"), "{sas}");
    assert!(sas.contains("TUNNEL-in-UDP"), "{sas}");
    let raw = lab.ctl("--list-sas", &["--raw"]);
    assert!(raw.contains("nat-remote=yes"), "{raw}");
    assert!(raw.contains("encap=yes"), "{raw}");
    // a second child on the same IKE SA, asked for by the initiator
    if engine_initiates {
        node.cmds.send(Cmd::CreateChild("direct")).unwrap();
    } else {
        let out = lab.ctl("--initiate", &["--child", "second"]);
        assert!(out.contains("completed successfully"), "{out}");
    }
    node.wait("CREATE_CHILD_SA", 10, &lab, |k| {
        k == ["ike_up", "child_up", "child_up"]
    });
    let (inb2, outb2, _) = node.last_child();
    let sas = lab.ctl("--list-sas", &[]);
    let mut listed = ss_spis(&sas);
    listed.sort_unstable();
    let mut ours = vec![(outb, inb), (outb2, inb2)];
    ours.sort_unstable();
    assert_eq!(listed, ours, "{sas}");
    assert_eq!(sas.matches("TUNNEL-in-UDP").count(), 2, "{sas}");
    assert_eq!(node.list()[0].children.len(), 2);
    if !engine_initiates {
        // what strongSwan asked for, within the connection's selectors
        let l = node.list();
        let c = &l[0].children[1];
        assert_eq!(c.remote_ts, ["10.0.1.0/25".parse().unwrap()], "{l:?}");
        assert_eq!(c.local_ts, ["10.9.0.128/25".parse().unwrap()], "{l:?}");
    }
    // strongSwan's ESP reaches us in UDP 4500 (a ping through its tunnel; no answer comes
    // back, the engine has no dataplane here)
    let nat_ns = format!("{prefix}nat");
    let _ = run(&[
        "ip", "netns", "exec", &nat_ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I",
        "10.0.1.1", "10.9.0.2",
    ]);
    let end = Instant::now() + Duration::from_secs(5);
    while node.esp.lock().unwrap().len() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let esp = node.esp.lock().unwrap().clone();
    assert!(
        esp.len() >= 3 && esp.iter().all(|s| *s == inb || *s == inb2),
        "ESP-in-UDP SPIs {esp:x?}, expected {inb:08x} or {inb2:08x}\n{}",
        lab.log()
    );
    node.cmds.send(Cmd::Terminate("direct")).unwrap();
    node.wait("delete", 10, &lab, |k| k.last() == Some(&"ike_down"));
    std::thread::sleep(Duration::from_millis(300));
    cap.stop();
    // the wire: IKE_SA_INIT on 500, the rest with the non-ESP marker on 4500, ESP only in UDP
    let wire = cap.dump();
    assert_eq!(cap.count("esp"), 0, "plain ESP (protocol 50):\n{wire}");
    assert!(cap.count("udp port 500") >= 2, "{wire}");
    assert!(cap.count("udp port 4500 and udp[8:4] = 0") >= 4, "{wire}");
    let esp_in_udp = cap.count(&format!(
        "udp dst port 4500 and (udp[8:4] = 0x{inb:08x} or udp[8:4] = 0x{inb2:08x})"
    ));
    assert!(
        esp_in_udp >= 3,
        "ESP in UDP 4500 captured: {esp_in_udp}\n{wire}"
    );
    let sas = lab.ctl("--list-sas", &[]);
    assert!(!sas.contains("ESTABLISHED"), "{sas}");
    assert_eq!(*node.keepalives.lock().unwrap(), 0, "no NAT: no keepalives");
    let drops: Vec<IkeEvent> = node
        .events()
        .into_iter()
        .filter(|e| matches!(e, IkeEvent::Dropped { .. }))
        .collect();
    assert!(drops.is_empty(), "{drops:?}");
}

#[test]
fn strongswan_initiates_without_nat() {
    without_nat("xie", false);
}

#[test]
fn engine_initiates_without_nat() {
    without_nat("xif", true);
}
