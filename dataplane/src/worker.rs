//! The worker: one thread, pinned to a core, owning a WAN port (its RX queue), a TUN queue and
//! a [`Pipeline`] that owns the SAs with `spi % workers == worker` ([`Shard`]).
//!
//! Its loop: apply SA commands (between batches, so the hot path holds no lock), send the
//! control plane's datagrams, wait for the WAN port, the TUN queue or the mailbox doorbell with
//! `poll(2)`, move batches WAN → TUN and TUN → WAN (handing frames of other workers' SAs to
//! their owners, [`crate::handoff`]), serve its own mailbox, forward IKE messages and pipeline
//! events to the control plane, and publish its counters every 100 ms.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::batch::{Event, Ingress, MAX_BATCH, Pipeline, Shard, Stats, Verdict};
use crate::buf::{HEADROOM, PacketBuf};
use crate::drop::DropReason;
use crate::handoff::{Handoff, Mailbox, Origin, Parcel};
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
    /// The worker (hence RX queue) that received it. ESP-in-UDP of the same peer shares the
    /// message's 5-tuple, so RSS puts it on the same queue: an inbound SPI with
    /// `spi % workers == worker` is owned by that worker and needs no handoff.
    pub worker: usize,
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
    /// This worker's index.
    pub worker: usize,
    /// Frames of other workers' SAs posted to their owners (see [`crate::handoff`]).
    pub handoff_tx: u64,
    /// Frames of this worker's SAs received from other workers.
    pub handoff_rx: u64,
    /// Frames dropped because the owner's mailbox was full.
    pub handoff_full: u64,
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
    /// worker needs a connected channel, the others get `crossbeam_channel::never()`). An idle
    /// worker sees a datagram within one poll timeout (50 ms), at once if the sender then
    /// calls `handoff.mailbox(worker).notify()`.
    pub transmit: Receiver<ControlDatagram>,
    /// The mailboxes of all workers (one worker: `Handoff::new(1, ..)`).
    pub handoff: Arc<Handoff>,
    /// This worker's index among them; it owns the SAs with `spi % workers == worker`.
    pub worker: usize,
}

/// Most mailbox batches a worker serves between two looks at its own WAN port and TUN.
const MAILBOX_BATCHES_PER_TURN: usize = 4;
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
    /// Parcels taken from the mailbox; boxed because they travel between the workers'
    /// queues by pointer and return to them.
    #[allow(clippy::vec_box)]
    parcels: Vec<Box<Parcel>>,
}

impl<W: WanPort> Worker<W> {
    /// Assemble a worker. Its pipeline owns the SAs of worker `links.worker` of
    /// `links.handoff.workers()` ([`Shard`]).
    pub fn new(wan: W, tun: Tun, mut pipeline: Pipeline, links: Links) -> Self {
        // Worker counts and indices are tiny (one per RX queue), far below u16::MAX.
        pipeline.set_shard(Shard {
            index: links.worker as u16,
            count: links.handoff.workers() as u16,
        });
        let stats = WorkerStats {
            backend: wan.name(),
            worker: links.worker,
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
            parcels: Vec::with_capacity(MAX_BATCH),
        }
    }

    /// Run until `links.stop` is set.
    pub fn run(mut self) -> io::Result<()> {
        let mut last_publish = Instant::now();
        let handoff = Arc::clone(&self.links.handoff);
        let mailbox = handoff.mailbox(self.links.worker);
        while !self.links.stop.load(Ordering::Relaxed) {
            // Sleep only if no frame is waiting in the mailbox; its doorbell wakes us. The
            // control plane rings it after queueing a command or control datagram, but only
            // if we already sleep: what it queued just before `sleep()` is checked here, or it
            // would wait a whole poll timeout.
            let (timeout, bell) = match mailbox {
                Some(m) if m.sleep() => (POLL_MS, m.doorbell_fd()),
                Some(m) => (0, m.doorbell_fd()),
                None => (POLL_MS, -1),
            };
            let timeout = if self.links.commands.is_empty() && self.links.transmit.is_empty() {
                timeout
            } else {
                0
            };
            let [wan_ready, tun_ready, rung] =
                poll3([self.wan.poll_fd(), self.tun.fd(), bell], timeout)?;
            if let Some(m) = mailbox {
                m.woke(rung);
            }
            // Commands that came in while we slept go first: an SA installed by IKE must be
            // there before the peer's first packet on it, which may have woken us.
            self.apply_commands();
            self.transmit_control()?;
            if wan_ready {
                self.wan_to_tun()?;
            }
            if tun_ready {
                self.tun_to_wan()?;
            }
            if let Some(m) = mailbox {
                self.serve_mailbox(m)?;
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
                // The asker may have given up waiting: nothing to do then. Each worker
                // reports the SAs it owns, so the answers of all workers list each SA once,
                // with the owner's counters and replay state.
                Query::Sas(reply) => drop(reply.try_send(self.pipeline.owned_snapshot())),
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
            let handoff = &self.links.handoff;
            let worker = self.links.worker;
            let mut post = Post::default();
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
                    worker,
                }),
                Verdict::Handoff { worker, origin } => post.to(handoff, worker, data, origin),
                _ => {}
            })?;
            self.stats.tun_tx += tx;
            self.stats.tun_drops += drops;
            post.count(&mut self.stats);
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
            let mut post = Post::default();
            let mut out: Vec<(SocketAddr, &[u8])> = Vec::with_capacity(MAX_BATCH);
            for (v, f) in verdicts[..n].iter().zip(frames.iter()) {
                match *v {
                    Verdict::Wire { dst } => out.push((dst, f.data())),
                    Verdict::Handoff { worker, origin } => {
                        post.to(&self.links.handoff, worker, f.data(), origin);
                    }
                    _ => {}
                }
            }
            post.count(&mut self.stats);
            let sent = self.wan.tx(&out)?;
            self.stats.wan_tx += sent as u64;
            self.stats.wan_tx_drops += (out.len() - sent) as u64;
            if n < MAX_BATCH {
                return Ok(());
            }
        }
    }

    /// Process what other workers handed over: NAT mappings they learned, ESP of our
    /// inbound SAs (decapsulated here, so our replay windows see every packet) and inner
    /// packets for our outbound SAs (encapsulated here, so our sequence numbers stay ours).
    fn serve_mailbox(&mut self, mailbox: &Mailbox) -> io::Result<()> {
        while let Some((peer, endpoint)) = mailbox.take_peer_move() {
            // Cannot fail: UpdatePeer creates the peer if needed.
            let _ = self
                .pipeline
                .sad
                .apply(SaCommand::UpdatePeer { peer, endpoint });
        }
        let mut parcels = std::mem::take(&mut self.parcels);
        // A few batches per turn, so that a flood of handoffs cannot starve this worker's own
        // queue and TUN: what is left keeps the next poll from sleeping.
        for _ in 0..MAILBOX_BATCHES_PER_TURN {
            while parcels.len() < MAX_BATCH {
                match mailbox.take() {
                    Some(p) => parcels.push(p),
                    None => break,
                }
            }
            let n = parcels.len();
            if n == 0 {
                break;
            }
            self.stats.handoff_rx += n as u64;
            // Runs of parcels of one origin kind go through the pipeline together.
            let mut start = 0;
            let mut result = Ok(());
            while start < n && result.is_ok() {
                let kind = |p: &Parcel| match p.origin() {
                    Origin::Frame(link) => (0, Some(link)),
                    Origin::Udp(..) => (1, None),
                    Origin::Inner => (2, None),
                };
                let first = kind(&parcels[start]);
                let end = parcels[start..]
                    .iter()
                    .position(|p| kind(p) != first)
                    .map_or(n, |k| start + k);
                result = self.process_parcels(&mut parcels[start..end]);
                start = end;
            }
            for p in parcels.drain(..) {
                mailbox.recycle(p);
            }
            if let Err(e) = result {
                self.parcels = parcels;
                return Err(e);
            }
            if n < MAX_BATCH {
                break;
            }
        }
        self.parcels = parcels;
        Ok(())
    }

    /// Run parcels of one origin kind (at most a batch) through the pipeline and deliver.
    fn process_parcels(&mut self, parcels: &mut [Box<Parcel>]) -> io::Result<()> {
        let n = parcels.len().min(MAX_BATCH);
        let Some(first) = parcels.first().map(|p| p.origin()) else {
            return Ok(());
        };
        let mut endpoints = [(
            SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::from(([0, 0, 0, 0], 0)),
        ); MAX_BATCH];
        for (e, p) in endpoints.iter_mut().zip(parcels.iter()) {
            if let Origin::Udp(src, dst) = p.origin() {
                *e = (src, dst);
            }
        }
        let mut bufs: [PacketBuf<'_>; MAX_BATCH] =
            std::array::from_fn(|_| PacketBuf::new(&mut [], 0, 0));
        for (b, p) in bufs.iter_mut().zip(parcels.iter_mut()) {
            *b = p.packet();
        }
        let frames = &mut bufs[..n];
        let mut verdicts = [Verdict::Keepalive; MAX_BATCH];
        let verdicts = &mut verdicts[..n];
        // `rx_frames` counts what this worker received from the WAN; handed-over frames are
        // counted in `handoff_rx` (and in the sender's `rx_frames`).
        let rx_frames = self.pipeline.stats.rx_frames;
        match first {
            Origin::Inner => {
                self.pipeline.encap_batch(frames, verdicts);
                let mut out: Vec<(SocketAddr, &[u8])> = Vec::with_capacity(MAX_BATCH);
                for (v, f) in verdicts.iter().zip(frames.iter()) {
                    if let Verdict::Wire { dst } = v {
                        out.push((*dst, f.data()));
                    }
                }
                let sent = self.wan.tx(&out)?;
                self.stats.wan_tx += sent as u64;
                self.stats.wan_tx_drops += (out.len() - sent) as u64;
            }
            Origin::Frame(link) => {
                self.pipeline
                    .decap_batch(Ingress::Frames(link), frames, verdicts);
                self.deliver_inner(verdicts, frames);
            }
            Origin::Udp(..) => {
                self.pipeline
                    .decap_batch(Ingress::Udp(&endpoints[..n]), frames, verdicts);
                self.deliver_inner(verdicts, frames);
            }
        }
        self.pipeline.stats.rx_frames = rx_frames;
        Ok(())
    }

    /// Write decapsulated packets to the TUN. (Handed-off frames are ESP only: IKE and
    /// keepalives are never handed off.)
    fn deliver_inner(&mut self, verdicts: &[Verdict], frames: &[PacketBuf<'_>]) {
        for (v, f) in verdicts.iter().zip(frames) {
            if *v == Verdict::Inner {
                match self.tun.send(f.data()) {
                    Ok(true) => self.stats.tun_tx += 1,
                    _ => self.stats.tun_drops += 1,
                }
            }
        }
    }

    fn forward_events(&mut self) {
        let events: Vec<Event> = self.pipeline.drain_events().collect();
        for e in events {
            if let Event::PeerMoved { peer, endpoint } = e {
                // The peer's outbound SAs may belong to other workers: they must send to the
                // new mapping at once (RFC 7296 §2.23).
                for m in self.links.handoff.others(self.links.worker) {
                    let _ = m.post_peer_move(peer, endpoint);
                }
            }
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

/// Counts of one batch's posts to other workers.
#[derive(Debug, Default)]
struct Post {
    sent: u64,
    full: u64,
}

impl Post {
    /// Post `data` to worker `worker`'s mailbox.
    fn to(&mut self, handoff: &Handoff, worker: u16, data: &[u8], origin: Origin) {
        match handoff
            .mailbox(usize::from(worker))
            .map(|m| m.post(data, origin))
        {
            Some(Ok(())) => self.sent += 1,
            _ => self.full += 1,
        }
    }

    fn count(&self, stats: &mut WorkerStats) {
        stats.handoff_tx += self.sent;
        stats.handoff_full += self.full;
    }
}

/// poll(2) on three descriptors (a negative one is ignored); returns which are readable.
fn poll3(fds: [i32; 3], timeout_ms: i32) -> io::Result<[bool; 3]> {
    let mut p = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: p is a valid array of three pollfd for the duration of the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), 3, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok([false; 3])
        } else {
            Err(e)
        };
    }
    Ok(p.map(|p| p.revents & libc::POLLIN != 0))
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
