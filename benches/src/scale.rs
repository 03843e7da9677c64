//! Scenario `scale`: decap throughput with 1 … 1M inbound SAs installed (packets spread over
//! every SPI uniformly at random, the SPI sequence generated before the point), the SA
//! install rate through a crossbeam channel into a worker-like loop, and heap bytes per SA.

use std::time::{Duration, Instant};

use serde::Serialize;
use xdpsec_dataplane::batch::{Config, Pipeline};
use xdpsec_dataplane::esp::InboundSa;
use xdpsec_dataplane::sa::Direction;
use xdpsec_dataplane::sad::SaCommand;

use crate::alloc::Counting;
use crate::fixture::{EspSource, Mix, Rng, gateway_sa, spi};
use crate::harness::{self, Plan, Progress, median};
use crate::report::{Report, Table, f2, pct};
use crate::svg::{Chart, Series};
use crate::workloads::Decap;

/// Options of the scenario.
#[derive(Debug, Clone)]
pub struct Args {
    /// Numbers of inbound SAs.
    pub sas: Vec<u32>,
    /// Sizes to measure decap at.
    pub mixes: Vec<Mix>,
}

/// Capacity of the command channel (the daemon's is 1024 too).
const CHANNEL: usize = 1024;

/// Install rates are reported from this many SAs on (a handful of installs is noise).
const MIN_FOR_RATE: u32 = 1000;

/// Results for one SA count.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Inbound SAs installed.
    pub sas: u32,
    /// Installs per second through the channel into the worker loop.
    pub installs_per_s: f64,
    /// Heap bytes per SA (growth of live heap bytes / SAs), SA tables included.
    pub bytes_per_sa: f64,
    /// Decap per size: (size label, median Mpps, median Gbit/s, every round's Mpps).
    pub decap: Vec<DecapPoint>,
}

/// Decap at one size.
#[derive(Debug, Clone, Serialize)]
pub struct DecapPoint {
    /// `1420 B`, …
    pub size: String,
    /// Median Mpps.
    pub mpps: f64,
    /// Median Gbit/s.
    pub gbps: f64,
    /// Every round's Mpps.
    pub rounds: Vec<f64>,
}

/// Install `n` inbound SAs into a fresh pipeline the way a worker receives them: a control
/// thread sends `SaCommand::Install` over a bounded crossbeam channel, the worker thread
/// applies them. Returns the pipeline, the elapsed time, and the live-heap growth.
fn install(n: u32, alloc: &Counting) -> Result<(Pipeline, Duration, u64), String> {
    let pipe = Pipeline::new(Config::default());
    let cores = harness::cores(2);
    let (worker_core, control_core) = match cores.as_slice() {
        [a, b, ..] => (*a, *b),
        [a] => (*a, *a),
        [] => return Err("no core to pin to".into()),
    };
    // Everything allocated from here on and still alive at the end is the SAs' (the channel
    // and the commands are freed by then).
    let before = alloc.live();
    let (tx, rx) = crossbeam_channel::bounded::<SaCommand>(CHANNEL);
    // Built before the clock starts: the rate is the channel and `Sad::apply`, not SaParams.
    let commands = (0..n)
        .map(|i| gateway_sa(spi(i), Direction::In).map(|p| SaCommand::Install(Box::new(p))))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let (pipe, elapsed) = std::thread::scope(|s| {
        let worker = s.spawn(move || {
            core_affinity::set_for_current(worker_core);
            let mut pipe = pipe;
            let mut failed = None;
            // The worker's loop: apply whatever commands are waiting (here: until closed).
            while let Ok(cmd) = rx.recv() {
                if let Err(e) = pipe.sad.apply(cmd) {
                    failed.get_or_insert(e.to_string());
                }
            }
            (pipe, start.elapsed(), failed)
        });
        s.spawn(move || {
            core_affinity::set_for_current(control_core);
            for cmd in commands {
                if tx.send(cmd).is_err() {
                    break;
                }
            }
        });
        match worker.join() {
            Ok((pipe, elapsed, None)) => Ok((pipe, elapsed)),
            Ok((_, _, Some(e))) => Err(format!("install failed: {e}")),
            Err(_) => Err("the worker thread panicked".to_string()),
        }
    })?;
    let grown = alloc.live().saturating_sub(before);
    Ok((pipe, elapsed, grown))
}

/// Run the scenario.
pub fn run(plan: Plan, args: &Args, alloc: &Counting) -> Result<Report, String> {
    let core = *harness::cores(1).first().ok_or("no core to pin to")?;
    let total = args.sas.len() * (1 + plan.rounds * args.mixes.len());
    let mut progress = Progress::new("scale", total);
    let mut rows = Vec::new();
    for &n in &args.sas {
        if n == 0 {
            return Err("--sas: every count must be ≥ 1".into());
        }
        progress.start(&format!("install {n} SAs"));
        let (mut pipe, elapsed, grown) = install(n, alloc)?;
        let rate = n as f64 / elapsed.as_secs_f64().max(1e-9);
        let per_sa = grown as f64 / n as f64;
        progress.end(&format!("{:.0} k installs/s, {per_sa:.0} B/SA", rate / 1e3));
        plan.pause();

        // Packets spread uniformly at random over every SA: at least 64 Ki draws, and as
        // many as there are SAs, so the whole table is walked.
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(n));
        let draws = n.max(1 << 16);
        let order: Vec<u32> = (0..draws).map(|_| rng.below(u64::from(n)) as u32).collect();
        let spis: Vec<u32> = (0..n).map(spi).collect();
        let mut source = EspSource::new(&spis, order)?;
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); args.mixes.len()];
        let mut gbits: Vec<Vec<f64>> = vec![Vec::new(); args.mixes.len()];
        for _ in 0..plan.rounds {
            for (i, &mix) in args.mixes.iter().enumerate() {
                progress.start(&format!("decap {:>6} with {n} SAs", mix.label()));
                let mut w = Decap::with(mix, pipe, source)?;
                let s = harness::measure_on(core, &mut w, plan.point())?;
                (pipe, source) = w.into_parts();
                progress.end(&format!(
                    "{:7.3} Mpps {:7.2} Gbit/s{}",
                    s.mpps(),
                    s.gbps(),
                    harness::preempted_note(&[s])
                ));
                samples[i].push(s.mpps());
                gbits[i].push(s.gbps());
                plan.pause();
            }
        }
        rows.push(Row {
            sas: n,
            installs_per_s: if n >= MIN_FOR_RATE { rate } else { f64::NAN },
            bytes_per_sa: per_sa,
            decap: args
                .mixes
                .iter()
                .zip(samples.into_iter().zip(gbits))
                .map(|(m, (mpps, gbps))| DecapPoint {
                    size: m.label(),
                    mpps: median(mpps.clone()),
                    gbps: median(gbps),
                    rounds: mpps,
                })
                .collect(),
        });
    }
    progress.finish();
    Ok(report(plan, args, rows))
}

fn report(plan: Plan, args: &Args, rows: Vec<Row>) -> Report {
    let mut r = Report::new(
        "scale",
        "decap with 1 … 1M inbound SAs, SA install rate, memory per SA",
        plan,
    );
    let sizes: Vec<String> = args.mixes.iter().map(Mix::label).collect();
    let mpps = |row: &Row, size: &str| row.decap.iter().find(|d| d.size == size).map(|d| d.mpps);
    let first = rows.first();
    let mut header = vec![
        "inbound SAs".to_string(),
        "installs/s".into(),
        "heap B/SA".into(),
    ];
    for s in &sizes {
        header.push(format!("decap {s} Mpps"));
        header.push(format!("{s} Gbit/s"));
        header.push(format!("{s} vs {} SA", first.map_or(1, |f| f.sas)));
    }
    let mut t = Table {
        title: "Decap (one pinned worker) by number of inbound SAs".into(),
        header,
        rows: Vec::new(),
    };
    for row in &rows {
        let mut cells = vec![
            row.sas.to_string(),
            if row.installs_per_s.is_nan() {
                "–".into()
            } else {
                format!("{:.0} k", row.installs_per_s / 1e3)
            },
            format!("{:.0}", row.bytes_per_sa),
        ];
        for s in &sizes {
            let d = row.decap.iter().find(|d| &d.size == s);
            cells.push(d.map_or("–".into(), |d| f2(d.mpps)));
            cells.push(d.map_or("–".into(), |d| f2(d.gbps)));
            let base = first.and_then(|f| mpps(f, s));
            cells.push(match (mpps(row, s), base) {
                (Some(a), Some(b)) if b > 0.0 => pct(a / b),
                _ => "–".into(),
            });
        }
        t.row(cells);
    }
    r.tables.push(t);

    let cats: Vec<String> = rows.iter().map(|r| r.sas.to_string()).collect();
    r.charts.push(Chart {
        title: "Decap rate by number of inbound SAs (one worker)".into(),
        y_label: "Mpps".into(),
        categories: cats.clone(),
        series: sizes
            .iter()
            .map(|s| Series {
                name: format!("decap {s}"),
                values: rows.iter().map(|r| mpps(r, s)).collect(),
            })
            .collect(),
        reference: None,
        log_y: false,
    });
    r.charts.push(Chart {
        title: "SA installs per second (crossbeam channel → worker loop)".into(),
        y_label: "k installs/s".into(),
        categories: cats.clone(),
        series: vec![Series {
            name: "installs/s".into(),
            values: rows
                .iter()
                .map(|r| (!r.installs_per_s.is_nan()).then_some(r.installs_per_s / 1e3))
                .collect(),
        }],
        reference: None,
        log_y: false,
    });
    r.charts.push(Chart {
        title: "Heap bytes per inbound SA".into(),
        y_label: "bytes".into(),
        categories: cats,
        series: vec![Series {
            name: "bytes/SA".into(),
            values: rows.iter().map(|r| Some(r.bytes_per_sa)).collect(),
        }],
        reference: None,
        log_y: false,
    });
    r.notes = vec![
        "Decap: Ethernet ‖ IPv4 ‖ UDP/4500 ‖ ESP frames whose SPIs are drawn uniformly at random (a sequence generated before the point, max(SAs, 65536) long, cycled), encrypted by a peer with one outbound SA per SPI right before each batch (untimed); every packet must be delivered.".into(),
        format!(
            "Install rate: pre-built `SaCommand::Install` (AES-128-GCM, tunnel, selectors) sent by a pinned control thread over a bounded crossbeam channel ({CHANNEL}) to a pinned worker-like loop that applies them to its `Sad` (key expansion, replay window, SPI index); from the first send to the last apply. Shown from {MIN_FOR_RATE} SAs on."
        ),
        format!(
            "Heap bytes per SA: growth of live heap bytes (a counting global allocator: bytes requested, not allocator overhead) across the install, divided by SAs; includes the SPI hash table and the SA vector with their spare capacity. `size_of::<InboundSa>()` = {} B.",
            std::mem::size_of::<InboundSa>()
        ),
    ];
    r.results = serde_json::json!({ "rows": rows });
    r
}
