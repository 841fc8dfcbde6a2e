//! `permissions`: the least-privilege IAM policy the tool needs for plan,
//! audit or apply, scoped to a policy file's buckets and roles when given.

use std::path::PathBuf;

use clap::Args;

use super::{load_policy, out, Global};
use crate::permissions::{document, For};

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
    let doc = document(a.for_, policy.as_ref(), state.as_ref());
    out(&format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()));
    0
}
