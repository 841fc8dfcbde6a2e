//! `redis:` of the policy file, kept with its provider (part of the policy
//! layer): the validated types, the file as written (with positions; the
//! JSON Schema's source) and its rules. URLs are secrets: no message quotes
//! one.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::policy::diag::{Code, Diagnostic};
use crate::policy::raw::{NamedMap, Sp};
use crate::policy::validate::Validator;
use crate::policy::{BackupRef, Secret};
use crate::providers::s3::section::BucketSpec;

/// A Redis instance and the persistence it must have.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSpec {
    pub name: String,
    pub url: Secret,
    pub persistence: Persistence,
    pub timeout_secs: u64,
    /// `backup: {to}`: where `backup run redis.NAME` writes snapshots.
    pub backup: Option<BackupRef>,
    /// When `backup run redis.NAME` runs (`backup.schedule`), if written.
    pub backup_schedule: Option<crate::policy::schedule::Schedule>,
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
    /// When it runs (`schedule:`), if written.
    pub schedule: Option<crate::policy::schedule::Schedule>,
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
    /// When the job runs: cron's five fields, in UTC (`0 2 * * *`: daily
    /// at 02:00). `schedule render` writes what starts it; its metrics and
    /// `validate` hold the evidence to it.
    #[serde(default)]
    pub schedule: Option<Sp<String>>,
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

pub type RawRedisMap = NamedMap<Sp<RawRedis>>;

impl Validator<'_> {
    pub(crate) fn redis(&mut self, map: &Sp<RawRedisMap>, buckets: &[BucketSpec]) -> Vec<RedisSpec> {
        let mut out = Vec::new();
        for (name, r) in &map.value().0 {
            let rv = r.value();
            let url = self.url(&rv.url, &["redis", "rediss"]);
            let timeout = rv.timeout.as_ref().map_or(Some(5), |t| self.duration(t, "timeout"));
            let persistence = self.persistence(&rv.persistence);
            let backup = rv.backup.as_ref().and_then(|b| self.backup_ref(&b.value().to, buckets));
            let backup_schedule = rv
                .backup
                .as_ref()
                .and_then(|b| self.job_schedule(b.value().schedule.as_ref(), backup.as_ref(), buckets));
            let encrypt_to =
                rv.backup.as_ref().map(|b| self.recipients(b.value().encrypt_to.as_ref())).unwrap_or_default();
            let restore_drill = rv.restore_drill.as_ref().and_then(|d| {
                let raw = d.value();
                let from = self.backup_ref(&raw.from, buckets);
                let decrypt_with = raw.decrypt_with.as_ref().and_then(|p| self.expand(p));
                let (min_keys, max_keys) =
                    (raw.min_keys.as_ref().map(|v| *v.value()), raw.max_keys.as_ref().map(|v| *v.value()));
                if let (Some(lo), Some(hi)) = (min_keys, max_keys) {
                    if lo > hi {
                        self.diags.push(
                            Diagnostic::new(
                                Code::ValueOutOfRange,
                                format!("min_keys {lo} is above max_keys {hi}"),
                                Some(d.pos()),
                            )
                            .help("write min_keys ≤ max_keys"),
                        );
                    }
                }
                let rto = raw.rto.as_ref().map_or(Some(3600), |r| self.duration(r, "rto"));
                let (every, schedule) = self.drill_every(
                    raw.every.as_ref(),
                    raw.schedule.as_ref(),
                    &format!("redis.{}'s last passing drill", name.value()),
                );
                Some(RedisDrill {
                    from: from?,
                    decrypt_with,
                    min_keys,
                    max_keys,
                    rto_secs: rto?,
                    every_secs: every?,
                    schedule,
                    line: d.pos().line,
                })
            });
            let eval = rv.evaluate.as_ref().map(|e| e.value());
            let sample_keys = eval.and_then(|e| e.sample.as_ref()).map_or(5000, |s| *s.value());
            let sample_secs = eval.and_then(|e| e.time.as_ref()).map_or(Some(1), |t| self.duration(t, "time"));
            if let (Some(url), Some(persistence), Some(timeout_secs), Some(sample_secs)) =
                (url, persistence, timeout, sample_secs)
            {
                out.push(RedisSpec {
                    name: name.value().clone(),
                    url,
                    persistence,
                    timeout_secs,
                    backup,
                    backup_schedule,
                    encrypt_to,
                    restore_drill,
                    sample_keys,
                    sample_ms: sample_secs * 1000,
                    line: name.pos().line,
                });
            }
        }
        out
    }

    /// `persistence:` of a Redis instance: `none`, or AOF and/or RDB
    /// snapshots, each checked.
    fn persistence(&mut self, raw: &Sp<RawPersistence>) -> Option<Persistence> {
        match raw.value() {
            RawPersistence::None => Some(Persistence::None),
            RawPersistence::Durable(d) => {
                let aof = d.aof.as_ref().map(|a| {
                    match a.value().fsync.value() {
                        FsyncRaw::Always => "always",
                        FsyncRaw::Everysec => "everysec",
                        FsyncRaw::No => "no",
                    }
                    .to_string()
                });
                let mut rdb = Vec::new();
                let mut ok = true;
                for save in d.rdb.as_ref().map(|r| r.value().as_slice()).unwrap_or_default() {
                    let after = self.duration(&save.value().after, "rdb after");
                    let changes = *save.value().changes.value();
                    if changes < 1 {
                        self.diags.push(
                            Diagnostic::new(
                                Code::ValueOutOfRange,
                                format!("changes is {changes}, it must be at least 1"),
                                Some(save.value().changes.pos()),
                            )
                            .help("the number of key changes that triggers the snapshot, e.g. 1"),
                        );
                        ok = false;
                    }
                    match after {
                        Some(a) if ok => rdb.push((a, changes as u64)),
                        _ => ok = false,
                    }
                }
                if aof.is_none() && d.rdb.is_none() {
                    self.diags.push(
                    Diagnostic::new(Code::RuleDoesNothing, "persistence names neither aof nor rdb", Some(raw.pos()))
                        .help("write `persistence: none` for a cache, or add aof: {fsync: everysec} and/or rdb: [{after: 6h, changes: 1}]"),
                );
                    ok = false;
                }
                ok.then_some(Persistence::Durable { aof, rdb })
            }
        }
    }
}
