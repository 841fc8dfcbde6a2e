//! `permissions`: the least-privilege IAM policy the tool needs for plan,
//! audit or apply, scoped to a policy file's buckets and roles when given.

use std::path::PathBuf;

use clap::Args;

use super::{load_policy, out, Global};
use serde_json::{json, Value};

use crate::permissions::{document, For};
use crate::policy::Policy;

#[derive(Debug, Args)]
pub struct PermissionsArgs {
    /// The command the credentials are for.
    #[arg(long = "for", value_enum)]
    pub for_: For,
    /// Scope the statements to this policy's buckets, roles and managed policies.
    #[arg(short = 'f', long = "file", value_name = "POLICY")]
    pub file: Option<PathBuf>,
    /// With `--for audit`: the `--state s3://BUCKET/KEY` object the audit
    /// reads and writes for `--notify`.
    #[arg(long, value_name = "s3://BUCKET/KEY")]
    pub state: Option<String>,
    /// With -f: the role the tool needs in this declared account — its
    /// permissions over the account's resources and its trust to the
    /// caller's account.
    #[arg(long, value_name = "NAME", requires = "file")]
    pub account: Option<String>,
}

pub fn run(g: &Global, a: &PermissionsArgs) -> u8 {
    let policy = match &a.file {
        Some(path) => match load_policy(g, path) {
            Some(p) => Some(p),
            None => return 1,
        },
        None => None,
    };
    let state = match a.state.as_deref().map(|s| (s, crate::notify::state::parse(s))) {
        None => None,
        Some((_, Some(loc))) => Some(loc),
        Some((s, None)) => return super::error(g, format!("--state {s}: write s3://BUCKET/KEY")),
    };
    let doc = match (&policy, &a.account) {
        (Some(p), Some(name)) => match for_account(g, a.for_, p, name, state.as_ref()) {
            Some(d) => d,
            None => return 1,
        },
        (Some(p), None) if !p.accounts.is_empty() => callers(a.for_, p, state.as_ref()),
        _ => document(a.for_, policy.as_ref(), state.as_ref()),
    };
    out(&format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()));
    0
}

/// The caller's own document in a policy over several accounts: its share
/// of the resources, and assuming each declared account's role (once,
/// from these credentials).
fn callers(cmd: For, policy: &Policy, state: Option<&(String, String)>) -> Value {
    let caller = policy.accounts.iter().find(|a| a.role.is_none()).map(|a| a.name.as_str());
    let own = crate::providers::in_account(policy, &|a| a.is_none() || a == caller);
    let mut doc = document(cmd, Some(&own), state);
    let roles: Vec<&str> = policy.accounts.iter().filter_map(|a| a.role.as_deref()).collect();
    if let (false, Some(list)) = (roles.is_empty(), doc["Statement"].as_array_mut()) {
        list.push(
            json!({"Sid": "AssumeAccountRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": roles}),
        );
    }
    doc
}

/// `--account NAME`: the role the tool assumes there — what it may do on
/// the account's resources, and who may assume it (the caller's account,
/// with the external id when one is declared: shown masked, it is a
/// secret).
/// None, said on stderr: no such account, or no caller's account for the
/// trust to name.
fn for_account(g: &Global, cmd: For, policy: &Policy, name: &str, state: Option<&(String, String)>) -> Option<Value> {
    let account = super::declared_account(g, policy, name, &format!("--account {name}:"))?;
    let Some(role) = &account.role else {
        // The caller's own account: its credentials, not a role.
        return Some(callers(cmd, policy, state));
    };
    let Some(caller) = policy.accounts.iter().find(|a| a.role.is_none()) else {
        super::error(
            g,
            format!(
                "--account {name}: the trust names the caller's account: declare it in {} (an account without `role`)",
                policy.file
            ),
        );
        return None;
    };
    let mine = crate::providers::in_account(policy, &|a| a == Some(name));
    let mut trust = json!({"Sid": "SuoopsPolicyCaller", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", caller.id)}, "Action": "sts:AssumeRole"});
    if account.external_id.is_some() {
        trust["Condition"] = json!({"StringEquals": {"sts:ExternalId": crate::model::SENSITIVE}});
    }
    Some(json!({
        "account": account.name,
        "id": account.id,
        "role": role,
        "trust": {"Version": "2012-10-17", "Statement": [trust]},
        "permissions": document(cmd, Some(&mine), state),
    }))
}
