//! Timing: a point runs one workload for a fixed wall time, batch after batch; only the
//! processing of each batch is timed (its preparation — restoring or encrypting the input —
//! is not). Points run on pinned threads, one or several at once, and a pause follows every
//! point so that the two vCPUs never spin together for long (the VM throttles after ~10 s).

use std::io::Write;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Durations of a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Plan {
    /// Wall time of one point, milliseconds.
    pub point_ms: u64,
    /// Pause after every point, milliseconds.
    pub pause_ms: u64,
    /// Repetitions of every point (the median is reported).
    pub rounds: usize,
}

impl Plan {
    /// Wall time of one point.
    pub fn point(&self) -> Duration {
        Duration::from_millis(self.point_ms)
    }

    /// Sleep between two points.
    pub fn pause(&self) {
        std::thread::sleep(Duration::from_millis(self.pause_ms));
    }
}

/// What one timed batch did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timed {
    /// Which batch of the workload's repeating input this was (batches of one kind carry the
    /// same sizes, so their times are comparable).
    pub kind: usize,
    /// Packets processed.
    pub packets: u64,
    /// Inner (plaintext IP packet) bytes processed.
    pub bytes: u64,
    /// Time spent in the measured call.
    pub busy: Duration,
}

/// Something a worker thread measures, one batch at a time.
pub trait Workload {
    /// Prepare a batch (not timed), process it (timed) and say what was done.
    fn batch(&mut self) -> Result<Timed, String>;
    /// After the point: check that the work was real (e.g. nothing was dropped).
    fn verify(&self) -> Result<(), String>;
}

/// The totals of one worker over one point.
///
/// Batches that took more than [`PREEMPTED`] times the median of their kind are left out of
/// the rates: on a shared 2-vCPU VM a thread is descheduled for milliseconds at a time, and
/// one such batch would add as much time as hundreds of real ones. They are counted in
/// `preempted` and their time in `preempted_s`, so nothing disappears silently.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    /// Packets processed in the timed sections that count.
    pub packets: u64,
    /// Inner bytes processed in those.
    pub bytes: u64,
    /// Sum of those timed sections, seconds.
    pub busy_s: f64,
    /// Wall time of the point, seconds (includes untimed preparation).
    pub wall_s: f64,
    /// Batches left out as descheduled.
    pub preempted: u64,
    /// Their time, seconds.
    pub preempted_s: f64,
    /// All batches timed.
    pub batches: u64,
}

/// A batch slower than this many times its kind's median was descheduled (see [`Sample`]).
pub const PREEMPTED: u64 = 5;

impl Sample {
    /// Million packets per second of busy time.
    pub fn mpps(&self) -> f64 {
        if self.busy_s > 0.0 {
            self.packets as f64 / self.busy_s / 1e6
        } else {
            0.0
        }
    }

    /// Gigabits of inner bytes per second of busy time.
    pub fn gbps(&self) -> f64 {
        if self.busy_s > 0.0 {
            self.bytes as f64 * 8.0 / self.busy_s / 1e9
        } else {
            0.0
        }
    }
}

/// Run `w` for `wall` (after a short untimed warm-up) and total its timed batches.
pub fn measure(w: &mut dyn Workload, wall: Duration) -> Result<Sample, String> {
    let warm = Instant::now();
    while warm.elapsed() < (wall / 10).min(Duration::from_millis(200)) {
        w.batch()?;
    }
    let start = Instant::now();
    let mut batches: Vec<Timed> = Vec::with_capacity(1 << 20);
    while start.elapsed() < wall {
        batches.push(w.batch()?);
    }
    let wall_s = start.elapsed().as_secs_f64();
    w.verify()?;
    Ok(summarize(&batches, wall_s))
}

/// Totals over the batches that were not descheduled.
fn summarize(batches: &[Timed], wall_s: f64) -> Sample {
    let kinds = batches.iter().map(|t| t.kind + 1).max().unwrap_or(0);
    let limits: Vec<Duration> = (0..kinds)
        .map(|k| {
            let mut v: Vec<Duration> = batches
                .iter()
                .filter(|t| t.kind == k)
                .map(|t| t.busy)
                .collect();
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(Duration::MAX) * PREEMPTED as u32
        })
        .collect();
    let mut s = Sample {
        wall_s,
        batches: batches.len() as u64,
        ..Sample::default()
    };
    let (mut busy, mut lost) = (Duration::ZERO, Duration::ZERO);
    for t in batches {
        if limits.get(t.kind).is_some_and(|&l| t.busy > l) {
            s.preempted += 1;
            lost += t.busy;
        } else {
            s.packets += t.packets;
            s.bytes += t.bytes;
            busy += t.busy;
        }
    }
    s.busy_s = busy.as_secs_f64();
    s.preempted_s = lost.as_secs_f64();
    s
}

/// The cores to pin workers to: `n` of them, counted from the last (the gateway's worker and
/// the kernel's interrupts favour the first); fewer if the machine has fewer.
pub fn cores(n: usize) -> Vec<core_affinity::CoreId> {
    let mut ids = core_affinity::get_core_ids().unwrap_or_default();
    ids.reverse();
    ids.truncate(n);
    ids
}

/// Run one worker per core at the same time, each building its own workload on its own
/// (pinned) thread, and return every worker's sample.
pub fn concurrent<F>(
    cores: &[core_affinity::CoreId],
    make: F,
    wall: Duration,
) -> Result<Vec<Sample>, String>
where
    F: Fn(usize) -> Result<Box<dyn Workload>, String> + Sync,
{
    let barrier = Barrier::new(cores.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = cores
            .iter()
            .enumerate()
            .map(|(i, &core)| {
                let (make, barrier) = (&make, &barrier);
                s.spawn(move || {
                    let pinned = core_affinity::set_for_current(core);
                    let w = make(i);
                    // Everyone waits, also a worker whose setup failed: no deadlock.
                    barrier.wait();
                    if !pinned {
                        return Err(format!("could not pin a worker to core {}", core.id));
                    }
                    measure(w?.as_mut(), wall)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a worker panicked".to_string())?)
            .collect()
    })
}

/// Sum of the workers' samples (rates add up; wall time is the longest).
pub fn total(samples: &[Sample]) -> (f64, f64) {
    samples
        .iter()
        .fold((0.0, 0.0), |(p, g), s| (p + s.mpps(), g + s.gbps()))
}

/// ` (N descheduled batches left out, T ms)` when there were any.
pub fn preempted_note(samples: &[Sample]) -> String {
    let n: u64 = samples.iter().map(|s| s.preempted).sum();
    let t: f64 = samples.iter().map(|s| s.preempted_s).sum();
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} descheduled batches left out, {:.0} ms)", t * 1e3)
    }
}

/// The median of some values (0 for none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A progress line on the terminal: `[ 3/32] scenario: label … result`.
#[derive(Debug)]
pub struct Progress {
    scenario: &'static str,
    total: usize,
    done: usize,
    started: Instant,
}

impl Progress {
    /// A run of `total` points.
    pub fn new(scenario: &'static str, total: usize) -> Self {
        eprintln!("{scenario}: {total} points");
        Self {
            scenario,
            total,
            done: 0,
            started: Instant::now(),
        }
    }

    /// A point starts.
    pub fn start(&mut self, label: &str) {
        self.done += 1;
        let width = self.total.to_string().len();
        eprint!(
            "[{:>width$}/{}] {}: {label} … ",
            self.done, self.total, self.scenario
        );
        let _ = std::io::stderr().flush();
    }

    /// The point finished with this result.
    pub fn end(&self, result: &str) {
        eprintln!("{result}");
    }

    /// The run is over.
    pub fn finish(&self) {
        eprintln!(
            "{}: done in {:.1} s",
            self.scenario,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Measure a workload the caller keeps, on a thread pinned to `core`.
pub fn measure_on(
    core: core_affinity::CoreId,
    w: &mut (dyn Workload + Send),
    wall: Duration,
) -> Result<Sample, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            if !core_affinity::set_for_current(core) {
                return Err(format!("could not pin to core {}", core.id));
            }
            measure(w, wall)
        })
        .join()
        .map_err(|_| "the measuring thread panicked".to_string())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descheduled_batches_are_left_out_per_kind() {
        let t = |kind, us| Timed {
            kind,
            packets: 64,
            bytes: 6400,
            busy: Duration::from_micros(us),
        };
        let mut v = vec![t(0, 10); 99];
        v.push(t(0, 4000)); // descheduled
        v.extend(vec![t(1, 45); 50]); // a slower kind, but not descheduled
        let s = summarize(&v, 1.0);
        assert_eq!((s.batches, s.preempted, s.packets), (150, 1, 149 * 64));
        assert!((s.busy_s - (99.0 * 10e-6 + 50.0 * 45e-6)).abs() < 1e-9);
        assert!((s.preempted_s - 4e-3).abs() < 1e-9);
    }
}
