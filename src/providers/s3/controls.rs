//! S3 audit controls, judged from the bucket's observation and its diff.

use serde_json::{json, Value};

use super::observe::BucketState;
use crate::audit::{ControlResult, Severity, Status};
use crate::model::{Change, Observed};
use crate::policy::BucketSpec;

struct Def {
    id: &'static str,
    /// The diff attribute (or attribute prefix) the control is about.
    attribute: &'static str,
    title: &'static str,
    rationale: &'static str,
    severity: Severity,
}

const BUCKET: Def = Def {
    id: "S3-BUCKET",
    attribute: "region",
    title: "Backup bucket exists in its region",
    rationale: "Backups need a bucket in the intended region to land in (strategy: S3 object backups, disaster recovery).",
    severity: Severity::High,
};
const VERSIONING: Def = Def {
    id: "S3-VERSIONING",
    attribute: "versioning",
    title: "Bucket versioning",
    rationale: "Versioning keeps overwritten and deleted backups recoverable (strategy: enable bucket versioning).",
    severity: Severity::High,
};
const SSE: Def = Def {
    id: "S3-SSE",
    attribute: "encryption",
    title: "Default encryption at rest",
    rationale: "Backups hold PII and must be encrypted at rest with SSE-S3 or SSE-KMS (strategy: encryption, privacy).",
    severity: Severity::High,
};
const PUBLIC: Def = Def {
    id: "S3-PUBLIC-ACCESS",
    attribute: "public_access_block",
    title: "Public access blocked",
    rationale: "Only the backup and restore roles may reach backups (strategy: access control).",
    severity: Severity::High,
};

/// The controls for one bucket. `change` is `diff(spec, region, state)`.
pub fn controls(
    spec: &BucketSpec,
    region: &str,
    state: &BucketState,
    change: &Change,
) -> Vec<ControlResult> {
    let mut out = Vec::new();
    let exists_expected = json!({ "exists": true, "region": region });
    let (exists_observed, exists_status, exists_detail) = match &state.bucket {
        Observed::Present(r) if r == region => {
            (json!({"exists": true, "region": r}), Status::Pass, None)
        }
        Observed::Present(r) => (
            json!({"exists": true, "region": r}),
            Status::Fail,
            change.conflicts.first().cloned(),
        ),
        Observed::Absent => (json!({"exists": false}), Status::Fail, None),
        Observed::Unknown { reason } => (Value::Null, Status::Unknown, Some(reason.clone())),
    };
    out.push(result(
        &BUCKET,
        spec,
        change,
        exists_expected,
        exists_observed,
        exists_status,
        exists_detail,
        "create the bucket (suoops-policy apply)",
    ));

    if let (Some(want), Some(seen)) = (spec.versioning, &state.versioning) {
        let observed = observed_json(seen, |v| json!(v));
        let (status, detail) = judge(&VERSIONING, state, seen, change);
        out.push(result(
            &VERSIONING,
            spec,
            change,
            json!(want.as_str()),
            observed,
            status,
            detail,
            &format!("set versioning to {} (suoops-policy apply)", want.as_str()),
        ));
    }
    if let (Some(want), Some(seen)) = (&spec.encryption, &state.encryption) {
        let observed = observed_json(seen, |e| json!(e));
        let (status, detail) = judge(&SSE, state, seen, change);
        out.push(result(
            &SSE,
            spec,
            change,
            json!(want),
            observed,
            status,
            detail,
            &format!(
                "set default encryption to {} (suoops-policy apply)",
                want.algorithm.as_str()
            ),
        ));
    }
    if let (Some(want), Some(seen)) = (&spec.public_access_block, &state.public_access_block) {
        let observed = observed_json(seen, |p| json!(p));
        let (status, detail) = judge(&PUBLIC, state, seen, change);
        let expected = json!({
            "block_public_acls": want.block_public_acls,
            "ignore_public_acls": want.ignore_public_acls,
            "block_public_policy": want.block_public_policy,
            "restrict_public_buckets": want.restrict_public_buckets,
        });
        out.push(result(
            &PUBLIC,
            spec,
            change,
            expected,
            observed,
            status,
            detail,
            "set the public access block (suoops-policy apply)",
        ));
    }
    out
}

fn observed_json<T>(seen: &Observed<T>, f: impl Fn(&T) -> Value) -> Value {
    match seen {
        Observed::Present(v) => f(v),
        _ => Value::Null,
    }
}

fn judge<T>(
    def: &Def,
    state: &BucketState,
    seen: &Observed<T>,
    change: &Change,
) -> (Status, Option<String>) {
    if let Observed::Unknown { reason } = seen {
        return (Status::Unknown, Some(reason.clone()));
    }
    if state.bucket.present().is_none() {
        return (Status::Fail, Some("the bucket does not exist".into()));
    }
    let differs: Vec<&str> = change
        .attributes
        .iter()
        .filter(|a| a.name == def.attribute || a.name.starts_with(&format!("{}.", def.attribute)))
        .map(|a| a.name.as_str())
        .collect();
    if differs.is_empty() {
        (Status::Pass, None)
    } else {
        (
            Status::Fail,
            Some(format!("differs: {}", differs.join(", "))),
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn result(
    def: &Def,
    spec: &BucketSpec,
    change: &Change,
    expected: Value,
    observed: Value,
    status: Status,
    detail: Option<String>,
    remediation: &str,
) -> ControlResult {
    ControlResult {
        id: def.id,
        address: change.address.clone(),
        title: def.title,
        rationale: def.rationale,
        severity: def.severity,
        status,
        expected,
        observed,
        detail,
        remediation: remediation.to_string(),
        policy_line: spec.line,
    }
}
