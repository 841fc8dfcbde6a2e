//! `apply`: plan, confirm, change the live systems, verify by re-reading.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use super::{connect, error, load_policy, note, out, Format, Global, PolicyArg};
use crate::engine;
use crate::render::{self, Paint};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    #[command(flatten)]
    pub targets: super::TargetArg,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow destructive changes (e.g. suspending versioning).
    #[arg(long)]
    pub allow_destroy: bool,
    /// Output format of the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub async fn run(g: &Global, a: &ApplyArgs) -> u8 {
    let Some(policy) = load_policy(g, &a.policy.file) else {
        return 1;
    };
    let Some((targets, policy)) = a.targets.apply(g, policy) else {
        return 1;
    };
    let interactive = std::io::stdin().is_terminal();
    if !a.auto_approve && !interactive {
        return error(g, "apply needs --auto-approve when stdin is not a terminal");
    }
    let aws = connect(g, &policy).await;
    let observations = match super::observe(g, &aws, &policy, false).await {
        Ok(o) => o,
        Err(e) => return error(g, e),
    };
    let mut plan = engine::plan(&observations);
    plan.changes.retain(|c| targets.covers(&c.address.0));
    let paint = Paint { on: g.color.enabled_for_stdout() };
    if a.format == Format::Text {
        out(&render::text::plan(&plan, paint));
    }
    let destructive: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.destructive)
        .map(|c| {
            let attrs: Vec<&str> = c.attributes.iter().filter(|x| x.destructive).map(|x| x.name.as_str()).collect();
            format!("{} ({})", c.address, attrs.join(", "))
        })
        .collect();
    if !destructive.is_empty() && !a.allow_destroy {
        return error(
            g,
            format!(
                "the plan has destructive changes and --allow-destroy was not given; nothing was changed: {}",
                destructive.join("; ")
            ),
        );
    }
    let manual: Vec<&str> = plan.changes.iter().filter(|c| !c.is_noop()).filter_map(|c| c.manual.as_deref()).collect();
    if !plan.has_actionable() {
        if !manual.is_empty() {
            note(g, format!("Nothing for apply to do; {} manual step(s) remain (see above).", manual.len()));
        }
        if a.format == Format::Json {
            out(&format!("{:#}\n", render::json::applied(&[])));
        }
        return if plan.is_incomplete() {
            error(g, "some settings could not be read or cannot be reconciled (see above)")
        } else {
            0
        };
    }
    if !a.auto_approve {
        eprint!("Apply these changes? Only 'yes' is accepted: ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            note(g, "Apply cancelled; nothing was changed.");
            return 1;
        }
    }
    let results = match engine::apply(&aws, &observations, g.concurrency as usize, &targets).await {
        Ok(r) => r,
        Err(e) => return error(g, format!("{e}; a re-run of apply continues from the live state")),
    };
    match a.format {
        Format::Text => out(&render::text::applied(&results, paint)),
        Format::Json => out(&format!("{:#}\n", render::json::applied(&results))),
    }
    if !manual.is_empty() {
        note(g, format!("{} manual step(s) remain (see the plan above).", manual.len()));
    }
    if results.iter().any(|r| r.failed()) {
        return error(g, "apply did not complete; fix the errors above and re-run (it converges from the live state)");
    }
    if plan.is_incomplete() {
        return error(g, "some settings could not be read or cannot be reconciled (see above)");
    }
    0
}
