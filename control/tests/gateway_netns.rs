//! End-to-end tests of `xdpsec run` in network namespaces:
//!
//! ```text
//! [client: scapy ESP peer] -- [nat: nftables masquerade] -- [gw: xdpsec] -- [lan: echo host]
//! ```
//!
//! The client is an independent ESP implementation (scapy, `scripts/netns/esp_peer.py`) with the
//! same static keys as the gateway. It pings and sends UDP to the LAN host through the tunnel,
//! injects a tampered packet, a replay, an unknown SPI and a keepalive, then changes its source
//! port (a NAT rebinding). The test checks the peer's view (every reply decrypted) and the
//! gateway's counters (each hostile packet counted once under its reason, the rebinding
//! followed), and that UDP to other gateway ports still reaches the kernel.
//!
//! Needs root (CI runs as root). Without it the test fails loudly; it never skips.

// Test code: failing loudly on an unexpected error is the point (see clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netns;

use std::time::Duration;

use netns::{Topology, read_json, root, sh, wait_for};
use serde_json::Value;

/// The example configuration from the README walk-through, with the backend under test.
fn gw_config(backend: &str) -> String {
    let example = std::fs::read_to_string(root().join("scripts/netns/gw-example.toml")).unwrap();
    assert!(example.contains("backend = \"socket\""));
    example.replace(
        "backend = \"socket\"",
        &format!("backend = \"{backend}\"\nmetrics = \"127.0.0.1:9469\""),
    )
}

/// Run the whole scenario with `backend` and return (peer report, gateway stats, sink counts).
fn scenario(prefix: &str, backend: &str) -> (Value, Value, Value) {
    let dir = std::env::temp_dir().join(format!("xdpsec-e2e-{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gw.toml");
    std::fs::write(&config, gw_config(backend)).unwrap();
    let (stats, sink) = (dir.join("stats.json"), dir.join("sink.json"));
    let peer = root().join("scripts/netns/esp_peer.py");
    let peer = peer.to_str().unwrap();

    let mut t = Topology::up(prefix);
    t.spawn(
        "lan",
        &[
            "python3",
            peer,
            "echo",
            "--bind",
            "10.9.0.2:7",
            "--seconds",
            "60",
        ],
        &dir.join("echo.log"),
    );
    let sink_out = sink.to_str().unwrap().to_string();
    t.spawn(
        "gw",
        &[
            "python3",
            peer,
            "sink",
            "--bind",
            "192.0.2.2:500",
            "--bind",
            "192.0.2.2:9999",
            "--seconds",
            "60",
            "--out",
            &sink_out,
        ],
        &dir.join("sink.log"),
    );
    let xdpsec = env!("CARGO_BIN_EXE_xdpsec");
    let socket = dir.join("api.sock");
    let socket = socket.to_str().unwrap();
    t.spawn(
        "gw",
        &[
            xdpsec,
            "run",
            "--config",
            config.to_str().unwrap(),
            "--stats",
            stats.to_str().unwrap(),
            "--socket",
            socket,
        ],
        &dir.join("gw.log"),
    );
    wait_for(&stats, "the gateway's stats file (see gw.log)");
    wait_for(&sink, "the sink's output");

    let out = t.run(
        "client",
        &[
            "timeout",
            "60",
            "python3",
            peer,
            "peer",
            "--config",
            config.to_str().unwrap(),
            "--plain-port",
            "500",
            "--plain-port",
            "9999",
        ],
    );
    let report: Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("peer output {out:?}: {e}"));
    std::thread::sleep(Duration::from_millis(600));
    let gw = read_json(&stats);
    let sink = read_json(&sink);
    check_cli(socket, &gw, report["count"].as_u64().unwrap());
    check_metrics(&t, &gw);
    drop(t);
    let log = std::fs::read_to_string(dir.join("gw.log")).unwrap_or_default();
    assert!(
        log.contains("stopped; TUN xdpsec0 removed"),
        "clean shutdown on SIGINT:\n{log}"
    );
    (report, gw, sink)
}

/// The CLI against the running gateway: the control socket is 0600, `--json` output parses,
/// and `sa list` shows the learned NAT mapping and the per-SA counters.
fn check_cli(socket: &str, gw_stats: &Value, count: u64) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control socket permissions");
    let xdpsec = env!("CARGO_BIN_EXE_xdpsec");
    let cli = |args: &[&str]| -> Value {
        let mut full = vec![xdpsec];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--socket", socket, "--json"]);
        serde_json::from_slice(&sh(&full).stdout).unwrap()
    };
    let status = cli(&["status"]);
    assert_eq!(status["sas_in"], 1);
    assert_eq!(status["backend"], gw_stats["backend"]);
    let stats = cli(&["stats"]);
    assert_eq!(
        stats["workers"][0]["decap_packets"],
        gw_stats["workers"][0]["decap_packets"]
    );
    let sas = cli(&["sa", "list"]);
    let inbound = sas
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["direction"] == "in")
        .unwrap();
    assert_eq!(inbound["spi"], "0x10000001");
    assert_eq!(inbound["packets"].as_u64(), Some(4 * count));
    assert_eq!(inbound["replay_drops"], 1);
    assert_eq!(inbound["auth_failures"], 1);
    assert_eq!(inbound["endpoint_learned"], true);
    assert!(
        inbound["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("192.0.2.1:"),
        "the NAT's public mapping: {inbound}"
    );
    // Human-readable forms work too.
    let table = String::from_utf8(sh(&[xdpsec, "sa", "list", "--socket", socket]).stdout).unwrap();
    assert!(
        table.contains("0x20000001") && table.contains("(learned)"),
        "{table}"
    );
}

/// The Prometheus endpoint (loopback inside the gateway's namespace) shows the same counters.
fn check_metrics(t: &Topology, gw_stats: &Value) {
    let text = t.run(
        "gw",
        &[
            "python3",
            "-c",
            "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9469/metrics').read().decode())",
        ],
    );
    let mut want = vec![
        "# TYPE xdpsec_decap_packets_total counter".to_string(),
        "xdpsec_up 1".to_string(),
    ];
    for (i, w) in gw_stats["workers"].as_array().unwrap().iter().enumerate() {
        want.push(format!(
            "xdpsec_decap_packets_total{{worker=\"{i}\"}} {}",
            w["decap_packets"]
        ));
        if let Some(n) = w["drops"]["replay_duplicate"].as_u64() {
            want.push(format!(
                "xdpsec_drops_total{{worker=\"{i}\",reason=\"replay_duplicate\"}} {n}"
            ));
        }
    }
    for want in want {
        assert!(text.contains(&want), "metrics lack {want:?}:\n{text}");
    }
}

/// The counters of all workers added up (drops by reason too): with several workers, a
/// packet is counted by the worker that received it (`rx_frames`) and by the SA's owner
/// (`decap_packets`, drops after the SPI lookup).
fn total(gw: &Value) -> Value {
    let mut sum = serde_json::Map::new();
    let mut drops = serde_json::Map::new();
    for w in gw["workers"].as_array().unwrap() {
        for (k, v) in w.as_object().unwrap() {
            if let Some(n) = v.as_u64() {
                let t = sum.get(k).and_then(Value::as_u64).unwrap_or(0);
                sum.insert(k.clone(), (t + n).into());
            }
        }
        for (reason, n) in w["drops"].as_object().unwrap() {
            let t = drops.get(reason).and_then(Value::as_u64).unwrap_or(0);
            drops.insert(reason.clone(), (t + n.as_u64().unwrap()).into());
        }
    }
    sum.insert("drops".into(), drops.into());
    sum.into()
}

fn check(report: &Value, gw: &Value, sink: &Value) {
    let n = report["count"].as_u64().unwrap();
    for key in ["icmp", "udp", "icmp_after_hostile", "rebind_icmp"] {
        assert_eq!(
            report[key].as_u64(),
            Some(n),
            "{key}: every reply must come back and decrypt ({report})"
        );
    }
    assert_eq!(report["hostile"]["unexpected_reply"], false);
    assert_eq!(
        report["old_socket_quiet"], true,
        "after the rebinding replies go to the new mapping only"
    );
    let w = &total(gw);
    let drops = &w["drops"];
    for reason in ["auth_failed", "replay_duplicate", "unknown_spi"] {
        assert_eq!(
            drops[reason].as_u64(),
            Some(1),
            "{reason} counted once: {w}"
        );
    }
    assert_eq!(w["keepalives"].as_u64(), Some(1), "{w}");
    assert_eq!(w["decap_packets"].as_u64(), Some(4 * n), "{w}");
    assert_eq!(w["tun_tx"].as_u64(), Some(4 * n), "{w}");
    assert_eq!(w["encap_packets"].as_u64(), Some(4 * n), "{w}");
    assert_eq!(
        w["peer_moves"].as_u64(),
        Some(2),
        "first mapping, then the rebinding: {w}"
    );
    assert_eq!(
        drops.as_object().map(|d| d.len()),
        Some(3),
        "no other drops: {w}"
    );
    assert_eq!(
        sink["192.0.2.2:500"].as_u64(),
        Some(1),
        "UDP 500 reaches the kernel: {sink}"
    );
    assert_eq!(
        sink["192.0.2.2:9999"].as_u64(),
        Some(1),
        "other UDP reaches the kernel: {sink}"
    );
}

#[test]
fn socket_backend_through_nat_with_scapy_peer() {
    let (report, gw, sink) = scenario("xs-", "socket");
    check(&report, &gw, &sink);
    assert_eq!(gw["workers"][0]["backend"], "socket");
}

#[test]
fn afxdp_backend_through_nat_with_scapy_peer() {
    let (report, gw, sink) = scenario("xa-", "afxdp");
    check(&report, &gw, &sink);
    assert_eq!(gw["workers"][0]["backend"], "afxdp");
    let backend = gw["backend"].as_str().unwrap();
    assert!(backend.starts_with("afxdp (XDP"), "{backend}");
    // The packets took the XDP path: the program redirected every NAT-T frame the gateway saw.
    let xdp = &gw["xdp"];
    let redirected = xdp["redirected"].as_u64().unwrap();
    assert!(
        redirected >= total(&gw)["rx_frames"].as_u64().unwrap(),
        "{xdp}"
    );
    assert!(
        xdp["passed_other_port"].as_u64().unwrap() >= 2,
        "UDP 500 and 9999 were passed to the kernel: {xdp}"
    );
}
