//! `audit`: judge every control against the live state. Never writes.

use std::path::PathBuf;

use clap::Args;

use clap::ValueEnum;

use super::{error, out, Global, PolicyArg};
use crate::engine;
use crate::render::{self, Paint};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    #[command(flatten)]
    pub targets: super::TargetArg,
    /// Report format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub format: AuditFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Text,
    Json,
    Markdown,
    Junit,
    Sarif,
    Html,
    /// OpenMetrics text (Prometheus): for node_exporter's textfile
    /// collector with `--output`.
    Openmetrics,
}

pub async fn run(g: &Global, a: &AuditArgs) -> u8 {
    let super::Prepared { targets, policy, snapshot: observations, .. } =
        match super::prepare(g, &a.policy.file, &a.targets, true).await {
            Ok(p) => p,
            Err(code) => return code,
        };
    let mut report = engine::audit(&observations);
    report.controls.retain(|c| targets.touches(c.address.as_str()));
    let today = crate::model::time::format_time("%Y-%m-%d", crate::model::time::now());
    crate::audit::apply_waivers(&mut report, &policy.waivers, &today);
    report.objectives = crate::audit::objectives::evaluate(&report, &policy);
    let to_file = a.output.is_some();
    let text = match a.format {
        AuditFormat::Text => render::text::audit(&report, Paint { on: !to_file && g.color.enabled_for_stdout() }),
        AuditFormat::Json => format!("{:#}\n", render::json::audit(&report)),
        AuditFormat::Markdown => render::markdown::report(&report),
        AuditFormat::Junit => render::junit::report(&report),
        AuditFormat::Sarif => format!("{:#}\n", render::sarif::report(&report, &policy.file)),
        AuditFormat::Html => render::html::report(&report, &policy.file),
        AuditFormat::Openmetrics => render::openmetrics::report(&report),
    };
    match &a.output {
        Some(path) => {
            // Written beside, then renamed over: a collector reading the
            // file (node_exporter's textfile collector) never sees half.
            let tmp = path.with_file_name(format!(
                ".{}.tmp",
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            ));
            if let Err(e) = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, path)) {
                let _ = std::fs::remove_file(&tmp);
                return error(g, format!("cannot write {}: {e}", path.display()));
            }
        }
        None => out(&text),
    }
    let s = report.summary();
    if s.unknown > 0 {
        return error(g, format!("{} control(s) could not be evaluated (see the report)", s.unknown));
    }
    if s.failed > 0 {
        2
    } else {
        0
    }
}
