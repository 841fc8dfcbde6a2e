//! What every system's backup job and restore drill share: the key a
//! backup gets, the encryption it is written with, the upload with its
//! sidecar, and the drill's record — fetched and verified dumps, the
//! record's shape, where it is stored beside the backups (audit reads it
//! from there), and the strategy's Markdown log row.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::aws::{classify, Aws};
use crate::model::time::{format_time, now};
use crate::policy::BackupRef;
use crate::providers::ops;
use crate::providers::s3::upload::{self, Chunks, Pending, Sse, Target};

/// The result line's content.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Done {
    pub instance: String,
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
    pub parts: usize,
    pub seconds: f64,
}

/// The key a backup taken at `secs` gets: the entry's prefix, the time
/// (the entry's `key_format`, else `%Y%m%dT%H%M%SZ`, so keys sort by time
/// as the freshness check expects) and the format's extension.
pub fn key(to: &BackupRef, ext: &str, secs: u64) -> String {
    let when = format_time(to.key_format.as_deref().unwrap_or("%Y%m%dT%H%M%SZ"), secs);
    format!("{}{when}{ext}", to.prefix)
}

/// The encryption the policy's bucket declares, a declared key resolved to
/// its key ARN (as apply writes it).
pub async fn sse(aws: &Aws, to: &BackupRef, region: &str) -> Result<Sse, String> {
    let enc = to.encryption.as_ref();
    let arn = match enc.and_then(|e| e.declared_key.as_ref().and(e.kms_key.as_deref())) {
        Some(alias) => Some(crate::providers::s3::apply::key_arn(aws, region, alias, false).await?),
        None => None,
    };
    Ok(Sse::from_policy(enc, arn))
}

/// Stream `src` into the entry `to` under a new key ending in `ext`, with
/// its SHA-256 sidecar: the whole of a backup job once its source is open.
pub async fn upload_to(
    aws: &Aws,
    instance: &str,
    to: &BackupRef,
    region: &str,
    ext: &str,
    src: &mut impl Chunks,
    pending: &Pending,
) -> Result<Done, String> {
    let started = Instant::now();
    let sse = sse(aws, to, region).await?;
    let target = Target { aws, region: region.to_string(), bucket: to.bucket.clone(), key: key(to, ext, now()), sse };
    let up = upload::stream(&target, src, pending).await?;
    upload::sidecar(&target, &up).await?;
    Ok(Done {
        instance: instance.to_string(),
        bucket: up.bucket,
        key: up.key,
        bytes: up.bytes,
        sha256: up.sha256,
        parts: up.parts,
        seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
}

/// What a drill found, as stored in `drills/INSTANCE/*.json` beside the
/// backups (`postgres.NAME`, `redis.NAME`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub version: u32,
    pub instance: String,
    /// When it started: Unix seconds, and `date` in RFC 3339 (UTC).
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

/// A drill declared in the policy, as the audit judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillDecl {
    /// `postgres.NAME` or `redis.NAME`.
    pub instance: String,
    pub from: BackupRef,
    pub rto_secs: u64,
    pub every_secs: u64,
    pub line: u64,
}

/// Every drill the policy declares.
pub fn declared(policy: &crate::policy::Policy) -> Vec<DrillDecl> {
    let decl = |instance: String, from: &BackupRef, rto_secs, every_secs, line| DrillDecl {
        instance,
        from: from.clone(),
        rto_secs,
        every_secs,
        line,
    };
    let pg = policy.postgres.iter().filter_map(|p| {
        let d = p.restore_drill.as_ref()?;
        Some(decl(format!("postgres.{}", p.name), &d.from, d.rto_secs, d.every_secs, d.line))
    });
    let redis = policy.redis.iter().filter_map(|r| {
        let d = r.restore_drill.as_ref()?;
        Some(decl(format!("redis.{}", r.name), &d.from, d.rto_secs, d.every_secs, d.line))
    });
    pg.chain(redis).collect()
}

/// Seconds since `t`, to the hundredth.
pub fn secs(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 100.0).round() / 100.0
}

/// A new record for `instance`, failed until concluded.
pub fn record(instance: &str, operator: &str, target: &str, rto_secs: u64) -> Record {
    let started = now();
    Record {
        version: 1,
        instance: instance.to_string(),
        started,
        date: format_time("%Y-%m-%dT%H:%M:%SZ", started),
        operator: operator.to_string(),
        target: target.to_string(),
        dump: None,
        phases: Phases::default(),
        total_seconds: 0.0,
        rto_seconds: rto_secs,
        checks: Vec::new(),
        result: "failed".into(),
        reason: None,
    }
}

/// Total the phases and judge: the drill's own error, failed checks, or
/// a time to restore over the RTO; else passed.
pub fn conclude(rec: &mut Record, outcome: Result<(), String>) {
    let p = &rec.phases;
    rec.total_seconds = ((p.download + p.restore + p.migrate + p.checks) * 100.0).round() / 100.0;
    rec.reason = match outcome {
        Err(e) => Some(e),
        Ok(()) if rec.checks.iter().any(|c| !c.passed) => Some(format!(
            "checks failed: {}",
            rec.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        )),
        Ok(()) if rec.total_seconds > rec.rto_seconds as f64 => {
            Some(format!("took {:.0} s, over the RTO of {} s", rec.total_seconds, rec.rto_seconds))
        }
        Ok(()) => None,
    };
    rec.result = if rec.reason.is_none() { "passed" } else { "failed" }.into();
}

/// A free loopback port for a drill's throw-away server.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A scratch directory for one drill (under the temporary directory),
/// readable by its owner only: the dump in it holds the database's data.
pub fn scratch_dir() -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("suoops-drill-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// The newest dump of `from`, downloaded into `path` and checked against
/// its sidecar as it arrives; the download is timed into `rec`. A
/// mismatch is an error: nothing may be restored from it.
pub async fn fetch_verified(
    aws: &Aws,
    from: &BackupRef,
    region: &str,
    path: &Path,
    rec: &mut Record,
) -> Result<String, String> {
    let client = aws.s3(region);
    let bucket = from.bucket.as_str();
    let key = crate::providers::s3::evidence::newest_object(aws, &client, bucket, &from.prefix, None)
        .await
        .map_err(|e| format!("listing s3://{bucket}/{}: {}", from.prefix, e.reason()))?
        .0
        .map(|o| o.key)
        .ok_or_else(|| format!("no dump under s3://{bucket}/{}", from.prefix))?;
    let side = get_text(aws, &client, bucket, &format!("{key}.sha256")).await.map_err(|e| {
        format!("the dump {key} has no readable sidecar ({e}): it cannot be verified, so it is not restored")
    })?;
    let want = side.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    let t = Instant::now();
    let (bytes, got) = download(aws, &client, bucket, &key, path).await?;
    rec.phases.download = secs(t);
    rec.dump = Some(DumpRef { bucket: bucket.to_string(), key: key.clone(), bytes, sha256: got.clone() });
    if got != want {
        return Err(format!(
            "{key} does not match its sidecar (SHA-256 {got}, the sidecar says {want}): nothing was restored"
        ));
    }
    Ok(key)
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

/// Put the record under `drills/INSTANCE/` of the entry's bucket.
pub async fn store(aws: &Aws, from: &BackupRef, region: &str, rec: &Record) -> Result<(), String> {
    let key = format!("{}{}.json", from.drills_prefix(&rec.instance), format_time("%Y%m%dT%H%M%SZ", rec.started));
    let sse = sse(aws, from, region).await?;
    let t = Target { aws, region: region.to_string(), bucket: from.bucket.clone(), key, sse };
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
