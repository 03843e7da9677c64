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
use xdpsec_dataplane::io::socket::UdpPort;
use xdpsec_dataplane::io::tun::Tun;
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::wire::frame::PortMatch;
use xdpsec_dataplane::worker::{Links, Query, Worker, WorkerEvent, WorkerStats};

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
    let (backend_note, wan) = match cfg.backend {
        Backend::Socket => ("socket (configured)".to_string(), UdpPort::bind(cfg.listen)),
        Backend::Auto => (
            "socket (AF_XDP backend not built into this version)".to_string(),
            UdpPort::bind(cfg.listen),
        ),
        Backend::AfXdp => {
            return Err(
                "backend = \"afxdp\": not built into this version; use \"auto\" or \"socket\""
                    .into(),
            );
        }
    };
    let wan = wan.map_err(|e| format!("bind {}: {e}", cfg.listen))?;
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
    let links = Links {
        commands: cmd_rx,
        queries: query_rx,
        events: ev_tx,
        stats: Arc::clone(&stats),
        stop: Arc::clone(&stop),
    };
    let api = Arc::new(ApiState {
        backend: backend_note.clone(),
        config: opts.config_path.clone(),
        started: Instant::now(),
        workers: vec![(Arc::clone(&stats), query_tx)],
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
    let worker = Worker::new(wan, tun, pipeline, links);
    let core = core_affinity::get_core_ids().and_then(|c| c.last().copied());
    let handle = std::thread::Builder::new()
        .name("xdpsec-worker-0".into())
        .spawn(move || {
            if let Some(core) = core {
                core_affinity::set_for_current(core);
            }
            worker.run()
        })
        .map_err(|e| format!("worker thread: {e}"))?;

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
    eprintln!("xdpsec: stopped; TUN {} removed", cfg.tun);
    Ok(())
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
