//! The erasure horizon of every copy of every backup the policy makes: how
//! long a row deleted from the source today can remain recoverable from
//! it, from the lifecycle, replication and Object Lock the policy declares
//! (the audit checks them live: S3-LIFECYCLE, S3-OBJECT-LOCK) and measured
//! against the oldest version each copy still holds (S3-OLDEST-VERSION).

use super::sections::s3::{BucketSpec, LifecycleRule, ReplicationRule, Versioning};
use super::Policy;
use crate::model::Shortfall;

/// S3 runs lifecycle actions asynchronously, and removes an expired object
/// some time after its expiration date ("there might be a delay between the
/// expiration date and the date at which Amazon S3 removes an object", S3
/// user guide, "Expiring objects"): a version up to a day older than its
/// copy's horizon is not evidence against it.
pub const EVIDENCE_SLACK_SECS: u64 = 86_400;

/// One copy of a backup: an entry's objects in its own bucket or in a
/// replication destination, or the pgBackRest repository (and its DR copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// What it is, as reports name it: `s3://bucket/prefix/ (entry)`.
    pub what: String,
    pub bucket: String,
    pub prefix: String,
    /// A pgBackRest repository: its `*.info` files and `backup.history/`
    /// are metadata pgBackRest keeps for good (no rows in them).
    pub repository: bool,
    /// Days a deleted row stays recoverable, or why nothing bounds it.
    pub horizon: Result<u64, Shortfall>,
    /// The erasure_within it answers to, in seconds: the entry's own, else
    /// the policy's; None: not judged.
    pub within_secs: Option<u64>,
}

/// What keeps a copy's current objects, and for how long.
enum Kept {
    /// The bucket's lifecycle expires them.
    ByLifecycle,
    /// The job deletes them itself after these days (pgBackRest's expiry).
    ByJob(u64),
    /// Nothing: neither a job's deletes reach them nor may a lifecycle
    /// rule expire them (a repository's replicas without delete markers).
    Forever,
}

/// Whether the policy asks for ERASURE-HORIZON at all.
pub fn evaluated(policy: &Policy) -> bool {
    policy.erasure_within_secs.is_some()
        || policy.buckets.iter().flat_map(|b| &b.backups).any(|e| e.erasure_within_secs.is_some())
}

/// Every copy, in policy order: each backups entry and its DR copies, then
/// each pgBackRest repository and its DR copies.
pub fn copies(policy: &Policy) -> Vec<Copy> {
    let bucket = |n: &str| policy.buckets.iter().find(|b| b.name == n);
    let mut out = Vec::new();
    let mut push = |what: String, b: &BucketSpec, prefix: &str, repository: bool, kept: Kept, within| {
        let horizon = match kept {
            Kept::ByLifecycle => horizon(b, prefix, None),
            Kept::ByJob(days) => horizon(b, prefix, Some(days)),
            Kept::Forever => {
                Err(Shortfall(format!("no lifecycle rule of {} expires current objects under {prefix}", b.name)))
            }
        };
        out.push(Copy {
            what,
            bucket: b.name.clone(),
            prefix: prefix.to_string(),
            repository,
            horizon,
            within_secs: within,
        });
    };
    for b in &policy.buckets {
        for e in &b.backups {
            let within = e.erasure_within_secs.or(policy.erasure_within_secs);
            push(format!("s3://{}/{} ({})", b.name, e.prefix, e.name), b, &e.prefix, false, Kept::ByLifecycle, within);
            for rule in replicating(b, &e.prefix) {
                if let Some(d) = bucket(&rule.destination) {
                    let what = format!("s3://{}/{} (DR copy of {})", d.name, e.prefix, e.name);
                    push(what, d, &e.prefix, false, Kept::ByLifecycle, within);
                }
            }
        }
    }
    for p in policy.postgres.iter().filter_map(|s| s.pitr.as_ref()) {
        // pgBackRest keeps the full backup the window reaches back to, and
        // the WAL after it: up to window + full_every.
        let kept = (p.window_secs + p.full_every_secs).div_ceil(86_400);
        let Some(b) = bucket(&p.repo.bucket) else { continue };
        let within = policy.erasure_within_secs;
        let what = format!("s3://{}/{} (pgBackRest repository)", b.name, p.repo.prefix);
        push(what, b, &p.repo.prefix, true, Kept::ByJob(kept), within);
        for rule in replicating(b, &p.repo.prefix) {
            if let Some(d) = bucket(&rule.destination) {
                // pgBackRest's expiry is a DeleteObject without a version: a
                // rule that replicates delete markers carries it to the
                // replica, which then goes as a noncurrent version. Without
                // it the replica stays current until the destination's
                // lifecycle expires it — and no rule may expire current
                // objects of a repository (S3 user guide, "Replicating
                // delete markers between buckets").
                let kept = if rule.delete_marker_replication { Kept::ByJob(kept) } else { Kept::Forever };
                let what = format!("s3://{}/{} (DR copy of the pgBackRest repository)", d.name, p.repo.prefix);
                push(what, d, &p.repo.prefix, true, kept, within);
            }
        }
    }
    out
}

/// The replication rules of `b` that copy objects under `prefix`: for each
/// destination, the enabled rule of highest priority covering it. "If there
/// are two or more rules with the same destination bucket, then objects will
/// be replicated according to the rule with the highest priority. The higher
/// the number, the higher the priority" (S3 user guide, "Replication
/// configuration file elements": Priority).
pub fn replicating<'a>(b: &'a BucketSpec, prefix: &str) -> Vec<&'a ReplicationRule> {
    let mut out: Vec<&ReplicationRule> = Vec::new();
    for r in b.replication.iter().flat_map(|r| r.rules.iter()).filter(|r| r.enabled && prefix.starts_with(&r.prefix)) {
        match out.iter_mut().find(|o| o.destination == r.destination) {
            Some(o) if o.priority < r.priority => *o = r,
            Some(_) => {}
            None => out.push(r),
        }
    }
    out
}

/// How many days a row deleted today stays recoverable from the copy of
/// `prefix` in `b`: today's backup lives `E` days as the current object
/// (the rule that expires the prefix), then `N` days as a noncurrent version
/// in a versioned bucket, and no version goes before its Object Lock
/// retention ends (S3 user guide, "How S3 Object Lock works"; "Lifecycle
/// configuration elements": NoncurrentVersionExpiration). S3 rounds each
/// lifecycle action's time up to the next midnight UTC ("Amazon S3
/// calculates the time by adding the number of days specified in the rule
/// to the object creation time and rounding the resulting time to the next
/// day midnight UTC", S3 user guide, "Lifecycle configuration elements"):
/// a day more per action; a version whose lock outlives its expiration goes
/// at the first lifecycle run after the lock, a day more too. `kept_days`
/// is how long the job itself keeps it current (pgBackRest's window and
/// cycle), when it expires its own files. Err: why it is unbounded.
fn horizon(b: &BucketSpec, prefix: &str, kept_days: Option<u64>) -> Result<u64, Shortfall> {
    let rules: Vec<&LifecycleRule> = b
        .lifecycle
        .iter()
        .flat_map(|l| l.rules.iter())
        .filter(|r| r.enabled && r.tags.is_empty() && prefix.starts_with(&r.prefix))
        .collect();
    let current = match kept_days {
        Some(d) => d,
        None => {
            rules
                .iter()
                .filter_map(|r| r.expire_after_days)
                .min()
                .map(|d| d.max(0) as u64)
                .ok_or_else(|| format!("no lifecycle rule of {} expires current objects under {prefix}", b.name))?
                + 1
        }
    };
    let versioned = matches!(b.versioning, Some(Versioning::Enabled)) || b.object_lock.is_some();
    let noncurrent = if versioned {
        rules.iter().filter_map(|r| r.noncurrent_expire_after_days).min().map(|d| d.max(0) as u64 + 1).ok_or_else(
            || format!("{} is versioned and no lifecycle rule expires noncurrent versions under {prefix}", b.name),
        )?
    } else {
        0
    };
    let lock = b.object_lock.as_ref().map_or(0, |l| l.days.max(0) as u64 + 1);
    Ok((current + noncurrent).max(lock))
}

/// Keys of a pgBackRest repository that hold no rows and are kept for as
/// long as the stanza exists: `archive.info`, `backup.info` (and their
/// `.copy`), and the manifests under `backup.history/`.
pub fn repository_metadata(key: &str) -> bool {
    key.ends_with(".info") || key.ends_with(".info.copy") || key.contains("/backup.history/")
}
