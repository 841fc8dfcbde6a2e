//! `iam:` of the policy file, kept with its provider: the validated types
//! (here), the file as written (`raw.rs`) and the rules IAM itself would
//! enforce (`validate.rs`); the documents' grammar is `policy::document`,
//! which KMS key policies share. Part of the policy layer.

pub mod raw;
mod validate;

use std::collections::BTreeMap;

pub use validate::replication_permissions;

/// The `iam:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Iam {
    pub roles: Vec<RoleSpec>,
    pub policies: Vec<ManagedPolicySpec>,
}

/// An IAM role. `None`: not mentioned, neither read nor changed.
/// Documents are JSON as written; comparison canonicalises them.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    /// The declared account it lives in (`account:`); None: the caller's.
    pub account: Option<String>,

    /// `state: absent`: delete the role.
    pub absent: bool,
    pub path: Option<String>,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub tags: Option<BTreeMap<String, String>>,
    pub trust: Option<serde_json::Value>,
    pub inline_policies: Option<BTreeMap<String, serde_json::Value>>,
    /// ARNs, or names of policies under `iam.policies`.
    pub managed_policies: Option<Vec<String>>,
    pub exclusive: bool,
    pub line: u64,
}

/// A customer-managed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedPolicySpec {
    pub name: String,
    /// The declared account it lives in (`account:`); None: the caller's.
    pub account: Option<String>,

    pub path: String,
    pub description: Option<String>,
    pub document: serde_json::Value,
    pub line: u64,
}
