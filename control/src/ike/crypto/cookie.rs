//! Stateless cookies against half-open SA floods (RFC 7296 §2.6).
//!
//! "Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)": the responder keeps
//! no state; it recomputes the cookie when the initiator retries with it. We use SHA-256 and
//! a one-octet secret version, so a cookie is 33 octets (≤ 64, §3.10.1).

use std::net::IpAddr;

use ring::digest;

use super::ct_eq;

/// Length of the cookies we make.
pub const COOKIE_LEN: usize = 33;

/// The COOKIE notification data for an IKE_SA_INIT request (§2.6).
pub fn make_cookie(
    version: u8,
    secret: &[u8],
    ni: &[u8],
    ip_i: IpAddr,
    spi_i: &[u8; 8],
) -> [u8; COOKIE_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(ni);
    match ip_i {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(spi_i);
    ctx.update(secret);
    let mut out = [0u8; COOKIE_LEN];
    out[0] = version;
    out[1..].copy_from_slice(ctx.finish().as_ref());
    out
}

/// The secret version a received cookie claims (to pick the current or previous secret).
pub fn cookie_version(cookie: &[u8]) -> Option<u8> {
    match cookie {
        [v, rest @ ..] if rest.len() == COOKIE_LEN - 1 => Some(*v),
        _ => None,
    }
}

/// Does `cookie` match what we would issue with this secret (constant time)?
pub fn check_cookie(
    cookie: &[u8],
    version: u8,
    secret: &[u8],
    ni: &[u8],
    ip_i: IpAddr,
    spi_i: &[u8; 8],
) -> bool {
    ct_eq(cookie, &make_cookie(version, secret, ni, ip_i, spi_i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let c = make_cookie(3, b"secret", &[1; 32], ip, &[2; 8]);
        assert_eq!(cookie_version(&c), Some(3));
        assert!(check_cookie(&c, 3, b"secret", &[1; 32], ip, &[2; 8]));
        assert!(!check_cookie(
            &c,
            3,
            b"secret",
            &[1; 32],
            "192.0.2.8".parse().unwrap(),
            &[2; 8]
        ));
        assert!(!check_cookie(&c, 3, b"other", &[1; 32], ip, &[2; 8]));
        assert!(!check_cookie(&c[..32], 3, b"secret", &[1; 32], ip, &[2; 8]));
        assert_eq!(cookie_version(&[1, 2]), None);
    }
}
