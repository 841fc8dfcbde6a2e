//! `restore-drill ADDR`: restore the newest dump into a throw-away
//! database, run the checks, measure the time to restore; the record goes
//! beside the backups (audit's RESTORE-DRILL reads it) and, with --log,
//! a row into the strategy's Markdown log.

use std::io::Write;

use clap::Args;

use super::{error, out, Format, Global, PolicyArg};
use crate::jobs::{JobError, JobKind, Outcome};

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    /// What to drill, e.g. postgres.primary or redis.queues.
    #[arg(value_name = "ADDR")]
    pub address: String,
    /// Who ran it, for the record (default: $SUOOPS_OPERATOR, $GITHUB_ACTOR, $USER).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Append a row to this Markdown log (created with its header if new),
    /// e.g. docs/backup-restore-test-log.md.
    #[arg(long, value_name = "FILE")]
    pub log: Option<std::path::PathBuf>,
    /// Output format of the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the result as OpenMetrics gauges to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub notify: super::JobNotify,
    /// Point-in-time drills (postgres.NAME.pitr): recover to this RFC 3339 time, e.g. 2026-12-02T04:22:20.340Z; rows committed before it are there, later ones are not.
    #[arg(long, value_name = "TIME", conflicts_with = "target")]
    pub target_time: Option<String>,
    /// Point-in-time drills: `latest` recovers to the end of the WAL archive (the default).
    #[arg(long, value_name = "latest", value_parser = ["latest"])]
    pub target: Option<String>,
}

/// The drill's row appended to the restore log, its header first in a new
/// file.
fn append_log(path: &std::path::Path, rec: &crate::jobs::Record) -> std::io::Result<()> {
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    if new {
        f.write_all(crate::jobs::LOG_HEADER.as_bytes())?;
    }
    f.write_all(crate::jobs::log_row(rec).as_bytes())
}

/// The result as text: the job's own first lines (a point-in-time drill's
/// phases and RPO), else the dump drill's, then the dump, the checks and
/// the reason.
fn text(job: &dyn crate::jobs::Job, outcome: &Outcome, rec: &crate::jobs::Record) -> String {
    let p = &rec.phases;
    let mut text = job.render(outcome).unwrap_or_else(|| {
        format!(
            "restore-drill {}: {} in {:.1} s (RTO {} s): download {:.1} s, restore {:.1} s, migrate {:.1} s, checks {:.1} s\n",
            rec.instance,
            if rec.passed() { "PASSED" } else { "FAILED" },
            rec.total_seconds,
            rec.rto_seconds,
            p.download,
            p.restore,
            p.migrate,
            p.checks
        )
    });
    if let Some(d) = &rec.dump {
        text.push_str(&format!("  dump s3://{}/{} ({} bytes, sha256 {})\n", d.bucket, d.key, d.bytes, d.sha256));
    }
    for c in &rec.checks {
        text.push_str(&format!(
            "  {} {}: {}\n",
            if c.passed { "ok  " } else { "FAIL" },
            c.name,
            c.value.map_or("no value".to_string(), |v| v.to_string())
        ));
    }
    if let Some(r) = &rec.reason {
        text.push_str(&format!("  reason: {r}\n"));
    }
    text
}

pub async fn run(g: &Global, a: &DrillArgs) -> u8 {
    let start = match super::JobStart::new(g, JobKind::Drill, &a.policy.file, &a.address, &a.notify).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (hooks, policy, job) = (&start.hooks, &start.policy, start.job);
    let mut ctx = start.ctx(a.operator.as_deref());
    if a.target_time.is_some() || a.target.is_some() {
        if !job.takes_target() {
            let which: Vec<&str> = crate::providers::jobs()
                .filter(|j| j.kind() == JobKind::Drill && j.takes_target())
                .map(|j| j.synopsis().split(':').next().unwrap_or_default())
                .collect();
            return error(
                g,
                format!(
                    "--target-time and --target are for point-in-time drills ({}), not {}",
                    which.join(", "),
                    a.address
                ),
            );
        }
        ctx.target_time = a.target_time.clone();
    }
    // Ctrl-C drops the drill: its cluster is stopped and its files removed
    // as it unwinds.
    let rec = tokio::select! {
        r = job.run(&ctx, policy, &a.address) => r,
        _ = tokio::signal::ctrl_c() => Err(JobError::Interrupted("; what it made was removed, no record written")),
    };
    if let Some(path) = &a.metrics {
        // Written on failure too: the dead-man rule keeps the last success
        // and sees the attempt.
        let interval = job.schedule(policy, &a.address).map(|s| s.interval_secs);
        let times = crate::render::openmetrics::JobTimes::from_file(path, "drill", &a.address, interval);
        let drill = match &rec {
            Ok(Outcome::Drill(r)) => Some(r.as_ref()),
            _ => None,
        };
        let text = crate::render::openmetrics::restore_drill(&a.address, drill, crate::model::time::now(), &times);
        if let Err(e) = super::write_atomically(path, &text) {
            error(g, format!("cannot write {}: {e}", path.display()));
        }
    }
    let outcome = match rec {
        Ok(o @ Outcome::Drill(_)) => o,
        Ok(Outcome::Backup(_) | Outcome::Restored(_)) => return error(g, "the job is not a drill"),
        Err(e) => {
            let report = crate::notify::JobRun {
                command: JobKind::Drill.command(),
                address: a.address.clone(),
                ok: false,
                object: None,
                bytes: None,
                seconds: None,
                reason: Some(format!("could not complete: {e}")),
                stage: Some(e.stage().as_str()),
            };
            super::notify_job(g, hooks, a.notify.notify_format, &report).await;
            return error(g, format!("restore-drill {} could not complete: {e}", a.address));
        }
    };
    let Outcome::Drill(rec) = &outcome else { return error(g, "the job is not a drill") };
    let report = crate::notify::JobRun {
        command: JobKind::Drill.command(),
        address: a.address.clone(),
        ok: rec.passed(),
        object: rec.dump.as_ref().map(|d| format!("s3://{}/{}", d.bucket, d.key)),
        bytes: rec.dump.as_ref().map(|d| d.bytes),
        seconds: Some(rec.total_seconds),
        reason: rec.reason.clone(),
        stage: rec.failed_stage.map(|s| s.as_str()),
    };
    super::notify_job(g, hooks, a.notify.notify_format, &report).await;
    if let Some(path) = &a.log {
        if let Err(e) = append_log(path, rec) {
            error(g, format!("cannot append to {}: {e}", path.display()));
        }
    }
    match a.format {
        Format::Json => out(&format!("{}\n", serde_json::to_string_pretty(&rec).unwrap_or_default())),
        Format::Text => out(&text(job, &outcome, rec)),
    }
    if rec.passed() {
        0
    } else {
        2
    }
}
