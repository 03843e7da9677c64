//! `xdpsec-bench`: xdpsec's benchmark runner (issue #5).
//!
//! Scenarios (`pipeline`, `scale`, `e2e`, `ike`, or `all`) print their progress on the
//! terminal and write `<out>/<scenario>.json`, `.md` and `.svg`. Default points last ~3 s with
//! ~1 s pauses between them (the VM throttles when both vCPUs spin for more than ~10 s);
//! `--quick` makes every point ~0.3 s (the CI smoke test). See docs/BENCHMARKS.md.

mod alloc;
mod e2e;
mod fixture;
mod harness;
mod ike;
mod pipeline;
mod report;
mod scale;
mod svg;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::fixture::Mix;
use crate::harness::Plan;
use crate::report::Report;

/// Counts live heap bytes: the `scale` scenario's memory per SA.
#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting::new();

#[derive(Debug, Parser)]
#[command(name = "xdpsec-bench", version, about = "xdpsec's benchmark runner")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Args)]
struct Common {
    /// Directory for <scenario>.json, .md and .svg.
    #[arg(long, global = true, default_value = "bench-results")]
    out: PathBuf,
    /// Short points (~0.3 s, 0.1 s pauses, one round): a smoke test, not a measurement.
    #[arg(long, global = true)]
    quick: bool,
    /// Wall time of one point in ms (default 3000, 300 with --quick).
    #[arg(long, global = true)]
    point_ms: Option<u64>,
    /// Pause after every point in ms (default 1000, 100 with --quick).
    #[arg(long, global = true)]
    pause_ms: Option<u64>,
    /// Repetitions of every point; the median is reported (default 3, 1 with --quick).
    #[arg(long, global = true)]
    rounds: Option<usize>,
}

impl Common {
    fn plan(&self) -> Plan {
        let (point, pause, rounds) = if self.quick {
            (300, 100, 1)
        } else {
            (3000, 1000, 3)
        };
        Plan {
            point_ms: self.point_ms.unwrap_or(point),
            pause_ms: self.pause_ms.unwrap_or(pause),
            rounds: self.rounds.unwrap_or(rounds).max(1),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Decap/encap per core vs raw ring AES-GCM; 1 and N pinned workers.
    Pipeline(PipelineArgs),
    /// Decap with 1 … 1M inbound SAs, SA install rate, memory per SA.
    Scale(ScaleArgs),
    /// End to end through `xdpsec run` in network namespaces (root).
    E2e(E2eArgs),
    /// IKEv2 handshakes per second: in process (engines, one core) and over the wire
    /// against `xdpsec run` and strongSwan (root).
    Ike(IkeArgs),
    /// Every scenario with default options (e2e and ike over the wire only where they can
    /// run: root, xdpsec built).
    All,
}

#[derive(Debug, Args)]
struct PipelineArgs {
    /// Inner packet sizes in bytes, or "imix".
    #[arg(long, value_delimiter = ',', default_value = "64,512,1420,imix", value_parser = Mix::parse)]
    sizes: Vec<Mix>,
    /// Workers of the multi-worker points (default: one per core; 1 skips them).
    #[arg(long)]
    workers: Option<usize>,
    /// What to time (fewer for profiling).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = pipeline::Op::ALL)]
    ops: Vec<pipeline::Op>,
}

#[derive(Debug, Args)]
struct ScaleArgs {
    /// Numbers of inbound SAs installed.
    #[arg(long, value_delimiter = ',', default_value = "1,1000,100000,1000000")]
    sas: Vec<u32>,
    /// Inner packet sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "1420,64", value_parser = Mix::parse)]
    sizes: Vec<Mix>,
}

#[derive(Debug, Args)]
struct IkeArgs {
    #[command(flatten)]
    opts: ike::Options,
}

#[derive(Debug, Args)]
struct E2eArgs {
    #[command(flatten)]
    opts: e2e::Options,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn pipeline_args(a: &PipelineArgs) -> pipeline::Args {
    pipeline::Args {
        mixes: a.sizes.clone(),
        workers: a.workers.unwrap_or_else(cores),
        ops: a.ops.clone(),
    }
}

fn scale_args(a: &ScaleArgs) -> scale::Args {
    scale::Args {
        sas: a.sas.clone(),
        mixes: a.sizes.clone(),
    }
}

fn save(report: &Report, common: &Common) -> Result<(), String> {
    for p in report.write(&common.out)? {
        eprintln!("wrote {}", p.display());
    }
    for t in &report.targets {
        eprintln!(
            "target: {} — {}: {} ({})",
            t.name,
            t.goal,
            t.measured,
            match t.pass {
                Some(true) => "pass",
                Some(false) => "MISS",
                None => "not measured",
            }
        );
    }
    Ok(())
}

fn run(cli: &Cli) -> Result<(), String> {
    let plan = cli.common.plan();
    match &cli.scenario {
        Scenario::Pipeline(a) => save(&pipeline::run(plan, &pipeline_args(a))?, &cli.common),
        Scenario::Scale(a) => save(&scale::run(plan, &scale_args(a), &ALLOC)?, &cli.common),
        Scenario::E2e(a) => save(&e2e::run(plan, &a.opts)?, &cli.common),
        Scenario::Ike(a) => save(&ike::run(plan, &a.opts)?, &cli.common),
        Scenario::All => {
            let p = PipelineArgs {
                sizes: ["64", "512", "1420", "imix"]
                    .iter()
                    .map(|s| Mix::parse(s))
                    .collect::<Result<_, _>>()?,
                workers: None,
                ops: pipeline::Op::ALL.to_vec(),
            };
            save(&pipeline::run(plan, &pipeline_args(&p))?, &cli.common)?;
            plan.pause();
            let s = ScaleArgs {
                sas: vec![1, 1000, 100_000, 1_000_000],
                sizes: vec![Mix::Fixed(1420), Mix::Fixed(64)],
            };
            save(&scale::run(plan, &scale_args(&s), &ALLOC)?, &cli.common)?;
            plan.pause();
            let e2e_opts = e2e::Options::default();
            match e2e::preflight(&e2e_opts) {
                Ok(_) => save(&e2e::run(plan, &e2e_opts)?, &cli.common)?,
                Err(why) => {
                    eprintln!("e2e: skipped: {why}");
                    save(&e2e::skipped(plan, &why), &cli.common)?;
                }
            }
            plan.pause();
            save(&ike::run_default(plan)?, &cli.common)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdpsec-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
