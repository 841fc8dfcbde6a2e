//! `restore-drill postgres.NAME`: the strategy's monthly restore test,
//! automated. The newest dump of the entry is downloaded and its SHA-256
//! checked against the sidecar while it arrives. Into a throw-away cluster
//! (initdb in a temporary directory, made during the download) a custom
//! dump is restored as it arrives — decrypted on the way when it is an age
//! file — and a mismatch fails the drill and discards what was restored
//! with the cluster; into an empty database (`url:`), and for a plain SQL
//! dump, nothing is restored before the dump is verified. `migrate` runs;
//! the smoke checks run; each phase is timed and the total compared with
//! the RTO. Everything the drill made is removed, on failure and on Ctrl-C
//! too. The record is written beside the backups, where `audit` reads it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::io::AsyncWriteExt;

use futures::future::FutureExt;

use super::tools;
use crate::aws::Aws;
use crate::jobs::{self, secs, CheckResult, JobKind, Outcome, Record};
use crate::jobs::{JobError, Stage};
use crate::policy::scrub;
use crate::providers::instances::{DrillTiming, InstanceJob};
use crate::providers::postgres::section::{DrillCheck, PgDrill, PostgresSpec};

/// A directory removed on drop, with the cluster in it stopped first —
/// also when the drill's future is dropped (Ctrl-C).
pub(super) struct Scratch {
    pub(super) dir: PathBuf,
    pub(super) pg_ctl: Option<PathBuf>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(pg_ctl) = &self.pg_ctl {
            let data = self.dir.join("data");
            let mut c = if tools::is_root() {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(pg_ctl);
                c
            } else {
                std::process::Command::new(pg_ctl)
            };
            let _ = c
                .args(["-D", &data.display().to_string(), "-m", "immediate", "-w", "stop"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The uid and gid of `user` (for a root run handing the cluster's
/// directory to `postgres`).
pub(super) fn ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user)).then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

/// Run a program; Err with its last stderr line (scrubbed of `secret`).
pub(super) async fn run_tool(
    stage: Stage,
    cmd: tokio::process::Command,
    what: &str,
    secret: &str,
) -> Result<(), JobError> {
    run_fed(stage, cmd, what, secret, std::process::Stdio::null()).await
}

/// `run_tool` with `stdin` as the program's standard input.
async fn run_fed(
    stage: Stage,
    mut cmd: tokio::process::Command,
    what: &str,
    secret: &str,
    stdin: std::process::Stdio,
) -> Result<(), JobError> {
    let out = cmd
        .stdin(stdin)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| JobError::failed(Stage::Restore, format!("cannot run {what}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(tools::failure(stage, what, out.status, &String::from_utf8_lossy(&out.stderr), secret))
}

/// A throw-away cluster's writes are never flushed to disk (PostgreSQL
/// manual, "Non-Durable Settings"): both drills' clusters.
pub(super) const NON_DURABLE: &str = "-c fsync=off -c full_page_writes=off -c synchronous_commit=off";

/// The logical drill's cluster, loaded once by pg_restore.
const BULK_LOAD: &str = "-c wal_level=minimal -c max_wal_senders=0 -c archive_mode=off -c autovacuum=off \
     -c maintenance_work_mem=256MB -c max_wal_size=8GB";

/// A throw-away cluster: initdb in `scratch`, started on a free loopback
/// port. Returns the URL of its empty `drill` database.
async fn local_cluster(scratch: &mut Scratch) -> Result<String, JobError> {
    let initdb = tools::find("initdb")?;
    let pg_ctl = tools::find("pg_ctl")?;
    if tools::is_root() {
        let (uid, gid) = ids("postgres").ok_or(JobError::failed(
            Stage::Restore,
            "initdb cannot run as root and there is no `postgres` user: run the drill as another user, or give `url:`",
        ))?;
        std::os::unix::fs::chown(&scratch.dir, Some(uid), Some(gid))
            .map_err(|e| JobError::failed(Stage::Restore, format!("chown: {e}")))?;
    }
    let data = scratch.dir.join("data");
    let mut c = tools::as_postgres_if_root(&initdb);
    c.args(["-D", &data.display().to_string(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
    run_tool(Stage::Restore, c, "initdb", "").await?;
    let port = jobs::free_port()?;
    // A throw-away cluster loaded once: PostgreSQL manual, "Populating a
    // Database" (no WAL archival or senders and wal_level minimal, so index
    // builds write no WAL; a larger maintenance_work_mem and max_wal_size)
    // and "Non-Durable Settings" (fsync, full_page_writes). Autovacuum
    // would analyze the tables as they fill, on the cores pg_restore uses.
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} {NON_DURABLE} {BULK_LOAD}",
        scratch.dir.display()
    );
    scratch.pg_ctl = Some(pg_ctl.clone());
    let mut c = tools::as_postgres_if_root(&pg_ctl);
    c.args(["-D", &data.display().to_string(), "-l", &scratch.dir.join("pg.log").display().to_string()])
        .args(["-w", "-t", "60", "-o", &opts, "start"]);
    run_tool(Stage::Restore, c, "pg_ctl start", "").await?;
    let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let client = connect(&admin).await?;
    client
        .batch_execute("CREATE DATABASE drill")
        .await
        .map_err(|e| JobError::failed(Stage::Restore, format!("CREATE DATABASE: {e}")))?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/drill"))
}

pub(super) async fn connect(url: &str) -> Result<tokio_postgres::Client, JobError> {
    super::tls::connect(url, std::time::Duration::from_secs(10)).await
}

/// Restore `file` (custom format, or gzip'd plain SQL) into `url`, a
/// custom dump with `jobs` parallel pg_restore jobs.
async fn restore(file: &Path, key: &str, url: &str, jobs: u32) -> Result<(), JobError> {
    if key.ends_with(".sql.gz") {
        let psql = tools::find("psql")?;
        let mut c = tokio::process::Command::new(&psql);
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]).envs(tools::env(url)?);
        let mut child = c
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| JobError::failed(Stage::Restore, format!("cannot run psql: {e}")))?;
        let mut stdin = child.stdin.take().ok_or(JobError::failed(Stage::Restore, "psql has no stdin"))?;
        let path = file.to_path_buf();
        let feed = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, JobError> {
            use std::io::Read;
            let mut sql = Vec::new();
            flate2::read::GzDecoder::new(
                std::fs::File::open(&path).map_err(|e| JobError::failed(Stage::Restore, e.to_string()))?,
            )
            .read_to_end(&mut sql)
            .map_err(|e| JobError::failed(Stage::Restore, format!("gunzip: {e}")))?;
            Ok(sql)
        })
        .await
        .map_err(|e| JobError::failed(Stage::Restore, e.to_string()))??;
        stdin.write_all(&feed).await.map_err(|e| JobError::failed(Stage::Restore, format!("feeding psql: {e}")))?;
        drop(stdin);
        let out = child.wait_with_output().await.map_err(|e| JobError::failed(Stage::Restore, format!("psql: {e}")))?;
        if !out.status.success() {
            return Err(tools::failure(Stage::Restore, "psql", out.status, &String::from_utf8_lossy(&out.stderr), url));
        }
        return Ok(());
    }
    let mut c = pg_restore(url)?;
    if jobs > 1 {
        // Parallel restore needs the archive in a file, not a pipe (the
        // pg_restore manual, `--jobs`); the job's dumps, written to a pipe,
        // carry no data offsets, and pg_restore finds each table's data by
        // reading on.
        c.arg(format!("--jobs={jobs}"));
    }
    c.arg(file);
    run_tool(Stage::Restore, c, "pg_restore", url).await
}

/// pg_restore of a custom dump into `url`, the input to be added.
fn pg_restore(url: &str) -> Result<tokio::process::Command, JobError> {
    let mut c = tokio::process::Command::new(tools::find("pg_restore")?);
    c.args(["--no-owner", "--no-privileges", "--exit-on-error", "--dbname"])
        .arg(tools::env(url)?.iter().find(|(k, _)| k == "PGDATABASE").map_or("postgres", |(_, v)| v.as_str()))
        .envs(tools::env(url)?);
    Ok(c)
}

/// Make the throw-away cluster in `scratch` and restore the custom dump
/// `file` into it while it downloads: a blocking thread reads the file as
/// it grows (`growth`), decrypts it with the identities in `decrypt_with`
/// when it is an age file, and feeds pg_restore's standard input through a
/// pipe, so memory stays bounded whatever the dump's size. The age header
/// is opened first: an identity that is not a recipient fails before the
/// cluster is made or anything restored. pg_restore reads a dump from a
/// pipe in its order, as pg_dump wrote it to one (pg_restore manual: a
/// custom archive read from standard input; the job's dumps are written to
/// a pipe too). Returns the restored database's URL, and whether
/// pg_restore ran at all.
async fn restore_streamed(
    file: &Path,
    growth: std::sync::Arc<jobs::Growth>,
    decrypt_with: Option<String>,
    scratch: &mut Scratch,
) -> (Result<String, JobError>, bool) {
    let (reader, mut writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return (Err(JobError::failed(Stage::Restore, format!("a pipe to pg_restore: {e}"))), false),
    };
    let (opened, is_open) = tokio::sync::oneshot::channel::<()>();
    let path = file.to_path_buf();
    let feed = tokio::task::spawn_blocking(move || -> Result<(), JobError> {
        let src = jobs::Growing::open(&path, growth)?;
        let mut src: Box<dyn std::io::Read> = match decrypt_with {
            Some(p) => Box::new(jobs::encrypt::decrypting(src, &jobs::encrypt::identities(Path::new(&p))?)?),
            None => Box::new(src),
        };
        let _ = opened.send(());
        std::io::copy(&mut src, &mut writer)
            .map_err(|e| JobError::failed(Stage::Restore, format!("feeding pg_restore: {e}")))?;
        Ok(())
    });
    if is_open.await.is_err() {
        // The feeder ended before opening the dump: its error says why.
        return (
            Err(match feed.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => JobError::failed(Stage::Restore, "the dump could not be opened"),
                Err(e) => JobError::failed(Stage::Restore, e.to_string()),
            }),
            false,
        );
    }
    // The feeder waits on the pipe (its buffer full) until pg_restore
    // reads; if the cluster cannot be made, dropping the reader ends it.
    let url = match local_cluster(scratch).await {
        Ok(u) => u,
        Err(e) => return (Err(e), false),
    };
    let restored = match pg_restore(&url) {
        Ok(c) => run_fed(Stage::Restore, c, "pg_restore", &url, reader.into()).await,
        Err(e) => Err(e),
    };
    let fed = feed.await.map_err(|e| JobError::failed(Stage::Restore, e.to_string())).and_then(|r| r);
    // pg_restore's own error first: a feeder that stopped because
    // pg_restore did ("broken pipe") says less.
    (restored.and(fed).map(|()| url), true)
}

/// Run `cmd` with DATABASE_URL pointing at the restored database.
async fn migrate(cmd: &str, url: &str) -> Result<(), JobError> {
    let mut c = tokio::process::Command::new("sh");
    c.args(["-c", cmd]).env("DATABASE_URL", url);
    run_tool(Stage::Migrate, c, "migrate", url).await
}

pub(super) async fn checks(url: &str, wanted: &[DrillCheck]) -> Result<Vec<CheckResult>, JobError> {
    let client = connect(url).await?;
    let mut out = Vec::new();
    for c in wanted {
        let value = match client.simple_query(&c.sql).await {
            Ok(msgs) => msgs.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.trim().parse::<f64>().ok()),
                _ => None,
            }),
            Err(e) => {
                return Err(JobError::failed(
                    Stage::Restore,
                    format!("check `{}`: {}", c.name, scrub(&e.to_string(), url)),
                ))
            }
        };
        let passed = value.is_some_and(|v| c.min.is_none_or(|m| v >= m) && c.max.is_none_or(|m| v <= m));
        out.push(CheckResult { name: c.name.clone(), value, min: c.min, max: c.max, passed });
    }
    Ok(out)
}

/// `restore-drill postgres.NAME` (a registered job).
pub const DRILL: InstanceJob<PostgresSpec> = InstanceJob {
    kind: JobKind::Drill,
    synopsis: "postgres.NAME: the newest dump restored into a throw-away database, the checks run",
    system: "postgres",
    suffix: "",
    specs: |p| p.postgres.as_slice(),
    name: |s| s.name.as_str(),
    entry: |s| s.restore_drill.as_ref().map(|d| &d.from),
    drill: Some(|s| {
        s.restore_drill.as_ref().map(|d| DrillTiming {
            rto_secs: d.rto_secs,
            every_secs: d.every_secs,
            schedule: d.schedule.as_ref(),
            line: d.line,
        })
    }),
    run: |ctx, _, spec| {
        run(ctx.aws, spec, &ctx.default_region, &ctx.operator)
            .map(|r| r.map(|r| Outcome::Drill(Box::new(r))))
            .boxed_local()
    },
    ops: jobs::fetch::OPS,
    engine_actions: &[],
    takes_target: false,
    render: None,
    config: None,
    schedule: |s| s.restore_drill.as_ref().and_then(|d| d.schedule.as_ref()),
    on_host: None,
};

/// pg_restore's parallel jobs: the policy's `jobs`, else, for the local
/// cluster, this machine's cores up to 8 (the pg_restore manual: start
/// from the number of the server's cores; the local cluster's server is
/// this machine), and 1 for a database at `url`, whose cores are unknown.
/// Measured on two cores, a 250 MB dump of indexed tables: 5.3–6.0 s with
/// two jobs against 6.0–6.9 s with one (docs/performance.md).
fn restore_jobs(drill: &PgDrill) -> u32 {
    drill.jobs.unwrap_or_else(|| match drill.url {
        Some(_) => 1,
        None => std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(8).min(8)),
    })
}

/// Run the drill of `spec`; the record is returned (and stored) whether
/// it passed or not; Err only when it could not be stored.
pub async fn run(aws: &Aws, spec: &PostgresSpec, default_region: &str, operator: &str) -> Result<Record, JobError> {
    let drill = spec.restore_drill.as_ref().ok_or_else(|| {
        JobError::failed(Stage::Prepare, format!("postgres.{} has no `restore_drill:` in the policy", spec.name))
    })?;
    let target = if drill.url.is_some() { "url" } else { "local" };
    let rec = jobs::record(&format!("postgres.{}", spec.name), operator, target, drill.rto_secs);
    jobs::drill(aws, &drill.from, default_region, rec, async |region, rec| phases(aws, drill, region, rec).await).await
}

async fn phases(aws: &Aws, drill: &PgDrill, region: &str, rec: &mut Record) -> Result<(), JobError> {
    // A missing or unreadable identity fails here, before anything is
    // downloaded (the file's contents are never shown).
    if let Some(path) = &drill.decrypt_with {
        jobs::encrypt::identities(Path::new(path))?;
    }
    let mut scratch = Scratch { dir: jobs::scratch_dir()?, pg_ctl: None };
    let file = scratch.dir.join("dump");
    let (key, want) = jobs::locate(aws, &drill.from, region).await?;
    let jobs = restore_jobs(drill);
    if drill.url.is_none() && !key.ends_with(".sql.gz") && jobs == 1 {
        return streamed(aws, drill, region, rec, scratch, key, want).await;
    }
    // The throw-away cluster is made (or the drill database checked empty)
    // while the dump downloads: nothing is restored before the dump is
    // verified against its sidecar, but the drill does not wait twice.
    // Then pg_restore runs its `jobs` in parallel from the file.
    let prepare = async {
        match &drill.url {
            Some(u) => {
                let u = u.expose().to_string();
                let c = connect(&u).await?;
                let n: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
                        &[],
                    )
                    .await
                    .map_err(|e| JobError::failed(Stage::Restore, scrub(&e.to_string(), &u)))?
                    .get(0);
                if n > 0 {
                    return Err(JobError::failed(
                        Stage::Restore,
                        "the drill database at `url` is not empty: the drill restores only into an empty one",
                    ));
                }
                Ok(u)
            }
            None => local_cluster(&mut scratch).await,
        }
    };
    let ((), url) = tokio::try_join!(jobs::fetch_located(aws, &drill.from, region, &key, &want, &file, rec), prepare)?;
    let t = Instant::now();
    // An encrypted dump (verified as stored) is decrypted before restore;
    // an identity that is not a recipient stops the drill here.
    let (file, key) = match key.strip_suffix(jobs::encrypt::EXT) {
        Some(plain) => {
            let path = drill.decrypt_with.clone().ok_or_else(|| {
                JobError::failed(
                    Stage::Restore,
                    format!(
                    "{key} is encrypted (age) and restore_drill names no `decrypt_with` identity: nothing was restored"
                ),
                )
            })?;
            let (from, to) = (file.clone(), scratch.dir.join("dump.plain"));
            let out = to.clone();
            tokio::task::spawn_blocking(move || -> Result<(), JobError> {
                let ids = jobs::encrypt::identities(Path::new(&path))?;
                let r = jobs::encrypt::decrypt_file(&from, &to, &ids);
                let _ = std::fs::remove_file(&from);
                if r.is_err() {
                    let _ = std::fs::remove_file(&to);
                }
                r
            })
            .await
            .map_err(|e| JobError::failed(Stage::Restore, e.to_string()))??;
            (out, plain.to_string())
        }
        None => (file, key),
    };
    restore(&file, &key, &url, jobs).await?;
    // The dump is not needed any more: free the space before migrating.
    let _ = std::fs::remove_file(&file);
    rec.phases.restore = secs(t);
    migrated_and_checked(drill, &url, rec).await?;
    drop(scratch);
    Ok(())
}

/// After the restore: `migrate`, then the checks and the tables left out
/// of the dump, each timed into `rec`.
async fn migrated_and_checked(drill: &PgDrill, url: &str, rec: &mut Record) -> Result<(), JobError> {
    if let Some(m) = &drill.migrate {
        let t = Instant::now();
        migrate(m, url).await?;
        rec.phases.migrate = secs(t);
    }
    let t = Instant::now();
    rec.checks = checks(url, &drill.checks).await?;
    rec.checks.extend(excluded(url, &drill.excluded).await?);
    rec.phases.checks = secs(t);
    Ok(())
}

/// The drill into a throw-away cluster of the custom dump `key` (SHA-256
/// `want` by its sidecar) with one pg_restore job (`jobs: 1`, or one
/// core): the cluster is made while the dump downloads, and the dump
/// restored as it arrives. The record's `download` is the
/// download's time, `restore` what the restore took after the download
/// ended, so their sum is the time to a restored database.
async fn streamed(
    aws: &Aws,
    drill: &PgDrill,
    region: &str,
    rec: &mut Record,
    mut scratch: Scratch,
    key: String,
    want: String,
) -> Result<(), JobError> {
    let file = scratch.dir.join("dump");
    let encrypted = key.ends_with(jobs::encrypt::EXT);
    if encrypted && drill.decrypt_with.is_none() {
        return Err(JobError::failed(
            Stage::Restore,
            format!(
                "{key} is encrypted (age) and restore_drill names no `decrypt_with` identity: nothing was restored"
            ),
        ));
    }
    let growth = std::sync::Arc::new(jobs::Growth::default());
    let bucket = drill.from.bucket.as_str();
    // There before its reader opens it (the download writes into it).
    std::fs::File::create(&file).map_err(|e| JobError::failed(Stage::Restore, format!("{}: {e}", file.display())))?;
    let t = Instant::now();
    let download = async {
        let r = jobs::download(aws, region, bucket, &key, &file, Some(&growth)).await;
        (r, Instant::now())
    };
    let restore = async {
        let decrypt_with = drill.decrypt_with.clone().filter(|_| encrypted);
        let (r, ran) = restore_streamed(&file, growth.clone(), decrypt_with, &mut scratch).await;
        (r, ran, Instant::now())
    };
    let ((got, downloaded), (restored, ran, ended)) = tokio::join!(download, restore);
    let round = |d: std::time::Duration| (d.as_secs_f64() * 100.0).round() / 100.0;
    rec.phases.download = round(downloaded.duration_since(t));
    // Zero when nothing was restored (no pg_restore), or it ended first.
    rec.phases.restore = if ran { round(ended.saturating_duration_since(downloaded)) } else { 0.0 };
    // A dump that is not what was stored fails the drill whatever
    // pg_restore made of it; the cluster goes with the scratch directory.
    jobs::verified(
        rec,
        bucket,
        &key,
        got,
        &want,
        "the drill fails; what it restored goes with its throw-away cluster",
    )?;
    let url = restored?;
    let _ = std::fs::remove_file(&file);
    migrated_and_checked(drill, &url, rec).await?;
    drop(scratch);
    Ok(())
}

/// The tables the dump job left the data of out (`exclude_table_data`):
/// each pattern matches a table of the restored database, and each such
/// table came back empty — checks in the record, with the row counts.
async fn excluded(url: &str, patterns: &[String]) -> Result<Vec<CheckResult>, JobError> {
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let client = connect(url).await?;
    let mut out = Vec::new();
    for p in patterns {
        let (schema, name) = pattern_regex(p);
        // As pg_dump matches: an unqualified pattern names the tables
        // visible in the search path (psql's processSQLNamePattern).
        let rows = client
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND c.relname ~ $1 \
                 AND (CASE WHEN $2::text IS NULL THEN pg_table_is_visible(c.oid) ELSE n.nspname ~ $2::text END) \
                 ORDER BY 1",
                &[&name, &schema],
            )
            .await
            .map_err(|e| {
                JobError::failed(Stage::Restore, format!("exclude_table_data `{p}`: {}", scrub(&e.to_string(), url)))
            })?;
        let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        if tables.is_empty() {
            out.push(CheckResult {
                name: format!("a table matches exclude_table_data `{p}`"),
                value: Some(0.0),
                min: Some(1.0),
                max: None,
                passed: false,
            });
        }
        for t in tables {
            let n: i64 = client
                .query_one(&format!("SELECT count(*) FROM {t}"), &[])
                .await
                .map_err(|e| JobError::failed(Stage::Restore, format!("counting {t}: {}", scrub(&e.to_string(), url))))?
                .get(0);
            out.push(CheckResult {
                name: format!("{t} has no rows (exclude_table_data)"),
                value: Some(n as f64),
                min: None,
                max: Some(0.0),
                passed: n == 0,
            });
        }
    }
    Ok(out)
}

/// A pg_dump table pattern as anchored POSIX regular expressions (schema,
/// name): unquoted letters fold to lower case, `*` and `?` are wildcards,
/// `"…"` is literal (`""` a quote), an unquoted `.` separates the schema
/// (PostgreSQL manual, psql "Patterns", which pg_dump follows).
fn pattern_regex(p: &str) -> (Option<String>, String) {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = parts.last_mut().expect("a part");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(String::new()),
            '*' if !quoted => cur.push_str(".*"),
            '?' if !quoted => cur.push('.'),
            c => {
                let c = if quoted { c } else { c.to_ascii_lowercase() };
                if "\\^$.|+()[]{}*?".contains(c) {
                    cur.push('\\');
                }
                cur.push(c);
            }
        }
    }
    let anchored = |s: &str| format!("^({s})$");
    match parts.as_slice() {
        [name] => (None, anchored(name)),
        [.., schema, name] => (Some(anchored(schema)), anchored(name)),
        [] => (None, anchored("")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_patterns_are_matched_as_pg_dump_matches_them() {
        assert_eq!(pattern_regex("oauth_tokens"), (None, "^(oauth_tokens)$".to_string()));
        assert_eq!(pattern_regex("Auth.API_*"), (Some("^(auth)$".to_string()), "^(api_.*)$".to_string()));
        assert_eq!(pattern_regex("\"Key.s\"?"), (None, "^(Key\\.s.)$".to_string()));
        assert_eq!(pattern_regex("\"we\"\"ird\""), (None, "^(we\"ird)$".to_string()));
    }
}
