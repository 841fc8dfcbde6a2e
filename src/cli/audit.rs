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
    /// Report format: of stdout, or of the one `--output` FILE (default:
    /// from its extension, else text).
    #[arg(long, value_enum)]
    pub format: Option<AuditFormat>,
    /// Write the report to FILE instead of stdout. Repeatable: one audit,
    /// one report per file, each in the format its extension says —
    /// .txt, .json, .md, .xml (JUnit), .sarif, .html, .prom (OpenMetrics).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Vec<PathBuf>,
    /// Post to this webhook when the outcome changes — a control or
    /// objective starts failing, or recovers (repeatable). `env:NAME` reads
    /// the URL from the environment variable NAME (the URL is a secret;
    /// only its host is ever printed).
    #[arg(long, value_name = "URL|env:NAME", requires = "state")]
    pub notify: Vec<String>,
    /// The message format for --notify.
    #[arg(long, value_enum, default_value_t = crate::notify::NotifyFormat::Slack)]
    pub notify_format: crate::notify::NotifyFormat,
    /// Where the outcome of the last audit is kept, to post only changes: a
    /// file, or `s3://BUCKET/KEY` for a scheduled job on fresh runners
    /// (created when absent; updated once every webhook took the message).
    #[arg(long, value_name = "FILE|s3://BUCKET/KEY")]
    pub state: Option<String>,
    /// Download and hash the newest backup of each entry whose checksum S3
    /// cannot compare with its SHA-256 sidecar (an upload that sent a CRC
    /// or none): streamed, one chunk in memory. Without it such a backup's
    /// BACKUP-INTEGRITY is unknown.
    #[arg(long)]
    pub verify_download: bool,
    /// Audit only share INDEX of OF of the estate (by account, then
    /// resource), for a CI matrix; `audit merge` joins the shards' JSON
    /// reports.
    #[arg(long, value_name = "INDEX/OF")]
    pub shard: Option<String>,
    /// `merge SHARD.json…`: one report from the shards' JSON reports, the
    /// objectives judged over the whole (with -f POLICY).
    #[arg(value_name = "merge SHARD.json")]
    pub rest: Vec<String>,
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
    // Webhooks are checked before anything is read.
    let env = |k: &str| std::env::var(k).ok();
    let hooks: Vec<String> = match a.notify.iter().map(|n| crate::notify::resolve(n, &env)).collect() {
        Ok(h) => h,
        Err(e) => return error(g, e),
    };
    // Where each report goes is checked before anything is read.
    if let Err(e) = outputs(a) {
        return error(g, e.to_string());
    }
    let Some(policy) = super::load_policy(g, &a.policy.file) else { return 1 };
    if let Some(first) = a.rest.first() {
        if first != "merge" || a.rest.len() < 2 {
            return error(
                g,
                format!("`audit {first}`: write `audit merge -f POLICY SHARD.json…` to join shards' reports"),
            );
        }
        return merge(g, a, &policy).await;
    }
    let Some((targets, policy)) = a.targets.apply(g, policy) else { return 1 };
    let shard = match a.shard.as_deref().map(super::shards::parse).transpose() {
        Ok(s) => s,
        Err(e) => return error(g, e),
    };
    let policy = match shard {
        Some(s) => super::shards::cut(&policy, s),
        None => policy,
    };
    // A system that cannot be reached does not stop the audit: its controls
    // are unknown with the reason, and the report, the metrics and the
    // notification still go out (a silent nightly audit is the failure).
    let aws = super::connect(g, policy.default_region.as_deref()).await;
    let progress = super::Progress::start(g, &aws, "reading the live state");
    let (mut report, reach) = engine::audit_all(&aws, &policy, g.concurrency as usize, a.verify_download).await;
    progress.finish();
    let engine::Reached { accounts, unreached } = reach;
    for e in &unreached {
        let _ = error(g, format!("{e}; the controls it would judge are reported unknown"));
    }
    let uses_aws = crate::providers::uses_aws(&policy);
    let account = if uses_aws && unreached.is_empty() { aws.account().await } else { None };
    report.run = Some(crate::audit::RunContext {
        generated_at: crate::model::time::format_time("%Y-%m-%dT%H:%M:%SZ", crate::model::time::now()),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        account,
        regions: regions(&policy, aws.default_region()),
        policy: policy.file.clone(),
    });
    report.unreached = unreached;
    let reached: Vec<crate::audit::Reached> = accounts.into_iter().map(|r| (r.name, r.id, r.unreachable)).collect();
    report.controls.retain(|c| targets.touches(c.address.as_str()));
    // The controls mask what they know to be secret; this is the last sweep.
    report.redact(&crate::providers::sensitive_values(&policy));
    let today = crate::model::time::format_time("%Y-%m-%d", crate::model::time::now());
    crate::audit::apply_waivers(&mut report, &policy.waivers, &today);
    report.judge_accounts(&reached);
    report.shard = shard;
    // A shard's objectives cover its share; `audit merge` judges the whole.
    report.objectives = crate::audit::objectives::evaluate(&report, &policy);
    finish(g, a, Some((&hooks, &aws)), report, &policy).await
}

/// `audit merge -f POLICY SHARD.json…`: the shards' reports as one, the
/// objectives judged over the whole estate, rendered as `--format` says.
async fn merge(g: &Global, a: &AuditArgs, policy: &crate::policy::Policy) -> u8 {
    let files: Vec<&std::path::Path> = a.rest[1..].iter().map(std::path::Path::new).collect();
    let (mut report, reached) = match super::shards::merge(&files) {
        Ok(r) => r,
        Err(e) => return error(g, e),
    };
    report.judge_accounts(&reached);
    report.objectives = crate::audit::objectives::evaluate(&report, policy);
    if a.state.is_some() || a.shard.is_some() {
        return error(g, "audit merge reads the shards' reports: it takes no --state, --notify or --shard");
    }
    finish(g, a, None, report, policy).await
}

/// Render the report, write it, post what changed, and say how it went in
/// the exit code: 0 compliant, 2 not, 1 could not run in full.
async fn finish(
    g: &Global,
    a: &AuditArgs,
    notifying: Option<(&[String], &crate::aws::Aws)>,
    report: crate::audit::Report,
    policy: &crate::policy::Policy,
) -> u8 {
    let render = |format: AuditFormat, paint: bool| match format {
        AuditFormat::Text => render::text::audit(&report, Paint { on: paint }),
        AuditFormat::Json => format!("{:#}\n", render::json::audit(&report)),
        AuditFormat::Markdown => render::markdown::report(&report),
        AuditFormat::Junit => render::junit::report(&report),
        AuditFormat::Sarif => format!("{:#}\n", render::sarif::report(&report, &policy.file)),
        AuditFormat::Html => render::html::report(&report, &policy.file),
        AuditFormat::Openmetrics => render::openmetrics::report(&report),
    };
    let outputs = match outputs(a) {
        Ok(o) => o,
        Err(e) => return error(g, e.to_string()),
    };
    if outputs.is_empty() {
        out(&render(a.format.unwrap_or(AuditFormat::Text), g.color.enabled_for_stdout()));
    }
    for (path, format) in outputs {
        let text = match format {
            // The audit's own job gauges, the dead-man rule's input,
            // addressed by the policy it audits: its last success is kept
            // from the file's former content.
            AuditFormat::Openmetrics => {
                let interval = policy.audit_schedule.as_ref().map(|s| s.interval_secs);
                let (kind, address) = ("audit", policy.file.as_str());
                let times = render::openmetrics::JobTimes::from_file(path, kind, address, interval);
                render::openmetrics::with_job(render(format, false), kind, address, &times, report.unreached.is_empty())
            }
            _ => render(format, false),
        };
        // node_exporter's textfile collector must never read half a file.
        if let Err(e) = super::write_atomically(path, &text) {
            return error(g, format!("cannot write {}: {e}", path.display()));
        }
    }
    if let (Some(state), Some((hooks, aws))) = (&a.state, notifying) {
        notify(g, a, hooks, state, aws, &report, &policy.file).await;
    }
    let s = report.summary();
    if !report.unreached.is_empty() {
        // Said once, above; the report has every control it concerns.
        return 1;
    }
    if s.unknown > 0 {
        return error(g, format!("{} control(s) could not be evaluated (see the report)", s.unknown));
    }
    if report.compliant() {
        0
    } else {
        2
    }
}

/// Each `--output` file with the format it is written in: the one file in
/// `--format` when given, else each by its extension (one file with an
/// extension not known: text).
fn outputs(a: &AuditArgs) -> Result<Vec<(&std::path::Path, AuditFormat)>, OutputError> {
    match (a.output.as_slice(), a.format) {
        ([one], Some(f)) => Ok(vec![(one.as_path(), f)]),
        ([one], None) => Ok(vec![(one.as_path(), by_extension(one).unwrap_or(AuditFormat::Text))]),
        (many, Some(_)) if many.len() > 1 => Err(OutputError::FormatWithMany),
        (many, _) => many
            .iter()
            .map(|p| by_extension(p).map(|f| (p.as_path(), f)).ok_or_else(|| OutputError::Extension(p.clone())))
            .collect(),
    }
}

/// Why the `--output` files cannot be written as asked.
#[derive(Debug, thiserror::Error)]
enum OutputError {
    #[error("--format names one format; with several --output files each takes its format from its extension (.txt, .json, .md, .xml, .sarif, .html, .prom): leave --format out")]
    FormatWithMany,
    #[error("cannot tell the report format of {} from its extension: write .txt, .json, .md, .xml (JUnit), .sarif, .html or .prom (OpenMetrics)", .0.display())]
    Extension(PathBuf),
}

/// The report format a file's extension names.
fn by_extension(path: &std::path::Path) -> Option<AuditFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "text" => AuditFormat::Text,
        "json" => AuditFormat::Json,
        "md" | "markdown" => AuditFormat::Markdown,
        "xml" | "junit" => AuditFormat::Junit,
        "sarif" => AuditFormat::Sarif,
        "html" | "htm" => AuditFormat::Html,
        "prom" | "om" | "openmetrics" => AuditFormat::Openmetrics,
        _ => return None,
    })
}

/// Post what changed since the state file's outcome to every webhook, then
/// keep the new outcome — only when every webhook took the message, so a
/// failed delivery is tried again by the next run. Never changes the exit
/// code; a problem is one line on stderr.
async fn notify(
    g: &Global,
    a: &AuditArgs,
    hooks: &[String],
    state: &str,
    aws: &crate::aws::Aws,
    report: &crate::audit::Report,
    policy_file: &str,
) {
    use crate::notify::state as s3state;
    use crate::notify::{Change, Outcome};
    let before = match s3state::parse(state) {
        Some((bucket, key)) => match s3state::read(aws, &bucket, &key).await {
            Ok(text) => text.map(|t| Outcome::parse(&t, state)).transpose(),
            Err(e) => Err(e),
        },
        None => Outcome::load(std::path::Path::new(state)),
    };
    // The state lives in S3 and S3 cannot be reached: post the whole
    // outcome (as on a first run) rather than stay silent, and keep the
    // state as it was, so the run after the outage compares with it.
    let (before, keep_state) = match before {
        Ok(b) => (b, true),
        Err(e) if !report.unreached.is_empty() => {
            let _ = error(g, format!("notify: {e}; posting the whole outcome"));
            (None, false)
        }
        Err(e) => {
            let _ = error(g, format!("notify: {e}; nothing posted"));
            return;
        }
    };
    let now = Outcome::of(report);
    let change = Change::between(before.as_ref(), &now);
    let mut delivered = true;
    if !change.is_empty() {
        let body = crate::notify::message(a.notify_format, report, &change, policy_file);
        for hook in hooks {
            match crate::notify::deliver(hook, &body, crate::notify::DELIVERY_BUDGET).await {
                Ok(()) => super::note(g, format!("notify: posted to {}", crate::notify::shown(hook))),
                Err(e) => {
                    delivered = false;
                    let _ = error(g, format!("notify: {e}"));
                }
            }
        }
    }
    if delivered && keep_state {
        let saved = match s3state::parse(state) {
            Some((bucket, key)) => s3state::write(aws, &bucket, &key, now.to_text()).await.map_err(|e| e.to_string()),
            None => super::write_atomically(std::path::Path::new(state), &now.to_text())
                .map_err(|e| format!("cannot write {state}: {e}")),
        };
        if let Err(e) = saved {
            let _ = error(g, format!("notify: {e}"));
        }
    }
}

/// The regions the policy's resources are in, sorted.
fn regions(policy: &crate::policy::Policy, default: Option<&str>) -> Vec<String> {
    crate::providers::regions(policy, default.or(policy.default_region.as_deref()).unwrap_or("us-east-1"))
}
