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
    /// Show what the running gateway is doing.
    Status(ClientArgs),
    /// Show counters: per-worker packets, bytes, drops by reason.
    #[command(
        after_help = "Examples:\n  xdpsec stats\n  xdpsec stats --watch        # live rates, every second\n  xdpsec stats --json | jq .workers[0].drops"
    )]
    Stats(StatsArgs),
    /// Security Associations of the running gateway.
    #[command(subcommand)]
    Sa(SaCommand),
    /// IKEv2 connections ([[conn]] in the configuration): list, start, stop.
    #[command(subcommand)]
    Conn(ConnCommand),
    /// Configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  xdpsec completions bash > /etc/bash_completion.d/xdpsec")]
    Completions {
        /// Shell to generate for.
        shell: clap_complete::Shell,
    },
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

#[derive(Debug, Subcommand)]
enum SaCommand {
    /// List every SA: SPI, direction, peer endpoint (NAT mapping), algorithms, counters.
    List(ClientArgs),
}

#[derive(Debug, Subcommand)]
enum ConnCommand {
    /// Every IKE SA: state, endpoints, NAT detected locally/remotely, suite, child SAs.
    #[command(
        after_help = "Examples:\n  xdpsec conn list\n  xdpsec conn list --json | jq '.[] | {conn, state, nat_remote}'"
    )]
    List(ClientArgs),
    /// Start an initiator connection (it also starts by itself when the gateway starts).
    #[command(after_help = "Example:\n  xdpsec conn up home")]
    Up {
        /// The connection's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a connection's IKE SA and its child SAs; an initiator stays down until `conn up`.
    #[command(after_help = "Example:\n  xdpsec conn down home")]
    Down {
        /// The connection's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a gateway configuration (exit 0 if valid, 2 with one error line if not).
    Check {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// The gateway's control socket.
    #[arg(long, value_name = "PATH", default_value = crate::api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatsArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Refresh every SECS seconds with rates since the previous sample (Ctrl-C to stop).
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
    watch: Option<f64>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Gateway configuration (TOML: [gateway] and [[sa]] tables).
    #[arg(long, short, value_name = "GW.toml")]
    config: PathBuf,
    /// Write a JSON snapshot of the counters here every 200 ms.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Serve the control API (for `xdpsec status`, `stats`, `sa list`) on this Unix socket.
    #[arg(long, value_name = "PATH", default_value = crate::api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Log level on stderr: error, warn, info, debug or trace; or a tracing filter such as
    /// "info,xdpsec_control::ike=debug". The XDPSEC_LOG environment variable overrides it.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log: String,
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
            Command::Status(args) => crate::show::status(&args.socket, args.json),
            Command::Stats(args) => {
                crate::show::stats(&args.client.socket, args.client.json, args.watch)
            }
            Command::Sa(SaCommand::List(args)) => crate::show::sa_list(&args.socket, args.json),
            Command::Conn(ConnCommand::List(args)) => {
                crate::show::conn_list(&args.socket, args.json)
            }
            Command::Conn(ConnCommand::Up { name, client }) => {
                crate::show::conn_updown(&client.socket, true, &name)
            }
            Command::Conn(ConnCommand::Down { name, client }) => {
                crate::show::conn_updown(&client.socket, false, &name)
            }
            Command::Config(ConfigCommand::Check { file }) => {
                match crate::config::gateway::load(&file) {
                    Ok(cfg) => {
                        println!(
                            "{}: ok ({} SAs, {} connections, backend {:?}, listen {})",
                            file.display(),
                            cfg.sas.len(),
                            cfg.conns.len(),
                            cfg.backend,
                            cfg.listen
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            }
            Command::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut <Cli as clap::CommandFactory>::command(),
                    "xdpsec",
                    &mut std::io::stdout(),
                );
                ExitCode::SUCCESS
            }
            Command::Pcap(args) => pcap(&args),
        }
    }
}

/// Exit status for bad input files and configuration (clap uses 2 for usage errors too).
pub(crate) const EXIT_BAD_INPUT: u8 = 2;

pub(crate) fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("xdpsec: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

fn run(args: &RunArgs) -> ExitCode {
    let filter = std::env::var("XDPSEC_LOG").unwrap_or_else(|_| args.log.clone());
    let filter = match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(f) => f,
        Err(e) => return fail(format!("--log {filter:?}: {e}")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
    let cfg = match crate::config::gateway::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let opts = crate::daemon::RunOptions {
        config_path: args.config.clone(),
        socket: args.socket.clone(),
        stats_file: args.stats.clone(),
    };
    match crate::daemon::run(&cfg, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
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
