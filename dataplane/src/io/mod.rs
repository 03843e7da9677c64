//! I/O backends around the sans-IO pipeline: the WAN side ([`WanPort`]: AF_XDP or a UDP
//! socket) and the inner side ([`tun::Tun`]).

#[cfg(feature = "afxdp")]
pub mod afxdp;
pub mod neigh;
pub mod port_set;
pub mod socket;
pub mod tun;

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::batch::{Pipeline, Verdict};

/// Size of one frame buffer (an AF_XDP UMEM chunk): [`crate::buf::HEADROOM`] in front, then up
/// to 1920 bytes of packet — enough for a 1500-byte MTU plus ESP and tunnel overhead.
pub const FRAME_SIZE: usize = 2048;

/// The WAN side of a worker: receives NAT-T traffic in batches and sends outer packets.
pub trait WanPort {
    /// A descriptor that becomes readable when frames are waiting.
    fn poll_fd(&self) -> RawFd;

    /// Short backend name for stats ("afxdp", "socket").
    fn name(&self) -> &'static str;

    /// Receive one batch, run it through `pipeline` in place, and call `deliver` with every
    /// verdict and the frame's bytes after processing (the inner packet for
    /// [`Verdict::Inner`], the IKE message for [`Verdict::Ike`]). Returns the batch size; 0
    /// when nothing was waiting. Never blocks.
    fn rx(
        &mut self,
        pipeline: &mut Pipeline,
        deliver: &mut dyn FnMut(Verdict, &[u8]),
    ) -> io::Result<usize>;

    /// Send outer packets (IP ‖ UDP ‖ payload, as built by the pipeline) to their
    /// destinations. Returns how many left; the rest were dropped for lack of room.
    fn tx(&mut self, packets: &[(SocketAddr, &[u8])]) -> io::Result<usize>;
}
