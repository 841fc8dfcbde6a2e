//! Reading IAM: only the roles and managed policies the policy names,
//! with their inline policies, attachments and documents.

use super::*;

/// A role as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoleFacts {
    pub arn: String,
    pub path: String,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub tags: BTreeMap<String, String>,
    pub trust: Value,
    /// The permissions boundary's ARN, when the role has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
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
    /// Every identity policy of each declared role (audit only).
    pub identities: Vec<doc::Identity>,
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
                return Ok(IamState { roles, policies: unknown.collect(), identities: Vec::new() });
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
    Ok(IamState { roles, policies, identities: Vec::new() })
}

/// What the policy names, none of it read (`reason`).
pub(super) fn unobserved(iam: &IamSpec, reason: &str) -> IamState {
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
    let identities = iam
        .roles
        .iter()
        .filter(|r| !r.absent)
        .map(|r| doc::Identity { role: r.name.clone(), arn: None, policies: Err(reason.to_string()), boundary: None })
        .collect();
    IamState {
        roles,
        policies: iam.policies.iter().map(|p| (p.clone(), Observed::unknown(reason))).collect(),
        identities,
    }
}

/// What each declared role can really do, for the audit: every inline
/// policy, every attached managed policy (AWS-managed ones included, by
/// their default version) and the permissions boundary, reusing what the
/// observation already read. A part that cannot be read makes the role's
/// identity unknown with the reason, never "no permission".
pub async fn identities(aws: &Aws, roles: &[(RoleSpec, RoleState)]) -> Result<Vec<doc::Identity>, Fatal> {
    futures::future::try_join_all(roles.iter().filter(|(spec, _)| !spec.absent).map(|(spec, state)| async move {
        let policies = match &state.role {
            Observed::Present(_) => role_policies(aws, &spec.name, state).await?,
            Observed::Absent => Ok(Vec::new()),
            Observed::Unknown { reason } => Err(reason.clone()),
        };
        let boundary = match state.role.present().and_then(|r| r.boundary.clone()) {
            None => None,
            Some(arn) => match managed_document(aws, &arn).await? {
                Ok(d) => Some((arn, d)),
                Err(why) => {
                    let policies = Err(format!("permissions boundary {arn}: {why}"));
                    let role = spec.name.clone();
                    return Ok(doc::Identity {
                        role,
                        arn: state.role.present().map(|r| r.arn.clone()),
                        policies,
                        boundary: None,
                    });
                }
            },
        };
        Ok(doc::Identity {
            role: spec.name.clone(),
            arn: state.role.present().map(|r| r.arn.clone()),
            policies,
            boundary,
        })
    }))
    .await
}

/// A role's inline and attached policies with their documents, or why not.
async fn role_policies(
    aws: &Aws,
    role: &str,
    state: &RoleState,
) -> Result<Result<Vec<(String, Value)>, String>, Fatal> {
    let inline = match &state.inline {
        Some(Observed::Present(m)) => Observed::Present(m.clone()),
        _ => inline_policies(aws, role).await?,
    };
    let attached = match &state.attached {
        Some(Observed::Present(a)) => Observed::Present(a.clone()),
        _ => attached_policies(aws, role).await?,
    };
    let (inline, attached) = match (inline, attached) {
        (Observed::Present(i), Observed::Present(a)) => (i, a),
        (i, a) => {
            let why = i.unknown_reason().or(a.unknown_reason()).unwrap_or("the role is gone").to_string();
            return Ok(Err(why));
        }
    };
    let mut out: Vec<(String, Value)> = inline.into_iter().map(|(n, d)| (format!("inline policy {n}"), d)).collect();
    for arn in attached {
        match managed_document(aws, &arn).await? {
            Ok(d) => out.push((arn, d)),
            Err(why) => return Ok(Err(format!("{arn}: {why}"))),
        }
    }
    Ok(Ok(out))
}

/// A managed policy's document by ARN: GetPolicy for its default version
/// (AWS-managed policies change versions over time), then that version.
async fn managed_document(aws: &Aws, arn: &str) -> Result<Result<Value, String>, Fatal> {
    let c = aws.iam();
    let version = match aws.call(&ops::GET_POLICY, c.get_policy().policy_arn(arn).send()).await {
        Ok(out) => out.policy().and_then(|p| p.default_version_id()).unwrap_or("v1").to_string(),
        Err(e) => {
            return match classify(&e, &["NoSuchEntity"]) {
                ApiError::Fatal(m) => Err(Fatal::api(m)),
                other => Ok(Err(other.reason())),
            }
        }
    };
    let req = c.get_policy_version().policy_arn(arn).version_id(&version);
    match aws.call(&ops::GET_POLICY_VERSION, req.send()).await {
        Ok(out) => Ok(doc::parse(out.policy_version().and_then(|v| v.document()).unwrap_or("{}"))),
        Err(e) => match classify(&e, &["NoSuchEntity"]) {
            ApiError::Fatal(m) => Err(Fatal::api(m)),
            other => Ok(Err(other.reason())),
        },
    }
}

pub(super) async fn observe_role(aws: &Aws, spec: &RoleSpec) -> Result<RoleState, Fatal> {
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
                    boundary: r.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_string),
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

pub(super) async fn inline_policies(aws: &Aws, role: &str) -> Result<Observed<BTreeMap<String, Value>>, Fatal> {
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

pub(super) async fn attached_policies(aws: &Aws, role: &str) -> Result<Observed<Vec<String>>, Fatal> {
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
pub(super) async fn list_local_policies(
    aws: &Aws,
) -> Result<Observed<BTreeMap<(String, String), (String, String)>>, Fatal> {
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

pub(super) async fn policy_version(aws: &Aws, arn: &str, version: &str) -> Result<Observed<PolicyFacts>, Fatal> {
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

pub(super) fn doc_change(name: &str, before: Option<&Value>, after: &Value) -> AttrChange {
    let mut a = AttrChange::new(name, before.map(doc::canonical), doc::canonical(after));
    a.diff = Some(doc::diff_text(before, after));
    a
}

/// The name of a managed policy ARN (`…:policy/PATH/NAME`).
pub(super) fn arn_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
