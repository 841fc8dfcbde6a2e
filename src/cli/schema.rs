//! `schema`: print the JSON Schema of the policy file (the checked-in copy
//! in `schema/` must equal this output; a test enforces it).

use super::out;

pub fn schema_json() -> String {
    let schema = schemars::schema_for!(crate::policy::raw::RawPolicy);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// The JSON Schema of `audit --format json`.
pub fn report_schema_json() -> String {
    let schema = schemars::schema_for!(crate::render::json::AuditDocument<'static>);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// The JSON Schema of `plan --format json`.
pub fn plan_schema_json() -> String {
    let schema = schemars::schema_for!(crate::render::json::PlanDocument);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Print the schema of the JSON audit report instead of the policy file's.
    #[arg(long, conflicts_with = "plan")]
    pub report: bool,
    /// Print the schema of the JSON plan instead of the policy file's.
    #[arg(long)]
    pub plan: bool,
}

pub fn run(a: &SchemaArgs) -> u8 {
    out(&if a.report {
        report_schema_json()
    } else if a.plan {
        plan_schema_json()
    } else {
        schema_json()
    });
    0
}
