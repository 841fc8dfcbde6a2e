//! `iam:` as written: roles and customer-managed policies, with positions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::policy::document::RawIamDocument;
use crate::policy::raw::{NamedMap, Sp};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIam {
    /// IAM roles by name.
    #[serde(default)]
    pub roles: NamedMap<Sp<RawRole>>,
    /// Customer-managed policies by name.
    #[serde(default)]
    pub policies: NamedMap<Sp<RawManagedPolicy>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateRaw {
    Present,
    /// Delete the role (needs --allow-destroy).
    Absent,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// The declared account (`accounts:`) it lives in; default the
    /// caller's own.
    #[serde(default)]
    pub account: Option<Sp<String>>,
    #[serde(default)]
    pub state: Option<Sp<StateRaw>>,
    #[serde(default)]
    pub path: Option<Sp<String>>,
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// Seconds, 3600–43200.
    #[serde(default)]
    pub max_session_duration: Option<Sp<i64>>,
    #[serde(default)]
    pub tags: Option<Sp<BTreeMap<String, String>>>,
    /// The assume-role (trust) policy document.
    #[serde(default)]
    pub trust: Option<Sp<RawIamDocument>>,
    #[serde(default)]
    pub inline_policies: Option<Sp<NamedMap<Sp<RawIamDocument>>>>,
    /// Managed policy ARNs, or names of policies under `iam.policies`.
    #[serde(default)]
    pub managed_policies: Option<Sp<Vec<Sp<String>>>>,
    /// Remove inline policies and attachments the policy does not name
    /// (needs --allow-destroy).
    #[serde(default)]
    pub exclusive: Option<Sp<bool>>,
    /// Derive the standard S3 replication permissions (inline policy
    /// `s3-replication`) from the replication rules that name this role.
    #[serde(default)]
    pub s3_replication: Option<Sp<bool>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawManagedPolicy {
    /// The declared account (`accounts:`) it lives in; default the
    /// caller's own.
    #[serde(default)]
    pub account: Option<Sp<String>>,
    #[serde(default)]
    pub path: Option<Sp<String>>,
    #[serde(default)]
    pub description: Option<Sp<String>>,
    pub document: Sp<RawIamDocument>,
}
