//! Cross-region replication: canonical rules, the pure diff with rule-level
//! ownership and its prerequisites (role exists, destination exists and is
//! versioned), and the document to write. Replication is applied in a
//! second phase, after every bucket's creation and versioning, so one apply
//! on an empty estate sets it all up.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_s3::types::{
    AccessControlTranslation, DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination,
    EncryptionConfiguration, Metrics, MetricsStatus, OwnerOverride, ReplicationConfiguration,
    ReplicationRule as SdkRule, ReplicationRuleFilter, ReplicationRuleStatus, ReplicationTime, ReplicationTimeStatus,
    ReplicationTimeValue, SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus, StorageClass,
};
use serde_json::json;

use crate::model::{field_changes, Action, Address, AttrChange, Change, Observed, UnknownSetting};
use crate::providers::s3::section::{Ownership, Replication, ReplicationRule};

/// A bucket's replication configuration as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplicationDoc {
    pub role: String,
    pub rules: Vec<ReplicationRule>,
    /// As read, to write foreign rules back untouched (the canonical
    /// `rules` stand for them in fingerprints).
    #[serde(skip)]
    pub raw: Vec<SdkRule>,
}

impl ReplicationDoc {
    pub fn from_sdk(conf: &ReplicationConfiguration) -> Self {
        ReplicationDoc {
            role: conf.role().to_string(),
            rules: conf.rules().iter().map(canonical).collect(),
            raw: conf.rules().to_vec(),
        }
    }
}

/// What replication needs from outside the bucket, read once per run.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Prerequisites {
    /// Each replication role the policy names (as written) → its ARN, or
    /// why it is missing/unknown.
    pub roles: BTreeMap<String, Observed<String>>,
    /// Destinations the policy does not declare: exists and versioned
    /// (Present(true)), exists unversioned (Present(false)), Absent, Unknown.
    pub destinations: BTreeMap<String, Observed<bool>>,
    /// Destinations the policy itself declares with versioning enabled:
    /// apply creates and versions them before replication.
    pub in_policy_versioned: BTreeSet<String>,
    /// Roles the policy itself declares: apply creates them first.
    pub in_policy_roles: BTreeSet<String>,
    /// Each replica key named by a declared key's alias (`alias/NAME`) →
    /// its key ARN in the destination's region, or why it is missing
    /// (absent: the kms kind creates it before replication is written).
    pub keys: BTreeMap<String, Observed<String>>,
    /// The region each of `keys` is read in, and the account when it is
    /// another declared account's (its id).
    #[serde(skip)]
    pub key_regions: BTreeMap<String, (String, Option<String>)>,
    /// The region of each bucket the policy declares (its own, else the
    /// run's default): a DR copy is in another region than its source.
    #[serde(skip)]
    pub regions: BTreeMap<String, String>,
}

pub use crate::policy::role_name;

pub fn bucket_of(arn_or_name: &str) -> &str {
    arn_or_name.strip_prefix("arn:aws:s3:::").unwrap_or(arn_or_name)
}

/// Canonical form of a live rule: legacy `Prefix`, `Filter.Prefix` and a
/// one-member `Filter.And` are the same; the destination is a bucket name.
pub fn canonical(r: &SdkRule) -> ReplicationRule {
    let mut out = ReplicationRule {
        id: r.id().unwrap_or_default().to_string(),
        priority: i64::from(r.priority().unwrap_or(0)),
        enabled: *r.status() == ReplicationRuleStatus::Enabled,
        ..Default::default()
    };
    // S3 still returns the deprecated top-level Prefix for rules written
    // that way: reading it is the point.
    #[allow(deprecated)]
    let mut prefix = r.prefix().map(str::to_string);
    if let Some(f) = r.filter() {
        if let Some(p) = f.prefix() {
            prefix = Some(p.to_string());
        }
        out.filter_tags.extend(f.tag().map(|t| format!("{}={}", t.key(), t.value())));
        if let Some(and) = f.and() {
            if let Some(p) = and.prefix() {
                prefix = Some(p.to_string());
            }
            out.filter_tags.extend(and.tags().iter().map(|t| format!("{}={}", t.key(), t.value())));
        }
    }
    out.filter_tags.sort();
    out.prefix = prefix.unwrap_or_default();
    if let Some(d) = r.destination() {
        out.destination = bucket_of(d.bucket()).to_string();
        out.storage_class = d.storage_class().map(|c| c.as_str().to_string());
        out.replica_kms_key = d.encryption_configuration().and_then(|e| e.replica_kms_key_id()).map(str::to_string);
        let rtc = d.replication_time().filter(|t| *t.status() == ReplicationTimeStatus::Enabled);
        out.replication_time_minutes =
            rtc.and_then(|t| t.time()).and_then(|t| t.minutes()).and_then(|m| u32::try_from(m).ok());
        out.destination_account = d.account().map(str::to_string);
        out.owner_override = d.access_control_translation().map(|t| *t.owner() == OwnerOverride::Destination);
        for (present, what) in [
            // Metrics without Replication Time Control, or RTC disabled but written.
            (d.metrics().is_some() && rtc.is_none(), "replication metrics"),
            (d.replication_time().is_some() && rtc.is_none(), "replication time control (disabled)"),
        ] {
            if present {
                out.unmodelled.push(what.into());
            }
        }
    }
    out.delete_marker_replication =
        r.delete_marker_replication().and_then(|d| d.status()) == Some(&DeleteMarkerReplicationStatus::Enabled);
    let criteria = r.source_selection_criteria();
    out.replicate_kms_encrypted = Some(
        criteria.and_then(|c| c.sse_kms_encrypted_objects()).map(|k| k.status())
            == Some(&SseKmsEncryptedObjectsStatus::Enabled),
    );
    if criteria.and_then(|c| c.replica_modifications()).is_some() {
        out.unmodelled.push("replica modification sync".into());
    }
    if r.existing_object_replication().is_some() {
        out.unmodelled.push("existing object replication".into());
    }
    out
}

/// The SDK rule for a policy rule (the V2 schema: Filter, Priority and
/// DeleteMarkerReplication always present). With `live`, the rule as read:
/// every setting the policy does not model or does not name is written back
/// exactly as read (field-level ownership), so an operator's Replication
/// Time Control or opt-in is not stripped by an apply that changes
/// something else.
pub fn to_sdk(r: &ReplicationRule, live: Option<&SdkRule>) -> Result<SdkRule, aws_sdk_s3::error::BuildError> {
    let ld = live.and_then(|l| l.destination());
    let mut dest = Destination::builder()
        .bucket(format!("arn:aws:s3:::{}", r.destination))
        .set_storage_class(r.storage_class.as_deref().map(StorageClass::from))
        .set_account(r.destination_account.clone().or_else(|| ld.and_then(|d| d.account()).map(str::to_string)))
        .set_access_control_translation(match r.owner_override {
            Some(true) => Some(AccessControlTranslation::builder().owner(OwnerOverride::Destination).build()?),
            Some(false) => None,
            None => ld.and_then(|d| d.access_control_translation()).cloned(),
        })
        .set_encryption_configuration(ld.and_then(|d| d.encryption_configuration()).cloned())
        .set_replication_time(ld.and_then(|d| d.replication_time()).cloned())
        .set_metrics(ld.and_then(|d| d.metrics()).cloned());
    if let Some(key) = &r.replica_kms_key {
        dest = dest.encryption_configuration(EncryptionConfiguration::builder().replica_kms_key_id(key).build());
    }
    // Replication Time Control comes with metrics; S3's only threshold is
    // 15 minutes (AWS S3 user guide, "Meeting compliance requirements with
    // S3 Replication Time Control").
    if let Some(minutes) = r.replication_time_minutes {
        let m = i32::try_from(minutes).unwrap_or(15);
        dest = dest
            .replication_time(
                ReplicationTime::builder()
                    .status(ReplicationTimeStatus::Enabled)
                    .time(ReplicationTimeValue::builder().minutes(m).build())
                    .build()?,
            )
            .metrics(
                Metrics::builder()
                    .status(MetricsStatus::Enabled)
                    .event_threshold(ReplicationTimeValue::builder().minutes(m).build())
                    .build()?,
            );
    }
    let mut criteria = live.and_then(|l| l.source_selection_criteria()).cloned();
    if let Some(on) = r.replicate_kms_encrypted {
        let status = if on { SseKmsEncryptedObjectsStatus::Enabled } else { SseKmsEncryptedObjectsStatus::Disabled };
        let kms = SseKmsEncryptedObjects::builder().status(status).build()?;
        let modifications = criteria.as_ref().and_then(|c| c.replica_modifications()).cloned();
        criteria = Some(
            SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(kms)
                .set_replica_modifications(modifications)
                .build(),
        );
    }
    // The rule's scope is its prefix alone: a tag filter someone added
    // narrows what reaches the DR copy, and the policy does not ask for it
    // (S3 also refuses delete-marker replication on a rule with a tag
    // filter: AWS S3 user guide, "Replicating delete markers between
    // buckets").
    let filter = ReplicationRuleFilter::builder().prefix(&r.prefix).build();
    SdkRule::builder()
        .id(&r.id)
        .priority(i32::try_from(r.priority).unwrap_or(i32::MAX))
        .status(if r.enabled { ReplicationRuleStatus::Enabled } else { ReplicationRuleStatus::Disabled })
        .set_source_selection_criteria(criteria)
        .set_existing_object_replication(live.and_then(|l| l.existing_object_replication()).cloned())
        .filter(filter)
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(if r.delete_marker_replication {
                    DeleteMarkerReplicationStatus::Enabled
                } else {
                    DeleteMarkerReplicationStatus::Disabled
                })
                .build(),
        )
        .destination(dest.build()?)
        .build()
}

pub fn address(bucket: &str) -> Address {
    Address::s3_bucket(bucket).child("replication")
}

fn rule_attrs(before: Option<&ReplicationRule>, after: &ReplicationRule) -> Vec<AttrChange> {
    field_changes(before, after, &["id", "unmodelled"])
}

/// The live rule as the policy rule sees it: settings the policy rule does
/// not name are not compared (field-level ownership; apply writes them
/// back as read), and what the format cannot model never makes a diff.
fn as_named(live: &ReplicationRule, want: &ReplicationRule) -> ReplicationRule {
    ReplicationRule {
        replica_kms_key: want.replica_kms_key.as_ref().and(live.replica_kms_key.clone()),
        replicate_kms_encrypted: want.replicate_kms_encrypted.and(live.replicate_kms_encrypted),
        replication_time_minutes: want.replication_time_minutes.and(live.replication_time_minutes),
        destination_account: want.destination_account.as_ref().and(live.destination_account.clone()),
        owner_override: want.owner_override.and(live.owner_override),
        unmodelled: Vec::new(),
        ..live.clone()
    }
}

/// A replica key written as a declared key's alias (`alias/NAME`, no ARN):
/// resolved to a key ARN before it is compared or written.
pub fn names_declared_key(key: &str) -> bool {
    key.starts_with("alias/")
}

/// The rules with each declared replica key replaced by `resolve(alias)`
/// (its key ARN, or a placeholder while it does not exist yet).
pub fn with_keys(want: &Replication, resolve: impl Fn(&str) -> String) -> Replication {
    let mut out = want.clone();
    for r in &mut out.rules {
        if let Some(k) = r.replica_kms_key.as_mut().filter(|k| names_declared_key(k)) {
            *k = resolve(k);
        }
    }
    out
}

/// The doc-level change (role, prerequisites) first, then one per rule.
pub fn diff(bucket: &str, want: &Replication, seen: &Observed<ReplicationDoc>, pre: &Prerequisites) -> Vec<Change> {
    let mut head = Change::new(address(bucket), Action::NoOp);
    for (alias, key) in &pre.keys {
        if let Observed::Unknown { reason } = key {
            if want.rules.iter().any(|r| r.replica_kms_key.as_deref() == Some(alias)) {
                head.unknown.push(UnknownSetting { attribute: format!("key {alias}"), reason: reason.clone() });
            }
        }
    }
    let want = &with_keys(want, |alias| match pre.keys.get(alias) {
        Some(Observed::Present(arn)) => arn.clone(),
        _ => format!("(known after apply: key {alias})"),
    });
    let doc = match seen {
        Observed::Unknown { reason } => {
            head.unknown.push(UnknownSetting { attribute: "replication".into(), reason: reason.clone() });
            return vec![head];
        }
        Observed::Absent => None,
        Observed::Present(d) => Some(d),
    };
    // Prerequisites: a missing role or destination cannot be fixed by this
    // resource's apply; say so instead of writing a configuration S3 rejects.
    let role_arn = match pre.roles.get(&want.role) {
        Some(Observed::Present(arn)) => Some(arn.clone()),
        Some(Observed::Absent) if pre.in_policy_roles.contains(role_name(&want.role)) => {
            Some(format!("(known after apply: role {})", role_name(&want.role)))
        }
        Some(Observed::Absent) => {
            head.conflicts.push(format!(
                "replication role `{}` does not exist; declare it under iam.roles (with `s3_replication: true`) or create it first",
                want.role
            ));
            None
        }
        Some(Observed::Unknown { reason }) => {
            head.unknown.push(UnknownSetting { attribute: format!("role {}", want.role), reason: reason.clone() });
            None
        }
        None => None,
    };
    let mut dests: Vec<&str> = want.rules.iter().map(|r| r.destination.as_str()).collect();
    dests.sort();
    dests.dedup();
    for d in dests {
        if pre.in_policy_versioned.contains(d) {
            continue;
        }
        match pre.destinations.get(d) {
            Some(Observed::Present(true)) => {}
            Some(Observed::Present(false)) => head.conflicts.push(format!(
                "destination bucket `{d}` is not versioned; S3 replicates only to versioned buckets (declare it in the policy with `versioning: enabled`)"
            )),
            Some(Observed::Absent) => {
                head.conflicts.push(format!("destination bucket `{d}` does not exist (declare it in the policy to create it)"))
            }
            Some(Observed::Unknown { reason }) => {
                head.unknown.push(UnknownSetting { attribute: format!("destination {d}"), reason: reason.clone() })
            }
            None => head.unknown.push(UnknownSetting { attribute: format!("destination {d}"), reason: "not read".into() }),
        }
    }
    if let Some(arn) = &role_arn {
        let live = doc.map(|d| d.role.as_str());
        if live != Some(arn.as_str()) {
            head.action = if doc.is_some() { Action::Update } else { Action::Create };
            head.attributes.push(AttrChange::new("role", live.map(|r| json!(r)), json!(arn)));
        }
    }
    let mut out = vec![head];
    let empty = Vec::new();
    let live_rules = doc.map_or(&empty, |d| &d.rules);
    for rule in &want.rules {
        let addr = address(bucket).child(&rule.id);
        match live_rules.iter().find(|r| r.id == rule.id) {
            None => {
                let mut c = Change::new(addr, Action::Create);
                c.attributes = rule_attrs(None, rule);
                out.push(c);
            }
            Some(live) => {
                let named = as_named(live, rule);
                let mut c = Change::new(addr, Action::NoOp);
                if named != *rule {
                    c.action = Action::Update;
                    c.attributes = rule_attrs(Some(&named), rule);
                }
                // What the live rule has that the policy's does not name.
                let mut kept = live.unmodelled.clone();
                if rule.destination_account.is_none() && live.destination_account.is_some() {
                    kept.push("destination account".into());
                }
                if rule.owner_override.is_none() && live.owner_override == Some(true) {
                    kept.push("owner override".into());
                }
                if !kept.is_empty() {
                    c.reason = Some(format!("also has: {}, kept", kept.join(", ")));
                }
                out.push(c);
            }
        }
    }
    for live in live_rules {
        if want.rules.iter().any(|r| r.id == live.id) {
            continue;
        }
        let addr = address(bucket).child(&live.id);
        let mut c = Change::new(addr, Action::NoOp);
        match want.ownership {
            Ownership::Shared => c.reason = Some("not managed by this policy, kept".into()),
            Ownership::Exclusive => {
                c.action = Action::Delete;
                c.destructive = true;
                c.reason = Some("not in the policy and replication ownership is exclusive".into());
            }
        }
        out.push(c);
    }
    // Nothing can be written while a prerequisite is missing: keep the rule
    // rows for the reader, but only the head row carries the conflict.
    if !out[0].conflicts.is_empty() || !out[0].unknown.is_empty() {
        for c in out.iter_mut().skip(1) {
            if c.action != Action::NoOp {
                c.reason = Some("waits for the prerequisites of the replication configuration".into());
            }
        }
    }
    out
}

/// The configuration to write, from the plan's rule changes (see
/// [`super::lifecycle::merged`]). None when no rule is left.
pub fn merged(
    want: &Replication,
    role_arn: &str,
    seen: Option<&ReplicationDoc>,
    act: &dyn Fn(&str) -> Option<Action>,
) -> Result<Option<ReplicationConfiguration>, aws_sdk_s3::error::BuildError> {
    let live: Vec<(&SdkRule, &str)> =
        seen.map(|d| d.raw.iter().zip(d.rules.iter().map(|r| r.id.as_str())).collect()).unwrap_or_default();
    let rules = super::lifecycle::merge_rules(&live, &want.rules, |r| r.id.as_str(), to_sdk, act)?;
    if rules.is_empty() {
        return Ok(None);
    }
    ReplicationConfiguration::builder().role(role_arn).set_rules(Some(rules)).build().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::Tag;

    fn rule(id: &str, dest: &str) -> ReplicationRule {
        ReplicationRule {
            id: id.into(),
            priority: 1,
            enabled: true,
            prefix: String::new(),
            destination: dest.into(),
            storage_class: Some("STANDARD_IA".into()),
            delete_marker_replication: false,
            replica_kms_key: None,
            replicate_kms_encrypted: Some(false),
            replication_time_minutes: None,
            destination_account: None,
            owner_override: None,
            filter_tags: vec![],
            unmodelled: vec![],
        }
    }

    fn want(rules: Vec<ReplicationRule>) -> Replication {
        Replication { role: "suoops-s3-replication".into(), ownership: Ownership::Shared, rules }
    }

    fn pre() -> Prerequisites {
        Prerequisites {
            roles: [(
                "suoops-s3-replication".to_string(),
                Observed::Present("arn:aws:iam::123456789012:role/r".into()),
            )]
            .into(),
            destinations: BTreeMap::new(),
            in_policy_versioned: BTreeSet::new(),
            in_policy_roles: BTreeSet::new(),
            keys: BTreeMap::new(),
            key_regions: BTreeMap::new(),
            regions: BTreeMap::new(),
        }
    }

    /// A live rule as another client wrote it: RTC with metrics, the SSE-KMS
    /// opt-in with a replica key, a destination account and a tag filter.
    fn operator_rule() -> SdkRule {
        let live = ReplicationRule {
            replica_kms_key: Some("arn:aws:kms:eu-west-1:123456789012:key/dr".into()),
            replicate_kms_encrypted: Some(true),
            replication_time_minutes: Some(15),
            ..rule("dr", "dest")
        };
        let base = to_sdk(&live, None).expect("rule");
        let dest = base.destination().expect("dest").clone();
        let dest = Destination::builder()
            .bucket(dest.bucket())
            .set_storage_class(dest.storage_class().cloned())
            .set_encryption_configuration(dest.encryption_configuration().cloned())
            .set_replication_time(dest.replication_time().cloned())
            .set_metrics(dest.metrics().cloned())
            .account("123456789012")
            .build()
            .expect("dest");
        SdkRule::builder()
            .id("dr")
            .priority(1)
            .status(ReplicationRuleStatus::Enabled)
            .set_source_selection_criteria(base.source_selection_criteria().cloned())
            .filter(
                ReplicationRuleFilter::builder().tag(Tag::builder().key("k").value("v").build().expect("tag")).build(),
            )
            .set_delete_marker_replication(base.delete_marker_replication().cloned())
            .destination(dest)
            .build()
            .expect("rule")
    }

    #[test]
    fn settings_the_policy_does_not_name_make_no_diff() {
        let live = operator_rule();
        let doc = ReplicationDoc {
            role: "arn:aws:iam::123456789012:role/r".into(),
            rules: vec![canonical(&live)],
            raw: vec![live],
        };
        // The policy names neither the key, the opt-in, RTC nor the account.
        let unnamed = want(vec![ReplicationRule { replicate_kms_encrypted: None, ..rule("dr", "dest") }]);
        let changes = diff("src", &unnamed, &Observed::Present(doc.clone()), &pre());
        let r = changes.iter().find(|c| c.address.as_str() == "s3.src.replication.dr").expect("rule change");
        // …but a tag filter narrows what is copied: a difference.
        assert_eq!(r.action, Action::Update, "{r:?}");
        let names: Vec<&str> = r.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["filter_tags"]);
        assert_eq!(r.attributes[0].before, Some(json!(["k=v"])));
        // Naming the opt-in as false is a difference, on that field only.
        let off = want(vec![ReplicationRule { replicate_kms_encrypted: Some(false), ..rule("dr", "dest") }]);
        let changes = diff("src", &off, &Observed::Present(doc), &pre());
        let r = changes.iter().find(|c| c.address.as_str() == "s3.src.replication.dr").expect("rule change");
        let names: Vec<&str> = r.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["filter_tags", "replicate_kms_encrypted"]);
    }

    #[test]
    fn writing_a_rule_keeps_what_the_policy_does_not_name() {
        let live = operator_rule();
        // The policy changes the storage class only.
        let want = ReplicationRule {
            storage_class: Some("GLACIER".into()),
            replicate_kms_encrypted: None,
            ..rule("dr", "dest")
        };
        let written = to_sdk(&want, Some(&live)).expect("rule");
        let d = written.destination().expect("dest");
        assert_eq!(d.storage_class().map(|c| c.as_str()), Some("GLACIER"));
        assert_eq!(d.account(), Some("123456789012"));
        assert_eq!(
            d.encryption_configuration().and_then(|e| e.replica_kms_key_id()),
            Some("arn:aws:kms:eu-west-1:123456789012:key/dr")
        );
        assert_eq!(d.replication_time(), live.destination().and_then(|d| d.replication_time()));
        assert_eq!(d.metrics(), live.destination().and_then(|d| d.metrics()));
        assert_eq!(written.source_selection_criteria(), live.source_selection_criteria());
        // The tag filter someone added is not the policy's: the rule is
        // written back to its prefix alone.
        assert_eq!(written.filter().and_then(|f| f.tag()), None);
        assert_eq!(written.filter().and_then(|f| f.prefix()), Some(""));
        let back = canonical(&written);
        assert_eq!(back.replication_time_minutes, Some(15));
        assert_eq!(back.replicate_kms_encrypted, Some(true));
    }

    #[test]
    fn kms_opt_in_and_replication_time_round_trip() {
        let r = ReplicationRule {
            replica_kms_key: Some("arn:aws:kms:eu-west-1:123456789012:alias/dr".into()),
            replicate_kms_encrypted: Some(true),
            replication_time_minutes: Some(15),
            ..rule("dr", "dest")
        };
        let sdk = to_sdk(&r, None).expect("rule");
        let d = sdk.destination().expect("dest");
        assert_eq!(d.metrics().map(|m| m.status().as_str()), Some("Enabled"));
        assert_eq!(canonical(&sdk), r);
    }

    #[test]
    fn round_trip_and_legacy_prefix_normalise() {
        let r = rule("dr", "dest");
        assert_eq!(canonical(&to_sdk(&r, None).expect("rule")), r);
        #[allow(deprecated)]
        let legacy = SdkRule::builder()
            .id("dr")
            .priority(1)
            .status(ReplicationRuleStatus::Enabled)
            .prefix("")
            .destination(
                Destination::builder()
                    .bucket("arn:aws:s3:::dest")
                    .storage_class(StorageClass::StandardIa)
                    .build()
                    .expect("dest"),
            )
            .build()
            .expect("rule");
        assert_eq!(canonical(&legacy), r, "no DeleteMarkerReplication reads as disabled");
    }

    #[test]
    fn empty_estate_creates_everything_when_the_destination_is_in_the_policy() {
        let mut p = pre();
        p.in_policy_versioned.insert("dest".into());
        let c = diff("src", &want(vec![rule("dr", "dest")]), &Observed::Absent, &p);
        assert_eq!(c[0].action, Action::Create);
        assert_eq!(c[0].attributes[0].name, "role");
        assert!(c[0].conflicts.is_empty());
        assert_eq!(c[1].action, Action::Create);
    }

    #[test]
    fn missing_role_or_unversioned_destination_is_a_conflict() {
        let mut p = pre();
        p.roles.insert("suoops-s3-replication".into(), Observed::Absent);
        p.destinations.insert("dest".into(), Observed::Present(false));
        let c = diff("src", &want(vec![rule("dr", "dest")]), &Observed::Absent, &p);
        assert_eq!(c[0].conflicts.len(), 2, "{:?}", c[0].conflicts);
        assert!(c[0].conflicts[1].contains("not versioned"));
    }

    #[test]
    fn converged_configuration_is_a_noop_and_foreign_rules_are_kept() {
        let arn = "arn:aws:iam::123456789012:role/r";
        let w = want(vec![rule("dr", "dest")]);
        let mut foreign = rule("theirs", "elsewhere");
        foreign.priority = 9;
        let create = diff("src", &w, &Observed::Absent, &pre());
        let conf = merged(&w, arn, None, &super::super::lifecycle::actions("src", &create, "replication"))
            .expect("build")
            .expect("conf");
        let mut doc = ReplicationDoc::from_sdk(&conf);
        doc.raw.push(to_sdk(&foreign, None).expect("rule"));
        doc.rules.push(foreign.clone());
        let mut p = pre();
        p.destinations.insert("dest".into(), Observed::Present(true));
        let c = diff("src", &w, &Observed::Present(doc.clone()), &p);
        assert!(c.iter().all(|c| c.action == Action::NoOp), "{c:?}");
        assert_eq!(c[2].reason.as_deref(), Some("not managed by this policy, kept"));
        let again = merged(&w, arn, Some(&doc), &|_| None).expect("build").expect("conf");
        assert_eq!(again.rules().len(), 2);
    }
}
