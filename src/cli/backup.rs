//! `backup run ADDR`: take one backup now, through the job its system
//! declares (PostgreSQL: pg_dump; Redis: an RDB snapshot) into S3 with its
//! SHA-256 sidecar. One result line for schedulers, or JSON; `--metrics`
//! and `--notify` say it to monitoring, on failure too.

use clap::{Args, Subcommand};

use super::{error, out, Format, Global, PolicyArg};
use crate::jobs::{JobError, JobKind, Outcome, Stage};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// (`backup -f POLICY ADDR` without `run`: caught to say so.)
    #[arg(short = 'f', long = "file", hide = true)]
    pub file: Option<std::path::PathBuf>,
    #[arg(hide = true)]
    pub rest: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    #[command(
        about = "Take one backup now",
        long_about = format!("Take one backup now, one of:\n{}", crate::providers::job_lines(JobKind::Backup))
    )]
    Run(RunArgs),
    /// Print the configuration file of the engine a backup job drives, for the host that runs it: `backup config postgres.NAME.pitr` prints pgBackRest's (from the policy; no secret in it).
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    /// The job, e.g. postgres.primary.pitr.
    #[arg(value_name = "ADDR")]
    pub address: String,
}

/// `backup config ADDR`: the job's engine configuration on stdout.
async fn config(g: &Global, a: &ConfigArgs) -> u8 {
    let start = match super::JobStart::new(
        g,
        JobKind::Backup,
        &a.policy.file,
        &a.address,
        &super::JobNotify { notify: Vec::new(), notify_format: crate::notify::NotifyFormat::Slack },
    )
    .await
    {
        Ok(s) => s,
        Err(code) => return code,
    };
    let ctx = start.ctx(None);
    let Some(fut) = start.job.config(&ctx, &start.policy, &a.address) else {
        return error(g, format!("the backup job of {} drives no engine that needs a configuration file", a.address));
    };
    let r = fut.await;
    match r {
        Ok(text) => {
            out(&text);
            0
        }
        Err(e) => error(g, format!("backup config {}: {e}", a.address)),
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    /// What to back up, e.g. postgres.primary or redis.queues.
    #[arg(value_name = "ADDR")]
    pub address: String,
    /// Output format of the result line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the result as OpenMetrics gauges to FILE (atomically, for
    /// node_exporter's textfile collector), on failure too.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub notify: super::JobNotify,
}

pub async fn run(g: &Global, a: &BackupArgs) -> u8 {
    if let Some(BackupCommand::Config(c)) = &a.command {
        return config(g, c).await;
    }
    let Some(BackupCommand::Run(a)) = &a.command else {
        let file = a.file.as_ref().map_or("POLICY".to_string(), |f| f.display().to_string());
        let addr = a.rest.first().cloned().unwrap_or_else(|| "ADDR".into());
        return error(g, format!("`backup` takes a subcommand: suoops-policy backup run -f {file} {addr}"));
    };
    let start = match super::JobStart::new(g, JobKind::Backup, &a.policy.file, &a.address, &a.notify).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (hooks, policy, job, aws) = (&start.hooks, &start.policy, start.job, &start.aws);
    let ctx = start.ctx(None);
    // Ctrl-C: stop the dump (dropping the job kills it) and abort the
    // multipart upload, so nothing is left behind.
    let r = tokio::select! {
        r = job.run(&ctx, policy, &a.address) => r,
        _ = tokio::signal::ctrl_c() => Err(JobError::Interrupted("")),
    };
    let r = match r {
        Ok(Outcome::Backup(done)) => Ok(done),
        Ok(Outcome::Drill(_) | Outcome::Restored(_)) => {
            Err(JobError::failed(Stage::Prepare, "the job is not a backup"))
        }
        Err(e) => {
            crate::jobs::upload::abort_pending(aws, &ctx.pending).await;
            Err(e)
        }
    };
    if let Some(path) = &a.metrics {
        let entry = job.entry(policy, &a.address).map(|b| b.address()).unwrap_or_default();
        let interval = job.schedule(policy, &a.address).map(|s| s.interval_secs);
        let times = crate::render::openmetrics::JobTimes::from_file(path, "backup", &a.address, interval);
        let text = crate::render::openmetrics::backup_run(
            &a.address,
            &entry,
            crate::model::time::now(),
            r.as_ref().ok().map(|d| (d.bytes, d.seconds)),
            &times,
        );
        if let Err(e) = super::write_atomically(path, &text) {
            error(g, format!("cannot write {}: {e}", path.display()));
        }
    }
    let report = crate::notify::JobRun {
        command: JobKind::Backup.command(),
        address: a.address.clone(),
        ok: r.is_ok(),
        object: r.as_ref().ok().map(|d| format!("s3://{}/{}", d.bucket, d.key)),
        bytes: r.as_ref().ok().map(|d| d.bytes),
        seconds: r.as_ref().ok().map(|d| d.seconds),
        reason: r.as_ref().err().map(failed),
        stage: r.as_ref().err().map(|e| e.stage().as_str()),
    };
    super::notify_job(g, hooks, a.notify.notify_format, &report).await;
    match r {
        Ok(done) => {
            match a.format {
                Format::Json => out(&format!("{}\n", serde_json::to_string(&done).unwrap_or_default())),
                Format::Text => out(&match &done.detail {
                    Some(d) => format!(
                        "backup {}: s3://{}/{} {} bytes stored, {d}, in {:.1} s\n",
                        done.instance, done.bucket, done.key, done.bytes, done.seconds
                    ),
                    None => format!(
                        "backup {}: s3://{}/{} {} bytes sha256 {} in {:.1} s\n",
                        done.instance, done.bucket, done.key, done.bytes, done.sha256, done.seconds
                    ),
                }),
            }
            0
        }
        Err(e) => error(g, format!("backup {} failed: {}", a.address, failed(&e))),
    }
}

/// A failed job's error, with "nothing was stored" unless it may have been.
fn failed(e: &JobError) -> String {
    if e.maybe_stored() {
        e.to_string()
    } else {
        format!("{e}; nothing was stored")
    }
}
