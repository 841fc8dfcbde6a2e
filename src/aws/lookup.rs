//! Small reads that providers, jobs and notify all need and that belong
//! to no one system's configuration: the region a bucket lives in, and the
//! key ARN a KMS alias names.

use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::aws::ops;
use crate::aws::{classify, Aws};
use crate::model::{Fatal, Observed};

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
