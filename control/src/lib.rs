//! # xdpsec-control
//!
//! The control plane of xdpsec: configuration, the offline pcap tool, and (to come) IKE.
