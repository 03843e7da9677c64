//! Over the wire: a load generator in the client namespace — one initiator [`Engine`] with
//! one connection per concurrent handshake (`client-N.bench`), on a UDP socket bound to
//! 192.0.2.1:4500 — against a responder in the gateway namespace: `xdpsec run` with a
//! responder `[[conn]]`, or strongSwan's charon with the same connection. Each connection
//! connects (IKE_SA_INIT + IKE_AUTH with a virtual IP), is deleted as soon as its child SA is
//! up, and connects again, for the point's wall time; the responder's CPU time comes from
//! `/proc/PID/stat`.
//!
//! IKE starts on port 4500 (RFC 7296 §2.23 lets an initiator do so with or without a NAT), so
//! every message to xdpsec goes through its XDP program, an AF_XDP worker and the control
//! plane, as IKE from road warriors behind NATs does.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use xdpsec_control::ike::session::{Datagram, Engine, IkeEvent, Transmit, TransmitKind};

use super::{NATT_PORT, PSK, Suite, client_conn};
use crate::e2e::gateway::Gateway;
use crate::e2e::strongswan::Charon;
use crate::e2e::topo::{self, CLIENT, GW, GW_WAN};

/// The generator's address (the client end of the e2e topology's WAN link).
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// The xdpsec responder's configuration: the same connection as [`super::gw_conn`] and the
/// strongSwan responder's `benches/strongswan/ike-gw.conf`.
fn xdpsec_config(psk_file: &Path) -> String {
    format!(
        r#"# Written by xdpsec-bench ike.
[gateway]
listen = "192.0.2.2:4500"
wan = "{GW_WAN}"
backend = "afxdp"
tun = "xbtun0"
tun_mtu = 1500

[[conn]]
name = "rw"
local_id = "gw.bench"
psk_file = "{psk}"
ike = ["aes128gcm16-prfsha256-x25519", "aes256gcm16-prfsha384-ecp384"]
esp = ["aes128gcm16", "aes256gcm16"]
local_ts = ["10.9.0.0/24"]
pool = "10.99.0.0/16"
"#,
        psk = psk_file.display()
    )
}

/// strongSwan's responder connection.
const STRONGSWAN_CONF: &str = include_str!("../../strongswan/ike-gw.conf");

/// strongswan.conf settings: DoS protection as xdpsec's defaults (cookies above 64
/// half-open IKE SAs, RFC 7296 §2.6, with no lower per-address threshold; no per-address
/// limit below the 4096 half-open SAs xdpsec keeps at most). strongSwan 5.9's defaults —
/// cookies above 30 half-open SAs or 3 from one address, at most 5 from one address — would
/// make a single-address generator measure its DoS protection.
const STRONGSWAN_SETTINGS: &str =
    "    cookie_threshold = 64\n    cookie_threshold_ip = 64\n    block_threshold = 4096\n";

/// A responder under test.
#[derive(Debug)]
pub enum Responder {
    /// `xdpsec run` (AF_XDP backend).
    Xdpsec(Gateway),
    /// charon.
    StrongSwan(Charon),
}

impl Responder {
    /// Start `xdpsec run` in the gateway namespace.
    pub fn xdpsec(xdpsec: &Path, dir: &Path) -> Result<Self, String> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let psk = dir.join("ike.psk");
        std::fs::write(&psk, PSK).map_err(|e| format!("{}: {e}", psk.display()))?;
        std::fs::set_permissions(&psk, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", psk.display()))?;
        let gw = Gateway::start(xdpsec, "ike", &xdpsec_config(&psk), dir)?;
        if !gw.log_text().contains("backend afxdp") {
            return Err(format!(
                "the gateway did not come up on AF_XDP: {}",
                gw.log_text()
            ));
        }
        Ok(Self::Xdpsec(gw))
    }

    /// Start charon in the gateway namespace.
    pub fn strongswan(dir: &Path) -> Result<Self, String> {
        Charon::start(GW, dir, STRONGSWAN_SETTINGS, STRONGSWAN_CONF).map(Self::StrongSwan)
    }

    /// "xdpsec" or "strongswan".
    pub fn name(&self) -> &'static str {
        match self {
            Self::Xdpsec(_) => "xdpsec",
            Self::StrongSwan(_) => "strongswan",
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Self::Xdpsec(g) => g.pid(),
            Self::StrongSwan(c) => c.pid(),
        }
    }

    /// Its log so far (for error messages).
    pub fn log_text(&self) -> String {
        match self {
            Self::Xdpsec(g) => g.log_text(),
            Self::StrongSwan(c) => c.log_text(),
        }
    }
}

/// CPU seconds of process `pid` (all threads) and of its children that were waited for
/// (`xdpsec run` runs `ip route` per child SA): fields 14–17 of `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // the command name (field 2) may hold spaces: count fields after its closing parenthesis
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{path}: no command field"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime..cstime = fields 14..=17 = indices 11..=14
    let ticks: u64 = fields
        .get(11..15)
        .ok_or_else(|| format!("{path}: short"))?
        .iter()
        .map(|f| f.parse::<u64>().map_err(|e| format!("{path}: {e}")))
        .sum::<Result<u64, String>>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / hz.max(1) as f64)
}

/// CPU seconds of the calling thread.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// One measured point.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// "xdpsec" or "strongswan".
    pub system: String,
    /// The proposed IKE suite.
    pub suite: String,
    /// Handshakes kept in flight.
    pub concurrency: usize,
    /// Handshakes completed (child SA up at the generator) during the point.
    pub completed: u64,
    /// `completed` per second of wall time.
    pub handshakes_per_s: f64,
    /// Attempts that ended otherwise, by the generator's `IkeDown` reason (`peer_timeout`,
    /// `authentication_failed`, …) or `initiate: …`.
    pub failures: BTreeMap<String, u64>,
    /// IKE messages the generator sent per completed handshake (3 = IKE_SA_INIT, IKE_AUTH and
    /// Delete with no retransmission and no cookie round).
    pub messages_per_handshake: f64,
    /// initiate → child SA up at the generator, median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Responder CPU time (all threads and waited-for children) / wall time, %.
    pub responder_cpu_pct: f64,
    /// Responder CPU time per completed handshake, µs.
    pub responder_cpu_us: f64,
    /// Generator thread CPU time / wall time, %.
    pub generator_cpu_pct: f64,
    /// Wall time of the point, s.
    pub wall_s: f64,
}

/// State of one generator connection.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Conn {
    Idle,
    /// IKE_SA_INIT sent at this time.
    Connecting(Instant),
    /// Child SA up, Delete sent.
    Deleting,
}

/// The generator: one initiator engine, one socket.
struct Generator {
    engine: Engine,
    sock: UdpSocket,
    local: SocketAddr,
    conns: Vec<Conn>,
    by_name: HashMap<String, usize>,
    completed: u64,
    failures: BTreeMap<String, u64>,
    sent: u64,
    latency: Histogram<u64>,
    /// Completions, failures, messages and latencies count only while this is set.
    counting: bool,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

impl Generator {
    /// In the client namespace (the calling thread must be in it).
    fn new(concurrency: usize, suite: &Suite, vip: bool) -> Result<Self, String> {
        let local = SocketAddr::new(IpAddr::V4(CLIENT_IP), NATT_PORT);
        let sock = UdpSocket::bind(local).map_err(|e| format!("bind {local}: {e}"))?;
        sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut confs = Vec::with_capacity(concurrency);
        let mut by_name = HashMap::new();
        for i in 0..concurrency {
            let name = format!("c{i}");
            let mut c = client_conn(&name, i, suite, vip)?;
            c.local = Some(local.ip());
            by_name.insert(name, i);
            confs.push(c);
        }
        Ok(Self {
            engine: Engine::new(confs, Box::new(ring::rand::SystemRandom::new())),
            sock,
            local,
            conns: vec![Conn::Idle; concurrency],
            by_name,
            completed: 0,
            failures: BTreeMap::new(),
            sent: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
            counting: true,
            rx: vec![0; 65536],
            tx: Vec::with_capacity(2048),
        })
    }

    fn fail(&mut self, why: String) {
        if self.counting {
            *self.failures.entry(why).or_insert(0) += 1;
        }
    }

    fn start(&mut self, now: Instant, i: usize) {
        match self.engine.initiate(now, &format!("c{i}")) {
            Ok(()) => self.conns[i] = Conn::Connecting(now),
            Err(e) => self.fail(format!("initiate: {e}")),
        }
    }

    fn send(&mut self, t: &Transmit) {
        if t.kind != TransmitKind::Ike {
            return;
        }
        self.tx.clear();
        if t.needs_non_esp_marker() {
            self.tx.extend_from_slice(&[0; 4]);
        }
        self.tx.extend_from_slice(&t.bytes);
        // a refused send is a lost datagram: the engine retransmits (counted in `sent`)
        let _ = self.sock.send_to(&self.tx, t.dst);
        self.sent += u64::from(self.counting);
    }

    /// Send what the engine has, act on its events; `restart` re-initiates finished
    /// connections.
    fn drain(&mut self, now: Instant, restart: bool) {
        while let Some(t) = self.engine.poll_transmit() {
            self.send(&t);
        }
        while let Some(ev) = self.engine.poll_event() {
            match ev {
                IkeEvent::ChildUp { conn, .. } => {
                    let Some(&i) = self.by_name.get(&conn) else {
                        continue;
                    };
                    if let Conn::Connecting(t0) = self.conns[i]
                        && self.counting
                    {
                        self.completed += 1;
                        let us = now.saturating_duration_since(t0).as_micros();
                        let _ = self.latency.record(u64::try_from(us).unwrap_or(u64::MAX));
                    }
                    self.conns[i] = Conn::Deleting;
                    if let Err(e) = self.engine.terminate(now, &conn) {
                        self.fail(format!("terminate: {e}"));
                    }
                }
                IkeEvent::IkeDown { conn, reason, .. } => {
                    let Some(&i) = self.by_name.get(&conn) else {
                        continue;
                    };
                    if reason != "terminated" || self.conns[i] != Conn::Deleting {
                        self.fail(reason.to_string());
                    }
                    self.conns[i] = Conn::Idle;
                    if restart {
                        self.start(now, i);
                    }
                }
                _ => {}
            }
        }
        // Messages queued by terminate / initiate above.
        while let Some(t) = self.engine.poll_transmit() {
            self.send(&t);
        }
    }

    /// Wait for datagrams until `until` at most, and hand them to the engine.
    fn receive(&mut self, until: Instant) -> Result<(), String> {
        let wait = until.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        loop {
            match self.sock.recv_from(&mut self.rx) {
                Ok((n, src)) => {
                    let now = Instant::now();
                    // IKE on 4500 follows the non-ESP marker (RFC 3948 §2.2); anything
                    // else here (keepalives, ESP) is not for the generator
                    if let Some(msg) = self.rx.get(..n).and_then(|b| b.strip_prefix(&[0; 4])) {
                        self.engine.handle(
                            now,
                            Datagram {
                                src,
                                dst: self.local,
                                bytes: msg,
                            },
                        );
                        self.drain(now, self.counting);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
    }

    /// Run the engine's timers (retransmissions) if due.
    fn timers(&mut self, now: Instant) {
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
            self.drain(now, self.counting);
        }
    }

    /// Keep every connection busy for `wall`; returns the wall time it took.
    fn run(&mut self, wall: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        for i in 0..self.conns.len() {
            self.start(start, i);
        }
        self.drain(start, true);
        let deadline = start + wall;
        let mut now = start;
        while now < deadline {
            let next = self
                .engine
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            self.receive(next.max(now + Duration::from_micros(1)))?;
            now = Instant::now();
            self.timers(now);
        }
        Ok(start.elapsed())
    }

    /// Stop counting and starting; let the handshakes in flight finish and be deleted for
    /// up to `grace`, so that the responder is left without SAs.
    fn finish(&mut self, grace: Duration) -> Result<(), String> {
        self.counting = false;
        let end = Instant::now() + grace;
        while self.conns.iter().any(|c| *c != Conn::Idle) && Instant::now() < end {
            self.receive((Instant::now() + Duration::from_millis(20)).min(end))?;
            self.timers(Instant::now());
        }
        Ok(())
    }
}

/// Measure one point: `concurrency` handshakes of `suite` (with virtual IPs if `vip`) in
/// flight against the running `responder` for `wall`, the generator pinned to `core`.
pub fn point(
    responder: &Responder,
    suite: &Suite,
    vip: bool,
    concurrency: usize,
    wall: Duration,
    core: Option<core_affinity::CoreId>,
) -> Result<Point, String> {
    let pid = responder.pid();
    let (g, elapsed, gen_cpu, cpu) = std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(c) = core {
                core_affinity::set_for_current(c);
            }
            topo::enter(CLIENT)?;
            let mut g = Generator::new(concurrency, suite, vip)?;
            let cpu0 = cpu_seconds(pid)?;
            let t0 = thread_cpu_seconds();
            let elapsed = g.run(wall)?;
            let gen_cpu = thread_cpu_seconds() - t0;
            let cpu = cpu_seconds(pid)? - cpu0;
            g.finish(Duration::from_secs(2))?;
            Ok::<_, String>((g, elapsed, gen_cpu, cpu))
        })
        .join()
        .map_err(|_| "the generator panicked".to_string())?
    })?;
    let completed = g.completed;
    let wall_s = elapsed.as_secs_f64().max(1e-9);
    let q = |q: f64| g.latency.value_at_quantile(q) as f64 / 1e3;
    Ok(Point {
        system: responder.name().into(),
        suite: suite.name.clone(),
        concurrency,
        completed,
        handshakes_per_s: completed as f64 / wall_s,
        failures: g.failures.clone(),
        messages_per_handshake: if completed > 0 {
            g.sent as f64 / completed as f64
        } else {
            f64::NAN
        },
        p50_ms: if completed > 0 { q(0.5) } else { f64::NAN },
        p99_ms: if completed > 0 { q(0.99) } else { f64::NAN },
        responder_cpu_pct: 100.0 * cpu / wall_s,
        responder_cpu_us: if completed > 0 {
            cpu * 1e6 / completed as f64
        } else {
            f64::NAN
        },
        generator_cpu_pct: 100.0 * gen_cpu / wall_s,
        wall_s,
    })
}
