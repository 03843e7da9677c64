//! AF_XDP backend: one socket per RX queue, owned by one worker (xsk-rs 0.11).
//!
//! The kernel side is `xdpsec-ebpf`'s `xdp_natt` program, which redirects UDP/4500 to the
//! socket registered for the receiving queue (`NattSteering::register_socket(queue,
//! port.fd())`). This module never loads a program itself: sockets are created with
//! `XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD` (without it libxdp installs its own program and
//! creation fails with `EBUSY`).
//!
//! # Frames
//! The UMEM is `frame_count` chunks of [`FRAME_SIZE`] (2048) bytes in aligned mode. The
//! kernel writes each received packet [`XDP_HEADROOM`] (256) bytes into its chunk, so every
//! frame has 256 bytes in front of it (≥ [`crate::buf::HEADROOM`]) to grow into for ESP
//! encapsulation, and at most [`MAX_PACKET`] = 1792 bytes of packet (the kernel drops bigger
//! ones and counts them in [`XskStats::rx_dropped`]).
//!
//! Frames are always transmitted from that same offset: xsk-rs 0.11 offers no way to set a
//! descriptor's address, so a frame whose head moved (encapsulation grew it in front,
//! decapsulation shrank it) is moved back to offset 256 with one `copy_within` inside its
//! chunk before it is queued. A frame whose head did not move is sent without any copy.
//!
//! # The worker loop
//! ```text
//! let mut batch = port.new_batch();
//! loop {
//!     port.recv(&mut batch)?;                       // waits up to poll_timeout_ms when idle
//!     port.process(&mut batch, |frames| pipeline.decap_batch(.., frames, &mut verdicts));
//!     for i in 0..batch.len() {                     // each frame: transmit or release
//!         match verdicts[i] { Verdict::Wire { .. } => port.tx_push(&mut batch, i)?, _ => port.release(&mut batch, i) }
//!     }
//!     port.flush()?;                                // one kick for the whole batch, if needed
//! }
//! ```
//! Locally originated packets (from the TUN) take a frame from the free list with
//! [`XskPort::alloc_tx`], are written through [`XskPort::tx_buf`] and queued with
//! [`XskPort::send`].
//!
//! [`AfxdpWan`] adapts a port to the worker's [`WanPort`] trait: received frames go through
//! `Pipeline::decap_batch` in place (`Ingress::Frames(Link::Ethernet)`); outer IP packets
//! handed to `tx` are copied into free frames behind an Ethernet header (the trait passes
//! them as slices), addressed to a static or learned next-hop MAC ([`NextHop`]).
//!
//! Rings: the fill ring is topped up from the free list on every [`XskPort::recv`] (kept
//! full); the completion ring is drained into the free list on every `recv`, `flush` and
//! `alloc_tx`. With `need_wakeup` (kernel ≥ 5.4, `XDP_USE_NEED_WAKEUP`) the kernel is
//! kicked only when it asks for it: `sendto` for TX when the TX ring's flag is set, `poll`
//! for RX when the fill ring's flag is set. Without it TX is kicked on every flush.
//!
//! Nothing here allocates or locks after [`XskPort::open`]: descriptors live in vectors
//! sized once (the free list holds every frame of the UMEM).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem};

use super::{FRAME_SIZE, WanPort};
use crate::batch::{Ingress, MAX_BATCH, Pipeline, Verdict};
use crate::buf::PacketBuf;
use crate::wire::frame::Link;

/// Bytes the kernel leaves in front of every received packet (`XDP_PACKET_HEADROOM`).
pub const XDP_HEADROOM: usize = 256;

/// Largest packet (Ethernet header included) a frame holds: [`FRAME_SIZE`] − [`XDP_HEADROOM`].
pub const MAX_PACKET: usize = FRAME_SIZE - XDP_HEADROOM;

// The dataplane grows frames in place by up to HEADROOM bytes in front.
const _: () = assert!(XDP_HEADROOM >= crate::buf::HEADROOM);

/// Whether to bind in zero-copy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCopy {
    /// Try zero-copy, fall back to copy mode (veth and most virtual NICs only copy).
    #[default]
    Auto,
    /// Zero-copy or fail.
    On,
    /// Copy mode.
    Off,
}

/// The mode a socket ended up bound in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// `XDP_ZEROCOPY`: the NIC DMAs straight into the UMEM.
    ZeroCopy,
    /// `XDP_COPY`: the kernel copies frames between the driver and the UMEM.
    Copy,
}

impl fmt::Display for BindMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ZeroCopy => "zero-copy",
            Self::Copy => "copy",
        })
    }
}

/// Socket and UMEM settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskConfig {
    /// UMEM frames of [`FRAME_SIZE`] bytes (power of two; ≥ 2 × `ring_size` recommended: half
    /// sits in the fill ring, the rest is in flight or free for TX).
    pub frame_count: u32,
    /// Size of each of the four rings (power of two).
    pub ring_size: u32,
    /// Most frames one [`XskPort::recv`] returns (a batch's capacity); at most
    /// [`crate::batch::MAX_BATCH`] (larger values are clamped).
    pub batch: usize,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Use `XDP_USE_NEED_WAKEUP` (kick the kernel only when it asks).
    pub need_wakeup: bool,
    /// How long [`XskPort::recv`] waits in `poll()` when nothing is waiting (0: never wait,
    /// −1: wait forever).
    pub poll_timeout_ms: i32,
}

impl Default for XskConfig {
    fn default() -> Self {
        Self {
            frame_count: 4096,
            ring_size: 2048,
            batch: 64,
            zero_copy: ZeroCopy::Auto,
            need_wakeup: true,
            poll_timeout_ms: 100,
        }
    }
}

/// Counters of one socket: the kernel's (`XDP_STATISTICS`) and this port's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames received.
    pub rx: u64,
    /// Frames handed to the TX ring.
    pub tx: u64,
    /// Frames the kernel reported sent (completion ring).
    pub tx_completed: u64,
    /// Frames dropped for lack of TX ring room.
    pub tx_ring_full: u64,
    /// Frames refused by `tx_push`/`send` (bad index or length).
    pub tx_refused: u64,
    /// TX kicks (`sendto`) made.
    pub tx_kicks: u64,
    /// RX waits (`poll`) made.
    pub rx_polls: u64,
    /// Kernel: frames dropped for other reasons (e.g. bigger than a frame).
    pub rx_dropped: u64,
    /// Kernel: invalid RX descriptors.
    pub rx_invalid: u64,
    /// Kernel: frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Kernel: times the fill ring was found empty.
    pub fill_ring_empty: u64,
    /// Kernel: invalid TX descriptors.
    pub tx_invalid: u64,
    /// Kernel: times the TX ring was found empty.
    pub tx_ring_empty: u64,
    /// Frames on the free list now.
    pub free_frames: u64,
    /// Frames in the fill ring now (given to the kernel for RX).
    pub fill_outstanding: u64,
}

/// Why a frame was not queued for transmission. The frame has been released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxRefused {
    /// The batch has no frame `i`, or it was already sent or released.
    NoFrame,
    /// `head + len` exceeds the frame, or `len` exceeds [`MAX_PACKET`], or `len` is 0.
    BadLength,
}

impl fmt::Display for TxRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoFrame => "no such frame in the batch (already sent or released)",
            Self::BadLength => "packet does not fit a frame",
        })
    }
}

impl std::error::Error for TxRefused {}

/// The frames of one receive, owned by the worker until each is sent or released.
#[derive(Debug)]
pub struct RxBatch {
    descs: Vec<FrameDesc>,
    owned: Vec<bool>,
    layout: Vec<(u16, u16)>,
    len: usize,
}

impl RxBatch {
    /// A batch of up to `capacity` frames.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            descs: vec![FrameDesc::default(); capacity],
            owned: vec![false; capacity],
            layout: vec![(0, 0); capacity],
            len: 0,
        }
    }

    /// Frames received by the last [`XskPort::recv`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the last receive returned nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most frames this batch holds.
    pub fn capacity(&self) -> usize {
        self.descs.len()
    }

    /// Where frame `i`'s packet is inside its [`FRAME_SIZE`] buffer, as `(head, len)`: as
    /// received, or as left by the last [`XskPort::process`].
    pub fn layout(&self, i: usize) -> Option<(usize, usize)> {
        if i < self.len && self.owned.get(i).copied().unwrap_or(false) {
            self.layout
                .get(i)
                .map(|&(h, l)| (usize::from(h), usize::from(l)))
        } else {
            None
        }
    }
}

/// A frame taken from the free list for a locally originated packet.
#[derive(Debug)]
pub struct TxFrame {
    desc: FrameDesc,
}

/// One AF_XDP socket bound to one RX/TX queue of an interface, with its own UMEM.
pub struct XskPort {
    iface: String,
    queue: u32,
    cfg: XskConfig,
    mode: BindMode,
    umem: Umem,
    fq: FillQueue,
    cq: CompQueue,
    tx: TxQueue,
    rx: RxQueue,
    free: Vec<FrameDesc>,
    tx_pending: Vec<FrameDesc>,
    comp_scratch: Vec<FrameDesc>,
    fill_target: u32,
    fill_outstanding: u32,
    stats: XskStats,
}

impl fmt::Debug for XskPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XskPort")
            .field("iface", &self.iface)
            .field("queue", &self.queue)
            .field("mode", &self.mode)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn err(iface: &str, queue: u32, what: &str, e: &dyn std::error::Error) -> io::Error {
    let mut msg = format!("AF_XDP {iface} queue {queue}: {what}: {e}");
    if let Some(src) = e.source() {
        msg.push_str(&format!(": {src}"));
    }
    let kind = e
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map_or(io::ErrorKind::Other, io::Error::kind);
    io::Error::new(kind, msg)
}

fn invalid(iface: &str, queue: u32, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("AF_XDP {iface} queue {queue}: {what}"),
    )
}

impl XskPort {
    /// Create a UMEM and a socket bound to `iface` queue `queue`, and fill the fill ring.
    pub fn open(iface: &str, queue: u32, cfg: &XskConfig) -> io::Result<Self> {
        let ring = QueueSize::new(cfg.ring_size)
            .map_err(|e| err(iface, queue, "ring size must be a power of two", &e))?;
        let frame_size =
            FrameSize::new(FRAME_SIZE as u32).map_err(|e| err(iface, queue, "frame size", &e))?;
        let frame_count = NonZeroU32::new(cfg.frame_count)
            .ok_or_else(|| invalid(iface, queue, "frame_count must be > 0"))?;
        if cfg.batch == 0 {
            return Err(invalid(iface, queue, "batch must be > 0"));
        }
        let umem_cfg = UmemConfig::builder()
            .frame_size(frame_size)
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .frame_headroom(0)
            .build()
            .map_err(|e| err(iface, queue, "UMEM config", &e))?;
        let (umem, descs) = Umem::new(umem_cfg, frame_count, false)
            .map_err(|e| err(iface, queue, "creating the UMEM", &e))?;
        let if_name: Interface = iface
            .parse()
            .map_err(|e| err(iface, queue, "interface name", &e))?;

        let attempts: &[BindMode] = match cfg.zero_copy {
            ZeroCopy::Auto => &[BindMode::ZeroCopy, BindMode::Copy],
            ZeroCopy::On => &[BindMode::ZeroCopy],
            ZeroCopy::Off => &[BindMode::Copy],
        };
        let mut last_err = None;
        let mut bound = None;
        for &mode in attempts {
            let mut flags = match mode {
                BindMode::ZeroCopy => BindFlags::XDP_ZEROCOPY,
                BindMode::Copy => BindFlags::XDP_COPY,
            };
            if cfg.need_wakeup {
                flags |= BindFlags::XDP_USE_NEED_WAKEUP;
            }
            let sock_cfg = SocketConfig::builder()
                .rx_queue_size(ring)
                .tx_queue_size(ring)
                .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
                .bind_flags(flags)
                .build();
            // SAFETY: the UMEM is not shared with any other socket, and
            // XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD is set (xsk-rs's contract).
            match unsafe { xsk_rs::Socket::new(sock_cfg, &umem, &if_name, queue) } {
                Ok((tx, rx, Some((fq, cq)))) => {
                    bound = Some((mode, tx, rx, fq, cq));
                    break;
                }
                Ok((_, _, None)) => {
                    return Err(invalid(iface, queue, "UMEM unexpectedly shared"));
                }
                Err(e) => {
                    last_err = Some(err(iface, queue, &format!("binding in {mode} mode"), &e));
                }
            }
        }
        let Some((mode, tx, rx, fq, cq)) = bound else {
            return Err(last_err.unwrap_or_else(|| invalid(iface, queue, "no bind mode to try")));
        };

        let mut free = Vec::with_capacity(descs.len());
        free.extend(descs);
        let fill_target = cfg.ring_size.min(cfg.frame_count / 2).max(1);
        let mut port = Self {
            iface: iface.to_owned(),
            queue,
            cfg: *cfg,
            mode,
            umem,
            fq,
            cq,
            tx,
            rx,
            free,
            tx_pending: Vec::with_capacity(cfg.ring_size as usize),
            comp_scratch: vec![FrameDesc::default(); cfg.ring_size as usize],
            fill_target,
            fill_outstanding: 0,
            stats: XskStats::default(),
        };
        port.refill();
        Ok(port)
    }

    /// The socket's descriptor: register it in the XSKMAP, or poll it.
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// The mode the socket is bound in.
    pub fn bind_mode(&self) -> BindMode {
        self.mode
    }

    /// The interface the socket is bound to.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The queue the socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The settings it was opened with.
    pub fn config(&self) -> &XskConfig {
        &self.cfg
    }

    /// A batch sized for this port.
    pub fn new_batch(&self) -> RxBatch {
        RxBatch::new(self.cfg.batch.min(MAX_BATCH))
    }

    /// Top the fill ring up from the free list.
    fn refill(&mut self) {
        let want = self.fill_target.saturating_sub(self.fill_outstanding);
        if want == 0 || self.free.is_empty() {
            return;
        }
        let room = self.fq.nb_free(want).min(want) as usize;
        let n = room.min(self.free.len());
        if n == 0 {
            return;
        }
        let start = self.free.len() - n;
        // SAFETY: every descriptor on the free list belongs to this UMEM and is owned by us
        // (not in any ring), so the kernel may take it.
        let produced = unsafe { self.fq.produce(&self.free[start..]) };
        self.free.truncate(self.free.len() - produced);
        self.fill_outstanding = self.fill_outstanding.saturating_add(produced as u32);
    }

    /// Move completed TX frames to the free list.
    fn reap(&mut self) {
        loop {
            // SAFETY: the completion ring returns descriptors of this UMEM that the kernel
            // has finished with.
            let n = unsafe { self.cq.consume(&mut self.comp_scratch) };
            if n == 0 {
                break;
            }
            self.stats.tx_completed += n as u64;
            self.free.extend_from_slice(&self.comp_scratch[..n]);
            if n < self.comp_scratch.len() {
                break;
            }
        }
    }

    /// Release every frame `batch` still owns.
    fn release_all(&mut self, batch: &mut RxBatch) {
        for i in 0..batch.len {
            self.release(batch, i);
        }
        batch.len = 0;
    }

    /// Receive up to the batch's capacity of frames. Frames the batch still owned from the
    /// previous call are released first, and pending TX is flushed. When nothing is waiting,
    /// waits in `poll()` up to `poll_timeout_ms` and tries once more. Returns the count.
    pub fn recv(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        self.recv_with(batch, self.cfg.poll_timeout_ms)
    }

    /// [`XskPort::recv`] that never waits (for a caller that polls [`XskPort::fd`] itself);
    /// it still wakes the kernel when the fill ring asks for it.
    pub fn try_recv(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        self.recv_with(batch, 0)
    }

    fn recv_with(&mut self, batch: &mut RxBatch, timeout_ms: i32) -> io::Result<usize> {
        self.release_all(batch);
        self.flush()?;
        self.reap();
        self.refill();
        let cap = batch.descs.len().min(self.cfg.batch).min(MAX_BATCH);
        // SAFETY: descriptors come back from this socket's RX ring, so they are frames of
        // this UMEM now owned by us.
        let mut n = unsafe { self.rx.consume(&mut batch.descs[..cap]) };
        if n == 0 {
            let kick = !self.cfg.need_wakeup || self.fq.needs_wakeup();
            if timeout_ms != 0 || kick {
                self.stats.rx_polls += 1;
                self.rx.poll(timeout_ms)?;
                // SAFETY: as above.
                n = unsafe { self.rx.consume(&mut batch.descs[..cap]) };
            }
        }
        self.fill_outstanding = self.fill_outstanding.saturating_sub(n as u32);
        self.stats.rx += n as u64;
        for i in 0..n {
            let len = batch.descs[i].lengths().data().min(MAX_PACKET);
            batch.owned[i] = true;
            batch.layout[i] = (XDP_HEADROOM as u16, len as u16);
        }
        batch.len = n;
        // Give the kernel fresh buffers before the worker spends time on the batch.
        self.refill();
        Ok(n)
    }

    /// The whole [`FRAME_SIZE`] chunk of a descriptor's frame.
    ///
    /// # Safety
    /// `desc` must be a frame of this UMEM owned by the caller (not in any ring) and no other
    /// reference to that chunk may exist for the returned lifetime.
    #[allow(clippy::mut_from_ref)] // exclusivity comes from owning `desc`, as in xsk-rs
    unsafe fn chunk<'a>(&'a self, desc: &mut FrameDesc) -> &'a mut [u8] {
        // SAFETY: forwarded from this function's contract.
        unsafe { chunk_of(&self.umem, desc) }
    }

    /// Frame `i` of the batch as a [`PacketBuf`] over its whole chunk (256 bytes of headroom
    /// in front of a received packet). Edits are not recorded: pass the final `(head, len)`
    /// to [`XskPort::tx_push_at`]. `None` if the batch does not own frame `i`.
    pub fn frame<'a>(&'a mut self, batch: &'a mut RxBatch, i: usize) -> Option<PacketBuf<'a>> {
        let (head, len) = batch.layout(i)?;
        let desc = batch.descs.get_mut(i)?;
        // SAFETY: the batch owns this frame (checked by `layout`), and `&mut batch` keeps
        // anyone else from reaching it while the PacketBuf lives.
        let chunk = unsafe { self.chunk(desc) };
        Some(PacketBuf::new(chunk, head, len))
    }

    /// Run `f` over every frame of the batch at once (as the pipeline wants), then record
    /// each frame's new `(head, len)` in the batch for [`XskPort::tx_push`].
    pub fn process<R>(
        &mut self,
        batch: &mut RxBatch,
        f: impl FnOnce(&mut [PacketBuf<'_>]) -> R,
    ) -> R {
        const N: usize = MAX_BATCH;
        let n = batch.len.min(N);
        let mut bufs: [PacketBuf<'_>; N] = std::array::from_fn(|_| PacketBuf::new(&mut [], 0, 0));
        for (i, (slot, desc)) in bufs
            .iter_mut()
            .zip(batch.descs.iter_mut())
            .take(n)
            .enumerate()
        {
            if batch.owned[i] {
                let (head, len) = batch.layout[i];
                // SAFETY: owned frames are distinct chunks, each reachable only through
                // `batch`, which is borrowed mutably for the whole call.
                let chunk = unsafe { chunk_of(&self.umem, desc) };
                *slot = PacketBuf::new(chunk, usize::from(head), usize::from(len));
            }
        }
        let r = f(&mut bufs[..n]);
        for (i, buf) in bufs.iter().take(n).enumerate() {
            if batch.owned[i] {
                batch.layout[i] = (buf.head() as u16, buf.len() as u16);
            }
        }
        r
    }

    /// Queue frame `i` for transmission as laid out by the last [`XskPort::process`] (or as
    /// received). Sent on the next [`XskPort::flush`] (or `recv`).
    pub fn tx_push(&mut self, batch: &mut RxBatch, i: usize) -> Result<(), TxRefused> {
        let Some((head, len)) = batch.layout(i) else {
            self.stats.tx_refused += 1;
            return Err(TxRefused::NoFrame);
        };
        self.tx_push_at(batch, i, head, len)
    }

    /// Queue frame `i` for transmission with its packet at `chunk[head..head + len]` (the
    /// frame's buffer as seen through [`XskPort::frame`]). The RX descriptor is reused as
    /// the TX descriptor; the bytes move only if `head` is not [`XDP_HEADROOM`].
    pub fn tx_push_at(
        &mut self,
        batch: &mut RxBatch,
        i: usize,
        head: usize,
        len: usize,
    ) -> Result<(), TxRefused> {
        if batch.layout(i).is_none() {
            self.stats.tx_refused += 1;
            return Err(TxRefused::NoFrame);
        }
        batch.owned[i] = false;
        let desc = batch.descs[i];
        self.queue_tx(desc, head, len)
    }

    /// Put frame `i` back on the free list without sending it.
    pub fn release(&mut self, batch: &mut RxBatch, i: usize) {
        if i < batch.len && batch.owned.get(i).copied().unwrap_or(false) {
            batch.owned[i] = false;
            self.free.push(batch.descs[i]);
        }
    }

    /// Take a frame from the free list for a locally originated packet; `None` when every
    /// frame is in use (the caller drops the packet and counts it).
    pub fn alloc_tx(&mut self) -> Option<TxFrame> {
        if self.free.is_empty() {
            self.reap();
        }
        self.free.pop().map(|desc| TxFrame { desc })
    }

    /// The buffer of an allocated frame: an empty packet at offset [`XDP_HEADROOM`], with
    /// 256 bytes of headroom in front and [`MAX_PACKET`] bytes of room behind.
    pub fn tx_buf<'a>(&'a mut self, frame: &'a mut TxFrame) -> PacketBuf<'a> {
        // SAFETY: the TxFrame owns the frame (taken from the free list), borrowed mutably.
        let chunk = unsafe { self.chunk(&mut frame.desc) };
        PacketBuf::new(chunk, XDP_HEADROOM, 0)
    }

    /// Queue an allocated frame with its packet at `head..head + len` of its buffer.
    pub fn send(&mut self, frame: TxFrame, head: usize, len: usize) -> Result<(), TxRefused> {
        self.queue_tx(frame.desc, head, len)
    }

    /// Return an allocated frame unsent.
    pub fn free_tx(&mut self, frame: TxFrame) {
        self.free.push(frame.desc);
    }

    fn queue_tx(&mut self, mut desc: FrameDesc, head: usize, len: usize) -> Result<(), TxRefused> {
        let end = head.checked_add(len);
        if len == 0 || len > MAX_PACKET || end.is_none_or(|e| e > FRAME_SIZE) {
            self.stats.tx_refused += 1;
            self.free.push(desc);
            return Err(TxRefused::BadLength);
        }
        if self.tx_pending.len() == self.tx_pending.capacity() {
            // Never grow: push what we have first.
            if self.flush().is_err() || self.tx_pending.len() == self.tx_pending.capacity() {
                self.stats.tx_ring_full += 1;
                self.free.push(desc);
                return Ok(());
            }
        }
        // SAFETY: the frame is owned by us (from a batch or a TxFrame), not in any ring.
        unsafe {
            if head != XDP_HEADROOM {
                let chunk = chunk_of(&self.umem, &mut desc);
                chunk.copy_within(head..head + len, XDP_HEADROOM);
            }
            let mut data = self.umem.data_mut(&mut desc);
            data.cursor().set_pos(len);
        }
        self.tx_pending.push(desc);
        Ok(())
    }

    /// Hand queued frames to the TX ring and kick the kernel if it needs it. Frames that
    /// find no room in the ring are dropped (counted in `tx_ring_full`).
    pub fn flush(&mut self) -> io::Result<()> {
        self.reap();
        if self.tx_pending.is_empty() {
            return Ok(());
        }
        // SAFETY: pending descriptors are frames of this UMEM owned by us.
        let n = unsafe { self.tx.produce(&self.tx_pending) };
        self.stats.tx += n as u64;
        let dropped = self.tx_pending.len() - n;
        if dropped > 0 {
            self.stats.tx_ring_full += dropped as u64;
            self.free.extend_from_slice(&self.tx_pending[n..]);
        }
        self.tx_pending.clear();
        if n > 0 && (!self.cfg.need_wakeup || self.tx.needs_wakeup()) {
            self.stats.tx_kicks += 1;
            self.tx.wakeup()?;
        }
        Ok(())
    }

    /// Counters, with the kernel's `XDP_STATISTICS` read now.
    pub fn stats(&self) -> io::Result<XskStats> {
        let k = self.rx.fd().xdp_statistics()?;
        Ok(XskStats {
            rx_dropped: k.rx_dropped(),
            rx_invalid: k.rx_invalid_descs(),
            rx_ring_full: k.rx_ring_full(),
            fill_ring_empty: k.rx_fill_ring_empty_descs(),
            tx_invalid: k.tx_invalid_descs(),
            tx_ring_empty: k.tx_ring_empty_descs(),
            free_frames: self.free.len() as u64,
            fill_outstanding: u64::from(self.fill_outstanding),
            ..self.stats
        })
    }
}

/// Where [`AfxdpWan`] sends outer packets at the Ethernet layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// A fixed MAC address (the WAN router's).
    Static([u8; 6]),
    /// The source MAC of the latest received NAT-T frame (the router in front of the
    /// gateway, or the peer on a shared segment). Before the first frame arrives, the
    /// kernel's IPv4 neighbour entry of the route's next hop ([`super::neigh`]); IPv6 waits
    /// for a frame. As trustworthy as ARP on that segment.
    Learn,
}

/// The next-hop MAC learned from received frames, shared by the ports of all workers: the
/// worker that transmits (an encapsulated packet, or worker 0 with an IKE message) may not be
/// the one whose queue has received anything yet.
#[derive(Debug, Clone, Default)]
pub struct LearnedMac(Arc<AtomicU64>);

/// Bit set in a [`LearnedMac`] once a MAC is stored (the MAC is the low 48 bits).
const MAC_VALID: u64 = 1 << 48;

impl LearnedMac {
    /// Nothing learned yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The MAC, if learned.
    pub fn get(&self) -> Option<[u8; 6]> {
        let v = self.0.load(Ordering::Relaxed);
        (v & MAC_VALID != 0).then(|| {
            let b = v.to_be_bytes();
            [b[2], b[3], b[4], b[5], b[6], b[7]]
        })
    }

    /// Store `mac` (written only when it changed: the cell is shared between cores).
    pub fn set(&self, mac: [u8; 6]) {
        let [a, b, c, d, e, f] = mac;
        let v = u64::from_be_bytes([0, 0, a, b, c, d, e, f]) | MAC_VALID;
        if self.0.load(Ordering::Relaxed) != v {
            self.0.store(v, Ordering::Relaxed);
        }
    }
}

/// A [`WanPort`] over one [`XskPort`]: Ethernet frames in, IP packets framed and out.
#[derive(Debug)]
pub struct AfxdpWan {
    port: XskPort,
    batch: RxBatch,
    verdicts: [Verdict; MAX_BATCH],
    local_mac: [u8; 6],
    next_hop: NextHop,
    learned: LearnedMac,
}

impl AfxdpWan {
    /// Wrap `port`; outer frames leave from `local_mac` (the interface's address).
    pub fn new(port: XskPort, local_mac: [u8; 6], next_hop: NextHop) -> Self {
        let batch = port.new_batch();
        Self {
            port,
            batch,
            verdicts: [Verdict::Keepalive; MAX_BATCH],
            local_mac,
            next_hop,
            learned: LearnedMac::new(),
        }
    }

    /// Learn the next hop into `cell`, shared with other ports (see [`LearnedMac`]).
    pub fn with_learned(mut self, cell: LearnedMac) -> Self {
        self.learned = cell;
        self
    }

    /// The AF_XDP socket.
    pub fn port(&self) -> &XskPort {
        &self.port
    }

    /// The AF_XDP socket, mutable (stats, flush).
    pub fn port_mut(&mut self) -> &mut XskPort {
        &mut self.port
    }

    /// The destination MAC outer frames get now, if known.
    pub fn next_hop_mac(&self) -> Option<[u8; 6]> {
        match self.next_hop {
            NextHop::Static(m) => Some(m),
            NextHop::Learn => self.learned.get(),
        }
    }
}

/// Bytes of an Ethernet II header.
const ETH_LEN: usize = 14;

impl WanPort for AfxdpWan {
    fn poll_fd(&self) -> RawFd {
        self.port.fd()
    }

    fn name(&self) -> &'static str {
        "afxdp"
    }

    fn rx(
        &mut self,
        pipeline: &mut Pipeline,
        deliver: &mut dyn FnMut(Verdict, &[u8]),
    ) -> io::Result<usize> {
        let n = self.port.try_recv(&mut self.batch)?;
        if n == 0 {
            return Ok(0);
        }
        let verdicts = &mut self.verdicts[..n.min(MAX_BATCH)];
        let learn = self.next_hop == NextHop::Learn;
        let mut learned = None;
        self.port.process(&mut self.batch, |frames| {
            if learn {
                // Source MAC (RFC 894 framing: bytes 6..12) of the newest frame.
                learned = frames
                    .last()
                    .and_then(|f| f.data().get(6..12))
                    .and_then(|m| <[u8; 6]>::try_from(m).ok());
            }
            pipeline.decap_batch(Ingress::Frames(Link::Ethernet), frames, verdicts);
        });
        if let Some(mac) = learned {
            self.learned.set(mac);
        }
        for (i, v) in verdicts.iter().enumerate() {
            if let Some(buf) = self.port.frame(&mut self.batch, i) {
                deliver(*v, buf.data());
            }
        }
        for i in 0..n {
            self.port.release(&mut self.batch, i);
        }
        Ok(n)
    }

    fn tx(&mut self, packets: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        if self.next_hop_mac().is_none()
            && self.next_hop == NextHop::Learn
            && let Some(&(dst, _)) = packets.first()
            && let Some(mac) = super::neigh::next_hop_mac(self.port.iface(), dst.ip())
        {
            // Nothing received yet: ask the kernel's neighbour table (IPv4).
            self.learned.set(mac);
        }
        let Some(dst_mac) = self.next_hop_mac() else {
            return Ok(0);
        };
        let mut sent = 0;
        for (_, ip) in packets {
            let ethertype: u16 = match ip.first().map(|b| b >> 4) {
                Some(4) => 0x0800,
                Some(6) => 0x86dd,
                _ => continue,
            };
            let Some(mut frame) = self.port.alloc_tx() else {
                break;
            };
            let placed = {
                let mut buf = self.port.tx_buf(&mut frame);
                match buf.push_back(ETH_LEN + ip.len()) {
                    Ok(room) => {
                        room[..6].copy_from_slice(&dst_mac);
                        room[6..12].copy_from_slice(&self.local_mac);
                        room[12..14].copy_from_slice(&ethertype.to_be_bytes());
                        room[ETH_LEN..].copy_from_slice(ip);
                        Some((buf.head(), buf.len()))
                    }
                    Err(_) => None,
                }
            };
            match placed {
                // A refusal has already released the frame (and counted it).
                Some((head, len)) => {
                    if self.port.send(frame, head, len).is_ok() {
                        sent += 1;
                    }
                }
                None => self.port.free_tx(frame),
            }
        }
        self.port.flush()?;
        Ok(sent)
    }
}

/// Offset of a descriptor's address inside its chunk.
fn desc_offset(desc: &FrameDesc) -> usize {
    desc.addr() % FRAME_SIZE
}

/// [`XskPort::chunk`] without borrowing the whole port.
///
/// # Safety
/// As [`XskPort::chunk`].
#[allow(clippy::mut_from_ref)] // exclusivity comes from owning `desc`, as in xsk-rs
unsafe fn chunk_of<'a>(umem: &'a Umem, desc: &mut FrameDesc) -> &'a mut [u8] {
    let offset_in_chunk = desc_offset(desc);
    // SAFETY: xsk-rs's data segment for `desc` starts at `desc.addr()`, which is
    // `offset_in_chunk` (XDP_HEADROOM) bytes into its FRAME_SIZE-aligned chunk (frame headroom
    // 0, aligned mode: the kernel places RX data there, and TX never moves `addr`). The chunk
    // is one contiguous span of the UMEM's single mmap region, and the caller guarantees
    // exclusive ownership of it. The pointer is widened from the data segment to the chunk
    // start because xsk-rs exposes no other access to the bytes in front of `addr`.
    unsafe {
        let mut data = umem.data_mut(desc);
        let ptr = data.contents_mut().as_mut_ptr();
        std::slice::from_raw_parts_mut(ptr.sub(offset_in_chunk), FRAME_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_mac_round_trips() {
        let cell = LearnedMac::new();
        let other = cell.clone();
        assert_eq!(other.get(), None);
        cell.set([0, 1, 2, 3, 4, 0xff]);
        assert_eq!(other.get(), Some([0, 1, 2, 3, 4, 0xff]));
        cell.set([0; 6]);
        assert_eq!(other.get(), Some([0; 6]), "an all-zero MAC is still a MAC");
    }

    #[test]
    fn layout_constants() {
        assert_eq!(MAX_PACKET, 1792);
    }

    #[test]
    fn empty_batch_owns_nothing() {
        let b = RxBatch::new(4);
        assert!(b.is_empty());
        assert_eq!(b.capacity(), 4);
        assert_eq!(b.layout(0), None);
        assert_eq!(RxBatch::new(0).capacity(), 1);
    }

    #[test]
    fn open_refuses_bad_settings() {
        let cfg = XskConfig {
            ring_size: 1000,
            ..XskConfig::default()
        };
        let e = XskPort::open("lo", 0, &cfg).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("lo queue 0")));
    }
}
