//! The IAM actions the tool itself needs, from the operations every
//! registered provider declares (its SDK method, IAM action, read or write,
//! and what it acts on). `suoops-policy permissions` turns them into a
//! least-privilege policy; a test fails when provider code calls an SDK
//! operation that no provider declares.

use serde_json::{json, Value};

use crate::aws::{Access, On};
use crate::jobs::JobKind;
use crate::policy::Policy;
use crate::providers::{operations, REGISTRY};

/// Which command the permissions are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum For {
    Plan,
    Audit,
    Apply,
    /// `import` (reads only, plus the account's bucket list).
    Import,
    /// `backup run`: write the dumps (and their sidecars) under each
    /// entry's prefix, and use the bucket's key; no read, no delete.
    Backup,
    /// `restore-drill`: read the dumps, write the drill records under
    /// `drills/`.
    RestoreDrill,
}

/// The jobs' documents: each entry's prefix, nothing more.
fn jobs(cmd: For, policy: Option<&Policy>) -> Value {
    let mut objects: Vec<String> = Vec::new();
    let mut buckets: Vec<String> = Vec::new();
    let mut records: Vec<String> = Vec::new();
    // What a job's engine does besides (pgBackRest's reads and expiry).
    let mut engine: Vec<(String, String, &'static [&'static str])> = Vec::new();
    let mut kms = false;
    match policy {
        None => {
            objects.push("arn:aws:s3:::*/*".into());
            buckets.push("arn:aws:s3:::*".into());
            records.push("arn:aws:s3:::*/drills/*".into());
            kms = true;
        }
        Some(p) => {
            let kind = if cmd == For::Backup { JobKind::Backup } else { JobKind::Drill };
            let declared = crate::providers::jobs().filter(|j| j.kind() == kind).flat_map(|j| {
                j.instances(p)
                    .into_iter()
                    .filter(|(_, d)| *d)
                    .map(move |(a, _)| (j.entry(p, &a), a, j.engine_actions()))
            });
            for (to, instance, extra) in declared {
                let Some(to) = to else { continue };
                if !extra.is_empty() {
                    engine.push((to.bucket.clone(), to.prefix.clone(), extra));
                }
                objects.push(format!("arn:aws:s3:::{}/{}*", to.bucket, to.prefix));
                buckets.push(format!("arn:aws:s3:::{}", to.bucket));
                records.push(format!("arn:aws:s3:::{}/drills/{instance}/*", to.bucket));
                kms |= to.encryption.as_ref().is_some_and(|e| e.kms_key.is_some());
            }
        }
    }
    for v in [&mut objects, &mut buckets, &mut records] {
        v.sort();
        v.dedup();
    }
    let mut statements = Vec::new();
    if objects.is_empty() {
        return json!({"Version": "2012-10-17", "Statement": statements});
    }
    if cmd == For::Backup {
        statements.push(json!({"Sid": "WriteDumps", "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:PutObject"], "Resource": objects}));
        engine.sort();
        engine.dedup();
        for (i, (bucket, prefix, actions)) in engine.iter().enumerate() {
            let n = if i == 0 { String::new() } else { (i + 1).to_string() };
            statements.push(json!({"Sid": format!("EngineRepository{n}"), "Effect": "Allow",
                "Action": actions, "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}*")]}));
            statements.push(json!({"Sid": format!("EngineListsRepository{n}"), "Effect": "Allow",
                "Action": ["s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{bucket}")],
                "Condition": {"StringLike": {"s3:prefix": [format!("{prefix}*")]}}}));
        }
    } else {
        statements
            .push(json!({"Sid": "FindDumps", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": buckets}));
        statements
            .push(json!({"Sid": "ReadDumps", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": objects}));
        statements
            .push(json!({"Sid": "RecordDrills", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": records}));
    }
    if kms {
        // SSE-KMS: a multipart upload needs Decrypt as well as
        // GenerateDataKey (AWS S3 user guide, "Uploading and copying
        // objects using multipart upload": permissions); a declared key is
        // resolved with DescribeKey. Only through S3, except DescribeKey.
        statements.push(json!({"Sid": "UseBackupKeyThroughS3", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": ["arn:aws:kms:*:*:key/*"], "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}}));
        statements.push(json!({"Sid": "ResolveBackupKey", "Effect": "Allow", "Action": ["kms:DescribeKey"],
            "Resource": ["arn:aws:kms:*:*:key/*"]}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The least-privilege IAM policy for `cmd`; scoped to the policy's
/// buckets, roles and managed policies when one is given, else to `*`.
pub fn document(cmd: For, policy: Option<&Policy>, state: Option<&(String, String)>) -> Value {
    if matches!(cmd, For::Backup | For::RestoreDrill) {
        return jobs(cmd, policy);
    }
    let wanted = |a: Access| a == Access::Read || cmd == For::Apply;
    let mut statements = Vec::new();
    // Each kind of resource, scoped to what the registered systems' parts
    // of the policy name; without a policy, as broad as any could need.
    let scoped = |on: On, any: &[&str]| -> Vec<String> {
        match policy {
            None => any.iter().map(|s| s.to_string()).collect(),
            Some(p) => {
                let mut v: Vec<String> = REGISTRY.iter().flat_map(|k| k.scope(p, on)).collect();
                v.sort();
                v.dedup();
                v
            }
        }
    };
    let scopes: [(On, &str, Vec<String>); 10] = [
        (On::Objects, "S3BackupEvidence", scoped(On::Objects, &["*"])),
        (On::Bucket, "S3Buckets", scoped(On::Bucket, &["*"])),
        (On::Role, "IamRoles", scoped(On::Role, &["*"])),
        (On::ManagedPolicy, "IamManagedPolicies", scoped(On::ManagedPolicy, &["*"])),
        (On::Any, "IamList", scoped(On::Any, &["*"])),
        (
            On::AttachedPolicy,
            "IamAttachedPolicies",
            if cmd == For::Audit { scoped(On::AttachedPolicy, &["arn:aws:iam::*:policy/*"]) } else { vec![] },
        ),
        (On::Account, "S3ListAllBuckets", if cmd == For::Import { vec!["*".to_string()] } else { vec![] }),
        (On::Key, "KmsKeys", scoped(On::Key, &["arn:aws:kms:*:*:key/*"])),
        (On::Alias, "KmsAliases", scoped(On::Alias, &["arn:aws:kms:*:*:alias/*", "arn:aws:kms:*:*:key/*"])),
        (On::AnyKey, "KmsCreateKeys", scoped(On::AnyKey, &["*"])),
    ];
    for (on, sid, resources) in scopes {
        // Backup evidence is read by audit only.
        // Import reads buckets and roles, never managed policies by name.
        if resources.is_empty()
            || (on == On::Objects && cmd != For::Audit)
            || (cmd == For::Import && matches!(on, On::ManagedPolicy | On::Any))
        {
            continue;
        }
        let mut actions: Vec<&str> =
            operations().filter(|o| o.on == on && wanted(o.access)).map(|o| o.action).collect();
        // An attached policy's document is read with the GetPolicyVersion
        // declared for the policy's own managed policies.
        if on == On::AttachedPolicy {
            actions.push(crate::aws::ops::GET_POLICY_VERSION.action);
        }
        // CreateKey with tags needs kms:TagResource too (AWS KMS API
        // reference, "CreateKey": Tags); the key is tagged as it is made.
        if actions.contains(&"kms:CreateKey") {
            actions.push("kms:TagResource");
        }
        actions.sort();
        actions.dedup();
        if actions.is_empty() {
            continue;
        }
        statements.push(json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}));
    }
    // What the systems add for this command beyond their operations.
    let name = match cmd {
        For::Audit => "audit",
        For::Apply => "apply",
        _ => "",
    };
    statements
        .extend(REGISTRY.iter().flat_map(|k| k.grants(policy)).filter(|g| g.command == name).map(|g| g.statement));
    // `audit --notify --state s3://BUCKET/KEY`: that one object, read and
    // replaced (and the bucket's region looked up).
    if let (For::Audit, Some((bucket, key))) = (cmd, state) {
        let mut actions: Vec<&str> = operations().filter(|o| o.on == On::StateObject).map(|o| o.action).collect();
        actions.push("s3:GetObject");
        actions.sort();
        actions.dedup();
        statements.push(json!({"Sid": "NotifyState", "Effect": "Allow", "Action": actions,
            "Resource": [format!("arn:aws:s3:::{bucket}/{key}")]}));
        statements.push(json!({"Sid": "NotifyStateBucketRegion", "Effect": "Allow",
            "Action": ["s3:GetBucketLocation"], "Resource": [format!("arn:aws:s3:::{bucket}")]}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every API call goes through `aws.call(&ops::X, …)` (or a step of
    /// apply naming `&ops::X`): the SDK method the future calls must be X's,
    /// X must be in its provider's `ops()`, and every declared op is called.
    #[test]
    fn every_api_call_names_its_declared_operation() {
        // Providers, the jobs' data plane, the shared look-ups and notify's
        // state object: every module that calls AWS.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let roots = ["providers", "jobs", "aws", "notify"].map(|d| src.join(d));
        let mut named = Vec::new();
        let mut raw_calls = 0;
        let mut stack = roots.to_vec();
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read src") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if p.extension().is_none_or(|x| x != "rs") || p.ends_with("permissions.rs") || p.ends_with("ops.rs") {
                    continue;
                }
                let text: String =
                    std::fs::read_to_string(&p).expect("read").chars().filter(|c| !c.is_whitespace()).collect();
                raw_calls += text.matches(".call(\"").count();
                for (i, _) in text.match_indices("(&ops::") {
                    let rest = &text[i + "(&ops::".len()..];
                    let konst: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    // The SDK method of the future: the first `.verb()` after
                    // the op; a paginated `req.send()` built just before names
                    // it on the line that builds `req`.
                    let method = |s: &str| -> Option<String> {
                        s.match_indices('.').find_map(|(j, _)| {
                            let m: String = s[j + 1..]
                                .chars()
                                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                                .collect();
                            (m == "send" || s[j + 1 + m.len()..].starts_with("()") && m.contains('_')).then_some(m)
                        })
                    };
                    let mut m = method(rest).unwrap_or_default();
                    if m == "send" {
                        let before = &text[..i];
                        let start = before.rfind("letreq=").max(before.rfind("letmutreq=")).unwrap_or(0);
                        m = method(&before[start..]).unwrap_or_default();
                    }
                    named.push((konst, m, p.display().to_string()));
                }
            }
        }
        assert_eq!(raw_calls, 0, "an API call names a string, not a declared op");
        assert!(named.len() > 30, "the scan found too few calls: {named:?}");
        for (konst, method, file) in &named {
            assert_eq!(&konst.to_ascii_lowercase(), method, "{file}: ops::{konst} does not call `{method}`");
            assert!(operations().any(|o| o.sdk == method), "{file} calls `{method}`, which no provider lists in ops()");
        }
        for o in operations() {
            assert!(named.iter().any(|(_, m, _)| m == o.sdk), "`{}` is declared but never called", o.sdk);
        }
    }

    #[test]
    fn plan_needs_only_reads() {
        let doc = document(For::Plan, None, None);
        let text = doc.to_string();
        for w in operations().filter(|o| o.access == Access::Write) {
            if !operations().any(|r| r.action == w.action && r.access == Access::Read) {
                assert!(!text.contains(&format!("\"{}\"", w.action)), "plan asks for {}", w.action);
            }
        }
        assert!(text.contains("s3:GetBucketVersioning"));
    }
}
