//! Backup evidence, read by `audit` only: is the newest backup under a
//! prefix younger than `max_age`, does its SHA-256 sidecar exist, is it
//! well formed and does it match the checksum S3 holds, and does the
//! bucket's lifecycle keep backups exactly as long as required.

use aws_sdk_s3::types::ChecksumMode;
use serde::Serialize;
use serde_json::{json, Value};

use super::lifecycle::LifecycleDoc;
use crate::aws::ops;
use crate::aws::{classify, ApiError, Aws};
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::time::{format_time, human, now};
use crate::model::{Address, Fatal, Observed, Shortfall};
use crate::providers::s3::section::{BackupSpec, BucketSpec};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Newest {
    pub key: String,
    pub age_seconds: u64,
    pub size_bytes: u64,
    /// Objects read to find it.
    pub listed: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub spec: BackupSpec,
    /// Absent: no backup under the prefix at all.
    pub newest: Observed<Newest>,
    /// Ok, or what is wrong with the sidecar; None when not asked for.
    pub sidecar: Option<Observed<Result<(), Shortfall>>>,
    /// The newest backup's copy in the DR bucket; None when no enabled
    /// replication rule of the bucket covers the entry's prefix.
    pub replica: Option<Observed<Replica>>,
    /// The newest backup's own Object Lock (and its DR copy's): Ok with
    /// what was found, or why it is not locked long enough; None when the
    /// bucket asks for no `object_lock:`.
    pub lock: Option<Observed<Result<String, Shortfall>>>,
    /// Whether the newest backup is an age file, for an entry a job
    /// encrypts client-side; None otherwise.
    pub encrypted: Option<Observed<Result<(), Shortfall>>>,
}

/// The newest backup as found in the replication destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replica {
    pub bucket: String,
    pub key: String,
    /// Ok, or why the copy is not the backup (missing, other size or
    /// checksum, too old).
    pub verdict: Result<(), Shortfall>,
    /// The source object's `x-amz-replication-status`, when S3 gave one.
    pub status: Option<String>,
}

/// How long S3 may take to copy an object: Replication Time Control's
/// 15 minutes (99.99 % of objects; AWS S3 user guide, "Meeting compliance
/// requirements with S3 Replication Time Control"). Without RTC most
/// objects replicate within it too; a backup older than this and still
/// missing is a failure.
pub const REPLICATION_WINDOW_SECS: u64 = 15 * 60;

pub fn address(bucket: &str, name: &str) -> Address {
    Address::s3_bucket(bucket).child("backups").child(name)
}

/// Find the newest backup under the prefix. With `key_format`, the listing
/// starts at keys dated twice `max_age` ago instead of at the beginning.
async fn newest(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    b: &BackupSpec,
) -> Result<Observed<Newest>, Fatal> {
    let now = now();
    let start_after = b
        .key_format
        .as_ref()
        .map(|f| format!("{}{}", b.prefix, format_time(f, now.saturating_sub(2 * b.max_age_secs))));
    let (best, listed) = match crate::jobs::newest_object(aws, client, bucket, &b.prefix, start_after).await {
        Ok(found) => found,
        Err(e) => return e.observed(),
    };
    Ok(match best {
        Some(o) => Observed::Present(Newest {
            key: o.key,
            age_seconds: now.saturating_sub(o.modified.max(0) as u64),
            size_bytes: o.size,
            listed,
        }),
        None => Observed::Absent,
    })
}

/// The sidecar KEY.sha256: present, 64 hex digits, and describing this
/// object — compared, without downloading it, with the checksum S3 holds:
/// the full object's SHA-256, or for a multipart object the composite of
/// its parts ("…-N", AWS S3 user guide, "Checking object integrity"),
/// which `backup run` records on the sidecar. A composite the sidecar
/// does not record cannot be compared: unknown, never a pass.
async fn sidecar(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    verify_download: bool,
) -> Result<Observed<Result<(), Shortfall>>, Fatal> {
    let side = format!("{key}.sha256");
    let (body, recorded) = match aws.call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(&side).send()).await
    {
        Ok(out) => {
            let meta = |k: &str| out.metadata().and_then(|m| m.get(k)).cloned();
            let recorded = meta(crate::jobs::upload::COMPOSITE_META)
                .map(|c| (c, meta(crate::jobs::upload::SHA256_META).unwrap_or_default()));
            match out.body.collect().await {
                Ok(b) => (String::from_utf8_lossy(&b.into_bytes()).into_owned(), recorded),
                Err(e) => return Ok(Observed::Unknown { reason: format!("reading {side}: {e}") }),
            }
        }
        Err(e) => {
            return match classify(&e, &["NoSuchKey", "NotFound"]) {
                ApiError::NotFound(_) => Ok(Observed::Present(Err(Shortfall(format!("{side} is missing"))))),
                other => other.observed(),
            }
        }
    };
    let hex = body.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(Observed::Present(Err(Shortfall(format!("{side} does not hold a SHA-256 (64 hex digits)")))));
    }
    let head = aws
        .call(
            &ops::HEAD_OBJECT,
            client.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send(),
        )
        .await;
    // A HeadObject that fails (403, 5xx after the SDK's retries, the
    // object gone since it was listed) says nothing of the backup.
    let h = match head {
        Ok(h) => h,
        Err(e) => {
            return match classify(&e, &["NoSuchKey", "NotFound"]) {
                ApiError::Fatal(m) => Err(Fatal::api(m)),
                other => Ok(Observed::Unknown { reason: format!("reading {key}'s checksum: {}", other.reason()) }),
            }
        }
    };
    // Only a SHA-256 can be compared with a SHA-256: since 2025 the SDKs
    // and the CLI send CRC checksums by default and S3 stores CRC64NVME
    // for an upload that sends none (AWS S3 user guide, "Checking object
    // integrity in Amazon S3"). Nothing to compare is not a pass.
    let Some(s3_sum) = h.checksum_sha256() else {
        if verify_download {
            return Ok(downloaded_matches(aws, client, bucket, key, &hex).await);
        }
        return Ok(Observed::Unknown {
            reason: format!(
                "S3 holds no SHA-256 checksum of {key} ({}): {side} has nothing to be compared with; not verifiable without downloading it (audit --verify-download)",
                held_checksum(&h)
            ),
        });
    };
    let bytes: Vec<u8> = (0..32).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
    let whole = aws_smithy_types::base64::encode(&bytes);
    // What the upload recorded holds only with the sidecar's own text.
    let recorded = match recorded {
        Some((_, sha)) if !sha.eq_ignore_ascii_case(&hex) => {
            return Ok(Observed::Present(Err(Shortfall(format!(
                "{side} says {hex} but the upload recorded {sha} with it: the sidecar was changed"
            )))))
        }
        other => other.map(|(c, _)| c),
    };
    if crate::jobs::upload::checksum_matches(s3_sum, &whole, recorded.as_deref()) {
        return Ok(Observed::Present(Ok(())));
    }
    if s3_sum.contains('-') && recorded.is_none() {
        if verify_download {
            return Ok(downloaded_matches(aws, client, bucket, key, &hex).await);
        }
        return Ok(Observed::Unknown {
            reason: format!(
                "S3 holds a composite checksum of {key}'s parts ({s3_sum}) and {side} records none to compare: not verifiable without downloading it (audit --verify-download)"
            ),
        });
    }
    Ok(Observed::Present(Err(Shortfall(format!(
        "{side} does not match the SHA-256 checksum S3 holds for {key} ({s3_sum})"
    )))))
}

/// The checksum S3 holds of an object, when it holds no SHA-256, as a
/// reason names it.
fn held_checksum(h: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> String {
    [
        ("CRC64NVME", h.checksum_crc64_nvme()),
        ("CRC32", h.checksum_crc32()),
        ("CRC32C", h.checksum_crc32_c()),
        ("SHA-1", h.checksum_sha1()),
    ]
    .iter()
    .find_map(|(name, v)| v.map(|v| format!("it holds {name} {v}")))
    .unwrap_or_else(|| "it holds no checksum".into())
}

/// `audit --verify-download`: the object read through once, hashed as it
/// arrives (memory stays one chunk whatever its size), and compared with
/// the sidecar's `hex`. A read that fails is unknown, never a pass.
async fn downloaded_matches(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    hex: &str,
) -> Observed<Result<(), Shortfall>> {
    use sha2::{Digest, Sha256};
    let out = match aws.call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send()).await {
        Ok(o) => o,
        Err(e) => return Observed::Unknown { reason: format!("downloading {key}: {}", classify(&e, &[]).reason()) },
    };
    let mut body = out.body;
    let mut h = Sha256::new();
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => h.update(&chunk),
            Ok(None) => break,
            Err(e) => return Observed::Unknown { reason: format!("downloading {key}: {e}") },
        }
    }
    let got = crate::jobs::upload::hex(&h.finalize());
    if got == hex {
        Observed::Present(Ok(()))
    } else {
        Observed::Present(Err(Shortfall(format!("{key}.sha256 says {hex} but {key} as downloaded hashes to {got}"))))
    }
}

/// The destination bucket of the enabled replication rule that covers
/// `prefix` (the highest priority one), if any.
fn replicated_to<'a>(spec: &'a BucketSpec, prefix: &str) -> Option<&'a str> {
    // A rule that leaves SSE-KMS objects out still covers the prefix: the
    // copy is looked for and found missing (evidence), never skipped.
    let r = spec.replication.as_ref()?;
    r.rules
        .iter()
        .filter(|x| x.enabled && prefix.starts_with(&x.prefix))
        .max_by_key(|x| x.priority)
        .map(|x| x.destination.as_str())
}

/// Is the newest backup in the DR bucket, the same object, recent enough?
/// Measured, not assumed from the replication configuration: a rule can be
/// in place while nothing arrives (SSE-KMS objects without the opt-in, a
/// role that cannot use the keys, a paused destination).
async fn replica(
    aws: &Aws,
    source: &aws_sdk_s3::Client,
    spec: &BucketSpec,
    b: &BackupSpec,
    n: &Newest,
    dest: &str,
    dest_region: &str,
) -> Result<Observed<Replica>, Fatal> {
    let head = |client: aws_sdk_s3::Client, bucket: String| {
        let key = n.key.clone();
        async move {
            aws.call(
                &ops::HEAD_OBJECT,
                client.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send(),
            )
            .await
        }
    };
    let src = match head(source.clone(), spec.name.clone()).await {
        Ok(h) => h,
        Err(e) => return classify(&e, &["NoSuchKey", "NotFound"]).observed(),
    };
    let source = Copy {
        len: src.content_length(),
        sha256: src.checksum_sha256().map(str::to_string),
        age: None,
        status: src.replication_status().map(|s| s.as_str().to_string()),
    };
    let copy = match head(aws.s3(dest_region), dest.to_string()).await {
        Ok(d) => Some(Copy {
            len: d.content_length(),
            sha256: d.checksum_sha256().map(str::to_string),
            age: d.last_modified().map(|t| now().saturating_sub(t.secs().max(0) as u64)),
            status: d.replication_status().map(|s| s.as_str().to_string()),
        }),
        Err(e) => match classify(&e, &["NoSuchKey", "NotFound", "NoSuchBucket"]) {
            ApiError::NotFound(_) => None,
            other => return other.observed(),
        },
    };
    let verdict = judge_replica(&n.key, dest, &source, copy.as_ref(), n.age_seconds, b.max_age_secs);
    Ok(Observed::Present(Replica { bucket: dest.to_string(), key: n.key.clone(), verdict, status: source.status }))
}

/// What HeadObject says of an object, for comparing a backup and its copy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    pub len: Option<i64>,
    pub sha256: Option<String>,
    /// Seconds since it was written.
    pub age: Option<u64>,
    /// `x-amz-replication-status`: PENDING, COMPLETED, FAILED on a source
    /// object in a rule's scope, REPLICA on a copy; None outside any rule.
    pub status: Option<String>,
}

/// The verdict on a backup's copy (pure), from what S3 says of the source
/// object's replication and what the destination holds. HeadObject on an
/// object in a replication rule's scope returns `x-amz-replication-status`
/// (AWS S3 user guide, "Getting replication status information"):
/// FAILED fails (S3 never retries it; S3 Batch Replication re-copies);
/// no status means no rule covered the object when it was written (S3
/// does not replicate what was there before the rule), so a missing copy
/// fails at once; PENDING passes while younger than the replication window
/// (Replication Time Control's 15 minutes). A copy that is there is
/// compared by size and SHA-256 (ETags differ under SSE-KMS) and must be
/// younger than `max_age` plus the window.
pub fn judge_replica(
    key: &str,
    dest: &str,
    source: &Copy,
    copy: Option<&Copy>,
    source_age: u64,
    max_age: u64,
) -> Result<(), Shortfall> {
    let status = source.status.as_deref().map(str::to_ascii_uppercase);
    if status.as_deref() == Some("FAILED") {
        return Err(Shortfall(format!(
            "S3 reports the replication of {key} to {dest} FAILED (x-amz-replication-status), which it never retries: re-copy it (S3 Batch Replication) and fix the cause (the role's permissions, the keys, the destination)"
        )));
    }
    let Some(c) = copy else {
        return match status.as_deref() {
            Some("PENDING") if source_age <= REPLICATION_WINDOW_SECS => Ok(()),
            Some("PENDING") => Err(Shortfall(format!(
                "{key} is still PENDING replication to {dest} {} after it was written, past the {}-minute replication window",
                human(source_age),
                REPLICATION_WINDOW_SECS / 60
            ))),
            Some(s) => Err(Shortfall(format!("S3 reports {key} replicated ({s}) but it is not in {dest}"))),
            None => Err(Shortfall(format!(
                "{key} is not in {dest} and carries no replication status: no replication rule covered it when it was written"
            ))),
        };
    };
    if c.len != source.len {
        return Err(Shortfall(format!(
            "the copy in {dest} has {} bytes, the backup {}",
            c.len.unwrap_or(0),
            source.len.unwrap_or(0)
        )));
    }
    if let (Some(a), Some(b)) = (&source.sha256, &c.sha256) {
        if a != b {
            return Err(Shortfall(format!("the copy in {dest} has another SHA-256 checksum than the backup")));
        }
    }
    if c.age.is_some_and(|a| a > max_age + REPLICATION_WINDOW_SECS) {
        return Err(Shortfall(format!("the copy in {dest} is older than max_age plus the replication window")));
    }
    Ok(())
}

/// Read the evidence for every backup entry of a bucket; `dest_region`
/// gives the region of a replication destination.
pub async fn observe(
    aws: &Aws,
    spec: &BucketSpec,
    region: &str,
    dest_region: &dyn Fn(&str) -> String,
    verify_download: bool,
) -> Result<Vec<Evidence>, Fatal> {
    let client = aws.s3(region);
    let mut out = Vec::new();
    for b in &spec.backups {
        let newest = newest(aws, &client, &spec.name, b).await?;
        let sidecar = match (&newest, b.sha256_sidecar) {
            (_, false) => None,
            (Observed::Present(n), true) => Some(sidecar(aws, &client, &spec.name, &n.key, verify_download).await?),
            (Observed::Absent, true) => Some(Observed::Present(Err("there is no backup to check".into()))),
            (Observed::Unknown { reason }, true) => Some(Observed::Unknown { reason: reason.clone() }),
        };
        let replica = match (replicated_to(spec, &b.prefix), &newest) {
            (None, _) => None,
            (Some(d), Observed::Present(n)) => Some(replica(aws, &client, spec, b, n, d, &dest_region(d)).await?),
            (Some(_), Observed::Absent) => Some(Observed::Present(Replica {
                bucket: String::new(),
                key: String::new(),
                verdict: Err("there is no backup to look for".into()),
                status: None,
            })),
            (Some(_), Observed::Unknown { reason }) => Some(Observed::Unknown { reason: reason.clone() }),
        };
        let lock = match (&spec.object_lock, &newest) {
            (None, _) => None,
            (Some(l), Observed::Present(n)) => {
                let need = lock_need(b, l);
                let strict = l.mode == crate::providers::s3::section::LockMode::Compliance;
                let mut verdict = crate::aws::lookup::locked(aws, &client, &spec.name, &n.key, need, strict).await?;
                // The DR copy keeps the lock S3 replicated with it.
                if let (Observed::Present(Ok(here)), Some(Observed::Present(r))) = (&verdict, &replica) {
                    if r.verdict.is_ok() && !r.bucket.is_empty() {
                        let dest = aws.s3(&dest_region(&r.bucket));
                        verdict = match crate::aws::lookup::locked(aws, &dest, &r.bucket, &n.key, need, strict).await? {
                            Observed::Present(Ok(there)) => Observed::Present(Ok(format!("{here}; {there}"))),
                            other => other,
                        };
                    }
                }
                Some(verdict)
            }
            // Nothing to protect: BACKUP-FRESHNESS says there is no backup.
            (Some(_), Observed::Absent) => None,
            (Some(_), Observed::Unknown { reason }) => Some(Observed::Unknown { reason: reason.clone() }),
        };
        let encrypted = match (&newest, b.client_encrypted) {
            (_, false) | (Observed::Absent, true) => None,
            (Observed::Present(n), true) => Some(age_header(aws, &client, &spec.name, &n.key).await?),
            (Observed::Unknown { reason }, true) => Some(Observed::Unknown { reason: reason.clone() }),
        };
        out.push(Evidence { spec: b.clone(), newest, sidecar, replica, lock, encrypted });
    }
    Ok(out)
}

/// Does the object begin with the age header? A ranged GET of its first
/// bytes (RFC 9110 Range; S3 GetObject `Range`): nothing is downloaded.
async fn age_header(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Observed<Result<(), Shortfall>>, Fatal> {
    let want = crate::jobs::encrypt::HEADER;
    let range = format!("bytes=0-{}", want.len() - 1);
    let out = match aws.call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).range(range).send()).await {
        Ok(o) => o,
        Err(e) => return classify(&e, &["NoSuchKey", "NotFound"]).observed(),
    };
    let head = match out.body.collect().await {
        Ok(b) => b.into_bytes(),
        Err(e) => return Ok(Observed::Unknown { reason: format!("reading {key}: {e}") }),
    };
    if head.starts_with(want) {
        return Ok(Observed::Present(Ok(())));
    }
    let shown: String = String::from_utf8_lossy(&head[..head.len().min(12)])
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '.' })
        .collect();
    Ok(Observed::Present(Err(Shortfall(format!(
        "{key} is not encrypted client-side: it begins with `{shown}`, not the age header (age-encryption.org/v1)"
    )))))
}

/// How long a backup must be locked: its retention, or the bucket's
/// default retention when the entry declares none.
fn lock_need(b: &BackupSpec, l: &crate::providers::s3::section::ObjectLock) -> u64 {
    b.retention_days.unwrap_or(l.days.max(0) as u64) * 86_400
}

/// Evidence for a bucket that is missing or unreadable: every entry says so.
pub fn without_bucket(spec: &BucketSpec, bucket: &Observed<String>) -> Vec<Evidence> {
    spec.backups
        .iter()
        .map(|b| Evidence {
            spec: b.clone(),
            newest: match bucket {
                Observed::Unknown { reason } => Observed::Unknown { reason: reason.clone() },
                _ => Observed::Absent,
            },
            // An unreadable bucket says nothing of its objects: unknown,
            // never "does not exist".
            sidecar: b.sha256_sidecar.then(|| match bucket {
                Observed::Unknown { reason } => Observed::Unknown { reason: reason.clone() },
                _ => Observed::Present(Err("the bucket does not exist".into())),
            }),
            encrypted: match bucket {
                Observed::Unknown { reason } if b.client_encrypted => {
                    Some(Observed::Unknown { reason: reason.clone() })
                }
                _ => None,
            },
            lock: match bucket {
                Observed::Unknown { reason } if spec.object_lock.is_some() => {
                    Some(Observed::Unknown { reason: reason.clone() })
                }
                _ => None,
            },
            replica: replicated_to(spec, &b.prefix).map(|d| match bucket {
                Observed::Unknown { reason } => Observed::Unknown { reason: reason.clone() },
                _ => Observed::Present(Replica {
                    bucket: d.to_string(),
                    key: String::new(),
                    verdict: Err("the source bucket does not exist".into()),
                    status: None,
                }),
            }),
        })
        .collect()
}

pub const FRESHNESS: ControlDef = ControlDef {
    id: "BACKUP-FRESHNESS",
    title: "Newest backup is fresh",
    rationale:
        "Alert if the latest backup is older than 26 hours; WAL within the 15-minute RPO (strategy: monitoring, RPO).",
    severity: Severity::High,
    // Only entries with a max_age of 15 minutes or less feed the RPO.
    objectives: &["RPO-15MIN"],
};
const INTEGRITY: ControlDef = ControlDef {
    id: "BACKUP-INTEGRITY",
    title: "SHA-256 sidecar of the newest backup",
    rationale: "A SHA-256 of each dump, stored beside it, proves the restore reads what was written (strategy: integrity hash).",
    severity: Severity::High,
    objectives: &[],
};
const RETENTION: ControlDef = ControlDef {
    id: "BACKUP-RETENTION",
    title: "Retention matches the strategy",
    rationale: "Full dumps are kept 14 days, WAL 24 hours (strategy: PostgreSQL backups).",
    severity: Severity::High,
    objectives: &["RETENTION-14D"],
};

const REPLICA: ControlDef = ControlDef {
    id: "BACKUP-REPLICA",
    title: "Newest backup is in the DR copy",
    rationale: "A disaster-recovery copy is one that holds the backups: the newest one is in the destination bucket, the same object, within the replication window (strategy: cross-region replication for disaster recovery).",
    severity: Severity::High,
    objectives: &["DR-COPY"],
};

const DRILL: ControlDef = ControlDef {
    id: "RESTORE-DRILL",
    title: "A restore drill passed recently, within the RTO",
    rationale: "A backup never restored is not known to be one: the newest dump was restored into a throw-away database, migrated and checked, and the time to restore measured against the RTO (strategy: monthly restore test, RTO 60 minutes).",
    severity: Severity::High,
    objectives: &["RTO-60MIN-READINESS"],
};

const LOCKED: ControlDef = ControlDef {
    id: "BACKUP-LOCKED",
    title: "Newest backup is locked itself",
    rationale: "Object Lock protects the versions that carry a retention: the newest backup (and its DR copy) holds one for its retention, whatever the bucket's default says (strategy: immutable backups).",
    severity: Severity::High,
    objectives: &["IMMUTABILITY"],
};

const ENCRYPTED: ControlDef = ControlDef {
    id: "BACKUP-CLIENT-ENCRYPTED",
    title: "Newest backup is encrypted client-side (age)",
    rationale: "Where the policy asks a backup job to encrypt with age, the newest backup is an age file: reading it through S3 and KMS is not enough to read its data (strategy: optionally layer client-side encryption with age before upload).",
    severity: Severity::High,
    objectives: &["ENCRYPTION-AT-REST"],
};

/// The backup-evidence controls (audit only).
pub const CONTROLS: &[ControlDef] =
    &[FRESHNESS, INTEGRITY, RETENTION, REPLICA, DRILL, LOCKED, ENCRYPTED, super::oldest::OLDEST];

/// A drill declared against one of the bucket's entries, and its newest
/// record.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillSeen {
    pub drill: crate::jobs::DrillDecl,
    pub last: Observed<crate::jobs::Record>,
}

/// The drills whose dumps are in `bucket`, when the bucket could not be
/// read (`reason`): each is reported unknown, never left out.
pub fn drills_unread(bucket: &str, declared: &[crate::jobs::DrillDecl], reason: &str) -> Vec<DrillSeen> {
    declared
        .iter()
        .filter(|d| d.from.bucket == bucket)
        .map(|d| DrillSeen { drill: d.clone(), last: Observed::Unknown { reason: reason.to_string() } })
        .collect()
}

/// The newest record of each drill whose dumps are in `bucket`.
pub async fn drills(
    aws: &Aws,
    bucket: &str,
    region: &str,
    declared: &[crate::jobs::DrillDecl],
) -> Result<Vec<DrillSeen>, Fatal> {
    let client = aws.s3(region);
    let mut out = Vec::new();
    for d in declared.iter().filter(|d| d.from.bucket == bucket) {
        let prefix = d.from.drills_prefix(&d.instance);
        let last = match crate::jobs::last(aws, &client, bucket, &prefix).await {
            Ok(Some(r)) => Observed::Present(r),
            Ok(None) => Observed::Absent,
            Err(ApiError::Fatal(m)) => return Err(Fatal::api(m)),
            Err(ApiError::NotFound(_)) => Observed::Absent,
            Err(other) => Observed::Unknown { reason: other.reason() },
        };
        out.push(DrillSeen { drill: d.clone(), last });
    }
    Ok(out)
}

/// RESTORE-DRILL for each drill: the last one passed, is younger than
/// `every` and took no longer than `rto`.
pub fn drill_controls(seen: &[DrillSeen]) -> Vec<ControlResult> {
    seen.iter()
        .map(|s| {
            let addr = Address::parse(&s.drill.instance);
            let expected =
                json!({"result": "passed", "within_seconds": s.drill.every_secs, "rto_seconds": s.drill.rto_secs});
            let (status, observed, detail) = match &s.last {
                Observed::Unknown { reason } => (Status::Unknown, Value::Null, Some(reason.clone())),
                Observed::Absent => (
                    Status::Fail,
                    Value::Null,
                    Some(format!(
                        "no drill record under s3://{}/{}",
                        s.drill.from.bucket,
                        s.drill.from.drills_prefix(&s.drill.instance)
                    )),
                ),
                Observed::Present(r) => {
                    let age = now().saturating_sub(r.started);
                    // The timings first: reports that shorten the observed
                    // value still show them.
                    let observed = json!({
                        "result": r.result, "total_seconds": r.total_seconds, "phases": r.phases,
                        "date": r.date, "operator": r.operator,
                        "dump": r.dump.as_ref().map(|d| &d.key), "checks": r.checks,
                    });
                    let why = if !r.passed() {
                        Some(format!("the last drill ({}) failed: {}", r.date, r.reason.clone().unwrap_or_default()))
                    } else if age > s.drill.every_secs {
                        Some(format!(
                            "the last passing drill was {} ago, more than every {}{}",
                            human(age),
                            human(s.drill.every_secs),
                            crate::policy::schedule::missed(s.drill.schedule.as_deref())
                        ))
                    } else if r.total_seconds > s.drill.rto_secs as f64 {
                        Some(format!(
                            "the last drill took {:.0} s, over the RTO of {} s",
                            r.total_seconds, s.drill.rto_secs
                        ))
                    } else {
                        None
                    };
                    (if why.is_some() { Status::Fail } else { Status::Pass }, observed, why)
                }
            };
            DRILL.result(
                &addr,
                status,
                expected,
                observed,
                detail,
                format!("suoops-policy restore-drill {} (from a scheduler: `schedule render`)", s.drill.instance),
                s.drill.line,
            )
        })
        .collect()
}

/// A lifecycle rule that may expire backups under a prefix.
struct Cut<'a> {
    rule: &'a crate::providers::s3::section::LifecycleRule,
    days: Option<i64>,
    /// `Expiration.Date`, in seconds since the epoch.
    date: Option<u64>,
    /// It matches every object under the prefix (its prefix contains the
    /// backups' and it has no tag or size filter); otherwise it may match
    /// some of them.
    whole: bool,
}

impl Cut<'_> {
    /// How the rule reaches the backups under `prefix`, for a reason.
    fn scope(&self, prefix: &str) -> String {
        let r = self.rule;
        let mut filters = Vec::new();
        if r.prefix != prefix {
            filters.push(if r.prefix.is_empty() {
                "the whole bucket".to_string()
            } else {
                format!("prefix {}", r.prefix)
            });
        }
        filters.extend(r.tags.iter().map(|(k, v)| format!("tag {k}={v}")));
        filters.extend(r.object_size_greater_than.map(|n| format!("objects over {n} bytes")));
        filters.extend(r.object_size_less_than.map(|n| format!("objects under {n} bytes")));
        let what = if filters.is_empty() { String::new() } else { format!(" ({})", filters.join(", ")) };
        let how = if self.whole { "expires" } else { "may expire" };
        format!("rule {}{what} {how} the backups under {prefix}", r.id)
    }
}

/// BACKUP-RETENTION's verdict (pure): are the backups under `prefix` kept
/// `days` days, no less, no more? When expiration rules overlap, S3
/// honours the shortest (AWS S3 user guide, "How Amazon S3 handles
/// conflicts in lifecycle actions"), so every enabled rule whose filter
/// can match the backups takes part — the policy's and the rules of others
/// it keeps alike: a prefix containing the backups' or inside it, and a
/// rule with a tag or size filter taken at its worst, as if it matched.
/// An `Expiration.Date` expires every object the rule matches on and after
/// that date, whatever its age (S3 user guide, "Lifecycle configuration
/// elements": Date), so from then on no backup is kept its retention.
pub fn judge_retention(doc: &LifecycleDoc, prefix: &str, days: u64, now: u64) -> (Status, Value, Option<String>) {
    let cuts: Vec<Cut> = doc
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.enabled && (prefix.starts_with(&r.prefix) || r.prefix.starts_with(prefix)))
        .filter_map(|(i, r)| {
            let date = doc.expiration_date(i);
            (r.expire_after_days.is_some() || date.is_some()).then(|| Cut {
                rule: r,
                days: r.expire_after_days,
                date,
                whole: prefix.starts_with(&r.prefix)
                    && r.tags.is_empty()
                    && r.object_size_greater_than.is_none()
                    && r.object_size_less_than.is_none(),
            })
        })
        .collect();
    let seen = |c: &Cut| json!({"rule": c.rule.id, "expire_after_days": c.days});
    if let Some(c) = cuts.iter().find(|c| c.date.is_some()) {
        let date = c.date.unwrap_or(0);
        let when = if date <= now { "since" } else { "from" };
        return (
            Status::Fail,
            json!({"rule": c.rule.id, "expiration_date": format_time("%Y-%m-%d", date)}),
            Some(format!(
                "{} {when} {} whatever their age (Expiration.Date): none is kept its {days} days",
                c.scope(prefix),
                format_time("%Y-%m-%d", date)
            )),
        );
    }
    // The shortest wins; at a tie, a rule that surely matches names it.
    let shortest = cuts.iter().filter(|c| c.days.is_some()).min_by_key(|c| (c.days, !c.whole));
    if let Some(c) = shortest.filter(|c| c.days.unwrap_or(0) < days as i64) {
        return (
            Status::Fail,
            seen(c),
            Some(format!(
                "{} after {} days, before their {days}-day retention: S3 honours the shortest expiration",
                c.scope(prefix),
                c.days.unwrap_or(0)
            )),
        );
    }
    match cuts.iter().filter(|c| c.whole && c.days.is_some()).min_by_key(|c| c.days) {
        Some(c) if c.days == Some(days as i64) => (Status::Pass, seen(c), None),
        Some(c) => (
            Status::Fail,
            seen(c),
            Some(format!("rule {} expires {prefix} after {} days, not {days}", c.rule.id, c.days.unwrap_or(0))),
        ),
        None => (Status::Fail, Value::Null, Some(format!("no enabled lifecycle rule expires {prefix}"))),
    }
}

/// BACKUP-FRESHNESS, BACKUP-INTEGRITY and BACKUP-RETENTION for each entry.
pub fn controls(
    bucket: &BucketSpec,
    evidence: &[Evidence],
    lifecycle: Option<&Observed<LifecycleDoc>>,
) -> Vec<ControlResult> {
    let mut out = Vec::new();
    for e in evidence {
        let b = &e.spec;
        let addr = address(&bucket.name, &b.name);
        let mut push =
            |def: &ControlDef, status: Status, expected: Value, observed: Value, detail: Option<String>, fix: &str| {
                out.push(def.result(&addr, status, expected, observed, detail, fix, b.line))
            };
        let (status, observed, detail) = match &e.newest {
            Observed::Present(n) if n.age_seconds <= b.max_age_secs => (Status::Pass, json!(n), None),
            Observed::Present(n) => (
                Status::Fail,
                json!(n),
                Some(format!(
                    "the newest backup {} is {} old, over {}{}",
                    n.key,
                    human(n.age_seconds),
                    human(b.max_age_secs),
                    runs(b)
                )),
            ),
            Observed::Absent => (Status::Fail, Value::Null, Some(format!("no backup under {}{}", b.prefix, runs(b)))),
            Observed::Unknown { reason } => (Status::Unknown, Value::Null, Some(reason.clone())),
        };
        push(
            &FRESHNESS,
            status,
            json!({"prefix": b.prefix, "max_age_seconds": b.max_age_secs}),
            observed,
            detail,
            "check the backup job (cron / CI runner) and its logs",
        );
        if let Some(side) = &e.sidecar {
            let (status, detail) = match side {
                Observed::Present(Ok(())) => (Status::Pass, None),
                Observed::Present(Err(why)) => (Status::Fail, Some(why.to_string())),
                Observed::Absent => (Status::Fail, Some("no sidecar".into())),
                Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone())),
            };
            push(
                &INTEGRITY,
                status,
                json!({"sidecar": "KEY.sha256"}),
                e.newest.present().map_or(Value::Null, |n| json!({"key": format!("{}.sha256", n.key)})),
                detail,
                "write KEY.sha256 (sha256sum output) beside each dump in the backup script",
            );
        }
        if let Some(rep) = &e.replica {
            let (status, observed, detail) = match rep {
                Observed::Present(r) => {
                    let mut seen = json!({"bucket": r.bucket, "key": r.key});
                    if let Some(s) = &r.status {
                        seen["replication_status"] = json!(s);
                    }
                    match &r.verdict {
                        // Not copied yet, within the window: a pass that
                        // says so, with the backup's age.
                        Ok(()) if r.status.as_deref() == Some("PENDING") => {
                            let age = e.newest.present().map_or(0, |n| n.age_seconds);
                            let why = format!("{} is PENDING replication, {} after it was written", r.key, human(age));
                            (Status::Pass, seen, Some(why))
                        }
                        Ok(()) => (Status::Pass, seen, None),
                        Err(why) => (Status::Fail, seen, Some(why.to_string())),
                    }
                }
                Observed::Absent => (Status::Fail, Value::Null, None),
                Observed::Unknown { reason } => (Status::Unknown, Value::Null, Some(reason.clone())),
            };
            push(
                &REPLICA,
                status,
                json!({"same_size_and_checksum": true, "within_seconds": b.max_age_secs + REPLICATION_WINDOW_SECS}),
                observed,
                detail,
                "check the replication rule (SSE-KMS opt-in and replica key), the role's KMS permissions and the destination",
            );
        }
        if let Some(enc) = &e.encrypted {
            let (status, detail) = match enc {
                Observed::Present(Ok(())) => (Status::Pass, None),
                Observed::Present(Err(why)) => (Status::Fail, Some(why.to_string())),
                Observed::Absent => (Status::Fail, None),
                Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone())),
            };
            push(
                &ENCRYPTED,
                status,
                json!({"begins_with": "age-encryption.org/v1"}),
                e.newest.present().map_or(Value::Null, |n| json!({"key": n.key})),
                detail,
                "run the backup job with `encrypt_to:` (suoops-policy backup run); a dump written without it stays plaintext",
            );
        }
        if let Some(lock) = &e.lock {
            let (status, observed, detail) = match lock {
                Observed::Present(Ok(what)) => (Status::Pass, json!(what), None),
                Observed::Present(Err(why)) => (Status::Fail, Value::Null, Some(why.to_string())),
                Observed::Absent => (Status::Fail, Value::Null, None),
                Observed::Unknown { reason } => (Status::Unknown, Value::Null, Some(reason.clone())),
            };
            push(
                &LOCKED,
                status,
                json!({"locked_for_seconds_at_least": bucket.object_lock.as_ref().map(|l| lock_need(b, l))}),
                observed,
                detail,
                "a default retention covers new versions only: put a retention on the existing backups (PutObjectRetention) or wait for the next backup",
            );
        }
        if let Some(days) = b.retention_days {
            let (status, observed, detail) = match lifecycle {
                Some(Observed::Present(doc)) => judge_retention(doc, &b.prefix, days, now()),
                Some(Observed::Absent) | None => {
                    (Status::Fail, Value::Null, Some("the bucket has no lifecycle configuration".into()))
                }
                Some(Observed::Unknown { reason }) => (Status::Unknown, Value::Null, Some(reason.clone())),
            };
            push(
                &RETENTION,
                status,
                json!({"expire_after_days": days}),
                observed,
                detail,
                "add a lifecycle rule for the prefix with that expiration (suoops-policy apply)",
            );
        }
    }
    out
}

/// The newest backup of each `backups:` entry, from its evidence
/// controls, as gauges: its age and size, its `max_age`, and whether its
/// sidecar matched.
pub fn gauges(controls: &[ControlResult]) -> Vec<crate::model::control::Gauge> {
    use crate::model::control::Gauge;
    let fresh: Vec<&ControlResult> = controls.iter().filter(|c| c.id == FRESHNESS.id).collect();
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
    let of = |side: fn(&ControlResult) -> &Value, key: &str| -> Vec<(String, String)> {
        fresh.iter().filter_map(|c| num(side(c), key).map(|a| (c.address.to_string(), a.to_string()))).collect()
    };
    vec![
        Gauge {
            name: "suoops_backup_age_seconds",
            help: "Age of the newest backup of the entry (absent: none found).",
            unit: Some("seconds"),
            values: of(|c| &c.observed, "age_seconds"),
        },
        Gauge {
            name: "suoops_backup_size_bytes",
            help: "Size of the newest backup of the entry.",
            unit: Some("bytes"),
            values: of(|c| &c.observed, "size_bytes"),
        },
        Gauge {
            name: "suoops_backup_max_age_seconds",
            help: "The entry's max_age: older means the backup job failed.",
            unit: Some("seconds"),
            values: of(|c| &c.expected, "max_age_seconds"),
        },
        Gauge {
            name: "suoops_backup_sidecar_match",
            help: "1 when the newest backup's KEY.sha256 matches it, 0 when not, NaN when it could not be read.",
            unit: None,
            values: controls
                .iter()
                .filter(|c| c.id == INTEGRITY.id)
                .map(|c| {
                    let v = match c.status {
                        Status::Pass => "1",
                        Status::Fail => "0",
                        Status::Unknown | Status::Waived => "NaN",
                    };
                    (c.address.to_string(), v.to_string())
                })
                .collect(),
        },
    ]
}

/// What the job that writes the entry should be doing, when the policy
/// says: a missed run is named as one.
fn runs(b: &BackupSpec) -> String {
    crate::policy::schedule::missed(b.schedule.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_locked_by_its_own_retention() {
        let day = 86_400;
        assert_eq!(
            crate::aws::lookup::judge_lock("b", "postgres/1.dump", None, Some(0), None, 14 * day, false),
            Err("s3://b/postgres/1.dump is not locked (no Object Lock retention on the object itself)".into())
        );
        assert_eq!(
            crate::aws::lookup::judge_lock(
                "b",
                "k",
                Some("GOVERNANCE"),
                Some(1_000),
                Some(1_000 + 7 * day as i64),
                14 * day,
                false
            ),
            Err("s3://b/k is locked (GOVERNANCE) 168h00m from its creation, less than its 336h00m retention".into())
        );
        // S3 counts from the second it stored the version: a minute's slack.
        let ok = crate::aws::lookup::judge_lock(
            "b",
            "k",
            Some("COMPLIANCE"),
            Some(1_000),
            Some(1_000 + 14 * day as i64 - 30),
            14 * day,
            false,
        );
        assert!(ok.is_ok(), "{ok:?}");
        // GOVERNANCE where the policy asks for COMPLIANCE is not the lock
        // it asks for.
        let gov = crate::aws::lookup::judge_lock(
            "b",
            "k",
            Some("GOVERNANCE"),
            Some(1_000),
            Some(1_000 + 14 * day as i64),
            14 * day,
            true,
        );
        assert_eq!(
            gov,
            Err("s3://b/k is locked in GOVERNANCE mode, which a principal with s3:BypassGovernanceRetention can lift; the policy asks for COMPLIANCE".into())
        );
    }

    fn rule(
        id: &str,
        filter: aws_sdk_s3::types::LifecycleRuleFilter,
        days: Option<i32>,
        date: Option<i64>,
    ) -> aws_sdk_s3::types::LifecycleRule {
        use aws_sdk_s3::types::{ExpirationStatus, LifecycleExpiration, LifecycleRule};
        let exp = LifecycleExpiration::builder()
            .set_days(days)
            .set_date(date.map(aws_smithy_types::DateTime::from_secs))
            .build();
        LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(filter)
            .expiration(exp)
            .build()
            .expect("rule")
    }

    fn prefix(p: &str) -> aws_sdk_s3::types::LifecycleRuleFilter {
        aws_sdk_s3::types::LifecycleRuleFilter::builder().prefix(p).build()
    }

    fn retention(rules: Vec<aws_sdk_s3::types::LifecycleRule>) -> (Status, Option<String>) {
        let (status, _, detail) = judge_retention(&LifecycleDoc::from_sdk(rules, None), "postgres/", 14, 1_800_000_000);
        (status, detail)
    }

    #[test]
    fn the_shortest_overlapping_expiration_decides_retention() {
        let ours = || rule("postgres-dumps", prefix("postgres/"), Some(14), None);
        assert_eq!(retention(vec![ours()]), (Status::Pass, None));
        // Another team's whole-bucket rule of 3 days wins over ours.
        assert_eq!(
            retention(vec![ours(), rule("other-team", prefix(""), Some(3), None)]),
            (
                Status::Fail,
                Some("rule other-team (the whole bucket) expires the backups under postgres/ after 3 days, before their 14-day retention: S3 honours the shortest expiration".into())
            )
        );
        // A longer one does not lengthen it.
        assert_eq!(retention(vec![ours(), rule("other-team", prefix(""), Some(30), None)]), (Status::Pass, None));
        // A rule inside the prefix, or one with a tag or size filter, may
        // match some backups: judged at its worst.
        assert_eq!(
            retention(vec![ours(), rule("tmp", prefix("postgres/tmp/"), Some(2), None)]).1,
            Some("rule tmp (prefix postgres/tmp/) may expire the backups under postgres/ after 2 days, before their 14-day retention: S3 honours the shortest expiration".into())
        );
        let tagged = aws_sdk_s3::types::LifecycleRuleFilter::builder()
            .tag(aws_sdk_s3::types::Tag::builder().key("class").value("scratch").build().expect("tag"))
            .build();
        assert_eq!(
            retention(vec![ours(), rule("scratch", tagged, Some(7), None)]).1,
            Some("rule scratch (the whole bucket, tag class=scratch) may expire the backups under postgres/ after 7 days, before their 14-day retention: S3 honours the shortest expiration".into())
        );
        let small = aws_sdk_s3::types::LifecycleRuleFilter::builder().object_size_less_than(1024).build();
        assert_eq!(retention(vec![ours(), rule("small", small, Some(1), None)]).0, Status::Fail);
        // A date expires everything it matches from that day on.
        let (status, detail) = retention(vec![ours(), rule("cleanup", prefix(""), None, Some(1_700_000_000))]);
        assert_eq!(status, Status::Fail);
        assert_eq!(
            detail.as_deref(),
            Some("rule cleanup (the whole bucket) expires the backups under postgres/ since 2023-11-14 whatever their age (Expiration.Date): none is kept its 14 days")
        );
        // A narrower rule alone leaves most backups unexpired; a disabled
        // or unrelated rule takes no part.
        assert_eq!(
            retention(vec![rule("y2026", prefix("postgres/2026"), Some(14), None)]).1,
            Some("no enabled lifecycle rule expires postgres/".into())
        );
        let mut off = rule("off", prefix(""), Some(1), None);
        off.status = aws_sdk_s3::types::ExpirationStatus::Disabled;
        assert_eq!(retention(vec![ours(), off, rule("wal", prefix("wal/"), Some(1), None)]), (Status::Pass, None));
        // A covering rule longer than the retention is not it.
        assert_eq!(
            retention(vec![rule("long", prefix("postgres/"), Some(30), None)]).1,
            Some("rule long expires postgres/ after 30 days, not 14".into())
        );
    }

    #[test]
    fn a_composite_checksum_matches_only_the_same_parts() {
        use crate::jobs::upload::checksum_matches;
        let (whole, comp) = ("V0hPTEU=", "Q09NUA==-3");
        assert!(checksum_matches(whole, whole, None));
        // S3's form, and moto's without "-N".
        assert!(checksum_matches("Q09NUA==-3", whole, Some(comp)));
        assert!(checksum_matches("Q09NUA==", whole, Some(comp)));
        // Another part count, another value, or nothing recorded: no match.
        assert!(!checksum_matches("Q09NUA==-4", whole, Some(comp)));
        assert!(!checksum_matches("T1RIRVI=-3", whole, Some(comp)));
        assert!(!checksum_matches("Q09NUA==-3", whole, None));
        // A composite that happens to carry the whole object's base is not
        // the whole object's checksum.
        assert!(!checksum_matches("V0hPTEU=-3", whole, None));
    }

    #[test]
    fn a_copy_is_judged_by_replication_status_size_checksum_and_age() {
        let src = Copy { len: Some(10), sha256: Some("abc".into()), age: None, status: None };
        let same = Copy { age: Some(60), status: Some("REPLICA".into()), ..src.clone() };
        assert_eq!(judge_replica("k", "dr", &src, Some(&same), 120, 3600), Ok(()));
        // Missing: pending within the replication window, a failure after;
        // without a status (no rule covered it) a failure at once.
        let pending = Copy { status: Some("PENDING".into()), ..src.clone() };
        assert_eq!(judge_replica("k", "dr", &pending, None, 600, 3600), Ok(()));
        assert_eq!(
            judge_replica("k", "dr", &pending, None, 3 * 3600, 3600),
            Err("k is still PENDING replication to dr 3h00m after it was written, past the 15-minute replication window".into())
        );
        assert_eq!(
            judge_replica("k", "dr", &src, None, 60, 3600),
            Err("k is not in dr and carries no replication status: no replication rule covered it when it was written"
                .into())
        );
        let done = Copy { status: Some("COMPLETED".into()), ..src.clone() };
        assert_eq!(
            judge_replica("k", "dr", &done, None, 60, 3600),
            Err("S3 reports k replicated (COMPLETED) but it is not in dr".into())
        );
        // FAILED is never retried: it fails even a minute old.
        let failed = Copy { status: Some("FAILED".into()), ..src.clone() };
        assert!(judge_replica("k", "dr", &failed, None, 60, 3600).is_err_and(|e| e.contains("FAILED")));
        let short = Copy { len: Some(9), ..same.clone() };
        assert_eq!(
            judge_replica("k", "dr", &src, Some(&short), 120, 3600),
            Err("the copy in dr has 9 bytes, the backup 10".into())
        );
        let other = Copy { sha256: Some("xyz".into()), ..same.clone() };
        assert!(judge_replica("k", "dr", &src, Some(&other), 120, 3600).is_err());
        // Without checksums on both sides, size decides.
        let plain = Copy { sha256: None, ..same.clone() };
        assert_eq!(judge_replica("k", "dr", &src, Some(&plain), 120, 3600), Ok(()));
        let stale = Copy { age: Some(3600 + 901), ..same };
        assert!(judge_replica("k", "dr", &src, Some(&stale), 120, 3600).is_err());
    }
}
