//! Saved plans: `plan --out FILE` records the policy file's hash, a
//! fingerprint of what was observed for each resource, and the changes;
//! `apply FILE` re-observes only the resources those changes touch, refuses
//! the plan (naming them) when any of them changed since, and otherwise
//! makes exactly the saved changes. No secret is written: changes hold
//! settings, never connection URLs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::Snapshot;
use crate::model::{Change, Targets};

pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: String,
    pub tool_version: String,
    /// The policy file as given to `plan`, and the SHA-256 of its bytes.
    pub policy_file: String,
    pub policy_sha256: String,
    /// `--target` addresses the plan was made with.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Resource address → SHA-256 of its observed state.
    pub fingerprints: BTreeMap<String, String>,
    pub changes: Vec<Change>,
}

pub use crate::model::sha256_hex;

/// A fingerprint of what was observed of each resource: only stable
/// settings (not counters such as Redis' uptime or the archiver's stats),
/// from each provider's canonical serialisation.
pub fn fingerprints(snap: &Snapshot) -> BTreeMap<String, String> {
    snap.fingerprints()
}

/// The resources the saved plan would change (as targets to observe).
pub fn touched(plan: &SavedPlan) -> Targets {
    let mut r: Vec<String> =
        plan.changes.iter().filter(|c| c.is_actionable()).map(|c| c.address.resource_addr().to_string()).collect();
    r.sort();
    r.dedup();
    Targets::of(r)
}

/// Exactly the saved changes, as targets for apply.
pub fn exact(plan: &SavedPlan) -> Targets {
    Targets::of(plan.changes.iter().filter(|c| c.is_actionable()).map(|c| c.address.as_str().to_string()).collect())
}

/// Resources whose state changed since the plan: their addresses.
pub fn stale(plan: &SavedPlan, now: &BTreeMap<String, String>) -> Vec<String> {
    touched(plan).list.into_iter().filter(|r| plan.fingerprints.get(r) != now.get(r)).collect()
}
