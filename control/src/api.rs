//! The control API between the `xdpsec` CLI and a running gateway: JSON lines over a Unix
//! socket, mode 0600 (created under umask 0177, so it is never briefly world-accessible).
//!
//! One request per line, one response per line:
//!
//! ```text
//! → {"cmd":"status"}     ← {"ok":true,"status":{"version":"0.1.0","uptime_s":12,"backend":"socket (configured)",…}}
//! → {"cmd":"stats"}      ← {"ok":true,"stats":{"backend":…,"workers":[{…,"drops":{"auth_failed":1}}]}}
//! → {"cmd":"sa_list"}    ← {"ok":true,"sas":[{"spi":"0x10000001","direction":"in",…,"conn":"rw","nat_remote":true,…}]}
//! → {"cmd":"conn_list"}  ← {"ok":true,"conns":[{"conn":"rw","state":"established","nat_local":false,…,"children":[…]}]}
//! → {"cmd":"conn_up","name":"home"}    ← {"ok":true}   (an initiator connection starts)
//! → {"cmd":"conn_down","name":"home"}  ← {"ok":true}   (its IKE SA is deleted; not restarted)
//! → anything else        ← {"ok":false,"error":"…"}
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xdpsec_dataplane::sa::{Direction, Mode};
use xdpsec_dataplane::sad::SaSnapshot;
use xdpsec_dataplane::worker::{Query, WorkerStats};

use crate::ike::session::{EngineStats, IkeSaInfo};
use crate::ike_service::IkeRequest;
use crate::stats::{GatewayReport, WorkerReport};

/// Default socket path.
pub const DEFAULT_SOCKET: &str = "/run/xdpsec/xdpsec.sock";

/// Longest request line accepted (a request is a few dozen bytes).
const MAX_REQUEST: usize = 4096;

/// A request from the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// What is running.
    Status,
    /// Counters.
    Stats,
    /// Every SA.
    SaList,
    /// Every IKE SA with its child SAs.
    ConnList,
    /// Start an initiator connection.
    ConnUp {
        /// Its name in the configuration.
        name: String,
    },
    /// Delete a connection's IKE SA and child SAs.
    ConnDown {
        /// Its name in the configuration.
        name: String,
    },
}

/// How long the API waits for the IKE runtime or a worker to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// What the API serves from: the daemon's shared state.
#[derive(Debug)]
pub struct ApiState {
    /// Backend description.
    pub backend: String,
    /// The configuration file.
    pub config: PathBuf,
    /// When the gateway started.
    pub started: Instant,
    /// Each worker's published counters and its query channel.
    pub workers: Vec<(Arc<Mutex<WorkerStats>>, Sender<Query>)>,
    /// The XDP program's counters, refreshed by the daemon (AF_XDP backend only).
    pub xdp: Mutex<Option<std::collections::BTreeMap<&'static str, u64>>>,
    /// The IKE runtime's request channel, when connections are configured.
    pub ike: Option<crossbeam_channel::Sender<crate::ike_service::IkeRequest>>,
}

impl ApiState {
    /// Replace the XDP counters.
    pub fn set_xdp(&self, counters: Option<std::collections::BTreeMap<&'static str, u64>>) {
        if let Ok(mut x) = self.xdp.lock() {
            *x = counters;
        }
    }

    /// The counters of every worker.
    pub fn report(&self) -> GatewayReport {
        GatewayReport {
            backend: self.backend.clone(),
            xdp: self.xdp.lock().ok().and_then(|x| x.clone()),
            workers: self
                .workers
                .iter()
                .filter_map(|(s, _)| s.lock().ok().map(|s| WorkerReport::from(&*s)))
                .collect(),
        }
    }

    fn answer(&self, req: &Request) -> Value {
        match req {
            Request::Status => {
                let report = self.report();
                json!({"ok": true, "status": {
                    "version": env!("CARGO_PKG_VERSION"),
                    "uptime_s": self.started.elapsed().as_secs(),
                    "backend": self.backend,
                    "config": self.config.display().to_string(),
                    "workers": self.workers.len(),
                    "sas_in": report.workers.iter().map(|w| w.sas_in).max().unwrap_or(0),
                    "sas_out": report.workers.iter().map(|w| w.sas_out).max().unwrap_or(0),
                }})
            }
            Request::Stats => {
                let mut stats = json!(self.report());
                if let Some(ike) = self.ike_stats() {
                    stats["ike"] = json!(ike);
                }
                json!({"ok": true, "stats": stats})
            }
            Request::SaList => {
                let conns = self.ike_list().unwrap_or_default();
                let mut sas = Vec::new();
                for (_, q) in &self.workers {
                    let (tx, rx) = bounded(1);
                    if q.send(Query::Sas(tx)).is_ok()
                        && let Ok(list) = rx.recv_timeout(ANSWER_WITHIN)
                    {
                        sas.extend(list.iter().map(|s| {
                            let mut v = sa_json(s);
                            annotate(&mut v, s, &conns);
                            v
                        }));
                    }
                }
                json!({"ok": true, "sas": sas})
            }
            Request::ConnList => match self.ike_list() {
                Some(conns) => json!({"ok": true, "conns": conns}),
                None => no_ike(),
            },
            Request::ConnUp { name } => self.ike_call(|tx| IkeRequest::Up(name.clone(), tx)),
            Request::ConnDown { name } => self.ike_call(|tx| IkeRequest::Down(name.clone(), tx)),
        }
    }

    /// Asks the IKE runtime; `None` without IKE or when it does not answer in time.
    fn ask_ike<T>(&self, req: impl FnOnce(Sender<T>) -> IkeRequest) -> Option<T> {
        let ike = self.ike.as_ref()?;
        let (tx, rx) = bounded(1);
        ike.send(req(tx)).ok()?;
        rx.recv_timeout(ANSWER_WITHIN).ok()
    }

    /// Every IKE SA, when IKE runs.
    pub fn ike_list(&self) -> Option<Vec<IkeSaInfo>> {
        self.ask_ike(IkeRequest::List)
    }

    /// The IKE engine's counters, when IKE runs.
    pub fn ike_stats(&self) -> Option<EngineStats> {
        self.ask_ike(IkeRequest::Stats)
    }

    fn ike_call(&self, req: impl FnOnce(Sender<Result<(), String>>) -> IkeRequest) -> Value {
        if self.ike.is_none() {
            return no_ike();
        }
        match self.ask_ike(req) {
            Some(Ok(())) => json!({"ok": true}),
            Some(Err(e)) => json!({"ok": false, "error": e}),
            None => json!({"ok": false, "error": "the IKE runtime did not answer"}),
        }
    }
}

fn no_ike() -> Value {
    json!({"ok": false, "error": "no IKE connections configured ([[conn]] in the gateway configuration)"})
}

/// Adds the IKE view of an SA made by IKE: its connection, NAT state, age, time to rekey.
fn annotate(v: &mut Value, s: &SaSnapshot, conns: &[IkeSaInfo]) {
    for ike in conns {
        for c in &ike.children {
            let spi = match s.direction {
                Direction::In => c.inbound_spi,
                Direction::Out => c.outbound_spi,
            };
            if spi == s.spi {
                v["conn"] = json!(ike.conn);
                v["ike_spi"] = json!(ike.our_spi);
                v["nat_local"] = json!(ike.nat_local);
                v["nat_remote"] = json!(ike.nat_remote);
                v["esp"] = json!(c.esp);
                v["age_s"] = json!(c.age.as_secs_f64());
                v["rekey_in_s"] = json!(c.rekey_in.map(|d| d.as_secs_f64()));
                return;
            }
        }
    }
}

fn sa_json(s: &SaSnapshot) -> Value {
    let ts =
        |v: &[xdpsec_dataplane::sa::IpPrefix]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    json!({
        "spi": format!("{:#010x}", s.spi),
        "direction": match s.direction { Direction::In => "in", Direction::Out => "out" },
        "mode": match s.mode { Mode::Tunnel => "tunnel", Mode::Transport => "transport" },
        "aead": s.aead.name(),
        "peer": s.peer.0,
        "endpoint": s.endpoint.map(|e| e.to_string()),
        "endpoint_learned": s.learned,
        "esn": s.esn,
        "seq": s.seq,
        "replay_window": s.replay_window,
        "packets": s.counters.packets,
        "bytes": s.counters.bytes,
        "replay_drops": s.counters.replay_drops,
        "auth_failures": s.counters.auth_failures,
        "local_ts": ts(&s.selectors.local),
        "remote_ts": ts(&s.selectors.remote),
    })
}

/// Bind the API socket (mode 0600; its directory is created 0700 if missing; a stale socket
/// from a previous run is replaced).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another xdpsec is serving this socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    // SAFETY: umask only changes this process's file-creation mask; restored right after.
    let old = unsafe { libc::umask(0o177) };
    let listener = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = listener?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serve connections until `stop` is set. Each connection gets its own thread.
pub fn serve(listener: UnixListener, state: Arc<ApiState>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let state = Arc::clone(&state);
                let _ = std::thread::Builder::new()
                    .name("xdpsec-api".into())
                    .spawn(move || handle(conn, &state));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn handle(conn: UnixStream, state: &ApiState) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn).take(MAX_REQUEST as u64 * 64);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = if line.len() > MAX_REQUEST {
            json!({"ok": false, "error": "request too long"})
        } else {
            match serde_json::from_str::<Request>(line.trim()) {
                Ok(req) => state.answer(&req),
                Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
            }
        };
        if writeln!(out, "{answer}").is_err() {
            return;
        }
    }
}

/// Client side: send one request and return the response's payload (`Err` with the server's
/// error or a connection problem, as one line).
pub fn call(socket: &Path, req: &Request) -> Result<Value, String> {
    let mut conn = UnixStream::connect(socket).map_err(|e| {
        format!(
            "{}: {e} (is `xdpsec run` running? --socket sets the path)",
            socket.display()
        )
    })?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    writeln!(conn, "{line}").map_err(|e| format!("{}: {e}", socket.display()))?;
    let mut resp = String::new();
    BufReader::new(conn)
        .read_line(&mut resp)
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let v: Value = serde_json::from_str(&resp).map_err(|e| format!("bad response: {e}"))?;
    if v["ok"] == true {
        Ok(v)
    } else {
        Err(v["error"].as_str().unwrap_or("unknown error").to_string())
    }
}
