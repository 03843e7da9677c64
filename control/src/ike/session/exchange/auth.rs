//! IKE_AUTH (RFC 7296 §1.2): PSK authentication (§2.15), the first child SA with traffic
//! selector narrowing (§2.9), configuration payloads for a virtual IP (§2.19, §3.15), and
//! INITIAL_CONTACT (§2.4).

use std::net::IpAddr;
use std::time::Instant;

use xdpsec_dataplane::sa::IpPrefix;

use super::super::child::{NewChild, auth_suites, esp_offer};
use super::super::engine::{Engine, later, notify_name};
use super::super::events::{Datagram, IkeEvent};
use super::super::ike_sa::{Handshake, IkeSa, Intent, Phase, Request};
use super::super::pool::Pool;
use super::super::ts::{accept, effective, narrow, payload};
use super::{Inner, notification};
use crate::ike::crypto::auth::{psk_auth, verify_psk_auth};
use crate::ike::crypto::keys::ChildSaKeys;
use crate::ike::crypto::sk::Opened;
use crate::ike::header::ExchangeType;
use crate::ike::payload::{
    AuthMethod, AuthPayload, CfgType, ConfigAttribute, ConfigPayload, IdPayload, NotifyType,
    Payload,
};
use crate::ike::proposal::{accept_esp_reply, select_esp};

/// The virtual IP in a CFG_REPLY (or the one a CFG_REQUEST asks for).
fn config_address(cp: &ConfigPayload) -> Option<IpAddr> {
    cp.attributes.iter().find_map(|a| match a.ty {
        ConfigAttribute::INTERNAL_IP4_ADDRESS => a.as_ipv4().map(IpAddr::V4),
        ConfigAttribute::INTERNAL_IP6_ADDRESS => a.as_ipv6_address().map(|(ip, _)| IpAddr::V6(ip)),
        _ => None,
    })
}

impl Engine {
    /// The IKE SA is up: timers start, the daemon hears of it.
    pub(in crate::ike::session) fn establish(&mut self, now: Instant, sa: &mut IkeSa) {
        let t = self.timers(sa);
        sa.phase = Phase::Established;
        sa.established = Some(now);
        sa.announced = true;
        sa.last_heard = now;
        (sa.rekey_at, sa.expire_at) = self.lifetimes(now, t.ike_lifetime, t.rekey_margin);
        // RFC 3948 §4: only the side behind the NAT keeps the mapping alive
        sa.next_keepalive =
            (sa.nat_local && !t.keepalive.is_zero()).then(|| later(now, t.keepalive));
        self.event(IkeEvent::IkeUp {
            conn: self.conn_name(sa.conn),
            ike_spi: sa.our_spi(),
            remote: sa.remote,
        });
    }

    /// Initiator: IDi, [N(INITIAL_CONTACT)], [IDr], AUTH, [CP(CFG_REQUEST)], SA, TSi, TSr.
    pub(in crate::ike::session) fn send_auth(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
    ) -> Result<(), &'static str> {
        let conn = self.conns.get(sa.conn).ok_or("unknown_conn")?;
        let crypto = sa.crypto.as_ref().ok_or("unexpected_response")?;
        let hs = sa.hs.as_ref().ok_or("unexpected_response")?;
        let idi = IdPayload::new(&conn.local_id);
        let auth = psk_auth(
            crypto.suite.prf,
            &conn.psk,
            &hs.init_req,
            &hs.nr,
            &crypto.keys.sk_pi,
            &idi.body(),
        );
        let mut p = vec![
            Payload::IdI(idi),
            // §2.4: we hold no other IKE SA with this peer
            notification(NotifyType::INITIAL_CONTACT),
        ];
        if let Some(id) = &conn.remote_id {
            p.push(Payload::IdR(IdPayload::new(id)));
        }
        p.push(Payload::Auth(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: auth.to_vec(),
        }));
        if conn.request_vip {
            let ty = if sa.remote.is_ipv4() {
                ConfigAttribute::INTERNAL_IP4_ADDRESS
            } else {
                ConfigAttribute::INTERNAL_IP6_ADDRESS
            };
            p.push(Payload::Config(ConfigPayload {
                cfg_type: CfgType::REQUEST,
                attributes: vec![ConfigAttribute::request(ty)],
            }));
        }
        p.push(Payload::Sa(esp_offer(
            &auth_suites(&conn.esp),
            hs.child_spi,
        )));
        p.push(Payload::TsI(payload(&offered_local(
            conn.request_vip,
            &conn.local_ts,
            sa,
        ))));
        p.push(Payload::TsR(payload(&effective(&conn.remote_ts))));
        self.send_request(now, sa, ExchangeType::IKE_AUTH, &p, Request::Auth)
    }

    /// Responder: an IKE_AUTH request on a half-open SA. Returns the response payloads.
    pub(in crate::ike::session) fn auth_request(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        sa: &mut IkeSa,
        opened: &Opened,
    ) -> Result<Vec<Payload>, &'static str> {
        let inner = Inner::new(&opened.inner);
        let (Some(idi), Some(auth)) = (inner.id_i, inner.auth) else {
            return Err("missing_payload");
        };
        let identity = idi.identity().map_err(|e| e.name())?;
        let (suite, sk_pi, sk_pr, sk_d) = match &sa.crypto {
            Some(c) => (
                c.suite,
                c.keys.sk_pi.clone(),
                c.keys.sk_pr.clone(),
                c.keys.sk_d.clone(),
            ),
            None => return Err("unexpected_exchange"),
        };
        let Some(hs) = sa.hs.take() else {
            return Err("unexpected_exchange");
        };
        // §2.15: find the connection whose PSK produced AUTH; explicit identities first
        let mut cands: Vec<(u8, usize)> = self
            .candidates(&d)
            .into_iter()
            .filter_map(|i| {
                let c = self.conns.get(i)?;
                let id_ok = c.remote_id.as_ref().is_none_or(|r| *r == identity);
                if !id_ok || !c.ike.contains(&suite) {
                    return None;
                }
                let exact = u8::from(c.remote_id.is_some()) * 2;
                let idr_ok = inner
                    .id_r
                    .is_some_and(|r| r.identity().is_ok_and(|r| r == c.local_id));
                Some((exact + u8::from(idr_ok), i))
            })
            .collect();
        cands.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        let idi_body = idi.body();
        let found = (auth.method == AuthMethod::SHARED_KEY_MIC)
            .then(|| {
                cands.iter().find(|(_, i)| {
                    self.conns.get(*i).is_some_and(|c| {
                        verify_psk_auth(
                            suite.prf,
                            &c.psk,
                            &hs.init_req,
                            &hs.nr,
                            &sk_pi,
                            &idi_body,
                            &auth.data,
                        )
                        .is_ok()
                    })
                })
            })
            .flatten();
        let Some(&(_, idx)) = found else {
            // §2.21.2: AUTHENTICATION_FAILED, and no IKE SA
            self.drop_msg("authentication_failed");
            self.close(sa, "authentication_failed");
            return Ok(vec![notification(NotifyType::AUTHENTICATION_FAILED)]);
        };
        sa.conn = idx;
        sa.remote_id = Some(identity.clone());
        let Some(conn) = self.conns.get(idx).cloned() else {
            return Err("unknown_conn");
        };
        let idr = IdPayload::new(&conn.local_id);
        let our_auth = psk_auth(
            suite.prf,
            &conn.psk,
            &hs.init_resp,
            &hs.ni,
            &sk_pr,
            &idr.body(),
        );
        let mut resp = vec![
            Payload::IdR(idr),
            Payload::Auth(AuthPayload {
                method: AuthMethod::SHARED_KEY_MIC,
                data: our_auth.to_vec(),
            }),
        ];
        if inner.notify(NotifyType::INITIAL_CONTACT).is_some() {
            self.initial_contact(sa);
        }
        self.establish(now, sa);
        // the first child SA; failing it leaves the IKE SA up (§1.2)
        let (Some(offer), Some(tsi), Some(tsr)) = (inner.sa, inner.ts_i, inner.ts_r) else {
            return Ok(resp);
        };
        if let Some(cp) = inner.cp.filter(|c| c.cfg_type == CfgType::REQUEST)
            && let Some((first, count)) = conn.pool
        {
            let pool = self
                .pools
                .entry(idx)
                .or_insert_with(|| Pool::new(first, count));
            match pool.lease(config_address(cp), &identity) {
                Some(ip) => {
                    sa.vip = Some(ip);
                    sa.leased = true;
                }
                None => {
                    resp.push(notification(NotifyType::INTERNAL_ADDRESS_FAILURE));
                    return Ok(resp);
                }
            }
        }
        let Ok(chosen) = select_esp(offer, &auth_suites(&conn.esp)) else {
            resp.push(notification(NotifyType::NO_PROPOSAL_CHOSEN));
            return Ok(resp);
        };
        let remote_allowed = match sa.vip {
            Some(ip) => vec![IpPrefix::host(ip)],
            None => effective(&conn.remote_ts),
        };
        let local_ts = narrow(tsr, &effective(&conn.local_ts));
        let remote_ts = narrow(tsi, &remote_allowed);
        if local_ts.is_empty() || remote_ts.is_empty() {
            resp.push(notification(NotifyType::TS_UNACCEPTABLE));
            return Ok(resp);
        }
        let keys = ChildSaKeys::derive(suite.prf, &sk_d, &chosen.suite, None, &hs.ni, &hs.nr)
            .map_err(|e| e.name())?;
        let spi = self.new_child_spi()?;
        if let Some(ip) = sa.vip {
            let attr = match ip {
                IpAddr::V4(a) => ConfigAttribute::ipv4(ConfigAttribute::INTERNAL_IP4_ADDRESS, a),
                IpAddr::V6(a) => ConfigAttribute::ipv6_address(a, 128),
            };
            resp.push(Payload::Config(ConfigPayload {
                cfg_type: CfgType::REPLY,
                attributes: vec![attr],
            }));
        }
        resp.push(Payload::Sa(chosen.reply(spi.to_be_bytes())));
        resp.push(Payload::TsI(payload(&remote_ts)));
        resp.push(Payload::TsR(payload(&local_ts)));
        let child = NewChild {
            inbound: spi,
            outbound: u32::from_be_bytes(chosen.peer_spi),
            suite: chosen.suite,
            keys,
            initiator: false,
            local_ts,
            remote_ts,
            replaces: None,
        };
        self.install_child(now, sa, child, true)?;
        Ok(resp)
    }

    /// §2.4: the peer says it holds no other IKE SA with us; drop the stale ones it left.
    fn initial_contact(&mut self, sa: &IkeSa) {
        let stale: Vec<u64> = self
            .sas
            .iter()
            .filter(|(_, o)| {
                o.conn == sa.conn
                    && o.remote_id == sa.remote_id
                    && o.phase == Phase::Established
                    && o.remote.ip() == sa.remote.ip()
            })
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(mut old) = self.take(k) {
                self.close(&mut old, "initial_contact");
                self.put_back(old);
            }
        }
    }

    /// Initiator: the IKE_AUTH response.
    pub(in crate::ike::session) fn auth_response(
        &mut self,
        now: Instant,
        _d: Datagram<'_>,
        sa: &mut IkeSa,
        opened: &Opened,
    ) -> Result<(), &'static str> {
        let Some(hs) = sa.hs.take() else {
            return Err("unexpected_response");
        };
        let installed = self.auth_response_inner(now, sa, opened, &hs);
        if !matches!(installed, Ok(true)) {
            self.inbound_spis.remove(&hs.child_spi);
        }
        installed.map(|_| ())
    }

    /// Returns whether the child SA (with `hs.child_spi`) was installed.
    fn auth_response_inner(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        opened: &Opened,
        hs: &Handshake,
    ) -> Result<bool, &'static str> {
        let inner = Inner::new(&opened.inner);
        let Some(conn) = self.conns.get(sa.conn).cloned() else {
            return Err("unknown_conn");
        };
        if inner.notify(NotifyType::AUTHENTICATION_FAILED).is_some() {
            self.close(sa, "authentication_failed");
            return Ok(false);
        }
        let (Some(idr), Some(auth)) = (inner.id_r, inner.auth) else {
            self.close(
                sa,
                inner
                    .error()
                    .map_or("missing_payload", |n| notify_name(n.ty)),
            );
            return Ok(false);
        };
        let Ok(identity) = idr.identity() else {
            self.close(sa, "bad_id_payload");
            return Ok(false);
        };
        if conn.remote_id.as_ref().is_some_and(|r| *r != identity) {
            self.close(sa, "id_mismatch");
            return Ok(false);
        }
        let Some(crypto) = &sa.crypto else {
            return Err("unexpected_response");
        };
        let (prf, sk_d) = (crypto.suite.prf, crypto.keys.sk_d.clone());
        let verified = auth.method == AuthMethod::SHARED_KEY_MIC
            && verify_psk_auth(
                prf,
                &conn.psk,
                &hs.init_resp,
                &hs.ni,
                &crypto.keys.sk_pr,
                &idr.body(),
                &auth.data,
            )
            .is_ok();
        if !verified {
            self.close(sa, "authentication_failed");
            return Ok(false);
        }
        sa.remote_id = Some(identity);
        self.establish(now, sa);
        // the child SA; without one the connection has no purpose: delete the IKE SA
        let fail = |sa: &mut IkeSa, reason: &'static str| {
            sa.delete_reason = reason;
            sa.queue.push_back(Intent::DeleteIke);
            Ok(false)
        };
        if let Some(n) = inner.error() {
            self.drop_msg(notify_name(n.ty));
            return fail(sa, notify_name(n.ty));
        }
        let (Some(reply), Some(tsi), Some(tsr)) = (inner.sa, inner.ts_i, inner.ts_r) else {
            return fail(sa, "missing_payload");
        };
        let Ok(chosen) = accept_esp_reply(reply, &auth_suites(&conn.esp)) else {
            return fail(sa, "no_proposal_chosen");
        };
        sa.vip = inner
            .cp
            .filter(|c| c.cfg_type == CfgType::REPLY)
            .and_then(config_address);
        if conn.request_vip && sa.vip.is_none() {
            return fail(sa, "failed_cp_required");
        }
        let offered = offered_local(conn.request_vip, &conn.local_ts, sa);
        let local_ts = accept(tsi, &offered).map(|ts| match sa.vip {
            // §2.19: our side of the tunnel is the virtual IP
            Some(ip) if ts.iter().any(|p| p.contains(ip)) => vec![IpPrefix::host(ip)],
            Some(_) => Vec::new(),
            None => ts,
        });
        let remote_ts = accept(tsr, &effective(&conn.remote_ts));
        let (Some(local_ts), Some(remote_ts)) = (local_ts.filter(|t| !t.is_empty()), remote_ts)
        else {
            return fail(sa, "ts_unacceptable");
        };
        let keys = ChildSaKeys::derive(prf, &sk_d, &chosen.suite, None, &hs.ni, &hs.nr)
            .map_err(|e| e.name())?;
        let child = NewChild {
            inbound: hs.child_spi,
            outbound: u32::from_be_bytes(chosen.peer_spi),
            suite: chosen.suite,
            keys,
            initiator: true,
            local_ts,
            remote_ts,
            replaces: None,
        };
        self.install_child(now, sa, child, true)?;
        Ok(true)
    }
}

/// What the initiator offers as TSi: any address when it asks for a virtual IP (§2.19:
/// the responder narrows it to the assigned address), else its configured networks.
fn offered_local(request_vip: bool, local_ts: &[IpPrefix], sa: &IkeSa) -> Vec<IpPrefix> {
    match (request_vip, sa.remote.is_ipv4()) {
        (true, true) => vec![IpPrefix::ANY_V4],
        (true, false) => vec![IpPrefix::ANY_V6],
        (false, _) => effective(local_ts),
    }
}
