//! The traffic of the e2e scenario: a generator in the client namespace that encrypts inner
//! UDP packets with the dataplane's encap pipeline (static SA) and sends them as ESP-in-UDP
//! through a [`WanPort`] — AF_XDP TX (`io::afxdp`) or a UDP socket (`io::socket::UdpPort`,
//! sendmmsg) — at a fixed rate or as fast as it can; and a sink in the sink namespace that
//! counts what the gateway delivered and measures latency from a send timestamp carried in
//! each inner payload (both ends are threads of this process: one CLOCK_MONOTONIC).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use xdpsec_dataplane::batch::{Config, Pipeline, Verdict};
use xdpsec_dataplane::buf::{HEADROOM, PacketBuf};
use xdpsec_dataplane::io::WanPort;
use xdpsec_dataplane::io::afxdp::{AfxdpWan, NextHop, XskConfig, XskPort, ZeroCopy};
use xdpsec_dataplane::io::socket::UdpPort;
use xdpsec_dataplane::sa::{Direction, PeerId, Selectors};
use xdpsec_dataplane::sad::SaCommand;

use super::gateway::SPI_IN;
use super::topo::{
    self, CLIENT_ADDR, CLIENT_IF, CLIENT_MAC, GW_ADDR, GW_MAC, INNER_SRC, SINK_ADDR,
};
use crate::fixture::{BATCH, Slots, addr, inner_packet, peer_sa};

/// Marks our payloads: "xbnc".
const MAGIC: u32 = 0x7862_6e63;
/// magic (4) ‖ point (4) ‖ sequence (8) ‖ send time in ns since the run's base (8).
pub const STAMP_LEN: usize = 24;
/// Smallest inner packet that carries a stamp: IPv4 (20) + UDP (8) + stamp.
pub const MIN_SIZE: usize = 28 + STAMP_LEN;

/// How the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GenKind {
    /// AF_XDP TX on the client's veth (copy mode), Ethernet frames built here.
    Afxdp,
    /// A UDP socket with sendmmsg (the kernel adds IP/UDP).
    Socket,
    /// Plain UDP to the sink, one `send` per packet: the load for a tunnel built by someone
    /// else (strongSwan), which encrypts it.
    #[value(skip)]
    Plain,
}

/// What a generator run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    /// Packets the port accepted.
    pub packets: u64,
    /// Inner bytes of those.
    pub bytes: u64,
    /// Packets the port had no room for (not counted as offered).
    pub refused: u64,
    /// Sending time.
    pub elapsed: Duration,
}

fn open_port(kind: GenKind) -> Result<Box<dyn WanPort>, String> {
    Ok(match kind {
        GenKind::Socket | GenKind::Plain => {
            let port =
                UdpPort::bind(addr(CLIENT_ADDR)?).map_err(|e| format!("generator socket: {e}"))?;
            Box::new(port)
        }
        GenKind::Afxdp => {
            let cfg = XskConfig {
                zero_copy: ZeroCopy::Off,
                ..XskConfig::default()
            };
            let port =
                XskPort::open(CLIENT_IF, 0, &cfg).map_err(|e| format!("generator AF_XDP: {e}"))?;
            Box::new(AfxdpWan::new(port, CLIENT_MAC, NextHop::Static(GW_MAC)))
        }
    })
}

/// The client's encap pipeline: one outbound SA to the gateway's inbound SPI. Keep it for as
/// long as the gateway runs: its sequence numbers must keep increasing (replay window).
pub fn encap_pipeline() -> Result<Pipeline, String> {
    let mut p = Pipeline::new(Config::default());
    let mut sa = peer_sa(SPI_IN, addr(CLIENT_ADDR)?, addr(GW_ADDR)?)?;
    sa.direction = Direction::Out;
    sa.peer = PeerId(0);
    sa.selectors = Selectors::default();
    p.sad
        .apply(SaCommand::Install(Box::new(sa)))
        .map_err(|e| e.to_string())?;
    Ok(p)
}

/// One generator run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// How to send.
    pub kind: GenKind,
    /// Core to pin the generator to.
    pub core: Option<core_affinity::CoreId>,
    /// Inner packet size.
    pub size: usize,
    /// Point number carried in every payload (the sink tallies by it).
    pub point: u32,
    /// Packets per second, `None`: as fast as possible.
    pub rate: Option<f64>,
    /// How long to send.
    pub wall: Duration,
    /// Time zero of the stamps (shared with the sink).
    pub base: Instant,
}

/// Write the stamp (magic, point, sequence number, send time) at the start of `payload`.
fn stamp(payload: &mut [u8], point: u32, seq: u64, base: Instant) {
    if let Some(s) = payload.get_mut(..STAMP_LEN) {
        s[..4].copy_from_slice(&MAGIC.to_be_bytes());
        s[4..8].copy_from_slice(&point.to_be_bytes());
        s[8..16].copy_from_slice(&seq.to_be_bytes());
        let t = base.elapsed().as_nanos() as u64;
        s[16..24].copy_from_slice(&t.to_be_bytes());
    }
}

/// Send `load` from the client namespace: ESP through `pipe` (the client's SA) for the
/// AF_XDP and socket generators, plain UDP to the sink for [`GenKind::Plain`]. Runs on the
/// calling thread, which it moves into the namespace and pins.
pub fn generate(pipe: &mut Pipeline, load: &Load, stop: &AtomicBool) -> Result<Sent, String> {
    topo::enter(topo::CLIENT)?;
    if let Some(c) = load.core {
        core_affinity::set_for_current(c);
    }
    let (size, point, base) = (load.size, load.point, load.base);
    if load.kind == GenKind::Plain {
        let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("generator: {e}"))?;
        sock.connect(addr(SINK_ADDR)?)
            .map_err(|e| format!("generator: {e}"))?;
        let mut payload = vec![0u8; size - 28];
        return paced(load, stop, |n, seq| {
            let mut ok = 0;
            for i in 0..n as u64 {
                stamp(&mut payload, point, seq + i, base);
                ok += u64::from(sock.send(&payload).is_ok());
            }
            Ok(ok)
        });
    }
    let mut port = open_port(load.kind)?;
    let mut slots = Slots::new(size);
    let mut template = vec![0u8; HEADROOM + size];
    inner_packet(&mut template, size, addr(INNER_SRC)?, addr(SINK_ADDR)?)?;
    let template = template[HEADROOM..].to_vec();
    paced(load, stop, |n, seq| {
        let mut frames: Vec<PacketBuf<'_>> = Vec::with_capacity(n);
        for (i, buf) in slots.bufs().take(n).enumerate() {
            let pkt = &mut buf[HEADROOM..HEADROOM + size];
            pkt.copy_from_slice(&template);
            stamp(&mut pkt[28..], point, seq + i as u64, base);
            frames.push(PacketBuf::new(buf, HEADROOM, size));
        }
        let mut v = [Verdict::Keepalive; BATCH];
        pipe.encap_batch(&mut frames, &mut v[..n]);
        let out: Vec<(SocketAddr, &[u8])> = v[..n]
            .iter()
            .zip(&frames)
            .filter_map(|(v, f)| match v {
                Verdict::Wire { dst } => Some((*dst, f.data())),
                _ => None,
            })
            .collect();
        if out.len() != n {
            return Err(format!("generator: encap refused packets: {v:?}"));
        }
        Ok(port.tx(&out).map_err(|e| format!("generator send: {e}"))? as u64)
    })
}

/// The pacing loop: call `send(burst, first sequence number)` at `load.rate` (bursts of 16)
/// or back to back (bursts of a batch) for `load.wall`; `send` returns how many left.
fn paced(
    load: &Load,
    stop: &AtomicBool,
    mut send: impl FnMut(usize, u64) -> Result<u64, String>,
) -> Result<Sent, String> {
    let burst = if load.rate.is_some() { 16 } else { BATCH };
    let interval = load
        .rate
        .map(|r| Duration::from_secs_f64(burst as f64 / r.max(1.0)));
    let mut seq = 1u64;
    let mut sent = Sent::default();
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < load.wall {
        if stop.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        if let Some(iv) = interval {
            let now = Instant::now();
            if next > now {
                let wait = next - now;
                if wait > Duration::from_micros(300) {
                    std::thread::sleep(wait - Duration::from_micros(200));
                }
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
            } else if now - next > Duration::from_millis(20) {
                // Fell far behind (descheduled): do not try to catch up with a burst.
                next = now;
            }
            next += iv;
        }
        let n = send(burst, seq)?;
        seq += burst as u64;
        sent.packets += n;
        sent.bytes += n * load.size as u64;
        sent.refused += burst as u64 - n;
    }
    sent.elapsed = start.elapsed();
    Ok(sent)
}

/// What the sink saw of one point.
#[derive(Debug)]
pub struct Received {
    /// Packets.
    pub packets: u64,
    /// Inner bytes (UDP payload + 28).
    pub bytes: u64,
    /// One-way latency, generator stamp → sink, in ns.
    pub latency: Histogram<u64>,
}

/// Per-point receive counts, filled by the sink thread.
pub type Tally = Arc<Mutex<HashMap<u32, Received>>>;

/// Receive on [`SINK_ADDR`] in the sink namespace until `stop`, tallying per point.
pub fn sink(
    tally: Tally,
    base: Instant,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    // 1 ns … 100 s, 3 significant digits.
    let hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).map_err(|e| e.to_string());
    let (sock, template) = match open_sink().and_then(|s| Ok((s, hist?))) {
        Ok(s) => {
            let _ = ready.send(Ok(()));
            s
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut bufs = vec![[0u8; 2048]; BATCH];
    while !stop.load(Ordering::Relaxed) {
        let lens = recv_batch(&sock, &mut bufs);
        if lens.is_empty() {
            continue;
        }
        let now = base.elapsed().as_nanos() as u64;
        let Ok(mut t) = tally.lock() else { return };
        for (buf, &len) in bufs.iter().zip(&lens) {
            let Some(stamp) = buf.get(..STAMP_LEN).filter(|_| len >= STAMP_LEN) else {
                continue;
            };
            let word = |r: std::ops::Range<usize>| {
                stamp[r].iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
            };
            if word(0..4) != u64::from(MAGIC) {
                continue;
            }
            let point = word(4..8) as u32;
            let sent = word(16..24);
            let r = t.entry(point).or_insert_with(|| Received {
                packets: 0,
                bytes: 0,
                latency: template.clone(),
            });
            r.packets += 1;
            r.bytes += len as u64 + 28;
            let _ = r.latency.record(now.saturating_sub(sent).max(1));
        }
    }
}

fn open_sink() -> Result<UdpSocket, String> {
    topo::enter(topo::SINK)?;
    let sock = UdpSocket::bind(addr(SINK_ADDR)?).map_err(|e| format!("sink bind: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    // A deep queue: loss should be the gateway's, not the sink's.
    let size: libc::c_int = 64 << 20;
    // SAFETY: setsockopt with a valid int option value on our own socket.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
    }
    Ok(sock)
}

/// One recvmmsg of up to a batch (blocking up to the read timeout for the first datagram).
fn recv_batch(sock: &UdpSocket, bufs: &mut [[u8; 2048]]) -> Vec<usize> {
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: all-zero is a valid mmsghdr.
    let mut hdrs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    // SAFETY: every header points at a live iovec of a live buffer.
    let n = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            hdrs.len() as u32,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n <= 0 {
        return Vec::new();
    }
    hdrs[..n as usize]
        .iter()
        .map(|h| h.msg_len as usize)
        .collect()
}
