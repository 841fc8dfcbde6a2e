//! `import` for IAM roles: read each role as if the policy named every
//! setting, and write it as a policy entry; documents in the order people
//! write them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{observe, IamState, RoleState};
use crate::model::{Fatal, Observed};
use crate::policy::writer::{scalar, Writer};
use crate::providers::iam::section::{Iam as IamSpec, RoleSpec};
use crate::providers::{Ctx, ImportRequest, Imported};

/// Read the roles the request names and write them; a role that does not
/// exist or cannot be read at all stops the import.
pub(crate) async fn import(ctx: &Ctx<'_>, req: &ImportRequest) -> Result<Imported, Fatal> {
    let mut roles = req.roles.clone();
    roles.sort();
    roles.dedup();
    let mut out = Imported::new(&["iam", "roles"], "role(s)");
    if roles.is_empty() {
        return Ok(out);
    }
    let spec = IamSpec { roles: roles.iter().map(|r| full_role(r)).collect(), policies: Vec::new() };
    let state: IamState = observe(ctx.aws, &spec).await?;
    for (spec, state) in state.roles {
        match &state.role {
            Observed::Absent => {
                return Err(Fatal::input(format!("IAM role `{}` does not exist; nothing to import", spec.name)))
            }
            Observed::Unknown { reason } => {
                return Err(Fatal::input(format!("IAM role `{}` cannot be read: {reason}", spec.name)))
            }
            Observed::Present(_) => {
                let text = role(&spec.name, &state, &mut out.unreadable);
                out.entries.push((spec.name, text));
            }
        }
    }
    Ok(out)
}

fn full_role(name: &str) -> RoleSpec {
    RoleSpec {
        name: name.to_string(),
        account: None,
        absent: false,
        path: Some("/".into()),
        description: Some(String::new()),
        max_session_duration: Some(3600),
        tags: Some(BTreeMap::new()),
        trust: Some(Value::Null),
        inline_policies: Some(BTreeMap::new()),
        managed_policies: Some(Vec::new()),
        exclusive: false,
        line: 0,
    }
}

fn role(name: &str, st: &RoleState, gaps: &mut Vec<String>) -> String {
    let addr = format!("iam.role.{name}");
    let mut w = Writer::new();
    w.open(0, name);
    let Some(f) = st.role.present() else {
        return w.finish();
    };
    if f.path == "/" {
        w.raw(2, "path", "/", Some("AWS default"));
    } else {
        w.raw(2, "path", &scalar(&f.path), None);
    }
    if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) {
        w.raw(2, "description", &scalar(d), None);
    }
    if let Some(m) = f.max_session_duration {
        w.raw(2, "max_session_duration", &m.to_string(), (m == 3600).then_some("AWS default (1 hour)"));
    }
    if !f.tags.is_empty() {
        w.value(2, "tags", &json!(f.tags), None);
    }
    if !f.trust.is_null() {
        w.value(2, "trust", &crate::iamdoc::in_writing_order(&f.trust), None);
    }
    match &st.inline {
        Some(Observed::Present(docs)) if !docs.is_empty() => {
            w.open(2, "inline_policies");
            for (n, d) in docs {
                w.value(4, n, &crate::iamdoc::in_writing_order(d), None);
            }
        }
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "inline_policies", reason),
        _ => {}
    }
    match &st.attached {
        Some(Observed::Present(arns)) if !arns.is_empty() => {
            w.open(2, "managed_policies");
            for a in arns {
                w.item(4, &json!(a));
            }
        }
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "managed_policies", reason),
        _ => {}
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_documents_are_written_in_the_order_people_write_them() {
        let d = crate::iamdoc::in_writing_order(
            &json!({"Statement": {"Resource": "*", "Action": "s3:*", "Effect": "Allow"}, "Version": "2012-10-17"}),
        );
        assert_eq!(
            d.to_string(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        );
    }
}
