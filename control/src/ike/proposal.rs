//! Proposal selection (RFC 7296 §2.7, §3.3.6).
//!
//! Responder: the first of *our* suites, in our order of preference, that some offered
//! proposal contains — "the responder MUST choose a single suite, which may be any subset of
//! the SA proposal following the rules below": exactly one transform of each type the
//! proposal offers, none of a type it does not offer (§3.3.6), with equal Key Length
//! attributes (§3.3.5). INTEG / D-H of ID NONE (0) count as absent. The reply carries one
//! proposal with the accepted proposal's number (§3.3.1).
//!
//! Initiator: a reply must hold exactly one proposal, one transform per type, naming one
//! of the suites we offered (§2.7: "the initiator MUST verify that the accepted suite is
//! one of those it offered").

use super::IkeError;
use super::crypto::transform::{AUTH_NONE, DhGroup, Encr, EspSuite, IkeSuite, Integ, Prf};
use super::payload::{Proposal, ProtocolId, SaPayload, Transform, TransformType};

/// The IKE proposal a responder chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenIke {
    /// The accepted proposal's number, echoed in the reply (§3.3.1).
    pub proposal_num: u8,
    /// The proposer's SPI in that proposal (empty in IKE_SA_INIT, 8 bytes on IKE rekey).
    pub peer_spi: Vec<u8>,
    pub suite: IkeSuite,
}

impl ChosenIke {
    /// The SA payload of the reply, with our SPI (empty in IKE_SA_INIT).
    pub fn reply(&self, our_spi: &[u8]) -> SaPayload {
        SaPayload {
            proposals: vec![self.suite.proposal(self.proposal_num, our_spi)],
        }
    }
}

/// The ESP proposal a responder chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenEsp {
    /// The accepted proposal's number, echoed in the reply (§3.3.1).
    pub proposal_num: u8,
    /// The proposer's inbound SPI: our outbound SPI.
    pub peer_spi: [u8; 4],
    pub suite: EspSuite,
}

impl ChosenEsp {
    /// The SA payload of the reply, with our inbound SPI.
    pub fn reply(&self, our_spi: [u8; 4]) -> SaPayload {
        SaPayload {
            proposals: vec![self.suite.proposal(self.proposal_num, our_spi)],
        }
    }
}

/// Transform types an offer uses, ignoring INTEG / D-H NONE.
fn offered_types(p: &Proposal) -> Vec<TransformType> {
    let mut v: Vec<TransformType> = p
        .transforms
        .iter()
        .filter(|t| {
            !(matches!(t.ty, TransformType::INTEG | TransformType::DH) && t.id == AUTH_NONE)
        })
        .map(|t| t.ty)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Does `offer` contain every transform of `ours`, and nothing of another type (§3.3.6)?
fn proposal_contains(offer: &Proposal, ours: &[Transform]) -> bool {
    let mut our_types: Vec<TransformType> = ours.iter().map(|t| t.ty).collect();
    our_types.sort();
    our_types.dedup();
    offered_types(offer) == our_types && ours.iter().all(|t| offer.transforms.contains(t))
}

/// Responder: choose an IKE suite from an IKE_SA_INIT (or rekey) SA payload (§2.7).
pub fn select_ike(offered: &SaPayload, ours: &[IkeSuite]) -> Result<ChosenIke, IkeError> {
    for suite in ours {
        let want = suite.transforms();
        for p in &offered.proposals {
            if p.protocol == ProtocolId::IKE
                && matches!(p.spi.len(), 0 | 8)
                && proposal_contains(p, &want)
            {
                return Ok(ChosenIke {
                    proposal_num: p.num,
                    peer_spi: p.spi.clone(),
                    suite: *suite,
                });
            }
        }
    }
    Err(IkeError::NoProposalChosen)
}

/// Responder: choose an ESP suite from an IKE_AUTH / CREATE_CHILD_SA SA payload (§2.7).
pub fn select_esp(offered: &SaPayload, ours: &[EspSuite]) -> Result<ChosenEsp, IkeError> {
    for suite in ours {
        let want = suite.transforms();
        for p in &offered.proposals {
            let Ok(spi) = <[u8; 4]>::try_from(p.spi.as_slice()) else {
                continue;
            };
            if p.protocol == ProtocolId::ESP && proposal_contains(p, &want) {
                return Ok(ChosenEsp {
                    proposal_num: p.num,
                    peer_spi: spi,
                    suite: *suite,
                });
            }
        }
    }
    Err(IkeError::NoProposalChosen)
}

/// Exactly one transform of each type in a reply; `None` if the type is absent.
fn single(p: &Proposal, ty: TransformType) -> Result<Option<&Transform>, IkeError> {
    let mut it = p.transforms_of(ty);
    let first = it.next();
    if it.next().is_some() {
        return Err(IkeError::NoProposalChosen);
    }
    Ok(first)
}

/// The one proposal of a reply, which must be of `protocol`.
fn reply_proposal(reply: &SaPayload, protocol: ProtocolId) -> Result<&Proposal, IkeError> {
    match reply.proposals.as_slice() {
        [p] if p.protocol == protocol => Ok(p),
        _ => Err(IkeError::NoProposalChosen),
    }
}

/// Initiator: check the responder's IKE SA payload names one of the suites we offered.
pub fn accept_ike_reply(reply: &SaPayload, offered: &[IkeSuite]) -> Result<ChosenIke, IkeError> {
    let p = reply_proposal(reply, ProtocolId::IKE)?;
    let none = IkeError::NoProposalChosen;
    let encr = single(p, TransformType::ENCR)?
        .and_then(Encr::from_transform)
        .ok_or(none)?;
    let prf = single(p, TransformType::PRF)?
        .and_then(Prf::from_transform)
        .ok_or(none)?;
    let integ = match single(p, TransformType::INTEG)? {
        Some(t) => Integ::from_transform(t).ok_or(none)?,
        None => None,
    };
    let dh = single(p, TransformType::DH)?
        .and_then(|t| DhGroup::from_id(t.id))
        .ok_or(none)?;
    let suite = IkeSuite {
        encr,
        prf,
        integ,
        dh,
    };
    if single(p, TransformType::ESN)?.is_some() || !offered.contains(&suite) {
        return Err(none);
    }
    Ok(ChosenIke {
        proposal_num: p.num,
        peer_spi: p.spi.clone(),
        suite,
    })
}

/// Initiator: check the responder's ESP SA payload names one of the suites we offered.
pub fn accept_esp_reply(reply: &SaPayload, offered: &[EspSuite]) -> Result<ChosenEsp, IkeError> {
    let p = reply_proposal(reply, ProtocolId::ESP)?;
    let none = IkeError::NoProposalChosen;
    let peer_spi = <[u8; 4]>::try_from(p.spi.as_slice()).map_err(|_| none)?;
    let encr = single(p, TransformType::ENCR)?
        .and_then(Encr::from_transform)
        .ok_or(none)?;
    let integ = match single(p, TransformType::INTEG)? {
        Some(t) => Integ::from_transform(t).ok_or(none)?,
        None => None,
    };
    let dh = match single(p, TransformType::DH)? {
        Some(t) if t.id == 0 => None,
        Some(t) => Some(DhGroup::from_id(t.id).ok_or(none)?),
        None => None,
    };
    let esn = match single(p, TransformType::ESN)?.map(|t| t.id) {
        Some(0) | None => false,
        Some(1) => true,
        Some(_) => return Err(none),
    };
    let suite = EspSuite {
        encr,
        integ,
        dh,
        esn,
    };
    if single(p, TransformType::PRF)?.is_some() || !offered.contains(&suite) {
        return Err(none);
    }
    Ok(ChosenEsp {
        proposal_num: p.num,
        peer_spi,
        suite,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::message::parse_message;

    const GCM128_X25519: IkeSuite = IkeSuite {
        encr: Encr::AesGcm16 { key_bits: 128 },
        prf: Prf::HmacSha256,
        integ: None,
        dh: DhGroup::Curve25519,
    };
    const GCM256_P384: IkeSuite = IkeSuite {
        encr: Encr::AesGcm16 { key_bits: 256 },
        prf: Prf::HmacSha384,
        integ: None,
        dh: DhGroup::Ecp384,
    };
    const CBC_P256: IkeSuite = IkeSuite {
        encr: Encr::AesCbc { key_bits: 128 },
        prf: Prf::HmacSha256,
        integ: Some(Integ::HmacSha256_128),
        dh: DhGroup::Ecp256,
    };
    const ESP_GCM128: EspSuite = EspSuite {
        encr: Encr::AesGcm16 { key_bits: 128 },
        integ: None,
        dh: None,
        esn: false,
    };
    const ESP_GCM256: EspSuite = EspSuite {
        encr: Encr::AesGcm16 { key_bits: 256 },
        integ: None,
        dh: None,
        esn: false,
    };

    fn ss_init_req() -> SaPayload {
        let raw = hex::decode(include_str!("testdata/strongswan_gcm_init_req.hex").trim()).unwrap();
        parse_message(&raw).unwrap().sa().unwrap().clone()
    }

    /// strongSwan offers gcm128/x25519, gcm256/p384, cbc/p256 (in that order).
    #[test]
    fn responder_takes_our_first_preference_the_peer_offers() {
        let sa = ss_init_req();
        let c = select_ike(&sa, &[GCM128_X25519, GCM256_P384]).unwrap();
        assert_eq!((c.proposal_num, c.suite), (1, GCM128_X25519));
        // our order wins over theirs
        let c = select_ike(&sa, &[CBC_P256, GCM128_X25519]).unwrap();
        assert_eq!((c.proposal_num, c.suite), (3, CBC_P256));
        let c = select_ike(&sa, &[GCM256_P384]).unwrap();
        assert_eq!(c.proposal_num, 2);
        // key length must match: GCM-192 is not offered
        let g192 = IkeSuite {
            encr: Encr::AesGcm16 { key_bits: 192 },
            ..GCM128_X25519
        };
        assert_eq!(select_ike(&sa, &[g192]), Err(IkeError::NoProposalChosen));
        // every transform type must match: x25519 with PRF-SHA384 is in no single proposal
        let mixed = IkeSuite {
            prf: Prf::HmacSha384,
            ..GCM128_X25519
        };
        assert_eq!(select_ike(&sa, &[mixed]), Err(IkeError::NoProposalChosen));
        // the reply echoes the number and accepts on the initiator side
        let reply = c.reply(&[]);
        assert_eq!(reply.proposals[0].num, 2);
        let back = accept_ike_reply(&reply, &[GCM128_X25519, GCM256_P384]).unwrap();
        assert_eq!(back.suite, GCM256_P384);
        assert_eq!(
            accept_ike_reply(&reply, &[GCM128_X25519]),
            Err(IkeError::NoProposalChosen)
        );
    }

    #[test]
    fn strongswan_reply_is_accepted() {
        let raw =
            hex::decode(include_str!("testdata/strongswan_gcm_init_resp.hex").trim()).unwrap();
        let sa = parse_message(&raw).unwrap().sa().unwrap().clone();
        let c = accept_ike_reply(&sa, &[GCM256_P384, GCM128_X25519]).unwrap();
        assert_eq!((c.proposal_num, c.suite), (1, GCM128_X25519));
    }

    #[test]
    fn extra_transform_types_are_refused() {
        // a GCM proposal that also carries an integrity algorithm does not match a GCM suite
        let mut p = GCM128_X25519.proposal(1, &[]);
        p.transforms.push(Integ::HmacSha256_128.transform());
        let sa = SaPayload {
            proposals: vec![p.clone()],
        };
        assert_eq!(
            select_ike(&sa, &[GCM128_X25519]),
            Err(IkeError::NoProposalChosen)
        );
        // but INTEG NONE is fine
        p.transforms.pop();
        p.transforms
            .push(Transform::new(TransformType::INTEG, AUTH_NONE));
        let sa = SaPayload { proposals: vec![p] };
        assert!(select_ike(&sa, &[GCM128_X25519]).is_ok());
        // unknown attribute on the cipher: refused
        let mut p = GCM128_X25519.proposal(1, &[]);
        p.transforms[0].other_attributes = vec![0x80, 0x63, 0, 1];
        assert_eq!(
            select_ike(&SaPayload { proposals: vec![p] }, &[GCM128_X25519]),
            Err(IkeError::NoProposalChosen)
        );
    }

    #[test]
    fn esp_selection() {
        // one proposal offering both key sizes, as strongSwan's "aes128gcm16,aes256gcm16" does
        let mut p = ESP_GCM256.proposal(1, [1, 2, 3, 4]);
        p.transforms
            .insert(0, Encr::AesGcm16 { key_bits: 128 }.transform());
        let sa = SaPayload { proposals: vec![p] };
        let c = select_esp(&sa, &[ESP_GCM128, ESP_GCM256]).unwrap();
        assert_eq!((c.peer_spi, c.suite), ([1, 2, 3, 4], ESP_GCM128));
        let reply = c.reply([9, 9, 9, 9]);
        let back = accept_esp_reply(&reply, &[ESP_GCM128]).unwrap();
        assert_eq!((back.peer_spi, back.suite), ([9, 9, 9, 9], ESP_GCM128));
        // ESN must match
        let esn = EspSuite {
            esn: true,
            ..ESP_GCM128
        };
        assert_eq!(select_esp(&sa, &[esn]), Err(IkeError::NoProposalChosen));
        // wrong SPI size is skipped
        let mut bad = sa.clone();
        bad.proposals[0].spi = vec![1; 8];
        assert_eq!(
            select_esp(&bad, &[ESP_GCM128]),
            Err(IkeError::NoProposalChosen)
        );
        // a reply with two ENCR transforms is not a choice
        assert_eq!(
            accept_esp_reply(&sa, &[ESP_GCM128]),
            Err(IkeError::NoProposalChosen)
        );
    }

    /// The ESP proposal inside strongSwan's IKE_AUTH request (decrypted with its keys).
    #[test]
    fn strongswan_child_proposal() {
        use crate::ike::crypto::keys::tests::{GCM_SUITE, capture};
        use crate::ike::crypto::keys::{IkeSaKeys, skeyseed};
        use crate::ike::crypto::sk::{SkContext, open};
        use crate::ike::payload::Payload;
        let c = capture("gcm");
        let (ni, nr) = c.nonces();
        let (si, sr) = c.spis();
        let seed = skeyseed(
            GCM_SUITE.prf,
            &ni,
            &nr,
            c.key("shared Diffie Hellman secret"),
        );
        let k = IkeSaKeys::derive(&GCM_SUITE, &seed, &ni, &nr, &si, &sr).unwrap();
        let (i2r, _) = SkContext::pair(&k, &GCM_SUITE).unwrap();
        let req = open(&i2r, &c.auth_req).unwrap();
        let sa = req
            .inner
            .iter()
            .find_map(|p| {
                if let Payload::Sa(s) = p {
                    Some(s)
                } else {
                    None
                }
            })
            .unwrap();
        let chosen = select_esp(sa, &[ESP_GCM256, ESP_GCM128]).unwrap();
        assert_eq!(chosen.suite, ESP_GCM256);
        assert_eq!(chosen.peer_spi.to_vec(), sa.proposals[0].spi);
    }
}
