//! Whole-frame parsers on arbitrary bytes: a frame expected to carry UDP/4500 (as an
//! Ethernet frame, and as a bare IP packet), and a bare IP packet. None may panic; every
//! refusal is a `DropReason`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpsec_dataplane::wire::frame::{Link, parse_ip, parse_udp};

fuzz_target!(|data: &[u8]| {
    let _ = parse_udp(data, Link::Ethernet, 4500);
    let _ = parse_udp(data, Link::Ip, 4500);
    let _ = parse_ip(data);
});
