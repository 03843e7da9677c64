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
use crate::io::tun::Tun;
use crate::io::{FRAME_SIZE, WanPort};
use crate::sad::{SaCommand, SaSnapshot};

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
        }
    }

    /// Run until `links.stop` is set.
    pub fn run(mut self) -> io::Result<()> {
        let mut last_publish = Instant::now();
        while !self.links.stop.load(Ordering::Relaxed) {
            let (wan_ready, tun_ready) = poll2(self.wan.poll_fd(), self.tun.fd(), POLL_MS)?;
            // Commands that came in while we slept go first: an SA installed by IKE must be
            // there before the peer's first packet on it, which may have woken us.
            self.apply_commands();
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
