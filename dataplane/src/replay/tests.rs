//! Tests of the anti-replay window: edges, ESN inference, and a proptest against a
//! reference model (a `BTreeSet` of received numbers + the window rule).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const SIZES: [u32; 5] = [64, 128, 192, 1024, 4096];
const TWO_32: u64 = 1 << 32;

/// A window whose right edge is `t`, committed directly (no check).
fn at(size: u32, esn: bool, t: u64) -> ReplayWindow {
    let mut w = ReplayWindow::new(size, esn).unwrap();
    if t != 0 {
        w.commit(t).unwrap();
    }
    w
}

#[test]
fn sizes() {
    for size in [64, 128, 192, 1024, 4032, 4096] {
        let w = ReplayWindow::new(size, false).unwrap();
        assert_eq!(w.size(), size);
        assert!(!w.esn());
        assert_eq!(w.highest(), 0);
        assert!(ReplayWindow::new(size, true).unwrap().esn());
    }
    assert!(ReplayWindow::new(DEFAULT_WINDOW, false).is_ok());
    for size in [0, 1, 32, 63, 65, 100, 4095, 4097, 4160, 8192, u32::MAX] {
        assert_eq!(ReplayWindow::new(size, false).unwrap_err(), WindowSizeError);
        assert_eq!(ReplayWindow::new(size, true).unwrap_err(), WindowSizeError);
    }
    assert_eq!(
        WindowSizeError.to_string(),
        "replay window must be 64..=4096 and a multiple of 64"
    );
}

#[test]
fn drop_reasons() {
    assert_eq!(
        DropReason::from(ReplayError::Duplicate),
        DropReason::ReplayDuplicate
    );
    assert_eq!(
        DropReason::from(ReplayError::TooOld),
        DropReason::ReplayTooOld
    );
}

#[test]
fn zero_is_never_valid() {
    for esn in [false, true] {
        let mut w = ReplayWindow::new(64, esn).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        assert_eq!(w.commit(0), Err(ReplayError::TooOld));
        w.commit(10).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        assert_eq!(w.commit(0), Err(ReplayError::TooOld));
    }
}

#[test]
fn first_packets_and_duplicates() {
    for esn in [false, true] {
        let mut w = ReplayWindow::new(64, esn).unwrap();
        assert_eq!(w.check(1), Ok(1));
        w.commit(1).unwrap();
        assert_eq!(w.highest(), 1);
        assert_eq!(w.check(1), Err(ReplayError::Duplicate));
        assert_eq!(w.commit(1), Err(ReplayError::Duplicate));
        assert_eq!(w.check(3), Ok(3));
        w.commit(3).unwrap();
        assert_eq!(w.check(2), Ok(2));
        w.commit(2).unwrap();
        assert_eq!(w.highest(), 3);
        for s in 1..=3 {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate));
        }
    }
}

#[test]
fn window_edges() {
    for size in SIZES {
        for esn in [false, true] {
            let t = 10_000u32;
            let mut w = at(size, esn, u64::from(t));
            // exactly W - 1 behind: still in the window
            let edge = t - (size - 1);
            assert_eq!(w.check(edge), Ok(u64::from(edge)), "size {size}");
            // exactly W behind: out (with ESN the low half alone means "2^32 later", per
            // RFC 4303 A2.2; the ICV then fails, but the 64-bit number itself is refused)
            let behind = if esn {
                Ok(u64::from(t - size) + TWO_32)
            } else {
                Err(ReplayError::TooOld)
            };
            assert_eq!(w.check(t - size), behind, "size {size}");
            assert_eq!(w.commit(u64::from(t - size)), Err(ReplayError::TooOld));
            w.commit(u64::from(edge)).unwrap();
            assert_eq!(w.check(edge), Err(ReplayError::Duplicate));
            // advancing by one pushes the left edge out
            w.commit(u64::from(t) + 1).unwrap();
            let out = if esn {
                Ok(u64::from(edge) + TWO_32)
            } else {
                Err(ReplayError::TooOld)
            };
            assert_eq!(w.check(edge), out);
            assert_eq!(w.commit(u64::from(edge)), Err(ReplayError::TooOld));
            assert_eq!(w.check(edge + 1), Ok(u64::from(edge + 1)));
        }
    }
}

#[test]
fn small_highest_has_no_too_old_except_zero() {
    for size in SIZES {
        let w = at(size, false, 5);
        for s in 1..5 {
            assert_eq!(w.check(s), Ok(u64::from(s)));
        }
        assert_eq!(w.check(5), Err(ReplayError::Duplicate));
    }
}

#[test]
fn batch_duplicate_fails_on_second_commit() {
    let mut w = at(128, false, 100);
    let a = w.check(90).unwrap();
    let b = w.check(90).unwrap();
    assert_eq!(a, b);
    assert_eq!(w.commit(a), Ok(()));
    assert_eq!(w.commit(b), Err(ReplayError::Duplicate));
    // and a number ahead checked twice in one batch
    let c = w.check(500).unwrap();
    let d = w.check(500).unwrap();
    w.commit(c).unwrap();
    assert_eq!(w.commit(d), Err(ReplayError::Duplicate));
    assert_eq!(w.highest(), 500);
}

#[test]
fn commit_refuses_what_fell_out_since_check() {
    let mut w = at(64, false, 100);
    let late = w.check(40).unwrap();
    let far = w.check(1000).unwrap();
    w.commit(far).unwrap();
    assert_eq!(w.commit(late), Err(ReplayError::TooOld));
    assert_eq!(w.highest(), 1000);
}

/// Fill every number of a long run, then jump by `jump` and check every number of the new
/// window against what was really received (catches stale ring blocks).
fn jump_and_verify(size: u32, start: u64, jump: u64) {
    let mut w = ReplayWindow::new(size, false).unwrap();
    let mut seen = BTreeSet::new();
    for s in start..start + 3 * u64::from(size) {
        w.commit(s).unwrap();
        seen.insert(s);
    }
    let t = w.highest() + jump;
    w.commit(t).unwrap();
    seen.insert(t);
    let lo = t - u64::from(size) + 1;
    for s in lo..=t {
        let expected = if seen.contains(&s) {
            Err(ReplayError::Duplicate)
        } else {
            Ok(s)
        };
        assert_eq!(
            w.check(s as u32),
            expected,
            "size {size} start {start} jump {jump} seq {s}"
        );
    }
    assert_eq!(w.check((lo - 1) as u32), Err(ReplayError::TooOld));
}

#[test]
fn jumps_clear_the_right_blocks() {
    for size in SIZES {
        let w = u64::from(size);
        for start in [1, 63, 64, 65, 1000] {
            for jump in [
                1,
                63,
                64,
                65,
                128,
                w - 1,
                w,
                w + 1,
                w + 64,
                w + 65,
                2 * w,
                2 * w + 64,
                10 * w + 3,
                1 << 20,
            ] {
                jump_and_verify(size, start, jump);
            }
        }
    }
}

#[test]
fn big_jump_clears_everything() {
    for size in SIZES {
        let mut w = ReplayWindow::new(size, false).unwrap();
        for s in 1..=u64::from(size) {
            w.commit(s).unwrap();
        }
        let t = u64::from(size) * 2 + 1;
        w.commit(t).unwrap();
        for s in (t - u64::from(size) + 1)..t {
            assert_eq!(w.check(s as u32), Ok(s));
        }
    }
}

#[test]
fn esn_wraps_forward() {
    for size in SIZES {
        let mut w = at(size, true, TWO_32 - 10);
        assert_eq!(w.check(5), Ok(TWO_32 + 5), "size {size}");
        // low half 0 is valid once the high half is not 0
        assert_eq!(w.check(0), Ok(TWO_32));
        w.commit(TWO_32 + 5).unwrap();
        assert_eq!(w.highest(), TWO_32 + 5);
        assert_eq!(w.check(5), Err(ReplayError::Duplicate));
        assert_eq!(w.check(0), Ok(TWO_32));
    }
}

#[test]
fn esn_late_packet_from_before_the_wrap() {
    for size in SIZES {
        let mut w = at(size, true, TWO_32 - 10);
        w.commit(TWO_32 + 5).unwrap();
        // T is just after the wrap (case B); a late packet from before it keeps high half 0
        let late = (TWO_32 - 20) as u32;
        assert_eq!(w.check(late), Ok(TWO_32 - 20), "size {size}");
        w.commit(TWO_32 - 20).unwrap();
        assert_eq!(w.check(late), Err(ReplayError::Duplicate));
        assert_eq!(w.check((TWO_32 - 10) as u32), Err(ReplayError::Duplicate));
        // the window's left edge, on the far side of the wrap
        let left = TWO_32 + 5 - u64::from(size) + 1;
        assert_eq!(w.check(left as u32), Ok(left));
        // one below the left edge: case B puts it ahead, 2^32 later, never behind
        assert_eq!(w.check((left - 1) as u32), Ok(left - 1 + TWO_32));
    }
}

#[test]
fn esn_case_boundaries() {
    for size in SIZES {
        let w_1 = u64::from(size) - 1;
        for th in [0u64, 1, 7] {
            // Case A with Bl = 0: every low half maps to high half Th
            let t = (th << 32) | w_1;
            let w = at(size, true, t.max(1));
            if t != 0 {
                assert_eq!(
                    w.check(0),
                    if th == 0 {
                        Err(ReplayError::TooOld)
                    } else {
                        Ok(th << 32)
                    }
                );
                assert_eq!(w.check(u32::MAX), Ok((th << 32) | u64::from(u32::MAX)));
            }
            // Case B with Tl = W - 2: Bl = 2^32 - 1
            let t = (th << 32) | (w_1 - 1);
            let w = at(size, true, t);
            let expect_max = if th == 0 {
                Err(ReplayError::TooOld)
            } else {
                Ok(((th - 1) << 32) | u64::from(u32::MAX))
            };
            assert_eq!(w.check(u32::MAX), expect_max, "size {size} th {th}");
            assert_eq!(
                w.check(u32::MAX - 1),
                Ok((th << 32) | u64::from(u32::MAX - 1))
            );
        }
    }
}

#[test]
fn esn_start_refuses_the_top_of_the_space() {
    let w = ReplayWindow::new(128, true).unwrap();
    // T = 0, case B: the window would reach below 0, so those low halves are never valid
    assert_eq!(w.check(u32::MAX), Err(ReplayError::TooOld));
    assert_eq!(w.check(u32::MAX - 126), Err(ReplayError::TooOld));
    assert_eq!(w.check(u32::MAX - 127), Ok(u64::from(u32::MAX - 127)));
    assert_eq!(w.check(1), Ok(1));
}

#[test]
fn no_overflow_at_the_top() {
    for size in SIZES {
        for esn in [false, true] {
            let mut w = at(size, esn, u64::MAX - 1);
            w.commit(u64::MAX).unwrap();
            assert_eq!(w.highest(), u64::MAX);
            assert_eq!(w.commit(u64::MAX), Err(ReplayError::Duplicate));
            assert_eq!(w.commit(u64::MAX - 1), Err(ReplayError::Duplicate));
            assert_eq!(
                w.commit(u64::MAX - u64::from(size)),
                Err(ReplayError::TooOld)
            );
            assert!(w.commit(u64::MAX - u64::from(size) + 1).is_ok());
            for low in [0, 1, 2, 1000, u32::MAX - size, u32::MAX - 2, u32::MAX] {
                let _ = w.check(low);
            }
            if esn {
                assert_eq!(w.check(u32::MAX), Err(ReplayError::Duplicate));
                // would need high half 2^32: beyond the 64-bit space
                assert_eq!(w.check(0), Err(ReplayError::TooOld));
                assert_eq!(w.check(u32::MAX - size), Err(ReplayError::TooOld));
                assert_eq!(w.check(u32::MAX - 2), Ok(u64::MAX - 2));
            } else {
                assert_eq!(w.check(u32::MAX), Err(ReplayError::TooOld));
            }
        }
    }
}

// ---- reference model -------------------------------------------------------------------

/// The rule stated plainly: a set of received numbers, `T`, and `W`.
#[derive(Debug)]
struct Model {
    size: u64,
    esn: bool,
    highest: u64,
    seen: BTreeSet<u64>,
}

impl Model {
    fn new(size: u32, esn: bool) -> Self {
        Self {
            size: u64::from(size),
            esn,
            highest: 0,
            seen: BTreeSet::new(),
        }
    }

    /// The full number: without ESN the low half itself; with ESN the unique number with
    /// this low half in `[T - W + 1, T - W + 1 + 2^32)`, computed in i128.
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
        self.highest = self.highest.max(n);
        Ok(())
    }
}

/// One received packet: an offset from a moving cursor, whether its ICV verifies, and how
/// far the cursor moves after it.
#[derive(Debug, Clone)]
struct Pkt {
    offset: i64,
    icv_ok: bool,
    step: u64,
}

fn pkt(size: u32) -> impl Strategy<Value = Pkt> {
    let w = i64::from(size);
    let offset = prop_oneof![
        8 => -2 * w..2 * w,
        2 => -w - 2..-w + 2,
        1 => -(1i64 << 33)..(1i64 << 33),
    ];
    let step = prop_oneof![8 => 0u64..4, 2 => 0u64..200, 1 => 0u64..(3 * u64::from(size))];
    (offset, prop::bool::weighted(0.9), step).prop_map(|(offset, icv_ok, step)| Pkt {
        offset,
        icv_ok,
        step,
    })
}

fn scenario() -> impl Strategy<Value = (u32, bool, u64, Vec<Vec<Pkt>>)> {
    (prop::sample::select(SIZES.to_vec()), any::<bool>()).prop_flat_map(|(size, esn)| {
        let starts = if esn {
            // near a 2^32 boundary, at the start, and at the very top of the space
            prop_oneof![
                Just(1u64),
                (TWO_32 - 4 * u64::from(size))..(TWO_32 + 2),
                (5 * TWO_32 - 4 * u64::from(size))..(5 * TWO_32 + 2),
                (u64::MAX - 4 * u64::from(size))..u64::MAX,
            ]
            .boxed()
        } else {
            prop_oneof![
                Just(1u64),
                1u64..(4 * u64::from(size)),
                (u64::from(u32::MAX) - 4 * u64::from(size))..u64::from(u32::MAX),
            ]
            .boxed()
        };
        (
            Just(size),
            Just(esn),
            starts,
            prop::collection::vec(prop::collection::vec(pkt(size), 1..16), 1..40),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_reference_model((size, esn, start, batches) in scenario()) {
        let mut w = ReplayWindow::new(size, esn).unwrap();
        let mut m = Model::new(size, esn);
        let mut cursor = start;
        // start the SA "in the middle" of its life: the first commit is taken as given
        if start > 1 {
            prop_assert_eq!(w.commit(start - 1), m.commit(start - 1));
        }
        for batch in batches {
            // check the whole batch first, as the pipeline does
            let mut checked = Vec::with_capacity(batch.len());
            for p in &batch {
                let full = cursor.wrapping_add_signed(p.offset);
                let low = full as u32;
                let got = w.check(low);
                let want = m.check(low);
                prop_assert_eq!(got, want, "check low {:#x} T {:#x}", low, m.highest);
                if esn {
                    // the inference recovers the number that was sent when it is in range
                    let lo = i128::from(m.highest) - i128::from(size) + 1;
                    let f = i128::from(full);
                    if let Ok(n) = got && f >= lo && f < lo + (1 << 32) {
                        prop_assert_eq!(n, full);
                    }
                } else if let Ok(n) = got {
                    prop_assert_eq!(n, u64::from(low));
                }
                checked.push((got, p.icv_ok));
                cursor = cursor.saturating_add(p.step);
            }
            // then commit what passed and "verified"
            for (got, icv_ok) in checked {
                if let (Ok(n), true) = (got, icv_ok) {
                    prop_assert_eq!(w.commit(n), m.commit(n), "commit {:#x}", n);
                    prop_assert_eq!(w.highest(), m.highest);
                }
            }
        }
    }

    #[test]
    fn never_panics_on_arbitrary_input(
        size in prop::sample::select(SIZES.to_vec()),
        esn in any::<bool>(),
        ops in prop::collection::vec((any::<bool>(), any::<u64>()), 0..64),
    ) {
        let mut w = ReplayWindow::new(size, esn).unwrap();
        let mut m = Model::new(size, esn);
        for (commit, v) in ops {
            if commit {
                prop_assert_eq!(w.commit(v), m.commit(v));
            } else {
                prop_assert_eq!(w.check(v as u32), m.check(v as u32));
            }
        }
    }
}
