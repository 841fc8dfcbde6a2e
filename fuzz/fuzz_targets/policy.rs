//! Policy loading and validation on arbitrary bytes: whatever the input,
//! `parse` returns a policy or diagnostics, and rendering the diagnostics
//! (text with snippets, and JSON) never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suoops_policy::policy::{self, LoadError};

fuzz_target!(|data: &[u8]| {
    // Some variables set, some not, so both `${VAR}` paths run.
    let env = |name: &str| match name {
        "REDIS_CACHE_URL" | "REDIS_QUEUE_URL" => Some("redis://:pw@127.0.0.1:1/0".to_string()),
        "DATABASE_URL" => Some("postgres://u:pw@127.0.0.1:1/db".to_string()),
        n if n.len() % 2 == 0 => Some(format!("v-{n}")),
        _ => None,
    };
    if let Err(LoadError::Invalid(d)) = policy::parse("fuzz.yaml", data.to_vec(), &env) {
        let _ = d.render(false);
        let _ = d.to_json();
    }
});
