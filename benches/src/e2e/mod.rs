//! Scenario `e2e` (placeholder while it is being written).

use crate::harness::Plan;
use crate::report::Report;

/// Options of the scenario.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {}

/// Run the scenario.
pub fn run(_plan: Plan, _opts: &Options) -> Result<Report, String> {
    Err("e2e: not written yet".into())
}
