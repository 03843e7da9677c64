//! `xdpsec pcap encrypt|decrypt`: ESP-in-UDP encapsulation and decapsulation of capture files
//! with static SAs, through the same batch pipeline as the gateway.

pub mod format;
pub mod tool;
