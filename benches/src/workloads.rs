//! The four things the `pipeline` and `scale` scenarios time, one batch of [`BATCH`] packets
//! at a time: raw `ring` AES-128-GCM seal and open (the baselines), and the pipeline's
//! `encap_batch` and `decap_batch`. Every batch's input is restored (or freshly encrypted)
//! right before the timed call, outside the timing, so it is cache-warm as on a receive path
//! where the NIC or the kernel has just written it — for baselines and pipeline alike.

use std::hint::black_box;
use std::time::Instant;

use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use xdpsec_dataplane::batch::{Config, Ingress, Pipeline, Verdict};
use xdpsec_dataplane::buf::{HEADROOM, PacketBuf};
use xdpsec_dataplane::sa::Direction;
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::wire::frame::Link;

use crate::fixture::{
    BATCH, EspSource, KEY, LAN_HOST, Mix, PEER_HOST, Slots, addr, gateway_sa, inner_packet, spi,
};
use crate::harness::{Timed, Workload};

/// ESP adds pad length and next header to the payload before sealing: the baselines seal
/// `size + 2` bytes, as the pipeline does for a packet of `size`.
const TRAILER: usize = 2;

/// The cycled sizes of a mix and where the next batch starts in them.
#[derive(Debug)]
struct Sizes {
    pattern: Vec<usize>,
    pos: usize,
}

impl Sizes {
    fn new(mix: Mix) -> Self {
        Self {
            pattern: mix.pattern(),
            pos: 0,
        }
    }

    /// Pattern positions of the next batch.
    fn next_batch(&mut self) -> [usize; BATCH] {
        let mut at = [0; BATCH];
        for a in &mut at {
            *a = self.pos;
            self.pos = (self.pos + 1) % self.pattern.len();
        }
        at
    }
}

fn ring_key() -> Result<LessSafeKey, String> {
    UnboundKey::new(&AES_128_GCM, &KEY[..16])
        .map(LessSafeKey::new)
        .map_err(|_| "ring rejected the key".to_string())
}

fn nonce(n: u64) -> Nonce {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&KEY[16..]);
    b[4..].copy_from_slice(&n.to_be_bytes());
    Nonce::assume_unique_for_key(b)
}

/// Inner packets of a mix, one per pattern position, from `src` to `dst`.
fn templates(mix: Mix, src: &str, dst: &str) -> Result<Vec<Vec<u8>>, String> {
    let (src, dst) = (addr(src)?, addr(dst)?);
    mix.pattern()
        .into_iter()
        .map(|size| {
            let mut buf = vec![0u8; HEADROOM + size];
            inner_packet(&mut buf, size, src, dst).map(<[u8]>::to_vec)
        })
        .collect()
}

/// `ring` seal of `size + 2` bytes per packet, 8 bytes of AAD (an ESP header's worth).
#[derive(Debug)]
pub struct RingSeal {
    key: LessSafeKey,
    sizes: Sizes,
    work: Vec<Vec<u8>>,
    pristine: Vec<u8>,
    counter: u64,
}

impl RingSeal {
    /// For packets of `mix`.
    pub fn new(mix: Mix) -> Result<Self, String> {
        let len = mix.max() + TRAILER;
        Ok(Self {
            key: ring_key()?,
            sizes: Sizes::new(mix),
            work: vec![vec![0u8; len]; BATCH],
            pristine: vec![0u8; len],
            counter: 0,
        })
    }
}

impl Workload for RingSeal {
    fn batch(&mut self) -> Result<Timed, String> {
        let at = self.sizes.next_batch();
        let mut lens = [0usize; BATCH];
        let mut bytes = 0;
        for ((len, &a), buf) in lens.iter_mut().zip(&at).zip(&mut self.work) {
            let size = self.sizes.pattern[a];
            *len = size + TRAILER;
            buf[..*len].copy_from_slice(&self.pristine[..*len]);
            bytes += size as u64;
        }
        let t = Instant::now();
        for (buf, &len) in self.work.iter_mut().zip(&lens) {
            self.counter += 1;
            let tag = self.key.seal_in_place_separate_tag(
                nonce(self.counter),
                Aad::from([0u8; 8]),
                &mut buf[..len],
            );
            black_box(tag.ok());
        }
        Ok(Timed {
            kind: at[0] / BATCH,
            packets: BATCH as u64,
            bytes,
            busy: t.elapsed(),
        })
    }

    fn verify(&self) -> Result<(), String> {
        Ok(())
    }
}

/// `ring` open of what [`RingSeal`] produces.
#[derive(Debug)]
pub struct RingOpen {
    key: LessSafeKey,
    sizes: Sizes,
    work: Vec<Vec<u8>>,
    /// Ciphertext ‖ tag for every pattern position (sealed with nonce = position).
    sealed: Vec<Vec<u8>>,
    failures: u64,
}

impl RingOpen {
    /// For packets of `mix`.
    pub fn new(mix: Mix) -> Result<Self, String> {
        let key = ring_key()?;
        let sizes = Sizes::new(mix);
        let sealed = sizes
            .pattern
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let mut buf = vec![0u8; size + TRAILER];
                let tag = key
                    .seal_in_place_separate_tag(nonce(i as u64), Aad::from([0u8; 8]), &mut buf)
                    .map_err(|_| "ring seal failed".to_string())?;
                buf.extend_from_slice(tag.as_ref());
                Ok(buf)
            })
            .collect::<Result<Vec<_>, String>>()?;
        let len = mix.max() + TRAILER + 16;
        Ok(Self {
            key,
            sizes,
            work: vec![vec![0u8; len]; BATCH],
            sealed,
            failures: 0,
        })
    }
}

impl Workload for RingOpen {
    fn batch(&mut self) -> Result<Timed, String> {
        let at = self.sizes.next_batch();
        let mut bytes = 0;
        for (&a, buf) in at.iter().zip(&mut self.work) {
            let s = &self.sealed[a];
            buf[..s.len()].copy_from_slice(s);
            bytes += (s.len() - TRAILER - 16) as u64;
        }
        let t = Instant::now();
        for (&a, buf) in at.iter().zip(&mut self.work) {
            let len = self.sealed[a].len();
            let ok = self
                .key
                .open_in_place(nonce(a as u64), Aad::from([0u8; 8]), &mut buf[..len])
                .is_ok();
            self.failures += u64::from(!ok);
        }
        Ok(Timed {
            kind: at[0] / BATCH,
            packets: BATCH as u64,
            bytes,
            busy: t.elapsed(),
        })
    }

    fn verify(&self) -> Result<(), String> {
        match self.failures {
            0 => Ok(()),
            n => Err(format!("ring open failed {n} times")),
        }
    }
}

/// Fail with the drop reasons if the pipeline refused anything.
fn no_drops(p: &Pipeline, what: &str) -> Result<(), String> {
    if p.stats.drops.total() == 0 {
        return Ok(());
    }
    let reasons: Vec<String> = p
        .stats
        .drops
        .nonzero()
        .map(|(r, n)| format!("{}={n}", r.name()))
        .collect();
    Err(format!(
        "{what} dropped packets ({}): a benchmark must not be flattered by drops",
        reasons.join(", ")
    ))
}

/// `Pipeline::encap_batch`: inner packets from the LAN to the peer through one outbound SA.
#[derive(Debug)]
pub struct Encap {
    pipe: Pipeline,
    sizes: Sizes,
    templates: Vec<Vec<u8>>,
    slots: Slots,
}

impl Encap {
    /// For packets of `mix`.
    pub fn new(mix: Mix) -> Result<Self, String> {
        let mut pipe = Pipeline::new(Config {
            mtu: 9000,
            ..Config::default()
        });
        pipe.sad
            .apply(SaCommand::Install(Box::new(gateway_sa(
                spi(0),
                Direction::Out,
            )?)))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            pipe,
            sizes: Sizes::new(mix),
            templates: templates(mix, LAN_HOST, PEER_HOST)?,
            slots: Slots::new(mix.max()),
        })
    }
}

impl Workload for Encap {
    fn batch(&mut self) -> Result<Timed, String> {
        let at = self.sizes.next_batch();
        let mut bytes = 0;
        let mut frames: Vec<PacketBuf<'_>> = self
            .slots
            .bufs()
            .zip(&at)
            .map(|(buf, &a)| {
                let tpl = &self.templates[a];
                buf[HEADROOM..HEADROOM + tpl.len()].copy_from_slice(tpl);
                bytes += tpl.len() as u64;
                PacketBuf::new(buf, HEADROOM, tpl.len())
            })
            .collect();
        let mut v = [Verdict::Keepalive; BATCH];
        let t = Instant::now();
        self.pipe.encap_batch(&mut frames, &mut v);
        let busy = t.elapsed();
        black_box(&frames);
        Ok(Timed {
            kind: at[0] / BATCH,
            packets: BATCH as u64,
            bytes,
            busy,
        })
    }

    fn verify(&self) -> Result<(), String> {
        no_drops(&self.pipe, "encap")
    }
}

/// `Pipeline::decap_batch` on Ethernet frames (`Ingress::Frames(Link::Ethernet)`, as from
/// AF_XDP), freshly encrypted by a peer ([`EspSource`]) before every batch, so sequence
/// numbers keep increasing and the replay check is real.
#[derive(Debug)]
pub struct Decap {
    pipe: Pipeline,
    source: EspSource,
    sizes: Sizes,
    templates: Vec<Vec<u8>>,
    slots: Slots,
}

impl Decap {
    /// One inbound SA, one peer.
    pub fn new(mix: Mix) -> Result<Self, String> {
        let mut pipe = Pipeline::new(Config::default());
        pipe.sad
            .apply(SaCommand::Install(Box::new(gateway_sa(
                spi(0),
                Direction::In,
            )?)))
            .map_err(|e| e.to_string())?;
        Self::with(mix, pipe, EspSource::new(&[spi(0)], vec![0])?)
    }

    /// A pipeline with its SAs already installed, fed by `source`.
    pub fn with(mix: Mix, pipe: Pipeline, source: EspSource) -> Result<Self, String> {
        Ok(Self {
            pipe,
            source,
            sizes: Sizes::new(mix),
            templates: templates(mix, PEER_HOST, LAN_HOST)?,
            slots: Slots::new(mix.max()),
        })
    }

    /// Take the pipeline and the sender back (to measure another size with the same SAs).
    pub fn into_parts(self) -> (Pipeline, EspSource) {
        (self.pipe, self.source)
    }
}

impl Workload for Decap {
    fn batch(&mut self) -> Result<Timed, String> {
        let at = self.sizes.next_batch();
        let mut bytes = 0;
        let mut frames = Vec::with_capacity(BATCH);
        for (buf, &a) in self.slots.bufs().zip(&at) {
            let tpl = &self.templates[a];
            buf[HEADROOM..HEADROOM + tpl.len()].copy_from_slice(tpl);
            bytes += tpl.len() as u64;
            let mut pkt = PacketBuf::new(buf, HEADROOM, tpl.len());
            self.source.seal(&mut pkt)?;
            frames.push(pkt);
        }
        let mut v = [Verdict::Keepalive; BATCH];
        let t = Instant::now();
        self.pipe
            .decap_batch(Ingress::Frames(Link::Ethernet), &mut frames, &mut v);
        let busy = t.elapsed();
        if let Some(bad) = v.iter().find(|v| **v != Verdict::Inner) {
            return Err(format!("decap: a frame was not delivered: {bad:?}"));
        }
        Ok(Timed {
            kind: at[0] / BATCH,
            packets: BATCH as u64,
            bytes,
            busy,
        })
    }

    fn verify(&self) -> Result<(), String> {
        no_drops(&self.pipe, "decap")
    }
}
