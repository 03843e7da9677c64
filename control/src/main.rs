//! The `xdpsec` binary: see [`xdpsec_control::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    xdpsec_control::cli::Cli::parse().run()
}
