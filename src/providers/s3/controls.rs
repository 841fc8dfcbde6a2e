//! S3 audit controls, judged from the bucket's observation and its diff.

use serde_json::{json, Value};

use super::observe::BucketState;
use super::{access, tls};
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::{Change, Observed};
use crate::providers::s3::section::BucketSpec;

pub(super) struct Def {
    /// The diff attribute (or attribute prefix) the control is about.
    pub(super) attribute: &'static str,
    pub(super) control: ControlDef,
}

/// The bucket controls (S3-CRR is the replication kind's).
pub const CONTROLS: &[ControlDef] = &[
    BUCKET.control,
    VERSIONING.control,
    SSE.control,
    PUBLIC.control,
    TLS.control,
    ACCESS.control,
    GRANT.control,
    super::isolation::ISOLATION.control,
    LOCK.control,
    MFA.control,
    LIFECYCLE.control,
];

const BUCKET: Def = Def {
    attribute: "region",
    control: ControlDef {
        id: "S3-BUCKET",
        title: "Backup bucket exists in its region",
        rationale:
            "Backups need a bucket in the intended region to land in (strategy: S3 object backups, disaster recovery).",
        severity: Severity::High,
        objectives: &[],
    },
};
const VERSIONING: Def = Def {
    attribute: "versioning",
    control: ControlDef {
        id: "S3-VERSIONING",
        title: "Bucket versioning",
        rationale: "Versioning keeps overwritten and deleted backups recoverable (strategy: enable bucket versioning).",
        severity: Severity::High,
        objectives: &[],
    },
};
const SSE: Def = Def {
    attribute: "encryption",
    control: ControlDef {
        id: "S3-SSE",
        title: "Default encryption at rest",
        rationale:
            "Backups hold PII and must be encrypted at rest with SSE-S3 or SSE-KMS (strategy: encryption, privacy).",
        severity: Severity::High,
        objectives: &["ENCRYPTION-AT-REST"],
    },
};
const PUBLIC: Def = Def {
    attribute: "public_access_block",
    control: ControlDef {
        id: "S3-PUBLIC-ACCESS",
        title: "Public access blocked",
        rationale: "Only the backup and restore roles may reach backups (strategy: access control).",
        severity: Severity::High,
        objectives: &[],
    },
};

const GRANT: Def = Def {
    attribute: "replication",
    control: ControlDef {
        id: "S3-REPLICA-GRANT",
        title: "Replicas from another account are let in",
        rationale: "A DR copy in a separate backup account is written by the source's replication role, which the destination's bucket policy must allow: both accounts must agree (strategy: disaster recovery).",
        severity: Severity::High,
        objectives: &["DR-COPY"],
    },
};

const TLS: Def = Def {
    attribute: "require_tls",
    control: ControlDef {
        id: "S3-TLS",
        title: "Encryption in transit (TLS-only bucket policy)",
        rationale: "Backups containing PII must be encrypted in transit: the bucket denies every request made without TLS (strategy: privacy & compliance).",
        severity: Severity::High,
            objectives: &["ENCRYPTION-IN-TRANSIT"],
    },
};
const ACCESS: Def = Def {
    attribute: "access",
    control: ControlDef {
        id: "S3-ACCESS",
        title: "Only the named principals put, get and delete objects (bucket policy)",
        rationale: "Only the backup role writes and the restore role reads, and nobody deletes backups, whatever else an account principal's own policies allow: the bucket policy denies everyone else (strategy: access control).",
        severity: Severity::High,
        objectives: &["LEAST-PRIVILEGE", "IMMUTABILITY"],
    },
};
const LOCK: Def = Def {
    attribute: "object_lock",
    control: ControlDef {
        id: "S3-OBJECT-LOCK",
        title: "Object Lock default retention",
        rationale: "Backups cannot be deleted or overwritten within their retention, by mistake or by ransomware (S3 Object Lock; AWS Backup's equivalent is Vault Lock).",
        severity: Severity::High,
        objectives: &["IMMUTABILITY"],
    },
};
const MFA: Def = Def {
    attribute: "mfa_delete",
    control: ControlDef {
        id: "S3-MFA-DELETE",
        title: "MFA delete",
        rationale:
            "For high-assurance environments, deleting versions needs the root user's MFA (strategy: access control).",
        severity: Severity::Medium,
        objectives: &[],
    },
};
const LIFECYCLE: Def = Def {
    attribute: "lifecycle",
    control: ControlDef {
        id: "S3-LIFECYCLE",
        title: "Lifecycle tiering and retention",
        rationale: "Retention and tiering follow the strategy: dumps kept 14 days, STANDARD_IA at 30 days, GLACIER at 180, non-critical objects expire after a year.",
        severity: Severity::Medium,
            objectives: &[],
    },
};

pub(super) const CRR: Def = Def {
    attribute: "replication",
    control: ControlDef {
        id: "S3-CRR",
        title: "Disaster-recovery copy (cross-region replication)",
        rationale: "A copy of every backup in a second region survives the loss of the first (strategy: enable cross-region replication for disaster recovery).",
        severity: Severity::High,
            objectives: &["DR-COPY"],
    },
};

/// The controls for one bucket. `change` is `diff(spec, region, state)`.
/// One bucket control: None when the policy does not ask for it.
type Control = fn(&BucketSpec, &BucketState, &Change, &[Change]) -> Option<ControlResult>;

pub fn controls(spec: &BucketSpec, region: &str, state: &BucketState, changes: &[Change]) -> Vec<ControlResult> {
    let Some(change) = changes.first() else {
        return Vec::new();
    };
    let each: [Control; 10] = [
        versioning,
        encryption,
        public_access_block,
        require_tls,
        access,
        grant,
        super::isolation::control,
        object_lock,
        mfa_delete,
        lifecycle,
    ];
    std::iter::once(bucket(spec, region, state, change))
        .chain(each.iter().filter_map(|control| control(spec, state, change, changes)))
        .collect()
}

/// S3-BUCKET: the bucket exists in its region.
fn bucket(spec: &BucketSpec, region: &str, state: &BucketState, change: &Change) -> ControlResult {
    let exists_expected = json!({ "exists": true, "region": region });
    let (exists_observed, exists_status, exists_detail) = match &state.bucket {
        Observed::Present(r) if r == region => (json!({"exists": true, "region": r}), Status::Pass, None),
        Observed::Present(r) => (json!({"exists": true, "region": r}), Status::Fail, change.conflicts.first().cloned()),
        Observed::Absent => (json!({"exists": false}), Status::Fail, None),
        Observed::Unknown { reason } => (Value::Null, Status::Unknown, Some(reason.clone())),
    };
    result(
        &BUCKET,
        spec,
        change,
        exists_expected,
        exists_observed,
        exists_status,
        exists_detail,
        "create the bucket (suoops-policy apply)",
    )
}

/// S3-VERSIONING.
fn versioning(spec: &BucketSpec, state: &BucketState, change: &Change, _changes: &[Change]) -> Option<ControlResult> {
    let (Some(want), Some(seen)) = (spec.versioning, &state.versioning) else { return None };
    let observed = observed_json(seen, |v| json!(v));
    let (status, detail) = judge(&VERSIONING, state, seen, change);
    Some(result(
        &VERSIONING,
        spec,
        change,
        json!(want.as_str()),
        observed,
        status,
        detail,
        &format!("set versioning to {} (suoops-policy apply)", want.as_str()),
    ))
}

/// S3-SSE: the default encryption, and the key it names usable.
fn encryption(spec: &BucketSpec, state: &BucketState, change: &Change, _changes: &[Change]) -> Option<ControlResult> {
    let (Some(want), Some(seen)) = (&spec.encryption, &state.encryption) else { return None };
    let mut observed = observed_json(seen, |e| json!(e));
    let (mut status, mut detail) = judge(&SSE, state, seen, change);
    let mut fix = format!("set default encryption to {} (suoops-policy apply)", want.algorithm.as_str());
    // The setting alone proves nothing: S3 accepts a key that does not
    // exist, is disabled or lives in another region, and every write
    // then fails (AWS S3 user guide, "Specifying server-side encryption
    // with AWS KMS (SSE-KMS)": the key must be in the bucket's region).
    if let (Status::Pass, Some(key), Some(region)) = (status, &state.key, state.bucket.present()) {
        let named = want.kms_key.as_deref().unwrap_or_default();
        let verdict = match key {
            Observed::Present(k) if k.state != "Enabled" => {
                Some((Status::Fail, format!("the key {} is {}: writes to the bucket fail", k.arn, k.state)))
            }
            Observed::Present(k) if &k.region != region => Some((
                Status::Fail,
                format!(
                    "the key {} is in {}, the bucket in {region}: S3 needs the key in the bucket's region",
                    k.arn, k.region
                ),
            )),
            Observed::Present(_) => None,
            Observed::Absent => {
                Some((Status::Fail, format!("the key `{named}` does not exist: writes to the bucket fail")))
            }
            Observed::Unknown { reason } => Some((Status::Unknown, format!("the key `{named}`: {reason}"))),
        };
        if let Some(k) = key.present() {
            observed["key"] = json!(k);
        }
        if let Some((s, d)) = verdict {
            (status, detail) = (s, Some(d));
            fix = "enable the key, or name an enabled key in the bucket's region".into();
        }
    }
    Some(result(&SSE, spec, change, json!(want), observed, status, detail, &fix))
}

/// S3-PUBLIC-ACCESS.
fn public_access_block(
    spec: &BucketSpec,
    state: &BucketState,
    change: &Change,
    _changes: &[Change],
) -> Option<ControlResult> {
    let (Some(want), Some(seen)) = (&spec.public_access_block, &state.public_access_block) else { return None };
    let observed = observed_json(seen, |p| json!(p));
    let (status, detail) = judge(&PUBLIC, state, seen, change);
    let expected = json!({
        "block_public_acls": want.block_public_acls,
        "ignore_public_acls": want.ignore_public_acls,
        "block_public_policy": want.block_public_policy,
        "restrict_public_buckets": want.restrict_public_buckets,
    });
    Some(result(
        &PUBLIC,
        spec,
        change,
        expected,
        observed,
        status,
        detail,
        "set the public access block (suoops-policy apply)",
    ))
}

/// S3-TLS: the TLS-only statement.
fn require_tls(spec: &BucketSpec, state: &BucketState, change: &Change, _changes: &[Change]) -> Option<ControlResult> {
    let (Some(true), Some(seen)) = (spec.require_tls, &state.policy) else { return None };
    let (status, detail, observed) = match seen {
        Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone()), Value::Null),
        other => {
            let doc = other.present();
            let observed = doc.map(|d| d.json.clone()).unwrap_or(Value::Null);
            match tls::enforced(doc, &spec.name) {
                Ok(()) => (Status::Pass, None, observed),
                Err(why) => (Status::Fail, Some(why.into()), observed),
            }
        }
    };
    Some(result(
        &TLS,
        spec,
        change,
        tls::desired_statement(&spec.name),
        observed,
        status,
        detail,
        "add the TLS-only statement (suoops-policy apply)",
    ))
}

/// S3-REPLICA-GRANT: the destination's policy lets the other accounts'
/// replication roles write.
fn grant(spec: &BucketSpec, state: &BucketState, change: &Change, _changes: &[Change]) -> Option<ControlResult> {
    let (false, Some(seen)) = (spec.replicated_from.is_empty(), &state.policy) else { return None };
    let (status, detail, observed) = match seen {
        Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone()), Value::Null),
        other => {
            let doc = other.present();
            let observed = doc.map(|d| d.json.clone()).unwrap_or(Value::Null);
            match super::grant::granted(doc, &spec.name, &spec.replicated_from) {
                Ok(()) => (Status::Pass, None, observed),
                Err(why) => (Status::Fail, Some(why.into()), observed),
            }
        }
    };
    let expected = Value::Array(super::grant::desired_statements(&spec.name, &spec.replicated_from));
    let fix = "add the grant to the sources' replication roles (suoops-policy apply)";
    Some(result(&GRANT, spec, change, expected, observed, status, detail, fix))
}

/// S3-ACCESS: the access statements, judged by meaning.
fn access(spec: &BucketSpec, state: &BucketState, change: &Change, _changes: &[Change]) -> Option<ControlResult> {
    let (Some(want), Some(seen)) = (&spec.access, &state.policy) else { return None };
    let (status, detail, observed) = match (seen, &access::resolve(want, &state.principals)) {
        (Observed::Unknown { reason }, _) | (_, Err(access::Unresolved::Unknown(reason))) => {
            (Status::Unknown, Some(reason.clone()), Value::Null)
        }
        (_, Err(e)) => (Status::Fail, Some(e.to_string()), Value::Null),
        (_, Ok(_)) if state.bucket.present().is_none() => {
            (Status::Fail, Some("the bucket does not exist".into()), Value::Null)
        }
        (other, Ok(r)) => {
            let doc = other.present();
            let observed = doc.map(|d| d.json.clone()).unwrap_or(Value::Null);
            match access::enforced(doc, &spec.name, r) {
                Ok(()) => (Status::Pass, None, observed),
                Err(gaps) => (Status::Fail, Some(gaps.join("; ")), observed),
            }
        }
    };
    let expected = json!({
        "writers": want.writers,
        "readers": want.readers,
        "deny_delete": want.deny_delete,
        "break_glass": want.break_glass,
    });
    Some(result(
        &ACCESS,
        spec,
        change,
        expected,
        observed,
        status,
        detail,
        "add the access statements to the bucket policy (suoops-policy apply)",
    ))
}

/// S3-OBJECT-LOCK.
fn object_lock(spec: &BucketSpec, state: &BucketState, change: &Change, _changes: &[Change]) -> Option<ControlResult> {
    let (Some(want), Some(seen)) = (&spec.object_lock, &state.object_lock) else { return None };
    let (status, detail) = match seen {
        Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone())),
        _ if state.bucket.present().is_none() => (Status::Fail, Some("the bucket does not exist".into())),
        Observed::Absent => (Status::Fail, Some("Object Lock is not enabled on the bucket".into())),
        Observed::Present(l) => lock_verdict(want, l),
    };
    Some(result(
        &LOCK,
        spec,
        change,
        json!({"mode": want.mode.as_str(), "days": want.days}),
        observed_json(seen, |l| json!(l)),
        status,
        detail,
        "enable Object Lock with the default retention (suoops-policy apply)",
    ))
}

/// S3-MFA-DELETE (audit only: a root step).
fn mfa_delete(spec: &BucketSpec, state: &BucketState, change: &Change, changes: &[Change]) -> Option<ControlResult> {
    let (Some(want), Some(seen)) = (spec.mfa_delete, &state.mfa_delete) else { return None };
    let word = |b: bool| if b { "enabled" } else { "disabled" };
    let (status, detail) = match seen {
        Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone())),
        Observed::Present(v) if *v == want => (Status::Pass, None),
        _ => (Status::Fail, None),
    };
    let fix = changes.iter().find_map(|c| c.manual.clone()).unwrap_or_else(|| "none".into());
    Some(result(&MFA, spec, change, json!(word(want)), observed_json(seen, |v| json!(word(*v))), status, detail, &fix))
}

/// S3-LIFECYCLE: every rule the policy names, as written.
fn lifecycle(spec: &BucketSpec, state: &BucketState, change: &Change, changes: &[Change]) -> Option<ControlResult> {
    let (Some(want), Some(seen)) = (&spec.lifecycle, &state.lifecycle) else { return None };
    let prefix = format!("s3.{}.lifecycle", spec.name);
    let rule_changes: Vec<&Change> = changes.iter().filter(|c| c.address.as_str().starts_with(&prefix)).collect();
    let (status, detail) = if let Some(r) = rule_changes.iter().find_map(|c| c.unknown.first()) {
        (Status::Unknown, Some(r.reason.clone()))
    } else {
        let bad: Vec<String> = rule_changes
            .iter()
            .filter(|c| !c.is_noop())
            .map(|c| {
                format!(
                    "{} ({})",
                    c.address.as_str().trim_start_matches(&format!("{prefix}.")),
                    match c.action {
                        crate::model::Action::Create => "missing",
                        crate::model::Action::Delete => "not in the policy (exclusive)",
                        _ => "differs",
                    }
                )
            })
            .collect();
        if bad.is_empty() {
            (Status::Pass, None)
        } else {
            (Status::Fail, Some(format!("rules: {}", bad.join(", "))))
        }
    };
    let observed = observed_json(seen, |d| json!(d.rules));
    Some(result(
        &LIFECYCLE,
        spec,
        change,
        json!(want.rules),
        observed,
        status,
        detail,
        "write the lifecycle rules (suoops-policy apply)",
    ))
}

/// At least as strong as the policy asks: the mode (COMPLIANCE is
/// stronger than GOVERNANCE) and at least as many days.
fn lock_verdict(
    want: &crate::providers::s3::section::ObjectLock,
    l: &super::observe::LockState,
) -> (Status, Option<String>) {
    let mut gaps = Vec::new();
    match l.mode.as_deref() {
        None => gaps.push("no default retention: new backups are not locked".to_string()),
        Some(m) if m == want.mode.as_str() || m == "COMPLIANCE" => {}
        Some(m) => gaps.push(format!("mode {m}, the policy says {}", want.mode.as_str())),
    }
    match l.days {
        Some(d) if d >= want.days => {}
        Some(d) => gaps.push(format!("retention {d} days, the policy says {}", want.days)),
        None => {}
    }
    if gaps.is_empty() {
        (Status::Pass, None)
    } else {
        (Status::Fail, Some(gaps.join("; ")))
    }
}

pub(super) fn observed_json<T>(seen: &Observed<T>, f: impl Fn(&T) -> Value) -> Value {
    match seen {
        Observed::Present(v) => f(v),
        _ => Value::Null,
    }
}

fn judge<T>(def: &Def, state: &BucketState, seen: &Observed<T>, change: &Change) -> (Status, Option<String>) {
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
        (Status::Fail, Some(format!("differs: {}", differs.join(", "))))
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn result(
    def: &Def,
    spec: &BucketSpec,
    change: &Change,
    expected: Value,
    observed: Value,
    status: Status,
    detail: Option<String>,
    remediation: &str,
) -> ControlResult {
    let line = spec.lines.get(def.attribute).copied().unwrap_or(spec.line);
    def.control.result(&change.address, status, expected, observed, detail, remediation, line)
}
