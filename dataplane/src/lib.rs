//! # xdpsec-dataplane
//!
//! The sans-IO ESP-in-UDP packet core of xdpsec, and the I/O backends that drive it.
//!
//! Everything outside [`io`] and [`worker`] is pure: functions and state machines over
//! byte buffers, with no sockets, threads or clocks. Frames are edited in place
//! ([`buf::PacketBuf`]); every refused frame yields a [`drop::DropReason`].
//!
//! | module | holds |
//! |---|---|
//! | [`wire`] | Ethernet, IPv4, IPv6 and UDP views; Internet checksums (RFC 1071, RFC 1624) |
//! | [`natt`] | RFC 3948 §2 classification of UDP/4500 payloads |
//! | [`replay`] | RFC 4303 §3.4.3 anti-replay window with RFC 4304 ESN inference |
//! | [`sa`] | SA parameters as configured or negotiated |
//! | [`esp`] | RFC 4303 ESP with RFC 4106 AES-GCM: encapsulation and decapsulation |
//! | [`sad`] | a worker's SA tables: inbound by SPI, outbound by traffic selector |
//! | [`batch`] | the pipeline over a batch of frames: a verdict per frame |
//! | [`handoff`] | lock-free mailboxes that pass frames to the worker owning their SA |

pub mod batch;
pub mod buf;
pub mod drop;
pub mod esp;
pub mod handoff;
pub mod io;
pub mod natt;
pub mod replay;
pub mod sa;
pub mod sad;
pub mod wire;
pub mod worker;
