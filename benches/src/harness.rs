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
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    /// Packets processed in timed sections.
    pub packets: u64,
    /// Inner bytes processed in timed sections.
    pub bytes: u64,
    /// Sum of the timed sections, seconds.
    pub busy_s: f64,
    /// Wall time of the point, seconds (includes untimed preparation).
    pub wall_s: f64,
}

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
    let mut s = Sample::default();
    let mut busy = Duration::ZERO;
    while start.elapsed() < wall {
        let t = w.batch()?;
        s.packets += t.packets;
        s.bytes += t.bytes;
        busy += t.busy;
    }
    s.wall_s = start.elapsed().as_secs_f64();
    s.busy_s = busy.as_secs_f64();
    w.verify()?;
    Ok(s)
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
