//! `backup run postgres.NAME.pitr`: a pgBackRest backup into the policy's
//! repository — full when the newest full is older than `full_every` (or
//! there is none), differential otherwise — run where the data directory
//! is (pgBackRest reads the cluster's files and its control file). The
//! stanza is created first (idempotent); pgBackRest expires what the
//! retention no longer needs at the end of every successful backup
//! (command reference, "Backup Command": "expire is run automatically").

use std::path::Path;
use std::time::Instant;

use futures::future::FutureExt;

use super::{address, Runner};
use crate::jobs::{Done, JobCtx, JobKind, Outcome};
use crate::jobs::{JobError, Stage};
use crate::model::time::now;
use crate::policy::Policy;
use crate::providers::instances::InstanceJob;
use crate::providers::postgres::section::PostgresSpec;

/// The point-in-time backup job (a registered job). pgBackRest reads its
/// info files and the WAL it checks, and expires old backups and WAL
/// (DeleteObject: a delete marker on a versioned bucket), besides its puts
/// (pgBackRest user guide, "S3 Support").
pub const PITR_BACKUP: InstanceJob<PostgresSpec> = InstanceJob {
    kind: JobKind::Backup,
    synopsis: "postgres.NAME.pitr: a pgBackRest backup (full or differential) into its repository, then verify",
    system: "postgres",
    suffix: ".pitr",
    specs: |p| p.postgres.as_slice(),
    name: |s| s.name.as_str(),
    entry: super::repo,
    drill: None,
    run: |ctx, policy, spec| {
        async move {
            let started = now();
            let done = run(ctx, policy, spec).await;
            record(ctx, spec, started, done.as_ref().map(|_| ())).await;
            done.map(Outcome::Backup)
        }
        .boxed_local()
    },
    ops: &[],
    engine_actions: &["s3:DeleteObject", "s3:GetObject"],
    takes_target: false,
    render: None,
    config: Some(|ctx, policy, spec| {
        async move {
            let pitr = spec
                .pitr
                .as_ref()
                .ok_or_else(|| JobError::failed(Stage::Prepare, format!("{} has no `pitr:`", address(spec))))?;
            let runner = Runner::new(ctx.aws, pitr, &ctx.default_region).await?;
            Ok(super::config::file(pitr, &runner.region, runner.kms_key_arn(), &policy.file))
        }
        .boxed_local()
    }),
    schedule: |s| s.pitr.as_ref().and_then(|p| p.schedule.as_ref()),
    // pgBackRest reads the cluster's files: as the data directory's owner.
    on_host: Some(crate::jobs::OnHost {
        user: "postgres",
        // pgBackRest's log and spool directories (its defaults).
        writes: &["-/var/log/pgbackrest", "-/var/spool/pgbackrest"],
    }),
};

/// The run's outcome stored in the repository, for PITR-BACKUP. A store
/// that cannot take it is the store the backup failed on: the audit sees
/// that by itself, so a failure here is not a second error.
async fn record(ctx: &JobCtx<'_>, spec: &PostgresSpec, started: u64, outcome: Result<(), &JobError>) {
    let Some(pitr) = spec.pitr.as_ref() else { return };
    let region = pitr.repo.region.clone().unwrap_or_else(|| ctx.default_region.clone());
    let run = super::verify::LastRun::new(started, outcome);
    let _ = super::verify::store(ctx.aws, pitr, &region, super::verify::RUN, &run).await;
}

/// Where the cluster's files are, or the one line saying where the job
/// must run.
pub fn local_data(spec: &PostgresSpec, dir: &str) -> Result<(), JobError> {
    if Path::new(dir).join("PG_VERSION").is_file() {
        return Ok(());
    }
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    Err(JobError::failed(Stage::Prepare, format!(
        "{} runs on the database host: {dir} (pitr.data_directory) is not a PostgreSQL data directory on this machine ({}); run it there, as the cluster's owner or root",
        address(spec),
        host.trim()
    )))
}

/// The server's port and its first Unix socket directory (pgBackRest
/// connects over the socket, as the cluster's owner).
pub async fn socket(spec: &PostgresSpec) -> Result<(String, String), JobError> {
    let client = super::super::connect(spec).await?;
    let row = client
        .query_one("SELECT current_setting('port'), current_setting('unix_socket_directories')", &[])
        .await
        .map_err(|e| JobError::failed(Stage::Backup, super::super::pg_error(&e, spec.url.expose())))?;
    let (port, dirs): (String, String) = (row.get(0), row.get(1));
    let dir = dirs.split(',').map(str::trim).find(|d| d.starts_with('/')).unwrap_or("/var/run/postgresql").to_string();
    Ok((port, dir))
}

async fn run(ctx: &JobCtx<'_>, policy: &Policy, spec: &PostgresSpec) -> Result<Done, JobError> {
    let started = Instant::now();
    let pitr = spec.pitr.as_ref().ok_or_else(|| {
        JobError::failed(Stage::Prepare, format!("postgres.{} has no `pitr:` in the policy", spec.name))
    })?;
    let version = super::version().await?;
    let locked = policy.buckets.iter().any(|b| b.name == pitr.repo.bucket && b.object_lock.is_some());
    super::usable_on(&version, &pitr.repo.bucket, locked)?;
    local_data(spec, &pitr.data_directory)?;
    let (port, socket) = socket(spec).await?;
    let mut runner = Runner::new(ctx.aws, pitr, &ctx.default_region).await?;
    runner.user = super::owner(Path::new(&pitr.data_directory));
    let pg = [format!("--pg1-port={port}"), format!("--pg1-socket-path={socket}")];
    // Idempotent: on an existing stanza that matches the cluster it
    // changes nothing; on one of another cluster it fails, saying so.
    runner.run("stanza-create", &pg).await?;
    let before = runner.info().await?;
    let full_due = before.newest_full().is_none_or(|b| now().saturating_sub(b.timestamp.stop) >= pitr.full_every_secs);
    let kind = if full_due { "full" } else { "diff" };
    let mut args = pg.to_vec();
    args.extend([format!("--type={kind}"), "--start-fast=y".to_string()]);
    runner.run("backup", &args).await?;
    let after = runner.info().await?;
    let new = after
        .newest()
        .filter(|b| before.newest().is_none_or(|o| o.label != b.label))
        .ok_or(JobError::failed(Stage::Backup, "pgbackrest backup succeeded but info shows no new backup"))?;
    let bytes = new.info.as_ref().and_then(|i| i.repository.as_ref()).map_or(0, |r| r.delta);
    // Every file of the repository read back and checked; the record is
    // what PITR-VERIFY judges. A repository problem is not a failed
    // backup: the backup is stored and the result line says what verify
    // found.
    let (t, started_at) = (Instant::now(), now());
    let text = runner.run("verify", &["--output=text".to_string(), "--verbose".to_string()]).await?;
    let v = super::verify::verdict(started_at, (t.elapsed().as_secs_f64() * 10.0).round() / 10.0, &text)?;
    super::verify::store(ctx.aws, pitr, &runner.region, super::verify::VERIFY, &v).await?;
    let checked = if v.passed {
        format!("verified in {:.1} s", v.seconds)
    } else {
        format!("VERIFY FOUND PROBLEMS: {}", v.problems.join("; "))
    };
    Ok(Done {
        instance: address(spec),
        bucket: pitr.repo.bucket.clone(),
        key: format!("{}backup/{}/{}", pitr.repo.prefix, pitr.stanza, new.label),
        bytes,
        sha256: String::new(),
        parts: 0,
        seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        detail: Some(format!("{} backup {} by pgBackRest {version}, repository {checked}", new.kind, new.label)),
    })
}
