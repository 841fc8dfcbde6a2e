//! `schema`: print the JSON Schema of the policy file (the checked-in copy
//! in `schema/` must equal this output; a test enforces it).

use super::out;

pub fn schema_json() -> String {
    let schema = schemars::schema_for!(crate::policy::raw::RawPolicy);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

pub fn run() -> u8 {
    out(&schema_json());
    0
}
