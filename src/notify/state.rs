//! One small object the tool keeps for itself in S3: the last audit's
//! outcome for `audit --notify --state s3://BUCKET/KEY`, so a scheduled job
//! on a fresh runner still posts only changes. Read in the bucket's own
//! region (GetBucketLocation first).

use aws_sdk_s3::primitives::ByteStream;

use crate::aws::lookup::bucket_region;
use crate::aws::ops;
use crate::aws::{classify, ApiError, Aws};
use crate::model::Observed;

use super::NotifyError;

/// `s3://BUCKET/KEY` → (bucket, key).
pub fn parse(location: &str) -> Option<(String, String)> {
    let rest = location.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

async fn region_of(aws: &Aws, bucket: &str) -> Result<String, NotifyError> {
    let default = aws.default_region().unwrap_or("us-east-1").to_string();
    let unreadable = |why: String| NotifyError::StateBucket { bucket: bucket.to_string(), why };
    match bucket_region(aws, &default, bucket).await.map_err(|f| unreadable(f.message))? {
        Observed::Present(r) => Ok(r),
        Observed::Absent => Err(NotifyError::NoStateBucket(bucket.to_string())),
        Observed::Unknown { reason } => Err(unreadable(reason)),
    }
}

fn object(doing: &'static str, bucket: &str, key: &str, why: String) -> NotifyError {
    NotifyError::StateObject { doing, bucket: bucket.to_string(), key: key.to_string(), why }
}

/// The object's text; None when it does not exist yet.
pub async fn read(aws: &Aws, bucket: &str, key: &str) -> Result<Option<String>, NotifyError> {
    let client = aws.s3(&region_of(aws, bucket).await?);
    match aws.call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send()).await {
        Ok(out) => match out.body.collect().await {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b.into_bytes()).into_owned())),
            Err(e) => Err(object("reading", bucket, key, e.to_string())),
        },
        Err(e) => match classify(&e, &["NoSuchKey", "NotFound"]) {
            ApiError::NotFound(_) => Ok(None),
            other => Err(object("reading", bucket, key, other.reason())),
        },
    }
}

/// Replace the object with `text`.
pub async fn write(aws: &Aws, bucket: &str, key: &str, text: String) -> Result<(), NotifyError> {
    let client = aws.s3(&region_of(aws, bucket).await?);
    aws.call(
        &ops::PUT_OBJECT,
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(text.into_bytes()))
            .send(),
    )
    .await
    .map(|_| ())
    .map_err(|e| object("writing", bucket, key, classify(&e, &[]).reason()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn locations() {
        assert_eq!(super::parse("s3://b/a/k.json"), Some(("b".into(), "a/k.json".into())));
        assert_eq!(super::parse("s3://b/"), None);
        assert_eq!(super::parse("state.json"), None);
    }
}
