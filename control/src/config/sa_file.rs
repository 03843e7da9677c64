//! The SA file: manually keyed ESP SAs in TOML.
//!
//! ```toml
//! [[sa]]
//! spi = 0x1234abcd            # 256 ..= 2^32-1 (0..=255 are reserved, RFC 4303 §2.1)
//! direction = "in"            # "in" | "out"
//! mode = "tunnel"             # "tunnel" | "transport"
//! aead = "aes128gcm16"        # "aes128gcm16" | "aes256gcm16"
//! key = "0x…"                 # key ‖ 4-byte salt (RFC 4106 §8.1): 20 or 36 bytes of hex
//! local = "192.0.2.2:4500"
//! remote = "198.51.100.7:4500"   # or "any": learned from authenticated packets
//! # optional
//! peer = "branch-1"           # SAs of one peer share its NAT mapping (default: the remote value)
//! esn = false                 # RFC 4304
//! replay_window = 128         # 64..=4096, multiple of 64
//! local_ts = ["10.9.0.0/24"]  # traffic selectors; default: everything
//! remote_ts = ["10.99.0.0/24"]
//! nat_oa_remote = "10.0.1.2"  # transport mode: the peer's pre-NAT address (RFC 3948 §3.1.2)
//! nat_oa_local = "192.0.2.2"  # transport mode: our address as the peer knew it
//! lifetime_packets_soft = 1000000   # and _hard; lifetime_bytes_soft / _hard
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use toml::Spanned;
use xdpsec_dataplane::replay::DEFAULT_WINDOW;
use xdpsec_dataplane::replay::ReplayWindow;
use xdpsec_dataplane::sa::{
    Aead, Direction, IpPrefix, KeyMaterial, Lifetime, Limit, Mode, NatOa, PeerId, SaParams,
    Selectors,
};
use zeroize::Zeroizing;

use super::{ConfigError, line_of, toml_error};

/// The `[[sa]]` tables of a file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSaFile {
    #[serde(default)]
    pub(crate) sa: Vec<RawSa>,
}

/// One `[[sa]]` table, as written (positions kept for error messages).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSa {
    spi: Spanned<i64>,
    direction: Spanned<String>,
    mode: Spanned<String>,
    aead: Spanned<String>,
    key: Spanned<Zeroizing<String>>,
    local: Spanned<String>,
    remote: Spanned<String>,
    peer: Option<Spanned<String>>,
    esn: Option<bool>,
    replay_window: Option<Spanned<i64>>,
    local_ts: Option<Spanned<Vec<String>>>,
    remote_ts: Option<Spanned<Vec<String>>>,
    nat_oa_remote: Option<Spanned<String>>,
    nat_oa_local: Option<Spanned<String>>,
    lifetime_bytes_soft: Option<Spanned<i64>>,
    lifetime_bytes_hard: Option<Spanned<i64>>,
    lifetime_packets_soft: Option<Spanned<i64>>,
    lifetime_packets_hard: Option<Spanned<i64>>,
}

/// Parse an SA file. `file` names it in error messages.
pub fn parse(file: &str, text: &str) -> Result<Vec<SaParams>, ConfigError> {
    let raw: RawSaFile = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    convert(file, text, raw.sa)
}

/// Read and parse an SA file.
pub fn load(path: &std::path::Path) -> Result<Vec<SaParams>, ConfigError> {
    let name = path.display().to_string();
    // The file holds keys: wipe our copy of it when done.
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{name}: {e}")))?,
    );
    parse(&name, &text)
}

/// Validate raw SA tables (also used by the gateway configuration, which embeds `[[sa]]`).
pub(crate) fn convert(
    file: &str,
    text: &str,
    raw: Vec<RawSa>,
) -> Result<Vec<SaParams>, ConfigError> {
    let mut peers: HashMap<String, PeerId> = HashMap::new();
    let mut seen: HashMap<(u32, bool), usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let ctx = Ctx {
            file,
            text,
            index: i,
        };
        let p = ctx.sa(&r, &mut peers)?;
        let key = (p.spi, p.direction == Direction::In);
        if let Some(first) = seen.insert(key, i) {
            return Err(ctx.err(
                r.spi.span().start,
                "spi",
                format!(
                    "duplicate: sa[{first}] already has spi {:#x} in this direction",
                    p.spi
                ),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    index: usize,
}

impl Ctx<'_> {
    fn err(&self, at: usize, field: &str, msg: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!(
            "{}:{}: sa[{}].{field}: {msg}",
            self.file,
            line_of(self.text, at),
            self.index
        ))
    }

    fn parse_with<T, E: std::fmt::Display>(
        &self,
        field: &str,
        v: &Spanned<String>,
        f: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, ConfigError> {
        f(v.get_ref()).map_err(|e| self.err(v.span().start, field, e))
    }

    fn sa(&self, r: &RawSa, peers: &mut HashMap<String, PeerId>) -> Result<SaParams, ConfigError> {
        let spi = u32::try_from(*r.spi.get_ref())
            .ok()
            .filter(|&s| s >= 256)
            .ok_or_else(|| {
                self.err(
                    r.spi.span().start,
                    "spi",
                    "must be 256 ..= 4294967295 (0..=255 are reserved, RFC 4303 §2.1)",
                )
            })?;
        let direction = self.parse_with("direction", &r.direction, |s| match s {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            o => Err(format!("\"{o}\" is not \"in\" or \"out\"")),
        })?;
        let mode = self.parse_with("mode", &r.mode, |s| match s {
            "tunnel" => Ok(Mode::Tunnel),
            "transport" => Ok(Mode::Transport),
            o => Err(format!("\"{o}\" is not \"tunnel\" or \"transport\"")),
        })?;
        let aead: Aead = self.parse_with("aead", &r.aead, str::parse)?;
        let key_at = r.key.span().start;
        let bytes = parse_hex(r.key.get_ref()).map_err(|e| self.err(key_at, "key", e))?;
        let key = KeyMaterial::new(aead, bytes).map_err(|e| self.err(key_at, "key", e))?;
        let local: SocketAddr = self.parse_with("local", &r.local, |s| {
            s.parse::<SocketAddr>()
                .map_err(|_| format!("\"{s}\" is not ADDRESS:PORT"))
        })?;
        let remote: Option<SocketAddr> = self.parse_with("remote", &r.remote, |s| match s {
            "any" => Ok(None),
            s => s
                .parse::<SocketAddr>()
                .map(Some)
                .map_err(|_| format!("\"{s}\" is not ADDRESS:PORT or \"any\"")),
        })?;
        if let Some(rem) = remote.filter(|rem| rem.is_ipv4() != local.is_ipv4()) {
            return Err(self.err(
                r.remote.span().start,
                "remote",
                format!("{rem} and local {local} are of different address families"),
            ));
        }
        let peer_name = match &r.peer {
            Some(p) => p.get_ref().clone(),
            None => r.remote.get_ref().clone(),
        };
        let next = PeerId(peers.len() as u32);
        let peer = *peers.entry(peer_name).or_insert(next);
        let replay_window = match &r.replay_window {
            None => DEFAULT_WINDOW,
            Some(w) => {
                let size = u32::try_from(*w.get_ref()).unwrap_or(0);
                ReplayWindow::new(size, false)
                    .map_err(|e| self.err(w.span().start, "replay_window", e))?;
                size
            }
        };
        let selectors = Selectors {
            local: self.prefixes("local_ts", &r.local_ts)?,
            remote: self.prefixes("remote_ts", &r.remote_ts)?,
        };
        let nat_oa = NatOa {
            remote: self.nat_oa("nat_oa_remote", &r.nat_oa_remote, mode)?,
            local: self.nat_oa("nat_oa_local", &r.nat_oa_local, mode)?,
        };
        let lifetime = Lifetime {
            bytes: self.limit(
                "lifetime_bytes",
                &r.lifetime_bytes_soft,
                &r.lifetime_bytes_hard,
            )?,
            packets: self.limit(
                "lifetime_packets",
                &r.lifetime_packets_soft,
                &r.lifetime_packets_hard,
            )?,
        };
        Ok(SaParams {
            spi,
            direction,
            mode,
            aead,
            key,
            local,
            remote,
            peer,
            esn: r.esn.unwrap_or(false),
            replay_window,
            selectors,
            nat_oa,
            lifetime,
        })
    }

    fn prefixes(
        &self,
        field: &str,
        v: &Option<Spanned<Vec<String>>>,
    ) -> Result<Vec<IpPrefix>, ConfigError> {
        super::parse_prefixes(v, |at, e| self.err(at, field, e))
    }

    fn nat_oa(
        &self,
        field: &str,
        v: &Option<Spanned<String>>,
        mode: Mode,
    ) -> Result<Option<IpAddr>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        if mode != Mode::Transport {
            return Err(self.err(
                v.span().start,
                field,
                "only meaningful with mode = \"transport\"",
            ));
        }
        self.parse_with(field, v, |s| {
            s.parse::<IpAddr>()
                .map_err(|_| format!("\"{s}\" is not an IP address"))
        })
        .map(Some)
    }

    fn limit(
        &self,
        field: &str,
        soft: &Option<Spanned<i64>>,
        hard: &Option<Spanned<i64>>,
    ) -> Result<Limit, ConfigError> {
        let get = |v: &Option<Spanned<i64>>, suffix: &str| -> Result<Option<u64>, ConfigError> {
            match v {
                None => Ok(None),
                Some(x) => u64::try_from(*x.get_ref())
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Some)
                    .ok_or_else(|| {
                        self.err(
                            x.span().start,
                            &format!("{field}_{suffix}"),
                            "must be a positive integer",
                        )
                    }),
            }
        };
        let limit = Limit {
            soft: get(soft, "soft")?,
            hard: get(hard, "hard")?,
        };
        if let (Some(s), Some(h), Some(at)) = (limit.soft, limit.hard, soft.as_ref())
            && s >= h
        {
            return Err(self.err(
                at.span().start,
                &format!("{field}_soft"),
                format!("{s} must be below {field}_hard ({h})"),
            ));
        }
        Ok(limit)
    }
}

/// Hex with an optional `0x` prefix; `:` and whitespace separators are ignored (strongSwan
/// logs keys with spaces).
fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
        s.bytes()
            .filter(|b| !(b.is_ascii_whitespace() || *b == b':'))
            .collect(),
    );
    if !digits.len().is_multiple_of(2) {
        return Err("hex string has an odd number of digits".into());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16);
            let lo = (pair[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err("not a hex string".to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
