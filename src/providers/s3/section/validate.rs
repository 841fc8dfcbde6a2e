//! The S3 rules of phase two: each bucket's settings as S3 itself would
//! check them (lifecycle days and order, replication's prerequisites,
//! encryption keys, Object Lock, bucket-side access, backup entries), and
//! the rules across buckets (a destination's versioning, its writers, its
//! lock, the replica key's region). `policy/validate.rs` keeps the
//! pipeline.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::raw;
use super::{
    Access, BackupSpec, BucketSpec, Lifecycle, LifecycleRule, LockMode, ObjectLock, Ownership, PublicAccessBlock,
    Replication, ReplicationRule, Transition, Versioning,
};
use crate::policy::diag::{Code, Diagnostic, Pos};
use crate::policy::raw::Sp;
use crate::policy::validate::Validator;
use crate::policy::{Algorithm, Encryption};

/// The Sid of the statement a replica key's policy gets for the
/// replication roles of sources in other accounts.
pub const REPLICA_KEY_SID: &str = "SuoopsPolicyReplicasFromSources";

impl Validator<'_> {
    /// Every bucket of `s3:`, then the rules that look across buckets.
    pub(crate) fn buckets(&mut self, s3: Option<&Sp<raw::RawS3>>, default_region: Option<&str>) -> Vec<BucketSpec> {
        let mut buckets: Vec<BucketSpec> = Vec::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        if let Some(s3) = s3 {
            for (name, bucket) in &s3.value().buckets.0 {
                let Some(spec) = self.bucket(name, bucket) else {
                    continue;
                };
                if let Some(first) = seen.get(&spec.name) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::DuplicateKey,
                            format!("bucket `{}` is declared twice (first at line {})", spec.name, first.line),
                            Some(name.pos()),
                        )
                        .help("declare each bucket once"),
                    );
                    continue;
                }
                seen.insert(spec.name.clone(), name.pos());
                buckets.push(spec);
            }
        }
        self.destinations_versioned(&buckets);
        self.across_accounts(&mut buckets);
        self.replicas_writable_and_locked(&buckets);
        self.replica_keys_in_region(&buckets, default_region);
        buckets
    }

    /// A rule whose destination the policy declares in another account than
    /// its source names that account, and hands the replicas to it (AWS S3
    /// user guide, "Configuring replication for source and destination
    /// buckets owned by different accounts" and "Changing the replica
    /// owner": `Account` and `AccessControlTranslation: Owner=Destination`),
    /// so the backup account owns its copies outright.
    fn across_accounts(&mut self, buckets: &mut [BucketSpec]) {
        let caller = self.accounts.iter().find(|a| a.role.is_none()).map(|a| a.id.clone());
        let id_of = |b: &BucketSpec| match &b.account {
            Some(name) => self.accounts.iter().find(|a| &a.name == name).map(|a| a.id.clone()),
            None => caller.clone(),
        };
        let homes: Vec<(String, Option<String>)> = buckets.iter().map(|b| (b.name.clone(), id_of(b))).collect();
        let mut grants: Vec<(String, String)> = Vec::new();
        let mut key_grants: Vec<(String, String, String)> = Vec::new();
        for b in buckets.iter_mut() {
            let source = homes.iter().find(|(n, _)| *n == b.name).and_then(|(_, id)| id.clone());
            let Some(r) = b.replication.as_mut() else { continue };
            // The role as the destination's policy names it: its ARN.
            let role = match (&source, r.role.starts_with("arn:")) {
                (_, true) => Some(r.role.clone()),
                (Some(id), false) => Some(crate::policy::accounts::role_arn(id, &r.role)),
                (None, false) => None,
            };
            for rule in &mut r.rules {
                let dest = homes.iter().find(|(n, _)| *n == rule.destination).and_then(|(_, id)| id.clone());
                if let (Some(dest), true) = (&dest, dest != source) {
                    rule.destination_account = Some(dest.clone());
                    rule.owner_override = Some(true);
                    grants.extend(role.clone().map(|arn| (rule.destination.clone(), arn)));
                    if let (Some(key), Some(arn)) = (&rule.replica_kms_key, &role) {
                        key_grants.push((key.clone(), rule.destination.clone(), arn.clone()));
                    }
                }
            }
        }
        self.replica_key_grants(buckets, key_grants);
        for (dest, arn) in grants {
            if let Some(d) = buckets.iter_mut().find(|b| b.name == dest).filter(|d| !d.replicated_from.contains(&arn)) {
                d.replicated_from.push(arn);
                d.replicated_from.sort();
            }
        }
        for (b, (_, own)) in buckets.iter_mut().zip(&homes) {
            if let (Some(a), false) = (b.access.as_mut(), self.accounts.is_empty()) {
                a.home = own.clone();
            }
        }
        self.writers_elsewhere(buckets, &homes);
        // Backups and DR copies are held out of every other account.
        let destinations: Vec<String> = buckets
            .iter()
            .filter_map(|b| b.replication.as_ref())
            .flat_map(|r| r.rules.iter().map(|x| x.destination.clone()))
            .collect();
        if self.accounts.len() > 1 {
            for (b, (_, own)) in buckets.iter_mut().zip(&homes) {
                if b.backups.is_empty() && !destinations.contains(&b.name) {
                    continue;
                }
                b.foreign = self
                    .accounts
                    .iter()
                    .filter(|a| Some(&a.id) != own.as_ref())
                    .map(|a| (a.name.clone(), a.id.clone()))
                    .collect();
            }
        }
    }

    /// A writer of another account than the bucket's is refused by AWS
    /// unless the bucket policy allows it (S3 user guide, "Example 2:
    /// Bucket owner granting cross-account bucket permissions"); the tool
    /// writes no such Allow (only the sources' replication roles get one),
    /// so it says so. Copy across accounts with replication.
    fn writers_elsewhere(&mut self, buckets: &[BucketSpec], homes: &[(String, Option<String>)]) {
        for (b, (_, home)) in buckets.iter().zip(homes) {
            let (Some(a), Some(home)) = (&b.access, home) else { continue };
            let elsewhere = |w: &&String| {
                let account = w.split(':').nth(4).unwrap_or_default();
                !account.is_empty() && account != home && !b.replicated_from.contains(w)
            };
            for w in a.writers.iter().flatten().filter(elsewhere) {
                let at = self.at.get(&(b.name.clone(), "writers")).copied();
                self.warnings.push(
                    Diagnostic::warning(
                        Code::WriterInOtherAccount,
                        format!("`{w}` is in another account than `{}` ({home}): AWS refuses its writes unless the bucket policy allows them, and the tool writes no such Allow", b.name),
                        at,
                    )
                    .help("write the backups in the writer's own account and copy them here with replication (its role gets the Allow), or add the Allow to the bucket policy yourself"),
                );
            }
        }
    }

    /// A declared replica key of a rule into another account lets the
    /// source's replication role encrypt the replicas (and read back what
    /// it wrote), only through S3 for the destination's objects: a key of
    /// another account is usable only when its key policy allows the
    /// caller as well as the caller's IAM policy (AWS KMS developer guide,
    /// "Allowing users in other accounts to use a KMS key"; S3 user guide,
    /// "Replicating encrypted objects": granting additional permissions
    /// for cross-account scenarios). One statement per key, owned by its
    /// Sid; the rest of the key policy is the key's own.
    fn replica_key_grants(&mut self, buckets: &[BucketSpec], grants: Vec<(String, String, String)>) {
        for key in self.keys.iter_mut() {
            // Only a key in the destination's account: a key of the
            // source's account needs no grant across accounts.
            let home = |d: &str| buckets.iter().find(|b| b.name == d).map(|b| b.account.clone());
            let mine: Vec<&(String, String, String)> =
                grants.iter().filter(|(k, d, _)| *k == key.alias && home(d) == Some(key.account.clone())).collect();
            if mine.is_empty() {
                continue;
            }
            let mut roles: Vec<&str> = mine.iter().map(|(_, _, r)| r.as_str()).collect();
            roles.sort();
            roles.dedup();
            let mut dests: Vec<&str> = mine.iter().map(|(_, d, _)| d.as_str()).collect();
            dests.sort();
            dests.dedup();
            let region = key.region.clone().or_else(|| self.default_region.clone()).unwrap_or_else(|| "*".into());
            let contexts: Vec<String> = dests
                .iter()
                .flat_map(|d| {
                    let bucket_key = buckets
                        .iter()
                        .find(|b| b.name == *d)
                        .and_then(|b| b.encryption.as_ref())
                        .and_then(|e| e.bucket_key)
                        .unwrap_or(false);
                    let objects = format!("arn:aws:s3:::{d}/*");
                    if bucket_key {
                        vec![format!("arn:aws:s3:::{d}"), objects]
                    } else {
                        vec![objects]
                    }
                })
                .collect();
            let statement = json!({
                "Sid": REPLICA_KEY_SID,
                "Effect": "Allow",
                "Principal": {"AWS": roles},
                "Action": ["kms:Decrypt", "kms:Encrypt"],
                "Resource": "*",
                "Condition": {"StringLike": {
                    "kms:ViaService": format!("s3.{region}.amazonaws.com"),
                    "kms:EncryptionContext:aws:s3:arn": contexts,
                }},
            });
            let doc = key.policy.get_or_insert_with(|| json!({"Version": "2012-10-17", "Statement": []}));
            if !doc["Statement"].is_array() {
                let one = doc["Statement"].take();
                doc["Statement"] = json!([one]);
            }
            if let Some(list) = doc["Statement"].as_array_mut() {
                list.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(REPLICA_KEY_SID));
                list.push(statement);
            }
        }
    }

    /// A destination the policy itself declares must be versioned by it
    /// (S3 refuses replication to an unversioned bucket). Destinations
    /// outside the policy are checked against live state at plan time.
    fn destinations_versioned(&mut self, buckets: &[BucketSpec]) {
        for (dest, pos) in std::mem::take(&mut self.destinations) {
            if let Some(b) = buckets.iter().find(|b| b.name == dest) {
                if b.versioning != Some(Versioning::Enabled) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::ReplicationNeedsVersioning,
                            format!("destination bucket `{dest}` (line {}) must have `versioning: enabled`", b.line),
                            Some(pos),
                        )
                        .help(format!("add `versioning: enabled` to {dest}")),
                    );
                }
            }
        }
    }

    /// Replicas are written as the replication role (s3:ReplicateObject):
    /// a destination that restricts its writers must name it; and a source
    /// under Object Lock replicates only into a locked destination (S3
    /// replication failure reason DstBucketObjectLockConfigMissing).
    fn replicas_writable_and_locked(&mut self, buckets: &[BucketSpec]) {
        for src in buckets {
            let Some(r) = &src.replication else { continue };
            let role = crate::policy::role_name(&r.role);
            for rule in &r.rules {
                let Some(dest) = buckets.iter().find(|b| b.name == rule.destination) else { continue };
                let at = self.at.get(&(dest.name.clone(), "writers")).copied();
                if let Some(writers) = dest.access.as_ref().and_then(|a| a.writers.as_ref()) {
                    let named = writers
                        .iter()
                        .chain(&dest.access.as_ref().map(|a| a.break_glass.clone()).unwrap_or_default())
                        .any(|w| crate::policy::role_name(w) == role);
                    if !named {
                        self.diags.push(
                            Diagnostic::new(
                                Code::AccessLocksOut,
                                format!("`{}` restricts its writers but not to the replication role `{role}` of `{}`: every replica would be refused", dest.name, src.name),
                                at,
                            )
                            .help(format!("add `{role}` to the writers of {}", dest.name)),
                        );
                    }
                }
                if src.object_lock.is_some() && dest.object_lock.is_none() {
                    let at = self.at.get(&(src.name.clone(), "object_lock")).copied();
                    self.diags.push(
                        Diagnostic::new(
                            Code::ObjectLockNeedsVersioning,
                            format!("`{}` uses Object Lock, so its replication destination `{}` must too: S3 does not replicate locked objects into a bucket without it", src.name, dest.name),
                            at,
                        )
                        .help(format!("add `object_lock:` to {}", dest.name)),
                    );
                }
            }
        }
    }

    /// A replica key must live in its destination's region (S3 user guide,
    /// "Replicating encrypted objects": the replica key is in the
    /// destination bucket's Region).
    fn replica_keys_in_region(&mut self, buckets: &[BucketSpec], default_region: Option<&str>) {
        for (key, dest, pos) in std::mem::take(&mut self.replica_keys) {
            let (Some(k), Some(b)) =
                (self.keys.iter().find(|k| k.name == key), buckets.iter().find(|b| b.name == dest))
            else {
                continue;
            };
            let (kr, br) = (k.region.as_deref().or(default_region), b.region.as_deref().or(default_region));
            if let (Some(kr), Some(br)) = (kr, br) {
                if kr != br {
                    self.diags.push(
                        Diagnostic::new(
                            Code::KmsKeyRegion,
                            format!("key `{key}` is in {kr}, the destination bucket `{dest}` in {br}"),
                            Some(pos),
                        )
                        .help("S3 encrypts replicas with a key in the destination's region: declare a key there (e.g. `region: REGION` under kms.keys) and name it"),
                    );
                }
            }
        }
    }

    /// The bucket's name, `${VAR}` resolved, checked as S3 names buckets.
    fn bucket_name(&mut self, key: &Sp<String>) -> Option<String> {
        let name = self.expand(key);
        if let Some(n) = &name {
            if let Err(why) = check_bucket_name(n) {
                self.diags.push(
                    Diagnostic::new(Code::BucketNameInvalid, format!("`{n}` is not a valid S3 bucket name: {why}"), Some(key.pos()))
                        .help("bucket names are 3–63 characters of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit"),
                );
            }
        }
        name
    }

    /// In a versioned bucket, expiring a current version only makes it
    /// noncurrent: without noncurrent expiration, expired backups stay (and
    /// are billed) forever (AWS S3 user guide, "Lifecycle configuration
    /// elements", NoncurrentVersionExpiration).
    fn noncurrent_versions_kept(&mut self, b: &raw::RawBucket) {
        if b.versioning.as_ref().is_some_and(|v| *v.value() == raw::VersioningRaw::Enabled) {
            for rule in b.lifecycle.iter().flat_map(|l| l.value().rules.iter()) {
                let r = rule.value();
                if let (Some(days), None) = (&r.expire_after_days, &r.noncurrent_expire_after_days) {
                    self.warnings.push(
                        Diagnostic::warning(
                            Code::NoncurrentVersionsKept,
                            format!(
                                "rule `{}` expires current versions after {} days, but the bucket is versioned and nothing expires noncurrent versions: expired objects are kept forever",
                                r.id.value(),
                                days.value()
                            ),
                            Some(days.pos()),
                        )
                        .help("add `noncurrent_expire_after_days: N` to the rule (1 keeps a day to undo a mistake)"),
                    );
                }
            }
        }
    }

    fn bucket(&mut self, key: &Sp<String>, raw: &Sp<raw::RawBucket>) -> Option<BucketSpec> {
        let name = self.bucket_name(key);
        let b = raw.value();
        let region = b.region.as_ref().and_then(|r| self.region(r));
        let account = b.account.as_ref().and_then(|a| self.account_ref(a));
        let backups = b.backups.as_ref().map(|list| self.backups(key.value(), list)).unwrap_or_default();
        let versioning = b.versioning.as_ref().map(|v| match v.value() {
            raw::VersioningRaw::Enabled => Versioning::Enabled,
            raw::VersioningRaw::Suspended => Versioning::Suspended,
        });
        let bucket_region = region.clone().or_else(|| self.default_region.clone());
        let encryption = b.encryption.as_ref().and_then(|e| self.encryption(e, bucket_region.as_deref()));
        let public_access_block = b.public_access_block.as_ref().map(|p| match p.value() {
            raw::RawPublicAccessBlock::All => PublicAccessBlock::all(true),
            raw::RawPublicAccessBlock::None => PublicAccessBlock::all(false),
            raw::RawPublicAccessBlock::Flags(f) => PublicAccessBlock {
                block_public_acls: f.block_public_acls,
                ignore_public_acls: f.ignore_public_acls,
                block_public_policy: f.block_public_policy,
                restrict_public_buckets: f.restrict_public_buckets,
            },
        });
        let lifecycle = b.lifecycle.as_ref().map(|l| self.lifecycle(l));
        self.noncurrent_versions_kept(b);
        let kms_source = b.encryption.as_ref().is_some_and(|e| {
            matches!(e.value().algorithm.value(), raw::AlgorithmRaw::AwsKms | raw::AlgorithmRaw::AwsKmsDsse)
        });
        let replication = b
            .replication
            .as_ref()
            .and_then(|r| self.replication(r, name.as_deref(), b.versioning.as_ref(), kms_source));
        if let (None, Some(r)) = (&replication, &b.replication) {
            if let Some(role) = self.expand(&r.value().role) {
                self.broken_replication_roles.push(crate::policy::role_name(&role).to_string());
            }
        }
        let access = b
            .access
            .as_ref()
            .map(|a| self.access(a, replication.as_ref().map(|r| r.role.as_str()), !backups.is_empty()));
        let object_lock = b.object_lock.as_ref().and_then(|l| self.object_lock(l, b));
        if let Some(n) = &name {
            if let Some(w) = b.access.as_ref().and_then(|a| a.value().writers.as_ref()) {
                self.at.insert((n.clone(), "writers"), w.pos());
            }
            if let Some(l) = &b.object_lock {
                self.at.insert((n.clone(), "object_lock"), l.pos());
            }
        }
        Some(BucketSpec {
            name: name?,
            account,
            region,
            versioning,
            encryption,
            public_access_block,
            mfa_delete: b.mfa_delete.as_ref().map(|m| *m.value() == raw::MfaDeleteRaw::Enabled),
            require_tls: b.require_tls.as_ref().map(|t| *t.value()),
            access,
            object_lock,
            lifecycle,
            replication,
            backups,
            replicated_from: Vec::new(),
            foreign: Vec::new(),
            line: key.pos().line,
            lines: setting_lines(b),
        })
    }

    /// `access:` — principals checked, the replication role added to the
    /// readers, and restrictions that would stop the backups themselves
    /// refused.
    fn access(&mut self, a: &Sp<raw::RawAccess>, replication_role: Option<&str>, holds_backups: bool) -> Access {
        let raw = a.value();
        let mut list = |v: &Option<Sp<Vec<Sp<String>>>>| -> Option<Vec<String>> {
            let v = v.as_ref()?;
            let mut out = Vec::new();
            for p in v.value() {
                let Some(s) = self.expand(p) else { continue };
                let s =
                    match self.principal(&s) {
                        Ok(s) => s,
                        Err(why) => {
                            self.diags.push(Diagnostic::new(Code::InvalidValue, why.to_string(), Some(p.pos())).help(
                                "write ACCOUNT:ROLE with an account declared under `accounts:`, or the role's ARN",
                            ));
                            continue;
                        }
                    };
                if !is_principal_ref(&s) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::RoleInvalid,
                            format!("`{s}` is neither an IAM role name, an IAM role, user or root ARN, nor a service principal"),
                            Some(p.pos()),
                        )
                        .help("write a role name, or arn:aws:iam::ACCOUNT:role/NAME (`*` allowed in the name), arn:aws:iam::ACCOUNT:user/NAME, arn:aws:iam::ACCOUNT:root, or a service principal NAME.amazonaws.com (e.g. logging.s3.amazonaws.com); aws:PrincipalArn of an assumed-role session is its role's ARN"),
                    );
                    continue;
                }
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Some(out)
        };
        let writers = list(&raw.writers);
        let mut readers = list(&raw.readers);
        let break_glass = list(&raw.break_glass).unwrap_or_default();
        let administrators = list(&raw.administrators);
        if let Some(v) = raw.administrators.as_ref().filter(|v| v.value().is_empty() && break_glass.is_empty()) {
            self.diags.push(
                Diagnostic::new(
                    Code::AccessLocksOut,
                    "nobody could change this bucket's policy, lifecycle or Object Lock configuration: `administrators` is empty and there is no break glass".to_string(),
                    Some(v.pos()),
                )
                .help("name the role that runs `suoops-policy apply`, or leave the field out to not restrict it"),
            );
        }
        if holds_backups {
            for (what, v) in [("write", &raw.writers), ("read (restore)", &raw.readers)] {
                if let Some(v) = v {
                    if v.value().is_empty() {
                        self.diags.push(
                            Diagnostic::new(
                                Code::AccessLocksOut,
                                format!("nobody could {what} the backups this bucket holds: the list is empty"),
                                Some(v.pos()),
                            )
                            .help("name the role that must do it, or leave the field out to not restrict it"),
                        );
                    }
                }
            }
        }
        // S3 reads the source objects as the replication role
        // (s3:GetObjectVersionForReplication): it is a reader.
        if let (Some(r), Some(list)) = (replication_role, readers.as_mut()) {
            if !list.iter().any(|x| x == r) {
                list.push(r.to_string());
            }
        }
        Access {
            writers,
            readers,
            deny_delete: raw.deny_delete.as_ref().is_some_and(|d| *d.value()),
            break_glass,
            administrators,
            repos: Vec::new(),
            home: None,
        }
    }

    /// `object_lock:` — mode and days, versioning, and lifecycle rules that
    /// would try to remove versions still under retention.
    fn object_lock(&mut self, l: &Sp<raw::RawObjectLock>, b: &raw::RawBucket) -> Option<ObjectLock> {
        let raw = l.value();
        let days = *raw.days.value();
        // S3 API reference, "DefaultRetention": Days is a positive integer;
        // retention is capped at 100 years.
        if !(1..=36500).contains(&days) {
            self.diags.push(
                Diagnostic::new(
                    Code::ValueOutOfRange,
                    format!("`days` is {days}, it must be between 1 and 36500"),
                    Some(raw.days.pos()),
                )
                .help("write the retention in days, e.g. 14"),
            );
            return None;
        }
        // AWS S3 user guide, "Configuring S3 Object Lock": versioning first;
        // once Object Lock is on, versioning cannot be suspended.
        if b.versioning.as_ref().map(|v| *v.value()) != Some(raw::VersioningRaw::Enabled) {
            self.diags.push(
                Diagnostic::new(
                    Code::ObjectLockNeedsVersioning,
                    "Object Lock needs versioning enabled on the bucket, and the bucket does not say `versioning: enabled`",
                    Some(l.pos()),
                )
                .help("write `versioning: enabled` (it can never be suspended once Object Lock is on)"),
            );
        }
        // A version under retention cannot be removed by lifecycle either
        // (AWS S3 user guide, "Managing S3 Lifecycle policies with Object
        // Lock"): S3 keeps retrying, and the version stays and is billed.
        for rule in b.lifecycle.iter().flat_map(|l| l.value().rules.iter()) {
            let r = rule.value();
            let Some(nc) = &r.noncurrent_expire_after_days else { continue };
            let earliest = r.expire_after_days.as_ref().map_or(0, |e| *e.value()) + *nc.value();
            if earliest < days {
                self.warnings.push(
                    Diagnostic::warning(
                        Code::LockOutlastsLifecycle,
                        format!(
                            "rule `{}` would remove versions after {earliest} days, but Object Lock retains each version {days} days: S3 cannot delete them earlier, they stay (and are billed) until the retention ends",
                            r.id.value()
                        ),
                        Some(nc.pos()),
                    )
                    .help(format!(
                        "make the rule keep versions at least {days} days (expire_after_days + noncurrent_expire_after_days ≥ {days}), or shorten the retention"
                    )),
                );
            }
        }
        let mode = match raw.mode.value() {
            raw::LockModeRaw::Governance => LockMode::Governance,
            raw::LockModeRaw::Compliance => LockMode::Compliance,
        };
        Some(ObjectLock { mode, days })
    }

    /// A rule's id (1–255 characters, unique) and priority (0 to 2^31-1,
    /// unique; by default its place in the list); the priority.
    fn replication_rule_id(
        &mut self,
        rr: &raw::RawReplicationRule,
        id: &str,
        i: usize,
        ids: &mut HashMap<String, u64>,
        priorities: &mut HashMap<i64, u64>,
    ) -> i64 {
        if id.is_empty() || id.chars().count() > 255 {
            self.diags.push(
                Diagnostic::new(
                    Code::RuleIdInvalid,
                    format!("a rule id must be 1–255 characters, this one has {}", id.chars().count()),
                    Some(rr.id.pos()),
                )
                .help("use a short, stable name such as `dr-copy`"),
            );
        }
        if let Some(line) = ids.insert(id.to_string(), rr.id.pos().line) {
            self.diags.push(
                Diagnostic::new(
                    Code::DuplicateRuleId,
                    format!("replication rule id `{id}` is used twice (first at line {line})"),
                    Some(rr.id.pos()),
                )
                .help("give every rule of a bucket its own id"),
            );
        }
        let priority = rr.priority.as_ref().map_or(i as i64 + 1, |p| *p.value());
        if let Some(p) = &rr.priority {
            if !(0..=i64::from(i32::MAX)).contains(p.value()) {
                self.diags.push(
                    Diagnostic::new(
                        Code::ValueOutOfRange,
                        format!("priority {} must be between 0 and {}", p.value(), i32::MAX),
                        Some(p.pos()),
                    )
                    .help("write a whole number ≥ 0"),
                );
            }
        }
        if let Some(line) = priorities.insert(priority, rr.priority.as_ref().map_or(rr.id.pos().line, |p| p.pos().line))
        {
            self.diags.push(
                Diagnostic::new(
                    Code::DuplicatePriority,
                    format!("replication priority {priority} is used twice (first at line {line})"),
                    Some(rr.priority.as_ref().map_or(rr.id.pos(), |p| p.pos())),
                )
                .help("S3 needs a distinct priority for each rule"),
            );
        }
        priority
    }

    /// A rule's destination bucket, by name or ARN: valid, and not the
    /// source itself.
    fn replication_destination(&mut self, rr: &raw::RawReplicationRule, source: Option<&str>) -> Option<String> {
        let dest = self.expand(&rr.destination);
        let dest_name = dest.as_deref().map(|d| d.strip_prefix("arn:aws:s3:::").unwrap_or(d).to_string());
        if let Some(d) = &dest_name {
            self.destinations.push((d.clone(), rr.destination.pos()));
        }
        if let Some(d) = &dest_name {
            if let Err(why) = check_bucket_name(d) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DestinationInvalid,
                        format!("`{d}` is not a valid destination bucket: {why}"),
                        Some(rr.destination.pos()),
                    )
                    .help("write a bucket name or arn:aws:s3:::NAME"),
                );
            } else if Some(d.as_str()) == source {
                self.diags.push(
                    Diagnostic::new(
                        Code::DestinationInvalid,
                        "a bucket cannot replicate to itself",
                        Some(rr.destination.pos()),
                    )
                    .help("name the disaster-recovery bucket, usually in another region"),
                );
            }
        }
        dest_name
    }

    /// A rule's replica key: a key of this policy (its alias, resolved at
    /// plan time in the destination's region), or a key or alias ARN.
    fn replica_key(&mut self, rr: &raw::RawReplicationRule, dest_name: Option<&str>) -> Option<String> {
        let mut replica_kms_key = rr.replica_kms_key.as_ref().and_then(|k| self.expand(k));
        // A declared key: its alias, resolved to the key's ARN in the
        // key's region at plan and apply time.
        // Named by its key name, or by its alias (`alias/NAME`).
        if let (Some(d), Some(pos)) = (
            replica_kms_key.as_deref().and_then(|k| self.keys.iter().find(|d| d.name == k || d.alias == k).cloned()),
            &rr.replica_kms_key,
        ) {
            if let Some(dest) = dest_name {
                self.replica_keys.push((d.name.clone(), dest.to_string(), pos.pos()));
            }
            replica_kms_key = Some(d.alias.clone());
        } else if let (Some(k), Some(pos)) = (&replica_kms_key, &rr.replica_kms_key) {
            if let Some(name) = k.strip_prefix("alias/") {
                // S3 resolves a bare alias in the requester's account,
                // not the bucket owner's (S3 API reference,
                // EncryptionConfiguration: "we recommend using a fully
                // qualified KMS key ARN").
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("`{k}` is not a key of this policy, and a replica key needs its full ARN"),
                        Some(pos.pos()),
                    )
                    .help(format!("write arn:aws:kms:DEST-REGION:ACCOUNT:alias/{name} (or its key ARN), or declare the key under kms.keys as `{name}` in the destination bucket's region")),
                );
            } else if !is_kms_arn(k) {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("`{k}` is not a KMS key ARN or alias ARN"),
                        Some(pos.pos()),
                    )
                    .help("write arn:aws:kms:REGION:ACCOUNT:key/KEY-ID, arn:aws:kms:REGION:ACCOUNT:alias/NAME, or the name of a key under kms.keys, in the destination bucket's region"),
                );
            }
        }
        replica_kms_key
    }

    /// Replication Time Control: its one value, 15 minutes.
    fn replication_time(&mut self, rr: &raw::RawReplicationRule) -> Option<u32> {
        match &rr.replication_time {
            None => None,
            Some(t) => match t.value().trim() {
                "15m" | "15min" | "15 minutes" | "900s" | "900" => Some(15),
                other => {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            format!("replication_time `{other}`: Replication Time Control has one value, 15 minutes"),
                            Some(t.pos()),
                        )
                        .help("write `replication_time: 15m`, or leave it out for replication without a time SLA"),
                    );
                    None
                }
            },
        }
    }

    /// Replication needs versioning enabled on the source bucket.
    fn source_versioned(&mut self, r: &Sp<raw::RawReplication>, versioning: Option<&Sp<raw::VersioningRaw>>) {
        match versioning.map(|v| (*v.value(), v.pos())) {
            Some((raw::VersioningRaw::Enabled, _)) => {}
            Some((raw::VersioningRaw::Suspended, pos)) => self.diags.push(
                Diagnostic::new(
                    Code::ReplicationNeedsVersioning,
                    "replication needs versioning enabled on the source bucket, this bucket says suspended",
                    Some(pos),
                )
                .help("write `versioning: enabled`"),
            ),
            None => self.diags.push(
                Diagnostic::new(
                    Code::ReplicationNeedsVersioning,
                    "replication needs versioning enabled on the source bucket, and this bucket does not say so",
                    Some(r.pos()),
                )
                .help("add `versioning: enabled` to the bucket"),
            ),
        }
    }

    /// Whether the rule replicates SSE-KMS objects (a KMS-encrypted
    /// source's rules do unless they say not), which needs the destination
    /// key named: S3 replicates SSE-KMS objects only when the rule opts in
    /// and names it (AWS S3 user guide, "Replicating encrypted objects
    /// (SSE-S3, SSE-KMS, DSSE-KMS, SSE-C)").
    fn replicates_kms(&mut self, rule: &Sp<raw::RawReplicationRule>, kms_source: bool) -> Option<bool> {
        let (rr, id) = (rule.value(), rule.value().id.value());
        let replicate_kms_encrypted =
            rr.replicate_kms_encrypted.as_ref().map(|v| *v.value()).or(kms_source.then_some(true));
        if replicate_kms_encrypted == Some(true) && rr.replica_kms_key.is_none() {
            let at = rr.replicate_kms_encrypted.as_ref().map_or(rule.pos(), |v| v.pos());
            self.diags.push(
                Diagnostic::new(
                    Code::ReplicaKmsKeyRequired,
                    format!(
                        "rule `{id}` replicates SSE-KMS objects{} but names no replica_kms_key",
                        if kms_source { " (the bucket encrypts with aws:kms)" } else { "" }
                    ),
                    Some(at),
                )
                .help("S3 does not replicate SSE-KMS objects unless the rule names the destination key: add `replica_kms_key: arn:aws:kms:DEST-REGION:ACCOUNT:key/ID` (or `replicate_kms_encrypted: false` to leave them out, and the DR copy without them)"),
            );
        }
        replicate_kms_encrypted
    }

    fn replication(
        &mut self,
        r: &Sp<raw::RawReplication>,
        source: Option<&str>,
        versioning: Option<&Sp<raw::VersioningRaw>>,
        kms_source: bool,
    ) -> Option<Replication> {
        let raw = r.value();
        let before = self.diags.len();
        self.source_versioned(r, versioning);
        let role = self.expand(&raw.role)?;
        if !is_role_ref(&role) {
            self.diags.push(
                Diagnostic::new(
                    Code::RoleInvalid,
                    format!("`{role}` is neither an IAM role name nor a role ARN"),
                    Some(raw.role.pos()),
                )
                .help("write a role name (letters, digits and +=,.@_-, at most 64) or arn:aws:iam::ACCOUNT:role/NAME"),
            );
        }
        let mut ids: HashMap<String, u64> = HashMap::new();
        let mut priorities: HashMap<i64, u64> = HashMap::new();
        let mut rules = Vec::new();
        for (i, rule) in raw.rules.iter().enumerate() {
            let rr = rule.value();
            let id = rr.id.value().clone();
            let priority = self.replication_rule_id(rr, &id, i, &mut ids, &mut priorities);
            let dest_name = self.replication_destination(rr, source);
            let prefix = match &rr.prefix {
                Some(p) => self.expand(p),
                None => Some(String::new()),
            };
            let replica_kms_key = self.replica_key(rr, dest_name.as_deref());
            let replicate_kms_encrypted = self.replicates_kms(rule, kms_source);
            let replication_time_minutes = self.replication_time(rr);
            if let (Some(destination), Some(prefix)) = (dest_name, prefix) {
                rules.push(ReplicationRule {
                    id,
                    priority,
                    enabled: rr.enabled.as_ref().is_none_or(|e| *e.value()),
                    prefix,
                    destination,
                    storage_class: rr.storage_class.as_ref().map(|c| c.value().as_str().to_string()),
                    delete_marker_replication: rr.delete_marker_replication.as_ref().is_some_and(|d| *d.value()),
                    replica_kms_key,
                    replicate_kms_encrypted,
                    replication_time_minutes,
                    destination_account: None,
                    owner_override: None,
                    filter_tags: Vec::new(),
                    unmodelled: Vec::new(),
                });
            }
        }
        if raw.rules.is_empty() {
            self.diags.push(
                Diagnostic::new(Code::RuleDoesNothing, "replication has no rules", Some(r.pos()))
                    .help("add a rule with an id and a destination"),
            );
        }
        let ownership = match raw.ownership.as_ref().map(|o| *o.value()) {
            Some(raw::OwnershipRaw::Exclusive) => Ownership::Exclusive,
            _ => Ownership::Shared,
        };
        (self.diags.len() == before).then_some(Replication { role, ownership, rules })
    }

    fn backups(&mut self, bucket: &str, list: &Sp<Vec<Sp<raw::RawBackup>>>) -> Vec<BackupSpec> {
        let mut out: Vec<BackupSpec> = Vec::new();
        let mut names = std::collections::HashSet::new();
        for b in list.value() {
            let bv = b.value();
            let name = bv.name.value().clone();
            if !names.insert(name.clone()) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateKey,
                        format!("backup `{name}` is declared twice in this bucket"),
                        Some(bv.name.pos()),
                    )
                    .help("give each backup entry its own name"),
                );
            }
            // Not written: from the schedule of the job that writes it, or
            // an error once the jobs are read (`Validator::entries_timed`).
            let max_age = match &bv.max_age {
                None => {
                    self.untimed.push((bucket.to_string(), name.clone(), bv.name.pos()));
                    Some(0)
                }
                Some(m) => {
                    let secs = crate::policy::parse_duration(m.value()).filter(|s| *s > 0);
                    if secs.is_none() {
                        self.diags.push(
                            Diagnostic::new(
                                Code::DurationInvalid,
                                format!("`{}` is not a duration for max_age", m.value()),
                                Some(m.pos()),
                            )
                            .help("write a positive number with a unit: 15m, 26h, 1d"),
                        );
                    }
                    secs
                }
            };
            let retention = bv.retention.as_ref().and_then(|r| match crate::policy::parse_duration(r.value()) {
                Some(s) if s > 0 && s % 86400 == 0 => Some(s / 86400),
                _ => {
                    self.diags.push(
                        Diagnostic::new(
                            Code::DurationInvalid,
                            format!("retention `{}` is not a whole number of days", r.value()),
                            Some(r.pos()),
                        )
                        .help("write it in days, e.g. 14d: lifecycle expiration counts whole days"),
                    );
                    None
                }
            });
            if let Some(f) = &bv.key_format {
                let mut chars = f.value().chars();
                let mut ok = f.value().contains('%');
                while let Some(c) = chars.next() {
                    if c == '%' && !matches!(chars.next(), Some('Y' | 'm' | 'd' | 'H' | 'M' | 'S')) {
                        ok = false;
                    }
                }
                if !ok {
                    self.diags.push(
                        Diagnostic::new(Code::InvalidValue, format!("key_format `{}` is not a time format", f.value()), Some(f.pos()))
                            .help("use %Y %m %d %H %M %S, e.g. \"%Y%m%d-%H%M%S\" for keys like postgres/20261124-020000.sql.gz"),
                    );
                }
            }
            let erasure_within_secs = bv.erasure_within.as_ref().and_then(|w| self.duration(w, "erasure_within"));
            let prefix = self.expand(&bv.prefix);
            if let (Some(max_age_secs), Some(prefix)) = (max_age, prefix) {
                out.push(BackupSpec {
                    name,
                    prefix,
                    max_age_secs,
                    schedule: None,
                    sha256_sidecar: bv.sha256_sidecar.as_ref().is_some_and(|s| *s.value()),
                    retention_days: retention,
                    key_format: bv.key_format.as_ref().map(|f| f.value().clone()),
                    line: bv.name.pos().line,
                    client_encrypted: false,
                    erasure_within_secs,
                });
            }
        }
        out
    }

    fn lifecycle(&mut self, l: &Sp<raw::RawLifecycle>) -> Lifecycle {
        let raw = l.value();
        let ownership = match raw.ownership.as_ref().map(|o| *o.value()) {
            Some(raw::OwnershipRaw::Exclusive) => Ownership::Exclusive,
            _ => Ownership::Shared,
        };
        if raw.rules.len() > 1000 {
            self.diags.push(
                Diagnostic::new(
                    Code::TooManyRules,
                    format!("{} lifecycle rules; S3 allows at most 1000", raw.rules.len()),
                    Some(l.pos()),
                )
                .help("merge rules that share a filter"),
            );
        }
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut rules = Vec::new();
        for r in &raw.rules {
            let id = r.value().id.value().clone();
            if let Some(line) = seen.get(&id) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateRuleId,
                        format!("lifecycle rule id `{id}` is used twice (first at line {line})"),
                        Some(r.value().id.pos()),
                    )
                    .help("give every rule of a bucket its own id"),
                );
            } else {
                seen.insert(id, r.value().id.pos().line);
            }
            if let Some(rule) = self.lifecycle_rule(r) {
                rules.push(rule);
            }
        }
        Lifecycle { ownership, rules }
    }

    /// A rule id is 1 to 255 characters (S3's limit).
    fn rule_id(&mut self, id: &Sp<String>) {
        let n = id.value().chars().count();
        if n == 0 || n > 255 {
            self.diags.push(
                Diagnostic::new(
                    Code::RuleIdInvalid,
                    format!("a rule id must be 1–255 characters, this one has {n}"),
                    Some(id.pos()),
                )
                .help("use a short, stable name such as `postgres-dumps`"),
            );
        }
    }

    /// A rule's number (days, versions, sizes) within S3's bounds: at least
    /// `min`, at most i32's largest (sizes: i64's).
    fn rule_number(&mut self, v: &Option<Sp<i64>>, min: i64, what: &str) -> Option<i64> {
        let v = v.as_ref()?;
        let max = if what.starts_with("object_size") { i64::MAX } else { i64::from(i32::MAX) };
        if *v.value() < min || *v.value() > max {
            self.diags.push(
                Diagnostic::new(
                    Code::ValueOutOfRange,
                    format!("`{what}` is {}, it must be between {min} and {max}", v.value()),
                    Some(v.pos()),
                )
                .help(format!("write a whole number ≥ {min}")),
            );
        }
        Some(*v.value())
    }

    /// A rule that can match and act: its size range is not empty, its
    /// tag keys are S3's length, `noncurrent_newer_versions` comes with
    /// its expiry, and it has an action (`acts`).
    fn rule_acts(&mut self, raw: &raw::RawLifecycleRule, acts: bool, sizes: Option<(i64, i64)>) {
        if let (Some((g, l)), Some(lp)) = (sizes, &raw.object_size_less_than) {
            if g >= l {
                self.diags.push(
                    Diagnostic::new(
                        Code::ValueOutOfRange,
                        format!("object_size_less_than ({l}) must be greater than object_size_greater_than ({g})"),
                        Some(lp.pos()),
                    )
                    .help("no object would match this rule"),
                );
            }
        }
        if let (Some(p), None) = (&raw.noncurrent_newer_versions, &raw.noncurrent_expire_after_days) {
            self.diags.push(
                Diagnostic::new(
                    Code::RuleDoesNothing,
                    "`noncurrent_newer_versions` needs `noncurrent_expire_after_days`",
                    Some(p.pos()),
                )
                .help("say after how many days the older noncurrent versions expire"),
            );
        }
        if !acts {
            self.diags.push(
                Diagnostic::new(Code::RuleDoesNothing, format!("lifecycle rule `{}` has no action", raw.id.value()), Some(raw.id.pos()))
                    .help("add transitions, expire_after_days, noncurrent_expire_after_days, noncurrent_transitions or abort_incomplete_multipart_days"),
            );
        }
        if let Some(t) = &raw.tags {
            if t.value().keys().any(|k| k.is_empty() || k.chars().count() > 128) {
                self.diags.push(
                    Diagnostic::new(Code::ValueOutOfRange, "a tag key must be 1–128 characters", Some(t.pos()))
                        .help("fix the tag key"),
                );
            }
        }
    }

    fn lifecycle_rule(&mut self, r: &Sp<raw::RawLifecycleRule>) -> Option<LifecycleRule> {
        let raw = r.value();
        let before = self.diags.len();
        let id = raw.id.value();
        self.rule_id(&raw.id);
        let expire = self.rule_number(&raw.expire_after_days, 1, "expire_after_days");
        let nc_expire = self.rule_number(&raw.noncurrent_expire_after_days, 1, "noncurrent_expire_after_days");
        let nc_newer = self.rule_number(&raw.noncurrent_newer_versions, 1, "noncurrent_newer_versions");
        let abort = self.rule_number(&raw.abort_incomplete_multipart_days, 1, "abort_incomplete_multipart_days");
        let gt = self.rule_number(&raw.object_size_greater_than, 0, "object_size_greater_than");
        let lt = self.rule_number(&raw.object_size_less_than, 1, "object_size_less_than");
        let transitions = self.transitions(
            &raw.transitions,
            "transitions",
            expire,
            raw.expire_after_days.as_ref(),
            "expire_after_days",
        );
        let nc_transitions = self.transitions(
            &raw.noncurrent_transitions,
            "noncurrent_transitions",
            nc_expire,
            raw.noncurrent_expire_after_days.as_ref(),
            "noncurrent_expire_after_days",
        );
        let acts = !(transitions.is_empty() && nc_transitions.is_empty()) || expire.or(nc_expire).or(abort).is_some();
        self.rule_acts(raw, acts, gt.zip(lt));
        let tags = raw.tags.as_ref().map(|t| t.value().clone()).unwrap_or_default();
        let prefix = match &raw.prefix {
            Some(p) => self.expand(p)?,
            None => String::new(),
        };
        (self.diags.len() == before).then(|| LifecycleRule {
            id: id.clone(),
            enabled: raw.enabled.as_ref().is_none_or(|e| *e.value()),
            prefix,
            tags,
            object_size_greater_than: gt,
            object_size_less_than: lt,
            transitions,
            expire_after_days: expire,
            noncurrent_transitions: nc_transitions,
            noncurrent_expire_after_days: nc_expire,
            noncurrent_newer_versions: nc_newer,
            abort_incomplete_multipart_days: abort,
            unmodelled: Vec::new(),
        })
    }

    /// One transition's days: in range, and 30 or more into an
    /// infrequent-access class (S3 rejects fewer).
    fn transition_days(&mut self, t: &raw::RawTransition, days: i64, class: raw::StorageClassRaw) {
        if !(0..=i64::from(i32::MAX)).contains(&days) {
            self.diags.push(
                Diagnostic::new(
                    Code::ValueOutOfRange,
                    format!("transition days is {days}, it must be between 0 and {}", i32::MAX),
                    Some(t.days.pos()),
                )
                .help("write a whole number of days ≥ 0"),
            );
        }
        if matches!(class, raw::StorageClassRaw::StandardIa | raw::StorageClassRaw::OnezoneIa) && days < 30 {
            self.diags.push(
                Diagnostic::new(
                    Code::TransitionTooEarly,
                    format!("{} transitions need at least 30 days, this one is at {days}", class.as_str()),
                    Some(t.days.pos()),
                )
                .label("S3 rejects fewer than 30 days")
                .help(format!(
                    "write `days: 30` or more, or use another storage class; the strategy moves to {} at 30 days",
                    class.as_str()
                )),
            );
        }
    }

    /// A transition after `prev`: later in days and down the storage-class
    /// order, and an archive class at least 30 days after the last
    /// infrequent-access one (`last_ia`).
    fn transition_order(
        &mut self,
        t: &raw::RawTransition,
        what: &str,
        prev: Option<(i64, raw::StorageClassRaw)>,
        last_ia: Option<(i64, raw::StorageClassRaw)>,
    ) {
        let (days, class) = (*t.days.value(), *t.storage_class.value());
        if let Some((pd, pc)) = prev {
            if days <= pd {
                self.diags.push(
                    Diagnostic::new(
                        Code::TransitionOrder,
                        format!("{what} must increase in days: {days} comes after {pd}"),
                        Some(t.days.pos()),
                    )
                    .help("list transitions from the earliest to the latest"),
                );
            } else if class <= pc {
                self.diags.push(
                Diagnostic::new(Code::TransitionOrder, format!("{} after {} moves up the storage-class order", class.as_str(), pc.as_str()), Some(t.storage_class.pos()))
                    .help("transitions go down the order STANDARD_IA → INTELLIGENT_TIERING → ONEZONE_IA → GLACIER_IR → GLACIER → DEEP_ARCHIVE"),
            );
            }
        }
        if let Some((ia_days, ia)) = last_ia {
            let archive = matches!(class, raw::StorageClassRaw::Glacier | raw::StorageClassRaw::DeepArchive);
            if archive && days > ia_days && days - ia_days < 30 {
                self.diags.push(
                    Diagnostic::new(
                        Code::TransitionTooEarly,
                        format!(
                        "{} at {days} days comes {} days after {} at {ia_days}; S3 needs at least 30 days between them",
                        class.as_str(),
                        days - ia_days,
                        ia.as_str()
                    ),
                        Some(t.days.pos()),
                    )
                    .label("S3 rejects a gap under 30 days")
                    .help(format!("write `days: {}` or more", ia_days + 30)),
                );
            }
        }
    }

    /// S3's transition rules: IA classes no earlier than 30 days, days
    /// increasing, classes moving down the order, expiration after the last.
    fn transitions(
        &mut self,
        list: &[Sp<raw::RawTransition>],
        what: &str,
        expire: Option<i64>,
        expire_pos: Option<&Sp<i64>>,
        expire_name: &str,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut prev: Option<(i64, raw::StorageClassRaw)> = None;
        // The last transition to an infrequent-access class: GLACIER and
        // DEEP_ARCHIVE must come at least 30 days after it (AWS S3 user
        // guide, "Transitioning objects using Amazon S3 Lifecycle",
        // constraints; S3 answers InvalidArgument otherwise).
        let mut last_ia: Option<(i64, raw::StorageClassRaw)> = None;
        for t in list {
            let t = t.value();
            let (days, class) = (*t.days.value(), *t.storage_class.value());
            self.transition_days(t, days, class);
            self.transition_order(t, what, prev, last_ia);
            if matches!(class, raw::StorageClassRaw::StandardIa | raw::StorageClassRaw::OnezoneIa) {
                last_ia = Some((days, class));
            }
            prev = Some((days, class));
            out.push(Transition { days, storage_class: class.as_str().to_string() });
        }
        if let (Some((last, class)), Some(e), Some(ep)) = (prev, expire, expire_pos) {
            if e <= last {
                self.diags.push(
                    Diagnostic::new(
                        Code::ExpirationBeforeTransition,
                        format!(
                            "`{expire_name}: {e}` is not after the last transition ({} at {last} days)",
                            class.as_str()
                        ),
                        Some(ep.pos()),
                    )
                    .help(format!("expire after more than {last} days, or drop the transition")),
                );
            }
        }
        out
    }

    fn encryption(&mut self, e: &Sp<raw::RawEncryption>, bucket_region: Option<&str>) -> Option<Encryption> {
        let raw = e.value();
        let algorithm = match raw.algorithm.value() {
            raw::AlgorithmRaw::Aes256 => Algorithm::Aes256,
            raw::AlgorithmRaw::AwsKms => Algorithm::AwsKms,
            raw::AlgorithmRaw::AwsKmsDsse => Algorithm::AwsKmsDsse,
        };
        let mut kms_key = raw.kms_key.as_ref().and_then(|k| self.expand(k));
        let mut ok = true;
        // The name of a declared key: its alias, resolved to the key's ARN
        // when apply writes it. S3 needs the key in the bucket's region (S3
        // user guide, "Specifying server-side encryption with AWS KMS").
        let declared = kms_key.as_deref().and_then(|k| self.keys.iter().find(|d| d.name == k).cloned());
        if let (Some(d), Some(pos)) = (&declared, &raw.kms_key) {
            let kr = d.region.as_deref().or(self.default_region.as_deref());
            if let (Some(kr), Some(br)) = (kr, bucket_region) {
                if kr != br {
                    self.diags.push(
                        Diagnostic::new(
                            Code::KmsKeyRegion,
                            format!("key `{}` is in {kr}, the bucket in {br}", d.name),
                            Some(pos.pos()),
                        )
                        .help("S3 encrypts only with a key in the bucket's region: declare a key there and name it"),
                    );
                    ok = false;
                }
            }
            kms_key = Some(d.alias.clone());
        }
        match (algorithm, &raw.kms_key) {
            (Algorithm::Aes256, Some(k)) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::KmsKeyNotAllowed,
                        "`kms_key` is set but the algorithm is AES256 (SSE-S3 uses no KMS key)",
                        Some(k.pos()),
                    )
                    .help("remove `kms_key`, or use `algorithm: aws:kms`"),
                );
                ok = false;
            }
            (Algorithm::AwsKms | Algorithm::AwsKmsDsse, None) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::KmsKeyRequired,
                        format!("`algorithm: {}` needs a `kms_key`", algorithm.as_str()),
                        Some(raw.algorithm.pos()),
                    )
                    .help("add `kms_key: NAME` (a key under kms.keys), alias/NAME, a key id or a key ARN"),
                );
                ok = false;
            }
            (_, Some(k)) if kms_key.as_deref().is_some_and(|v| !is_kms_key(v)) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("`{}` is not a KMS key id, key ARN or alias", kms_key.as_deref().unwrap_or("")),
                        Some(k.pos()),
                    )
                    .help("write alias/NAME, a key id (a UUID) or arn:aws:kms:REGION:ACCOUNT:key/ID"),
                );
                ok = false;
            }
            _ => {}
        }
        if let Some(bk) = &raw.bucket_key {
            if algorithm != Algorithm::AwsKms {
                self.diags.push(
                    Diagnostic::new(
                        Code::BucketKeyNotAllowed,
                        format!("`bucket_key` applies only to aws:kms, not {}", algorithm.as_str()),
                        Some(bk.pos()),
                    )
                    .help("remove `bucket_key`, or use `algorithm: aws:kms`"),
                );
                ok = false;
            }
        }
        ok.then_some(Encryption {
            algorithm,
            kms_key,
            declared_key: declared.map(|d| d.name),
            bucket_key: raw.bucket_key.as_ref().map(|b| *b.value()),
        })
    }
}

/// Line of each setting's value, so a failing control points at what the
/// policy asked for.
fn setting_lines(b: &raw::RawBucket) -> std::collections::BTreeMap<&'static str, u64> {
    [
        ("region", b.region.as_ref().map(|v| v.pos().line)),
        ("versioning", b.versioning.as_ref().map(|v| v.pos().line)),
        ("encryption", b.encryption.as_ref().map(|v| v.pos().line)),
        ("public_access_block", b.public_access_block.as_ref().map(|v| v.pos().line)),
        ("mfa_delete", b.mfa_delete.as_ref().map(|v| v.pos().line)),
        ("require_tls", b.require_tls.as_ref().map(|v| v.pos().line)),
        ("access", b.access.as_ref().map(|v| v.pos().line)),
        ("object_lock", b.object_lock.as_ref().map(|v| v.pos().line)),
        ("lifecycle", b.lifecycle.as_ref().map(|v| v.pos().line)),
        ("replication", b.replication.as_ref().map(|v| v.pos().line)),
    ]
    .into_iter()
    .filter_map(|(k, l)| l.map(|l| (k, l)))
    .collect()
}

/// A principal of `access:`: a role name, or an IAM role, user or root
/// ARN as aws:PrincipalArn reports it (wildcards allowed in the name).
fn is_principal_ref(r: &str) -> bool {
    if crate::policy::is_service_principal(r) {
        return true;
    }
    let Some(rest) = r.strip_prefix("arn:") else { return is_role_ref(r) };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let name_ok = |n: &str| {
        !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-*?".contains(c))
    };
    parts.len() == 5
        && parts[1] == "iam"
        && parts[2].is_empty()
        && parts[3].len() == 12
        && parts[3].chars().all(|c| c.is_ascii_digit())
        && (parts[4] == "root"
            || ["role/", "user/"]
                .iter()
                .any(|k| parts[4].strip_prefix(k).and_then(|p| p.rsplit('/').next()).is_some_and(name_ok)))
}

fn is_role_ref(r: &str) -> bool {
    let name_ok = |n: &str| {
        !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    };
    match r.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            parts.len() == 5
                && parts[1] == "iam"
                && parts[3].len() == 12
                && parts[3].chars().all(|c| c.is_ascii_digit())
                && parts[4].strip_prefix("role/").and_then(|p| p.rsplit('/').next()).is_some_and(name_ok)
        }
        None => name_ok(r),
    }
}

/// S3's bucket naming rules (general purpose buckets).
pub fn check_bucket_name(n: &str) -> Result<(), String> {
    if n.len() < 3 || n.len() > 63 {
        return Err(format!("it is {} characters long", n.len()));
    }
    if let Some(c) = n.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-')) {
        return Err(format!("`{c}` is not allowed"));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(n.chars().next()) || !edge(n.chars().last()) {
        return Err("it must start and end with a letter or digit".into());
    }
    if n.contains("..") {
        return Err("it has two adjacent periods".into());
    }
    if n.split('.').count() == 4 && n.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) {
        return Err("it is formatted as an IP address".into());
    }
    for p in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if n.starts_with(p) {
            return Err(format!("the prefix `{p}` is reserved"));
        }
    }
    for s in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if n.ends_with(s) {
            return Err(format!("the suffix `{s}` is reserved"));
        }
    }
    Ok(())
}

pub(crate) fn is_kms_key(k: &str) -> bool {
    let uuid =
        |s: &str| {
            s.len() == 36
                && s.chars().enumerate().all(|(i, c)| {
                    if [8, 13, 18, 23].contains(&i) {
                        c == '-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                })
        };
    let mrk = |s: &str| s.starts_with("mrk-") && s.len() > 4 && s[4..].chars().all(|c| c.is_ascii_hexdigit());
    if let Some(alias) = k.strip_prefix("alias/") {
        return !alias.is_empty() && alias.chars().all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c));
    }
    if let Some(rest) = k.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return parts.len() == 5
            && parts[1] == "kms"
            && (parts[4].strip_prefix("key/").is_some_and(|id| uuid(id) || mrk(id)) || parts[4].starts_with("alias/"));
    }
    uuid(k) || mrk(k)
}

/// A KMS key ARN or alias ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`,
/// `…:alias/NAME`), in any partition.
fn is_kms_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "kms"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && (parts[5].strip_prefix("key/").is_some_and(|k| !k.is_empty())
            || parts[5].strip_prefix("alias/").is_some_and(|a| !a.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "suoops-backups", "a.b-c", "0abc"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Abc", "a_b", "-ab", "ab-", "a..b", "192.168.1.1", "xn--abc", "abc-s3alias", &"a".repeat(64)]
        {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kms_keys_are_recognised() {
        assert!(is_kms_key("alias/suoops-backups"));
        assert!(is_kms_key("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(is_kms_key("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(!is_kms_key("my key"));
        assert!(!is_kms_key("arn:aws:s3:::bucket"));
    }
}
