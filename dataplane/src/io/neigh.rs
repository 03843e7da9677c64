//! The kernel's IPv4 neighbour table, for the AF_XDP port's first transmissions: before any
//! frame has been received there is no learned next-hop MAC ([`super::afxdp::NextHop::Learn`]),
//! yet the control plane may have to send first (an IKE initiator, a keepalive). The next hop of
//! a destination is found as the kernel would: the longest matching route on the WAN interface
//! (`/proc/net/route`), its gateway or the destination itself when on-link, then that address's
//! complete ARP entry (`/proc/net/arp`). IPv6 has no such `/proc` table (it needs netlink): IPv6
//! destinations wait for a received frame. The tables are read through `/proc/thread-self`:
//! the calling thread's network namespace, which need not be the process's.

use std::net::{IpAddr, Ipv4Addr};

/// The MAC address of the next hop towards `dst` out of `iface`, from the kernel's tables; `None`
/// when there is no route or no resolved neighbour entry.
pub fn next_hop_mac(iface: &str, dst: IpAddr) -> Option<[u8; 6]> {
    let IpAddr::V4(dst) = dst else {
        return None;
    };
    let routes = std::fs::read_to_string("/proc/thread-self/net/route").ok()?;
    let hop = next_hop(&routes, iface, dst)?;
    let arp = std::fs::read_to_string("/proc/thread-self/net/arp").ok()?;
    arp_entry(&arp, iface, hop)
}

/// The IPv4 next hop towards `dst` on `iface` in a `/proc/net/route` table: the gateway of the
/// longest-prefix (then lowest-metric) up route, or `dst` for an on-link route.
fn next_hop(table: &str, iface: &str, dst: Ipv4Addr) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    // Addresses are the kernel's __be32 printed as a native integer: its native bytes are the
    // address octets.
    let addr = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    let mut best: Option<(u32, u32, Ipv4Addr)> = None;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [dev, dest, gw, flags, _, _, metric, mask, ..] = f.as_slice() else {
            continue;
        };
        let (Some(dest), Some(gw), Some(mask)) = (addr(dest), addr(gw), addr(mask)) else {
            continue;
        };
        let flags = u32::from_str_radix(flags, 16).unwrap_or(0);
        let metric = metric.parse::<u32>().unwrap_or(u32::MAX);
        let (dest, mask) = (u32::from_be_bytes(dest), u32::from_be_bytes(mask));
        if *dev != iface || flags & RTF_UP == 0 || u32::from(dst) & mask != dest & mask {
            continue;
        }
        let hop = if flags & RTF_GATEWAY != 0 {
            Ipv4Addr::from(gw)
        } else {
            dst
        };
        let len = mask.count_ones();
        if best.is_none_or(|(l, m, _)| len > l || (len == l && metric < m)) {
            best = Some((len, metric, hop));
        }
    }
    best.map(|(_, _, hop)| hop)
}

/// The MAC of `ip`'s complete entry on `iface` in a `/proc/net/arp` table.
fn arp_entry(table: &str, iface: &str, ip: Ipv4Addr) -> Option<[u8; 6]> {
    const ATF_COM: u32 = 0x2;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [addr, _, flags, mac, _, dev] = f.as_slice() else {
            return None;
        };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        if *dev != iface || addr.parse::<Ipv4Addr>().ok()? != ip || flags & ATF_COM == 0 {
            return None;
        }
        let mut out = [0u8; 6];
        let mut parts = mac.split(':');
        for o in &mut out {
            *o = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        (parts.next().is_none() && out != [0; 6]).then_some(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wan0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
wan0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wan0\t0000A8C0\t FE00A8C0\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
lan0\t00000A0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
wan0\t0064A8C0\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        wan0
192.0.2.9        0x1         0x0         00:00:00:00:00:00     *        wan0
192.0.2.7        0x1         0x2         02:00:00:00:00:07     *        lan0
";

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn routes_choose_the_longest_prefix_on_the_interface() {
        if cfg!(target_endian = "big") {
            return; // the sample table is little-endian output
        }
        // On-link /24: the destination itself.
        assert_eq!(
            next_hop(ROUTES, "wan0", ip("192.0.2.44")),
            Some(ip("192.0.2.44"))
        );
        // Default route: its gateway.
        assert_eq!(
            next_hop(ROUTES, "wan0", ip("203.0.113.5")),
            Some(ip("192.0.2.1"))
        );
        // /16 via a gateway beats the default; a route that is not up is ignored.
        assert_eq!(
            next_hop(ROUTES, "wan0", ip("192.168.100.3")),
            Some(ip("192.168.0.254"))
        );
        // Routes of other interfaces do not count.
        assert_eq!(
            next_hop(ROUTES, "wan0", ip("10.10.1.1")),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(next_hop(ROUTES, "eth9", ip("192.0.2.44")), None);
    }

    #[test]
    fn arp_takes_complete_entries_of_the_interface() {
        assert_eq!(
            arp_entry(ARP, "wan0", ip("192.0.2.1")),
            Some([0x02, 0xfc, 0, 0, 0, 5])
        );
        assert_eq!(arp_entry(ARP, "wan0", ip("192.0.2.9")), None, "incomplete");
        assert_eq!(
            arp_entry(ARP, "wan0", ip("192.0.2.7")),
            None,
            "other device"
        );
        assert_eq!(arp_entry("garbage\nx y", "wan0", ip("192.0.2.1")), None);
    }

    #[test]
    fn ipv6_is_not_looked_up() {
        assert_eq!(next_hop_mac("lo", "::1".parse().unwrap()), None);
    }
}
