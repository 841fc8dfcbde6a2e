//! `restore-drill postgres.NAME`: the strategy's monthly restore test,
//! automated. The newest dump of the entry is downloaded and its SHA-256
//! checked against the sidecar while it arrives (a mismatch stops before
//! anything is restored); it is restored into a throw-away cluster (initdb
//! in a temporary directory) or an empty database; `migrate` runs; the
//! smoke checks run; each phase is timed and the total compared with the
//! RTO. Everything the drill made is removed, on failure and on Ctrl-C
//! too. The record is written beside the backups, where `audit` reads it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::tools;
use crate::aws::{classify, Aws};
use crate::model::time::{format_time, now};
use crate::policy::{scrub, PgDrill, PostgresSpec};
use crate::providers::ops;
use crate::providers::s3::upload::{self, Target};

/// What a drill found, as stored in `drills/postgres.NAME/*.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub version: u32,
    pub instance: String,
    /// Unix seconds and RFC 3339 (UTC).
    pub started: u64,
    pub date: String,
    pub operator: String,
    pub target: String,
    pub dump: Option<DumpRef>,
    pub phases: Phases,
    pub total_seconds: f64,
    pub rto_seconds: u64,
    pub checks: Vec<CheckResult>,
    /// "passed" or "failed".
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DumpRef {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Phases {
    pub download: f64,
    pub restore: f64,
    pub migrate: f64,
    pub checks: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    pub name: String,
    pub value: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub passed: bool,
}

impl Record {
    pub fn passed(&self) -> bool {
        self.result == "passed"
    }
}

fn secs(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 100.0).round() / 100.0
}

/// A directory removed on drop, with the cluster in it stopped first —
/// also when the drill's future is dropped (Ctrl-C).
struct Scratch {
    dir: PathBuf,
    pg_ctl: Option<PathBuf>,
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
fn ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user)).then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

/// Run a program; Err with its last stderr line (scrubbed of `secret`).
async fn run_tool(mut cmd: tokio::process::Command, what: &str, secret: &str) -> Result<(), String> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let how = out.status.code().map_or("was killed".to_string(), |c| format!("exited with {c}"));
    Err(scrub(&format!("{what} {how}: {last}"), secret))
}

/// A throw-away cluster: initdb in `scratch`, started on a free loopback
/// port. Returns the URL of its empty `drill` database.
async fn local_cluster(scratch: &mut Scratch) -> Result<String, String> {
    let initdb = tools::find("initdb")?;
    let pg_ctl = tools::find("pg_ctl")?;
    if tools::is_root() {
        let (uid, gid) = ids("postgres").ok_or(
            "initdb cannot run as root and there is no `postgres` user: run the drill as another user, or give `url:`",
        )?;
        std::os::unix::fs::chown(&scratch.dir, Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))?;
    }
    let data = scratch.dir.join("data");
    let mut c = tools::as_postgres_if_root(&initdb);
    c.args(["-D", &data.display().to_string(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
    run_tool(c, "initdb", "").await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))?;
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c full_page_writes=off",
        scratch.dir.display()
    );
    scratch.pg_ctl = Some(pg_ctl.clone());
    let mut c = tools::as_postgres_if_root(&pg_ctl);
    c.args(["-D", &data.display().to_string(), "-l", &scratch.dir.join("pg.log").display().to_string()])
        .args(["-w", "-t", "60", "-o", &opts, "start"]);
    run_tool(c, "pg_ctl start", "").await?;
    let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let client = connect(&admin).await?;
    client.batch_execute("CREATE DATABASE drill").await.map_err(|e| format!("CREATE DATABASE: {e}"))?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/drill"))
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    super::tls::connect(url, std::time::Duration::from_secs(10)).await
}

/// The newest dump under the entry's prefix (sidecars and drill records
/// left out): key and size.
async fn newest(aws: &Aws, client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<(String, u64), String> {
    let mut token: Option<String> = None;
    let mut best: Option<(i64, String, u64)> = None;
    loop {
        let req = client.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token.clone());
        let page = aws
            .call(&ops::LIST_OBJECTS_V2, req.send())
            .await
            .map_err(|e| format!("listing s3://{bucket}/{prefix}: {}", classify(&e, &[]).reason()))?;
        for o in page.contents() {
            let (Some(k), Some(t)) = (o.key(), o.last_modified()) else { continue };
            if k.ends_with(".sha256") || k.ends_with('/') {
                continue;
            }
            if best.as_ref().is_none_or(|(bt, bk, _)| (t.secs(), k) > (*bt, bk.as_str())) {
                best = Some((t.secs(), k.to_string(), o.size().unwrap_or(0).max(0) as u64));
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if !page.is_truncated().unwrap_or(false) || token.is_none() {
            break;
        }
    }
    best.map(|(_, k, s)| (k, s)).ok_or_else(|| format!("no dump under s3://{bucket}/{prefix}"))
}

async fn get_text(aws: &Aws, client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String, String> {
    let out = aws
        .call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send())
        .await
        .map_err(|e| format!("reading s3://{bucket}/{key}: {}", classify(&e, &["NoSuchKey"]).reason()))?;
    let body = out.body.collect().await.map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?;
    Ok(String::from_utf8_lossy(&body.into_bytes()).into_owned())
}

/// Download `key` into `path`, hashing as it arrives.
async fn download(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &Path,
) -> Result<(u64, String), String> {
    let out = aws
        .call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send())
        .await
        .map_err(|e| format!("downloading s3://{bucket}/{key}: {}", classify(&e, &[]).reason()))?;
    let mut body = out.body;
    let mut file = tokio::fs::File::create(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut n: u64 = 0;
    while let Some(chunk) = body.try_next().await.map_err(|e| format!("downloading s3://{bucket}/{key}: {e}"))? {
        h.update(&chunk);
        n += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    file.flush().await.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((n, upload::hex(&h.finalize())))
}

/// Restore `file` (custom format, or gzip'd plain SQL) into `url`.
async fn restore(file: &Path, key: &str, url: &str) -> Result<(), String> {
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
            .map_err(|e| format!("cannot run psql: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("psql has no stdin")?;
        let path = file.to_path_buf();
        let feed = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            use std::io::Read;
            let mut sql = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).map_err(|e| e.to_string())?)
                .read_to_end(&mut sql)
                .map_err(|e| format!("gunzip: {e}"))?;
            Ok(sql)
        })
        .await
        .map_err(|e| e.to_string())??;
        stdin.write_all(&feed).await.map_err(|e| format!("feeding psql: {e}"))?;
        drop(stdin);
        let out = child.wait_with_output().await.map_err(|e| format!("psql: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(scrub(&format!("psql failed: {}", err.lines().last().unwrap_or("").trim()), url));
        }
        return Ok(());
    }
    let pg_restore = tools::find("pg_restore")?;
    let mut c = tokio::process::Command::new(&pg_restore);
    c.args(["--no-owner", "--no-privileges", "--exit-on-error", "--dbname"])
        .arg(tools::env(url)?.iter().find(|(k, _)| k == "PGDATABASE").map_or("postgres", |(_, v)| v.as_str()))
        .arg(file)
        .envs(tools::env(url)?);
    run_tool(c, "pg_restore", url).await
}

/// Run `cmd` with DATABASE_URL pointing at the restored database.
async fn migrate(cmd: &str, url: &str) -> Result<(), String> {
    let mut c = tokio::process::Command::new("sh");
    c.args(["-c", cmd]).env("DATABASE_URL", url);
    run_tool(c, "migrate", url).await
}

async fn checks(url: &str, drill: &PgDrill) -> Result<Vec<CheckResult>, String> {
    let client = connect(url).await?;
    let mut out = Vec::new();
    for c in &drill.checks {
        let value = match client.simple_query(&c.sql).await {
            Ok(msgs) => msgs.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.trim().parse::<f64>().ok()),
                _ => None,
            }),
            Err(e) => return Err(format!("check `{}`: {}", c.name, scrub(&e.to_string(), url))),
        };
        let passed = value.is_some_and(|v| c.min.is_none_or(|m| v >= m) && c.max.is_none_or(|m| v <= m));
        out.push(CheckResult { name: c.name.clone(), value, min: c.min, max: c.max, passed });
    }
    Ok(out)
}

/// Run the drill of `spec`; the record is returned (and stored) whether
/// it passed or not; Err only when it could not be stored.
pub async fn run(aws: &Aws, spec: &PostgresSpec, default_region: &str, operator: &str) -> Result<Record, String> {
    let drill = spec
        .restore_drill
        .as_ref()
        .ok_or_else(|| format!("postgres.{} has no `restore_drill:` in the policy", spec.name))?;
    let started = now();
    let mut rec = Record {
        version: 1,
        instance: format!("postgres.{}", spec.name),
        started,
        date: format_time("%Y-%m-%dT%H:%M:%SZ", started),
        operator: operator.to_string(),
        target: if drill.url.is_some() { "url".into() } else { "local".into() },
        dump: None,
        phases: Phases::default(),
        total_seconds: 0.0,
        rto_seconds: drill.rto_secs,
        checks: Vec::new(),
        result: "failed".into(),
        reason: None,
    };
    let region = drill.from.region.clone().unwrap_or_else(|| default_region.to_string());
    let outcome = phases(aws, drill, &region, &mut rec).await;
    let p = &rec.phases;
    rec.total_seconds = ((p.download + p.restore + p.migrate + p.checks) * 100.0).round() / 100.0;
    rec.reason = match outcome {
        Err(e) => Some(e),
        Ok(()) if rec.checks.iter().any(|c| !c.passed) => Some(format!(
            "checks failed: {}",
            rec.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        )),
        Ok(()) if rec.total_seconds > drill.rto_secs as f64 => {
            Some(format!("took {:.0} s, over the RTO of {} s", rec.total_seconds, drill.rto_secs))
        }
        Ok(()) => None,
    };
    if rec.reason.is_none() {
        rec.result = "passed".into();
    }
    store(aws, drill, &region, &rec).await?;
    Ok(rec)
}

async fn phases(aws: &Aws, drill: &PgDrill, region: &str, rec: &mut Record) -> Result<(), String> {
    let client = aws.s3(region);
    let bucket = drill.from.bucket.as_str();
    let (key, _) = newest(aws, &client, bucket, &drill.from.prefix).await?;
    let side = get_text(aws, &client, bucket, &format!("{key}.sha256")).await.map_err(|e| {
        format!("the dump {key} has no readable sidecar ({e}): it cannot be verified, so it is not restored")
    })?;
    let want = side.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    let dir = std::env::temp_dir().join(format!("suoops-drill-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut scratch = Scratch { dir, pg_ctl: None };
    let file = scratch.dir.join("dump");
    let t = Instant::now();
    let (bytes, got) = download(aws, &client, bucket, &key, &file).await?;
    rec.phases.download = secs(t);
    rec.dump = Some(DumpRef { bucket: bucket.to_string(), key: key.clone(), bytes, sha256: got.clone() });
    if got != want {
        return Err(format!(
            "{key} does not match its sidecar (SHA-256 {got}, the sidecar says {want}): nothing was restored"
        ));
    }
    let t = Instant::now();
    let url = match &drill.url {
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
                .map_err(|e| scrub(&e.to_string(), &u))?
                .get(0);
            if n > 0 {
                return Err(
                    "the drill database at `url` is not empty: the drill restores only into an empty one".into()
                );
            }
            u
        }
        None => local_cluster(&mut scratch).await?,
    };
    restore(&file, &key, &url).await?;
    // The dump is not needed any more: free the space before migrating.
    let _ = std::fs::remove_file(&file);
    rec.phases.restore = secs(t);
    if let Some(m) = &drill.migrate {
        let t = Instant::now();
        migrate(m, &url).await?;
        rec.phases.migrate = secs(t);
    }
    let t = Instant::now();
    rec.checks = checks(&url, drill).await?;
    rec.phases.checks = secs(t);
    drop(scratch);
    Ok(())
}

/// Put the record under `drills/postgres.NAME/` of the entry's bucket.
async fn store(aws: &Aws, drill: &PgDrill, region: &str, rec: &Record) -> Result<(), String> {
    let key = format!("{}{}.json", drill.from.drills_prefix(&rec.instance), format_time("%Y%m%dT%H%M%SZ", rec.started));
    let sse = super::backup::sse(aws, &drill.from, region).await?;
    let t = Target { aws, region: region.to_string(), bucket: drill.from.bucket.clone(), key, sse };
    let body = serde_json::to_vec_pretty(rec).map_err(|e| e.to_string())?;
    upload::put(&t, bytes::Bytes::from(body)).await
}

/// The newest drill record of `instance` in `bucket`, for the audit.
pub async fn last(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Option<Record>, crate::aws::ApiError> {
    let page = aws.call(&ops::LIST_OBJECTS_V2, client.list_objects_v2().bucket(bucket).prefix(prefix).send()).await;
    let page = page.map_err(|e| classify(&e, &["NoSuchBucket"]))?;
    // Keys are the drill's start time: the greatest is the newest (a
    // month of drills fits one page many times over; the last page
    // would be needed only past 1,000 records).
    let Some(key) = page.contents().iter().filter_map(|o| o.key()).filter(|k| k.ends_with(".json")).max() else {
        return Ok(None);
    };
    let out = aws
        .call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send())
        .await
        .map_err(|e| classify(&e, &["NoSuchKey"]))?;
    let body = out.body.collect().await.map_err(|e| crate::aws::ApiError::Other(e.to_string()))?;
    Ok(serde_json::from_slice(&body.into_bytes()).ok())
}

/// One row of the strategy's restore-test log (docs/backup-restore-test-log.md):
/// date, operator, success/failure, time to restore, and what was restored.
pub fn log_row(rec: &Record) -> String {
    let dump = rec.dump.as_ref().map_or("-".to_string(), |d| format!("`{}` ({} bytes)", d.key, d.bytes));
    let checks: Vec<String> = rec
        .checks
        .iter()
        .map(|c| format!("{} = {}", c.name, c.value.map_or("-".to_string(), |v| format!("{v}"))))
        .collect();
    format!(
        "| {} | {} | {} | {} | {:.1} s (RTO {} s) | {} | {} |\n",
        rec.date,
        rec.operator.replace('|', "/"),
        rec.instance,
        if rec.passed() { "success" } else { "failure" },
        rec.total_seconds,
        rec.rto_seconds,
        dump,
        rec.reason.clone().unwrap_or_else(|| checks.join("; ")).replace('|', "/"),
    )
}

pub const LOG_HEADER: &str = "# Backup restore test log\n\n| Date | Operator | Instance | Result | Time to restore | Dump | Notes |\n|---|---|---|---|---|---|---|\n";
