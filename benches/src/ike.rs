//! Scenario `ike`: IKEv2 handshakes per second against the gateway's responder. A placeholder
//! until the IKEv2 responder (state machine) lands; it reports why nothing was measured.

use crate::harness::Plan;
use crate::report::{Report, Target};

/// Report "not yet".
pub fn run(plan: Plan) -> Report {
    eprintln!("ike: not yet: needs the IKEv2 responder");
    let mut r = Report::new("ike", "IKEv2 handshakes per second", plan);
    r.targets.push(Target {
        name: "IKE_SA_INIT + IKE_AUTH handshakes per second".into(),
        goal: "(to be set with the responder)".into(),
        measured: "not yet: needs the IKEv2 responder".into(),
        pass: None,
    });
    r.notes
        .push("not yet: needs the IKEv2 responder (the codec and crypto exist; the state machine is being written).".into());
    r.results = serde_json::json!({ "status": "not yet: needs the IKEv2 responder" });
    r
}
