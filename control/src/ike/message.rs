//! A whole IKE message: header (RFC 7296 §3.1) and payload chain (§3.2), with a bounded,
//! panic-free parser ([`parse_message`]) and the symmetric [`Message::emit`].

use super::IkeError;
use super::header::{HEADER_LEN, Header, MAX_MESSAGE_LEN};
use super::payload::{
    EncryptedPayload, KePayload, NotifyPayload, NotifyType, Payload, PayloadType, SaPayload,
    emit_chain, parse_chain,
};

/// An IKE message as it travels (the Encrypted payload, if any, still encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header; `next_payload` and `length` are recomputed by [`Message::emit`].
    pub header: Header,
    pub payloads: Vec<Payload>,
}

/// Parse one IKE message (a UDP payload without the non-ESP marker).
///
/// Cheap and bounded: at most 64 KiB are looked at, at most
/// [`MAX_PAYLOADS`](super::payload::MAX_PAYLOADS) payloads, and every count inside a payload
/// is capped; allocation is proportional to the input. Fuzz entry point.
pub fn parse_message(buf: &[u8]) -> Result<Message, IkeError> {
    Message::parse(buf)
}

impl Message {
    /// See [`parse_message`].
    pub fn parse(buf: &[u8]) -> Result<Self, IkeError> {
        if buf.len() > MAX_MESSAGE_LEN {
            return Err(IkeError::MessageTooLong);
        }
        let header = Header::parse(buf)?;
        // §3.1: Length is "the total message (header + payloads) in octets".
        if header.length as usize != buf.len() {
            return Err(IkeError::BadMessageLength);
        }
        let payloads = parse_chain(header.next_payload, buf.get(HEADER_LEN..).unwrap_or(&[]))?;
        Ok(Self { header, payloads })
    }

    /// Encode the message, filling in the header's Next Payload and Length.
    pub fn emit(&self) -> Result<Vec<u8>, IkeError> {
        let mut out = Vec::with_capacity(512);
        self.header.emit(&mut out);
        let first = emit_chain(&self.payloads, &mut out)?;
        if out.len() > MAX_MESSAGE_LEN {
            return Err(IkeError::MessageTooLong);
        }
        let len = out.len();
        set_header_fields(&mut out, first, len)?;
        Ok(out)
    }

    /// The first SA payload.
    pub fn sa(&self) -> Option<&SaPayload> {
        self.payloads.iter().find_map(|p| match p {
            Payload::Sa(sa) => Some(sa),
            _ => None,
        })
    }

    /// The first KE payload.
    pub fn ke(&self) -> Option<&KePayload> {
        self.payloads.iter().find_map(|p| match p {
            Payload::Ke(ke) => Some(ke),
            _ => None,
        })
    }

    /// The first Nonce payload's data.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.payloads.iter().find_map(|p| match p {
            Payload::Nonce(n) => Some(n.as_slice()),
            _ => None,
        })
    }

    /// Every Notify payload of type `ty`.
    pub fn notifies(&self, ty: NotifyType) -> impl Iterator<Item = &NotifyPayload> {
        self.payloads.iter().filter_map(move |p| match p {
            Payload::Notify(n) if n.ty == ty => Some(n),
            _ => None,
        })
    }

    /// The Encrypted payload, if any (always last, §3.14).
    pub fn encrypted(&self) -> Option<&EncryptedPayload> {
        match self.payloads.last() {
            Some(Payload::Encrypted(e)) => Some(e),
            _ => None,
        }
    }
}

/// Write Next Payload (octet 16) and Length (octets 24..28) into an encoded header.
pub(crate) fn set_header_fields(
    msg: &mut [u8],
    next: PayloadType,
    len: usize,
) -> Result<(), IkeError> {
    let len = u32::try_from(len).map_err(|_| IkeError::MessageTooLong)?;
    match msg.get_mut(16) {
        Some(b) => *b = next.0,
        None => return Err(IkeError::TruncatedHeader),
    }
    match msg.get_mut(24..28) {
        Some(dst) => dst.copy_from_slice(&len.to_be_bytes()),
        None => return Err(IkeError::TruncatedHeader),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::header::{ExchangeType, Flags};
    use crate::ike::payload::{IdPayload, Identity, ProtocolId, TransformType};

    fn hex_fixture(s: &str) -> Vec<u8> {
        hex::decode(s.trim()).unwrap()
    }

    const SS_GCM_INIT_REQ: &str = include_str!("testdata/strongswan_gcm_init_req.hex");
    const SS_GCM_INIT_RESP: &str = include_str!("testdata/strongswan_gcm_init_resp.hex");
    const SS_CBC_INIT_REQ: &str = include_str!("testdata/strongswan_cbc_init_req.hex");
    const SS_CBC_INIT_RESP: &str = include_str!("testdata/strongswan_cbc_init_resp.hex");
    const SS_FIXTURES: [&str; 8] = [
        SS_GCM_INIT_REQ,
        SS_GCM_INIT_RESP,
        include_str!("testdata/strongswan_gcm_auth_req.hex"),
        include_str!("testdata/strongswan_gcm_auth_resp.hex"),
        SS_CBC_INIT_REQ,
        SS_CBC_INIT_RESP,
        include_str!("testdata/strongswan_cbc_auth_req.hex"),
        include_str!("testdata/strongswan_cbc_auth_resp.hex"),
    ];

    #[test]
    fn strongswan_messages_round_trip() {
        for f in SS_FIXTURES {
            let raw = hex_fixture(f);
            let m = parse_message(&raw).unwrap();
            assert_eq!(m.emit().unwrap(), raw);
        }
    }

    #[test]
    fn strongswan_ike_sa_init_request() {
        let m = parse_message(&hex_fixture(SS_GCM_INIT_REQ)).unwrap();
        assert_eq!(m.header.exchange, ExchangeType::IKE_SA_INIT);
        assert_eq!(
            m.header.flags,
            Flags {
                initiator: true,
                version: false,
                response: false
            }
        );
        assert_eq!(m.header.message_id, 0);
        assert_eq!(m.header.spi_r, [0; 8]);
        let sa = m.sa().unwrap();
        // aes128gcm16-prfsha256-x25519, aes256gcm16-prfsha384-ecp384, aes128-sha256-prfsha256-ecp256
        assert_eq!(sa.proposals.len(), 3);
        let p1 = &sa.proposals[0];
        assert_eq!((p1.num, p1.protocol, p1.spi.len()), (1, ProtocolId::IKE, 0));
        let encr: Vec<_> = p1.transforms_of(TransformType::ENCR).collect();
        assert_eq!((encr[0].id, encr[0].key_length), (20, Some(128)));
        assert_eq!(p1.transforms_of(TransformType::DH).next().unwrap().id, 31);
        let p3 = &sa.proposals[2];
        assert_eq!(
            p3.transforms_of(TransformType::INTEG).next().unwrap().id,
            12
        );
        assert_eq!(p3.transforms_of(TransformType::ENCR).next().unwrap().id, 12);
        let ke = m.ke().unwrap();
        assert_eq!((ke.group, ke.data.len()), (31, 32));
        assert_eq!(m.nonce().unwrap().len(), 32);
        assert_eq!(m.notifies(NotifyType::NAT_DETECTION_SOURCE_IP).count(), 1);
        assert_eq!(
            m.notifies(NotifyType::NAT_DETECTION_DESTINATION_IP).count(),
            1
        );
        assert_eq!(
            m.notifies(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED)
                .count(),
            1
        );
        let hash = m
            .notifies(NotifyType::SIGNATURE_HASH_ALGORITHMS)
            .next()
            .unwrap();
        assert_eq!(hash.data, [0, 2, 0, 3, 0, 4, 0, 5]);
        assert_eq!(m.notifies(NotifyType::REDIRECT_SUPPORTED).count(), 1);

        let r = parse_message(&hex_fixture(SS_GCM_INIT_RESP)).unwrap();
        assert!(r.header.flags.response && !r.header.flags.initiator);
        assert_eq!(r.sa().unwrap().proposals.len(), 1);
        assert_eq!(r.notifies(NotifyType::CHILDLESS_IKEV2_SUPPORTED).count(), 1);
        assert_eq!(r.notifies(NotifyType::MULTIPLE_AUTH_SUPPORTED).count(), 1);
        let cbc = parse_message(&hex_fixture(SS_CBC_INIT_RESP)).unwrap();
        assert_eq!(cbc.ke().unwrap().group, 19);
        assert_eq!(cbc.ke().unwrap().data.len(), 64);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_a_named_error() {
        for f in SS_FIXTURES {
            let raw = hex_fixture(f);
            for n in 0..raw.len() {
                assert!(parse_message(&raw[..n]).is_err());
            }
            for i in 0..raw.len() {
                for bit in 0..8 {
                    let mut b = raw.clone();
                    b[i] ^= 1 << bit;
                    if let Ok(m) = parse_message(&b) {
                        // whatever parses must re-encode without error
                        m.emit().unwrap();
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes behind a plausible header: never a panic; whatever parses
        /// re-encodes to the same bytes' meaning.
        #[test]
        fn arbitrary_bodies(first in 0u8..60, body in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let mut raw = hex_fixture(SS_GCM_INIT_REQ)[..28].to_vec();
            raw[16] = first;
            raw.extend_from_slice(&body);
            let len = raw.len() as u32;
            raw[24..28].copy_from_slice(&len.to_be_bytes());
            if let Ok(m) = parse_message(&raw) {
                let again = m.emit().unwrap();
                proptest::prop_assert_eq!(parse_message(&again).unwrap(), m);
            }
        }

        #[test]
        fn arbitrary_bytes(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse_message(&raw);
        }
    }

    #[test]
    fn framing_errors() {
        let raw = hex_fixture(SS_GCM_INIT_REQ);
        let mut long = raw.clone();
        long.push(0);
        assert_eq!(parse_message(&long), Err(IkeError::BadMessageLength));
        assert_eq!(
            parse_message(&vec![0; 70_000]),
            Err(IkeError::MessageTooLong)
        );
        assert_eq!(parse_message(&raw[..20]), Err(IkeError::TruncatedHeader));
    }

    #[test]
    fn build_and_parse() {
        let m = Message {
            header: Header {
                spi_i: [7; 8],
                spi_r: [9; 8],
                next_payload: PayloadType::NONE,
                minor_version: 0,
                exchange: ExchangeType::INFORMATIONAL,
                flags: Flags {
                    initiator: true,
                    ..Flags::default()
                },
                message_id: 5,
                length: 0,
            },
            payloads: vec![
                Payload::IdI(IdPayload::new(&Identity::Fqdn("a.example".into()))),
                Payload::Notify(NotifyPayload::new(NotifyType::INITIAL_CONTACT, &[])),
            ],
        };
        let raw = m.emit().unwrap();
        let back = parse_message(&raw).unwrap();
        assert_eq!(back.header.next_payload, PayloadType::IDI);
        assert_eq!(back.header.length as usize, raw.len());
        assert_eq!(back.payloads, m.payloads);
    }
}
