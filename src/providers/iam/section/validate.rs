//! Validation of the `iam:` section: roles and customer-managed policies as
//! IAM itself would check them, and the replication role's generated
//! permissions.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use super::raw::{RawIam, RawRole, StateRaw};
use super::{Iam, ManagedPolicySpec, RoleSpec};
use crate::policy::diag::{Code, Diagnostic};
use crate::policy::document::{size, DocKind, INLINE_LIMIT, MANAGED_LIMIT, TRUST_LIMIT};
use crate::policy::raw::Sp;
use crate::policy::validate::Validator;
use crate::providers::s3::section::BucketSpec;

fn is_role_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn is_path(p: &str) -> bool {
    p.starts_with('/') && p.ends_with('/') && p.len() <= 512 && p.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
}

impl Validator<'_> {
    /// `iam.policies`: each name valid, each document within IAM's limit.
    fn managed_policy_specs(&mut self, raw: &RawIam) -> Vec<ManagedPolicySpec> {
        let mut policies = Vec::new();
        for (name, p) in &raw.policies.0 {
            let n = name.value().clone();
            if !is_role_name(&n) || n.len() > 128 {
                self.diags.push(
                    Diagnostic::new(
                        Code::IamNameInvalid,
                        format!("`{n}` is not a valid IAM policy name"),
                        Some(name.pos()),
                    )
                    .help("letters, digits and +=,.@_-, at most 128 characters"),
                );
            }
            let pv = p.value();
            let path = self.iam_path(pv.path.as_ref());
            let account = pv.account.as_ref().and_then(|a| self.account_ref(a));
            if let Some(document) = self.iam_document(&pv.document, DocKind::Identity, MANAGED_LIMIT) {
                policies.push(ManagedPolicySpec {
                    name: n,
                    account,
                    path,
                    description: pv.description.as_ref().map(|d| d.value().clone()),
                    document,
                    line: name.pos().line,
                });
            }
        }
        policies
    }

    /// A role's `managed_policies`: each an IAM policy ARN or a policy of
    /// `iam.policies`, listed once.
    fn role_managed(&mut self, raw: &RawIam, rv: &RawRole) -> Option<Vec<String>> {
        rv.managed_policies.as_ref().map(|list| {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for p in list.value() {
                let v = p.value();
                let known = raw.policies.0.iter().any(|(k, _)| k.value() == v);
                let arn_ok = v.starts_with("arn:") && v.split(':').nth(2) == Some("iam") && v.contains(":policy/");
                if !known && !arn_ok {
                    self.diags.push(
                        Diagnostic::new(Code::PolicyRefInvalid, format!("`{v}` is neither a managed policy ARN nor a policy under iam.policies"), Some(p.pos()))
                            .help("write arn:aws:iam::aws:policy/NAME, arn:aws:iam::ACCOUNT:policy/NAME, or the name of a policy declared under iam.policies"),
                    );
                } else if !seen.insert(v.clone()) {
                    self.diags.push(Diagnostic::new(Code::DuplicateKey, format!("`{v}` is listed twice"), Some(p.pos())).help("list each policy once"));
                } else {
                    out.push(v.clone());
                }
            }
            out
        })
    }

    pub(crate) fn iam(&mut self, raw: &Sp<RawIam>, buckets: &[BucketSpec], default_region: Option<&str>) -> Iam {
        let raw = raw.value();
        let policies = self.managed_policy_specs(raw);
        let mut roles = Vec::new();
        for (name, r) in &raw.roles.0 {
            roles.push(self.role(raw, name, r.value(), buckets, default_region));
        }
        Iam { roles, policies }
    }

    fn role(
        &mut self,
        raw: &RawIam,
        name: &Sp<String>,
        rv: &RawRole,
        buckets: &[BucketSpec],
        default_region: Option<&str>,
    ) -> RoleSpec {
        let n = name.value().clone();
        if !is_role_name(&n) {
            self.diags.push(
                Diagnostic::new(Code::IamNameInvalid, format!("`{n}` is not a valid IAM role name"), Some(name.pos()))
                    .help("letters, digits and +=,.@_-, at most 64 characters"),
            );
        }
        let absent = rv.state.as_ref().is_some_and(|s| *s.value() == StateRaw::Absent);
        if let Some(d) = &rv.max_session_duration {
            if !(3600..=43200).contains(d.value()) {
                self.diags.push(
                    Diagnostic::new(
                        Code::ValueOutOfRange,
                        format!("max_session_duration is {}, it must be 3600–43200 seconds", d.value()),
                        Some(d.pos()),
                    )
                    .help("write a number of seconds between 3600 (1 h) and 43200 (12 h)"),
                );
            }
        }
        let mut trust = rv.trust.as_ref().and_then(|t| self.iam_document(t, DocKind::Trust, TRUST_LIMIT));
        let mut inline = self.inline_policies(rv);
        self.s3_replication(&n, rv, &mut trust, &mut inline, buckets, default_region);
        if let Some(inl) = &inline {
            let total: usize = inl.values().map(size).sum();
            if total > INLINE_LIMIT {
                self.diags.push(
                    Diagnostic::new(
                        Code::DocumentTooLarge,
                        format!(
                            "the inline policies of role `{n}` total {total} characters; IAM allows {INLINE_LIMIT}"
                        ),
                        Some(name.pos()),
                    )
                    .help("move statements into a managed policy under iam.policies"),
                );
            }
        }
        let managed = self.role_managed(raw, rv);
        if !absent && trust.is_none() && rv.trust.is_none() {
            self.diags.push(
                Diagnostic::new(
                    Code::MissingField,
                    format!("role `{n}` needs a `trust` document (who may assume it)"),
                    Some(name.pos()),
                )
                .help("add `trust:` with a statement allowing sts:AssumeRole to a Principal"),
            );
        }
        RoleSpec {
            name: n,
            account: rv.account.as_ref().and_then(|a| self.account_ref(a)),
            absent,
            path: rv.path.as_ref().map(|_| self.iam_path(rv.path.as_ref())),
            description: rv.description.as_ref().map(|d| d.value().clone()),
            max_session_duration: rv.max_session_duration.as_ref().map(|d| *d.value()),
            tags: rv.tags.as_ref().map(|t| t.value().clone()),
            trust,
            inline_policies: inline,
            managed_policies: managed,
            exclusive: rv.exclusive.as_ref().is_some_and(|e| *e.value()),
            line: name.pos().line,
        }
    }

    /// `inline_policies:`, each name and document checked.
    fn inline_policies(&mut self, rv: &RawRole) -> Option<BTreeMap<String, Value>> {
        rv.inline_policies.as_ref().map(|ip| {
            let mut out = BTreeMap::new();
            for (pname, doc) in &ip.value().0 {
                if !is_role_name(pname.value()) || pname.value().len() > 128 {
                    self.diags.push(
                        Diagnostic::new(
                            Code::IamNameInvalid,
                            format!("`{}` is not a valid inline policy name", pname.value()),
                            Some(pname.pos()),
                        )
                        .help("letters, digits and +=,.@_-, at most 128 characters"),
                    );
                }
                if let Some(d) = self.iam_document(doc, DocKind::Identity, INLINE_LIMIT) {
                    out.insert(pname.value().clone(), d);
                }
            }
            out
        })
    }

    /// `s3_replication: true`: the permissions replication needs, derived
    /// from the buckets whose replication names the role, and S3 as who
    /// may assume it.
    fn s3_replication(
        &mut self,
        n: &str,
        rv: &RawRole,
        trust: &mut Option<Value>,
        inline: &mut Option<BTreeMap<String, Value>>,
        buckets: &[BucketSpec],
        default_region: Option<&str>,
    ) {
        if rv.s3_replication.as_ref().is_some_and(|s| *s.value()) {
            let derived = replication_permissions(n, buckets, default_region);
            match (derived, &rv.s3_replication) {
                (Some(doc), _) => {
                    inline.get_or_insert_with(BTreeMap::new).insert("s3-replication".into(), doc);
                    trust.get_or_insert_with(|| {
                        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
                    });
                }
                // Its bucket's replication had errors, reported there.
                (None, _) if self.broken_replication_roles.iter().any(|r| r == n) => {
                    trust.get_or_insert_with(|| json!({"Version": "2012-10-17", "Statement": []}));
                }
                (None, Some(pos)) => self.diags.push(
                    Diagnostic::new(
                        Code::ReplicationRoleUnused,
                        format!("`s3_replication: true` but no bucket's replication names role `{n}`"),
                        Some(pos.pos()),
                    )
                    .help(format!("set `replication.role: {n}` on the source bucket, or remove `s3_replication`")),
                ),
                (None, None) => {}
            }
        }
    }

    fn iam_path(&mut self, p: Option<&Sp<String>>) -> String {
        let Some(p) = p else { return "/".into() };
        if !is_path(p.value()) {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, format!("`{}` is not an IAM path", p.value()), Some(p.pos()))
                    .help("a path starts and ends with `/`, e.g. /backup/"),
            );
        }
        p.value().clone()
    }
}

/// The standard permissions S3 replication needs, derived from every
/// bucket whose replication names `role`; None when none does.
/// `default_region` is the policy's `aws.region`, for buckets without one.
pub fn replication_permissions(role: &str, buckets: &[BucketSpec], default_region: Option<&str>) -> Option<Value> {
    let mut sources = Vec::new();
    let mut dests = Vec::new();
    let mut kms = Vec::new();
    let region_of = |name: &str| {
        buckets.iter().find(|b| b.name == name).and_then(|b| b.region.clone().or(default_region.map(str::to_string)))
    };
    // A destination outside the policy may use a Bucket Key: not known,
    // so both encryption contexts are allowed for it.
    let bucket_key_of = |name: &str| match buckets.iter().find(|b| b.name == name) {
        Some(b) => b.encryption.as_ref().and_then(|e| e.bucket_key).unwrap_or(false),
        None => true,
    };
    for b in buckets {
        let Some(r) = &b.replication else { continue };
        let names_role =
            r.role == role || r.role.ends_with(&format!(":role/{role}")) || r.role.ends_with(&format!("/{role}"));
        if !names_role {
            continue;
        }
        sources.push(b.name.clone());
        for rule in &r.rules {
            if !dests.contains(&rule.destination) {
                dests.push(rule.destination.clone());
            }
            if rule.replicate_kms_encrypted != Some(true) {
                continue;
            }
            // Replicating SSE-KMS objects: the role decrypts with the source
            // key and encrypts with the replica key, each only through S3
            // for that bucket (AWS S3 user guide, "Replicating encrypted
            // objects (SSE-S3, SSE-KMS, DSSE-KMS, SSE-C)").
            if let Some(key) = b.encryption.as_ref().and_then(|e| e.kms_key.as_deref()) {
                let region = region_of(&b.name);
                let statement = kms_statement(
                    "DecryptSourceObjects",
                    &["kms:Decrypt"],
                    key,
                    region.as_deref(),
                    &b.name,
                    bucket_key_of(&b.name),
                );
                kms.push(statement);
            }
            if let Some(key) = &rule.replica_kms_key {
                let region = region_of(&rule.destination).or_else(|| kms_region(key));
                // Encrypt for the replicas, and Decrypt as well: S3 reads
                // back what it wrote with that key (the replica of a
                // multipart object, the destination's Bucket Key).
                let statement = kms_statement(
                    "EncryptReplicas",
                    &["kms:Encrypt", "kms:Decrypt"],
                    key,
                    region.as_deref(),
                    &rule.destination,
                    bucket_key_of(&rule.destination),
                );
                kms.push(statement);
            }
        }
    }
    if sources.is_empty() {
        return None;
    }
    sources.sort();
    dests.sort();
    let arn = |b: &String| format!("arn:aws:s3:::{b}");
    let objects = |b: &String| format!("arn:aws:s3:::{b}/*");
    // Locked source objects are replicated with their retention and legal
    // hold, which the role reads (AWS S3 user guide, "Object Lock
    // considerations": Using Object Lock with S3 Replication).
    let locked: Vec<String> = buckets
        .iter()
        .filter(|b| b.object_lock.is_some() && sources.contains(&b.name))
        .map(|b| format!("arn:aws:s3:::{}/*", b.name))
        .collect();
    let write_replicas = write_replicas(buckets, &sources);
    let mut statements = vec![
        json!({"Sid": "ReadSourceConfiguration", "Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
             "Resource": sources.iter().map(arn).collect::<Vec<_>>()}),
        json!({"Sid": "ReadSourceObjects", "Effect": "Allow",
             "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
             "Resource": sources.iter().map(objects).collect::<Vec<_>>()}),
        json!({"Sid": "WriteReplicas", "Effect": "Allow", "Action": write_replicas,
             "Resource": dests.iter().map(objects).collect::<Vec<_>>()}),
    ];
    if !locked.is_empty() {
        statements.push(json!({"Sid": "ReadSourceRetention", "Effect": "Allow",
            "Action": ["s3:GetObjectRetention", "s3:GetObjectLegalHold"], "Resource": locked}));
    }
    statements.extend(numbered(kms));
    Some(json!({"Version": "2012-10-17", "Statement": statements}))
}

/// What writing the replicas takes; replicas handed to another account's
/// bucket owner need the owner override too (AWS S3 user guide, "Changing
/// the replica owner").
fn write_replicas(buckets: &[BucketSpec], sources: &[String]) -> Vec<&'static str> {
    let overrides = buckets
        .iter()
        .filter(|b| sources.contains(&b.name))
        .filter_map(|b| b.replication.as_ref())
        .any(|r| r.rules.iter().any(|x| x.owner_override == Some(true)));
    let mut actions = vec!["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"];
    if overrides {
        actions.push("s3:ObjectOwnerOverrideToBucketOwner");
    }
    actions
}

/// Sids are unique within a document: the second statement of a kind is
/// `EncryptReplicas2`, and so on.
fn numbered(statements: Vec<Value>) -> Vec<Value> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<Value> = Vec::new();
    for mut st in statements {
        if out.contains(&st) {
            continue;
        }
        let sid = st["Sid"].as_str().unwrap_or_default().to_string();
        let n = seen.entry(sid.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            st["Sid"] = json!(format!("{sid}{n}"));
        }
        out.push(st);
    }
    out
}

/// The region of a KMS key or alias ARN.
fn kms_region(key: &str) -> Option<String> {
    key.strip_prefix("arn:").and_then(|r| r.split(':').nth(2)).filter(|r| !r.is_empty()).map(str::to_string)
}

/// One KMS statement for the replication role on `key` (a key ARN, key
/// id, alias ARN or `alias/NAME`), used through S3 in `region` for the
/// objects of `bucket`. An alias in `Resource` would apply to the alias,
/// not to the key behind it, so an alias is matched with the
/// `kms:ResourceAliases` condition instead (AWS KMS developer guide, "Using
/// aliases to control access to KMS keys").
/// One KMS permission of the replication role: `actions` with `key`, only
/// through S3 in the key's region and only for objects of `bucket`.
///
/// S3 passes the object's ARN as the encryption context `aws:s3:arn`; with
/// an S3 Bucket Key on the bucket it passes the *bucket's* ARN instead, and
/// a policy conditioned on `arn:aws:s3:::BUCKET/*` then denies every
/// replication (AWS S3 user guide, "Replicating encrypted objects": S3
/// Bucket Keys and replication; "Reducing the cost of SSE-KMS with Amazon
/// S3 Bucket Keys": Changes to note before enabling an S3 Bucket Key).
/// Objects written before the Bucket Key was turned on keep the object ARN,
/// so a bucket with one allows both.
fn kms_statement(
    sid: &str,
    actions: &[&str],
    key: &str,
    region: Option<&str>,
    bucket: &str,
    bucket_key: bool,
) -> Value {
    let region_part = region.unwrap_or("*");
    let arn_parts: Vec<&str> = key.splitn(6, ':').collect();
    let (resource, alias) = match arn_parts.as_slice() {
        ["arn", partition, "kms", r, account, rest] => match rest.strip_prefix("alias/") {
            Some(name) => (format!("arn:{partition}:kms:{r}:{account}:key/*"), Some(format!("alias/{name}"))),
            None => (key.to_string(), None),
        },
        _ => match key.strip_prefix("alias/") {
            Some(_) => (format!("arn:aws:kms:{region_part}:*:key/*"), Some(key.to_string())),
            None => (format!("arn:aws:kms:{region_part}:*:key/{key}"), None),
        },
    };
    let mut condition = json!({
        "StringLike": {
            "kms:ViaService": format!("s3.{region_part}.amazonaws.com"),
            "kms:EncryptionContext:aws:s3:arn": if bucket_key {
                json!([format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")])
            } else {
                json!(format!("arn:aws:s3:::{bucket}/*"))
            },
        }
    });
    if let Some(a) = alias {
        condition["ForAnyValue:StringEquals"] = json!({"kms:ResourceAliases": a});
    }
    let action = match actions {
        [one] => json!(one),
        many => json!(many),
    };
    json!({"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource, "Condition": condition})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replication_role_can_use_both_keys_and_never_names_an_alias_in_resource() {
        let text = "version: 1\naws: {region: us-east-1}\ns3:\n  buckets:\n    src:\n      versioning: enabled\n      encryption: {algorithm: aws:kms, kms_key: alias/backups}\n      replication:\n        role: repl\n        rules:\n          - id: dr\n            destination: dst\n            replica_kms_key: arn:aws:kms:eu-west-1:123456789012:alias/backups-dr\n    dst:\n      region: eu-west-1\n      versioning: enabled\niam:\n  roles:\n    repl:\n      s3_replication: true\n";
        let p = crate::policy::parse("p.yaml", text.as_bytes().to_vec(), &|_| None).expect("valid");
        let doc = &p.iam.roles[0].inline_policies.as_ref().expect("inline")["s3-replication"];
        let sts = doc["Statement"].as_array().expect("statements");
        let decrypt = sts.iter().find(|s| s["Sid"] == "DecryptSourceObjects").expect("decrypt");
        assert_eq!(decrypt["Action"], "kms:Decrypt");
        assert_eq!(decrypt["Resource"], "arn:aws:kms:us-east-1:*:key/*");
        assert_eq!(decrypt["Condition"]["StringLike"]["kms:ViaService"], "s3.us-east-1.amazonaws.com");
        assert_eq!(decrypt["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"], "alias/backups");
        assert_eq!(decrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"], "arn:aws:s3:::src/*");
        let encrypt = sts.iter().find(|s| s["Sid"] == "EncryptReplicas").expect("encrypt");
        assert_eq!(encrypt["Resource"], "arn:aws:kms:eu-west-1:123456789012:key/*");
        assert_eq!(encrypt["Condition"]["StringLike"]["kms:ViaService"], "s3.eu-west-1.amazonaws.com");
        assert_eq!(encrypt["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"], "alias/backups-dr");
        assert!(!doc.to_string().contains(":alias/"), "no alias ARN in the document: {doc}");
    }

    #[test]
    fn the_replication_role_allows_the_bucket_arn_context_where_a_bucket_key_is_on() {
        let doc = |src: &str, dst: &str| {
            let text = format!(
                "version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    src:\n      versioning: enabled\n      encryption: {{algorithm: aws:kms, kms_key: alias/backups{src}}}\n      replication:\n        role: repl\n        rules:\n          - id: dr\n            destination: dst\n            replica_kms_key: arn:aws:kms:eu-west-1:123456789012:alias/backups-dr\n    dst:\n      region: eu-west-1\n      versioning: enabled\n      encryption: {{algorithm: aws:kms, kms_key: arn:aws:kms:eu-west-1:123456789012:alias/backups-dr{dst}}}\niam:\n  roles:\n    repl:\n      s3_replication: true\n"
            );
            let p = crate::policy::parse("p.yaml", text.into_bytes(), &|_| None).expect("valid");
            p.iam.roles[0].inline_policies.as_ref().expect("inline")["s3-replication"].clone()
        };
        let context = |d: &Value, sid: &str| {
            let st =
                d["Statement"].as_array().expect("statements").iter().find(|s| s["Sid"] == sid).expect(sid).clone();
            st["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"].clone()
        };
        let plain = doc("", "");
        assert_eq!(context(&plain, "DecryptSourceObjects"), "arn:aws:s3:::src/*");
        assert_eq!(context(&plain, "EncryptReplicas"), "arn:aws:s3:::dst/*");
        let keyed = doc(", bucket_key: true", ", bucket_key: true");
        assert_eq!(context(&keyed, "DecryptSourceObjects"), json!(["arn:aws:s3:::src", "arn:aws:s3:::src/*"]));
        assert_eq!(context(&keyed, "EncryptReplicas"), json!(["arn:aws:s3:::dst", "arn:aws:s3:::dst/*"]));
        let source_only = doc(", bucket_key: true", "");
        assert_eq!(context(&source_only, "DecryptSourceObjects"), json!(["arn:aws:s3:::src", "arn:aws:s3:::src/*"]));
        assert_eq!(context(&source_only, "EncryptReplicas"), "arn:aws:s3:::dst/*");
        // The replica key also decrypts (S3 reads back what it wrote).
        let encrypt =
            keyed["Statement"].as_array().expect("statements").iter().find(|s| s["Sid"] == "EncryptReplicas").cloned();
        assert_eq!(encrypt.expect("encrypt")["Action"], json!(["kms:Encrypt", "kms:Decrypt"]));
    }
}
