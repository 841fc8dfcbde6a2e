//! S3-ACCOUNT-ISOLATION: a bucket holding backups or DR copies in an
//! estate of several accounts, which no principal of another declared
//! account may delete from, unlock or re-configure. A principal of another
//! account reaches a bucket only through its bucket policy (AWS IAM user
//! guide, "Cross-account policy evaluation logic"), so the live bucket
//! policy decides, with the lock mode: versions under COMPLIANCE-mode
//! retention cannot be deleted or unlocked by anyone (AWS S3 user guide,
//! "Object Lock": retention modes). Who can assume a role in the bucket's
//! account is judged with the roles' documents by IMMUTABILITY.

use serde_json::{json, Value};

use super::controls::{result, Def};
use super::observe::BucketState;
use crate::iamdoc::{account_may, Grant};
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::{Change, Observed};
use crate::providers::s3::section::BucketSpec;

pub(super) const ISOLATION: Def = Def {
    attribute: "account",
    control: ControlDef {
        id: "S3-ACCOUNT-ISOLATION",
        title: "Other accounts cannot delete, unlock or re-configure the backups",
        rationale: "Backups kept in a separate account survive the workload account's compromise only if none of its principals may delete them, lift their lock or change the bucket's policy, lifecycle, versioning or replication (strategy: access control; AWS Backup: cross-account copies).",
        severity: Severity::High,
        objectives: &["IMMUTABILITY"],
    },
};

/// What a principal of another account must not do to the bucket (IAM
/// action names), and whether each is on the objects.
pub const ACTIONS: [(&str, bool); 9] = [
    ("s3:DeleteObject", true),
    ("s3:DeleteObjectVersion", true),
    ("s3:BypassGovernanceRetention", true),
    ("s3:PutBucketPolicy", false),
    ("s3:DeleteBucketPolicy", false),
    ("s3:PutLifecycleConfiguration", false),
    ("s3:PutBucketObjectLockConfiguration", false),
    ("s3:PutBucketVersioning", false),
    ("s3:PutReplicationConfiguration", false),
];

/// What each other account may do to `bucket` by `doc` (its live policy;
/// None: it has none), given the live default retention `mode`: one line
/// per account and action allowed, or why it is not known.
pub fn reachable(doc: Option<&Value>, bucket: &str, foreign: &[(String, String)], mode: Option<&str>) -> Vec<String> {
    let Some(doc) = doc else { return Vec::new() };
    let mut out = Vec::new();
    for (name, id) in foreign {
        for (action, on_objects) in ACTIONS {
            // Versions under COMPLIANCE retention survive whatever the
            // policy allows: nobody deletes them or lifts their lock.
            let held = mode == Some("COMPLIANCE")
                && matches!(action, "s3:DeleteObjectVersion" | "s3:BypassGovernanceRetention");
            let resource =
                if on_objects { format!("arn:aws:s3:::{bucket}/*") } else { format!("arn:aws:s3:::{bucket}") };
            match account_may(doc, id, action, &resource) {
                Grant::Allowed(by) if !held => out.push(format!("{name} ({id}) may {action}: {by}")),
                Grant::Unknown(why) if !held => out.push(format!("{name} ({id}) may perhaps {action}: {why}")),
                _ => {}
            }
        }
    }
    out
}

/// S3-ACCOUNT-ISOLATION for one bucket.
pub(super) fn control(
    spec: &BucketSpec,
    state: &BucketState,
    change: &Change,
    _changes: &[Change],
) -> Option<ControlResult> {
    let (false, Some(seen)) = (spec.foreign.is_empty(), &state.policy) else { return None };
    let mode = match &state.object_lock {
        Some(Observed::Present(l)) => l.mode.clone(),
        _ => None,
    };
    let accounts: Vec<String> = spec.foreign.iter().map(|(n, id)| format!("{n} ({id})")).collect();
    let expected = json!({"none_of": accounts, "may": ACTIONS.iter().map(|(a, _)| *a).collect::<Vec<_>>()});
    let (status, detail, observed) = match seen {
        Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone()), Value::Null),
        other => {
            let doc = other.present().map(|d| &d.json);
            let found = reachable(doc, &spec.name, &spec.foreign, mode.as_deref());
            let observed = json!({"policy": doc.cloned().unwrap_or(Value::Null), "lock_mode": mode});
            if found.is_empty() {
                (
                    Status::Pass,
                    Some(format!("no principal of {} may delete, unlock or re-configure it", accounts.join(", "))),
                    observed,
                )
            } else if found.iter().all(|f| f.contains(" may perhaps ")) {
                (Status::Unknown, Some(found.join("; ")), observed)
            } else {
                (Status::Fail, Some(found.join("; ")), observed)
            }
        }
    };
    let fix = "remove what lets the other accounts in from the bucket policy (the tool never strips statements it does not own), or deny it with `access.deny_delete` and `access.administrators`";
    Some(result(&ISOLATION, spec, change, expected, observed, status, detail, fix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn foreign() -> Vec<(String, String)> {
        vec![("prod".into(), "111111111111".into())]
    }

    #[test]
    fn another_account_is_held_out_unless_the_bucket_policy_lets_it_in() {
        let grant = json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "SuoopsPolicyReplicasFromSources", "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::111111111111:role/repl"]},
            "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ObjectOwnerOverrideToBucketOwner"],
            "Resource": "arn:aws:s3:::dr/*"}]});
        assert!(reachable(Some(&grant), "dr", &foreign(), None).is_empty(), "the replication grant deletes nothing");
        assert!(reachable(None, "dr", &foreign(), None).is_empty(), "no policy: no other account");
        let open = json!({"Statement": [{"Sid": "Ops", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Action": "s3:Delete*", "Resource": "arn:aws:s3:::dr/*"}]});
        let found = reachable(Some(&open), "dr", &foreign(), None);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("prod (111111111111) may s3:DeleteObject: statement `Ops` allows it"), "{found:?}");
        // COMPLIANCE retention holds the versions whatever the policy says.
        let found = reachable(Some(&open), "dr", &foreign(), Some("COMPLIANCE"));
        assert_eq!(found.len(), 1, "only the delete marker remains: {found:?}");
        // A Deny for everyone wins over the Allow.
        let denied = json!({"Statement": [open["Statement"][0].clone(), {"Effect": "Deny", "Principal": "*",
            "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"], "Resource": "arn:aws:s3:::dr/*"}]});
        assert!(reachable(Some(&denied), "dr", &foreign(), None).is_empty());
        // A Deny that excepts one of that account's roles does not hold it.
        let excepting = json!({"Statement": [open["Statement"][0].clone(), {"Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": "arn:aws:s3:::dr/*",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/admin"}}}]});
        assert_eq!(reachable(Some(&excepting), "dr", &foreign(), None).len(), 2);
        // Anyone at all, conditioned on the backup account alone: held out.
        let own = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:PutBucketPolicy",
            "Resource": "arn:aws:s3:::dr", "Condition": {"StringEquals": {"aws:PrincipalAccount": "222222222222"}}}]});
        assert!(reachable(Some(&own), "dr", &foreign(), None).is_empty());
    }
}
