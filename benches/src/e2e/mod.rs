//! Scenario `e2e`: ESP-in-UDP from a generator in a client namespace through `xdpsec run`
//! (AF_XDP and socket backends) to a UDP sink behind the gateway's TUN, at fixed offered
//! loads and at the maximum; delivered rate, loss and one-way latency per point. Optionally
//! the same UDP load through a strongSwan ↔ strongSwan tunnel (userspace ESP) for comparison.
//! Needs root.

pub mod gateway;
pub mod strongswan;
pub mod topo;
mod traffic;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::harness::{Plan, Progress, median};
use crate::report::{Report, Table, Target, f2};
use crate::svg::{Chart, Series};
use gateway::Gateway;
use traffic::{GenKind, Tally};

/// Set by SIGINT: stop sending, tear the topology down, exit with an error.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From now on SIGINT sets [`INTERRUPTED`] instead of killing the process, so that the
/// scenario can remove what it built.
pub fn catch_sigint() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
}

/// Options of the scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Gateway backends to measure ("afxdp", "socket").
    #[arg(long, value_delimiter = ',', default_value = "afxdp,socket")]
    pub backends: Vec<String>,
    /// Offered loads, in % of the backend's measured maximum delivered rate.
    #[arg(long, value_delimiter = ',', default_value = "25,50,100")]
    pub loads: Vec<u32>,
    /// Inner packet size in bytes (IPv4 + UDP + payload; ≥ 52).
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    /// How the generator sends.
    #[arg(long, value_enum, default_value_t = GenKind::Afxdp)]
    pub generator: GenKind,
    /// The `xdpsec` binary (default: next to this one, i.e. target/release/xdpsec).
    #[arg(long)]
    pub xdpsec: Option<PathBuf>,
    /// Skip the strongSwan ↔ strongSwan comparison row.
    #[arg(long)]
    pub no_strongswan: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backends: vec!["afxdp".into(), "socket".into()],
            loads: vec![25, 50, 100],
            size: 512,
            generator: GenKind::Afxdp,
            xdpsec: None,
            no_strongswan: false,
        }
    }
}

/// One measured point.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// "afxdp", "socket", "strongswan".
    pub system: String,
    /// "max" or "25 %" …
    pub load: String,
    /// Packets/s the generator got out.
    pub offered_pps: f64,
    /// Packets/s that reached the sink.
    pub delivered_pps: f64,
    /// Inner Gbit/s delivered.
    pub gbps: f64,
    /// 1 − delivered / offered, in %.
    pub loss_pct: f64,
    /// One-way latency percentiles, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Gateway counters over the point: WAN frames received, decapsulated, TUN writes, TUN
    /// refusals, pipeline drops.
    pub gateway: [u64; 5],
}

/// What e2e needs from the machine: root (namespaces, XDP, TUN) and the gateway binary.
/// Returns the binary, or why the scenario cannot run here.
pub fn preflight(opts: &Options) -> Result<PathBuf, String> {
    find_gateway(opts.xdpsec.as_deref())
}

/// Root and the `xdpsec` binary (`path`, or next to this one): what running `xdpsec run` in
/// namespaces needs. Returns the binary, or why it cannot run here.
pub fn find_gateway(path: Option<&std::path::Path>) -> Result<PathBuf, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (network namespaces, XDP, TUN)".into());
    }
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("xdpsec"),
    };
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p xdpsec-control) or pass --xdpsec",
            path.display()
        ))
    }
}

/// Everything a point needs.
struct Rig<'a> {
    plan: Plan,
    opts: &'a Options,
    tally: Tally,
    base: Instant,
    gen_core: Option<core_affinity::CoreId>,
    generator: GenKind,
    next_id: u32,
    /// The generator's SA state, fresh for every gateway start.
    encap: xdpsec_dataplane::batch::Pipeline,
}

impl Rig<'_> {
    /// Send at `rate` (None: max) for one point and collect the sink's and gateway's view.
    fn point(
        &mut self,
        system: &str,
        load: &str,
        rate: Option<f64>,
        gw: Option<&Gateway>,
    ) -> Result<Point, String> {
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        self.next_id += 1;
        let id = self.next_id;
        let before = gw.map(Gateway::stats).transpose()?;
        let spec = traffic::Load {
            kind: self.generator,
            core: self.gen_core,
            size: self.opts.size,
            point: id,
            rate,
            wall: self.plan.point(),
            base: self.base,
        };
        let pipe = &mut self.encap;
        let sent = std::thread::scope(|s| {
            s.spawn(move || traffic::generate(pipe, &spec, &INTERRUPTED))
                .join()
                .map_err(|_| "generator panicked".to_string())?
        })?;
        // Let the last packets drain through the gateway and the sink (stats every 200 ms).
        std::thread::sleep(Duration::from_millis(400));
        let after = gw.map(Gateway::stats).transpose()?;
        let rx = self.tally.lock().map_err(|_| "sink poisoned")?.remove(&id);
        let secs = sent.elapsed.as_secs_f64().max(1e-9);
        let (packets, bytes, q) = match &rx {
            Some(r) => (
                r.packets,
                r.bytes,
                [0.5, 0.99, 0.999].map(|q| r.latency.value_at_quantile(q) as f64 / 1e3),
            ),
            None => (0, 0, [f64::NAN; 3]),
        };
        let gateway = match (before, after) {
            (Some(b), Some(a)) => {
                let (b, a) = (gateway::counters(&b), gateway::counters(&a));
                std::array::from_fn(|i| a[i].saturating_sub(b[i]))
            }
            _ => [0; 5],
        };
        Ok(Point {
            system: system.into(),
            load: load.into(),
            offered_pps: sent.packets as f64 / secs,
            delivered_pps: packets as f64 / secs,
            gbps: bytes as f64 * 8.0 / secs / 1e9,
            loss_pct: if sent.packets > 0 {
                100.0 * (1.0 - packets as f64 / sent.packets as f64).max(0.0)
            } else {
                f64::NAN
            },
            p50_us: q[0],
            p99_us: q[1],
            p999_us: q[2],
            gateway,
        })
    }
}

fn show(p: &Point) -> String {
    format!(
        "offered {:.0} kpps, delivered {:.0} kpps ({:.2} Gbit/s), loss {:.2} %, p50/p99/p99.9 {:.0}/{:.0}/{:.0} µs, gw {:?}",
        p.offered_pps / 1e3,
        p.delivered_pps / 1e3,
        p.gbps,
        p.loss_pct,
        p.p50_us,
        p.p99_us,
        p.p999_us,
        p.gateway
    )
}

/// Run the scenario.
pub fn run(plan: Plan, opts: &Options) -> Result<Report, String> {
    for b in &opts.backends {
        if b != "afxdp" && b != "socket" {
            return Err(format!("--backends: \"{b}\" (expected afxdp, socket)"));
        }
    }
    if opts.size < traffic::MIN_SIZE || opts.size > 1400 {
        return Err(format!(
            "--size {}: must be {}..=1400",
            opts.size,
            traffic::MIN_SIZE
        ));
    }
    let xdpsec = preflight(opts)?;
    catch_sigint();
    let dir = std::env::temp_dir().join(format!("xdpsec-bench-e2e-{}", std::process::id()));
    let topo = topo::Topology::up()?;
    let base = Instant::now();
    let tally: Tally = Arc::new(Mutex::new(Default::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let sink = {
        let (tally, stop) = (Arc::clone(&tally), Arc::clone(&stop));
        std::thread::spawn(move || traffic::sink(tally, base, stop, ready_tx))
    };
    ready_rx
        .recv()
        .map_err(|_| "sink thread died".to_string())??;
    // The gateway pins its worker to the last core; the generator takes the first.
    let gen_core = core_affinity::get_core_ids().and_then(|c| c.first().copied());
    let mut rig = Rig {
        plan,
        opts,
        tally,
        base,
        gen_core,
        generator: opts.generator,
        next_id: 0,
        encap: traffic::encap_pipeline()?,
    };
    let result = measure_all(&mut rig, &xdpsec, &dir);
    stop.store(true, Ordering::Relaxed);
    let _ = sink.join();
    drop(topo);
    let _ = std::fs::remove_dir_all(&dir);
    let (points, strongswan_missing) = result?;
    Ok(report(plan, opts, points, strongswan_missing))
}

/// Every point, and why the strongSwan row is missing if it is.
fn measure_all(
    rig: &mut Rig<'_>,
    xdpsec: &std::path::Path,
    dir: &std::path::Path,
) -> Result<(Vec<Point>, Option<String>), String> {
    let opts = rig.opts;
    let plan = rig.plan;
    // Ok(()) while the strongSwan comparison runs; Err(reason) once it cannot.
    let mut strongswan: Option<Result<(), String>> = if opts.no_strongswan {
        None
    } else {
        Some(strongswan::unavailable().map_or(Ok(()), Err))
    };
    let systems = opts.backends.len() + usize::from(strongswan.is_some());
    let total = plan.rounds * systems * (1 + opts.loads.len());
    let mut progress = Progress::new("e2e", total);
    let mut points = Vec::new();
    for _ in 0..plan.rounds {
        for backend in &opts.backends {
            let gw = Gateway::start(xdpsec, backend, &gateway::config(backend), dir)?;
            rig.encap = traffic::encap_pipeline()?;
            let note = gw.log_text();
            if backend == "afxdp" && !note.contains("backend afxdp") {
                return Err(format!("the gateway did not come up on AF_XDP: {note}"));
            }
            // Warm the path up (and check that it works at all) before measuring.
            let warm = rig.point(backend, "warm-up", Some(10_000.0), Some(&gw))?;
            if warm.delivered_pps <= 0.0 {
                return Err(format!(
                    "nothing reached the sink through the {backend} gateway (gateway counters {:?}); log: {}",
                    warm.gateway,
                    gw.log_text()
                ));
            }
            progress.start(&format!("{backend} max"));
            let max = rig.point(backend, "max", None, Some(&gw))?;
            progress.end(&show(&max));
            plan.pause();
            let capacity = max.delivered_pps;
            points.push(max);
            for &load in &opts.loads {
                progress.start(&format!("{backend} {load} %"));
                let rate = capacity * f64::from(load) / 100.0;
                let p = rig.point(backend, &format!("{load} %"), Some(rate), Some(&gw))?;
                progress.end(&show(&p));
                points.push(p);
                plan.pause();
            }
        }
        if let Some(ss) = strongswan.as_mut() {
            measure_strongswan(rig, dir, &mut progress, &mut points, ss)?;
        }
    }
    progress.finish();
    Ok((points, strongswan.and_then(Result::err)))
}

/// The strongSwan ↔ strongSwan row of one round: plain UDP from the client through a
/// libipsec tunnel. A tunnel that cannot be built here becomes the reason in the report.
fn measure_strongswan(
    rig: &mut Rig<'_>,
    dir: &std::path::Path,
    progress: &mut Progress,
    points: &mut Vec<Point>,
    status: &mut Result<(), String>,
) -> Result<(), String> {
    if status.is_err() {
        return Ok(());
    }
    let plan = rig.plan;
    let tunnel = match strongswan::Tunnel::up(dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("e2e: strongSwan comparison not possible: {e}");
            *status = Err(e);
            return Ok(());
        }
    };
    let kind = std::mem::replace(&mut rig.generator, GenKind::Plain);
    let result = (|| {
        let warm = rig.point("strongswan", "warm-up", Some(2_000.0), None)?;
        if warm.delivered_pps <= 0.0 {
            return Err("nothing reached the sink through the strongSwan tunnel".to_string());
        }
        progress.start("strongswan max");
        let max = rig.point("strongswan", "max", None, None)?;
        progress.end(&show(&max));
        plan.pause();
        let capacity = max.delivered_pps;
        points.push(max);
        for &load in &rig.opts.loads {
            progress.start(&format!("strongswan {load} %"));
            let rate = capacity * f64::from(load) / 100.0;
            let p = rig.point("strongswan", &format!("{load} %"), Some(rate), None)?;
            progress.end(&show(&p));
            points.push(p);
            plan.pause();
        }
        Ok(())
    })();
    rig.generator = kind;
    drop(tunnel);
    if let Err(e) = result {
        eprintln!("e2e: strongSwan comparison failed: {e}");
        *status = Err(e);
    }
    Ok(())
}

/// The report of an e2e run that could not happen here, saying why.
pub fn skipped(plan: Plan, why: &str) -> Report {
    let mut r = Report::new("e2e", "not run here", plan);
    r.notes.push(format!("not run: {why}"));
    r.targets.push(Target {
        name: "AF_XDP gateway vs socket gateway, max delivered".into(),
        goal: "≥ 2×".into(),
        measured: format!("not run: {why}"),
        pass: None,
    });
    r.results = serde_json::json!({ "skipped": why });
    r
}

fn report(plan: Plan, opts: &Options, points: Vec<Point>, ss_missing: Option<String>) -> Report {
    let mut r = Report::new(
        "e2e",
        "ESP-in-UDP through `xdpsec run` in namespaces: delivered rate, loss, latency",
        plan,
    );
    let mut loads: Vec<String> = vec!["max".into()];
    loads.extend(opts.loads.iter().map(|l| format!("{l} %")));
    let mut systems: Vec<String> = opts.backends.clone();
    for p in &points {
        if !systems.contains(&p.system) {
            systems.push(p.system.clone());
        }
    }
    let med = |sys: &str, load: &str, f: fn(&Point) -> f64| -> Option<f64> {
        let v: Vec<f64> = points
            .iter()
            .filter(|p| p.system == sys && p.load == load)
            .map(f)
            .filter(|x| !x.is_nan())
            .collect();
        (!v.is_empty()).then(|| median(v))
    };
    let mut t = Table::new(
        &format!("{} B inner packets (medians over rounds)", opts.size),
        &[
            "system",
            "load",
            "offered kpps",
            "delivered kpps",
            "Gbit/s",
            "loss %",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
        ],
    );
    let o = |v: Option<f64>, f: fn(f64) -> String| v.map_or("–".into(), f);
    for sys in &systems {
        for load in &loads {
            if med(sys, load, |p| p.offered_pps).is_none() {
                continue;
            }
            t.row(vec![
                sys.clone(),
                load.clone(),
                o(med(sys, load, |p| p.offered_pps), |x| {
                    format!("{:.0}", x / 1e3)
                }),
                o(med(sys, load, |p| p.delivered_pps), |x| {
                    format!("{:.0}", x / 1e3)
                }),
                o(med(sys, load, |p| p.gbps), f2),
                o(med(sys, load, |p| p.loss_pct), f2),
                o(med(sys, load, |p| p.p50_us), |x| format!("{x:.0}")),
                o(med(sys, load, |p| p.p99_us), |x| format!("{x:.0}")),
                o(med(sys, load, |p| p.p999_us), |x| format!("{x:.0}")),
            ]);
        }
    }
    if let Some(why) = &ss_missing {
        let mut cells = vec!["strongswan".to_string(), "–".into()];
        cells.extend(std::iter::repeat_n("–".to_string(), 6));
        cells.push(format!("not measured: {why}"));
        t.row(cells);
    }
    r.tables.push(t);
    let xdp = med("afxdp", "max", |p| p.delivered_pps);
    let sock = med("socket", "max", |p| p.delivered_pps);
    if let (Some(a), Some(s)) = (xdp, sock) {
        r.targets.push(Target::at_least(
            "AF_XDP gateway vs socket gateway, max delivered",
            "≥ 2×",
            a / s.max(1e-9),
            2.0,
            "×",
        ));
    }
    r.charts.push(Chart {
        title: "Delivered packet rate".into(),
        y_label: "kpps".into(),
        categories: loads.clone(),
        series: systems
            .iter()
            .map(|s| Series {
                name: s.clone(),
                values: loads
                    .iter()
                    .map(|l| med(s, l, |p| p.delivered_pps).map(|x| x / 1e3))
                    .collect(),
            })
            .collect(),
        reference: None,
        log_y: false,
    });
    for (title, f) in [
        (
            "One-way latency p50 (log scale)",
            (|p: &Point| p.p50_us) as fn(&Point) -> f64,
        ),
        ("One-way latency p99 (log scale)", |p: &Point| p.p99_us),
    ] {
        r.charts.push(Chart {
            title: title.into(),
            y_label: "µs".into(),
            categories: loads.clone(),
            series: systems
                .iter()
                .map(|s| Series {
                    name: s.clone(),
                    values: loads.iter().map(|l| med(s, l, f)).collect(),
                })
                .collect(),
            reference: None,
            log_y: true,
        });
    }
    r.notes = vec![
        format!(
            "Topology (built by the bench, prefix xb-): client 192.0.2.1 —veth— 192.0.2.2 gateway (`xdpsec run`, static AES-128-GCM SA, TUN xbtun0) 10.9.0.1 —veth— 10.9.0.2 sink. The gateway's worker is pinned to the last core; the generator to the first."
        ),
        format!(
            "Generator: {}; inner IPv4/UDP packets of {} B carrying a sequence number and a send timestamp, encrypted with the dataplane's encap pipeline. \"max\" sends as fast as the generator can; the loads are % of that backend's measured maximum delivered rate, paced in bursts of 16.",
            match opts.generator {
                GenKind::Afxdp => "AF_XDP TX on the client's veth (copy mode: veth has no zero-copy), `io::afxdp`",
                GenKind::Socket => "a UDP socket with sendmmsg (`io::socket::UdpPort`)",
                GenKind::Plain => "plain UDP",
            },
            opts.size
        ),
        "Delivered = datagrams read by the sink (a UDP socket with a 64 MiB buffer, recvmmsg) in the sink namespace; loss = 1 − delivered/offered; latency = sink receive time − generator stamp (both threads of this process, CLOCK_MONOTONIC), so it includes the generator's and the sink's kernel paths. Gateway counters per point are in the JSON (`gateway`: rx, decap, tun writes, tun drops, pipeline drops).".into(),
        "Two vCPUs carry everything: generator, gateway worker, the kernel's veth/TUN/forwarding work and the sink. At \"max\" the bottleneck may be the generator or the kernel rather than the gateway: compare the offered column between backends.".into(),
    ];
    if !opts.no_strongswan && ss_missing.is_none() {
        r.notes.push("strongswan: strongSwan 5.9 ↔ strongSwan, IKEv2 PSK, AES-128-GCM, tunnel mode with a virtual IP from 10.99.0.0/24, userspace ESP (kernel-libipsec: this kernel has no ESP), NAT-T encapsulation (libipsec always uses UDP 4500); one charon per namespace. The generator sends the same stamped UDP payloads as plain datagrams (one send per packet) into the client's tunnel; \"max\" and the loads as above.".into());
    }
    r.results = serde_json::json!({
        "strongswan_missing": ss_missing,
        "size": opts.size,
        "generator": opts.generator,
        "points": points,
    });
    r
}
