//! `postgres:` as written: connection URLs (usually `${VAR}`, never
//! printed) and the durability settings the strategy asks for.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::policy::raw::{NamedMap, Sp};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    /// postgres:// URL of a superuser or a role granted ALTER SYSTEM; use ${VAR}.
    pub url: Sp<String>,
    /// What the database holds, as the strategy classifies it: `pii`,
    /// `confidential`. A `backup:` of a database holding confidential data
    /// should encrypt client-side (`encrypt_to`) or leave those tables'
    /// rows out (`exclude_table_data`); `validate` warns otherwise.
    #[serde(default)]
    pub classification: Option<Sp<Vec<Sp<ClassificationRaw>>>>,
    #[serde(default)]
    pub wal_archiving: Option<Sp<RawWalArchiving>>,
    /// Connect timeout, e.g. 5s (default 5s).
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    /// The strategy's dump job, run by `backup run postgres.NAME`.
    #[serde(default)]
    pub backup: Option<Sp<RawBackupJob>>,
    /// The restore test, run by `restore-drill postgres.NAME` and audited
    /// as RESTORE-DRILL.
    #[serde(default)]
    pub restore_drill: Option<Sp<RawRestoreDrill>>,
    /// Point-in-time recovery: physical backups and the WAL archive in a
    /// pgBackRest repository on S3 (`backup run postgres.NAME.pitr`,
    /// `restore-drill postgres.NAME.pitr`). Sets archiving to pgBackRest's
    /// archive-push; excludes `wal_archiving.archive_command`.
    #[serde(default)]
    pub pitr: Option<Sp<RawPitr>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPitr {
    /// When the job runs: cron's five fields, in UTC (`0 2 * * *`: daily
    /// at 02:00). `schedule render` writes what starts it; its metrics and
    /// `validate` hold the evidence to it.
    #[serde(default)]
    pub schedule: Option<Sp<String>>,
    /// The repository: a bucket of this policy and a prefix in it.
    pub repo: Sp<RawPitrRepo>,
    /// pgBackRest's stanza name for this cluster.
    pub stanza: Sp<String>,
    /// The cluster's data directory on the database host, where the backup
    /// job runs (pgBackRest reads the cluster's files and control file).
    pub data_directory: Sp<String>,
    /// The point-in-time window kept (WAL and the backups it needs), e.g.
    /// 24h (the default).
    #[serde(default)]
    pub window: Option<Sp<String>>,
    /// A full backup at least this often, differential ones in between,
    /// e.g. 7d (the default).
    #[serde(default)]
    pub full_every: Option<Sp<String>>,
    /// The stored `pgbackrest verify` result counts this long, e.g. 7d
    /// (the default): PITR-VERIFY fails on an older one.
    #[serde(default)]
    pub verify_every: Option<Sp<String>>,
    /// Most data a loss may cost, e.g. 15m (the default): archive_timeout
    /// is set to a third of it and PITR-WAL checks it.
    #[serde(default)]
    pub rpo: Option<Sp<String>>,
    /// Encrypt the repository (aes-256-cbc) with this passphrase; use
    /// ${VAR}. Never printed.
    #[serde(default)]
    pub cipher_pass: Option<Sp<String>>,
    /// pgBackRest's process-max for backups and restores (default 4).
    #[serde(default)]
    pub process_max: Option<Sp<u32>>,
    /// The point-in-time restore test.
    #[serde(default)]
    pub drill: Option<Sp<RawPitrDrill>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPitrRepo {
    /// A bucket under s3.buckets.
    pub bucket: Sp<String>,
    /// Key prefix of the repository, e.g. pgbackrest/.
    pub prefix: Sp<String>,
    /// An S3-compatible endpoint (https://HOST[:PORT]) instead of AWS's.
    #[serde(default)]
    pub endpoint: Option<Sp<String>>,
    /// CA bundle (PEM) that signs the endpoint's certificate.
    #[serde(default)]
    pub ca_file: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPitrDrill {
    /// How recent a passing drill must be for the audit, e.g. 30d
    /// (default: the `schedule`'s longest gap and a margin, else 30d).
    #[serde(default)]
    pub every: Option<Sp<String>>,
    /// When the drill runs: cron's five fields, in UTC (`0 4 1 * *`:
    /// monthly on the 1st at 04:00). `schedule render` writes what starts
    /// it; without `every`, a passing drill must be as recent as the
    /// schedule's longest gap and a margin.
    #[serde(default)]
    pub schedule: Option<Sp<String>>,
    /// Longest acceptable restore + replay + checks, e.g. 60m (default).
    #[serde(default)]
    pub rto: Option<Sp<String>>,
    /// Smoke checks on the restored cluster.
    #[serde(default)]
    pub checks: Option<Sp<Vec<Sp<RawDrillCheck>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackupJob {
    /// `s3.BUCKET.backups.ENTRY`: the backups entry the dumps go under.
    pub to: Sp<String>,
    /// `custom` (pg_dump -Fc, the default) or `plain` (SQL, gzip).
    #[serde(default)]
    pub format: Option<Sp<DumpFormatRaw>>,
    /// Tables whose rows never go into the dump (confidential data: API
    /// keys, OAuth tokens): pg_dump's `--exclude-table-data`, patterns as
    /// pg_dump takes them (`oauth_tokens`, `auth.*`, `public.api_key?`).
    /// Their definitions stay; the restore drill checks they exist and are
    /// empty.
    #[serde(default)]
    pub exclude_table_data: Option<Sp<Vec<Sp<String>>>>,
    /// Encrypt each dump client-side with age before it leaves the
    /// process, to these recipients: `age1…` (age-keygen) or SSH public
    /// keys (`ssh-ed25519 …`). Whoever can read the object through S3 and
    /// KMS then still needs one of their identities. The object is
    /// `….dump.age`; `age -d -i KEY` decrypts it.
    #[serde(default)]
    pub encrypt_to: Option<Sp<Vec<Sp<String>>>>,
    /// When the job runs: cron's five fields, in UTC (`0 2 * * *`: daily
    /// at 02:00). `schedule render` writes what starts it; its metrics and
    /// `validate` hold the evidence to it.
    #[serde(default)]
    pub schedule: Option<Sp<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClassificationRaw {
    Pii,
    Confidential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormatRaw {
    Custom,
    Plain,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRestoreDrill {
    /// `s3.BUCKET.backups.ENTRY`: the newest dump of this entry is restored.
    pub from: Sp<String>,
    /// `local` (the default): a throw-away cluster made with initdb in a
    /// temporary directory. Or give `url:` instead.
    #[serde(default)]
    pub target: Option<Sp<DrillTargetRaw>>,
    /// A database to restore into instead (use ${VAR}); it must be empty.
    #[serde(default)]
    pub url: Option<Sp<String>>,
    /// Command run after the restore with DATABASE_URL pointing at the
    /// restored database (e.g. the application's migrations).
    #[serde(default)]
    pub migrate: Option<Sp<String>>,
    /// The age identity file that decrypts the dumps (`${AGE_IDENTITY_FILE}`:
    /// a path; its contents are never printed). Needed when the dumps are
    /// encrypted (`backup.encrypt_to`).
    #[serde(default)]
    pub decrypt_with: Option<Sp<String>>,
    /// pg_restore's parallel jobs (`--jobs`), 1 to 64. Default: the cores
    /// of this machine (at most 8) for the local cluster, 1 for `url:`.
    /// Above 1 the dump is downloaded and verified against its sidecar
    /// before the restore; with 1 it is restored as it downloads.
    #[serde(default)]
    pub jobs: Option<Sp<u32>>,
    /// Smoke checks: SQL whose single value must lie within bounds.
    #[serde(default)]
    pub checks: Option<Sp<Vec<Sp<RawDrillCheck>>>>,
    /// Longest acceptable time to restore (download + restore + migrate +
    /// checks), e.g. 60m (the default).
    #[serde(default)]
    pub rto: Option<Sp<String>>,
    /// How recent a passing drill must be for the audit, e.g. 30d
    /// (default: the `schedule`'s longest gap and a margin, else 30d).
    #[serde(default)]
    pub every: Option<Sp<String>>,
    /// When the drill runs: cron's five fields, in UTC (`0 4 1 * *`:
    /// monthly on the 1st at 04:00). `schedule render` writes what starts
    /// it; without `every`, a passing drill must be as recent as the
    /// schedule's longest gap and a margin.
    #[serde(default)]
    pub schedule: Option<Sp<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DrillTargetRaw {
    Local,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrillCheck {
    pub name: Sp<String>,
    /// A query returning one value (a number).
    pub sql: Sp<String>,
    #[serde(default)]
    pub min: Option<Sp<f64>>,
    #[serde(default)]
    pub max: Option<Sp<f64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWalArchiving {
    #[serde(default)]
    pub wal_level: Option<Sp<WalLevelRaw>>,
    /// "on" or "always" (quote `on`, YAML 1.1 tools read it as a boolean).
    #[serde(default)]
    pub archive_mode: Option<Sp<String>>,
    /// Force a WAL segment switch after this long, e.g. 5min (bounds the RPO).
    #[serde(default)]
    pub archive_timeout: Option<Sp<String>>,
    /// The exact archive_command; absent: any non-empty command (or
    /// archive_library) is accepted but one must be set.
    #[serde(default)]
    pub archive_command: Option<Sp<String>>,
    /// Oldest acceptable last archived segment (the RPO); default 15m.
    #[serde(default)]
    pub rpo: Option<Sp<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WalLevelRaw {
    Minimal,
    Replica,
    Logical,
}

pub type RawPostgresMap = NamedMap<Sp<RawPostgres>>;
