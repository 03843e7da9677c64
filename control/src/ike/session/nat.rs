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

/// The two NAT-D notifications for a message from `src` to `dst`.
pub(super) fn natd_payloads(
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    src: SocketAddr,
    dst: SocketAddr,
) -> [Payload; 2] {
    let n = |ty, a: SocketAddr| {
        Payload::Notify(NotifyPayload::new(
            ty,
            &nat_detection_hash(spi_i, spi_r, a.ip(), a.port()),
        ))
    };
    [
        n(NotifyType::NAT_DETECTION_SOURCE_IP, src),
        n(NotifyType::NAT_DETECTION_DESTINATION_IP, dst),
    ]
}

/// What the peer's NAT-D payloads say about a message that arrived from `src` at `dst`:
/// `(nat_local, nat_remote)`. Without NAT-D payloads the peer does not do NAT traversal and
/// nothing is detected.
pub(super) fn detect(
    msg: &Message,
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    src: SocketAddr,
    dst: SocketAddr,
) -> (bool, bool) {
    let mut sources = msg.notifies(NotifyType::NAT_DETECTION_SOURCE_IP).peekable();
    let mut dests = msg
        .notifies(NotifyType::NAT_DETECTION_DESTINATION_IP)
        .peekable();
    if sources.peek().is_none() || dests.peek().is_none() {
        return (false, false);
    }
    let want_src = nat_detection_hash(spi_i, spi_r, src.ip(), src.port());
    let want_dst = nat_detection_hash(spi_i, spi_r, dst.ip(), dst.port());
    let nat_remote = !sources.any(|n| n.data == want_src);
    let nat_local = !dests.any(|n| n.data == want_dst);
    (nat_local, nat_remote)
}
