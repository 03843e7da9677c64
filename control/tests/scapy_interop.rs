//! xdpsec against an independent ESP implementation: scapy's. For every fixture case
//! (`control/tests/fixtures/scapy/`, made by `scripts/scapy/gen_fixtures.py`):
//!
//! - `xdpsec pcap decrypt` of scapy's ESP-in-UDP must equal the expected inner packets byte
//!   for byte (tunnel and transport mode with the NAT-OA fix-up, IPv4 and IPv6 inner, AES-128
//!   and AES-256, ESN);
//! - scapy must decrypt `xdpsec pcap encrypt`'s output back to the originals, with the outer
//!   UDP/ESP framing checked.
//!
//! Needs python3 with scapy (`scripts/setup.sh`); without it the test fails, it never skips.

// Test code: failing loudly on an unexpected error is the point (see clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/setup.sh)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn cases() -> Vec<PathBuf> {
    let dir = root().join("control/tests/fixtures/scapy");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("sa.toml").exists())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 4, "fixture cases in {}", dir.display());
    cases
}

fn xdpsec(op: &str, case: &Path, input: &str, output: &Path) -> serde_json::Value {
    let out = run(Command::new(env!("CARGO_BIN_EXE_xdpsec"))
        .args(["pcap", op, "--json", "--sa"])
        .arg(case.join("sa.toml"))
        .arg(case.join(input))
        .arg(output));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("summary {out:?}: {e}"))
}

fn check(mode: &str, case: &Path, ours: &Path) {
    let script = root().join("scripts/scapy/esp_check.py");
    let out = run(Command::new("python3")
        .arg(script)
        .arg(mode)
        .arg(case)
        .arg(ours));
    assert!(out.contains("esp_check:"), "{out}");
}

#[test]
fn we_decrypt_scapys_packets_byte_for_byte() {
    let tmp = std::env::temp_dir().join(format!("xdpsec-scapy-dec-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for case in cases() {
        let ours = tmp.join(format!(
            "{}.pcap",
            case.file_name().unwrap().to_string_lossy()
        ));
        let summary = xdpsec("decrypt", &case, "to_gw.esp.pcap", &ours);
        assert_eq!(summary["dropped"], 0, "{}: {summary}", case.display());
        assert_eq!(
            summary["processed"],
            summary["packets"],
            "{}: {summary}",
            case.display()
        );
        check("decrypted", &case, &ours);
    }
}

#[test]
fn scapy_decrypts_ours() {
    let tmp = std::env::temp_dir().join(format!("xdpsec-scapy-enc-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for case in cases() {
        let ours = tmp.join(format!(
            "{}.pcap",
            case.file_name().unwrap().to_string_lossy()
        ));
        let summary = xdpsec("encrypt", &case, "from_gw.plain.pcap", &ours);
        assert_eq!(
            summary["processed"],
            summary["packets"],
            "{}: {summary}",
            case.display()
        );
        check("encrypted", &case, &ours);
    }
}
