//! Customer-managed KMS keys (`kms.keys`): each found by its alias in its
//! region, created if absent (never deleted, disabled or scheduled for
//! deletion by the tool), with description, rotation and key-policy
//! statements owned by Sid (every other statement, the account's default
//! one among them, is kept). Applied after IAM (key policies name roles)
//! and before S3 (buckets encrypt with the keys).

mod apply;
mod controls;
mod diff;
mod import;
mod observe;
pub mod section;

use apply::*;
use controls::*;
use diff::*;
pub use diff::{merged_policy, missing_statements};
pub use observe::*;

use std::collections::BTreeSet;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag};
use futures::future::{FutureExt, LocalBoxFuture};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::aws::ops;
use crate::aws::{classify, Aws, Op};
use crate::iamdoc::{self, statements};
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::{Action, Address, Applied, AttrChange, Change, Fatal, Observed, StepOutcome, UnknownSetting};
use crate::policy::Policy;
use crate::providers::kms::section::KmsKeySpec;
use crate::providers::resources::{Resources, Seen};
use crate::providers::{Ctx, ImportRequest, Imported, Observation, Prior, Provider};

/// The KMS provider.
pub struct Kms;

const OPS: &[Op] = &[
    ops::DESCRIBE_KEY,
    ops::GET_KEY_ROTATION_STATUS,
    ops::GET_KEY_POLICY,
    ops::LIST_KEYS,
    ops::LIST_RESOURCE_TAGS,
    ops::CREATE_KEY,
    ops::CREATE_ALIAS,
    ops::ENABLE_KEY,
    ops::UPDATE_KEY_DESCRIPTION,
    ops::ENABLE_KEY_ROTATION,
    ops::DISABLE_KEY_ROTATION,
    ops::PUT_KEY_POLICY,
];

const CONTROLS: &[ControlDef] = &[KEY, ROTATION, POLICY];

impl Provider for Kms {
    fn kind(&self) -> &'static str {
        "kms"
    }
    fn title(&self) -> &'static str {
        "KMS"
    }
    fn after(&self) -> &'static [&'static str] {
        &["iam"]
    }
    fn controls(&self) -> &'static [ControlDef] {
        CONTROLS
    }
    fn ops(&self) -> &'static [Op] {
        OPS
    }
    fn addresses(&self, policy: &Policy) -> Vec<Address> {
        policy.kms.iter().map(|k| address(&k.name)).collect()
    }
    fn restrict(&self, policy: &mut Policy, targets: &crate::model::Targets) {
        policy.kms.retain(|k| targets.touches(address(&k.name).as_str()));
    }
    fn in_account(&self, policy: &mut Policy, here: &dyn Fn(Option<&str>) -> bool) {
        policy.kms.retain(|k| here(k.account.as_deref()));
    }
    fn on_aws(&self) -> bool {
        true
    }
    fn regions(&self, policy: &Policy, default: &str) -> Vec<String> {
        policy.kms.iter().map(|k| k.region_or(default).to_string()).collect()
    }
    fn scope(&self, policy: &Policy, on: crate::aws::On) -> Vec<String> {
        use crate::aws::On;
        if policy.kms.is_empty() {
            return Vec::new();
        }
        match on {
            On::Key => vec!["arn:aws:kms:*:*:key/*".to_string()],
            // CreateAlias needs the permission on the alias and on its key
            // (AWS KMS API reference, "CreateAlias": required permissions).
            On::Alias => policy
                .kms
                .iter()
                .map(|k| format!("arn:aws:kms:*:*:{}", k.alias))
                .chain(["arn:aws:kms:*:*:key/*".to_string()])
                .collect(),
            On::AnyKey => vec!["*".to_string()],
            _ => Vec::new(),
        }
    }
    fn counts(&self, policy: &Policy) -> Vec<crate::providers::Count> {
        vec![crate::providers::Count { n: policy.kms.len(), one: "KMS key", many: "KMS keys", key: "kms_keys" }]
    }
    fn keep_existing(&self, policy: &Policy, req: &mut ImportRequest) -> Vec<String> {
        let mut kept = Vec::new();
        req.kms_keys.retain(|k| {
            let alias = k.rsplit_once('@').map_or(k.as_str(), |(a, _)| a);
            let alias = if alias.starts_with("alias/") { alias.to_string() } else { format!("alias/{alias}") };
            let has = policy.kms.iter().any(|x| x.alias == alias);
            if has {
                kept.push(format!("kms ({alias})"));
            }
            !has
        });
        kept
    }
    fn unobserved(&self, ctx: &Ctx<'_>, policy: &Policy, reason: &str) -> Box<dyn Observation> {
        Box::new(Seen(unobserved(ctx, &policy.kms, reason)))
    }
    fn observe<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        policy: &'a Policy,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            let specs: Vec<(KmsKeySpec, bool)> = policy.kms.iter().map(|k| (k.clone(), false)).collect();
            Ok(Box::new(Seen(read_all(ctx, &specs).await?)) as Box<dyn Observation>)
        }
        .boxed_local()
    }
    fn import<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        req: &'a ImportRequest,
        default_region: Option<&'a str>,
    ) -> Option<LocalBoxFuture<'a, Result<Imported, Fatal>>> {
        Some(import::import(ctx, req, default_region).boxed_local())
    }
}

impl Resources for KmsSeen {
    const KIND: &'static str = "kms";
    type Item = Key;
    fn key_policies(&self) -> Vec<crate::iamdoc::KeyPolicy> {
        self.keys
            .iter()
            .filter_map(|k| {
                let policy = match k.state.policy.as_ref()? {
                    Observed::Present(v) => Ok(v.clone()),
                    Observed::Unknown { reason } => Err(reason.clone()),
                    Observed::Absent => return None,
                };
                let mut names = vec![k.spec.name.clone(), k.spec.alias.clone()];
                names.extend(k.state.key.present().map(|s| s.arn.clone()));
                Some(crate::iamdoc::KeyPolicy { names, policy })
            })
            .collect()
    }
    fn items(&self) -> &[Key] {
        &self.keys
    }
    fn address(k: &Key) -> Address {
        address(&k.spec.name)
    }
    fn diff(&self) -> Vec<Change> {
        self.keys.iter().map(Key::change).collect()
    }
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult> {
        self.controls_of(changes)
    }
    fn fingerprint(&self, k: &Key) -> Value {
        json!(k.state)
    }
    fn apply_one<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        k: &'a Key,
        changes: &'a [Change],
        _prior: &'a Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Option<Applied>, Fatal>> {
        async move {
            let addr = address(&k.spec.name);
            let Some(change) = changes.iter().find(|c| c.address == addr && c.is_actionable()) else { return Ok(None) };
            let steps = apply_key(ctx.aws, k, change).await;
            Ok(Some(Applied { address: addr, steps, did_not_take: Vec::new() }))
        }
        .boxed_local()
    }
    fn reread<'a>(&'a self, ctx: &'a Ctx<'a>, keys: Vec<&'a Key>) -> LocalBoxFuture<'a, Result<Self, Fatal>> {
        async move {
            // A key this run created: its alias may take a moment to show.
            let specs: Vec<(KmsKeySpec, bool)> =
                keys.iter().map(|k| (k.spec.clone(), k.state.key == Observed::Absent)).collect();
            read_all(ctx, &specs).await
        }
        .boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KmsKeySpec {
        KmsKeySpec {
            name: "backups".into(),
            account: None,
            region: None,
            alias: "alias/backups".into(),
            description: Some("dumps".into()),
            rotation: Some(true),
            rotation_period_days: None,
            policy: Some(json!({"Statement": [
                {"Sid": "WriterUsesKey", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/w"},
                 "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}
            ]})),
            line: 1,
        }
    }

    fn seen(state: &str) -> KeySeen {
        KeySeen {
            arn: "arn:aws:kms:us-east-1:123456789012:key/k1".into(),
            id: "k1".into(),
            state: state.into(),
            manager: "CUSTOMER".into(),
            spec: "SYMMETRIC_DEFAULT".into(),
            usage: "ENCRYPT_DECRYPT".into(),
            description: "dumps".into(),
            deletion_date: None,
            origin: None,
            replica: false,
        }
    }

    const ROOT: &str = r#"{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}"#;

    fn key(state: &str, policy: Value, rotation: bool) -> Key {
        Key {
            spec: spec(),
            region: "us-east-1".into(),
            state: KeyState {
                key: Observed::Present(seen(state)),
                rotation: Some(Observed::Present(Rotation { enabled: rotation, period_days: Some(365) })),
                policy: Some(Observed::Present(policy)),
            },
        }
    }

    #[test]
    fn foreign_statements_are_kept_and_ours_replace_by_sid() {
        let root: Value = serde_json::from_str(ROOT).expect("json");
        let old_ours = json!({"Sid": "WriterUsesKey", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/w"}, "Action": "kms:Decrypt", "Resource": "*"});
        let live = json!({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [root.clone(), old_ours]});
        let k = key("Enabled", live.clone(), true);
        let c = k.change();
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.attributes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["policy.WriterUsesKey"]);
        assert_eq!(c.reason.as_deref(), Some("key policy also has: Enable IAM User Permissions, kept"));
        let m = merged_policy(k.spec.policy.as_ref().expect("policy"), &live);
        assert_eq!(m["Id"], "key-default-1");
        assert_eq!(m["Statement"][0], root, "the account's statement is kept first");
        assert_eq!(m["Statement"].as_array().map(Vec::len), Some(2));
        assert_eq!(m["Statement"][1]["Action"], json!(["kms:GenerateDataKey", "kms:Decrypt"]));
        // Written, the key is in step.
        assert_eq!(key("Enabled", m, true).change().action, Action::NoOp);
    }

    #[test]
    fn an_equivalent_statement_under_another_sid_counts() {
        let theirs = json!({"Sid": "Theirs", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:role/w"]}, "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": ["*"]});
        let k = key("Enabled", json!({"Statement": [theirs]}), true);
        assert_eq!(k.change().action, Action::NoOp);
    }

    #[test]
    fn disabled_is_enabled_and_pending_deletion_is_a_conflict() {
        let policy = json!({"Statement": [spec().policy.expect("p")["Statement"][0].clone()]});
        let c = key("Disabled", policy.clone(), false).change();
        let names: Vec<&str> = c.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["enabled", "rotation"]);
        let mut k = key("PendingDeletion", policy, true);
        if let Observed::Present(s) = &mut k.state.key {
            s.deletion_date = Some("2026-12-08".into());
        }
        let c = k.change();
        assert!(!c.is_actionable());
        assert!(c.conflicts[0].contains("scheduled for deletion on 2026-12-08"), "{:?}", c.conflicts);
        let results = KmsSeen { keys: vec![k] }.controls_of(&[c]);
        assert_eq!(results[0].id, "KMS-KEY");
        assert_eq!(results[0].status, Status::Fail);
    }

    #[test]
    fn no_rotation_is_planned_for_keys_aws_cannot_rotate() {
        let policy = json!({"Statement": [spec().policy.expect("p")["Statement"][0].clone()]});
        for (origin, replica, says) in [
            (Some("EXTERNAL"), false, "imported key material"),
            (Some("AWS_CLOUDHSM"), false, "custom key store (AWS_CLOUDHSM)"),
            (None, true, "multi-Region replica key"),
        ] {
            let mut k = key("Enabled", policy.clone(), false);
            if let Observed::Present(s) = &mut k.state.key {
                s.origin = origin.map(str::to_string);
                s.replica = replica;
            }
            let c = k.change();
            assert!(c.attributes.iter().all(|a| !a.name.starts_with("rotation")), "{:?}", c.attributes);
            assert!(c.conflicts.iter().any(|x| x.contains(says)), "{:?}", c.conflicts);
            let results = KmsSeen { keys: vec![k] }.controls_of(&[c]);
            let rot = results.iter().find(|r| r.id == "KMS-ROTATION").expect("rotation control");
            assert_eq!(rot.status, Status::Fail);
            assert!(rot.detail.as_deref().is_some_and(|d| d.contains(says)), "{rot:?}");
        }
        // Rotation already as wanted: nothing to say.
        let mut k = key("Enabled", policy, true);
        if let Observed::Present(s) = &mut k.state.key {
            s.origin = Some("EXTERNAL".into());
        }
        assert!(k.change().conflicts.is_empty());
    }

    #[test]
    fn a_missing_key_is_created_with_every_declared_setting() {
        let k = Key {
            spec: spec(),
            region: "us-east-1".into(),
            state: KeyState { key: Observed::Absent, rotation: Some(Observed::Absent), policy: Some(Observed::Absent) },
        };
        let c = k.change();
        assert_eq!(c.action, Action::Create);
        let names: Vec<&str> = c.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["alias", "region", "description", "rotation", "policy.WriterUsesKey"]);
        let r = KmsSeen { keys: vec![k] }.controls_of(&[c]);
        assert!(r.iter().all(|x| x.status == Status::Fail), "{r:?}");
    }
}
