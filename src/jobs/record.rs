//! A restore drill's record: what it found, stored as JSON under
//! `drills/INSTANCE/` beside the backups it restored (the audit's
//! RESTORE-DRILL reads the newest), and the strategy's Markdown log row.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::upload::{self, Target};
use super::{JobError, Stage};
use crate::aws::ops;
use crate::aws::{classify, Aws};
use crate::model::time::{format_time, now};
use crate::policy::BackupRef;

/// Where drill records live in a bucket (the backups' own listings leave
/// them out, and the access statements reserve it for the drills).
pub const RECORDS: &str = "drills/";

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
    /// The stage that failed (`download`, `restore`, `check`…), when the
    /// drill itself failed rather than its checks or its RTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<Stage>,
    /// A point-in-time drill's target and what it reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PointInTime>,
}

/// What a point-in-time drill asked for and reached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PointInTime {
    /// The target time asked for (RFC 3339), or `latest`: the end of the
    /// archive.
    pub target: String,
    /// The pgBackRest backup restored (its label).
    pub backup: String,
    /// Commit time of the last transaction the restored cluster replayed
    /// (`pg_last_xact_replay_timestamp()`), RFC 3339; None: none replayed.
    pub last_replayed: Option<String>,
    /// The achieved RPO, in seconds: for `latest`, the drill's start minus
    /// the last replayed commit (how much a loss at that moment would have
    /// cost; an upper bound on an idle database, which commits nothing to
    /// lose); for a target time, the target minus the last replayed commit.
    pub achieved_rpo_seconds: Option<f64>,
    /// How the achieved RPO was measured, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_measured: Option<String>,
    /// The RPO the policy asks for.
    pub rpo_seconds: u64,
    /// The pgBackRest release that restored it (`pgbackrest version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest: Option<String>,
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
    /// The restore's time; where it runs while the dump downloads (a
    /// custom dump into a throw-away cluster), what it took after the
    /// download ended, so that the phases add up to the time to restore.
    pub restore: f64,
    /// WAL replay up to the target and promotion (point-in-time drills).
    #[serde(default)]
    pub replay: f64,
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
        failed_stage: None,
        pitr: None,
    }
}

/// Total the phases and judge: the drill's own error, failed checks, or
/// a time to restore over the RTO; else passed.
pub fn conclude(rec: &mut Record, outcome: Result<(), JobError>) {
    let p = &rec.phases;
    rec.total_seconds = ((p.download + p.restore + p.replay + p.migrate + p.checks) * 100.0).round() / 100.0;
    rec.failed_stage = outcome.as_ref().err().map(JobError::stage);
    rec.reason = match outcome {
        Err(e) => Some(e.to_string()),
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

/// One drill from its new record (`record`) to the stored one: its
/// `phases` run against the entry `from` (in its region, else
/// `default_region`), the conclusion, and the record stored beside the
/// backups. The record is returned whether the drill passed or not; Err
/// only when it could not be stored.
pub async fn drill<F>(
    aws: &Aws,
    from: &BackupRef,
    default_region: &str,
    mut rec: Record,
    phases: F,
) -> Result<Record, JobError>
where
    F: AsyncFnOnce(&str, &mut Record) -> Result<(), JobError>,
{
    let region = from.region.clone().unwrap_or_else(|| default_region.to_string());
    let outcome = phases(&region, &mut rec).await;
    conclude(&mut rec, outcome);
    store(aws, from, &region, &rec).await?;
    Ok(rec)
}

/// Put the record under `drills/INSTANCE/` of the entry's bucket.
pub async fn store(aws: &Aws, from: &BackupRef, region: &str, rec: &Record) -> Result<(), JobError> {
    let key = format!("{}{}.json", from.drills_prefix(&rec.instance), format_time("%Y%m%dT%H%M%SZ", rec.started));
    let sse = super::sse(aws, from, region).await?;
    let t = Target { aws, region: region.to_string(), bucket: from.bucket.clone(), key, sse };
    let body = serde_json::to_vec_pretty(rec).map_err(|e| JobError::failed(Stage::Record, e.to_string()))?;
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
    // What was restored: the dump, or a point-in-time drill's backup and
    // the target it replayed to.
    let dump = match (&rec.dump, &rec.pitr) {
        (Some(d), _) => format!("`{}` ({} bytes)", d.key, d.bytes),
        (None, Some(p)) if !p.backup.is_empty() => format!("pgBackRest backup `{}` to {}", p.backup, p.target),
        _ => "-".to_string(),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_in_time_drill_s_log_row_names_its_backup_and_target() {
        let mut rec = record("postgres.primary.pitr", "ops", "local", 3600);
        rec.result = "passed".into();
        rec.pitr = Some(PointInTime {
            target: "2026-12-06T17:00:00Z".into(),
            backup: "20261206-165900F".into(),
            last_replayed: None,
            achieved_rpo_seconds: Some(1.0),
            rpo_measured: None,
            rpo_seconds: 900,
            pgbackrest: Some("2.45".into()),
        });
        let row = log_row(&rec);
        assert!(row.contains("| pgBackRest backup `20261206-165900F` to 2026-12-06T17:00:00Z |"), "{row}");
    }
}
