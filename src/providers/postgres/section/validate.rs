//! Validation of `postgres:`, `pitr:` included. URLs are secrets: no
//! message quotes one.

use super::raw::{
    DumpFormatRaw, RawBackupJob, RawDrillCheck, RawPitr, RawPitrDrill, RawPitrRepo, RawPostgres, RawPostgresMap,
    RawRestoreDrill, WalLevelRaw,
};
use super::{DrillCheck, DumpFormat, PgBackup, PgDrill, Pitr, PitrDrill, PostgresSpec};
use crate::policy::diag::{Code, Diagnostic};
use crate::policy::raw::Sp;
use crate::policy::validate::Validator;
use crate::policy::{BackupRef, Secret};
use crate::providers::s3::section::raw::{RawS3, StorageClassRaw};
use crate::providers::s3::section::BucketSpec;

impl Validator<'_> {
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
        let schedule = self.job_schedule(raw.schedule.as_ref(), Some(&to), buckets);
        Some(PgBackup { to, schedule, format, exclude_table_data, encrypt_to })
    }

    fn pg_drill(&mut self, name: &str, d: &Sp<RawRestoreDrill>, buckets: &[BucketSpec]) -> Option<PgDrill> {
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
        let (every, schedule) = self.drill_every(
            raw.every.as_ref(),
            raw.schedule.as_ref(),
            &format!("postgres.{name}'s last passing drill"),
        );
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
            schedule,
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

    /// Time-based retention keeps the full backup the window reaches back
    /// to, with everything after it: with full backups less often than
    /// the window, the repository holds up to full_every + window (what a
    /// deleted row survives in), not the window. And an RPO PostgreSQL can
    /// keep (archive_timeout is a third of it).
    fn pitr_timing(&mut self, raw: &RawPitr, window: Option<u64>, full_every: Option<u64>, rpo: Option<u64>) {
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
    }

    /// The stanza (a folder name) and the data directory (`${VAR}` as
    /// anywhere else in the policy, PGDATA say, then an absolute path).
    fn pitr_names(&mut self, raw: &RawPitr) -> (String, Option<String>) {
        let stanza = raw.stanza.value().clone();
        if stanza.is_empty() || !stanza.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, format!("stanza `{stanza}` is not a name"), Some(raw.stanza.pos()))
                    .help("letters, digits, - and _ (it becomes a folder in the repository)"),
            );
        }
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
        (stanza, data_directory)
    }

    /// `pitr.drill:`: its RTO, interval and checks.
    fn pitr_drill(&mut self, name: &str, d: &Sp<RawPitrDrill>) -> Option<PitrDrill> {
        let dv = d.value();
        let rto = dv.rto.as_ref().map_or(Some(3600), |r| self.duration(r, "rto"));
        let (every, schedule) = self.drill_every(
            dv.every.as_ref(),
            dv.schedule.as_ref(),
            &format!("postgres.{name}.pitr's last passing drill"),
        );
        let checks = self.checks(dv.checks.as_ref());
        Some(PitrDrill { checks, rto_secs: rto?, every_secs: every?, schedule, line: d.pos().line })
    }

    fn pitr(&mut self, name: &str, p: &Sp<RawPitr>, buckets: &[BucketSpec], s3: Option<&Sp<RawS3>>) -> Option<Pitr> {
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
        self.pitr_timing(raw, window, full_every, rpo);
        let (stanza, data_directory) = self.pitr_names(raw);
        let cipher_pass = match &raw.cipher_pass {
            Some(c) => Some(Secret::new(self.expand(c)?)),
            None => None,
        };
        let drill = raw.drill.as_ref().and_then(|d| self.pitr_drill(name, d));
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
        let schedule = raw.schedule.as_ref().and_then(|s| self.schedule(s));
        Some(Pitr {
            schedule,
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
            .any(|c| *c.value() == super::raw::ClassificationRaw::Confidential);
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

    pub(crate) fn postgres(
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
            let mut restore_drill = pv.restore_drill.as_ref().and_then(|d| self.pg_drill(name.value(), d, buckets));
            self.drill_of_dumps(pv, backup.as_ref(), restore_drill.as_mut());
            let pitr = pv.pitr.as_ref().and_then(|x| self.pitr(name.value(), x, buckets, s3));
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
