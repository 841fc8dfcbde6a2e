//! Read a bucket's live state: only the settings the policy mentions, each
//! three-valued (present / absent / unknown with the reason).

use aws_sdk_s3::types::BucketVersioningStatus;

use crate::aws::ops;
use crate::aws::{classify, ApiError, Aws};
use crate::model::{Fatal, Observed};
use crate::providers::s3::section::BucketSpec;

use super::lifecycle::LifecycleDoc;
use super::replication::{Prerequisites, ReplicationDoc};
use super::tls::PolicyDoc;

/// A bucket as observed. `None` for a setting: not read, because the policy
/// does not mention it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BucketState {
    /// Present(region) when the bucket exists.
    pub bucket: Observed<String>,
    /// Absent: never versioned.
    pub versioning: Option<Observed<String>>,
    pub encryption: Option<Observed<EncryptionState>>,
    pub public_access_block: Option<Observed<PabState>>,
    /// Read from the same GetBucketVersioning call as `versioning`.
    pub mfa_delete: Option<Observed<bool>>,
    pub lifecycle: Option<Observed<LifecycleDoc>>,
    pub policy: Option<Observed<PolicyDoc>>,
    pub replication: Option<Observed<ReplicationDoc>>,
    /// The KMS key the policy's encryption names (DescribeKey): read when
    /// the policy says aws:kms with a key, since S3 accepts a key that does
    /// not exist or is disabled and only the writes fail later.
    pub key: Option<Observed<KeyFacts>>,
    /// Absent: Object Lock is not enabled on the bucket.
    pub object_lock: Option<Observed<LockState>>,
    /// The role names of `access:`, resolved once per run.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub principals: std::collections::BTreeMap<String, super::access::Principal>,
    /// Filled by the engine from run-level reads (roles, destinations).
    pub prerequisites: Prerequisites,
    /// Who runs this (GetCallerIdentity), read when `access` names
    /// administrators: a statement that would shut the caller out of the
    /// bucket's configuration is said in the plan and refused by apply.
    /// Not part of the fingerprint (plan and apply run as different roles).
    #[serde(skip)]
    pub caller: Option<String>,
    /// The policy of the bucket's KMS key when the policy does not declare
    /// the key under `kms.keys` (audit only; a declared key's is read by
    /// its own kind): who may use the key is the key policy's to say too.
    #[serde(skip)]
    pub key_policy: Option<Observed<serde_json::Value>>,
}

/// GetObjectLockConfiguration of a bucket with Object Lock enabled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockState {
    /// GOVERNANCE or COMPLIANCE; None: no default retention.
    pub mode: Option<String>,
    /// The default retention in days (`Years` counted as 365 days each).
    pub days: Option<i64>,
    /// Written in years (kept when the days the policy asks match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub years: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EncryptionState {
    /// As S3 reports it (AES256, aws:kms, aws:kms:dsse…).
    pub algorithm: String,
    pub kms_key: Option<String>,
    pub bucket_key: bool,
    /// `BlockedEncryptionTypes` (e.g. SSE-C refused): not in the policy
    /// format, written back as read (field-level ownership).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_encryption_types: Option<Vec<String>>,
}

/// A KMS key as DescribeKey shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyFacts {
    pub arn: String,
    /// Enabled, Disabled, PendingDeletion, PendingImport, Unavailable…
    pub state: String,
    /// The region the key lives in (from its ARN).
    pub region: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PabState {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

/// Observe one bucket. `region` is where the policy wants it; the request
/// goes to that region's client (S3 redirects are reported by HeadBucket's
/// region header either way).
/// With `evidence`, the lifecycle is also read when a backup entry checks
/// retention against it (audit).
pub async fn observe(aws: &Aws, spec: &BucketSpec, region: &str, evidence: bool) -> Result<BucketState, Fatal> {
    let name = spec.name.as_str();
    let reads = reads_versioning(spec)
        || spec.encryption.is_some()
        || spec.public_access_block.is_some()
        || reads_lifecycle(spec, evidence)
        || reads_policy(spec)
        || spec.object_lock.is_some()
        || spec.replication.is_some();
    // One read per setting the policy mentions, and no HeadBucket: each
    // Get answers NoSuchBucket (absent), a redirect to the bucket's own
    // region (read again there), or the setting. HeadBucket is left for a
    // bucket the policy names without any setting, and for telling "not
    // ours" from "not allowed" when every read is denied.
    if reads {
        let gone = Gone::default();
        let state = read_settings(aws, spec, region, evidence, &gone).await?;
        let outcome = gone.0.borrow().clone();
        match outcome {
            Some(BucketGone::Absent) => return Ok(missing(spec, evidence, Observed::Absent)),
            Some(BucketGone::Moved(home)) if home != region => {
                let again = Gone::default();
                let state = read_settings(aws, spec, &home, evidence, &again).await?;
                if again.0.borrow().is_none() {
                    return Ok(state);
                }
            }
            _ if !state.all_denied() => return Ok(state),
            _ => {}
        }
    }
    let client = aws.s3(region);
    let head = aws.call(&ops::HEAD_BUCKET, client.head_bucket().bucket(name).send()).await;
    let bucket = match head {
        Ok(out) => Observed::Present(out.bucket_region().unwrap_or(region).to_string()),
        Err(e) => {
            // HeadBucket has no body: a 404 is NotFound, a 403 AccessDenied
            // (often: the name belongs to another account), a 301 the
            // bucket's own region.
            let status = e.raw_response().map(|r| r.status().as_u16());
            match (status, classify(&e, &["NotFound", "NoSuchBucket"]), redirect_region(&e)) {
                (_, ApiError::Fatal(m), _) => return Err(Fatal::api(m)),
                (_, _, Some(home)) => Observed::Present(home),
                (Some(404), _, _) | (_, ApiError::NotFound(_), _) => Observed::Absent,
                (Some(403), _, _) => forbidden(aws, &client, name).await?,
                (_, other, _) => Observed::Unknown { reason: other.reason() },
            }
        }
    };
    // A missing or unreadable bucket has no settings to read: each setting
    // the policy mentions takes the bucket's own absence or unknown reason.
    let Some(home) = bucket.present().cloned() else {
        return Ok(missing(spec, evidence, bucket));
    };
    let gone = Gone::default();
    let mut state = read_settings(aws, spec, &home, evidence, &gone).await?;
    state.bucket = bucket;
    Ok(state)
}

/// Why the reads of a bucket's settings found no bucket where they asked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BucketGone {
    /// NoSuchBucket.
    Absent,
    /// Redirected: the bucket lives in this region.
    Moved(String),
}

/// What any of one bucket's concurrent reads learnt about the bucket itself.
#[derive(Default)]
pub struct Gone(std::cell::RefCell<Option<BucketGone>>);

impl Gone {
    fn note<E>(&self, e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>)
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata,
    {
        let found = match redirect_region(e) {
            Some(home) => Some(BucketGone::Moved(home)),
            None if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchBucket") => Some(BucketGone::Absent),
            None => None,
        };
        if found.is_some() {
            *self.0.borrow_mut() = found;
        }
    }
}

/// The state of a bucket that is absent or unreadable: every setting the
/// policy mentions takes the bucket's reason.
pub(crate) fn missing(spec: &BucketSpec, evidence: bool, bucket: Observed<String>) -> BucketState {
    BucketState {
        versioning: spec.versioning.map(|_| like(&bucket)),
        encryption: spec.encryption.as_ref().map(|_| like(&bucket)),
        public_access_block: spec.public_access_block.map(|_| like(&bucket)),
        mfa_delete: spec.mfa_delete.map(|_| like(&bucket)),
        lifecycle: (spec.lifecycle.is_some() || evidence).then(|| like(&bucket)),
        policy: reads_policy(spec).then(|| like(&bucket)),
        replication: spec.replication.as_ref().map(|_| like(&bucket)),
        prerequisites: Prerequisites::default(),
        key: None,
        object_lock: spec.object_lock.map(|_| like(&bucket)),
        principals: Default::default(),
        caller: None,
        key_policy: None,
        bucket,
    }
}

impl BucketState {
    /// Every setting read was refused: the bucket may not be ours at all.
    fn all_denied(&self) -> bool {
        let reasons = [
            self.versioning.as_ref().and_then(|o| o.unknown_reason()),
            self.encryption.as_ref().and_then(|o| o.unknown_reason()),
            self.public_access_block.as_ref().and_then(|o| o.unknown_reason()),
            self.lifecycle.as_ref().and_then(|o| o.unknown_reason()),
            self.policy.as_ref().and_then(|o| o.unknown_reason()),
            self.replication.as_ref().and_then(|o| o.unknown_reason()),
            self.object_lock.as_ref().and_then(|o| o.unknown_reason()),
        ];
        let read = [
            self.versioning.is_some(),
            self.encryption.is_some(),
            self.public_access_block.is_some(),
            self.lifecycle.is_some(),
            self.policy.is_some(),
            self.replication.is_some(),
            self.object_lock.is_some(),
        ];
        read.iter().zip(reasons).filter(|(r, _)| **r).all(|(_, why)| why.is_some_and(|w| w.contains("denied")))
    }
}

/// GetBucketVersioning answers both versioning and MFA delete.
fn reads_versioning(spec: &BucketSpec) -> bool {
    spec.versioning.is_some() || spec.mfa_delete.is_some()
}

/// The bucket policy holds the TLS statement, the access statements and
/// the grant to other accounts' replication roles.
fn reads_policy(spec: &BucketSpec) -> bool {
    spec.require_tls.is_some() || spec.access.is_some() || !spec.replicated_from.is_empty() || !spec.foreign.is_empty()
}

/// The lifecycle is read when the policy names it, and for audit when a
/// backup entry checks its retention against it.
fn reads_lifecycle(spec: &BucketSpec, evidence: bool) -> bool {
    spec.lifecycle.is_some() || (evidence && spec.backups.iter().any(|b| b.retention_days.is_some()))
}

/// Read each setting the policy mentions, concurrently, in `region`; the
/// bucket is taken as present there (`gone` says otherwise).
async fn read_settings(
    aws: &Aws,
    spec: &BucketSpec,
    region: &str,
    evidence: bool,
    gone: &Gone,
) -> Result<BucketState, Fatal> {
    let client = aws.s3(region);
    let name = spec.name.as_str();
    let wanted_key = spec.encryption.as_ref().and_then(|e| e.kms_key.as_deref());
    let (versioning, encryption, public_access_block, lifecycle, policy, replication, key, object_lock) = tokio::join!(
        maybe(reads_versioning(spec), versioning(aws, &client, name, gone)),
        maybe(spec.encryption.is_some(), encryption(aws, &client, name, gone)),
        maybe(spec.public_access_block.is_some(), public_access_block(aws, &client, name, gone)),
        maybe(reads_lifecycle(spec, evidence), lifecycle(aws, &client, name, gone)),
        maybe(reads_policy(spec), policy(aws, &client, name, gone)),
        maybe(spec.replication.is_some(), replication(aws, &client, name, gone)),
        maybe(wanted_key.is_some(), describe_key(aws, region, wanted_key.unwrap_or_default())),
        maybe(spec.object_lock.is_some(), object_lock(aws, &client, name, gone)),
    );
    let (versioning, mfa_delete) = match versioning.transpose()? {
        Some((v, m)) => (spec.versioning.map(|_| v), spec.mfa_delete.map(|_| m)),
        None => (None, None),
    };
    let key = key.transpose()?;
    let undeclared = spec.encryption.as_ref().is_some_and(|e| e.declared_key.is_none());
    let key_policy = match key.as_ref().and_then(|k| k.present()) {
        Some(facts) if evidence && undeclared => Some(key_policy(aws, facts).await?),
        _ => None,
    };
    Ok(BucketState {
        bucket: Observed::Present(region.to_string()),
        versioning,
        encryption: encryption.transpose()?,
        public_access_block: public_access_block.transpose()?,
        mfa_delete,
        lifecycle: lifecycle.transpose()?,
        policy: policy.transpose()?,
        replication: replication.transpose()?,
        prerequisites: Prerequisites::default(),
        key,
        object_lock: object_lock.transpose()?,
        principals: Default::default(),
        caller: None,
        key_policy,
    })
}

/// GetObjectLockConfiguration; Absent: Object Lock is not enabled
/// (ObjectLockConfigurationNotFoundError).
pub async fn object_lock(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    gone: &Gone,
) -> Result<Observed<LockState>, Fatal> {
    match aws
        .call(&ops::GET_OBJECT_LOCK_CONFIGURATION, client.get_object_lock_configuration().bucket(name).send())
        .await
    {
        Ok(out) => Ok(match out.object_lock_configuration() {
            Some(c) if c.object_lock_enabled().is_some_and(|e| e.as_str() == "Enabled") => {
                let d = c.rule().and_then(|r| r.default_retention());
                // Days or Years, never both (moto answers the other as 0).
                let years = d.and_then(|d| d.years()).filter(|y| *y > 0).map(i64::from);
                Observed::Present(LockState {
                    mode: d.and_then(|d| d.mode()).map(|m| m.as_str().to_string()),
                    days: d.and_then(|d| d.days()).filter(|d| *d > 0).map(i64::from).or(years.map(|y| y * 365)),
                    years,
                })
            }
            _ => Observed::Absent,
        }),
        Err(e) => {
            gone.note(&e);
            classify(&e, &["ObjectLockConfigurationNotFoundError", "NoSuchBucket"]).observed()
        }
    }
}

/// DescribeKey of a key id, key ARN, alias name or alias ARN, in the key's
/// own region when the reference is an ARN, else in the bucket's. Absent:
/// no such key or alias.
pub async fn describe_key(aws: &Aws, bucket_region: &str, key: &str) -> Result<Observed<KeyFacts>, Fatal> {
    let region = key.strip_prefix("arn:").and_then(|r| r.split(':').nth(2)).unwrap_or(bucket_region);
    let client = aws.kms(region);
    match aws.call(&ops::DESCRIBE_KEY, client.describe_key().key_id(key).send()).await {
        Ok(out) => Ok(match out.key_metadata() {
            Some(m) => {
                let arn = m.arn().unwrap_or_default().to_string();
                let region = arn.split(':').nth(3).unwrap_or(region).to_string();
                let state = m.key_state().map_or("Unknown", |s| s.as_str()).to_string();
                Observed::Present(KeyFacts { arn, state, region })
            }
            None => Observed::Absent,
        }),
        Err(e) => classify(&e, &["NotFoundException"]).observed(),
    }
}

/// A key's policy (GetKeyPolicy, the only policy name KMS has: default).
async fn key_policy(aws: &Aws, facts: &KeyFacts) -> Result<Observed<serde_json::Value>, Fatal> {
    let client = aws.kms(&facts.region);
    let req = client.get_key_policy().key_id(&facts.arn).policy_name("default");
    match aws.call(&ops::GET_KEY_POLICY, req.send()).await {
        Ok(o) => Ok(match o.policy().map(crate::iamdoc::parse) {
            Some(Ok(v)) => Observed::Present(v),
            Some(Err(e)) => Observed::Unknown { reason: format!("key policy of {}: {e}", facts.arn) },
            None => Observed::Absent,
        }),
        Err(e) => classify(&e, &["NotFoundException"]).observed(),
    }
}

/// Run a read only when the policy mentions the setting.
async fn maybe<T>(wanted: bool, read: impl std::future::Future<Output = T>) -> Option<T> {
    if wanted {
        Some(read.await)
    } else {
        None
    }
}

/// The bucket's region when S3 redirected a request signed for another
/// one: `301 Moved Permanently` (or `400` AuthorizationHeaderMalformed)
/// with `x-amz-bucket-region`. The Rust SDK does not follow these
/// (awslabs/aws-sdk-rust#1052); the region tells which client to use (AWS
/// S3 API reference, "HeadBucket": x-amz-bucket-region).
pub fn redirect_region<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Option<String> {
    let raw = e.raw_response()?;
    if !matches!(raw.status().as_u16(), 301 | 307 | 400) {
        return None;
    }
    raw.headers().get("x-amz-bucket-region").filter(|r| !r.is_empty()).map(str::to_string)
}

/// HeadBucket answered 403 without a body, which is both "these credentials
/// are not valid" and "not allowed to see this bucket". One call that has
/// a body (GetBucketLocation) tells them apart; only this case pays for it.
async fn forbidden(aws: &Aws, client: &aws_sdk_s3::Client, name: &str) -> Result<Observed<String>, Fatal> {
    let denied =
        || Observed::Unknown { reason: "access denied (403) to the bucket; it may belong to another account".into() };
    match aws.call(&ops::GET_BUCKET_LOCATION, client.get_bucket_location().bucket(name).send()).await {
        Ok(_) => Ok(denied()),
        Err(e) => match classify(&e, &[]) {
            ApiError::Fatal(m) => Err(Fatal::api(m)),
            _ => Ok(denied()),
        },
    }
}

/// A setting of a bucket that is absent (or unreadable) is absent (or
/// unreadable) for the same reason.
fn like<T>(bucket: &Observed<String>) -> Observed<T> {
    match bucket {
        Observed::Unknown { reason } => Observed::Unknown { reason: reason.clone() },
        _ => Observed::Absent,
    }
}

type VersioningRead = (Observed<String>, Observed<bool>);

async fn versioning(aws: &Aws, client: &aws_sdk_s3::Client, name: &str, gone: &Gone) -> Result<VersioningRead, Fatal> {
    match aws.call(&ops::GET_BUCKET_VERSIONING, client.get_bucket_versioning().bucket(name).send()).await {
        Ok(out) => {
            let status = match out.status() {
                Some(BucketVersioningStatus::Enabled) => Observed::Present("enabled".into()),
                Some(BucketVersioningStatus::Suspended) => Observed::Present("suspended".into()),
                Some(other) => Observed::Present(other.as_str().to_ascii_lowercase()),
                None => Observed::Absent,
            };
            let mfa = Observed::Present(out.mfa_delete() == Some(&aws_sdk_s3::types::MfaDeleteStatus::Enabled));
            Ok((status, mfa))
        }
        Err(e) => {
            gone.note(&e);
            let u: Observed<String> = classify(&e, &["NoSuchBucket"]).observed()?;
            let m = match &u {
                Observed::Unknown { reason } => Observed::Unknown { reason: reason.clone() },
                _ => Observed::Absent,
            };
            Ok((u, m))
        }
    }
}

async fn lifecycle(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    gone: &Gone,
) -> Result<Observed<LifecycleDoc>, Fatal> {
    read_lifecycle_noting(aws, client, name, Some(gone)).await
}

/// GetBucketLifecycleConfiguration; also used by apply to re-read the
/// document just before replacing it.
pub async fn read_lifecycle(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Observed<LifecycleDoc>, Fatal> {
    read_lifecycle_noting(aws, client, name, None).await
}

async fn read_lifecycle_noting(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    gone: Option<&Gone>,
) -> Result<Observed<LifecycleDoc>, Fatal> {
    match aws
        .call(&ops::GET_BUCKET_LIFECYCLE_CONFIGURATION, client.get_bucket_lifecycle_configuration().bucket(name).send())
        .await
    {
        Ok(out) => Ok(Observed::Present(LifecycleDoc::from_sdk(
            out.rules().to_vec(),
            out.transition_default_minimum_object_size().cloned(),
        ))),
        Err(e) => {
            if let Some(g) = gone {
                g.note(&e);
            }
            classify(&e, &["NoSuchLifecycleConfiguration", "NoSuchBucket"]).observed()
        }
    }
}

async fn policy(aws: &Aws, client: &aws_sdk_s3::Client, name: &str, gone: &Gone) -> Result<Observed<PolicyDoc>, Fatal> {
    read_policy_noting(aws, client, name, Some(gone)).await
}

/// GetBucketPolicy; also used by apply to re-read before writing.
pub async fn read_policy(aws: &Aws, client: &aws_sdk_s3::Client, name: &str) -> Result<Observed<PolicyDoc>, Fatal> {
    read_policy_noting(aws, client, name, None).await
}

async fn read_policy_noting(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    gone: Option<&Gone>,
) -> Result<Observed<PolicyDoc>, Fatal> {
    match aws.call(&ops::GET_BUCKET_POLICY, client.get_bucket_policy().bucket(name).send()).await {
        Ok(out) => match serde_json::from_str(out.policy().unwrap_or("{}")) {
            Ok(json) => Ok(Observed::Present(PolicyDoc { json })),
            Err(e) => Ok(Observed::Unknown { reason: format!("the bucket policy is not valid JSON: {e}") }),
        },
        Err(e) => {
            if let Some(g) = gone {
                g.note(&e);
            }
            classify(&e, &["NoSuchBucketPolicy", "NoSuchBucket"]).observed()
        }
    }
}

async fn encryption(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    gone: &Gone,
) -> Result<Observed<EncryptionState>, Fatal> {
    match aws.call(&ops::GET_BUCKET_ENCRYPTION, client.get_bucket_encryption().bucket(name).send()).await {
        Ok(out) => {
            let rule = out.server_side_encryption_configuration().and_then(|c| c.rules().first());
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
                blocked_encryption_types: rule
                    .blocked_encryption_types()
                    .map(|b| b.encryption_type().iter().map(|t| t.as_str().to_string()).collect()),
            }))
        }
        Err(e) => {
            gone.note(&e);
            classify(&e, &["ServerSideEncryptionConfigurationNotFoundError", "NoSuchBucket"]).observed()
        }
    }
}

async fn public_access_block(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    gone: &Gone,
) -> Result<Observed<PabState>, Fatal> {
    match aws.call(&ops::GET_PUBLIC_ACCESS_BLOCK, client.get_public_access_block().bucket(name).send()).await {
        Ok(out) => Ok(match out.public_access_block_configuration() {
            Some(c) => Observed::Present(PabState {
                block_public_acls: c.block_public_acls().unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                block_public_policy: c.block_public_policy().unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
            }),
            None => Observed::Absent,
        }),
        Err(e) => {
            gone.note(&e);
            classify(&e, &["NoSuchPublicAccessBlockConfiguration", "NoSuchBucket"]).observed()
        }
    }
}

async fn replication(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    gone: &Gone,
) -> Result<Observed<ReplicationDoc>, Fatal> {
    read_replication_noting(aws, client, name, Some(gone)).await
}

/// GetBucketReplication; also used by apply to re-read before writing.
pub async fn read_replication(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
) -> Result<Observed<ReplicationDoc>, Fatal> {
    read_replication_noting(aws, client, name, None).await
}

async fn read_replication_noting(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    gone: Option<&Gone>,
) -> Result<Observed<ReplicationDoc>, Fatal> {
    match aws.call(&ops::GET_BUCKET_REPLICATION, client.get_bucket_replication().bucket(name).send()).await {
        Ok(out) => Ok(match out.replication_configuration() {
            Some(c) => Observed::Present(ReplicationDoc::from_sdk(c)),
            None => Observed::Absent,
        }),
        Err(e) => {
            if let Some(g) = gone {
                g.note(&e);
            }
            classify(&e, &["ReplicationConfigurationNotFoundError", "NoSuchBucket"]).observed()
        }
    }
}

/// A replication role's ARN (GetRole), by name or ARN.
pub async fn role_arn(aws: &Aws, role: &str) -> Result<Observed<String>, Fatal> {
    let name = role.rsplit('/').next().unwrap_or(role);
    match aws.call(&ops::GET_ROLE, aws.iam().get_role().role_name(name).send()).await {
        Ok(out) => Ok(match out.role() {
            Some(r) => Observed::Present(r.arn().to_string()),
            None => Observed::Absent,
        }),
        Err(e) => classify(&e, &["NoSuchEntity"]).observed(),
    }
}

/// A replication destination outside the policy: does it exist, and is it
/// versioned? (HeadBucket, then GetBucketVersioning.)
pub async fn destination(aws: &Aws, region: &str, name: &str) -> Result<Observed<bool>, Fatal> {
    let client = aws.s3(region);
    let head = aws.call(&ops::HEAD_BUCKET, client.head_bucket().bucket(name).send()).await;
    // Found, or redirected to its own region (a DR bucket usually lives in
    // another region than the run's default).
    let home = match head {
        Ok(out) => out.bucket_region().unwrap_or(region).to_string(),
        Err(e) => match redirect_region(&e) {
            Some(r) => r,
            None => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                return match (status, classify(&e, &["NotFound", "NoSuchBucket"])) {
                    (_, ApiError::Fatal(m)) => Err(Fatal::api(m)),
                    (Some(404), _) | (_, ApiError::NotFound(_)) => Ok(Observed::Absent),
                    (_, other) => Ok(Observed::Unknown { reason: other.reason() }),
                };
            }
        },
    };
    let (status, _) = versioning(aws, &aws.s3(&home), name, &Gone::default()).await?;
    Ok(match status {
        Observed::Present(s) => Observed::Present(s == "enabled"),
        Observed::Absent => Observed::Present(false),
        Observed::Unknown { reason } => Observed::Unknown { reason },
    })
}

/// Every bucket these credentials can list (ListBuckets, page by page), for
/// `import --all-buckets`, with its region where S3 says it.
pub async fn list_buckets(aws: &Aws, region: &str) -> Result<Vec<(String, Option<String>)>, Fatal> {
    let client = aws.s3(region);
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = client.list_buckets().set_continuation_token(token.clone());
        match aws.call(&ops::LIST_BUCKETS, req.send()).await {
            Ok(out) => {
                names.extend(out.buckets().iter().filter_map(|b| {
                    b.name().map(|n| (n.to_string(), b.bucket_region().filter(|r| !r.is_empty()).map(str::to_string)))
                }));
                token = out.continuation_token().filter(|t| !t.is_empty()).map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            Err(e) => {
                return Err(Fatal::api(match classify(&e, &[]) {
                    ApiError::Fatal(m) => m,
                    other => format!("cannot list the buckets (s3:ListAllMyBuckets): {}", other.reason()),
                }))
            }
        }
    }
    Ok(names)
}
