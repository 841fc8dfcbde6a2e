//! `backup run ADDR`: the strategy's dump job (PostgreSQL: pg_dump into S3
//! with its SHA-256 sidecar). One result line for schedulers, or JSON.

use clap::{Args, Subcommand};

use super::{connect, error, load_policy, out, Format, Global, PolicyArg};
use crate::providers::s3::upload::{self, Pending};

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take one backup now: postgres.NAME (pg_dump into its `backup.to` entry).
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    /// What to back up, e.g. postgres.primary.
    #[arg(value_name = "ADDR")]
    pub address: String,
    /// Output format of the result line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub async fn run(g: &Global, a: &BackupArgs) -> u8 {
    let BackupCommand::Run(a) = &a.command;
    let Some(policy) = load_policy(g, &a.policy.file) else { return 1 };
    let Some(name) = a.address.strip_prefix("postgres.") else {
        return error(
            g,
            format!("backup run {}: give postgres.NAME (Redis snapshots are not supported yet)", a.address),
        );
    };
    let Some(spec) = policy.postgres.iter().find(|p| p.name == name) else {
        let known: Vec<String> = policy.postgres.iter().map(|p| format!("postgres.{}", p.name)).collect();
        return error(g, format!("{} is not in {} (it has: {})", a.address, policy.file, known.join(", ")));
    };
    let aws = connect(g, policy.default_region.as_deref()).await;
    let default_region = aws.default_region().unwrap_or("us-east-1").to_string();
    let pending: Pending = Default::default();
    let job = crate::providers::postgres::backup::run(&aws, spec, &default_region, &pending);
    // Ctrl-C: stop pg_dump (dropping the job kills it) and abort the
    // multipart upload, so nothing is left behind.
    let r = tokio::select! {
        r = job => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
    };
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
