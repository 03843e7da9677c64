//! The fallback WAN backend: a kernel UDP socket on the NAT-T port, batched with
//! `recvmmsg`/`sendmmsg` (one system call per batch in each direction).
//!
//! The kernel has already stripped IP and UDP, so frames are UDP payloads with their
//! endpoints ([`Ingress::Udp`]). Transport-mode SAs need the IP header to rebuild, so they are
//! served by raw backends only (AF_XDP); here they drop as `bad_next_header`.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use crate::batch::{Ingress, MAX_BATCH, Pipeline, Verdict};
use crate::buf::{HEADROOM, PacketBuf};
use crate::drop::DropReason;

use super::{FRAME_SIZE, WanPort};

/// A UDP socket bound to the gateway's NAT-T address, with preallocated batch buffers.
#[derive(Debug)]
pub struct UdpPort {
    sock: UdpSocket,
    local: SocketAddr,
    bufs: Vec<[u8; FRAME_SIZE]>,
    lens: [usize; MAX_BATCH],
    endpoints: [(SocketAddr, SocketAddr); MAX_BATCH],
    verdicts: [Verdict; MAX_BATCH],
}

impl UdpPort {
    /// Bind to `local` (a specific address: it is the destination every received datagram
    /// had). Non-blocking.
    pub fn bind(local: SocketAddr) -> io::Result<Self> {
        Self::from_socket(UdpSocket::bind(local)?)
    }

    /// Bind one of several sockets to the same `local` address with `SO_REUSEPORT`, one per
    /// worker: the kernel spreads datagrams over them by a hash of the 4-tuple, so all the
    /// ESP of one peer's NAT mapping lands on one socket (the workers hand off the SAs they
    /// do not own). Every socket sends from the same address and port.
    pub fn bind_shared(local: SocketAddr) -> io::Result<Self> {
        let family = if local.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket creation; the result is checked and owned below.
        let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let sock = unsafe { <UdpSocket as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        // SAFETY: SO_REUSEPORT takes an int; `one` lives for the call.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut name: libc::sockaddr_storage = unsafe { zeroed() };
        let len = std_to_sockaddr(local, &mut name);
        // SAFETY: name holds a sockaddr of `len` bytes for the call.
        if unsafe { libc::bind(fd, (&raw const name).cast(), len) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Self::from_socket(sock)
    }

    fn from_socket(sock: UdpSocket) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        let local = sock.local_addr()?;
        Ok(Self {
            sock,
            local,
            bufs: vec![[0u8; FRAME_SIZE]; MAX_BATCH],
            lens: [0; MAX_BATCH],
            endpoints: [(local, local); MAX_BATCH],
            verdicts: [Verdict::Drop(DropReason::EmptyPayload); MAX_BATCH],
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Receive up to a batch of datagrams without blocking; returns how many.
    fn recv_batch(&mut self) -> io::Result<usize> {
        let mut iovs: [MaybeUninit<libc::iovec>; MAX_BATCH] =
            [const { MaybeUninit::uninit() }; MAX_BATCH];
        // SAFETY: all-zero is a valid sockaddr_storage and mmsghdr.
        let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            let room = &mut buf[HEADROOM..];
            iovs[i].write(libc::iovec {
                iov_base: room.as_mut_ptr().cast(),
                iov_len: room.len(),
            });
            hdrs[i].msg_hdr.msg_iov = iovs[i].as_mut_ptr();
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
            hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
        }
        // SAFETY: every header points at a live iovec/name of this frame; the kernel writes at
        // most iov_len bytes into each buffer.
        let n = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                MAX_BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = n as usize;
        for i in 0..n {
            self.lens[i] = hdrs[i].msg_len as usize;
            let src = sockaddr_to_std(&names[i]).unwrap_or(self.local);
            self.endpoints[i] = (src, self.local);
        }
        Ok(n)
    }
}

impl WanPort for UdpPort {
    fn poll_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    fn name(&self) -> &'static str {
        "socket"
    }

    fn rx(
        &mut self,
        pipeline: &mut Pipeline,
        deliver: &mut dyn FnMut(Verdict, &[u8]),
    ) -> io::Result<usize> {
        let n = self.recv_batch()?;
        if n == 0 {
            return Ok(0);
        }
        let lens = self.lens;
        let mut frames: [MaybeUninit<PacketBuf<'_>>; MAX_BATCH] =
            [const { MaybeUninit::uninit() }; MAX_BATCH];
        for (i, buf) in self.bufs.iter_mut().take(n).enumerate() {
            frames[i].write(PacketBuf::new(buf, HEADROOM, lens[i]));
        }
        // SAFETY: the first n entries were initialised just above.
        let frames = unsafe {
            std::slice::from_raw_parts_mut(frames.as_mut_ptr().cast::<PacketBuf<'_>>(), n)
        };
        pipeline.decap_batch(
            Ingress::Udp(&self.endpoints[..n]),
            frames,
            &mut self.verdicts[..n],
        );
        for (v, f) in self.verdicts[..n].iter().zip(frames.iter()) {
            deliver(*v, f.data());
        }
        Ok(n)
    }

    fn tx(&mut self, packets: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        let mut sent = 0;
        for chunk in packets.chunks(MAX_BATCH) {
            let mut iovs: [MaybeUninit<libc::iovec>; MAX_BATCH] =
                [const { MaybeUninit::uninit() }; MAX_BATCH];
            // SAFETY: all-zero is valid for these C structs.
            let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { zeroed() };
            let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
            let mut count = 0;
            for (dst, ip_packet) in chunk {
                // The kernel adds IP and UDP: send only what follows the outer UDP header.
                let Some(payload) = udp_payload(ip_packet) else {
                    continue;
                };
                let namelen = std_to_sockaddr(*dst, &mut names[count]);
                iovs[count].write(libc::iovec {
                    iov_base: payload.as_ptr() as *mut _,
                    iov_len: payload.len(),
                });
                hdrs[count].msg_hdr.msg_iov = iovs[count].as_mut_ptr();
                hdrs[count].msg_hdr.msg_iovlen = 1;
                hdrs[count].msg_hdr.msg_name = (&raw mut names[count]).cast();
                hdrs[count].msg_hdr.msg_namelen = namelen;
                count += 1;
            }
            let mut off = 0;
            while off < count {
                // SAFETY: headers [off, count) point at live iovecs/names; the kernel only reads.
                let r = unsafe {
                    libc::sendmmsg(
                        self.sock.as_raw_fd(),
                        hdrs[off..].as_mut_ptr(),
                        (count - off) as u32,
                        0,
                    )
                };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::WouldBlock {
                        break;
                    }
                    return Err(e);
                }
                off += r as usize;
            }
            sent += off;
        }
        Ok(sent)
    }
}

/// The UDP payload of an outer IPv4/IPv6 ‖ UDP packet built by the pipeline.
fn udp_payload(ip: &[u8]) -> Option<&[u8]> {
    let hlen = match ip.first()? >> 4 {
        4 => usize::from(ip.first()? & 0x0f) * 4,
        6 => 40,
        _ => return None,
    };
    ip.get(hlen + 8..)
}

fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn std_to_sockaddr(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> u32 {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let s =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            s.sin_family = libc::AF_INET as u16;
            s.sin_port = a.port().to_be();
            s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as u32
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let s =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            s.sin6_family = libc::AF_INET6 as u16;
            s.sin6_port = a.port().to_be();
            s.sin6_addr.s6_addr = a.ip().octets();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as u32
        }
    }
}
