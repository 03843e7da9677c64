//! The inner side: a Linux TUN device (`IFF_TUN | IFF_NO_PI`), non-blocking. Decrypted
//! packets are written to it; packets the kernel routes into it are read for encapsulation.
//! TUN has no batched read/write, so this is one system call per packet — the known cost of the
//! inner side until an AF_XDP LAN port replaces it.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// An open TUN device; the interface disappears when it is dropped (non-persistent).
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

#[repr(C)]
struct IfReqMtu {
    name: [libc::c_char; libc::IFNAMSIZ],
    mtu: libc::c_int,
    _pad: [u8; 20],
}

fn ifname(name: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    if name.is_empty()
        || name.len() >= libc::IFNAMSIZ
        || name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name \"{name}\" (1..15 bytes, no '/' or spaces)"),
        ));
    }
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    Ok(out)
}

impl Tun {
    /// Create (or attach to) TUN interface `name`, set its MTU and bring it up. Without
    /// `ipv6`, IPv6 is disabled on the interface before it comes up, so the kernel's link-local
    /// chatter (router solicitations, MLD reports) never reaches the tunnel.
    pub fn open(name: &str, mtu: u32, ipv6: bool) -> io::Result<Self> {
        let tun = Self::attach(name, 0)?;
        tun.setup(mtu, ipv6)?;
        Ok(tun)
    }

    /// Open `queues` queues of one multi-queue TUN interface (`IFF_MULTI_QUEUE`): one
    /// descriptor per worker. The kernel spreads the packets routed into the interface over
    /// the queues by flow hash; each queue accepts writes independently. One queue is a plain
    /// [`Tun::open`].
    pub fn open_queues(name: &str, mtu: u32, ipv6: bool, queues: usize) -> io::Result<Vec<Self>> {
        if queues <= 1 {
            return Ok(vec![Self::open(name, mtu, ipv6)?]);
        }
        let first = Self::attach(name, libc::IFF_MULTI_QUEUE)?;
        let mut all = Vec::with_capacity(queues);
        for _ in 1..queues {
            all.push(Self::attach(&first.name, libc::IFF_MULTI_QUEUE)?);
        }
        first.setup(mtu, ipv6)?;
        all.insert(0, first);
        Ok(all)
    }

    /// Open `/dev/net/tun` and attach it to interface `name` (created if needed).
    fn attach(name: &str, extra_flags: libc::c_int) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = IfReqFlags {
            name: ifname(name)?,
            flags: (libc::IFF_TUN | libc::IFF_NO_PI | extra_flags) as libc::c_short,
            _pad: [0; 22],
        };
        // SAFETY: TUNSETIFF reads and writes an ifreq, which IfReqFlags lays out.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel NUL-terminates the name it returns.
        let name = unsafe { CStr::from_ptr(req.name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Ok(Self { file, name })
    }

    fn setup(&self, mtu: u32, ipv6: bool) -> io::Result<()> {
        if !ipv6 {
            std::fs::write(
                format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", self.name),
                "1",
            )?;
        }
        self.configure(mtu)
    }

    fn configure(&self, mtu: u32) -> io::Result<()> {
        // SAFETY: a plain datagram socket used only for interface ioctls.
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if s < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: s is a fresh descriptor we own.
        let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(s) };
        let mut m = IfReqMtu {
            name: ifname(&self.name)?,
            mtu: mtu as libc::c_int,
            _pad: [0; 20],
        };
        // SAFETY: SIOCSIFMTU takes an ifreq with the MTU in the union.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFMTU, &mut m) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut f = IfReqFlags {
            name: ifname(&self.name)?,
            flags: 0,
            _pad: [0; 22],
        };
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read/write the flags of an ifreq.
        unsafe {
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut f) < 0 {
                return Err(io::Error::last_os_error());
            }
            f.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &mut f) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// The interface name the kernel gave.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The descriptor, for poll().
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Read one packet into `buf`; `Ok(None)` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match (&self.file).read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write one IP packet. A full queue drops the packet (`Ok(false)`), as a NIC would.
    pub fn send(&self, packet: &[u8]) -> io::Result<bool> {
        match (&self.file).write(packet) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}
