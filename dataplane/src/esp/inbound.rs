//! Inbound ESP processing (RFC 4303 §3.4) in three steps, so a batch can check replay for all
//! its packets, then decrypt them all, then commit:
//!
//! 1. [`InboundSa::check`] — lifetime and anti-replay *before* decryption (§3.4.3);
//! 2. [`InboundSa::open`] — ICV verification and decryption (§3.4.4), padding checks (§2.4);
//! 3. [`InboundSa::commit`] — window update *after* the ICV verified, then counters, so replays
//!    never touch lifetime counters.

use crate::drop::DropReason;
use crate::replay::ReplayWindow;
use crate::sa::{Aead, Lifetime, Mode, NatOa, PeerId, SaParams, Selectors};

use super::cipher::GcmKey;
use super::{
    HEADER_LEN, ICV_LEN, IV_LEN, LifetimeEvent, MIN_LEN, SaCounters, TRAILER_LEN, aad, account,
    expired, next_header,
};

/// An inbound SA with its expanded key, replay window and counters.
#[derive(Debug)]
pub struct InboundSa {
    /// SPI (ours).
    pub spi: u32,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Algorithm.
    pub aead: Aead,
    /// The peer it belongs to.
    pub peer: PeerId,
    /// Inner addresses it may carry (checked after decryption, RFC 4301 §5.2).
    pub selectors: Selectors,
    /// Transport-mode original addresses (RFC 3948 §3.1.2).
    pub nat_oa: NatOa,
    /// Byte/packet lifetimes.
    pub lifetime: Lifetime,
    /// Counters.
    pub counters: SaCounters,
    key: GcmKey,
    replay: ReplayWindow,
}

/// Where the decrypted payload lies inside the ESP bytes given to [`InboundSa::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// Offset of the payload from the start of the ESP header (always header + IV).
    pub offset: usize,
    /// Payload length (padding and trailer removed).
    pub len: usize,
    /// The next-header field.
    pub next_header: u8,
}

impl InboundSa {
    /// Build from parameters. Fails only on an invalid replay window size.
    pub fn new(p: &SaParams) -> Result<Self, String> {
        let replay = ReplayWindow::new(p.replay_window, p.esn).map_err(|e| e.to_string())?;
        Ok(Self {
            spi: p.spi,
            mode: p.mode,
            aead: p.aead,
            peer: p.peer,
            selectors: p.selectors.clone(),
            nat_oa: p.nat_oa,
            lifetime: p.lifetime,
            counters: SaCounters::default(),
            key: GcmKey::new(p.aead, &p.key),
            replay,
        })
    }

    /// The replay window (for stats).
    pub fn replay(&self) -> &ReplayWindow {
        &self.replay
    }

    /// Step 1: refuse expired SAs and replays; return the full (ESN-inferred) sequence number.
    #[inline]
    pub fn check(&mut self, seq_low: u32) -> Result<u64, DropReason> {
        if expired(&self.counters, &self.lifetime) {
            return Err(DropReason::SaExpired);
        }
        self.replay.check(seq_low).map_err(|e| {
            self.counters.replay_drops += 1;
            DropReason::from(e)
        })
    }

    /// Step 2: verify and decrypt `esp` (SPI through ICV) in place for sequence number `seq`.
    #[inline]
    pub fn open(&mut self, seq: u64, esp: &mut [u8]) -> Result<Opened, DropReason> {
        if esp.len() < MIN_LEN {
            return Err(DropReason::BadCiphertextLength);
        }
        let (aad, aad_len) = aad(self.spi, seq, self.replay.esn());
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&esp[HEADER_LEN..HEADER_LEN + IV_LEN]);
        let body = &mut esp[HEADER_LEN + IV_LEN..];
        if self.key.open(&iv, &aad[..aad_len], body).is_err() {
            self.counters.auth_failures += 1;
            return Err(DropReason::AuthFailed);
        }
        let plain = &body[..body.len() - ICV_LEN];
        trailer(plain).map(|(len, next_header)| Opened {
            offset: HEADER_LEN + IV_LEN,
            len,
            next_header,
        })
    }

    /// Step 3: mark `seq` received (re-checking the window: a duplicate inside one batch is
    /// caught here), count `bytes`, and report a lifetime crossing.
    #[inline(always)]
    pub fn commit(&mut self, seq: u64, bytes: usize) -> Result<Option<LifetimeEvent>, DropReason> {
        if let Err(e) = self.replay.commit(seq) {
            self.counters.replay_drops += 1;
            return Err(e.into());
        }
        Ok(account(&mut self.counters, &self.lifetime, bytes))
    }

    /// Whether `next_header` can be delivered in this SA's mode.
    #[inline]
    pub fn accepts_next_header(&self, nh: u8) -> Result<(), DropReason> {
        match (nh, self.mode) {
            (next_header::NO_NEXT, _) => Err(DropReason::DummyPacket),
            (next_header::IPV4 | next_header::IPV6, Mode::Tunnel) => Ok(()),
            (_, Mode::Tunnel) => Err(DropReason::BadNextHeader),
            (next_header::IPV4 | next_header::IPV6, Mode::Transport) => {
                Err(DropReason::BadNextHeader)
            }
            (_, Mode::Transport) => Ok(()),
        }
    }
}

/// Parse the ESP trailer of a decrypted payload: returns (payload length, next header).
/// Padding must be the default monotonic sequence 1, 2, 3, … (RFC 4303 §2.4: the receiver
/// SHOULD inspect it).
#[inline]
fn trailer(plain: &[u8]) -> Result<(usize, u8), DropReason> {
    let n = plain.len();
    if n < TRAILER_LEN {
        return Err(DropReason::BadPadding);
    }
    let pad = plain[n - 2] as usize;
    let nh = plain[n - 1];
    let Some(payload_len) = n.checked_sub(TRAILER_LEN + pad) else {
        return Err(DropReason::BadPadding);
    };
    let padding = &plain[payload_len..payload_len + pad];
    if padding
        .iter()
        .enumerate()
        .any(|(i, &b)| b as usize != i + 1)
    {
        return Err(DropReason::BadPadding);
    }
    Ok((payload_len, nh))
}
