//! `plan`: observe, diff, print. Never writes.

use clap::Args;

use super::{connect, error, load_policy, out, Format, Global, PolicyArg};
use crate::engine;
use crate::render::{self, Paint};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    #[command(flatten)]
    pub targets: super::TargetArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 2 when something differs (0 when nothing does, 1 on error).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

pub async fn run(g: &Global, a: &PlanArgs) -> u8 {
    let Some(policy) = load_policy(g, &a.policy.file) else {
        return 1;
    };
    let Some((targets, policy)) = a.targets.apply(g, policy) else {
        return 1;
    };
    let aws = connect(g, &policy).await;
    let observations = match super::observe(g, &aws, &policy, false).await {
        Ok(o) => o,
        Err(e) => return error(g, e),
    };
    let mut plan = engine::plan(&observations);
    plan.changes.retain(|c| targets.covers(&c.address.0));
    match a.format {
        Format::Text => out(&render::text::plan(&plan, Paint { on: g.color.enabled_for_stdout() })),
        Format::Json => out(&format!("{:#}\n", render::json::plan(&plan))),
    }
    if plan.is_incomplete() {
        return error(g, "the plan is incomplete: some settings could not be read or cannot be reconciled (see above)");
    }
    if a.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    }
}
