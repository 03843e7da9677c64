//! Traffic Selector payloads TSi / TSr (RFC 7296 §3.13):
//! `| Number of TSs | RESERVED (3) | <Traffic Selectors> |`, each selector (§3.13.1)
//! `| TS Type | IP Protocol ID | Selector Length (2) | Start Port | End Port |
//!  | Starting Address | Ending Address |`.

use std::net::IpAddr;

use crate::ike::IkeError;
use crate::ike::reader::Reader;

/// TS_IPV4_ADDR_RANGE (§3.13.1).
pub const TS_IPV4_ADDR_RANGE: u8 = 7;
/// TS_IPV6_ADDR_RANGE (§3.13.1).
pub const TS_IPV6_ADDR_RANGE: u8 = 8;

/// One traffic selector: an address range, a port range and an IP protocol (0 = any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    pub ip_protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    /// Start and end are of the same family (checked at parse).
    pub start: IpAddr,
    pub end: IpAddr,
}

impl TrafficSelector {
    /// Every port and protocol between two addresses.
    pub fn range(start: IpAddr, end: IpAddr) -> Self {
        Self {
            ip_protocol: 0,
            start_port: 0,
            end_port: 0xffff,
            start,
            end,
        }
    }
}

/// TSi / TSr payload body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TsPayload {
    pub selectors: Vec<TrafficSelector>,
}

impl TsPayload {
    /// Parse the payload body: each selector is IPv4 (16 bytes) or IPv6 (40 bytes).
    pub fn parse(body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadTrafficSelector);
        let n = usize::from(r.u8()?);
        r.take(3)?;
        if n == 0 {
            return Err(IkeError::BadTrafficSelector);
        }
        let mut selectors = Vec::with_capacity(n);
        for _ in 0..n {
            let ty = r.u8()?;
            let ip_protocol = r.u8()?;
            let len = r.u16()?;
            let start_port = r.u16()?;
            let end_port = r.u16()?;
            let (start, end) = match (ty, len) {
                (TS_IPV4_ADDR_RANGE, 16) => {
                    (IpAddr::from(r.array::<4>()?), IpAddr::from(r.array::<4>()?))
                }
                (TS_IPV6_ADDR_RANGE, 40) => (
                    IpAddr::from(r.array::<16>()?),
                    IpAddr::from(r.array::<16>()?),
                ),
                _ => return Err(IkeError::BadTrafficSelector),
            };
            selectors.push(TrafficSelector {
                ip_protocol,
                start_port,
                end_port,
                start,
                end,
            });
        }
        if !r.is_empty() {
            return Err(IkeError::BadTrafficSelector);
        }
        Ok(Self { selectors })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        let n = u8::try_from(self.selectors.len()).map_err(|_| IkeError::PayloadTooLong)?;
        out.extend_from_slice(&[n, 0, 0, 0]);
        for ts in &self.selectors {
            let (ty, len): (u8, u16) = match (ts.start, ts.end) {
                (IpAddr::V4(_), IpAddr::V4(_)) => (TS_IPV4_ADDR_RANGE, 16),
                (IpAddr::V6(_), IpAddr::V6(_)) => (TS_IPV6_ADDR_RANGE, 40),
                _ => return Err(IkeError::BadTrafficSelector),
            };
            out.extend_from_slice(&[ty, ts.ip_protocol]);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&ts.start_port.to_be_bytes());
            out.extend_from_slice(&ts.end_port.to_be_bytes());
            for a in [ts.start, ts.end] {
                match a {
                    IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                    IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let ts = TsPayload {
            selectors: vec![
                TrafficSelector::range("10.9.0.0".parse().unwrap(), "10.9.0.255".parse().unwrap()),
                TrafficSelector {
                    ip_protocol: 17,
                    start_port: 1701,
                    end_port: 1701,
                    start: "2001:db8::".parse().unwrap(),
                    end: "2001:db8::ffff".parse().unwrap(),
                },
            ],
        };
        let mut out = Vec::new();
        ts.emit(&mut out).unwrap();
        assert_eq!(out.len(), 4 + 16 + 40);
        assert_eq!(TsPayload::parse(&out), Ok(ts));
        for n in 0..out.len() {
            assert_eq!(
                TsPayload::parse(&out[..n]),
                Err(IkeError::BadTrafficSelector)
            );
        }
        let mut bad = out.clone();
        bad[4] = 9;
        assert_eq!(TsPayload::parse(&bad), Err(IkeError::BadTrafficSelector));
        let mixed = TsPayload {
            selectors: vec![TrafficSelector::range(
                "10.0.0.1".parse().unwrap(),
                "::1".parse().unwrap(),
            )],
        };
        assert_eq!(
            mixed.emit(&mut Vec::new()),
            Err(IkeError::BadTrafficSelector)
        );
    }
}
