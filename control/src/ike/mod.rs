//! IKEv2 (RFC 7296), sans-IO: messages, payloads, crypto and proposal selection.
//!
//! Pure code over byte buffers — no sockets, threads or clocks; randomness is injected.
//! Hostile input yields an [`IkeError`] with a stable name, never a panic.
//!
//! - [`header`]: the IKE header (§3.1).
//! - [`payload`]: the generic payload chain (§3.2) and every payload we use (§3.3 - §3.15).
//! - [`message`]: a whole message; [`parse_message`] is the fuzz entry point.
//! - [`crypto`]: transforms, prf / prf+ (§2.13), key derivation (§2.14, §2.17), the SK
//!   payload (§3.14, RFC 5282), Diffie-Hellman (RFC 5903, RFC 8031), PSK AUTH (§2.15),
//!   NAT detection (§2.23).
//! - [`proposal`]: proposal selection (§2.7).
//! - [`suite_names`]: strongSwan-style proposal strings (`aes128gcm16-prfsha256-x25519`).

pub mod crypto;
pub mod error;
pub mod header;
pub mod message;
pub mod payload;
pub mod proposal;
mod reader;
pub mod session;
pub mod suite_names;

#[cfg(test)]
mod handshake_test;

pub use error::IkeError;
pub use header::{ExchangeType, Flags, Header};
pub use message::{Message, parse_message};
pub use payload::{Payload, PayloadType};
