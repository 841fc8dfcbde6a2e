//! Read a bucket's live state: only the settings the policy mentions, each
//! three-valued (present / absent / unknown with the reason).

use aws_sdk_s3::types::BucketVersioningStatus;

use crate::aws::{classify, ApiError, Aws};
use crate::model::Observed;
use crate::policy::BucketSpec;

/// A bucket as observed. `None` for a setting: not read, because the policy
/// does not mention it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketState {
    /// Present(region) when the bucket exists.
    pub bucket: Observed<String>,
    /// Absent: never versioned.
    pub versioning: Option<Observed<String>>,
    pub encryption: Option<Observed<EncryptionState>>,
    pub public_access_block: Option<Observed<PabState>>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EncryptionState {
    /// As S3 reports it (AES256, aws:kms, aws:kms:dsse…).
    pub algorithm: String,
    pub kms_key: Option<String>,
    pub bucket_key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PabState {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// Error that stops the whole run (no credentials, endpoint unreachable).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Fatal(pub String);

fn unknown<T>(e: ApiError) -> Result<Observed<T>, Fatal> {
    match e {
        ApiError::Fatal(m) => Err(Fatal(m)),
        ApiError::NotFound(_) => Ok(Observed::Absent),
        other => Ok(Observed::Unknown {
            reason: other.reason(),
        }),
    }
}

/// Observe one bucket. `region` is where the policy wants it; the request
/// goes to that region's client (S3 redirects are reported by HeadBucket's
/// region header either way).
pub async fn observe(aws: &Aws, spec: &BucketSpec, region: &str) -> Result<BucketState, Fatal> {
    let client = aws.s3(region);
    let name = spec.name.as_str();
    let head = aws.call(client.head_bucket().bucket(name).send()).await;
    let bucket = match head {
        Ok(out) => Observed::Present(out.bucket_region().unwrap_or(region).to_string()),
        Err(e) => {
            // HeadBucket has no body: a 404 is NotFound, a 403 AccessDenied
            // (often: the name belongs to another account).
            let status = e.raw_response().map(|r| r.status().as_u16());
            match (status, classify(&e, &["NotFound", "NoSuchBucket"])) {
                (_, ApiError::Fatal(m)) => return Err(Fatal(m)),
                (Some(404), _) | (_, ApiError::NotFound(_)) => Observed::Absent,
                (Some(403), _) => forbidden(aws, &client, name).await?,
                (_, other) => Observed::Unknown {
                    reason: other.reason(),
                },
            }
        }
    };
    // A missing or unreadable bucket has no settings to read: each setting
    // the policy mentions takes the bucket's own absence or unknown reason.
    if bucket.present().is_none() {
        return Ok(BucketState {
            versioning: spec.versioning.map(|_| like(&bucket)),
            encryption: spec.encryption.as_ref().map(|_| like(&bucket)),
            public_access_block: spec.public_access_block.map(|_| like(&bucket)),
            bucket,
        });
    }
    let actual_region = bucket
        .present()
        .cloned()
        .unwrap_or_else(|| region.to_string());
    let client = aws.s3(&actual_region);
    let (versioning, encryption, public_access_block) = tokio::join!(
        async {
            match spec.versioning {
                Some(_) => Some(versioning(aws, &client, name).await),
                None => None,
            }
        },
        async {
            match spec.encryption {
                Some(_) => Some(encryption(aws, &client, name).await),
                None => None,
            }
        },
        async {
            match spec.public_access_block {
                Some(_) => Some(public_access_block(aws, &client, name).await),
                None => None,
            }
        },
    );
    Ok(BucketState {
        bucket,
        versioning: versioning.transpose()?,
        encryption: encryption.transpose()?,
        public_access_block: public_access_block.transpose()?,
    })
}

/// HeadBucket answered 403 without a body, which is both "these credentials
/// are not valid" and "not allowed to see this bucket". One call that has
/// a body (GetBucketLocation) tells them apart; only this case pays for it.
async fn forbidden(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Observed<String>, Fatal> {
    let denied = || Observed::Unknown {
        reason: "access denied (403) to the bucket; it may belong to another account".into(),
    };
    match aws
        .call(client.get_bucket_location().bucket(name).send())
        .await
    {
        Ok(_) => Ok(denied()),
        Err(e) => match classify(&e, &[]) {
            ApiError::Fatal(m) => Err(Fatal(m)),
            _ => Ok(denied()),
        },
    }
}

/// A setting of a bucket that is absent (or unreadable) is absent (or
/// unreadable) for the same reason.
fn like<T>(bucket: &Observed<String>) -> Observed<T> {
    match bucket {
        Observed::Unknown { reason } => Observed::Unknown {
            reason: reason.clone(),
        },
        _ => Observed::Absent,
    }
}

async fn versioning(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Observed<String>, Fatal> {
    match aws
        .call(client.get_bucket_versioning().bucket(name).send())
        .await
    {
        Ok(out) => Ok(match out.status() {
            Some(BucketVersioningStatus::Enabled) => Observed::Present("enabled".into()),
            Some(BucketVersioningStatus::Suspended) => Observed::Present("suspended".into()),
            Some(other) => Observed::Present(other.as_str().to_ascii_lowercase()),
            None => Observed::Absent,
        }),
        Err(e) => unknown(classify(&e, &["NoSuchBucket"])),
    }
}

async fn encryption(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Observed<EncryptionState>, Fatal> {
    match aws
        .call(client.get_bucket_encryption().bucket(name).send())
        .await
    {
        Ok(out) => {
            let rule = out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first());
            let Some(rule) = rule else {
                return Ok(Observed::Absent);
            };
            let Some(default) = rule.apply_server_side_encryption_by_default() else {
                return Ok(Observed::Absent);
            };
            Ok(Observed::Present(EncryptionState {
                algorithm: default.sse_algorithm().as_str().to_string(),
                kms_key: default.kms_master_key_id().map(str::to_string),
                bucket_key: rule.bucket_key_enabled().unwrap_or(false),
            }))
        }
        Err(e) => unknown(classify(
            &e,
            &[
                "ServerSideEncryptionConfigurationNotFoundError",
                "NoSuchBucket",
            ],
        )),
    }
}

async fn public_access_block(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Observed<PabState>, Fatal> {
    match aws
        .call(client.get_public_access_block().bucket(name).send())
        .await
    {
        Ok(out) => Ok(match out.public_access_block_configuration() {
            Some(c) => Observed::Present(PabState {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            }),
            None => Observed::Absent,
        }),
        Err(e) => unknown(classify(
            &e,
            &["NoSuchPublicAccessBlockConfiguration", "NoSuchBucket"],
        )),
    }
}
