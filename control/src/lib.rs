//! # xdpsec-control
//!
//! The control plane of xdpsec and the `xdpsec` command.
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | configuration files (the SA file), one-line errors with file:line and field |
//! | [`pcap`] | the offline `xdpsec pcap encrypt|decrypt` tool and the classic pcap format |
//! | [`ike`] | sans-IO IKEv2 (RFC 7296): messages, payloads, crypto, the session engine |
//! | [`ike_service`] | the IKE runtime: UDP 500, IKE on 4500 via the workers, SA push, routes |
//! | [`daemon`] | `xdpsec run`: the gateway runtime (TUN, WAN backend, worker, signals) |
//! | [`stats`] | counters as JSON |
//! | [`api`] | the control API: JSON lines on a Unix socket (0600) |
//! | [`metrics`] | Prometheus text metrics on an optional loopback HTTP endpoint |
//! | [`show`] | `status`, `stats`, `sa list`: API clients |
//! | [`cli`] | the command line |

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ike;
pub mod ike_service;
pub mod metrics;
pub mod pcap;
pub mod show;
pub mod stats;
