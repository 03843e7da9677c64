//! Outbound ESP processing (RFC 4303 §3.3): sequence number, padding, AES-GCM seal.

use std::net::SocketAddr;

use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::sa::{Aead, Lifetime, Mode, PeerId, SaParams, Selectors};

use super::cipher::GcmKey;
use super::{
    HEADER_LEN, ICV_LEN, IV_LEN, LifetimeEvent, SaCounters, TRAILER_LEN, aad, account, expired,
    pad_len,
};

/// An outbound SA with its expanded key, sequence counter and counters.
#[derive(Debug)]
pub struct OutboundSa {
    /// SPI (the peer's).
    pub spi: u32,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Algorithm.
    pub aead: Aead,
    /// The peer it belongs to (whose endpoint packets are sent to).
    pub peer: PeerId,
    /// Our outer endpoint.
    pub local: SocketAddr,
    /// Which inner packets it carries.
    pub selectors: Selectors,
    /// Byte/packet lifetimes.
    pub lifetime: Lifetime,
    /// Counters.
    pub counters: SaCounters,
    key: GcmKey,
    esn: bool,
    /// Last sequence number used (0 = none yet).
    pub(super) seq: u64,
}

impl OutboundSa {
    /// Build from parameters.
    pub fn new(p: &SaParams) -> Self {
        Self {
            spi: p.spi,
            mode: p.mode,
            aead: p.aead,
            peer: p.peer,
            local: p.local,
            selectors: p.selectors.clone(),
            lifetime: p.lifetime,
            counters: SaCounters::default(),
            key: GcmKey::new(p.aead, &p.key),
            esn: p.esn,
            seq: 0,
        }
    }

    /// Whether extended sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// The last sequence number sent.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Encapsulate the packet's current data (an inner IP packet in tunnel mode, an
    /// upper-layer payload in transport mode) as ESP in place: afterwards `pkt` holds
    /// SPI ‖ seq ‖ IV ‖ ciphertext ‖ ICV. Needs 16 bytes of headroom and up to 21 of tailroom.
    #[inline]
    pub fn seal(
        &mut self,
        pkt: &mut PacketBuf<'_>,
        next_header: u8,
    ) -> Result<Option<LifetimeEvent>, DropReason> {
        if expired(&self.counters, &self.lifetime) {
            return Err(DropReason::SaExpired);
        }
        // RFC 4303 §3.3.3: the counter MUST NOT cycle; the SA must be rekeyed instead.
        let max = if self.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        if self.seq >= max {
            return Err(DropReason::SequenceExhausted);
        }
        let payload_len = pkt.len();
        let pad = pad_len(payload_len);
        if pkt.headroom() < HEADER_LEN + IV_LEN || pkt.tailroom() < pad + TRAILER_LEN + ICV_LEN {
            return Err(DropReason::TooBig);
        }
        let seq = self.seq + 1;
        self.seq = seq;

        // Trailer: padding 1, 2, 3 … then pad length and next header (RFC 4303 §2.4–2.6).
        let trailer = pkt
            .push_back(pad + TRAILER_LEN)
            .map_err(|_| DropReason::TooBig)?;
        for (i, b) in trailer[..pad].iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        trailer[pad] = pad as u8;
        trailer[pad + 1] = next_header;

        // The explicit IV is the 64-bit sequence number: unique per key (RFC 4106 §3.1).
        let iv = seq.to_be_bytes();
        let (aad, aad_len) = aad(self.spi, seq, self.esn);
        let icv = self.key.seal(&iv, &aad[..aad_len], pkt.data_mut());
        pkt.push_back(ICV_LEN)
            .map_err(|_| DropReason::TooBig)?
            .copy_from_slice(&icv);

        let hdr = pkt
            .push_front(HEADER_LEN + IV_LEN)
            .map_err(|_| DropReason::TooBig)?;
        hdr[..4].copy_from_slice(&self.spi.to_be_bytes());
        hdr[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        hdr[8..16].copy_from_slice(&iv);

        Ok(account(&mut self.counters, &self.lifetime, payload_len))
    }
}
