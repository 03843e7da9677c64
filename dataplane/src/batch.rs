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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: PortMatch::Destination(natt::NATT_PORT),
            mtu: 1500,
            ttl: 64,
        }
    }
}

/// Per-frame state carried between the inbound passes. Kept small: a batch holds 64 of them
/// on the stack and every field is written once per packet. Offsets fit in u16 (frames are
/// at most 64 KiB).
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u64,
    sa: u32,
    ip: u16,
    udp: u16,
    esp: u16,
    esp_len: u16,
    src: SocketAddr,
    opened: Option<esp::inbound::Opened>,
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
        let mut pending: [Option<Pending>; MAX_BATCH] = [None; MAX_BATCH];

        // Pass 1: parse, classify, look up, replay check.
        for (i, (pkt, v)) in frames.iter_mut().zip(verdicts.iter_mut()).enumerate() {
            self.stats.rx_frames += 1;
            match self.classify(ingress, offset + i, pkt) {
                Ok(Classified::Ike { src, dst, at, len }) => {
                    // Hand over the IKE message without the non-ESP marker (RFC 3948 §2.2).
                    pkt.pull_front(at + natt::NON_ESP_MARKER.len());
                    pkt.truncate(len - natt::NON_ESP_MARKER.len());
                    self.stats.ike += 1;
                    *v = Verdict::Ike { src, dst };
                }
                Ok(Classified::Keepalive) => {
                    self.stats.keepalives += 1;
                    *v = Verdict::Keepalive;
                }
                Ok(Classified::Esp(p)) => pending[i] = Some(p),
                Err(r) => self.drop(v, r),
            }
        }

        // Pass 2: verify and decrypt, back to back.
        for (i, pkt) in frames.iter_mut().enumerate() {
            let Some(p) = pending[i].as_mut() else {
                continue;
            };
            let Some(sa) = self.sad.inbound_at(p.sa as usize) else {
                continue;
            };
            let (at, len) = (usize::from(p.esp), usize::from(p.esp_len));
            let esp = &mut pkt.data_mut()[at..at + len];
            match sa.open(p.seq, esp) {
                Ok(o) => p.opened = Some(o),
                Err(r) => {
                    pending[i] = None;
                    self.drop(&mut verdicts[i], r);
                }
            }
        }

        // Pass 3: commit, learn, deliver.
        for (i, pkt) in frames.iter_mut().enumerate() {
            let Some(p) = pending[i] else { continue };
            let Some(opened) = p.opened else { continue };
            match self.deliver(&p, opened, pkt) {
                Ok(()) => verdicts[i] = Verdict::Inner,
                Err(r) => self.drop(&mut verdicts[i], r),
            }
        }
    }

    fn classify(
        &mut self,
        ingress: Ingress<'_>,
        index: usize,
        pkt: &PacketBuf<'_>,
    ) -> Result<Classified, DropReason> {
        let data = pkt.data();
        let (ip, udp, payload, payload_len, src, dst) = match ingress {
            Ingress::Frames(link) => {
                let f = frame::parse_udp(data, link, self.config.port)?;
                (
                    f.ip_offset,
                    f.udp_offset,
                    f.payload_offset,
                    f.payload_len,
                    f.src,
                    f.dst,
                )
            }
            Ingress::Udp(endpoints) => {
                let &(src, dst) = endpoints.get(index).ok_or(DropReason::BadUdpLength)?;
                (0, 0, 0, data.len(), src, dst)
            }
        };
        let body = &data[payload..payload + payload_len];
        match natt::classify(body)? {
            Class::Ike => Ok(Classified::Ike {
                src,
                dst,
                at: payload,
                len: payload_len,
            }),
            Class::Keepalive => Ok(Classified::Keepalive),
            Class::Esp { spi, seq } => {
                let sa_index = self.sad.inbound_index(spi).ok_or(DropReason::UnknownSpi)?;
                let sa = self
                    .sad
                    .inbound_at(sa_index)
                    .ok_or(DropReason::UnknownSpi)?;
                let seq = sa.check(seq)?;
                // Offsets come from a frame of at most 64 KiB (IP length fields are 16-bit).
                let short = |v: usize| u16::try_from(v).map_err(|_| DropReason::BadIpLength);
                Ok(Classified::Esp(Pending {
                    seq,
                    sa: u32::try_from(sa_index).map_err(|_| DropReason::UnknownSpi)?,
                    ip: short(ip)?,
                    udp: short(udp)?,
                    esp: short(payload)?,
                    esp_len: short(payload_len)?,
                    src,
                    opened: None,
                }))
            }
        }
    }

    /// After a successful open: mode checks, replay commit, accounting, peer learning, and the
    /// rewrite of the frame into the inner packet.
    fn deliver(
        &mut self,
        p: &Pending,
        o: esp::inbound::Opened,
        pkt: &mut PacketBuf<'_>,
    ) -> Result<(), DropReason> {
        let Some(sa) = self.sad.inbound_at(p.sa as usize) else {
            return Err(DropReason::UnknownSpi);
        };
        sa.accepts_next_header(o.next_header)?;
        let payload_start = usize::from(p.esp) + o.offset;
        let (spi, peer, mode, nat_oa) = (sa.spi, sa.peer, sa.mode, sa.nat_oa);
        match mode {
            Mode::Tunnel => {
                let inner = &pkt.data()[payload_start..payload_start + o.len];
                let info = frame::parse_ip(inner).map_err(|_| DropReason::BadInnerPacket)?;
                let version_ok = match o.next_header {
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
                // Trailing bytes after the inner packet are TFC padding (RFC 4303 §2.7).
                pkt.pull_front(payload_start);
                pkt.truncate(info.total_len);
                self.after_commit(spi, peer, p.src, lifetime, info.total_len);
            }
            Mode::Transport => {
                if p.udp <= p.ip {
                    // Socket backend: the kernel kept the IP header, there is none to rebuild.
                    return Err(DropReason::BadNextHeader);
                }
                let ip_header = usize::from(p.ip)..usize::from(p.udp);
                // The outer header was validated in pass 1; its destination is our address.
                let dst = frame::parse_ip(&pkt.data()[ip_header.start..])
                    .map_err(|_| DropReason::BadInnerPacket)?
                    .dst;
                let lifetime = sa.commit(p.seq, o.len)?;
                let payload = payload_start..payload_start + o.len;
                esp::transport::decapsulate(
                    pkt,
                    ip_header,
                    payload,
                    o.next_header,
                    (p.src.ip(), dst),
                    nat_oa,
                );
                self.after_commit(spi, peer, p.src, lifetime, o.len);
            }
        }
        Ok(())
    }

    #[inline]
    fn after_commit(
        &mut self,
        spi: u32,
        peer: PeerId,
        src: SocketAddr,
        lifetime: Option<LifetimeEvent>,
        bytes: usize,
    ) {
        self.stats.decap_packets += 1;
        self.stats.decap_bytes += bytes as u64;
        if let Some(kind) = lifetime {
            self.event(Event::Lifetime {
                spi,
                direction: Direction::In,
                kind,
            });
        }
        if self.sad.observe_peer(peer, src) {
            self.stats.peer_moves += 1;
            self.event(Event::PeerMoved {
                peer,
                endpoint: src,
            });
        }
    }

    /// Encapsulate inner IP packets (from the TUN). Each frame needs [`crate::buf::HEADROOM`]
    /// bytes of headroom and [`crate::buf::TAILROOM`] of tailroom.
    pub fn encap_batch(&mut self, frames: &mut [PacketBuf<'_>], verdicts: &mut [Verdict]) {
        for (pkt, v) in frames.iter_mut().zip(verdicts.iter_mut()) {
            match self.encap_one(pkt) {
                Ok(dst) => *v = Verdict::Wire { dst },
                Err(r) => self.drop(v, r),
            }
        }
    }

    fn encap_one(&mut self, pkt: &mut PacketBuf<'_>) -> Result<SocketAddr, DropReason> {
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
        let Some(sa) = self.sad.outbound_mut(spi) else {
            return Err(DropReason::NoOutboundSa);
        };
        let (peer, local, mode) = (sa.peer, sa.local, sa.mode);
        let dst = self
            .sad
            .peer(peer)
            .and_then(|p| p.endpoint)
            .ok_or(DropReason::PeerUnknown)?;
        let Some(sa) = self.sad.outbound_mut(spi) else {
            return Err(DropReason::NoOutboundSa);
        };
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
        Ok(dst)
    }
}

enum Classified {
    Ike {
        src: SocketAddr,
        dst: SocketAddr,
        at: usize,
        len: usize,
    },
    Keepalive,
    Esp(Pending),
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
