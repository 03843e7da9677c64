//! # xdpsec-ebpf
//!
//! XDP steering of ESP-in-UDP (RFC 3948) into AF_XDP sockets: the C program
//! `src/xdp_natt.c` (compiled by `build.rs` with clang, embedded here) and its aya 0.14 loader.
//!
//! The program redirects UDP datagrams to [`NattSteering::attach`]'s port (4500 by default,
//! RFC 3948 §2) to the AF_XDP socket registered for the receiving RX queue
//! ([`NattSteering::register_socket`]); everything else, IKE on UDP 500 included, goes to the
//! kernel. IPv4 fragments pass to the kernel for reassembly; IPv6 extension headers are not
//! walked. Per-CPU counters are read with [`NattSteering::counters`].
//!
//! The attachment is a bpf_link owned by [`NattSteering`]: dropping it (or the process dying)
//! detaches the program.
//!
//! Tests (`tests/steering.rs`) build their own network namespaces and need root:
//! `cargo test -p xdpsec-ebpf`.

mod counters;
mod error;

use std::fmt;
use std::os::fd::RawFd;

use aya::maps::{PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode, xdp::XdpLinkId};
use aya::{Ebpf, EbpfLoader};

pub use counters::{Counter, XdpCounters};
pub use error::{SteeringError, VETH_NATIVE_XDP_MAX_MTU};

use error::{chain, is_erange};

/// The compiled XDP object, 8-byte aligned as aya requires.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_natt.o"));

/// Name of the XDP function in `xdp_natt.c`.
pub const PROGRAM_NAME: &str = "xdp_natt";

/// Entries of the `xsks` map: the highest RX queue index that can be steered, plus one.
pub const MAX_QUEUES: u32 = 64;

/// Default steered port: UDP-encapsulated ESP and IKE (RFC 3948 §2, RFC 7296 §2.23).
pub const NATT_PORT: u16 = 4500;

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Native XDP, run by the driver (`XDP_FLAGS_DRV_MODE`).
    Driver,
    /// Generic XDP, run by the kernel stack on an skb (`XDP_FLAGS_SKB_MODE`).
    Skb,
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Driver => "driver",
            Self::Skb => "skb",
        })
    }
}

impl AttachMode {
    fn xdp_mode(self) -> XdpMode {
        match self {
            Self::Driver => XdpMode::Driver,
            Self::Skb => XdpMode::Skb,
        }
    }
}

/// Which attach mode to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModePreference {
    /// Native mode, falling back to skb mode when the driver refuses.
    #[default]
    Auto,
    /// Native mode only.
    Driver,
    /// Generic (skb) mode only.
    Skb,
}

/// The loaded and attached steering program. Detaches on drop.
#[derive(Debug)]
pub struct NattSteering {
    iface: String,
    mode: AttachMode,
    ebpf: Ebpf,
    link: Option<XdpLinkId>,
}

impl NattSteering {
    /// Load `xdp_natt` with `TARGET_PORT = port` and attach it to `iface`.
    pub fn attach(iface: &str, port: u16, pref: ModePreference) -> Result<Self, SteeringError> {
        raise_memlock_limit();
        let c_iface =
            std::ffi::CString::new(iface).map_err(|_| SteeringError::UnknownInterface {
                iface: iface.to_owned(),
            })?;
        // SAFETY: a valid NUL-terminated string; the call only reads it.
        if unsafe { libc::if_nametoindex(c_iface.as_ptr()) } == 0 {
            return Err(SteeringError::UnknownInterface {
                iface: iface.to_owned(),
            });
        }
        let mut ebpf = EbpfLoader::new()
            .override_global("TARGET_PORT", &port, true)
            .load(OBJECT)
            .map_err(|e| SteeringError::Load {
                iface: iface.to_owned(),
                detail: chain(&e),
            })?;
        let (mode, link) = {
            let prog = program(&mut ebpf, iface)?;
            prog.load().map_err(|e| SteeringError::ProgramLoad {
                iface: iface.to_owned(),
                detail: chain(&e),
            })?;
            match pref {
                ModePreference::Driver => (
                    AttachMode::Driver,
                    try_attach(prog, iface, AttachMode::Driver)?,
                ),
                ModePreference::Skb => (AttachMode::Skb, try_attach(prog, iface, AttachMode::Skb)?),
                ModePreference::Auto => match try_attach(prog, iface, AttachMode::Driver) {
                    Ok(link) => (AttachMode::Driver, link),
                    Err(driver) => match try_attach(prog, iface, AttachMode::Skb) {
                        Ok(link) => (AttachMode::Skb, link),
                        Err(skb) => {
                            return Err(SteeringError::AttachAuto {
                                iface: iface.to_owned(),
                                driver: Box::new(driver),
                                skb: Box::new(skb),
                            });
                        }
                    },
                },
            }
        };
        Ok(Self {
            iface: iface.to_owned(),
            mode,
            ebpf,
            link: Some(link),
        })
    }

    /// The interface the program is attached to.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The mode the program ended up attached in.
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Steer RX queue `queue` to the AF_XDP socket `fd` (an `XSKMAP` update).
    pub fn register_socket(&mut self, queue: u32, fd: RawFd) -> Result<(), SteeringError> {
        if queue >= MAX_QUEUES {
            return Err(SteeringError::QueueOutOfRange {
                iface: self.iface.clone(),
                queue,
                max: MAX_QUEUES,
            });
        }
        let iface = &self.iface;
        let map_err = |op: &'static str, detail: String| SteeringError::Map {
            iface: iface.clone(),
            map: "xsks",
            op,
            detail,
        };
        let map = self
            .ebpf
            .map_mut("xsks")
            .ok_or_else(|| map_err("lookup", "map missing from the object".to_owned()))?;
        let mut xsks = XskMap::try_from(map).map_err(|e| map_err("open", chain(&e)))?;
        xsks.set(queue, fd, 0)
            .map_err(|e| map_err("setting a socket", chain(&e)))
    }

    /// Remove the socket for `queue`: its traffic falls back to the kernel.
    pub fn unregister_socket(&mut self, queue: u32) -> Result<(), SteeringError> {
        let iface = &self.iface;
        let map_err = |op: &'static str, detail: String| SteeringError::Map {
            iface: iface.clone(),
            map: "xsks",
            op,
            detail,
        };
        let map = self
            .ebpf
            .map_mut("xsks")
            .ok_or_else(|| map_err("lookup", "map missing from the object".to_owned()))?;
        let mut xsks = XskMap::try_from(map).map_err(|e| map_err("open", chain(&e)))?;
        xsks.unset(queue)
            .map_err(|e| map_err("removing a socket", chain(&e)))
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<XdpCounters, SteeringError> {
        let map_err = |op: &'static str, detail: String| SteeringError::Map {
            iface: self.iface.clone(),
            map: "counters",
            op,
            detail,
        };
        let map = self
            .ebpf
            .map("counters")
            .ok_or_else(|| map_err("lookup", "map missing from the object".to_owned()))?;
        let array: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|e| map_err("open", chain(&e)))?;
        let mut out = XdpCounters::default();
        for c in Counter::ALL {
            let values = array
                .get(&(c as u32), 0)
                .map_err(|e| map_err("reading", chain(&e)))?;
            out.set(c, values.iter().copied().fold(0u64, u64::wrapping_add));
        }
        Ok(out)
    }

    /// Detach the program now, reporting failure (dropping detaches silently).
    pub fn detach(mut self) -> Result<(), SteeringError> {
        let Some(link) = self.link.take() else {
            return Ok(());
        };
        let iface = self.iface.clone();
        let prog = program(&mut self.ebpf, &iface)?;
        prog.detach(link).map_err(|e| SteeringError::Detach {
            iface,
            detail: chain(&e),
        })
    }
}

/// The `xdp_natt` program of a loaded object.
fn program<'a>(ebpf: &'a mut Ebpf, iface: &str) -> Result<&'a mut Xdp, SteeringError> {
    let missing = || SteeringError::Load {
        iface: iface.to_owned(),
        detail: format!("program {PROGRAM_NAME} missing from the object"),
    };
    let prog = ebpf.program_mut(PROGRAM_NAME).ok_or_else(missing)?;
    prog.try_into()
        .map_err(|e: aya::programs::ProgramError| SteeringError::Load {
            iface: iface.to_owned(),
            detail: chain(&e),
        })
}

fn try_attach(prog: &mut Xdp, iface: &str, mode: AttachMode) -> Result<XdpLinkId, SteeringError> {
    prog.attach(iface, mode.xdp_mode()).map_err(|e| {
        let detail = chain(&e);
        if mode == AttachMode::Driver && is_erange(&detail) {
            SteeringError::MtuTooLarge {
                iface: iface.to_owned(),
                mtu: read_mtu(iface),
            }
        } else {
            SteeringError::Attach {
                iface: iface.to_owned(),
                mode,
                detail,
            }
        }
    })
}

/// The interface's MTU, asked of the calling thread's network namespace (`SIOCGIFMTU`; sysfs
/// would show the namespace it was mounted in).
fn read_mtu(iface: &str) -> Option<u32> {
    let name = iface.as_bytes();
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return None;
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    // SAFETY: plain socket/ioctl/close calls on a fd we own, with a valid ifreq pointer.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let rc = libc::ioctl(fd, libc::SIOCGIFMTU, &raw mut req);
        libc::close(fd);
        if rc != 0 {
            return None;
        }
        u32::try_from(req.ifr_ifru.ifru_mtu).ok()
    }
}

/// Lift `RLIMIT_MEMLOCK` for kernels that still charge BPF maps to it. Linux ≥ 5.11 accounts
/// BPF memory to the cgroup instead, and some sandboxes refuse the call (EPERM): warn, go on.
fn raise_memlock_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(raise_memlock_limit_now);
}

fn raise_memlock_limit_now() {
    let limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: passes a valid rlimit struct by pointer; no other memory is touched.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) } != 0 {
        let err = std::io::Error::last_os_error();
        eprintln!("xdpsec-ebpf: warning: cannot raise RLIMIT_MEMLOCK ({err}); continuing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_embedded_and_names_the_program() {
        assert!(OBJECT.starts_with(b"\x7fELF"));
        let needle = PROGRAM_NAME.as_bytes();
        assert!(OBJECT.windows(needle.len()).any(|w| w == needle));
        assert_eq!(OBJECT.as_ptr() as usize % 8, 0);
    }

    #[test]
    fn mode_display() {
        assert_eq!(AttachMode::Driver.to_string(), "driver");
        assert_eq!(AttachMode::Skb.to_string(), "skb");
    }

    #[test]
    fn erange_becomes_a_helpful_message() {
        assert!(is_erange("netlink error: ERANGE"));
        assert!(is_erange("Numerical result out of range (os error 34)"));
        let e = SteeringError::MtuTooLarge {
            iface: "veth0".into(),
            mtu: Some(9000),
        };
        let s = e.to_string();
        assert!(
            s.contains("veth0") && s.contains("9000") && s.contains("3506"),
            "{s}"
        );
    }

    #[test]
    fn unknown_interface_is_named() {
        let e = NattSteering::attach("xh4-nonexistent0", 4500, ModePreference::Auto)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("XDP: no interface named \"xh4-nonexistent0\" in this network namespace")
        );
    }

    #[test]
    fn counters_since() {
        let a = XdpCounters {
            seen: 5,
            redirected: 2,
            ..Default::default()
        };
        let b = XdpCounters {
            seen: 9,
            redirected: 3,
            ..Default::default()
        };
        assert_eq!(b.since(&a).seen, 4);
        assert_eq!(a.since(&b).seen, 0);
    }
}
