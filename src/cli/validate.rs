//! `validate`: offline schema and semantic checks of a policy file.

use clap::Args;

use super::{out, Format, Global, PolicyArg};
use crate::policy::{self, LoadError};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(g: &Global, a: &ValidateArgs) -> u8 {
    match (policy::load(&a.policy.file, &crate::providers::control_ids()), a.format) {
        (Ok(p), Format::Text) => {
            // Warnings are shown even with -q: they are about the input.
            if !p.warnings.items.is_empty() {
                eprint!("{}", p.warnings.render_for(g.color.enabled_for_stderr(), super::stderr_is_terminal()));
            }
            if !g.quiet {
                let n = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
                let warnings = match p.warnings.items.len() {
                    0 => String::new(),
                    w => format!("; {}", n(w, "warning", "warnings")),
                };
                let counts: Vec<String> = crate::providers::counts(&p).iter().map(|c| n(c.n, c.one, c.many)).collect();
                out(&format!("{}: valid ({}{warnings})\n", p.file, counts.join(", ")));
            }
            0
        }
        (Ok(p), Format::Json) => {
            let mut doc = serde_json::json!({"format_version": "1", "valid": true, "file": p.file});
            for c in crate::providers::counts(&p) {
                doc[c.key] = c.n.into();
            }
            doc["warnings"] = p.warnings.to_json()["diagnostics"].clone();
            out(&format!("{doc}\n"));
            0
        }
        (Err(LoadError::Invalid(d)), Format::Text) => {
            eprint!("{}", d.render_for(g.color.enabled_for_stderr(), super::stderr_is_terminal()));
            1
        }
        (Err(LoadError::Invalid(d)), Format::Json) => {
            out(&format!("{:#}\n", d.to_json()));
            1
        }
    }
}
