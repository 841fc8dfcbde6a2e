//! Backup evidence, read by `audit` only: is the newest backup under a
//! prefix younger than `max_age`, does its SHA-256 sidecar exist, is it
//! well formed and does it match the checksum S3 holds, and does the
//! bucket's lifecycle keep backups exactly as long as required.

use aws_sdk_s3::types::ChecksumMode;
use serde::Serialize;
use serde_json::{json, Value};

use super::lifecycle::LifecycleDoc;
use crate::aws::{classify, ApiError, Aws};
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::time::{format_time, now};
use crate::model::{Address, Fatal, Observed};
use crate::policy::{BackupSpec, BucketSpec};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Newest {
    pub key: String,
    pub age_seconds: u64,
    /// Objects read to find it.
    pub listed: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub spec: BackupSpec,
    /// Absent: no backup under the prefix at all.
    pub newest: Observed<Newest>,
    /// Ok, or what is wrong with the sidecar; None when not asked for.
    pub sidecar: Option<Observed<Result<(), String>>>,
}

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
    let mut token: Option<String> = None;
    let mut best: Option<(i64, String)> = None;
    let mut listed = 0;
    loop {
        let req = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&b.prefix)
            .set_start_after(start_after.clone())
            .set_continuation_token(token.clone());
        let page = match aws.call("send", req.send()).await {
            Ok(p) => p,
            Err(e) => return classify(&e, &["NoSuchBucket"]).observed(),
        };
        for o in page.contents() {
            listed += 1;
            let (Some(key), Some(t)) = (o.key(), o.last_modified()) else { continue };
            if key.ends_with(".sha256") || key.ends_with('/') {
                continue;
            }
            if best.as_ref().is_none_or(|(bt, bk)| (t.secs(), key) > (*bt, bk.as_str())) {
                best = Some((t.secs(), key.to_string()));
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if !page.is_truncated().unwrap_or(false) || token.is_none() {
            break;
        }
    }
    Ok(match best {
        Some((t, key)) => Observed::Present(Newest { key, age_seconds: now.saturating_sub(t.max(0) as u64), listed }),
        None => Observed::Absent,
    })
}

/// The sidecar KEY.sha256: present, 64 hex digits, and equal to the
/// SHA-256 S3 holds for the object when it holds one.
async fn sidecar(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Observed<Result<(), String>>, Fatal> {
    let side = format!("{key}.sha256");
    let body = match aws.call("get_object", client.get_object().bucket(bucket).key(&side).send()).await {
        Ok(out) => match out.body.collect().await {
            Ok(b) => String::from_utf8_lossy(&b.into_bytes()).into_owned(),
            Err(e) => return Ok(Observed::Unknown { reason: format!("reading {side}: {e}") }),
        },
        Err(e) => {
            return match classify(&e, &["NoSuchKey", "NotFound"]) {
                ApiError::NotFound(_) => Ok(Observed::Present(Err(format!("{side} is missing")))),
                other => other.observed(),
            }
        }
    };
    let hex = body.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(Observed::Present(Err(format!("{side} does not hold a SHA-256 (64 hex digits)"))));
    }
    let head = aws
        .call("head_object", client.head_object().bucket(bucket).key(key).checksum_mode(ChecksumMode::Enabled).send())
        .await;
    if let Ok(h) = head {
        if let Some(s3_sum) = h.checksum_sha256().filter(|c| !c.contains('-')) {
            let bytes: Vec<u8> = (0..32).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
            if aws_smithy_types::base64::encode(&bytes) != s3_sum {
                return Ok(Observed::Present(Err(format!(
                    "{side} does not match the SHA-256 checksum S3 holds for {key}"
                ))));
            }
        }
    }
    Ok(Observed::Present(Ok(())))
}

/// Read the evidence for every backup entry of a bucket.
pub async fn observe(aws: &Aws, spec: &BucketSpec, region: &str) -> Result<Vec<Evidence>, Fatal> {
    let client = aws.s3(region);
    let mut out = Vec::new();
    for b in &spec.backups {
        let newest = newest(aws, &client, &spec.name, b).await?;
        let sidecar = match (&newest, b.sha256_sidecar) {
            (_, false) => None,
            (Observed::Present(n), true) => Some(sidecar(aws, &client, &spec.name, &n.key).await?),
            (Observed::Absent, true) => Some(Observed::Present(Err("there is no backup to check".into()))),
            (Observed::Unknown { reason }, true) => Some(Observed::Unknown { reason: reason.clone() }),
        };
        out.push(Evidence { spec: b.clone(), newest, sidecar });
    }
    Ok(out)
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
            sidecar: b.sha256_sidecar.then(|| Observed::Present(Err("the bucket does not exist".into()))),
        })
        .collect()
}

fn human(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

const FRESHNESS: ControlDef = ControlDef {
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

/// The backup-evidence controls (audit only).
pub const CONTROLS: &[ControlDef] = &[FRESHNESS, INTEGRITY, RETENTION];

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
                    "the newest backup {} is {} old, over {}",
                    n.key,
                    human(n.age_seconds),
                    human(b.max_age_secs)
                )),
            ),
            Observed::Absent => (Status::Fail, Value::Null, Some(format!("no backup under {}", b.prefix))),
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
                Observed::Present(Err(why)) => (Status::Fail, Some(why.clone())),
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
        if let Some(days) = b.retention_days {
            let (status, observed, detail) = match lifecycle {
                Some(Observed::Present(doc)) => {
                    let rule = doc
                        .rules
                        .iter()
                        .filter(|r| {
                            r.enabled
                                && r.tags.is_empty()
                                && b.prefix.starts_with(&r.prefix)
                                && r.expire_after_days.is_some()
                        })
                        .max_by_key(|r| r.prefix.len());
                    match rule {
                        Some(r) if r.expire_after_days == Some(days as i64) => {
                            (Status::Pass, json!({"rule": r.id, "expire_after_days": r.expire_after_days}), None)
                        }
                        Some(r) => (
                            Status::Fail,
                            json!({"rule": r.id, "expire_after_days": r.expire_after_days}),
                            Some(format!(
                                "rule {} expires {} after {} days, not {days}",
                                r.id,
                                b.prefix,
                                r.expire_after_days.unwrap_or(0)
                            )),
                        ),
                        None => {
                            (Status::Fail, Value::Null, Some(format!("no enabled lifecycle rule expires {}", b.prefix)))
                        }
                    }
                }
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
