//! The point-in-time audit, read from the repository itself — never from
//! configuration: `pgbackrest info` (backups, their times and errors, the
//! archive's range), the archive's listing in S3 (each segment's time, and
//! every segment from the oldest backup's start to the newest present),
//! and the newest point-in-time drill record (its achieved RPO).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::info::{missing_along, parse_history, segment_in, Stanza};
use super::{address, Runner};
use crate::aws::{classify, ops, Aws};
use crate::jobs::Record;
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::time::now;
use crate::model::{Address, Observed, Shortfall};
use crate::policy::schedule::missed;
use crate::providers::postgres::section::{Pitr, PostgresSpec};

const WHY: &str = "WAL cannot be replayed onto a logical dump: the 15-minute RPO rests on physical backups and a continuous WAL archive (strategy: PostgreSQL backups, DR procedure).";

pub const BACKUP: ControlDef = ControlDef {
    id: "PITR-BACKUP",
    title: "A recent physical backup in the pgBackRest repository",
    rationale: WHY,
    severity: Severity::High,
    objectives: &["RPO-15MIN"],
};
pub const WAL: ControlDef = ControlDef {
    id: "PITR-WAL",
    title: "WAL archived within the RPO, without gaps",
    rationale: WHY,
    severity: Severity::High,
    objectives: &["RPO-15MIN"],
};
pub const WINDOW: ControlDef = ControlDef {
    id: "PITR-WINDOW",
    title: "The point-in-time window is kept",
    rationale: "WAL kept 24 hours: every point of the window is recoverable (strategy: PostgreSQL backups).",
    severity: Severity::Medium,
    objectives: &["RETENTION-14D"],
};
pub const DRILL: ControlDef = ControlDef {
    id: "PITR-DRILL",
    title: "A point-in-time restore achieved the RPO",
    rationale: "An RPO is met when a restore reached it: the newest point-in-time drill passed and the last transaction it replayed was within the RPO of its start (strategy: RPO 15 minutes, DR procedure).",
    severity: Severity::High,
    objectives: &["RPO-15MIN"],
};

pub const VERIFY: ControlDef = ControlDef {
    id: "PITR-VERIFY",
    title: "pgBackRest verify passed after the newest backup",
    rationale: "A repository is only as good as its files: pgbackrest verify read every backup file and WAL segment back and found none missing or corrupt (strategy: integrity hash, restore readiness).",
    severity: Severity::High,
    objectives: &["RPO-15MIN"],
};

pub const REPLICA: ControlDef = ControlDef {
    id: "PITR-REPLICA",
    title: "The repository's DR copy holds the newest backup and WAL",
    rationale: "A disaster-recovery copy of the repository is one a restore can use: the newest backup's manifest and the newest archived WAL segment are in each replication destination, the same objects, as S3 replication reports them (strategy: cross-region replication for disaster recovery).",
    severity: Severity::High,
    objectives: &["DR-COPY"],
};

/// The archive's segments as listed: the newest, its age, and the gaps.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WalSeen {
    pub newest: String,
    /// The newest segment's object key (`…/SEGMENT-SHA1.gz`).
    #[serde(skip)]
    pub newest_key: String,
    pub age_seconds: u64,
    /// Segments missing between the oldest backup's start and the newest,
    /// along the timeline path.
    pub missing: Vec<String>,
    /// The timelines recovery from the oldest backup to the newest
    /// segment goes through (from the newest timeline's history file).
    pub timelines: Vec<u32>,
    /// Why that path cannot be followed at all: the newest timeline's
    /// history file is not in the archive, or the oldest backup is off
    /// the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
    pub listed: usize,
}

/// What the audit read of one instance's repository.
#[derive(Debug, Clone, PartialEq)]
pub struct PitrSeen {
    pub info: Observed<Stanza>,
    pub wal: Observed<WalSeen>,
    pub drill: Observed<Record>,
    pub verify: Observed<super::verify::Verified>,
    /// The newest backup's manifest under its own Object Lock, when the
    /// repository's bucket declares `object_lock:` (Ok: what was found).
    pub locked: Option<Observed<Result<String, Shortfall>>>,
    /// The repository's DR copies (`pitr.dr_copies`): Ok with what was
    /// found, or why a copy is not the repository's; None when no
    /// replication rule copies it.
    pub replica: Option<Observed<Result<String, Shortfall>>>,
    /// The newest backup read back from the repository now (its manifest,
    /// or the copy): Err with why it cannot be; None when there is no
    /// backup to read.
    pub manifest: Option<Result<String, Shortfall>>,
    /// When the repository's first backup was made: the oldest entry of
    /// pgBackRest's `backup.history` (kept for the life of the stanza),
    /// Unix seconds; None when it holds none.
    pub first_backup: Observed<Option<u64>>,
    /// The last `backup run …pitr` as it stored itself.
    pub last_run: Observed<super::verify::LastRun>,
}

impl PitrSeen {
    /// Nothing of the repository could be read, for `reason`.
    pub fn unknown(reason: &str) -> PitrSeen {
        let u = || reason.to_string();
        PitrSeen {
            info: Observed::Unknown { reason: u() },
            wal: Observed::Unknown { reason: u() },
            drill: Observed::Unknown { reason: u() },
            verify: Observed::Unknown { reason: u() },
            locked: None,
            replica: None,
            manifest: None,
            first_backup: Observed::Unknown { reason: u() },
            last_run: Observed::Unknown { reason: u() },
        }
    }
}

/// Most listing pages read (1,000 keys each): a 24-hour window at one
/// segment a minute is 1,440 keys.
const PAGES: usize = 50;

/// Read the repository of `pitr`.
pub async fn observe(aws: &Aws, spec: &PostgresSpec, pitr: &Pitr) -> PitrSeen {
    let default_region = aws.default_region().unwrap_or("us-east-1").to_string();
    let region = pitr.repo.region.clone().unwrap_or_else(|| default_region.clone());
    let client = aws.s3(&region);
    let drill = match crate::jobs::last(aws, &client, &pitr.repo.bucket, &pitr.repo.drills_prefix(&address(spec))).await
    {
        Ok(Some(r)) => Observed::Present(r),
        Ok(None) => Observed::Absent,
        Err(crate::aws::ApiError::NotFound(_)) => Observed::Absent,
        Err(e) => Observed::Unknown { reason: e.reason() },
    };
    let verify = stored(aws, &client, pitr, super::verify::VERIFY).await;
    let last_run = stored(aws, &client, pitr, super::verify::RUN).await;
    // The newest backup is checked where it lives on every audit, cheaply:
    // its manifest (or the copy) loads, without reading a data file —
    // backup.info alone still lists a backup whose directory is gone.
    // The audit says why it could not look, in words.
    let runner = Runner::new(aws, pitr, &default_region).await.map_err(|e| e.to_string());
    let info = match &runner {
        Ok(r) => r.info().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    };
    let manifest = match info.as_ref().ok().and_then(|s| s.newest()) {
        Some(b) => Some(manifest(aws, &client, pitr, &b.label).await.map(|()| b.label.clone())),
        None => None,
    };
    let (info, wal) = match info {
        Ok(s) => {
            let wal = match &runner {
                Ok(r) => wal(aws, &client, r, &s, segment_size(spec, &s).await).await,
                Err(e) => Observed::Unknown { reason: e.clone() },
            };
            (Observed::Present(s), wal)
        }
        Err(e) => (Observed::Unknown { reason: e.clone() }, Observed::Unknown { reason: e }),
    };
    // The repository's versions are locked, read from the newest backup's
    // manifest itself (a default retention locks only what came after it).
    let locked = match (pitr.repo.object_lock_days, &info) {
        (Some(days), Observed::Present(s)) => match s.newest() {
            Some(b) => {
                let key = format!("{}backup/{}/{}/backup.manifest", pitr.repo.prefix, pitr.stanza, b.label);
                match crate::aws::lookup::locked(
                    aws,
                    &client,
                    &pitr.repo.bucket,
                    &key,
                    days.max(0) as u64 * 86_400,
                    false,
                )
                .await
                {
                    Ok(v) => Some(v),
                    Err(e) => Some(Observed::Unknown { reason: e.to_string() }),
                }
            }
            None => None,
        },
        (Some(_), Observed::Unknown { reason }) => Some(Observed::Unknown { reason: reason.clone() }),
        _ => None,
    };
    let replica = replica(aws, pitr, &info, &wal).await;
    let first_backup = first_backup(aws, &client, pitr).await;
    PitrSeen { info, wal, drill, verify, locked, replica, manifest, first_backup, last_run }
}

/// A record the jobs keep in the repository's `suoops/` folder.
async fn stored<T: serde::de::DeserializeOwned>(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    pitr: &Pitr,
    name: &str,
) -> Observed<T> {
    match super::verify::last(aws, client, pitr, name).await {
        Ok(Some(v)) => Observed::Present(v),
        Ok(None) | Err(crate::aws::ApiError::NotFound(_)) => Observed::Absent,
        Err(e) => Observed::Unknown { reason: e.reason() },
    }
}

/// When the repository's first backup was made: the oldest object under
/// `backup.history/`, where pgBackRest keeps a copy of every backup's
/// manifest for the life of the stanza (expire does not remove them).
async fn first_backup(aws: &Aws, client: &aws_sdk_s3::Client, pitr: &Pitr) -> Observed<Option<u64>> {
    let prefix = format!("{}backup/{}/backup.history/", pitr.repo.prefix, pitr.stanza);
    match listed(aws, client, &pitr.repo.bucket, &prefix).await {
        Ok(objects) => Observed::Present(objects.iter().map(|(_, when)| *when).min()),
        Err(e) => Observed::Unknown { reason: e.reason() },
    }
}

/// Every object under `prefix` with its LastModified (Unix seconds), at
/// most `PAGES` listing pages.
async fn listed(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<(String, u64)>, crate::aws::ApiError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..PAGES {
        let req = client.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token.clone());
        let page = aws.call(&ops::LIST_OBJECTS_V2, req.send()).await.map_err(|e| classify(&e, &["NoSuchBucket"]))?;
        for o in page.contents() {
            let when = o.last_modified().map_or(0, |t| t.secs().max(0) as u64);
            out.push((o.key().unwrap_or_default().to_string(), when));
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// The largest manifest read back whole (a manifest lists every file of
/// the cluster: a few hundred bytes each).
const MANIFEST_MAX: i64 = 64 * 1024 * 1024;

/// Backup `label`'s manifest loads: `backup.manifest`, else its
/// `backup.manifest.copy` (pgBackRest keeps both and reads the copy when
/// the first is gone or damaged), is in the repository and holds what a
/// restore needs — its `[backup]` and `[target:file]` sections and
/// pgBackRest's checksum line. backup.info alone still lists a backup
/// whose directory was deleted. Unencrypted repositories only: with a
/// `cipher_pass` the files are ciphertext, and presence is what is read.
async fn manifest(aws: &Aws, client: &aws_sdk_s3::Client, pitr: &Pitr, label: &str) -> Result<(), Shortfall> {
    let dir = format!("{}backup/{}/{label}/", pitr.repo.prefix, pitr.stanza);
    let mut why = Vec::new();
    for name in ["backup.manifest", "backup.manifest.copy"] {
        let key = format!("{dir}{name}");
        let out = match aws.call(&ops::GET_OBJECT, client.get_object().bucket(&pitr.repo.bucket).key(&key).send()).await
        {
            Ok(o) => o,
            Err(e) => {
                why.push(format!("{name}: {}", classify(&e, &["NoSuchKey"]).reason()));
                continue;
            }
        };
        if pitr.cipher_pass.is_some() {
            return Ok(());
        }
        if out.content_length().unwrap_or(0) > MANIFEST_MAX {
            return Ok(());
        }
        let text = match out.body.collect().await {
            Ok(b) => String::from_utf8_lossy(&b.into_bytes()).into_owned(),
            Err(e) => {
                why.push(format!("{name}: {e}"));
                continue;
            }
        };
        let complete = ["[backup]", "[target:file]", "backrest-checksum="].iter().all(|s| text.contains(s));
        if complete {
            return Ok(());
        }
        why.push(format!("{name} is not a complete pgBackRest manifest"));
    }
    Err(Shortfall(format!("s3://{}/{dir}: {}", pitr.repo.bucket, why.join("; "))))
}

/// Each DR copy of the repository holds what a restore from it needs
/// first: the newest backup's manifest and the newest archived segment,
/// judged as BACKUP-REPLICA judges a dump's copy (the source's
/// `x-amz-replication-status`, then size and SHA-256 in the destination).
async fn replica(
    aws: &Aws,
    pitr: &Pitr,
    info: &Observed<Stanza>,
    wal: &Observed<WalSeen>,
) -> Option<Observed<Result<String, Shortfall>>> {
    use crate::providers::s3::evidence::{judge_replica, Copy};
    if pitr.dr_copies.is_empty() {
        return None;
    }
    let (s, w) = match (info, wal) {
        (Observed::Present(s), Observed::Present(w)) => (s, w),
        (Observed::Unknown { reason }, _) | (_, Observed::Unknown { reason }) => {
            return Some(Observed::Unknown { reason: reason.clone() })
        }
        _ => return Some(Observed::Present(Err("the repository holds no backup or WAL to look for".into()))),
    };
    let Some(b) = s.newest() else {
        return Some(Observed::Present(Err("the repository holds no backup to look for".into())));
    };
    let manifest = format!("{}backup/{}/{}/backup.manifest", pitr.repo.prefix, pitr.stanza, b.label);
    let region = pitr.repo.region.clone().unwrap_or_else(|| aws.default_region().unwrap_or("us-east-1").to_string());
    let head = |bucket: String, region: String, key: String| async move {
        let req = aws
            .s3(&region)
            .head_object()
            .bucket(bucket)
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
        match aws.call(&ops::HEAD_OBJECT, req.send()).await {
            Ok(h) => Ok(Some(Copy {
                len: h.content_length(),
                sha256: h.checksum_sha256().map(str::to_string),
                age: h.last_modified().map(|t| now().saturating_sub(t.secs().max(0) as u64)),
                status: h.replication_status().map(|s| s.as_str().to_string()),
            })),
            Err(e) => match classify(&e, &["NoSuchKey", "NotFound", "NoSuchBucket"]) {
                crate::aws::ApiError::NotFound(_) => Ok(None),
                other => Err(other.reason()),
            },
        }
    };
    let mut found = Vec::new();
    for key in [manifest, w.newest_key.clone()] {
        let source = match head(pitr.repo.bucket.clone(), region.clone(), key.clone()).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Some(Observed::Present(Err(Shortfall(format!("{key} is gone from s3://{}", pitr.repo.bucket)))))
            }
            Err(reason) => return Some(Observed::Unknown { reason }),
        };
        let age = source.age.unwrap_or(0);
        for (dest, dest_region) in &pitr.dr_copies {
            let dest_region = dest_region.clone().unwrap_or_else(|| region.clone());
            let copy = match head(dest.clone(), dest_region, key.clone()).await {
                Ok(c) => c,
                Err(reason) => return Some(Observed::Unknown { reason }),
            };
            // The copy is no older than its source plus the window.
            if let Err(why) = judge_replica(&key, dest, &source, copy.as_ref(), age, age) {
                return Some(Observed::Present(Err(why)));
            }
            found.push(format!("s3://{dest}/{key}"));
        }
    }
    Some(Observed::Present(Ok(found.join(", "))))
}

/// The cluster's WAL segment size in bytes (`wal_segment_size`, set by
/// `initdb --wal-segsize`), read from the server; when it cannot be
/// reached, from the backups' LSNs in the repository; PostgreSQL's
/// default 16 MiB when neither says.
async fn segment_size(spec: &PostgresSpec, s: &Stanza) -> u64 {
    let server = match super::super::connect(spec).await {
        Ok(client) => {
            let sql = "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'";
            client.query_one(sql, &[]).await.ok().and_then(|r| r.try_get::<_, i64>(0).ok()).map(|n| n.max(1) as u64)
        }
        Err(_) => None,
    };
    server.or_else(|| s.segment_size()).unwrap_or(16 << 20)
}

async fn wal(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    runner: &Runner<'_>,
    s: &Stanza,
    seg_size: u64,
) -> Observed<WalSeen> {
    let pitr = runner.pitr;
    let Some(archive) = s.current_archive() else { return Observed::Absent };
    let prefix = format!("{}archive/{}/{}/", pitr.repo.prefix, pitr.stanza, archive.id);
    // name → LastModified (Unix seconds)
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    // name → object key
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    // timeline → its history file's key
    let mut histories: BTreeMap<u32, String> = BTreeMap::new();
    let objects = match listed(aws, client, &pitr.repo.bucket, &prefix).await {
        Ok(o) => o,
        Err(e) => return Observed::Unknown { reason: e.reason() },
    };
    for (key, when) in objects {
        let file = key.rsplit('/').next().unwrap_or_default();
        // SEGMENT-SHA1.EXT; TIMELINE.history[.EXT]; .backup and .partial
        // files aside.
        let name = file.get(..24).unwrap_or_default();
        if segment_in(name, seg_size).is_some() && file.as_bytes().get(24) == Some(&b'-') {
            seen.insert(name.to_string(), when);
            keys.insert(name.to_string(), key.clone());
        } else if let Some(tli) = file.strip_suffix(".history").or_else(|| file.split_once(".history.").map(|(t, _)| t))
        {
            if let Ok(t) = u32::from_str_radix(tli, 16) {
                histories.insert(t, key.clone());
            }
        }
    }
    let Some((newest, when)) = seen.iter().max_by_key(|(n, _)| segment_in(n, seg_size)).map(|(n, w)| (n.clone(), *w))
    else {
        return Observed::Absent;
    };
    let newest_key = keys.get(&newest).cloned().unwrap_or_default();
    let mut w = WalSeen {
        newest,
        newest_key,
        age_seconds: now().saturating_sub(when),
        missing: Vec::new(),
        timelines: Vec::new(),
        broken: None,
        listed: seen.len(),
    };
    // Continuity from the oldest backup's first segment (a restore of it
    // needs every one after) to the newest, along the timelines between
    // them, numbered with the cluster's own segment size.
    let Some(start) = s.oldest().and_then(|b| b.archive.as_ref()).and_then(|a| a.start.clone()) else {
        return Observed::Present(w);
    };
    let (Some((start_tli, _)), Some((tli, _))) = (segment_in(&start, seg_size), segment_in(&w.newest, seg_size)) else {
        return Observed::Present(w);
    };
    let history = if start_tli == tli {
        Vec::new()
    } else {
        let Some(key) = histories.get(&tli) else {
            w.broken = Some(format!(
                "timeline {tli}'s history file ({tli:08X}.history) is not in the archive: a restore from the oldest backup (timeline {start_tli}) cannot follow to the newest segment {} — was the new primary promoted with archiving off?",
                w.newest
            ));
            return Observed::Present(w);
        };
        match history(runner, key).await {
            Ok(h) => h,
            Err(why) => return Observed::Unknown { reason: why.into() },
        }
    };
    w.timelines = history.iter().map(|s| s.tli).filter(|t| *t >= start_tli && *t < tli).chain([tli]).collect();
    match missing_along(&seen, &start, &w.newest, &history, seg_size) {
        Ok(missing) => w.missing = missing,
        Err(why) => w.broken = Some(why.to_string()),
    }
    Observed::Present(w)
}

/// A timeline history file read back through `pgbackrest repo-get` (which
/// decrypts an encrypted repository), decompressed by its extension.
async fn history(runner: &Runner<'_>, key: &str) -> Result<Vec<super::info::Switch>, Shortfall> {
    let pitr = runner.pitr;
    let rel = key.strip_prefix(&pitr.repo.prefix).unwrap_or(key).to_string();
    let file = key.rsplit('/').next().unwrap_or_default();
    let raw = runner.run_bytes("repo-get", &[], &[rel]).await.map_err(|e| e.to_string())?;
    let text = if file.ends_with(".gz") {
        use std::io::Read;
        let mut out = String::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut out)
            .map_err(|e| Shortfall(format!("s3://{}/{key}: {e}", pitr.repo.bucket)))?;
        out
    } else if file.ends_with(".history") {
        String::from_utf8_lossy(&raw).into_owned()
    } else {
        return Err(Shortfall(format!("s3://{}/{key}: a compression this tool cannot read", pitr.repo.bucket)));
    };
    parse_history(&text).map_err(|e| Shortfall(format!("s3://{}/{key}: {e}", pitr.repo.bucket)))
}

/// PITR-VERIFY: the stored verdict counts only while it is younger than
/// `verify_every`, after the newest backup, and the repository reads now
/// (its newest backup's manifest loads); never when the repository
/// cannot be read.
fn verify(pitr: &Pitr, seen: &PitrSeen, addr: &str, t: u64, sink: &mut Sink) {
    let newest_stop = seen.info.present().and_then(|s| s.newest()).map(|b| b.timestamp.stop);
    let expected = json!({"passed": true, "after_newest_backup": true, "within_seconds": pitr.verify_every_secs});
    let fix = format!("suoops-policy backup run {addr} (it runs pgbackrest verify after the backup)");
    if let Observed::Unknown { reason } = &seen.info {
        let why = format!("the repository cannot be read now, so no stored verify result is relied on: {reason}");
        return sink.push(&VERIFY, Status::Unknown, expected, Value::Null, Some(why), &fix);
    }
    match &seen.verify {
        Observed::Present(v) => {
            let age = t.saturating_sub(v.started);
            let why = if let Some(Err(e)) = &seen.manifest {
                // A verdict stored before the damage proves nothing now.
                Some(format!("the newest backup cannot be read from the repository now ({e}): the stored verify result ({}) no longer holds", v.date))
            } else if !v.passed {
                Some(format!("pgbackrest verify ({}) found: {}", v.date, v.problems.join("; ")))
            } else if age > pitr.verify_every_secs {
                Some(format!(
                    "the last verify ({}) is {} old, over verify_every ({}): what it read may have changed since",
                    v.date,
                    ago(age),
                    ago(pitr.verify_every_secs)
                ))
            } else if newest_stop.is_some_and(|stop| v.started < stop) {
                Some(format!("the last verify ({}) ran before the newest backup: that backup is not verified", v.date))
            } else {
                None
            };
            let status = if why.is_some() { Status::Fail } else { Status::Pass };
            sink.push(&VERIFY, status, expected, json!(v), why, &fix);
        }
        Observed::Absent => sink.push(
            &VERIFY,
            Status::Fail,
            expected,
            Value::Null,
            Some(format!("no verify result under s3://{}/{}suoops/", pitr.repo.bucket, pitr.repo.prefix)),
            &fix,
        ),
        Observed::Unknown { reason } => {
            sink.push(&VERIFY, Status::Unknown, expected, Value::Null, Some(reason.clone()), &fix)
        }
    }
}

/// A segment's name with its timeline, where a path crosses several.
fn named(segment: &str) -> String {
    match segment.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()) {
        Some(tli) => format!("{segment} (timeline {tli})"),
        None => segment.to_string(),
    }
}

fn ago(secs: u64) -> String {
    if secs >= 86400 {
        format!("{:.1} d", secs as f64 / 86400.0)
    } else if secs >= 3600 {
        format!("{:.1} h", secs as f64 / 3600.0)
    } else {
        format!("{secs} s")
    }
}

/// Where one instance's PITR controls go: its address and policy line.
struct Sink {
    addr: Address,
    line: u64,
    out: Vec<ControlResult>,
}

impl Sink {
    fn push(
        &mut self,
        def: &ControlDef,
        status: Status,
        expected: Value,
        observed: Value,
        detail: Option<String>,
        fix: &str,
    ) {
        self.out.push(def.result(&self.addr, status, expected, observed, detail, fix.to_string(), self.line))
    }
}

/// PITR-BACKUP, PITR-WAL, PITR-WINDOW, PITR-VERIFY, PITR-DRILL and
/// PITR-REPLICA of one instance.
/// `archiver` is the server's pg_stat_archiver: when the repository cannot
/// be read (the store is down), the server's own record of its last
/// archived segment still shows the lag.
pub fn controls(
    spec: &PostgresSpec,
    pitr: &Pitr,
    seen: &PitrSeen,
    archiver: &Observed<crate::providers::postgres::Archiver>,
) -> Vec<ControlResult> {
    let mut sink = Sink { addr: Address::parse(&address(spec)), line: pitr.line, out: Vec::new() };
    let fix = format!("suoops-policy backup run {} (on the database host, from a scheduler)", address(spec));
    let t = now();
    match &seen.info {
        Observed::Present(s) => {
            backup(pitr, seen, s, t, &fix, &mut sink);
            window(pitr, seen, s, t, &fix, &mut sink);
        }
        other => unread(pitr, other, &fix, &mut sink),
    }
    wal_control(pitr, seen, archiver, &mut sink);
    verify(pitr, seen, &address(spec), t, &mut sink);
    drill(pitr, seen, &address(spec), t, &mut sink);
    replica_control(pitr, seen, &mut sink);
    sink.out
}

/// PITR-BACKUP: a full backup within `full_every`, none in error, the
/// newest readable now, the last run not failed since, its versions
/// locked where the bucket locks.
fn backup(pitr: &Pitr, seen: &PitrSeen, s: &Stanza, t: u64, fix: &str, sink: &mut Sink) {
    let full = s.newest_full();
    let failed: Vec<&str> = s.backup.iter().filter(|b| b.error == Some(true)).map(|b| b.label.as_str()).collect();
    let lock = match &seen.locked {
        Some(Observed::Present(Ok(what))) => json!(what),
        Some(Observed::Present(Err(why))) => json!(why),
        Some(Observed::Unknown { reason }) => json!(format!("not known: {reason}")),
        _ => Value::Null,
    };
    let observed = json!({
        "status": s.status.message, "backups": s.backup.len(),
        "newest_full": full.map(|b| json!({"label": b.label, "stopped": b.timestamp.stop})),
        "newest": s.newest().map(|b| json!({"label": b.label, "type": b.kind, "stopped": b.timestamp.stop})),
        "in_error": failed,
        "locked": lock,
        "last_run": seen.last_run.present(),
    });
    let newest_stop = s.newest().map_or(0, |b| b.timestamp.stop);
    let run_failed = seen.last_run.present().filter(|r| !r.passed && r.started >= newest_stop);
    // The job's own schedule: each run takes a full or differential
    // backup, so the newest of any type shows whether it still runs.
    let overdue = pitr.schedule.as_ref().filter(|sch| t.saturating_sub(newest_stop) > sch.allowance_secs());
    let why = match full {
        None => Some(format!("the repository holds no full backup of stanza {}", pitr.stanza)),
        // The last attempt counts: a backup that can no longer be
        // taken is not compliant, however recent the last good one.
        Some(_) if run_failed.is_some() => run_failed.map(|r| {
            format!(
                "the last backup run ({}) failed: {}; the newest backup ({}) is older than it",
                r.date,
                r.reason.as_deref().unwrap_or("no reason recorded"),
                s.newest().map_or("", |b| b.label.as_str())
            )
        }),
        Some(b) if t.saturating_sub(b.timestamp.stop) > pitr.full_every_secs => Some(format!(
            "the newest full backup ({}) is {} old, over full_every ({})",
            b.label,
            ago(t.saturating_sub(b.timestamp.stop)),
            ago(pitr.full_every_secs)
        )),
        Some(_) if overdue.is_some() => overdue.map(|sch| {
            format!(
                "the newest backup ({}) is {} old, over {}{}",
                s.newest().map_or("", |b| b.label.as_str()),
                ago(t.saturating_sub(newest_stop)),
                ago(sch.allowance_secs()),
                missed(Some(&sch.text))
            )
        }),
        Some(_) if !failed.is_empty() => Some(format!("backups in error: {}", failed.join(", "))),
        Some(_) if s.status.code != 0 => Some(format!("pgBackRest reports the stanza as: {}", s.status.message)),
        Some(_) if matches!(seen.manifest, Some(Err(_))) => {
            let why = seen.manifest.clone().and_then(Result::err).unwrap_or_default();
            let label = s.newest().map_or("", |b| b.label.as_str());
            Some(format!("the newest backup {label} cannot be read from the repository: {why}"))
        }
        Some(_) => match &seen.locked {
            Some(Observed::Present(Err(why))) => Some(format!("the repository's versions are not locked: {why}")),
            _ => None,
        },
    };
    let (status, why) = match (why, &seen.locked) {
        (Some(w), _) => (Status::Fail, Some(w)),
        (None, Some(Observed::Unknown { reason })) => {
            (Status::Unknown, Some(format!("whether the repository's versions are locked is not known: {reason}")))
        }
        (None, _) => (Status::Pass, None),
    };
    let mut expected = json!({"full_within_seconds": pitr.full_every_secs, "in_error": []});
    if let Some(sch) = &pitr.schedule {
        expected["newest_within_seconds"] = json!(sch.allowance_secs());
        expected["schedule"] = json!(sch.text);
    }
    sink.push(&BACKUP, status, expected, observed, why, fix);
}

/// PITR-WINDOW: the oldest backup reaches back `window`, or the
/// repository is younger than it.
fn window(pitr: &Pitr, seen: &PitrSeen, s: &Stanza, t: u64, fix: &str, sink: &mut Sink) {
    // The window: the oldest backup's start is the earliest point a
    // restore can reach (WAL from it on is kept with it).
    let oldest = s.oldest().map(|b| b.timestamp.start);
    // A repository older than the window must reach back the whole
    // window; only a young one may still be filling it.
    let since = seen.first_backup.present().copied().flatten();
    let (status, why) = match oldest {
        None => (Status::Fail, Some("no backup: no point in time is recoverable".to_string())),
        Some(o) if t.saturating_sub(o) >= pitr.window_secs => (Status::Pass, None),
        Some(o) if since.is_some_and(|f| t.saturating_sub(f) >= pitr.window_secs && f < o) => (
            Status::Fail,
            Some(format!(
                "the repository has held backups for {} (backup.history), but the oldest it still holds starts {} ago: the window of {} is not kept — the backups before {} are gone",
                ago(t.saturating_sub(since.unwrap_or(o))),
                ago(t.saturating_sub(o)),
                ago(pitr.window_secs),
                s.oldest().map_or("", |b| b.label.as_str())
            )),
        ),
        Some(o) => (
            Status::Pass,
            Some(format!(
                "every point since the first backup kept ({} ago) is recoverable; the window of {} fills as it ages",
                ago(t.saturating_sub(o)),
                ago(pitr.window_secs)
            )),
        ),
    };
    sink.push(
        &WINDOW,
        status,
        json!({"window_seconds": pitr.window_secs}),
        json!({"oldest_recoverable": oldest, "seconds_covered": oldest.map(|o| t.saturating_sub(o))}),
        why,
        fix,
    );
}

/// PITR-BACKUP and PITR-WINDOW when the repository cannot be read.
fn unread(pitr: &Pitr, info: &Observed<Stanza>, fix: &str, sink: &mut Sink) {
    let reason = info.unknown_reason().map(str::to_string);
    sink.push(
        &BACKUP,
        Status::Unknown,
        json!({"full_within_seconds": pitr.full_every_secs}),
        Value::Null,
        reason.clone(),
        fix,
    );
    sink.push(&WINDOW, Status::Unknown, json!({"window_seconds": pitr.window_secs}), Value::Null, reason, fix);
}

/// PITR-WAL: the newest segment within `rpo`, none missing along the
/// timelines; from the server's pg_stat_archiver when the repository
/// cannot be read.
fn wal_control(
    pitr: &Pitr,
    seen: &PitrSeen,
    archiver: &Observed<crate::providers::postgres::Archiver>,
    sink: &mut Sink,
) {
    let wal_fix = "check archive_command (suoops-policy apply sets it) and pg_stat_archiver on the server";
    let expected = json!({"max_age_seconds": pitr.rpo_secs, "missing": []});
    match &seen.wal {
        Observed::Present(w) => {
            let why = if let Some(broken) = &w.broken {
                Some(broken.clone())
            } else if !w.missing.is_empty() {
                let shown: Vec<String> = w.missing.iter().take(5).map(|n| named(n)).collect();
                Some(format!(
                    "{} WAL segment(s) missing from the archive after the oldest backup: {}{}; no point after the first gap is recoverable",
                    w.missing.len(),
                    shown.join(", "),
                    if w.missing.len() > 5 { ", …" } else { "" }
                ))
            } else if w.age_seconds > pitr.rpo_secs {
                Some(format!(
                    "the newest archived segment ({}) is {} old, over the RPO of {}: archiving lags by {}",
                    w.newest,
                    ago(w.age_seconds),
                    ago(pitr.rpo_secs),
                    ago(w.age_seconds - pitr.rpo_secs)
                ))
            } else {
                None
            };
            let status = if why.is_some() { Status::Fail } else { Status::Pass };
            sink.push(&WAL, status, expected, json!(w), why, wal_fix);
        }
        Observed::Absent => sink.push(
            &WAL,
            Status::Fail,
            expected,
            Value::Null,
            Some("no WAL segment in the repository's archive".into()),
            wal_fix,
        ),
        Observed::Unknown { reason } => match archiver {
            Observed::Present(a) if a.failing || a.last_archived_age.is_none_or(|x| x > pitr.rpo_secs as f64) => {
                let age = a.last_archived_age.map(|x| x.round() as u64);
                let lag = match age {
                    Some(x) if x > pitr.rpo_secs => format!(
                        "the server's last archived segment is {} old, over the RPO of {}: archiving lags by {}",
                        ago(x),
                        ago(pitr.rpo_secs),
                        ago(x - pitr.rpo_secs)
                    ),
                    Some(x) => format!("the server's last archived segment is {} old", ago(x)),
                    None => "the server has archived no segment".to_string(),
                };
                let failing = a
                    .last_failed_wal
                    .as_deref()
                    .filter(|_| a.failing)
                    .map(|w| format!("; archiving {w} is failing"))
                    .unwrap_or_default();
                let observed = json!({"server_last_archived_age_seconds": age, "server_failing": a.failing, "last_failed_wal": a.last_failed_wal});
                let detail = format!("{lag}{failing} (pg_stat_archiver; the repository cannot be read: {reason})");
                sink.push(&WAL, Status::Fail, expected, observed, Some(detail), wal_fix)
            }
            _ => sink.push(&WAL, Status::Unknown, expected, Value::Null, Some(reason.clone()), wal_fix),
        },
    }
}

/// PITR-DRILL: the newest point-in-time drill passed within `every`, its
/// achieved RPO within `rpo`.
fn drill(pitr: &Pitr, seen: &PitrSeen, addr: &str, t: u64, sink: &mut Sink) {
    let drill_fix = format!("suoops-policy restore-drill {} --target latest (monthly, from a scheduler)", addr);
    let every = pitr.drill.as_ref().map_or(30 * 86400, |d| d.every_secs);
    let expected = json!({"result": "passed", "achieved_rpo_max_seconds": pitr.rpo_secs, "within_seconds": every});
    match &seen.drill {
        Observed::Present(r) => {
            let p = r.pitr.as_ref();
            let rpo = p.and_then(|p| p.achieved_rpo_seconds);
            let observed = json!({
                "date": r.date, "result": r.result, "target": p.map(|p| &p.target),
                "backup": p.map(|p| &p.backup), "last_replayed": p.and_then(|p| p.last_replayed.as_ref()),
                "achieved_rpo_seconds": rpo, "rpo_measured": p.and_then(|p| p.rpo_measured.as_ref()), "phases": r.phases,
            });
            let why = if !r.passed() {
                Some(format!(
                    "the last point-in-time drill ({}) failed: {}",
                    r.date,
                    r.reason.clone().unwrap_or_default()
                ))
            } else if t.saturating_sub(r.started) > every {
                Some(format!(
                    "the last point-in-time drill was {} ago, more than every {}{}",
                    ago(t.saturating_sub(r.started)),
                    ago(every),
                    missed(pitr.drill.as_ref().and_then(|d| d.schedule.as_ref()).map(|s| s.text.as_str()))
                ))
            } else {
                match rpo {
                    None => Some("the last drill replayed no transaction: its RPO was not measured".into()),
                    Some(x) if x > pitr.rpo_secs as f64 => {
                        Some(format!("the last drill's achieved RPO was {x:.0} s, over the RPO of {} s", pitr.rpo_secs))
                    }
                    Some(_) => None,
                }
            };
            let status = if why.is_some() { Status::Fail } else { Status::Pass };
            sink.push(&DRILL, status, expected, observed, why, &drill_fix);
        }
        Observed::Absent => sink.push(
            &DRILL,
            Status::Fail,
            expected,
            Value::Null,
            Some(format!(
                "no point-in-time drill record under s3://{}/{}",
                pitr.repo.bucket,
                pitr.repo.drills_prefix(addr)
            )),
            &drill_fix,
        ),
        Observed::Unknown { reason } => {
            sink.push(&DRILL, Status::Unknown, expected, Value::Null, Some(reason.clone()), &drill_fix)
        }
    }
}

/// PITR-REPLICA, for a repository a replication rule copies.
fn replica_control(pitr: &Pitr, seen: &PitrSeen, sink: &mut Sink) {
    if let Some(rep) = &seen.replica {
        let (status, observed, detail) = match rep {
            Observed::Present(Ok(found)) => (Status::Pass, json!(found), None),
            Observed::Present(Err(why)) => (Status::Fail, Value::Null, Some(why.to_string())),
            Observed::Absent => (Status::Fail, Value::Null, None),
            Observed::Unknown { reason } => (Status::Unknown, Value::Null, Some(reason.clone())),
        };
        let dests: Vec<&str> = pitr.dr_copies.iter().map(|(b, _)| b.as_str()).collect();
        sink.push(
            &REPLICA,
            status,
            json!({"in": dests, "newest_manifest_and_segment": true}),
            observed,
            detail,
            "check the replication rule that covers the repository's prefix (status FAILED: re-copy with S3 Batch Replication)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stanza whose one backup, a full, stopped `age` seconds ago.
    fn stanza(age: u64) -> Stanza {
        let stop = now() - age;
        let json = format!(
            r#"[{{"archive":[],"backup":[{{"archive":{{"start":"000000010000000000000003","stop":"000000010000000000000003"}},"error":false,
              "info":{{"delta":1,"repository":{{"delta":1,"size":1}},"size":1}},"label":"20261202-101010F","prior":null,"reference":null,
              "timestamp":{{"start":{},"stop":{stop}}},"type":"full"}}],"cipher":"none","db":[],"name":"s",
              "repo":[{{"cipher":"none","key":1,"status":{{"code":0,"message":"ok"}}}}],
              "status":{{"code":0,"lock":{{"backup":{{"held":false}}}},"message":"ok"}}}}]"#,
            stop - 60
        );
        super::super::info::parse(&json, "s").expect("stanza")
    }

    /// PITR-BACKUP holds the newest backup to the job's schedule: every 6
    /// hours gives 6 h 30 m; a full backup of the week is not enough.
    #[test]
    fn the_backup_job_s_schedule_bounds_the_newest_backup() {
        let mut pitr = super::super::config::tests::pitr(None);
        pitr.schedule = Some(crate::policy::schedule::Schedule::parse("0 */6 * * *").expect("schedule"));
        let judge = |pitr: &Pitr, age: u64| {
            let mut sink = Sink { addr: Address::parse("postgres.primary.pitr"), line: 1, out: Vec::new() };
            backup(pitr, &PitrSeen::unknown("-"), &stanza(age), now(), "fix", &mut sink);
            sink.out.remove(0)
        };
        let fresh = judge(&pitr, 5 * 3600);
        assert_eq!(fresh.status, Status::Pass, "{fresh:?}");
        assert_eq!(fresh.expected["newest_within_seconds"], 6 * 3600 + 1800);
        let late = judge(&pitr, 8 * 3600);
        assert_eq!(late.status, Status::Fail, "{late:?}");
        assert_eq!(
            late.detail.as_deref(),
            Some("the newest backup (20261202-101010F) is 8.0 h old, over 6.5 h: its job runs `0 */6 * * *` (UTC) and missed a run, or failed")
        );
        // Without a schedule, only full_every (7 days) holds it.
        pitr.schedule = None;
        assert_eq!(judge(&pitr, 8 * 3600).status, Status::Pass);
    }
}
