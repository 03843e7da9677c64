//! A worker's Security Association Database: inbound SAs by SPI, outbound SAs by traffic
//! selector, and the peers' (NAT-mapped) endpoints. Owned by one worker; changed only by
//! [`SaCommand`]s applied between batches, so the hot path takes no locks.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use crate::esp::{InboundSa, OutboundSa};
use crate::sa::{Direction, PeerId, SaParams, Selectors};

/// A change to the SA tables, sent by the control plane to every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaCommand {
    /// Add an SA (replacing one with the same SPI and direction). A newer outbound SA wins over
    /// an older one with the same selectors: make-before-break rekeying.
    Install(Box<SaParams>),
    /// Remove an SA.
    Remove {
        /// Its SPI.
        spi: u32,
        /// Its direction.
        direction: Direction,
    },
    /// The peer's endpoint changed (learned by IKE, RFC 7296 §2.23, or by another worker).
    UpdatePeer {
        /// Which peer.
        peer: PeerId,
        /// Its new public address and port.
        endpoint: SocketAddr,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SadError {
    /// SPI 0..=255 is reserved (RFC 4303 §2.1).
    ReservedSpi(u32),
    /// Invalid parameters (message names the field).
    Invalid(String),
    /// No such SA.
    NotFound(u32, Direction),
}

impl std::fmt::Display for SadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SadError::ReservedSpi(spi) => write!(f, "spi {spi:#x} is reserved (must be ≥ 256)"),
            SadError::Invalid(m) => f.write_str(m),
            SadError::NotFound(spi, d) => write!(f, "no {d:?} SA with spi {spi:#010x}"),
        }
    }
}

impl std::error::Error for SadError {}

/// One SA as the stats path sees it (built on request, never per packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaSnapshot {
    /// SPI.
    pub spi: u32,
    /// Direction.
    pub direction: Direction,
    /// Tunnel or transport.
    pub mode: crate::sa::Mode,
    /// Algorithm.
    pub aead: crate::sa::Aead,
    /// The peer and its current endpoint.
    pub peer: PeerId,
    /// Where the peer is now (NAT mapping), if known.
    pub endpoint: Option<SocketAddr>,
    /// Whether the endpoint is learned from traffic (`remote = any`).
    pub learned: bool,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Outbound: last sequence number sent; inbound: highest received.
    pub seq: u64,
    /// Replay window size (inbound), 0 for outbound.
    pub replay_window: u32,
    /// Counters.
    pub counters: crate::esp::SaCounters,
    /// Traffic selectors.
    pub selectors: Selectors,
}

/// Where a peer's packets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerState {
    /// Current public endpoint, if known.
    pub endpoint: Option<SocketAddr>,
    /// Follow the source of authenticated packets (NAT mapping changes); set when an SA of the
    /// peer was installed with `remote = any`.
    pub learn: bool,
}

/// Multiply-rotate hasher for SPIs and addresses: SPIs are random, so no DoS-resistant (slow)
/// hash is needed on the hot path.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// The SA tables of one worker.
#[derive(Debug, Default)]
pub struct Sad {
    inbound: Vec<InboundSa>,
    /// Slot in `peers` of each inbound SA's peer (same index as `inbound`), so the per-packet
    /// peer check after decryption is an array access, not a hash lookup.
    inbound_peer: Vec<u32>,
    inbound_by_spi: FastMap<u32, usize>,
    outbound: FastMap<u32, OutboundSa>,
    /// Outbound SAs whose remote selector is a single host, by that host (newest wins).
    outbound_by_host: FastMap<IpAddr, u32>,
    /// The other outbound SAs, oldest first (searched newest first).
    outbound_by_prefix: Vec<u32>,
    /// Peers, dense; a peer keeps its slot for the life of the table (peers are few and
    /// never removed: an SA may be reinstalled for them at any time).
    peers: Vec<PeerState>,
    peer_slots: FastMap<PeerId, u32>,
}

impl Sad {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply a command from the control plane.
    pub fn apply(&mut self, cmd: SaCommand) -> Result<(), SadError> {
        match cmd {
            SaCommand::Install(p) => self.install(&p),
            SaCommand::Remove { spi, direction } => self.remove(spi, direction),
            SaCommand::UpdatePeer { peer, endpoint } => {
                let slot = self.peer_slot(peer)?;
                self.peers[slot].endpoint = Some(endpoint);
                Ok(())
            }
        }
    }

    /// The slot of `peer`, created (no endpoint, not learning) if new.
    fn peer_slot(&mut self, peer: PeerId) -> Result<usize, SadError> {
        if let Some(&slot) = self.peer_slots.get(&peer) {
            return Ok(slot as usize);
        }
        let slot = u32::try_from(self.peers.len())
            .map_err(|_| SadError::Invalid(format!("peer {}: too many peers", peer.0)))?;
        self.peer_slots.insert(peer, slot);
        self.peers.push(PeerState {
            endpoint: None,
            learn: false,
        });
        Ok(slot as usize)
    }

    fn install(&mut self, p: &SaParams) -> Result<(), SadError> {
        if p.spi < 256 {
            return Err(SadError::ReservedSpi(p.spi));
        }
        let slot = self.peer_slot(p.peer)?;
        let peer = &mut self.peers[slot];
        match p.remote {
            Some(ep) => peer.endpoint = peer.endpoint.or(Some(ep)),
            None => peer.learn = true,
        }
        match p.direction {
            Direction::In => {
                let sa = InboundSa::new(p)
                    .map_err(|e| SadError::Invalid(format!("replay_window: {e}")))?;
                // Slots fit u32: peer_slot refuses more peers.
                let slot = slot as u32;
                match self.inbound_by_spi.get(&p.spi) {
                    Some(&i) => {
                        self.inbound[i] = sa;
                        self.inbound_peer[i] = slot;
                    }
                    None => {
                        self.inbound_by_spi.insert(p.spi, self.inbound.len());
                        self.inbound.push(sa);
                        self.inbound_peer.push(slot);
                    }
                }
            }
            Direction::Out => {
                if self.outbound.contains_key(&p.spi) {
                    self.remove(p.spi, Direction::Out)?;
                }
                match single_remote_host(&p.selectors) {
                    Some(host) => {
                        self.outbound_by_host.insert(host, p.spi);
                    }
                    None => self.outbound_by_prefix.push(p.spi),
                }
                self.outbound.insert(p.spi, OutboundSa::new(p));
            }
        }
        Ok(())
    }

    fn remove(&mut self, spi: u32, direction: Direction) -> Result<(), SadError> {
        match direction {
            Direction::In => {
                let i = self
                    .inbound_by_spi
                    .remove(&spi)
                    .ok_or(SadError::NotFound(spi, direction))?;
                self.inbound.swap_remove(i);
                self.inbound_peer.swap_remove(i);
                if let Some(moved) = self.inbound.get(i) {
                    self.inbound_by_spi.insert(moved.spi, i);
                }
            }
            Direction::Out => {
                let sa = self
                    .outbound
                    .remove(&spi)
                    .ok_or(SadError::NotFound(spi, direction))?;
                self.outbound_by_prefix.retain(|&s| s != spi);
                let host = single_remote_host(&sa.selectors);
                if let Some(host) = host.filter(|h| self.outbound_by_host.get(h) == Some(&spi)) {
                    self.outbound_by_host.remove(&host);
                    // An older SA for the same host takes over again.
                    let older = self
                        .outbound
                        .values()
                        .find(|o| single_remote_host(&o.selectors) == Some(host))
                        .map(|o| o.spi);
                    if let Some(o) = older {
                        self.outbound_by_host.insert(host, o);
                    }
                }
            }
        }
        Ok(())
    }

    /// Index of the inbound SA with `spi` (stable until the next command).
    #[inline]
    pub fn inbound_index(&self, spi: u32) -> Option<usize> {
        self.inbound_by_spi.get(&spi).copied()
    }

    /// The inbound SA at `index`.
    #[inline]
    pub fn inbound_at(&mut self, index: usize) -> Option<&mut InboundSa> {
        self.inbound.get_mut(index)
    }

    /// All inbound SAs.
    pub fn inbound(&self) -> &[InboundSa] {
        &self.inbound
    }

    /// All outbound SAs.
    pub fn outbound(&self) -> impl Iterator<Item = &OutboundSa> {
        self.outbound.values()
    }

    /// The SPI of the outbound SA for an inner packet from `src` to `dst`: a host match
    /// first, then the newest prefix match.
    #[inline]
    pub fn outbound_for(&self, src: IpAddr, dst: IpAddr) -> Option<u32> {
        self.outbound_by_host
            .get(&dst)
            .copied()
            .filter(|spi| {
                self.outbound
                    .get(spi)
                    .is_some_and(|sa| sa.selectors.matches_outbound(src, dst))
            })
            .or_else(|| {
                self.outbound_by_prefix.iter().rev().copied().find(|spi| {
                    self.outbound
                        .get(spi)
                        .is_some_and(|sa| sa.selectors.matches_outbound(src, dst))
                })
            })
    }

    /// The outbound SA with `spi` and its peer's current endpoint, if known.
    #[inline]
    pub fn outbound_with_endpoint(
        &mut self,
        spi: u32,
    ) -> Option<(&mut OutboundSa, Option<SocketAddr>)> {
        let sa = self.outbound.get_mut(&spi)?;
        let endpoint = self
            .peer_slots
            .get(&sa.peer)
            .and_then(|&slot| self.peers.get(slot as usize))
            .and_then(|p| p.endpoint);
        Some((sa, endpoint))
    }

    /// Where packets for `peer` go.
    #[inline]
    pub fn peer(&self, peer: PeerId) -> Option<&PeerState> {
        self.peer_slots
            .get(&peer)
            .and_then(|&slot| self.peers.get(slot as usize))
    }

    /// Whether the peer of the inbound SA at `index` learns its endpoint from traffic
    /// (`remote = any`): only then is a packet's source worth reading after decryption.
    #[inline]
    pub fn inbound_peer_learns(&self, index: usize) -> bool {
        self.inbound_peer
            .get(index)
            .and_then(|&slot| self.peers.get(slot as usize))
            .is_some_and(|p| p.learn)
    }

    /// An authenticated packet of the inbound SA at `index` arrived from `src`. Returns `true`
    /// when this moved its learning peer to a new endpoint (a NAT rebinding, or the first
    /// packet). Only ever called after the ICV verified and the replay window accepted the
    /// packet (RFC 7296 §2.23: mappings are updated from authenticated traffic only).
    #[inline]
    pub fn observe_peer(&mut self, index: usize, src: SocketAddr) -> bool {
        let Some(&slot) = self.inbound_peer.get(index) else {
            return false;
        };
        match self.peers.get_mut(slot as usize) {
            Some(p) if p.learn && p.endpoint != Some(src) => {
                p.endpoint = Some(src);
                true
            }
            _ => false,
        }
    }

    /// A snapshot of every SA, inbound first, for `xdpsec sa list`.
    pub fn snapshot(&self) -> Vec<SaSnapshot> {
        let peer = |id: PeerId| self.peer(id).copied();
        let inbound = self.inbound.iter().map(|sa| SaSnapshot {
            spi: sa.spi,
            direction: Direction::In,
            mode: sa.mode,
            aead: sa.aead,
            peer: sa.peer,
            endpoint: peer(sa.peer).and_then(|p| p.endpoint),
            learned: peer(sa.peer).is_some_and(|p| p.learn),
            esn: sa.replay().esn(),
            seq: sa.replay().highest(),
            replay_window: sa.replay().size(),
            counters: sa.counters,
            selectors: sa.selectors.clone(),
        });
        let outbound = self.outbound.values().map(|sa| SaSnapshot {
            spi: sa.spi,
            direction: Direction::Out,
            mode: sa.mode,
            aead: sa.aead,
            peer: sa.peer,
            endpoint: peer(sa.peer).and_then(|p| p.endpoint),
            learned: peer(sa.peer).is_some_and(|p| p.learn),
            esn: sa.esn(),
            seq: sa.seq(),
            replay_window: 0,
            counters: sa.counters,
            selectors: sa.selectors.clone(),
        });
        inbound.chain(outbound).collect()
    }

    /// Number of SAs (inbound, outbound).
    pub fn len(&self) -> (usize, usize) {
        (self.inbound.len(), self.outbound.len())
    }

    /// True when no SA is installed.
    pub fn is_empty(&self) -> bool {
        self.inbound.is_empty() && self.outbound.is_empty()
    }
}

/// The host an SA's remote selector names, if it names exactly one.
fn single_remote_host(selectors: &Selectors) -> Option<IpAddr> {
    match selectors.remote.as_slice() {
        [only] => only.as_host(),
        _ => None,
    }
}
