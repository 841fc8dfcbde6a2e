//! The audit's vocabulary, below every provider: a control's declaration
//! (`ControlDef`, data in each provider's registry entry) and one judged
//! result (`ControlResult`). Nothing here does I/O.

use serde::Serialize;
use serde_json::Value;

use super::Address;

/// A control as a provider declares it: stable id, title, why it matters,
/// severity, and the strategy objectives it feeds (by objective id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlDef {
    pub id: &'static str,
    pub title: &'static str,
    pub rationale: &'static str,
    pub severity: Severity,
    pub objectives: &'static [&'static str],
}

impl ControlDef {
    /// A result of this control for `address`; `policy_line` points at the
    /// setting (or resource) in the policy file.
    #[allow(clippy::too_many_arguments)]
    pub fn result(
        &self,
        address: &Address,
        status: Status,
        expected: Value,
        observed: Value,
        detail: Option<String>,
        remediation: impl Into<String>,
        policy_line: u64,
    ) -> ControlResult {
        ControlResult {
            id: self.id,
            address: address.clone(),
            title: self.title,
            rationale: self.rationale,
            severity: self.severity,
            status,
            expected,
            observed,
            detail,
            remediation: remediation.into(),
            policy_line,
            waiver: None,
            account: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The evidence could not be read; the control is neither met nor failed.
    Unknown,
    /// Failing or unknown, but covered by an active waiver.
    Waived,
}

/// A waiver as it applied to a control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AppliedWaiver {
    pub owner: String,
    pub reason: String,
    pub expires: String,
    pub expired: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One control judged against one resource.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<AppliedWaiver>,
    /// The declared account (`accounts:`) the resource is in; None: the
    /// caller's, when the policy declares none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// One gauge family a system publishes from its controls (OpenMetrics):
/// its name, help, unit, and a value per resource address.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<&'static str>,
    /// (address, value as OpenMetrics writes it: `42`, `NaN`).
    pub values: Vec<(String, String)>,
}
