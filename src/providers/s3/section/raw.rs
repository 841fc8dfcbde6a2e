//! `s3:` as written: serde types that keep every value's position.
//! Nothing here judges values; `validate.rs` does.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::policy::raw::{NamedMap, Sp};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    /// Buckets by name. A bucket named here is created if absent and never
    /// deleted by the tool.
    #[serde(default)]
    pub buckets: NamedMap<Sp<RawBucket>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBucket {
    /// The declared account (`accounts:`) it lives in; default the
    /// caller's own.
    #[serde(default)]
    pub account: Option<Sp<String>>,
    /// Region of the bucket; default `aws.region`.
    #[serde(default)]
    pub region: Option<Sp<String>>,
    #[serde(default)]
    pub versioning: Option<Sp<VersioningRaw>>,
    #[serde(default)]
    pub encryption: Option<Sp<RawEncryption>>,
    #[serde(default)]
    pub public_access_block: Option<Sp<RawPublicAccessBlock>>,
    /// Audited only: only the root user with MFA can change it.
    #[serde(default)]
    pub mfa_delete: Option<Sp<MfaDeleteRaw>>,
    /// Deny every request that does not use TLS (a bucket-policy statement
    /// owned by its Sid; other statements are kept).
    #[serde(default)]
    pub require_tls: Option<Sp<bool>>,
    /// Who may put, get and delete objects, whatever their own IAM
    /// policies allow: Deny statements of the bucket policy, owned by Sid
    /// (other statements are kept), on object actions only.
    #[serde(default)]
    pub access: Option<Sp<RawAccess>>,
    /// S3 Object Lock with a default retention: object versions cannot be
    /// deleted or overwritten until it ends. Cannot be turned off once on.
    #[serde(default)]
    pub object_lock: Option<Sp<RawObjectLock>>,
    #[serde(default)]
    pub lifecycle: Option<Sp<RawLifecycle>>,
    #[serde(default)]
    pub replication: Option<Sp<RawReplication>>,
    /// Backup evidence the audit checks (freshness, integrity, retention).
    #[serde(default)]
    pub backups: Option<Sp<Vec<Sp<RawBackup>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    /// The only principals that may put objects: role names (resolved to
    /// their ARNs) or IAM ARNs. Not written: writes are not restricted.
    #[serde(default)]
    pub writers: Option<Sp<Vec<Sp<String>>>>,
    /// The only principals that may get objects; the bucket's replication
    /// role is added. Not written: reads are not restricted.
    #[serde(default)]
    pub readers: Option<Sp<Vec<Sp<String>>>>,
    /// Nobody deletes objects or object versions (lifecycle expiration,
    /// done by S3 itself, still works).
    #[serde(default)]
    pub deny_delete: Option<Sp<bool>>,
    /// Principals exempt from every restriction, for incidents.
    #[serde(default)]
    pub break_glass: Option<Sp<Vec<Sp<String>>>>,
    /// The only principals (besides break glass) that may change the
    /// bucket's policy, lifecycle and Object Lock configuration: the role
    /// that runs `apply` (so that the tool still converges). With it,
    /// governance-mode retention cannot be lifted by rewriting the policy.
    #[serde(default)]
    pub administrators: Option<Sp<Vec<Sp<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawObjectLock {
    /// `governance`: users with s3:BypassGovernanceRetention can still
    /// delete; `compliance`: nobody can, the root user included, until
    /// each version's retention ends.
    pub mode: Sp<LockModeRaw>,
    /// Default retention of each new object version, in days.
    pub days: Sp<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LockModeRaw {
    Governance,
    Compliance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersioningRaw {
    Enabled,
    Suspended,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    pub algorithm: Sp<AlgorithmRaw>,
    /// KMS key id, ARN or alias, or the name of a key under `kms.keys`
    /// (aws:kms and aws:kms:dsse only).
    #[serde(default)]
    pub kms_key: Option<Sp<String>>,
    /// Use an S3 Bucket Key to cut KMS requests (aws:kms only).
    #[serde(default)]
    pub bucket_key: Option<Sp<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum AlgorithmRaw {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "aws:kms")]
    AwsKms,
    #[serde(rename = "aws:kms:dsse")]
    AwsKmsDsse,
}

/// `all`, `none`, or the four flags one by one.
#[derive(Debug, Clone, Copy)]
pub enum RawPublicAccessBlock {
    All,
    None,
    Flags(PabFlagsRaw),
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PabFlagsRaw {
    #[serde(default)]
    pub block_public_acls: Option<bool>,
    #[serde(default)]
    pub ignore_public_acls: Option<bool>,
    #[serde(default)]
    pub block_public_policy: Option<bool>,
    #[serde(default)]
    pub restrict_public_buckets: Option<bool>,
}

impl<'de> Deserialize<'de> for RawPublicAccessBlock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPublicAccessBlock;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`all`, `none`, or a mapping of block_public_acls, ignore_public_acls, block_public_policy, restrict_public_buckets")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "all" => Ok(RawPublicAccessBlock::All),
                    "none" => Ok(RawPublicAccessBlock::None),
                    other => Err(E::unknown_variant(other, &["all", "none"])),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                PabFlagsRaw::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawPublicAccessBlock::Flags)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for RawPublicAccessBlock {
    fn schema_name() -> Cow<'static, str> {
        "PublicAccessBlock".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let flags = generator.subschema_for::<PabFlagsRaw>();
        schemars::json_schema!({
            "description": "`all` blocks every kind of public access, `none` turns every block off, or set the four flags one by one.",
            "oneOf": [ { "enum": ["all", "none"] }, flags ]
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MfaDeleteRaw {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum OwnershipRaw {
    /// Rules the policy does not name are kept.
    #[default]
    Shared,
    /// Rules the policy does not name are removed (needs --allow-destroy).
    Exclusive,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLifecycle {
    #[serde(default)]
    pub ownership: Option<Sp<OwnershipRaw>>,
    #[serde(default)]
    pub rules: Vec<Sp<RawLifecycleRule>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLifecycleRule {
    /// Unique within the bucket, at most 255 characters.
    pub id: Sp<String>,
    #[serde(default)]
    pub enabled: Option<Sp<bool>>,
    /// Key prefix the rule applies to; default: the whole bucket.
    #[serde(default)]
    pub prefix: Option<Sp<String>>,
    /// Object tags the rule applies to (all must match).
    #[serde(default)]
    pub tags: Option<Sp<std::collections::BTreeMap<String, String>>>,
    #[serde(default)]
    pub object_size_greater_than: Option<Sp<i64>>,
    #[serde(default)]
    pub object_size_less_than: Option<Sp<i64>>,
    #[serde(default)]
    pub transitions: Vec<Sp<RawTransition>>,
    #[serde(default)]
    pub expire_after_days: Option<Sp<i64>>,
    #[serde(default)]
    pub noncurrent_transitions: Vec<Sp<RawTransition>>,
    #[serde(default)]
    pub noncurrent_expire_after_days: Option<Sp<i64>>,
    /// Noncurrent versions to keep regardless of age.
    #[serde(default)]
    pub noncurrent_newer_versions: Option<Sp<i64>>,
    #[serde(default)]
    pub abort_incomplete_multipart_days: Option<Sp<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTransition {
    pub days: Sp<i64>,
    pub storage_class: Sp<StorageClassRaw>,
}

/// Storage classes a lifecycle rule can move objects to, in S3's
/// transition order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
pub enum StorageClassRaw {
    #[serde(rename = "STANDARD_IA")]
    StandardIa,
    #[serde(rename = "INTELLIGENT_TIERING")]
    IntelligentTiering,
    #[serde(rename = "ONEZONE_IA")]
    OnezoneIa,
    #[serde(rename = "GLACIER_IR")]
    GlacierIr,
    #[serde(rename = "GLACIER")]
    Glacier,
    #[serde(rename = "DEEP_ARCHIVE")]
    DeepArchive,
}

impl StorageClassRaw {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClassRaw::StandardIa => "STANDARD_IA",
            StorageClassRaw::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClassRaw::OnezoneIa => "ONEZONE_IA",
            StorageClassRaw::GlacierIr => "GLACIER_IR",
            StorageClassRaw::Glacier => "GLACIER",
            StorageClassRaw::DeepArchive => "DEEP_ARCHIVE",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReplication {
    /// IAM role S3 assumes to replicate: a role name (resolved to its ARN)
    /// or a role ARN.
    pub role: Sp<String>,
    #[serde(default)]
    pub ownership: Option<Sp<OwnershipRaw>>,
    pub rules: Vec<Sp<RawReplicationRule>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReplicationRule {
    pub id: Sp<String>,
    /// Higher wins when rules overlap; default: position in the list, from 1.
    #[serde(default)]
    pub priority: Option<Sp<i64>>,
    #[serde(default)]
    pub enabled: Option<Sp<bool>>,
    /// Key prefix to replicate; default: every object.
    #[serde(default)]
    pub prefix: Option<Sp<String>>,
    /// Destination bucket: a name or `arn:aws:s3:::NAME`, in any region.
    pub destination: Sp<String>,
    #[serde(default)]
    pub storage_class: Option<Sp<ReplicaStorageClassRaw>>,
    /// Replicate delete markers too (default: false).
    #[serde(default)]
    pub delete_marker_replication: Option<Sp<bool>>,
    /// KMS key for the replicas in the destination region (a key ARN, an
    /// alias ARN, or the name of a key under `kms.keys`): required when the source bucket encrypts with aws:kms,
    /// since S3 replicates SSE-KMS objects only into a named key.
    #[serde(default)]
    pub replica_kms_key: Option<Sp<String>>,
    /// Replicate objects encrypted with SSE-KMS (default: true when the
    /// source bucket uses aws:kms; S3 skips them unless opted in).
    #[serde(default)]
    pub replicate_kms_encrypted: Option<Sp<bool>>,
    /// Replication Time Control with metrics: `15m`, S3's only value and
    /// the only replication with a time SLA.
    #[serde(default)]
    pub replication_time: Option<Sp<String>>,
}

/// Storage classes a replica can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum ReplicaStorageClassRaw {
    #[serde(rename = "STANDARD")]
    Standard,
    #[serde(rename = "STANDARD_IA")]
    StandardIa,
    #[serde(rename = "ONEZONE_IA")]
    OnezoneIa,
    #[serde(rename = "INTELLIGENT_TIERING")]
    IntelligentTiering,
    #[serde(rename = "GLACIER_IR")]
    GlacierIr,
    #[serde(rename = "GLACIER")]
    Glacier,
    #[serde(rename = "DEEP_ARCHIVE")]
    DeepArchive,
}

impl ReplicaStorageClassRaw {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaStorageClassRaw::Standard => "STANDARD",
            ReplicaStorageClassRaw::StandardIa => "STANDARD_IA",
            ReplicaStorageClassRaw::OnezoneIa => "ONEZONE_IA",
            ReplicaStorageClassRaw::IntelligentTiering => "INTELLIGENT_TIERING",
            ReplicaStorageClassRaw::GlacierIr => "GLACIER_IR",
            ReplicaStorageClassRaw::Glacier => "GLACIER",
            ReplicaStorageClassRaw::DeepArchive => "DEEP_ARCHIVE",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    /// A name for reports, unique in the bucket.
    pub name: Sp<String>,
    /// Where the backups are written, e.g. postgres/.
    pub prefix: Sp<String>,
    /// The newest backup may be at most this old, e.g. 26h or 15m.
    /// Default: from the `schedule:` of the job that writes the entry (its
    /// longest gap between runs, and a twelfth of it, at least 10m).
    #[serde(default)]
    pub max_age: Option<Sp<String>>,
    /// Each backup has KEY.sha256 beside it holding its SHA-256 (hex).
    #[serde(default)]
    pub sha256_sidecar: Option<Sp<bool>>,
    /// How long backups are kept, e.g. 14d: the bucket's lifecycle must
    /// expire this prefix after exactly that many days.
    #[serde(default)]
    pub retention: Option<Sp<String>>,
    /// Keys carry their time, e.g. "%Y%m%d-%H%M%S" after the prefix: the
    /// listing then starts near the end instead of reading everything.
    #[serde(default)]
    pub key_format: Option<Sp<String>>,
    /// e.g. 7d: this entry's copies (its objects, versions and DR replicas)
    /// must be gone within it, instead of `privacy.erasure_within`.
    #[serde(default)]
    pub erasure_within: Option<Sp<String>>,
}
