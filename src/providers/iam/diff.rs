//! The pure IAM diff: documents compared by meaning, attachments and
//! inline policies by ownership.

use super::*;

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

pub(super) fn diff_role(
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
    diff_inline(spec, seen, &mut out);
    diff_attached(spec, seen, policies, &mut out);
    out
}

/// The role's inline policies: named ones are owned (created or updated),
/// the rest kept, or deleted when the role is exclusive.
fn diff_inline(spec: &RoleSpec, seen: &RoleState, out: &mut Vec<Change>) {
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
}

/// The role's managed-policy attachments, the same way.
fn diff_attached(
    spec: &RoleSpec,
    seen: &RoleState,
    policies: &[(ManagedPolicySpec, Observed<PolicyFacts>)],
    out: &mut Vec<Change>,
) {
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
}
