//! Validation of `redis:` and `postgres:`. URLs are secrets: no message
//! quotes one.

use super::diag::{Code, Diagnostic};
use super::raw::Sp;
use super::raw::{RawS3, StorageClassRaw};
use super::store_raw::{
    DumpFormatRaw, FsyncRaw, RawBackupJob, RawDrillCheck, RawPersistence, RawPitr, RawPitrRepo, RawPostgres,
    RawPostgresMap, RawRedisMap, RawRestoreDrill, WalLevelRaw,
};
use super::validate::Validator;
use super::{
    parse_duration, BackupRef, BucketSpec, DrillCheck, DumpFormat, Persistence, PgBackup, PgDrill, Pitr, PitrDrill,
    PostgresSpec, RedisDrill, RedisSpec, Secret,
};

impl Validator<'_> {
    pub(super) fn duration(&mut self, d: &Sp<String>, what: &str) -> Option<u64> {
        match parse_duration(d.value()) {
            Some(0) | None => {
                self.diags.push(
                    Diagnostic::new(
                        Code::DurationInvalid,
                        format!("`{}` is not a duration for {what}", d.value()),
                        Some(d.pos()),
                    )
                    .help("write a positive number with a unit: 30s, 15m, 5min, 6h, 1d"),
                );
                None
            }
            Some(s) => Some(s),
        }
    }

    /// A count of parallel workers, 1 to 64: None (with a diagnostic at
    /// its position) outside, Some(None) when not given.
    fn parallel(&mut self, n: Option<&Sp<u32>>, name: &str, help: &str) -> Option<Option<u32>> {
        match n {
            Some(n) if !(1..=64).contains(n.value()) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::ValueOutOfRange,
                        format!("{name} {} is not between 1 and 64", n.value()),
                        Some(n.pos()),
                    )
                    .help(help.to_string()),
                );
                None
            }
            n => Some(n.map(|n| *n.value())),
        }
    }

    fn url(&mut self, u: &Sp<String>, schemes: &[&str]) -> Option<Secret> {
        let url = self.expand(u)?;
        let ok = schemes.iter().any(|s| url.starts_with(&format!("{s}://")));
        if !ok {
            // Never quote the value: it may hold a password.
            self.diags.push(
                Diagnostic::new(
                    Code::UrlInvalid,
                    format!(
                        "the URL must start with {}",
                        schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ")
                    ),
                    Some(u.pos()),
                )
                .help("write the URL in an environment variable and refer to it as ${VAR}"),
            );
            return None;
        }
        Some(Secret::new(url))
    }

    pub(super) fn redis(&mut self, map: &Sp<RawRedisMap>, buckets: &[BucketSpec]) -> Vec<RedisSpec> {
        let mut out = Vec::new();
        for (name, r) in &map.value().0 {
            let rv = r.value();
            let url = self.url(&rv.url, &["redis", "rediss"]);
            let timeout = rv.timeout.as_ref().map_or(Some(5), |t| self.duration(t, "timeout"));
            let persistence = self.persistence(&rv.persistence);
            let backup = rv.backup.as_ref().and_then(|b| self.backup_ref(&b.value().to, buckets));
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
                let every = raw.every.as_ref().map_or(Some(30 * 86400), |e| self.duration(e, "every"));
                Some(RedisDrill {
                    from: from?,
                    decrypt_with,
                    min_keys,
                    max_keys,
                    rto_secs: rto?,
                    every_secs: every?,
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

    /// `s3.BUCKET.backups.ENTRY`: a `backups:` entry the policy declares
    /// (bucket names may hold dots: the last `.backups.` splits).
    fn backup_ref(&mut self, r: &Sp<String>, buckets: &[BucketSpec]) -> Option<BackupRef> {
        let text = r.value();
        let found = text.strip_prefix("s3.").and_then(|rest| rest.rsplit_once(".backups.")).and_then(|(b, e)| {
            let bucket = buckets.iter().find(|x| x.name == b)?;
            let entry = bucket.backups.iter().find(|x| x.name == e)?;
            Some(BackupRef {
                bucket: bucket.name.clone(),
                entry: entry.name.clone(),
                prefix: entry.prefix.clone(),
                key_format: entry.key_format.clone(),
                region: bucket.region.clone(),
                encryption: bucket.encryption.clone(),
                object_lock_days: bucket.object_lock.as_ref().map(|l| l.days),
            })
        });
        if found.is_none() {
            let known: Vec<String> = buckets
                .iter()
                .flat_map(|b| b.backups.iter().map(move |e| format!("s3.{}.backups.{}", b.name, e.name)))
                .collect();
            self.diags.push(
                Diagnostic::new(
                    Code::BackupRefInvalid,
                    format!("`{text}` is not a backups entry of this policy"),
                    Some(r.pos()),
                )
                .help(if known.is_empty() {
                    "declare the entry under s3.buckets.BUCKET.backups and name it s3.BUCKET.backups.ENTRY".to_string()
                } else {
                    format!("one of: {}", known.join(", "))
                }),
            );
        }
        found
    }

    fn pg_backup(&mut self, b: &Sp<RawBackupJob>, buckets: &[BucketSpec]) -> Option<PgBackup> {
        let raw = b.value();
        let to = self.backup_ref(&raw.to, buckets)?;
        let format = match raw.format.as_ref().map(|f| *f.value()) {
            Some(DumpFormatRaw::Plain) => DumpFormat::Plain,
            _ => DumpFormat::Custom,
        };
        let mut exclude_table_data = Vec::new();
        for p in raw.exclude_table_data.iter().flat_map(|l| l.value().iter()) {
            let Some(v) = self.expand(p) else { continue };
            let ok = !v.trim().is_empty()
                && !v.starts_with('-')
                && !v.chars().any(|c| c.is_control())
                && v.matches('"').count() % 2 == 0;
            if !ok {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, format!("`{v}` is not a table pattern"), Some(p.pos()))
                        .help("write a table name or a pg_dump pattern: oauth_tokens, auth.*, \"CamelCase\""),
                );
            } else if !exclude_table_data.contains(&v) {
                exclude_table_data.push(v);
            }
        }
        let encrypt_to = self.recipients(raw.encrypt_to.as_ref());
        Some(PgBackup { to, format, exclude_table_data, encrypt_to })
    }

    /// `encrypt_to:`: age recipients (X25519 `age1…` or SSH public keys),
    /// each parsed as the `age` crate parses it.
    fn recipients(&mut self, list: Option<&Sp<Vec<Sp<String>>>>) -> Vec<String> {
        let mut out = Vec::new();
        for r in list.iter().flat_map(|l| l.value().iter()) {
            let Some(v) = self.expand(r) else { continue };
            let v = v.trim().to_string();
            use std::str::FromStr;
            let ok = age::x25519::Recipient::from_str(&v).is_ok() || age::ssh::Recipient::from_str(&v).is_ok();
            if !ok {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, format!("`{v}` is not an age recipient"), Some(r.pos()))
                        .help("write an age recipient (age1…, as age-keygen prints it) or an SSH public key (ssh-ed25519 AAAA…)"),
                );
            } else if !out.contains(&v) {
                out.push(v);
            }
        }
        if let Some(l) = list.filter(|l| l.value().is_empty()) {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, "`encrypt_to` names no recipient", Some(l.pos()))
                    .help("name at least one recipient, or leave `encrypt_to` out"),
            );
        }
        out
    }

    fn pg_drill(&mut self, d: &Sp<RawRestoreDrill>, buckets: &[BucketSpec]) -> Option<PgDrill> {
        let raw = d.value();
        let from = self.backup_ref(&raw.from, buckets);
        if let (Some(t), Some(u)) = (&raw.target, &raw.url) {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, "`target: local` and `url:` exclude each other", Some(u.pos()))
                    .help(format!("keep one: the drill restores into a local throw-away cluster (line {}) or into the database at url", t.pos().line)),
            );
        }
        let url = match &raw.url {
            Some(u) => Some(self.url(u, &["postgres", "postgresql"])?),
            None => None,
        };
        let migrate = raw.migrate.as_ref().and_then(|m| self.expand(m));
        let rto = raw.rto.as_ref().map_or(Some(3600), |r| self.duration(r, "rto"));
        let every = raw.every.as_ref().map_or(Some(30 * 86400), |e| self.duration(e, "every"));
        let checks = self.checks(raw.checks.as_ref());
        let decrypt_with = raw.decrypt_with.as_ref().and_then(|p| self.expand(p));
        let jobs = self.parallel(
            raw.jobs.as_ref(),
            "jobs",
            "give pg_restore's parallel jobs, e.g. the restoring host's cores; or leave `jobs` out",
        )?;
        Some(PgDrill {
            from: from?,
            excluded: Vec::new(),
            decrypt_with,
            url,
            jobs,
            migrate,
            checks,
            rto_secs: rto?,
            every_secs: every?,
            line: d.pos().line,
        })
    }

    /// A drill's smoke checks: each bounded (min or max) and with SQL.
    fn checks(&mut self, raw: Option<&Sp<Vec<Sp<RawDrillCheck>>>>) -> Vec<DrillCheck> {
        let mut checks = Vec::new();
        for c in raw.iter().flat_map(|c| c.value().iter()) {
            let cv = c.value();
            let (min, max) = (cv.min.as_ref().map(|m| *m.value()), cv.max.as_ref().map(|m| *m.value()));
            if let (Some(lo), Some(hi)) = (min, max) {
                if lo > hi {
                    self.diags.push(
                        Diagnostic::new(
                            Code::ValueOutOfRange,
                            format!("check `{}`: min {lo} is above max {hi}", cv.name.value()),
                            Some(c.pos()),
                        )
                        .help("write min ≤ max"),
                    );
                }
            }
            if min.is_none() && max.is_none() {
                self.diags.push(
                    Diagnostic::new(
                        Code::MissingField,
                        format!("check `{}` has neither min nor max: it could never fail", cv.name.value()),
                        Some(c.pos()),
                    )
                    .help("add `min: 1` (rows present) or a max"),
                );
            }
            if cv.sql.value().trim().is_empty() {
                self.diags.push(
                    Diagnostic::new(
                        Code::MissingField,
                        format!("check `{}` has no SQL", cv.name.value()),
                        Some(cv.sql.pos()),
                    )
                    .help("write a query returning one number, e.g. select count(*) from users"),
                );
            }
            checks.push(DrillCheck { name: cv.name.value().clone(), sql: cv.sql.value().clone(), min, max });
        }
        checks
    }

    /// `pitr:`: the repository in a bucket of this policy, whose lifecycle
    /// must leave pgBackRest's files alone, and windows that fit.
    /// The repository's prefix and bucket: a folder, in a bucket of this
    /// policy that lets pgBackRest expire its files.
    fn pitr_bucket<'b>(
        &mut self,
        repo: &RawPitrRepo,
        prefix: &str,
        buckets: &'b [BucketSpec],
    ) -> Option<&'b BucketSpec> {
        if prefix.is_empty() || !prefix.ends_with('/') || prefix.contains("//") {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("repository prefix `{}` must be a folder ending in /", repo.prefix.value()),
                    Some(repo.prefix.pos()),
                )
                .help("write e.g. prefix: pgbackrest/ (pgBackRest keeps archive/ and backup/ under it)"),
            );
        }
        let bucket = buckets.iter().find(|b| b.name == *repo.bucket.value());
        if bucket.is_none() {
            let known: Vec<&str> = buckets.iter().map(|b| b.name.as_str()).collect();
            self.diags.push(
                Diagnostic::new(
                    Code::BackupRefInvalid,
                    format!("repository bucket `{}` is not a bucket of this policy", repo.bucket.value()),
                    Some(repo.bucket.pos()),
                )
                .help(if known.is_empty() {
                    "declare it under s3.buckets: the policy then keeps it versioned, encrypted and private".to_string()
                } else {
                    format!("one of: {}", known.join(", "))
                }),
            );
        }
        // pgBackRest expires its own files and rewrites few of them:
        // archive.info and backup.info are touched rarely, so an age-based
        // expiry of current versions removes them and the repository cannot
        // be read (pgbackrest/pgbackrest#1853, #2258); a GLACIER or
        // DEEP_ARCHIVE object cannot be read back by a restore without a
        // RestoreObject first (S3 user guide, "Restoring an archived
        // object"). Noncurrent-version expiration is right here: pgBackRest's
        // deletes leave noncurrent versions on a versioned bucket.
        // pgBackRest expires its own files: under a bucket that denies
        // deletes, the role that runs it (the writers) must be named.
        if bucket.and_then(|b| b.access.as_ref()).is_some_and(|a| a.deny_delete && a.writers.is_none()) {
            self.diags.push(
            Diagnostic::new(
                Code::AccessLocksOut,
                format!(
                    "bucket `{}` denies deletes but names no `access.writers`: pgBackRest, which expires its repository there, would be denied",
                    repo.bucket.value()
                ),
                Some(repo.bucket.pos()),
            )
            .help("name the role that runs pgBackRest (and the other backup jobs) in the bucket's `access.writers`"),
        );
        }
        bucket
    }

    /// No lifecycle rule of the repository's bucket expires current objects
    /// under the repository, or moves them to an archive storage class.
    fn pitr_lifecycle(&mut self, repo: &RawPitrRepo, prefix: &str, s3: Option<&Sp<RawS3>>) {
        let raw_bucket = s3.and_then(|s| s.value().buckets.0.iter().find(|(n, _)| n.value() == repo.bucket.value()));
        let rules = raw_bucket.and_then(|(_, b)| b.value().lifecycle.as_ref()).map(|l| &l.value().rules);
        for rule in rules.into_iter().flatten() {
            let r = rule.value();
            let rp = r.prefix.as_ref().map(|p| p.value().as_str()).unwrap_or("");
            if !(prefix.starts_with(rp) || rp.starts_with(prefix)) {
                continue;
            }
            let cold = r.transitions.iter().find(|t| {
                matches!(t.value().storage_class.value(), StorageClassRaw::Glacier | StorageClassRaw::DeepArchive)
            });
            if let Some(days) = &r.expire_after_days {
                self.diags.push(
                Diagnostic::new(
                    Code::RepositoryUnsafe,
                    format!(
                        "lifecycle rule `{}` expires current objects under `{prefix}`, the pgBackRest repository of this policy",
                        r.id.value()
                    ),
                    Some(days.pos()),
                )
                .help("pgBackRest expires its own files (retention from `window`/`full_every`) and rewrites archive.info rarely: an age-based expiry removes it and the repository cannot be restored from; give the rule a prefix that leaves the repository out, and expire only noncurrent versions there"),
            );
            }
            if let Some(t) = cold {
                self.diags.push(
                Diagnostic::new(
                    Code::RepositoryUnsafe,
                    format!(
                        "lifecycle rule `{}` moves objects under `{prefix}`, the pgBackRest repository, to an archive storage class",
                        r.id.value()
                    ),
                    Some(t.pos()),
                )
                .help("a restore cannot read GLACIER or DEEP_ARCHIVE objects; leave the repository in STANDARD or STANDARD_IA"),
            );
            }
        }
    }

    /// `endpoint:`: `https://HOST[:PORT]` (pgBackRest speaks HTTPS to S3).
    fn pitr_endpoint(&mut self, repo: &RawPitrRepo) -> Option<String> {
        repo.endpoint.as_ref().and_then(|e| {
            let v = self.expand(e)?;
            let host = v.strip_prefix("https://").map(|h| h.trim_end_matches('/'));
            match host {
                Some(h) if !h.is_empty() && !h.contains('/') => Some(v.trim_end_matches('/').to_string()),
                _ => {
                    self.diags.push(
                        Diagnostic::new(
                            Code::UrlInvalid,
                            "the repository endpoint must be https://HOST[:PORT]",
                            Some(e.pos()),
                        )
                        .help("pgBackRest speaks HTTPS to S3; leave `endpoint` out to use AWS"),
                    );
                    None
                }
            }
        })
    }

    fn pitr(&mut self, p: &Sp<RawPitr>, buckets: &[BucketSpec], s3: Option<&Sp<RawS3>>) -> Option<Pitr> {
        let raw = p.value();
        let repo = raw.repo.value();
        let prefix = repo.prefix.value().trim_start_matches('/').to_string();
        let bucket = self.pitr_bucket(repo, &prefix, buckets);
        self.pitr_lifecycle(repo, &prefix, s3);
        let endpoint = self.pitr_endpoint(repo);
        let ca_file = repo.ca_file.as_ref().and_then(|c| self.expand(c));
        let window = raw.window.as_ref().map_or(Some(86400), |w| self.duration(w, "window"));
        let full_every = raw.full_every.as_ref().map_or(Some(7 * 86400), |f| self.duration(f, "full_every"));
        let rpo = raw.rpo.as_ref().map_or(Some(900), |r| self.duration(r, "rpo"));
        let verify_every = raw.verify_every.as_ref().map_or(Some(7 * 86400), |v| self.duration(v, "verify_every"));
        // Time-based retention keeps the full backup the window reaches
        // back to, with everything after it: with full backups less often
        // than the window, the repository holds up to full_every + window
        // (what a deleted row survives in), not the window.
        if let (Some(w), Some(f), Some(written)) = (window, full_every, raw.full_every.as_ref()) {
            if w < f {
                let pos = written.pos();
                self.warnings.push(
                    Diagnostic::warning(
                        Code::ValueOutOfRange,
                        format!(
                            "full_every ({f} s) is longer than the window ({w} s): the repository keeps up to {} s of backups and WAL",
                            f + w
                        ),
                        Some(pos),
                    )
                    .help("pgBackRest keeps the full backup the window reaches back to and all WAL after it; a full backup at least once per window keeps the repository near the window"),
                );
            }
        }
        if let Some(r) = rpo.filter(|r| *r < 3) {
            self.diags.push(
                Diagnostic::new(
                    Code::ValueOutOfRange,
                    format!("rpo of {r} s is too short"),
                    raw.rpo.as_ref().map(|r| r.pos()),
                )
                .help("archive_timeout is a third of the RPO and PostgreSQL's least is 1 s"),
            );
        }
        let stanza = raw.stanza.value().clone();
        if stanza.is_empty() || !stanza.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, format!("stanza `{stanza}` is not a name"), Some(raw.stanza.pos()))
                    .help("letters, digits, - and _ (it becomes a folder in the repository)"),
            );
        }
        // `${VAR}` as anywhere else in the policy (PGDATA, say), then checked.
        let data_directory = self.expand(&raw.data_directory);
        if let Some(data_directory) = data_directory.as_ref().filter(|d| !d.starts_with('/')) {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("data_directory `{data_directory}` is not an absolute path"),
                    Some(raw.data_directory.pos()),
                )
                .help("write the cluster's data directory on the database host, e.g. /var/lib/postgresql/15/main"),
            );
        }
        let cipher_pass = match &raw.cipher_pass {
            Some(c) => Some(Secret::new(self.expand(c)?)),
            None => None,
        };
        let drill = raw.drill.as_ref().and_then(|d| {
            let dv = d.value();
            let rto = dv.rto.as_ref().map_or(Some(3600), |r| self.duration(r, "rto"));
            let every = dv.every.as_ref().map_or(Some(30 * 86400), |e| self.duration(e, "every"));
            let checks = self.checks(dv.checks.as_ref());
            Some(PitrDrill { checks, rto_secs: rto?, every_secs: every?, line: d.pos().line })
        });
        let process_max = self
            .parallel(
                raw.process_max.as_ref(),
                "process_max",
                "give pgBackRest's parallel processes (4 by default; its guide: a quarter of the cores for backup); or leave `process_max` out",
            )
            .map(|n| n.unwrap_or(4));
        let bucket = bucket?;
        let dr_copies = crate::policy::erasure::replicating(bucket, &prefix)
            .into_iter()
            .map(|r| {
                let region = buckets.iter().find(|b| b.name == r.destination).and_then(|b| b.region.clone());
                (r.destination.clone(), region.or_else(|| self.default_region.clone()))
            })
            .collect();
        Some(Pitr {
            repo: BackupRef {
                bucket: bucket.name.clone(),
                entry: "pitr".into(),
                prefix,
                key_format: None,
                // Written out: the archive_command carries it, and the
                // server has no other way to learn it.
                region: bucket.region.clone().or_else(|| self.default_region.clone()),
                encryption: bucket.encryption.clone(),
                object_lock_days: bucket.object_lock.as_ref().map(|l| l.days),
            },
            endpoint,
            ca_file,
            stanza,
            data_directory: data_directory?,
            window_secs: window?,
            full_every_secs: full_every?,
            verify_every_secs: verify_every?,
            rpo_secs: rpo?,
            cipher_pass,
            process_max: process_max?,
            drill,
            dr_copies,
            line: p.pos().line,
        })
    }

    /// Confidential data whose dumps are neither encrypted client-side nor
    /// leave any table's rows out: a warning.
    fn confidential(&mut self, name: &Sp<String>, pv: &RawPostgres, backup: Option<&PgBackup>) {
        let confidential = pv
            .classification
            .iter()
            .flat_map(|c| c.value().iter())
            .any(|c| *c.value() == crate::policy::store_raw::ClassificationRaw::Confidential);
        if let (true, Some(b), Some(raw)) = (confidential, backup, &pv.backup) {
            if b.encrypt_to.is_empty() && b.exclude_table_data.is_empty() {
                self.warnings.push(
                    Diagnostic::warning(
                        Code::ConfidentialUnprotected,
                        format!("postgres.{} holds confidential data, but its dumps are neither encrypted client-side nor leave any table's rows out", name.value()),
                        Some(raw.pos()),
                    )
                    .help("add `encrypt_to: [age1…]` (client-side encryption with age) or `exclude_table_data: [TABLE, …]` (the confidential tables' rows stay on the server)"),
                );
            }
        }
    }

    /// The drill of the entry the dump job writes checks what the dumps
    /// leave out, and needs an identity when they are encrypted.
    fn drill_of_dumps(&mut self, pv: &RawPostgres, backup: Option<&PgBackup>, drill: Option<&mut PgDrill>) {
        // The drill of the entry the dump job writes checks what it
        // left out.
        if let (Some(d), Some(b)) = (drill, backup) {
            if d.from.bucket == b.to.bucket && d.from.prefix == b.to.prefix {
                d.excluded = b.exclude_table_data.clone();
                // Encrypted dumps: the drill needs the identity.
                if !b.encrypt_to.is_empty() && d.decrypt_with.is_none() {
                    if let Some(rd) = &pv.restore_drill {
                        self.diags.push(
                            Diagnostic::new(
                                Code::MissingField,
                                "the dumps are encrypted (`backup.encrypt_to`) but the drill names no identity to decrypt them",
                                Some(rd.pos()),
                            )
                            .help("add `decrypt_with: ${AGE_IDENTITY_FILE}` (the path of an age identity file of one of the recipients)"),
                        );
                    }
                }
            }
        }
    }

    pub(super) fn postgres(
        &mut self,
        map: &Sp<RawPostgresMap>,
        buckets: &[BucketSpec],
        s3: Option<&Sp<RawS3>>,
    ) -> Vec<PostgresSpec> {
        let mut out = Vec::new();
        for (name, p) in &map.value().0 {
            let pv = p.value();
            let url = self.url(&pv.url, &["postgres", "postgresql"]);
            let timeout = pv.timeout.as_ref().map_or(Some(5), |t| self.duration(t, "timeout"));
            let w = pv.wal_archiving.as_ref().map(|w| w.value());
            let archive_mode = w.and_then(|w| w.archive_mode.as_ref()).and_then(|m| {
                if ["on", "always", "off"].contains(&m.value().as_str()) {
                    Some(m.value().clone())
                } else {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            format!("archive_mode `{}` is not on, always or off", m.value()),
                            Some(m.pos()),
                        )
                        .help("write archive_mode: \"on\" (quoted)"),
                    );
                    None
                }
            });
            let archive_timeout =
                w.and_then(|w| w.archive_timeout.as_ref()).and_then(|t| self.duration(t, "archive_timeout"));
            let rpo = w.and_then(|w| w.rpo.as_ref()).map_or(Some(900), |r| self.duration(r, "rpo"));
            if let (Some(t), Some(r), Some(pos)) = (archive_timeout, rpo, w.and_then(|w| w.archive_timeout.as_ref())) {
                if t > r {
                    self.diags.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("archive_timeout ({t} s) is longer than the RPO ({r} s)"), Some(pos.pos()))
                            .help("an archive_timeout at or below the RPO (the strategy's is 15 min) bounds how much WAL a lost server takes with it"),
                    );
                }
            }
            let archive_command = match w.and_then(|w| w.archive_command.as_ref()) {
                Some(c) => self.expand(c),
                None => None,
            };
            let backup = pv.backup.as_ref().and_then(|b| self.pg_backup(b, buckets));
            self.confidential(name, pv, backup.as_ref());
            let mut restore_drill = pv.restore_drill.as_ref().and_then(|d| self.pg_drill(d, buckets));
            self.drill_of_dumps(pv, backup.as_ref(), restore_drill.as_mut());
            let pitr = pv.pitr.as_ref().and_then(|x| self.pitr(x, buckets, s3));
            if let (Some(x), Some(c)) = (&pv.pitr, w.and_then(|w| w.archive_command.as_ref())) {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        "`wal_archiving.archive_command` and `pitr:` exclude each other",
                        Some(c.pos()),
                    )
                    .help(format!(
                        "`pitr:` (line {}) sets archive_command to pgBackRest's archive-push; remove this one",
                        x.pos().line
                    )),
                );
            }
            if let (Some(url), Some(timeout_secs), Some(rpo_secs)) = (url, timeout, rpo) {
                out.push(PostgresSpec {
                    name: name.value().clone(),
                    url,
                    wal_level: w.and_then(|w| w.wal_level.as_ref()).map(|l| {
                        match l.value() {
                            WalLevelRaw::Minimal => "minimal",
                            WalLevelRaw::Replica => "replica",
                            WalLevelRaw::Logical => "logical",
                        }
                        .to_string()
                    }),
                    archive_mode,
                    archive_timeout_secs: archive_timeout,
                    archive_command,
                    archive_command_sensitive: w
                        .and_then(|w| w.archive_command.as_ref())
                        .is_some_and(|c| c.value().contains("${")),
                    wal_archiving: w.is_some(),
                    rpo_secs,
                    timeout_secs,
                    backup,
                    restore_drill,
                    pitr,
                    line: name.pos().line,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    /// `pitr.data_directory` takes `${VAR}` like every other value, and is
    /// checked once resolved.
    #[test]
    fn the_data_directory_may_come_from_the_environment() {
        let text = |dir: &str| {
            format!(
                "version: 1
s3: {{buckets: {{repo-bucket: {{versioning: enabled}}}}}}
postgres:
  primary:
    url: postgres://localhost/x
    pitr: {{repo: {{bucket: repo-bucket, prefix: pgbackrest/}}, stanza: main, data_directory: \"{dir}\"}}
"
            )
            .into_bytes()
        };
        let env = |k: &str| (k == "PGDATA").then(|| "/var/lib/postgresql/15/main".to_string());
        let p = crate::policy::parse("p.yaml", text("${PGDATA}"), &env).expect("valid");
        let pitr = p.postgres[0].pitr.as_ref().expect("pitr");
        assert_eq!(pitr.data_directory, "/var/lib/postgresql/15/main");
        let relative = |k: &str| (k == "PGDATA").then(|| "data".to_string());
        let err = crate::policy::parse("p.yaml", text("${PGDATA}"), &relative).expect_err("relative");
        assert!(format!("{err:?}").contains("data_directory `data` is not an absolute path"), "{err:?}");
        let err = crate::policy::parse("p.yaml", text("${NOPE}"), &env).expect_err("missing");
        assert!(format!("{err:?}").contains("NOPE"), "{err:?}");
    }
}
