//! The strategy's objectives as the audit reports them: each met, not
//! met or not evaluated, with its reasons. Which objectives there are is
//! `audit::objectives`; how each is judged, the registered systems'.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    NotMet,
    /// Nothing in the policy lets the audit judge it.
    NotEvaluated,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Objective {
    pub id: &'static str,
    pub title: &'static str,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    /// ERASURE-HORIZON only: every copy of the backups and how long a row
    /// deleted today stays recoverable from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopyHorizon>,
    /// What the verdict could not take into account (SCPs, session
    /// policies), said once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One copy of the backups, its horizon and the evidence read for it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CopyHorizon {
    /// `s3://bucket/prefix/ (what)`.
    pub copy: String,
    /// Days a deleted row stays recoverable; None: nothing bounds it.
    pub horizon_days: Option<u64>,
    /// Why nothing bounds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbounded: Option<String>,
    /// The erasure_within it answers to, in days; None: not judged.
    pub erasure_within_days: Option<u64>,
    /// Age in days of the oldest version under the prefix
    /// (S3-OLDEST-VERSION); None when not read or none there.
    pub oldest_version_days: Option<f64>,
    /// Versions (and delete markers) listed under the prefix; None: not
    /// read.
    pub versions: Option<u64>,
}
