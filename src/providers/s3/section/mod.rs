//! `s3:` of the policy file, kept with its provider: the validated types
//! (here), the file as written (`raw.rs`, with positions; the JSON Schema's
//! source) and the rules S3 itself would enforce (`validate.rs`). A section
//! is part of the policy layer: it uses `policy/`'s pipeline (diagnostics,
//! `${VAR}`, the `Validator`) and other sections, never the provider's I/O.

pub mod raw;
mod validate;

pub use validate::check_bucket_name;

use std::collections::BTreeMap;

use crate::policy::Encryption;

/// The desired state of one S3 bucket. `None` means the policy does not
/// mention the setting: the tool neither reads nor changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    pub name: String,
    /// The declared account it lives in (`account:`); None: the caller's.
    pub account: Option<String>,

    /// The bucket's own `region`, if written.
    pub region: Option<String>,
    pub versioning: Option<Versioning>,
    pub encryption: Option<Encryption>,
    pub public_access_block: Option<PublicAccessBlock>,
    pub mfa_delete: Option<bool>,
    pub require_tls: Option<bool>,
    pub access: Option<Access>,
    pub object_lock: Option<ObjectLock>,
    pub lifecycle: Option<Lifecycle>,
    pub replication: Option<Replication>,
    pub backups: Vec<BackupSpec>,
    /// The replication roles (ARNs) of sources in other accounts that
    /// replicate into this bucket, which its policy must let write.
    pub replicated_from: Vec<String>,
    /// The other declared accounts (name, id) none of whose principals may
    /// delete, unlock or re-configure this bucket: set on a bucket that
    /// holds backups or DR copies when the policy declares several
    /// accounts.
    pub foreign: Vec<(String, String)>,
    /// Line of the bucket's key in the policy file (reports point there).
    pub line: u64,
    /// Line of each setting's value (`versioning`, `encryption`…), so a
    /// failing control points at what the policy asked for.
    pub lines: BTreeMap<&'static str, u64>,
}

impl BucketSpec {
    /// The region the bucket must live in, given the run's default.
    pub fn region_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.region.as_deref().unwrap_or(default)
    }
}

/// Bucket-side access restriction (`access:`). Principals are role names
/// or IAM ARNs as written; `None`: that kind of access is not restricted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    pub writers: Option<Vec<String>>,
    /// With the bucket's replication role added.
    pub readers: Option<Vec<String>>,
    pub deny_delete: bool,
    pub break_glass: Vec<String>,
    /// The only principals, besides break glass, that may change the
    /// bucket's policy, lifecycle and Object Lock configuration; None: not
    /// restricted.
    pub administrators: Option<Vec<String>>,
    /// Prefixes of pgBackRest repositories in the bucket (`postgres.*.pitr.
    /// repo`), filled from the policy's PostgreSQL entries: pgBackRest runs
    /// as the writers and reads its own files and expires them there.
    pub repos: Vec<String>,
    /// The bucket's account id, when the policy declares accounts: a
    /// reader of another account also needs the bucket policy's Allow.
    pub home: Option<String>,
}

impl Access {
    /// Every principal named, once.
    pub fn principals(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .writers
            .iter()
            .flatten()
            .chain(self.readers.iter().flatten())
            .chain(self.break_glass.iter())
            .chain(self.administrators.iter().flatten())
            .map(String::as_str)
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// S3 Object Lock default retention (`object_lock:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ObjectLock {
    pub mode: LockMode,
    pub days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    /// As S3 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Versioning {
    Enabled,
    Suspended,
}

impl Versioning {
    pub fn as_str(self) -> &'static str {
        match self {
            Versioning::Enabled => "enabled",
            Versioning::Suspended => "suspended",
        }
    }
}

/// The four public-access-block flags; `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessBlock {
    pub block_public_acls: Option<bool>,
    pub ignore_public_acls: Option<bool>,
    pub block_public_policy: Option<bool>,
    pub restrict_public_buckets: Option<bool>,
}

impl PublicAccessBlock {
    pub fn all(on: bool) -> Self {
        PublicAccessBlock {
            block_public_acls: Some(on),
            ignore_public_acls: Some(on),
            block_public_policy: Some(on),
            restrict_public_buckets: Some(on),
        }
    }
}

/// Backup evidence for the audit: never planned or applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSpec {
    pub name: String,
    pub prefix: String,
    pub max_age_secs: u64,
    /// The schedule of the job that writes it (`0 2 * * *`), when the
    /// policy gives one: the freshness control names it.
    pub schedule: Option<String>,
    pub sha256_sidecar: bool,
    pub retention_days: Option<u64>,
    pub key_format: Option<String>,
    pub line: u64,
    /// A backup job encrypts what it writes here client-side (age): the
    /// audit checks the newest backup is an age file.
    pub client_encrypted: bool,
    /// This entry's own `erasure_within`, in seconds, over the policy's.
    pub erasure_within_secs: Option<u64>,
}

/// Who owns the rules of a whole-document setting (lifecycle, replication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ownership {
    /// Rules the policy does not name are kept.
    Shared,
    /// Rules the policy does not name are removed.
    Exclusive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub ownership: Ownership,
    pub rules: Vec<LifecycleRule>,
}

/// One lifecycle rule in canonical form: the policy's rules and the rules
/// read back from S3 both become this, so equal meaning compares equal.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    /// "" applies to the whole bucket.
    pub prefix: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_size_greater_than: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_size_less_than: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after_days: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub noncurrent_transitions: Vec<Transition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_expire_after_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_newer_versions: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_days: Option<i64>,
    /// Parts of a live rule this tool does not model (e.g. expiration on a
    /// date); a rule the policy owns is rewritten when it has any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Transition {
    pub days: i64,
    pub storage_class: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// A role name or a role ARN, as written.
    pub role: String,
    pub ownership: Ownership,
    pub rules: Vec<ReplicationRule>,
}

/// One replication rule in canonical form (policy and live alike).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ReplicationRule {
    pub id: String,
    pub priority: i64,
    pub enabled: bool,
    /// "" replicates every object.
    pub prefix: String,
    /// Destination bucket name (the ARN is derived).
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    pub delete_marker_replication: bool,
    /// Destination KMS key for replicas of SSE-KMS objects (key or alias
    /// ARN). None in a policy rule: not named, whatever is live is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_kms_key: Option<String>,
    /// `SourceSelectionCriteria.SseKmsEncryptedObjects`: replicate objects
    /// encrypted with SSE-KMS (S3 skips them otherwise). None in a policy
    /// rule: not named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicate_kms_encrypted: Option<bool>,
    /// Replication Time Control (with metrics), in minutes: S3's only value
    /// is 15. None: not named (policy) / off (live).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_time_minutes: Option<u32>,
    /// The destination bucket's account, when it is another account's
    /// (`Destination.Account`): derived when the policy declares the
    /// destination in another account; None in a policy rule: not named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_account: Option<String>,
    /// Replicas owned by the destination bucket's owner
    /// (`AccessControlTranslation: Owner=Destination`; AWS S3 user guide,
    /// "Changing the replica owner"). None in a policy rule: not named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_override: Option<bool>,
    /// A live rule's tag filter (`key=value`, sorted). The policy's rules
    /// have none: a tag filter added to a rule the policy owns narrows
    /// what is copied, and is a difference, never a setting kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_tags: Vec<String>,
    /// Parts of a live rule this tool does not model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}
