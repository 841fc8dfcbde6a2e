//! The jobs — the strategy's backup runs and restore drills — and the data
//! plane they share: the streaming upload with its sidecar (`upload`),
//! reading backups back and verifying them (`fetch`), and the drill's
//! record (`record`). A job is declared by the system it belongs to, as
//! its controls and operations are ([`Job`], reached through
//! `providers::jobs()`); `backup run ADDRESS` and `restore-drill ADDRESS`
//! resolve the address through that list. This module uses nothing above
//! it (no provider, no CLI).

pub mod encrypt;
pub mod error;
pub mod fetch;
pub mod record;
pub mod upload;

use std::time::Instant;

use futures::future::LocalBoxFuture;

use crate::aws::{Aws, Op};
use crate::model::time::{format_time, now};
use crate::policy::{BackupRef, Policy};
use upload::{Chunks, Pending, Sse, Target};

pub use error::{JobError, Stage};

pub use fetch::{
    download, fetch_located, fetch_verified, free_port, locate, newest_object, scratch_dir, verified, Growing, Growth,
    Listed,
};
pub use record::{
    conclude, drill, last, log_row, record, secs, store, CheckResult, DumpRef, Phases, PointInTime, Record, LOG_HEADER,
    RECORDS,
};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// `backup run ADDRESS`: take one backup now.
    Backup,
    /// `restore-drill ADDRESS`: restore the newest backup somewhere
    /// throw-away, check it, time it, record it.
    Drill,
    /// `restore ADDRESS --into DIR`: the disaster-recovery restore itself,
    /// into a directory the operator then starts.
    Restore,
}

impl JobKind {
    /// The command that runs it.
    pub fn command(self) -> &'static str {
        match self {
            JobKind::Backup => "backup run",
            JobKind::Drill => "restore-drill",
            JobKind::Restore => "restore",
        }
    }
    /// The policy key that declares it, and how.
    pub fn declaration(self) -> (&'static str, &'static str) {
        match self {
            JobKind::Backup => ("backup", "backup: {to: s3.BUCKET.backups.ENTRY}"),
            JobKind::Drill => ("restore_drill", "restore_drill: {from: s3.BUCKET.backups.ENTRY}"),
            JobKind::Restore => {
                ("pitr", "pitr: {repo: {bucket: BUCKET, prefix: pgbackrest/}, stanza: NAME, data_directory: DIR}")
            }
        }
    }
}

/// What a job is given to run with.
pub struct JobCtx<'a> {
    pub aws: &'a Aws,
    /// The region of an entry that names none.
    pub default_region: String,
    /// Who runs it, for drill records.
    pub operator: String,
    /// The multipart upload in flight, aborted when the job fails or is
    /// dropped (Ctrl-C): nothing is left behind.
    pub pending: Pending,
    /// A point-in-time drill's target: an RFC 3339 time, or None for the
    /// end of the archive (`--target latest`).
    pub target_time: Option<String>,
    /// A restore's destination directory (`restore --into DIR`).
    pub into: Option<std::path::PathBuf>,
}

/// What a job produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    Backup(Done),
    Drill(Box<Record>),
    Restored(Restored),
}

/// A disaster-recovery restore done: where, from what, to when, how long.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub instance: String,
    pub into: String,
    pub backup: String,
    /// The target asked for: an RFC 3339 time or `latest`.
    pub target: String,
    /// The commit time of the last transaction replayed.
    pub last_replayed: Option<String>,
    pub restore_seconds: f64,
    pub replay_seconds: f64,
}

/// One kind of job of one system. A system lists its jobs beside its
/// controls and operations; adding a job is a file in its system's folder
/// and one line in that list.
/// A job that runs on the database host: as `user`, writing `writes` (the
/// engine's log and spool; a leading `-` marks one that may not exist).
#[derive(Debug, Clone, Copy)]
pub struct OnHost {
    pub user: &'static str,
    pub writes: &'static [&'static str],
}

pub trait Job: Sync {
    fn kind(&self) -> JobKind;
    /// What it does, for `--help`: `postgres.NAME: a pg_dump (custom
    /// format)`.
    fn synopsis(&self) -> &'static str;
    /// The instances of its system the policy names, each with whether it
    /// declares this job: `("postgres.primary", true)`.
    fn instances(&self, policy: &Policy) -> Vec<(String, bool)>;
    /// The backups entry the job writes (a backup) or reads (a drill) for
    /// `address`, one `instances` says declares it.
    fn entry<'p>(&self, policy: &'p Policy, address: &str) -> Option<&'p BackupRef>;
    /// Run it for `address`.
    fn run<'a>(
        &'a self,
        ctx: &'a JobCtx<'a>,
        policy: &'a Policy,
        address: &'a str,
    ) -> LocalBoxFuture<'a, Result<Outcome, JobError>>;
    /// The API operations it calls (for `permissions` and the test that
    /// every call is declared).
    fn ops(&self) -> &'static [Op] {
        &[]
    }
    /// S3 object actions the engine the job drives (pgBackRest) makes
    /// under its entry's prefix besides the tool's own writes or reads,
    /// for `permissions` (listing the prefix comes with them).
    fn engine_actions(&self) -> &'static [&'static str] {
        &[]
    }
    /// Does it recover to a point in time (`--target-time`, `--target`)?
    fn takes_target(&self) -> bool {
        false
    }
    /// Its own text for an outcome, where the command's generic one does
    /// not say it (a point-in-time drill's phases and RPO; a restore's
    /// remaining steps); None: the generic text.
    fn render(&self, _outcome: &Outcome) -> Option<String> {
        None
    }
    /// When the job at `address` runs (its `schedule:`), if the policy
    /// says: its metrics carry the expected interval.
    fn schedule<'p>(&self, _policy: &'p Policy, _address: &str) -> Option<&'p crate::policy::schedule::Schedule> {
        None
    }
    /// Where the job must run, when it drives an engine that reads the
    /// database host's files itself: the user and the directories it
    /// writes; None: any host, any unprivileged user.
    fn on_host(&self) -> Option<OnHost> {
        None
    }
    /// The drills whose records the audit judges (RESTORE-DRILL).
    fn drills(&self, _policy: &Policy) -> Vec<DrillDecl> {
        Vec::new()
    }
    /// The configuration file of the engine the job drives, for the host
    /// that runs it (`backup config ADDRESS`: pgBackRest's); None: the job
    /// needs none.
    fn config<'a>(
        &'a self,
        _ctx: &'a JobCtx<'a>,
        _policy: &'a Policy,
        _address: &'a str,
    ) -> Option<LocalBoxFuture<'a, Result<String, JobError>>> {
        None
    }
}

/// Why an address has no job of the kind asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The instance exists but declares no `backup:` / `restore_drill:`
    /// (a configuration error, said as one).
    #[error("{address} declares no `{key}:` in {file}: add `{example}` under it (addresses with a `{key}:`: {})", list(.known))]
    Undeclared { address: String, key: &'static str, example: &'static str, file: String, known: Vec<String> },
    /// No such address, with the nearest one that has the job.
    #[error("{address} names no instance of {file} (addresses with a `{key}:`: {}){}", list(.known), hint(.nearest))]
    Unknown { address: String, key: &'static str, file: String, known: Vec<String>, nearest: Option<String> },
}

fn list(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    }
}

fn hint(nearest: &Option<String>) -> String {
    nearest.as_ref().map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

/// The job of `kind` for `address` among `jobs`, or why there is none.
pub fn resolve<'a>(
    jobs: impl Iterator<Item = &'a dyn Job>,
    kind: JobKind,
    policy: &Policy,
    address: &str,
) -> Result<&'a dyn Job, ResolveError> {
    let mut known = Vec::new();
    let mut undeclared = false;
    for job in jobs.filter(|j| j.kind() == kind) {
        for (addr, declared) in job.instances(policy) {
            if addr == address && declared {
                return Ok(job);
            }
            undeclared |= addr == address;
            if declared {
                known.push(addr);
            }
        }
    }
    known.sort();
    let (key, example) = kind.declaration();
    let (address, file) = (address.to_string(), policy.file.to_string());
    if undeclared {
        return Err(ResolveError::Undeclared { address, key, example, file, known });
    }
    let nearest = crate::policy::validate::closest(&address, known.iter().map(String::as_str)).map(str::to_string);
    Err(ResolveError::Unknown { address, key, file, known, nearest })
}

/// A drill declared in the policy, as the audit judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillDecl {
    /// `postgres.NAME` or `redis.NAME`.
    pub instance: String,
    pub from: BackupRef,
    pub rto_secs: u64,
    pub every_secs: u64,
    /// Its `schedule:` as written, if any.
    pub schedule: Option<String>,
    pub line: u64,
}

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
    /// What the result line says instead of the SHA-256 when the job is
    /// not a streamed dump (`full backup 20261202-101010F by pgBackRest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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
pub async fn sse(aws: &Aws, to: &BackupRef, region: &str) -> Result<Sse, JobError> {
    let enc = to.encryption.as_ref();
    let arn = match enc.and_then(|e| e.declared_key.as_ref().and(e.kms_key.as_deref())) {
        Some(alias) => {
            Some(crate::aws::lookup::key_arn(aws, region, alias, false).await.map_err(JobError::at(Stage::Upload))?)
        }
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
) -> Result<Done, JobError> {
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
        detail: None,
    })
}
