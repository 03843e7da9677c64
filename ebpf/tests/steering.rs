//! End-to-end tests of the XDP steering program and the AF_XDP port, in network namespaces.
//!
//! Each test builds its own pair of namespaces `xh4-<pid>-<test>-{a,b}` joined by a veth pair
//! with 2 RX/TX queues (a: 10.251.0.1 / fd00:251::1, b: 10.251.0.2 / fd00:251::2), attaches
//! `xdp_natt` on a's end, and removes both namespaces when it ends, pass or fail (a Drop
//! guard). They need root (CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN for setns) and FAIL —
//! never skip — without it: `sudo -E cargo test -p xdpsec-ebpf` (CI runs as root).
//!
//! Namespaces are entered by a dedicated thread calling `setns` on `/var/run/netns/NAME`;
//! sockets keep the namespace they were created in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use xdpsec_dataplane::io::afxdp::{
    MAX_PACKET, RxBatch, TxRefused, XDP_HEADROOM, XskConfig, XskPort, XskStats,
};
use xdpsec_ebpf::{AttachMode, ModePreference, NattSteering, XdpCounters};

const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x51, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x51, 0x02];
const IP4_A: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 1);
const IP4_B: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 2);

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_lenient(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).output();
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests create network namespaces and attach XDP programs: run them as root \
         (sudo -E cargo test -p xdpsec-ebpf); they do not skip"
    );
}

/// Two namespaces and a veth pair between them; deleted on drop.
struct Topology {
    a: String,
    b: String,
    dev_a: String,
    dev_b: String,
}

impl Topology {
    fn new(tag: &str) -> Self {
        require_root();
        let pid = std::process::id();
        let t = Topology {
            a: format!("xh4-{pid}-{tag}-a"),
            b: format!("xh4-{pid}-{tag}-b"),
            dev_a: format!("xh4{tag}a"),
            dev_b: format!("xh4{tag}b"),
        };
        // Leftovers of an earlier run with the same pid: ignore errors.
        run_lenient(&["ip", "netns", "del", &t.a]);
        run_lenient(&["ip", "netns", "del", &t.b]);
        run(&["ip", "netns", "add", &t.a]);
        run(&["ip", "netns", "add", &t.b]);
        let (a, b, da, db) = (&t.a, &t.b, &t.dev_a, &t.dev_b);
        let (ma, mb) = (mac_str(&MAC_A), mac_str(&MAC_B));
        #[rustfmt::skip]
        run(&["ip", "-n", a, "link", "add", da, "address", &ma, "numrxqueues", "2", "numtxqueues", "2",
              "type", "veth", "peer", "name", db, "address", &mb, "numrxqueues", "2", "numtxqueues", "2",
              "netns", b]);
        // veth starts with one real queue pair on some kernels: ask for two (harmless if set).
        run_lenient(&[
            "ip", "netns", "exec", a, "ethtool", "-L", da, "rx", "2", "tx", "2",
        ]);
        run_lenient(&[
            "ip", "netns", "exec", b, "ethtool", "-L", db, "rx", "2", "tx", "2",
        ]);
        // NOTES.md veth trap: without this, UDP checksums leave the sender partial.
        run(&["ip", "netns", "exec", a, "ethtool", "-K", da, "tx", "off"]);
        run(&["ip", "netns", "exec", b, "ethtool", "-K", db, "tx", "off"]);
        for (ns, dev, v4, v6) in [
            (a, da, "10.251.0.1/24", "fd00:251::1/64"),
            (b, db, "10.251.0.2/24", "fd00:251::2/64"),
        ] {
            run(&["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
            run(&["ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        // Static neighbours: no ARP/ND races with the first datagrams.
        #[rustfmt::skip]
        let neigh = [
            (b, db, "10.251.0.1", &ma), (b, db, "fd00:251::1", &ma),
            (a, da, "10.251.0.2", &mb), (a, da, "fd00:251::2", &mb),
        ];
        for (ns, dev, ip, mac) in neigh {
            #[rustfmt::skip]
            run(&["ip", "-n", ns, "neigh", "replace", ip, "lladdr", mac, "dev", dev, "nud", "permanent"]);
        }
        t
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        run_lenient(&["ip", "netns", "del", &self.a]);
        run_lenient(&["ip", "netns", "del", &self.b]);
    }
}

/// Run `f` on a fresh thread inside namespace `ns`; panics propagate.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    let handle = std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: a valid namespace fd; setns affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
        f()
    });
    match handle.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn small_cfg() -> XskConfig {
    XskConfig {
        frame_count: 512,
        ring_size: 256,
        batch: 64,
        poll_timeout_ms: 10,
        ..XskConfig::default()
    }
}

/// `(family, dst port, payload)` of an Ethernet/IP/UDP frame.
fn parse_udp(frame: &[u8]) -> Option<(u8, u16, Vec<u8>)> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let (family, udp) = match ethertype {
        0x0800 => {
            let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
            if *frame.get(23)? != 17 {
                return None;
            }
            (4, 14 + ihl)
        }
        0x86dd => {
            if *frame.get(20)? != 17 {
                return None;
            }
            (6, 54)
        }
        _ => return None,
    };
    let h = frame.get(udp..udp + 8)?;
    let dport = u16::from_be_bytes([h[2], h[3]]);
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let payload = frame.get(udp + 8..udp + len)?.to_vec();
    Some((family, dport, payload))
}

/// Drain every port until `want` frames arrived or `timeout` passed.
fn collect(ports: &mut [XskPort], want: usize, timeout: Duration) -> Vec<(u32, Vec<u8>)> {
    let deadline = Instant::now() + timeout;
    let mut batches: Vec<RxBatch> = ports.iter().map(|p| p.new_batch()).collect();
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        for (port, batch) in ports.iter_mut().zip(batches.iter_mut()) {
            port.recv(batch).expect("recv");
            let q = port.queue();
            port.process(batch, |frames| {
                for f in frames.iter() {
                    got.push((q, f.data().to_vec()));
                }
            });
        }
    }
    for (port, batch) in ports.iter_mut().zip(batches.iter_mut()) {
        for i in 0..batch.len() {
            port.release(batch, i);
        }
    }
    got
}

fn recv_all(sock: &UdpSocket, want: usize) -> Vec<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < want {
        match sock.recv(&mut buf) {
            Ok(n) => out.push(buf[..n].to_vec()),
            Err(_) => break,
        }
    }
    out
}

fn nothing_waiting(sock: &UdpSocket) -> bool {
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    matches!(sock.recv(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

const N: usize = 8;

#[test]
fn steers_4500_to_afxdp_and_everything_else_to_the_kernel() {
    let topo = Topology::new("s");
    let (dev, b) = (topo.dev_a.clone(), topo.b.clone());
    let report = in_netns(&topo.a, move || {
        let mut steering = NattSteering::attach(&dev, 4500, ModePreference::Auto)
            .unwrap_or_else(|e| panic!("attach failed: {e}"));
        let mode = steering.mode();
        eprintln!("xdp_natt attached to {dev} in {mode} mode");
        assert!(matches!(mode, AttachMode::Driver | AttachMode::Skb));
        let mut ports: Vec<XskPort> = (0..2)
            .map(|q| {
                let p = XskPort::open(&dev, q, &small_cfg())
                    .unwrap_or_else(|e| panic!("open queue {q}: {e}"));
                steering.register_socket(q, p.fd()).expect("register");
                eprintln!("queue {q}: AF_XDP bound in {} mode", p.bind_mode());
                p
            })
            .collect();
        // Kernel sockets in the XDP namespace (dual-stack).
        let k4500 = UdpSocket::bind("[::]:4500").unwrap();
        let k500 = UdpSocket::bind("[::]:500").unwrap();
        let k5555 = UdpSocket::bind("[::]:5555").unwrap();
        let before = steering.counters().unwrap();

        // Peer: datagrams from several source ports (spreading them over both queues).
        in_netns(&b, || {
            let s4 = UdpSocket::bind("0.0.0.0:0").unwrap();
            let s6 = UdpSocket::bind("[::]:0").unwrap();
            for i in 0..N {
                let s4b = UdpSocket::bind("0.0.0.0:0").unwrap();
                s4b.send_to(format!("v4-4500-{i}").as_bytes(), "10.251.0.1:4500")
                    .unwrap();
                s6.send_to(format!("v6-4500-{i}").as_bytes(), "[fd00:251::1]:4500")
                    .unwrap();
                s4.send_to(format!("v4-500-{i}").as_bytes(), "10.251.0.1:500")
                    .unwrap();
                s6.send_to(format!("v6-5555-{i}").as_bytes(), "[fd00:251::1]:5555")
                    .unwrap();
            }
            // An IPv4 fragmented datagram to 4500: left to the kernel (reassembled there).
            s4.send_to(&[0xab; 3000], "10.251.0.1:4500").unwrap();
        });

        let frames = collect(&mut ports, 2 * N, Duration::from_secs(3));
        let mut payloads: Vec<String> = frames
            .iter()
            .map(|(_, f)| {
                let (family, dport, payload) = parse_udp(f).expect("UDP frame on AF_XDP");
                assert_eq!(dport, 4500);
                let s = String::from_utf8(payload).expect("payload intact");
                assert!(s.starts_with(&format!("v{family}-4500-")), "{s}");
                s
            })
            .collect();
        payloads.sort();
        let mut expected: Vec<String> = (0..N)
            .flat_map(|i| [format!("v4-4500-{i}"), format!("v6-4500-{i}")])
            .collect();
        expected.sort();
        assert_eq!(payloads, expected, "every 4500 datagram on AF_XDP, intact");
        let per_queue = [0u32, 1].map(|q| frames.iter().filter(|(fq, _)| *fq == q).count());
        eprintln!("AF_XDP frames per queue: {per_queue:?}");

        let mut got500: Vec<_> = recv_all(&k500, N)
            .into_iter()
            .map(|p| String::from_utf8(p).unwrap())
            .collect();
        got500.sort();
        let mut want500: Vec<_> = (0..N).map(|i| format!("v4-500-{i}")).collect();
        want500.sort();
        assert_eq!(got500, want500, "UDP 500 reaches the kernel");
        assert_eq!(recv_all(&k5555, N).len(), N, "other ports reach the kernel");
        let frag = recv_all(&k4500, 1);
        assert_eq!(
            frag.len(),
            1,
            "the fragmented 4500 datagram is reassembled by the kernel"
        );
        assert_eq!(frag[0].len(), 3000);
        assert!(
            nothing_waiting(&k4500),
            "no unfragmented 4500 datagram leaks to the kernel"
        );

        let c = steering.counters().unwrap().since(&before);
        let stats: Vec<XskStats> = ports.iter().map(|p| p.stats().unwrap()).collect();
        steering.detach().expect("detach");
        (mode, c, stats)
    });
    let (mode, c, stats): (AttachMode, XdpCounters, Vec<XskStats>) = report;
    eprintln!("mode {mode}, counters {c:?}");
    assert_eq!(c.redirected, 2 * N as u64);
    assert_eq!(c.passed_other_port, 2 * N as u64);
    assert!(
        c.passed_fragment >= 3,
        "3000 bytes over MTU 1500 make 3 fragments: {c:?}"
    );
    assert_eq!(c.malformed, 0);
    assert!(c.seen >= c.redirected + c.passed_other_port + c.passed_fragment);
    let rx: u64 = stats.iter().map(|s| s.rx).sum();
    assert_eq!(rx, 2 * N as u64);
    assert!(stats.iter().all(|s| s.rx_dropped == 0 && s.rx_invalid == 0));
}

fn csum(data: &[u8], init: u32) -> u16 {
    let mut sum = init;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet/IPv4/UDP a→b with correct IP and UDP checksums.
fn build_v4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&IP4_A.octets());
    ip[16..20].copy_from_slice(&IP4_B.octets());
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let ulen = (8 + payload.len()) as u16;
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&ulen.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut pseudo = 0u32;
    for w in [IP4_A.octets(), IP4_B.octets()] {
        pseudo += u32::from(u16::from_be_bytes([w[0], w[1]]));
        pseudo += u32::from(u16::from_be_bytes([w[2], w[3]]));
    }
    pseudo += 17 + u32::from(ulen);
    let c = match csum(&udp, pseudo) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&udp);
    f
}

#[test]
fn afxdp_transmits_to_a_kernel_socket_in_the_peer() {
    let topo = Topology::new("t");
    let (dev, b) = (topo.dev_a.clone(), topo.b.clone());
    // The peer's receiving socket, created in b.
    let sink = in_netns(&b, || UdpSocket::bind("10.251.0.2:6000").unwrap());
    let peer_b = b.clone();
    in_netns(&topo.a, move || {
        let mut steering = NattSteering::attach(&dev, 4500, ModePreference::Auto).expect("attach");
        let mut ports: Vec<XskPort> = (0..2)
            .map(|q| {
                let p = XskPort::open(&dev, q, &small_cfg()).expect("open");
                steering.register_socket(q, p.fd()).expect("register");
                p
            })
            .collect();

        // 1. Locally originated frames, one written at the canonical offset and one written
        //    lower in the headroom (the port moves it before sending).
        for i in 0..2 {
            let port = &mut ports[0];
            let mut frame = port.alloc_tx().expect("free frame");
            let bytes = build_v4_udp(4500, 6000, format!("local-{i}").as_bytes());
            let (head, len) = {
                let mut buf = port.tx_buf(&mut frame);
                assert_eq!(buf.head(), XDP_HEADROOM);
                assert!(buf.headroom() >= 128);
                let room = if i == 0 {
                    buf.push_back(bytes.len()) // at the canonical offset: sent without a copy
                } else {
                    buf.push_front(bytes.len()) // in the headroom: moved before sending
                };
                room.expect("room").copy_from_slice(&bytes);
                (buf.head(), buf.len())
            };
            port.send(frame, head, len).expect("send");
            port.flush().expect("flush");
        }

        // Refusals release the frame and say why.
        let port = &mut ports[0];
        let frame = port.alloc_tx().expect("free frame");
        assert_eq!(port.send(frame, XDP_HEADROOM, 0), Err(TxRefused::BadLength));
        let frame = port.alloc_tx().expect("free frame");
        assert_eq!(
            port.send(frame, XDP_HEADROOM, MAX_PACKET + 1),
            Err(TxRefused::BadLength)
        );
        let frame = port.alloc_tx().expect("free frame");
        assert_eq!(port.send(frame, 2000, 100), Err(TxRefused::BadLength));
        assert_eq!(port.stats().unwrap().tx_refused, 3);

        // 2. Frames received from b on 4500, reflected in place (addresses and ports
        //    swapped: both checksums stay valid) back to b's socket on 6000.
        in_netns(&peer_b, || {
            // From an ephemeral port: the reflection retargets port 6000 (the sink).
            let s = UdpSocket::bind("10.251.0.2:0").unwrap();
            for i in 0..3 {
                s.send_to(format!("reflect-{i}").as_bytes(), "10.251.0.1:4500")
                    .unwrap();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut reflected = 0;
        let mut batches: Vec<RxBatch> = ports.iter().map(|p| p.new_batch()).collect();
        while reflected < 3 && Instant::now() < deadline {
            for (port, batch) in ports.iter_mut().zip(batches.iter_mut()) {
                port.recv(batch).expect("recv");
                port.process(batch, |frames| {
                    for f in frames.iter_mut() {
                        reflect_to_6000(f.data_mut());
                    }
                });
                for i in 0..batch.len() {
                    port.tx_push(batch, i).expect("tx_push");
                    reflected += 1;
                    // A frame is sent once: a second push is refused.
                    assert_eq!(port.tx_push(batch, i), Err(TxRefused::NoFrame));
                }
                port.flush().expect("flush");
            }
        }
        assert_eq!(reflected, 3, "3 frames received for reflection");
        // Let the completions come back, then check the books.
        std::thread::sleep(Duration::from_millis(100));
        for port in ports.iter_mut() {
            port.flush().expect("flush");
            let s = port.stats().expect("stats");
            eprintln!("queue {}: {s:?}", port.queue());
            assert_eq!(s.tx_invalid, 0);
            assert_eq!(s.tx, s.tx_completed, "every sent frame completed");
        }
        let total_tx: u64 = ports.iter().map(|p| p.stats().unwrap().tx).sum();
        assert_eq!(total_tx, 5);
        steering.detach().expect("detach");
    });
    let mut payloads: Vec<String> = recv_all(&sink, 5)
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    payloads.sort();
    assert_eq!(
        payloads,
        ["local-0", "local-1", "reflect-0", "reflect-1", "reflect-2"],
        "kernel socket in the peer namespace got every AF_XDP frame (checksums valid)"
    );
}

/// Swap MACs, IPv4 addresses and UDP ports of a frame in place, then point the destination
/// port at 6000, patching the UDP checksum incrementally (RFC 1624).
fn reflect_to_6000(f: &mut [u8]) {
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    let (dst, src) = f.split_at_mut(6);
    dst.swap_with_slice(&mut src[..6]);
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let (a, b) = f[26..34].split_at_mut(4);
    a.swap_with_slice(b);
    let u = 14 + ihl;
    let (sp, dp) = f[u..u + 4].split_at_mut(2);
    sp.swap_with_slice(dp);
    // New destination port 6000 (was the peer's ephemeral source port).
    let old = u16::from_be_bytes([f[u + 2], f[u + 3]]);
    f[u + 2..u + 4].copy_from_slice(&6000u16.to_be_bytes());
    let c = u16::from_be_bytes([f[u + 6], f[u + 7]]);
    if c != 0 {
        // HC' = ~(~HC + ~m + m')
        let mut sum = u32::from(!c) + u32::from(!old) + 6000;
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let new = !(sum as u16);
        f[u + 6..u + 8].copy_from_slice(&(if new == 0 { 0xffff } else { new }).to_be_bytes());
    }
}

#[test]
fn attach_to_a_missing_interface_names_it() {
    require_root();
    let e = NattSteering::attach("xh4-missing0", 4500, ModePreference::Skb).expect_err("must fail");
    assert!(e.to_string().contains("xh4-missing0"), "{e}");
}

/// Send raw Ethernet frames out of `dev` (AF_PACKET), from the calling thread's namespace.
fn send_raw(dev: &str, frames: &[Vec<u8>]) {
    let name = std::ffi::CString::new(dev).unwrap();
    // SAFETY: plain libc calls with valid arguments; the fd is closed below.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr());
        assert_ne!(ifindex, 0, "no {dev}");
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&MAC_A);
        for f in frames {
            let n = libc::sendto(
                fd,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(
                n,
                f.len() as isize,
                "sendto: {}",
                io::Error::last_os_error()
            );
        }
        libc::close(fd);
    }
}

fn eth(ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// IPv4 header (checksum left 0: XDP does not check it) with `ihl` words, then `rest`.
fn ipv4(ihl: u8, proto: u8, frag: u16, rest: &[u8]) -> Vec<u8> {
    let hlen = usize::from(ihl.max(5)) * 4;
    let mut h = vec![0u8; hlen];
    h[0] = 0x40 | (ihl & 0x0f);
    h[2..4].copy_from_slice(&((hlen + rest.len()) as u16).to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&IP4_B.octets());
    h[16..20].copy_from_slice(&IP4_A.octets());
    for b in h.iter_mut().skip(20) {
        *b = 1; // NOP options
    }
    h.extend_from_slice(rest);
    h
}

fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&40000u16.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]); // no checksum (IPv4 allows it)
    u.extend_from_slice(payload);
    u
}

#[test]
fn parses_unusual_and_hostile_frames() {
    let topo = Topology::new("h");
    let (dev, b, dev_b) = (topo.dev_a.clone(), topo.b.clone(), topo.dev_b.clone());
    in_netns(&topo.a, move || {
        let mut steering = NattSteering::attach(&dev, 4500, ModePreference::Auto).expect("attach");
        let mut ports: Vec<XskPort> = (0..2)
            .map(|q| {
                let p = XskPort::open(&dev, q, &small_cfg()).expect("open");
                steering.register_socket(q, p.fd()).expect("register");
                p
            })
            .collect();
        let before = steering.counters().unwrap();
        let mut ipv6_hbh = vec![0u8; 40];
        ipv6_hbh[0] = 0x60;
        ipv6_hbh[4..6].copy_from_slice(&(8u16 + 16).to_be_bytes());
        ipv6_hbh[6] = 0; // hop-by-hop options header first: not walked
        ipv6_hbh[7] = 64;
        ipv6_hbh.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        ipv6_hbh.extend_from_slice(&udp(4500, b"v6-hbh"));
        let frames = vec![
            // Redirected: IPv4 with options (IHL 6), UDP to 4500.
            eth(0x0800, &ipv4(6, 17, 0, &udp(4500, b"ihl-6"))),
            // Not IP.
            eth(0x88b5, &[0u8; 46]),
            // Not UDP: TCP, and IPv6 with an extension header in front of UDP.
            eth(0x0800, &ipv4(5, 6, 0, &[0u8; 20])),
            eth(0x86dd, &ipv6_hbh),
            // Fragments: non-first (offset 100 × 8), and first with MF.
            eth(0x0800, &ipv4(5, 17, 100, &udp(4500, b"frag"))),
            eth(0x0800, &ipv4(5, 17, 0x2000, &udp(4500, b"frag"))),
            // Malformed: truncated IPv4 header, version 5, IHL 4, IHL 15 past the end,
            // truncated UDP header, truncated IPv6 header.
            eth(0x0800, &[0x45, 0, 0, 20, 0, 0]),
            eth(0x0800, &{
                let mut h = ipv4(5, 17, 0, &udp(4500, b"v5"));
                h[0] = 0x55;
                h
            }),
            eth(0x0800, &{
                let mut h = ipv4(5, 17, 0, &udp(4500, b"ihl4"));
                h[0] = 0x44;
                h
            }),
            eth(0x0800, &{
                let mut h = ipv4(5, 17, 0, &udp(4500, b"x"));
                h[0] = 0x4f;
                h
            }),
            eth(0x0800, &ipv4(5, 17, 0, &[0x9c, 0x40, 0x11, 0x94])),
            eth(0x86dd, &[0x60, 0, 0, 0, 0, 8, 17, 64]),
        ];
        in_netns(&b, move || send_raw(&dev_b, &frames));

        let got = collect(&mut ports, 1, Duration::from_secs(2));
        assert_eq!(got.len(), 1, "only the IHL-6 datagram is redirected");
        let (family, dport, payload) = parse_udp(&got[0].1).expect("UDP");
        assert_eq!(
            (family, dport, payload.as_slice()),
            (4, 4500, &b"ihl-6"[..])
        );
        // Nothing else shows up late.
        assert!(collect(&mut ports, 1, Duration::from_millis(200)).is_empty());

        let c = steering.counters().unwrap().since(&before);
        eprintln!("counters {c:?}");
        assert_eq!(c.redirected, 1);
        assert_eq!(c.passed_not_ip, 1);
        // IPv6 autoconfiguration (MLD, RS) may add to "not UDP" at any time.
        assert!(c.passed_not_udp >= 2, "{c:?}");
        assert_eq!(c.passed_fragment, 2);
        assert_eq!(c.malformed, 6);
        assert_eq!(c.passed_other_port, 0);
    });
}

#[test]
fn native_mode_mtu_limit_is_explained_and_auto_falls_back_to_skb() {
    let topo = Topology::new("m");
    let dev = topo.dev_a.clone();
    run(&["ip", "-n", &topo.a, "link", "set", &dev, "mtu", "9000"]);
    run(&[
        "ip",
        "-n",
        &topo.b,
        "link",
        "set",
        &topo.dev_b,
        "mtu",
        "9000",
    ]);
    in_netns(&topo.a, move || {
        let e = NattSteering::attach(&dev, 4500, ModePreference::Driver)
            .expect_err("native XDP must refuse MTU 9000 on veth");
        let msg = e.to_string();
        eprintln!("{msg}");
        assert!(
            msg.contains(&dev) && msg.contains("9000") && msg.contains("skb mode"),
            "{msg}"
        );
        let s = NattSteering::attach(&dev, 4500, ModePreference::Auto).expect("auto");
        assert_eq!(s.mode(), AttachMode::Skb);
        s.detach().expect("detach");
    });
}

#[test]
fn skb_mode_steers_too() {
    let topo = Topology::new("k");
    let (dev, b) = (topo.dev_a.clone(), topo.b.clone());
    in_netns(&topo.a, move || {
        let mut steering = NattSteering::attach(&dev, 4500, ModePreference::Skb).expect("attach");
        assert_eq!(steering.mode(), AttachMode::Skb);
        let mut ports: Vec<XskPort> = (0..2)
            .map(|q| {
                let p = XskPort::open(&dev, q, &small_cfg()).expect("open");
                steering.register_socket(q, p.fd()).expect("register");
                p
            })
            .collect();
        let k500 = UdpSocket::bind("[::]:500").unwrap();
        in_netns(&b, || {
            let s = UdpSocket::bind("[::]:0").unwrap();
            for i in 0..N {
                s.send_to(format!("skb-{i}").as_bytes(), "10.251.0.1:4500")
                    .unwrap();
                s.send_to(format!("skb-{i}").as_bytes(), "[fd00:251::1]:4500")
                    .unwrap();
                s.send_to(b"ike", "10.251.0.1:500").unwrap();
            }
        });
        let got = collect(&mut ports, 2 * N, Duration::from_secs(3));
        assert_eq!(got.len(), 2 * N);
        assert_eq!(recv_all(&k500, N).len(), N);
        let c = steering.counters().unwrap();
        assert_eq!(c.redirected, 2 * N as u64);
    });
}

#[test]
fn afxdp_wan_port_feeds_the_pipeline_and_frames_its_output() {
    use xdpsec_dataplane::batch::{Config, Pipeline, Verdict};
    use xdpsec_dataplane::io::WanPort;
    use xdpsec_dataplane::io::afxdp::{AfxdpWan, NextHop};

    let topo = Topology::new("w");
    let (dev, b) = (topo.dev_a.clone(), topo.b.clone());
    let peer = in_netns(&b, || UdpSocket::bind("10.251.0.2:7000").unwrap());
    let peer2 = peer.try_clone().unwrap();
    in_netns(&topo.a, move || {
        let mut steering = NattSteering::attach(&dev, 4500, ModePreference::Auto).expect("attach");
        let mut wans: Vec<AfxdpWan> = (0..2)
            .map(|q| {
                let p = XskPort::open(&dev, q, &small_cfg()).expect("open");
                steering.register_socket(q, p.fd()).expect("register");
                AfxdpWan::new(p, MAC_A, NextHop::Learn)
            })
            .collect();
        assert!(wans.iter().all(|w| w.next_hop_mac().is_none()));
        assert_eq!(wans[0].tx(&[]).unwrap(), 0);

        // An IKE message behind the non-ESP marker (RFC 3948 §2.2).
        let ike: Vec<u8> = (0u8..36).collect();
        let mut msg = vec![0u8; 4];
        msg.extend_from_slice(&ike);
        peer2.send_to(&msg, "10.251.0.1:4500").unwrap();

        let mut pipeline = Pipeline::new(Config::default());
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut which = None;
        while seen.is_empty() && Instant::now() < deadline {
            for (q, wan) in wans.iter_mut().enumerate() {
                let n = wan
                    .rx(&mut pipeline, &mut |v, data| seen.push((v, data.to_vec())))
                    .unwrap();
                if n > 0 {
                    which = Some(q);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(seen.len(), 1, "{seen:?}");
        let (v, data) = &seen[0];
        assert_eq!(
            *v,
            Verdict::Ike {
                src: "10.251.0.2:7000".parse().unwrap(),
                dst: "10.251.0.1:4500".parse().unwrap()
            }
        );
        assert_eq!(data, &ike, "IKE message without the marker");
        let wan = &mut wans[which.unwrap()];
        assert_eq!(wan.next_hop_mac(), Some(MAC_B), "next hop learned");

        // An outer IP packet from the pipeline's side goes out framed.
        let frame = build_v4_udp(4500, 7000, b"from-wan-tx");
        let sent = wan
            .tx(&[("10.251.0.2:7000".parse().unwrap(), &frame[14..])])
            .unwrap();
        assert_eq!(sent, 1);
        steering.detach().expect("detach");
    });
    assert_eq!(recv_all(&peer, 1), [b"from-wan-tx".to_vec()]);
}
