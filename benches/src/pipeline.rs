//! Scenario `pipeline`: decap and encap per core beside raw `ring` AES-128-GCM seal/open of
//! the same sizes, with one worker and with one pinned worker per core at once.

use serde::Serialize;

use crate::fixture::{IMIX, Mix};
use crate::harness::{self, Plan, Progress, Sample, Workload, median};
use crate::report::{Report, Table, Target, f2, pct};
use crate::svg::{Chart, Series};
use crate::workloads::{Decap, Encap, RingOpen, RingSeal};

/// Options of the scenario.
#[derive(Debug, Clone)]
pub struct Args {
    /// Sizes to measure.
    pub mixes: Vec<Mix>,
    /// Workers of the multi-worker points (default: every core).
    pub workers: usize,
    /// What to time (default: all four; fewer for profiling).
    pub ops: Vec<Op>,
}

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `ring` seal (baseline of encap).
    RingSeal,
    /// `Pipeline::encap_batch`.
    Encap,
    /// `ring` open (baseline of decap).
    RingOpen,
    /// `Pipeline::decap_batch`.
    Decap,
}

impl Op {
    /// Every op, baselines next to what they are the baseline of.
    pub const ALL: [Op; 4] = [Op::RingSeal, Op::Encap, Op::RingOpen, Op::Decap];

    fn label(self) -> &'static str {
        match self {
            Op::RingSeal => "ring seal",
            Op::Encap => "encap",
            Op::RingOpen => "ring open",
            Op::Decap => "decap",
        }
    }

    fn workload(self, mix: Mix) -> Result<Box<dyn Workload>, String> {
        Ok(match self {
            Op::RingSeal => Box::new(RingSeal::new(mix)?),
            Op::Encap => Box::new(Encap::new(mix)?),
            Op::RingOpen => Box::new(RingOpen::new(mix)?),
            Op::Decap => Box::new(Decap::new(mix)?),
        })
    }

    /// The baseline a pipeline op is compared with.
    fn baseline(self) -> Option<Op> {
        match self {
            Op::Encap => Some(Op::RingSeal),
            Op::Decap => Some(Op::RingOpen),
            _ => None,
        }
    }
}

/// One measured configuration, all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// `64 B`, `IMIX`, …
    pub size: String,
    /// What was timed.
    pub op: Op,
    /// Concurrent pinned workers.
    pub workers: usize,
    /// Median over rounds of the summed Mpps.
    pub mpps: f64,
    /// Median over rounds of the summed Gbit/s (inner bytes).
    pub gbps: f64,
    /// Every round: every worker's totals.
    pub rounds: Vec<Vec<Sample>>,
}

/// Run the scenario.
pub fn run(plan: Plan, args: &Args) -> Result<Report, String> {
    let one = harness::cores(1);
    let many = harness::cores(args.workers);
    let counts: Vec<usize> = if many.len() > 1 {
        vec![1, many.len()]
    } else {
        vec![1]
    };
    let total = plan.rounds * args.mixes.len() * args.ops.len() * counts.len();
    let mut progress = Progress::new("pipeline", total);
    let mut points: Vec<Point> = Vec::new();
    for _ in 0..plan.rounds {
        for &mix in &args.mixes {
            // A/B interleaved: each baseline next to its pipeline op, 1 worker next to N.
            for pair in [[Op::RingSeal, Op::Encap], [Op::RingOpen, Op::Decap]] {
                for &workers in &counts {
                    for op in pair.into_iter().filter(|o| args.ops.contains(o)) {
                        let cores = if workers == 1 { &one } else { &many };
                        progress.start(&format!("{:<9} {:>6} ×{workers}", op.label(), mix.label()));
                        let samples =
                            harness::concurrent(cores, |_| op.workload(mix), plan.point())?;
                        let (mpps, gbps) = harness::total(&samples);
                        progress.end(&format!(
                            "{mpps:7.3} Mpps {gbps:7.2} Gbit/s{}",
                            harness::preempted_note(&samples)
                        ));
                        record(&mut points, mix, op, workers, samples);
                        plan.pause();
                    }
                }
            }
        }
    }
    progress.finish();
    Ok(report(plan, args, &counts, points))
}

fn record(points: &mut Vec<Point>, mix: Mix, op: Op, workers: usize, samples: Vec<Sample>) {
    let size = mix.label();
    let at = points
        .iter()
        .position(|p| p.size == size && p.op == op && p.workers == workers);
    let p = match at {
        Some(i) => &mut points[i],
        None => {
            points.push(Point {
                size,
                op,
                workers,
                mpps: 0.0,
                gbps: 0.0,
                rounds: Vec::new(),
            });
            let last = points.len() - 1;
            &mut points[last]
        }
    };
    p.rounds.push(samples);
    p.mpps = median(p.rounds.iter().map(|r| harness::total(r).0).collect());
    p.gbps = median(p.rounds.iter().map(|r| harness::total(r).1).collect());
}

fn find<'a>(points: &'a [Point], size: &str, op: Op, workers: usize) -> Option<&'a Point> {
    points
        .iter()
        .find(|p| p.size == size && p.op == op && p.workers == workers)
}

fn report(plan: Plan, args: &Args, counts: &[usize], points: Vec<Point>) -> Report {
    let n = counts.last().copied().unwrap_or(1);
    let mut r = Report::new(
        "pipeline",
        "decap and encap per core vs raw ring AES-128-GCM, 1 and N pinned workers",
        plan,
    );
    let sizes: Vec<String> = args.mixes.iter().map(Mix::label).collect();
    let mpps = |s: &str, op: Op, w: usize| find(&points, s, op, w).map(|p| p.mpps);
    let gbps = |s: &str, op: Op, w: usize| find(&points, s, op, w).map(|p| p.gbps);
    let ratio = |s: &str, op: Op| match (mpps(s, op, 1), op.baseline().and_then(|b| mpps(s, b, 1)))
    {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let scaling = |s: &str, op: Op| match (mpps(s, op, 1), mpps(s, op, n)) {
        (Some(a), Some(b)) if a > 0.0 && n > 1 => Some(b / a),
        _ => None,
    };
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or("–".into(), f);

    let mut t = Table::new(
        "One worker (per core)",
        &[
            "size",
            "ring seal Mpps",
            "encap Mpps",
            "encap Gbit/s",
            "encap / ring",
            "ring open Mpps",
            "decap Mpps",
            "decap Gbit/s",
            "decap / ring",
        ],
    );
    for s in &sizes {
        t.row(vec![
            s.clone(),
            opt(mpps(s, Op::RingSeal, 1), f2),
            opt(mpps(s, Op::Encap, 1), f2),
            opt(gbps(s, Op::Encap, 1), f2),
            opt(ratio(s, Op::Encap), pct),
            opt(mpps(s, Op::RingOpen, 1), f2),
            opt(mpps(s, Op::Decap, 1), f2),
            opt(gbps(s, Op::Decap, 1), f2),
            opt(ratio(s, Op::Decap), pct),
        ]);
    }
    r.tables.push(t);
    if n > 1 {
        let mut t = Table::new(
            &format!("Scaling: {n} pinned workers at once vs 1 (total Mpps)"),
            &["size", "op", "1 worker", &format!("{n} workers"), "scaling"],
        );
        for s in &sizes {
            for op in Op::ALL {
                t.row(vec![
                    s.clone(),
                    op.label().into(),
                    opt(mpps(s, op, 1), f2),
                    opt(mpps(s, op, n), f2),
                    opt(scaling(s, op), |x| format!("{x:.2}×")),
                ]);
            }
        }
        r.tables.push(t);
    }

    for op in [Op::Decap, Op::Encap] {
        if let Some(x) = ratio("1420 B", op) {
            r.targets.push(Target::at_least(
                &format!("{} at 1420 B vs ring", op.label()),
                "≥ 85 % of ring",
                x * 100.0,
                85.0,
                " %",
            ));
        }
    }
    if let Some(x) = mpps("64 B", Op::Decap, 1) {
        r.targets.push(Target::at_least(
            "decap at 64 B, one core",
            "≥ 6 Mpps",
            x,
            6.0,
            " Mpps",
        ));
    }
    let goal = 0.9 * n as f64;
    for s in ["64 B", "1420 B"] {
        for op in [Op::Decap, Op::Encap] {
            if let Some(x) = scaling(s, op) {
                r.targets.push(Target::at_least(
                    &format!("{} at {s}, {n} workers vs 1", op.label()),
                    &format!("≥ {goal:.1}×"),
                    x,
                    goal,
                    "×",
                ));
            }
        }
    }

    let series = |f: &dyn Fn(&str, Op) -> Option<f64>| -> Vec<Series> {
        Op::ALL
            .iter()
            .map(|&op| Series {
                name: op.label().into(),
                values: sizes.iter().map(|s| f(s, op)).collect(),
            })
            .collect()
    };
    r.charts.push(Chart {
        title: "Packet rate, one worker".into(),
        y_label: "Mpps".into(),
        categories: sizes.clone(),
        series: series(&|s, op| mpps(s, op, 1)),
        reference: Some((6.0, "target: decap 6 Mpps at 64 B".into())),
        log_y: false,
    });
    r.charts.push(Chart {
        title: "Throughput of inner bytes, one worker".into(),
        y_label: "Gbit/s".into(),
        categories: sizes.clone(),
        series: series(&|s, op| gbps(s, op, 1)),
        reference: None,
        log_y: false,
    });
    if n > 1 {
        r.charts.push(Chart {
            title: format!("Scaling: {n} workers at once vs 1"),
            y_label: "× one worker".into(),
            categories: sizes.clone(),
            series: series(&|s, op| scaling(s, op)),
            reference: Some((goal, format!("target {goal:.1}×"))),
            log_y: false,
        });
    }

    let (imix_avg, imix_n) = IMIX
        .iter()
        .fold((0, 0), |(b, n), &(s, w)| (b + s * w, n + w));
    r.notes = vec![
        format!(
            "Batches of {} packets. Mpps and Gbit/s count inner IP packets (IP header included) per second of time spent inside the measured call; each batch's input is restored or freshly encrypted right before the call, outside the timing (cache-warm, as just written by the NIC). Nothing is subtracted.",
            crate::fixture::BATCH
        ),
        format!(
            "IMIX = 7 : 4 : 1 of 64 / 576 / 1420-byte inner packets (average {:.0} B), in a fixed shuffled order; 1420 rather than 1500 so that the ESP-in-UDP packet fits a 1500-byte MTU.",
            imix_avg as f64 / imix_n as f64
        ),
        "ring seal/open: one AES-128-GCM call per packet on size + 2 bytes (ESP's pad-length and next-header trailer) with 8 bytes of AAD, in a 16-byte-aligned buffer. encap/decap: the whole pipeline (tunnel mode, AES-128-GCM, selectors 10.9.0.0/24 ↔ 10.99.0.0/24, replay window 128); decap input is Ethernet ‖ IPv4 ‖ UDP/4500 ‖ ESP frames (`Ingress::Frames(Link::Ethernet)`, as from AF_XDP) with increasing sequence numbers, every packet delivered (a drop fails the run).".into(),
        format!(
            "N workers: one pinned thread per core, each with its own Pipeline and SA, started together; their rates are summed. ratio = pipeline Mpps / ring Mpps, same size, same run; scaling = N-worker total / 1-worker. Rounds: {} (median).",
            plan.rounds
        ),
    ];
    r.results = serde_json::json!({
        "batch": crate::fixture::BATCH,
        "imix": "7:4:1 of 64/576/1420-byte inner packets",
        "workers": n,
        "points": points,
    });
    r
}
