//! Virtual IP pools (RFC 7296 §2.19, §3.15.1: INTERNAL_IP4_ADDRESS / INTERNAL_IP6_ADDRESS).

use std::collections::BTreeSet;
use std::net::IpAddr;

/// `count` consecutive addresses from `first`; leases are offsets.
#[derive(Debug, Clone)]
pub(super) struct Pool {
    first: IpAddr,
    count: u32,
    used: BTreeSet<u32>,
    /// Next offset to try (next-fit: a released address is not handed out again at once).
    next: u32,
}

impl Pool {
    pub fn new(first: IpAddr, count: u32) -> Self {
        Self {
            first,
            count,
            used: BTreeSet::new(),
            next: 0,
        }
    }

    fn offset_of(&self, ip: IpAddr) -> Option<u32> {
        let off = match (self.first, ip) {
            (IpAddr::V4(f), IpAddr::V4(a)) => u128::from(u32::from(a).checked_sub(u32::from(f))?),
            (IpAddr::V6(f), IpAddr::V6(a)) => u128::from(a).checked_sub(u128::from(f))?,
            _ => return None,
        };
        u32::try_from(off).ok().filter(|o| *o < self.count)
    }

    fn addr(&self, off: u32) -> Option<IpAddr> {
        match self.first {
            IpAddr::V4(f) => u32::from(f).checked_add(off).map(|a| IpAddr::V4(a.into())),
            IpAddr::V6(f) => u128::from(f)
                .checked_add(u128::from(off))
                .map(|a| IpAddr::V6(a.into())),
        }
    }

    /// Lease `wanted` if it is ours and free (§3.15.1: the initiator may ask for one),
    /// else the next free address; `None` when the pool is exhausted.
    pub fn lease(&mut self, wanted: Option<IpAddr>) -> Option<IpAddr> {
        if let Some(off) = wanted.and_then(|w| self.offset_of(w))
            && !self.used.contains(&off)
        {
            self.used.insert(off);
            return self.addr(off);
        }
        // at most used.len() + 1 probes find a free offset when there is one
        let probes = u64::try_from(self.used.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        for _ in 0..probes.min(u64::from(self.count)) {
            let off = self.next;
            self.next = if off + 1 >= self.count { 0 } else { off + 1 };
            if self.used.insert(off) {
                return self.addr(off);
            }
        }
        None
    }

    /// Give an address back.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(off) = self.offset_of(ip) {
            self.used.remove(&off);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_wrap_and_run_out() {
        let mut p = Pool::new("10.99.0.10".parse().unwrap(), 3);
        let a = p.lease(None).unwrap();
        assert_eq!(a, "10.99.0.10".parse::<IpAddr>().unwrap());
        assert_eq!(
            p.lease(Some("10.99.0.12".parse().unwrap()))
                .unwrap()
                .to_string(),
            "10.99.0.12"
        );
        assert_eq!(p.lease(Some(a)).unwrap().to_string(), "10.99.0.11");
        assert_eq!(p.lease(None), None);
        p.release(a);
        assert_eq!(p.lease(None), Some(a));
        // outside the pool: ignored
        p.release("10.0.0.1".parse().unwrap());
        let mut v6 = Pool::new("fd00::1".parse().unwrap(), 1);
        assert_eq!(v6.lease(None).unwrap().to_string(), "fd00::1");
        assert_eq!(v6.lease(None), None);
    }
}
