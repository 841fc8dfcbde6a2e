//! `plan`: observe, diff, print. Never writes.

use clap::Args;

use std::path::PathBuf;

use clap::ValueEnum;

use super::{error, out, Global, PolicyArg};
use crate::engine;
use crate::render::{self, Paint};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    #[command(flatten)]
    pub targets: super::TargetArg,
    /// Output format (markdown: for pull-request comments, split into parts
    /// of at most 65,536 characters).
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Write the plan to FILE; Markdown parts after the first go to
    /// FILE.2, FILE.3… (before the extension).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Save the plan (changes + fingerprints of what was observed) for
    /// `apply FILE`.
    #[arg(long = "out", value_name = "PLAN.json")]
    pub out: Option<PathBuf>,
    /// Exit 2 when something differs (0 when nothing does, 1 on error).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

/// FILE, FILE.2.md… for part i (1-based) of a Markdown plan.
fn part_path(base: &std::path::Path, i: usize) -> PathBuf {
    if i == 1 {
        return base.to_path_buf();
    }
    let stem = base.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}.{i}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{i}"),
    };
    base.with_file_name(name)
}

pub async fn run(g: &Global, a: &PlanArgs) -> u8 {
    let super::Prepared { targets, snapshot: observations, .. } =
        match super::prepare(g, &a.policy.file, &a.targets, false).await {
            Ok(p) => p,
            Err(code) => return code,
        };
    let mut plan = engine::plan(&observations);
    plan.changes.retain(|c| targets.covers(c.address.as_str()));
    if let Some(path) = &a.out {
        let bytes = std::fs::read(&a.policy.file).unwrap_or_default();
        let saved = crate::saved_plan::SavedPlan {
            format_version: crate::saved_plan::FORMAT_VERSION.into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            policy_file: a.policy.file.display().to_string(),
            policy_sha256: crate::saved_plan::sha256_hex(&bytes),
            targets: targets.list.clone(),
            fingerprints: crate::saved_plan::fingerprints(&observations),
            changes: plan.changes.iter().map(crate::model::Change::masked).collect(),
        };
        let text = serde_json::to_string_pretty(&saved).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(path, text) {
            return error(g, format!("cannot write {}: {e}", path.display()));
        }
    }
    let parts = match a.format {
        PlanFormat::Text => {
            vec![render::text::plan(&plan, Paint { on: a.output.is_none() && g.color.enabled_for_stdout() })]
        }
        PlanFormat::Json => vec![format!("{:#}\n", render::json::plan(&plan))],
        PlanFormat::Markdown => render::markdown::plan(&plan, render::markdown::COMMENT_LIMIT),
    };
    match &a.output {
        Some(path) => {
            for (i, part) in parts.iter().enumerate() {
                let p = part_path(path, i + 1);
                if let Err(e) = std::fs::write(&p, part) {
                    return error(g, format!("cannot write {}: {e}", p.display()));
                }
            }
            if parts.len() > 1 {
                super::note(g, format!("the plan is in {} parts: {} …", parts.len(), path.display()));
            }
        }
        None => out(&parts.join("\n")),
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
