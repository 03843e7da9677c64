//! The read-only CLI commands: `status`, `stats [--watch]`, `sa list` — clients of the control
//! API that print tables or JSON.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::{Request, call};
use crate::cli::fail;

fn fetch(socket: &Path, req: &Request) -> Result<Value, ExitCode> {
    call(socket, req).map_err(fail)
}

/// `xdpsec status`.
pub fn status(socket: &Path, json: bool) -> ExitCode {
    let v = match fetch(socket, &Request::Status) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let s = &v["status"];
    if json {
        println!("{s}");
    } else {
        println!(
            "xdpsec {} up {}s\n  backend  {}\n  config   {}\n  workers  {}\n  SAs      {} in, {} out",
            s["version"].as_str().unwrap_or("?"),
            s["uptime_s"],
            s["backend"].as_str().unwrap_or("?"),
            s["config"].as_str().unwrap_or("?"),
            s["workers"],
            s["sas_in"],
            s["sas_out"]
        );
    }
    ExitCode::SUCCESS
}

/// `xdpsec stats [--json] [--watch SECS]`.
pub fn stats(socket: &Path, json: bool, watch: Option<f64>) -> ExitCode {
    let mut previous: Option<(Instant, Value)> = None;
    loop {
        let v = match fetch(socket, &Request::Stats) {
            Ok(v) => v,
            Err(code) => return code,
        };
        let now = Instant::now();
        let stats = &v["stats"];
        if json {
            println!("{stats}");
        } else {
            if watch.is_some() {
                print!("\x1b[2J\x1b[H");
            }
            print!(
                "{}",
                stats_table(
                    stats,
                    previous.as_ref().map(|(t, p)| (now.duration_since(*t), p))
                )
            );
        }
        let Some(secs) = watch else {
            return ExitCode::SUCCESS;
        };
        previous = Some((now, stats.clone()));
        std::thread::sleep(Duration::from_secs_f64(secs.max(0.1)));
    }
}

const COUNTERS: [&str; 12] = [
    "rx_frames",
    "decap_packets",
    "decap_bytes",
    "encap_packets",
    "encap_bytes",
    "ike",
    "keepalives",
    "peer_moves",
    "wan_tx",
    "handoff_tx",
    "handoff_rx",
    "handoff_full",
];

/// The stats as a table; with a previous sample, rates per second beside the totals.
pub(crate) fn stats_table(stats: &Value, previous: Option<(Duration, &Value)>) -> String {
    let mut out = format!("backend: {}\n", stats["backend"].as_str().unwrap_or("?"));
    let empty = Vec::new();
    for (i, w) in stats["workers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            out,
            "worker {i} ({}):",
            w["backend"].as_str().unwrap_or("?")
        );
        for key in COUNTERS {
            let total = w[key].as_u64().unwrap_or(0);
            let rate = previous.and_then(|(dt, p)| {
                let before = p["workers"][i][key].as_u64()?;
                Some(total.saturating_sub(before) as f64 / dt.as_secs_f64().max(1e-3))
            });
            match rate {
                Some(r) => {
                    let _ = writeln!(out, "  {key:<15} {total:>14}  {r:>12.0}/s");
                }
                None => {
                    let _ = writeln!(out, "  {key:<15} {total:>14}");
                }
            }
        }
        let drops = w["drops"].as_object();
        if drops.is_none_or(|d| d.is_empty()) {
            let _ = writeln!(out, "  drops           none");
        } else if let Some(d) = drops {
            let _ = writeln!(out, "  drops:");
            for (reason, n) in d {
                let _ = writeln!(out, "    {reason:<22} {n:>10}");
            }
        }
    }
    // The XDP program's per-CPU counters, summed (AF_XDP backend).
    if let Some(xdp) = stats["xdp"].as_object() {
        let _ = writeln!(out, "xdp:");
        for (counter, n) in xdp {
            let _ = writeln!(out, "  {counter:<22} {:>10}", n.as_u64().unwrap_or(0));
        }
    }
    // The IKE engine's (when connections are configured).
    let ike = &stats["ike"];
    if ike.is_object() {
        let _ = writeln!(
            out,
            "ike: {} IKE SAs ({} half-open), {} messages in, {} out",
            ike["ike_sas"], ike["half_open"], ike["received"], ike["sent"]
        );
        if let Some(d) = ike["drops"].as_object().filter(|d| !d.is_empty()) {
            let _ = writeln!(out, "  drops:");
            for (reason, n) in d {
                let _ = writeln!(out, "    {reason:<22} {n:>10}");
            }
        }
    }
    out
}

/// `xdpsec sa list [--json]`.
pub fn sa_list(socket: &Path, json: bool) -> ExitCode {
    let v = match fetch(socket, &Request::SaList) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if json {
        println!("{}", v["sas"]);
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<12} {:<4} {:<9} {:<12} {:<30} {:>10} {:>12} {:>8} {:>8} {:<10} {:<7} {:>7} {:>8}",
        "SPI",
        "DIR",
        "MODE",
        "AEAD",
        "PEER ENDPOINT",
        "PACKETS",
        "BYTES",
        "REPLAY",
        "AUTHFAIL",
        "CONN",
        "NAT",
        "AGE",
        "REKEY IN"
    );
    let empty = Vec::new();
    for sa in v["sas"].as_array().unwrap_or(&empty) {
        let endpoint = match (sa["endpoint"].as_str(), sa["endpoint_learned"].as_bool()) {
            (Some(e), Some(true)) => format!("{e} (learned)"),
            (Some(e), _) => e.to_string(),
            (None, _) => "-".to_string(),
        };
        println!(
            "{:<12} {:<4} {:<9} {:<12} {:<30} {:>10} {:>12} {:>8} {:>8} {:<10} {:<7} {:>7} {:>8}",
            sa["spi"].as_str().unwrap_or("?"),
            sa["direction"].as_str().unwrap_or("?"),
            sa["mode"].as_str().unwrap_or("?"),
            sa["aead"].as_str().unwrap_or("?"),
            endpoint,
            sa["packets"].as_u64().unwrap_or(0),
            sa["bytes"].as_u64().unwrap_or(0),
            sa["replay_drops"].as_u64().unwrap_or(0),
            sa["auth_failures"].as_u64().unwrap_or(0),
            sa["conn"].as_str().unwrap_or("(static)"),
            nat_column(&sa["nat_local"], &sa["nat_remote"]),
            duration_column(&sa["age_s"]),
            duration_column(&sa["rekey_in_s"])
        );
    }
    ExitCode::SUCCESS
}

/// `local`, `remote`, `both` or `-`: where RFC 7296 §2.23 NAT detection found a NAT.
fn nat_column(local: &Value, remote: &Value) -> &'static str {
    match (local.as_bool(), remote.as_bool()) {
        (Some(true), Some(true)) => "both",
        (Some(true), _) => "local",
        (_, Some(true)) => "remote",
        (Some(false), _) | (_, Some(false)) => "none",
        _ => "-",
    }
}

/// `42s`, `17m`, `3h`, or `-` when absent.
fn duration_column(secs: &Value) -> String {
    match secs.as_f64() {
        None => "-".into(),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) if s < 7200.0 => format!("{:.0}m", s / 60.0),
        Some(s) => format!("{:.0}h", s / 3600.0),
    }
}

/// `xdpsec conn list`: IKE SAs with their NAT state and child SAs.
pub fn conn_list(socket: &Path, json: bool) -> ExitCode {
    let v = match fetch(socket, &Request::ConnList) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if json {
        println!("{}", v["conns"]);
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<10} {:<12} {:<9} {:<22} {:<22} {:<7} {:<30} {:>7} {:>8}",
        "CONN", "STATE", "ROLE", "LOCAL", "REMOTE", "NAT", "IKE", "AGE", "REKEY IN"
    );
    let empty = Vec::new();
    for c in v["conns"].as_array().unwrap_or(&empty) {
        println!(
            "{:<10} {:<12} {:<9} {:<22} {:<22} {:<7} {:<30} {:>7} {:>8}",
            c["conn"].as_str().unwrap_or("?"),
            c["state"].as_str().unwrap_or("?"),
            c["role"].as_str().unwrap_or("?"),
            c["local"].as_str().unwrap_or("?"),
            c["remote"].as_str().unwrap_or("?"),
            nat_column(&c["nat_local"], &c["nat_remote"]),
            c["ike_suite"].as_str().unwrap_or("?"),
            duration_column(&c["established_age"]),
            duration_column(&c["rekey_in"])
        );
        for ch in c["children"].as_array().unwrap_or(&empty) {
            let ts = |k: &str| {
                ch[k]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            println!(
                "  child in {:08x} out {:08x} {} {} === {}{}  age {} rekey in {}",
                ch["inbound_spi"].as_u64().unwrap_or(0),
                ch["outbound_spi"].as_u64().unwrap_or(0),
                ch["esp"].as_str().unwrap_or("?"),
                ts("local_ts"),
                ts("remote_ts"),
                ch["virtual_ip"]
                    .as_str()
                    .map_or(String::new(), |v| format!(" (virtual IP {v})")),
                duration_column(&ch["age"]),
                duration_column(&ch["rekey_in"])
            );
        }
    }
    ExitCode::SUCCESS
}

/// `xdpsec conn up|down NAME`.
pub fn conn_updown(socket: &Path, up: bool, name: &str) -> ExitCode {
    let req = if up {
        Request::ConnUp { name: name.into() }
    } else {
        Request::ConnDown { name: name.into() }
    };
    match fetch(socket, &req) {
        Ok(_) => {
            println!("{name}: {}", if up { "initiating" } else { "terminating" });
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_table_shows_workers_xdp_and_ike() {
        let stats = serde_json::json!({
            "backend": "afxdp (XDP driver mode on eth0, 2 queues, Copy), 2 worker(s)",
            "xdp": {"redirected": 40, "passed_other_port": 3},
            "workers": [
                {"backend": "afxdp", "decap_packets": 20, "drops": {"replay_duplicate": 1}},
                {"backend": "afxdp", "decap_packets": 20, "drops": {}}
            ],
            "ike": {"ike_sas": 1, "half_open": 0, "received": 6, "sent": 6,
                    "drops": {"unknown_spi": 2}}
        });
        let before = serde_json::json!({"workers": [{"decap_packets": 10}, {"decap_packets": 20}]});
        let t = stats_table(&stats, Some((Duration::from_secs(1), &before)));
        for want in [
            "worker 0 (afxdp):",
            "replay_duplicate",
            "worker 1 (afxdp):",
            "drops           none",
            "redirected",
            "ike: 1 IKE SAs (0 half-open), 6 messages in, 6 out",
            "unknown_spi",
        ] {
            assert!(t.contains(want), "{want:?} missing in\n{t}");
        }
        // rates from the previous sample: worker 0 went 10 → 20 in a second
        assert!(t.contains("10/s"), "{t}");
    }
}
