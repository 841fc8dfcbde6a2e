//! The strategy's objectives that span systems — who can read, write and
//! delete the backups and use their keys (LEAST-PRIVILEGE,
//! RTO-60MIN-READINESS), whether replication can copy them (DR-COPY),
//! whether they are immutable (IMMUTABILITY) and when a deleted row is
//! gone from every copy (ERASURE-HORIZON) — judged from the controls and
//! the documents one audit read. The systems contribute these through
//! `Provider::judge`; `audit::objectives` only iterates.

use serde_json::{json, Value};

use super::Evidence;
use crate::iamdoc as doc;
use crate::model::control::{ControlResult, Status};
use crate::model::objective::{CopyHorizon, Verdict};
use crate::policy::Policy;

pub fn judge(controls: &[&ControlResult]) -> (Verdict, Vec<String>) {
    judge_saying(controls, false)
}

/// As `judge`; with `why`, each reason ends with the control's detail
/// (the rule that cuts retention short, not only that it does).
pub fn judge_saying(controls: &[&ControlResult], why: bool) -> (Verdict, Vec<String>) {
    if controls.is_empty() {
        return (Verdict::NotEvaluated, vec!["no control in the policy covers it".into()]);
    }
    let bad: Vec<String> = controls
        .iter()
        .filter(|c| !matches!(c.status, Status::Pass | Status::Waived))
        .map(|c| {
            let status = format!("{} {} is {}", c.address, c.id, format!("{:?}", c.status).to_lowercase());
            match c.detail.as_deref() {
                Some(d) if why => format!("{status}: {d}"),
                _ => status,
            }
        })
        .collect();
    if bad.is_empty() {
        (Verdict::Met, vec![])
    } else {
        (Verdict::NotMet, bad)
    }
}

/// The controls of one audit that feed `objective`, as the systems say,
/// among those `keep` keeps.
pub fn feeding<'a>(
    ev: &Evidence<'a>,
    policy: &Policy,
    objective: &str,
    keep: &dyn Fn(&ControlResult) -> bool,
) -> Vec<&'a ControlResult> {
    ev.controls.iter().filter(|c| keep(c) && super::REGISTRY.iter().any(|p| p.feeds(c, objective, policy))).collect()
}

/// LEAST-PRIVILEGE and RTO-60MIN-READINESS, from the roles' documents as
/// the audit read them (and the policy declares them), the buckets'
/// access restriction found live, and the restore drills.
pub fn access(ev: &Evidence<'_>, policy: &Policy) -> ((Verdict, Vec<String>), (Verdict, Vec<String>)) {
    // Access: judged from the role documents the policy declares, and only
    // when the IAM controls found them live as declared (the bucket-side
    // restriction is judged below, for least privilege only).
    let iam_ok = judge(&feeding(ev, policy, "LEAST-PRIVILEGE", &|c| c.id != "S3-ACCESS"));
    let dumps: Vec<(String, String)> = policy
        .buckets
        .iter()
        .flat_map(|b| {
            b.backups.iter().filter(|e| e.max_age_secs > 900).map(move |e| (b.name.clone(), e.prefix.clone()))
        })
        .collect();
    let roles: Vec<doc::Identity> =
        policy.iam.roles.iter().filter(|r| !r.absent).map(|r| identity(ev, policy, &r.name)).collect();
    let (readiness, least) = if dumps.is_empty() || roles.is_empty() {
        let why = (Verdict::NotEvaluated, vec!["needs backups: entries and iam.roles in the policy".to_string()]);
        (why.clone(), why)
    } else if iam_ok.0 != Verdict::Met {
        let why = (Verdict::NotMet, iam_ok.1.clone());
        (why.clone(), why)
    } else {
        let mut ready = Vec::new();
        let mut excess = Vec::new();
        for (bucket, prefix) in &dumps {
            let mut readers: Vec<&doc::Identity> = Vec::new();
            let mut refused = Vec::new();
            for role in &roles {
                let key = format!("arn:aws:s3:::{bucket}/{prefix}latest-dump");
                let reaches = role_reaches(ev, policy, role, bucket, prefix, &mut excess);
                match (reaches, across_accounts(ev, policy, &role.role, bucket, "s3:GetObject", &key)) {
                    (true, None | Some(doc::Grant::Allowed(_))) => readers.push(role),
                    (true, Some(doc::Grant::Refused(why) | doc::Grant::Unknown(why))) => refused.push(format!(
                        "{} is in another account than {bucket}, whose bucket policy does not let it read: {why}",
                        role.role
                    )),
                    (false, _) => {}
                }
            }
            let why = readable(ev, policy, &readers, bucket, prefix);
            ready.extend(why.map(|w| if refused.is_empty() { w } else { format!("{w} ({})", refused.join("; ")) }));
        }
        excess.extend(bucket_side(ev, policy));
        excess.sort();
        excess.dedup();
        let v = |r: Vec<String>| if r.is_empty() { (Verdict::Met, r) } else { (Verdict::NotMet, r) };
        (v(ready), v(excess))
    };
    (with_drills(ev, readiness), least)
}

/// What `role` can do with the dumps under `bucket/prefix`: more than its
/// part (a writer that reads or deletes, a reader that writes), or the
/// bucket's protections, go into `excess`; true when it can read them.
fn role_reaches(
    ev: &Evidence<'_>,
    policy: &Policy,
    role: &doc::Identity,
    bucket: &str,
    prefix: &str,
    excess: &mut Vec<String>,
) -> bool {
    let key = format!("arn:aws:s3:::{bucket}/{prefix}latest-dump");
    let name = role.role.as_str();
    let unsure = std::cell::RefCell::new(Vec::new());
    let can = |action: &str, resource: &str| match role.may(action, resource, None) {
        doc::Grant::Allowed(by) => Some(by),
        doc::Grant::Refused(_) => None,
        doc::Grant::Unknown(why) => {
            unsure.borrow_mut().push(format!("whether {name} can {action} on {resource} is not known: {why}"));
            None
        }
    };
    let writes = can("s3:PutObject", &key);
    let reads = can("s3:GetObject", &key);
    let deletes = can("s3:DeleteObject", &key);
    let granted = |by: &Option<String>| by.as_ref().map_or(String::new(), |b| format!(" ({b})"));
    if writes.is_some() && (reads.is_some() || deletes.is_some()) {
        let (what, by) = if deletes.is_some() { ("delete", &deletes) } else { ("read", &reads) };
        excess.push(format!("{name} writes {bucket}/{prefix} and can also {what}{}", granted(by)));
    }
    if reads.is_some() && (writes.is_some() || deletes.is_some()) {
        let (what, by) = if deletes.is_some() { ("delete", &deletes) } else { ("write", &writes) };
        excess.push(format!("{name} restores from {bucket}/{prefix} and can also {what}{}", granted(by)));
    }
    // A role that reaches the backups and can rewrite the
    // bucket's policy or lifecycle can remove the protections
    // (`s3:*` includes s3:DeleteBucketPolicy: AWS S3 user guide,
    // "Amazon S3 actions"), then delete.
    // The bucket policy's configuration statement, found live
    // (S3-ACCESS), denies them to all but the administrators.
    let spec = policy.buckets.iter().find(|x| x.name == bucket);
    let shielded = spec.and_then(|x| x.access.as_ref()).is_some_and(|a| {
        let exempt = a.administrators.iter().flatten().chain(a.break_glass.iter());
        a.administrators.is_some()
            && !exempt.map(|p| crate::policy::role_name(p)).any(|p| p == name)
            && not_passing(ev, bucket, "S3-ACCESS").is_none()
    });
    if (writes.is_some() || reads.is_some()) && !shielded {
        for action in PROTECTIONS {
            if let Some(by) = can(action, &format!("arn:aws:s3:::{bucket}")) {
                excess.push(format!("{name} can {action} on {bucket} ({by}): it can remove the bucket's protections"));
            }
        }
    }
    excess.extend(unsure.into_inner());
    reads.is_some()
}

/// A role of another account than `bucket`'s reaches it only when the
/// bucket policy allows it too (AWS IAM user guide, "Cross-account policy
/// evaluation logic"): None when both are in one account (or either's is
/// not declared); else what the live bucket policy says.
fn across_accounts(
    ev: &Evidence<'_>,
    policy: &Policy,
    role: &str,
    bucket: &str,
    action: &str,
    resource: &str,
) -> Option<doc::Grant> {
    let caller = policy.accounts.iter().find(|a| a.role.is_none()).map(|a| &a.name);
    let id_of = |name: Option<&String>| policy.accounts.iter().find(|a| Some(&a.name) == name).map(|a| a.id.as_str());
    let spec = policy.iam.roles.iter().find(|r| r.name == role)?;
    let role_id = id_of(spec.account.as_ref().or(caller))?;
    let bucket_id = id_of(policy.buckets.iter().find(|b| b.name == bucket)?.account.as_ref().or(caller))?;
    if role_id == bucket_id {
        return None;
    }
    let arn = format!("arn:aws:iam::{role_id}:role/{role}");
    let addr = format!("s3.{bucket}");
    let live = ev
        .controls
        .iter()
        .find(|c| c.address.as_str() == addr && (c.id == "S3-ACCOUNT-ISOLATION" || c.id == "S3-ACCESS"));
    Some(match live {
        Some(c) if c.status == Status::Unknown => doc::Grant::Unknown(
            c.detail.clone().unwrap_or_else(|| format!("the bucket policy of {bucket} is not known")),
        ),
        Some(c) => match c.observed.get("policy").unwrap_or(&c.observed) {
            doc if doc.is_object() => doc::principal_may(doc, &arn, action, resource),
            _ => doc::Grant::Refused(doc::NO_ALLOW_RESOURCE.into()),
        },
        None => doc::Grant::Unknown(format!("the bucket policy of {bucket} was not read")),
    })
}

/// Why no declared role that reads `bucket/prefix` can use what it reads:
/// none reads it, or none may decrypt it with the bucket's key.
fn readable(
    ev: &Evidence<'_>,
    policy: &Policy,
    readers: &[&doc::Identity],
    bucket: &str,
    prefix: &str,
) -> Option<String> {
    let key_of = policy.buckets.iter().find(|x| x.name == bucket).and_then(|x| x.encryption.as_ref());
    if readers.is_empty() {
        return Some(format!("no declared role can read {bucket}/{prefix}"));
    } else if let Some(k) = key_of.and_then(|e| e.kms_key.as_deref()) {
        // Reading an SSE-KMS object is kms:Decrypt too (AWS S3 user
        // guide, "Using server-side encryption with AWS KMS keys").
        let grants: Vec<(&str, doc::Grant)> =
            readers.iter().map(|r| (r.role.as_str(), can_use_key(ev, policy, r, "kms:Decrypt", k, bucket))).collect();
        if !grants.iter().any(|(_, g)| matches!(g, doc::Grant::Allowed(_))) {
            let why: Vec<String> = grants
                .into_iter()
                .map(|(n, g)| match g {
                    doc::Grant::Refused(w) | doc::Grant::Unknown(w) | doc::Grant::Allowed(w) => {
                        format!("{n}: {w}")
                    }
                })
                .collect();
            return Some(format!(
                "no declared role that reads {bucket}/{prefix} can decrypt it with {k}: {}",
                why.join("; ")
            ));
        }
    }
    None
}

/// The roles' own policies are half of it: on the bucket side, nobody
/// else of the account may write or read the dumps either.
fn bucket_side(ev: &Evidence<'_>, policy: &Policy) -> Vec<String> {
    let mut excess = Vec::new();
    for b in policy.buckets.iter().filter(|b| b.backups.iter().any(|e| e.max_age_secs > 900)) {
        let a = b.access.as_ref();
        if a.and_then(|a| a.writers.as_ref()).is_none() || a.and_then(|a| a.readers.as_ref()).is_none() {
            excess.push(format!(
                "{} does not restrict its writers and readers on the bucket side (`access:`): any principal of the account with s3:* can write or read the dumps",
                b.name
            ));
        } else if let Some(bad) = not_passing(ev, &b.name, "S3-ACCESS") {
            excess.push(bad);
        }
    }
    excess
}

/// Evidence over configuration: where the policy declares a restore drill,
/// readiness needs its last run to have passed within the RTO.
fn with_drills(ev: &Evidence<'_>, readiness: (Verdict, Vec<String>)) -> (Verdict, Vec<String>) {
    let drills: Vec<&ControlResult> = ev.controls.iter().filter(|c| c.id == "RESTORE-DRILL").collect();
    if drills.is_empty() {
        readiness
    } else {
        let (v, r) = judge(&drills);
        match (readiness.0, v) {
            (Verdict::Met, Verdict::Met) => (Verdict::Met, vec![]),
            (Verdict::NotEvaluated, Verdict::Met) => (Verdict::Met, vec![]),
            _ => (Verdict::NotMet, [if readiness.0 == Verdict::Met { vec![] } else { readiness.1 }, r].concat()),
        }
    }
}

/// RPO-15MIN is met only from evidence that a point in time can be
/// recovered: WAL in a repository that holds a base backup (PITR-WAL) and
/// a point-in-time drill that reached the RPO (PITR-DRILL). WAL alone
/// cannot be replayed onto a logical dump. The reasons an instance lacks
/// them.
pub fn rpo_gaps(ev: &Evidence<'_>, policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for pg in &policy.postgres {
        let addr = crate::model::Address::parse(&format!("postgres.{}.pitr", pg.name));
        let has = |id: &str| ev.controls.iter().any(|c| c.id == id && c.address == addr);
        let lacks = if pg.pitr.is_none() {
            Some(format!(
                "postgres.{} declares no `pitr:`: WAL cannot be replayed onto a logical dump, so no point in time is recoverable",
                pg.name
            ))
        } else if !has("PITR-WAL") || !has("PITR-DRILL") {
            Some(format!("postgres.{}.pitr: PITR-WAL and PITR-DRILL were not evaluated (audit reads them)", pg.name))
        } else {
            None
        };
        out.extend(lacks);
    }
    out
}

/// Backup freshness feeds the RPO only for entries of 15 minutes or less.
pub fn fast_entries(policy: &Policy) -> Vec<crate::model::Address> {
    policy
        .buckets
        .iter()
        .flat_map(|b| {
            b.backups
                .iter()
                .filter(|e| e.max_age_secs <= 900)
                .map(move |e| crate::model::Address::s3_bucket(&b.name).child("backups").child(&e.name))
        })
        .collect()
}

/// A resource that stands for the key `key` names (a key ARN as is; an
/// alias, which IAM matches on the key behind it, as any key of its
/// region), to test a role's documents against.
fn key_probe(key: &str, region: Option<&str>) -> String {
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "kms", _, _, rest] if rest.starts_with("key/") => key.to_string(),
        ["arn", p, "kms", r, account, _] => format!("arn:{p}:kms:{r}:{account}:key/probe"),
        _ => format!("arn:aws:kms:{}:000000000000:key/probe", region.unwrap_or("us-east-1")),
    }
}

/// The alias a key is known by, when the policy says: `alias/NAME`
/// written out, or a key of this policy (created under its alias).
fn key_alias(key: &str, policy: &Policy) -> Option<String> {
    if let Some(rest) = key.split(':').nth(5).and_then(|r| r.strip_prefix("alias/")).or(key.strip_prefix("alias/")) {
        return Some(format!("alias/{rest}"));
    }
    policy.kms.iter().find(|k| k.name == key || k.alias == key).map(|k| k.alias.clone())
}

/// A bucket's region: as the policy declares it, else the default.
fn region_of(policy: &Policy, bucket: &str) -> Option<String> {
    policy.buckets.iter().find(|x| x.name == bucket).and_then(|x| x.region.clone()).or(policy.default_region.clone())
}

/// The request S3 makes to KMS for a role reading or writing `bucket`'s
/// objects under `key`: through S3 in the bucket's region, with the
/// object's ARN as encryption context, or the bucket's with an S3 Bucket
/// Key (AWS S3 user guide, "Replicating encrypted objects": S3 Bucket Keys
/// and replication; "Reducing the cost of SSE-KMS with Amazon S3 Bucket
/// Keys"), and the key's alias. Returns it with the context, for reasons.
fn through_s3(
    policy: &Policy,
    key: &str,
    bucket: &str,
    region: Option<&str>,
) -> (Vec<(&'static str, Vec<String>)>, String) {
    let bucket_key = policy
        .buckets
        .iter()
        .find(|x| x.name == bucket)
        .and_then(|x| x.encryption.as_ref())
        .and_then(|e| e.bucket_key)
        .unwrap_or(false);
    let context = if bucket_key { format!("arn:aws:s3:::{bucket}") } else { format!("arn:aws:s3:::{bucket}/backup") };
    let mut req = vec![
        ("kms:ViaService", vec![format!("s3.{}.amazonaws.com", region.unwrap_or("us-east-1"))]),
        ("kms:EncryptionContext:aws:s3:arn", vec![context.clone()]),
    ];
    if let Some(alias) = key_alias(key, policy) {
        req.push(("kms:ResourceAliases", vec![alias]));
    }
    (req, context)
}

/// Whether `identity` can use `key` for `action` through S3 on `bucket`:
/// its IAM policies and, when the audit read it, the key's policy.
fn can_use_key(
    ev: &Evidence<'_>,
    policy: &Policy,
    identity: &doc::Identity,
    action: &str,
    key: &str,
    bucket: &str,
) -> doc::Grant {
    let region = region_of(policy, bucket);
    let (req, _) = through_s3(policy, key, bucket, region.as_deref());
    match identity.may(action, &key_resource(ev, policy, identity, key, region.as_deref()), Some(&req)) {
        doc::Grant::Allowed(by) => match (identity.arn.as_deref(), key_policy_of(ev, policy, key)) {
            (Some(arn), Some(kp)) => match kp.allows(arn, action, Some(&req)) {
                doc::Grant::Allowed(_) => doc::Grant::Allowed(by),
                other => other,
            },
            _ => doc::Grant::Allowed(by),
        },
        other => other,
    }
}

/// The resource IAM matches for `key`: its ARN when the audit read it
/// (a key of the policy, or a bucket's key), else a stand-in in the
/// role's account.
fn key_resource(
    ev: &Evidence<'_>,
    policy: &Policy,
    identity: &doc::Identity,
    key: &str,
    region: Option<&str>,
) -> String {
    let known = key_policy_of(ev, policy, key)
        .and_then(|kp| kp.names.iter().find(|n| n.starts_with("arn:") && n.contains(":key/")).cloned());
    let account = identity.arn.as_deref().and_then(|a| a.split(':').nth(4)).filter(|a| !a.is_empty());
    known.unwrap_or_else(|| match (key_probe(key, region), account) {
        (probe, Some(acct)) if probe.contains(":000000000000:key/probe") => {
            probe.replace(":000000000000:", &format!(":{acct}:"))
        }
        (probe, _) => probe,
    })
}

/// The policy of the key `key` names (a key of `kms.keys` by its name,
/// alias or ARN), when the audit read it.
fn key_policy_of<'r>(ev: &Evidence<'r>, policy: &Policy, key: &str) -> Option<&'r doc::KeyPolicy> {
    let alias = key_alias(key, policy);
    ev.key_policies.iter().find(|kp| kp.names.iter().any(|n| n == key || Some(n) == alias.as_ref()))
}

/// Replication rules of bucket `b` that leave SSE-KMS objects out while
/// the bucket encrypts its backups with KMS: they copy nothing of them.
fn kms_left_out(
    policy: &Policy,
    b: &crate::providers::s3::section::BucketSpec,
    r: &crate::providers::s3::section::Replication,
) -> Vec<String> {
    let mut out = Vec::new();
    // S3 does not replicate SSE-KMS objects unless the rule opts in
    // (AWS S3 user guide, "Replicating encrypted objects": SSE-KMS
    // objects need SourceSelectionCriteria.SseKmsEncryptedObjects): on
    // a bucket that encrypts with KMS such a rule copies nothing.
    let kms_bucket =
        b.encryption.as_ref().is_some_and(|e| e.kms_key.is_some() || e.algorithm != crate::policy::Algorithm::Aes256);
    // The backups this bucket holds: its entries and pgBackRest
    // repositories; a rule over other objects is not the DR copy.
    let held: Vec<&str> = b
        .backups
        .iter()
        .map(|e| e.prefix.as_str())
        .chain(
            policy
                .postgres
                .iter()
                .filter_map(|pg| pg.pitr.as_ref())
                .filter(|p| p.repo.bucket == b.name)
                .map(|p| p.repo.prefix.as_str()),
        )
        .collect();
    let covers = |rule: &crate::providers::s3::section::ReplicationRule| {
        held.iter().any(|p| p.starts_with(&rule.prefix) || rule.prefix.starts_with(p))
    };
    if kms_bucket {
        for rule in r.rules.iter().filter(|x| x.enabled && x.replicate_kms_encrypted == Some(false) && covers(x)) {
            let scope = if rule.prefix.is_empty() { String::new() } else { format!(" under {}", rule.prefix) };
            out.push(format!(
                "replication rule {} of {} leaves SSE-KMS objects out (replicate_kms_encrypted: false) and {} encrypts with KMS: nothing{scope} reaches {}",
                rule.id, b.name, b.name, rule.destination
            ));
        }
    }
    out
}

/// DR-COPY needs the replication role able to decrypt the source objects
/// and encrypt the replicas (AWS S3 user guide, "Replicating encrypted
/// objects"): judged from the role's documents the IAM controls found
/// live as declared; a role outside the policy cannot be checked.
pub fn replication_key_access(ev: &Evidence<'_>, policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for b in &policy.buckets {
        let Some(r) = &b.replication else { continue };
        out.extend(kms_left_out(policy, b, r));
        let kms_rules: Vec<_> = r.rules.iter().filter(|x| x.replicate_kms_encrypted == Some(true)).collect();
        if kms_rules.is_empty() {
            continue;
        }
        let name = crate::policy::role_name(&r.role);
        let Some(role) = policy.iam.roles.iter().find(|x| x.name == name && !x.absent) else {
            out.push(format!(
                "replication role `{name}` of {} is not in the policy: its KMS permissions are not verified (declare it under iam.roles)",
                b.name
            ));
            continue;
        };
        let addr = format!("iam.role.{name}");
        let live = ev
            .controls
            .iter()
            .filter(|c| c.address.as_str() == addr && (c.id == "IAM-ROLE" || c.id == "IAM-POLICY"))
            .all(|c| matches!(c.status, Status::Pass | Status::Waived));
        if !live {
            out.push(format!("replication role `{name}` is not as the policy declares it (IAM controls)"));
            continue;
        }
        let identity = identity(ev, policy, &role.name);
        // The request S3 makes to KMS for the role: through S3 in the
        // key's region, with the object's ARN as encryption context, or
        // the bucket's with an S3 Bucket Key (AWS S3 user guide,
        // "Replicating encrypted objects": S3 Bucket Keys and replication).
        let check = |action: &str, key: &str, bucket: &str, what: &str| -> Option<String> {
            let region = region_of(policy, bucket);
            let (req, context) = through_s3(policy, key, bucket, region.as_deref());
            match identity.may(action, &key_resource(ev, policy, &identity, key, region.as_deref()), Some(&req)) {
                // IAM allows it: the key policy must too.
                doc::Grant::Allowed(_) => {
                    let (arn, kp) = (identity.arn.as_deref()?, key_policy_of(ev, policy, key)?);
                    match kp.allows(arn, action, Some(&req)) {
                        doc::Grant::Allowed(_) => None,
                        doc::Grant::Refused(why) => {
                            Some(format!("replication role `{name}` cannot {action} with {key}, {what}: {why}"))
                        }
                        doc::Grant::Unknown(e) => Some(format!(
                            "replication role `{name}`: whether it may {action} with {key}, {what}, is not known here: {e}"
                        )),
                    }
                }
                doc::Grant::Refused(why) => {
                    // Why, when it is more than the absence of an Allow.
                    let why = if why == doc::NO_ALLOW { String::new() } else { format!(": {why}") };
                    Some(format!(
                        "replication role `{name}` cannot {action} with {key}, {what}, for encryption context {context}{why}"
                    ))
                }
                doc::Grant::Unknown(e) => Some(format!(
                    "replication role `{name}`: whether it may {action} with {key}, {what}, is not known here: {e}"
                )),
            }
        };
        if let Some(k) = b.encryption.as_ref().and_then(|e| e.kms_key.as_deref()) {
            out.extend(check("kms:Decrypt", k, &b.name, &format!("the key of {}", b.name)));
        }
        for rule in kms_rules {
            let Some(k) = rule.replica_kms_key.as_deref() else { continue };
            let what = format!("the replica key of rule {}", rule.id);
            out.extend(check("kms:Encrypt", k, &rule.destination, &what));
            out.extend(check("kms:Decrypt", k, &rule.destination, &what));
        }
    }
    out
}

/// `s3.BUCKET ID is STATUS` unless the control passed (or is waived);
/// also when it was not evaluated at all.
fn not_passing(ev: &Evidence<'_>, bucket: &str, id: &str) -> Option<String> {
    let addr = format!("s3.{bucket}");
    match ev.controls.iter().find(|c| c.id == id && c.address.as_str() == addr) {
        Some(c) if matches!(c.status, Status::Pass | Status::Waived) => None,
        Some(c) => Some(format!("{addr} {id} is {}", format!("{:?}", c.status).to_lowercase())),
        None => Some(format!("{addr} {id} was not evaluated")),
    }
}

/// IMMUTABILITY: every bucket holding backups, and each DR copy of one
/// the policy declares, keeps them under Object Lock at least as long as
/// their retention, denies deletes on the bucket side, and is versioned
/// (so an overwrite is a new version, never a loss) — each measured by
/// its control.
pub fn immutability(ev: &Evidence<'_>, policy: &Policy) -> (Verdict, Vec<String>) {
    let mut scope: Vec<(&crate::providers::s3::section::BucketSpec, u64)> = Vec::new();
    for b in policy.buckets.iter().filter(|b| !b.backups.is_empty()) {
        let keep = b.backups.iter().filter_map(|e| e.retention_days).max().unwrap_or(0);
        scope.push((b, keep));
        for rule in b.replication.iter().flat_map(|r| r.rules.iter()) {
            if let Some(d) = policy.buckets.iter().find(|x| x.name == rule.destination) {
                scope.push((d, keep));
            }
        }
    }
    if scope.is_empty() {
        return (Verdict::NotEvaluated, vec!["needs backups: entries in the policy".into()]);
    }
    scope.sort_by(|a, b| a.0.name.cmp(&b.0.name).then(b.1.cmp(&a.1)));
    scope.dedup_by(|a, b| a.0.name == b.0.name);
    // The strategy asks for versioning, not for immutability: a policy that
    // asks for neither Object Lock nor bucket-side delete denial anywhere
    // has not chosen this objective, and it is not held against it.
    if !scope.iter().any(|(b, _)| b.object_lock.is_some() || b.access.as_ref().is_some_and(|a| a.deny_delete)) {
        return (
            Verdict::NotEvaluated,
            vec!["the policy asks for no `object_lock:` or `access.deny_delete` on the buckets holding backups; declare them to evaluate it".into()],
        );
    }
    let mut reasons = Vec::new();
    for (b, keep) in scope {
        match &b.object_lock {
            None => reasons.push(format!("{} has no object_lock: its backups can be deleted", b.name)),
            Some(l) if (l.days as u64) < keep => {
                reasons.push(format!("{} locks versions {} days, but its backups are kept {keep} days", b.name, l.days))
            }
            Some(l) => {
                reasons.extend(not_passing(ev, &b.name, "S3-OBJECT-LOCK"));
                // Governance-mode retention is lifted by whoever may
                // s3:BypassGovernanceRetention, or may rewrite the bucket
                // policy that denies it (AWS S3 user guide, "Object Lock":
                // governance mode): held only with the configuration
                // restricted to the administrators, or in compliance mode.
                let admins = b.access.as_ref().is_some_and(|a| a.administrators.is_some());
                if l.mode == crate::providers::s3::section::LockMode::Governance && !admins {
                    reasons.push(format!(
                        "{} locks in GOVERNANCE mode and does not restrict who may change its policy, lifecycle and lock (`access.administrators`): anyone who can rewrite the bucket policy can lift the retention; declare the administrators or use mode: compliance",
                        b.name
                    ));
                }
            }
        }
        if b.access.as_ref().is_some_and(|a| a.deny_delete) {
            reasons.extend(not_passing(ev, &b.name, "S3-ACCESS"));
        } else {
            reasons.push(format!("{} does not deny deletes on the bucket side (`access.deny_delete`)", b.name));
        }
        reasons.extend(not_passing(ev, &b.name, "S3-VERSIONING"));
        if !b.foreign.is_empty() {
            reasons.extend(not_passing(ev, &b.name, "S3-ACCOUNT-ISOLATION"));
            reasons.extend(through_roles(ev, policy, b));
        }
    }
    // The backups themselves, not only the buckets' defaults: a default
    // retention does not lock what was there before it.
    for c in ev.controls.iter().filter(|c| c.id == "BACKUP-LOCKED") {
        if !matches!(c.status, Status::Pass | Status::Waived) {
            let status = format!("{:?}", c.status).to_lowercase();
            reasons.push(format!("{} BACKUP-LOCKED is {status}: {}", c.address, c.detail.clone().unwrap_or_default()));
        }
    }
    if reasons.is_empty() {
        (Verdict::Met, reasons)
    } else {
        (Verdict::NotMet, reasons)
    }
}

/// What principals of other accounts may do to bucket `b` through a role
/// of its own account they may assume: each role the policy declares
/// there whose trust lets another declared account in (judged as a
/// resource policy: the trust policy is the role's) and whose permissions
/// allow a destructive action on the bucket that its policy does not deny.
/// Judged from the declared documents when the IAM controls found them
/// live as declared.
fn through_roles(ev: &Evidence<'_>, policy: &Policy, b: &crate::providers::s3::section::BucketSpec) -> Vec<String> {
    use crate::providers::s3::isolation::ACTIONS;
    let caller = policy.accounts.iter().find(|a| a.role.is_none()).map(|a| &a.name);
    let own = b.account.as_ref().or(caller);
    let own_id = policy.accounts.iter().find(|a| Some(&a.name) == own).map(|a| a.id.clone());
    let live_policy = ev
        .controls
        .iter()
        .find(|c| c.id == "S3-ACCOUNT-ISOLATION" && c.address.as_str() == format!("s3.{}", b.name))
        .map(|c| c.observed["policy"].clone())
        .unwrap_or(Value::Null);
    let mut out = Vec::new();
    let in_own = |r: &&crate::providers::iam::section::RoleSpec| !r.absent && r.account.as_ref().or(caller) == own;
    for role in policy.iam.roles.iter().filter(in_own) {
        let Some(trust) = &role.trust else { continue };
        let trust = with_resource(trust);
        let arn =
            own_id.as_deref().map_or_else(|| role.name.clone(), |id| format!("arn:aws:iam::{id}:role/{}", role.name));
        let admitted: Vec<&str> = b
            .foreign
            .iter()
            .filter(|(_, id)| matches!(doc::account_may(&trust, id, "sts:AssumeRole", &arn), doc::Grant::Allowed(_)))
            .map(|(n, _)| n.as_str())
            .collect();
        if admitted.is_empty() {
            continue;
        }
        let addr = format!("iam.role.{}", role.name);
        let live = ev
            .controls
            .iter()
            .filter(|c| {
                c.address.as_str() == addr && (c.id == "IAM-ROLE" || c.id == "IAM-TRUST" || c.id == "IAM-POLICY")
            })
            .all(|c| matches!(c.status, Status::Pass | Status::Waived));
        if !live {
            out.push(format!(
                "role `{}` is not as the policy declares it (IAM controls): who may assume it is not known",
                role.name
            ));
            continue;
        }
        let identity = identity(ev, policy, &role.name);
        for (action, on_objects) in ACTIONS {
            let resource =
                if on_objects { format!("arn:aws:s3:::{}/*", b.name) } else { format!("arn:aws:s3:::{}", b.name) };
            let allowed = matches!(identity.may(action, &resource, None), doc::Grant::Allowed(_));
            let denied =
                live_policy.is_object() && doc::denial(&live_policy, &arn, action, &resource) == doc::Denial::Denied;
            if allowed && !denied {
                out.push(format!(
                    "{} may assume role `{}`, which may {action} on {}",
                    admitted.join(", "),
                    role.name,
                    b.name
                ));
            }
        }
    }
    out
}

/// A trust policy with `Resource: *` on each statement, to be judged as
/// the resource policy it is.
fn with_resource(trust: &Value) -> Value {
    let mut t = doc::canonical(trust);
    if let Some(list) = t.get_mut("Statement").and_then(Value::as_array_mut) {
        for st in list {
            if let Some(m) = st.as_object_mut() {
                m.entry("Resource").or_insert_with(|| json!("*"));
            }
        }
    }
    t
}

/// ERASURE-HORIZON: every copy of every backup — each entry's objects and
/// versions, its DR replicas, the pgBackRest repository — is gone within
/// `privacy.erasure_within` of a deletion, by the lifecycle and Object
/// Lock the policy declares and the controls found live as declared.
pub fn erasure_horizon(ev: &Evidence<'_>, policy: &Policy) -> (Verdict, Vec<String>) {
    if !crate::policy::erasure::evaluated(policy) {
        return (Verdict::NotEvaluated, vec!["declare `privacy: {erasure_within: 30d}` to evaluate it".into()]);
    }
    let copies = crate::policy::erasure::copies(policy);
    if copies.is_empty() {
        return (Verdict::NotEvaluated, vec!["needs backups: entries or pitr: in the policy".into()]);
    }
    let mut reasons = Vec::new();
    let mut seen_buckets = Vec::new();
    for c in &copies {
        // A copy no erasure_within applies to (the policy has none and its
        // entry sets none) is not judged.
        let Some(within) = c.within_secs else { continue };
        let within_days = within.div_ceil(86_400);
        let what = &c.what;
        match &c.horizon {
            Ok(d) if *d <= within_days => {}
            Ok(d) => reasons.push(format!(
                "{what} keeps a deleted row recoverable up to {d} days, {} over erasure_within ({within_days} days)",
                d - within_days
            )),
            Err(why) => reasons.push(format!("{what} keeps a deleted row recoverable indefinitely: {why}")),
        }
        if !seen_buckets.contains(&c.bucket) {
            seen_buckets.push(c.bucket.clone());
        }
    }
    // The declared configuration is what is live, and the oldest version
    // each copy holds is within its horizon (evidence, not configuration).
    for name in seen_buckets {
        for id in ["S3-LIFECYCLE", "S3-OBJECT-LOCK", "S3-OLDEST-VERSION"] {
            let declared = policy.buckets.iter().find(|b| b.name == name).is_some_and(|b| match id {
                "S3-LIFECYCLE" => b.lifecycle.is_some(),
                "S3-OBJECT-LOCK" => b.object_lock.is_some(),
                _ => true,
            });
            if !declared {
                continue;
            }
            // The evidence says which version outlives its horizon.
            let addr = format!("s3.{name}");
            let detail = (id == "S3-OLDEST-VERSION")
                .then(|| ev.controls.iter().find(|c| c.id == id && c.address.as_str() == addr))
                .flatten()
                .and_then(|c| c.detail.clone());
            reasons.extend(not_passing(ev, &name, id).map(|r| match &detail {
                Some(d) => format!("{r}: {d}"),
                None => r,
            }));
        }
    }
    if reasons.is_empty() {
        (Verdict::Met, reasons)
    } else {
        (Verdict::NotMet, reasons)
    }
}

/// The bucket actions that remove a backup bucket's protections.
const PROTECTIONS: [&str; 3] = ["s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration"];

/// What the audit cannot see of a role's permissions.
pub const SCP_NOTE: &str = "judged from every identity policy and permissions boundary of the roles; service control policies and session policies also limit them and cannot be read from a member account";

/// The role's identity as the audit read it (every inline and attached
/// policy, its boundary); without a live read (a ev built from
/// controls alone), as the policy declares it: its inline policies and
/// the customer-managed policies of the policy it attaches.
fn identity(ev: &Evidence<'_>, policy: &Policy, name: &str) -> doc::Identity {
    if let Some(live) = ev.identities.iter().find(|i| i.role == name) {
        return live.clone();
    }
    let Some(role) = policy.iam.roles.iter().find(|r| r.name == name) else {
        return doc::Identity { role: name.to_string(), arn: None, policies: Ok(Vec::new()), boundary: None };
    };
    let mut docs: Vec<(String, Value)> =
        role.inline_policies.iter().flatten().map(|(n, d)| (format!("inline policy {n}"), d.clone())).collect();
    docs.extend(role.managed_policies.iter().flatten().filter_map(|arn| {
        let n = arn.rsplit('/').next().unwrap_or(arn);
        policy.iam.policies.iter().find(|m| m.name == n).map(|m| (arn.clone(), m.document.clone()))
    }));
    doc::Identity { role: name.to_string(), arn: None, policies: Ok(docs), boundary: None }
}

/// The copies ERASURE-HORIZON judged, with the oldest version
/// S3-OLDEST-VERSION read under each (from its observed value).
pub fn copy_table(ev: &Evidence<'_>, policy: &Policy) -> Vec<CopyHorizon> {
    crate::policy::erasure::copies(policy)
        .into_iter()
        .map(|c| {
            let addr = format!("s3.{}", c.bucket);
            let seen = ev
                .controls
                .iter()
                .find(|r| r.id == "S3-OLDEST-VERSION" && r.address.as_str() == addr)
                .map(|r| &r.observed[c.prefix.as_str()]);
            let oldest = seen.and_then(|s| s["age_seconds"].as_u64()).map(|s| (s as f64 / 8_640.0).round() / 10.0);
            CopyHorizon {
                copy: c.what,
                horizon_days: c.horizon.as_ref().ok().copied(),
                unbounded: c.horizon.err().map(String::from),
                erasure_within_days: c.within_secs.map(|w| w.div_ceil(86_400)),
                oldest_version_days: oldest,
                versions: seen.and_then(|s| s["versions"].as_u64()),
            }
        })
        .collect()
}
