//! # xdpsec-control
//!
//! The control plane of xdpsec and the `xdpsec` command.
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | configuration files (the SA file), one-line errors with file:line and field |
//! | [`pcap`] | the offline `xdpsec pcap encrypt|decrypt` tool and the classic pcap format |
//! | [`ike`] | sans-IO IKEv2 (RFC 7296): messages, payloads, crypto |
//! | [`cli`] | the command line |

pub mod cli;
pub mod config;
pub mod ike;
pub mod pcap;
