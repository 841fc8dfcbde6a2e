//! The IAM actions the tool itself needs: every SDK operation a provider
//! calls is declared here with its action, whether `plan`/`audit` need it
//! or only `apply`, and what it acts on. `suoops-policy permissions` turns
//! this into a least-privilege policy; a test fails when code calls an
//! operation that is not declared.

use serde_json::{json, Value};

use crate::policy::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What an action is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Bucket,
    /// Objects in the policy's buckets (backup evidence).
    Objects,
    Role,
    ManagedPolicy,
    /// IAM gives no narrower resource (ListPolicies).
    Any,
    /// The account's bucket list (`import --all-buckets` only).
    Account,
}

/// (SDK operation, IAM action, access, resource).
pub const OPERATIONS: &[(&str, &str, Access, On)] = &[
    ("head_bucket", "s3:ListBucket", Access::Read, On::Bucket),
    ("get_bucket_location", "s3:GetBucketLocation", Access::Read, On::Bucket),
    ("get_bucket_versioning", "s3:GetBucketVersioning", Access::Read, On::Bucket),
    ("get_bucket_encryption", "s3:GetEncryptionConfiguration", Access::Read, On::Bucket),
    ("get_public_access_block", "s3:GetBucketPublicAccessBlock", Access::Read, On::Bucket),
    ("get_bucket_lifecycle_configuration", "s3:GetLifecycleConfiguration", Access::Read, On::Bucket),
    ("get_bucket_policy", "s3:GetBucketPolicy", Access::Read, On::Bucket),
    ("get_bucket_replication", "s3:GetReplicationConfiguration", Access::Read, On::Bucket),
    ("list_buckets", "s3:ListAllMyBuckets", Access::Read, On::Account),
    ("list_objects_v2", "s3:ListBucket", Access::Read, On::Bucket),
    ("get_object", "s3:GetObject", Access::Read, On::Objects),
    ("head_object", "s3:GetObject", Access::Read, On::Objects),
    ("create_bucket", "s3:CreateBucket", Access::Write, On::Bucket),
    ("put_bucket_versioning", "s3:PutBucketVersioning", Access::Write, On::Bucket),
    ("put_bucket_encryption", "s3:PutEncryptionConfiguration", Access::Write, On::Bucket),
    ("put_public_access_block", "s3:PutBucketPublicAccessBlock", Access::Write, On::Bucket),
    ("put_bucket_lifecycle_configuration", "s3:PutLifecycleConfiguration", Access::Write, On::Bucket),
    ("delete_bucket_lifecycle", "s3:PutLifecycleConfiguration", Access::Write, On::Bucket),
    ("put_bucket_policy", "s3:PutBucketPolicy", Access::Write, On::Bucket),
    ("delete_bucket_policy", "s3:DeleteBucketPolicy", Access::Write, On::Bucket),
    ("put_bucket_replication", "s3:PutReplicationConfiguration", Access::Write, On::Bucket),
    ("delete_bucket_replication", "s3:PutReplicationConfiguration", Access::Write, On::Bucket),
    ("get_role", "iam:GetRole", Access::Read, On::Role),
    ("list_role_policies", "iam:ListRolePolicies", Access::Read, On::Role),
    ("get_role_policy", "iam:GetRolePolicy", Access::Read, On::Role),
    ("list_attached_role_policies", "iam:ListAttachedRolePolicies", Access::Read, On::Role),
    ("list_policies", "iam:ListPolicies", Access::Read, On::Any),
    ("get_policy_version", "iam:GetPolicyVersion", Access::Read, On::ManagedPolicy),
    ("create_role", "iam:CreateRole", Access::Write, On::Role),
    ("update_role", "iam:UpdateRole", Access::Write, On::Role),
    ("update_assume_role_policy", "iam:UpdateAssumeRolePolicy", Access::Write, On::Role),
    ("tag_role", "iam:TagRole", Access::Write, On::Role),
    ("put_role_policy", "iam:PutRolePolicy", Access::Write, On::Role),
    ("delete_role_policy", "iam:DeleteRolePolicy", Access::Write, On::Role),
    ("attach_role_policy", "iam:AttachRolePolicy", Access::Write, On::Role),
    ("detach_role_policy", "iam:DetachRolePolicy", Access::Write, On::Role),
    ("delete_role", "iam:DeleteRole", Access::Write, On::Role),
    ("create_policy", "iam:CreatePolicy", Access::Write, On::ManagedPolicy),
    ("create_policy_version", "iam:CreatePolicyVersion", Access::Write, On::ManagedPolicy),
    ("list_policy_versions", "iam:ListPolicyVersions", Access::Write, On::ManagedPolicy),
    ("delete_policy_version", "iam:DeletePolicyVersion", Access::Write, On::ManagedPolicy),
];

/// Which command the permissions are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum For {
    Plan,
    Audit,
    Apply,
    /// `import` (reads only, plus the account's bucket list).
    Import,
}

/// The least-privilege IAM policy for `cmd`; scoped to the policy's
/// buckets, roles and managed policies when one is given, else to `*`.
pub fn document(cmd: For, policy: Option<&Policy>) -> Value {
    let wanted = |a: Access| a == Access::Read || cmd == For::Apply;
    let mut statements = Vec::new();
    let scopes: [(On, &str, Vec<String>); 6] = [
        (
            On::Objects,
            "S3BackupEvidence",
            policy.map_or_else(
                || vec!["*".to_string()],
                |p| {
                    p.buckets
                        .iter()
                        .filter(|b| !b.backups.is_empty())
                        .map(|b| format!("arn:aws:s3:::{}/*", b.name))
                        .collect()
                },
            ),
        ),
        (
            On::Bucket,
            "S3Buckets",
            policy.map_or_else(
                || vec!["*".to_string()],
                |p| p.buckets.iter().map(|b| format!("arn:aws:s3:::{}", b.name)).collect(),
            ),
        ),
        (
            On::Role,
            "IamRoles",
            policy.map_or_else(
                || vec!["*".to_string()],
                |p| {
                    let mut roles: Vec<String> = p.iam.roles.iter().map(|r| r.name.clone()).collect();
                    roles.extend(
                        p.buckets
                            .iter()
                            .filter_map(|b| b.replication.as_ref())
                            .map(|r| crate::providers::s3::replication::role_name(&r.role).to_string()),
                    );
                    roles.sort();
                    roles.dedup();
                    roles.into_iter().map(|r| format!("arn:aws:iam::*:role/{r}")).collect()
                },
            ),
        ),
        (
            On::ManagedPolicy,
            "IamManagedPolicies",
            policy.map_or_else(
                || vec!["*".to_string()],
                |p| p.iam.policies.iter().map(|m| format!("arn:aws:iam::*:policy{}{}", m.path, m.name)).collect(),
            ),
        ),
        (
            On::Any,
            "IamList",
            policy.map_or_else(
                || vec!["*".to_string()],
                |p| if p.iam.policies.is_empty() { vec![] } else { vec!["*".to_string()] },
            ),
        ),
        (On::Account, "S3ListAllBuckets", if cmd == For::Import { vec!["*".to_string()] } else { vec![] }),
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
            OPERATIONS.iter().filter(|(_, _, a, o)| *o == on && wanted(*a)).map(|(_, act, _, _)| *act).collect();
        actions.sort();
        actions.dedup();
        if actions.is_empty() {
            continue;
        }
        statements.push(json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}));
    }
    if cmd == For::Apply {
        let roles: Vec<String> = policy.map_or_else(
            || vec!["*".to_string()],
            |p| {
                p.buckets
                    .iter()
                    .filter_map(|b| b.replication.as_ref())
                    .map(|r| format!("arn:aws:iam::*:role/{}", crate::providers::s3::replication::role_name(&r.role)))
                    .collect()
            },
        );
        if !roles.is_empty() {
            statements.push(json!({
                "Sid": "PassReplicationRole", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": roles,
                "Condition": {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}
            }));
        }
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `client.op()` / `c.op()` / `iam().op()` call in the providers
    /// must be declared above.
    #[test]
    fn every_api_call_in_the_providers_is_declared() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers");
        let mut calls = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read src/providers") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("permissions.rs") {
                    let text: String =
                        std::fs::read_to_string(&p).expect("read").chars().filter(|c| !c.is_whitespace()).collect();
                    for recv in ["client.", "c.", "iam()."] {
                        for (i, _) in text.match_indices(recv) {
                            let before = text[..i].chars().last();
                            if recv == "c." && before.is_some_and(|b| b.is_alphanumeric() || b == '_') {
                                continue;
                            }
                            let rest = &text[i + recv.len()..];
                            let name: String = rest
                                .chars()
                                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                                .collect();
                            let verb = [
                                "head_", "get_", "put_", "create_", "delete_", "list_", "update_", "attach_",
                                "detach_", "tag_", "untag_",
                            ];
                            if verb.iter().any(|v| name.starts_with(v)) && rest[name.len()..].starts_with("()") {
                                calls.push((name, p.display().to_string()));
                            }
                        }
                    }
                }
            }
        }
        assert!(calls.len() > 20, "the scan found too few calls: {calls:?}");
        for (op, file) in &calls {
            assert!(
                OPERATIONS.iter().any(|(o, ..)| o == op),
                "{file} calls `{op}`, which providers/permissions.rs does not declare"
            );
        }
        for (op, ..) in OPERATIONS {
            assert!(calls.iter().any(|(c, _)| c == op), "`{op}` is declared but never called");
        }
    }

    #[test]
    fn plan_needs_only_reads() {
        let doc = document(For::Plan, None);
        let text = doc.to_string();
        for (_, action, access, _) in OPERATIONS {
            if *access == Access::Write && !OPERATIONS.iter().any(|(_, a, acc, _)| a == action && *acc == Access::Read)
            {
                assert!(!text.contains(&format!("\"{action}\"")), "plan asks for {action}");
            }
        }
        assert!(text.contains("s3:GetBucketVersioning"));
    }
}
