//! S3-OLDEST-VERSION, read by `audit` only: the erasure horizon measured.
//! For every copy of a backup this bucket holds (policy::erasure), the
//! oldest version still present under its prefix — current or noncurrent,
//! read with ListObjectVersions, paginated and bounded — must be younger
//! than the horizon the lifecycle and lock promise. A version older than
//! that is a deleted row still recoverable, whatever the configuration
//! says (a rule disabled for a while, a legal hold, a rule that never
//! matched the keys).

use serde_json::{json, Map, Value};

use crate::aws::{classify, ops, Aws};
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::time::now;
use crate::model::{Address, Fatal, Observed};
use crate::policy::erasure::{repository_metadata, Copy, EVIDENCE_SLACK_SECS};

pub const OLDEST: ControlDef = ControlDef {
    id: "S3-OLDEST-VERSION",
    title: "No backup version outlives its erasure horizon",
    rationale: "A deleted user's rows must be unrecoverable within privacy.erasure_within: the oldest version each copy of the backups still holds (ListObjectVersions) is younger than the horizon its lifecycle and Object Lock promise (strategy: honor data deletion requests).",
    severity: Severity::High,
    objectives: &["ERASURE-HORIZON"],
};

/// Versions read under one prefix at most (ListObjectVersions returns up to
/// 1,000 per page): the shipped repository at a segment every 5 minutes
/// holds about 5,000 over its horizon. Beyond it the oldest version is not
/// known, and the control says so.
pub const MAX_VERSIONS: usize = 50_000;

/// The oldest version found under a prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub key: String,
    pub version_id: String,
    pub age_secs: u64,
}

/// One prefix of the bucket that holds a copy with a bounded horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The copies kept under it, as reports name them.
    pub copies: Vec<String>,
    pub prefix: String,
    pub horizon_days: u64,
    /// Versions listed, and the oldest (Absent: none under the prefix).
    pub oldest: Observed<(usize, Option<Found>)>,
}

/// The prefixes of `bucket` to look at: one per prefix, at the shortest
/// horizon of the copies there; copies no erasure_within applies to, and
/// unbounded ones (ERASURE-HORIZON already names them), are left out.
fn wanted(bucket: &str, copies: &[Copy]) -> Vec<(String, u64, Vec<String>, bool)> {
    let mut out: Vec<(String, u64, Vec<String>, bool)> = Vec::new();
    for c in copies.iter().filter(|c| c.bucket == bucket && c.within_secs.is_some()) {
        let Ok(days) = c.horizon else { continue };
        match out.iter_mut().find(|w| w.0 == c.prefix) {
            Some(w) => {
                w.1 = w.1.min(days);
                w.2.push(c.what.clone());
                w.3 &= c.repository;
            }
            None => out.push((c.prefix.clone(), days, vec![c.what.clone()], c.repository)),
        }
    }
    out
}

/// Unread: the bucket is missing or unreadable (`why`).
pub fn unread(bucket: &str, copies: &[Copy], why: &str) -> Vec<Seen> {
    wanted(bucket, copies)
        .into_iter()
        .map(|(prefix, horizon_days, copies, _)| Seen {
            copies,
            prefix,
            horizon_days,
            oldest: Observed::Unknown { reason: why.to_string() },
        })
        .collect()
}

pub async fn observe(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    copies: &[Copy],
) -> Result<Vec<Seen>, Fatal> {
    let mut out = Vec::new();
    for (prefix, horizon_days, copies, repository) in wanted(bucket, copies) {
        let oldest = match oldest(aws, client, bucket, &prefix, repository).await {
            Ok(found) => found,
            Err(e) => e.observed()?,
        };
        out.push(Seen { copies, prefix, horizon_days, oldest });
    }
    Ok(out)
}

/// The oldest version (not delete marker: a marker holds no data) under
/// `prefix`, with how many were listed. In a repository pgBackRest's
/// metadata is left out (policy::erasure::repository_metadata). Unknown
/// past MAX_VERSIONS.
async fn oldest(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    repository: bool,
) -> Result<Observed<(usize, Option<Found>)>, crate::aws::ApiError> {
    let now = now();
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    let mut listed = 0;
    let mut best: Option<(i64, String, String)> = None;
    loop {
        let req = client
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone());
        let page =
            aws.call(&ops::LIST_OBJECT_VERSIONS, req.send()).await.map_err(|e| classify(&e, &["NoSuchBucket"]))?;
        for v in page.versions() {
            listed += 1;
            let (Some(key), Some(t)) = (v.key(), v.last_modified()) else { continue };
            if repository && repository_metadata(key) {
                continue;
            }
            if best.as_ref().is_none_or(|b| t.secs() < b.0) {
                best = Some((t.secs(), key.to_string(), v.version_id().unwrap_or("null").to_string()));
            }
        }
        listed += page.delete_markers().len();
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        if listed >= MAX_VERSIONS {
            return Ok(Observed::Unknown {
                reason: format!(
                    "more than {MAX_VERSIONS} versions under {prefix}: the oldest is not known within the bound"
                ),
            });
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            break;
        }
    }
    let found =
        best.map(|(t, key, version_id)| Found { key, version_id, age_secs: now.saturating_sub(t.max(0) as u64) });
    Ok(Observed::Present((listed, found)))
}

fn days(secs: u64) -> String {
    format!("{:.1}", secs as f64 / 86_400.0)
}

/// The bucket's S3-OLDEST-VERSION; None when it holds no copy to judge.
pub fn control(bucket: &str, line: u64, seen: &[Seen]) -> Option<ControlResult> {
    if seen.is_empty() {
        return None;
    }
    let (mut expected, mut observed) = (Map::new(), Map::new());
    let (mut failed, mut unknown, mut fine) = (Vec::new(), Vec::new(), Vec::new());
    for s in seen {
        expected.insert(s.prefix.clone(), json!({"horizon_days": s.horizon_days, "copies": s.copies}));
        let limit = s.horizon_days * 86_400 + EVIDENCE_SLACK_SECS;
        match &s.oldest {
            Observed::Present((listed, Some(f))) => {
                observed.insert(
                    s.prefix.clone(),
                    json!({"oldest": f.key, "version_id": f.version_id, "age_seconds": f.age_secs, "versions": listed}),
                );
                if f.age_secs > limit {
                    failed.push(format!(
                        "s3://{bucket}/{} (version {}) is {} days old, over the {}-day horizon of {} (a day of lifecycle delay allowed)",
                        f.key,
                        f.version_id,
                        days(f.age_secs),
                        s.horizon_days,
                        s.copies.join(", ")
                    ));
                } else {
                    fine.push(format!(
                        "{}: oldest version {} days old, horizon {} days",
                        s.prefix,
                        days(f.age_secs),
                        s.horizon_days
                    ));
                }
            }
            Observed::Present((_, None)) | Observed::Absent => {
                let listed = if let Observed::Present((n, _)) = &s.oldest { *n } else { 0 };
                observed.insert(s.prefix.clone(), json!({"oldest": Value::Null, "versions": listed}));
                fine.push(format!("{}: no version yet, horizon {} days", s.prefix, s.horizon_days));
            }
            Observed::Unknown { reason } => {
                observed.insert(s.prefix.clone(), json!({"unknown": reason}));
                unknown.push(format!("{}: {reason}", s.prefix));
            }
        }
    }
    let (status, detail) = if !failed.is_empty() {
        (Status::Fail, failed.join("; "))
    } else if !unknown.is_empty() {
        (Status::Unknown, unknown.join("; "))
    } else {
        (Status::Pass, fine.join("; "))
    };
    Some(OLDEST.result(
        &Address::s3_bucket(bucket),
        status,
        Value::Object(expected),
        Value::Object(observed),
        Some(detail),
        "a version older than its horizon is a deleted row still recoverable: check that the lifecycle rule for the prefix is live, enabled and matches the keys, and that no legal hold (which never expires) or longer retention is on the version; remove it (break glass) if it must go",
        line,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(prefix: &str, horizon_days: u64, age_secs: Option<u64>) -> Seen {
        Seen {
            copies: vec![format!("s3://b/{prefix} (dump)")],
            prefix: prefix.into(),
            horizon_days,
            oldest: Observed::Present((
                3,
                age_secs.map(|a| Found { key: format!("{prefix}old.dump"), version_id: "v1".into(), age_secs: a }),
            )),
        }
    }

    #[test]
    fn a_version_past_its_horizon_and_the_slack_fails_naming_itself() {
        let day = 86_400;
        // Within the horizon plus a day of lifecycle delay: passes.
        let c = control("b", 1, &[seen("postgres/", 17, Some(18 * day)), seen("redis/", 17, None)]).expect("one");
        assert_eq!(c.status, Status::Pass, "{:?}", c.detail);
        assert_eq!(
            c.detail.as_deref(),
            Some("postgres/: oldest version 18.0 days old, horizon 17 days; redis/: no version yet, horizon 17 days")
        );
        let c =
            control("b", 1, &[seen("postgres/", 17, Some(18 * day + 60)), seen("redis/", 17, Some(day))]).expect("one");
        assert_eq!(c.status, Status::Fail);
        assert_eq!(
            c.detail.as_deref(),
            Some("s3://b/postgres/old.dump (version v1) is 18.0 days old, over the 17-day horizon of s3://b/postgres/ (dump) (a day of lifecycle delay allowed)")
        );
        assert_eq!(c.observed["postgres/"]["version_id"], "v1");
        assert_eq!(c.expected["redis/"]["horizon_days"], 17);
        // Not read: unknown, never a pass.
        let mut u = seen("postgres/", 17, None);
        u.oldest = Observed::Unknown { reason: "more than 50000 versions".into() };
        assert_eq!(control("b", 1, &[u]).expect("one").status, Status::Unknown);
        assert!(control("b", 1, &[]).is_none());
    }

    #[test]
    fn only_bounded_judged_copies_are_looked_at_one_prefix_once() {
        let copy = |bucket: &str, prefix: &str, horizon: crate::model::Finding<u64>, within: Option<u64>| Copy {
            what: format!("s3://{bucket}/{prefix}"),
            bucket: bucket.into(),
            prefix: prefix.into(),
            repository: false,
            horizon,
            within_secs: within,
        };
        let copies = [
            copy("b", "postgres/", Ok(17), Some(1)),
            copy("b", "postgres/", Ok(12), Some(1)),
            copy("b", "redis/", Ok(17), None),
            copy("b", "pgbackrest/", Err("unbounded".into()), Some(1)),
            copy("other", "postgres/", Ok(17), Some(1)),
        ];
        let w = wanted("b", &copies);
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].0.as_str(), w[0].1, w[0].2.len()), ("postgres/", 12, 2));
    }
}
