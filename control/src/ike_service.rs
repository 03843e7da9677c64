//! The IKE runtime around the sans-IO [`Engine`]: the UDP 500 socket, IKE on 4500 through the
//! dataplane workers, timers, and the effects of every event — SAs pushed to every worker,
//! routes and virtual IPs on the TUN, endpoint updates after a NAT rebinding.
//!
//! The daemon owns the loop (it also waits for worker events); this module turns what arrives
//! into engine calls and what the engine asks for into I/O. IKE on port 500 goes through a
//! kernel socket; on 4500 (after the float, RFC 7296 §2.23) it must leave from the same port as
//! ESP, which the workers own, so it goes to worker 0 with the non-ESP marker (RFC 3948 §2.2).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use ring::rand::SystemRandom;
use xdpsec_dataplane::sa::{Direction, IpPrefix, PeerId, SaParams};
use xdpsec_dataplane::sad::SaCommand;

use crate::config::conn::IKE_PORT;
use crate::ike::header::Header;
use crate::ike::session::{
    ConnConfig, Datagram, Engine, EngineStats, IkeEvent, IkeSaInfo, Role, Transmit,
};

/// A request from the control API.
#[derive(Debug)]
pub enum IkeRequest {
    /// Every IKE SA with its children.
    List(Sender<Vec<IkeSaInfo>>),
    /// Engine counters.
    Stats(Sender<EngineStats>),
    /// Start an initiator connection.
    Up(String, Sender<Result<(), String>>),
    /// Delete a connection's IKE SA (and its children).
    Down(String, Sender<Result<(), String>>),
}

/// An IKE message received on UDP 500 (by the socket) or 4500 (by a worker, marker removed).
#[derive(Debug)]
pub struct Received {
    /// The peer's endpoint.
    pub src: SocketAddr,
    /// Our address and port.
    pub dst: SocketAddr,
    /// The IKE message.
    pub bytes: Vec<u8>,
}

/// PeerIds of IKE-made SAs start here, away from the static SAs' (which count from 0).
const IKE_PEER_BASE: u32 = 0x8000_0000;

/// How long an initiator waits before it tries again after its IKE SA died.
const RESTART_AFTER: Duration = Duration::from_secs(5);

/// The IKE side of the daemon.
pub struct IkeService {
    engine: Engine,
    sock500: Arc<UdpSocket>,
    send4500: Box<dyn FnMut(Transmit) -> bool + Send>,
    workers: Vec<Sender<SaCommand>>,
    tun: String,
    /// Routes into the TUN set at start (configured, responder pools): children inside them
    /// need no route of their own.
    static_routes: Vec<IpPrefix>,
    /// Routes into the TUN that child SAs need, with how many children need each.
    routes: HashMap<IpPrefix, usize>,
    /// Each child pair's routes into the TUN, to undo on `ChildDown`.
    children: HashMap<(u32, u32), Vec<IpPrefix>>,
    /// Outbound SAs of children the peer rekeyed, held back until the old pair is deleted
    /// (by SPI pair of the old child).
    deferred: HashMap<(u32, u32), SaParams>,
    /// IKE SA → the PeerId its children carry (for endpoint updates).
    peers: HashMap<u64, PeerId>,
    /// Initiator connections to (re)start, and when.
    restart: HashMap<String, Instant>,
    /// Connections the operator took down: not restarted.
    held_down: Vec<String>,
    conns: Vec<(String, Role)>,
}

impl std::fmt::Debug for IkeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeService")
            .field("tun", &self.tun)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl IkeService {
    /// Binds UDP 500 on `local` and starts the thread that reads it into the returned channel.
    /// `send4500` hands an IKE message or keepalive for port 4500 to a worker.
    pub fn start(
        conns: Vec<ConnConfig>,
        local: IpAddr,
        tun: &str,
        static_routes: Vec<IpPrefix>,
        workers: Vec<Sender<SaCommand>>,
        send4500: Box<dyn FnMut(Transmit) -> bool + Send>,
        stop: Arc<AtomicBool>,
    ) -> Result<(Self, Receiver<Received>), String> {
        let addr = SocketAddr::new(local, IKE_PORT);
        let sock = UdpSocket::bind(addr).map_err(|e| format!("IKE socket {addr}: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| format!("IKE socket: {e}"))?;
        let sock500 = Arc::new(sock);
        let (tx, rx) = bounded::<Received>(1024);
        {
            let sock = Arc::clone(&sock500);
            std::thread::Builder::new()
                .name("xdpsec-ike500".into())
                .spawn(move || read_500(&sock, addr, &tx, &stop))
                .map_err(|e| format!("IKE reader thread: {e}"))?;
        }
        let now = Instant::now();
        let restart = conns
            .iter()
            .filter(|c| c.role == Role::Initiator)
            .map(|c| (c.name.clone(), now))
            .collect();
        let names = conns.iter().map(|c| (c.name.clone(), c.role)).collect();
        Ok((
            Self {
                engine: Engine::new(conns, Box::new(SystemRandom::new())),
                sock500,
                send4500,
                workers,
                tun: tun.to_string(),
                static_routes,
                routes: HashMap::new(),
                children: HashMap::new(),
                deferred: HashMap::new(),
                peers: HashMap::new(),
                restart,
                held_down: Vec::new(),
                conns: names,
            },
            rx,
        ))
    }

    /// When [`Self::on_timeout`] wants to run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let restart = self.restart.values().min().copied();
        match (self.engine.poll_timeout(), restart) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// An IKE message arrived.
    pub fn on_datagram(&mut self, now: Instant, d: &Received) {
        // A request from the peer (RFC 7296 §3.1: Response flag clear) is answered by us.
        let peer_request = Header::parse(&d.bytes).is_ok_and(|h| !h.flags.response);
        self.engine.handle(
            now,
            Datagram {
                src: d.src,
                dst: d.dst,
                bytes: &d.bytes,
            },
        );
        self.flush(now, peer_request);
    }

    /// Timers: the engine's (retransmits, rekeys, DPD, keepalives) and initiator restarts.
    pub fn on_timeout(&mut self, now: Instant) {
        let due: Vec<String> = self
            .restart
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.restart.remove(&name);
            match self.engine.initiate(now, &name) {
                Ok(()) => tracing::info!("conn {name}: initiating"),
                Err(e) => tracing::warn!("conn {name}: cannot initiate: {e}"),
            }
        }
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        self.flush(now, false);
    }

    /// A request from the control API.
    pub fn on_request(&mut self, now: Instant, req: IkeRequest) {
        // Listings report ages against the engine's clock: bring it to now first.
        self.engine.handle_timeout(now);
        match req {
            IkeRequest::List(reply) => {
                let _ = reply.send(self.engine.list());
            }
            IkeRequest::Stats(reply) => {
                let _ = reply.send(self.engine.stats());
            }
            IkeRequest::Up(name, reply) => {
                self.held_down.retain(|n| *n != name);
                self.restart.remove(&name);
                let r = self.engine.initiate(now, &name).map_err(|e| e.to_string());
                if r.is_ok() {
                    tracing::info!("conn {name}: initiating (requested)");
                }
                let _ = reply.send(r);
            }
            IkeRequest::Down(name, reply) => {
                if self.conns.iter().any(|(n, _)| *n == name) && !self.held_down.contains(&name) {
                    self.held_down.push(name.clone());
                }
                self.restart.remove(&name);
                let r = self.engine.terminate(now, &name).map_err(|e| e.to_string());
                if r.is_ok() {
                    tracing::info!("conn {name}: terminating (requested)");
                }
                let _ = reply.send(r);
            }
        }
        self.flush(now, false);
    }

    /// Sends what the engine wants sent and acts on its events; `peer_request`: they come
    /// from handling a request of the peer.
    fn flush(&mut self, now: Instant, peer_request: bool) {
        // Events first: a new child SA must be on the workers before the message that
        // completes its exchange leaves, or the peer's first ESP packet finds no SA.
        while let Some(ev) = self.engine.poll_event() {
            self.on_event(now, ev, peer_request);
        }
        while let Some(t) = self.engine.poll_transmit() {
            // Our source port decides: the peer's port may be anything a NAT picked.
            if t.src.port() == IKE_PORT {
                if let Err(e) = self.sock500.send_to(&t.bytes, t.dst) {
                    tracing::warn!("IKE to {}: {e}", t.dst);
                }
            } else {
                let dst = t.dst;
                if !(self.send4500)(t) {
                    tracing::warn!("IKE to {dst}: worker queue full, message dropped");
                }
            }
        }
    }

    fn push(&self, cmd: impl Fn() -> SaCommand) {
        for w in &self.workers {
            if w.send(cmd()).is_err() {
                tracing::error!("a worker stopped: SA command lost");
            }
        }
    }

    fn on_event(&mut self, now: Instant, ev: IkeEvent, peer_request: bool) {
        match ev {
            IkeEvent::IkeUp {
                conn,
                ike_spi,
                remote,
            } => tracing::info!("conn {conn}: IKE SA {ike_spi:016x} up with {remote}"),
            IkeEvent::IkeDown {
                conn,
                ike_spi,
                reason,
            } => {
                tracing::info!("conn {conn}: IKE SA {ike_spi:016x} down ({reason})");
                self.peers.remove(&ike_spi);
                if self.is_initiator(&conn)
                    && reason != "rekeyed"
                    && !self.held_down.contains(&conn)
                {
                    self.restart.insert(conn, now + RESTART_AFTER);
                }
            }
            IkeEvent::ChildUp {
                conn,
                ike_spi,
                mut inbound,
                mut outbound,
                virtual_ip,
                replaces,
            } => {
                let peer = PeerId(IKE_PEER_BASE | (inbound.peer.0 & !IKE_PEER_BASE));
                inbound.peer = peer;
                outbound.peer = peer;
                self.peers.insert(ike_spi, peer);
                let (spi_in, spi_out) = (inbound.spi, outbound.spi);
                tracing::info!(
                    "conn {conn}: child SA up, SPIs in {spi_in:08x} out {spi_out:08x}, {} → {}{}",
                    inbound.local,
                    outbound.remote.map_or("?".into(), |r| r.to_string()),
                    virtual_ip.map_or(String::new(), |v| format!(", virtual IP {v}"))
                );
                let prefixes: Vec<IpPrefix> = outbound
                    .selectors
                    .remote
                    .iter()
                    .copied()
                    .filter(|p| !p.is_empty() && !self.static_routes.iter().any(|r| r.covers(p)))
                    .collect();
                // Inbound first: replies to our first encrypted packet must find their SA.
                self.push(|| SaCommand::Install(Box::new(inbound.clone())));
                // A child the peer rekeys (RFC 7296 §2.8): the peer installs its inbound SA
                // only when our CREATE_CHILD_SA response reaches it, so we keep sending on the
                // old pair until the peer deletes it — then switch (make-before-break).
                let old =
                    replaces.and_then(|spi| self.children.keys().find(|(i, _)| *i == spi).copied());
                match old {
                    Some(old) if peer_request => {
                        self.deferred.insert(old, outbound.clone());
                    }
                    _ => self.push(|| SaCommand::Install(Box::new(outbound.clone()))),
                }
                let our_vip = virtual_ip.filter(|_| self.is_initiator(&conn));
                if let Some(vip) = our_vip {
                    ip(&["addr", "replace", &format!("{vip}/32"), "dev", &self.tun]);
                }
                for p in &prefixes {
                    let n = self.routes.entry(*p).or_insert(0);
                    *n += 1;
                    if *n == 1 {
                        let mut args = vec![
                            "route".to_string(),
                            "replace".into(),
                            p.to_string(),
                            "dev".into(),
                            self.tun.clone(),
                        ];
                        if let Some(vip) = our_vip {
                            args.extend(["src".into(), vip.to_string()]);
                        }
                        ip(&args.iter().map(String::as_str).collect::<Vec<_>>());
                    }
                }
                self.children.insert((spi_in, spi_out), prefixes);
            }
            IkeEvent::ChildDown {
                conn,
                inbound_spi,
                outbound_spi,
            } => {
                tracing::info!(
                    "conn {conn}: child SA down, SPIs in {inbound_spi:08x} out {outbound_spi:08x}"
                );
                if let Some(next) = self.deferred.remove(&(inbound_spi, outbound_spi)) {
                    self.push(|| SaCommand::Install(Box::new(next.clone())));
                }
                self.push(|| SaCommand::Remove {
                    spi: outbound_spi,
                    direction: Direction::Out,
                });
                self.push(|| SaCommand::Remove {
                    spi: inbound_spi,
                    direction: Direction::In,
                });
                if let Some(routes) = self.children.remove(&(inbound_spi, outbound_spi)) {
                    for p in routes {
                        if let Some(n) = self.routes.get_mut(&p) {
                            *n -= 1;
                            if *n == 0 {
                                self.routes.remove(&p);
                                ip(&["route", "del", &p.to_string(), "dev", &self.tun]);
                            }
                        }
                    }
                }
            }
            IkeEvent::PeerMoved {
                conn,
                ike_spi,
                remote,
            } => {
                tracing::info!("conn {conn}: peer moved to {remote} (authenticated IKE message)");
                if let Some(&peer) = self.peers.get(&ike_spi) {
                    self.push(|| SaCommand::UpdatePeer {
                        peer,
                        endpoint: remote,
                    });
                }
            }
            // Refusals an operator has to act on are warnings; the rest (retransmissions,
            // garbage, probes) is normal on the Internet and counted in `xdpsec stats`.
            IkeEvent::Dropped {
                reason:
                    reason @ ("peer_without_nat_t"
                    | "encap_off_without_nat"
                    | "authentication_failed"
                    | "no_proposal_chosen"
                    | "ts_unacceptable"),
            } => tracing::warn!("IKE exchange refused: {reason}"),
            IkeEvent::Dropped { reason } => tracing::debug!("IKE message dropped: {reason}"),
        }
    }

    fn is_initiator(&self, conn: &str) -> bool {
        self.conns
            .iter()
            .any(|(n, r)| n == conn && *r == Role::Initiator)
    }
}

/// Runs `ip ARGS…`; failures are logged (the route or address may already be gone).
fn ip(args: &[&str]) {
    match std::process::Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => tracing::debug!("ip {}", args.join(" ")),
        Ok(o) => tracing::warn!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => tracing::warn!("ip {}: {e}", args.join(" ")),
    }
}

/// The UDP 500 reader: one thread, blocking reads with a timeout to see `stop`.
fn read_500(sock: &UdpSocket, local: SocketAddr, tx: &Sender<Received>, stop: &AtomicBool) {
    // An IKE message is at most what UDP carries; RFC 7296 §2 asks for 1280 at least, and
    // messages over 64 KiB cannot exist.
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, src)) => {
                let r = Received {
                    src,
                    dst: local,
                    bytes: buf[..n].to_vec(),
                };
                if tx.try_send(r).is_err() {
                    tracing::warn!("IKE queue full: message from {src} dropped");
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::error!("IKE socket: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
