//! Compiles `src/xdp_natt.c` into `$OUT_DIR/xdp_natt.o` with clang (`-target bpf`).

use std::env;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let src = "src/xdp_natt.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let Some(out_dir) = env::var_os("OUT_DIR") else {
        eprintln!("xdpsec-ebpf build.rs: OUT_DIR is not set (not run by cargo?)");
        return ExitCode::FAILURE;
    };
    let out = PathBuf::from(out_dir).join("xdp_natt.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let status = Command::new(&clang)
        .args([
            "-O2",
            "-g",
            "-Wall",
            "-Werror",
            "-target",
            "bpf",
            "-I/usr/include/x86_64-linux-gnu",
            "-c",
            src,
            "-o",
        ])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            println!(
                "cargo:warning=clang failed to compile {src} ({s}); are libbpf-dev and the kernel headers installed? run scripts/setup.sh"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            println!(
                "cargo:warning=cannot run `{clang}` ({e}): clang is needed to build the XDP program; run scripts/setup.sh"
            );
            eprintln!(
                "error: cannot run `{clang}`: {e}. Install clang and libbpf-dev: run scripts/setup.sh"
            );
            ExitCode::FAILURE
        }
    }
}
