//! Results of a scenario: `<out>/<scenario>.json` (everything, for machines),
//! `<out>/<scenario>.md` (tables, targets, notes) and `<out>/<scenario>.svg` (the charts).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::harness::Plan;
use crate::svg::{self, Chart};

/// The machine a run was taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Online cores.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Clock source behind `Instant` (`tsc` makes timing cheap).
    pub clocksource: String,
    /// The commit the benchmark was built from, if known.
    pub commit: String,
    /// `/proc/loadavg` when the report was written: other work on the machine skews results
    /// (above ~1 per core something else was running).
    pub loadavg: String,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

impl Machine {
    /// Read it from /proc, /sys and git.
    pub fn detect() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            clocksource: read_trim(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            ),
            commit,
            loadavg: read_trim("/proc/loadavg"),
        }
    }

    fn line(&self) -> String {
        format!(
            "{}, {} cores, Linux {}, clocksource {}, commit {}, load average at the end {}",
            self.cpu, self.cores, self.kernel, self.clocksource, self.commit, self.loadavg
        )
    }
}

/// One issue target and how the run did against it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: String,
    /// The goal, e.g. `≥ 85 % of ring`.
    pub goal: String,
    /// The measured value, formatted.
    pub measured: String,
    /// Met (`true`), missed (`false`), or not measured (`None`).
    pub pass: Option<bool>,
}

impl Target {
    /// A target whose value must be at least `goal`.
    pub fn at_least(name: &str, goal_text: &str, measured: f64, goal: f64, unit: &str) -> Self {
        Self {
            name: name.into(),
            goal: goal_text.into(),
            measured: format!("{measured:.2}{unit}"),
            pass: Some(measured >= goal),
        }
    }

    fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "pass",
            Some(false) => "**miss**",
            None => "not measured",
        }
    }
}

/// A Markdown table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Heading above it.
    pub title: String,
    /// Column names.
    pub header: Vec<String>,
    /// Cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub fn new(title: &str, header: &[&str]) -> Self {
        Self {
            title: title.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Append a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as Markdown (heading level 3).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        if !self.title.is_empty() {
            let _ = writeln!(s, "### {}\n", self.title);
        }
        let _ = writeln!(s, "| {} |", self.header.join(" | "));
        let _ = writeln!(
            s,
            "|{}",
            self.header.iter().map(|_| "---|").collect::<String>()
        );
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        s
    }
}

/// Everything a scenario reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Scenario name (also the file stem).
    pub scenario: &'static str,
    /// One-line description.
    pub title: String,
    /// Where it ran.
    pub machine: Machine,
    /// Durations.
    pub plan: Plan,
    /// Scenario-specific results (rows of numbers).
    pub results: serde_json::Value,
    /// Issue targets.
    pub targets: Vec<Target>,
    /// How to read the numbers; caveats.
    pub notes: Vec<String>,
    /// Tables for the Markdown file.
    #[serde(skip)]
    pub tables: Vec<Table>,
    /// Charts for the SVG file.
    #[serde(skip)]
    pub charts: Vec<Chart>,
}

impl Report {
    /// An empty report.
    pub fn new(scenario: &'static str, title: &str, plan: Plan) -> Self {
        Self {
            scenario,
            title: title.into(),
            machine: Machine::detect(),
            plan,
            results: serde_json::Value::Null,
            targets: Vec::new(),
            notes: Vec::new(),
            tables: Vec::new(),
            charts: Vec::new(),
        }
    }

    /// The Markdown rendering.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## {}: {}\n", self.scenario, self.title);
        let _ = writeln!(
            s,
            "Machine: {}. Points of {} ms, {} ms pauses, {} round(s) (median).\n",
            self.machine.line(),
            self.plan.point_ms,
            self.plan.pause_ms,
            self.plan.rounds
        );
        for t in &self.tables {
            let _ = writeln!(s, "{}", t.markdown());
        }
        if !self.targets.is_empty() {
            let mut t = Table::new("Targets", &["target", "goal", "measured", "verdict"]);
            for g in &self.targets {
                t.row(vec![
                    g.name.clone(),
                    g.goal.clone(),
                    g.measured.clone(),
                    g.verdict().into(),
                ]);
            }
            let _ = writeln!(s, "{}", t.markdown());
        }
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        if !self.charts.is_empty() {
            let _ = writeln!(s, "\n![{}]({}.svg)", self.scenario, self.scenario);
        }
        s
    }

    /// Write `<dir>/<scenario>.{json,md,svg}`; returns the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let mut files = vec![
            (dir.join(format!("{}.json", self.scenario)), json + "\n"),
            (dir.join(format!("{}.md", self.scenario)), self.markdown()),
        ];
        if !self.charts.is_empty() {
            files.push((
                dir.join(format!("{}.svg", self.scenario)),
                svg::document(&self.charts),
            ));
        }
        for (path, text) in &files {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(files.into_iter().map(|(p, _)| p).collect())
    }
}

/// `x` with 2 decimals.
pub fn f2(x: f64) -> String {
    format!("{x:.2}")
}

/// A ratio as a percentage with no decimals.
pub fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}
