//! The `xdpsec` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::sa_file;
use crate::pcap::tool::{self, Op};

/// xdpsec — an IPsec NAT-traversal gateway with a kernel-bypass dataplane.
#[derive(Debug, Parser)]
#[command(name = "xdpsec", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (static SAs from the configuration file) until SIGINT/SIGTERM.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Encrypt or decrypt ESP-in-UDP (RFC 3948) capture files with static SAs.
    #[command(after_help = PCAP_EXAMPLES)]
    Pcap(PcapArgs),
}

const PCAP_EXAMPLES: &str = "\
Examples:
  xdpsec pcap decrypt --sa sas.toml wan.pcap inner.pcap
  xdpsec pcap encrypt --sa sas.toml --json inner.pcap wan.pcap

The SA file holds [[sa]] tables (see README \"SA file\"); decrypt uses the direction = \"in\" SAs,
encrypt the direction = \"out\" ones. Classic pcap (Ethernet or raw IP) in, same link type out.";

const RUN_EXAMPLES: &str = "\
Examples:
  xdpsec run --config /etc/xdpsec/gw.toml
  xdpsec run --config gw.toml --stats /run/xdpsec/stats.json

See README \"Run the gateway by hand\" for the configuration and a namespace walk-through.";

#[derive(Debug, Args)]
struct RunArgs {
    /// Gateway configuration (TOML: [gateway] and [[sa]] tables).
    #[arg(long, short, value_name = "GW.toml")]
    config: PathBuf,
    /// Write a JSON snapshot of the counters here every 200 ms.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PcapArgs {
    /// decrypt: ESP-in-UDP → inner packets; encrypt: inner packets → ESP-in-UDP.
    #[arg(value_enum)]
    op: PcapOp,
    /// SA file (TOML, [[sa]] tables).
    #[arg(long, value_name = "SAS.toml")]
    sa: PathBuf,
    /// Input capture (classic pcap).
    input: PathBuf,
    /// Output capture.
    output: PathBuf,
    /// Print the summary as one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
    /// Report at most this many dropped packets individually on stderr.
    #[arg(long, default_value_t = 20, value_name = "N")]
    max_reports: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PcapOp {
    Decrypt,
    Encrypt,
}

impl Cli {
    /// Run the chosen command.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Run(args) => run(&args),
            Command::Pcap(args) => pcap(&args),
        }
    }
}

/// Exit status for bad input files and configuration (clap uses 2 for usage errors too).
const EXIT_BAD_INPUT: u8 = 2;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("xdpsec: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

fn run(args: &RunArgs) -> ExitCode {
    let cfg = match crate::config::gateway::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let opts = crate::daemon::RunOptions { stats_file: args.stats.clone() };
    match crate::daemon::run(&cfg, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdpsec: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pcap(args: &PcapArgs) -> ExitCode {
    let sas = match sa_file::load(&args.sa) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let input = match std::fs::read(&args.input) {
        Ok(b) => b,
        Err(e) => return fail(format!("{}: {e}", args.input.display())),
    };
    let op = match args.op {
        PcapOp::Decrypt => Op::Decrypt,
        PcapOp::Encrypt => Op::Encrypt,
    };
    let mut reported = 0u64;
    let mut report = |n: u64, reason: xdpsec_dataplane::drop::DropReason| {
        reported += 1;
        if reported <= args.max_reports {
            eprintln!("packet {n}: dropped: {}", reason.name());
        }
    };
    let (out, summary) = match tool::run(op, &sas, &input, &mut report) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e}", args.input.display())),
    };
    if reported > args.max_reports {
        eprintln!(
            "… {} more dropped packets not listed",
            reported - args.max_reports
        );
    }
    if let Err(e) = std::fs::write(&args.output, out) {
        return fail(format!("{}: {e}", args.output.display()));
    }
    if args.json {
        match serde_json::to_string(&summary) {
            Ok(j) => println!("{j}"),
            Err(e) => return fail(e),
        }
    } else {
        println!("{}", summary.line(op));
    }
    ExitCode::SUCCESS
}
