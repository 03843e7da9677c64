//! Virtual IP pools (RFC 7296 §2.19, §3.15.1: INTERNAL_IP4_ADDRESS / INTERNAL_IP6_ADDRESS).
//!
//! An address is leased to an IKE SA and released when the SA ends. Like strongSwan's
//! in-memory pools, the pool remembers which identity held an address last, so a peer that
//! reconnects (after a delete, a timeout, a crash) gets its previous address back; remembered
//! addresses of other identities are handed out only when nothing else is free.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::ike::payload::Identity;

/// `count` consecutive addresses from `first`; leases are offsets.
#[derive(Debug, Clone)]
pub(super) struct Pool {
    first: IpAddr,
    count: u32,
    /// Offsets leased to an IKE SA now.
    used: BTreeSet<u32>,
    /// The offset each identity held last (leased now or not) …
    last: HashMap<Identity, u32>,
    /// … and the other way round. Both hold at most `count` entries.
    holder: HashMap<u32, Identity>,
    /// Next offset to try for a newcomer (next-fit).
    next: u32,
}

impl Pool {
    pub fn new(first: IpAddr, count: u32) -> Self {
        Self {
            first,
            count,
            used: BTreeSet::new(),
            last: HashMap::new(),
            holder: HashMap::new(),
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

    /// The next free offset from `next` on (wrapping) that `accept` takes, if any.
    fn scan(&mut self, accept: impl Fn(&Self, u32) -> bool) -> Option<u32> {
        let mut off = self.next;
        for _ in 0..self.count {
            let cur = off;
            off = if cur + 1 >= self.count { 0 } else { cur + 1 };
            if !self.used.contains(&cur) && accept(self, cur) {
                self.next = off;
                return Some(cur);
            }
        }
        None
    }

    /// Lease an address to an IKE SA of `id`, in this order: `wanted` if it is ours and free
    /// (§3.15.1: the initiator may ask for one, e.g. the address it had), the address `id` held
    /// last if free, a free address nobody held, a free address another identity held. `None`
    /// when every address is leased.
    pub fn lease(&mut self, wanted: Option<IpAddr>, id: &Identity) -> Option<IpAddr> {
        if u32::try_from(self.used.len()).is_ok_and(|n| n >= self.count) {
            return None;
        }
        let free = |p: &Self, off: u32| !p.used.contains(&off);
        let off = wanted
            .and_then(|w| self.offset_of(w))
            .filter(|o| free(self, *o))
            .or_else(|| self.last.get(id).copied().filter(|o| free(self, *o)))
            .or_else(|| self.scan(|p, o| !p.holder.contains_key(&o)))
            .or_else(|| self.scan(|_, _| true))?;
        self.used.insert(off);
        if let Some(old) = self.last.insert(id.clone(), off)
            && old != off
        {
            self.holder.remove(&old);
        }
        if let Some(prev) = self.holder.insert(off, id.clone())
            && prev != *id
        {
            self.last.remove(&prev);
        }
        self.addr(off)
    }

    /// Give an address back (it stays remembered for the identity that held it).
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(off) = self.offset_of(ip) {
            self.used.remove(&off);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Identity {
        Identity::Fqdn(s.into())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn leases_wrap_and_run_out() {
        let mut p = Pool::new(ip("10.99.0.10"), 3);
        let a = p.lease(None, &id("a")).unwrap();
        assert_eq!(a, ip("10.99.0.10"));
        assert_eq!(
            p.lease(Some(ip("10.99.0.12")), &id("b")),
            Some(ip("10.99.0.12"))
        );
        // wanted but taken: the next free one
        assert_eq!(p.lease(Some(a), &id("c")), Some(ip("10.99.0.11")));
        assert_eq!(p.lease(None, &id("d")), None);
        p.release(a);
        assert_eq!(p.lease(None, &id("d")), Some(a));
        // outside the pool: ignored
        p.release(ip("10.0.0.1"));
        p.release(ip("fd00::1"));
        let mut v6 = Pool::new(ip("fd00::1"), 1);
        assert_eq!(v6.lease(None, &id("a")), Some(ip("fd00::1")));
        assert_eq!(v6.lease(None, &id("b")), None);
    }

    #[test]
    fn an_identity_gets_its_address_back() {
        let mut p = Pool::new(ip("10.99.0.1"), 4);
        let a = p.lease(None, &id("a")).unwrap();
        let b = p.lease(None, &id("b")).unwrap();
        p.release(a);
        // a newcomer does not get a's address while another is free
        let c = p.lease(None, &id("c")).unwrap();
        assert_eq!(c, ip("10.99.0.3"));
        assert_eq!(p.lease(None, &id("a")), Some(a));
        // again and again: always the same one
        for _ in 0..5 {
            p.release(a);
            assert_eq!(p.lease(None, &id("a")), Some(a));
        }
        // a second SA of an identity whose address is in use gets another one
        assert_eq!(p.lease(None, &id("a")), Some(ip("10.99.0.4")));
        // ... and that is what it gets back from now on
        p.release(a);
        p.release(ip("10.99.0.4"));
        assert_eq!(p.lease(None, &id("a")), Some(ip("10.99.0.4")));
        // when only remembered addresses are free, they are reassigned
        p.release(b);
        assert_eq!(p.lease(None, &id("d")), Some(a));
        assert_eq!(p.lease(None, &id("e")), Some(b));
        assert_eq!(p.lease(None, &id("f")), None);
        // b's address is e's now: e gets it back, b is forgotten
        p.release(b);
        assert_eq!(p.lease(None, &id("e")), Some(b));
        assert!(!p.last.contains_key(&id("b")));
        // the maps stay bounded by the pool size
        assert!(p.last.len() <= 4 && p.holder.len() <= 4, "{p:?}");
    }
}
