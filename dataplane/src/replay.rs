//! Anti-replay window: RFC 4303 §3.4.3 and Appendix A, with RFC 4304 extended sequence
//! numbers (ESN).
//!
//! The window is used in two steps, because RFC 4303 §3.4.3 puts the ICV check between them:
//!
//! > If the received packet falls within the window and is not a duplicate, or if the packet
//! > is to the right of the window, then the receiver proceeds to ICV verification. [...]
//! > The receive window is updated only if the ICV verification succeeds.
//!
//! 1. [`ReplayWindow::check`] (`&self`) before decryption: refuses duplicates and packets left
//!    of the window, and infers the full 64-bit number (RFC 4303 Appendix A2.2) that the ICV
//!    must cover (RFC 4303 §2.2.1, RFC 4106 §5 with ESN).
//! 2. [`ReplayWindow::commit`] (`&mut self`) after the ICV verified: marks the number received
//!    and slides the window. It checks again, so that two packets of one batch that carry the
//!    same number both pass `check` but only the first `commit` succeeds.
//!
//! The bitmap is a ring of `u64` blocks in the style of RFC 6479 §2: at least one block more
//! than the window needs, so sliding right only clears whole blocks that left the window and
//! never shifts bits. The block count is rounded up to a power of two, so finding a block is a
//! mask rather than a division (two per packet otherwise). It is allocated once, in [`ReplayWindow::new`]; `check` and `commit` never
//! allocate and never panic, whatever numbers they are fed.

use core::fmt;

use crate::drop::DropReason;

/// Why the replay window refused a sequence number (RFC 4303 §3.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The number was already received (and verified) on this SA.
    Duplicate,
    /// The number is left of the window, or is one that a sender never uses (0, or
    /// beyond the 64-bit space).
    TooOld,
}

impl From<ReplayError> for DropReason {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Duplicate => DropReason::ReplayDuplicate,
            ReplayError::TooOld => DropReason::ReplayTooOld,
        }
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayError::Duplicate => "duplicate sequence number",
            ReplayError::TooOld => "sequence number left of the replay window",
        })
    }
}

impl core::error::Error for ReplayError {}

/// The requested window size is not one [`ReplayWindow::new`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSizeError;

impl fmt::Display for WindowSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replay window must be {MIN_WINDOW}..={MAX_WINDOW} and a multiple of {BLOCK_BITS}"
        )
    }
}

impl core::error::Error for WindowSizeError {}

/// Default window size. RFC 4303 §3.4.3 makes 64 the default, but under multi-queue
/// reordering 64 is too small (DESIGN.md "Lessons from the field"): libreswan uses 128.
pub const DEFAULT_WINDOW: u32 = 128;
/// Smallest window accepted. RFC 4303 §3.4.3: "a window size of 64 is preferred and SHOULD
/// be employed as the default"; 32 would be the MUST, but we never go below one block.
pub const MIN_WINDOW: u32 = 64;
/// Largest window accepted (4096 bits = 64 blocks, + 1 ring block, rounded up to 128 blocks:
/// 1 KiB per SA).
pub const MAX_WINDOW: u32 = 4096;

/// Bits per bitmap block.
const BLOCK_BITS: u32 = u64::BITS;
/// log2(BLOCK_BITS).
const BLOCK_SHIFT: u32 = 6;

/// Receive-side anti-replay state of one inbound SA.
///
/// Holds `T`, the highest number committed (RFC 4303 Appendix A: the window's right edge),
/// and one bit per number of the window `(T - W, T]`, `W` being [`size`](Self::size).
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// RFC 6479 ring: `W / 64 + 1` blocks rounded up to a power of two; number `n` lives in
    /// block `(n / 64) % len`, bit `n % 64`.
    blocks: Box<[u64]>,
    /// Window size `W` in numbers.
    size: u32,
    /// Whether the SA uses 64-bit extended sequence numbers (RFC 4304).
    esn: bool,
    /// Highest number committed, `T`; 0 while nothing was committed.
    highest: u64,
}

impl ReplayWindow {
    /// A window of `size` numbers, for an SA with (`esn = true`) or without ESN.
    ///
    /// `size` must be within [`MIN_WINDOW`]`..=`[`MAX_WINDOW`] and a multiple of 64.
    /// This is the only allocation the window ever makes.
    pub fn new(size: u32, esn: bool) -> Result<Self, WindowSizeError> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&size) || !size.is_multiple_of(BLOCK_BITS) {
            return Err(WindowSizeError);
        }
        let blocks = ((size / BLOCK_BITS) as usize + 1).next_power_of_two();
        Ok(Self {
            blocks: vec![0u64; blocks].into_boxed_slice(),
            size,
            esn,
            highest: 0,
        })
    }

    /// Window size `W`, in numbers.
    #[inline]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Whether the SA uses extended sequence numbers (RFC 4304).
    #[inline]
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// Highest sequence number committed so far (0 = none).
    #[inline]
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Check a received 32-bit sequence number (the low half when ESN), before the ICV is
    /// verified. Returns the full 64-bit number: with ESN the high half is inferred per
    /// RFC 4303 Appendix A2.2; without ESN it is 0.
    ///
    /// Does not change the window: pass the returned number to [`commit`](Self::commit)
    /// once the ICV verified.
    #[inline]
    pub fn check(&self, seq_low: u32) -> Result<u64, ReplayError> {
        let seq = if self.esn {
            self.infer_esn(seq_low)?
        } else {
            u64::from(seq_low)
        };
        self.check_full(seq)?;
        Ok(seq)
    }

    /// Mark `seq` (as returned by [`check`](Self::check)) received, sliding the window right
    /// if `seq` is beyond its right edge. Call only after the ICV verified
    /// (RFC 4303 §3.4.3: "The receive window is updated only if the ICV verification
    /// succeeds").
    ///
    /// Checks again first: `Err(Duplicate)` if `seq` was already committed (e.g. twice in one
    /// batch), `Err(TooOld)` if a commit since the check pushed it out of the window. The
    /// window is unchanged on error.
    #[inline]
    pub fn commit(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.check_full(seq)?;
        if seq > self.highest {
            self.advance(seq);
        }
        let (block, mask) = self.slot(seq);
        if let Some(b) = self.blocks.get_mut(block) {
            *b |= mask;
        }
        Ok(())
    }

    /// RFC 4303 Appendix A2.2: choose `Seqh` so that the number lands in the window or to
    /// its right, i.e. in `[T - W + 1, T - W + 1 + 2^32)`.
    ///
    /// > Case A: Tl >= (W - 1). In this case, the window is within one sequence number
    /// > subspace. [...] If Seql >= Bl (where Bl = Tl - W + 1), then Seqh = Th;
    /// > If Seql < Bl, then Seqh = Th + 1.
    /// >
    /// > Case B: Tl < (W - 1). In this case, the window spans two sequence number
    /// > subspaces. [...] If Seql >= Bl (where Bl = Tl - W + 1), then Seqh = Th - 1;
    /// > If Seql < Bl, then Seqh = Th.
    ///
    /// In case B, `Bl` wraps modulo 2^32. A `Seqh` below 0 (window overlapping the start of
    /// the number space) or above `2^32 - 1` (the 64-bit space is exhausted; the sender must
    /// have rekeyed, RFC 4303 §3.3.3) names no number a sender can use: `TooOld`.
    fn infer_esn(&self, seql: u32) -> Result<u64, ReplayError> {
        let th = (self.highest >> 32) as u32;
        let tl = self.highest as u32;
        // W - 1 cannot underflow: `new` guarantees W >= 64.
        let w_minus_1 = self.size.wrapping_sub(1);
        let bl = tl.wrapping_sub(w_minus_1);
        let seqh = if tl >= w_minus_1 {
            // Case A: Bl does not wrap.
            if seql >= bl {
                Some(th)
            } else {
                th.checked_add(1)
            }
        } else {
            // Case B: Bl wrapped into the previous subspace.
            if seql >= bl {
                th.checked_sub(1)
            } else {
                Some(th)
            }
        };
        let seqh = seqh.ok_or(ReplayError::TooOld)?;
        Ok((u64::from(seqh) << 32) | u64::from(seql))
    }

    /// The window rule on a full 64-bit number, with `T` = highest and `W` = size:
    /// `0` and numbers `<= T - W` are `TooOld`, numbers in `(T - W, T]` pass once, numbers
    /// `> T` pass (RFC 4303 §3.4.3: "Packets that contain sequence numbers lower than the
    /// 'left' edge of the window are rejected"; §3.3.3: the first packet sent is number 1).
    #[inline]
    fn check_full(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.highest {
            return Ok(());
        }
        // seq <= T here, so T - seq cannot underflow.
        if self.highest - seq >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        let (block, mask) = self.slot(seq);
        match self.blocks.get(block) {
            Some(b) if b & mask == 0 => Ok(()),
            _ => Err(ReplayError::Duplicate),
        }
    }

    /// Slide the right edge to `seq > T`, clearing the ring blocks that leave the window
    /// (RFC 6479 §2): at most every block once, so the cost is bounded by the window size
    /// however far `seq` jumps.
    fn advance(&mut self, seq: u64) {
        let len = self.blocks.len();
        let old_block = self.highest >> BLOCK_SHIFT;
        let new_block = seq >> BLOCK_SHIFT;
        // new_block >= old_block because seq > highest.
        let diff = new_block.saturating_sub(old_block);
        let to_clear = usize::try_from(diff).map_or(len, |d| d.min(len));
        let mut index = self.block_index(old_block);
        for _ in 0..to_clear {
            index += 1;
            if index == len {
                index = 0;
            }
            if let Some(b) = self.blocks.get_mut(index) {
                *b = 0;
            }
        }
        self.highest = seq;
    }

    /// Ring index of the block holding absolute block number `block`.
    #[inline]
    fn block_index(&self, block: u64) -> usize {
        // `len` is a power of two (2..=128), so the mask is `% len` and both conversions are
        // exact.
        let mask = self.blocks.len() as u64 - 1;
        (block & mask) as usize
    }

    /// Ring index and bit mask of number `seq`.
    #[inline]
    fn slot(&self, seq: u64) -> (usize, u64) {
        (
            self.block_index(seq >> BLOCK_SHIFT),
            1u64 << (seq & u64::from(BLOCK_BITS - 1)),
        )
    }
}

#[cfg(test)]
mod tests;
