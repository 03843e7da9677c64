//! Proposal strings in strongSwan's notation (`aes128gcm16-prfsha256-x25519`, `aes256-sha256-ecp384`,
//! `aes256gcm16-esn`), parsed into [`IkeSuite`] / [`EspSuite`] and printed back canonically.
//!
//! Operators write the same strings in xdpsec's config as in a `swanctl.conf`, and `conn list`
//! shows negotiated suites in that form. Only what xdpsec implements parses (RFC 8221 / 8247
//! MUST-level algorithms): AES-GCM-16 and AES-CBC with HMAC-SHA2, PRF HMAC-SHA2, DH 19/20/31.

use std::fmt;

use super::crypto::transform::{DhGroup, Encr, EspSuite, IkeSuite, Integ, Prf};

/// A token of a proposal string that is not understood, or a missing part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteError(pub String);

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn encr(token: &str) -> Option<Encr> {
    let (bits, gcm) = match token {
        "aes128gcm16" | "aes128gcm" => (128, true),
        "aes192gcm16" | "aes192gcm" => (192, true),
        "aes256gcm16" | "aes256gcm" => (256, true),
        "aes128" => (128, false),
        "aes192" => (192, false),
        "aes256" => (256, false),
        _ => return None,
    };
    Some(if gcm {
        Encr::AesGcm16 { key_bits: bits }
    } else {
        Encr::AesCbc { key_bits: bits }
    })
}

fn integ(token: &str) -> Option<Integ> {
    match token {
        "sha256" | "sha2_256" => Some(Integ::HmacSha256_128),
        "sha384" | "sha2_384" => Some(Integ::HmacSha384_192),
        "sha512" | "sha2_512" => Some(Integ::HmacSha512_256),
        _ => None,
    }
}

fn prf(token: &str) -> Option<Prf> {
    match token {
        "prfsha256" => Some(Prf::HmacSha256),
        "prfsha384" => Some(Prf::HmacSha384),
        "prfsha512" => Some(Prf::HmacSha512),
        _ => None,
    }
}

fn dh(token: &str) -> Option<DhGroup> {
    match token {
        "x25519" | "curve25519" => Some(DhGroup::Curve25519),
        "ecp256" => Some(DhGroup::Ecp256),
        "ecp384" => Some(DhGroup::Ecp384),
        _ => None,
    }
}

/// The PRF strongSwan pairs with an integrity algorithm when none is named.
fn prf_of(integ: Integ) -> Prf {
    match integ {
        Integ::HmacSha256_128 => Prf::HmacSha256,
        Integ::HmacSha384_192 => Prf::HmacSha384,
        Integ::HmacSha512_256 => Prf::HmacSha512,
    }
}

#[derive(Default)]
struct Tokens {
    encr: Option<Encr>,
    integ: Option<Integ>,
    prf: Option<Prf>,
    dh: Option<DhGroup>,
    esn: Option<bool>,
}

fn tokens(s: &str) -> Result<Tokens, SuiteError> {
    let mut t = Tokens::default();
    for tok in s.split('-') {
        let tok = tok.trim().to_ascii_lowercase();
        let dup = |what: &str| SuiteError(format!("{s:?}: more than one {what}"));
        if let Some(e) = encr(&tok) {
            t.encr.replace(e).map_or(Ok(()), |_| Err(dup("cipher")))?;
        } else if let Some(i) = integ(&tok) {
            t.integ
                .replace(i)
                .map_or(Ok(()), |_| Err(dup("integrity")))?;
        } else if let Some(p) = prf(&tok) {
            t.prf.replace(p).map_or(Ok(()), |_| Err(dup("prf")))?;
        } else if let Some(g) = dh(&tok) {
            t.dh.replace(g).map_or(Ok(()), |_| Err(dup("DH group")))?;
        } else if tok == "esn" || tok == "noesn" {
            t.esn
                .replace(tok == "esn")
                .map_or(Ok(()), |_| Err(dup("esn")))?;
        } else {
            return Err(SuiteError(format!(
                "{s:?}: unknown algorithm {tok:?} (ciphers aes128gcm16 aes256gcm16 aes128 aes256, \
                 integrity sha256 sha384 sha512, prf prfsha256 prfsha384 prfsha512, \
                 DH x25519 ecp256 ecp384, esn noesn)"
            )));
        }
    }
    Ok(t)
}

/// Parses an IKE proposal, e.g. `aes128gcm16-prfsha256-x25519` or `aes256-sha256-ecp384`
/// (with AES-CBC the PRF defaults to the integrity algorithm's hash, as in strongSwan).
pub fn parse_ike(s: &str) -> Result<IkeSuite, SuiteError> {
    let t = tokens(s)?;
    let encr = t
        .encr
        .ok_or_else(|| SuiteError(format!("{s:?}: no cipher")))?;
    let dh =
        t.dh.ok_or_else(|| SuiteError(format!("{s:?}: no DH group (x25519, ecp256, ecp384)")))?;
    if t.esn.is_some() {
        return Err(SuiteError(format!("{s:?}: esn belongs to ESP proposals")));
    }
    let prf = match (t.prf, t.integ) {
        (Some(p), _) => p,
        (None, Some(i)) => prf_of(i),
        (None, None) => return Err(SuiteError(format!("{s:?}: no prf (e.g. prfsha256)"))),
    };
    let suite = IkeSuite {
        encr,
        prf,
        integ: t.integ,
        dh,
    };
    suite.check().map_err(|_| {
        SuiteError(format!(
            "{s:?}: AES-GCM takes no integrity algorithm, AES-CBC needs one (RFC 5282 §8)"
        ))
    })?;
    Ok(suite)
}

/// Parses an ESP proposal, e.g. `aes128gcm16`, `aes256gcm16-esn`, `aes128gcm16-x25519` (PFS
/// group for CREATE_CHILD_SA). The dataplane implements AES-GCM-16 only.
pub fn parse_esp(s: &str) -> Result<EspSuite, SuiteError> {
    let t = tokens(s)?;
    let encr = t
        .encr
        .ok_or_else(|| SuiteError(format!("{s:?}: no cipher")))?;
    if !matches!(
        encr,
        Encr::AesGcm16 {
            key_bits: 128 | 256
        }
    ) || t.integ.is_some()
    {
        return Err(SuiteError(format!(
            "{s:?}: the dataplane does ESP with aes128gcm16 or aes256gcm16 only"
        )));
    }
    if t.prf.is_some() {
        return Err(SuiteError(format!("{s:?}: a prf belongs to IKE proposals")));
    }
    Ok(EspSuite {
        encr,
        integ: None,
        dh: t.dh,
        esn: t.esn.unwrap_or(false),
    })
}

fn encr_name(e: Encr) -> String {
    match e {
        Encr::AesGcm16 { key_bits } => format!("aes{key_bits}gcm16"),
        Encr::AesCbc { key_bits } => format!("aes{key_bits}"),
    }
}

fn integ_name(i: Integ) -> &'static str {
    match i {
        Integ::HmacSha256_128 => "sha256",
        Integ::HmacSha384_192 => "sha384",
        Integ::HmacSha512_256 => "sha512",
    }
}

fn prf_name(p: Prf) -> &'static str {
    match p {
        Prf::HmacSha256 => "prfsha256",
        Prf::HmacSha384 => "prfsha384",
        Prf::HmacSha512 => "prfsha512",
    }
}

fn dh_name(g: DhGroup) -> &'static str {
    match g {
        DhGroup::Curve25519 => "x25519",
        DhGroup::Ecp256 => "ecp256",
        DhGroup::Ecp384 => "ecp384",
    }
}

/// `aes128gcm16-prfsha256-x25519`: the canonical name of an IKE suite.
pub fn ike_name(s: &IkeSuite) -> String {
    let mut parts = vec![encr_name(s.encr)];
    parts.extend(s.integ.map(|i| integ_name(i).to_string()));
    parts.push(prf_name(s.prf).to_string());
    parts.push(dh_name(s.dh).to_string());
    parts.join("-")
}

/// `aes256gcm16-esn`: the canonical name of an ESP suite.
pub fn esp_name(s: &EspSuite) -> String {
    let mut parts = vec![encr_name(s.encr)];
    parts.extend(s.integ.map(|i| integ_name(i).to_string()));
    parts.extend(s.dh.map(|g| dh_name(g).to_string()));
    if s.esn {
        parts.push("esn".to_string());
    }
    parts.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongswan_names_round_trip() {
        for s in [
            "aes128gcm16-prfsha256-x25519",
            "aes256gcm16-prfsha384-ecp384",
            "aes256-sha256-prfsha256-ecp256",
        ] {
            assert_eq!(ike_name(&parse_ike(s).unwrap()), s);
        }
        for s in ["aes128gcm16", "aes256gcm16-esn", "aes128gcm16-x25519"] {
            assert_eq!(esp_name(&parse_esp(s).unwrap()), s);
        }
    }

    #[test]
    fn cbc_prf_defaults_to_the_integrity_hash() {
        let s = parse_ike("aes256-sha384-ecp384").unwrap();
        assert_eq!(s.prf, Prf::HmacSha384);
        assert_eq!(s.integ, Some(Integ::HmacSha384_192));
    }

    #[test]
    fn bad_strings_name_the_problem() {
        for (s, want) in [
            ("aes128gcm16-prfsha256", "no DH group"),
            ("aes128gcm16-x25519", "no prf"),
            (
                "aes128gcm16-sha256-prfsha256-x25519",
                "AES-GCM takes no integrity",
            ),
            ("aes128-prfsha256-x25519", "AES-CBC needs one"),
            ("3des-sha1-modp1024", "unknown algorithm \"3des\""),
            (
                "aes128gcm16-aes256gcm16-prfsha256-x25519",
                "more than one cipher",
            ),
        ] {
            let e = parse_ike(s).unwrap_err().0;
            assert!(e.contains(want), "{s}: {e}");
        }
        assert!(
            parse_esp("aes256-sha256")
                .unwrap_err()
                .0
                .contains("aes128gcm16")
        );
        assert!(
            parse_esp("aes128gcm16-prfsha256")
                .unwrap_err()
                .0
                .contains("prf")
        );
    }
}
