//! Pipeline tests: a "client" pipeline encapsulates, a NAT rewrites the outer source, the
//! "gateway" pipeline decapsulates — tunnel and transport, IPv4 and IPv6 — plus every hostile
//! case with its drop reason.

use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::buf::{HEADROOM, TAILROOM};
use crate::esp::tests::params;
use crate::sa::{Aead, IpPrefix, NatOa, SaParams};
use crate::sad::SaCommand;
use crate::wire::checksum;
use crate::wire::udp;

const SPI: u32 = 0x1000_0001;
const NAT: &str = "192.0.2.1:40000";

fn sa(direction: Direction, mode: Mode, local: &str, remote: Option<&str>) -> SaParams {
    let mut p = params(SPI, direction, Aead::Aes128Gcm16, false);
    p.mode = mode;
    p.local = local.parse().unwrap();
    p.remote = remote.map(|r| r.parse().unwrap());
    p
}

fn pipeline(sas: &[SaParams]) -> Pipeline {
    let mut p = Pipeline::new(Config::default());
    for s in sas {
        p.sad
            .apply(SaCommand::Install(Box::new(s.clone())))
            .unwrap();
    }
    p
}

/// An IP/UDP packet with a correct UDP checksum.
fn udp_packet(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut mem = vec![0u8; HEADROOM + payload.len()];
    mem[HEADROOM..].copy_from_slice(payload);
    let mut pkt = PacketBuf::new(&mut mem, HEADROOM, payload.len());
    frame::push_udp_ip(&mut pkt, src, dst, 64, 0).unwrap();
    let hlen = if src.is_ipv4() { 20 } else { 40 };
    let mut out = pkt.data().to_vec();
    udp::Datagram::new_unchecked(&mut out[hlen..]).fill_checksum(src.ip(), dst.ip());
    out
}

/// A working buffer holding `packet` with headroom and tailroom.
fn buffer(packet: &[u8]) -> Vec<u8> {
    let mut mem = vec![0u8; HEADROOM + packet.len() + TAILROOM];
    mem[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
    mem
}

fn encap(p: &mut Pipeline, inner: &[u8]) -> (Verdict, Vec<u8>) {
    let mut mem = buffer(inner);
    let mut frames = [PacketBuf::new(&mut mem, HEADROOM, inner.len())];
    let mut v = [Verdict::Keepalive];
    p.encap_batch(&mut frames, &mut v);
    (v[0], frames[0].data().to_vec())
}

fn decap_all(p: &mut Pipeline, packets: &[Vec<u8>]) -> Vec<(Verdict, Vec<u8>)> {
    let mut mems: Vec<Vec<u8>> = packets.iter().map(|x| buffer(x)).collect();
    let mut frames: Vec<PacketBuf<'_>> = mems
        .iter_mut()
        .zip(packets)
        .map(|(m, x)| PacketBuf::new(m, HEADROOM, x.len()))
        .collect();
    let mut v = vec![Verdict::Keepalive; frames.len()];
    p.decap_batch(Ingress::Frames(Link::Ip), &mut frames, &mut v);
    v.into_iter()
        .zip(frames.iter().map(|f| f.data().to_vec()))
        .collect()
}

fn decap(p: &mut Pipeline, packet: &[u8]) -> (Verdict, Vec<u8>) {
    decap_all(p, &[packet.to_vec()]).remove(0)
}

/// Rewrite the outer IPv4 source address and UDP source port, as a NAT does.
fn nat(outer: &mut [u8], to: &str) {
    let to: SocketAddr = to.parse().unwrap();
    let IpAddr::V4(a) = to.ip() else {
        panic!("IPv4 NAT only")
    };
    outer[12..16].copy_from_slice(&a.octets());
    outer[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::finish(checksum::sum(&outer[..20]));
    outer[10..12].copy_from_slice(&c.to_be_bytes());
    outer[20..22].copy_from_slice(&to.port().to_be_bytes());
}

fn client_and_gateway(mode: Mode) -> (Pipeline, Pipeline) {
    let client = pipeline(&[sa(
        Direction::Out,
        mode,
        "10.0.1.2:4500",
        Some("192.0.2.2:4500"),
    )]);
    let gw = pipeline(&[sa(Direction::In, mode, "192.0.2.2:4500", None)]);
    (client, gw)
}

#[test]
fn tunnel_round_trip_through_a_nat_v4_and_v6_inner() {
    for inner in [
        udp_packet("10.99.0.5:1234", "10.9.0.7:53", b"query"),
        udp_packet("[fd00:99::5]:1234", "[fd00:9::7]:53", &[0x5a; 1300]),
    ] {
        let (mut client, mut gw) = client_and_gateway(Mode::Tunnel);
        let (v, mut outer) = encap(&mut client, &inner);
        assert_eq!(
            v,
            Verdict::Wire {
                dst: "192.0.2.2:4500".parse().unwrap()
            }
        );
        let f = frame::parse_udp(&outer, Link::Ip, 4500).unwrap();
        assert_eq!(f.src, "10.0.1.2:4500".parse().unwrap());
        assert_eq!(
            outer[26..28],
            [0, 0],
            "IPv4 UDP checksum is zero (RFC 3948 §2.1)"
        );
        nat(&mut outer, NAT);
        let (v, got) = decap(&mut gw, &outer);
        assert_eq!(v, Verdict::Inner);
        assert_eq!(got, inner);
        assert_eq!(gw.stats.decap_packets, 1);
        // The first authenticated packet taught the gateway the client's NAT mapping.
        let events: Vec<Event> = gw.drain_events().collect();
        assert_eq!(
            events,
            vec![Event::PeerMoved {
                peer: PeerId(0),
                endpoint: NAT.parse().unwrap()
            }]
        );
    }
}

#[test]
fn transport_mode_fixes_inner_checksums_from_nat_oa() {
    // L2TP over IPsec: the client (10.0.1.2 behind the NAT) computed its UDP checksum over
    // its own private address; the gateway sees 192.0.2.1 (RFC 3948 §3.1.2).
    let inner = udp_packet(
        "10.0.1.2:1701",
        "192.0.2.2:1701",
        b"\xc8\x02\x00\x14l2tp-sccrq",
    );
    let (mut client, _) = client_and_gateway(Mode::Transport);
    let mut gw_sa = sa(Direction::In, Mode::Transport, "192.0.2.2:4500", None);
    gw_sa.nat_oa = NatOa {
        remote: Some("10.0.1.2".parse().unwrap()),
        local: None,
    };
    let mut gw = pipeline(&[gw_sa]);
    let (v, mut outer) = encap(&mut client, &inner);
    assert!(matches!(v, Verdict::Wire { .. }));
    assert_eq!(outer[9], 17, "outer protocol is UDP");
    nat(&mut outer, NAT);
    let (v, got) = decap(&mut gw, &outer);
    assert_eq!(v, Verdict::Inner);
    let info = frame::parse_ip(&got).unwrap();
    assert_eq!(info.src, "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!(info.protocol, 17);
    assert_eq!(&got[28..], b"\xc8\x02\x00\x14l2tp-sccrq");
    let d = udp::Datagram::new_checked(&got[20..]).unwrap();
    assert!(
        d.verify_checksum(info.src, info.dst),
        "checksum valid for the NAT address after the fix-up"
    );
    // Without NAT-OA the checksum stays as the client computed it: invalid here.
    let mut plain_gw = pipeline(&[sa(Direction::In, Mode::Transport, "192.0.2.2:4500", None)]);
    let (_, unfixed) = decap(&mut plain_gw, &outer);
    assert!(
        !udp::Datagram::new_checked(&unfixed[20..])
            .unwrap()
            .verify_checksum(info.src, info.dst)
    );
}

#[test]
fn every_flipped_byte_is_dropped_or_harmless() {
    let inner = udp_packet("10.99.0.5:1234", "10.9.0.7:53", b"tamper me");
    let (mut client, _) = client_and_gateway(Mode::Tunnel);
    let (_, outer) = encap(&mut client, &inner);
    for i in 0..outer.len() {
        let mut bad = outer.clone();
        bad[i] ^= 0x10;
        let (_, mut gw) = client_and_gateway(Mode::Tunnel);
        let (v, _) = decap(&mut gw, &bad);
        match i {
            // UDP source port and checksum are not covered by the ICV (a NAT may change the port;
            // the checksum is zero or unverified, RFC 3948 §2.1): the packet is still good.
            20 | 21 | 26 | 27 => assert_eq!(v, Verdict::Inner, "byte {i}"),
            28..=31 => assert!(
                matches!(
                    v,
                    Verdict::Drop(DropReason::UnknownSpi | DropReason::ReservedSpi)
                ),
                "SPI byte {i}: {v:?}"
            ),
            32..=35 => assert!(
                matches!(
                    v,
                    Verdict::Drop(DropReason::AuthFailed | DropReason::ReplayTooOld)
                ),
                "seq byte {i}: {v:?}"
            ),
            36.. => assert_eq!(v, Verdict::Drop(DropReason::AuthFailed), "byte {i}"),
            _ => assert!(matches!(v, Verdict::Drop(_)), "header byte {i}: {v:?}"),
        }
        if let Verdict::Drop(r) = v {
            assert_eq!(gw.stats.drops.get(r), 1, "byte {i}: drop counted");
            assert_eq!(gw.stats.decap_packets, 0);
            assert!(
                gw.sad.peer(PeerId(0)).unwrap().endpoint.is_none(),
                "forgeries never move the peer"
            );
        }
    }
}

#[test]
fn replays_within_and_across_batches() {
    let (mut client, mut gw) = client_and_gateway(Mode::Tunnel);
    let inner = udp_packet("10.99.0.5:1", "10.9.0.7:2", b"x");
    let (_, a) = encap(&mut client, &inner);
    let (_, b) = encap(&mut client, &inner);
    let got = decap_all(&mut gw, &[a.clone(), b.clone(), a.clone()]);
    let verdicts: Vec<Verdict> = got.iter().map(|g| g.0).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Inner,
            Verdict::Inner,
            Verdict::Drop(DropReason::ReplayDuplicate)
        ]
    );
    assert_eq!(
        decap(&mut gw, &b).0,
        Verdict::Drop(DropReason::ReplayDuplicate)
    );
    assert_eq!(gw.stats.drops.get(DropReason::ReplayDuplicate), 2);
    assert_eq!(
        gw.sad.inbound()[0].counters.packets,
        2,
        "replays do not touch lifetime counters"
    );
}

#[test]
fn keepalive_ike_and_unknown_spi() {
    let (_, mut gw) = client_and_gateway(Mode::Tunnel);
    let keepalive = udp_packet(NAT, "192.0.2.2:4500", &[0xff]);
    let mut ike = vec![0u8; 4];
    ike.extend_from_slice(&[0x11; 28]);
    let ike = udp_packet(NAT, "192.0.2.2:4500", &ike);
    let mut esp = 0x2222_2222u32.to_be_bytes().to_vec();
    esp.extend_from_slice(&[0; 40]);
    let unknown = udp_packet(NAT, "192.0.2.2:4500", &esp);
    let other = udp_packet(NAT, "192.0.2.2:500", &[0; 40]);
    let got = decap_all(&mut gw, &[keepalive, ike, unknown, other]);
    assert_eq!(got[0].0, Verdict::Keepalive);
    assert_eq!(
        got[1].0,
        Verdict::Ike {
            src: NAT.parse().unwrap(),
            dst: "192.0.2.2:4500".parse().unwrap()
        }
    );
    assert_eq!(
        got[1].1,
        vec![0x11; 28],
        "IKE message handed over without the non-ESP marker"
    );
    assert_eq!(got[2].0, Verdict::Drop(DropReason::UnknownSpi));
    assert_eq!(got[3].0, Verdict::Drop(DropReason::NotNattPort));
    assert_eq!(
        (gw.stats.keepalives, gw.stats.ike, gw.stats.rx_frames),
        (1, 1, 4)
    );
}

#[test]
fn nat_rebinding_is_followed_by_replies_but_forgeries_are_not() {
    let (mut client, _) = client_and_gateway(Mode::Tunnel);
    let mut gw_out = sa(Direction::Out, Mode::Tunnel, "192.0.2.2:4500", None);
    gw_out.spi = 0x2000_0001;
    let mut gw = pipeline(&[
        sa(Direction::In, Mode::Tunnel, "192.0.2.2:4500", None),
        gw_out,
    ]);
    let reply = udp_packet("10.9.0.7:53", "10.99.0.5:1234", b"answer");
    assert_eq!(
        encap(&mut gw, &reply).0,
        Verdict::Drop(DropReason::PeerUnknown),
        "nothing learned yet"
    );

    let inner = udp_packet("10.99.0.5:1234", "10.9.0.7:53", b"q");
    for (port, forged) in [(40000, false), (41111, true), (40001, false)] {
        let (_, mut outer) = encap(&mut client, &inner);
        nat(&mut outer, &format!("192.0.2.1:{port}"));
        if forged {
            let last = outer.len() - 1;
            outer[last] ^= 1;
        }
        decap(&mut gw, &outer);
    }
    // The reply goes to the newest authenticated mapping, not to the forger's port.
    assert_eq!(
        encap(&mut gw, &reply).0,
        Verdict::Wire {
            dst: "192.0.2.1:40001".parse().unwrap()
        }
    );
    assert_eq!(gw.stats.peer_moves, 2);
    assert_eq!(gw.stats.drops.get(DropReason::AuthFailed), 1);
}

#[test]
fn inner_packets_must_match_the_selectors() {
    let (mut client, _) = client_and_gateway(Mode::Tunnel);
    let mut s = sa(Direction::In, Mode::Tunnel, "192.0.2.2:4500", None);
    s.selectors.remote = vec!["10.99.0.0/24".parse::<IpPrefix>().unwrap()];
    let mut gw = pipeline(&[s]);
    let (_, ok) = encap(&mut client, &udp_packet("10.99.0.5:1", "10.9.0.7:2", b"x"));
    let (_, spoofed) = encap(&mut client, &udp_packet("10.88.0.5:1", "10.9.0.7:2", b"x"));
    assert_eq!(decap(&mut gw, &ok).0, Verdict::Inner);
    assert_eq!(
        decap(&mut gw, &spoofed).0,
        Verdict::Drop(DropReason::SelectorMismatch)
    );
}

#[test]
fn outbound_lookup_prefers_host_then_newest_prefix() {
    let mut broad = sa(
        Direction::Out,
        Mode::Tunnel,
        "192.0.2.2:4500",
        Some("192.0.2.10:4500"),
    );
    broad.selectors.remote = vec!["10.99.0.0/16".parse().unwrap()];
    let mut host = sa(
        Direction::Out,
        Mode::Tunnel,
        "192.0.2.2:4500",
        Some("192.0.2.20:4500"),
    );
    host.spi = 0x3000_0000;
    host.peer = PeerId(1);
    host.selectors.remote = vec!["10.99.0.7".parse().unwrap()];
    let mut p = pipeline(&[broad, host]);
    let to = |p: &mut Pipeline, dst: &str| encap(p, &udp_packet("10.9.0.1:1", dst, b"x")).0;
    assert_eq!(
        to(&mut p, "10.99.0.7:9"),
        Verdict::Wire {
            dst: "192.0.2.20:4500".parse().unwrap()
        }
    );
    assert_eq!(
        to(&mut p, "10.99.3.3:9"),
        Verdict::Wire {
            dst: "192.0.2.10:4500".parse().unwrap()
        }
    );
    assert_eq!(
        to(&mut p, "10.100.0.1:9"),
        Verdict::Drop(DropReason::NoOutboundSa)
    );
    p.sad
        .apply(SaCommand::Remove {
            spi: 0x3000_0000,
            direction: Direction::Out,
        })
        .unwrap();
    assert_eq!(
        to(&mut p, "10.99.0.7:9"),
        Verdict::Wire {
            dst: "192.0.2.10:4500".parse().unwrap()
        }
    );
}

#[test]
fn oversized_and_garbage_outbound_packets_are_dropped() {
    let (mut client, _) = client_and_gateway(Mode::Tunnel);
    let big = udp_packet("10.99.0.5:1", "10.9.0.7:2", &[0; 1460]);
    assert_eq!(
        encap(&mut client, &big).0,
        Verdict::Drop(DropReason::TooBig)
    );
    assert_eq!(
        encap(&mut client, &[0x45, 0, 0]).0,
        Verdict::Drop(DropReason::BadOutboundPacket)
    );
    assert_eq!(client.stats.drops.total(), 2);
}

#[test]
fn batches_larger_than_max_batch_are_chunked() {
    let (mut client, mut gw) = client_and_gateway(Mode::Tunnel);
    let inner = udp_packet("10.99.0.5:1", "10.9.0.7:2", b"bulk");
    let packets: Vec<Vec<u8>> = (0..150).map(|_| encap(&mut client, &inner).1).collect();
    let got = decap_all(&mut gw, &packets);
    assert!(got.iter().all(|(v, p)| *v == Verdict::Inner && *p == inner));
    assert_eq!(gw.stats.decap_packets, 150);
}

#[test]
fn sas_of_other_workers_are_handed_off_untouched() {
    let inner = udp_packet("10.99.0.5:1234", "10.9.0.7:53", b"query");
    let owner = Shard { index: 0, count: 2 }.owner(SPI);
    let other = Shard {
        index: 1 - owner,
        count: 2,
    };
    let mine = Shard {
        index: owner,
        count: 2,
    };
    let (mut client, mut gw) = client_and_gateway(Mode::Tunnel);
    let (_, outer) = encap(&mut client, &inner);

    // A worker that does not own the inbound SA passes the frame on, unchanged, and its copy
    // of the SA's replay window stays untouched.
    gw.set_shard(other);
    let (v, got) = decap(&mut gw, &outer);
    assert_eq!(
        v,
        Verdict::Handoff {
            worker: owner,
            origin: crate::handoff::Origin::Frame(Link::Ip)
        }
    );
    assert_eq!(got, outer);
    assert_eq!(gw.sad.inbound()[0].replay().highest(), 0);
    assert_eq!(gw.stats.decap_packets, 0);
    assert!(gw.owned_snapshot().is_empty(), "reported by its owner only");

    // The owner decapsulates it, once: a copy that arrives again (on any queue) is a replay.
    gw.set_shard(mine);
    assert_eq!(decap(&mut gw, &outer).0, Verdict::Inner);
    assert_eq!(
        decap(&mut gw, &outer).0,
        Verdict::Drop(DropReason::ReplayDuplicate)
    );
    assert_eq!(gw.owned_snapshot().len(), 1);

    // Outbound likewise: only the owner takes sequence numbers.
    client.set_shard(other);
    let (v, got) = encap(&mut client, &inner);
    assert_eq!(
        v,
        Verdict::Handoff {
            worker: owner,
            origin: crate::handoff::Origin::Inner
        }
    );
    assert_eq!(got, inner);
    assert_eq!(client.sad.outbound().next().map(|sa| sa.seq()), Some(1));
    client.set_shard(mine);
    assert!(matches!(encap(&mut client, &inner).0, Verdict::Wire { .. }));
    assert_eq!(client.sad.outbound().next().map(|sa| sa.seq()), Some(2));
}

#[test]
fn shard_owner_is_spi_modulo_workers() {
    let s = Shard { index: 1, count: 3 };
    assert_eq!(s.owner(0x100), 0x100 % 3);
    assert_eq!(
        s.other_owner(0x101),
        (0x101 % 3 != 1).then_some((0x101 % 3) as u16)
    );
    assert_eq!(Shard::SOLE.other_owner(0xdead_beef), None);
    for spi in [256u32, 257, 258, u32::MAX] {
        let owners = (0..3)
            .filter(|&i| Shard { index: i, count: 3 }.other_owner(spi).is_none())
            .count();
        assert_eq!(owners, 1, "exactly one worker owns spi {spi:#x}");
    }
}
