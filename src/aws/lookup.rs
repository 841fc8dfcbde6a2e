//! Small reads that providers, jobs and notify all need and that belong
//! to no one system's configuration: the region a bucket lives in, the
//! key ARN a KMS alias names, and an object's own Object Lock.

use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::aws::ops;
use crate::aws::{classify, Aws};
use crate::model::time::human;
use crate::model::{Fatal, Observed, Shortfall};

/// The region a bucket lives in (GetBucketLocation, which any regional
/// endpoint answers), so `import` reads each bucket from its own region.
/// Absent: no such bucket; None-like answers mean us-east-1.
pub async fn bucket_region(aws: &Aws, region: &str, name: &str) -> Result<Observed<String>, Fatal> {
    let client = aws.s3(region);
    match aws.call(&ops::GET_BUCKET_LOCATION, client.get_bucket_location().bucket(name).send()).await {
        Ok(out) => Ok(Observed::Present(match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(r) => r.to_string(),
        })),
        Err(e) => classify(&e, &["NoSuchBucket"]).observed(),
    }
}

/// The ARN of the key `alias` names in `region`; with `wait` (this run
/// made a key), waiting (bounded by `--wait`) for it to be visible.
pub async fn key_arn(aws: &Aws, region: &str, alias: &str, wait: bool) -> Result<String, String> {
    let kms = aws.kms(region);
    let r = aws
        .call_until_visible(
            &ops::DESCRIBE_KEY,
            &format!("key {alias} in {region}"),
            || kms.describe_key().key_id(alias).send(),
            |e| wait && e.code() == Some("NotFoundException"),
        )
        .await;
    match r {
        Ok(o) => {
            o.key_metadata().and_then(|m| m.arn()).map(str::to_string).ok_or_else(|| format!("no key ARN for {alias}"))
        }
        Err(e) => Err(match classify(&e, &["NotFoundException"]) {
            crate::aws::ApiError::NotFound(_) => format!("the key {alias} does not exist in {region}"),
            other => other.reason(),
        }),
    }
}

/// Is this object itself locked for at least `need` seconds from its
/// creation? A bucket's default retention applies only to versions put
/// after it was set ("Object Lock considerations": default retention
/// settings don't apply to existing objects), so the bucket's
/// configuration proves nothing of the backups already there: HeadObject
/// reads the version's own mode and retain-until date.
pub async fn locked(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    need: u64,
    compliance: bool,
) -> Result<Observed<Result<String, Shortfall>>, Fatal> {
    let h = match aws.call(&ops::HEAD_OBJECT, client.head_object().bucket(bucket).key(key).send()).await {
        Ok(h) => h,
        Err(e) => return classify(&e, &["NoSuchKey", "NotFound"]).observed(),
    };
    let created = h.last_modified().map(|t| t.secs());
    let until = h.object_lock_retain_until_date().map(|t| t.secs());
    let mode = h.object_lock_mode().map(|m| m.as_str().to_string());
    Ok(Observed::Present(judge_lock(bucket, key, mode.as_deref(), created, until, need, compliance)))
}

/// The verdict on one object's lock (pure): a mode and a retain-until date
/// at least `need` seconds after its creation (a minute's slack: S3 counts
/// from the second it stored the version); with `compliance`, the mode
/// COMPLIANCE — GOVERNANCE-mode retention can be shortened or removed by
/// any principal with s3:BypassGovernanceRetention (AWS S3 user guide,
/// "Object Lock": retention modes).
pub fn judge_lock(
    bucket: &str,
    key: &str,
    mode: Option<&str>,
    created: Option<i64>,
    until: Option<i64>,
    need: u64,
    compliance: bool,
) -> Result<String, Shortfall> {
    let (Some(mode), Some(until)) = (mode, until) else {
        return Err(Shortfall(format!(
            "s3://{bucket}/{key} is not locked (no Object Lock retention on the object itself)"
        )));
    };
    if compliance && !mode.eq_ignore_ascii_case("COMPLIANCE") {
        return Err(Shortfall(format!(
            "s3://{bucket}/{key} is locked in {mode} mode, which a principal with s3:BypassGovernanceRetention can lift; the policy asks for COMPLIANCE"
        )));
    }
    let held = until.saturating_sub(created.unwrap_or(until)).max(0) as u64;
    if held + 60 < need {
        return Err(Shortfall(format!(
            "s3://{bucket}/{key} is locked ({mode}) {} from its creation, less than its {} retention",
            human(held),
            human(need)
        )));
    }
    Ok(format!("s3://{bucket}/{key} locked {mode} for {}", human(held)))
}
