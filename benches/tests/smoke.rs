//! Smoke test of the runner: `pipeline`, `scale` and the in-process part of `ike` with tiny
//! sizes and short points into a temporary directory; the JSON must parse and hold measured
//! numbers, and the Markdown and SVG files must exist. (The numbers of a debug build mean nothing; their presence does.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xdpsec-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn bench(out: &Path, args: &[&str]) -> Value {
    let status = Command::new(env!("CARGO_BIN_EXE_xdpsec-bench"))
        .args(["--quick", "--point-ms", "100", "--pause-ms", "10", "--out"])
        .arg(out)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "xdpsec-bench {args:?} failed");
    let scenario = args[0];
    for ext in ["md", "svg"] {
        let f = out.join(format!("{scenario}.{ext}"));
        assert!(f.exists(), "{} missing", f.display());
    }
    let svg = std::fs::read_to_string(out.join(format!("{scenario}.svg"))).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<rect"));
    serde_json::from_str(&std::fs::read_to_string(out.join(format!("{scenario}.json"))).unwrap())
        .unwrap()
}

#[test]
fn pipeline_quick() {
    let out = out_dir("pipeline");
    let v = bench(&out, &["pipeline", "--sizes", "64", "--workers", "2"]);
    assert_eq!(v["scenario"], "pipeline");
    let points = v["results"]["points"].as_array().unwrap();
    for op in ["ring_seal", "encap", "ring_open", "decap"] {
        let p = points
            .iter()
            .find(|p| p["op"] == op && p["workers"] == 1)
            .unwrap_or_else(|| panic!("no 1-worker {op} point"));
        assert_eq!(p["size"], "64 B");
        assert!(p["mpps"].as_f64().unwrap() > 0.0, "{op}: {p}");
    }
    let targets = v["targets"].as_array().unwrap();
    assert!(
        targets
            .iter()
            .any(|t| t["name"] == "decap at 64 B, one core")
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn scale_quick() {
    let out = out_dir("scale");
    let v = bench(&out, &["scale", "--sas", "1,100", "--sizes", "64"]);
    let rows = v["results"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["sas"], 100);
    assert!(
        rows[1]["bytes_per_sa"].as_f64().unwrap() > 500.0,
        "{}",
        rows[1]
    );
    assert!(rows[1]["decap"][0]["mpps"].as_f64().unwrap() > 0.0);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn ike_in_process_quick() {
    let out = out_dir("ike");
    let v = bench(
        &out,
        &[
            "ike",
            "--in-process-only",
            "--suites",
            "aes128gcm16-prfsha256-x25519",
            "--initiators",
            "4",
        ],
    );
    let p = &v["results"]["in_process"][0];
    assert_eq!(p["suite"], "aes128gcm16-prfsha256-x25519");
    assert!(p["handshakes_per_s"].as_f64().unwrap() > 0.0, "{p}");
    assert!(p["responder_us"].as_f64().unwrap() > 0.0, "{p}");
    let steps = p["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8);
    assert!(
        steps.iter().all(|s| s["calls"].as_u64().unwrap() >= 4),
        "{p}"
    );
    assert_eq!(v["results"]["wire_skipped"], "--in-process-only");
    let _ = std::fs::remove_dir_all(&out);
}
