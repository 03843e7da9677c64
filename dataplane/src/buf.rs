//! A packet inside a larger buffer, with headroom and tailroom, edited in place.
//!
//! Encapsulation grows a packet at both ends (outer headers in front, ESP trailer and ICV
//! behind) and decapsulation shrinks it, all without copying the payload: the same shape as
//! `xdp_adjust_head`/`xdp_adjust_tail` on an AF_XDP UMEM frame.

/// Bytes of headroom the dataplane reserves in front of every frame: enough for
/// Ethernet (14) + IPv6 (40) + UDP (8) + ESP header (8) + IV (8) with room to spare.
pub const HEADROOM: usize = 128;

/// Bytes of tailroom needed behind an inner packet for ESP padding (≤ 3), pad length,
/// next header and a 16-byte ICV.
pub const TAILROOM: usize = 32;

/// Error returned when a packet cannot grow by the requested amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

/// A window `[head, tail)` onto a mutable buffer.
#[derive(Debug)]
pub struct PacketBuf<'a> {
    buf: &'a mut [u8],
    head: usize,
    tail: usize,
}

impl<'a> PacketBuf<'a> {
    /// A packet occupying `buf[head..head + len]`. Out-of-range arguments are clamped to
    /// the buffer, so a caller's bad length can never make a later access panic.
    pub fn new(buf: &'a mut [u8], head: usize, len: usize) -> Self {
        let head = head.min(buf.len());
        let tail = head.saturating_add(len).min(buf.len());
        Self { buf, head, tail }
    }

    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    /// The packet bytes, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.head..self.tail]
    }

    /// Offset of the first packet byte inside the buffer.
    #[inline]
    pub fn head(&self) -> usize {
        self.head
    }

    /// Packet length.
    #[inline]
    pub fn len(&self) -> usize {
        self.tail - self.head
    }

    /// True when the packet holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.tail == self.head
    }

    /// Free bytes in front of the packet.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Free bytes behind the packet.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.tail
    }

    /// Grow the packet by `n` bytes at the front and return them (contents unspecified).
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], NoRoom> {
        if n > self.head {
            return Err(NoRoom);
        }
        self.head -= n;
        Ok(&mut self.buf[self.head..self.head + n])
    }

    /// Remove `n` bytes from the front (clamped to the packet length).
    #[inline]
    pub fn pull_front(&mut self, n: usize) {
        self.head += n.min(self.len());
    }

    /// Grow the packet by `n` bytes at the back and return them (contents unspecified).
    #[inline]
    pub fn push_back(&mut self, n: usize) -> Result<&mut [u8], NoRoom> {
        if n > self.tailroom() {
            return Err(NoRoom);
        }
        let old = self.tail;
        self.tail += n;
        Ok(&mut self.buf[old..self.tail])
    }

    /// Remove `n` bytes from the back (clamped to the packet length).
    #[inline]
    pub fn trim_back(&mut self, n: usize) {
        self.tail -= n.min(self.len());
    }

    /// Keep only the first `len` bytes (no-op if the packet is already shorter).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.tail = self.head + len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_within_bounds() {
        let mut mem = [0u8; 16];
        let mut p = PacketBuf::new(&mut mem, 4, 8);
        assert_eq!((p.headroom(), p.len(), p.tailroom()), (4, 8, 4));
        p.push_front(4).unwrap().fill(1);
        assert_eq!(p.push_front(1), Err(NoRoom));
        p.push_back(4).unwrap().fill(2);
        assert_eq!(p.push_back(1), Err(NoRoom));
        assert_eq!(p.len(), 16);
        p.pull_front(20);
        assert!(p.is_empty());
    }

    #[test]
    fn constructor_clamps() {
        let mut mem = [0u8; 8];
        let p = PacketBuf::new(&mut mem, 6, 100);
        assert_eq!(p.len(), 2);
        let mut mem = [0u8; 8];
        let p = PacketBuf::new(&mut mem, 100, 1);
        assert!(p.is_empty());
    }
}
