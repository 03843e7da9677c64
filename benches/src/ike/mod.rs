//! Scenario `ike`: IKEv2 handshakes per second (issue #5), with the PSK road-warrior
//! connection of docs/CONFIG.md (virtual IP from a pool, one tunnel-mode child SA).
//!
//! - in process ([`inproc`]): N initiator engines against one responder engine on one core,
//!   no I/O; handshakes per second of engine time and µs per call split by step, so the
//!   responder's share is known;
//! - over the wire ([`wire`], root): a generator of initiator engines on a UDP socket against
//!   `xdpsec run` and against strongSwan's charon, both with the same connection, proposals
//!   and PSK, in the e2e scenario's namespaces (prefix `xb-`).

mod inproc;
mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde::Serialize;
use xdpsec_control::ike::crypto::transform::{Encr, EspSuite, IkeSuite};
use xdpsec_control::ike::payload::Identity;
use xdpsec_control::ike::session::{ConnConfig, ESP_GCM128, ESP_GCM256, Timers};
use xdpsec_control::ike::suite_names::{esp_name, parse_ike};

use crate::e2e::{self, topo};
use crate::harness::{self, Plan, Progress, Sample, median};
use crate::report::{Report, Table, Target};
use crate::svg::{Chart, Series};
use inproc::{Handshakes, Step, StepTime};

/// The PSK of every connection of the scenario.
pub const PSK: &[u8] = b"xdpsec-bench-psk-not-a-secret";
/// The responder's address (the e2e topology's gateway).
const GW_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// IKE goes to UDP 4500 from the first message (RFC 7296 §2.23 allows it without a NAT).
pub const NATT_PORT: u16 = 4500;

/// Options of the scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// IKE suites the initiators propose (strongSwan notation); the ESP proposal is
    /// AES-GCM-16 with the same key size. The responders accept both defaults.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "aes128gcm16-prfsha256-x25519,aes256gcm16-prfsha384-ecp384"
    )]
    pub suites: Vec<String>,
    /// In process: initiator engines per wave (below the responder's cookie threshold, 64).
    #[arg(long, default_value_t = 16)]
    pub initiators: usize,
    /// Over the wire: handshakes the generator keeps in flight.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub concurrency: Vec<usize>,
    /// Over the wire: responders to measure ("xdpsec", "strongswan").
    #[arg(long, value_delimiter = ',', default_value = "xdpsec,strongswan")]
    pub responders: Vec<String>,
    /// Only the in-process part (needs no root).
    #[arg(long)]
    pub in_process_only: bool,
    /// Diagnostic: initiators ask for no virtual IP and propose any address as their side,
    /// so the xdpsec responder installs no route per child SA. xdpsec only (strongSwan's
    /// responder would need another connection).
    #[arg(long)]
    pub no_vip: bool,
    /// The `xdpsec` binary (default: next to this one, i.e. target/release/xdpsec).
    #[arg(long)]
    pub xdpsec: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            suites: vec![
                "aes128gcm16-prfsha256-x25519".into(),
                "aes256gcm16-prfsha384-ecp384".into(),
            ],
            initiators: 16,
            concurrency: vec![1, 16],
            responders: vec!["xdpsec".into(), "strongswan".into()],
            in_process_only: false,
            no_vip: false,
            xdpsec: None,
        }
    }
}

/// A suite to measure: IKE, the matching ESP, and its name.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The initiators' only IKE proposal.
    pub ike: IkeSuite,
    /// Their only ESP proposal.
    pub esp: EspSuite,
    /// `ike` in strongSwan's notation.
    pub name: String,
}

impl Suite {
    fn parse(s: &str) -> Result<Self, String> {
        let ike = parse_ike(s).map_err(|e| format!("--suites: \"{s}\": {e}"))?;
        let esp = match ike.encr {
            Encr::AesGcm16 { key_bits: 128 } | Encr::AesCbc { key_bits: 128 } => ESP_GCM128,
            _ => ESP_GCM256,
        };
        Ok(Self {
            ike,
            esp,
            name: s.to_string(),
        })
    }
}

/// Initiator connection `name` (identity `client-<i>.bench`) to the responder on UDP 4500,
/// proposing `suite`, for the responder's LAN; with `vip` it asks for a virtual IP (RFC 7296
/// §2.19), without it proposes any address as its side (TSi 0.0.0.0/0).
pub fn client_conn(name: &str, i: usize, suite: &Suite, vip: bool) -> Result<ConnConfig, String> {
    let mut c = ConnConfig::initiator(
        name,
        SocketAddr::new(IpAddr::V4(GW_IP), NATT_PORT),
        Identity::Fqdn(format!("client-{i}.bench")),
        PSK,
    );
    c.remote_id = Some(Identity::Fqdn("gw.bench".into()));
    c.ike = vec![suite.ike];
    c.esp = vec![suite.esp];
    c.remote_ts = vec![lan()?];
    c.request_vip = vip;
    c.validate()?;
    Ok(c)
}

/// The responder: any initiator ID with the PSK, both default suites, virtual IPs from
/// 10.99.0.0/16, LAN 10.9.0.0/24 (as the daemon's `[[conn]]` in [`wire`]).
pub fn gw_conn() -> Result<ConnConfig, String> {
    let mut c = ConnConfig::responder("rw", Identity::Fqdn("gw.bench".into()), PSK);
    c.local_ts = vec![lan()?];
    c.pool = Some((IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)), 65_534));
    c.validate()?;
    Ok(c)
}

/// The responder's LAN, 10.9.0.0/24.
fn lan() -> Result<xdpsec_dataplane::sa::IpPrefix, String> {
    xdpsec_dataplane::sa::IpPrefix::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 0)), 24)
}

/// One in-process point.
#[derive(Debug, Clone, Serialize)]
pub struct InProcPoint {
    /// IKE suite.
    pub suite: String,
    /// Initiator engines per wave.
    pub initiators: usize,
    /// Handshakes (with their deletes) per second of engine time, both sides on one core.
    pub handshakes_per_s: f64,
    /// Median µs per call of every step.
    pub steps: Vec<StepTime>,
    /// Initiator µs per handshake, delete included (sum of its steps' medians).
    pub initiator_us: f64,
    /// Responder µs per handshake, delete included.
    pub responder_us: f64,
    /// Responder µs of IKE_SA_INIT + IKE_AUTH alone.
    pub responder_handshake_us: f64,
    /// Handshakes per second one responder core could answer: 1e6 / `responder_us`.
    pub responder_capacity: f64,
    /// The harness's totals.
    pub sample: Sample,
}

fn in_process_point(plan: Plan, suite: &Suite, n: usize, vip: bool) -> Result<InProcPoint, String> {
    let core = harness::cores(1)
        .first()
        .copied()
        .ok_or("no core to pin to")?;
    let mut w = Handshakes::new(n, suite, vip)?;
    let sample = harness::measure_on(core, &mut w, plan.point())?;
    let steps = w.steps();
    let sum = |f: &dyn Fn(Step) -> bool| -> f64 {
        steps
            .iter()
            .filter(|s| f(s.step))
            .map(|s| s.median_us)
            .sum()
    };
    let responder_us = sum(&|s| s.responder());
    Ok(InProcPoint {
        suite: suite.name.clone(),
        initiators: n,
        handshakes_per_s: sample.mpps() * 1e6,
        initiator_us: sum(&|s| !s.responder()),
        responder_us,
        responder_handshake_us: sum(&|s| s.responder() && s.handshake()),
        responder_capacity: 1e6 / responder_us.max(1e-9),
        steps,
        sample,
    })
}

/// Run the scenario: in process always; over the wire unless `in_process_only`, or when it
/// cannot run here (`wire_skipped` says why in the report).
pub fn run(plan: Plan, opts: &Options) -> Result<Report, String> {
    let suites: Vec<Suite> = opts
        .suites
        .iter()
        .map(|s| Suite::parse(s))
        .collect::<Result<_, _>>()?;
    if opts.initiators == 0 || opts.concurrency.contains(&0) {
        return Err("--initiators and --concurrency must be at least 1".into());
    }
    let cookies = Timers::default().cookie_threshold;
    if opts.initiators > cookies {
        return Err(format!(
            "--initiators {}: at most {cookies}; beyond, the responder asks for cookies (RFC 7296 §2.6) and the in-process steps would mix with cookie rounds",
            opts.initiators
        ));
    }
    for r in &opts.responders {
        if r != "xdpsec" && r != "strongswan" {
            return Err(format!(
                "--responders: \"{r}\" (expected xdpsec, strongswan)"
            ));
        }
        if r == "strongswan" && opts.no_vip {
            return Err(
                "--no-vip is for the xdpsec responder only: add --responders xdpsec".into(),
            );
        }
    }
    let wire = if opts.in_process_only {
        Err("--in-process-only".to_string())
    } else {
        e2e::find_gateway(opts.xdpsec.as_deref())
    };
    let wire_points = match &wire {
        Ok(_) => plan.rounds * suites.len() * opts.concurrency.len() * opts.responders.len(),
        Err(why) => {
            eprintln!("ike: over the wire: skipped: {why}");
            0
        }
    };
    let mut progress = Progress::new("ike", plan.rounds * suites.len() + wire_points);
    let mut inproc = Vec::new();
    for _ in 0..plan.rounds {
        for s in &suites {
            progress.start(&format!(
                "in process, {}, {} initiators",
                s.name, opts.initiators
            ));
            let p = in_process_point(plan, s, opts.initiators, !opts.no_vip)?;
            progress.end(&format!(
                "{:.0} handshakes/s (one core, both sides); initiator {:.0} µs, responder {:.0} µs per handshake",
                p.handshakes_per_s, p.initiator_us, p.responder_us
            ));
            inproc.push(p);
            plan.pause();
        }
    }
    let mut wire_result = WireResult::default();
    match wire {
        Ok(xdpsec) => wire_result = measure_wire(plan, opts, &suites, &xdpsec, &mut progress)?,
        Err(why) => wire_result.skipped = Some(why),
    }
    progress.finish();
    Ok(report(plan, opts, &suites, inproc, wire_result))
}

/// What the over-the-wire part produced.
#[derive(Debug, Default)]
struct WireResult {
    points: Vec<wire::Point>,
    /// Why nothing was measured over the wire.
    skipped: Option<String>,
    /// Responders that could not run, and why.
    missing: Vec<(String, String)>,
}

fn measure_wire(
    plan: Plan,
    opts: &Options,
    suites: &[Suite],
    xdpsec: &std::path::Path,
    progress: &mut Progress,
) -> Result<WireResult, String> {
    e2e::catch_sigint();
    let dir = std::env::temp_dir().join(format!("xdpsec-bench-ike-{}", std::process::id()));
    let topo = topo::Topology::up()?;
    // the gateway pins its worker to the last core; the generator takes the first
    let core = core_affinity::get_core_ids().and_then(|c| c.first().copied());
    let mut out = WireResult::default();
    let result = (|| {
        for _ in 0..plan.rounds {
            for name in &opts.responders {
                if out.missing.iter().any(|(n, _)| n == name) {
                    continue;
                }
                let responder = match name.as_str() {
                    "xdpsec" => wire::Responder::xdpsec(xdpsec, &dir)?,
                    _ => match e2e::strongswan::unavailable()
                        .map_or_else(|| wire::Responder::strongswan(&dir), Err)
                    {
                        Ok(r) => r,
                        Err(why) => {
                            eprintln!("ike: strongSwan responder not possible: {why}");
                            out.missing.push((name.clone(), why));
                            continue;
                        }
                    },
                };
                for s in suites {
                    // one handshake first: the responder must work at all
                    let warm = wire::point(
                        &responder,
                        s,
                        !opts.no_vip,
                        1,
                        std::time::Duration::from_millis(300),
                        core,
                    )?;
                    if warm.completed == 0 {
                        return Err(format!(
                            "no handshake with the {name} responder ({} failures: {:?}); its log: {}",
                            s.name,
                            warm.failures,
                            responder.log_text()
                        ));
                    }
                    for &c in &opts.concurrency {
                        if e2e::INTERRUPTED.load(Ordering::Relaxed) {
                            return Err("interrupted".into());
                        }
                        progress.start(&format!("{name}, {}, {c} in flight", s.name));
                        let p = wire::point(&responder, s, !opts.no_vip, c, plan.point(), core)?;
                        progress.end(&format!(
                            "{:.0} handshakes/s, failures {:?}, p50 {:.1} ms, responder CPU {:.0} % ({:.0} µs/handshake), generator CPU {:.0} %",
                            p.handshakes_per_s,
                            p.failures,
                            p.p50_ms,
                            p.responder_cpu_pct,
                            p.responder_cpu_us,
                            p.generator_cpu_pct
                        ));
                        out.points.push(p);
                        plan.pause();
                    }
                }
            }
        }
        Ok(())
    })();
    drop(topo);
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|()| out)
}

/// Median over rounds of `f` for the in-process points of `suite`.
fn inproc_median(points: &[InProcPoint], suite: &str, f: impl Fn(&InProcPoint) -> f64) -> f64 {
    median(points.iter().filter(|p| p.suite == suite).map(f).collect())
}

fn report(
    plan: Plan,
    opts: &Options,
    suites: &[Suite],
    inproc: Vec<InProcPoint>,
    wire: WireResult,
) -> Report {
    let mut r = Report::new("ike", "IKEv2 handshakes per second", plan);
    let m = |s: &Suite, f: fn(&InProcPoint) -> f64| inproc_median(&inproc, &s.name, f);
    let mut t = Table::new(
        &format!(
            "In process, one core: {} initiator engines ↔ one responder engine (medians over rounds)",
            opts.initiators
        ),
        &[
            "IKE suite",
            "ESP",
            "handshakes/s (both sides)",
            "initiator µs / handshake",
            "responder µs / handshake",
            "of which IKE_SA_INIT + IKE_AUTH",
            "responder alone: handshakes/s per core",
        ],
    );
    for s in suites {
        t.row(vec![
            s.name.clone(),
            esp_name(&s.esp),
            format!("{:.0}", m(s, |p| p.handshakes_per_s)),
            format!("{:.0}", m(s, |p| p.initiator_us)),
            format!("{:.0}", m(s, |p| p.responder_us)),
            format!("{:.0}", m(s, |p| p.responder_handshake_us)),
            format!("{:.0}", m(s, |p| p.responder_capacity)),
        ]);
    }
    r.tables.push(t);
    let mut header = vec!["step".to_string()];
    header.extend(suites.iter().map(|s| format!("{} µs", s.name)));
    let mut t = Table {
        title: "In process: median µs per call".into(),
        header,
        rows: Vec::new(),
    };
    for step in Step::ALL {
        let mut row = vec![step.label().to_string()];
        for s in suites {
            let v = median(
                inproc
                    .iter()
                    .filter(|p| p.suite == s.name)
                    .flat_map(|p| p.steps.iter().filter(|x| x.step == step))
                    .map(|x| x.median_us)
                    .collect(),
            );
            row.push(format!("{v:.1}"));
        }
        t.row(row);
    }
    r.tables.push(t);
    r.charts.push(Chart {
        title:
            "In process: µs of engine time per handshake (delete included), one core (log scale)"
                .into(),
        y_label: "µs".into(),
        categories: suites.iter().map(|s| s.name.clone()).collect(),
        series: vec![
            Series {
                name: "initiator".into(),
                values: suites
                    .iter()
                    .map(|s| Some(m(s, |p| p.initiator_us)))
                    .collect(),
            },
            Series {
                name: "responder".into(),
                values: suites
                    .iter()
                    .map(|s| Some(m(s, |p| p.responder_us)))
                    .collect(),
            },
        ],
        reference: None,
        log_y: true,
    });
    wire_tables(&mut r, opts, suites, &wire);
    r.notes = vec![
        format!(
            "In process: each wave, {} initiator engines (one connection each, ID client-N.bench, asking for a virtual IP and 10.9.0.0/24) start IKE_SA_INIT at once; every message goes straight into the other engine's `handle` until all are quiet, then all initiators delete their IKE SA (INFORMATIONAL Delete). One thread pinned to one core runs both sides; each `initiate` / `handle` / `terminate` call is timed alone. Handshakes/s = handshakes per second of time inside those calls (waves slower than 5× the median left out as descheduled: {}); µs per handshake = sums of per-step medians. The responder accepts any ID with the PSK, both suites, virtual IPs from 10.99.0.0/16 (`ConnConfig::responder` defaults otherwise). Every wave must complete and delete every handshake, or the run fails.",
            opts.initiators,
            inproc
                .iter()
                .map(|p| p.sample.preempted)
                .sum::<u64>()
        ),
        "Randomness comes from `ring::rand::SystemRandom` (getrandom) as in the daemon; D-H is `ring`'s X25519 / P-384.".into(),
    ];
    r.notes.extend(wire_notes(&wire));
    if opts.no_vip {
        r.notes.insert(0, "**--no-vip (diagnostic)**: the initiators asked for no virtual IP and proposed 0.0.0.0/0 as their side, so the responder assigned no address and xdpsec routed nothing per child SA; read \"asking for a virtual IP\" below accordingly.".into());
    }
    r.results = serde_json::json!({
        "virtual_ips": !opts.no_vip,
        "initiators": opts.initiators,
        "in_process": inproc,
        "wire": wire.points,
        "wire_skipped": wire.skipped,
        "responders_missing": wire.missing,
    });
    r
}

/// Median over rounds of `f` for one over-the-wire configuration.
fn wire_median(
    w: &WireResult,
    system: &str,
    suite: &str,
    c: usize,
    f: fn(&wire::Point) -> f64,
) -> Option<f64> {
    let v: Vec<f64> = w
        .points
        .iter()
        .filter(|p| p.system == system && p.suite == suite && p.concurrency == c)
        .map(f)
        .filter(|x| !x.is_nan())
        .collect();
    (!v.is_empty()).then(|| median(v))
}

fn wire_tables(r: &mut Report, opts: &Options, suites: &[Suite], w: &WireResult) {
    if let Some(why) = &w.skipped {
        r.targets.push(Target {
            name: "over the wire: xdpsec responder vs strongSwan responder".into(),
            goal: "≥ 1× strongSwan's handshakes/s".into(),
            measured: format!("not run: {why}"),
            pass: None,
        });
        return;
    }
    let mut t = Table::new(
        "Over the wire (medians over rounds)",
        &[
            "responder",
            "IKE suite",
            "in flight",
            "handshakes/s",
            "failures",
            "messages / handshake",
            "p50 ms",
            "p99 ms",
            "responder CPU %",
            "responder CPU µs / handshake",
            "generator CPU %",
        ],
    );
    let o = |v: Option<f64>, d: usize| v.map_or("–".into(), |x| format!("{x:.d$}"));
    let mut categories = Vec::new();
    for s in suites {
        for &c in &opts.concurrency {
            categories.push((s.name.clone(), c));
            for sys in &opts.responders {
                if let Some((_, why)) = w.missing.iter().find(|(n, _)| n == sys) {
                    let mut cells = vec![sys.clone(), s.name.clone(), c.to_string()];
                    cells.push(format!("not measured: {why}"));
                    cells.extend(std::iter::repeat_n("–".to_string(), 7));
                    t.row(cells);
                    continue;
                }
                let med = |f| wire_median(w, sys, &s.name, c, f);
                let failures: u64 = w
                    .points
                    .iter()
                    .filter(|p| p.system == *sys && p.suite == s.name && p.concurrency == c)
                    .flat_map(|p| p.failures.values())
                    .sum();
                t.row(vec![
                    sys.clone(),
                    s.name.clone(),
                    c.to_string(),
                    o(med(|p| p.handshakes_per_s), 0),
                    format!("{failures} (all rounds)"),
                    o(med(|p| p.messages_per_handshake), 2),
                    o(med(|p| p.p50_ms), 2),
                    o(med(|p| p.p99_ms), 2),
                    o(med(|p| p.responder_cpu_pct), 0),
                    o(med(|p| p.responder_cpu_us), 0),
                    o(med(|p| p.generator_cpu_pct), 0),
                ]);
            }
        }
    }
    r.tables.push(t);
    let labels: Vec<String> = categories
        .iter()
        .map(|(s, c)| format!("{}, {c} in flight", s.split('-').next_back().unwrap_or(s)))
        .collect();
    let systems: Vec<&String> = opts
        .responders
        .iter()
        .filter(|s| !w.missing.iter().any(|(n, _)| n == *s))
        .collect();
    for (title, unit, f) in [
        (
            "Over the wire: handshakes per second",
            "handshakes/s",
            (|p: &wire::Point| p.handshakes_per_s) as fn(&wire::Point) -> f64,
        ),
        (
            "Over the wire: responder CPU per handshake",
            "µs",
            |p: &wire::Point| p.responder_cpu_us,
        ),
    ] {
        r.charts.push(Chart {
            title: title.into(),
            y_label: unit.into(),
            categories: labels.clone(),
            series: systems
                .iter()
                .map(|sys| Series {
                    name: (*sys).clone(),
                    values: categories
                        .iter()
                        .map(|(s, c)| wire_median(w, sys, s, *c, f))
                        .collect(),
                })
                .collect(),
            reference: None,
            log_y: false,
        });
    }
    let top = opts.concurrency.iter().copied().max().unwrap_or(1);
    for s in suites {
        let x = wire_median(w, "xdpsec", &s.name, top, |p| p.handshakes_per_s);
        let ss = wire_median(w, "strongswan", &s.name, top, |p| p.handshakes_per_s);
        if let (Some(x), Some(ss)) = (x, ss) {
            let mut t = Target::at_least(
                &format!(
                    "over the wire, {}, {top} in flight: xdpsec vs strongSwan",
                    s.name
                ),
                "≥ 1× strongSwan's handshakes/s",
                x / ss.max(1e-9),
                1.0,
                "×",
            );
            t.measured = format!("{} ({x:.0} vs {ss:.0} handshakes/s)", t.measured);
            r.targets.push(t);
        }
    }
}

fn wire_notes(w: &WireResult) -> Vec<String> {
    if let Some(why) = &w.skipped {
        return vec![format!("Over the wire: not run: {why}.")];
    }
    vec![
        "Over the wire: namespaces xb-client 192.0.2.1 —veth— 192.0.2.2 xb-gw (the e2e topology). The generator is one thread pinned to the first core in xb-client: one initiator engine with one connection per handshake in flight (IDs client-N.bench, virtual IP requested), one UDP socket on 192.0.2.1:4500; IKE goes to port 4500 from IKE_SA_INIT on (RFC 7296 §2.23), with the non-ESP marker. Each connection is deleted as soon as its child SA is up and then started again. handshakes/s = child SAs up at the generator per second of wall time; latency = initiate → child SA up; messages / handshake = IKE messages the generator sent per completed handshake (3 without retransmissions or cookies: IKE_SA_INIT, IKE_AUTH, Delete); failures = attempts that ended in anything but our own delete (by reason in the JSON).".into(),
        "Responders, same connection (PSK, IKE aes128gcm16-prfsha256-x25519 and aes256gcm16-prfsha384-ecp384, ESP aes128gcm16 and aes256gcm16, local_ts 10.9.0.0/24, virtual IPs from 10.99.0.0/16, any initiator ID): `xdpsec run` on the AF_XDP backend (XDP program → AF_XDP worker pinned to the last core → control plane; answers leave through the worker), info-level log to a file; strongSwan 5.9.8 charon (kernel-libipsec, `benches/strongswan/ike-gw.conf`) with cookies above 64 half-open SAs (also from one address: `cookie_threshold_ip`, default 3) and no per-address limit below 4096 (`block_threshold`, default 5), like xdpsec's defaults, log level 1 to a file. Responder CPU = utime + stime of the process's threads and waited-for children (`/proc/PID/stat`) during the point.".into(),
        "Two vCPUs carry the generator, the responder and the kernel: the generator does as much D-H and PRF work per handshake as the responder, so with one generator core the rate is bounded by whichever side saturates first — compare responder CPU % and generator CPU %, and responder CPU µs / handshake between responders.".into(),
    ]
}

/// `ike` with its default options (used by `all`).
pub fn run_default(plan: Plan) -> Result<Report, String> {
    run(plan, &Options::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_pair_esp_by_key_size() {
        let s = Suite::parse("aes256gcm16-prfsha384-ecp384").unwrap();
        assert_eq!(s.esp, ESP_GCM256);
        let s = Suite::parse("aes128gcm16-prfsha256-x25519").unwrap();
        assert_eq!(s.esp, ESP_GCM128);
        assert!(Suite::parse("aes128gcm16").is_err());
    }

    #[test]
    fn a_wave_of_handshakes_completes() {
        let s = Suite::parse("aes128gcm16-prfsha256-x25519").unwrap();
        let mut h = Handshakes::new(3, &s, true).unwrap();
        use crate::harness::Workload;
        for _ in 0..2 {
            let t = h.batch().unwrap();
            assert_eq!(t.packets, 3);
        }
        let steps = h.steps();
        assert!(steps.iter().all(|s| s.calls == 6), "{steps:?}");
    }
}
