//! `backup run ADDR`: the strategy's dump job (PostgreSQL: pg_dump into S3
//! with its SHA-256 sidecar). One result line for schedulers, or JSON.

use clap::{Args, Subcommand};

use super::{connect, error, load_policy, out, Format, Global, PolicyArg};
use crate::providers::s3::upload::{self, Pending};

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
    /// Take one backup now: postgres.NAME (pg_dump) or redis.NAME (an RDB snapshot) into its `backup.to` entry.
    Run(RunArgs),
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
}

pub async fn run(g: &Global, a: &BackupArgs) -> u8 {
    let Some(BackupCommand::Run(a)) = &a.command else {
        let file = a.file.as_ref().map_or("POLICY".to_string(), |f| f.display().to_string());
        let addr = a.rest.first().cloned().unwrap_or_else(|| "ADDR".into());
        return error(g, format!("`backup` takes a subcommand: suoops-policy backup run -f {file} {addr}"));
    };
    let Some(policy) = load_policy(g, &a.policy.file) else { return 1 };
    let pg = a.address.strip_prefix("postgres.").and_then(|n| policy.postgres.iter().find(|p| p.name == n));
    let redis = a.address.strip_prefix("redis.").and_then(|n| policy.redis.iter().find(|r| r.name == n));
    let known: Vec<String> = policy
        .postgres
        .iter()
        .filter(|p| p.backup.is_some())
        .map(|p| format!("postgres.{}", p.name))
        .chain(policy.redis.iter().filter(|r| r.backup.is_some()).map(|r| format!("redis.{}", r.name)))
        .collect();
    let declared = pg.map(|p| p.backup.is_some()).or(redis.map(|r| r.backup.is_some()));
    if declared != Some(true) {
        return error(
            g,
            super::no_job(
                &policy.file,
                &a.address,
                declared.is_some(),
                "backup",
                "backup: {to: s3.BUCKET.backups.ENTRY}",
                &known,
            ),
        );
    }
    let aws = connect(g, policy.default_region.as_deref()).await;
    let default_region = aws.default_region().unwrap_or("us-east-1").to_string();
    let pending: Pending = Default::default();
    let job = async {
        match (pg, redis) {
            (Some(spec), _) => crate::providers::postgres::backup::run(&aws, spec, &default_region, &pending).await,
            (_, Some(spec)) => crate::providers::redis::backup::run(&aws, spec, &default_region, &pending).await,
            _ => Err("nothing to back up".into()),
        }
    };
    // Ctrl-C: stop pg_dump (dropping the job kills it) and abort the
    // multipart upload, so nothing is left behind.
    let r = tokio::select! {
        r = job => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
    };
    if let Some(path) = &a.metrics {
        let entry = pg
            .and_then(|p| p.backup.as_ref().map(|b| b.to.address()))
            .or_else(|| redis.and_then(|r| r.backup.as_ref().map(|b| b.address())))
            .unwrap_or_default();
        let text = crate::render::openmetrics::backup_run(
            &a.address,
            &entry,
            crate::model::time::now(),
            r.as_ref().ok().map(|d| (d.bytes, d.seconds)),
        );
        if let Err(e) = super::write_atomically(path, &text) {
            error(g, format!("cannot write {}: {e}", path.display()));
        }
    }
    match r {
        Ok(done) => {
            match a.format {
                Format::Json => out(&format!("{}\n", serde_json::to_string(&done).unwrap_or_default())),
                Format::Text => out(&format!(
                    "backup {}: s3://{}/{} {} bytes sha256 {} in {:.1} s\n",
                    done.instance, done.bucket, done.key, done.bytes, done.sha256, done.seconds
                )),
            }
            0
        }
        Err(e) => {
            let open = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some((region, bucket, key, id)) = open {
                upload::abort(&aws, &region, &bucket, &key, &id).await;
            }
            error(g, format!("backup {} failed: {e}; nothing was stored", a.address))
        }
    }
}
