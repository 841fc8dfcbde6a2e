//! Lifecycle rules: the SDK's shapes to and from the canonical
//! `LifecycleRule`, and the pure diff with rule-level ownership. S3 replaces
//! the whole document on every write, so apply writes back the rules the
//! policy does not own exactly as they were read.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, ExpirationStatus, LifecycleExpiration, LifecycleRule as SdkRule,
    LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration, NoncurrentVersionTransition, Tag,
    Transition as SdkTransition, TransitionDefaultMinimumObjectSize, TransitionStorageClass,
};

use crate::model::{field_changes, Action, Address, AttrChange, Change, Observed, UnknownSetting};
use crate::providers::s3::section::{Lifecycle, LifecycleRule, Ownership, Transition};

/// A bucket's lifecycle document as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LifecycleDoc {
    /// Canonical form, in S3's order.
    pub rules: Vec<LifecycleRule>,
    /// As read, to write foreign rules back untouched (the canonical
    /// `rules` stand for them in fingerprints).
    #[serde(skip)]
    pub raw: Vec<SdkRule>,
    #[serde(serialize_with = "min_size_str")]
    pub min_object_size: Option<TransitionDefaultMinimumObjectSize>,
}

fn min_size_str<S: serde::Serializer>(v: &Option<TransitionDefaultMinimumObjectSize>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_ref().map_or("", |m| m.as_str()))
}

impl LifecycleDoc {
    pub fn from_sdk(raw: Vec<SdkRule>, min_object_size: Option<TransitionDefaultMinimumObjectSize>) -> Self {
        LifecycleDoc { rules: raw.iter().map(canonical).collect(), raw, min_object_size }
    }

    /// Rule `i`'s `Expiration.Date` as read, in seconds since the epoch
    /// (the canonical rule notes only that it has one).
    pub fn expiration_date(&self, i: usize) -> Option<u64> {
        self.raw.get(i)?.expiration()?.date().map(|d| d.secs().max(0) as u64)
    }
}

fn i64_of(v: Option<i32>) -> Option<i64> {
    v.map(i64::from)
}

fn i32_of(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Canonical form of a rule read from S3. Normalises what S3 reshapes: the
/// legacy top-level `Prefix` and `Filter.Prefix`, `Filter.And` with one
/// member, a missing filter (whole bucket), and empty tag sets.
pub fn canonical(r: &SdkRule) -> LifecycleRule {
    let mut out = LifecycleRule {
        id: r.id().unwrap_or_default().to_string(),
        enabled: *r.status() == ExpirationStatus::Enabled,
        ..Default::default()
    };
    // The legacy top-level Prefix is deprecated, but S3 still returns it for
    // rules written that way: reading it is the point.
    #[allow(deprecated)]
    let mut prefix = r.prefix().map(str::to_string);
    if let Some(f) = r.filter() {
        if let Some(p) = f.prefix() {
            prefix = Some(p.to_string());
        }
        if let Some(t) = f.tag() {
            out.tags.insert(t.key().to_string(), t.value().to_string());
        }
        out.object_size_greater_than = f.object_size_greater_than();
        out.object_size_less_than = f.object_size_less_than();
        if let Some(and) = f.and() {
            if let Some(p) = and.prefix() {
                prefix = Some(p.to_string());
            }
            for t in and.tags() {
                out.tags.insert(t.key().to_string(), t.value().to_string());
            }
            out.object_size_greater_than = out.object_size_greater_than.or(and.object_size_greater_than());
            out.object_size_less_than = out.object_size_less_than.or(and.object_size_less_than());
        }
    }
    out.prefix = prefix.unwrap_or_default();
    for t in r.transitions() {
        match (t.days(), t.storage_class()) {
            (Some(days), Some(class)) => {
                out.transitions.push(Transition { days: i64::from(days), storage_class: class.as_str().to_string() })
            }
            _ => out.unmodelled.push("transition on a date".into()),
        }
    }
    out.transitions.sort_by_key(|t| t.days);
    if let Some(e) = r.expiration() {
        out.expire_after_days = i64_of(e.days());
        if e.date().is_some() {
            out.unmodelled.push("expiration on a date".into());
        }
        if e.expired_object_delete_marker() == Some(true) {
            out.unmodelled.push("expired object delete marker".into());
        }
    }
    for t in r.noncurrent_version_transitions() {
        match (t.noncurrent_days(), t.storage_class()) {
            (Some(days), Some(class)) if t.newer_noncurrent_versions().is_none() => out
                .noncurrent_transitions
                .push(Transition { days: i64::from(days), storage_class: class.as_str().to_string() }),
            _ => out.unmodelled.push("noncurrent transition with newer versions".into()),
        }
    }
    out.noncurrent_transitions.sort_by_key(|t| t.days);
    if let Some(e) = r.noncurrent_version_expiration() {
        out.noncurrent_expire_after_days = i64_of(e.noncurrent_days());
        out.noncurrent_newer_versions = i64_of(e.newer_noncurrent_versions());
    }
    out.abort_incomplete_multipart_days =
        i64_of(r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()));
    out
}

/// The SDK rule for a policy rule: `Filter` (never the legacy `Prefix`)
/// holding exactly one condition, or `And` when more than one applies: S3
/// rejects a filter with two conditions outside `And` as MalformedXML, and
/// the lifecycle document is one request, so one bad rule would block all
/// (AWS S3 API reference, "LifecycleRuleFilter"). With `live`, the rule as
/// read: what the policy format cannot express (an expiration on a date or
/// of expired delete markers, transitions on a date, noncurrent transitions
/// that keep newer versions) is written back as read (field-level
/// ownership).
pub fn to_sdk(r: &LifecycleRule, live: Option<&SdkRule>) -> Result<SdkRule, aws_sdk_s3::error::BuildError> {
    let tags: Vec<Tag> =
        r.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect::<Result<_, _>>()?;
    let conditions = usize::from(!r.prefix.is_empty())
        + tags.len()
        + usize::from(r.object_size_greater_than.is_some())
        + usize::from(r.object_size_less_than.is_some());
    let filter = if conditions > 1 {
        LifecycleRuleFilter::builder()
            .and(
                LifecycleRuleAndOperator::builder()
                    .set_prefix((!r.prefix.is_empty()).then(|| r.prefix.clone()))
                    .set_tags(Some(tags))
                    .set_object_size_greater_than(r.object_size_greater_than)
                    .set_object_size_less_than(r.object_size_less_than)
                    .build(),
            )
            .build()
    } else if let Some(t) = tags.into_iter().next() {
        LifecycleRuleFilter::builder().tag(t).build()
    } else if r.object_size_greater_than.is_some() || r.object_size_less_than.is_some() {
        LifecycleRuleFilter::builder()
            .set_object_size_greater_than(r.object_size_greater_than)
            .set_object_size_less_than(r.object_size_less_than)
            .build()
    } else {
        // One condition (a prefix), or none: an empty prefix is the whole bucket.
        LifecycleRuleFilter::builder().prefix(r.prefix.clone()).build()
    };
    let mut b = SdkRule::builder()
        .id(&r.id)
        .status(if r.enabled { ExpirationStatus::Enabled } else { ExpirationStatus::Disabled })
        .filter(filter);
    if r.transitions.is_empty() {
        for t in live.map(|l| l.transitions()).unwrap_or_default().iter().filter(|t| t.date().is_some()) {
            b = b.transitions(t.clone());
        }
    }
    for t in &r.transitions {
        b = b.transitions(
            SdkTransition::builder()
                .days(i32_of(t.days))
                .storage_class(TransitionStorageClass::from(t.storage_class.as_str()))
                .build(),
        );
    }
    match (r.expire_after_days, live.and_then(|l| l.expiration())) {
        (Some(d), _) => b = b.expiration(LifecycleExpiration::builder().days(i32_of(d)).build()),
        (None, Some(e)) if e.days().is_none() => b = b.expiration(e.clone()),
        _ => {}
    }
    let kept = live.map(|l| l.noncurrent_version_transitions()).unwrap_or_default();
    for t in kept.iter().filter(|t| t.newer_noncurrent_versions().is_some()) {
        b = b.noncurrent_version_transitions(t.clone());
    }
    for t in &r.noncurrent_transitions {
        b = b.noncurrent_version_transitions(
            NoncurrentVersionTransition::builder()
                .noncurrent_days(i32_of(t.days))
                .storage_class(TransitionStorageClass::from(t.storage_class.as_str()))
                .build(),
        );
    }
    if let Some(d) = r.noncurrent_expire_after_days {
        b = b.noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(i32_of(d))
                .set_newer_noncurrent_versions(r.noncurrent_newer_versions.map(i32_of))
                .build(),
        );
    }
    if let Some(d) = r.abort_incomplete_multipart_days {
        b = b.abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder().days_after_initiation(i32_of(d)).build(),
        );
    }
    b.build()
}

pub fn rule_address(bucket: &str, id: &str) -> Address {
    Address::s3_bucket(bucket).child("lifecycle").child(id)
}

fn rule_attrs(before: Option<&LifecycleRule>, after: &LifecycleRule) -> Vec<AttrChange> {
    field_changes(before, after, &["id", "unmodelled"])
}

fn change(address: Address, action: Action) -> Change {
    Change::new(address, action)
}

/// One change per rule: create / update / delete / kept. `seen` Absent
/// means no lifecycle configuration at all (or no bucket yet).
pub fn diff(bucket: &str, want: &Lifecycle, seen: &Observed<LifecycleDoc>) -> Vec<Change> {
    let empty = LifecycleDoc { rules: vec![], raw: vec![], min_object_size: None };
    let doc = match seen {
        Observed::Unknown { reason } => {
            let mut c = change(Address::s3_bucket(bucket).child("lifecycle"), Action::NoOp);
            c.unknown.push(UnknownSetting { attribute: "lifecycle".into(), reason: reason.clone() });
            return vec![c];
        }
        Observed::Absent => &empty,
        Observed::Present(d) => d,
    };
    let mut out = Vec::new();
    for rule in &want.rules {
        let addr = rule_address(bucket, &rule.id);
        match doc.rules.iter().find(|r| r.id == rule.id) {
            None => {
                let mut c = change(addr, Action::Create);
                c.attributes = rule_attrs(None, rule);
                out.push(c);
            }
            Some(live) => {
                // What the format cannot express is written back as read
                // and never makes a diff by itself.
                let named = LifecycleRule { unmodelled: Vec::new(), ..live.clone() };
                let mut c = change(addr, Action::NoOp);
                if named != *rule {
                    c.action = Action::Update;
                    c.attributes = rule_attrs(Some(&named), rule);
                }
                if !live.unmodelled.is_empty() {
                    c.reason = Some(format!("also has: {}, kept", live.unmodelled.join(", ")));
                }
                out.push(c);
            }
        }
    }
    for live in &doc.rules {
        if want.rules.iter().any(|r| r.id == live.id) {
            continue;
        }
        let addr = rule_address(bucket, &live.id);
        match want.ownership {
            Ownership::Shared => {
                let mut c = change(addr, Action::NoOp);
                c.reason = Some("not managed by this policy, kept".into());
                out.push(c);
            }
            Ownership::Exclusive => {
                let mut c = change(addr, Action::Delete);
                c.destructive = true;
                c.reason = Some("not in the policy and lifecycle ownership is exclusive".into());
                out.push(c);
            }
        }
    }
    out
}

/// The document to write, from the plan's rule changes: `act(id)` is the
/// change apply makes to that rule (None: leave it). Live rules are kept
/// exactly as read unless changed or deleted; new rules are appended. So a
/// rule the plan does not touch (another team's, or one outside
/// `--target`) is written back untouched.
pub fn merged(
    want: &Lifecycle,
    seen: Option<&LifecycleDoc>,
    act: &dyn Fn(&str) -> Option<Action>,
) -> Result<Vec<SdkRule>, aws_sdk_s3::error::BuildError> {
    let live: Vec<(&SdkRule, &str)> =
        seen.map(|d| d.raw.iter().zip(d.rules.iter().map(|r| r.id.as_str())).collect()).unwrap_or_default();
    merge_rules(&live, &want.rules, |r| r.id.as_str(), to_sdk, act)
}

/// The merge both rule documents share (lifecycle, replication): `live` as
/// (rule as read, id), `want` the policy's rules.
pub fn merge_rules<R: Clone, W, E>(
    live: &[(&R, &str)],
    want: &[W],
    id: impl Fn(&W) -> &str,
    build: impl Fn(&W, Option<&R>) -> Result<R, E>,
    act: &dyn Fn(&str) -> Option<Action>,
) -> Result<Vec<R>, E> {
    let mut out = Vec::new();
    for (raw, rid) in live {
        match (act(rid), want.iter().find(|w| id(w) == *rid)) {
            (Some(Action::Delete), _) => {}
            (Some(Action::Create | Action::Update), Some(w)) => out.push(build(w, Some(*raw))?),
            _ => out.push((*raw).clone()),
        }
    }
    for w in want {
        let is_live = live.iter().any(|(_, rid)| *rid == id(w));
        if !is_live && matches!(act(id(w)), Some(Action::Create | Action::Update)) {
            out.push(build(w, None)?);
        }
    }
    Ok(out)
}

/// `act` for [`merged`] from a bucket's changes: the actionable change of
/// each rule address.
pub fn actions<'a>(bucket: &'a str, changes: &'a [Change], kind: &'a str) -> impl Fn(&str) -> Option<Action> + 'a {
    move |id: &str| {
        let addr = format!("s3.{bucket}.{kind}.{id}");
        changes.iter().find(|c| c.address.as_str() == addr && c.is_actionable()).map(|c| c.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, prefix: &str, expire: i64) -> LifecycleRule {
        LifecycleRule {
            id: id.into(),
            enabled: true,
            prefix: prefix.into(),
            expire_after_days: Some(expire),
            ..Default::default()
        }
    }

    fn round_trip(r: &LifecycleRule) -> LifecycleRule {
        canonical(&to_sdk(r, None).expect("build"))
    }

    #[test]
    fn a_filter_holds_exactly_one_condition_or_an_and() {
        let size_only = LifecycleRule { id: "big".into(), object_size_greater_than: Some(1024), ..Default::default() };
        let f = to_sdk(&size_only, None).expect("rule").filter().cloned().expect("filter");
        assert_eq!(f.prefix(), None, "no empty Prefix beside the size: S3 answers MalformedXML");
        assert_eq!(f.object_size_greater_than(), Some(1024));
        assert!(f.and().is_none());
        let both = LifecycleRule { prefix: "logs/".into(), ..size_only.clone() };
        let f = to_sdk(&both, None).expect("rule").filter().cloned().expect("filter");
        assert!(f.prefix().is_none() && f.object_size_greater_than().is_none(), "{f:?}");
        let and = f.and().expect("and");
        assert_eq!((and.prefix(), and.object_size_greater_than()), (Some("logs/"), Some(1024)));
        let whole = LifecycleRule { id: "all".into(), ..Default::default() };
        assert_eq!(to_sdk(&whole, None).expect("rule").filter().and_then(|f| f.prefix()), Some(""));
    }

    #[test]
    fn what_the_format_cannot_express_is_kept_and_makes_no_diff() {
        // Another client's rule: expired-delete-marker cleanup and a
        // noncurrent transition that keeps newer versions.
        let live = SdkRule::builder()
            .id("dumps")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("postgres/").build())
            .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
            .noncurrent_version_transitions(
                NoncurrentVersionTransition::builder()
                    .noncurrent_days(30)
                    .newer_noncurrent_versions(3)
                    .storage_class(TransitionStorageClass::Glacier)
                    .build(),
            )
            .build()
            .expect("rule");
        let doc = LifecycleDoc::from_sdk(vec![live.clone()], None);
        let want = Lifecycle {
            ownership: Ownership::Shared,
            rules: vec![LifecycleRule {
                id: "dumps".into(),
                enabled: true,
                prefix: "postgres/".into(),
                ..Default::default()
            }],
        };
        let changes = diff("b", &want, &Observed::Present(doc.clone()));
        assert_eq!(changes[0].action, Action::NoOp, "{changes:?}");
        assert!(changes[0].reason.as_deref().unwrap_or("").contains("expired object delete marker"), "{changes:?}");
        // The policy now adds noncurrent expiration: the write keeps both.
        let mut want2 = want.clone();
        want2.rules[0].noncurrent_expire_after_days = Some(7);
        let changes = diff("b", &want2, &Observed::Present(doc.clone()));
        let names: Vec<&str> = changes[0].attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["noncurrent_expire_after_days"]);
        let written = to_sdk(&want2.rules[0], Some(&live)).expect("rule");
        assert_eq!(written.expiration().and_then(|e| e.expired_object_delete_marker()), Some(true));
        assert_eq!(written.noncurrent_version_transitions().len(), 1);
        assert_eq!(written.noncurrent_version_expiration().and_then(|e| e.noncurrent_days()), Some(7));
    }

    #[test]
    fn policy_rules_survive_the_sdk_round_trip() {
        let mut r = rule("a", "postgres/", 14);
        r.transitions = vec![Transition { days: 30, storage_class: "STANDARD_IA".into() }];
        r.tags.insert("class".into(), "dump".into());
        r.object_size_greater_than = Some(128);
        r.noncurrent_expire_after_days = Some(7);
        r.noncurrent_newer_versions = Some(2);
        r.abort_incomplete_multipart_days = Some(3);
        assert_eq!(round_trip(&r), r);
        let bare = rule("b", "", 365);
        assert_eq!(round_trip(&bare), bare);
        let mut tag_only = rule("c", "", 1);
        tag_only.tags.insert("k".into(), "v".into());
        assert_eq!(round_trip(&tag_only), tag_only);
    }

    #[test]
    #[allow(deprecated)] // the legacy Prefix is what this test is about
    fn legacy_prefix_equals_filter_prefix() {
        let legacy = SdkRule::builder()
            .id("a")
            .status(ExpirationStatus::Enabled)
            .prefix("postgres/")
            .expiration(LifecycleExpiration::builder().days(14).build())
            .build()
            .expect("rule");
        assert_eq!(canonical(&legacy), rule("a", "postgres/", 14));
    }

    #[test]
    fn and_filter_with_one_prefix_equals_plain_prefix() {
        let and = SdkRule::builder()
            .id("a")
            .status(ExpirationStatus::Enabled)
            .filter(
                LifecycleRuleFilter::builder()
                    .and(LifecycleRuleAndOperator::builder().prefix("postgres/").build())
                    .build(),
            )
            .expiration(LifecycleExpiration::builder().days(14).build())
            .build()
            .expect("rule");
        assert_eq!(canonical(&and), rule("a", "postgres/", 14));
    }

    #[test]
    fn missing_filter_and_empty_prefix_are_the_whole_bucket() {
        let none = SdkRule::builder()
            .id("a")
            .status(ExpirationStatus::Enabled)
            .expiration(LifecycleExpiration::builder().days(3).build())
            .build()
            .expect("rule");
        let empty = SdkRule::builder()
            .id("a")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().build())
            .expiration(LifecycleExpiration::builder().days(3).build())
            .build()
            .expect("rule");
        assert_eq!(canonical(&none), rule("a", "", 3));
        assert_eq!(canonical(&empty), rule("a", "", 3));
    }

    #[test]
    fn transition_default_minimum_object_size_is_not_a_diff() {
        let want = Lifecycle { ownership: Ownership::Shared, rules: vec![rule("a", "x/", 5)] };
        let raw = vec![to_sdk(&want.rules[0], None).expect("rule")];
        let doc = LifecycleDoc::from_sdk(raw, Some(TransitionDefaultMinimumObjectSize::AllStorageClasses128K));
        let changes = diff("b", &want, &Observed::Present(doc));
        assert!(changes.iter().all(|c| c.action == Action::NoOp), "{changes:?}");
    }

    #[test]
    fn foreign_rules_are_kept_under_shared_and_deleted_under_exclusive() {
        let foreign = rule("other-team", "logs/", 30);
        let doc = LifecycleDoc::from_sdk(vec![to_sdk(&foreign, None).expect("rule")], None);
        let mut want = Lifecycle { ownership: Ownership::Shared, rules: vec![rule("mine", "x/", 5)] };
        let c = diff("b", &want, &Observed::Present(doc.clone()));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].action, Action::Create);
        assert_eq!(c[1].address.as_str(), "s3.b.lifecycle.other-team");
        assert_eq!(c[1].action, Action::NoOp);
        assert_eq!(c[1].reason.as_deref(), Some("not managed by this policy, kept"));
        let merged_rules = merged(&want, Some(&doc), &actions("b", &c, "lifecycle")).expect("merge");
        assert_eq!(merged_rules.len(), 2);
        assert_eq!(merged_rules[0], doc.raw[0], "the foreign rule is written back untouched, where it was");

        want.ownership = Ownership::Exclusive;
        let c = diff("b", &want, &Observed::Present(doc.clone()));
        assert_eq!(c[1].action, Action::Delete);
        assert!(c[1].destructive);
        assert_eq!(merged(&want, Some(&doc), &actions("b", &c, "lifecycle")).expect("merge").len(), 1);
        // A change outside --target is left alone: the foreign rule stays.
        let mut restricted = c.clone();
        crate::model::Targets::of(vec!["s3.b.lifecycle.mine".into()]).restrict(&mut restricted);
        assert_eq!(merged(&want, Some(&doc), &actions("b", &restricted, "lifecycle")).expect("merge").len(), 2);
    }

    #[test]
    fn a_changed_rule_lists_only_what_differs() {
        let live = rule("a", "postgres/", 30);
        let doc = LifecycleDoc::from_sdk(vec![to_sdk(&live, None).expect("rule")], None);
        let want = Lifecycle { ownership: Ownership::Shared, rules: vec![rule("a", "postgres/", 14)] };
        let c = diff("b", &want, &Observed::Present(doc));
        assert_eq!(c[0].action, Action::Update);
        assert_eq!(c[0].attributes.len(), 1);
        assert_eq!(c[0].attributes[0].name, "expire_after_days");
        assert_eq!(c[0].attributes[0].before, Some(serde_json::json!(30)));
    }

    #[test]
    fn unknown_lifecycle_is_never_absent() {
        let want = Lifecycle { ownership: Ownership::Exclusive, rules: vec![rule("a", "x/", 5)] };
        let c = diff("b", &want, &Observed::Unknown { reason: "access denied".into() });
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].action, Action::NoOp);
        assert_eq!(c[0].unknown.len(), 1);
    }
}
