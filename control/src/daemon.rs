//! `xdpsec run`: the gateway runtime with static SAs — WAN backend, multi-queue TUN, routes,
//! pinned workers (one per RX queue), signal handling, periodic stats snapshots, clean shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, bounded, never};
use xdpsec_dataplane::batch::{Config, Event, Pipeline};
use xdpsec_dataplane::handoff::{Handoff, PARCELS};
use xdpsec_dataplane::io::WanPort;
use xdpsec_dataplane::io::afxdp::{AfxdpWan, BindMode, LearnedMac, NextHop, XskConfig, XskPort};
use xdpsec_dataplane::io::port_set::PortSet;
use xdpsec_dataplane::io::socket::UdpPort;
use xdpsec_dataplane::io::tun::Tun;
use xdpsec_dataplane::sa::IpPrefix;
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::wire::frame::PortMatch;
use xdpsec_dataplane::worker::{ControlDatagram, Links, Query, Worker, WorkerEvent, WorkerStats};
use xdpsec_ebpf::{ModePreference, NattSteering, XdpCounters};

use crate::api::ApiState;
use crate::config::gateway::{Backend, Gateway, Workers};
use crate::ike::session::{Transmit, TransmitKind};
use crate::ike_service::{IkeRequest, IkeService, Received};

/// Set by SIGINT/SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Options of `xdpsec run` beyond the configuration file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The configuration file (reported by `xdpsec status`).
    pub config_path: PathBuf,
    /// Serve the control API on this Unix socket.
    pub socket: PathBuf,
    /// Write a JSON stats snapshot here every 200 ms (atomically replaced).
    pub stats_file: Option<PathBuf>,
}

/// Run the gateway until SIGINT/SIGTERM.
pub fn run(cfg: &Gateway, opts: &RunOptions) -> Result<(), String> {
    install_signal_handlers();
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1);
    let wan = match cfg.backend {
        Backend::Socket => bind_sockets(cfg, cores, "socket (configured)".into())?,
        Backend::AfXdp => start_afxdp(cfg, cores)?,
        Backend::Auto => match start_afxdp(cfg, cores) {
            Ok(w) => w,
            Err(e) => bind_sockets(cfg, cores, format!("socket (AF_XDP unavailable: {e})"))?,
        },
    };
    let workers = wan.workers();
    // IPv6 on the TUN only when IPv6 is routed through the tunnel.
    let ipv6 = cfg.routes.iter().any(|r| r.addr().is_ipv6());
    // One TUN queue per worker (IFF_MULTI_QUEUE).
    let tuns = Tun::open_queues(&cfg.tun, cfg.tun_mtu, ipv6, workers)
        .map_err(|e| format!("tun {}: {e} (needs root / CAP_NET_ADMIN)", cfg.tun))?;
    let tun_name = tuns
        .first()
        .map(|t| t.name().to_string())
        .unwrap_or_default();
    // The configured routes, plus every responder pool: its virtual IPs are routed into the
    // TUN once here, not per child SA (a process spawn per handshake otherwise).
    let mut routes = cfg.routes.clone();
    for pool in cfg
        .conns
        .iter()
        .filter_map(|c| c.pool)
        .filter_map(pool_prefix)
    {
        if !routes.iter().any(|r| r.covers(&pool)) {
            routes.push(pool);
        }
    }
    for r in &routes {
        route(&tun_name, &r.to_string())?;
    }
    let backend_note = format!("{}, {workers} worker(s)", wan.note());
    tracing::info!(
        "gateway up: listen {} backend {backend_note}, tun {tun_name} (mtu {}), {} SAs",
        cfg.listen,
        cfg.tun_mtu,
        cfg.sas.len()
    );

    let stop = Arc::new(AtomicBool::new(false));
    // A single worker owns every SA: its mailbox needs no parcels.
    let parcels = if workers > 1 { PARCELS } else { 1 };
    let handoff = Arc::new(Handoff::new(workers, parcels).map_err(|e| format!("handoff: {e}"))?);
    let (ev_tx, ev_rx) = bounded::<WorkerEvent>(4096);
    // IKE and keepalives out of the WAN port (RFC 3948 §2.2, §2.3), sent by worker 0.
    let (transmit_tx, transmit_rx) = bounded::<ControlDatagram>(256);
    // SA commands are broadcast: one channel per worker (the senders are the control
    // plane's handles).
    let mut commands = Vec::with_capacity(workers);
    let mut api_workers = Vec::with_capacity(workers);
    let mut parts = Vec::with_capacity(workers);
    for (i, tun) in tuns.into_iter().enumerate() {
        let mut pipeline = Pipeline::new(Config {
            port: PortMatch::Destination(cfg.listen.port()),
            mtu: cfg.wan_mtu,
            ..Config::default()
        });
        for sa in &cfg.sas {
            pipeline
                .sad
                .apply(SaCommand::Install(Box::new(sa.clone())))
                .map_err(|e| format!("sa spi {:#x}: {e}", sa.spi))?;
        }
        let stats = Arc::new(Mutex::new(WorkerStats::default()));
        let (cmd_tx, cmd_rx) = bounded::<SaCommand>(1024);
        let (query_tx, query_rx) = bounded::<Query>(16);
        commands.push(cmd_tx);
        api_workers.push((Arc::clone(&stats), query_tx));
        let links = Links {
            commands: cmd_rx,
            queries: query_rx,
            events: ev_tx.clone(),
            stats,
            stop: Arc::clone(&stop),
            transmit: if i == 0 {
                transmit_rx.clone()
            } else {
                crossbeam_channel::never()
            },
            handoff: Arc::clone(&handoff),
            worker: i,
        };
        parts.push((tun, pipeline, links));
    }
    drop(ev_tx);
    let ike = if cfg.conns.is_empty() {
        None
    } else {
        let (listen, handoff) = (cfg.listen, Arc::clone(&handoff));
        let (ike, ike_rx) = IkeService::start(
            cfg.conns.clone(),
            cfg.listen.ip(),
            &tun_name,
            routes,
            commands.clone(),
            Box::new(move |t| send_4500(&transmit_tx, &handoff, listen, t)),
            Arc::clone(&stop),
        )?;
        tracing::info!(
            "IKEv2 on {}:500 and :{}, {} connections",
            cfg.listen.ip(),
            cfg.listen.port(),
            cfg.conns.len()
        );
        Some((ike, ike_rx))
    };
    let (ike_req_tx, ike_req_rx) = bounded::<IkeRequest>(64);
    let api = Arc::new(ApiState {
        backend: backend_note.clone(),
        config: opts.config_path.clone(),
        started: Instant::now(),
        workers: api_workers,
        xdp: Mutex::new(None),
        ike: ike.as_ref().map(|_| ike_req_tx),
    });
    let listener = crate::api::bind(&opts.socket)
        .map_err(|e| format!("control socket {}: {e}", opts.socket.display()))?;
    let api_thread = {
        let (api, stop) = (Arc::clone(&api), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("xdpsec-api".into())
            .spawn(move || crate::api::serve(listener, api, stop))
            .map_err(|e| format!("api thread: {e}"))?
    };
    let metrics_thread = match cfg.metrics {
        None => None,
        Some(addr) => {
            let listener =
                crate::metrics::bind(addr).map_err(|e| format!("metrics {addr}: {e}"))?;
            tracing::info!("Prometheus metrics at http://{addr}/metrics");
            let (api, stop) = (Arc::clone(&api), Arc::clone(&stop));
            let ike_api = Arc::clone(&api);
            Some(
                std::thread::Builder::new()
                    .name("xdpsec-metrics".into())
                    .spawn(move || {
                        crate::metrics::serve(listener, api, stop, move || {
                            crate::metrics::ike_series(&ike_api)
                        })
                    })
                    .map_err(|e| format!("metrics thread: {e}"))?,
            )
        }
    };
    let mut handles = Vec::with_capacity(workers);
    let steering = match wan {
        Wan::Socket(ports, _) => {
            for (i, (port, (tun, pipeline, links))) in ports.into_iter().zip(parts).enumerate() {
                handles.push(spawn_worker(i, Worker::new(port, tun, pipeline, links))?);
            }
            None
        }
        Wan::AfXdp(sets, steering, _) => {
            for (i, (set, (tun, pipeline, links))) in sets.into_iter().zip(parts).enumerate() {
                handles.push(spawn_worker(i, Worker::new(set, tun, pipeline, links))?);
            }
            Some(steering)
        }
    };

    let (mut ike, ike_rx) = match ike {
        Some((i, rx)) => (Some(i), rx),
        None => (None, never()),
    };
    let mut last_refresh = Instant::now();
    while !STOP.load(Ordering::Relaxed) && handles.iter().all(|h| !h.is_finished()) {
        let deadline = ike
            .as_ref()
            .and_then(IkeService::next_deadline)
            .unwrap_or_else(|| Instant::now() + REFRESH)
            .min(last_refresh + REFRESH);
        match wait(&ev_rx, &ike_rx, &ike_req_rx, deadline) {
            Input::Worker(ev) => on_worker_event(ev, ike.as_mut()),
            Input::Ike(d) => {
                if let Some(i) = ike.as_mut() {
                    i.on_datagram(Instant::now(), &d);
                }
            }
            Input::Request(r) => {
                if let Some(i) = ike.as_mut() {
                    i.on_request(Instant::now(), r);
                }
            }
            Input::Timeout => {}
            Input::Closed => break,
        }
        if let Some(i) = ike.as_mut() {
            i.on_timeout(Instant::now());
        }
        if last_refresh.elapsed() >= REFRESH {
            last_refresh = Instant::now();
            if let Some(s) = &steering {
                api.set_xdp(s.counters().ok().map(|c| xdp_map(&c)));
            }
            if let Some(path) = &opts.stats_file {
                write_json(path, &api.report()).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut result = Ok(());
    for h in handles {
        let r = h.join().map_err(|_| "worker thread panicked".to_string())?;
        result = result.and(r);
    }
    let _ = api_thread.join();
    if let Some(t) = metrics_thread {
        let _ = t.join();
    }
    let _ = std::fs::remove_file(&opts.socket);
    if let Some(path) = &opts.stats_file {
        write_json(path, &api.report()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    result.map_err(|e| format!("worker: {e}"))?;
    if let Some(s) = steering {
        s.detach().map_err(|e| format!("detach XDP: {e}"))?;
        tracing::info!(
            "XDP program detached from {}",
            cfg.wan.as_deref().unwrap_or("?")
        );
    }
    tracing::info!("stopped; TUN {} removed", cfg.tun);
    Ok(())
}

/// The prefix a responder pool `(first host, hosts)` was written as (`10.99.0.0/24` → first
/// 10.99.0.1, 254 hosts; see `config::conn`).
fn pool_prefix((first, hosts): (std::net::IpAddr, u32)) -> Option<IpPrefix> {
    let std::net::IpAddr::V4(first) = first else {
        return None;
    };
    let size = hosts.checked_add(2).filter(|n| n.is_power_of_two())?;
    let len = 32 - size.trailing_zeros() as u8;
    IpPrefix::new(std::net::Ipv4Addr::from(u32::from(first) - 1).into(), len).ok()
}

/// How often the stats file and the XDP counters are refreshed.
const REFRESH: Duration = Duration::from_millis(200);

/// What woke the main loop.
enum Input {
    Worker(WorkerEvent),
    Ike(Received),
    Request(IkeRequest),
    Timeout,
    Closed,
}

/// Waits for a worker event, an IKE message from UDP 500, or an API request, until `deadline`.
fn wait(
    events: &Receiver<WorkerEvent>,
    ike: &Receiver<Received>,
    requests: &Receiver<IkeRequest>,
    deadline: Instant,
) -> Input {
    let mut sel = Select::new();
    let (e, i, r) = (sel.recv(events), sel.recv(ike), sel.recv(requests));
    let Ok(op) = sel.select_deadline(deadline) else {
        return Input::Timeout;
    };
    let closed = |_| Input::Closed;
    match op.index() {
        x if x == e => op.recv(events).map_or_else(closed, Input::Worker),
        x if x == i => op.recv(ike).map_or(Input::Timeout, Input::Ike),
        x if x == r => op.recv(requests).map_or(Input::Timeout, Input::Request),
        _ => Input::Timeout,
    }
}

fn on_worker_event(ev: WorkerEvent, ike: Option<&mut IkeService>) {
    match ev {
        WorkerEvent::Pipeline(Event::PeerMoved { peer, endpoint }) => {
            tracing::info!(
                "peer {} now at {endpoint} (learned from an authenticated packet)",
                peer.0
            );
        }
        WorkerEvent::Pipeline(Event::Lifetime {
            spi,
            direction,
            kind,
        }) => {
            tracing::info!("SA {spi:#010x} ({direction:?}) reached its {kind:?} lifetime");
        }
        WorkerEvent::Ike(d) => match ike {
            Some(i) => i.on_datagram(
                Instant::now(),
                &Received {
                    src: d.src,
                    dst: d.dst,
                    bytes: d.message,
                },
            ),
            None => tracing::debug!("IKE message from {} ignored: no [[conn]] configured", d.src),
        },
        WorkerEvent::CommandFailed(e) => tracing::warn!("SA command failed: {e}"),
    }
}

/// Hands an IKE message (the worker adds the non-ESP marker, RFC 3948 §2.2) or a
/// NAT-keepalive (§2.3) to worker 0, which sends it out of the NAT-T port, and wakes it.
fn send_4500(
    tx: &Sender<ControlDatagram>,
    handoff: &Handoff,
    listen: SocketAddr,
    t: Transmit,
) -> bool {
    let d = match t.kind {
        TransmitKind::Ike => ControlDatagram::ike(listen, t.dst, t.bytes),
        TransmitKind::Keepalive => ControlDatagram::keepalive(listen, t.dst),
    };
    let queued = tx.try_send(d).is_ok();
    if let Some(m) = handoff.mailbox(0) {
        m.notify();
    }
    queued
}

/// The WAN side chosen at start-up, one port per worker, with a description for
/// `xdpsec status`.
enum Wan {
    Socket(Vec<UdpPort>, String),
    AfXdp(Vec<PortSet<AfxdpWan>>, NattSteering, String),
}

impl Wan {
    fn note(&self) -> &str {
        match self {
            Wan::Socket(_, n) | Wan::AfXdp(_, _, n) => n,
        }
    }

    fn workers(&self) -> usize {
        match self {
            Wan::Socket(p, _) => p.len(),
            Wan::AfXdp(p, _, _) => p.len(),
        }
    }
}

/// The socket backend: one socket per worker (`SO_REUSEPORT` when more than one), one worker
/// per core unless configured.
fn bind_sockets(cfg: &Gateway, cores: usize, note: String) -> Result<Wan, String> {
    let n = match cfg.workers {
        Workers::Auto => cores,
        Workers::Count(n) => n,
    };
    let bind = |_| {
        if n == 1 {
            UdpPort::bind(cfg.listen)
        } else {
            UdpPort::bind_shared(cfg.listen)
        }
        .map_err(|e| format!("bind {}: {e}", cfg.listen))
    };
    Ok(Wan::Socket(
        (0..n).map(bind).collect::<Result<_, _>>()?,
        note,
    ))
}

/// Attach the XDP program to the WAN interface and open one AF_XDP socket per RX queue, each
/// registered in the program's XSKMAP. Queue `q` is served by worker `q % workers` (one
/// worker per queue unless there are more queues than workers); SAs are owned by one worker
/// each and frames that arrive at another worker are handed off (dataplane `handoff`). The
/// steering program is detached when the returned handle is dropped.
fn start_afxdp(cfg: &Gateway, cores: usize) -> Result<Wan, String> {
    let iface = cfg.wan.as_deref().ok_or("gateway.wan is not set")?;
    let mut steering = NattSteering::attach(iface, cfg.listen.port(), ModePreference::Auto)
        .map_err(|e| e.to_string())?;
    let mac = interface_mac(iface)?;
    let queues = rx_queues(iface);
    let workers = match cfg.workers {
        Workers::Auto => (queues as usize).min(cores),
        Workers::Count(n) => n.min(queues as usize),
    }
    .max(1);
    let xsk = XskConfig::default();
    let learned = LearnedMac::new();
    let mut ports: Vec<Vec<AfxdpWan>> = (0..workers).map(|_| Vec::new()).collect();
    let mut bind = None;
    for q in 0..queues {
        let port = XskPort::open(iface, q, &xsk)
            .map_err(|e| format!("AF_XDP socket on {iface} queue {q}: {e}"))?;
        steering
            .register_socket(q, port.fd())
            .map_err(|e| e.to_string())?;
        bind = Some(port.bind_mode());
        if let Some(w) = ports.get_mut(q as usize % workers) {
            w.push(AfxdpWan::new(port, mac, NextHop::Learn).with_learned(learned.clone()));
        }
    }
    let sets = ports
        .into_iter()
        .map(|p| PortSet::new(p).map_err(|e| format!("epoll: {e}")))
        .collect::<Result<_, _>>()?;
    let note = format!(
        "afxdp (XDP {} mode on {iface}, {queues} queues, {:?})",
        steering.mode(),
        bind.unwrap_or(BindMode::Copy)
    );
    Ok(Wan::AfXdp(sets, steering, note))
}

/// The interface's MAC address (sysfs; `ip netns exec` remounts /sys for the namespace).
fn interface_mac(iface: &str) -> Result<[u8; 6], String> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .map_err(|e| format!("{iface}: {e}"))?;
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() != 6 {
        return Err(format!(
            "{iface}: unexpected MAC address \"{}\"",
            text.trim()
        ));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| format!("{iface}: bad MAC address"))?;
    }
    Ok(mac)
}

/// Number of RX queues of `iface` (1 if sysfs does not say).
fn rx_queues(iface: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

/// XDP counters by name, for the stats report.
fn xdp_map(c: &XdpCounters) -> std::collections::BTreeMap<&'static str, u64> {
    [
        ("seen", c.seen),
        ("redirected", c.redirected),
        ("passed_not_ip", c.passed_not_ip),
        ("passed_not_udp", c.passed_not_udp),
        ("passed_other_port", c.passed_other_port),
        ("passed_fragment", c.passed_fragment),
        ("malformed", c.malformed),
    ]
    .into_iter()
    .collect()
}

/// Run worker `i` on its own thread, pinned to a core: the last core first, then downwards,
/// round-robin when there are more workers than cores (core 0, where the control plane and
/// the kernel run, comes last).
fn spawn_worker<W: WanPort + Send + 'static>(
    i: usize,
    worker: Worker<W>,
) -> Result<std::thread::JoinHandle<io::Result<()>>, String> {
    let core = core_affinity::get_core_ids()
        .filter(|c| !c.is_empty())
        .and_then(|c| c.get(c.len() - 1 - i % c.len()).copied());
    std::thread::Builder::new()
        .name(format!("xdpsec-worker-{i}"))
        .spawn(move || {
            if let Some(core) = core {
                core_affinity::set_for_current(core);
            }
            worker.run()
        })
        .map_err(|e| format!("worker thread: {e}"))
}

/// Route `prefix` into the TUN (iproute2; replaced if present, removed with the TUN).
fn route(dev: &str, prefix: &str) -> Result<(), String> {
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    let out = Command::new("ip")
        .args([family, "route", "replace", prefix, "dev", dev])
        .output()
        .map_err(|e| format!("ip route: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip route replace {prefix} dev {dev}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(value).map_err(io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_map_back_to_their_prefix() {
        let p = |a: &str, n| pool_prefix((a.parse().unwrap(), n)).map(|p| p.to_string());
        assert_eq!(p("10.99.0.1", 254).as_deref(), Some("10.99.0.0/24"));
        assert_eq!(p("10.98.0.1", 2).as_deref(), Some("10.98.0.0/30"));
        assert_eq!(p("10.97.0.1", 100), None);
        assert_eq!(p("2001:db8::1", 254), None);
    }
}
