//! `import` for buckets: read each bucket (with its replication) as if the
//! policy named every setting, and write it as a policy entry that plans
//! with no change. What the format cannot express is said in a comment,
//! never dropped silently; AWS defaults are marked as such.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};

use super::{access, observe, tls, BucketState, EncryptionState, PabState};
use crate::model::{Fatal, Observed};
use crate::policy::writer::{literal_env, scalar, Writer};
use crate::policy::{Algorithm, Encryption};
use crate::providers::s3::section::{
    Access, BucketSpec, Lifecycle, LifecycleRule, LockMode, ObjectLock, Ownership, PublicAccessBlock, Replication,
    ReplicationRule, Versioning,
};
use crate::providers::{Ctx, ImportRequest, Imported};

/// Read the buckets the request names (and, with `all_buckets`, every
/// bucket these credentials can list), each from its own region, and write
/// them. A bucket that does not exist or cannot be read at all stops the
/// import (there is nothing to write); a setting that cannot be read is
/// said and counted.
pub(crate) async fn import(
    ctx: &Ctx<'_>,
    req: &ImportRequest,
    default_region: Option<&str>,
) -> Result<Imported, Fatal> {
    let aws = ctx.aws;
    let region = aws.default_region().unwrap_or("us-east-1");
    let mut names: Vec<(String, Option<String>)> = req.buckets.iter().map(|b| (b.clone(), None)).collect();
    if req.all_buckets {
        names.extend(observe::list_buckets(aws, region).await?);
    }
    names.retain(|(n, _)| !req.skip_buckets.contains(n));
    // By name, a listed region before none, so the dedup keeps what S3 said.
    names.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.is_some().cmp(&a.1.is_some())));
    names.dedup_by(|a, b| a.0 == b.0);
    let seen: Vec<(String, BucketState)> = stream::iter(names.iter())
        .map(|(name, listed)| async move {
            // Read each bucket from its own region: ListBuckets says it,
            // else GetBucketLocation.
            let home = match listed {
                Some(r) => r.clone(),
                None => match crate::aws::lookup::bucket_region(aws, region, name).await? {
                    Observed::Present(r) => r,
                    _ => region.to_string(),
                },
            };
            let state = observe::observe(aws, &full_bucket(name), &home, false).await?;
            Ok::<_, Fatal>((name.clone(), state))
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .try_collect()
        .await?;
    let mut out = Imported::new(&["s3", "buckets"], "bucket(s)");
    let mut seen = seen;
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, state) in seen {
        let home = match &state.bucket {
            Observed::Present(r) => r.clone(),
            Observed::Absent => return Err(Fatal::input(format!("bucket `{name}` does not exist; nothing to import"))),
            Observed::Unknown { reason } => {
                return Err(Fatal::input(format!("bucket `{name}` cannot be read: {reason}")))
            }
        };
        let text = bucket(&name, &home, default_region, &state, &mut out.unreadable);
        out.entries.push((name, text));
    }
    Ok(out)
}

/// A bucket spec that mentions every setting, so observe reads them all.
fn full_bucket(name: &str) -> BucketSpec {
    BucketSpec {
        name: name.to_string(),
        account: None,
        region: None,
        versioning: Some(Versioning::Enabled),
        encryption: Some(Encryption {
            algorithm: Algorithm::Aes256,
            kms_key: None,
            declared_key: None,
            bucket_key: None,
        }),
        public_access_block: Some(PublicAccessBlock::all(true)),
        mfa_delete: Some(false),
        require_tls: Some(true),
        // Read the bucket policy's access statements and the Object Lock
        // configuration (the values here only make observe read them).
        access: Some(Access::default()),
        object_lock: Some(ObjectLock { mode: LockMode::Governance, days: 1 }),
        lifecycle: Some(Lifecycle { ownership: Ownership::Shared, rules: Vec::new() }),
        replication: Some(Replication { role: String::new(), ownership: Ownership::Shared, rules: Vec::new() }),
        backups: Vec::new(),
        replicated_from: Vec::new(),
        foreign: Vec::new(),
        line: 0,
        lines: BTreeMap::new(),
    }
}

pub(crate) fn bucket(
    name: &str,
    region: &str,
    default_region: Option<&str>,
    st: &BucketState,
    gaps: &mut Vec<String>,
) -> String {
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
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "versioning", reason),
        None => {}
    }
    match &st.mfa_delete {
        Some(Observed::Present(true)) => w.raw(2, "mfa_delete", "enabled", None),
        Some(Observed::Present(false)) => w.raw(2, "mfa_delete", "disabled", Some("AWS default")),
        Some(Observed::Unknown { reason }) if st.versioning.as_ref().and_then(|v| v.unknown_reason()).is_none() => {
            w.unreadable(2, gaps, &addr, "mfa_delete", reason)
        }
        _ => {}
    }
    match &st.encryption {
        Some(Observed::Present(e)) => encryption(&mut w, e),
        Some(Observed::Absent) => w.comment(
            2,
            "encryption: no default encryption is configured (the policy cannot say \"none\"); left unmanaged",
        ),
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "encryption", reason),
        None => {}
    }
    match &st.public_access_block {
        Some(Observed::Present(p)) => public_access_block(&mut w, p),
        Some(Observed::Absent) => w.raw(2, "public_access_block", "none", Some("no public access block is configured")),
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "public_access_block", reason),
        None => {}
    }
    match &st.policy {
        Some(Observed::Present(doc)) => {
            let enforced = tls::enforced(Some(doc), name).is_ok();
            w.raw(2, "require_tls", &enforced.to_string(), None);
            if let Some(a) = access::read_back(doc) {
                let list = |l: &[String]| Value::from(l.to_vec());
                w.open(2, "access");
                if let Some(wr) = &a.writers {
                    w.value(4, "writers", &list(wr), None);
                }
                if let Some(rd) = &a.readers {
                    w.value(4, "readers", &list(rd), None);
                }
                if a.deny_delete {
                    w.raw(4, "deny_delete", "true", None);
                }
                if !a.break_glass.is_empty() {
                    w.value(4, "break_glass", &list(&a.break_glass), None);
                }
                if let Some(admins) = &a.administrators {
                    w.value(4, "administrators", &list(admins), None);
                }
            }
            let others: Vec<String> = crate::iamdoc::statements(&doc.json)
                .into_iter()
                .filter(|s| {
                    let sid = s.get("Sid").and_then(Value::as_str);
                    sid != Some(tls::SID)
                        && !sid.is_some_and(|x| access::SIDS.contains(&x) || super::grant::SIDS.contains(&x))
                })
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
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "require_tls (bucket policy)", reason),
        None => {}
    }
    match &st.object_lock {
        Some(Observed::Present(l)) => match (&l.mode, l.days) {
            (Some(mode), Some(days)) => {
                w.raw(2, "object_lock", &format!("{{mode: {}, days: {days}}}", mode.to_ascii_lowercase()), None)
            }
            _ => w.comment(
                2,
                "Object Lock is enabled without a default retention; the policy format needs one, left unmanaged",
            ),
        },
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "object_lock", reason),
        _ => {}
    }
    match &st.lifecycle {
        Some(Observed::Present(doc)) => lifecycle(&mut w, &doc.rules),
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "lifecycle", reason),
        _ => {}
    }
    match &st.replication {
        Some(Observed::Present(doc)) => {
            let kms = matches!(&st.encryption, Some(Observed::Present(e)) if e.algorithm.starts_with("aws:kms"));
            replication(&mut w, &doc.role, &doc.rules, kms)
        }
        Some(Observed::Unknown { reason }) => w.unreadable(2, gaps, &addr, "replication", reason),
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

pub(crate) fn lifecycle(w: &mut Writer, rules: &[LifecycleRule]) {
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

fn transitions(ts: &[crate::providers::s3::section::Transition]) -> Value {
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

/// `kms_source`: the bucket encrypts with aws:kms, so the policy format
/// defaults the SSE-KMS opt-in to on; a live rule without it says so.
fn replication(w: &mut Writer, role: &str, rules: &[ReplicationRule], kms_source: bool) {
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
            if let Some(k) = &r.replica_kms_key {
                m.insert("replica_kms_key".into(), json!(literal_env(k)));
            }
            match r.replicate_kms_encrypted {
                Some(true) => {
                    m.insert("replicate_kms_encrypted".into(), json!(true));
                }
                // Said, so the import does not claim SSE-KMS objects reach the DR copy.
                _ if kms_source => {
                    m.insert("replicate_kms_encrypted".into(), json!(false));
                }
                _ => {}
            }
            if r.replication_time_minutes.is_some() {
                m.insert("replication_time".into(), json!("15m"));
            }
            w.item(6, &Value::Object(m));
        }
    }
    for r in foreign {
        left_out(w, "replication", &r.id, &gap(r).unwrap_or_default());
    }
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
            key: None,
            object_lock: None,
            principals: Default::default(),
            caller: None,
            key_policy: None,
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
