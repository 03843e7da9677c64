//! The four exchanges (RFC 7296 §1.2 - §1.4), as `impl Engine` blocks, and a view of a
//! message's payloads.

mod auth;
mod create_child;
mod informational;
mod init;

use crate::ike::payload::{
    AuthPayload, ConfigPayload, DeletePayload, IdPayload, KePayload, NotifyPayload, NotifyType,
    Payload, SaPayload, TsPayload,
};

/// A notification without data about no particular SA (errors like TS_UNACCEPTABLE,
/// status like INITIAL_CONTACT; §3.10).
pub(super) fn notification(ty: NotifyType) -> Payload {
    Payload::Notify(NotifyPayload::new(ty, &[]))
}

/// The payloads of a message by kind (the first of each; §3 allows one of most per message).
pub(super) struct Inner<'a> {
    pub all: &'a [Payload],
    pub id_i: Option<&'a IdPayload>,
    pub id_r: Option<&'a IdPayload>,
    pub auth: Option<&'a AuthPayload>,
    pub sa: Option<&'a SaPayload>,
    pub ke: Option<&'a KePayload>,
    pub nonce: Option<&'a [u8]>,
    pub ts_i: Option<&'a TsPayload>,
    pub ts_r: Option<&'a TsPayload>,
    pub cp: Option<&'a ConfigPayload>,
}

impl<'a> Inner<'a> {
    pub fn new(all: &'a [Payload]) -> Self {
        let mut v = Self {
            all,
            id_i: None,
            id_r: None,
            auth: None,
            sa: None,
            ke: None,
            nonce: None,
            ts_i: None,
            ts_r: None,
            cp: None,
        };
        for p in all {
            match p {
                Payload::IdI(x) => _ = v.id_i.get_or_insert(x),
                Payload::IdR(x) => _ = v.id_r.get_or_insert(x),
                Payload::Auth(x) => _ = v.auth.get_or_insert(x),
                Payload::Sa(x) => _ = v.sa.get_or_insert(x),
                Payload::Ke(x) => _ = v.ke.get_or_insert(x),
                Payload::Nonce(x) => _ = v.nonce.get_or_insert(x.as_slice()),
                Payload::TsI(x) => _ = v.ts_i.get_or_insert(x),
                Payload::TsR(x) => _ = v.ts_r.get_or_insert(x),
                Payload::Config(x) => _ = v.cp.get_or_insert(x),
                _ => {}
            }
        }
        v
    }

    /// The first notification of type `ty`.
    pub fn notify(&self, ty: NotifyType) -> Option<&'a NotifyPayload> {
        self.all.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == ty => Some(n),
            _ => None,
        })
    }

    /// The first error notification (types below 16384, §3.10.1); status types we do not
    /// know are ignored as §3.10.1 requires.
    pub fn error(&self) -> Option<&'a NotifyPayload> {
        self.all.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty.is_error() => Some(n),
            _ => None,
        })
    }

    /// Every Delete payload.
    pub fn deletes(&self) -> impl Iterator<Item = &'a DeletePayload> {
        self.all.iter().filter_map(|p| match p {
            Payload::Delete(d) => Some(d),
            _ => None,
        })
    }
}
