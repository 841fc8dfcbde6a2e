//! `redis:` and `postgres:` as written: connection URLs (usually `${VAR}`,
//! never printed) and the durability settings the strategy asks for.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::raw::{NamedMap, Sp};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// redis:// or rediss:// URL, user and password included; use ${VAR}.
    pub url: Sp<String>,
    pub persistence: Sp<RawPersistence>,
    /// Connect and command timeout, e.g. 5s (default 5s).
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    /// The snapshot job, run by `backup run redis.NAME`: an RDB fetched
    /// over the network (as a replica gets it) into a `backups:` entry.
    #[serde(default)]
    pub backup: Option<Sp<RawRedisBackup>>,
    /// The restore test, run by `restore-drill redis.NAME`: the newest RDB
    /// loaded into a throw-away redis-server, its key count checked.
    #[serde(default)]
    pub restore_drill: Option<Sp<RawRedisDrill>>,
    /// How much of the keyspace the audit looks at to find what the
    /// instance really holds (queues, counters): `{sample: 5000, time: 1s}`
    /// (the defaults). Key names and types only, never a value.
    #[serde(default)]
    pub evaluate: Option<Sp<RawRedisEvaluate>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedisEvaluate {
    /// Most keys sampled with SCAN (default 5000; 0 turns the look off).
    #[serde(default)]
    pub sample: Option<Sp<u64>>,
    /// Longest time the look takes, e.g. 1s (the default).
    #[serde(default)]
    pub time: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedisBackup {
    /// `s3.BUCKET.backups.ENTRY`.
    pub to: Sp<String>,
    /// Encrypt each snapshot client-side with age, to these recipients
    /// (`age1…` or SSH public keys); the object is `….rdb.age`.
    #[serde(default)]
    pub encrypt_to: Option<Sp<Vec<Sp<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedisDrill {
    /// `s3.BUCKET.backups.ENTRY`: its newest snapshot is loaded.
    pub from: Sp<String>,
    /// The age identity file that decrypts encrypted snapshots (a path,
    /// e.g. `${AGE_IDENTITY_FILE}`; its contents are never printed).
    #[serde(default)]
    pub decrypt_with: Option<Sp<String>>,
    /// Fewest keys the restored snapshot must hold (DBSIZE).
    #[serde(default)]
    pub min_keys: Option<Sp<i64>>,
    #[serde(default)]
    pub max_keys: Option<Sp<i64>>,
    /// Longest acceptable time to restore, e.g. 60m (the default).
    #[serde(default)]
    pub rto: Option<Sp<String>>,
    /// How recent a passing drill must be for the audit, e.g. 30d (default).
    #[serde(default)]
    pub every: Option<Sp<String>>,
}

/// `none` (a cache), or the durable mechanisms to turn on.
#[derive(Debug)]
pub enum RawPersistence {
    None,
    Durable(RawDurable),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDurable {
    /// Append-only file; absent: appendonly no.
    #[serde(default)]
    pub aof: Option<Sp<RawAof>>,
    /// RDB snapshot schedule; absent: save "".
    #[serde(default)]
    pub rdb: Option<Sp<Vec<Sp<RawSave>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAof {
    pub fsync: Sp<FsyncRaw>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FsyncRaw {
    Always,
    Everysec,
    No,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSave {
    /// Snapshot after this long (e.g. 6h, 15m, 300s)…
    pub after: Sp<String>,
    /// …if at least this many keys changed.
    pub changes: Sp<i64>,
}

impl<'de> Deserialize<'de> for RawPersistence {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPersistence;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`none`, or a mapping with aof and/or rdb")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPersistence, E> {
                match v {
                    "none" => Ok(RawPersistence::None),
                    other => Err(E::unknown_variant(other, &["none"])),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPersistence, A::Error> {
                RawDurable::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawPersistence::Durable)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RawPersistence {
    fn schema_name() -> Cow<'static, str> {
        "RedisPersistence".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let durable = g.subschema_for::<RawDurable>();
        schemars::json_schema!({
            "description": "`none` for a cache (appendonly no, save \"\"), or aof and/or rdb.",
            "oneOf": [ {"const": "none"}, durable ]
        })
    }
}

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
    /// How recent a passing drill must be for the audit, e.g. 30d (default).
    #[serde(default)]
    pub every: Option<Sp<String>>,
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
    /// How recent a passing drill must be for the audit, e.g. 30d (default).
    #[serde(default)]
    pub every: Option<Sp<String>>,
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

pub type RawRedisMap = NamedMap<Sp<RawRedis>>;
pub type RawPostgresMap = NamedMap<Sp<RawPostgres>>;
