//! `import` for KMS keys: each named by its alias (`--kms-key
//! alias/NAME[@REGION]`), read as if the policy named every setting and
//! written as a `kms.keys` entry.

use serde_json::{json, Value};

use super::{read_key, sid, KeyState};
use crate::iamdoc::statements;
use crate::model::{Fatal, Observed};
use crate::policy::writer::{scalar, Writer};
use crate::providers::kms::section::KmsKeySpec;
use crate::providers::{Ctx, ImportRequest, Imported};

/// `alias/NAME[@REGION]` → (alias, region).
fn parse(arg: &str) -> Result<(String, Option<String>), Fatal> {
    let (alias, region) = match arg.rsplit_once('@') {
        Some((a, r)) => (a, Some(r.to_string())),
        None => (arg, None),
    };
    let alias = if alias.starts_with("alias/") { alias.to_string() } else { format!("alias/{alias}") };
    if alias.len() <= "alias/".len() {
        return Err(Fatal::input(format!("`{arg}` names no key; write --kms-key alias/NAME[@REGION]")));
    }
    Ok((alias, region))
}

/// The entry's name: the alias without `alias/`, `/` made `-`.
fn entry_name(alias: &str) -> String {
    alias.trim_start_matches("alias/").replace('/', "-")
}

pub(crate) async fn import(
    ctx: &Ctx<'_>,
    req: &ImportRequest,
    default_region: Option<&str>,
) -> Result<Imported, Fatal> {
    let mut out = Imported::new(&["kms", "keys"], "KMS key(s)");
    let default = default_region.or(ctx.aws.default_region()).unwrap_or("us-east-1").to_string();
    for arg in &req.kms_keys {
        let (alias, region) = parse(arg)?;
        let name = entry_name(&alias);
        let spec = KmsKeySpec {
            name: name.clone(),
            account: None,
            region: region.clone(),
            alias: alias.clone(),
            description: Some(String::new()),
            rotation: Some(true),
            rotation_period_days: None,
            policy: Some(json!({})),
            line: 0,
        };
        let in_region = region.clone().unwrap_or_else(|| default.clone());
        let state = read_key(ctx.aws, &spec, &in_region, false).await?;
        match &state.key {
            Observed::Absent => {
                return Err(Fatal::input(format!("no KMS key has the alias {alias} in {in_region}; nothing to import")))
            }
            Observed::Unknown { reason } => {
                return Err(Fatal::input(format!("the KMS key {alias} in {in_region} cannot be read: {reason}")))
            }
            Observed::Present(_) => {}
        }
        if out.entries.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let text = entry(&spec, region.as_deref().filter(|r| *r != default), &state, &mut out.unreadable);
        out.entries.push((name, text));
    }
    out.entries.sort();
    Ok(out)
}

fn entry(spec: &KmsKeySpec, region: Option<&str>, st: &KeyState, gaps: &mut Vec<String>) -> String {
    let addr = format!("kms.{}", spec.name);
    let mut w = Writer::new();
    w.open(0, &spec.name);
    let Some(k) = st.key.present() else { return w.finish() };
    w.comment(2, &k.arn);
    if let Some(r) = region {
        w.raw(2, "region", &scalar(r), None);
    }
    if spec.alias != format!("alias/{}", spec.name) {
        w.raw(2, "alias", &scalar(&spec.alias), None);
    }
    if !k.description.is_empty() {
        w.raw(2, "description", &scalar(&k.description), None);
    }
    match &st.rotation {
        Some(Observed::Present(r)) => {
            w.raw(2, "rotation", if r.enabled { "enabled" } else { "disabled" }, None);
            if let (true, Some(p)) = (r.enabled, r.period_days) {
                w.raw(2, "rotation_period_days", &p.to_string(), (p == 365).then_some("AWS default"));
            }
        }
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "rotation", reason),
        _ => {}
    }
    match &st.policy {
        Some(Observed::Present(doc)) => {
            // Statements are owned by Sid: one without a Sid cannot be
            // named, and is kept as it is by every apply.
            let named: Vec<Value> = statements(doc).into_iter().filter(|s| sid(s).is_some()).cloned().collect();
            let unnamed = statements(doc).len() - named.len();
            if unnamed > 0 {
                w.comment(
                    2,
                    &format!("the key policy has {unnamed} statement(s) without a Sid: left out, kept as they are"),
                );
            }
            if !named.is_empty() {
                let mut d =
                    json!({"Version": doc.get("Version").cloned().unwrap_or(json!("2012-10-17")), "Statement": named});
                if let Some(id) = doc.get("Id") {
                    d["Id"] = id.clone();
                }
                w.value(2, "policy", &crate::iamdoc::in_writing_order(&d), None);
            }
        }
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "policy", reason),
        _ => {}
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_an_alias_and_maybe_a_region() {
        assert_eq!(parse("alias/b@eu-west-1").expect("ok"), ("alias/b".into(), Some("eu-west-1".into())));
        assert_eq!(parse("b").expect("ok"), ("alias/b".into(), None));
        assert!(parse("alias/").is_err());
        assert_eq!(entry_name("alias/team/backups"), "team-backups");
    }
}
