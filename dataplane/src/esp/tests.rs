//! ESP unit tests, cross-checked against an independent AEAD implementation (RustCrypto
//! `aes-gcm`), including tampering, padding and sequence-number exhaustion.

use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use proptest::prelude::*;

use super::*;
use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::sa::{
    Aead, Direction, KeyMaterial, Lifetime, Limit, Mode, NatOa, PeerId, SaParams, Selectors,
};

pub(crate) fn params(spi: u32, direction: Direction, aead: Aead, esn: bool) -> SaParams {
    let key: Vec<u8> = (0..aead.keymat_len() as u8)
        .map(|b| b.wrapping_mul(7).wrapping_add(spi as u8))
        .collect();
    SaParams {
        spi,
        direction,
        mode: Mode::Tunnel,
        aead,
        key: KeyMaterial::new(aead, key).unwrap(),
        local: "192.0.2.2:4500".parse().unwrap(),
        remote: Some("192.0.2.1:40000".parse().unwrap()),
        peer: PeerId(0),
        esn,
        replay_window: 128,
        selectors: Selectors::default(),
        nat_oa: NatOa::default(),
        lifetime: Lifetime::default(),
    }
}

/// Seal `payload` with a fresh outbound SA; returns the ESP bytes.
fn seal(p: &SaParams, payload: &[u8], next_header: u8) -> Vec<u8> {
    let mut out = OutboundSa::new(p);
    seal_with(&mut out, payload, next_header)
}

fn seal_with(out: &mut OutboundSa, payload: &[u8], next_header: u8) -> Vec<u8> {
    let mut mem = vec![0u8; 64 + payload.len() + 64];
    mem[64..64 + payload.len()].copy_from_slice(payload);
    let mut pkt = PacketBuf::new(&mut mem, 64, payload.len());
    out.seal(&mut pkt, next_header).unwrap();
    pkt.data().to_vec()
}

/// Check, open and commit with a fresh inbound SA; returns (payload, next header).
fn open(p: &SaParams, esp: &mut [u8]) -> Result<(Vec<u8>, u8), DropReason> {
    let mut sa = InboundSa::new(p).unwrap();
    open_with(&mut sa, esp)
}

fn open_with(sa: &mut InboundSa, esp: &mut [u8]) -> Result<(Vec<u8>, u8), DropReason> {
    let seq_low = u32::from_be_bytes([esp[4], esp[5], esp[6], esp[7]]);
    let seq = sa.check(seq_low)?;
    let o = sa.open(seq, esp)?;
    sa.commit(seq, o.len)?;
    Ok((esp[o.offset..o.offset + o.len].to_vec(), o.next_header))
}

/// Decrypt with RustCrypto's AES-GCM: returns the plaintext including padding and trailer.
fn independent_open(p: &SaParams, esp: &[u8], seq_hi: u32) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&p.key.salt());
    nonce[4..].copy_from_slice(&esp[8..16]);
    let mut aad = esp[..4].to_vec();
    if p.esn {
        aad.extend_from_slice(&seq_hi.to_be_bytes());
    }
    aad.extend_from_slice(&esp[4..8]);
    let payload = Payload {
        msg: &esp[16..],
        aad: &aad,
    };
    match p.aead {
        Aead::Aes128Gcm16 => Aes128Gcm::new_from_slice(p.key.key())
            .unwrap()
            .decrypt(Nonce::from_slice(&nonce), payload),
        Aead::Aes256Gcm16 => Aes256Gcm::new_from_slice(p.key.key())
            .unwrap()
            .decrypt(Nonce::from_slice(&nonce), payload),
    }
    .expect("independent AES-GCM rejects our packet")
}

/// Encrypt with RustCrypto's AES-GCM: `plain` must already hold payload ‖ padding ‖ trailer.
fn independent_seal(p: &SaParams, seq: u32, iv: [u8; 8], plain: &[u8]) -> Vec<u8> {
    let mut esp = p.spi.to_be_bytes().to_vec();
    esp.extend_from_slice(&seq.to_be_bytes());
    esp.extend_from_slice(&iv);
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&p.key.salt());
    nonce[4..].copy_from_slice(&iv);
    let aad = esp[..8].to_vec();
    let payload = Payload {
        msg: plain,
        aad: &aad,
    };
    let ct = match p.aead {
        Aead::Aes128Gcm16 => Aes128Gcm::new_from_slice(p.key.key())
            .unwrap()
            .encrypt(Nonce::from_slice(&nonce), payload),
        Aead::Aes256Gcm16 => Aes256Gcm::new_from_slice(p.key.key())
            .unwrap()
            .encrypt(Nonce::from_slice(&nonce), payload),
    }
    .unwrap();
    esp.extend_from_slice(&ct);
    esp
}

#[test]
fn padding_aligns_to_four_bytes() {
    for len in 0..64 {
        assert_eq!((len + pad_len(len) + TRAILER_LEN) % 4, 0);
        assert!(pad_len(len) <= 3);
    }
}

#[test]
fn independent_aead_opens_ours_with_correct_framing() {
    for aead in [Aead::Aes128Gcm16, Aead::Aes256Gcm16] {
        for esn in [false, true] {
            let p = params(0x1000, Direction::Out, aead, esn);
            for len in [0usize, 1, 2, 3, 4, 61, 1400] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let esp = seal(&p, &payload, next_header::IPV4);
                assert_eq!(&esp[..4], &0x1000u32.to_be_bytes());
                assert_eq!(
                    &esp[4..8],
                    &1u32.to_be_bytes(),
                    "first sequence number is 1"
                );
                assert_eq!(
                    &esp[8..16],
                    &1u64.to_be_bytes(),
                    "IV is the sequence number"
                );
                let plain = independent_open(&p, &esp, 0);
                let pad = pad_len(len);
                assert_eq!(plain.len(), len + pad + 2);
                assert_eq!(&plain[..len], &payload[..]);
                assert_eq!(&plain[len..len + pad], &[1, 2, 3][..pad]);
                assert_eq!(plain[len + pad], pad as u8);
                assert_eq!(plain[len + pad + 1], next_header::IPV4);
            }
        }
    }
}

#[test]
fn we_open_independent_packets() {
    for aead in [Aead::Aes128Gcm16, Aead::Aes256Gcm16] {
        let p = params(0x2000, Direction::In, aead, false);
        let mut plain = b"hello, tunnel".to_vec();
        plain.extend_from_slice(&[1, 2, 3, 3, 41]);
        let mut esp = independent_seal(&p, 5, [9, 8, 7, 6, 5, 4, 3, 2], &plain);
        let (payload, nh) = open(&p, &mut esp).unwrap();
        assert_eq!(payload, b"hello, tunnel");
        assert_eq!(nh, 41);
    }
}

#[test]
fn every_flipped_byte_fails_authentication() {
    let p = params(0x3000, Direction::In, Aead::Aes128Gcm16, false);
    let esp = seal(&p, &[0x45; 40], next_header::IPV4);
    // Bytes 0..4 are the SPI: the AAD uses the SA's own SPI, and a changed SPI finds no SA at
    // the pipeline level (unknown_spi, tested in batch). Every other byte is covered here.
    for i in 4..esp.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = esp.clone();
            bad[i] ^= bit;
            let r = open(&p, &mut bad);
            let seq_flipped_to_zero =
                (4..8).contains(&i) && u32::from_be_bytes([bad[4], bad[5], bad[6], bad[7]]) == 0;
            let expected = if seq_flipped_to_zero {
                DropReason::ReplayTooOld
            } else {
                DropReason::AuthFailed
            };
            assert_eq!(r, Err(expected), "byte {i} bit {bit:#x}");
        }
    }
}

#[test]
fn malformed_padding_and_lengths_are_refused() {
    let p = params(0x4000, Direction::In, Aead::Aes128Gcm16, false);
    let iv = [0; 8];
    // Padding 1, 2, 4 instead of 1, 2, 3.
    let mut esp = independent_seal(&p, 1, iv, &[0xaa, 1, 2, 4, 3, 4]);
    assert_eq!(open(&p, &mut esp), Err(DropReason::BadPadding));
    // Pad length larger than the plaintext.
    let mut esp = independent_seal(&p, 1, iv, &[1, 2, 200, 4]);
    assert_eq!(open(&p, &mut esp), Err(DropReason::BadPadding));
    // Plaintext shorter than the trailer.
    let mut esp = independent_seal(&p, 1, iv, &[4]);
    assert_eq!(open(&p, &mut esp), Err(DropReason::BadCiphertextLength));
    // Truncated packets never reach the AEAD.
    let mut esp = seal(
        &params(0x4000, Direction::Out, Aead::Aes128Gcm16, false),
        &[1; 20],
        4,
    );
    let mut sa = InboundSa::new(&p).unwrap();
    for len in 0..MIN_LEN {
        assert_eq!(
            sa.open(1, &mut esp[..len]),
            Err(DropReason::BadCiphertextLength),
            "len {len}"
        );
    }
}

#[test]
fn next_header_must_fit_the_mode() {
    let p = params(0x5000, Direction::In, Aead::Aes128Gcm16, false);
    let sa = InboundSa::new(&p).unwrap();
    assert_eq!(
        sa.accepts_next_header(next_header::NO_NEXT),
        Err(DropReason::DummyPacket)
    );
    assert_eq!(
        sa.accepts_next_header(next_header::TCP),
        Err(DropReason::BadNextHeader)
    );
    assert_eq!(sa.accepts_next_header(next_header::IPV6), Ok(()));
    let t = InboundSa::new(&SaParams {
        mode: Mode::Transport,
        ..p
    })
    .unwrap();
    assert_eq!(
        t.accepts_next_header(next_header::IPV4),
        Err(DropReason::BadNextHeader)
    );
    assert_eq!(t.accepts_next_header(next_header::UDP), Ok(()));
}

#[test]
fn sequence_number_never_wraps() {
    let p = params(0x6000, Direction::Out, Aead::Aes128Gcm16, false);
    let mut out = OutboundSa::new(&p);
    out.seq = u64::from(u32::MAX) - 1;
    let esp = seal_with(&mut out, &[1, 2, 3], 4);
    assert_eq!(&esp[4..8], &u32::MAX.to_be_bytes());
    let mut mem = [0u8; 128];
    let mut pkt = PacketBuf::new(&mut mem, 64, 8);
    assert_eq!(out.seal(&mut pkt, 4), Err(DropReason::SequenceExhausted));
    assert_eq!(pkt.len(), 8, "a refused packet is left untouched");

    // With ESN the counter continues into the high half, which enters the AAD (RFC 4106 §5).
    let p = params(0x6001, Direction::Out, Aead::Aes256Gcm16, true);
    let mut out = OutboundSa::new(&p);
    out.seq = u64::from(u32::MAX);
    let esp = seal_with(&mut out, &[7; 9], 4);
    assert_eq!(&esp[4..8], &0u32.to_be_bytes());
    assert_eq!(&independent_open(&p, &esp, 1)[..9], &[7; 9]);
    out.seq = u64::MAX;
    assert_eq!(
        out.seal(&mut PacketBuf::new(&mut [0u8; 128], 64, 8), 4),
        Err(DropReason::SequenceExhausted)
    );
}

#[test]
fn lifetimes_fire_soft_then_hard_then_refuse() {
    let mut p = params(0x7000, Direction::Out, Aead::Aes128Gcm16, false);
    p.lifetime.packets = Limit {
        soft: Some(2),
        hard: Some(3),
    };
    let mut out = OutboundSa::new(&p);
    let mut events = Vec::new();
    for _ in 0..4 {
        let mut mem = [0u8; 128];
        let mut pkt = PacketBuf::new(&mut mem, 64, 8);
        events.push(out.seal(&mut pkt, 4));
    }
    assert_eq!(
        events,
        vec![
            Ok(None),
            Ok(Some(LifetimeEvent::Soft)),
            Ok(Some(LifetimeEvent::Hard)),
            Err(DropReason::SaExpired)
        ]
    );
}

#[test]
fn replays_are_refused_before_decryption_and_do_not_count() {
    let p = params(0x8000, Direction::In, Aead::Aes128Gcm16, false);
    let esp = seal(&p, &[9; 30], 4);
    let mut sa = InboundSa::new(&p).unwrap();
    open_with(&mut sa, &mut esp.clone()).unwrap();
    assert_eq!(
        open_with(&mut sa, &mut esp.clone()),
        Err(DropReason::ReplayDuplicate)
    );
    assert_eq!(sa.counters.packets, 1);
    assert_eq!(sa.counters.replay_drops, 1);
}

proptest! {
    #[test]
    fn seal_open_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..1500),
                            big in any::<bool>(), esn in any::<bool>(), nh in 1u8..=255) {
        prop_assume!(nh != next_header::NO_NEXT);
        let aead = if big { Aead::Aes256Gcm16 } else { Aead::Aes128Gcm16 };
        let p = params(0x9000, Direction::In, aead, esn);
        let mut esp = seal(&p, &payload, nh);
        prop_assert_eq!(esp.len(), HEADER_LEN + IV_LEN + payload.len() + pad_len(payload.len()) + TRAILER_LEN + ICV_LEN);
        let (got, got_nh) = open(&p, &mut esp).unwrap();
        prop_assert_eq!(got, payload);
        prop_assert_eq!(got_nh, nh);
    }
}
