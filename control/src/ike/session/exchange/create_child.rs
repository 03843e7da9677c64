//! CREATE_CHILD_SA (RFC 7296 §1.3): additional child SAs (§1.3.1), rekeying child SAs
//! (§1.3.3, §2.8) and the IKE SA (§1.3.2, §2.18), both roles, with PFS when the ESP suite
//! names a D-H group.
//!
//! Collisions: a rekey request for an SA we are rekeying ourselves is answered as usual
//! (§2.25.1); when our own exchange completes, "the SA created with the lowest of the four
//! nonces" is redundant and its creator deletes it, while the surviving exchange's initiator
//! deletes the old SA (§2.8.1 for child SAs, §2.8.2 for the IKE SA).

use std::time::Instant;

use xdpsec_dataplane::sa::IpPrefix;

use super::super::child::{NewChild, esp_offer};
use super::super::engine::{
    Engine, MAX_CHILD_PAIRS, MAX_CHILDREN, MAX_IKE_SAS, TEMPORARY_FAILURE_WAIT, later, notify_name,
};
use super::super::ike_sa::{
    ChildState, Collision, Crypto, IkeSa, Intent, Outstanding, Phase, Request,
};
use super::super::ts::{accept, narrow, payload};
use super::{Inner, notification};
use crate::ike::IkeError;
use crate::ike::crypto::dh::{KeyExchange, check_ke};
use crate::ike::crypto::keys::{ChildSaKeys, IkeSaKeys, skeyseed_rekey};
use crate::ike::crypto::sk::Opened;
use crate::ike::crypto::transform::DhGroup;
use crate::ike::header::ExchangeType;
use crate::ike::payload::{KePayload, NotifyPayload, NotifyType, Payload, ProtocolId, SaPayload};
use crate::ike::proposal::{accept_esp_reply, accept_ike_reply, select_esp, select_ike};

/// A CREATE_CHILD_SA request body for a child pair, with what its response needs.
struct ChildOffer {
    payloads: Vec<Payload>,
    inbound: u32,
    ni: Vec<u8>,
    ke: Option<KeyExchange>,
}

/// Our answer to a CREATE_CHILD_SA request that made a child pair.
struct Answered {
    resp: Vec<Payload>,
    /// Our inbound SPI of the new pair.
    inbound: u32,
    ni: Vec<u8>,
    nr: Vec<u8>,
}

fn ke_payload(ke: &KeyExchange) -> Payload {
    Payload::Ke(KePayload {
        group: ke.group().id(),
        data: ke.public_value().to_vec(),
    })
}

impl Engine {
    /// Time a peer takes to give up a request: the whole retransmission schedule (§2.4).
    pub(in crate::ike::session) fn retransmit_span(&self, sa: &IkeSa) -> std::time::Duration {
        let t = self.timers(sa);
        let factor = 2u32
            .checked_pow(t.retransmit_tries.saturating_add(1))
            .unwrap_or(u32::MAX);
        t.retransmit_base.saturating_mul(factor)
    }

    // ----- child SA rekey, initiator -----

    /// REKEY_SA, SA, Ni, [KEi], TSi, TSr (§1.3.3).
    pub(in crate::ike::session) fn start_child_rekey(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        old_inbound: u32,
    ) -> Result<(), &'static str> {
        let Some(child) = sa
            .child(old_inbound)
            .filter(|c| c.state == ChildState::Installed)
        else {
            return Ok(());
        };
        let rekey_sa = Payload::Notify(NotifyPayload {
            protocol: ProtocolId::ESP.0,
            spi: old_inbound.to_be_bytes().to_vec(),
            ty: NotifyType::REKEY_SA,
            data: Vec::new(),
        });
        let (pfs, local_ts, remote_ts) = (
            child.pfs_group,
            child.local_ts.clone(),
            child.remote_ts.clone(),
        );
        let offer = self.child_offer(sa, pfs, Some(rekey_sa), &local_ts, &remote_ts)?;
        if let Some(c) = sa.child_mut(old_inbound) {
            c.state = ChildState::Rekeying;
        }
        let kind = Request::RekeyChild {
            old_inbound,
            new_inbound: offer.inbound,
            local_ts,
            remote_ts,
            ni: offer.ni,
            ke: offer.ke,
            collision: None,
        };
        self.send_child_request(now, sa, &offer.payloads, kind)
    }

    /// Send a CREATE_CHILD_SA request that reserved an inbound SPI; the SPI is released if
    /// that fails.
    fn send_child_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        payloads: &[Payload],
        kind: Request,
    ) -> Result<(), &'static str> {
        let spi = kind.reserved_spi();
        let r = self.send_request(now, sa, ExchangeType::CREATE_CHILD_SA, payloads, kind);
        if let (Err(_), Some(spi)) = (&r, spi) {
            self.inbound_spis.remove(&spi);
        }
        r
    }

    /// The body of a CREATE_CHILD_SA request for a child pair (§1.3.1, §1.3.3): `head`
    /// (REKEY_SA for a rekey), SA (our ESP proposals with a fresh inbound SPI), Ni, KEi when
    /// PFS is configured (`pfs` is the group the peer asked for before, if it did), TSi, TSr.
    fn child_offer(
        &mut self,
        sa: &IkeSa,
        pfs: Option<DhGroup>,
        head: Option<Payload>,
        local_ts: &[IpPrefix],
        remote_ts: &[IpPrefix],
    ) -> Result<ChildOffer, &'static str> {
        let suites = self
            .conns
            .get(sa.conn)
            .map(|c| c.esp.clone())
            .unwrap_or_default();
        let group = pfs.or_else(|| suites.first().and_then(|s| s.dh));
        let ni = self.nonce()?;
        let ke = match group {
            Some(g) => Some(KeyExchange::generate(g, &*self.rng).map_err(IkeError::name)?),
            None => None,
        };
        let inbound = self.new_child_spi()?;
        let mut payloads: Vec<Payload> = head.into_iter().collect();
        payloads.push(Payload::Sa(esp_offer(&suites, inbound)));
        payloads.push(Payload::Nonce(ni.clone()));
        payloads.extend(ke.as_ref().map(ke_payload));
        payloads.push(Payload::TsI(payload(local_ts)));
        payloads.push(Payload::TsR(payload(remote_ts)));
        Ok(ChildOffer {
            payloads,
            inbound,
            ni,
            ke,
        })
    }

    /// A child rekey of ours did not happen: back to Installed, maybe retry at `retry`.
    fn child_rekey_failed(
        &mut self,
        sa: &mut IkeSa,
        old_inbound: u32,
        new_inbound: u32,
        retry: Option<Instant>,
    ) {
        self.inbound_spis.remove(&new_inbound);
        if let Some(c) = sa.child_mut(old_inbound)
            && c.state == ChildState::Rekeying
        {
            c.state = ChildState::Installed;
            c.rekey_at = retry;
        }
    }

    /// The child was replaced; the initiator of the surviving rekey deletes it (§1.3.3,
    /// §2.8.1) — or we do at its expiry.
    fn mark_rekeyed(sa: &mut IkeSa, inbound: u32) {
        if let Some(c) = sa.child_mut(inbound) {
            c.state = ChildState::Rekeyed;
            c.rekey_at = None;
        }
    }

    /// The CREATE_CHILD_SA response to our child rekey.
    pub(in crate::ike::session) fn child_rekey_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        kind: Request,
        opened: &Opened,
    ) -> Result<(), &'static str> {
        let Request::RekeyChild {
            old_inbound,
            new_inbound,
            local_ts,
            remote_ts,
            ni,
            ke,
            collision,
        } = kind
        else {
            return Err("unexpected_response");
        };
        let inner = Inner::new(&opened.inner);
        if collision.is_some() && inner.error().is_some() {
            // ours failed, the peer's rekey of the same child (which we answered) stands
            self.inbound_spis.remove(&new_inbound);
            Self::mark_rekeyed(sa, old_inbound);
            return Ok(());
        }
        if let Some(n) = inner.error() {
            let retry = later(
                now,
                TEMPORARY_FAILURE_WAIT + self.jitter(TEMPORARY_FAILURE_WAIT),
            );
            match n.ty {
                // §2.25: wait, then try again
                NotifyType::TEMPORARY_FAILURE => {
                    self.child_rekey_failed(sa, old_inbound, new_inbound, Some(retry));
                }
                // §2.25: "silently delete the Child SA"
                NotifyType::CHILD_SA_NOT_FOUND => {
                    self.inbound_spis.remove(&new_inbound);
                    self.remove_child(sa, old_inbound, false);
                }
                // §1.3: retry with the group the peer wants
                NotifyType::INVALID_KE_PAYLOAD => {
                    let group = n.invalid_ke_group().and_then(DhGroup::from_id);
                    let asked_before = sa.child(old_inbound).and_then(|c| c.pfs_group);
                    let again = group.filter(|g| asked_before != Some(*g)).map(|_| now);
                    self.child_rekey_failed(sa, old_inbound, new_inbound, again.or(Some(retry)));
                    if let Some(c) = sa.child_mut(old_inbound) {
                        c.pfs_group = group.or(c.pfs_group);
                    }
                }
                // refused: the child lives until it expires (then it is deleted)
                _ => {
                    self.drop_msg(notify_name(n.ty));
                    self.child_rekey_failed(sa, old_inbound, new_inbound, None);
                }
            }
            return Ok(());
        }
        let negotiated =
            self.child_reply_keys(sa, &inner, &ni, ke, new_inbound, &local_ts, &remote_ts);
        let mut child = match negotiated {
            Ok(c) => c,
            Err(reason) => {
                self.child_rekey_failed(sa, old_inbound, new_inbound, None);
                if collision.is_some() {
                    Self::mark_rekeyed(sa, old_inbound);
                }
                return Err(reason);
            }
        };
        child.replaces = Some(old_inbound);
        let nr = inner.nonce.unwrap_or_default();
        if collision.is_some_and(|c| c.ours_is_redundant(&ni, nr)) {
            // §2.8.1: ours has the lowest nonce: we delete it; the peer's pair replaces the
            // old one, which the peer deletes
            self.install_child(now, sa, child, false)?;
            sa.queue.push_back(Intent::DeleteChild(new_inbound));
        } else {
            // make-before-break: the new pair is up before the old one is deleted (§2.8)
            self.install_child(now, sa, child, true)?;
            sa.queue.push_back(Intent::DeleteChild(old_inbound));
        }
        Self::mark_rekeyed(sa, old_inbound);
        Ok(())
    }

    /// Check the peer's answer to our request for a child pair (a rekey or an additional
    /// one) and derive the new pair's keys (§2.17).
    #[allow(clippy::too_many_arguments)]
    fn child_reply_keys(
        &self,
        sa: &IkeSa,
        inner: &Inner<'_>,
        ni: &[u8],
        ke: Option<KeyExchange>,
        new_inbound: u32,
        offered_local: &[IpPrefix],
        offered_remote: &[IpPrefix],
    ) -> Result<NewChild, &'static str> {
        let (Some(reply), Some(nr), Some(tsi), Some(tsr)) =
            (inner.sa, inner.nonce, inner.ts_i, inner.ts_r)
        else {
            return Err("missing_payload");
        };
        let suites = self
            .conns
            .get(sa.conn)
            .map(|c| c.esp.clone())
            .unwrap_or_default();
        let chosen = accept_esp_reply(reply, &suites).map_err(IkeError::name)?;
        let shared = match (chosen.suite.dh, ke, inner.ke) {
            (None, _, _) => None,
            (Some(g), Some(ke), Some(ker)) if ke.group() == g => {
                check_ke(ker, g).map_err(IkeError::name)?;
                Some(ke.agree(&ker.data).map_err(IkeError::name)?)
            }
            _ => return Err("invalid_ke_payload"),
        };
        let local_ts = accept(tsi, offered_local).ok_or("ts_unacceptable")?;
        let remote_ts = accept(tsr, offered_remote).ok_or("ts_unacceptable")?;
        let c = sa.crypto.as_ref().ok_or("unexpected_response")?;
        let keys = ChildSaKeys::derive(
            c.suite.prf,
            &c.keys.sk_d,
            &chosen.suite,
            shared.as_ref().map(|s| s.as_slice()),
            ni,
            nr,
        )
        .map_err(IkeError::name)?;
        Ok(NewChild {
            inbound: new_inbound,
            outbound: u32::from_be_bytes(chosen.peer_spi),
            suite: chosen.suite,
            keys,
            initiator: true,
            local_ts,
            remote_ts,
            replaces: None,
        })
    }

    // ----- additional child SA, initiator -----

    /// SA, Ni, [KEi], TSi, TSr (§1.3.1): one more child pair with the connection's selectors.
    pub(in crate::ike::session) fn start_new_child(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
    ) -> Result<(), &'static str> {
        let (local_ts, remote_ts) = self.child_selectors(sa);
        let offer = self.child_offer(sa, None, None, &local_ts, &remote_ts)?;
        let kind = Request::NewChild {
            inbound: offer.inbound,
            local_ts,
            remote_ts,
            ni: offer.ni,
            ke: offer.ke,
        };
        self.send_child_request(now, sa, &offer.payloads, kind)
    }

    /// The CREATE_CHILD_SA response to our request for an additional child pair.
    pub(in crate::ike::session) fn new_child_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        kind: Request,
        opened: &Opened,
    ) -> Result<(), &'static str> {
        let Request::NewChild {
            inbound,
            local_ts,
            remote_ts,
            ni,
            ke,
        } = kind
        else {
            return Err("unexpected_response");
        };
        let inner = Inner::new(&opened.inner);
        if let Some(n) = inner.error() {
            // refused (NO_ADDITIONAL_SAS, TS_UNACCEPTABLE, ...): the IKE SA carries on
            self.inbound_spis.remove(&inbound);
            self.drop_msg(notify_name(n.ty));
            return Ok(());
        }
        match self.child_reply_keys(sa, &inner, &ni, ke, inbound, &local_ts, &remote_ts) {
            Ok(child) => self.install_child(now, sa, child, true),
            Err(reason) => {
                self.inbound_spis.remove(&inbound);
                Err(reason)
            }
        }
    }

    // ----- IKE SA rekey, initiator -----

    /// SA (IKE, with our new SPI), Ni, KEi (§1.3.2).
    pub(in crate::ike::session) fn start_ike_rekey(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
    ) -> Result<(), &'static str> {
        let Some(current) = sa.crypto.as_ref().map(|c| c.suite) else {
            return Ok(());
        };
        let suites = self
            .conns
            .get(sa.conn)
            .map(|c| c.ike.clone())
            .unwrap_or_default();
        let group = sa.rekey_group.unwrap_or(current.dh);
        let new_spi = self.new_ike_spi()?;
        let ni = self.nonce()?;
        let ke = KeyExchange::generate(group, &*self.rng).map_err(IkeError::name)?;
        let p = vec![
            Payload::Sa(SaPayload {
                proposals: suites
                    .iter()
                    .zip(1..=32u8)
                    .map(|(s, n)| s.proposal(n, &new_spi))
                    .collect(),
            }),
            Payload::Nonce(ni.clone()),
            ke_payload(&ke),
        ];
        let kind = Request::RekeyIke {
            new_spi,
            ni,
            ke: Some(ke),
            collision: None,
        };
        self.send_request(now, sa, ExchangeType::CREATE_CHILD_SA, &p, kind)
    }

    /// The CREATE_CHILD_SA response to our IKE rekey.
    pub(in crate::ike::session) fn ike_rekey_response(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        kind: Request,
        opened: &Opened,
    ) -> Result<(), &'static str> {
        let Request::RekeyIke {
            new_spi,
            ni,
            ke,
            collision,
        } = kind
        else {
            return Err("unexpected_response");
        };
        let inner = Inner::new(&opened.inner);
        if let (Some(c), Some(_)) = (&collision, inner.error()) {
            // ours failed, the peer's rekey (which we answered) stands
            self.adopt(now, sa, c.created);
            return Ok(());
        }
        let retry = later(
            now,
            TEMPORARY_FAILURE_WAIT + self.jitter(TEMPORARY_FAILURE_WAIT),
        );
        if let Some(n) = inner.error() {
            if sa.phase == Phase::Established {
                sa.rekey_at = match n.ty {
                    NotifyType::TEMPORARY_FAILURE => Some(retry),
                    NotifyType::INVALID_KE_PAYLOAD => {
                        let g = n.invalid_ke_group().and_then(DhGroup::from_id);
                        let again = g.is_some() && g != sa.rekey_group;
                        sa.rekey_group = g.or(sa.rekey_group);
                        Some(if again { now } else { retry })
                    }
                    // refused: the IKE SA is deleted when it expires
                    _ => None,
                };
            }
            return Ok(());
        }
        let (Some(reply), Some(nr), Some(ker), Some(ke)) = (inner.sa, inner.nonce, inner.ke, ke)
        else {
            sa.rekey_at = Some(retry);
            return Err("missing_payload");
        };
        let suites = self
            .conns
            .get(sa.conn)
            .map(|c| c.ike.clone())
            .unwrap_or_default();
        let chosen = accept_ike_reply(reply, &suites).map_err(IkeError::name)?;
        let peer_spi = <[u8; 8]>::try_from(chosen.peer_spi.as_slice())
            .ok()
            .filter(|s| *s != [0; 8])
            .ok_or("bad_proposal")?;
        if ke.group() != chosen.suite.dh {
            sa.rekey_at = Some(retry);
            return Err("invalid_ke_payload");
        }
        check_ke(ker, chosen.suite.dh).map_err(IkeError::name)?;
        let shared = ke.agree(&ker.data).map_err(IkeError::name)?;
        let old = sa.crypto.as_ref().ok_or("unexpected_response")?;
        // §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), SPIs of the new SA
        let seed = skeyseed_rekey(old.suite.prf, &old.keys.sk_d, &shared, &ni, nr);
        let keys = IkeSaKeys::derive(&chosen.suite, &seed, &ni, nr, &new_spi, &peer_spi)
            .map_err(IkeError::name)?;
        let crypto = Crypto::new(chosen.suite, keys, true).map_err(IkeError::name)?;
        let mut ours = self.rekeyed_sa(now, sa, true, new_spi, peer_spi, crypto);
        match collision {
            Some(c) if c.ours_is_redundant(&ni, nr) => {
                // §2.8.2: ours has the lowest nonce: delete it; the peer's takes over
                ours.delete_reason = "rekey_collision";
                ours.queue.push_back(Intent::DeleteIke);
                self.pump(now, &mut ours);
                self.put_back(ours);
                self.adopt(now, sa, c.created);
            }
            other => {
                // ours survives; the peer deletes the redundant one it made, if any
                if let Some(c) = other
                    && let Some(mut theirs) = self.take(c.created)
                {
                    theirs.phase = Phase::Superseded {
                        until: later(now, self.retransmit_span(&theirs)),
                    };
                    self.put_back(theirs);
                }
                self.take_over(now, sa, &mut ours);
                sa.delete_reason = "rekeyed";
                sa.queue.clear();
                sa.queue.push_back(Intent::DeleteIke);
                self.pump(now, &mut ours);
                self.put_back(ours);
            }
        }
        Ok(())
    }

    /// The IKE SA that replaces `old` after a rekey (§2.18): fresh message IDs, the same peer
    /// and endpoints; not announced, without children until [`Engine::take_over`].
    fn rekeyed_sa(
        &self,
        now: Instant,
        old: &IkeSa,
        initiator: bool,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        crypto: Crypto,
    ) -> IkeSa {
        let mut n = IkeSa::new(old.conn, initiator, old.local, old.remote, old.peer, now);
        n.spi_i = spi_i;
        n.spi_r = spi_r;
        n.crypto = Some(crypto);
        n.nat_local = old.nat_local;
        n.nat_remote = old.nat_remote;
        n.encap_forced = old.encap_forced;
        n.remote_id = old.remote_id.clone();
        n.phase = Phase::Established;
        n.established = Some(now);
        n
    }

    /// `new` replaces `old`: it takes the children and the virtual IP and is announced with
    /// IkeUp; `old` points at it (for late deletes of moved children).
    fn take_over(&mut self, now: Instant, old: &mut IkeSa, new: &mut IkeSa) {
        new.children = std::mem::take(&mut old.children);
        // pending child work (deletes of replaced or redundant pairs, rekeys) moves along
        new.queue = old
            .queue
            .drain(..)
            .filter(|i| {
                matches!(
                    i,
                    Intent::DeleteChild(_) | Intent::RekeyChild(_) | Intent::NewChild
                )
            })
            .collect();
        new.vip = old.vip;
        new.leased = std::mem::replace(&mut old.leased, false);
        self.establish(now, new);
        old.successor = Some(new.our_spi());
    }

    /// The peer's rekey of `old` won: the new IKE SA it made (`created`, ours in the table)
    /// takes over, and the peer deletes `old` (§2.18).
    pub(in crate::ike::session) fn adopt(&mut self, now: Instant, old: &mut IkeSa, created: u64) {
        if let Some(mut new) = self.take(created) {
            self.take_over(now, old, &mut new);
            self.put_back(new);
        }
        old.phase = Phase::Superseded {
            until: later(now, self.retransmit_span(old)),
        };
        old.queue.clear();
    }

    // ----- responder -----

    /// A CREATE_CHILD_SA request: IKE rekey, child rekey, or an additional child.
    pub(in crate::ike::session) fn create_child_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        opened: &Opened,
    ) -> Result<Vec<Payload>, &'static str> {
        let inner = Inner::new(&opened.inner);
        if sa.phase != Phase::Established {
            // §2.25.1: we are closing this IKE SA
            return Ok(vec![notification(NotifyType::TEMPORARY_FAILURE)]);
        }
        let is_ike = inner
            .sa
            .is_some_and(|s| s.proposals.iter().any(|p| p.protocol == ProtocolId::IKE));
        if is_ike {
            return self.ike_rekey_request(now, sa, &inner);
        }
        match inner.notify(NotifyType::REKEY_SA) {
            Some(r) => self.child_rekey_request(now, sa, &inner, &r.spi),
            None => self.new_child_request(now, sa, &inner),
        }
    }

    fn child_rekey_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        inner: &Inner<'_>,
        rekey_spi: &[u8],
    ) -> Result<Vec<Payload>, &'static str> {
        let spi = <[u8; 4]>::try_from(rekey_spi).map_err(|_| "bad_notify_payload")?;
        // the SPI in REKEY_SA is the one the peer receives on: our outbound SPI (§1.3.3)
        let outbound = u32::from_be_bytes(spi);
        let Some(old) = sa.children.iter().find(|c| c.outbound_spi == outbound) else {
            // §2.25
            return Ok(vec![Payload::Notify(NotifyPayload {
                protocol: ProtocolId::ESP.0,
                spi: spi.to_vec(),
                ty: NotifyType::CHILD_SA_NOT_FOUND,
                data: Vec::new(),
            })]);
        };
        let old_inbound = old.inbound_spi;
        let (allowed_local, allowed_remote) = (old.local_ts.clone(), old.remote_ts.clone());
        if sa.children.len() >= MAX_CHILDREN {
            // the peer replaces pairs faster than it deletes them
            return Ok(vec![notification(NotifyType::TEMPORARY_FAILURE)]);
        }
        match old.state {
            ChildState::Installed => {}
            // §2.25.1: rekeying an SA we are closing
            ChildState::Deleting | ChildState::Rekeyed => {
                return Ok(vec![notification(NotifyType::TEMPORARY_FAILURE)]);
            }
            // §2.25.1: our rekey of it is in flight: "reply as usual"; our response decides
            // which new pair survives (§2.8.1)
            ChildState::Rekeying => {
                let ours = matches!(
                    &sa.outstanding,
                    Some(Outstanding { kind: Request::RekeyChild { old_inbound: o, .. }, .. })
                        if *o == old_inbound
                );
                if !ours {
                    return Ok(vec![notification(NotifyType::TEMPORARY_FAILURE)]);
                }
            }
        }
        // §2.9: the new pair covers what the old one did
        let answered = match self.answer_child(
            now,
            sa,
            inner,
            (&allowed_local, &allowed_remote),
            Some(old_inbound),
        )? {
            Ok(a) => a,
            Err(refusal) => return Ok(vec![refusal]),
        };
        match sa.outstanding.as_mut().map(|o| &mut o.kind) {
            Some(Request::RekeyChild {
                old_inbound: o,
                collision,
                ..
            }) if *o == old_inbound => {
                *collision = Some(Collision {
                    ni: answered.ni,
                    nr: answered.nr,
                    created: u64::from(answered.inbound),
                });
            }
            // the rekey's initiator deletes the old pair (§1.3.3); we do at its expiry otherwise
            _ => Self::mark_rekeyed(sa, old_inbound),
        }
        Ok(answered.resp)
    }

    /// An additional child pair the peer asks for (§1.3.1), within the connection's
    /// selectors, while the IKE SA has fewer than [`MAX_CHILD_PAIRS`]: else NO_ADDITIONAL_SAS
    /// ("the responder is unwilling to accept any more Child SAs on this IKE SA", §3.10.1).
    fn new_child_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        inner: &Inner<'_>,
    ) -> Result<Vec<Payload>, &'static str> {
        if sa.live_children() >= MAX_CHILD_PAIRS || sa.children.len() >= MAX_CHILDREN {
            return Ok(vec![notification(NotifyType::NO_ADDITIONAL_SAS)]);
        }
        let (local, remote) = self.child_selectors(sa);
        Ok(
            match self.answer_child(now, sa, inner, (&local, &remote), None)? {
                Ok(a) => a.resp,
                Err(refusal) => vec![refusal],
            },
        )
    }

    /// Negotiate the child pair a CREATE_CHILD_SA request asks for (§1.3.1, §1.3.3): our
    /// choice of its ESP proposals, PFS when the suite names a D-H group, its selectors
    /// narrowed to ours (§2.9), keys (§2.17). The pair is installed and announced.
    /// `Ok(Err(n))`: refused with notification `n`.
    fn answer_child(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        inner: &Inner<'_>,
        (allowed_local, allowed_remote): (&[IpPrefix], &[IpPrefix]),
        replaces: Option<u32>,
    ) -> Result<Result<Answered, Payload>, &'static str> {
        let (Some(offer), Some(ni), Some(tsi), Some(tsr)) =
            (inner.sa, inner.nonce, inner.ts_i, inner.ts_r)
        else {
            return Err("missing_payload");
        };
        let suites = self
            .conns
            .get(sa.conn)
            .map(|c| c.esp.clone())
            .unwrap_or_default();
        let Ok(chosen) = select_esp(offer, &suites) else {
            return Ok(Err(notification(NotifyType::NO_PROPOSAL_CHOSEN)));
        };
        let mut ke_r = None;
        let shared = match chosen.suite.dh {
            None => None,
            Some(g) => match inner.ke.map(|ke| (ke, check_ke(ke, g))) {
                Some((ke, Ok(()))) => {
                    let ours = KeyExchange::generate(g, &*self.rng).map_err(IkeError::name)?;
                    let p = ke_payload(&ours);
                    let s = ours.agree(&ke.data).map_err(IkeError::name)?;
                    ke_r = Some(p);
                    Some(s)
                }
                Some((_, Err(e))) if e != IkeError::KeGroupMismatch => return Err(e.name()),
                _ => return Ok(Err(Payload::Notify(NotifyPayload::invalid_ke(g.id())))),
            },
        };
        let local_ts = narrow(tsr, allowed_local);
        let remote_ts = narrow(tsi, allowed_remote);
        if local_ts.is_empty() || remote_ts.is_empty() {
            return Ok(Err(notification(NotifyType::TS_UNACCEPTABLE)));
        }
        let c = sa.crypto.as_ref().ok_or("unexpected_exchange")?;
        let nr = self.nonce()?;
        let keys = ChildSaKeys::derive(
            c.suite.prf,
            &c.keys.sk_d,
            &chosen.suite,
            shared.as_ref().map(|s| s.as_slice()),
            ni,
            &nr,
        )
        .map_err(IkeError::name)?;
        let inbound = self.new_child_spi()?;
        let mut resp = vec![
            Payload::Sa(chosen.reply(inbound.to_be_bytes())),
            Payload::Nonce(nr.clone()),
        ];
        resp.extend(ke_r);
        resp.push(Payload::TsI(payload(&remote_ts)));
        resp.push(Payload::TsR(payload(&local_ts)));
        let child = NewChild {
            inbound,
            outbound: u32::from_be_bytes(chosen.peer_spi),
            suite: chosen.suite,
            keys,
            initiator: false,
            local_ts,
            remote_ts,
            replaces,
        };
        self.install_child(now, sa, child, true)?;
        Ok(Ok(Answered {
            resp,
            inbound,
            ni: ni.to_vec(),
            nr,
        }))
    }

    fn ike_rekey_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        inner: &Inner<'_>,
    ) -> Result<Vec<Payload>, &'static str> {
        let (Some(offer), Some(ni), Some(ke)) = (inner.sa, inner.nonce, inner.ke) else {
            return Err("missing_payload");
        };
        if self.sas.len() >= MAX_IKE_SAS {
            return Ok(vec![notification(NotifyType::TEMPORARY_FAILURE)]);
        }
        let collision = match sa.outstanding.as_ref().map(|o| &o.kind) {
            // §2.25.2: our rekey of it is in flight: "reply as usual"; our response decides
            // which new IKE SA survives (§2.8.2)
            Some(Request::RekeyIke { .. }) => true,
            // a child exchange of ours is in flight on this IKE SA: finish it first (§2.25)
            Some(
                Request::RekeyChild { .. } | Request::DeleteChild { .. } | Request::NewChild { .. },
            ) => {
                return Ok(vec![notification(NotifyType::TEMPORARY_FAILURE)]);
            }
            _ => false,
        };
        let suites = self
            .conns
            .get(sa.conn)
            .map(|c| c.ike.clone())
            .unwrap_or_default();
        let Ok(chosen) = select_ike(offer, &suites) else {
            return Ok(vec![notification(NotifyType::NO_PROPOSAL_CHOSEN)]);
        };
        let peer_spi = <[u8; 8]>::try_from(chosen.peer_spi.as_slice())
            .ok()
            .filter(|s| *s != [0; 8])
            .ok_or("bad_proposal")?;
        match check_ke(ke, chosen.suite.dh) {
            Ok(()) => {}
            Err(IkeError::KeGroupMismatch) => {
                return Ok(vec![Payload::Notify(NotifyPayload::invalid_ke(
                    chosen.suite.dh.id(),
                ))]);
            }
            Err(e) => return Err(e.name()),
        }
        let new_spi = self.new_ike_spi()?;
        let nr = self.nonce()?;
        let ours = KeyExchange::generate(chosen.suite.dh, &*self.rng).map_err(IkeError::name)?;
        let ke_r = ke_payload(&ours);
        let shared = ours.agree(&ke.data).map_err(IkeError::name)?;
        let old = sa.crypto.as_ref().ok_or("unexpected_exchange")?;
        let seed = skeyseed_rekey(old.suite.prf, &old.keys.sk_d, &shared, ni, &nr);
        let keys = IkeSaKeys::derive(&chosen.suite, &seed, ni, &nr, &peer_spi, &new_spi)
            .map_err(IkeError::name)?;
        let crypto = Crypto::new(chosen.suite, keys, false).map_err(IkeError::name)?;
        let mut new = self.rekeyed_sa(now, sa, false, peer_spi, new_spi, crypto);
        if collision {
            if let Some(Outstanding {
                kind: Request::RekeyIke { collision, .. },
                ..
            }) = &mut sa.outstanding
            {
                *collision = Some(Collision {
                    ni: ni.to_vec(),
                    nr: nr.clone(),
                    created: new.our_spi(),
                });
            }
        } else {
            self.take_over(now, sa, &mut new);
            // the peer deletes the old IKE SA (§2.18); we forget it after its retransmissions
            sa.phase = Phase::Superseded {
                until: later(now, self.retransmit_span(sa)),
            };
            sa.queue.clear();
        }
        self.put_back(new);
        Ok(vec![
            Payload::Sa(chosen.reply(&new_spi)),
            Payload::Nonce(nr),
            ke_r,
        ])
    }
}
