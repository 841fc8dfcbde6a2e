//! `restore postgres.NAME --into DIR [--target-time T | --target latest]`:
//! the disaster-recovery restore from the point-in-time repository into an
//! empty directory, then the steps that remain for the operator, with the
//! measured times.

use clap::Args;

use super::{error, out, Format, Global, PolicyArg};
use crate::jobs::{JobError, JobKind, Outcome, Stage};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    /// What to restore: postgres.NAME (an instance with `pitr:`).
    #[arg(value_name = "ADDR")]
    pub address: String,
    /// An empty (or absent) directory: the restored cluster's data directory. A non-empty one is refused and nothing is changed.
    #[arg(long, value_name = "DIR")]
    pub into: std::path::PathBuf,
    /// Recover to this RFC 3339 time, e.g. 2026-12-02T04:22:20.340Z (default: the end of the WAL archive).
    #[arg(long, value_name = "TIME", conflicts_with = "target")]
    pub target_time: Option<String>,
    /// `latest`: recover to the end of the WAL archive (the default).
    #[arg(long, value_name = "latest", value_parser = ["latest"])]
    pub target: Option<String>,
    /// Output format of the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub notify: super::JobNotify,
}

pub async fn run(g: &Global, a: &RestoreArgs) -> u8 {
    let start = match super::JobStart::new(g, JobKind::Restore, &a.policy.file, &a.address, &a.notify).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (hooks, policy, job) = (&start.hooks, &start.policy, start.job);
    let mut ctx = start.ctx(None);
    ctx.target_time = a.target_time.clone();
    ctx.into = Some(a.into.clone());
    // Ctrl-C drops the restore: its cluster is stopped and what it put
    // into DIR removed as it unwinds.
    let r = tokio::select! {
        r = job.run(&ctx, policy, &a.address) => r,
        _ = tokio::signal::ctrl_c() => Err(JobError::Interrupted("; what it restored was removed")),
    };
    let r = match r {
        Ok(Outcome::Restored(r)) => Ok(r),
        Ok(_) => Err(JobError::failed(Stage::Prepare, "the job is not a restore")),
        Err(e) => Err(e),
    };
    let report = crate::notify::JobRun {
        command: JobKind::Restore.command(),
        address: a.address.clone(),
        ok: r.is_ok(),
        object: r.as_ref().ok().map(|d| d.into.clone()),
        bytes: None,
        seconds: r.as_ref().ok().map(|d| d.restore_seconds + d.replay_seconds),
        reason: r.as_ref().err().map(JobError::to_string),
        stage: r.as_ref().err().map(|e| e.stage().as_str()),
    };
    super::notify_job(g, hooks, a.notify.notify_format, &report).await;
    let done = match r {
        Ok(d) => d,
        Err(e) => return error(g, format!("restore {} failed: {e}", a.address)),
    };
    match a.format {
        Format::Json => out(&format!("{}\n", serde_json::to_string_pretty(&done).unwrap_or_default())),
        Format::Text => {
            let fallback = format!("restore {}: restored into {}\n", done.instance, done.into);
            out(&job.render(&Outcome::Restored(done)).unwrap_or(fallback))
        }
    }
    0
}
