//! Desired vs observed for one bucket: pure, no I/O. The same result drives
//! the plan, apply and the audit controls.

use serde_json::{json, Value};

use super::observe::{BucketState, EncryptionState, PabState};
use super::{access, lifecycle, replication, tls};
use crate::model::{Action, Address, AttrChange, Change, Observed, UnknownSetting};
use crate::policy::Encryption;
use crate::providers::s3::section::{BucketSpec, LockMode, ObjectLock, PublicAccessBlock, Versioning};

/// Compare one bucket: the bucket's own change first, then one per
/// sub-resource (MFA delete, TLS statement, lifecycle rules).
pub fn diff(spec: &BucketSpec, region: &str, state: &BucketState) -> Vec<Change> {
    let head = bucket(spec, region, state);
    let mut out = vec![head];
    if state.bucket.unknown_reason().is_some() {
        return out;
    }
    if let (Some(want), Some(seen)) = (spec.mfa_delete, &state.mfa_delete) {
        out.push(mfa_delete(&spec.name, want, seen));
    }
    if let (Some(want), Some(seen)) = (spec.require_tls, &state.policy) {
        out.push(tls::diff(&spec.name, want, seen));
    }
    if let (Some(want), Some(seen)) = (&spec.access, &state.policy) {
        out.push(access::diff(&spec.name, want, &state.principals, seen, state.caller.as_deref()));
    }
    if let (false, Some(seen)) = (spec.replicated_from.is_empty(), &state.policy) {
        out.push(super::grant::diff(&spec.name, &spec.replicated_from, seen));
    }
    if let (Some(want), Some(seen)) = (&spec.lifecycle, &state.lifecycle) {
        out.extend(lifecycle::diff(&spec.name, want, seen));
    }
    if let (Some(want), Some(seen)) = (&spec.replication, &state.replication) {
        out.extend(replication::diff(&spec.name, want, seen, &state.prerequisites));
    }
    out
}

/// MFA delete can only be changed by the root user with an MFA code: the
/// plan names the exact command, apply never tries.
fn mfa_delete(bucket: &str, want: bool, seen: &Observed<bool>) -> Change {
    let mut c = Change::new(Address::s3_bucket(bucket).child("mfa_delete"), Action::NoOp);
    let word = |b: bool| if b { "enabled" } else { "disabled" };
    match seen {
        Observed::Unknown { reason } => {
            c.unknown.push(UnknownSetting { attribute: "mfa_delete".into(), reason: reason.clone() })
        }
        Observed::Present(v) if *v == want => {}
        other => {
            let before = other.present().copied().unwrap_or(false);
            c.action = Action::Update;
            c.attributes.push(AttrChange::new("mfa_delete", Some(json!(word(before))), json!(word(want))));
            c.manual = Some(format!(
                "as the root user, with the root MFA device: aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled,MFADelete={} --mfa \"arn:aws:iam::ACCOUNT_ID:mfa/root-account-mfa-device CODE\"",
                if want { "Enabled" } else { "Disabled" }
            ));
        }
    }
    c
}

/// The bucket itself: existence, region, versioning, encryption, public
/// access block.
fn bucket(spec: &BucketSpec, region: &str, state: &BucketState) -> Change {
    let mut change = Change::new(Address::s3_bucket(&spec.name), Action::NoOp);
    match &state.bucket {
        Observed::Unknown { reason } => {
            change.unknown.push(UnknownSetting { attribute: "bucket".into(), reason: reason.clone() });
            return change;
        }
        Observed::Absent => {
            change.action = Action::Create;
            change.attributes.push(AttrChange::new("region", None, json!(region)));
        }
        Observed::Present(actual) if actual != region => {
            change.conflicts.push(format!(
                "the bucket exists in {actual} but the policy puts it in {region}; suoops-policy never moves or re-creates a bucket: fix the policy's region or move the data yourself"
            ));
        }
        Observed::Present(_) => {}
    }

    if let (Some(want), Some(seen)) = (spec.versioning, &state.versioning) {
        versioning(want, seen, &mut change);
    }
    if let (Some(want), Some(seen)) = (&spec.object_lock, &state.object_lock) {
        let existing = matches!(state.bucket, Observed::Present(_));
        object_lock(want, seen, existing, &mut change);
    }
    if let (Some(want), Some(seen)) = (&spec.encryption, &state.encryption) {
        encryption(want, seen, state.key.as_ref().and_then(|k| k.present()), &mut change);
    }
    if let (Some(want), Some(seen)) = (&spec.public_access_block, &state.public_access_block) {
        public_access_block(want, seen, &mut change);
    }
    if change.action == Action::NoOp && !change.attributes.is_empty() {
        change.action = Action::Update;
    }
    change.destructive = change.attributes.iter().any(|a| a.destructive);
    change.irreversible = change.attributes.iter().any(|a| a.irreversible);
    change
}

/// Object Lock: once enabled it cannot be turned off (AWS S3 user guide,
/// "Configuring S3 Object Lock"); a COMPLIANCE retention cannot be
/// shortened or removed by anyone, the root user included, until each
/// version's retention ends ("Object Lock retention modes"), so making or
/// lengthening one is irreversible. Turning it on for an `existing`
/// bucket is irreversible too ("After you enable Object Lock on a bucket,
/// you can't disable Object Lock or suspend versioning for that bucket":
/// AWS S3 user guide, "Object Lock considerations"); a bucket created
/// with it can still be emptied and deleted.
fn object_lock(want: &ObjectLock, seen: &Observed<super::observe::LockState>, existing: bool, change: &mut Change) {
    let Some(seen) = known(seen, "object_lock", change) else {
        return;
    };
    if seen.is_none() {
        let mut a = AttrChange::new("object_lock.enabled", Some(json!(false)), json!(true));
        a.irreversible = existing;
        change.attributes.push(a);
    }
    let mode = seen.and_then(|s| s.mode.as_deref());
    let days = seen.and_then(|s| s.days);
    let compliance = want.mode == LockMode::Compliance;
    if mode != Some(want.mode.as_str()) {
        let mut a = AttrChange::new("object_lock.mode", mode.map(|m| json!(m)), json!(want.mode.as_str()));
        a.irreversible = compliance;
        change.attributes.push(a);
    }
    if days != Some(want.days) {
        let mut a = AttrChange::new("object_lock.days", days.map(|d| json!(d)), json!(want.days));
        a.irreversible = compliance && days.is_none_or(|d| want.days > d);
        change.attributes.push(a);
    }
    if seen.is_none() && change.reason.is_none() {
        change.reason = Some("Object Lock cannot be turned off once enabled".into());
    }
}

/// Record an unknown setting and say whether the comparison can go on.
fn known<'a, T>(seen: &'a Observed<T>, attribute: &str, change: &mut Change) -> Option<Option<&'a T>> {
    match seen {
        Observed::Present(v) => Some(Some(v)),
        Observed::Absent => Some(None),
        Observed::Unknown { reason } => {
            if change.action != Action::Create {
                change.unknown.push(UnknownSetting { attribute: attribute.into(), reason: reason.clone() });
            }
            None
        }
    }
}

fn versioning(want: Versioning, seen: &Observed<String>, change: &mut Change) {
    let Some(seen) = known(seen, "versioning", change) else {
        return;
    };
    if seen.map(String::as_str) == Some(want.as_str()) {
        return;
    }
    // A bucket that was never versioned reports no status at all.
    let mut a = AttrChange::new("versioning", seen.map(|s| json!(s)), json!(want.as_str()));
    if want == Versioning::Suspended && seen.map(String::as_str) == Some("enabled") {
        a.destructive = true;
    }
    change.attributes.push(a);
}

/// `key`: the key the policy names, as DescribeKey resolved it; a bucket
/// set to that key's ARN or id uses the key the policy names.
fn encryption(
    want: &Encryption,
    seen: &Observed<EncryptionState>,
    facts: Option<&super::observe::KeyFacts>,
    change: &mut Change,
) {
    let Some(seen) = known(seen, "encryption", change) else {
        return;
    };
    let alg = seen.map(|s| s.algorithm.as_str());
    if alg != Some(want.algorithm.as_str()) {
        change.attributes.push(AttrChange::new(
            "encryption.algorithm",
            alg.map(|a| json!(a)),
            json!(want.algorithm.as_str()),
        ));
    }
    if let Some(key) = &want.kms_key {
        let seen_key = seen.and_then(|s| s.kms_key.as_deref());
        let resolved = |k: &str| facts.is_some_and(|f| same_kms_key(k, &f.arn));
        if !seen_key.is_some_and(|k| same_kms_key(k, key) || resolved(k)) {
            // A declared key is written as its key ARN: show that.
            let after = match (&want.declared_key, facts) {
                (Some(_), Some(f)) => f.arn.clone(),
                (Some(_), None) => format!("(known after apply: key {key})"),
                (None, _) => key.clone(),
            };
            change.attributes.push(AttrChange::new("encryption.kms_key", seen_key.map(|k| json!(k)), json!(after)));
        }
    }
    if let Some(bk) = want.bucket_key {
        let seen_bk = seen.map(|s| s.bucket_key);
        if seen_bk != Some(bk) {
            change.attributes.push(AttrChange::new("encryption.bucket_key", seen_bk.map(Value::Bool), json!(bk)));
        }
    }
}

/// `alias/x` and `arn:aws:kms:…:alias/x` name the same key, as do a key id
/// and its key ARN.
pub fn same_kms_key(a: &str, b: &str) -> bool {
    fn tail(k: &str) -> &str {
        if k.starts_with("arn:") {
            k.splitn(6, ':').nth(5).map(|r| r.strip_prefix("key/").unwrap_or(r)).unwrap_or(k)
        } else {
            k
        }
    }
    a == b || tail(a) == tail(b)
}

fn public_access_block(want: &PublicAccessBlock, seen: &Observed<PabState>, change: &mut Change) {
    let Some(seen) = known(seen, "public_access_block", change) else {
        return;
    };
    let seen = seen.copied();
    for (name, w, s) in [
        ("block_public_acls", want.block_public_acls, seen.map(|s| s.block_public_acls)),
        ("ignore_public_acls", want.ignore_public_acls, seen.map(|s| s.ignore_public_acls)),
        ("block_public_policy", want.block_public_policy, seen.map(|s| s.block_public_policy)),
        ("restrict_public_buckets", want.restrict_public_buckets, seen.map(|s| s.restrict_public_buckets)),
    ] {
        let Some(w) = w else { continue };
        // No configuration at all means every block is off; a new bucket
        // gets every wanted flag written explicitly.
        let differs = match s {
            Some(s) => s != w,
            None => w || change.action == Action::Create,
        };
        if differs {
            change.attributes.push(AttrChange::new(
                &format!("public_access_block.{name}"),
                s.map(Value::Bool),
                json!(w),
            ));
        }
    }
}

/// The public access block to write: desired flags, and for flags the
/// policy leaves open, what the bucket has now.
pub fn merged_pab(want: &PublicAccessBlock, seen: Option<&PabState>) -> PabState {
    let cur = seen.copied().unwrap_or_default();
    PabState {
        block_public_acls: want.block_public_acls.unwrap_or(cur.block_public_acls),
        ignore_public_acls: want.ignore_public_acls.unwrap_or(cur.ignore_public_acls),
        block_public_policy: want.block_public_policy.unwrap_or(cur.block_public_policy),
        restrict_public_buckets: want.restrict_public_buckets.unwrap_or(cur.restrict_public_buckets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Algorithm;

    fn spec() -> BucketSpec {
        BucketSpec {
            name: "b".into(),
            account: None,
            region: None,
            versioning: Some(Versioning::Enabled),
            encryption: Some(Encryption {
                algorithm: Algorithm::Aes256,
                kms_key: None,
                declared_key: None,
                bucket_key: None,
            }),
            public_access_block: Some(PublicAccessBlock::all(true)),
            mfa_delete: None,
            require_tls: None,
            access: None,
            object_lock: None,
            lifecycle: None,
            replication: None,
            backups: vec![],
            replicated_from: Vec::new(),
            foreign: Vec::new(),
            line: 1,
            lines: Default::default(),
        }
    }

    fn compliant() -> BucketState {
        BucketState {
            bucket: Observed::Present("us-east-1".into()),
            versioning: Some(Observed::Present("enabled".into())),
            encryption: Some(Observed::Present(EncryptionState {
                algorithm: "AES256".into(),
                kms_key: None,
                bucket_key: false,
                blocked_encryption_types: None,
            })),
            public_access_block: Some(Observed::Present(PabState {
                block_public_acls: true,
                ignore_public_acls: true,
                block_public_policy: true,
                restrict_public_buckets: true,
            })),
            mfa_delete: None,
            lifecycle: None,
            policy: None,
            replication: None,
            prerequisites: Default::default(),
            key: None,
            object_lock: None,
            principals: Default::default(),
            caller: None,
            key_policy: None,
        }
    }

    #[test]
    fn compliant_bucket_is_noop() {
        let c = bucket(&spec(), "us-east-1", &compliant());
        assert_eq!(c.action, Action::NoOp);
        assert!(c.attributes.is_empty() && c.unknown.is_empty());
    }

    #[test]
    fn object_lock_in_compliance_mode_is_irreversible_governance_is_not() {
        use super::super::observe::LockState;
        let lock = |mode: LockMode, days| ObjectLock { mode, days };
        let run = |want: ObjectLock, seen: Observed<LockState>| {
            let mut c = Change::new(Address::s3_bucket("b"), Action::NoOp);
            object_lock(&want, &seen, false, &mut c);
            c
        };
        let c = run(lock(LockMode::Governance, 14), Observed::Absent);
        let names: Vec<_> = c.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["object_lock.enabled", "object_lock.mode", "object_lock.days"]);
        assert!(c.attributes.iter().all(|a| !a.irreversible));
        // On a bucket that exists, turning it on cannot be undone.
        let mut c = Change::new(Address::s3_bucket("b"), Action::NoOp);
        object_lock(&lock(LockMode::Governance, 14), &Observed::Absent, true, &mut c);
        let on = c.attributes.iter().find(|a| a.name == "object_lock.enabled").expect("enabled");
        assert!(on.irreversible);
        assert!(c.attributes.iter().filter(|a| a.name != "object_lock.enabled").all(|a| !a.irreversible));
        assert_eq!(c.reason.as_deref(), Some("Object Lock cannot be turned off once enabled"));
        let c = run(lock(LockMode::Compliance, 14), Observed::Absent);
        assert!(c.attributes.iter().any(|a| a.name == "object_lock.mode" && a.irreversible));
        // Governance → compliance, or a longer compliance retention: irreversible.
        let live = |m: &str, d| Observed::Present(LockState { mode: Some(m.into()), days: Some(d), years: None });
        let c = run(lock(LockMode::Compliance, 14), live("GOVERNANCE", 14));
        assert_eq!(c.attributes.len(), 1);
        assert!(c.attributes[0].irreversible);
        let c = run(lock(LockMode::Compliance, 30), live("COMPLIANCE", 14));
        assert!(c.attributes[0].irreversible);
        // A shorter compliance default only affects new versions: allowed.
        let c = run(lock(LockMode::Compliance, 7), live("COMPLIANCE", 14));
        assert!(!c.attributes[0].irreversible);
        // One year written as Years reads as 365 days: no change.
        let c = run(
            lock(LockMode::Governance, 365),
            Observed::Present(LockState { mode: Some("GOVERNANCE".into()), days: Some(365), years: Some(1) }),
        );
        assert!(c.attributes.is_empty());
    }

    #[test]
    fn absent_bucket_is_created_with_every_setting() {
        let state = BucketState {
            bucket: Observed::Absent,
            versioning: Some(Observed::Absent),
            encryption: Some(Observed::Absent),
            public_access_block: Some(Observed::Absent),
            mfa_delete: None,
            lifecycle: None,
            policy: None,
            replication: None,
            prerequisites: Default::default(),
            key: None,
            object_lock: None,
            principals: Default::default(),
            caller: None,
            key_policy: None,
        };
        let c = bucket(&spec(), "eu-west-1", &state);
        assert_eq!(c.action, Action::Create);
        let names: Vec<_> = c.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "region",
                "versioning",
                "encryption.algorithm",
                "public_access_block.block_public_acls",
                "public_access_block.ignore_public_acls",
                "public_access_block.block_public_policy",
                "public_access_block.restrict_public_buckets"
            ]
        );
        assert_eq!(c.attributes[0].after, json!("eu-west-1"));
    }

    #[test]
    fn unknown_is_never_absent() {
        let mut s = compliant();
        s.versioning = Some(Observed::Unknown { reason: "access denied".into() });
        let c = bucket(&spec(), "us-east-1", &s);
        assert_eq!(c.action, Action::NoOp);
        assert_eq!(c.unknown, vec![UnknownSetting { attribute: "versioning".into(), reason: "access denied".into() }]);
        let whole = BucketState { bucket: Observed::Unknown { reason: "timeout".into() }, ..compliant() };
        let c = bucket(&spec(), "us-east-1", &whole);
        assert_eq!(c.action, Action::NoOp, "an unreadable bucket is never planned for creation");
        assert_eq!(c.unknown[0].attribute, "bucket");
    }

    #[test]
    fn suspending_versioning_is_destructive() {
        let mut sp = spec();
        sp.versioning = Some(Versioning::Suspended);
        let c = bucket(&sp, "us-east-1", &compliant());
        assert_eq!(c.action, Action::Update);
        assert!(c.destructive);
        let mut never = compliant();
        never.versioning = Some(Observed::Absent);
        assert!(!bucket(&sp, "us-east-1", &never).destructive);
    }

    #[test]
    fn wrong_region_is_a_conflict_not_a_replace() {
        let c = bucket(&spec(), "eu-west-1", &compliant());
        assert_eq!(c.action, Action::NoOp);
        assert_eq!(c.conflicts.len(), 1);
        assert!(c.conflicts[0].contains("exists in us-east-1"));
    }

    #[test]
    fn kms_alias_and_its_arn_are_the_same_key() {
        assert!(same_kms_key("alias/k", "arn:aws:kms:us-east-1:123456789012:alias/k"));
        assert!(same_kms_key("1234", "arn:aws:kms:us-east-1:123456789012:key/1234"));
        assert!(!same_kms_key("alias/a", "alias/b"));
    }

    #[test]
    fn pab_flags_left_open_keep_their_live_value() {
        let want = PublicAccessBlock { block_public_acls: Some(true), ..Default::default() };
        let seen = PabState { restrict_public_buckets: true, ..Default::default() };
        let m = merged_pab(&want, Some(&seen));
        assert!(m.block_public_acls && m.restrict_public_buckets && !m.ignore_public_acls);
    }

    #[test]
    fn loosened_public_access_block_shows_each_flag() {
        let mut s = compliant();
        s.public_access_block = Some(Observed::Present(PabState {
            block_public_acls: false,
            ..PabState {
                block_public_acls: true,
                ignore_public_acls: true,
                block_public_policy: true,
                restrict_public_buckets: true,
            }
        }));
        let c = bucket(&spec(), "us-east-1", &s);
        assert_eq!(c.attributes.len(), 1);
        assert_eq!(c.attributes[0].name, "public_access_block.block_public_acls");
        assert_eq!(c.attributes[0].before, Some(json!(false)));
    }
}
