//! The audit report as SARIF 2.1.0: each finding points at the resource's
//! line in the policy file, so code scanning shows it on the pull request.

use serde_json::Value;

use crate::audit::{Report, Status};

/// SARIF 2.1.0 for code scanning: one rule per control id, one result per
/// control that is not passing, located at the policy file line of the
/// resource. Waived controls carry an accepted suppression.
pub fn report(report: &Report, policy_file: &str) -> Value {
    use serde_json::json;
    let mut rules: Vec<Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for c in &report.controls {
        if seen.insert(c.id) {
            rules.push(json!({
                "id": c.id,
                "name": c.id.replace('-', ""),
                "shortDescription": {"text": c.title},
                "fullDescription": {"text": c.rationale},
                "defaultConfiguration": {"level": level(c.severity)},
            }));
        }
    }
    let uri = policy_file.trim_start_matches("./");
    let results: Vec<Value> = report
        .controls
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| {
            let what = match c.status {
                Status::Unknown => "could not be evaluated",
                _ => "fails",
            };
            let mut text = format!("{} {what} for {}", c.id, c.address);
            if let Some(d) = &c.detail {
                text.push_str(&format!(": {d}"));
            }
            text.push_str(&format!(". Fix: {}", c.remediation));
            let mut r = json!({
                "ruleId": c.id,
                "level": if c.status == Status::Unknown { "warning" } else { level(c.severity) },
                "message": {"text": text},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": c.policy_line.max(1)}
                }}],
                "partialFingerprints": {"address/control": format!("{}/{}", c.address, c.id)},
                "properties": properties(c),
            });
            if let (Status::Waived, Some(w)) = (c.status, &c.waiver) {
                r["suppressions"] = json!([{"kind": "external", "status": "accepted", "justification": format!("{} (owner {}, until {})", w.reason, w.owner, w.expires)}]);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "suoops-policy", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": results,
        }]
    })
}

fn level(s: crate::audit::Severity) -> &'static str {
    match s {
        crate::audit::Severity::High => "error",
        crate::audit::Severity::Medium => "warning",
        crate::audit::Severity::Low => "note",
    }
}

/// A result's properties; `account` where the resource is in a declared
/// account.
fn properties(c: &crate::audit::ControlResult) -> serde_json::Value {
    let mut p =
        serde_json::json!({"address": c.address, "status": c.status, "expected": c.expected, "observed": c.observed});
    if let Some(a) = &c.account {
        p["account"] = serde_json::json!(a);
    }
    p
}
