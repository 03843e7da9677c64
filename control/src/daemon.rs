//! `xdpsec run`: the gateway runtime with static SAs — TUN, routes, WAN backend, a pinned
//! worker, signal handling, periodic stats snapshots, clean shutdown.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, bounded};
use xdpsec_dataplane::batch::{Config, Event, Pipeline};
use xdpsec_dataplane::io::WanPort;
use xdpsec_dataplane::io::afxdp::{AfxdpWan, BindMode, NextHop, XskConfig, XskPort};
use xdpsec_dataplane::io::port_set::PortSet;
use xdpsec_dataplane::io::socket::UdpPort;
use xdpsec_dataplane::io::tun::Tun;
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::wire::frame::PortMatch;
use xdpsec_dataplane::worker::{ControlDatagram, Links, Query, Worker, WorkerEvent, WorkerStats};
use xdpsec_ebpf::{ModePreference, NattSteering, XdpCounters};

use crate::api::ApiState;
use crate::config::gateway::{Backend, Gateway};

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
    // IPv6 on the TUN only when IPv6 is routed through the tunnel.
    let ipv6 = cfg.routes.iter().any(|r| r.addr().is_ipv6());
    let tun = Tun::open(&cfg.tun, cfg.tun_mtu, ipv6)
        .map_err(|e| format!("tun {}: {e} (needs root / CAP_NET_ADMIN)", cfg.tun))?;
    for r in &cfg.routes {
        route(tun.name(), &r.to_string())?;
    }

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
    let wan = match cfg.backend {
        Backend::Socket => Wan::Socket(bind_socket(cfg)?, "socket (configured)".into()),
        Backend::AfXdp => start_afxdp(cfg)?,
        Backend::Auto => match start_afxdp(cfg) {
            Ok(w) => w,
            Err(e) => Wan::Socket(
                bind_socket(cfg)?,
                format!("socket (AF_XDP unavailable: {e})"),
            ),
        },
    };
    let backend_note = wan.note().to_string();
    eprintln!(
        "xdpsec: gateway up: listen {} backend {backend_note}, tun {} (mtu {}), {} SAs",
        cfg.listen,
        tun.name(),
        cfg.tun_mtu,
        cfg.sas.len()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(WorkerStats::default()));
    let (_cmd_tx, cmd_rx) = bounded::<SaCommand>(1024);
    let (query_tx, query_rx) = bounded::<Query>(16);
    let (ev_tx, ev_rx) = bounded::<WorkerEvent>(4096);
    // IKE and keepalives out of the WAN port (RFC 3948 §2.2, §2.3), sent by worker 0.
    let (_transmit_tx, transmit_rx) = bounded::<ControlDatagram>(256);
    let links = Links {
        commands: cmd_rx,
        queries: query_rx,
        events: ev_tx,
        stats: Arc::clone(&stats),
        stop: Arc::clone(&stop),
        transmit: transmit_rx,
    };
    let api = Arc::new(ApiState {
        backend: backend_note.clone(),
        config: opts.config_path.clone(),
        started: Instant::now(),
        workers: vec![(Arc::clone(&stats), query_tx)],
        xdp: Mutex::new(None),
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
    let (handle, steering) = match wan {
        Wan::Socket(port, _) => (
            spawn_worker(Worker::new(*port, tun, pipeline, links))?,
            None,
        ),
        Wan::AfXdp(ports, steering, _) => (
            spawn_worker(Worker::new(ports, tun, pipeline, links))?,
            Some(steering),
        ),
    };

    while !STOP.load(Ordering::Relaxed) && !handle.is_finished() {
        match ev_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(WorkerEvent::Pipeline(Event::PeerMoved { peer, endpoint })) => {
                eprintln!(
                    "xdpsec: peer {} now at {endpoint} (learned from an authenticated packet)",
                    peer.0
                );
            }
            Ok(WorkerEvent::Pipeline(Event::Lifetime {
                spi,
                direction,
                kind,
            })) => {
                eprintln!("xdpsec: SA {spi:#010x} ({direction:?}) reached its {kind:?} lifetime");
            }
            Ok(WorkerEvent::Ike(d)) => {
                eprintln!(
                    "xdpsec: IKE message from {} ignored: static SAs only in this version",
                    d.src
                );
            }
            Ok(WorkerEvent::CommandFailed(e)) => eprintln!("xdpsec: SA command failed: {e}"),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(s) = &steering {
            api.set_xdp(s.counters().ok().map(|c| xdp_map(&c)));
        }
        if let Some(path) = &opts.stats_file {
            write_json(path, &api.report()).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let result = handle
        .join()
        .map_err(|_| "worker thread panicked".to_string())?;
    let _ = api_thread.join();
    let _ = std::fs::remove_file(&opts.socket);
    if let Some(path) = &opts.stats_file {
        write_json(path, &api.report()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    result.map_err(|e| format!("worker: {e}"))?;
    if let Some(s) = steering {
        s.detach().map_err(|e| format!("detach XDP: {e}"))?;
        eprintln!(
            "xdpsec: XDP program detached from {}",
            cfg.wan.as_deref().unwrap_or("?")
        );
    }
    eprintln!("xdpsec: stopped; TUN {} removed", cfg.tun);
    Ok(())
}

/// The WAN side chosen at start-up, with a description for `xdpsec status`.
enum Wan {
    Socket(Box<UdpPort>, String),
    AfXdp(PortSet<AfxdpWan>, NattSteering, String),
}

impl Wan {
    fn note(&self) -> &str {
        match self {
            Wan::Socket(_, n) | Wan::AfXdp(_, _, n) => n,
        }
    }
}

fn bind_socket(cfg: &Gateway) -> Result<Box<UdpPort>, String> {
    UdpPort::bind(cfg.listen)
        .map(Box::new)
        .map_err(|e| format!("bind {}: {e}", cfg.listen))
}

/// Attach the XDP program to the WAN interface and open one AF_XDP socket per RX queue, each
/// registered in the program's XSKMAP. All queues are served by one worker (exact replay
/// windows); the steering program is detached when the returned handle is dropped.
fn start_afxdp(cfg: &Gateway) -> Result<Wan, String> {
    let iface = cfg.wan.as_deref().ok_or("gateway.wan is not set")?;
    let mut steering = NattSteering::attach(iface, cfg.listen.port(), ModePreference::Auto)
        .map_err(|e| e.to_string())?;
    let mac = interface_mac(iface)?;
    let queues = rx_queues(iface);
    let xsk = XskConfig::default();
    let mut ports = Vec::with_capacity(queues as usize);
    let mut bind = None;
    for q in 0..queues {
        let port = XskPort::open(iface, q, &xsk)
            .map_err(|e| format!("AF_XDP socket on {iface} queue {q}: {e}"))?;
        steering
            .register_socket(q, port.fd())
            .map_err(|e| e.to_string())?;
        bind = Some(port.bind_mode());
        ports.push(AfxdpWan::new(port, mac, NextHop::Learn));
    }
    let set = PortSet::new(ports).map_err(|e| format!("epoll: {e}"))?;
    let note = format!(
        "afxdp (XDP {} mode on {iface}, {queues} queues, {:?})",
        steering.mode(),
        bind.unwrap_or(BindMode::Copy)
    );
    Ok(Wan::AfXdp(set, steering, note))
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

/// Run `worker` on its own thread, pinned to the last core (the first is left to the
/// control plane and the kernel).
fn spawn_worker<W: WanPort + Send + 'static>(
    worker: Worker<W>,
) -> Result<std::thread::JoinHandle<io::Result<()>>, String> {
    let core = core_affinity::get_core_ids().and_then(|c| c.last().copied());
    std::thread::Builder::new()
        .name("xdpsec-worker-0".into())
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
