//! The packet pipeline over a batch of frames: one [`Verdict`] per frame.
//!
//! Inbound (wire → inner), in three passes over the batch so that crypto runs back to back
//! with the SA keys hot and the replay window is exact even when one batch holds duplicates:
//!
//! 1. parse outer headers, classify the UDP/4500 payload (RFC 3948 §2), look the SPI up, check
//!    lifetime and replay (RFC 4303 §3.4.3: before decrypting);
//! 2. verify and decrypt (RFC 4303 §3.4.4);
//! 3. commit the replay window, count, learn the peer's NAT mapping (authenticated packets
//!    only), and turn the frame into the inner packet (tunnel: RFC 4303 §3.1.2; transport:
//!    rebuild the IP header and fix the inner checksum, RFC 3948 §3.1.2).
//!
//! Outbound (inner → wire): traffic-selector lookup, ESP seal, UDP/IP encapsulation
//! (RFC 3948 §2.1).
//!
//! Nothing here allocates, locks, logs or makes a system call; rare events (a peer moved, a
//! lifetime crossed) are queued in a bounded list for the worker to forward.

use std::net::SocketAddr;

use crate::buf::PacketBuf;
use crate::drop::{DropCounters, DropReason};
use crate::esp::{self, LifetimeEvent, next_header};
use crate::handoff::Origin;
use crate::natt::{self, Class};
use crate::sa::{Direction, Mode, PeerId};
use crate::sad::Sad;
use crate::wire::frame::{self, Link, PortMatch};

/// Frames processed per pass; larger batches are processed in chunks of this size.
pub const MAX_BATCH: usize = 64;

/// Rare events buffered between two drains by the worker; beyond this they are counted lost.
pub const MAX_EVENTS: usize = 256;

/// What to do with a frame after processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The frame now holds an inner IP packet: deliver it to the inner side (TUN).
    Inner,
    /// The frame now holds an outer IP packet (IP ‖ UDP ‖ ESP): send it to `dst`.
    Wire {
        /// The peer's public endpoint.
        dst: SocketAddr,
    },
    /// The frame now holds an IKE message (non-ESP marker removed) for the control plane.
    Ike {
        /// Sender.
        src: SocketAddr,
        /// Our address it was sent to.
        dst: SocketAddr,
    },
    /// A NAT-keepalive (RFC 3948 §2.3): counted, then discarded.
    Keepalive,
    /// Refused.
    Drop(DropReason),
    /// The frame belongs to an SA of another worker ([`Shard`]): pass it, unchanged, to
    /// worker `worker` (see [`crate::handoff`]).
    Handoff {
        /// The owner.
        worker: u16,
        /// How the owner must take it.
        origin: Origin,
    },
}

/// Something the control plane must hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A learning peer's endpoint changed (first packet, or a NAT rebinding).
    PeerMoved {
        /// Which peer.
        peer: PeerId,
        /// Its new endpoint.
        endpoint: SocketAddr,
    },
    /// An SA crossed a lifetime limit.
    Lifetime {
        /// Its SPI.
        spi: u32,
        /// Its direction.
        direction: Direction,
        /// Soft (rekey) or hard (dead).
        kind: LifetimeEvent,
    },
}

/// Counters of one pipeline (one worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to the inbound path.
    pub rx_frames: u64,
    /// IKE messages passed to the control plane.
    pub ike: u64,
    /// NAT-keepalives received.
    pub keepalives: u64,
    /// ESP packets decapsulated and delivered.
    pub decap_packets: u64,
    /// Inner bytes delivered.
    pub decap_bytes: u64,
    /// Packets encapsulated.
    pub encap_packets: u64,
    /// Inner bytes encapsulated.
    pub encap_bytes: u64,
    /// Peer endpoint changes learned from authenticated packets.
    pub peer_moves: u64,
    /// Events lost because the event queue was full.
    pub events_lost: u64,
    /// Drops by reason.
    pub drops: DropCounters,
}

/// Settings of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The NAT-T port (RFC 3948: 4500); a gateway matches the destination port.
    pub port: PortMatch,
    /// Largest outer IP packet to emit (the WAN MTU).
    pub mtu: usize,
    /// TTL / hop limit of outer headers.
    pub ttl: u8,
    /// Which SAs this pipeline owns.
    pub shard: Shard,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: PortMatch::Destination(natt::NATT_PORT),
            mtu: 1500,
            ttl: 64,
            shard: Shard::SOLE,
        }
    }
}

/// Worker `index` of `count`: which SAs a pipeline owns (issue #3). Every worker holds every
/// SA (commands are broadcast), but only the owner — worker `spi % count`, a pure function
/// of the SPI — processes its packets: it alone checks and commits an inbound SA's replay
/// window (RFC 4303 §3.4.3) and takes an outbound SA's sequence numbers (§3.3.3). Frames of
/// other SAs get [`Verdict::Handoff`]. Since we choose our inbound SPIs, the control plane can
/// pick one whose owner is the worker of the queue the peer's traffic lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker.
    pub index: u16,
    /// Number of workers (≥ 1).
    pub count: u16,
}

impl Shard {
    /// The only worker: owns everything.
    pub const SOLE: Shard = Shard { index: 0, count: 1 };

    /// The worker that owns SPI `spi`.
    #[inline]
    pub fn owner(self, spi: u32) -> u16 {
        // Below `count`, so it fits u16.
        (spi % u32::from(self.count.max(1))) as u16
    }

    /// The owner of `spi` if it is another worker.
    #[inline]
    pub fn other_owner(self, spi: u32) -> Option<u16> {
        if self.count <= 1 {
            return None;
        }
        let owner = self.owner(spi);
        (owner != self.index).then_some(owner)
    }
}

/// An ESP frame between the inbound passes: 24 bytes, written once in pass 1 and updated in
/// pass 2. Only ESP frames get one, packed at the front of the chunk's array, so passes 2 and
/// 3 visit nothing else. Offsets fit in u16 (frames are at most 64 KiB).
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// Full (ESN-inferred) sequence number.
    seq: u64,
    /// Index of the SA in the SAD (stable within a batch: commands apply between batches).
    sa: u32,
    /// Index of the frame in the chunk.
    frame: u8,
    /// Next header, once decrypted.
    next_header: u8,
    /// Offset of the outer IP header (0 for socket ingress, which has none).
    ip: u16,
    /// Offset of the outer UDP header (0 for socket ingress).
    udp: u16,
    /// The ESP packet's offset in pass 1; the decrypted payload's after pass 2.
    at: u16,
    /// The ESP packet's length in pass 1; the decrypted payload's after pass 2.
    len: u16,
}

/// How the frames of an inbound batch start.
#[derive(Debug, Clone, Copy)]
pub enum Ingress<'m> {
    /// Whole frames from a raw backend (AF_XDP, pcap).
    Frames(Link),
    /// UDP payloads from a socket backend, with (source, destination) per frame.
    Udp(&'m [(SocketAddr, SocketAddr)]),
}

/// The pipeline of one worker: its SA database, counters and pending events.
#[derive(Debug, Default)]
pub struct Pipeline {
    /// The worker's SAs.
    pub sad: Sad,
    /// Counters.
    pub stats: Stats,
    config: Config,
    events: Vec<Event>,
}

impl Pipeline {
    /// A pipeline with no SAs.
    pub fn new(config: Config) -> Self {
        Self {
            sad: Sad::new(),
            stats: Stats::default(),
            config,
            events: Vec::with_capacity(MAX_EVENTS),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Make this pipeline worker `shard.index` of `shard.count`.
    pub fn set_shard(&mut self, shard: Shard) {
        self.config.shard = shard;
    }

    /// A snapshot of the SAs this pipeline owns (all of them for [`Shard::SOLE`]): the owner
    /// holds an SA's authoritative counters, replay window and sequence number.
    pub fn owned_snapshot(&self) -> Vec<crate::sad::SaSnapshot> {
        let shard = self.config.shard;
        let mut sas = self.sad.snapshot();
        sas.retain(|s| shard.owner(s.spi) == shard.index);
        sas
    }

    /// Take the queued events (the worker forwards them to the control plane).
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    fn event(&mut self, e: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(e);
        } else {
            self.stats.events_lost += 1;
        }
    }

    fn drop(&mut self, v: &mut Verdict, reason: DropReason) {
        self.stats.drops.count(reason);
        *v = Verdict::Drop(reason);
    }

    /// Process received frames. `verdicts` must be at least as long as `frames`; extra
    /// verdicts are left untouched.
    pub fn decap_batch(
        &mut self,
        ingress: Ingress<'_>,
        frames: &mut [PacketBuf<'_>],
        verdicts: &mut [Verdict],
    ) {
        let n = frames.len().min(verdicts.len());
        let mut start = 0;
        while start < n {
            let end = (start + MAX_BATCH).min(n);
            self.decap_chunk(
                ingress,
                start,
                &mut frames[start..end],
                &mut verdicts[start..end],
            );
            start = end;
        }
    }

    fn decap_chunk(
        &mut self,
        ingress: Ingress<'_>,
        offset: usize,
        frames: &mut [PacketBuf<'_>],
        verdicts: &mut [Verdict],
    ) {
        let mut esp = [Pending::default(); MAX_BATCH];
        let mut n_esp = 0;
        // The last SPI looked up and its SA index: a batch mostly carries few SAs, so most
        // packets skip the hash lookup. SPI 0 is never ESP (RFC 4303 §2.1), so it means none.
        let mut last_spi = (0u32, 0usize);
        self.stats.rx_frames += frames.len() as u64;

        // Pass 1: parse, classify, look up, replay check.
        for (i, (pkt, v)) in frames.iter_mut().zip(verdicts.iter_mut()).enumerate() {
            match self.classify(ingress, offset + i, pkt.data(), &mut last_spi) {
                Ok(Classified::Handoff(worker)) => match origin(ingress, offset + i) {
                    Some(origin) => *v = Verdict::Handoff { worker, origin },
                    None => self.drop(v, DropReason::BadUdpLength),
                },
                Ok(Classified::Esp(p)) => {
                    if let Some(slot) = esp.get_mut(n_esp) {
                        // i < MAX_BATCH = 64: a chunk is never longer.
                        *slot = Pending {
                            frame: i as u8,
                            ..p
                        };
                        n_esp += 1;
                    }
                }
                Ok(Classified::Ike { ip, udp, at, len }) => {
                    match ike_endpoints(ingress, offset + i, pkt.data(), ip, udp) {
                        Some((src, dst)) => {
                            // Hand over the IKE message without the non-ESP marker
                            // (RFC 3948 §2.2).
                            pkt.pull_front(at + natt::NON_ESP_MARKER.len());
                            pkt.truncate(len - natt::NON_ESP_MARKER.len());
                            self.stats.ike += 1;
                            *v = Verdict::Ike { src, dst };
                        }
                        None => self.drop(v, DropReason::BadUdpLength),
                    }
                }
                Ok(Classified::Keepalive) => {
                    self.stats.keepalives += 1;
                    *v = Verdict::Keepalive;
                }
                Err(r) => self.drop(v, r),
            }
        }

        // Pass 2: verify and decrypt, back to back; keep the opened ones at the front.
        let mut opened = 0;
        for j in 0..n_esp {
            let mut p = esp[j];
            let i = usize::from(p.frame);
            let (Some(pkt), Some(v)) = (frames.get_mut(i), verdicts.get_mut(i)) else {
                continue;
            };
            let Some(sa) = self.sad.inbound_at(p.sa as usize) else {
                self.drop(v, DropReason::UnknownSpi);
                continue;
            };
            let (at, len) = (usize::from(p.at), usize::from(p.len));
            let Some(bytes) = pkt.data_mut().get_mut(at..at + len) else {
                self.drop(v, DropReason::BadCiphertextLength);
                continue;
            };
            match sa.open(p.seq, bytes) {
                Ok(o) => {
                    // Both fit: the payload lies inside the ESP packet.
                    p.at += o.offset as u16;
                    p.len = o.len as u16;
                    p.next_header = o.next_header;
                    esp[opened] = p;
                    opened += 1;
                }
                Err(r) => self.drop(v, r),
            }
        }

        // Pass 3: commit, learn, deliver.
        for p in &esp[..opened] {
            let i = usize::from(p.frame);
            let (Some(pkt), Some(v)) = (frames.get_mut(i), verdicts.get_mut(i)) else {
                continue;
            };
            match self.deliver(ingress, offset + i, p, pkt) {
                Ok(()) => *v = Verdict::Inner,
                Err(r) => self.drop(v, r),
            }
        }
    }

    #[inline]
    fn classify(
        &mut self,
        ingress: Ingress<'_>,
        index: usize,
        data: &[u8],
        last_spi: &mut (u32, usize),
    ) -> Result<Classified, DropReason> {
        let (ip, udp, payload, payload_len) = match ingress {
            Ingress::Frames(link) => {
                let f = frame::locate_udp(data, link, self.config.port)?;
                (f.ip_offset, f.udp_offset, f.payload_offset, f.payload_len)
            }
            // Every socket datagram comes with its endpoints.
            Ingress::Udp(endpoints) if index < endpoints.len() => (0, 0, 0, data.len()),
            Ingress::Udp(_) => return Err(DropReason::BadUdpLength),
        };
        // Offsets come from a frame of at most 64 KiB (IP length fields are 16-bit).
        let short = |v: usize| u16::try_from(v).map_err(|_| DropReason::BadIpLength);
        let body = data
            .get(payload..payload + payload_len)
            .ok_or(DropReason::BadUdpLength)?;
        match natt::classify(body)? {
            Class::Esp { spi, seq } => {
                let sa_index = if last_spi.0 == spi {
                    last_spi.1
                } else {
                    // Another worker's SA: it alone may touch the replay window.
                    if let Some(owner) = self.config.shard.other_owner(spi) {
                        return Ok(Classified::Handoff(owner));
                    }
                    let i = self.sad.inbound_index(spi).ok_or(DropReason::UnknownSpi)?;
                    *last_spi = (spi, i);
                    i
                };
                let sa = self
                    .sad
                    .inbound_at(sa_index)
                    .ok_or(DropReason::UnknownSpi)?;
                let seq = sa.check(seq)?;
                Ok(Classified::Esp(Pending {
                    seq,
                    sa: u32::try_from(sa_index).map_err(|_| DropReason::UnknownSpi)?,
                    frame: 0,
                    next_header: 0,
                    ip: short(ip)?,
                    udp: short(udp)?,
                    at: short(payload)?,
                    len: short(payload_len)?,
                }))
            }
            Class::Ike => Ok(Classified::Ike {
                ip,
                udp,
                at: payload,
                len: payload_len,
            }),
            Class::Keepalive => Ok(Classified::Keepalive),
        }
    }

    /// After a successful open: mode checks, replay commit, accounting, peer learning, and the
    /// rewrite of the frame into the inner packet.
    #[inline]
    fn deliver(
        &mut self,
        ingress: Ingress<'_>,
        index: usize,
        p: &Pending,
        pkt: &mut PacketBuf<'_>,
    ) -> Result<(), DropReason> {
        let sa_index = p.sa as usize;
        // The source is read (and the peer checked) only for peers that learn their mapping.
        let learn = self.sad.inbound_peer_learns(sa_index);
        let Some(sa) = self.sad.inbound_at(sa_index) else {
            return Err(DropReason::UnknownSpi);
        };
        sa.accepts_next_header(p.next_header)?;
        let (payload_start, payload_len) = (usize::from(p.at), usize::from(p.len));
        let payload = payload_start..payload_start + payload_len;
        let (lifetime, bytes, src) = match sa.mode {
            Mode::Tunnel => {
                let inner = pkt.data().get(payload).ok_or(DropReason::BadInnerPacket)?;
                let info = frame::parse_ip(inner).map_err(|_| DropReason::BadInnerPacket)?;
                let version_ok = match p.next_header {
                    next_header::IPV4 => info.src.is_ipv4(),
                    _ => info.src.is_ipv6(),
                };
                if !version_ok {
                    return Err(DropReason::BadInnerPacket);
                }
                // RFC 4301 §5.2: the inner addresses must match the SA's selectors.
                if !sa.selectors.matches_inbound(info.src, info.dst) {
                    return Err(DropReason::SelectorMismatch);
                }
                let lifetime = sa.commit(p.seq, info.total_len)?;
                let src = if learn {
                    outer_source(ingress, index, pkt.data(), p)
                } else {
                    None
                };
                // Trailing bytes after the inner packet are TFC padding (RFC 4303 §2.7).
                pkt.pull_front(payload_start);
                pkt.truncate(info.total_len);
                (lifetime, info.total_len, src)
            }
            Mode::Transport => {
                if p.udp <= p.ip {
                    // Socket backend: the kernel kept the IP header, there is none to rebuild.
                    return Err(DropReason::BadNextHeader);
                }
                let ip_header = usize::from(p.ip)..usize::from(p.udp);
                // The outer header was validated in pass 1.
                let outer = frame::parse_ip(pkt.data().get(ip_header.start..).unwrap_or(&[]))
                    .map_err(|_| DropReason::BadInnerPacket)?;
                let lifetime = sa.commit(p.seq, payload_len)?;
                let src = if learn {
                    outer_source(ingress, index, pkt.data(), p)
                } else {
                    None
                };
                let nat_oa = sa.nat_oa;
                esp::transport::decapsulate(
                    pkt,
                    ip_header,
                    payload,
                    p.next_header,
                    (outer.src, outer.dst),
                    nat_oa,
                );
                (lifetime, payload_len, src)
            }
        };
        self.after_commit(sa_index, lifetime, bytes, src);
        Ok(())
    }

    #[inline]
    fn after_commit(
        &mut self,
        sa_index: usize,
        lifetime: Option<LifetimeEvent>,
        bytes: usize,
        src: Option<SocketAddr>,
    ) {
        self.stats.decap_packets += 1;
        self.stats.decap_bytes += bytes as u64;
        if let Some(kind) = lifetime {
            self.lifetime_event(sa_index, kind);
        }
        if let Some(src) = src
            && self.sad.observe_peer(sa_index, src)
        {
            self.peer_moved(sa_index, src);
        }
    }

    #[cold]
    fn lifetime_event(&mut self, sa_index: usize, kind: LifetimeEvent) {
        if let Some(spi) = self.sad.inbound().get(sa_index).map(|sa| sa.spi) {
            self.event(Event::Lifetime {
                spi,
                direction: Direction::In,
                kind,
            });
        }
    }

    #[cold]
    fn peer_moved(&mut self, sa_index: usize, endpoint: SocketAddr) {
        self.stats.peer_moves += 1;
        if let Some(peer) = self.sad.inbound().get(sa_index).map(|sa| sa.peer) {
            self.event(Event::PeerMoved { peer, endpoint });
        }
    }

    /// Encapsulate inner IP packets (from the TUN). Each frame needs [`crate::buf::HEADROOM`]
    /// bytes of headroom and [`crate::buf::TAILROOM`] of tailroom.
    pub fn encap_batch(&mut self, frames: &mut [PacketBuf<'_>], verdicts: &mut [Verdict]) {
        for (pkt, v) in frames.iter_mut().zip(verdicts.iter_mut()) {
            if let Err(r) = self.encap_one(pkt, v) {
                self.drop(v, r);
            }
        }
    }

    /// Encapsulate one inner packet; the verdict is written in place (`Wire` or `Handoff`)
    /// rather than returned, which keeps the endpoint from being copied through the stack.
    #[inline]
    fn encap_one(&mut self, pkt: &mut PacketBuf<'_>, v: &mut Verdict) -> Result<(), DropReason> {
        let info = frame::parse_ip(pkt.data()).map_err(|_| DropReason::BadOutboundPacket)?;
        if info.total_len < pkt.len() {
            pkt.truncate(info.total_len);
        }
        let ttl = self.config.ttl;
        let mtu = self.config.mtu;
        let spi = self
            .sad
            .outbound_for(info.src, info.dst)
            .ok_or(DropReason::NoOutboundSa)?;
        // Another worker's SA: it alone takes the sequence numbers.
        if let Some(worker) = self.config.shard.other_owner(spi) {
            *v = Verdict::Handoff {
                worker,
                origin: Origin::Inner,
            };
            return Ok(());
        }
        let Some((sa, endpoint)) = self.sad.outbound_with_endpoint(spi) else {
            return Err(DropReason::NoOutboundSa);
        };
        let dst = endpoint.ok_or(DropReason::PeerUnknown)?;
        let (local, mode) = (sa.local, sa.mode);
        let bytes = pkt.len();
        let lifetime = match mode {
            Mode::Tunnel => {
                let tos = tos_of(pkt.data());
                let nh = if info.src.is_ipv4() {
                    next_header::IPV4
                } else {
                    next_header::IPV6
                };
                let ev = sa.seal(pkt, nh)?;
                frame::push_udp_ip(pkt, local, dst, ttl, tos).map_err(|_| DropReason::TooBig)?;
                ev
            }
            Mode::Transport => esp::transport::encapsulate(sa, pkt, &info, local, dst)?,
        };
        if pkt.len() > mtu {
            return Err(DropReason::TooBig);
        }
        self.stats.encap_packets += 1;
        self.stats.encap_bytes += bytes as u64;
        if let Some(kind) = lifetime {
            self.event(Event::Lifetime {
                spi,
                direction: Direction::Out,
                kind,
            });
        }
        *v = Verdict::Wire { dst };
        Ok(())
    }
}

/// What pass 1 found in a frame.
enum Classified {
    /// IKE behind the non-ESP marker: outer header offsets, UDP payload offset and length.
    Ike {
        ip: usize,
        udp: usize,
        at: usize,
        len: usize,
    },
    Keepalive,
    Esp(Pending),
    /// ESP of an SA that this worker does not own.
    Handoff(u16),
}

/// How frame `index` of a batch must be handed to another worker.
#[inline]
fn origin(ingress: Ingress<'_>, index: usize) -> Option<Origin> {
    match ingress {
        Ingress::Frames(link) => Some(Origin::Frame(link)),
        Ingress::Udp(endpoints) => endpoints
            .get(index)
            .map(|&(src, dst)| Origin::Udp(src, dst)),
    }
}

/// Source and destination of frame `index` of a batch: from the socket (socket ingress) or
/// read from the outer headers at `ip`/`udp` (raw frames). Rare: IKE only.
#[cold]
fn ike_endpoints(
    ingress: Ingress<'_>,
    index: usize,
    data: &[u8],
    ip: usize,
    udp: usize,
) -> Option<(SocketAddr, SocketAddr)> {
    match ingress {
        Ingress::Frames(_) => Some((
            frame::udp_source(data, ip, udp)?,
            frame::udp_destination(data, ip, udp)?,
        )),
        Ingress::Udp(endpoints) => endpoints.get(index).copied(),
    }
}

/// The outer source of the ESP frame `p` (frame `index` of the batch), before its rewrite.
#[inline]
fn outer_source(
    ingress: Ingress<'_>,
    index: usize,
    data: &[u8],
    p: &Pending,
) -> Option<SocketAddr> {
    match ingress {
        Ingress::Frames(_) => frame::udp_source(data, usize::from(p.ip), usize::from(p.udp)),
        Ingress::Udp(endpoints) => endpoints.get(index).map(|&(src, _)| src),
    }
}

/// DSCP/ECN byte of an IP packet (copied to the outer header, RFC 4301 §5.1.2.1).
fn tos_of(ip: &[u8]) -> u8 {
    match ip.first().map(|b| b >> 4) {
        Some(4) => ip.get(1).copied().unwrap_or(0),
        Some(6) => match (ip.first(), ip.get(1)) {
            (Some(a), Some(b)) => (a << 4) | (b >> 4),
            _ => 0,
        },
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
