//! The worker: one thread, pinned to a core, owning a WAN port, the TUN and a [`Pipeline`].
//!
//! Its loop: apply SA commands (between batches, so the hot path holds no lock), wait for
//! either side with `poll(2)`, move batches WAN → TUN and TUN → WAN, forward IKE messages and
//! pipeline events to the control plane, and publish its counters every 100 ms.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::batch::{Event, MAX_BATCH, Pipeline, Stats, Verdict};
use crate::buf::{HEADROOM, PacketBuf};
use crate::drop::DropReason;
use crate::io::tun::Tun;
use crate::io::{FRAME_SIZE, WanPort};
use crate::natt;
use crate::sad::{SaCommand, SaSnapshot};
use crate::wire::{frame, udp};

/// An IKE message that arrived on the NAT-T port (non-ESP marker removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeDatagram {
    /// Sender.
    pub src: SocketAddr,
    /// Our address.
    pub dst: SocketAddr,
    /// The IKE message.
    pub message: Vec<u8>,
}

/// How a [`ControlDatagram`] is framed on the NAT-T port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// An IKE message: sent behind the 4-byte non-ESP marker (RFC 3948 §2.2), which keeps
    /// the receiver from taking it for ESP.
    Ike,
    /// A NAT-keepalive: the payload — the single octet `0xFF` (RFC 3948 §2.3) — as is.
    Keepalive,
}

/// A datagram the control plane sends out of the WAN port through the workers: IKE on the
/// NAT-T port must leave from the same address, port and interface as ESP (RFC 3948 §2.2,
/// RFC 7296 §2.23), and on AF_XDP there is no kernel socket on that port. Worker 0 serves
/// them between batches: it adds the non-ESP marker for IKE, builds UDP and IP (and, on
/// AF_XDP, Ethernet to the learned next hop) and sends.
///
/// `src` is the gateway's NAT-T address (`listen`); the socket backend sends from its bound
/// socket, which has that address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlDatagram {
    /// Our NAT-T address.
    pub src: SocketAddr,
    /// The peer's (NAT-mapped) endpoint.
    pub dst: SocketAddr,
    /// The IKE message (without the marker) or the keepalive octet.
    pub payload: Vec<u8>,
    /// How to frame it.
    pub kind: ControlKind,
}

impl ControlDatagram {
    /// An IKE message for `dst`.
    pub fn ike(src: SocketAddr, dst: SocketAddr, message: Vec<u8>) -> Self {
        Self {
            src,
            dst,
            payload: message,
            kind: ControlKind::Ike,
        }
    }

    /// A NAT-keepalive for `dst` (RFC 3948 §2.3: one octet, `0xFF`).
    pub fn keepalive(src: SocketAddr, dst: SocketAddr) -> Self {
        Self {
            src,
            dst,
            payload: vec![natt::KEEPALIVE],
            kind: ControlKind::Keepalive,
        }
    }

    /// Write the outer packet (IP ‖ UDP ‖ [marker ‖] payload) into `buf`, with `ttl`;
    /// returns where it lies in `buf`. The UDP checksum is computed for both IP versions:
    /// the zero checksum RFC 3948 §2.1 allows is for ESP, whose ICV protects it; IKE and
    /// keepalives are plain UDP (RFC 768).
    pub fn encode(&self, buf: &mut [u8], ttl: u8) -> Result<core::ops::Range<usize>, DropReason> {
        let len = self.payload.len();
        let room = buf
            .get_mut(HEADROOM..HEADROOM + len)
            .ok_or(DropReason::TooBig)?;
        room.copy_from_slice(&self.payload);
        let mut pkt = PacketBuf::new(buf, HEADROOM, len);
        if self.kind == ControlKind::Ike {
            natt::push_non_esp_marker(&mut pkt).map_err(|_| DropReason::TooBig)?;
        }
        frame::push_udp_ip(&mut pkt, self.src, self.dst, ttl, 0)?;
        let ip_len = if self.src.is_ipv4() { 20 } else { 40 };
        if let Some(datagram) = pkt.data_mut().get_mut(ip_len..) {
            udp::Datagram::new_unchecked(datagram).fill_checksum(self.src.ip(), self.dst.ip());
        }
        Ok(pkt.head()..pkt.head() + pkt.len())
    }
}

/// What a worker tells the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// IKE on port 4500.
    Ike(IkeDatagram),
    /// A pipeline event (peer moved, lifetime crossed).
    Pipeline(Event),
    /// A command could not be applied.
    CommandFailed(String),
}

/// A question to a worker, answered between batches.
#[derive(Debug)]
pub enum Query {
    /// Every SA with its counters.
    Sas(Sender<Vec<SaSnapshot>>),
}

/// Counters of one worker, published periodically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Backend in use.
    pub backend: &'static str,
    /// Pipeline counters.
    pub pipeline: Stats,
    /// Packets read from the TUN.
    pub tun_rx: u64,
    /// Packets written to the TUN.
    pub tun_tx: u64,
    /// Packets the TUN refused (queue full).
    pub tun_drops: u64,
    /// Outer packets sent.
    pub wan_tx: u64,
    /// Outer packets the WAN port had no room for.
    pub wan_tx_drops: u64,
    /// Events the control plane channel had no room for.
    pub events_dropped: u64,
    /// Installed SAs (inbound, outbound).
    pub sas: (usize, usize),
    /// Control datagrams (IKE, keepalives) sent for the control plane.
    pub control_tx: u64,
    /// Control datagrams that could not be built or found no room on the WAN side.
    pub control_drops: u64,
}

/// The channels and shared state a worker is started with.
#[derive(Debug)]
pub struct Links {
    /// SA commands from the control plane.
    pub commands: Receiver<SaCommand>,
    /// Questions from the control plane (answered on the sender they carry).
    pub queries: Receiver<Query>,
    /// Events to the control plane (bounded: a full channel drops and counts).
    pub events: Sender<WorkerEvent>,
    /// Where the worker publishes its counters.
    pub stats: Arc<Mutex<WorkerStats>>,
    /// Set to stop the loop.
    pub stop: Arc<AtomicBool>,
    /// Control datagrams to send out of the WAN port (served between batches; only one
    /// worker needs a connected channel, the others get `crossbeam_channel::never()`). A
    /// datagram waits at most one poll timeout (50 ms) when the worker is idle.
    pub transmit: Receiver<ControlDatagram>,
}

/// Time between two counter publications.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// Longest wait in poll(): bounds how late a command or a stop request is seen.
const POLL_MS: i32 = 50;

/// A worker with its resources; [`Worker::run`] consumes it.
#[derive(Debug)]
pub struct Worker<W: WanPort> {
    wan: W,
    tun: Tun,
    pipeline: Pipeline,
    links: Links,
    stats: WorkerStats,
    tun_bufs: Vec<[u8; FRAME_SIZE]>,
    control_buf: Box<[u8; FRAME_SIZE]>,
}

impl<W: WanPort> Worker<W> {
    /// Assemble a worker.
    pub fn new(wan: W, tun: Tun, pipeline: Pipeline, links: Links) -> Self {
        let stats = WorkerStats {
            backend: wan.name(),
            ..WorkerStats::default()
        };
        Self {
            wan,
            tun,
            pipeline,
            links,
            stats,
            tun_bufs: vec![[0u8; FRAME_SIZE]; MAX_BATCH],
            control_buf: Box::new([0u8; FRAME_SIZE]),
        }
    }

    /// Run until `links.stop` is set.
    pub fn run(mut self) -> io::Result<()> {
        let mut last_publish = Instant::now();
        while !self.links.stop.load(Ordering::Relaxed) {
            self.apply_commands();
            self.transmit_control()?;
            let (wan_ready, tun_ready) = poll2(self.wan.poll_fd(), self.tun.fd(), POLL_MS)?;
            if wan_ready {
                self.wan_to_tun()?;
            }
            if tun_ready {
                self.tun_to_wan()?;
            }
            self.forward_events();
            if last_publish.elapsed() >= PUBLISH_EVERY {
                self.publish();
                last_publish = Instant::now();
            }
        }
        self.publish();
        Ok(())
    }

    fn apply_commands(&mut self) {
        while let Ok(cmd) = self.links.commands.try_recv() {
            if let Err(e) = self.pipeline.sad.apply(cmd) {
                self.send_event(WorkerEvent::CommandFailed(e.to_string()));
            }
        }
        while let Ok(q) = self.links.queries.try_recv() {
            match q {
                // The asker may have given up waiting: nothing to do then.
                Query::Sas(reply) => drop(reply.try_send(self.pipeline.sad.snapshot())),
            }
        }
    }

    /// Send the control plane's datagrams (IKE, keepalives) out of the WAN port.
    fn transmit_control(&mut self) -> io::Result<()> {
        let ttl = self.pipeline.config().ttl;
        while let Ok(d) = self.links.transmit.try_recv() {
            let sent = match d.encode(&mut self.control_buf[..], ttl) {
                Ok(at) => self.wan.tx(&[(d.dst, &self.control_buf[at])])?,
                Err(_) => 0,
            };
            self.stats.control_tx += sent as u64;
            self.stats.control_drops += 1 - sent.min(1) as u64;
        }
        Ok(())
    }

    fn send_event(&mut self, e: WorkerEvent) {
        if self.links.events.try_send(e).is_err() {
            self.stats.events_dropped += 1;
        }
    }

    fn wan_to_tun(&mut self) -> io::Result<()> {
        loop {
            let tun = &self.tun;
            let (mut tx, mut drops, mut ike) = (0u64, 0u64, Vec::new());
            let n = self.wan.rx(&mut self.pipeline, &mut |v, data| match v {
                Verdict::Inner => match tun.send(data) {
                    Ok(true) => tx += 1,
                    _ => drops += 1,
                },
                Verdict::Ike { src, dst } => ike.push(IkeDatagram {
                    src,
                    dst,
                    message: data.to_vec(),
                }),
                _ => {}
            })?;
            self.stats.tun_tx += tx;
            self.stats.tun_drops += drops;
            for d in ike {
                self.send_event(WorkerEvent::Ike(d));
            }
            if n < MAX_BATCH {
                return Ok(());
            }
        }
    }

    fn tun_to_wan(&mut self) -> io::Result<()> {
        loop {
            let mut lens = [0usize; MAX_BATCH];
            let mut n = 0;
            while n < MAX_BATCH {
                match self
                    .tun
                    .recv(&mut self.tun_bufs[n][HEADROOM..FRAME_SIZE - crate::buf::TAILROOM])?
                {
                    Some(len) => {
                        lens[n] = len;
                        n += 1;
                    }
                    None => break,
                }
            }
            if n == 0 {
                return Ok(());
            }
            self.stats.tun_rx += n as u64;
            let mut frames: Vec<PacketBuf<'_>> = Vec::with_capacity(MAX_BATCH);
            for (buf, &len) in self.tun_bufs.iter_mut().zip(&lens[..n]) {
                frames.push(PacketBuf::new(buf, HEADROOM, len));
            }
            let mut verdicts = [Verdict::Keepalive; MAX_BATCH];
            self.pipeline.encap_batch(&mut frames, &mut verdicts[..n]);
            let mut out: Vec<(SocketAddr, &[u8])> = Vec::with_capacity(MAX_BATCH);
            for (v, f) in verdicts[..n].iter().zip(frames.iter()) {
                if let Verdict::Wire { dst } = v {
                    out.push((*dst, f.data()));
                }
            }
            let sent = self.wan.tx(&out)?;
            self.stats.wan_tx += sent as u64;
            self.stats.wan_tx_drops += (out.len() - sent) as u64;
            if n < MAX_BATCH {
                return Ok(());
            }
        }
    }

    fn forward_events(&mut self) {
        let events: Vec<Event> = self.pipeline.drain_events().collect();
        for e in events {
            self.send_event(WorkerEvent::Pipeline(e));
        }
    }

    fn publish(&mut self) {
        self.stats.pipeline = self.pipeline.stats.clone();
        self.stats.sas = self.pipeline.sad.len();
        if let Ok(mut s) = self.links.stats.lock() {
            *s = self.stats.clone();
        }
    }
}

/// poll(2) on two descriptors; returns which are readable.
fn poll2(a: i32, b: i32, timeout_ms: i32) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: a,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: fds is a valid array of two pollfd for the duration of the call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok((false, false))
        } else {
            Err(e)
        };
    }
    Ok((
        fds[0].revents & libc::POLLIN != 0,
        fds[1].revents & libc::POLLIN != 0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{Link, parse_udp};

    fn addrs(v6: bool) -> (SocketAddr, SocketAddr) {
        if v6 {
            (
                "[2001:db8::2]:4500".parse().unwrap(),
                "[2001:db8::1]:40000".parse().unwrap(),
            )
        } else {
            (
                "192.0.2.2:4500".parse().unwrap(),
                "192.0.2.1:40000".parse().unwrap(),
            )
        }
    }

    #[test]
    fn ike_gets_the_non_esp_marker_and_a_udp_checksum() {
        for v6 in [false, true] {
            let (src, dst) = addrs(v6);
            let message: Vec<u8> = (0..40u8).map(|b| b | 1).collect();
            let d = ControlDatagram::ike(src, dst, message.clone());
            let mut buf = [0u8; FRAME_SIZE];
            let at = d.encode(&mut buf, 64).unwrap();
            let pkt = &buf[at];
            let f = parse_udp(pkt, Link::Ip, 40000).unwrap();
            assert_eq!((f.src, f.dst), (src, dst));
            let payload = &pkt[f.payload_range()];
            assert_eq!(&payload[..4], &natt::NON_ESP_MARKER);
            assert_eq!(&payload[4..], &message[..]);
            assert_eq!(natt::classify(payload), Ok(natt::Class::Ike));
            let dg = udp::Datagram::new_checked(&pkt[f.udp_offset..]).unwrap();
            assert_ne!(dg.checksum(), 0, "IKE gets a real UDP checksum");
            assert!(dg.verify_checksum(src.ip(), dst.ip()));
        }
    }

    #[test]
    fn keepalive_is_the_single_octet() {
        let (src, dst) = addrs(false);
        let mut buf = [0u8; FRAME_SIZE];
        let at = ControlDatagram::keepalive(src, dst)
            .encode(&mut buf, 64)
            .unwrap();
        let f = parse_udp(&buf[at.clone()], Link::Ip, 40000).unwrap();
        assert_eq!(&buf[at][f.payload_range()], &[0xFF]);
    }

    #[test]
    fn oversized_or_mixed_family_is_refused() {
        let (src, dst) = addrs(false);
        let mut buf = [0u8; FRAME_SIZE];
        let big = ControlDatagram::ike(src, dst, vec![1; FRAME_SIZE]);
        assert_eq!(big.encode(&mut buf, 64), Err(DropReason::TooBig));
        let (_, dst6) = addrs(true);
        let mixed = ControlDatagram::ike(src, dst6, vec![1; 40]);
        assert_eq!(
            mixed.encode(&mut buf, 64),
            Err(DropReason::BadOutboundPacket)
        );
    }
}
