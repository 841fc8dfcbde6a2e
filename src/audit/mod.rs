//! Audit: every desired setting becomes a control with a stable id, judged
//! pass / fail / unknown from the same observation and diff that plan uses,
//! with the observed evidence and the remediation.

use serde::Serialize;
use serde_json::Value;

use crate::model::Address;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The evidence could not be read; the control is neither met nor failed.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One control judged against one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlResult {
    pub id: &'static str,
    pub address: Address,
    pub title: &'static str,
    pub rationale: &'static str,
    pub severity: Severity,
    pub status: Status,
    pub expected: Value,
    /// What the live system shows (`null`: not set / does not exist).
    pub observed: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub remediation: String,
    /// Line of the resource in the policy file.
    pub policy_line: u64,
}

/// All results of one audit, sorted by address then control id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub controls: Vec<ControlResult>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReportSummary {
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
}

impl Report {
    pub fn new(mut controls: Vec<ControlResult>) -> Self {
        controls.sort_by(|a, b| (&a.address, a.id).cmp(&(&b.address, b.id)));
        Report { controls }
    }

    pub fn summary(&self) -> ReportSummary {
        let mut s = ReportSummary::default();
        for c in &self.controls {
            match c.status {
                Status::Pass => s.passed += 1,
                Status::Fail => s.failed += 1,
                Status::Unknown => s.unknown += 1,
            }
        }
        s
    }
}
