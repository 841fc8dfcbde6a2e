//! `import`: write a policy from live state, so adopting the tool starts
//! from what exists. The providers observe each resource as if the policy
//! mentioned every setting; the pure functions below turn what was seen
//! into policy YAML that plans with no change. What the policy format
//! cannot express is said in a comment, never dropped silently; AWS
//! defaults are marked as such. Connection URLs are written as `${VAR}`.

pub mod merge;
pub mod yaml;

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};

use crate::aws::Aws;
use crate::engine::{fatal, RunError};
use crate::model::Observed;
use crate::policy::{
    Algorithm, BucketSpec, Encryption, Iam, Lifecycle, LifecycleRule, Ownership, Persistence, PostgresSpec,
    PublicAccessBlock, RedisSpec, Replication, ReplicationRule, RoleSpec, Secret, Versioning,
};
use crate::providers::iam::{self, RoleState};
use crate::providers::postgres::{self, PostgresState};
use crate::providers::redis::{self, RedisState};
use crate::providers::s3::{self, tls, BucketState, EncryptionState, PabState};
use yaml::{literal_env, scalar, Writer};

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub buckets: Vec<String>,
    pub all_buckets: bool,
    pub roles: Vec<String>,
    /// (name, environment variable holding the URL).
    pub redis: Vec<(String, String)>,
    pub postgres: Vec<(String, String)>,
    /// Buckets already in the policy `--merge` adds to: not read again.
    pub skip_buckets: std::collections::BTreeSet<String>,
}

/// Everything read for an import.
#[derive(Debug, Clone)]
pub struct Seen {
    /// (name, region it lives in, state).
    pub buckets: Vec<(String, String, BucketState)>,
    pub roles: Vec<(String, RoleState)>,
    /// (name, variable, state).
    pub redis: Vec<(String, String, RedisState)>,
    pub postgres: Vec<(String, String, PostgresState)>,
}

/// Policy entries, each a `NAME:` block at column 0, per section, and the
/// settings that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entries {
    pub buckets: Vec<(String, String)>,
    pub roles: Vec<(String, String)>,
    pub redis: Vec<(String, String)>,
    pub postgres: Vec<(String, String)>,
    /// `ADDRESS SETTING: reason` for each setting that could not be read.
    pub unreadable: Vec<String>,
}

/// Where a section's entries go in a policy file, and the entries.
pub type Section<'a> = (&'static [&'static str], &'a [(String, String)]);

impl Entries {
    /// Each section with its path in the file, in the file's order.
    pub fn sections(&self) -> [Section<'_>; 4] {
        [
            (&["s3", "buckets"], &self.buckets),
            (&["iam", "roles"], &self.roles),
            (&["redis"], &self.redis),
            (&["postgres"], &self.postgres),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty() && self.roles.is_empty() && self.redis.is_empty() && self.postgres.is_empty()
    }

    /// "3 bucket(s), 2 role(s), 1 Redis, 1 PostgreSQL".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.buckets.len(), "bucket(s)"),
            (self.roles.len(), "role(s)"),
            (self.redis.len(), "Redis"),
            (self.postgres.len(), "PostgreSQL"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(", ")
    }
}

/// A bucket spec that mentions every setting, so observe reads them all.
fn full_bucket(name: &str) -> BucketSpec {
    BucketSpec {
        name: name.to_string(),
        region: None,
        versioning: Some(Versioning::Enabled),
        encryption: Some(Encryption { algorithm: Algorithm::Aes256, kms_key: None, bucket_key: None }),
        public_access_block: Some(PublicAccessBlock::all(true)),
        mfa_delete: Some(false),
        require_tls: Some(true),
        lifecycle: Some(Lifecycle { ownership: Ownership::Shared, rules: Vec::new() }),
        replication: Some(Replication { role: String::new(), ownership: Ownership::Shared, rules: Vec::new() }),
        backups: Vec::new(),
        line: 0,
        lines: BTreeMap::new(),
    }
}

fn full_role(name: &str) -> RoleSpec {
    RoleSpec {
        name: name.to_string(),
        absent: false,
        path: Some("/".into()),
        description: Some(String::new()),
        max_session_duration: Some(3600),
        tags: Some(BTreeMap::new()),
        trust: Some(Value::Null),
        inline_policies: Some(BTreeMap::new()),
        managed_policies: Some(Vec::new()),
        exclusive: false,
        line: 0,
    }
}

/// Read every resource of the request. A resource that does not exist or
/// cannot be reached at all is an error (there is nothing to write); a
/// setting that cannot be read is kept as Unknown and said in the output.
pub async fn observe(
    aws: &Aws,
    req: &Request,
    region: &str,
    env: &dyn Fn(&str) -> Option<String>,
    concurrency: usize,
) -> Result<Seen, RunError> {
    let mut names: Vec<(String, Option<String>)> = req.buckets.iter().map(|b| (b.clone(), None)).collect();
    if req.all_buckets {
        names.extend(s3::observe::list_buckets(aws, region).await.map_err(fatal(aws))?);
    }
    names.retain(|(n, _)| !req.skip_buckets.contains(n));
    // By name, a listed region before none, so the dedup keeps what S3 said.
    names.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.is_some().cmp(&a.1.is_some())));
    names.dedup_by(|a, b| a.0 == b.0);
    let mut roles = req.roles.clone();
    roles.sort();
    roles.dedup();
    let url = |name: &str, var: &str, what: &str| {
        env(var).filter(|v| !v.is_empty()).map(Secret::new).ok_or_else(|| {
            RunError::Fatal(format!(
                "environment variable `{var}` (the URL of {what} `{name}`) is not set; export it, then run import again"
            ))
        })
    };
    let mut redis_specs = Vec::new();
    for (name, var) in &req.redis {
        let url = url(name, var, "Redis")?;
        redis_specs.push((
            RedisSpec { name: name.clone(), url, persistence: Persistence::None, timeout_secs: 5, line: 0 },
            var,
        ));
    }
    let mut pg_specs = Vec::new();
    for (name, var) in &req.postgres {
        let url = url(name, var, "PostgreSQL")?;
        pg_specs.push((
            PostgresSpec {
                name: name.clone(),
                url,
                wal_level: None,
                archive_mode: None,
                archive_timeout_secs: None,
                archive_command: None,
                archive_command_sensitive: false,
                wal_archiving: true,
                rpo_secs: 900,
                timeout_secs: 5,
                line: 0,
            },
            var,
        ));
    }
    let iam_spec = Iam { roles: roles.iter().map(|r| full_role(r)).collect(), policies: Vec::new() };
    let (buckets, iam_state, redis_states, pg_states) = tokio::join!(
        stream::iter(names.iter())
            .map(|(name, listed)| async move {
                // Read each bucket from its own region: ListBuckets says it,
                // else GetBucketLocation.
                let home = match listed {
                    Some(r) => r.clone(),
                    None => match s3::observe::bucket_region(aws, region, name).await.map_err(fatal(aws))? {
                        Observed::Present(r) => r,
                        _ => region.to_string(),
                    },
                };
                let state = s3::observe::observe(aws, &full_bucket(name), &home, false).await.map_err(fatal(aws))?;
                Ok::<_, RunError>((name.clone(), state))
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<_>>(),
        async {
            if iam_spec.roles.is_empty() {
                Ok(iam::IamState { roles: Vec::new(), policies: Vec::new() })
            } else {
                iam::observe(aws, &iam_spec).await
            }
        },
        futures::future::join_all(redis_specs.iter().map(|(s, _)| redis::observe(s))),
        futures::future::join_all(pg_specs.iter().map(|(s, _)| postgres::observe(s))),
    );
    let mut seen = Seen { buckets: Vec::new(), roles: Vec::new(), redis: Vec::new(), postgres: Vec::new() };
    for (name, state) in buckets? {
        let region = match &state.bucket {
            Observed::Present(r) => r.clone(),
            Observed::Absent => {
                return Err(RunError::Fatal(format!("bucket `{name}` does not exist; nothing to import")));
            }
            Observed::Unknown { reason } => {
                return Err(RunError::Fatal(format!("bucket `{name}` cannot be read: {reason}")));
            }
        };
        seen.buckets.push((name, region, state));
    }
    seen.buckets.sort_by(|a, b| a.0.cmp(&b.0));
    for (spec, state) in iam_state.map_err(fatal(aws))?.roles {
        match &state.role {
            Observed::Absent => {
                return Err(RunError::Fatal(format!("IAM role `{}` does not exist; nothing to import", spec.name)))
            }
            Observed::Unknown { reason } => {
                return Err(RunError::Fatal(format!("IAM role `{}` cannot be read: {reason}", spec.name)))
            }
            Observed::Present(_) => seen.roles.push((spec.name, state)),
        }
    }
    for ((spec, var), state) in redis_specs.iter().zip(redis_states) {
        if let Observed::Unknown { reason } = &state.info {
            return Err(RunError::Fatal(format!("Redis `{}` (${{{var}}}): {reason}", spec.name)));
        }
        seen.redis.push((spec.name.clone(), var.to_string(), state));
    }
    for ((spec, var), state) in pg_specs.iter().zip(pg_states) {
        if let Observed::Unknown { reason } = &state.settings {
            return Err(RunError::Fatal(format!("PostgreSQL `{}` (${{{var}}}): {reason}", spec.name)));
        }
        seen.postgres.push((spec.name.clone(), var.to_string(), state));
    }
    seen.redis.sort_by(|a, b| a.0.cmp(&b.0));
    seen.postgres.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(seen)
}

/// Policy entries for everything seen. `default_region` is the policy's
/// `aws.region`: a bucket elsewhere gets its own `region:` (with None,
/// every bucket does).
pub fn entries(seen: &Seen, default_region: Option<&str>) -> Entries {
    let mut e = Entries::default();
    for (name, region, state) in &seen.buckets {
        let text = bucket(name, region, default_region, state, &mut e.unreadable);
        e.buckets.push((name.clone(), text));
    }
    for (name, state) in &seen.roles {
        e.roles.push((name.clone(), role(name, state, &mut e.unreadable)));
    }
    for (name, var, state) in &seen.redis {
        e.redis.push((name.clone(), redis_entry(name, var, state, &mut e.unreadable)));
    }
    for (name, var, state) in &seen.postgres {
        e.postgres.push((name.clone(), postgres_entry(name, var, state)));
    }
    e
}

/// A whole new policy file; `schema` is the path of the JSON Schema
/// relative to where the file goes (None: no schema comment).
pub fn document(e: &Entries, region: &str, schema: Option<&str>) -> String {
    let mut w = Writer::new();
    if let Some(s) = schema {
        w.comment(0, &format!("yaml-language-server: $schema={s}"));
        w.comment(0, "");
    }
    w.comment(
        0,
        "Imported from the live state by `suoops-policy import`. Review it before use: comments mark AWS defaults and what the policy format cannot express. Backup evidence (`backups:`) and waivers cannot be observed: add them yourself.",
    );
    w.raw(0, "version", "1", None);
    w.open(0, "aws");
    w.raw(2, "region", &scalar(&literal_env(region)), None);
    // The same insertion `--merge` makes, into a file with no section yet.
    let head = w.finish();
    add_to(&head, e).unwrap_or(head)
}

/// Every entry inserted into the policy text under its section, the rest
/// of the text kept as it is (`--merge`).
pub fn add_to(text: &str, e: &Entries) -> Result<String, String> {
    let mut text = text.to_string();
    for (path, items) in e.sections() {
        let blocks: Vec<String> = items.iter().map(|(_, t)| t.clone()).collect();
        text = merge::insert(&text, path, &blocks)?;
    }
    Ok(text)
}

fn unreadable(w: &mut Writer, gaps: &mut Vec<String>, address: &str, setting: &str, reason: &str) {
    w.comment(2, &format!("{setting}: could not be read ({reason}); left unmanaged"));
    gaps.push(format!("{address} {setting}: {reason}"));
}

fn bucket(name: &str, region: &str, default_region: Option<&str>, st: &BucketState, gaps: &mut Vec<String>) -> String {
    let addr = format!("s3.{name}");
    let mut w = Writer::new();
    w.open(0, &literal_env(name));
    if default_region != Some(region) {
        w.raw(2, "region", &scalar(&literal_env(region)), None);
    }
    match &st.versioning {
        Some(Observed::Present(v)) => w.raw(2, "versioning", &scalar(v), None),
        Some(Observed::Absent) => w.comment(
            2,
            "versioning: never enabled on this bucket (the policy can say enabled or suspended, not \"never\"); left unmanaged",
        ),
        Some(Observed::Unknown { reason }) => unreadable(&mut w, gaps, &addr, "versioning", reason),
        None => {}
    }
    match &st.mfa_delete {
        Some(Observed::Present(true)) => w.raw(2, "mfa_delete", "enabled", None),
        Some(Observed::Present(false)) => w.raw(2, "mfa_delete", "disabled", Some("AWS default")),
        Some(Observed::Unknown { reason }) if st.versioning.as_ref().and_then(|v| v.unknown_reason()).is_none() => {
            unreadable(&mut w, gaps, &addr, "mfa_delete", reason)
        }
        _ => {}
    }
    match &st.encryption {
        Some(Observed::Present(e)) => encryption(&mut w, e),
        Some(Observed::Absent) => w.comment(
            2,
            "encryption: no default encryption is configured (the policy cannot say \"none\"); left unmanaged",
        ),
        Some(Observed::Unknown { reason }) => unreadable(&mut w, gaps, &addr, "encryption", reason),
        None => {}
    }
    match &st.public_access_block {
        Some(Observed::Present(p)) => public_access_block(&mut w, p),
        Some(Observed::Absent) => w.raw(2, "public_access_block", "none", Some("no public access block is configured")),
        Some(Observed::Unknown { reason }) => unreadable(&mut w, gaps, &addr, "public_access_block", reason),
        None => {}
    }
    match &st.policy {
        Some(Observed::Present(doc)) => {
            let enforced = tls::enforced(Some(doc), name).is_ok();
            w.raw(2, "require_tls", &enforced.to_string(), None);
            let others: Vec<String> = tls::statements(&doc.json)
                .into_iter()
                .filter(|s| s.get("Sid").and_then(Value::as_str) != Some(tls::SID))
                .map(|s| s.get("Sid").and_then(Value::as_str).map_or("(no Sid)".to_string(), |x| x.to_string()))
                .collect();
            if !others.is_empty() {
                w.comment(
                    2,
                    &format!(
                        "the bucket policy also has {} statement(s) the policy format does not manage ({}); they are kept as they are",
                        others.len(),
                        others.join(", ")
                    ),
                );
            }
        }
        Some(Observed::Absent) => w.raw(2, "require_tls", "false", Some("no bucket policy")),
        Some(Observed::Unknown { reason }) => unreadable(&mut w, gaps, &addr, "require_tls (bucket policy)", reason),
        None => {}
    }
    match &st.lifecycle {
        Some(Observed::Present(doc)) => lifecycle(&mut w, &doc.rules),
        Some(Observed::Unknown { reason }) => unreadable(&mut w, gaps, &addr, "lifecycle", reason),
        _ => {}
    }
    match &st.replication {
        Some(Observed::Present(doc)) => replication(&mut w, &doc.role, &doc.rules),
        Some(Observed::Unknown { reason }) => unreadable(&mut w, gaps, &addr, "replication", reason),
        _ => {}
    }
    w.finish()
}

fn encryption(w: &mut Writer, e: &EncryptionState) {
    let Some(alg) = Algorithm::parse(&e.algorithm) else {
        w.comment(
            2,
            &format!("encryption: algorithm `{}` is not one the policy format knows; left unmanaged", e.algorithm),
        );
        return;
    };
    match (alg, &e.kms_key) {
        (Algorithm::Aes256, _) => {
            w.raw(2, "encryption", "{algorithm: AES256}", Some("SSE-S3, S3's default for new buckets"));
            if e.bucket_key {
                w.comment(2, "the bucket key is on; it only matters for aws:kms and is left as it is");
            }
        }
        (_, None) => w.comment(
            2,
            &format!(
                "encryption: {} with the AWS-managed key (no key id is configured); the policy needs a kms_key, so it is left unmanaged",
                alg.as_str()
            ),
        ),
        (_, Some(key)) => {
            w.open(2, "encryption");
            w.raw(4, "algorithm", &scalar(alg.as_str()), None);
            w.raw(4, "kms_key", &scalar(&literal_env(key)), None);
            if alg == Algorithm::AwsKms {
                w.raw(4, "bucket_key", &e.bucket_key.to_string(), (!e.bucket_key).then_some("AWS default"));
            }
        }
    }
}

fn public_access_block(w: &mut Writer, p: &PabState) {
    let flags = [p.block_public_acls, p.ignore_public_acls, p.block_public_policy, p.restrict_public_buckets];
    if flags.iter().all(|f| *f) {
        w.raw(2, "public_access_block", "all", None);
    } else if flags.iter().all(|f| !f) {
        w.raw(2, "public_access_block", "none", Some("every block is off"));
    } else {
        w.value(
            2,
            "public_access_block",
            &json!({
                "block_public_acls": p.block_public_acls,
                "ignore_public_acls": p.ignore_public_acls,
                "block_public_policy": p.block_public_policy,
                "restrict_public_buckets": p.restrict_public_buckets,
            }),
            None,
        );
    }
}

const LIFECYCLE_CLASSES: &[&str] =
    &["STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"];
const REPLICA_CLASSES: &[&str] =
    &["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"];

/// Why a lifecycle rule cannot be written in the policy (None: it can).
fn lifecycle_gap(r: &LifecycleRule) -> Option<String> {
    if !r.unmodelled.is_empty() {
        return Some(r.unmodelled.join(", "));
    }
    let odd: Vec<&str> = r
        .transitions
        .iter()
        .chain(&r.noncurrent_transitions)
        .map(|t| t.storage_class.as_str())
        .filter(|c| !LIFECYCLE_CLASSES.contains(c))
        .collect();
    (!odd.is_empty()).then(|| format!("storage class {}", odd.join(", ")))
}

fn lifecycle(w: &mut Writer, rules: &[LifecycleRule]) {
    let (ok, foreign): (Vec<&LifecycleRule>, Vec<&LifecycleRule>) =
        rules.iter().partition(|r| lifecycle_gap(r).is_none());
    if !ok.is_empty() {
        w.open(2, "lifecycle");
        w.open(4, "rules");
        for r in &ok {
            w.item(6, &lifecycle_rule(r));
        }
    }
    for r in foreign {
        left_out(w, "lifecycle", &r.id, &lifecycle_gap(r).unwrap_or_default());
    }
}

/// Say why a live rule is not in the imported policy (it stays as it is:
/// ownership is shared).
fn left_out(w: &mut Writer, kind: &str, id: &str, why: &str) {
    w.comment(
        2,
        &format!(
            "{kind} rule `{id}` has what the policy format cannot express ({why}): not imported; shared ownership keeps it as it is"
        ),
    );
}

fn transitions(ts: &[crate::policy::Transition]) -> Value {
    Value::Array(ts.iter().map(|t| json!({"days": t.days, "storage_class": t.storage_class})).collect())
}

fn lifecycle_rule(r: &LifecycleRule) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.id));
    if !r.enabled {
        m.insert("enabled".into(), json!(false));
    }
    if !r.prefix.is_empty() {
        m.insert("prefix".into(), json!(literal_env(&r.prefix)));
    }
    if !r.tags.is_empty() {
        m.insert("tags".into(), json!(r.tags));
    }
    if let Some(n) = r.object_size_greater_than {
        m.insert("object_size_greater_than".into(), json!(n));
    }
    if let Some(n) = r.object_size_less_than {
        m.insert("object_size_less_than".into(), json!(n));
    }
    if !r.transitions.is_empty() {
        m.insert("transitions".into(), transitions(&r.transitions));
    }
    if let Some(n) = r.expire_after_days {
        m.insert("expire_after_days".into(), json!(n));
    }
    if !r.noncurrent_transitions.is_empty() {
        m.insert("noncurrent_transitions".into(), transitions(&r.noncurrent_transitions));
    }
    if let Some(n) = r.noncurrent_expire_after_days {
        m.insert("noncurrent_expire_after_days".into(), json!(n));
    }
    if let Some(n) = r.noncurrent_newer_versions {
        m.insert("noncurrent_newer_versions".into(), json!(n));
    }
    if let Some(n) = r.abort_incomplete_multipart_days {
        m.insert("abort_incomplete_multipart_days".into(), json!(n));
    }
    Value::Object(m)
}

fn replication(w: &mut Writer, role: &str, rules: &[ReplicationRule]) {
    let gap = |r: &ReplicationRule| -> Option<String> {
        if !r.unmodelled.is_empty() {
            Some(r.unmodelled.join(", "))
        } else if r.storage_class.as_deref().is_some_and(|c| !REPLICA_CLASSES.contains(&c)) {
            Some(format!("storage class {}", r.storage_class.as_deref().unwrap_or_default()))
        } else {
            None
        }
    };
    let (ok, foreign): (Vec<&ReplicationRule>, Vec<&ReplicationRule>) = rules.iter().partition(|r| gap(r).is_none());
    if !ok.is_empty() {
        w.open(2, "replication");
        w.raw(4, "role", &scalar(&literal_env(role)), None);
        w.open(4, "rules");
        for r in &ok {
            let mut m = Map::new();
            m.insert("id".into(), json!(r.id));
            m.insert("priority".into(), json!(r.priority));
            if !r.enabled {
                m.insert("enabled".into(), json!(false));
            }
            m.insert("prefix".into(), json!(literal_env(&r.prefix)));
            m.insert("destination".into(), json!(literal_env(&r.destination)));
            if let Some(c) = &r.storage_class {
                m.insert("storage_class".into(), json!(c));
            }
            m.insert("delete_marker_replication".into(), json!(r.delete_marker_replication));
            w.item(6, &Value::Object(m));
        }
    }
    for r in foreign {
        left_out(w, "replication", &r.id, &gap(r).unwrap_or_default());
    }
}

/// An IAM document with its keys in the order people write them.
fn iam_document(doc: &Value) -> Value {
    const DOC: &[&str] = &["Version", "Id", "Statement"];
    const STATEMENT: &[&str] =
        &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];
    fn ordered(v: &Value, order: &[&str]) -> Value {
        let Value::Object(m) = v else { return v.clone() };
        let mut out = Map::new();
        for k in order {
            if let Some(x) = m.get(*k) {
                out.insert((*k).to_string(), x.clone());
            }
        }
        for (k, x) in m {
            if !order.contains(&k.as_str()) {
                out.insert(k.clone(), x.clone());
            }
        }
        Value::Object(out)
    }
    let mut d = ordered(doc, DOC);
    if let Some(st) = d.get_mut("Statement") {
        let sts = match &*st {
            Value::Array(a) => a.iter().map(|s| ordered(s, STATEMENT)).collect(),
            one => vec![ordered(one, STATEMENT)],
        };
        *st = Value::Array(sts);
    }
    d
}

fn role(name: &str, st: &RoleState, gaps: &mut Vec<String>) -> String {
    let addr = format!("iam.role.{name}");
    let mut w = Writer::new();
    w.open(0, name);
    let Some(f) = st.role.present() else {
        return w.finish();
    };
    if f.path == "/" {
        w.raw(2, "path", "/", Some("AWS default"));
    } else {
        w.raw(2, "path", &scalar(&f.path), None);
    }
    if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) {
        w.raw(2, "description", &scalar(d), None);
    }
    if let Some(m) = f.max_session_duration {
        w.raw(2, "max_session_duration", &m.to_string(), (m == 3600).then_some("AWS default (1 hour)"));
    }
    if !f.tags.is_empty() {
        w.value(2, "tags", &json!(f.tags), None);
    }
    if !f.trust.is_null() {
        w.value(2, "trust", &iam_document(&f.trust), None);
    }
    match &st.inline {
        Some(Observed::Present(docs)) if !docs.is_empty() => {
            w.open(2, "inline_policies");
            for (n, d) in docs {
                w.value(4, n, &iam_document(d), None);
            }
        }
        Some(Observed::Unknown { reason }) => unreadable(&mut w, gaps, &addr, "inline_policies", reason),
        _ => {}
    }
    match &st.attached {
        Some(Observed::Present(arns)) if !arns.is_empty() => {
            w.open(2, "managed_policies");
            for a in arns {
                w.item(4, &json!(a));
            }
        }
        Some(Observed::Unknown { reason }) => unreadable(&mut w, gaps, &addr, "managed_policies", reason),
        _ => {}
    }
    w.finish()
}

/// Redis `save` ("3600 1 300 100") as (seconds, changes) pairs; None when
/// it is not such a list.
fn save_pairs(save: &str) -> Option<Vec<(u64, u64)>> {
    let nums: Vec<u64> = save.split_whitespace().map(|n| n.parse().ok()).collect::<Option<_>>()?;
    if !nums.len().is_multiple_of(2) || nums.contains(&0) {
        return None;
    }
    Some(nums.chunks(2).map(|c| (c[0], c[1])).collect())
}

fn redis_entry(name: &str, var: &str, st: &RedisState, gaps: &mut Vec<String>) -> String {
    let mut w = Writer::new();
    w.open(0, name);
    w.raw(2, "url", &format!("${{{var}}}"), None);
    let (config, from_info) = match &st.config {
        Observed::Present(c) => (c.clone(), false),
        other => {
            // CONFIG renamed (managed Redis): INFO tells whether AOF is on,
            // not the fsync policy or the save schedule.
            let reason = other.unknown_reason().unwrap_or("CONFIG unavailable").to_string();
            gaps.push(format!("redis.{name} persistence: {reason}"));
            w.comment(
                2,
                &format!(
                    "{reason}. Persistence below is what INFO shows; fsync and the save schedule could not be read."
                ),
            );
            let info = st.info.present().cloned().unwrap_or_default();
            let mut c = BTreeMap::new();
            let aof = info.get("aof_enabled").is_some_and(|v| v.trim() == "1");
            c.insert("appendonly".to_string(), if aof { "yes" } else { "no" }.to_string());
            c.insert("appendfsync".to_string(), "everysec".to_string());
            c.insert("save".to_string(), String::new());
            (c, true)
        }
    };
    let aof = config.get("appendonly").is_some_and(|v| v == "yes");
    let save = config.get("save").map(String::as_str).unwrap_or_default().trim().to_string();
    let fsync = config.get("appendfsync").cloned().unwrap_or_else(|| "everysec".into());
    let pairs = save_pairs(&save);
    if !aof && save.is_empty() {
        w.raw(2, "persistence", "none", Some("a cache: appendonly no, save \"\""));
        return w.finish();
    }
    w.open(2, "persistence");
    if aof {
        let note = (fsync == "everysec" && !from_info).then_some("Redis default fsync");
        w.raw(4, "aof", &format!("{{fsync: {}}}", scalar(&fsync)), note);
    }
    match pairs {
        Some(p) if !p.is_empty() => {
            let items: Vec<String> =
                p.iter().map(|(s, c)| format!("{{after: {}, changes: {c}}}", yaml::duration(*s))).collect();
            let note = (save == "3600 1 300 100 60 10000").then_some("Redis default schedule");
            w.raw(4, "rdb", &format!("[{}]", items.join(", ")), note);
        }
        _ if save.is_empty() => {}
        _ => w.comment(4, &format!("save `{save}` is not a list of seconds/changes pairs; not imported")),
    }
    w.finish()
}

fn postgres_entry(name: &str, var: &str, st: &PostgresState) -> String {
    let mut w = Writer::new();
    w.open(0, name);
    w.raw(2, "url", &format!("${{{var}}}"), None);
    let settings = st.settings.present().cloned().unwrap_or_default();
    let get = |n: &str| settings.get(n).map(|s| s.value.trim().to_string());
    w.open(2, "wal_archiving");
    if let Some(l) = get("wal_level") {
        w.raw(4, "wal_level", &scalar(&l), (l == "replica").then_some("PostgreSQL default"));
    }
    if let Some(m) = get("archive_mode") {
        w.raw(4, "archive_mode", &scalar(&m), None);
    }
    match settings.get("archive_timeout").and_then(postgres::seconds) {
        Some(0) => w.comment(
            4,
            "archive_timeout: 0 (off, the PostgreSQL default): a quiet server may hold a WAL segment indefinitely; the policy takes a positive duration, so it is left unmanaged",
        ),
        Some(t) => {
            w.raw(4, "archive_timeout", &yaml::duration(t), None);
            if t > 900 {
                w.raw(
                    4,
                    "rpo",
                    &yaml::duration(t),
                    Some("as long as archive_timeout; the strategy's RPO is 15min"),
                );
            }
        }
        None => {}
    }
    match get("archive_command").as_deref() {
        Some("(disabled)") => w.comment(4, "archive_command is hidden while archive_mode is off; left unmanaged"),
        Some(c) => {
            let note = c.is_empty().then_some("nothing is archived");
            w.raw(4, "archive_command", &scalar(&literal_env(c)), note)
        }
        None => {}
    }
    if let Some(lib) = get("archive_library").filter(|l| !l.is_empty()) {
        w.comment(4, &format!("archive_library `{lib}` archives WAL; the policy format manages archive_command only"));
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_setting_is_said_and_counted_never_taken_for_absent() {
        fn denied<T>() -> Observed<T> {
            Observed::Unknown { reason: "access denied: AccessDenied".to_string() }
        }
        let st = BucketState {
            bucket: Observed::Present("us-east-1".into()),
            versioning: Some(Observed::Present("enabled".into())),
            encryption: Some(denied()),
            public_access_block: Some(denied()),
            mfa_delete: Some(Observed::Present(false)),
            lifecycle: Some(Observed::Absent),
            policy: Some(Observed::Absent),
            replication: Some(Observed::Absent),
            prerequisites: Default::default(),
        };
        let mut gaps = Vec::new();
        let text = bucket("b", "eu-west-1", Some("us-east-1"), &st, &mut gaps);
        assert!(text.starts_with("b:\n  region: eu-west-1\n  versioning: enabled\n"), "{text}");
        assert!(text.contains("# encryption: could not be read (access denied: AccessDenied); left"), "{text}");
        assert!(!text.contains("encryption: {"), "{text}");
        assert!(!text.contains("public_access_block: none"), "unknown is not absent: {text}");
        assert_eq!(
            gaps,
            ["s3.b encryption: access denied: AccessDenied", "s3.b public_access_block: access denied: AccessDenied"]
        );
    }

    #[test]
    fn redis_save_schedules() {
        assert_eq!(save_pairs("3600 1 300 100"), Some(vec![(3600, 1), (300, 100)]));
        assert_eq!(save_pairs(""), Some(vec![]));
        assert_eq!(save_pairs("3600"), None);
        assert_eq!(save_pairs("x 1"), None);
    }

    #[test]
    fn iam_documents_are_written_in_the_order_people_write_them() {
        let d = iam_document(
            &json!({"Statement": {"Resource": "*", "Action": "s3:*", "Effect": "Allow"}, "Version": "2012-10-17"}),
        );
        assert_eq!(
            d.to_string(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        );
    }

    #[test]
    fn a_rule_with_what_the_format_cannot_say_is_left_out_and_said() {
        let mut w = Writer::new();
        let ok = LifecycleRule { id: "keep".into(), enabled: true, expire_after_days: Some(14), ..Default::default() };
        let odd = LifecycleRule {
            id: "dated".into(),
            enabled: true,
            unmodelled: vec!["expiration on a date".into()],
            ..Default::default()
        };
        lifecycle(&mut w, &[ok, odd]);
        let text = w.finish();
        assert!(text.contains("- id: keep\n        expire_after_days: 14\n"), "{text}");
        let flat: String = text.lines().map(|l| l.trim_start().trim_start_matches("# ")).collect::<Vec<_>>().join(" ");
        assert!(flat.contains("`dated` has what the policy format cannot express (expiration on a date)"), "{text}");
        assert!(!text.contains("id: dated"), "{text}");
    }
}
