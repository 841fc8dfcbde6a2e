//! `pgbackrest verify` after each point-in-time backup, and its record.
//! verify reads every file of the repository and checks it; it **exits 0
//! even when it finds errors** (its output is the only verdict), so its
//! `--verbose` text is parsed: a `status:` other than `ok`, or a count of
//! missing, checksum-invalid, size-invalid or other files above zero, is a
//! problem. The result is stored in the repository beside pgBackRest's own
//! folders (`PREFIX/suoops/verify.json`), where the audit's PITR-VERIFY
//! reads it.

use serde::{Deserialize, Serialize};

use crate::aws::{classify, ops, Aws};
use crate::jobs::upload::{self, Target};
use crate::jobs::{JobError, Stage};
use crate::model::time::format_time;
use crate::providers::postgres::section::Pitr;

/// The newest verify's result, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verified {
    pub started: u64,
    pub date: String,
    pub seconds: f64,
    pub passed: bool,
    /// What verify reported wrong, a line each (`archiveId: 15-1 … missing: 1`).
    pub problems: Vec<String>,
}

/// The problems in verify's `--verbose` text; Err when it says nothing a
/// verdict can be read from.
pub fn problems(text: &str) -> Result<Vec<String>, JobError> {
    if !text.contains("status:") {
        return Err(JobError::failed(
            Stage::Verify,
            format!("pgbackrest verify printed nothing to judge: `{}`", text.lines().next().unwrap_or("").trim()),
        ));
    }
    let mut out = Vec::new();
    let mut context = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("archiveId:") || line.starts_with("backup:") {
            context = line.split(',').next().unwrap_or(line).to_string();
        }
        // The stanza's own line, and each archive's and backup's
        // (`backup: LABEL, status: manifest missing, …`): a backup's status
        // is the only word of a manifest gone or invalid, whatever the
        // stanza's line says.
        for part in line.split(',').map(str::trim) {
            if let Some(status) = part.strip_prefix("status:").map(str::trim) {
                if status != "ok" && status != "valid" {
                    let at = if line.starts_with("status:") || context.is_empty() {
                        String::new()
                    } else {
                        format!("{context}: ")
                    };
                    out.push(format!("{at}status: {status}"));
                }
            }
        }
        for counter in ["missing", "checksum invalid", "size invalid", "other"] {
            for part in line.split(',').map(str::trim) {
                let bad = part
                    .strip_prefix(counter)
                    .and_then(|r| r.strip_prefix(':'))
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .filter(|n| *n > 0);
                if bad.is_some() {
                    out.push(if context.is_empty() { part.to_string() } else { format!("{context}: {part}") });
                }
            }
        }
    }
    Ok(out)
}

/// The last `backup run …pitr`, as stored beside the verify result
/// (`PREFIX/suoops/backup-run.json`): when it started and, when it
/// failed, why. PITR-BACKUP fails on a failed run newer than the newest
/// backup: a backup that can no longer be taken is not compliant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastRun {
    pub started: u64,
    pub date: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LastRun {
    pub fn new(started: u64, outcome: Result<(), &JobError>) -> LastRun {
        LastRun {
            started,
            date: format_time("%Y-%m-%dT%H:%M:%SZ", started),
            passed: outcome.is_ok(),
            reason: outcome.err().map(JobError::to_string),
        }
    }
}

pub const VERIFY: &str = "verify.json";
pub const RUN: &str = "backup-run.json";

fn key(pitr: &Pitr, name: &str) -> String {
    format!("{}suoops/{name}", pitr.repo.prefix)
}

/// Store `v` in the repository as `suoops/NAME`.
pub async fn store<T: Serialize>(aws: &Aws, pitr: &Pitr, region: &str, name: &str, v: &T) -> Result<(), JobError> {
    let sse = crate::jobs::sse(aws, &pitr.repo, region).await?;
    let t = Target { aws, region: region.to_string(), bucket: pitr.repo.bucket.clone(), key: key(pitr, name), sse };
    let body = serde_json::to_vec_pretty(v).map_err(|e| JobError::failed(Stage::Record, e.to_string()))?;
    upload::put(&t, bytes::Bytes::from(body)).await
}

/// The stored `suoops/NAME`, for the audit (None: none, or not one this
/// tool wrote).
pub async fn last<T: serde::de::DeserializeOwned>(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    pitr: &Pitr,
    name: &str,
) -> Result<Option<T>, crate::aws::ApiError> {
    let req = client.get_object().bucket(&pitr.repo.bucket).key(key(pitr, name));
    let out = match aws.call(&ops::GET_OBJECT, req.send()).await.map_err(|e| classify(&e, &["NoSuchKey"])) {
        Ok(o) => o,
        Err(crate::aws::ApiError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let body = out.body.collect().await.map_err(|e| crate::aws::ApiError::Other(e.to_string()))?;
    Ok(serde_json::from_slice(&body.into_bytes()).ok())
}

/// A new result from verify's text and its duration.
pub fn verdict(started: u64, seconds: f64, text: &str) -> Result<Verified, JobError> {
    let problems = problems(text)?;
    Ok(Verified {
        started,
        date: format_time("%Y-%m-%dT%H:%M:%SZ", started),
        seconds,
        passed: problems.is_empty(),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_text_is_the_verdict() {
        let ok = "stanza: s\nstatus: ok\n  archiveId: 15-1, total WAL checked: 5, total valid WAL: 5\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n  backup: 20261202-101010F, status: valid, total files checked: 980, total valid files: 980\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n";
        assert_eq!(problems(ok), Ok(vec![]));
        let bad = "stanza: s\nstatus: error\n  archiveId: 15-1, total WAL checked: 5, total valid WAL: 4\n    missing: 1, checksum invalid: 0, size invalid: 0, other: 0\n";
        assert_eq!(problems(bad), Ok(vec!["status: error".to_string(), "archiveId: 15-1: missing: 1".to_string()]));
        assert!(problems("").is_err());
        // A backup whose manifest is gone, under a stanza that says ok.
        let gone = "stanza: s\nstatus: ok\n  archiveId: 15-1, total WAL checked: 5, total valid WAL: 5\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n  backup: 20261202-101010F, status: manifest missing, total files checked: 0, total valid files: 0\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n";
        assert_eq!(problems(gone), Ok(vec!["backup: 20261202-101010F: status: manifest missing".to_string()]));
    }
}
