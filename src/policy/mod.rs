//! The validated policy: what the user wants, with every value checked and
//! every `${VAR}` resolved. Built in two phases (raw.rs → validate.rs) so one
//! run reports every problem in the file, not just the first.

pub mod diag;
pub mod erasure;
pub mod iam;
pub mod iam_raw;
pub mod kms;
pub mod raw;
mod s3;
pub mod store_raw;
pub mod stores;
pub mod validate;
pub mod writer;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use diag::{Code, Diagnostic, Diagnostics, Pos};

/// A loaded, valid policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The path as the user gave it, for messages.
    pub file: String,
    /// `aws.region`, the default for buckets without a region of their own.
    pub default_region: Option<String>,
    pub buckets: Vec<BucketSpec>,
    /// `kms.keys`: customer-managed keys.
    pub kms: Vec<KmsKeySpec>,
    pub iam: Iam,
    pub redis: Vec<RedisSpec>,
    pub postgres: Vec<PostgresSpec>,
    pub waivers: Vec<Waiver>,
    /// `privacy.erasure_within`, in seconds.
    pub erasure_within_secs: Option<u64>,
    /// What `validate` warns about (a statement that grants nothing…);
    /// shown by every command that loads the policy, exit codes unchanged.
    pub warnings: Diagnostics,
}

/// An accepted exception to one control, for a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub control: String,
    /// The address it covers, and everything under it.
    pub address: String,
    pub owner: String,
    pub reason: String,
    /// YYYY-MM-DD; the waiver holds through that day.
    pub expires: String,
}

impl Policy {
    /// Only the resources `--target` needs read (the others are dropped).
    pub fn restricted(&self, t: &crate::model::Targets) -> Policy {
        let mut p = self.clone();
        p.buckets.retain(|b| t.touches(&format!("s3.{}", b.name)));
        p.kms.retain(|k| t.touches(&format!("kms.{}", k.name)));
        p.iam.roles.retain(|r| t.touches(&format!("iam.role.{}", r.name)));
        p.iam.policies.retain(|m| t.touches(&format!("iam.policy.{}", m.name)));
        p.redis.retain(|r| t.touches(&format!("redis.{}", r.name)));
        p.postgres.retain(|r| t.touches(&format!("postgres.{}", r.name)));
        p
    }
}

impl Policy {
    /// Every secret value the policy resolved (connection URLs and their
    /// passwords, commands written with `${VAR}`), for the last sweep over
    /// what the tool writes: whatever path a value takes into a report, it
    /// leaves as `(sensitive value)`.
    pub fn sensitive_values(&self) -> Vec<String> {
        let mut urls: Vec<&str> = self.redis.iter().map(|r| r.url.expose()).collect();
        for p in &self.postgres {
            urls.push(p.url.expose());
            if let Some(u) = p.restore_drill.as_ref().and_then(|d| d.url.as_ref()) {
                urls.push(u.expose());
            }
        }
        let mut out: Vec<String> = Vec::new();
        for u in urls {
            out.push(u.to_string());
            if let Some(password) = url_password(u) {
                out.push(password.to_string());
            }
        }
        out.extend(
            self.postgres.iter().filter(|p| p.archive_command_sensitive).filter_map(|p| p.archive_command.clone()),
        );
        // A short value would mask ordinary words; a real secret is longer.
        out.retain(|v| v.len() >= 4);
        out.sort_by_key(|v| std::cmp::Reverse(v.len()));
        out.dedup();
        out
    }
}

/// The password of a `scheme://user:password@host` URL, if it has one (a
/// user name alone is not a secret).
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then_some(password)
}

/// Replace every occurrence of each of `secrets` in `text`.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), crate::model::SENSITIVE);
        }
    }
    out
}

/// A value that must never be shown: Debug prints a placeholder and there
/// is no Display.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The value, for the one place that connects with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Remove a secret URL and its password from a message, whatever a
/// client library put in it (Redis and PostgreSQL error texts).
pub fn scrub(msg: &str, url: &str) -> String {
    if url.is_empty() {
        return msg.to_string();
    }
    let mut out = msg.replace(url, "(redacted URL)");
    // `redis://TOKEN@host` may carry a password without a user: in an
    // error text, the whole user part is redacted.
    let userinfo = url.split_once("://").and_then(|(_, r)| r.split_once('@')).map(|(u, _)| u);
    // (A user part of a few letters is a user name, not a token: masking
    // it would garble the message, "look(redacted)p".)
    if let Some(secret) = url_password(url).or(userinfo.filter(|u| u.len() >= 4)).filter(|s| !s.is_empty()) {
        out = out.replace(secret, "(redacted)");
    }
    out
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(sensitive value)")
    }
}

/// A Redis instance and the persistence it must have.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSpec {
    pub name: String,
    pub url: Secret,
    pub persistence: Persistence,
    pub timeout_secs: u64,
    /// `backup: {to}`: where `backup run redis.NAME` writes snapshots.
    pub backup: Option<BackupRef>,
    /// `backup.encrypt_to`: age recipients of each snapshot (none: plain).
    pub encrypt_to: Vec<String>,
    pub restore_drill: Option<RedisDrill>,
    /// The audit's look at the keyspace: most keys sampled (0: none) and
    /// longest time, in milliseconds.
    pub sample_keys: u64,
    pub sample_ms: u64,
    pub line: u64,
}

/// `restore_drill:` of a Redis instance.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisDrill {
    pub from: BackupRef,
    /// The age identity file's path (`decrypt_with`).
    pub decrypt_with: Option<String>,
    pub min_keys: Option<i64>,
    pub max_keys: Option<i64>,
    pub rto_secs: u64,
    pub every_secs: u64,
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// A cache: appendonly no, save "".
    None,
    /// AOF with this fsync policy (None: appendonly no) and RDB saves as
    /// (seconds, changes) pairs (empty: save "").
    Durable { aof: Option<String>, rdb: Vec<(u64, u64)> },
}

impl Persistence {
    /// The CONFIG values this persistence means.
    pub fn config(&self) -> Vec<(&'static str, String)> {
        match self {
            Persistence::None => vec![("appendonly", "no".into()), ("save", String::new())],
            Persistence::Durable { aof, rdb } => {
                let mut v = vec![("appendonly", if aof.is_some() { "yes" } else { "no" }.to_string())];
                if let Some(f) = aof {
                    v.push(("appendfsync", f.clone()));
                }
                v.push(("save", rdb.iter().map(|(s, c)| format!("{s} {c}")).collect::<Vec<_>>().join(" ")));
                v
            }
        }
    }
}

/// A `backups:` entry named as `s3.BUCKET.backups.ENTRY`, with what the
/// backup job and the drill need of its bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupRef {
    pub bucket: String,
    pub entry: String,
    pub prefix: String,
    pub key_format: Option<String>,
    /// The bucket's region, if the policy names one (else the default).
    pub region: Option<String>,
    /// The bucket's declared default encryption (the job sets it on each
    /// object explicitly).
    pub encryption: Option<Encryption>,
    /// The bucket's declared Object Lock default retention, in days.
    pub object_lock_days: Option<i64>,
}

impl BackupRef {
    pub fn address(&self) -> String {
        format!("s3.{}.backups.{}", self.bucket, self.entry)
    }
    /// Where drill records go: beside the backups, under `drills/`.
    pub fn drills_prefix(&self, instance: &str) -> String {
        format!("drills/{instance}/")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormat {
    Custom,
    Plain,
}

/// `backup:` of a PostgreSQL instance.
#[derive(Debug, Clone, PartialEq)]
pub struct PgBackup {
    pub to: BackupRef,
    pub format: DumpFormat,
    /// pg_dump `--exclude-table-data` patterns.
    pub exclude_table_data: Vec<String>,
    /// age recipients the dump is encrypted to (none: not encrypted).
    pub encrypt_to: Vec<String>,
}

/// `restore_drill:` of a PostgreSQL instance.
#[derive(Debug, Clone, PartialEq)]
pub struct PgDrill {
    pub from: BackupRef,
    /// The backup job's `exclude_table_data`, when it writes the entry the
    /// drill reads: those tables must come back empty.
    pub excluded: Vec<String>,
    /// The age identity file's path (`decrypt_with`).
    pub decrypt_with: Option<String>,
    /// None: a throw-away local cluster.
    pub url: Option<Secret>,
    /// `jobs`: pg_restore's parallel jobs, when the policy gives them.
    pub jobs: Option<u32>,
    pub migrate: Option<String>,
    pub checks: Vec<DrillCheck>,
    pub rto_secs: u64,
    pub every_secs: u64,
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DrillCheck {
    pub name: String,
    pub sql: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A PostgreSQL server and its WAL-archiving posture.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresSpec {
    pub name: String,
    pub url: Secret,
    pub wal_level: Option<String>,
    pub archive_mode: Option<String>,
    pub archive_timeout_secs: Option<u64>,
    /// Exact command wanted; None: any non-empty command or library.
    pub archive_command: Option<String>,
    /// The command takes a value from the environment (`${VAR}`): it may
    /// hold a secret, so plans show it as `(sensitive value)`.
    pub archive_command_sensitive: bool,
    /// Whether `wal_archiving` is declared at all.
    pub wal_archiving: bool,
    pub rpo_secs: u64,
    pub timeout_secs: u64,
    pub backup: Option<PgBackup>,
    pub restore_drill: Option<PgDrill>,
    /// Point-in-time recovery through pgBackRest.
    pub pitr: Option<Pitr>,
    pub line: u64,
}

/// `pitr:` of a PostgreSQL instance: a pgBackRest repository on S3.
#[derive(Debug, Clone, PartialEq)]
pub struct Pitr {
    /// The repository's bucket and prefix (`pgbackrest/`), as a backups
    /// reference: its region and encryption, and where drill records go.
    pub repo: BackupRef,
    /// `https://HOST[:PORT]` of an S3-compatible store; None: AWS.
    pub endpoint: Option<String>,
    pub ca_file: Option<String>,
    pub stanza: String,
    pub data_directory: String,
    pub window_secs: u64,
    pub full_every_secs: u64,
    /// How long a stored `pgbackrest verify` result counts.
    pub verify_every_secs: u64,
    pub rpo_secs: u64,
    pub cipher_pass: Option<Secret>,
    pub process_max: u32,
    pub drill: Option<PitrDrill>,
    /// The buckets (and their regions) the repository bucket's replication
    /// rules copy the repository into: its DR copies, which the audit
    /// measures.
    pub dr_copies: Vec<(String, Option<String>)>,
    pub line: u64,
}

/// `pitr.drill:`.
#[derive(Debug, Clone, PartialEq)]
pub struct PitrDrill {
    pub checks: Vec<DrillCheck>,
    pub rto_secs: u64,
    pub every_secs: u64,
    pub line: u64,
}

/// The role name of a role reference (a name or an ARN).
pub fn role_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// `6h`, `15m`, `5min`, `30s`, `1d`, or a number of seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86400,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The `iam:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Iam {
    pub roles: Vec<RoleSpec>,
    pub policies: Vec<ManagedPolicySpec>,
}

/// An IAM role. `None`: not mentioned, neither read nor changed.
/// Documents are JSON as written; comparison canonicalises them.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    /// `state: absent`: delete the role.
    pub absent: bool,
    pub path: Option<String>,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub tags: Option<BTreeMap<String, String>>,
    pub trust: Option<serde_json::Value>,
    pub inline_policies: Option<BTreeMap<String, serde_json::Value>>,
    /// ARNs, or names of policies under `iam.policies`.
    pub managed_policies: Option<Vec<String>>,
    pub exclusive: bool,
    pub line: u64,
}

/// A customer-managed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedPolicySpec {
    pub name: String,
    pub path: String,
    pub description: Option<String>,
    pub document: serde_json::Value,
    pub line: u64,
}

/// A customer-managed KMS key (`kms.keys.NAME`), identified by its alias.
/// `None`: not mentioned, neither read nor changed.
#[derive(Debug, Clone, PartialEq)]
pub struct KmsKeySpec {
    pub name: String,
    pub region: Option<String>,
    /// `alias/…`: how the key is found, and how buckets name it.
    pub alias: String,
    pub description: Option<String>,
    pub rotation: Option<bool>,
    pub rotation_period_days: Option<i32>,
    /// The policy's statements (each with a Sid), as a document.
    pub policy: Option<serde_json::Value>,
    pub line: u64,
}

impl KmsKeySpec {
    pub fn region_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.region.as_deref().unwrap_or(default)
    }
}

/// The desired state of one S3 bucket. `None` means the policy does not
/// mention the setting: the tool neither reads nor changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSpec {
    pub name: String,
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

pub use crate::iamdoc::is_service_principal;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "aws:kms")]
    AwsKms,
    #[serde(rename = "aws:kms:dsse")]
    AwsKmsDsse,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Aes256 => "AES256",
            Algorithm::AwsKms => "aws:kms",
            Algorithm::AwsKmsDsse => "aws:kms:dsse",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "AES256" => Some(Algorithm::Aes256),
            "aws:kms" => Some(Algorithm::AwsKms),
            "aws:kms:dsse" => Some(Algorithm::AwsKmsDsse),
            _ => None,
        }
    }
}

/// Default encryption of a bucket, as the policy wants it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Encryption {
    pub algorithm: Algorithm,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    /// The `kms.keys` entry `kms_key` names (then `kms_key` is its alias):
    /// apply writes the key's ARN, resolved when it writes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub declared_key: Option<String>,
    /// `None`: not mentioned, not managed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_key: Option<bool>,
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
    /// A live rule's tag filter (`key=value`, sorted). The policy's rules
    /// have none: a tag filter added to a rule the policy owns narrows
    /// what is copied, and is a difference, never a setting kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_tags: Vec<String>,
    /// Parts of a live rule this tool does not model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmodelled: Vec<String>,
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Invalid(Box<Diagnostics>),
}

/// Read, parse and validate a policy file, resolving `${VAR}` from the
/// process environment; waivers may name only `controls` (the registry's
/// control ids, which the caller knows and policy does not).
pub fn load(path: &Path, controls: &[&str]) -> Result<Policy, LoadError> {
    load_with(path, &|name| std::env::var(name).ok(), Some(controls))
}

/// As [`load`], with the environment given and waiver ids unchecked (tests).
pub fn load_with_env(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Policy, LoadError> {
    load_with(path, env, None)
}

fn load_with(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    controls: Option<&[&str]>,
) -> Result<Policy, LoadError> {
    let file = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return Err(LoadError::Invalid(Box::new(Diagnostics {
                file: file.clone(),
                source: Arc::new(String::new()),
                items: vec![Diagnostic::new(Code::FileUnreadable, format!("cannot read the policy file: {e}"), None)
                    .help("check the path given with -f")],
            })))
        }
    };
    parse_checked(&file, bytes, env, controls)
}

/// Parse and validate policy text that came from `file` (waiver ids
/// unchecked).
pub fn parse(file: &str, bytes: Vec<u8>, env: &dyn Fn(&str) -> Option<String>) -> Result<Policy, LoadError> {
    parse_checked(file, bytes, env, None)
}

/// As [`parse`]; waivers may name only `controls` when given.
pub fn parse_checked(
    file: &str,
    bytes: Vec<u8>,
    env: &dyn Fn(&str) -> Option<String>,
    controls: Option<&[&str]>,
) -> Result<Policy, LoadError> {
    validate::parse_and_validate(file, bytes, env, controls).map_err(|d| LoadError::Invalid(Box::new(d)))
}
