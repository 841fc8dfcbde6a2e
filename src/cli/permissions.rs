//! `permissions`: the least-privilege IAM policy the tool needs for plan,
//! audit or apply, scoped to a policy file's buckets and roles when given.

use std::path::PathBuf;

use clap::Args;

use super::{load_policy, out, Global};
use crate::providers::permissions::{document, For};

#[derive(Debug, Args)]
pub struct PermissionsArgs {
    /// The command the credentials are for.
    #[arg(long = "for", value_enum)]
    pub for_: For,
    /// Scope the statements to this policy's buckets, roles and managed policies.
    #[arg(short = 'f', long = "file", value_name = "POLICY")]
    pub file: Option<PathBuf>,
}

pub fn run(g: &Global, a: &PermissionsArgs) -> u8 {
    let policy = match &a.file {
        Some(path) => match load_policy(g, path) {
            Some(p) => Some(p),
            None => return 1,
        },
        None => None,
    };
    let doc = document(a.for_, policy.as_ref());
    out(&format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()));
    0
}
