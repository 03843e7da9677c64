//! Configuration payload (RFC 7296 §3.15): `| CFG Type | RESERVED (3) | Attributes |`,
//! each attribute (§3.15.1) `|R| Attribute Type (15) | Length (2) | Value |`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ike::IkeError;
use crate::ike::reader::Reader;

/// Most attributes we accept in one CP payload.
pub const MAX_CONFIG_ATTRIBUTES: usize = 64;

/// CFG Type (§3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CfgType(pub u8);

impl CfgType {
    pub const REQUEST: Self = Self(1);
    pub const REPLY: Self = Self(2);
    pub const SET: Self = Self(3);
    pub const ACK: Self = Self(4);
}

/// One configuration attribute (§3.15.1). Kept as type + value; the constants and
/// constructors below give the typed forms we use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigAttribute {
    pub ty: u16,
    pub value: Vec<u8>,
}

impl ConfigAttribute {
    pub const INTERNAL_IP4_ADDRESS: u16 = 1;
    pub const INTERNAL_IP4_NETMASK: u16 = 2;
    pub const INTERNAL_IP4_DNS: u16 = 3;
    pub const INTERNAL_IP4_NBNS: u16 = 4;
    pub const INTERNAL_IP4_DHCP: u16 = 6;
    pub const APPLICATION_VERSION: u16 = 7;
    pub const INTERNAL_IP6_ADDRESS: u16 = 8;
    pub const INTERNAL_IP6_DNS: u16 = 10;
    pub const INTERNAL_IP4_SUBNET: u16 = 13;
    pub const SUPPORTED_ATTRIBUTES: u16 = 14;
    pub const INTERNAL_IP6_SUBNET: u16 = 15;

    /// An empty attribute of type `ty` (how a CFG_REQUEST asks for a value).
    pub fn request(ty: u16) -> Self {
        Self {
            ty,
            value: Vec::new(),
        }
    }

    /// INTERNAL_IP4_ADDRESS / NETMASK / DNS with a value.
    pub fn ipv4(ty: u16, a: Ipv4Addr) -> Self {
        Self {
            ty,
            value: a.octets().to_vec(),
        }
    }

    /// INTERNAL_IP6_ADDRESS: address and prefix length (§3.15.1: 17 octets).
    pub fn ipv6_address(a: Ipv6Addr, prefix: u8) -> Self {
        let mut value = a.octets().to_vec();
        value.push(prefix);
        Self {
            ty: Self::INTERNAL_IP6_ADDRESS,
            value,
        }
    }

    /// The IPv4 value, if this attribute carries one.
    pub fn as_ipv4(&self) -> Option<Ipv4Addr> {
        <[u8; 4]>::try_from(self.value.as_slice())
            .ok()
            .map(Ipv4Addr::from)
    }

    /// The IPv6 address and prefix length, if this attribute carries them.
    pub fn as_ipv6_address(&self) -> Option<(Ipv6Addr, u8)> {
        let (addr, prefix) = self.value.split_first_chunk::<16>()?;
        match prefix {
            [p] => Some((Ipv6Addr::from(*addr), *p)),
            _ => None,
        }
    }

    /// §3.15.1 value lengths: each typed attribute is empty (a request) or exactly its size.
    fn length_ok(&self) -> bool {
        let n = self.value.len();
        match self.ty {
            Self::INTERNAL_IP4_ADDRESS
            | Self::INTERNAL_IP4_NETMASK
            | Self::INTERNAL_IP4_DNS
            | Self::INTERNAL_IP4_NBNS
            | Self::INTERNAL_IP4_DHCP => n == 0 || n == 4,
            Self::INTERNAL_IP6_ADDRESS | Self::INTERNAL_IP6_SUBNET => n == 0 || n == 17,
            Self::INTERNAL_IP6_DNS => n == 0 || n == 16,
            Self::INTERNAL_IP4_SUBNET => n == 0 || n == 8,
            _ => true,
        }
    }
}

/// Configuration payload body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigPayload {
    pub cfg_type: CfgType,
    pub attributes: Vec<ConfigAttribute>,
}

impl ConfigPayload {
    /// Parse the payload body.
    pub fn parse(body: &[u8]) -> Result<Self, IkeError> {
        let mut r = Reader::new(body, IkeError::BadConfigPayload);
        let cfg_type = CfgType(r.u8()?);
        r.take(3)?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            if attributes.len() >= MAX_CONFIG_ATTRIBUTES {
                return Err(IkeError::TooManyItems);
            }
            let ty = r.u16()? & 0x7fff;
            let len = usize::from(r.u16()?);
            let a = ConfigAttribute {
                ty,
                value: r.take(len)?.to_vec(),
            };
            if !a.length_ok() {
                return Err(IkeError::BadConfigPayload);
            }
            attributes.push(a);
        }
        Ok(Self {
            cfg_type,
            attributes,
        })
    }

    /// Append the payload body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), IkeError> {
        out.extend_from_slice(&[self.cfg_type.0, 0, 0, 0]);
        for a in &self.attributes {
            let len = u16::try_from(a.value.len()).map_err(|_| IkeError::PayloadTooLong)?;
            out.extend_from_slice(&(a.ty & 0x7fff).to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&a.value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let cp = ConfigPayload {
            cfg_type: CfgType::REPLY,
            attributes: vec![
                ConfigAttribute::ipv4(
                    ConfigAttribute::INTERNAL_IP4_ADDRESS,
                    Ipv4Addr::new(10, 99, 0, 1),
                ),
                ConfigAttribute::ipv4(
                    ConfigAttribute::INTERNAL_IP4_NETMASK,
                    Ipv4Addr::new(255, 255, 255, 0),
                ),
                ConfigAttribute::ipv4(
                    ConfigAttribute::INTERNAL_IP4_DNS,
                    Ipv4Addr::new(10, 9, 0, 53),
                ),
                ConfigAttribute::ipv6_address("fd00::5".parse().unwrap(), 64),
                ConfigAttribute::request(ConfigAttribute::INTERNAL_IP6_DNS),
            ],
        };
        let mut out = Vec::new();
        cp.emit(&mut out).unwrap();
        let back = ConfigPayload::parse(&out).unwrap();
        assert_eq!(back, cp);
        assert_eq!(
            back.attributes[0].as_ipv4(),
            Some(Ipv4Addr::new(10, 99, 0, 1))
        );
        assert_eq!(
            back.attributes[3].as_ipv6_address(),
            Some(("fd00::5".parse().unwrap(), 64))
        );
        assert_eq!(
            ConfigPayload::parse(&[1, 0, 0, 0, 0, 1, 0, 3, 1, 2, 3]),
            Err(IkeError::BadConfigPayload)
        );
        assert_eq!(
            ConfigPayload::parse(&[1, 0, 0, 0, 0, 1, 0, 4, 1]),
            Err(IkeError::BadConfigPayload)
        );
    }
}
