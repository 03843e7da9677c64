//! Anti-replay window (RFC 4303 §3.4.3, RFC 4304 ESN) driven by arbitrary operations, and
//! checked against a plain model: a set of received 64-bit numbers and the window rule.
//!
//! Input: byte 0 picks the window size (a multiple of 64 in 64..=4096) and ESN (bit 7);
//! then 5-byte records `op, u32 little-endian`:
//! - `op % 4 == 0`: `check(v)` only (a packet whose ICV fails);
//! - `op % 4 == 1`: `check(v)`, then `commit` of the result (a packet that verifies);
//! - `op % 4 == 2`: `check(v)` twice, then two commits (a duplicate inside one batch);
//! - `op % 4 == 3`: `commit(highest ± v)` directly (bit 2 picks the sign), to reach big
//!   jumps and the top of the 64-bit space.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use xdpsec_dataplane::replay::{ReplayError, ReplayWindow};

/// The rule stated plainly, as in `replay`'s proptest.
struct Model {
    size: u64,
    esn: bool,
    highest: u64,
    seen: BTreeSet<u64>,
}

impl Model {
    /// With ESN: the number with this low half in `[T - W + 1, T - W + 1 + 2^32)`.
    fn infer(&self, low: u32) -> Result<u64, ReplayError> {
        if !self.esn {
            return Ok(u64::from(low));
        }
        let base = i128::from(self.highest) - i128::from(self.size) + 1;
        let n = base + (i128::from(low) - base).rem_euclid(1 << 32);
        u64::try_from(n).map_err(|_| ReplayError::TooOld)
    }

    fn check_full(&self, n: u64) -> Result<(), ReplayError> {
        if n == 0 || i128::from(n) <= i128::from(self.highest) - i128::from(self.size) {
            Err(ReplayError::TooOld)
        } else if self.seen.contains(&n) {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    fn check(&self, low: u32) -> Result<u64, ReplayError> {
        let n = self.infer(low)?;
        self.check_full(n)?;
        Ok(n)
    }

    fn commit(&mut self, n: u64) -> Result<(), ReplayError> {
        self.check_full(n)?;
        self.seen.insert(n);
        if n > self.highest {
            self.highest = n;
            // forget what left the window, so the model stays small
            let left = n.saturating_sub(self.size);
            self.seen = self.seen.split_off(&left);
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let size = 64 * (1 + u32::from(head & 0x3f));
    let esn = head & 0x80 != 0;
    let Ok(mut w) = ReplayWindow::new(size, esn) else {
        panic!("size {size} must be accepted");
    };
    let mut m = Model {
        size: u64::from(size),
        esn,
        highest: 0,
        seen: BTreeSet::new(),
    };

    for rec in rest.chunks_exact(5) {
        let op = rec[0];
        let v = u32::from_le_bytes([rec[1], rec[2], rec[3], rec[4]]);
        let before = w.highest();
        match op % 4 {
            0 => assert_eq!(w.check(v), m.check(v)),
            1 => {
                let got = w.check(v);
                assert_eq!(got, m.check(v));
                if let Ok(n) = got {
                    assert_eq!(w.commit(n), Ok(()));
                    assert_eq!(m.commit(n), Ok(()));
                    assert_eq!(w.commit(n), Err(ReplayError::Duplicate));
                }
            }
            2 => {
                let a = w.check(v);
                let b = w.check(v);
                assert_eq!(a, b);
                assert_eq!(a, m.check(v));
                if let Ok(n) = a {
                    assert_eq!(w.commit(n), m.commit(n));
                    assert_eq!(w.commit(n), Err(ReplayError::Duplicate));
                }
            }
            _ => {
                let n = if op & 4 == 0 {
                    before.wrapping_add(u64::from(v))
                } else {
                    before.wrapping_sub(u64::from(v))
                };
                assert_eq!(w.commit(n), m.commit(n));
            }
        }
        assert!(w.highest() >= before, "the right edge never moves left");
        assert_eq!(w.highest(), m.highest);
    }
});
