//! Customer-managed KMS keys (`kms.keys`): each found by its alias in its
//! region, created if absent (never deleted, disabled or scheduled for
//! deletion by the tool), with description, rotation and key-policy
//! statements owned by Sid (every other statement, the account's default
//! one among them, is kept). Applied after IAM (key policies name roles)
//! and before S3 (buckets encrypt with the keys).

mod import;

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
use crate::policy::{KmsKeySpec, Policy};
use crate::providers::resources::{Resources, Seen};
use crate::providers::{Ctx, ImportRequest, Imported, Observation, Prior, Provider};

/// The tag a key this tool creates carries (its name in the policy): a key
/// whose alias was never made (the run stopped between CreateKey and
/// CreateAlias) is found again by it instead of a second key being made.
pub const NAME_TAG: &str = "suoops-policy:key";

/// A key as DescribeKey shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeySeen {
    pub arn: String,
    pub id: String,
    /// Enabled, Disabled, PendingDeletion, PendingImport, Unavailable…
    pub state: String,
    /// CUSTOMER or AWS.
    pub manager: String,
    pub spec: String,
    pub usage: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    pub enabled: bool,
    /// None: the server did not say (AWS always does).
    pub period_days: Option<i32>,
}

/// One declared key as read: only what the policy mentions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyState {
    pub key: Observed<KeySeen>,
    pub rotation: Option<Observed<Rotation>>,
    pub policy: Option<Observed<Value>>,
}

#[derive(Debug, Clone)]
pub struct Key {
    pub spec: KmsKeySpec,
    pub region: String,
    pub state: KeyState,
}

/// Every declared key of the run.
pub struct KmsSeen {
    pub keys: Vec<Key>,
}

pub fn address(name: &str) -> Address {
    Address::resource("kms", name)
}

/// Read one key by its alias. `wait`: the key was created by this run and
/// its alias may not be visible yet (reobserve after apply).
async fn read_key(aws: &Aws, spec: &KmsKeySpec, region: &str, wait: bool) -> Result<KeyState, Fatal> {
    let c = aws.kms(region);
    let r = if wait {
        aws.call_until_visible(
            &ops::DESCRIBE_KEY,
            &format!("key {}", spec.alias),
            || c.describe_key().key_id(&spec.alias).send(),
            |e| e.code() == Some("NotFoundException"),
        )
        .await
    } else {
        aws.call(&ops::DESCRIBE_KEY, c.describe_key().key_id(&spec.alias).send()).await
    };
    let key = match r {
        Ok(out) => match out.key_metadata() {
            Some(m) => Observed::Present(KeySeen {
                arn: m.arn().unwrap_or_default().to_string(),
                id: m.key_id().to_string(),
                state: m.key_state().map_or("Unknown", |s| s.as_str()).to_string(),
                manager: m.key_manager().map_or("", |s| s.as_str()).to_string(),
                spec: m.key_spec().map_or("", |s| s.as_str()).to_string(),
                usage: m.key_usage().map_or("", |s| s.as_str()).to_string(),
                description: m.description().unwrap_or_default().to_string(),
                deletion_date: m.deletion_date().map(|d| d.to_string()),
            }),
            None => Observed::Absent,
        },
        Err(e) => classify(&e, &["NotFoundException"]).observed()?,
    };
    let Some(id) = key.present().map(|k| k.id.clone()) else {
        fn like<T>(k: &Observed<KeySeen>) -> Observed<T> {
            match k {
                Observed::Unknown { reason } => Observed::Unknown { reason: reason.clone() },
                _ => Observed::Absent,
            }
        }
        return Ok(KeyState {
            rotation: spec.rotation.map(|_| like(&key)),
            policy: spec.policy.as_ref().map(|_| like(&key)),
            key,
        });
    };
    let (rotation, policy) = tokio::join!(
        async {
            if spec.rotation.is_none() {
                return Ok(None);
            }
            match aws.call(&ops::GET_KEY_ROTATION_STATUS, c.get_key_rotation_status().key_id(&id).send()).await {
                Ok(o) => Ok(Some(Observed::Present(Rotation {
                    enabled: o.key_rotation_enabled(),
                    period_days: o.rotation_period_in_days(),
                }))),
                Err(e) => classify(&e, &["NotFoundException"]).observed().map(Some),
            }
        },
        async {
            if spec.policy.is_none() {
                return Ok(None);
            }
            read_policy(aws, &c, &id).await.map(Some)
        }
    );
    Ok(KeyState { key, rotation: rotation?, policy: policy? })
}

async fn read_policy(aws: &Aws, c: &aws_sdk_kms::Client, id: &str) -> Result<Observed<Value>, Fatal> {
    match aws.call(&ops::GET_KEY_POLICY, c.get_key_policy().key_id(id).policy_name("default").send()).await {
        Ok(o) => Ok(match o.policy().map(iamdoc::parse) {
            Some(Ok(v)) => Observed::Present(v),
            Some(Err(e)) => Observed::Unknown { reason: format!("key policy: {e}") },
            None => Observed::Present(json!({"Version": "2012-10-17", "Statement": []})),
        }),
        Err(e) => classify(&e, &["NotFoundException"]).observed(),
    }
}

async fn read_all(ctx: &Ctx<'_>, specs: &[(KmsKeySpec, bool)]) -> Result<KmsSeen, Fatal> {
    let aws = ctx.aws;
    let default = aws.default_region().unwrap_or("us-east-1").to_string();
    let mut keys: Vec<Key> = stream::iter(specs.iter().cloned())
        .map(|(spec, wait)| {
            let region = spec.region_or(&default).to_string();
            async move {
                let state = read_key(aws, &spec, &region, wait).await?;
                Ok::<_, Fatal>(Key { spec, region, state })
            }
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .try_collect()
        .await?;
    keys.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(KmsSeen { keys })
}

/// Every declared key, none of it read (`reason`).
fn unobserved(ctx: &Ctx<'_>, specs: &[KmsKeySpec], reason: &str) -> KmsSeen {
    let default = ctx.aws.default_region().unwrap_or("us-east-1");
    let keys = specs
        .iter()
        .map(|spec| Key {
            region: spec.region_or(default).to_string(),
            state: KeyState {
                key: Observed::unknown(reason),
                rotation: spec.rotation.map(|_| Observed::unknown(reason)),
                policy: spec.policy.as_ref().map(|_| Observed::unknown(reason)),
            },
            spec: spec.clone(),
        })
        .collect();
    KmsSeen { keys }
}

fn sid(st: &Value) -> Option<&str> {
    st.get("Sid").and_then(Value::as_str)
}

/// A statement by meaning, without its Sid.
fn meaning(st: &Value) -> Value {
    let mut c = iamdoc::statement(st);
    if let Value::Object(m) = &mut c {
        m.remove("Sid");
    }
    c
}

/// The declared statements the live policy lacks: judged by meaning, so an
/// equivalent statement under another Sid counts (as for the TLS statement).
pub fn missing_statements<'a>(want: &'a Value, live: Option<&Value>) -> Vec<&'a Value> {
    let have: Vec<Value> = live.map(|l| statements(l).into_iter().map(meaning).collect()).unwrap_or_default();
    statements(want).into_iter().filter(|st| !have.contains(&meaning(st))).collect()
}

/// The key policy to write: the live one with each missing declared
/// statement put in place of the live statement of the same Sid (or added);
/// every other statement kept as read.
pub fn merged_policy(want: &Value, live: &Value) -> Value {
    let missing = missing_statements(want, Some(live));
    let owned: BTreeSet<&str> = missing.iter().filter_map(|s| sid(s)).collect();
    let mut sts: Vec<Value> =
        statements(live).into_iter().filter(|s| !sid(s).is_some_and(|x| owned.contains(x))).cloned().collect();
    sts.extend(missing.into_iter().cloned());
    let mut out = live.clone();
    if let Value::Object(m) = &mut out {
        m.entry("Version").or_insert_with(|| json!("2012-10-17"));
        m.insert("Statement".into(), Value::Array(sts));
    } else {
        out = json!({"Version": "2012-10-17", "Statement": sts});
    }
    out
}

/// Why a present key cannot serve the policy (a person must act), if so.
fn unusable(k: &KeySeen) -> Option<String> {
    if k.state == "PendingDeletion" || k.state == "PendingReplicaDeletion" {
        return Some(format!(
            "the key {} is scheduled for deletion{}: cancel it (aws kms cancel-key-deletion --key-id {}) — the tool never cancels a deletion someone scheduled",
            k.arn,
            k.deletion_date.as_deref().map(|d| format!(" on {d}")).unwrap_or_default(),
            k.id
        ));
    }
    if k.manager != "CUSTOMER" {
        return Some(format!("the alias names an AWS-managed key ({}), which the tool cannot manage", k.arn));
    }
    // S3 encrypts only with symmetric encryption keys (AWS S3 user guide,
    // "Using server-side encryption with AWS KMS keys (SSE-KMS)").
    if (!k.spec.is_empty() && k.spec != "SYMMETRIC_DEFAULT") || (!k.usage.is_empty() && k.usage != "ENCRYPT_DECRYPT") {
        return Some(format!(
            "the key {} is {} for {}: S3 encrypts only with symmetric ENCRYPT_DECRYPT keys",
            k.arn, k.spec, k.usage
        ));
    }
    if !matches!(k.state.as_str(), "Enabled" | "Disabled" | "Creating") {
        return Some(format!("the key {} is {}", k.arn, k.state));
    }
    None
}

impl Key {
    /// The key's change; pure.
    fn change(&self) -> Change {
        let spec = &self.spec;
        let mut c = Change::new(address(&spec.name), Action::NoOp);
        let k = match &self.state.key {
            Observed::Unknown { reason } => {
                c.unknown.push(UnknownSetting { attribute: "key".into(), reason: reason.clone() });
                return c;
            }
            Observed::Absent => {
                c.action = Action::Create;
                c.attributes.push(AttrChange::new("alias", None, json!(spec.alias)));
                c.attributes.push(AttrChange::new("region", None, json!(self.region)));
                if let Some(d) = &spec.description {
                    c.attributes.push(AttrChange::new("description", None, json!(d)));
                }
                if let Some(r) = spec.rotation {
                    c.attributes.push(AttrChange::new("rotation", None, json!(r)));
                }
                if let Some(p) = spec.rotation_period_days {
                    c.attributes.push(AttrChange::new("rotation_period_days", None, json!(p)));
                }
                if let Some(p) = &spec.policy {
                    for st in statements(p) {
                        let name = format!("policy.{}", sid(st).unwrap_or("?"));
                        c.attributes.push(AttrChange::new(&name, None, iamdoc::statement(st)));
                    }
                    c.reason = Some("the key policy is the account's default plus these statements".into());
                }
                return c;
            }
            Observed::Present(k) => k,
        };
        if let Some(why) = unusable(k) {
            c.conflicts.push(why);
            return c;
        }
        if k.state == "Disabled" {
            c.attributes.push(AttrChange::new("enabled", Some(json!(false)), json!(true)));
        }
        if let Some(d) = spec.description.as_ref().filter(|d| **d != k.description) {
            c.attributes.push(AttrChange::new("description", Some(json!(k.description)), json!(d)));
        }
        match (&spec.rotation, &self.state.rotation) {
            (Some(_), Some(Observed::Unknown { reason })) => {
                c.unknown.push(UnknownSetting { attribute: "rotation".into(), reason: reason.clone() })
            }
            (Some(want), Some(Observed::Present(r))) => {
                if r.enabled != *want {
                    c.attributes.push(AttrChange::new("rotation", Some(json!(r.enabled)), json!(want)));
                }
                if let Some(p) = spec.rotation_period_days {
                    match r.period_days {
                        Some(live) if live == p => {}
                        Some(live) if r.enabled => {
                            c.attributes.push(AttrChange::new("rotation_period_days", Some(json!(live)), json!(p)))
                        }
                        _ if !r.enabled => c.attributes.push(AttrChange::new("rotation_period_days", None, json!(p))),
                        _ => c.unknown.push(UnknownSetting {
                            attribute: "rotation_period_days".into(),
                            reason: "the server does not report the rotation period".into(),
                        }),
                    }
                }
            }
            _ => {}
        }
        match (&spec.policy, &self.state.policy) {
            (Some(_), Some(Observed::Unknown { reason })) => {
                c.unknown.push(UnknownSetting { attribute: "policy".into(), reason: reason.clone() })
            }
            (Some(want), Some(Observed::Present(live))) => {
                for st in missing_statements(want, Some(live)) {
                    let s = sid(st).unwrap_or("?");
                    let before = statements(live).into_iter().find(|l| sid(l) == Some(s)).map(iamdoc::statement);
                    let mut a = AttrChange::new(&format!("policy.{s}"), before.clone(), iamdoc::statement(st));
                    a.diff = Some(iamdoc::diff_text(
                        before.map(|b| json!({"Statement": [b]})).as_ref(),
                        &json!({"Statement": [st]}),
                    ));
                    c.attributes.push(a);
                }
                let owned: Vec<&str> = statements(want).into_iter().filter_map(sid).collect();
                let bad = iamdoc::statements_with_deleted_principals(live, &owned);
                if !c.attributes.is_empty() && !bad.is_empty() {
                    c.conflicts.push(format!(
                        "the key policy has statements naming deleted principals: {}; KMS refuses the whole policy while they are there (remove or fix them, then run apply)",
                        bad.join("; ")
                    ));
                }
                let foreign: Vec<String> = statements(live)
                    .into_iter()
                    .filter(|l| !statements(want).iter().any(|w| sid(w).is_some() && sid(w) == sid(l)))
                    .map(|l| sid(l).unwrap_or("(no Sid)").to_string())
                    .collect();
                if !foreign.is_empty() {
                    c.reason = Some(format!("key policy also has: {}, kept", foreign.join(", ")));
                }
            }
            _ => {}
        }
        if !c.attributes.is_empty() {
            c.action = Action::Update;
        }
        c
    }
}

const KEY: ControlDef = ControlDef {
    id: "KMS-KEY",
    title: "KMS key exists and is enabled",
    rationale: "S3 encrypts every backup with the key: a missing, disabled or deleted key makes writes fail and backups unreadable (strategy: encryption at rest).",
    severity: Severity::High,
    objectives: &["ENCRYPTION-AT-REST"],
};
const ROTATION: ControlDef = ControlDef {
    id: "KMS-ROTATION",
    title: "KMS key rotation",
    rationale: "Rotating the key material limits what one exposed key version protects (AWS KMS developer guide, \"Rotating AWS KMS keys\"; strategy: encryption).",
    severity: Severity::Medium,
    objectives: &["ENCRYPTION-AT-REST"],
};
const POLICY: ControlDef = ControlDef {
    id: "KMS-POLICY",
    title: "Key policy grants what the policy says",
    rationale: "The roles that write, restore and replicate backups need the key; a key policy without them denies every write and restore.",
    severity: Severity::High,
    objectives: &[],
};

impl KmsSeen {
    fn controls_of(&self, changes: &[Change]) -> Vec<ControlResult> {
        let mut out = Vec::new();
        for k in &self.keys {
            let addr = address(&k.spec.name);
            let Some(change) = changes.iter().find(|c| c.address == addr) else { continue };
            let seen = k.state.key.present();
            let unknown = change.unknown.first().map(|u| format!("{}: {}", u.attribute, u.reason));
            let (status, detail) = match &k.state.key {
                Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone())),
                Observed::Absent => (
                    Status::Fail,
                    Some(format!(
                        "no key has the alias {} in {}: buckets encrypting with it cannot be written",
                        k.spec.alias, k.region
                    )),
                ),
                Observed::Present(s) => match unusable(s) {
                    Some(why) => (Status::Fail, Some(why)),
                    None if s.state == "Disabled" => (
                        Status::Fail,
                        Some(format!("the key {} is Disabled: every write to a bucket encrypted with it fails", s.arn)),
                    ),
                    None => (Status::Pass, None),
                },
            };
            out.push(KEY.result(
                &addr,
                status,
                json!({"alias": k.spec.alias, "region": k.region, "state": "Enabled"}),
                json!(seen),
                detail,
                "suoops-policy apply (creates or enables the key); a deletion someone scheduled is cancelled by hand",
                k.spec.line,
            ));
            let present = seen.is_some();
            if let Some(want) = k.spec.rotation {
                let differs: Vec<&str> = change
                    .attributes
                    .iter()
                    .filter(|a| a.name.starts_with("rotation"))
                    .map(|a| a.name.as_str())
                    .collect();
                let (status, detail) = if let Some(u) = unknown.as_ref().filter(|u| u.starts_with("rotation")) {
                    (Status::Unknown, Some(u.clone()))
                } else if !present {
                    (Status::Fail, Some("the key does not exist".to_string()))
                } else if !differs.is_empty() {
                    (Status::Fail, Some(format!("differs: {}", differs.join(", "))))
                } else {
                    (Status::Pass, None)
                };
                let observed = k.state.rotation.as_ref().and_then(|r| r.present()).map(|r| json!(r));
                out.push(ROTATION.result(
                    &addr,
                    status,
                    json!({"enabled": want, "period_days": k.spec.rotation_period_days}),
                    observed.unwrap_or(Value::Null),
                    detail,
                    "suoops-policy apply",
                    k.spec.line,
                ));
            }
            if let Some(want) = &k.spec.policy {
                let live = k.state.policy.as_ref().and_then(|p| p.present());
                let missing: Vec<String> =
                    missing_statements(want, live).into_iter().map(|s| sid(s).unwrap_or("?").to_string()).collect();
                let (status, detail) = if let Some(u) = unknown.as_ref().filter(|u| u.starts_with("policy")) {
                    (Status::Unknown, Some(u.clone()))
                } else if !present {
                    (Status::Fail, Some("the key does not exist".to_string()))
                } else if !missing.is_empty() {
                    (Status::Fail, Some(format!("the key policy lacks: {}", missing.join(", "))))
                } else {
                    (Status::Pass, None)
                };
                out.push(POLICY.result(
                    &addr,
                    status,
                    iamdoc::canonical(want),
                    live.map(iamdoc::canonical).unwrap_or(Value::Null),
                    detail,
                    "suoops-policy apply (writes the missing statements; the others are kept)",
                    k.spec.line,
                ));
            }
        }
        out
    }
}

const CHANGED: &str = "changed since it was observed: not replaced (run plan again)";

/// Transient right after CreateKey / CreateRole: the new key is not yet
/// known everywhere, or a key policy names a role IAM has not propagated
/// ("Policy contains a statement with one or more invalid principals";
/// terraform-provider-aws retries both, internal/service/kms/key.go and
/// key_policy.go, for IAM's propagation time).
fn transient(e: &impl ProvideErrorMetadata, created: bool) -> bool {
    let code = e.code().unwrap_or("");
    (created && code == "NotFoundException")
        || (code == "MalformedPolicyDocumentException"
            && e.message().unwrap_or("").to_lowercase().contains("principal"))
}

/// A key tagged as this policy's `name` that an earlier run created but
/// never gave its alias (ListKeys, then each key's tags).
async fn orphan(aws: &Aws, c: &aws_sdk_kms::Client, name: &str) -> Result<Option<String>, String> {
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .call(&ops::LIST_KEYS, c.list_keys().set_marker(marker.clone()).send())
            .await
            .map_err(|e| classify(&e, &[]).reason())?;
        for k in out.keys() {
            let Some(id) = k.key_id() else { continue };
            let tags = match aws.call(&ops::LIST_RESOURCE_TAGS, c.list_resource_tags().key_id(id).send()).await {
                Ok(t) => t,
                // AWS-managed keys and keys we may not read: not ours.
                Err(_) => continue,
            };
            if tags.tags().iter().any(|t| t.tag_key() == NAME_TAG && t.tag_value() == name) {
                let d = aws.call(&ops::DESCRIBE_KEY, c.describe_key().key_id(id).send()).await;
                let usable =
                    d.ok().and_then(|d| d.key_metadata().map(|m| m.key_state().map(|s| s.as_str().to_string())));
                // Only an enabled one: a half-made key someone disabled (or
                // scheduled for deletion) is left alone.
                if usable.flatten().is_some_and(|s| s == "Enabled") {
                    return Ok(Some(id.to_string()));
                }
            }
        }
        match out.next_marker().filter(|_| out.truncated()) {
            Some(m) => marker = Some(m.to_string()),
            None => return Ok(None),
        }
    }
}

async fn apply_key(aws: &Aws, key: &Key, change: &Change) -> Vec<StepOutcome> {
    let spec = &key.spec;
    let c = aws.kms(&key.region);
    let touches = |p: &str| change.attributes.iter().any(|a| a.name == p || a.name.starts_with(&format!("{p}.")));
    let mut out = Vec::new();
    let created = change.action == Action::Create;
    let mut adopted_key = false;
    let id = match key.state.key.present() {
        Some(k) => k.id.clone(),
        None => {
            let adopted = match orphan(aws, &c, &spec.name).await {
                Ok(a) => a,
                Err(e) => {
                    out.push(StepOutcome { step: "create key", result: Err(e) });
                    return out;
                }
            };
            let id = match adopted {
                Some(id) => {
                    out.push(StepOutcome { step: "adopt the key an earlier run created", result: Ok(()) });
                    adopted_key = true;
                    id
                }
                None => {
                    // No policy on create: KMS gives the default key policy
                    // (the account may manage the key through IAM), and the
                    // declared statements are merged into it below (AWS KMS
                    // developer guide, "Default key policy").
                    let tag = Tag::builder().tag_key(NAME_TAG).tag_value(&spec.name).build();
                    let r = match tag {
                        Ok(tag) => aws
                            .call(
                                &ops::CREATE_KEY,
                                c.create_key()
                                    .set_description(spec.description.clone())
                                    .key_spec(KeySpec::SymmetricDefault)
                                    .key_usage(KeyUsageType::EncryptDecrypt)
                                    .tags(tag)
                                    .send(),
                            )
                            .await
                            .map_err(|e| classify(&e, &[]).reason())
                            .and_then(|o| {
                                o.key_metadata()
                                    .map(|m| m.key_id().to_string())
                                    .ok_or_else(|| "no key id in the reply".into())
                            }),
                        Err(e) => Err(e.to_string()),
                    };
                    match r {
                        Ok(id) => {
                            out.push(StepOutcome { step: "create key", result: Ok(()) });
                            id
                        }
                        Err(e) => {
                            out.push(StepOutcome { step: "create key", result: Err(e) });
                            return out;
                        }
                    }
                }
            };
            let r = aws
                .call_until_visible(
                    &ops::CREATE_ALIAS,
                    &format!("key {}", spec.alias),
                    || c.create_alias().alias_name(&spec.alias).target_key_id(&id).send(),
                    |e| transient(e, true),
                )
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, &[]).reason());
            let failed = r.is_err();
            out.push(StepOutcome { step: crate::model::steps::KMS_ALIAS.name, result: r });
            if failed {
                return out;
            }
            id
        }
    };
    macro_rules! step {
        ($op:expr, $label:expr, $make:expr) => {{
            let r = aws
                .call_until_visible($op, &format!("key {}", spec.alias), || $make, |e| transient(e, created))
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, &[]).reason());
            out.push(StepOutcome { step: $label, result: r });
        }};
    }
    if touches("enabled") {
        step!(&ops::ENABLE_KEY, "enable key", c.enable_key().key_id(&id).send());
    }
    // A new key got its description from CreateKey; an adopted one may
    // carry an older one.
    if touches("description") && (!created || adopted_key) {
        step!(
            &ops::UPDATE_KEY_DESCRIPTION,
            "description",
            c.update_key_description().key_id(&id).description(spec.description.clone().unwrap_or_default()).send()
        );
    }
    if touches("rotation") || touches("rotation_period_days") {
        match spec.rotation {
            Some(true) => step!(
                &ops::ENABLE_KEY_ROTATION,
                "rotation",
                c.enable_key_rotation().key_id(&id).set_rotation_period_in_days(spec.rotation_period_days).send()
            ),
            Some(false) => step!(&ops::DISABLE_KEY_ROTATION, "rotation", c.disable_key_rotation().key_id(&id).send()),
            None => {}
        }
    }
    if let (Some(want), true) = (&spec.policy, touches("policy")) {
        let seen = key.state.policy.as_ref().and_then(|p| p.present());
        let r = async {
            let now = match read_policy(aws, &c, &id).await.map_err(|f| f.message)? {
                Observed::Present(v) => v,
                other => {
                    return Err(format!(
                        "cannot re-read the key policy: {}",
                        other.unknown_reason().unwrap_or("absent")
                    ))
                }
            };
            if let Some(seen) = seen {
                if !iamdoc::same(seen, &now) {
                    return Err(format!("the key policy {CHANGED}"));
                }
            }
            let doc = merged_policy(want, &now).to_string();
            aws.call_until_visible(
                &ops::PUT_KEY_POLICY,
                &format!("the principals of the key policy of {}", spec.alias),
                || c.put_key_policy().key_id(&id).policy_name("default").policy(&doc).send(),
                |e| transient(e, created),
            )
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, &[]).reason())
        }
        .await;
        out.push(StepOutcome { step: "key policy", result: r });
    }
    out
}

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
