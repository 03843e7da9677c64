//! In-process handshakes: N initiator [`Engine`]s against one responder `Engine` on one
//! pinned core, no I/O. A wave starts N handshakes (IKE_SA_INIT + IKE_AUTH with a virtual IP,
//! RFC 7296 §1.2 / §2.19), moves every message until the engines are quiet, then deletes the
//! N IKE SAs (INFORMATIONAL Delete, §1.4.1). Every `handle` / `initiate` / `terminate` call
//! is timed on its own and filed under the step it performs, so the cost splits into
//! initiator and responder.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use xdpsec_control::ike::ExchangeType;
use xdpsec_control::ike::session::{Datagram, Engine, IkeEvent, Transmit};

use super::{NATT_PORT, Suite, client_conn, gw_conn};
use crate::harness::{Timed, Workload, median};

/// What one timed call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Initiator: `initiate` (key pair, nonce, IKE_SA_INIT request).
    InitRequest,
    /// Responder: IKE_SA_INIT request → response (key pair, D-H, SKEYSEED and keys).
    InitRespond,
    /// Initiator: IKE_SA_INIT response → IKE_AUTH request (D-H, keys, AUTH, encryption).
    AuthRequest,
    /// Responder: IKE_AUTH request → response (decrypt, verify AUTH, child SA keys, virtual
    /// IP, encrypt).
    AuthRespond,
    /// Initiator: IKE_AUTH response (decrypt, verify AUTH, child SA keys).
    AuthDone,
    /// Initiator: `terminate` (Delete request).
    DeleteRequest,
    /// Responder: Delete request → response.
    DeleteRespond,
    /// Initiator: Delete response.
    DeleteDone,
}

impl Step {
    /// Every step in protocol order.
    pub const ALL: [Step; 8] = [
        Step::InitRequest,
        Step::InitRespond,
        Step::AuthRequest,
        Step::AuthRespond,
        Step::AuthDone,
        Step::DeleteRequest,
        Step::DeleteRespond,
        Step::DeleteDone,
    ];

    /// Whether the responder performs it.
    pub fn responder(self) -> bool {
        matches!(
            self,
            Step::InitRespond | Step::AuthRespond | Step::DeleteRespond
        )
    }

    /// Part of the connection (IKE_SA_INIT + IKE_AUTH) rather than of the delete.
    pub fn handshake(self) -> bool {
        !matches!(
            self,
            Step::DeleteRequest | Step::DeleteRespond | Step::DeleteDone
        )
    }

    /// A table label.
    pub fn label(self) -> &'static str {
        match self {
            Step::InitRequest => "initiator: initiate → IKE_SA_INIT request",
            Step::InitRespond => "responder: IKE_SA_INIT request → response",
            Step::AuthRequest => "initiator: IKE_SA_INIT response → IKE_AUTH request",
            Step::AuthRespond => "responder: IKE_AUTH request → response",
            Step::AuthDone => "initiator: IKE_AUTH response",
            Step::DeleteRequest => "initiator: terminate → Delete request",
            Step::DeleteRespond => "responder: Delete request → response",
            Step::DeleteDone => "initiator: Delete response",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The step a received message starts, by side and the header's exchange type (octet 18,
    /// RFC 7296 §3.1).
    fn of_message(responder: bool, bytes: &[u8]) -> Result<Step, String> {
        let exchange = ExchangeType(bytes.get(18).copied().unwrap_or(0));
        Ok(match (responder, exchange) {
            (true, ExchangeType::IKE_SA_INIT) => Step::InitRespond,
            (true, ExchangeType::IKE_AUTH) => Step::AuthRespond,
            (true, ExchangeType::INFORMATIONAL) => Step::DeleteRespond,
            (false, ExchangeType::IKE_SA_INIT) => Step::AuthRequest,
            (false, ExchangeType::IKE_AUTH) => Step::AuthDone,
            (false, ExchangeType::INFORMATIONAL) => Step::DeleteDone,
            (_, e) => return Err(format!("unexpected exchange type {} in the run", e.0)),
        })
    }
}

/// Median time of one step's calls.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepTime {
    /// The step.
    pub step: Step,
    /// Calls timed.
    pub calls: usize,
    /// Median µs per call.
    pub median_us: f64,
}

/// The conn name of every initiator engine (one connection each).
const CONN: &str = "bench";

/// N initiators against one responder; see the [module documentation](self).
pub struct Handshakes {
    responder: Engine,
    initiators: Vec<Engine>,
    /// Initiator address → index in `initiators`.
    by_addr: HashMap<SocketAddr, usize>,
    /// Per-call times by [`Step`].
    times: [Vec<Duration>; 8],
}

impl std::fmt::Debug for Handshakes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshakes")
            .field("initiators", &self.initiators.len())
            .finish_non_exhaustive()
    }
}

/// Initiator `i`'s address: 198.18.0.0/15 (RFC 2544 benchmarking space), port 4500.
fn initiator_addr(i: usize) -> SocketAddr {
    let i = u32::try_from(i).unwrap_or(u32::MAX) & 0x1_ffff;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc612_0000 | i)), NATT_PORT)
}

impl Handshakes {
    /// `n` initiators proposing `suite` (asking for virtual IPs with `vip`) to a responder
    /// that accepts both default suites.
    pub fn new(n: usize, suite: &Suite, vip: bool) -> Result<Self, String> {
        let rng = || Box::new(ring::rand::SystemRandom::new());
        let gw = gw_conn()?;
        let mut initiators = Vec::with_capacity(n);
        let mut by_addr = HashMap::new();
        for i in 0..n {
            let local = initiator_addr(i);
            let mut c = client_conn(CONN, i, suite, vip)?;
            c.local = Some(local.ip());
            by_addr.insert(local, i);
            initiators.push(Engine::new(vec![c], rng()));
        }
        Ok(Self {
            responder: Engine::new(vec![gw], rng()),
            initiators,
            by_addr,
            times: Default::default(),
        })
    }

    fn timed(&mut self, step: Step, f: impl FnOnce(&mut Self)) -> Duration {
        let t = Instant::now();
        f(self);
        let d = t.elapsed();
        self.times[step.index()].push(d);
        d
    }

    /// Deliver every pending message until no engine has anything to send.
    fn pump(&mut self, now: Instant) -> Result<Duration, String> {
        let mut busy = Duration::ZERO;
        loop {
            let mut moved = false;
            for i in 0..self.initiators.len() {
                while let Some(t) = self.initiators[i].poll_transmit() {
                    moved = true;
                    let step = Step::of_message(true, &t.bytes)?;
                    busy += self.timed(step, |s| s.responder.handle(now, dgram(&t)));
                }
            }
            while let Some(t) = self.responder.poll_transmit() {
                moved = true;
                let i = *self
                    .by_addr
                    .get(&t.dst)
                    .ok_or_else(|| format!("the responder sent to unknown {}", t.dst))?;
                let step = Step::of_message(false, &t.bytes)?;
                busy += self.timed(step, |s| s.initiators[i].handle(now, dgram(&t)));
            }
            if !moved {
                return Ok(busy);
            }
        }
    }

    /// Every initiator must report exactly `want` (IkeUp, ChildUp) or (IkeDown terminated,
    /// ChildDown); the responder the same for all of them.
    fn check_events(&mut self, up: bool) -> Result<(), String> {
        let n = self.initiators.len();
        let tally = |e: &mut Engine, who: &str| -> Result<usize, String> {
            let (mut ike, mut child) = (0, 0);
            while let Some(ev) = e.poll_event() {
                match ev {
                    IkeEvent::IkeUp { .. } if up => ike += 1,
                    IkeEvent::ChildUp { .. } if up => child += 1,
                    IkeEvent::IkeDown { reason, .. }
                        if !up && (reason == "terminated" || reason == "deleted_by_peer") =>
                    {
                        ike += 1
                    }
                    IkeEvent::ChildDown { .. } if !up => child += 1,
                    other => return Err(format!("{who}: unexpected {other:?}")),
                }
            }
            if ike != child {
                return Err(format!(
                    "{who}: {ike} IKE SA events but {child} child SA events"
                ));
            }
            Ok(ike)
        };
        let mut total = 0;
        for (i, e) in self.initiators.iter_mut().enumerate() {
            total += tally(e, &format!("initiator {i}"))?;
        }
        let r = tally(&mut self.responder, "responder")?;
        if total != n || r != n {
            return Err(format!(
                "{} of {n} handshakes {}: initiators reported {total}, the responder {r} (responder drops {:?})",
                total.min(r),
                if up { "completed" } else { "deleted" },
                self.responder.stats().drops
            ));
        }
        Ok(())
    }

    fn wave(&mut self) -> Result<Duration, String> {
        let now = Instant::now();
        let mut busy = Duration::ZERO;
        for i in 0..self.initiators.len() {
            let mut r = Ok(());
            busy += self.timed(Step::InitRequest, |s| {
                r = s.initiators[i].initiate(now, CONN);
            });
            r.map_err(|e| format!("initiator {i}: {e}"))?;
        }
        busy += self.pump(now)?;
        self.check_events(true)?;
        for i in 0..self.initiators.len() {
            let mut r = Ok(());
            busy += self.timed(Step::DeleteRequest, |s| {
                r = s.initiators[i].terminate(now, CONN);
            });
            r.map_err(|e| format!("initiator {i}: {e}"))?;
        }
        busy += self.pump(now)?;
        self.check_events(false)?;
        let left = self.responder.stats().ike_sas;
        if left != 0 {
            return Err(format!(
                "the responder kept {left} IKE SAs after the deletes"
            ));
        }
        Ok(busy)
    }

    /// Median time per call of every step, in protocol order.
    pub fn steps(&self) -> Vec<StepTime> {
        Step::ALL
            .iter()
            .map(|&step| {
                let v = &self.times[step.index()];
                StepTime {
                    step,
                    calls: v.len(),
                    median_us: median(v.iter().map(|d| d.as_secs_f64() * 1e6).collect()),
                }
            })
            .collect()
    }
}

fn dgram(t: &Transmit) -> Datagram<'_> {
    Datagram {
        src: t.src,
        dst: t.dst,
        bytes: &t.bytes,
    }
}

impl Workload for Handshakes {
    /// One wave: N handshakes and N deletes; `busy` is the time inside the engines' calls
    /// (both sides: everything runs on this core). A handshake that fails fails the run.
    fn batch(&mut self) -> Result<Timed, String> {
        let busy = self
            .wave()
            .map_err(|e| format!("in-process handshakes: {e}"))?;
        Ok(Timed {
            kind: 0,
            packets: self.initiators.len() as u64,
            bytes: 0,
            busy,
        })
    }

    fn verify(&self) -> Result<(), String> {
        Ok(())
    }
}
