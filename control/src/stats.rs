//! Counters as JSON, for `--stats` snapshots (and later the control API).

use std::collections::BTreeMap;

use serde::Serialize;
use xdpsec_dataplane::worker::WorkerStats;

/// One worker's counters in a stable, documented JSON shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerReport {
    /// "afxdp" or "socket".
    pub backend: &'static str,
    /// Frames received on the WAN side.
    pub rx_frames: u64,
    /// IKE messages on the NAT-T port.
    pub ike: u64,
    /// NAT-keepalives received.
    pub keepalives: u64,
    /// ESP packets decrypted and delivered.
    pub decap_packets: u64,
    /// Inner bytes delivered.
    pub decap_bytes: u64,
    /// Packets encrypted.
    pub encap_packets: u64,
    /// Inner bytes encrypted.
    pub encap_bytes: u64,
    /// Peer endpoint changes learned (NAT rebinding).
    pub peer_moves: u64,
    /// Packets read from / written to the TUN, and refused by it.
    pub tun_rx: u64,
    /// Packets written to the TUN.
    pub tun_tx: u64,
    /// Packets the TUN refused.
    pub tun_drops: u64,
    /// Outer packets sent, and dropped for lack of room.
    pub wan_tx: u64,
    /// Outer packets the WAN side had no room for.
    pub wan_tx_drops: u64,
    /// Frames of other workers' SAs handed to their owners.
    pub handoff_tx: u64,
    /// Frames of this worker's SAs handed over by other workers.
    pub handoff_rx: u64,
    /// Frames dropped because the owner's mailbox was full.
    pub handoff_full: u64,
    /// Control datagrams (IKE, keepalives) sent for the control plane.
    pub control_tx: u64,
    /// Installed SAs.
    pub sas_in: usize,
    /// Installed SAs.
    pub sas_out: usize,
    /// Drops by reason (non-zero only).
    pub drops: BTreeMap<&'static str, u64>,
}

impl From<&WorkerStats> for WorkerReport {
    fn from(s: &WorkerStats) -> Self {
        let p = &s.pipeline;
        Self {
            backend: s.backend,
            rx_frames: p.rx_frames,
            ike: p.ike,
            keepalives: p.keepalives,
            decap_packets: p.decap_packets,
            decap_bytes: p.decap_bytes,
            encap_packets: p.encap_packets,
            encap_bytes: p.encap_bytes,
            peer_moves: p.peer_moves,
            tun_rx: s.tun_rx,
            tun_tx: s.tun_tx,
            tun_drops: s.tun_drops,
            wan_tx: s.wan_tx,
            wan_tx_drops: s.wan_tx_drops,
            handoff_tx: s.handoff_tx,
            handoff_rx: s.handoff_rx,
            handoff_full: s.handoff_full,
            control_tx: s.control_tx,
            sas_in: s.sas.0,
            sas_out: s.sas.1,
            drops: p.drops.nonzero().map(|(r, n)| (r.name(), n)).collect(),
        }
    }
}

/// The whole gateway's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GatewayReport {
    /// Backend in use and why ("afxdp (driver mode)", "socket (requested)", …).
    pub backend: String,
    /// XDP program counters, when XDP is in use.
    pub xdp: Option<BTreeMap<&'static str, u64>>,
    /// Per-worker counters.
    pub workers: Vec<WorkerReport>,
}
