//! IKEv2 connections of the gateway configuration: `[[conn]]` tables.
//!
//! ```toml
//! [[conn]]
//! name = "rw"                        # unique; `xdpsec conn up|down NAME`
//! role = "responder"                 # "responder" (default) | "initiator"
//! remote = "any"                     # responder: "any" (default) or the one peer address;
//!                                    # initiator: the peer, ADDRESS or ADDRESS:PORT (port 500)
//! local_id = "gw.example"            # FQDN, IPv4/IPv6 address, user@fqdn, or "keyid:HEX"
//! remote_id = "client.example"       # optional: any identity that proves the PSK if absent
//! psk_file = "rw.psk"                # the pre-shared key, alone in a file readable only by
//!                                    # its owner (chmod 600); relative to this file's folder
//! ike = ["aes128gcm16-prfsha256-x25519", "aes256gcm16-prfsha384-ecp384"]   # strongSwan notation
//! esp = ["aes128gcm16", "aes256gcm16"]                                     # + "-esn", "-x25519" (PFS)
//! local_ts = ["10.9.0.0/24"]         # our inner networks (default: everything)
//! remote_ts = ["10.99.0.0/24"]       # theirs (default: everything; narrowed to a virtual IP)
//! pool = "10.99.0.0/24"              # responder: virtual IPs for road warriors (IPv4)
//! request_vip = false                # initiator: ask the responder for a virtual IP
//! replay_window = 1024               # inbound child SAs: 64..=4096, multiple of 64
//! encap = true                       # force ESP-in-UDP without a NAT (RFC 7296 §2.23 faked
//!                                    # NAT detection); false: come up only behind a real NAT
//! keepalive = "20s"                  # NAT-keepalives when we are behind a NAT (RFC 3948 §4)
//! dpd = "30s"                        # liveness check after this much silence; "0s" = off
//! ike_lifetime = "4h"                # rekeyed rekey_margin before (RFC 7296 §2.18)
//! child_lifetime = "1h"              # rekeyed rekey_margin before (RFC 7296 §2.8)
//! rekey_margin = "9m"
//! retransmit_base = "1s"             # doubles each time (RFC 7296 §2.1) …
//! retransmit_tries = 5               # … and the peer is dead after this many
//! ```
//!
//! Durations are a number with a unit (`ms`, `s`, `m`, `h`) or plain seconds.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use xdpsec_dataplane::replay::ReplayWindow;
use xdpsec_dataplane::sa::IpPrefix;
use zeroize::Zeroizing;

use super::{ConfigError, line_of};
use crate::ike::payload::Identity;
use crate::ike::session::{ConnConfig, Role, Timers};
use crate::ike::suite_names::{parse_esp, parse_ike};

/// IKE's port (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;

/// One `[[conn]]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConn {
    name: Spanned<String>,
    role: Option<Spanned<String>>,
    local: Option<Spanned<String>>,
    remote: Option<Spanned<String>>,
    local_id: Spanned<String>,
    remote_id: Option<Spanned<String>>,
    psk_file: Spanned<String>,
    ike: Option<Spanned<Vec<String>>>,
    esp: Option<Spanned<Vec<String>>>,
    local_ts: Option<Spanned<Vec<String>>>,
    remote_ts: Option<Spanned<Vec<String>>>,
    pool: Option<Spanned<String>>,
    request_vip: Option<bool>,
    encap: Option<bool>,
    replay_window: Option<Spanned<i64>>,
    keepalive: Option<Spanned<toml::Value>>,
    dpd: Option<Spanned<toml::Value>>,
    ike_lifetime: Option<Spanned<toml::Value>>,
    child_lifetime: Option<Spanned<toml::Value>>,
    rekey_margin: Option<Spanned<toml::Value>>,
    retransmit_base: Option<Spanned<toml::Value>>,
    retransmit_tries: Option<Spanned<i64>>,
}

/// Where errors point: the file, its text (for line numbers), the connection's index.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    /// The folder relative `psk_file` paths start from.
    dir: &'a Path,
    index: usize,
}

impl Ctx<'_> {
    fn err(&self, at: usize, field: &str, msg: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!(
            "{}:{}: conn[{}].{field}: {msg}",
            self.file,
            line_of(self.text, at),
            self.index
        ))
    }

    fn duration(
        &self,
        v: &Option<Spanned<toml::Value>>,
        field: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        parse_duration(v.get_ref()).map_err(|e| self.err(v.span().start, field, e))
    }

    fn prefixes(
        &self,
        v: &Option<Spanned<Vec<String>>>,
        field: &str,
    ) -> Result<Vec<IpPrefix>, ConfigError> {
        super::parse_prefixes(v, |at, e| self.err(at, field, e))
    }

    fn conn(&self, r: &RawConn) -> Result<ConnConfig, ConfigError> {
        let name = r.name.get_ref().clone();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(self.err(
                r.name.span().start,
                "name",
                "1..64 characters of A-Z a-z 0-9 - _ .",
            ));
        }
        let role = match r
            .role
            .as_ref()
            .map(|s| (s.get_ref().as_str(), s.span().start))
        {
            None | Some(("responder", _)) => Role::Responder,
            Some(("initiator", _)) => Role::Initiator,
            Some((other, at)) => {
                return Err(self.err(
                    at,
                    "role",
                    format!("\"{other}\" is not \"responder\" or \"initiator\""),
                ));
            }
        };
        let local = match &r.local {
            None => None,
            Some(s) => Some(s.get_ref().parse::<IpAddr>().map_err(|_| {
                self.err(
                    s.span().start,
                    "local",
                    format!("\"{}\" is not an IP address", s.get_ref()),
                )
            })?),
        };
        let remote = match (&r.remote, role) {
            (None, Role::Initiator) => {
                return Err(self.err(
                    r.name.span().start,
                    "remote",
                    "required for an initiator (the peer's address)",
                ));
            }
            (None, Role::Responder) => None,
            (Some(s), Role::Responder) if s.get_ref() == "any" => None,
            (Some(s), _) => Some(parse_endpoint(s.get_ref()).ok_or_else(|| {
                self.err(
                    s.span().start,
                    "remote",
                    format!(
                        "\"{}\" is not ADDRESS, ADDRESS:PORT or \"any\"",
                        s.get_ref()
                    ),
                )
            })?),
        };
        let local_id = parse_identity(r.local_id.get_ref())
            .map_err(|e| self.err(r.local_id.span().start, "local_id", e))?;
        let remote_id = match &r.remote_id {
            None => None,
            Some(s) => Some(
                parse_identity(s.get_ref())
                    .map_err(|e| self.err(s.span().start, "remote_id", e))?,
            ),
        };
        let psk = read_psk(&self.dir.join(r.psk_file.get_ref()))
            .map_err(|e| self.err(r.psk_file.span().start, "psk_file", e))?;
        let ike = match &r.ike {
            None => vec![
                parse_ike("aes128gcm16-prfsha256-x25519"),
                parse_ike("aes256gcm16-prfsha384-ecp384"),
            ]
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(r.name.span().start, "ike", e))?,
            Some(v) if v.get_ref().is_empty() => {
                return Err(self.err(v.span().start, "ike", "at least one proposal"));
            }
            Some(v) => v
                .get_ref()
                .iter()
                .map(|s| parse_ike(s).map_err(|e| self.err(v.span().start, "ike", e)))
                .collect::<Result<_, _>>()?,
        };
        let esp = match &r.esp {
            None => vec![parse_esp("aes128gcm16"), parse_esp("aes256gcm16")]
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.err(r.name.span().start, "esp", e))?,
            Some(v) if v.get_ref().is_empty() => {
                return Err(self.err(v.span().start, "esp", "at least one proposal"));
            }
            Some(v) => v
                .get_ref()
                .iter()
                .map(|s| parse_esp(s).map_err(|e| self.err(v.span().start, "esp", e)))
                .collect::<Result<_, _>>()?,
        };
        let pool = match &r.pool {
            None => None,
            Some(p) if role == Role::Initiator => {
                return Err(self.err(
                    p.span().start,
                    "pool",
                    "only a responder hands out virtual IPs (use request_vip)",
                ));
            }
            Some(p) => {
                Some(parse_pool(p.get_ref()).map_err(|e| self.err(p.span().start, "pool", e))?)
            }
        };
        let request_vip = r.request_vip.unwrap_or(false);
        let replay_window = match &r.replay_window {
            None => 1024,
            Some(w) => u32::try_from(*w.get_ref())
                .ok()
                .filter(|&n| ReplayWindow::new(n, false).is_ok())
                .ok_or_else(|| {
                    self.err(
                        w.span().start,
                        "replay_window",
                        format!("{} is not 64..=4096 and a multiple of 64", w.get_ref()),
                    )
                })?,
        };
        let d = Timers::default();
        let timers = Timers {
            retransmit_base: self.duration(
                &r.retransmit_base,
                "retransmit_base",
                d.retransmit_base,
            )?,
            retransmit_tries: match &r.retransmit_tries {
                None => d.retransmit_tries,
                Some(t) => u32::try_from(*t.get_ref())
                    .ok()
                    .filter(|n| (1..=20).contains(n))
                    .ok_or_else(|| {
                        self.err(
                            t.span().start,
                            "retransmit_tries",
                            format!("{} is outside 1..=20", t.get_ref()),
                        )
                    })?,
            },
            keepalive: self.duration(&r.keepalive, "keepalive", d.keepalive)?,
            dpd: self.duration(&r.dpd, "dpd", d.dpd)?,
            ike_lifetime: self.duration(&r.ike_lifetime, "ike_lifetime", d.ike_lifetime)?,
            child_lifetime: self.duration(&r.child_lifetime, "child_lifetime", d.child_lifetime)?,
            rekey_margin: self.duration(&r.rekey_margin, "rekey_margin", d.rekey_margin)?,
            cookie_threshold: d.cookie_threshold,
        };
        if timers.keepalive.is_zero() || timers.retransmit_base.is_zero() {
            let (field, at) = if timers.keepalive.is_zero() {
                (
                    "keepalive",
                    r.keepalive.as_ref().map_or(0, |v| v.span().start),
                )
            } else {
                (
                    "retransmit_base",
                    r.retransmit_base.as_ref().map_or(0, |v| v.span().start),
                )
            };
            return Err(self.err(at, field, "must be more than zero"));
        }
        Ok(ConnConfig {
            name,
            role,
            local,
            remote,
            local_id,
            remote_id,
            psk,
            ike,
            esp,
            local_ts: self.prefixes(&r.local_ts, "local_ts")?,
            remote_ts: self.prefixes(&r.remote_ts, "remote_ts")?,
            pool,
            request_vip,
            replay_window,
            encap: r.encap.unwrap_or(true),
            timers,
        })
    }
}

/// Validates every `[[conn]]`; names must be unique. `dir` is the config file's folder.
pub(crate) fn convert(
    file: &str,
    text: &str,
    dir: &Path,
    raw: &[RawConn],
) -> Result<Vec<ConnConfig>, ConfigError> {
    let mut out: Vec<ConnConfig> = Vec::with_capacity(raw.len());
    for (index, r) in raw.iter().enumerate() {
        let ctx = Ctx {
            file,
            text,
            dir,
            index,
        };
        let c = ctx.conn(r)?;
        if let Some(first) = out.iter().position(|o| o.name == c.name) {
            return Err(ctx.err(
                r.name.span().start,
                "name",
                format!("duplicate: conn[{first}] is also \"{}\"", c.name),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

/// `500ms`, `20s`, `9m`, `4h`, or an integer number of seconds.
fn parse_duration(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num
                .parse()
                .map_err(|_| format!("\"{s}\" is not a duration like \"20s\""))?;
            let secs = |k: u64| n.checked_mul(k).map(Duration::from_secs);
            match unit {
                "ms" => Some(Duration::from_millis(n)),
                "" | "s" => secs(1),
                "m" => secs(60),
                "h" => secs(3600),
                "d" => secs(86400),
                _ => None,
            }
            .ok_or_else(|| format!("\"{s}\" is not a duration like \"20s\" (units ms, s, m, h, d)"))
        }
        other => Err(format!("{other} is not a duration like \"20s\"")),
    }
}

/// `192.0.2.2`, `192.0.2.2:500`, `[2001:db8::1]:500`, `2001:db8::1` (port 500 by default).
fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().or_else(|| {
        s.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, IKE_PORT))
    })
}

/// RFC 7296 §3.5 identities: an IP address → ID_IPV4_ADDR / ID_IPV6_ADDR, `keyid:HEX` →
/// ID_KEY_ID, `user@fqdn` → ID_RFC822_ADDR, anything else → ID_FQDN.
pub fn parse_identity(s: &str) -> Result<Identity, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(match ip {
            IpAddr::V4(a) => Identity::Ipv4(a),
            IpAddr::V6(a) => Identity::Ipv6(a),
        });
    }
    if let Some(hex) = s.strip_prefix("keyid:") {
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        return match (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
        {
            Some(b) if !b.is_empty() => Ok(Identity::KeyId(b)),
            _ => Err(format!(
                "\"{s}\": keyid: needs an even number of hex digits"
            )),
        };
    }
    if s.is_empty() || s.len() > 255 || !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "\"{s}\" is not an FQDN, address, user@fqdn or keyid:HEX"
        ));
    }
    Ok(if s.contains('@') {
        Identity::Rfc822(s.to_string())
    } else {
        Identity::Fqdn(s.to_string())
    })
}

/// `10.99.0.0/24` → (10.99.0.1, 254): the hosts of an IPv4 prefix, network and broadcast
/// addresses left out.
fn parse_pool(s: &str) -> Result<(IpAddr, u32), String> {
    let p: IpPrefix = s.parse()?;
    let IpAddr::V4(net) = p.addr() else {
        return Err(format!(
            "\"{s}\": virtual IP pools are IPv4 (INTERNAL_IP4_ADDRESS)"
        ));
    };
    if !(8..=30).contains(&p.len()) {
        return Err(format!("\"{s}\": use a prefix length of 8..=30"));
    }
    let hosts = (1u32 << (32 - p.len())) - 2;
    Ok((IpAddr::V4((u32::from(net) + 1).into()), hosts))
}

/// The PSK file: the whole content with a trailing newline removed; refused when group or
/// others may read it (a secret, like an SSH key) or when it is empty.
fn read_psk(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by group or others (mode {:o}): chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let mut psk =
        Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    while psk.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        psk.pop();
    }
    if psk.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(psk)
}

#[cfg(test)]
mod tests;
