//! A bounds-checked cursor over wire bytes: every read returns the caller's named error
//! instead of panicking, so payload parsers stay free of indexing.

use super::IkeError;

/// Cursor over a byte slice; each read fails with the error given at construction.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    err: IkeError,
}

impl<'a> Reader<'a> {
    /// A reader whose short reads fail with `err`.
    pub(crate) fn new(buf: &'a [u8], err: IkeError) -> Self {
        Self { buf, err }
    }

    /// Bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// True when everything was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Take the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], IkeError> {
        if n > self.buf.len() {
            return Err(self.err);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Take a fixed-size array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], IkeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, IkeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, IkeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, IkeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
}

/// Append a big-endian `u16` length, failing with `payload_too_long` if it does not fit.
pub(crate) fn len_u16(n: usize) -> Result<u16, IkeError> {
    u16::try_from(n).map_err(|_| IkeError::PayloadTooLong)
}

/// Overwrite the big-endian u16 at `at` with `len` (used to patch lengths after emitting).
pub(crate) fn patch_u16(out: &mut [u8], at: usize, len: usize) -> Result<(), IkeError> {
    let v = len_u16(len)?.to_be_bytes();
    match out.get_mut(at..at + 2) {
        Some(dst) => {
            dst.copy_from_slice(&v);
            Ok(())
        }
        None => Err(IkeError::PayloadTooLong),
    }
}
