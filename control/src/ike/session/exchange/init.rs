//! IKE_SA_INIT (RFC 7296 §1.2): proposals, D-H, nonces, NAT detection (§2.23), cookies
//! (§2.6) and INVALID_KE_PAYLOAD (§1.2), both roles.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use super::super::engine::{Engine, HALF_OPEN_TIMEOUT, MAX_HALF_OPEN, MAX_IKE_SAS, later};
use super::super::events::{Datagram, SessionError};
use super::super::ike_sa::{Crypto, Handshake, IkeSa, Outstanding, Phase, Request};
use super::super::nat::{NATD_LEN, detect, natd_payloads};
use super::Inner;
use crate::ike::IkeError;
use crate::ike::crypto::dh::{KeyExchange, check_ke};
use crate::ike::crypto::keys::{IkeSaKeys, skeyseed};
use crate::ike::crypto::transform::DhGroup;
use crate::ike::header::{ExchangeType, Flags, Header};
use crate::ike::message::Message;
use crate::ike::payload::{KePayload, NotifyPayload, NotifyType, Payload, PayloadType, SaPayload};
use crate::ike::proposal::{accept_ike_reply, select_ike};

/// COOKIE / INVALID_KE_PAYLOAD restarts an initiator accepts per attempt (they are
/// unauthenticated, so a forger must not keep us busy forever).
const MAX_RESTARTS: u8 = 3;

impl Engine {
    /// `initiate()`: a new IKE SA towards the connection's `remote`.
    pub(in crate::ike::session) fn start_initiator(
        &mut self,
        now: Instant,
        name: &str,
    ) -> Result<(), SessionError> {
        let idx = self.conn_index(name)?;
        let conn = self
            .conns
            .get(idx)
            .ok_or_else(|| SessionError::UnknownConn(name.to_string()))?;
        let remote = conn
            .remote
            .ok_or_else(|| SessionError::NotInitiator(name.to_string()))?;
        let suite = *conn
            .ike
            .first()
            .ok_or(SessionError::Crypto("no_proposal_chosen"))?;
        let encap = conn.encap;
        let local_ip = conn.local.unwrap_or(if remote.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
        let active = self.sas.values().any(|sa| {
            sa.conn == idx
                && matches!(
                    sa.phase,
                    Phase::InitSent | Phase::AuthSent | Phase::HalfOpen { .. } | Phase::Established
                )
        });
        if active {
            return Err(SessionError::AlreadyActive(name.to_string()));
        }
        if self.sas.len() >= MAX_IKE_SAS {
            return Err(SessionError::TooManySas);
        }
        // §2.23: IKE starts on 500 unless the peer is configured on 4500 directly
        let local = SocketAddr::new(local_ip, if remote.port() == 4500 { 4500 } else { 500 });
        let spi = self.new_ike_spi().map_err(SessionError::Crypto)?;
        let ni = self.nonce().map_err(SessionError::Crypto)?;
        let ke = KeyExchange::generate(suite.dh, &*self.rng)
            .map_err(|e| SessionError::Crypto(e.name()))?;
        let child_spi = self.new_child_spi().map_err(SessionError::Crypto)?;
        let peer = self.new_peer_id();
        let mut sa = IkeSa::new(idx, true, local, remote, peer, now);
        sa.spi_i = spi;
        sa.announced = true;
        sa.encap_forced = encap;
        sa.hs = Some(Handshake {
            ni,
            nr: Vec::new(),
            init_req: Vec::new(),
            init_resp: Vec::new(),
            ke: Some(ke),
            cookie: None,
            restarts: 0,
            child_spi,
        });
        let r = self.send_init(now, &mut sa);
        if let Err(e) = r {
            sa.phase = Phase::Gone;
            self.put_back(sa);
            return Err(SessionError::Crypto(e));
        }
        self.put_back(sa);
        Ok(())
    }

    /// Random octets for a NAT_DETECTION_SOURCE_IP that cannot match, when we force UDP
    /// encapsulation (§2.23, config `encap`).
    fn fake_natd(&self, force: bool) -> Result<Option<[u8; NATD_LEN]>, &'static str> {
        if !force {
            return Ok(None);
        }
        let mut h = [0u8; NATD_LEN];
        self.random(&mut h)?;
        Ok(Some(h))
    }

    /// Send (or restart) our IKE_SA_INIT request: [N(COOKIE)], SA, KE, Ni, NAT-D (§1.2, §2.6).
    fn send_init(&mut self, now: Instant, sa: &mut IkeSa) -> Result<(), &'static str> {
        let fake = self.fake_natd(sa.encap_forced)?;
        let conn = self.conns.get(sa.conn).ok_or("unknown_conn")?;
        let header = sa.header(ExchangeType::IKE_SA_INIT, false, 0);
        let hs = sa.hs.as_mut().ok_or("unexpected_response")?;
        let ke = hs.ke.as_ref().ok_or("unexpected_response")?;
        let mut p = Vec::with_capacity(7);
        if let Some(c) = &hs.cookie {
            // §2.6: "the first payload"
            p.push(Payload::Notify(NotifyPayload::new(NotifyType::COOKIE, c)));
        }
        p.push(Payload::Sa(SaPayload {
            proposals: conn
                .ike
                .iter()
                .zip(1..=32u8)
                .map(|(s, n)| s.proposal(n, &[]))
                .collect(),
        }));
        p.push(Payload::Ke(KePayload {
            group: ke.group().id(),
            data: ke.public_value().to_vec(),
        }));
        p.push(Payload::Nonce(hs.ni.clone()));
        p.extend(natd_payloads(&sa.spi_i, &[0; 8], sa.local, sa.remote, fake));
        let raw = Message {
            header,
            payloads: p,
        }
        .emit()
        .map_err(IkeError::name)?;
        hs.init_req = raw.clone();
        let base = conn.timers.retransmit_base;
        self.transmit(sa.local, sa.remote, raw.clone());
        sa.phase = Phase::InitSent;
        sa.next_req_id = 1;
        sa.outstanding = Some(Outstanding {
            id: 0,
            exchange: ExchangeType::IKE_SA_INIT,
            bytes: raw,
            kind: Request::Init,
            sent: 1,
            next: later(now, base),
        });
        Ok(())
    }

    /// Connections that may answer a peer at `d.src` reaching us at `d.dst`.
    pub(in crate::ike::session) fn candidates(&self, d: &Datagram<'_>) -> Vec<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.local.is_none_or(|l| l == d.dst.ip())
                    && c.remote.is_none_or(|r| r.ip() == d.src.ip())
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// An unencrypted IKE_SA_INIT response carrying one notification and no state
    /// (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN; §1.2, §2.6).
    fn stateless_reply(&mut self, d: &Datagram<'_>, spi_i: [u8; 8], n: NotifyPayload) {
        let msg = Message {
            header: Header {
                spi_i,
                spi_r: [0; 8],
                next_payload: PayloadType::NONE,
                minor_version: 0,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: Flags {
                    initiator: false,
                    version: false,
                    response: true,
                },
                message_id: 0,
                length: 0,
            },
            payloads: vec![Payload::Notify(n)],
        };
        if let Ok(raw) = msg.emit() {
            self.transmit(d.dst, d.src, raw);
        }
    }

    /// Responder: an IKE_SA_INIT request (or its retransmission).
    pub(in crate::ike::session) fn init_request(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        msg: &Message,
    ) -> Result<(), &'static str> {
        let h = msg.header;
        if !h.flags.initiator || h.message_id != 0 || h.spi_r != [0; 8] {
            return Err("bad_header");
        }
        // §2.1: a retransmitted request gets the same response while we wait for IKE_AUTH;
        // once IKE_AUTH arrived the initiator has it
        if let Some(spi) = self.init_index.get(&(h.spi_i, d.src)) {
            let again = self.sas.get(spi).and_then(|sa| {
                let hs = sa.hs.as_ref().filter(|hs| hs.init_req == d.bytes)?;
                Some(hs.init_resp.clone())
            });
            return match again {
                Some(resp) => {
                    self.transmit(d.dst, d.src, resp);
                    Ok(())
                }
                None => Err("init_retransmit"),
            };
        }
        let cands = self.candidates(&d);
        if cands.is_empty() {
            return Err("no_matching_conn");
        }
        let inner = Inner::new(&msg.payloads);
        let (Some(offer), Some(ke), Some(ni)) = (inner.sa, inner.ke, inner.nonce) else {
            return Err("missing_payload");
        };
        // §2.6: beyond the threshold of half-open SAs, demand a cookie
        let threshold = cands
            .iter()
            .filter_map(|i| self.conns.get(*i))
            .map(|c| c.timers.cookie_threshold)
            .min()
            .unwrap_or(0);
        if self.half_open >= threshold {
            let ip = d.src.ip();
            let ok = match inner.notify(NotifyType::COOKIE) {
                Some(c) => self
                    .cookies
                    .check(now, &*self.rng, &c.data, ni, ip, &h.spi_i)?,
                None => false,
            };
            if !ok {
                let cookie = self.cookies.make(now, &*self.rng, ni, ip, &h.spi_i)?;
                self.stateless_reply(&d, h.spi_i, NotifyPayload::new(NotifyType::COOKIE, &cookie));
                return Err("cookie_required");
            }
        }
        if self.half_open >= MAX_HALF_OPEN {
            return Err("half_open_limit");
        }
        if self.sas.len() >= MAX_IKE_SAS {
            return Err("ike_sa_limit");
        }
        // The dataplane only does ESP in UDP (RFC 3948): refuse what could not be encapsulated.
        let no_proposal = NotifyPayload::new(NotifyType::NO_PROPOSAL_CHOSEN, &[]);
        let Some((nat_local, nat_remote)) = detect(msg, &h.spi_i, &[0; 8], d.src, d.dst) else {
            // no NAT-D: the peer does not do NAT traversal (§2.23)
            self.stateless_reply(&d, h.spi_i, no_proposal);
            return Err("peer_without_nat_t");
        };
        let force = cands
            .iter()
            .filter_map(|i| self.conns.get(*i))
            .any(|c| c.encap);
        if !(nat_local || nat_remote || force) {
            self.stateless_reply(&d, h.spi_i, no_proposal);
            return Err("encap_off_without_nat");
        }
        // §2.7: our preference among the matching connections' suites
        let chosen = cands.iter().find_map(|i| {
            let c = self.conns.get(*i)?;
            select_ike(offer, &c.ike).ok().map(|ch| (*i, ch))
        });
        let Some((idx, chosen)) = chosen else {
            self.stateless_reply(&d, h.spi_i, no_proposal);
            return Err("no_proposal_chosen");
        };
        let suite = chosen.suite;
        match check_ke(ke, suite.dh) {
            Ok(()) => {}
            Err(IkeError::KeGroupMismatch) => {
                // §1.2: tell the initiator which group we want
                self.stateless_reply(&d, h.spi_i, NotifyPayload::invalid_ke(suite.dh.id()));
                return Err("invalid_ke_payload");
            }
            Err(e) => return Err(e.name()),
        }
        let spi_r = self.new_ike_spi()?;
        let ke_r = KeyExchange::generate(suite.dh, &*self.rng).map_err(IkeError::name)?;
        let nr = self.nonce()?;
        let ke_r_pub = ke_r.public_value().to_vec();
        let shared = ke_r.agree(&ke.data).map_err(IkeError::name)?;
        let seed = skeyseed(suite.prf, ni, &nr, &shared);
        let keys =
            IkeSaKeys::derive(&suite, &seed, ni, &nr, &h.spi_i, &spi_r).map_err(IkeError::name)?;
        let crypto = Crypto::new(suite, keys, false).map_err(IkeError::name)?;
        let mut payloads = vec![
            Payload::Sa(chosen.reply(&[])),
            Payload::Ke(KePayload {
                group: suite.dh.id(),
                data: ke_r_pub,
            }),
            Payload::Nonce(nr.clone()),
        ];
        payloads.extend(natd_payloads(
            &h.spi_i,
            &spi_r,
            d.dst,
            d.src,
            self.fake_natd(force)?,
        ));
        let peer = self.new_peer_id();
        let mut sa = IkeSa::new(idx, false, d.dst, d.src, peer, now);
        sa.spi_i = h.spi_i;
        sa.spi_r = spi_r;
        sa.init_src = Some(d.src);
        let raw = Message {
            header: sa.header(ExchangeType::IKE_SA_INIT, true, 0),
            payloads,
        }
        .emit()
        .map_err(IkeError::name)?;
        sa.phase = Phase::HalfOpen {
            deadline: later(now, HALF_OPEN_TIMEOUT),
        };
        sa.nat_local = nat_local;
        sa.nat_remote = nat_remote;
        sa.encap_forced = force;
        sa.hs = Some(Handshake {
            ni: ni.to_vec(),
            nr,
            init_req: d.bytes.to_vec(),
            init_resp: raw.clone(),
            ke: None,
            cookie: None,
            restarts: 0,
            child_spi: 0,
        });
        sa.crypto = Some(crypto);
        sa.peer_next_id = 1;
        sa.cached = Some((0, raw.clone()));
        self.transmit(d.dst, d.src, raw);
        self.put_back(sa);
        Ok(())
    }

    /// Initiator: the IKE_SA_INIT response.
    pub(in crate::ike::session) fn init_response(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        msg: &Message,
    ) -> Result<(), &'static str> {
        let h = msg.header;
        let key = u64::from_be_bytes(h.spi_i);
        match self.sas.get(&key) {
            None => return Err("unknown_spi"),
            Some(sa)
                if sa.initiator
                    && sa.phase == Phase::InitSent
                    && !h.flags.initiator
                    && h.message_id == 0 => {}
            Some(_) => return Err("unexpected_response"),
        }
        self.with_sa(key, |e, sa| e.init_response_sa(now, d, msg, sa))
    }

    fn init_response_sa(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        msg: &Message,
        sa: &mut IkeSa,
    ) -> Result<(), &'static str> {
        let h = msg.header;
        let inner = Inner::new(&msg.payloads);
        let offered = self
            .conns
            .get(sa.conn)
            .map(|c| c.ike.clone())
            .unwrap_or_default();
        let hs = sa.hs.as_mut().ok_or("unexpected_response")?;
        // §2.6: retry with the cookie
        if let Some(c) = inner.notify(NotifyType::COOKIE) {
            if hs.restarts >= MAX_RESTARTS {
                return Err("too_many_restarts");
            }
            hs.restarts += 1;
            hs.cookie = Some(c.data.clone());
            return self.send_init(now, sa);
        }
        // §1.2: retry with the group the responder wants, if we offered it
        if let Some(n) = inner.notify(NotifyType::INVALID_KE_PAYLOAD) {
            let group = n.invalid_ke_group().and_then(DhGroup::from_id);
            let current = hs.ke.as_ref().map(KeyExchange::group);
            let Some(group) =
                group.filter(|g| Some(*g) != current && offered.iter().any(|s| s.dh == *g))
            else {
                return Err("invalid_ke_payload");
            };
            if hs.restarts >= MAX_RESTARTS {
                return Err("too_many_restarts");
            }
            hs.restarts += 1;
            hs.ke = Some(KeyExchange::generate(group, &*self.rng).map_err(IkeError::name)?);
            return self.send_init(now, sa);
        }
        if let Some(n) = inner.error() {
            // §2.21.1: the responder refused (NO_PROPOSAL_CHOSEN, ...)
            self.close(sa, super::super::engine::notify_name(n.ty));
            return Ok(());
        }
        let (Some(reply), Some(ke), Some(nr)) = (inner.sa, inner.ke, inner.nonce) else {
            return Err("missing_payload");
        };
        if h.spi_r == [0; 8] {
            return Err("bad_header");
        }
        let chosen = accept_ike_reply(reply, &offered).map_err(IkeError::name)?;
        let suite = chosen.suite;
        let ours = hs.ke.as_ref().map(KeyExchange::group);
        if ours != Some(suite.dh) {
            return Err("invalid_ke_payload");
        }
        check_ke(ke, suite.dh).map_err(IkeError::name)?;
        // The dataplane only does ESP in UDP (RFC 3948): give up on an SA it could not serve.
        let Some((nat_local, nat_remote)) = detect(msg, &sa.spi_i, &h.spi_r, d.src, d.dst) else {
            self.close(sa, "peer_without_nat_t");
            return Ok(());
        };
        if !(nat_local || nat_remote || sa.encap_forced) {
            self.close(sa, "encap_off_without_nat");
            return Ok(());
        }
        let Some(private) = hs.ke.take() else {
            return Err("unexpected_response");
        };
        let shared = match private.agree(&ke.data) {
            Ok(s) => s,
            Err(e) => {
                // our private value is spent: this attempt cannot complete
                self.close(sa, e.name());
                return Err(e.name());
            }
        };
        let seed = skeyseed(suite.prf, &hs.ni, nr, &shared);
        let keys = IkeSaKeys::derive(&suite, &seed, &hs.ni, nr, &sa.spi_i, &h.spi_r)
            .map_err(IkeError::name)?;
        hs.nr = nr.to_vec();
        hs.init_resp = d.bytes.to_vec();
        sa.crypto = Some(Crypto::new(suite, keys, true).map_err(IkeError::name)?);
        sa.spi_r = h.spi_r;
        sa.nat_local = nat_local;
        sa.nat_remote = nat_remote;
        if !d.dst.ip().is_unspecified() {
            sa.local = SocketAddr::new(d.dst.ip(), sa.local.port());
        }
        if nat_local || nat_remote || sa.encap_forced {
            // §2.23: "the initiator MUST ... use port 4500 for all subsequent messages"; when
            // we force encapsulation the peer believes there is a NAT and expects the same
            sa.local.set_port(4500);
            sa.remote.set_port(4500);
        }
        sa.outstanding = None;
        sa.phase = Phase::AuthSent;
        sa.last_heard = now;
        self.send_auth(now, sa)
    }
}
