//! INFORMATIONAL (RFC 7296 §1.4): Delete of IKE and child SAs (§1.4.1), and the empty
//! request that checks liveness (§1.4).

use std::time::Instant;

use super::super::engine::Engine;
use super::super::ike_sa::{ChildState, IkeSa, Outstanding, Phase, Request};
use super::Inner;
use crate::ike::crypto::sk::Opened;
use crate::ike::header::ExchangeType;
use crate::ike::payload::{DeletePayload, Payload, ProtocolId};

impl Engine {
    /// Delete(IKE): "deleting an IKE SA implicitly closes any remaining Child SAs" (§1.4.1).
    pub(in crate::ike::session) fn start_delete_ike(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
    ) -> Result<(), &'static str> {
        sa.phase = Phase::Deleting;
        let p = [Payload::Delete(DeletePayload {
            protocol: ProtocolId::IKE.0,
            spis: Vec::new(),
        })];
        self.send_request(now, sa, ExchangeType::INFORMATIONAL, &p, Request::DeleteIke)
    }

    /// Delete(ESP) naming our inbound SPI (§1.4.1, §3.11).
    pub(in crate::ike::session) fn start_delete_child(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        inbound: u32,
    ) -> Result<(), &'static str> {
        let Some(c) = sa
            .child_mut(inbound)
            .filter(|c| c.state != ChildState::Deleting)
        else {
            return Ok(());
        };
        c.state = ChildState::Deleting;
        c.rekey_at = None;
        let p = [Payload::Delete(DeletePayload {
            protocol: ProtocolId::ESP.0,
            spis: vec![inbound.to_be_bytes()],
        })];
        self.send_request(
            now,
            sa,
            ExchangeType::INFORMATIONAL,
            &p,
            Request::DeleteChild { inbound },
        )
    }

    /// An INFORMATIONAL request: answer Deletes with ours (§1.4.1), anything else (liveness
    /// checks, status notifications) with an empty response.
    pub(in crate::ike::session) fn informational_request(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        opened: &Opened,
    ) -> Result<Vec<Payload>, &'static str> {
        let inner = Inner::new(&opened.inner);
        let mut ike = false;
        let mut ours = Vec::new();
        for d in inner.deletes() {
            if d.protocol == ProtocolId::IKE.0 {
                ike = true;
            } else if d.protocol == ProtocolId::ESP.0 {
                for spi in &d.spis {
                    self.peer_deleted_child(sa, u32::from_be_bytes(*spi), &mut ours);
                }
            }
        }
        if ike {
            // §2.8.2: the peer deletes the old IKE SA when its rekey won a collision we have
            // not decided yet: its new IKE SA takes the children
            if let Some(Outstanding {
                kind:
                    Request::RekeyIke {
                        collision: Some(c), ..
                    },
                ..
            }) = &sa.outstanding
            {
                let created = c.created;
                self.adopt(now, sa, created);
            }
            let reason = match sa.phase {
                Phase::Superseded { .. } => "rekeyed",
                Phase::Deleting => sa.delete_reason,
                _ => "deleted_by_peer",
            };
            self.close(sa, reason);
            return Ok(Vec::new());
        }
        if ours.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Payload::Delete(DeletePayload {
            protocol: ProtocolId::ESP.0,
            spis: ours,
        })])
    }

    /// The peer deleted the child it sends on with `outbound` (our outbound SPI). "Normally,
    /// the response ... will contain Delete payloads for the paired SAs going in the other
    /// direction" — except for SAs we are deleting ourselves (§1.4.1). After an IKE rekey the
    /// child may have moved to the successor.
    fn peer_deleted_child(&mut self, sa: &mut IkeSa, outbound: u32, ours: &mut Vec<[u8; 4]>) {
        let find = |sa: &IkeSa| {
            sa.children
                .iter()
                .find(|c| c.outbound_spi == outbound)
                .map(|c| (c.inbound_spi, c.state))
        };
        if let Some((inbound, state)) = find(sa) {
            if state != ChildState::Deleting {
                ours.push(inbound.to_be_bytes());
            }
            self.remove_child(sa, inbound, true);
            return;
        }
        if let Some(mut next) = sa.successor.and_then(|s| self.take(s)) {
            if let Some((inbound, state)) = find(&next) {
                if state != ChildState::Deleting {
                    ours.push(inbound.to_be_bytes());
                }
                self.remove_child(&mut next, inbound, true);
            }
            self.put_back(next);
        }
    }
}
