//! Versioned JSON documents for machines. `format_version` changes only when
//! a field changes meaning or goes away.

use serde_json::{json, Value};

use crate::audit::objectives::Objective;
use crate::audit::{ControlResult, Report, ReportSummary};
use crate::model::Applied;
use crate::model::{Change, Plan, Summary};

pub const FORMAT_VERSION: &str = "1";

/// The plan as JSON (`plan --format json`): its shape is `schema --plan`
/// and the checked-in schema/suoops-plan.schema.json.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(title = "suoops-policy plan")]
pub struct PlanDocument {
    pub format_version: &'static str,
    pub summary: Summary,
    /// The live state differs from the policy.
    pub has_changes: bool,
    /// Every setting could be read and reconciled.
    pub complete: bool,
    /// One entry per resource and sub-resource, sensitive values masked.
    pub changes: Vec<Change>,
}

pub fn plan(plan: &Plan) -> Value {
    serde_json::to_value(PlanDocument {
        format_version: FORMAT_VERSION,
        summary: plan.summary(),
        has_changes: plan.has_changes(),
        complete: !plan.is_incomplete(),
        changes: plan.changes.iter().map(Change::masked).collect(),
    })
    .unwrap_or(Value::Null)
}

/// The audit report as JSON: its shape is `schema --report` and the
/// checked-in schema/suoops-audit-report.schema.json.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(title = "suoops-policy audit report")]
pub struct AuditDocument<'a> {
    pub format_version: &'static str,
    /// When, by which version and against which account and regions the
    /// audit ran (absent only in fixed test estates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<&'a crate::audit::RunContext>,
    /// Every control passed (or is waived), everything could be read, and
    /// no objective the policy asks for is not met.
    pub compliant: bool,
    pub summary: ReportSummary,
    /// Why parts of the live state could not be read at all (their
    /// controls are unknown); absent when everything was read.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub unreached: &'a [String],
    /// Each declared account the audit needed: compliant, not_compliant
    /// or unreachable (with the AWS error); absent when the policy
    /// declares no account.
    #[serde(default, skip_serializing_if = "<[crate::audit::AccountStatus]>::is_empty")]
    pub accounts: &'a [crate::audit::AccountStatus],
    /// `audit --shard I/N`: the share this report covers; `audit merge`
    /// joins the shards (their objectives are recomputed over the whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::audit::Shard>,
    /// With a shard: what the objectives are judged from beside the
    /// controls (the roles' and keys' policies as read), for the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub evidence: Option<Value>,
    pub objectives: &'a [Objective],
    pub controls: &'a [ControlResult],
}

pub fn audit(report: &Report) -> Value {
    let s = report.summary();
    serde_json::to_value(AuditDocument {
        format_version: FORMAT_VERSION,
        run: report.run.as_ref(),
        compliant: report.compliant(),
        summary: s,
        unreached: &report.unreached,
        accounts: &report.accounts,
        shard: report.shard,
        evidence: report.shard.map(|_| json!({"identities": report.identities, "key_policies": report.key_policies})),
        objectives: &report.objectives,
        controls: &report.controls,
    })
    .unwrap_or(Value::Null)
}

pub fn applied(results: &[Applied]) -> Value {
    let rows: Vec<Value> = results
        .iter()
        .map(|a| {
            json!({
                "address": a.address,
                "ok": !a.failed(),
                "steps": a.steps.iter().map(|s| json!({"step": s.step, "ok": s.result.is_ok(), "error": s.result.as_ref().err()})).collect::<Vec<_>>(),
                "did_not_take": a.did_not_take,
            })
        })
        .collect();
    json!({ "format_version": FORMAT_VERSION, "results": rows })
}
