//! Traffic selectors (RFC 7296 §2.9, §3.13) between the wire's address ranges and the
//! dataplane's prefixes.
//!
//! The dataplane matches inner addresses only, so only selectors for any protocol and the
//! whole port range are usable; narrowing (§2.9: "the responder is allowed to narrow the
//! choices by selecting a subset of the traffic") intersects each such offered range with
//! each of our prefixes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xdpsec_dataplane::sa::IpPrefix;

use crate::ike::payload::{TrafficSelector, TsPayload};

/// Most prefixes one side of a child SA may hold (a range can split into up to 2 × 128).
pub(super) const MAX_PREFIXES: usize = 64;

/// Our configured side, an empty list meaning "any address of either family".
pub(super) fn effective(list: &[IpPrefix]) -> Vec<IpPrefix> {
    if list.is_empty() {
        vec![IpPrefix::ANY_V4, IpPrefix::ANY_V6]
    } else {
        list.to_vec()
    }
}

/// An address as a 128-bit number and its family's width.
fn num(a: IpAddr) -> (u128, u32) {
    match a {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn from_num(v: u128, bits: u32) -> IpAddr {
    if bits == 32 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// First and last address of a prefix.
fn bounds(p: &IpPrefix) -> (u128, u128, u32) {
    let (start, bits) = num(p.addr());
    let host_bits = bits - u32::from(p.len()).min(bits);
    let span = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (start, start | span, bits)
}

/// A selector covering a prefix, any protocol and port.
pub(super) fn selector(p: &IpPrefix) -> TrafficSelector {
    let (s, e, bits) = bounds(p);
    TrafficSelector::range(from_num(s, bits), from_num(e, bits))
}

/// A TS payload listing `prefixes`.
pub(super) fn payload(prefixes: &[IpPrefix]) -> TsPayload {
    TsPayload {
        selectors: prefixes.iter().map(selector).collect(),
    }
}

/// Any protocol, all ports: the only selectors the dataplane can enforce.
fn is_any_port(ts: &TrafficSelector) -> bool {
    ts.ip_protocol == 0 && ts.start_port == 0 && ts.end_port == 0xffff
}

/// The smallest set of prefixes covering exactly `start..=end` (both of width `bits`).
fn range_prefixes(mut start: u128, end: u128, bits: u32, out: &mut Vec<IpPrefix>) -> bool {
    while start <= end {
        if out.len() >= MAX_PREFIXES {
            return false;
        }
        // largest aligned block starting at `start` that does not pass `end`
        let mut size_bits = start.trailing_zeros().min(bits);
        while size_bits > 0 {
            let last = if size_bits >= 128 {
                u128::MAX
            } else {
                start | ((1u128 << size_bits) - 1)
            };
            if last <= end {
                break;
            }
            size_bits -= 1;
        }
        let len = u8::try_from(bits - size_bits).unwrap_or(0);
        match IpPrefix::new(from_num(start, bits), len) {
            Ok(p) => out.push(p),
            Err(_) => return false,
        }
        let block_end = if size_bits >= 128 {
            u128::MAX
        } else {
            start | ((1u128 << size_bits) - 1)
        };
        if block_end == u128::MAX || (bits == 32 && block_end >= u128::from(u32::MAX)) {
            break;
        }
        start = block_end + 1;
    }
    true
}

/// Narrow the peer's offer to our prefixes (§2.9): each usable offered range intersected with
/// each of ours, as prefixes. Empty when nothing is acceptable (TS_UNACCEPTABLE) or the
/// result would exceed [`MAX_PREFIXES`].
pub(super) fn narrow(offered: &TsPayload, ours: &[IpPrefix]) -> Vec<IpPrefix> {
    let mut out = Vec::new();
    for ts in offered.selectors.iter().filter(|t| is_any_port(t)) {
        let (s, bits) = num(ts.start);
        let (e, bits_e) = num(ts.end);
        if bits != bits_e || s > e {
            continue;
        }
        for p in ours {
            let (ps, pe, pbits) = bounds(p);
            if pbits != bits {
                continue;
            }
            let (lo, hi) = (s.max(ps), e.min(pe));
            if lo <= hi && !range_prefixes(lo, hi, bits, &mut out) {
                return Vec::new();
            }
        }
    }
    out.sort_by_key(|p| (num(p.addr()), p.len()));
    out.dedup();
    out
}

/// Initiator: the responder's (narrowed) selectors, which must lie inside what we offered
/// (§2.9); `None` if they do not or are unusable.
pub(super) fn accept(returned: &TsPayload, offered: &[IpPrefix]) -> Option<Vec<IpPrefix>> {
    let mut out = Vec::new();
    for ts in &returned.selectors {
        if !is_any_port(ts) {
            return None;
        }
        let (s, bits) = num(ts.start);
        let (e, bits_e) = num(ts.end);
        let inside = offered.iter().any(|p| {
            let (ps, pe, pbits) = bounds(p);
            pbits == bits && ps <= s && e <= pe
        });
        if bits != bits_e || s > e || !inside || !range_prefixes(s, e, bits, &mut out) {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    fn range(a: &str, b: &str) -> TrafficSelector {
        TrafficSelector::range(a.parse().unwrap(), b.parse().unwrap())
    }

    #[test]
    fn ranges_split_into_prefixes() {
        let mut out = Vec::new();
        let (s, _) = num("10.0.0.1".parse().unwrap());
        let (e, _) = num("10.0.0.6".parse().unwrap());
        assert!(range_prefixes(s, e, 32, &mut out));
        let names: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        let mut all = Vec::new();
        assert!(range_prefixes(0, u128::from(u32::MAX), 32, &mut all));
        assert_eq!(all, [IpPrefix::ANY_V4]);
        let mut all6 = Vec::new();
        assert!(range_prefixes(0, u128::MAX, 128, &mut all6));
        assert_eq!(all6, [IpPrefix::ANY_V6]);
        assert_eq!(selector(&p("10.9.0.0/24")), range("10.9.0.0", "10.9.0.255"));
    }

    #[test]
    fn narrowing() {
        let any = TsPayload {
            selectors: vec![range("0.0.0.0", "255.255.255.255")],
        };
        assert_eq!(narrow(&any, &[p("10.9.0.0/24")]), [p("10.9.0.0/24")]);
        assert_eq!(narrow(&any, &effective(&[])), [IpPrefix::ANY_V4]);
        let host = TsPayload {
            selectors: vec![range("10.9.0.5", "10.9.0.5")],
        };
        assert_eq!(narrow(&host, &[p("10.9.0.0/24")]), [p("10.9.0.5/32")]);
        assert!(narrow(&host, &[p("10.8.0.0/24")]).is_empty());
        let udp = TsPayload {
            selectors: vec![TrafficSelector {
                ip_protocol: 17,
                ..range("0.0.0.0", "255.255.255.255")
            }],
        };
        assert!(narrow(&udp, &[p("10.9.0.0/24")]).is_empty());
        // accept: subset only
        assert_eq!(
            accept(&payload(&[p("10.9.0.0/24")]), &[IpPrefix::ANY_V4]),
            Some(vec![p("10.9.0.0/24")])
        );
        assert_eq!(accept(&any, &[p("10.9.0.0/24")]), None);
    }
}
