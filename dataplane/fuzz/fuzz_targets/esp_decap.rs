//! ESP decapsulation through the whole inbound pipeline. The fuzzer chooses the *plaintext*
//! (payload, padding, pad length, next header), which is then sealed with the SA's real key, so
//! every input passes the ICV and exercises trailer parsing, inner-packet checks, selectors and
//! the transport-mode header rebuild. Control bits also pick tunnel/transport, ESN, IPv4/IPv6
//! outer, Ethernet/IP link, and "forged" (raw bytes, no encryption: the ICV path). Each frame is
//! fed twice in one batch, so the in-batch replay path runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpsec_dataplane::batch::{Config, Ingress, Pipeline, Verdict};
use xdpsec_dataplane::buf::{HEADROOM, PacketBuf};
use xdpsec_dataplane::esp::cipher::GcmKey;
use xdpsec_dataplane::sa::{Aead, Direction, KeyMaterial, Lifetime, Mode, NatOa, PeerId, SaParams, Selectors};
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::wire::MacAddr;
use xdpsec_dataplane::wire::frame::{self, Link};

const SPI: u32 = 0x1000_0001;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, plain)) = data.split_first() else { return };
    let mode = if ctl & 1 == 0 { Mode::Tunnel } else { Mode::Transport };
    let esn = ctl & 2 != 0;
    let v6 = ctl & 4 != 0;
    let link = if ctl & 8 != 0 { Link::Ethernet } else { Link::Ip };
    let forged = ctl & 16 != 0;
    let (local, remote) = if v6 { ("[2001:db8::2]:4500", "[2001:db8::1]:4500") } else { ("192.0.2.2:4500", "192.0.2.1:4500") };
    let Ok(key) = KeyMaterial::new(Aead::Aes128Gcm16, vec![0x42; 20]) else { return };
    let params = SaParams {
        spi: SPI,
        direction: Direction::In,
        mode,
        aead: Aead::Aes128Gcm16,
        key: key.clone(),
        local: local.parse().unwrap_or_else(|_| unreachable!()),
        remote: None,
        peer: PeerId(0),
        esn,
        replay_window: 64,
        selectors: Selectors { local: Vec::new(), remote: if ctl & 32 != 0 { vec!["10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!())] } else { Vec::new() } },
        nat_oa: if mode == Mode::Transport && ctl & 64 != 0 {
            NatOa { remote: Some("10.0.1.2".parse().unwrap_or_else(|_| unreachable!())), local: None }
        } else {
            NatOa::default()
        },
        lifetime: Lifetime::default(),
    };
    let mut pipeline = Pipeline::new(Config::default());
    if pipeline.sad.apply(SaCommand::Install(Box::new(params))).is_err() {
        return;
    }

    // ESP: SPI ‖ seq 1 ‖ IV ‖ ciphertext ‖ ICV.
    let mut esp = Vec::with_capacity(plain.len() + 32);
    esp.extend_from_slice(&SPI.to_be_bytes());
    esp.extend_from_slice(&1u32.to_be_bytes());
    let iv = [7u8; 8];
    esp.extend_from_slice(&iv);
    let body_at = esp.len();
    esp.extend_from_slice(plain);
    if !forged {
        let mut aad = SPI.to_be_bytes().to_vec();
        if esn {
            aad.extend_from_slice(&0u32.to_be_bytes());
        }
        aad.extend_from_slice(&1u32.to_be_bytes());
        let icv = GcmKey::new(Aead::Aes128Gcm16, &key).seal(&iv, &aad, &mut esp[body_at..]);
        esp.extend_from_slice(&icv);
    }

    // Outer UDP ‖ IP (‖ Ethernet), in a buffer with headroom like a received frame.
    let mut mem = vec![0u8; HEADROOM + esp.len()];
    mem[HEADROOM..].copy_from_slice(&esp);
    let mut pkt = PacketBuf::new(&mut mem, HEADROOM, esp.len());
    let (src, dst) = (remote.parse().unwrap_or_else(|_| unreachable!()), local.parse().unwrap_or_else(|_| unreachable!()));
    if frame::push_udp_ip(&mut pkt, src, dst, 64, 0).is_err() {
        return;
    }
    if link == Link::Ethernet && frame::push_ethernet(&mut pkt, MacAddr([2; 6]), MacAddr([4; 6])).is_err() {
        return;
    }
    let frame_bytes = pkt.data().to_vec();
    let mut a = vec![0u8; HEADROOM + frame_bytes.len()];
    let mut b = a.clone();
    a[HEADROOM..].copy_from_slice(&frame_bytes);
    b[HEADROOM..].copy_from_slice(&frame_bytes);
    let mut frames = [PacketBuf::new(&mut a, HEADROOM, frame_bytes.len()), PacketBuf::new(&mut b, HEADROOM, frame_bytes.len())];
    let mut verdicts = [Verdict::Keepalive; 2];
    pipeline.decap_batch(Ingress::Frames(link), &mut frames, &mut verdicts);
    // The second copy is always a replay (or fails like the first).
    assert!(!matches!(verdicts[1], Verdict::Inner));
    if let Verdict::Inner = verdicts[0] {
        assert!(frame::parse_ip(frames[0].data()).is_ok() || mode == Mode::Transport);
    }
});
