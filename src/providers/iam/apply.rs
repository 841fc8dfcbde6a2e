//! Applying IAM changes: managed policies first (roles attach them),
//! then roles.

use super::*;

/// What apply did, per role or policy.
pub struct IamApplied {
    pub address: Address,
    pub steps: Vec<StepOutcome>,
}

pub(super) fn err_text<E>(e: &aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::http::Response>) -> String
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
pub(super) async fn new_version(aws: &Aws, arn: &str, document: &str) -> Result<(), String> {
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

/// One step of a role's apply: the call, waited out while a role this run
/// created is not yet visible; its outcome pushed onto `$steps`, and on
/// failure `$steps` returned (the role's later steps depend on it).
macro_rules! role_step {
    ($aws:ident, $name:ident, $created:ident, $steps:ident, $op:expr, $label:expr, $fut:expr) => {{
        let r = $aws
            .call_until_visible(
                $op,
                &format!("role {}", $name),
                || $fut,
                |e| $created && aws_sdk_iam::error::ProvideErrorMetadata::code(e) == Some("NoSuchEntity"),
            )
            .await
            .map(|_| ())
            .map_err(|e| err_text(&e));
        let failed = r.is_err();
        $steps.push(StepOutcome { step: $label, result: r });
        if failed {
            return $steps;
        }
    }};
}

pub(super) async fn apply_role(
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
        ($op:expr, $label:expr, $fut:expr) => {
            role_step!(aws, name, created, steps, $op, $label, $fut)
        };
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
    steps.extend(apply_parts(aws, spec, mine, state, created_arns, created).await);
    steps
}

/// The role's inline policies and attachments, after the role itself.
async fn apply_parts(
    aws: &Aws,
    spec: &RoleSpec,
    mine: &[&Change],
    state: &IamState,
    created_arns: &BTreeMap<String, String>,
    created: bool,
) -> Vec<StepOutcome> {
    let c = aws.iam();
    let name = spec.name.as_str();
    let mut steps = Vec::new();
    macro_rules! step {
        ($op:expr, $label:expr, $fut:expr) => {
            role_step!(aws, name, created, steps, $op, $label, $fut)
        };
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
