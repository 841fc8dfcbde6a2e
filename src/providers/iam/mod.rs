//! IAM roles and customer-managed policies: observe (only what the policy
//! mentions), a pure diff with documents compared by meaning and
//! attachment/inline-policy ownership, and apply. IAM is applied before any
//! S3 change, so roles exist before replication names them.

pub(crate) mod import;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::aws::ops;
use crate::iamdoc as doc;
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use futures::future::{FutureExt, LocalBoxFuture};

use crate::aws::{classify, ApiError, Aws, Op};
use crate::model::Applied;
use crate::model::{Action, Address, AttrChange, Change, Fatal, Observed, StepOutcome, UnknownSetting};
use crate::policy::Policy;
use crate::policy::{Iam as IamSpec, ManagedPolicySpec, RoleSpec};
use crate::providers::{Ctx, ImportRequest, Imported, Observation, Prior, Provider};

/// A role as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoleFacts {
    pub arn: String,
    pub path: String,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub tags: BTreeMap<String, String>,
    pub trust: Value,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoleState {
    pub role: Observed<RoleFacts>,
    /// Read when the policy names inline policies or says `exclusive`.
    pub inline: Option<Observed<BTreeMap<String, Value>>>,
    /// Attached policy ARNs; read when the policy names managed policies or
    /// says `exclusive`.
    pub attached: Option<Observed<Vec<String>>>,
}

/// A customer-managed policy as read: ARN, default version and document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PolicyFacts {
    pub arn: String,
    pub version: String,
    pub document: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IamState {
    pub roles: Vec<(RoleSpec, RoleState)>,
    pub policies: Vec<(ManagedPolicySpec, Observed<PolicyFacts>)>,
}

/// Observe every role and managed policy the policy names.
pub async fn observe(aws: &Aws, iam: &IamSpec) -> Result<IamState, Fatal> {
    let roles = futures::future::try_join_all(
        iam.roles.iter().map(|r| async move { observe_role(aws, r).await.map(|s| (r.clone(), s)) }),
    )
    .await?;
    let mut policies = Vec::new();
    if !iam.policies.is_empty() {
        let local = match list_local_policies(aws).await? {
            Observed::Present(m) => m,
            other => {
                let reason = other.unknown_reason().unwrap_or("unreadable").to_string();
                let unknown = iam.policies.iter().map(|p| (p.clone(), Observed::Unknown { reason: reason.clone() }));
                return Ok(IamState { roles, policies: unknown.collect() });
            }
        };
        policies = futures::future::try_join_all(iam.policies.iter().map(|p| {
            let found = local.get(&(p.path.clone(), p.name.clone())).cloned();
            async move {
                let state = match found {
                    None => Observed::Absent,
                    Some((arn, version)) => policy_version(aws, &arn, &version).await?,
                };
                Ok::<_, Fatal>((p.clone(), state))
            }
        }))
        .await?;
    }
    Ok(IamState { roles, policies })
}

/// What the policy names, none of it read (`reason`).
fn unobserved(iam: &IamSpec, reason: &str) -> IamState {
    let roles = iam
        .roles
        .iter()
        .map(|r| {
            let everything = r.exclusive || r.absent;
            let state = RoleState {
                role: Observed::unknown(reason),
                inline: (r.inline_policies.is_some() || everything).then(|| Observed::unknown(reason)),
                attached: (r.managed_policies.is_some() || everything).then(|| Observed::unknown(reason)),
            };
            (r.clone(), state)
        })
        .collect();
    IamState { roles, policies: iam.policies.iter().map(|p| (p.clone(), Observed::unknown(reason))).collect() }
}

async fn observe_role(aws: &Aws, spec: &RoleSpec) -> Result<RoleState, Fatal> {
    let c = aws.iam();
    let role = match aws.call(&ops::GET_ROLE, c.get_role().role_name(&spec.name).send()).await {
        Ok(out) => match out.role() {
            Some(r) => {
                let trust = match r.assume_role_policy_document().map(doc::parse) {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => {
                        return Ok(RoleState {
                            role: Observed::Unknown { reason: format!("trust document: {e}") },
                            inline: None,
                            attached: None,
                        })
                    }
                    None => Value::Null,
                };
                Observed::Present(RoleFacts {
                    arn: r.arn().to_string(),
                    path: r.path().to_string(),
                    description: r.description().map(str::to_string),
                    max_session_duration: r.max_session_duration().map(i64::from),
                    tags: r.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
                    trust,
                })
            }
            None => Observed::Absent,
        },
        Err(e) => classify(&e, &["NoSuchEntity"]).observed()?,
    };
    let wants_inline = spec.inline_policies.is_some() || spec.exclusive || spec.absent;
    let wants_attached = spec.managed_policies.is_some() || spec.exclusive || spec.absent;
    fn like<T>(r: &Observed<RoleFacts>) -> Observed<T> {
        match r {
            Observed::Unknown { reason } => Observed::Unknown { reason: reason.clone() },
            _ => Observed::Absent,
        }
    }
    if role.present().is_none() {
        return Ok(RoleState {
            inline: wants_inline.then(|| like(&role)),
            attached: wants_attached.then(|| like(&role)),
            role,
        });
    }
    let (inline, attached) = tokio::join!(
        async {
            if wants_inline {
                Some(inline_policies(aws, &spec.name).await)
            } else {
                None
            }
        },
        async {
            if wants_attached {
                Some(attached_policies(aws, &spec.name).await)
            } else {
                None
            }
        }
    );
    Ok(RoleState { role, inline: inline.transpose()?, attached: attached.transpose()? })
}

async fn inline_policies(aws: &Aws, role: &str) -> Result<Observed<BTreeMap<String, Value>>, Fatal> {
    let c = aws.iam();
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        match aws
            .call(&ops::LIST_ROLE_POLICIES, c.list_role_policies().role_name(role).set_marker(marker.clone()).send())
            .await
        {
            Ok(out) => {
                names.extend(out.policy_names().iter().cloned());
                marker = out.marker().map(str::to_string);
                if !out.is_truncated() || marker.is_none() {
                    break;
                }
            }
            Err(e) => return classify(&e, &["NoSuchEntity"]).observed(),
        }
    }
    let docs = futures::future::try_join_all(names.into_iter().map(|n| async move {
        match aws.call(&ops::GET_ROLE_POLICY, c.get_role_policy().role_name(role).policy_name(&n).send()).await {
            Ok(out) => Ok(doc::parse(out.policy_document())
                .map(|d| (n.clone(), d))
                .map_err(|e| format!("inline policy {n}: {e}"))),
            Err(e) => match classify(&e, &["NoSuchEntity"]) {
                ApiError::Fatal(m) => Err(Fatal::api(m)),
                other => Ok(Err(format!("inline policy {n}: {}", other.reason()))),
            },
        }
    }))
    .await?;
    let mut out = BTreeMap::new();
    for d in docs {
        match d {
            Ok((n, v)) => {
                out.insert(n, v);
            }
            Err(reason) => return Ok(Observed::Unknown { reason }),
        }
    }
    Ok(Observed::Present(out))
}

async fn attached_policies(aws: &Aws, role: &str) -> Result<Observed<Vec<String>>, Fatal> {
    let c = aws.iam();
    let mut arns = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        match aws
            .call(
                &ops::LIST_ATTACHED_ROLE_POLICIES,
                c.list_attached_role_policies().role_name(role).set_marker(marker.clone()).send(),
            )
            .await
        {
            Ok(out) => {
                arns.extend(out.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)));
                marker = out.marker().map(str::to_string);
                if !out.is_truncated() || marker.is_none() {
                    break;
                }
            }
            Err(e) => return classify(&e, &["NoSuchEntity"]).observed(),
        }
    }
    arns.sort();
    Ok(Observed::Present(arns))
}

/// Customer-managed policies: (path, name) → (ARN, default version).
async fn list_local_policies(aws: &Aws) -> Result<Observed<BTreeMap<(String, String), (String, String)>>, Fatal> {
    let c = aws.iam();
    let mut out = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let req = c.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).set_marker(marker.clone());
        match aws.call(&ops::LIST_POLICIES, req.send()).await {
            Ok(page) => {
                for p in page.policies() {
                    if let (Some(name), Some(arn)) = (p.policy_name(), p.arn()) {
                        out.insert(
                            (p.path().unwrap_or("/").to_string(), name.to_string()),
                            (arn.to_string(), p.default_version_id().unwrap_or("v1").to_string()),
                        );
                    }
                }
                marker = page.marker().map(str::to_string);
                if !page.is_truncated() || marker.is_none() {
                    break;
                }
            }
            Err(e) => return classify(&e, &[]).observed(),
        }
    }
    Ok(Observed::Present(out))
}

async fn policy_version(aws: &Aws, arn: &str, version: &str) -> Result<Observed<PolicyFacts>, Fatal> {
    match aws
        .call(&ops::GET_POLICY_VERSION, aws.iam().get_policy_version().policy_arn(arn).version_id(version).send())
        .await
    {
        Ok(out) => {
            let text = out.policy_version().and_then(|v| v.document()).unwrap_or("{}");
            Ok(match doc::parse(text) {
                Ok(document) => {
                    Observed::Present(PolicyFacts { arn: arn.to_string(), version: version.to_string(), document })
                }
                Err(e) => Observed::Unknown { reason: format!("policy document: {e}") },
            })
        }
        Err(e) => classify(&e, &["NoSuchEntity"]).observed(),
    }
}

pub fn role_address(name: &str) -> Address {
    Address::resource("iam.role", name)
}

pub fn policy_address(name: &str) -> Address {
    Address::resource("iam.policy", name)
}

fn doc_change(name: &str, before: Option<&Value>, after: &Value) -> AttrChange {
    let mut a = AttrChange::new(name, before.map(doc::canonical), doc::canonical(after));
    a.diff = Some(doc::diff_text(before, after));
    a
}

/// The name of a managed policy ARN (`…:policy/PATH/NAME`).
fn arn_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Changes for every role and managed policy.
pub fn diff(state: &IamState) -> Vec<Change> {
    let mut out = Vec::new();
    for (spec, seen) in &state.policies {
        let mut c = Change::new(policy_address(&spec.name), Action::NoOp);
        match seen {
            Observed::Unknown { reason } => {
                c.unknown.push(UnknownSetting { attribute: "policy".into(), reason: reason.clone() })
            }
            Observed::Absent => {
                c.action = Action::Create;
                c.attributes.push(doc_change("document", None, &spec.document));
            }
            Observed::Present(f) if !doc::same(&f.document, &spec.document) => {
                c.action = Action::Update;
                c.reason = Some(format!("a new default version replaces {}", f.version));
                c.attributes.push(doc_change("document", Some(&f.document), &spec.document));
            }
            Observed::Present(_) => {}
        }
        out.push(c);
    }
    for (spec, seen) in &state.roles {
        out.extend(diff_role(spec, seen, &state.policies));
    }
    crate::model::block_destruction_on_unknown(&mut out);
    out
}

fn diff_role(
    spec: &RoleSpec,
    seen: &RoleState,
    policies: &[(ManagedPolicySpec, Observed<PolicyFacts>)],
) -> Vec<Change> {
    let mut head = Change::new(role_address(&spec.name), Action::NoOp);
    let facts = match &seen.role {
        Observed::Unknown { reason } => {
            head.unknown.push(UnknownSetting { attribute: "role".into(), reason: reason.clone() });
            return vec![head];
        }
        Observed::Absent if spec.absent => return vec![head],
        Observed::Present(_) if spec.absent => {
            head.action = Action::Delete;
            head.destructive = true;
            head.reason =
                Some("state: absent; its inline policies are deleted and its managed policies detached first".into());
            return vec![head];
        }
        Observed::Absent => {
            head.action = Action::Create;
            None
        }
        Observed::Present(f) => Some(f),
    };
    if let (Some(want), Some(f)) = (&spec.path, facts) {
        if &f.path != want {
            head.conflicts.push(format!(
                "the role's path is {} but the policy says {want}; IAM cannot change a role's path",
                f.path
            ));
        }
    }
    if let Some(want) = &spec.path {
        if facts.is_none() {
            head.attributes.push(AttrChange::new("path", None, json!(want)));
        }
    }
    if let Some(want) = &spec.description {
        let live = facts.and_then(|f| f.description.as_deref());
        if live != Some(want.as_str()) {
            head.attributes.push(AttrChange::new("description", live.map(|d| json!(d)), json!(want)));
        }
    }
    if let Some(want) = spec.max_session_duration {
        let live = facts.and_then(|f| f.max_session_duration);
        if live != Some(want) && !(live.is_none() && want == 3600 && facts.is_some()) {
            head.attributes.push(AttrChange::new("max_session_duration", live.map(|d| json!(d)), json!(want)));
        }
    }
    if let Some(want) = &spec.tags {
        for (k, v) in want {
            let live = facts.and_then(|f| f.tags.get(k));
            if live != Some(v) {
                head.attributes.push(AttrChange::new(&format!("tags.{k}"), live.map(|l| json!(l)), json!(v)));
            }
        }
    }
    if let Some(want) = &spec.trust {
        let live = facts.map(|f| &f.trust);
        if !live.is_some_and(|l| doc::same(l, want)) {
            head.attributes.push(doc_change("trust", live, want));
        }
    }
    if head.action == Action::NoOp && !head.attributes.is_empty() {
        head.action = Action::Update;
    }
    let mut out = vec![head];
    // Inline policies: named ones are owned; the rest are kept unless exclusive.
    if let Some(inline) = &seen.inline {
        match inline {
            Observed::Unknown { reason } => {
                out[0].unknown.push(UnknownSetting { attribute: "inline policies".into(), reason: reason.clone() })
            }
            other => {
                let empty = BTreeMap::new();
                let live = other.present().unwrap_or(&empty);
                let want = spec.inline_policies.clone().unwrap_or_default();
                for (name, doc_want) in &want {
                    let addr = role_address(&spec.name).child("inline").child(name);
                    let mut c = Change::new(addr, Action::NoOp);
                    match live.get(name) {
                        None => {
                            c.action = Action::Create;
                            c.attributes.push(doc_change("document", None, doc_want));
                        }
                        Some(l) if !doc::same(l, doc_want) => {
                            c.action = Action::Update;
                            c.attributes.push(doc_change("document", Some(l), doc_want));
                        }
                        Some(_) => {}
                    }
                    out.push(c);
                }
                for name in live.keys().filter(|n| !want.contains_key(*n)) {
                    let mut c = Change::new(role_address(&spec.name).child("inline").child(name), Action::NoOp);
                    if spec.exclusive {
                        c.action = Action::Delete;
                        c.destructive = true;
                        c.reason = Some("not in the policy and the role is exclusive".into());
                    } else {
                        c.reason = Some("not managed by this policy, kept".into());
                    }
                    out.push(c);
                }
            }
        }
    }
    if let Some(attached) = &seen.attached {
        match attached {
            Observed::Unknown { reason } => {
                out[0].unknown.push(UnknownSetting { attribute: "managed policies".into(), reason: reason.clone() })
            }
            other => {
                let empty = Vec::new();
                let live = other.present().unwrap_or(&empty);
                let want: Vec<&String> = spec.managed_policies.iter().flatten().collect();
                let resolve = |w: &str| -> Option<String> {
                    if w.starts_with("arn:") {
                        Some(w.to_string())
                    } else {
                        policies.iter().find(|(p, _)| p.name == w).and_then(|(_, o)| o.present().map(|f| f.arn.clone()))
                    }
                };
                let mut wanted_arns = BTreeSet::new();
                for w in want {
                    let arn = resolve(w);
                    let shown = arn.clone().unwrap_or_else(|| format!("(known after apply: policy {w})"));
                    let mut c =
                        Change::new(role_address(&spec.name).child("attachment").child(arn_name(w)), Action::NoOp);
                    if !arn.as_ref().is_some_and(|a| live.contains(a)) {
                        c.action = Action::Create;
                        c.attributes.push(AttrChange::new("policy_arn", None, json!(shown)));
                    }
                    if let Some(a) = arn {
                        wanted_arns.insert(a);
                    }
                    out.push(c);
                }
                for arn in live.iter().filter(|a| !wanted_arns.contains(*a)) {
                    let mut c =
                        Change::new(role_address(&spec.name).child("attachment").child(arn_name(arn)), Action::NoOp);
                    if spec.exclusive {
                        c.action = Action::Delete;
                        c.destructive = true;
                        c.attributes.push(AttrChange::new("policy_arn", Some(json!(arn)), Value::Null));
                        c.reason = Some("not in the policy and the role is exclusive".into());
                    } else {
                        c.reason = Some(format!("{arn}: not managed by this policy, kept"));
                    }
                    out.push(c);
                }
            }
        }
    }
    out
}

/// What apply did, per role or policy.
pub struct IamApplied {
    pub address: Address,
    pub steps: Vec<StepOutcome>,
}

fn err_text<E>(e: &aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::http::Response>) -> String
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(e, &[]).reason()
}

/// Apply IAM changes: managed policies first (roles attach them), then
/// roles. Returns each resource's steps.
pub async fn apply(aws: &Aws, state: &IamState, changes: &[Change]) -> Vec<IamApplied> {
    let c = aws.iam();
    let mut out = Vec::new();
    let mut created_arns: BTreeMap<String, String> = BTreeMap::new();
    let actionable = |addr: &Address| changes.iter().any(|x| &x.address == addr && x.is_actionable());
    for (spec, seen) in &state.policies {
        let addr = policy_address(&spec.name);
        if !actionable(&addr) {
            continue;
        }
        let document = doc::for_write(&spec.document);
        let step = match seen {
            Observed::Absent => {
                let r = aws
                    .call(
                        &ops::CREATE_POLICY,
                        c.create_policy()
                            .policy_name(&spec.name)
                            .path(&spec.path)
                            .set_description(spec.description.clone())
                            .policy_document(&document)
                            .send(),
                    )
                    .await;
                match r {
                    Ok(o) => {
                        if let Some(arn) = o.policy().and_then(|p| p.arn()) {
                            created_arns.insert(spec.name.clone(), arn.to_string());
                        }
                        StepOutcome { step: "create policy", result: Ok(()) }
                    }
                    Err(e) => StepOutcome { step: "create policy", result: Err(err_text(&e)) },
                }
            }
            Observed::Present(f) => {
                StepOutcome { step: "new default version", result: new_version(aws, &f.arn, &document).await }
            }
            Observed::Unknown { .. } => continue,
        };
        out.push(IamApplied { address: addr, steps: vec![step] });
    }
    for (spec, seen) in &state.roles {
        let addr = role_address(&spec.name);
        let prefix = format!("{}.", addr.as_str());
        let mine: Vec<&Change> =
            changes.iter().filter(|x| x.address == addr || x.address.as_str().starts_with(&prefix)).collect();
        if !mine.iter().any(|x| x.is_actionable()) || mine.first().is_some_and(|h| !h.conflicts.is_empty()) {
            continue;
        }
        let steps = apply_role(aws, spec, seen, &mine, state, &created_arns).await;
        out.push(IamApplied { address: addr, steps });
    }
    out
}

/// CreatePolicyVersion as default; when IAM's limit of 5 versions is
/// reached, the oldest non-default version is deleted first.
async fn new_version(aws: &Aws, arn: &str, document: &str) -> Result<(), String> {
    let c = aws.iam();
    let versions = aws
        .call(&ops::LIST_POLICY_VERSIONS, c.list_policy_versions().policy_arn(arn).send())
        .await
        .map_err(|e| err_text(&e))?;
    if versions.versions().len() >= 5 {
        let mut old: Vec<_> = versions.versions().iter().filter(|v| !v.is_default_version()).collect();
        old.sort_by_key(|v| v.create_date().map(|d| (d.secs(), d.subsec_nanos())));
        if let Some(oldest) = old.first().and_then(|v| v.version_id()) {
            aws.call(&ops::DELETE_POLICY_VERSION, c.delete_policy_version().policy_arn(arn).version_id(oldest).send())
                .await
                .map_err(|e| err_text(&e))?;
        }
    }
    aws.call(
        &ops::CREATE_POLICY_VERSION,
        c.create_policy_version().policy_arn(arn).policy_document(document).set_as_default(true).send(),
    )
    .await
    .map(|_| ())
    .map_err(|e| err_text(&e))
}

async fn apply_role(
    aws: &Aws,
    spec: &RoleSpec,
    seen: &RoleState,
    mine: &[&Change],
    state: &IamState,
    created_arns: &BTreeMap<String, String>,
) -> Vec<StepOutcome> {
    let c = aws.iam();
    let name = spec.name.as_str();
    let mut steps = Vec::new();
    // A role this run creates may answer NoSuchEntity for a while (IAM is
    // eventually consistent; AWS IAM user guide, "Troubleshoot IAM: changes
    // that I make are not always immediately visible";
    // terraform-provider-aws internal/service/iam/role.go retries it): its
    // later steps wait, bounded by --wait.
    let created = mine[0].action == Action::Create;
    macro_rules! step {
        ($op:expr, $label:expr, $fut:expr) => {{
            let r = aws
                .call_until_visible(
                    $op,
                    &format!("role {name}"),
                    || $fut,
                    |e| created && aws_sdk_iam::error::ProvideErrorMetadata::code(e) == Some("NoSuchEntity"),
                )
                .await
                .map(|_| ())
                .map_err(|e| err_text(&e));
            let failed = r.is_err();
            steps.push(StepOutcome { step: $label, result: r });
            if failed {
                return steps;
            }
        }};
    }
    let head = mine[0];
    if head.action == Action::Delete {
        for pol in seen
            .inline
            .as_ref()
            .and_then(|o| o.present())
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            step!(
                &ops::DELETE_ROLE_POLICY,
                "delete inline policy",
                c.delete_role_policy().role_name(name).policy_name(&pol).send()
            );
        }
        for arn in seen.attached.as_ref().and_then(|o| o.present()).cloned().unwrap_or_default() {
            step!(
                &ops::DETACH_ROLE_POLICY,
                "detach managed policy",
                c.detach_role_policy().role_name(name).policy_arn(&arn).send()
            );
        }
        step!(&ops::DELETE_ROLE, "delete role", c.delete_role().role_name(name).send());
        return steps;
    }
    let has = |attr: &str| head.attributes.iter().any(|a| a.name == attr || a.name.starts_with(&format!("{attr}.")));
    let trust = spec.trust.as_ref().map(doc::for_write).unwrap_or_default();
    let tags: Vec<aws_sdk_iam::types::Tag> = spec
        .tags
        .iter()
        .flatten()
        .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
        .collect();
    if head.action == Action::Create {
        step!(
            &ops::CREATE_ROLE,
            crate::model::steps::IAM_CREATE_ROLE.name,
            c.create_role()
                .role_name(name)
                .assume_role_policy_document(&trust)
                .set_path(spec.path.clone())
                .set_description(spec.description.clone())
                .set_max_session_duration(spec.max_session_duration.map(|d| i32::try_from(d).unwrap_or(3600)))
                .set_tags((!tags.is_empty()).then(|| tags.clone()))
                .send()
        );
    } else {
        if has("trust") {
            step!(
                &ops::UPDATE_ASSUME_ROLE_POLICY,
                "trust policy",
                c.update_assume_role_policy().role_name(name).policy_document(&trust).send()
            );
        }
        if has("description") || has("max_session_duration") {
            // The setting the policy does not name is sent as read, so
            // UpdateRole cannot reset it (field-level ownership).
            let live = seen.role.present();
            let description = spec.description.clone().or_else(|| live.and_then(|f| f.description.clone()));
            let duration = spec.max_session_duration.or_else(|| live.and_then(|f| f.max_session_duration));
            step!(
                &ops::UPDATE_ROLE,
                "description / session duration",
                c.update_role()
                    .role_name(name)
                    .set_description(description.clone())
                    .set_max_session_duration(duration.map(|d| i32::try_from(d).unwrap_or(3600)))
                    .send()
            );
        }
        if has("tags") {
            step!(&ops::TAG_ROLE, "tags", c.tag_role().role_name(name).set_tags(Some(tags.clone())).send());
        }
    }
    for ch in mine.iter().skip(1).filter(|x| x.is_actionable()) {
        let Some((kind, item)) =
            ch.address.as_str().strip_prefix(&format!("iam.role.{name}.")).and_then(|r| r.split_once('.'))
        else {
            continue;
        };
        match (kind, ch.action) {
            ("inline", Action::Delete) => {
                step!(
                    &ops::DELETE_ROLE_POLICY,
                    "delete inline policy",
                    c.delete_role_policy().role_name(name).policy_name(item).send()
                )
            }
            ("inline", _) => {
                let text =
                    spec.inline_policies.as_ref().and_then(|m| m.get(item)).map(doc::for_write).unwrap_or_default();
                step!(
                    &ops::PUT_ROLE_POLICY,
                    "inline policy",
                    c.put_role_policy().role_name(name).policy_name(item).policy_document(&text).send()
                );
            }
            ("attachment", Action::Delete) => {
                let arn = ch
                    .attributes
                    .first()
                    .and_then(|a| a.before.as_ref())
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                step!(
                    &ops::DETACH_ROLE_POLICY,
                    "detach managed policy",
                    c.detach_role_policy().role_name(name).policy_arn(&arn).send()
                );
            }
            ("attachment", _) => {
                let want =
                    spec.managed_policies.iter().flatten().find(|w| arn_name(w) == item).cloned().unwrap_or_default();
                let arn = if want.starts_with("arn:") {
                    Some(want.clone())
                } else {
                    created_arns.get(&want).cloned().or_else(|| {
                        state
                            .policies
                            .iter()
                            .find(|(p, _)| p.name == want)
                            .and_then(|(_, o)| o.present().map(|f| f.arn.clone()))
                    })
                };
                match arn {
                    Some(arn) => {
                        step!(
                            &ops::ATTACH_ROLE_POLICY,
                            "attach managed policy",
                            c.attach_role_policy().role_name(name).policy_arn(&arn).send()
                        )
                    }
                    None => {
                        steps.push(StepOutcome {
                            step: "attach managed policy",
                            result: Err(format!("policy `{want}` has no ARN (was it created?)")),
                        });
                        return steps;
                    }
                }
            }
            _ => {}
        }
    }
    steps
}

// The IAM controls gate the access objectives: they are judged from the
// declared role documents only when these pass.
const ROLE: ControlDef = ControlDef {
    id: "IAM-ROLE",
    title: "Backup role exists as declared",
    rationale:
        "Only the backup role may write backups and only the restore role may read them (strategy: access control).",
    severity: Severity::High,
    objectives: &["RTO-60MIN-READINESS", "LEAST-PRIVILEGE"],
};
const TRUST: ControlDef = ControlDef {
    id: "IAM-TRUST",
    title: "Who may assume the role",
    rationale: "The trust policy decides who acts as the backup or restore role (strategy: access control).",
    severity: Severity::High,
    objectives: &["RTO-60MIN-READINESS", "LEAST-PRIVILEGE"],
};
const POLICY: ControlDef = ControlDef {
    id: "IAM-POLICY",
    title: "Role permissions",
    rationale: "The writer can put backups but not read or delete them; the restore role can read but not write (strategy: access control).",
    severity: Severity::High,
    objectives: &["RTO-60MIN-READINESS", "LEAST-PRIVILEGE"],
};

/// Audit controls for roles: existence/settings, trust, permissions.
pub fn controls(state: &IamState, changes: &[Change]) -> Vec<ControlResult> {
    let mut out = Vec::new();
    for (spec, seen) in &state.roles {
        let addr = role_address(&spec.name);
        let prefix = format!("{}.", addr.as_str());
        let mine: Vec<&Change> =
            changes.iter().filter(|c| c.address == addr || c.address.as_str().starts_with(&prefix)).collect();
        let Some(head) = mine.first() else { continue };
        let unknown = head.unknown.first().map(|u| format!("{}: {}", u.attribute, u.reason));
        let push = |out: &mut Vec<ControlResult>,
                    def: &ControlDef,
                    status: Status,
                    expected: Value,
                    observed: Value,
                    detail: Option<String>| {
            out.push(def.result(&addr, status, expected, observed, detail, "suoops-policy apply", spec.line))
        };
        let facts = seen.role.present();
        // What differs, by setting (the trust document has its own control).
        let differing: Vec<String> = head
            .attributes
            .iter()
            .filter(|a| a.name != "trust")
            .map(|a| match (&a.before, &a.after) {
                (Some(b), after) => {
                    format!("{} is {} (want {})", a.name, crate::model::compact(b), crate::model::compact(after))
                }
                (None, after) => format!("{} is not set (want {})", a.name, crate::model::compact(after)),
            })
            .collect();
        let role_detail = match head.action {
            Action::Create => "the role does not exist".to_string(),
            Action::Delete => "the role exists and the policy says `absent: true`".to_string(),
            _ if differing.is_empty() => "the role differs from the policy".to_string(),
            _ => differing.join("; "),
        };
        let role_status = match (&unknown, head.action) {
            (Some(_), _) => Status::Unknown,
            (None, Action::NoOp) => Status::Pass,
            _ if head.attributes.iter().all(|a| a.name == "trust") && head.action == Action::Update => Status::Pass,
            _ => Status::Fail,
        };
        push(
            &mut out,
            &ROLE,
            role_status,
            {
                let mut e = json!({"exists": !spec.absent});
                for a in head.attributes.iter().filter(|a| a.name != "trust") {
                    e[a.name.as_str()] = a.after.clone();
                }
                e
            },
            {
                let mut o = json!({"exists": facts.is_some(), "arn": facts.map(|f| f.arn.clone())});
                for a in head.attributes.iter().filter(|a| a.name != "trust") {
                    o[a.name.as_str()] = a.before.clone().unwrap_or(Value::Null);
                }
                o
            },
            unknown.clone().or_else(|| (role_status == Status::Fail).then_some(role_detail)),
        );
        if spec.absent {
            continue;
        }
        if let Some(want) = &spec.trust {
            let status = if unknown.is_some() {
                Status::Unknown
            } else if head.attributes.iter().any(|a| a.name == "trust") {
                Status::Fail
            } else {
                Status::Pass
            };
            push(
                &mut out,
                &TRUST,
                status,
                doc::canonical(want),
                facts.map(|f| doc::canonical(&f.trust)).unwrap_or(Value::Null),
                if status == Status::Unknown { unknown.clone() } else { None },
            );
        }
        if spec.inline_policies.is_some() || spec.managed_policies.is_some() || spec.exclusive {
            let subs: Vec<&&Change> = mine.iter().skip(1).collect();
            let status = if unknown.is_some() {
                Status::Unknown
            } else if subs.iter().any(|c| !c.is_noop()) {
                Status::Fail
            } else {
                Status::Pass
            };
            let bad: Vec<&str> = subs.iter().filter(|c| !c.is_noop()).map(|c| c.address.as_str()).collect();
            push(
                &mut out,
                &POLICY,
                status,
                json!({"inline": spec.inline_policies.as_ref().map(|m| m.keys().collect::<Vec<_>>()), "managed": spec.managed_policies}),
                json!({
                    "inline": seen.inline.as_ref().and_then(|o| o.present()).map(|m| m.keys().cloned().collect::<Vec<_>>()),
                    "managed": seen.attached.as_ref().and_then(|o| o.present()),
                }),
                if status == Status::Unknown {
                    unknown.clone()
                } else {
                    (!bad.is_empty()).then(|| format!("differs: {}", bad.join(", ")))
                },
            );
        }
    }
    out
}

/// The IAM provider: roles and customer-managed policies.
pub struct Iam;

const OPS: &[Op] = &[
    ops::GET_ROLE,
    ops::LIST_ROLE_POLICIES,
    ops::GET_ROLE_POLICY,
    ops::LIST_ATTACHED_ROLE_POLICIES,
    ops::LIST_POLICIES,
    ops::GET_POLICY_VERSION,
    ops::CREATE_ROLE,
    ops::UPDATE_ROLE,
    ops::UPDATE_ASSUME_ROLE_POLICY,
    ops::TAG_ROLE,
    ops::PUT_ROLE_POLICY,
    ops::DELETE_ROLE_POLICY,
    ops::ATTACH_ROLE_POLICY,
    ops::DETACH_ROLE_POLICY,
    ops::DELETE_ROLE,
    ops::CREATE_POLICY,
    ops::CREATE_POLICY_VERSION,
    ops::LIST_POLICY_VERSIONS,
    ops::DELETE_POLICY_VERSION,
];

const CONTROLS: &[ControlDef] = &[ROLE, TRUST, POLICY];

impl Provider for Iam {
    fn kind(&self) -> &'static str {
        "iam"
    }
    fn controls(&self) -> &'static [ControlDef] {
        CONTROLS
    }
    fn ops(&self) -> &'static [Op] {
        OPS
    }
    fn addresses(&self, policy: &Policy) -> Vec<Address> {
        let roles = policy.iam.roles.iter().map(|r| role_address(&r.name));
        roles.chain(policy.iam.policies.iter().map(|p| policy_address(&p.name))).collect()
    }
    fn import<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        req: &'a ImportRequest,
        _default_region: Option<&'a str>,
    ) -> Option<LocalBoxFuture<'a, Result<Imported, Fatal>>> {
        Some(import::import(ctx, req).boxed_local())
    }
    fn unobserved(&self, _ctx: &Ctx<'_>, policy: &Policy, reason: &str) -> Box<dyn Observation> {
        Box::new(unobserved(&policy.iam, reason))
    }
    fn observe<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        policy: &'a Policy,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move { Ok(Box::new(observe(ctx.aws, &policy.iam).await?) as Box<dyn Observation>) }.boxed_local()
    }
}

impl Observation for IamState {
    fn kind(&self) -> &'static str {
        "iam"
    }
    fn len(&self) -> usize {
        self.roles.len() + self.policies.len()
    }
    fn diff(&self) -> Vec<Change> {
        diff(self)
    }
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult> {
        controls(self, changes)
    }
    fn fingerprints(&self) -> Vec<(Address, Value)> {
        let roles = self.roles.iter().map(|(spec, state)| (role_address(&spec.name), json!(state)));
        roles.chain(self.policies.iter().map(|(spec, state)| (policy_address(&spec.name), json!(state)))).collect()
    }
    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        changes: &'a [Change],
        _prior: Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<Applied>, Fatal>> {
        async move {
            let done = apply(ctx.aws, self, changes).await;
            Ok(done
                .into_iter()
                .map(|d| Applied { address: d.address, steps: d.steps, did_not_take: Vec::new() })
                .collect())
        }
        .boxed_local()
    }
    fn reobserve<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        _addresses: &'a BTreeSet<Address>,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            // All of IAM: a role's attachments are judged against the
            // managed policies' ARNs, which are read with them.
            let spec = IamSpec {
                roles: self.roles.iter().map(|(s, _)| s.clone()).collect(),
                policies: self.policies.iter().map(|(s, _)| s.clone()).collect(),
            };
            Ok(Box::new(observe(ctx.aws, &spec).await?) as Box<dyn Observation>)
        }
        .boxed_local()
    }
}
