//! The offline tool: read a capture, run its packets through [`Pipeline`] in batches, write
//! the result with the original timestamps, and summarise what happened.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use xdpsec_dataplane::batch::{Config, Ingress, MAX_BATCH, Pipeline, Verdict};
use xdpsec_dataplane::buf::{HEADROOM, PacketBuf, TAILROOM};
use xdpsec_dataplane::drop::DropReason;
use xdpsec_dataplane::natt::NATT_PORT;
use xdpsec_dataplane::sa::SaParams;
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::wire::ethernet::{self, EtherType};
use xdpsec_dataplane::wire::frame::{Link, PortMatch};

use super::format::{self, FileHeader, LINKTYPE_ETHERNET, LINKTYPE_RAW, Reader, Record};

/// Which way to process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// ESP-in-UDP → inner packets (uses `direction = "in"` SAs).
    Decrypt,
    /// Inner packets → ESP-in-UDP (uses `direction = "out"` SAs).
    Encrypt,
}

/// What happened to the packets of a capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Records read.
    pub packets: u64,
    /// Records decrypted or encrypted.
    pub processed: u64,
    /// Records copied unchanged (not ESP-in-UDP when decrypting; not IP when encrypting).
    pub passed: u64,
    /// Records dropped.
    pub dropped: u64,
    /// Drops by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// IKE messages on the NAT-T port (passed unchanged).
    pub ike: u64,
    /// NAT-keepalives (passed unchanged).
    pub keepalive: u64,
}

impl Summary {
    /// One human-readable line.
    pub fn line(&self, op: Op) -> String {
        let verb = match op {
            Op::Decrypt => "decrypted",
            Op::Encrypt => "encrypted",
        };
        let mut s = format!(
            "{} packets: {} {verb}, {} passed unchanged ({} IKE, {} keepalive), {} dropped",
            self.packets, self.processed, self.passed, self.ike, self.keepalive, self.dropped
        );
        if !self.drops.is_empty() {
            let reasons: Vec<String> = self.drops.iter().map(|(r, n)| format!("{r} {n}")).collect();
            let _ = write!(s, " ({})", reasons.join(", "));
        }
        s
    }
}

/// A failure that stops the tool (bad input file, not a packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Per-packet problems are reported through this callback (packet number from 1, reason).
pub type Report<'a> = &'a mut dyn FnMut(u64, DropReason);

/// Process a whole capture held in memory; returns the output capture and the summary.
pub fn run(
    op: Op,
    sas: &[SaParams],
    input: &[u8],
    report: Report<'_>,
) -> Result<(Vec<u8>, Summary), ToolError> {
    let mut reader = Reader::new(input).map_err(|e| ToolError(e.0))?;
    let header = reader.header();
    let link = match header.linktype {
        LINKTYPE_ETHERNET => Link::Ethernet,
        LINKTYPE_RAW => Link::Ip,
        other => {
            return Err(ToolError(format!(
                "unsupported link type {other} (expected 1 = Ethernet or 101 = raw IP)"
            )));
        }
    };
    // A capture may be taken on either side of a NAT: ESP-in-UDP is whatever has 4500 at
    // one end. Outbound packets may be as large as the capture holds.
    let config = Config {
        port: PortMatch::Either(NATT_PORT),
        mtu: 65535,
        ..Config::default()
    };
    let mut pipeline = Pipeline::new(config);
    for sa in sas {
        pipeline
            .sad
            .apply(SaCommand::Install(Box::new(sa.clone())))
            .map_err(|e| ToolError(format!("spi {:#x}: {e}", sa.spi)))?;
    }
    let mut out = Vec::with_capacity(input.len() + input.len() / 8);
    format::write_header(
        &mut out,
        &FileHeader {
            linktype: header.linktype,
            ..header
        },
    );

    let mut batch = Batch::new(op, link);
    let mut summary = Summary::default();
    while let Some(rec) = reader.next_record() {
        let rec = rec.map_err(|e| ToolError(e.0))?;
        batch.push(rec);
        if batch.records.len() == MAX_BATCH {
            batch.flush(&mut pipeline, &mut out, &mut summary, report);
        }
    }
    batch.flush(&mut pipeline, &mut out, &mut summary, report);
    Ok((out, summary))
}

/// Up to [`MAX_BATCH`] records with working buffers that have headroom and tailroom.
struct Batch<'a> {
    op: Op,
    link: Link,
    records: Vec<Record<'a>>,
    bufs: Vec<Vec<u8>>,
}

impl<'a> Batch<'a> {
    fn new(op: Op, link: Link) -> Self {
        Self {
            op,
            link,
            records: Vec::with_capacity(MAX_BATCH),
            bufs: vec![Vec::new(); MAX_BATCH],
        }
    }

    fn push(&mut self, rec: Record<'a>) {
        self.records.push(rec);
    }

    /// Offset of the IP packet inside a record when encrypting (after an Ethernet header).
    fn ip_start(&self, rec: &Record<'_>) -> Option<usize> {
        match self.link {
            Link::Ip => Some(0),
            Link::Ethernet => {
                let f = ethernet::Frame::new_checked(rec.data).ok()?;
                let et = f.ethertype();
                (et == EtherType::IPV4 || et == EtherType::IPV6).then_some(ethernet::HEADER_LEN)
            }
        }
    }

    fn flush(
        &mut self,
        pipeline: &mut Pipeline,
        out: &mut Vec<u8>,
        summary: &mut Summary,
        report: Report<'_>,
    ) {
        let n = self.records.len();
        if n == 0 {
            return;
        }
        let base = summary.packets;
        summary.packets += n as u64;
        // Which records take part (encrypt skips non-IP frames) and where their packet starts.
        let starts: Vec<Option<usize>> = self
            .records
            .iter()
            .map(|r| match self.op {
                Op::Decrypt => Some(0),
                Op::Encrypt => self.ip_start(r),
            })
            .collect();
        let mut frames = Vec::with_capacity(n);
        let mut slots = Vec::with_capacity(n);
        for (i, (rec, buf)) in self.records.iter().zip(self.bufs.iter_mut()).enumerate() {
            let Some(start) = starts[i] else { continue };
            let data = &rec.data[start..];
            buf.clear();
            buf.resize(HEADROOM + data.len() + TAILROOM, 0);
            buf[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
            frames.push(PacketBuf::new(buf, HEADROOM, data.len()));
            slots.push(i);
        }
        let mut verdicts = vec![Verdict::Drop(DropReason::EmptyPayload); frames.len()];
        match self.op {
            Op::Decrypt => {
                pipeline.decap_batch(Ingress::Frames(self.link), &mut frames, &mut verdicts)
            }
            Op::Encrypt => pipeline.encap_batch(&mut frames, &mut verdicts),
        }
        let mut results: Vec<Option<(Verdict, &[u8])>> = vec![None; n];
        for ((slot, frame), v) in slots.iter().zip(frames.iter()).zip(verdicts.iter()) {
            results[*slot] = Some((*v, frame.data()));
        }
        for (i, rec) in self.records.iter().enumerate() {
            let l2 = match self.link {
                Link::Ethernet => rec.data.get(..ethernet::HEADER_LEN),
                Link::Ip => None,
            };
            match results[i] {
                // A pipeline with one shard (Shard::SOLE) hands nothing off.
                None | Some((Verdict::Handoff { .. }, _)) => {
                    summary.passed += 1;
                    format::write_record(out, rec, rec.data);
                }
                Some((Verdict::Inner | Verdict::Wire { .. }, packet)) => {
                    summary.processed += 1;
                    write_with_l2(out, rec, l2, packet);
                }
                Some((Verdict::Ike { .. }, _)) => {
                    summary.ike += 1;
                    summary.passed += 1;
                    format::write_record(out, rec, rec.data);
                }
                Some((Verdict::Keepalive, _)) => {
                    summary.keepalive += 1;
                    summary.passed += 1;
                    format::write_record(out, rec, rec.data);
                }
                Some((Verdict::Drop(reason), _)) if self.op == Op::Decrypt && !is_natt(reason) => {
                    // Not ESP-in-UDP at all: other traffic stays in the capture.
                    summary.passed += 1;
                    format::write_record(out, rec, rec.data);
                }
                Some((Verdict::Drop(reason), _)) => {
                    summary.dropped += 1;
                    *summary.drops.entry(reason.name()).or_default() += 1;
                    report(base + i as u64 + 1, reason);
                }
            }
        }
        self.records.clear();
    }
}

/// Whether a drop reason means the frame was UDP to the NAT-T port (so it was ours to
/// process), rather than other traffic in the capture.
fn is_natt(reason: DropReason) -> bool {
    !matches!(
        reason,
        DropReason::TruncatedEthernet
            | DropReason::UnsupportedEthertype
            | DropReason::TruncatedIp
            | DropReason::BadIpVersion
            | DropReason::BadIpHeaderLength
            | DropReason::BadIpLength
            | DropReason::BadIpChecksum
            | DropReason::IpFragment
            | DropReason::Ipv6ExtensionHeader
            | DropReason::NotUdp
            | DropReason::BadUdpLength
            | DropReason::NotNattPort
    )
}

/// Write `packet` (an IP packet) as a record, behind the original Ethernet header if the
/// capture has one (ethertype set to the packet's IP version).
fn write_with_l2(out: &mut Vec<u8>, rec: &Record<'_>, l2: Option<&[u8]>, packet: &[u8]) {
    let Some(l2) = l2 else {
        format::write_record(out, rec, packet);
        return;
    };
    let mut frame = Vec::with_capacity(l2.len() + packet.len());
    frame.extend_from_slice(&l2[..12]);
    let et = if packet.first().is_some_and(|b| b >> 4 == 6) {
        EtherType::IPV6
    } else {
        EtherType::IPV4
    };
    frame.extend_from_slice(&et.to_be_bytes());
    frame.extend_from_slice(packet);
    format::write_record(out, rec, &frame);
}
