//! Prometheus text metrics (exposition format 0.0.4) on an optional loopback HTTP endpoint,
//! `[gateway] metrics = "127.0.0.1:9469"`: `GET /metrics`.
//!
//! Rendering is a pure function of the same [`GatewayReport`] that `xdpsec stats --json` shows,
//! so both always agree; every numeric field of a worker becomes one series labelled with the
//! worker index, drops are one series per reason. Served by a small thread that is off the hot
//! path (it reads the counters the workers publish every 100 ms).

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::api::ApiState;
use crate::stats::GatewayReport;

/// Worker fields that are levels, not counters.
const GAUGES: [&str; 2] = ["sas_in", "sas_out"];

/// The report in Prometheus text format.
pub fn render(report: &GatewayReport, uptime: Duration, extra: &[(String, f64)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE xdpsec_up gauge\nxdpsec_up 1");
    let _ = writeln!(
        out,
        "# TYPE xdpsec_uptime_seconds gauge\nxdpsec_uptime_seconds {}",
        uptime.as_secs()
    );
    // series name -> lines, so each metric's TYPE line is written once, before its samples
    let mut series: std::collections::BTreeMap<String, (&'static str, Vec<String>)> =
        std::collections::BTreeMap::new();
    let mut add = |name: String, kind: &'static str, labels: String, v: String| {
        series
            .entry(name.clone())
            .or_insert_with(|| (kind, Vec::new()))
            .1
            .push(if labels.is_empty() {
                format!("{name} {v}")
            } else {
                format!("{name}{{{labels}}} {v}")
            });
    };
    for (i, w) in report.workers.iter().enumerate() {
        let Ok(Value::Object(fields)) = serde_json::to_value(w) else {
            continue;
        };
        for (field, value) in fields {
            match value {
                Value::Number(n) if GAUGES.contains(&field.as_str()) => {
                    add(
                        format!("xdpsec_{field}"),
                        "gauge",
                        format!("worker=\"{i}\""),
                        n.to_string(),
                    );
                }
                Value::Number(n) => add(
                    format!("xdpsec_{field}_total"),
                    "counter",
                    format!("worker=\"{i}\""),
                    n.to_string(),
                ),
                Value::Object(drops) if field == "drops" => {
                    for (reason, n) in drops {
                        add(
                            "xdpsec_drops_total".into(),
                            "counter",
                            format!("worker=\"{i}\",reason=\"{reason}\""),
                            n.to_string(),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    for (counter, n) in report.xdp.iter().flatten() {
        add(
            "xdpsec_xdp_packets_total".into(),
            "counter",
            format!("counter=\"{counter}\""),
            n.to_string(),
        );
    }
    for (name, v) in extra {
        let (metric, labels) = match name.split_once('{') {
            Some((m, rest)) => (m.to_string(), rest.trim_end_matches('}').to_string()),
            None => (name.clone(), String::new()),
        };
        let kind = if metric.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        add(metric, kind, labels, v.to_string());
    }
    for (name, (kind, lines)) in series {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    }
    out
}

/// The IKE runtime's series: IKE SAs by state, child SAs, messages and drops by reason.
pub fn ike_series(api: &ApiState) -> Vec<(String, f64)> {
    let (Some(stats), Some(conns)) = (api.ike_stats(), api.ike_list()) else {
        return Vec::new();
    };
    let mut v = vec![
        ("xdpsec_ike_half_open".to_string(), stats.half_open as f64),
        (
            "xdpsec_ike_received_total".to_string(),
            stats.received as f64,
        ),
        ("xdpsec_ike_sent_total".to_string(), stats.sent as f64),
    ];
    for state in ["connecting", "established", "rekeying", "deleting"] {
        let n = conns.iter().filter(|c| c.state == state).count();
        v.push((format!("xdpsec_ike_sas{{state=\"{state}\"}}"), n as f64));
    }
    let children: usize = conns.iter().map(|c| c.children.len()).sum();
    v.push(("xdpsec_child_sas".to_string(), children as f64));
    for (reason, n) in &stats.drops {
        v.push((
            format!("xdpsec_ike_dropped_total{{reason=\"{reason}\"}}"),
            *n as f64,
        ));
    }
    v
}

/// Checks the configured address: loopback only (the endpoint has no authentication).
pub fn check_addr(addr: SocketAddr) -> Result<SocketAddr, String> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "metrics: {addr} is not a loopback address (the endpoint has no authentication; scrape it locally)"
        ))
    }
}

/// Binds the endpoint (at start-up, so a busy port is a clear start-up error).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves `GET /metrics` until `stop` is set; `extra` adds series from outside the workers
/// (the IKE engine's).
pub fn serve(
    listener: TcpListener,
    api: Arc<ApiState>,
    stop: Arc<AtomicBool>,
    extra: impl Fn() -> Vec<(String, f64)>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let body = render(&api.report(), api.started.elapsed(), &extra());
                let _ = answer(stream, &body);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answer(stream: TcpStream, body: &str) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // drain the headers (bounded: a client gets 64 lines)
    for _ in 0..64 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let mut stream = stream;
    if method == Some("GET") && matches!(path, Some("/metrics") | Some("/")) {
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        let msg = "only GET /metrics is served here\n";
        write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::WorkerReport;

    #[test]
    fn every_worker_counter_and_drop_reason_becomes_a_series() {
        let mut w = WorkerReport {
            backend: "socket",
            decap_packets: 7,
            sas_in: 2,
            ..WorkerReport::default()
        };
        w.drops.insert("replay", 3);
        let report = GatewayReport {
            backend: "socket".into(),
            xdp: Some([("redirected", 5u64)].into_iter().collect()),
            workers: vec![w.clone(), w],
        };
        let text = render(
            &report,
            Duration::from_secs(9),
            &[("xdpsec_ike_sas{state=\"established\"}".into(), 1.0)],
        );
        for want in [
            "# TYPE xdpsec_decap_packets_total counter",
            "xdpsec_decap_packets_total{worker=\"0\"} 7",
            "xdpsec_decap_packets_total{worker=\"1\"} 7",
            "# TYPE xdpsec_sas_in gauge",
            "xdpsec_sas_in{worker=\"1\"} 2",
            "xdpsec_drops_total{worker=\"0\",reason=\"replay\"} 3",
            "xdpsec_xdp_packets_total{counter=\"redirected\"} 5",
            "xdpsec_ike_sas{state=\"established\"} 1",
            "xdpsec_uptime_seconds 9",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // each TYPE line once
        assert_eq!(text.matches("# TYPE xdpsec_drops_total").count(), 1);
        assert!(!text.contains("backend"));
    }

    #[test]
    fn only_loopback_is_accepted() {
        assert!(check_addr("127.0.0.1:9469".parse().unwrap()).is_ok());
        assert!(check_addr("[::1]:9469".parse().unwrap()).is_ok());
        let e = check_addr("0.0.0.0:9469".parse().unwrap()).unwrap_err();
        assert!(e.starts_with("metrics: "), "{e}");
    }
}
