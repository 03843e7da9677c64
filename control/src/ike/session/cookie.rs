//! The responder's cookie secrets (RFC 7296 §2.6), rotated with the clock passed in.
//!
//! §2.6: "the responder should change the value of <secret> frequently, especially if under
//! attack", and cookies carry a version octet so that the responder "should accept cookies
//! made with [the previous secret] for a short time after it changes". A secret makes cookies
//! for [`SECRET_LIFETIME`]; the one before it is still accepted for [`PREVIOUS_GRACE`] after
//! that (a cookie is thus honoured for at least the grace and at most lifetime + grace).
//! Older cookies are refused with a fresh one. Rotation happens when a cookie is made or
//! checked after the lifetime passed: no timer, no clock read.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use super::engine::later;
use crate::ike::IkeError;
use crate::ike::crypto::cookie::{COOKIE_LEN, check_cookie, cookie_version, make_cookie};

/// How long one secret makes cookies.
pub(super) const SECRET_LIFETIME: Duration = Duration::from_secs(120);
/// How long the previous secret's cookies stay valid after it stopped making them.
pub(super) const PREVIOUS_GRACE: Duration = Duration::from_secs(30);

/// One secret and its version octet.
struct Secret {
    version: u8,
    key: Zeroizing<[u8; 32]>,
    created: Instant,
}

/// The current and the previous secret (none until the first cookie is needed).
#[derive(Default)]
pub(super) struct CookieSecrets {
    current: Option<Secret>,
    previous: Option<Secret>,
}

impl CookieSecrets {
    /// The secret that makes cookies at `now`: a new one once the current one is
    /// [`SECRET_LIFETIME`] old (its version is the next octet; the old one becomes previous).
    fn current(&mut self, now: Instant, rng: &dyn SecureRandom) -> Result<&Secret, &'static str> {
        let fresh = self
            .current
            .as_ref()
            .is_some_and(|s| now < later(s.created, SECRET_LIFETIME));
        if !fresh {
            let mut key = Zeroizing::new([0u8; 32]);
            rng.fill(&mut key[..])
                .map_err(|_| IkeError::RandomFailed.name())?;
            let version = match &self.current {
                Some(s) => s.version.wrapping_add(1),
                None => {
                    let mut v = [0u8; 1];
                    rng.fill(&mut v)
                        .map_err(|_| IkeError::RandomFailed.name())?;
                    v[0]
                }
            };
            let next = Secret {
                version,
                key,
                created: now,
            };
            self.previous = self.current.replace(next);
        }
        self.current.as_ref().ok_or(IkeError::RandomFailed.name())
    }

    /// The cookie for an IKE_SA_INIT request with nonce `ni` from `ip` with SPI `spi_i`.
    pub fn make(
        &mut self,
        now: Instant,
        rng: &dyn SecureRandom,
        ni: &[u8],
        ip: IpAddr,
        spi_i: &[u8; 8],
    ) -> Result<[u8; COOKIE_LEN], &'static str> {
        let s = self.current(now, rng)?;
        Ok(make_cookie(s.version, &s.key[..], ni, ip, spi_i))
    }

    /// Whether `cookie` was made by us for this request, with the current secret or with the
    /// previous one within its grace period.
    pub fn check(
        &mut self,
        now: Instant,
        rng: &dyn SecureRandom,
        cookie: &[u8],
        ni: &[u8],
        ip: IpAddr,
        spi_i: &[u8; 8],
    ) -> Result<bool, &'static str> {
        self.current(now, rng)?;
        let Some(version) = cookie_version(cookie) else {
            return Ok(false);
        };
        let previous = self
            .previous
            .as_ref()
            .filter(|p| now < later(p.created, SECRET_LIFETIME.saturating_add(PREVIOUS_GRACE)));
        let secret = [self.current.as_ref(), previous]
            .into_iter()
            .flatten()
            .find(|s| s.version == version);
        Ok(secret.is_some_and(|s| check_cookie(cookie, version, &s.key[..], ni, ip, spi_i)))
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;

    use super::*;

    #[test]
    fn secrets_rotate_and_the_previous_one_is_honoured_for_a_while() {
        let rng = SystemRandom::new();
        let mut c = CookieSecrets::default();
        let t0 = Instant::now();
        let (ni, ip, spi) = ([7u8; 32], "192.0.2.9".parse().unwrap(), [1u8; 8]);
        let s = |d: u64| t0 + Duration::from_secs(d);
        let first = c.make(t0, &rng, &ni, ip, &spi).unwrap();
        // the same secret for its lifetime: the same cookie
        assert_eq!(c.make(s(119), &rng, &ni, ip, &spi).unwrap(), first);
        assert!(c.check(s(60), &rng, &first, &ni, ip, &spi).unwrap());
        // bound to the request
        assert!(!c.check(s(60), &rng, &first, &[8; 32], ip, &spi).unwrap());
        assert!(!c.check(s(60), &rng, &first, &ni, ip, &[2; 8]).unwrap());
        // rotated: a new version, the previous cookie still good until lifetime + grace
        let second = c.make(s(125), &rng, &ni, ip, &spi).unwrap();
        assert_ne!(second, first);
        assert_eq!(second[0], first[0].wrapping_add(1));
        assert!(c.check(s(140), &rng, &first, &ni, ip, &spi).unwrap());
        assert!(c.check(s(149), &rng, &first, &ni, ip, &spi).unwrap());
        assert!(!c.check(s(150), &rng, &first, &ni, ip, &spi).unwrap());
        assert!(c.check(s(150), &rng, &second, &ni, ip, &spi).unwrap());
        // two rotations later (a check rotates too) the first one is unknown
        assert!(c.check(s(260), &rng, &second, &ni, ip, &spi).unwrap());
        assert!(!c.check(s(260), &rng, &first, &ni, ip, &spi).unwrap());
        // after a long quiet time the previous secret is too old to honour at all
        let third = c.make(s(300), &rng, &ni, ip, &spi).unwrap();
        assert!(c.check(s(379), &rng, &third, &ni, ip, &spi).unwrap());
        assert!(!c.check(s(10_000), &rng, &third, &ni, ip, &spi).unwrap());
        // garbage and forged versions
        assert!(!c.check(s(10_000), &rng, &[], &ni, ip, &spi).unwrap());
        let mut forged = c.make(s(10_000), &rng, &ni, ip, &spi).unwrap();
        forged[0] = forged[0].wrapping_sub(1);
        assert!(!c.check(s(10_000), &rng, &forged, &ni, ip, &spi).unwrap());
    }
}
