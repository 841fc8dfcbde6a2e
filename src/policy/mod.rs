//! The validated policy: what the user wants, with every value checked and
//! every `${VAR}` resolved. Built in two phases (raw.rs → validate.rs) so one
//! run reports every problem in the file, not just the first.
//!
//! This module is the pipeline: loading, diagnostics, `${VAR}`, the IAM
//! policy language (`document.rs`), the rules across systems, the writer
//! and erasure horizons. Each system's section — its validated types, the
//! file as written and its rules — lives with its provider
//! (`providers/NAME/section`); `Policy` holds what they produced.

pub mod accounts;
pub mod diag;
pub mod document;
pub mod erasure;
pub mod raw;
pub mod schedule;
pub mod validate;
pub mod writer;

use std::path::Path;
use std::sync::Arc;

pub use accounts::Account;
pub use diag::{Code, Diagnostic, Diagnostics, Pos};

use sections::iam::Iam;
use sections::kms::KmsKeySpec;
use sections::postgres::PostgresSpec;
use sections::redis::RedisSpec;
use sections::s3::BucketSpec;

/// The systems' sections of the policy file, each kept with its provider
/// and part of the policy layer: the one place the pipeline names them.
pub mod sections {
    pub use crate::providers::iam::section as iam;
    pub use crate::providers::kms::section as kms;
    pub use crate::providers::postgres::section as postgres;
    pub use crate::providers::redis::section as redis;
    pub use crate::providers::s3::section as s3;
}

/// A loaded, valid policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The path as the user gave it, for messages.
    pub file: String,
    /// `aws.region`, the default for buckets without a region of their own.
    pub default_region: Option<String>,
    /// `accounts:`, the AWS accounts resources may name (`account:`).
    pub accounts: Vec<Account>,
    pub buckets: Vec<BucketSpec>,
    /// Buckets the policy declares in other accounts than the part of a
    /// run this copy is for (`Provider::in_account`): what a replication
    /// rule may name across accounts, never read or changed from here.
    pub elsewhere: Vec<BucketSpec>,
    /// The copies of the backups this part of a run holds, judged over the
    /// whole policy (a DR copy in the backup account is a copy of a source
    /// in another): set by `providers::in_account`; empty: compute them
    /// from this policy (`erasure::copies`).
    pub copies: Vec<erasure::Copy>,
    /// `kms.keys`: customer-managed keys.
    pub kms: Vec<KmsKeySpec>,
    pub iam: Iam,
    pub redis: Vec<RedisSpec>,
    pub postgres: Vec<PostgresSpec>,
    pub waivers: Vec<Waiver>,
    /// `privacy.erasure_within`, in seconds.
    pub erasure_within_secs: Option<u64>,
    /// `audit.schedule`: when the scheduled audit runs.
    pub audit_schedule: Option<schedule::Schedule>,
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

/// The password of a `scheme://user:password@host` URL, if it has one (a
/// user name alone is not a secret).
pub fn url_password(url: &str) -> Option<&str> {
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

pub use crate::iamdoc::is_service_principal;

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

/// As [`load`], a variable the process environment lacks read from
/// `file` (`NAME=value` lines, as systemd's `EnvironmentFile=` and a
/// sourced shell file take them) when it can be read.
pub fn load_with_file(path: &Path, file: &Path, controls: &[&str]) -> Result<Policy, LoadError> {
    let vars = std::fs::read_to_string(file).map(|t| env_file(&t)).unwrap_or_default();
    let env = |name: &str| std::env::var(name).ok().or_else(|| vars.get(name).cloned());
    load_with(path, &env, Some(controls))
}

/// The variables of an environment file: `NAME=value` lines, `export `
/// and quotes (single or double) allowed, `#` lines comments.
fn env_file(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = [('"', '"'), ('\'', '\'')]
                .iter()
                .find_map(|(a, b)| v.strip_prefix(*a).and_then(|v| v.strip_suffix(*b)))
                .unwrap_or(v);
            (k.trim().to_string(), unquoted.to_string())
        })
        .collect()
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

#[cfg(test)]
mod tests {
    #[test]
    fn an_environment_file_reads_as_systemd_and_a_shell_would() {
        let vars = super::env_file("# secrets\nPRIMARY_URL=scheme://u:p@db/app\nexport QUEUE_URL='scheme://h:6379/0'\n\nQ=\"a b\"\nnot a line\n");
        assert_eq!(vars.get("PRIMARY_URL").map(String::as_str), Some("scheme://u:p@db/app"));
        assert_eq!(vars.get("QUEUE_URL").map(String::as_str), Some("scheme://h:6379/0"));
        assert_eq!(vars.get("Q").map(String::as_str), Some("a b"));
        assert_eq!(vars.len(), 3);
    }
}
