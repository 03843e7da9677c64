//! Child SAs: proposals, and turning negotiated keys into the dataplane's [`SaParams`]
//! (RFC 7296 §2.17 key order, RFC 4106 §8.1 key ‖ salt).

use std::time::Instant;

use xdpsec_dataplane::sa::{
    Aead, Direction, IpPrefix, KeyMaterial, Lifetime, Mode, NatOa, SaParams, Selectors,
};

use super::engine::Engine;
use super::events::IkeEvent;
use super::ike_sa::{Child, ChildState, IkeSa};
use super::ts::effective;
use crate::ike::crypto::keys::ChildSaKeys;
use crate::ike::crypto::transform::{Encr, EspSuite};
use crate::ike::payload::SaPayload;

/// ESP suites for IKE_AUTH: without D-H groups, which only CREATE_CHILD_SA uses (§1.2:
/// "the SA offers in IKE_AUTH ... do not include a Diffie-Hellman group").
pub(super) fn auth_suites(esp: &[EspSuite]) -> Vec<EspSuite> {
    let mut v: Vec<EspSuite> = Vec::new();
    for s in esp {
        let s = EspSuite { dh: None, ..*s };
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

/// An SA payload offering `suites` (numbered from 1, §3.3.1) with our inbound SPI.
pub(super) fn esp_offer(suites: &[EspSuite], spi: u32) -> SaPayload {
    SaPayload {
        proposals: suites
            .iter()
            .zip(1..=32u8)
            .map(|(s, n)| s.proposal(n, spi.to_be_bytes()))
            .collect(),
    }
}

/// The dataplane's name for an ESP cipher.
fn aead(encr: Encr) -> Result<Aead, &'static str> {
    match encr {
        Encr::AesGcm16 { key_bits: 128 } => Ok(Aead::Aes128Gcm16),
        Encr::AesGcm16 { key_bits: 256 } => Ok(Aead::Aes256Gcm16),
        _ => Err("unsupported_transform"),
    }
}

/// A negotiated child SA pair.
pub(super) struct NewChild {
    pub inbound: u32,
    pub outbound: u32,
    pub suite: EspSuite,
    pub keys: ChildSaKeys,
    /// We initiated the exchange that created it: our outbound keys are the "initiator to
    /// responder" ones (§2.17).
    pub initiator: bool,
    pub local_ts: Vec<IpPrefix>,
    pub remote_ts: Vec<IpPrefix>,
    /// The inbound SPI of the pair this one rekeys (§2.8); `None` for a new pair.
    pub replaces: Option<u32>,
}

impl Engine {
    /// The selectors a child pair of `sa` may cover, (ours, the peer's): the connection's
    /// networks, with the virtual IP in place of the side that holds it (§2.19).
    pub(super) fn child_selectors(&self, sa: &IkeSa) -> (Vec<IpPrefix>, Vec<IpPrefix>) {
        let (local, remote) = self
            .conns
            .get(sa.conn)
            .map(|c| (effective(&c.local_ts), effective(&c.remote_ts)))
            .unwrap_or_default();
        match sa.vip {
            // we assigned it: it is the peer's side
            Some(ip) if sa.leased => (local, vec![IpPrefix::host(ip)]),
            Some(ip) => (vec![IpPrefix::host(ip)], remote),
            None => (local, remote),
        }
    }

    /// Add a child to `sa` (and announce it with ChildUp).
    pub(super) fn install_child(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        c: NewChild,
        announce: bool,
    ) -> Result<(), &'static str> {
        let aead = aead(c.suite.encr)?;
        let replay_window = self.conns.get(sa.conn).map_or(0, |k| k.replay_window);
        let (out_key, in_key) = if c.initiator {
            (&c.keys.encr_i, &c.keys.encr_r)
        } else {
            (&c.keys.encr_r, &c.keys.encr_i)
        };
        let params =
            |spi: u32, direction: Direction, key: &[u8]| -> Result<SaParams, &'static str> {
                Ok(SaParams {
                    spi,
                    direction,
                    mode: Mode::Tunnel,
                    aead,
                    key: KeyMaterial::new(aead, key.to_vec()).map_err(|_| "bad_key_length")?,
                    local: sa.local,
                    remote: Some(sa.remote),
                    peer: sa.peer,
                    esn: c.suite.esn,
                    replay_window,
                    selectors: Selectors {
                        local: c.local_ts.clone(),
                        remote: c.remote_ts.clone(),
                    },
                    nat_oa: NatOa::default(),
                    lifetime: Lifetime::default(),
                })
            };
        let inbound = params(c.inbound, Direction::In, in_key)?;
        let outbound = params(c.outbound, Direction::Out, out_key)?;
        let t = self.timers(sa);
        let (rekey_at, expire_at) = self.lifetimes(now, t.child_lifetime, t.rekey_margin);
        sa.children.push(Child {
            inbound_spi: c.inbound,
            outbound_spi: c.outbound,
            suite: c.suite,
            local_ts: c.local_ts,
            remote_ts: c.remote_ts,
            created: now,
            rekey_at,
            expire_at,
            state: ChildState::Installed,
            announced: announce,
            pfs_group: None,
        });
        if announce {
            self.event(IkeEvent::ChildUp {
                conn: self.conn_name(sa.conn),
                ike_spi: sa.our_spi(),
                inbound,
                outbound,
                virtual_ip: sa.vip,
                replaces: c.replaces,
            });
        }
        Ok(())
    }
}
