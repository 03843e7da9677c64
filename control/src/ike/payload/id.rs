//! Identification payloads IDi / IDr (RFC 7296 §3.5):
//! `| ID Type | RESERVED (3) | Identification Data |`.
//!
//! The body as received (type, reserved, data) is what the AUTH computation MACs
//! (§2.15: "IDType | RESERVED | InitIDData"), so it is kept byte-exact.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ike::IkeError;
use crate::ike::reader::Reader;

/// ID Type (RFC 7296 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdType(pub u8);

impl IdType {
    pub const IPV4_ADDR: Self = Self(1);
    pub const FQDN: Self = Self(2);
    pub const RFC822_ADDR: Self = Self(3);
    pub const IPV6_ADDR: Self = Self(5);
    pub const DER_ASN1_DN: Self = Self(9);
    pub const DER_ASN1_GN: Self = Self(10);
    pub const KEY_ID: Self = Self(11);
}

/// A typed view of an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// Fully-qualified domain name, e.g. `gw.example` (no terminator, §3.5).
    Fqdn(String),
    /// RFC 822 e-mail address, e.g. `jsmith@example.com`.
    Rfc822(String),
    /// Opaque octets (used for vendor-specific information).
    KeyId(Vec<u8>),
    /// DER_ASN1_DN, DER_ASN1_GN or an unknown type, kept as bytes.
    Other(IdType, Vec<u8>),
}

/// IDi / IDr payload body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdPayload {
    pub ty: IdType,
    /// RESERVED octets as received (sent as zero); part of the MACed ID (§2.15).
    pub reserved: [u8; 3],
    pub data: Vec<u8>,
}

impl IdPayload {
    /// An ID payload for `identity`.
    pub fn new(identity: &Identity) -> Self {
        let (ty, data) = match identity {
            Identity::Ipv4(a) => (IdType::IPV4_ADDR, a.octets().to_vec()),
            Identity::Ipv6(a) => (IdType::IPV6_ADDR, a.octets().to_vec()),
            Identity::Fqdn(s) => (IdType::FQDN, s.as_bytes().to_vec()),
            Identity::Rfc822(s) => (IdType::RFC822_ADDR, s.as_bytes().to_vec()),
            Identity::KeyId(b) => (IdType::KEY_ID, b.clone()),
            Identity::Other(t, b) => (*t, b.clone()),
        };
        Self {
            ty,
            reserved: [0; 3],
            data,
        }
    }

    /// Parse the payload body; address types must have the address length, FQDN and RFC822
    /// must be non-empty printable ASCII.
    pub fn parse(body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadIdPayload);
        let ty = IdType(r.u8()?);
        let reserved = r.array()?;
        let p = Self {
            ty,
            reserved,
            data: r.rest().to_vec(),
        };
        p.identity()?;
        Ok(p)
    }

    /// The typed identity.
    pub fn identity(&self) -> Result<Identity, IkeError> {
        let text = |d: &[u8]| -> Result<String, IkeError> {
            if d.is_empty() || !d.iter().all(|b| b.is_ascii_graphic()) {
                return Err(IkeError::BadIdPayload);
            }
            String::from_utf8(d.to_vec()).map_err(|_| IkeError::BadIdPayload)
        };
        Ok(match self.ty {
            IdType::IPV4_ADDR => Identity::Ipv4(Ipv4Addr::from(
                <[u8; 4]>::try_from(self.data.as_slice()).map_err(|_| IkeError::BadIdPayload)?,
            )),
            IdType::IPV6_ADDR => Identity::Ipv6(Ipv6Addr::from(
                <[u8; 16]>::try_from(self.data.as_slice()).map_err(|_| IkeError::BadIdPayload)?,
            )),
            IdType::FQDN => Identity::Fqdn(text(&self.data)?),
            IdType::RFC822_ADDR => Identity::Rfc822(text(&self.data)?),
            IdType::KEY_ID => Identity::KeyId(self.data.clone()),
            t => Identity::Other(t, self.data.clone()),
        })
    }

    /// Append the payload body (this is also IDi' / IDr' of §2.15).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        out.push(self.ty.0);
        out.extend_from_slice(&self.reserved);
        out.extend_from_slice(&self.data);
        Ok(())
    }

    /// The body bytes (IDType | RESERVED | IDData), what §2.15 MACs with SK_pi / SK_pr.
    pub fn body(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.data.len());
        v.push(self.ty.0);
        v.extend_from_slice(&self.reserved);
        v.extend_from_slice(&self.data);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip() {
        for id in [
            Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
            Identity::Ipv6("2001:db8::1".parse().unwrap()),
            Identity::Fqdn("gw.example".into()),
            Identity::Rfc822("a@b.example".into()),
            Identity::KeyId(vec![0, 1, 2]),
        ] {
            let p = IdPayload::new(&id);
            let mut out = Vec::new();
            p.emit(&mut out).unwrap();
            assert_eq!(out, p.body());
            let back = IdPayload::parse(&out).unwrap();
            assert_eq!(back.identity().unwrap(), id);
        }
        assert_eq!(
            IdPayload::new(&Identity::Fqdn("client.example".into())).body(),
            {
                let mut v = vec![2, 0, 0, 0];
                v.extend_from_slice(b"client.example");
                v
            }
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(IdPayload::parse(&[1, 0, 0]), Err(IkeError::BadIdPayload));
        assert_eq!(
            IdPayload::parse(&[1, 0, 0, 0, 1, 2, 3]),
            Err(IkeError::BadIdPayload)
        );
        assert_eq!(
            IdPayload::parse(&[5, 0, 0, 0, 1]),
            Err(IkeError::BadIdPayload)
        );
        assert_eq!(IdPayload::parse(&[2, 0, 0, 0]), Err(IkeError::BadIdPayload));
        assert_eq!(
            IdPayload::parse(&[2, 0, 0, 0, b'a', 0, b'b']),
            Err(IkeError::BadIdPayload)
        );
    }
}
