//! Configuration files: the SA file (manually keyed SAs, shared by `xdpsec pcap` and the
//! gateway).
//!
//! Every error is one line naming the file, the line, the SA and the field.

pub mod conn;
pub mod gateway;
pub mod sa_file;

use std::fmt;

/// A configuration error, already formatted as `FILE:LINE: WHERE: WHAT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Turn a TOML/serde error into one line with its position.
pub(crate) fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
    let msg = e
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .trim_end_matches('.');
    ConfigError(format!("{file}:{line}: {msg}"))
}

/// A list of prefixes (`["10.9.0.0/24", …]`), each error placed at the list's position by `err`.
pub(crate) fn parse_prefixes(
    v: &Option<toml::Spanned<Vec<String>>>,
    err: impl Fn(usize, String) -> ConfigError,
) -> Result<Vec<xdpsec_dataplane::sa::IpPrefix>, ConfigError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    v.get_ref()
        .iter()
        .map(|s| s.parse().map_err(|e| err(v.span().start, e)))
        .collect()
}
