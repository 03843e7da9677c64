//! What the scenarios feed the pipeline: SAs with fixed keys, inner IPv4/UDP packets, size
//! mixes, per-batch frame buffers, and a sender that turns inner packets into ESP-in-UDP
//! Ethernet frames with the dataplane's own outbound code.

use std::net::SocketAddr;

use xdpsec_dataplane::batch::MAX_BATCH;
use xdpsec_dataplane::buf::{HEADROOM, PacketBuf, TAILROOM};
use xdpsec_dataplane::esp::{OutboundSa, next_header};
use xdpsec_dataplane::sa::{
    Aead, Direction, KeyMaterial, Lifetime, Mode, NatOa, PeerId, SaParams, Selectors,
};
use xdpsec_dataplane::wire::ethernet::MacAddr;
use xdpsec_dataplane::wire::frame;

/// Packets per batch everywhere (the pipeline's and the backends' batch size).
pub const BATCH: usize = MAX_BATCH;

/// AES-128-GCM key ‖ salt of every benchmark SA (a benchmark, not a secret).
pub const KEY: [u8; 20] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14,
];

/// The peer's outer endpoint.
pub const PEER: &str = "192.0.2.1:4500";
/// The gateway's outer endpoint.
pub const GATEWAY: &str = "192.0.2.2:4500";
/// A host on the peer's inner network (10.99.0.0/24).
pub const PEER_HOST: &str = "10.99.0.5:1000";
/// A host on the gateway's inner network (10.9.0.0/24).
pub const LAN_HOST: &str = "10.9.0.7:2000";

/// Parse one of the constants above (or any address).
pub fn addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("{s}: {e}"))
}

/// An AES-128-GCM tunnel-mode SA between [`GATEWAY`] and [`PEER`] with the gateway's
/// selectors (ours 10.9.0.0/24, theirs 10.99.0.0/24), seen from the gateway.
pub fn gateway_sa(spi: u32, direction: Direction) -> Result<SaParams, String> {
    Ok(SaParams {
        spi,
        direction,
        mode: Mode::Tunnel,
        aead: Aead::Aes128Gcm16,
        key: KeyMaterial::new(Aead::Aes128Gcm16, KEY.to_vec())?,
        local: addr(GATEWAY)?,
        remote: Some(addr(PEER)?),
        peer: PeerId(0),
        esn: false,
        replay_window: 128,
        selectors: Selectors {
            local: vec!["10.9.0.0/24".parse()?],
            remote: vec!["10.99.0.0/24".parse()?],
        },
        nat_oa: NatOa::default(),
        lifetime: Lifetime::default(),
    })
}

/// The peer's side of an SA: same SPI and key, addresses swapped, no selectors.
pub fn peer_sa(spi: u32, local: SocketAddr, remote: SocketAddr) -> Result<SaParams, String> {
    Ok(SaParams {
        spi,
        direction: Direction::Out,
        mode: Mode::Tunnel,
        aead: Aead::Aes128Gcm16,
        key: KeyMaterial::new(Aead::Aes128Gcm16, KEY.to_vec())?,
        local,
        remote: Some(remote),
        peer: PeerId(0),
        esn: false,
        replay_window: 128,
        selectors: Selectors::default(),
        nat_oa: NatOa::default(),
        lifetime: Lifetime::default(),
    })
}

/// The `i`-th SPI of a set: distinct for every `i` < 2^31, spread over the 32-bit space (an
/// odd multiplier is a bijection modulo 2^31), never in the reserved range 0..=255.
pub fn spi(i: u32) -> u32 {
    0x8000_0000 | (i.wrapping_add(1).wrapping_mul(0x9E37_79B1) & 0x7FFF_FFFF)
}

/// Write an IPv4/UDP packet of exactly `size` bytes (≥ 28) from `src` to `dst` into
/// `buf[HEADROOM..]`, UDP payload zero. Returns the packet's bytes.
pub fn inner_packet(
    buf: &mut [u8],
    size: usize,
    src: SocketAddr,
    dst: SocketAddr,
) -> Result<&[u8], String> {
    let payload = size
        .checked_sub(28)
        .ok_or(format!("inner packets need ≥ 28 bytes, not {size}"))?;
    if buf.len() < HEADROOM + size {
        return Err(format!("buffer too small for {size} bytes"));
    }
    buf[HEADROOM + 28..HEADROOM + size].fill(0);
    let mut pkt = PacketBuf::new(buf, HEADROOM + 28, payload);
    frame::push_udp_ip(&mut pkt, src, dst, 64, 0).map_err(|e| format!("{e:?}"))?;
    Ok(&buf[HEADROOM..HEADROOM + size])
}

/// Packet sizes of a point: one size, or the simple IMIX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Every inner packet has this many bytes (IP header included).
    Fixed(usize),
    /// 7 : 4 : 1 of 64 / 576 / 1420-byte inner packets, in a fixed shuffled order (1420 rather
    /// than 1500 so that the ESP-in-UDP packet still fits a 1500-byte WAN MTU).
    Imix,
}

/// The IMIX's sizes and weights.
pub const IMIX: [(usize, usize); 3] = [(64, 7), (576, 4), (1420, 1)];

impl Mix {
    /// Parse `64`, `1420`, `imix`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(Mix::Imix);
        }
        let n: usize = s
            .parse()
            .map_err(|_| format!("size \"{s}\": a number of bytes or \"imix\""))?;
        if !(28..=8000).contains(&n) {
            return Err(format!("size {n}: must be 28..=8000 bytes"));
        }
        Ok(Mix::Fixed(n))
    }

    /// Label in tables: `64 B` or `IMIX`.
    pub fn label(&self) -> String {
        match self {
            Mix::Fixed(n) => format!("{n} B"),
            Mix::Imix => "IMIX".into(),
        }
    }

    /// The sizes of consecutive packets, cycled: a multiple of the batch size long.
    pub fn pattern(&self) -> Vec<usize> {
        match self {
            Mix::Fixed(n) => vec![*n; BATCH],
            Mix::Imix => {
                // 16 rounds of 7+4+1 = 192 packets = 3 batches, shuffled deterministically.
                let mut v: Vec<usize> = (0..16)
                    .flat_map(|_| IMIX.iter().flat_map(|&(s, w)| std::iter::repeat_n(s, w)))
                    .collect();
                let mut rng = Rng(0x5eed);
                for i in (1..v.len()).rev() {
                    v.swap(i, rng.below(i as u64 + 1) as usize);
                }
                v
            }
        }
    }

    /// The largest inner packet.
    pub fn max(&self) -> usize {
        self.pattern().into_iter().max().unwrap_or(0)
    }
}

/// xorshift64*: a small deterministic generator for shuffles and SPI choices.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0; the tiny modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// `BATCH` frame buffers with head- and tailroom for packets of up to `max` bytes.
#[derive(Debug)]
pub struct Slots {
    mem: Vec<u8>,
    slot: usize,
}

impl Slots {
    /// Buffers for inner packets of up to `max` bytes (plus every header ESP-in-UDP adds).
    pub fn new(max: usize) -> Self {
        // 64-byte aligned slot size, like UMEM chunks.
        let slot = (HEADROOM + max + TAILROOM).div_ceil(64) * 64;
        Self {
            mem: vec![0u8; slot * BATCH],
            slot,
        }
    }

    /// The buffers, one per packet of a batch.
    pub fn bufs(&mut self) -> std::slice::ChunksExactMut<'_, u8> {
        self.mem.chunks_exact_mut(self.slot)
    }
}

/// Turns inner packets into ESP-in-UDP Ethernet frames as a peer would send them, cycling
/// through `order` to pick each packet's SA. Uses the dataplane's [`OutboundSa`] (the code
/// under test for encap, checked against scapy and the GCM known answers elsewhere).
#[derive(Debug)]
pub struct EspSource {
    sas: Vec<OutboundSa>,
    order: Vec<u32>,
    pos: usize,
    src: SocketAddr,
    dst: SocketAddr,
}

impl EspSource {
    /// A peer with one outbound SA per SPI in `spis`; `order` lists SA indices (cycled).
    pub fn new(spis: &[u32], order: Vec<u32>) -> Result<Self, String> {
        let (src, dst) = (addr(PEER)?, addr(GATEWAY)?);
        let sas = spis
            .iter()
            .map(|&spi| peer_sa(spi, src, dst).map(|p| OutboundSa::new(&p)))
            .collect::<Result<Vec<_>, _>>()?;
        if order.is_empty() || order.iter().any(|&i| i as usize >= sas.len()) {
            return Err("SA order must be non-empty and index existing SAs".into());
        }
        Ok(Self {
            sas,
            order,
            pos: 0,
            src,
            dst,
        })
    }

    /// Encrypt the inner packet in `pkt` in place into an Ethernet ‖ IPv4 ‖ UDP ‖ ESP frame
    /// for the next SA in order.
    pub fn seal(&mut self, pkt: &mut PacketBuf<'_>) -> Result<(), String> {
        let i = self.order[self.pos] as usize;
        self.pos = (self.pos + 1) % self.order.len();
        let sa = self.sas.get_mut(i).ok_or("SA index out of range")?;
        sa.seal(pkt, next_header::IPV4)
            .map_err(|r| format!("sender: {}", r.name()))?;
        frame::push_udp_ip(pkt, self.src, self.dst, 64, 0).map_err(|e| format!("{e:?}"))?;
        frame::push_ethernet(
            pkt,
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
        )
        .map_err(|_| "no headroom for Ethernet".to_string())
    }
}
