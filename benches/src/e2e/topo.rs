//! The benchmark's own namespace topology (prefix `xb-`, so it never collides with the tests'
//! `xs-`/`xa-` or the demo's), torn down when dropped — on success, on error, and after
//! Ctrl-C (the scenario turns SIGINT into an error that unwinds to here).
//!
//! ```text
//! [xb-client] xb-c0 192.0.2.1 ── xb-g0 192.0.2.2 [xb-gw: xdpsec run] xb-g1 10.9.0.1 ── xb-s0 10.9.0.2 [xb-sink]
//!             generator (ESP-in-UDP to 192.0.2.2:4500)       TUN xbtun0 ← 10.99.0.0/24      UDP sink :9000
//! ```
//!
//! Fixed MAC addresses, so that an AF_XDP generator can address frames without ARP.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// Namespace names.
pub const CLIENT: &str = "xb-client";
/// The gateway's namespace.
pub const GW: &str = "xb-gw";
/// The sink's namespace.
pub const SINK: &str = "xb-sink";
const ALL: [&str; 3] = [CLIENT, GW, SINK];

/// The client's WAN interface and its MAC.
pub const CLIENT_IF: &str = "xb-c0";
/// MAC of [`CLIENT_IF`].
pub const CLIENT_MAC: [u8; 6] = [0x02, 0x78, 0x62, 0, 0, 0x01];
/// The gateway's WAN interface (XDP attach point) and its MAC.
pub const GW_WAN: &str = "xb-g0";
/// MAC of [`GW_WAN`].
pub const GW_MAC: [u8; 6] = [0x02, 0x78, 0x62, 0, 0, 0x02];
/// Outer addresses.
pub const CLIENT_ADDR: &str = "192.0.2.1:4500";
/// The gateway's NAT-T address.
pub const GW_ADDR: &str = "192.0.2.2:4500";
/// The sink's UDP address (behind the gateway).
pub const SINK_ADDR: &str = "10.9.0.2:9000";
/// The generator's inner source (the peer's inner network, routed into the gateway's TUN).
pub const INNER_SRC: &str = "10.99.0.2:7000";

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Run a command, failing with its stderr.
pub fn sh(args: &[&str]) -> Result<String, String> {
    let (cmd, rest) = args.split_first().ok_or("empty command")?;
    let out = Command::new(cmd)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run a command inside namespace `ns`.
pub fn ns_sh(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    sh(&full)
}

/// Move the calling thread into namespace `ns` (network namespaces are per thread).
pub fn enter(ns: &str) -> Result<(), String> {
    let path = format!("/var/run/netns/{ns}");
    let f = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: setns(2) on a valid namespace descriptor; affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The topology; removed on drop.
#[derive(Debug)]
pub struct Topology;

impl Topology {
    /// Create it (removing leftovers of an interrupted run first). Needs root.
    pub fn up() -> Result<Self, String> {
        down();
        let t = Topology;
        for ns in ALL {
            sh(&["ip", "netns", "add", ns])?;
            ns_sh(ns, &["ip", "link", "set", "lo", "up"])?;
        }
        sh(&[
            "ip",
            "link",
            "add",
            CLIENT_IF,
            "address",
            &mac(CLIENT_MAC),
            "netns",
            CLIENT,
            "type",
            "veth",
            "peer",
            "name",
            GW_WAN,
            "address",
            &mac(GW_MAC),
            "netns",
            GW,
        ])?;
        sh(&[
            "ip", "link", "add", "xb-g1", "netns", GW, "type", "veth", "peer", "name", "xb-s0",
            "netns", SINK,
        ])?;
        for (ns, dev, a) in [
            (CLIENT, CLIENT_IF, "192.0.2.1/24"),
            (GW, GW_WAN, "192.0.2.2/24"),
            (GW, "xb-g1", "10.9.0.1/24"),
            (SINK, "xb-s0", "10.9.0.2/24"),
        ] {
            ns_sh(ns, &["ip", "addr", "add", a, "dev", dev])?;
            ns_sh(ns, &["ip", "link", "set", dev, "up"])?;
            // Partial checksums from veth TX offload would corrupt what AF_XDP forwards.
            let _ = ns_sh(ns, &["ethtool", "-K", dev, "tx", "off"]);
        }
        ns_sh(SINK, &["ip", "route", "add", "default", "via", "10.9.0.1"])?;
        ns_sh(GW, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // Static neighbours: no ARP in the measured path.
        ns_sh(
            CLIENT,
            &[
                "ip",
                "neigh",
                "replace",
                "192.0.2.2",
                "lladdr",
                &mac(GW_MAC),
                "dev",
                CLIENT_IF,
            ],
        )?;
        Ok(t)
    }
}

/// Remove the namespaces (killing what runs inside).
fn down() {
    let listed = sh(&["ip", "netns", "list"]).unwrap_or_default();
    for ns in ALL {
        if listed.split_whitespace().any(|w| w == ns) {
            if let Ok(pids) = sh(&["ip", "netns", "pids", ns]) {
                for pid in pids
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: kill(2) of a process inside our own benchmark namespace.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        down();
    }
}
