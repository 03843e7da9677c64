//! The program's per-CPU counters, summed over CPUs.

/// Counter slots of the `counters` map; the order is the C enum's in `xdp_natt.c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Counter {
    /// Frames the program ran on.
    Seen = 0,
    /// UDP datagrams to the target port handed to `bpf_redirect_map` (a queue without a
    /// socket still falls back to the kernel).
    Redirected = 1,
    /// Neither IPv4 nor IPv6 (ARP, ...).
    PassedNotIp = 2,
    /// IP but not UDP (or an IPv6 extension header in front of UDP).
    PassedNotUdp = 3,
    /// UDP to another port (IKE on 500, ...).
    PassedOtherPort = 4,
    /// IPv4 UDP fragment (left to kernel reassembly).
    PassedFragment = 5,
    /// Truncated or inconsistent headers.
    Malformed = 6,
}

impl Counter {
    /// Every slot, in map order.
    pub const ALL: [Counter; 7] = [
        Counter::Seen,
        Counter::Redirected,
        Counter::PassedNotIp,
        Counter::PassedNotUdp,
        Counter::PassedOtherPort,
        Counter::PassedFragment,
        Counter::Malformed,
    ];
}

/// Counter values summed over all CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpCounters {
    /// Frames the program ran on.
    pub seen: u64,
    /// Redirect attempts to the XSKMAP.
    pub redirected: u64,
    /// Passed: not IP.
    pub passed_not_ip: u64,
    /// Passed: not UDP.
    pub passed_not_udp: u64,
    /// Passed: UDP to another port.
    pub passed_other_port: u64,
    /// Passed: IPv4 fragment.
    pub passed_fragment: u64,
    /// Passed: malformed headers.
    pub malformed: u64,
}

impl XdpCounters {
    /// Store `value` in the field for `c`.
    pub fn set(&mut self, c: Counter, value: u64) {
        let slot = match c {
            Counter::Seen => &mut self.seen,
            Counter::Redirected => &mut self.redirected,
            Counter::PassedNotIp => &mut self.passed_not_ip,
            Counter::PassedNotUdp => &mut self.passed_not_udp,
            Counter::PassedOtherPort => &mut self.passed_other_port,
            Counter::PassedFragment => &mut self.passed_fragment,
            Counter::Malformed => &mut self.malformed,
        };
        *slot = value;
    }

    /// Field-wise `self - earlier` (saturating), for deltas between two reads.
    pub fn since(&self, earlier: &XdpCounters) -> XdpCounters {
        XdpCounters {
            seen: self.seen.saturating_sub(earlier.seen),
            redirected: self.redirected.saturating_sub(earlier.redirected),
            passed_not_ip: self.passed_not_ip.saturating_sub(earlier.passed_not_ip),
            passed_not_udp: self.passed_not_udp.saturating_sub(earlier.passed_not_udp),
            passed_other_port: self
                .passed_other_port
                .saturating_sub(earlier.passed_other_port),
            passed_fragment: self.passed_fragment.saturating_sub(earlier.passed_fragment),
            malformed: self.malformed.saturating_sub(earlier.malformed),
        }
    }
}
