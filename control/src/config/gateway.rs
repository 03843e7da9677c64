//! The gateway configuration (`xdpsec run --config gw.toml`): interfaces and settings in a
//! `[gateway]` table, static SAs as `[[sa]]` tables (the SA file format).
//!
//! ```toml
//! [gateway]
//! listen = "192.0.2.2:4500"   # our NAT-T address (a specific address, not 0.0.0.0)
//! wan = "eth0"                # WAN interface for XDP/AF_XDP
//! backend = "auto"            # "auto" (AF_XDP, else socket) | "afxdp" | "socket"
//! tun = "xdpsec0"             # inner-side TUN device
//! tun_mtu = 1400              # MTU of the TUN (leave room for ESP-in-UDP overhead)
//! routes = ["10.99.0.0/24"]   # prefixes routed into the TUN (the peers' inner networks)
//! wan_mtu = 1500              # largest outer packet sent
//! metrics = "127.0.0.1:9469"  # optional: Prometheus text metrics at GET /metrics (loopback only)
//! workers = "auto"            # "auto" (one per WAN RX queue, at most one per core) | 1..=64
//!
//! [[sa]]
//! # … as in the SA file
//!
//! [[conn]]
//! # IKEv2 connections: see [`super::conn`]
//! ```

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use xdpsec_dataplane::sa::{IpPrefix, SaParams};
use zeroize::Zeroizing;

use super::conn::{self, RawConn};
use super::sa_file::{self, RawSa};
use super::{ConfigError, line_of, toml_error};
use crate::ike::session::ConnConfig;

/// Which WAN backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// AF_XDP if the XDP program attaches, else the socket backend (and say so).
    Auto,
    /// AF_XDP or fail.
    AfXdp,
    /// A kernel UDP socket with recvmmsg/sendmmsg.
    Socket,
}

/// How many workers to run (issue #3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// One per WAN RX queue (AF_XDP) or per core (socket backend), at most one per core.
    Auto,
    /// Exactly this many (AF_XDP: at most one per RX queue); pinned round-robin over cores.
    Count(usize),
}

/// A validated gateway configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// Our NAT-T address.
    pub listen: SocketAddr,
    /// WAN interface (XDP attach point).
    pub wan: Option<String>,
    /// Backend choice.
    pub backend: Backend,
    /// TUN device name.
    pub tun: String,
    /// TUN MTU.
    pub tun_mtu: u32,
    /// Prefixes routed into the TUN.
    pub routes: Vec<IpPrefix>,
    /// Largest outer packet.
    pub wan_mtu: usize,
    /// Prometheus endpoint (loopback), if enabled.
    pub metrics: Option<SocketAddr>,
    /// Static SAs.
    pub sas: Vec<SaParams>,
    /// IKEv2 connections (none: no IKE, UDP 500 stays with the kernel).
    pub conns: Vec<ConnConfig>,
    /// Number of workers.
    pub workers: Workers,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    gateway: Spanned<RawGateway>,
    #[serde(default)]
    sa: Vec<RawSa>,
    #[serde(default)]
    conn: Vec<RawConn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    listen: Spanned<String>,
    wan: Option<String>,
    backend: Option<Spanned<String>>,
    tun: Option<Spanned<String>>,
    tun_mtu: Option<Spanned<i64>>,
    routes: Option<Spanned<Vec<String>>>,
    wan_mtu: Option<Spanned<i64>>,
    metrics: Option<Spanned<String>>,
    workers: Option<Spanned<RawWorkers>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawWorkers {
    Name(String),
    Count(i64),
}

/// Read and validate a gateway configuration file.
pub fn load(path: &Path) -> Result<Gateway, ConfigError> {
    let name = path.display().to_string();
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{name}: {e}")))?,
    );
    parse(&name, &text, path.parent().unwrap_or(Path::new(".")))
}

/// Parse a gateway configuration. `file` names it in error messages; relative paths in it
/// (PSK files) start from `dir`.
pub fn parse(file: &str, text: &str, dir: &Path) -> Result<Gateway, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    let err = |at: usize, field: &str, msg: String| {
        ConfigError(format!(
            "{file}:{}: gateway.{field}: {msg}",
            line_of(text, at)
        ))
    };
    let g = raw.gateway.get_ref();
    let listen: SocketAddr = g.listen.get_ref().parse().map_err(|_| {
        err(
            g.listen.span().start,
            "listen",
            format!("\"{}\" is not ADDRESS:PORT", g.listen.get_ref()),
        )
    })?;
    if listen.ip().is_unspecified() {
        return Err(err(g.listen.span().start, "listen", "must be a specific address (it is the destination of every packet the gateway receives)".into()));
    }
    let backend = match g
        .backend
        .as_ref()
        .map(|b| (b.get_ref().as_str(), b.span().start))
    {
        None | Some(("auto", _)) => Backend::Auto,
        Some(("afxdp", _)) => Backend::AfXdp,
        Some(("socket", _)) => Backend::Socket,
        Some((other, at)) => {
            return Err(err(
                at,
                "backend",
                format!("\"{other}\" is not \"auto\", \"afxdp\" or \"socket\""),
            ));
        }
    };
    if backend != Backend::Socket && g.wan.is_none() {
        return Err(err(
            raw.gateway.span().start,
            "wan",
            "required unless backend = \"socket\" (the interface XDP attaches to)".into(),
        ));
    }
    let tun = match &g.tun {
        None => "xdpsec0".to_string(),
        Some(t) if t.get_ref().is_empty() || t.get_ref().len() > 15 => {
            return Err(err(
                t.span().start,
                "tun",
                "interface names are 1..15 bytes".into(),
            ));
        }
        Some(t) => t.get_ref().clone(),
    };
    let int = |v: &Option<Spanned<i64>>,
               field: &str,
               default: i64,
               range: std::ops::RangeInclusive<i64>| match v {
        None => Ok(default),
        Some(x) if range.contains(x.get_ref()) => Ok(*x.get_ref()),
        Some(x) => Err(err(
            x.span().start,
            field,
            format!(
                "{} is outside {}..={}",
                x.get_ref(),
                range.start(),
                range.end()
            ),
        )),
    };
    let tun_mtu = int(&g.tun_mtu, "tun_mtu", 1400, 576..=9000)? as u32;
    let wan_mtu = int(&g.wan_mtu, "wan_mtu", 1500, 576..=9000)? as usize;
    let routes = super::parse_prefixes(&g.routes, |at, e| err(at, "routes", e))?;
    let metrics = match &g.metrics {
        None => None,
        Some(m) => Some(
            m.get_ref()
                .parse::<SocketAddr>()
                .map_err(|_| format!("\"{}\" is not ADDRESS:PORT", m.get_ref()))
                .and_then(crate::metrics::check_addr)
                .map_err(|e| {
                    err(
                        m.span().start,
                        "metrics",
                        e.trim_start_matches("metrics: ").into(),
                    )
                })?,
        ),
    };
    let conns = conn::convert(file, text, dir, &raw.conn)?;
    let workers = match &g.workers {
        None => Workers::Auto,
        Some(w) => match w.get_ref() {
            RawWorkers::Name(n) if n == "auto" => Workers::Auto,
            RawWorkers::Count(n @ 1..=64) => Workers::Count(*n as usize),
            RawWorkers::Name(n) => {
                return Err(err(
                    w.span().start,
                    "workers",
                    format!("\"{n}\" is not \"auto\" or a number 1..=64"),
                ));
            }
            RawWorkers::Count(n) => {
                return Err(err(
                    w.span().start,
                    "workers",
                    format!("{n} is outside 1..=64"),
                ));
            }
        },
    };
    let sas = sa_file::convert(file, text, raw.sa)?;
    Ok(Gateway {
        metrics,
        conns,
        listen,
        wan: g.wan.clone(),
        backend,
        tun,
        tun_mtu,
        routes,
        wan_mtu,
        sas,
        workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: &str = r#"
[gateway]
listen = "192.0.2.2:4500"
backend = "socket"
routes = ["10.99.0.0/24"]

[[sa]]
spi = 0x1000
direction = "in"
mode = "tunnel"
aead = "aes128gcm16"
key = "0x000102030405060708090a0b0c0d0e0f10111213"
local = "192.0.2.2:4500"
remote = "any"
"#;

    fn parse_here(file: &str, text: &str) -> Result<Gateway, ConfigError> {
        parse(file, text, Path::new("."))
    }

    #[test]
    fn parses_with_defaults() {
        let g = parse_here("gw.toml", GW).unwrap();
        assert_eq!(g.backend, Backend::Socket);
        assert_eq!(g.workers, Workers::Auto);
        let w = |v: &str| {
            parse_here(
                "gw.toml",
                &GW.replace(
                    "backend = \"socket\"",
                    &format!("backend = \"socket\"\nworkers = {v}"),
                ),
            )
        };
        assert_eq!(w("2").unwrap().workers, Workers::Count(2));
        assert_eq!(w("\"auto\"").unwrap().workers, Workers::Auto);
        assert_eq!(
            w("0").unwrap_err().to_string(),
            "gw.toml:5: gateway.workers: 0 is outside 1..=64"
        );
        assert!(
            w("\"many\"")
                .unwrap_err()
                .to_string()
                .contains("is not \"auto\"")
        );
        assert_eq!(
            (g.tun.as_str(), g.tun_mtu, g.wan_mtu),
            ("xdpsec0", 1400, 1500)
        );
        assert_eq!(g.routes[0].to_string(), "10.99.0.0/24");
        assert_eq!(g.sas.len(), 1);
    }

    #[test]
    fn errors_are_one_line_with_position() {
        let e = parse_here(
            "gw.toml",
            &GW.replace("backend = \"socket\"", "backend = \"dpdk\""),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "gw.toml:4: gateway.backend: \"dpdk\" is not \"auto\", \"afxdp\" or \"socket\""
        );
        let e = parse_here(
            "gw.toml",
            &GW.replace("backend = \"socket\"", "backend = \"auto\""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("gateway.wan: required"), "{e}");
        let e = parse_here(
            "gw.toml",
            &GW.replace(
                "backend = \"socket\"",
                "backend = \"socket\"\nmetrics = \"0.0.0.0:9469\"",
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("gw.toml:5: gateway.metrics: 0.0.0.0:9469 is not a loopback"),
            "{e}"
        );
        let g = parse_here(
            "gw.toml",
            &GW.replace(
                "backend = \"socket\"",
                "backend = \"socket\"\nmetrics = \"127.0.0.1:9469\"",
            ),
        )
        .unwrap();
        assert_eq!(g.metrics, "127.0.0.1:9469".parse().ok());
        let e = parse_here(
            "gw.toml",
            &GW.replace("192.0.2.2:4500\"\nbackend", "0.0.0.0:4500\"\nbackend"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("gateway.listen: must be a specific address"),
            "{e}"
        );
        let e = parse_here("gw.toml", &GW.replace("key = \"0x00", "key = \"0x"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gw.toml:12: sa[0].key:"), "{e}");
        let e = parse_here("gw.toml", &format!("{GW}\n[gateway2]\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gateway2"), "{e}");
    }
}
