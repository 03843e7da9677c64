//! Several WAN ports served by one worker — one AF_XDP socket per RX queue — behind a
//! single epoll descriptor that is readable when any of them is: a worker serves queues
//! `q ≡ worker (mod workers)`, one each unless there are more RX queues than workers.
//! (Replay windows stay exact either way: each SA has one owning worker, see
//! [`crate::handoff`].)

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::WanPort;
use crate::batch::{Pipeline, Verdict};

/// Ports polled together; transmits leave through the port that received most recently
/// (it has seen the next hop: an AF_XDP port learns the router's MAC from what it receives).
#[derive(Debug)]
pub struct PortSet<W> {
    epoll: OwnedFd,
    ports: Vec<W>,
    last_rx: usize,
}

impl<W: WanPort> PortSet<W> {
    /// Watch `ports` (at least one).
    pub fn new(ports: Vec<W>) -> io::Result<Self> {
        if ports.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no ports"));
        }
        // SAFETY: epoll_create1 has no memory preconditions; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        for (i, p) in ports.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: ev is a valid epoll_event for the call's duration.
            if unsafe {
                libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, p.poll_fd(), &mut ev)
            } < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Self {
            epoll,
            ports,
            last_rx: 0,
        })
    }

    /// The ports.
    pub fn ports(&self) -> &[W] {
        &self.ports
    }
}

impl<W: WanPort> WanPort for PortSet<W> {
    fn poll_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    fn name(&self) -> &'static str {
        self.ports.first().map_or("none", |p| p.name())
    }

    fn rx(
        &mut self,
        pipeline: &mut Pipeline,
        deliver: &mut dyn FnMut(Verdict, &[u8]),
    ) -> io::Result<usize> {
        let mut total = 0;
        for (i, p) in self.ports.iter_mut().enumerate() {
            let n = p.rx(pipeline, deliver)?;
            if n > 0 {
                self.last_rx = i;
            }
            total += n;
        }
        Ok(total)
    }

    fn tx(&mut self, packets: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        match self.ports.get_mut(self.last_rx) {
            Some(p) => p.tx(packets),
            None => Ok(0),
        }
    }
}
