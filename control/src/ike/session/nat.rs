//! NAT detection (RFC 7296 §2.23).
//!
//! Each side sends NAT_DETECTION_SOURCE_IP = SHA-1(SPIi | SPIr | source IP | source port)
//! and NAT_DETECTION_DESTINATION_IP over the destination as *it* addressed the packet. The
//! receiver hashes the addresses the packet actually carried: "If none of the
//! NAT_DETECTION_SOURCE_IP payload(s) received matches the expected value ... the other end
//! is behind a NAT"; if the NAT_DETECTION_DESTINATION_IP does not match, "this end is behind
//! a NAT" and it "SHOULD start sending keepalive packets" (§2.23, RFC 3948 §4).

use std::net::SocketAddr;

use crate::ike::crypto::auth::nat_detection_hash;
use crate::ike::message::Message;
use crate::ike::payload::{NotifyPayload, NotifyType, Payload};

/// Length of a NAT-D hash (SHA-1, §2.23).
pub(super) const NATD_LEN: usize = 20;

/// The two NAT-D notifications for a message from `src` to `dst`. With `fake_source` (random
/// octets) the NAT_DETECTION_SOURCE_IP cannot match, so the peer believes we are behind a NAT
/// and UDP-encapsulates ESP (§2.23: "the other end is behind a NAT"; what strongSwan's
/// `encap = yes` does). Only the source hash is faked: the destination hash still tells the
/// peer whether *it* is behind a NAT.
pub(super) fn natd_payloads(
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    src: SocketAddr,
    dst: SocketAddr,
    fake_source: Option<[u8; NATD_LEN]>,
) -> [Payload; 2] {
    let hash = |a: SocketAddr| nat_detection_hash(spi_i, spi_r, a.ip(), a.port());
    [
        Payload::Notify(NotifyPayload::new(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            &fake_source.unwrap_or_else(|| hash(src)),
        )),
        Payload::Notify(NotifyPayload::new(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            &hash(dst),
        )),
    ]
}

/// What the peer's NAT-D payloads say about a message that arrived from `src` at `dst`:
/// `Some((nat_local, nat_remote))`. `nat_remote` is also what a peer that forces UDP
/// encapsulation makes us believe. `None` when the peer sent no NAT-D payloads: it does not
/// do NAT traversal, so ESP with it could not be UDP-encapsulated (RFC 3948).
pub(super) fn detect(
    msg: &Message,
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    src: SocketAddr,
    dst: SocketAddr,
) -> Option<(bool, bool)> {
    let mut sources = msg.notifies(NotifyType::NAT_DETECTION_SOURCE_IP).peekable();
    let mut dests = msg
        .notifies(NotifyType::NAT_DETECTION_DESTINATION_IP)
        .peekable();
    if sources.peek().is_none() || dests.peek().is_none() {
        return None;
    }
    let want_src = nat_detection_hash(spi_i, spi_r, src.ip(), src.port());
    let want_dst = nat_detection_hash(spi_i, spi_r, dst.ip(), dst.port());
    let nat_remote = !sources.any(|n| n.data == want_src);
    let nat_local = !dests.any(|n| n.data == want_dst);
    Some((nat_local, nat_remote))
}
