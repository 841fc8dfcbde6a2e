//! The IAM audit controls: IAM-ROLE, IAM-TRUST, IAM-POLICY.

use super::*;

// The IAM controls gate the access objectives: they are judged from the
// declared role documents only when these pass.
pub(super) const ROLE: ControlDef = ControlDef {
    id: "IAM-ROLE",
    title: "Backup role exists as declared",
    rationale:
        "Only the backup role may write backups and only the restore role may read them (strategy: access control).",
    severity: Severity::High,
    objectives: &["RTO-60MIN-READINESS", "LEAST-PRIVILEGE"],
};
pub(super) const TRUST: ControlDef = ControlDef {
    id: "IAM-TRUST",
    title: "Who may assume the role",
    rationale: "The trust policy decides who acts as the backup or restore role (strategy: access control).",
    severity: Severity::High,
    objectives: &["RTO-60MIN-READINESS", "LEAST-PRIVILEGE"],
};
pub(super) const POLICY: ControlDef = ControlDef {
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
        out.push(role_control(spec, facts, head, unknown.clone()));
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

/// IAM-ROLE: the role exists (or not) with the settings the policy names;
/// its trust document has a control of its own.
fn role_control(spec: &RoleSpec, facts: Option<&RoleFacts>, head: &Change, unknown: Option<String>) -> ControlResult {
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
    let addr = role_address(&spec.name);
    ROLE.result(
        &addr,
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
        unknown.or_else(|| (role_status == Status::Fail).then_some(role_detail)),
        "suoops-policy apply",
        spec.line,
    )
}
