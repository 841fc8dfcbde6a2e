//! `backup run postgres.NAME`: the strategy's daily dump done properly.
//! pg_dump's output goes straight into an S3 upload (no temporary file,
//! memory bounded whatever the size), its SHA-256 computed on the way and
//! written beside it as `KEY.sha256`, the object encrypted as the policy's
//! bucket says, verified once complete; on any failure nothing is left
//! behind (the multipart upload is aborted) and the result is one line.

use std::io::Write;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use futures::future::FutureExt;

use super::tools;
use crate::aws::Aws;
use crate::jobs::upload::{Chunks, Pending};
use crate::jobs::{self, Done, JobKind, Outcome};
use crate::jobs::{JobError, Stage};
use crate::providers::instances::InstanceJob;
use crate::providers::postgres::section::{DumpFormat, PgBackup, PostgresSpec};

/// `backup run postgres.NAME`: the daily dump (a registered job).
pub const DUMP: InstanceJob<PostgresSpec> = InstanceJob {
    kind: JobKind::Backup,
    synopsis: "postgres.NAME: a pg_dump streamed to its `backup.to` entry with its SHA-256",
    system: "postgres",
    suffix: "",
    specs: |p| p.postgres.as_slice(),
    name: |s| s.name.as_str(),
    entry: |s| s.backup.as_ref().map(|b| &b.to),
    drill: None,
    run: |ctx, _, spec| {
        run(ctx.aws, spec, &ctx.default_region, &ctx.pending).map(|r| r.map(Outcome::Backup)).boxed_local()
    },
    ops: jobs::upload::OPS,
    engine_actions: &[],
    takes_target: false,
    render: None,
    config: None,
    schedule: |s| s.backup.as_ref().and_then(|b| b.schedule.as_ref()),
    on_host: None,
};

/// pg_dump's stdout (gzip-compressed in-process for `plain`).
struct Dump {
    child: tokio::process::Child,
    out: tokio::process::ChildStdout,
    stderr: tokio::task::JoinHandle<String>,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
    ended: bool,
    url: String,
}

impl Chunks for Dump {
    async fn next(&mut self) -> Result<Option<Bytes>, JobError> {
        if self.ended {
            return Ok(None);
        }
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = self
                .out
                .read(&mut buf)
                .await
                .map_err(|e| JobError::failed(Stage::Backup, format!("reading pg_dump's output: {e}")))?;
            if n == 0 {
                self.ended = true;
                return Ok(match self.gzip.take() {
                    Some(z) => Some(Bytes::from(
                        z.finish().map_err(|e| JobError::failed(Stage::Backup, format!("gzip: {e}")))?,
                    )),
                    None => None,
                });
            }
            match self.gzip.as_mut() {
                None => return Ok(Some(Bytes::copy_from_slice(&buf[..n]))),
                Some(z) => {
                    z.write_all(&buf[..n]).map_err(|e| JobError::failed(Stage::Backup, format!("gzip: {e}")))?;
                    let out = std::mem::take(z.get_mut());
                    if !out.is_empty() {
                        return Ok(Some(Bytes::from(out)));
                    }
                }
            }
        }
    }

    async fn finish(&mut self) -> Result<(), JobError> {
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| JobError::failed(Stage::Backup, format!("waiting for pg_dump: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let err = (&mut self.stderr).await.unwrap_or_default();
        Err(tools::failure(Stage::Backup, "pg_dump", status, &err, &self.url))
    }
}

/// Run the dump job of `spec` into its backups entry.
pub async fn run(aws: &Aws, spec: &PostgresSpec, default_region: &str, pending: &Pending) -> Result<Done, JobError> {
    let job: &PgBackup = spec.backup.as_ref().ok_or_else(|| {
        JobError::failed(
            Stage::Prepare,
            format!("postgres.{} has no `backup:` in the policy (backup: {{to: s3.BUCKET.backups.ENTRY}})", spec.name),
        )
    })?;
    let url = spec.url.expose();
    let pg_dump = tools::find("pg_dump")?;
    let client_major = tools::major(&pg_dump).await?;
    let server_major = super::server_major(spec).await?;
    // pg_dump refuses a newer server ("server version mismatch"): say it
    // before anything is uploaded.
    if client_major < server_major {
        return Err(JobError::failed(Stage::Backup, format!(
            "{} is PostgreSQL {client_major}, older than the server ({server_major}): install postgresql-client-{server_major}",
            pg_dump.display()
        )));
    }
    let region = job.to.region.clone().unwrap_or_else(|| default_region.to_string());
    let mut cmd = tokio::process::Command::new(&pg_dump);
    cmd.arg(match job.format {
        DumpFormat::Custom => "--format=custom",
        DumpFormat::Plain => "--format=plain",
    })
    .arg("--no-password")
    // Confidential tables: their rows never leave the server.
    .args(job.exclude_table_data.iter().map(|p| format!("--exclude-table-data={p}")))
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .envs(tools::env(url)?)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    let mut child =
        cmd.spawn().map_err(|e| JobError::failed(Stage::Backup, format!("cannot run {}: {e}", pg_dump.display())))?;
    let out = child.stdout.take().ok_or(JobError::failed(Stage::Backup, "pg_dump has no stdout"))?;
    let mut err = child.stderr.take().ok_or(JobError::failed(Stage::Backup, "pg_dump has no stderr"))?;
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s).await;
        // Keep the end: the reason is on the last lines.
        if s.len() > 4096 {
            s = s[s.len() - 4096..].to_string();
        }
        s
    });
    let gzip = (job.format == DumpFormat::Plain)
        .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6)));
    let mut src = Dump { child, out, stderr, gzip, ended: false, url: url.to_string() };
    let ext = match job.format {
        DumpFormat::Custom => ".dump",
        DumpFormat::Plain => ".sql.gz",
    };
    let instance = format!("postgres.{}", spec.name);
    if job.encrypt_to.is_empty() {
        return jobs::upload_to(aws, &instance, &job.to, &region, ext, &mut src, pending).await;
    }
    // Client-side encryption: age's stream over pg_dump's, nothing
    // plaintext leaves the process; the sidecar is of the stored object.
    let mut enc = jobs::encrypt::Encrypting::new(src, &job.encrypt_to)?;
    let ext = format!("{ext}{}", jobs::encrypt::EXT);
    jobs::upload_to(aws, &instance, &job.to, &region, &ext, &mut enc, pending).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::BackupRef;

    #[test]
    fn keys_sort_by_time_under_the_prefix() {
        let to = BackupRef {
            bucket: "b".into(),
            entry: "e".into(),
            prefix: "postgres/".into(),
            key_format: None,
            region: None,
            encryption: None,
            object_lock_days: None,
        };
        // 2026-11-30 02:00:00 UTC
        assert_eq!(jobs::key(&to, ".dump", 1_796_004_000), "postgres/20261130T020000Z.dump");
        let dated = BackupRef { key_format: Some("%Y%m%d-%H%M%S".into()), ..to };
        assert_eq!(jobs::key(&dated, ".sql.gz", 1_796_004_000), "postgres/20261130-020000.sql.gz");
    }
}
