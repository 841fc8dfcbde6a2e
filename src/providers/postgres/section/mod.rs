//! `postgres:` of the policy file, kept with its provider: the validated
//! types (here), the file as written (`raw.rs`) and its rules
//! (`validate.rs`), `pitr:` included. Part of the policy layer. URLs are
//! secrets: no message quotes one.

pub mod raw;
mod validate;

use crate::policy::{BackupRef, Secret};

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
    /// When the dump runs (`schedule:`), if written.
    pub schedule: Option<crate::policy::schedule::Schedule>,
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
    /// When it runs (`schedule:`), if written.
    pub schedule: Option<crate::policy::schedule::Schedule>,
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
    /// When the physical backup runs (`schedule:`), if written.
    pub schedule: Option<crate::policy::schedule::Schedule>,
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
    /// When it runs (`schedule:`), if written.
    pub schedule: Option<crate::policy::schedule::Schedule>,
    pub line: u64,
}
