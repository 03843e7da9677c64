//! Errors of the XDP loader: one line each, naming the interface and the step that failed.

use std::fmt;

use crate::AttachMode;

/// Largest MTU native XDP accepts on a veth device (Linux 6.x: one page minus headroom and
/// `skb_shared_info`). Above it the kernel answers `ERANGE`.
pub const VETH_NATIVE_XDP_MAX_MTU: u32 = 3506;

/// What went wrong while loading, attaching, filling or reading the steering program.
#[derive(Debug)]
pub enum SteeringError {
    /// The interface does not exist (in this network namespace).
    UnknownInterface {
        /// Interface name as given.
        iface: String,
    },
    /// Parsing the embedded object or creating its maps failed.
    Load {
        /// Interface the program was meant for.
        iface: String,
        /// The loader's error chain, on one line.
        detail: String,
    },
    /// The kernel verifier or `BPF_PROG_LOAD` refused the program.
    ProgramLoad {
        /// Interface the program was meant for.
        iface: String,
        /// The loader's error chain, on one line.
        detail: String,
    },
    /// Attaching in the given mode failed.
    Attach {
        /// Interface.
        iface: String,
        /// Mode tried.
        mode: AttachMode,
        /// The loader's error chain, on one line.
        detail: String,
    },
    /// Native XDP refused the interface's MTU (the kernel says only `ERANGE`).
    MtuTooLarge {
        /// Interface.
        iface: String,
        /// Its MTU, when readable.
        mtu: Option<u32>,
    },
    /// Both native and generic attachment failed (`ModePreference::Auto`).
    AttachAuto {
        /// Interface.
        iface: String,
        /// Why native mode failed.
        driver: Box<SteeringError>,
        /// Why generic mode failed.
        skb: Box<SteeringError>,
    },
    /// A map access (`xsks` or `counters`) failed.
    Map {
        /// Interface.
        iface: String,
        /// Map name.
        map: &'static str,
        /// What was being done.
        op: &'static str,
        /// The loader's error chain, on one line.
        detail: String,
    },
    /// The queue index is beyond the `xsks` map (64 entries).
    QueueOutOfRange {
        /// Interface.
        iface: String,
        /// Queue asked for.
        queue: u32,
        /// Map size.
        max: u32,
    },
    /// Detaching the program failed.
    Detach {
        /// Interface.
        iface: String,
        /// The loader's error chain, on one line.
        detail: String,
    },
}

impl fmt::Display for SteeringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownInterface { iface } => {
                write!(
                    f,
                    "XDP: no interface named {iface:?} in this network namespace"
                )
            }
            Self::Load { iface, detail } => {
                write!(
                    f,
                    "XDP on {iface}: loading the embedded xdp_natt object failed: {detail}"
                )
            }
            Self::ProgramLoad { iface, detail } => {
                write!(
                    f,
                    "XDP on {iface}: the kernel refused program xdp_natt: {detail}"
                )
            }
            Self::Attach {
                iface,
                mode,
                detail,
            } => {
                write!(
                    f,
                    "XDP on {iface}: attaching in {mode} mode failed: {detail}"
                )
            }
            Self::MtuTooLarge { iface, mtu } => {
                let mtu = mtu.map_or_else(|| "its MTU".to_owned(), |m| format!("MTU {m}"));
                write!(
                    f,
                    "XDP on {iface}: native (driver) mode refused {mtu} (kernel: ERANGE); native XDP \
                     needs single-page frames: lower the MTU (veth: <= {VETH_NATIVE_XDP_MAX_MTU}) \
                     or use skb mode"
                )
            }
            Self::AttachAuto { iface, driver, skb } => {
                write!(
                    f,
                    "XDP on {iface}: no attach mode worked: [{driver}] and then [{skb}]"
                )
            }
            Self::Map {
                iface,
                map,
                op,
                detail,
            } => {
                write!(f, "XDP on {iface}: {op} in map {map} failed: {detail}")
            }
            Self::QueueOutOfRange { iface, queue, max } => write!(
                f,
                "XDP on {iface}: queue {queue} is beyond the xsks map ({max} entries)"
            ),
            Self::Detach { iface, detail } => {
                write!(f, "XDP on {iface}: detaching failed: {detail}")
            }
        }
    }
}

impl std::error::Error for SteeringError {}

/// An error and its sources on one line, `a: b: c`.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let msg = inner.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = inner.source();
    }
    s
}

/// True when an error chain is the kernel's `ERANGE` (errno 34).
pub(crate) fn is_erange(detail: &str) -> bool {
    detail.contains("ERANGE")
        || detail.contains("os error 34")
        || detail.contains("Numerical result out of range")
}
