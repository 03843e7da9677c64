//! Frames passed between workers (issue #3): every SA belongs to one worker
//! ([`crate::batch::Shard`]); a worker that receives a frame of an SA it does not own posts it
//! to the owner's [`Mailbox`], and the owner runs it through its own pipeline in its next
//! batch. An inbound SA's replay window thus sees every packet of the SA whichever RX queue
//! they arrive on (RFC 4303 §3.4.3 stays exact), and an outbound SA's sequence numbers are
//! taken by one worker only (RFC 4303 §3.3.3: unique, increasing, never cycling).
//!
//! A mailbox is two lock-free bounded queues (crossbeam `ArrayQueue`) over a fixed set of
//! preallocated [`Parcel`]s: `free` holds empty ones, `full` the posted ones. Posting pops a
//! free parcel, copies the frame in and pushes it to `full`; the owner pops it, processes it
//! in place and pushes it back to `free`. Nothing is allocated per packet; a post that finds
//! no free parcel fails ([`Full`]) and the frame is dropped and counted (`handoff_full`), as a
//! NIC drops on a full ring.
//!
//! Mailboxes also carry the NAT mappings a worker learns (`peer_moves`): the inbound SA that
//! authenticated the packet and the outbound SAs of the same peer may belong to different
//! workers, and replies must follow the new mapping at once (RFC 7296 §2.23).
//!
//! Waking: an owner sleeping in `poll(2)` is woken by its [`Doorbell`] (an eventfd), rung by
//! the first poster after it announced it was going to sleep ([`Mailbox::sleep`]).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering, fence};

use crossbeam_queue::ArrayQueue;

use crate::buf::{HEADROOM, PacketBuf, TAILROOM};
use crate::io::FRAME_SIZE;
use crate::sa::PeerId;
use crate::wire::frame::Link;

/// Where a handed-off frame came from, so that the owner processes it exactly as the
/// receiving worker would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A whole received frame (AF_XDP: Ethernet) for decapsulation.
    Frame(Link),
    /// A UDP payload from the socket backend, with its (source, destination).
    Udp(SocketAddr, SocketAddr),
    /// An inner packet read from the TUN, for encapsulation.
    Inner,
}

/// Largest frame a parcel holds: it keeps [`HEADROOM`] and [`TAILROOM`] free around it, so an
/// inner packet can be encapsulated in place.
pub const MAX_PARCEL: usize = FRAME_SIZE - HEADROOM - TAILROOM;

/// One preallocated frame buffer travelling between workers.
#[derive(Debug)]
pub struct Parcel {
    buf: [u8; FRAME_SIZE],
    len: u16,
    origin: Origin,
}

impl Parcel {
    fn empty() -> Box<Self> {
        Box::new(Self {
            buf: [0; FRAME_SIZE],
            len: 0,
            origin: Origin::Inner,
        })
    }

    /// Where it came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The frame as a packet buffer with [`HEADROOM`] in front (edited in place by the
    /// pipeline).
    pub fn packet(&mut self) -> PacketBuf<'_> {
        PacketBuf::new(&mut self.buf, HEADROOM, usize::from(self.len))
    }
}

/// Why a post failed: no free parcel (the owner is behind), or the frame is too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// An eventfd that wakes a worker from `poll(2)`.
#[derive(Debug)]
pub struct Doorbell(OwnedFd);

impl Doorbell {
    /// A non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd has no memory preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The descriptor to poll (readable once rung).
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Make the descriptor readable.
    pub fn ring(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer. A full counter (EAGAIN) is already
        // readable, which is all a ring needs.
        unsafe { libc::write(self.fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Consume the rings (make the descriptor unreadable again).
    pub fn clear(&self) {
        let mut v = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer; EAGAIN means nothing to clear.
        unsafe { libc::read(self.fd(), v.as_mut_ptr().cast(), v.len()) };
    }
}

/// One worker's inbox.
#[derive(Debug)]
pub struct Mailbox {
    full: ArrayQueue<Box<Parcel>>,
    free: ArrayQueue<Box<Parcel>>,
    peer_moves: ArrayQueue<(PeerId, SocketAddr)>,
    sleeping: AtomicBool,
    doorbell: Doorbell,
}

impl Mailbox {
    /// A mailbox with `parcels` preallocated frame buffers (at least 1).
    pub fn new(parcels: usize) -> io::Result<Self> {
        let parcels = parcels.max(1);
        let free = ArrayQueue::new(parcels);
        for _ in 0..parcels {
            // Cannot fail: exactly `parcels` pushes into a queue of that capacity.
            let _ = free.push(Parcel::empty());
        }
        Ok(Self {
            full: ArrayQueue::new(parcels),
            free,
            peer_moves: ArrayQueue::new(64),
            sleeping: AtomicBool::new(false),
            doorbell: Doorbell::new()?,
        })
    }

    /// Copy `frame` into a free parcel and queue it for the owner.
    pub fn post(&self, frame: &[u8], origin: Origin) -> Result<(), Full> {
        if frame.len() > MAX_PARCEL {
            return Err(Full);
        }
        let mut parcel = self.free.pop().ok_or(Full)?;
        parcel.buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        // Fits: MAX_PARCEL < 2^16.
        parcel.len = frame.len() as u16;
        parcel.origin = origin;
        // Cannot fail: there are as many slots in `full` as parcels in existence.
        if let Err(p) = self.full.push(parcel) {
            let _ = self.free.push(p);
            return Err(Full);
        }
        self.wake();
        Ok(())
    }

    /// Tell the owner that `peer` moved to `endpoint` (learned by another worker). Dropped if
    /// 64 are already waiting (the control plane hears of every move and can repeat it).
    pub fn post_peer_move(&self, peer: PeerId, endpoint: SocketAddr) -> Result<(), Full> {
        self.peer_moves.push((peer, endpoint)).map_err(|_| Full)?;
        self.wake();
        Ok(())
    }

    /// The next posted parcel (owner side).
    pub fn take(&self) -> Option<Box<Parcel>> {
        self.full.pop()
    }

    /// The next peer move (owner side).
    pub fn take_peer_move(&self) -> Option<(PeerId, SocketAddr)> {
        self.peer_moves.pop()
    }

    /// Return a processed parcel (owner side).
    pub fn recycle(&self, parcel: Box<Parcel>) {
        // Cannot fail: `free` has room for every parcel.
        let _ = self.free.push(parcel);
    }

    /// Whether anything is waiting.
    pub fn is_empty(&self) -> bool {
        self.full.is_empty() && self.peer_moves.is_empty()
    }

    /// The owner is about to sleep in `poll(2)` with [`Mailbox::doorbell_fd`]: returns `false`
    /// (do not sleep) if something is already waiting. Call [`Mailbox::woke`] afterwards.
    pub fn sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        // Pairs with the fence in `wake`: either the poster sees `sleeping` and rings, or we
        // see its parcel here.
        fence(Ordering::SeqCst);
        if self.is_empty() {
            true
        } else {
            self.sleeping.store(false, Ordering::SeqCst);
            false
        }
    }

    /// The owner is awake again; `rung`: its doorbell was readable (clear it).
    pub fn woke(&self, rung: bool) {
        self.sleeping.store(false, Ordering::SeqCst);
        if rung {
            self.doorbell.clear();
        }
    }

    /// The descriptor to poll while sleeping.
    pub fn doorbell_fd(&self) -> RawFd {
        self.doorbell.fd()
    }

    /// Wake the owner if it sleeps: for a producer outside the workers, e.g. the control
    /// plane after queueing a [`crate::worker::ControlDatagram`] for worker 0.
    pub fn notify(&self) {
        self.wake();
    }

    /// Ring the doorbell if the owner sleeps (once per sleep).
    fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.doorbell.ring();
        }
    }
}

/// The mailboxes of all the workers of one gateway, indexed by worker.
#[derive(Debug)]
pub struct Handoff {
    mailboxes: Vec<Mailbox>,
}

/// Parcels per mailbox: 1024 × 2 KiB. A worker that falls further behind drops.
pub const PARCELS: usize = 1024;

impl Handoff {
    /// Mailboxes for `workers` workers (at least 1), each with `parcels` parcels.
    pub fn new(workers: usize, parcels: usize) -> io::Result<Self> {
        let mailboxes = (0..workers.max(1))
            .map(|_| Mailbox::new(parcels))
            .collect::<io::Result<_>>()?;
        Ok(Self { mailboxes })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.mailboxes.len()
    }

    /// Worker `index`'s mailbox.
    pub fn mailbox(&self, index: usize) -> Option<&Mailbox> {
        self.mailboxes.get(index)
    }

    /// Every mailbox but `index`'s.
    pub fn others(&self, index: usize) -> impl Iterator<Item = &Mailbox> {
        self.mailboxes
            .iter()
            .enumerate()
            .filter(move |&(i, _)| i != index)
            .map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    #[test]
    fn parcels_go_around_in_order_without_allocation() {
        let m = Mailbox::new(3).unwrap();
        for i in 0..3u8 {
            m.post(&[i; 10], Origin::Inner).unwrap();
        }
        assert_eq!(m.post(&[9; 10], Origin::Inner), Err(Full), "no free parcel");
        for i in 0..3u8 {
            let mut p = m.take().unwrap();
            assert_eq!(p.origin(), Origin::Inner);
            let pkt = p.packet();
            assert_eq!((pkt.data(), pkt.headroom()), (&[i; 10][..], HEADROOM));
            assert!(pkt.tailroom() >= TAILROOM);
            m.recycle(p);
        }
        assert!(m.take().is_none());
        m.post(&[7; 10], Origin::Frame(Link::Ethernet)).unwrap();
        assert_eq!(m.take().unwrap().origin(), Origin::Frame(Link::Ethernet));
    }

    #[test]
    fn too_long_is_refused() {
        let m = Mailbox::new(1).unwrap();
        assert_eq!(m.post(&[0; MAX_PARCEL + 1], Origin::Inner), Err(Full));
        assert!(m.post(&[0; MAX_PARCEL], Origin::Inner).is_ok());
    }

    #[test]
    fn doorbell_rings_once_for_a_sleeper() {
        let m = Mailbox::new(4).unwrap();
        // Awake owner: posting does not ring.
        m.post(&[1], Origin::Inner).unwrap();
        assert!(!poll_readable(m.doorbell_fd()));
        // Something waiting: the owner must not sleep.
        assert!(!m.sleep());
        let p = m.take().unwrap();
        m.recycle(p);
        // Sleeping owner: the first post rings.
        assert!(m.sleep());
        m.post(&[2], Origin::Inner).unwrap();
        assert!(poll_readable(m.doorbell_fd()));
        m.woke(true);
        assert!(!poll_readable(m.doorbell_fd()));
        // A peer move wakes too.
        assert!(!m.sleep());
        let _ = m.take();
        assert!(m.sleep());
        m.post_peer_move(PeerId(3), "192.0.2.9:4500".parse().unwrap())
            .unwrap();
        assert!(poll_readable(m.doorbell_fd()));
        m.woke(true);
        assert_eq!(
            m.take_peer_move(),
            Some((PeerId(3), "192.0.2.9:4500".parse().unwrap()))
        );
        // An outside producer (the control plane) can wake the owner too.
        assert!(m.sleep());
        m.notify();
        assert!(poll_readable(m.doorbell_fd()));
    }

    #[test]
    fn handoff_between_threads() {
        let h = std::sync::Arc::new(Handoff::new(2, 8).unwrap());
        let h2 = std::sync::Arc::clone(&h);
        let producer = std::thread::spawn(move || {
            let mut sent = 0u32;
            let to = h2.mailbox(1).unwrap();
            while sent < 1000 {
                if to.post(&sent.to_be_bytes(), Origin::Inner).is_ok() {
                    sent += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let me = h.mailbox(1).unwrap();
        let mut next = 0u32;
        while next < 1000 {
            match me.take() {
                Some(mut p) => {
                    let pkt = p.packet();
                    assert_eq!(pkt.data(), &next.to_be_bytes(), "FIFO");
                    next += 1;
                    me.recycle(p);
                }
                None => std::thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(h.others(1).count(), 1);
    }
}
