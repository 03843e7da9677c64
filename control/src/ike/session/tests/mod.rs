//! Two engines wired through an in-memory network with a fake clock and an optional NAT
//! in front of the initiator (masquerading like the project's test topology).

mod chaos;
mod children;
mod encap;
mod handshake;
mod hostile;
mod lifecycle;
mod rekey;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;

use super::*;
use crate::ike::payload::Identity;

pub const PSK: &[u8] = b"interop-test-psk-0123456789";
pub const CLIENT: &str = "10.0.1.2";
pub const NAT_PUBLIC: &str = "192.0.2.1";
pub const GW: &str = "192.0.2.2";

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn fqdn(s: &str) -> Identity {
    Identity::Fqdn(s.into())
}

/// The client: initiator towards the gateway, asking for a virtual IP.
pub fn client_conn() -> ConnConfig {
    let mut c = ConnConfig::initiator(
        "gw",
        SocketAddr::new(ip(GW), 500),
        fqdn("client.example"),
        PSK,
    );
    c.local = Some(ip(CLIENT));
    c.remote_id = Some(fqdn("gw.example"));
    c.remote_ts = vec!["10.9.0.0/24".parse().unwrap()];
    c.request_vip = true;
    c
}

/// The gateway: responder for any peer, pool 10.99.0.1 + 100, LAN 10.9.0.0/24.
pub fn gw_conn() -> ConnConfig {
    let mut c = ConnConfig::responder("rw", fqdn("gw.example"), PSK);
    c.local = Some(ip(GW));
    c.local_ts = vec!["10.9.0.0/24".parse().unwrap()];
    c.pool = Some((ip("10.99.0.1"), 100));
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The initiator (client, behind the NAT when there is one).
    A,
    /// The responder (gateway).
    B,
}

/// Masquerade: the client's (port) → public port; `rebind` picks new ports (§2.23's
/// "NAT mapping changes").
pub struct Nat {
    pub public: IpAddr,
    pub ports: HashMap<u16, u16>,
    pub next: u16,
}

impl Nat {
    fn map(&mut self, private: u16) -> u16 {
        if let Some(p) = self.ports.get(&private) {
            return *p;
        }
        let p = self.next;
        self.next += 1;
        self.ports.insert(private, p);
        p
    }
    fn unmap(&self, public: u16) -> Option<u16> {
        self.ports
            .iter()
            .find(|(_, p)| **p == public)
            .map(|(k, _)| *k)
    }
    pub fn rebind(&mut self) {
        self.ports.clear();
        self.next += 100;
    }
}

/// Decides whether a datagram reaches the other side.
pub type Filter = Box<dyn FnMut(Side, &Transmit) -> bool>;

pub struct Net {
    pub now: Instant,
    pub a: Engine,
    pub b: Engine,
    pub nat: Option<Nat>,
    pub events_a: Vec<IkeEvent>,
    pub events_b: Vec<IkeEvent>,
    /// Every datagram put on the wire: (sender, transmit as sent).
    pub wire: Vec<(Side, Transmit)>,
    /// When each datagram of `wire` was sent.
    pub sent_at: Vec<Instant>,
    /// Return false to lose a datagram (called with the sender and the transmit).
    pub filter: Filter,
}

impl Net {
    pub fn new(a: ConnConfig, b: ConnConfig, nat: bool) -> Self {
        for c in [&a, &b] {
            c.validate().unwrap();
        }
        Self {
            now: Instant::now(),
            a: Engine::new(vec![a], Box::new(SystemRandom::new())),
            b: Engine::new(vec![b], Box::new(SystemRandom::new())),
            nat: nat.then(|| Nat {
                public: ip(NAT_PUBLIC),
                ports: HashMap::new(),
                next: 30000,
            }),
            events_a: Vec::new(),
            events_b: Vec::new(),
            wire: Vec::new(),
            sent_at: Vec::new(),
            filter: Box::new(|_, _| true),
        }
    }

    /// The default road-warrior pair behind a NAT.
    pub fn road_warrior() -> Self {
        Self::new(client_conn(), gw_conn(), true)
    }

    /// Move every pending datagram until nothing is in flight.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                self.deliver(Side::A, t);
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                self.deliver(Side::B, t);
            }
            self.events_a
                .extend(std::iter::from_fn(|| self.a.poll_event()));
            self.events_b
                .extend(std::iter::from_fn(|| self.b.poll_event()));
            if !moved {
                return;
            }
        }
        panic!("the engines never went quiet");
    }

    fn deliver(&mut self, from: Side, t: Transmit) {
        self.wire.push((from, t.clone()));
        self.sent_at.push(self.now);
        if !(self.filter)(from, &t) || t.kind == TransmitKind::Keepalive {
            return;
        }
        let now = self.now;
        match from {
            Side::A => {
                let src = match &mut self.nat {
                    Some(n) => SocketAddr::new(n.public, n.map(t.src.port())),
                    None => t.src,
                };
                self.b.handle(
                    now,
                    Datagram {
                        src,
                        dst: t.dst,
                        bytes: &t.bytes,
                    },
                );
            }
            Side::B => {
                let dst = match &self.nat {
                    Some(n) if t.dst.ip() == n.public => match n.unmap(t.dst.port()) {
                        Some(p) => SocketAddr::new(ip(CLIENT), p),
                        None => return, // no mapping: the NAT drops it
                    },
                    _ => t.dst,
                };
                self.a.handle(
                    now,
                    Datagram {
                        src: t.src,
                        dst,
                        bytes: &t.bytes,
                    },
                );
            }
        }
    }

    /// Let `d` pass on the fake clock, running every timer that falls due.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        self.run();
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.run();
                    // work queued for "now" while handling messages runs at once; a deadline
                    // that stays in the past after that would make a runtime spin
                    for _ in 0..3 {
                        let due = |e: &Engine| e.poll_timeout().is_some_and(|t| t <= self.now);
                        if !due(&self.a) && !due(&self.b) {
                            break;
                        }
                        self.a.handle_timeout(self.now);
                        self.b.handle_timeout(self.now);
                        self.run();
                    }
                    for e in [&self.a, &self.b] {
                        if e.poll_timeout().is_some_and(|t| t <= self.now) {
                            for sa in e.sas.values() {
                                let rel = |t: Option<Instant>| {
                                    t.map(|t| {
                                        t.saturating_duration_since(self.now).as_secs_f64()
                                            - (self.now.saturating_duration_since(t)).as_secs_f64()
                                    })
                                };
                                eprintln!(
                                    "SA phase={:?} out={:?} queue={:?} ka={:?} rekey={:?} exp={:?} heard={:?} children={:?}",
                                    sa.phase,
                                    sa.outstanding.as_ref().map(|o| (o.id, rel(Some(o.next)))),
                                    sa.queue,
                                    rel(sa.next_keepalive),
                                    rel(sa.rekey_at),
                                    rel(sa.expire_at),
                                    rel(Some(sa.last_heard)),
                                    sa.children
                                        .iter()
                                        .map(|c| (c.state, rel(c.rekey_at), rel(c.expire_at)))
                                        .collect::<Vec<_>>()
                                );
                            }
                            panic!("stuck timer");
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
    }

    pub fn initiate(&mut self) {
        self.a.initiate(self.now, "gw").unwrap();
        self.run();
    }

    pub fn events(&self, side: Side) -> &[IkeEvent] {
        match side {
            Side::A => &self.events_a,
            Side::B => &self.events_b,
        }
    }

    /// The (inbound, outbound) of every ChildUp on one side, in order.
    pub fn child_ups(
        &self,
        side: Side,
    ) -> Vec<(
        xdpsec_dataplane::sa::SaParams,
        xdpsec_dataplane::sa::SaParams,
    )> {
        self.events(side)
            .iter()
            .filter_map(|e| match e {
                IkeEvent::ChildUp {
                    inbound, outbound, ..
                } => Some((inbound.clone(), outbound.clone())),
                _ => None,
            })
            .collect()
    }

    /// Names of the events on one side (`ike_up`, `child_up`, ...), without drops.
    pub fn kinds(&self, side: Side) -> Vec<&'static str> {
        self.events(side)
            .iter()
            .filter(|e| !matches!(e, IkeEvent::Dropped { .. }))
            .map(IkeEvent::kind)
            .collect()
    }

    pub fn drops(&self, side: Side) -> Vec<&'static str> {
        self.events(side)
            .iter()
            .filter_map(|e| match e {
                IkeEvent::Dropped { reason } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    pub fn down_reasons(&self, side: Side) -> Vec<&'static str> {
        self.events(side)
            .iter()
            .filter_map(|e| match e {
                IkeEvent::IkeDown { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }
}

/// The two sides' child SAs pair up: same SPI and key in opposite directions.
pub fn assert_paired(
    a: &(
        xdpsec_dataplane::sa::SaParams,
        xdpsec_dataplane::sa::SaParams,
    ),
    b: &(
        xdpsec_dataplane::sa::SaParams,
        xdpsec_dataplane::sa::SaParams,
    ),
) {
    assert_eq!(a.1.spi, b.0.spi, "A's outbound is B's inbound");
    assert_eq!(a.1.key, b.0.key);
    assert_eq!(a.0.spi, b.1.spi, "B's outbound is A's inbound");
    assert_eq!(a.0.key, b.1.key);
    assert_ne!(a.0.key, a.1.key);
    assert_eq!(a.0.aead, b.0.aead);
}
