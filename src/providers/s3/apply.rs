//! Make one bucket match the policy, in a safe order: create it, then
//! versioning, then default encryption (before anything writes objects),
//! then the public access block, the bucket policy and lifecycle. Each step
//! is one API call; a failed step stops the later steps of this bucket only.
//! Whole-document settings (bucket policy, lifecycle) are re-read just
//! before they are replaced: if someone changed them since they were
//! observed, the step stops rather than overwrite that change.

use aws_sdk_s3::types::{
    BlockedEncryptionTypes, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, DefaultRetention, EncryptionType, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};

use super::access;
use super::diff::merged_pab;
use super::lifecycle::{self, LifecycleDoc};
use super::observe::{self, BucketState};
use super::replication::{self, Prerequisites, ReplicationDoc};
use super::tls::{self, PolicyDoc};
use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::aws::ops;
use crate::aws::{classify, Aws};
use crate::model::{steps, Action, Change, Observed, StepOutcome};
use crate::policy::Encryption;
use crate::providers::s3::section::{BucketSpec, Lifecycle, Versioning};

/// CreateBucket in `region` (us-east-1 takes no LocationConstraint), with
/// Object Lock when the policy asks for it (which also enables
/// versioning: S3 API reference, CreateBucket
/// x-amz-bucket-object-lock-enabled).
async fn create(aws: &Aws, client: &aws_sdk_s3::Client, spec: &BucketSpec, region: &str) -> StepOutcome {
    let mut req = client.create_bucket().bucket(&spec.name);
    // us-east-1 is the one region that takes no LocationConstraint.
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build(),
        );
    }
    // Object Lock is enabled at creation, which also enables
    // versioning (S3 API reference, CreateBucket
    // x-amz-bucket-object-lock-enabled).
    if spec.object_lock.is_some() {
        req = req.object_lock_enabled_for_bucket(true);
    }
    let r = aws.call(&ops::CREATE_BUCKET, req.send()).await.map(|_| ()).map_err(|e| classify(&e, &[]).reason());
    StepOutcome { step: steps::S3_CREATE_BUCKET.name, result: r }
}

/// The default encryption to write: a key declared under kms.keys as its
/// key ARN (resolved now: the kms kind may have made it moments ago), the
/// bucket key and blocked encryption types kept as seen.
async fn encryption_now(
    aws: &Aws,
    enc: &Encryption,
    state: &BucketState,
    region: &str,
    keys_made: bool,
) -> Result<ServerSideEncryptionConfiguration, ApplyError> {
    let seen = state.encryption.as_ref().and_then(|o| o.present());
    let seen_bucket_key = seen.map(|e| e.bucket_key);
    let blocked = seen.and_then(|e| e.blocked_encryption_types.clone());
    // A key declared under kms.keys is written as its key ARN (the
    // form S3 needs for cross-account and service use, AWS S3 API
    // reference, "ServerSideEncryptionByDefault"), resolved now: the
    // kms kind may have created it moments ago.
    let key = match (&enc.declared_key, state.key.as_ref().and_then(|k| k.present())) {
        (None, _) => Ok(enc.kms_key.clone()),
        (Some(_), Some(f)) => Ok(Some(f.arn.clone())),
        (Some(_), None) => {
            crate::aws::lookup::key_arn(aws, region, enc.kms_key.as_deref().unwrap_or_default(), keys_made)
                .await
                .map(Some)
                .map_err(ApplyError::Refused)
        }
    };
    key.and_then(|k| {
        let enc = Encryption { kms_key: k, ..enc.clone() };
        encryption_config(&enc, seen_bucket_key, blocked).map_err(|e| ApplyError::Refused(e.to_string()))
    })
}

/// The bucket policy's one write for the TLS and access statements, when
/// either changes: only their Sids are replaced.
async fn bucket_policy(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    spec: &BucketSpec,
    state: &BucketState,
    changes: &[Change],
    roles_made: bool,
) -> Option<StepOutcome> {
    let acting = |addr: &crate::model::Address| changes.iter().any(|c| &c.address == addr && c.is_actionable());
    let (tls_on, access_on) = (acting(&tls::address(&spec.name)), acting(&access::address(&spec.name)));
    let grant_on = acting(&super::grant::address(&spec.name)) && !spec.replicated_from.is_empty();
    if !(tls_on || access_on || grant_on) {
        return None;
    }
    let mut owned: Vec<&str> = Vec::new();
    let mut desired = Vec::new();
    if let (true, Some(want)) = (tls_on, spec.require_tls) {
        owned.push(tls::SID);
        if want {
            desired.push(tls::desired_statement(&spec.name));
        }
    }
    let mut resolved = Ok(());
    if let (true, Some(want)) = (access_on, &spec.access) {
        owned.extend(access::SIDS);
        match access_now(aws, want, &state.principals, roles_made).await {
            // Never shut the tool out of the bucket it manages.
            Ok(r) if r.administrators.is_some() && state.caller.is_none() => {
                resolved = Err(ApplyError::LocksOut("access.administrators: who runs this could not be read (STS GetCallerIdentity), so whether the configuration statement would shut it out is not known".into()))
            }
            Ok(r) => match access::locks_out(&r, state.caller.as_deref()) {
                Some(why) => resolved = Err(ApplyError::LocksOut(why)),
                None => desired.extend(access::desired_statements(&spec.name, &r)),
            },
            Err(e) => resolved = Err(e),
        }
    }
    if grant_on {
        owned.extend(super::grant::SIDS);
        desired.extend(super::grant::desired_statements(&spec.name, &spec.replicated_from));
    }
    let label = match (tls_on, access_on, grant_on) {
        (true, false, false) => "bucket policy (require TLS)",
        (false, true, false) => "bucket policy (access)",
        (false, false, true) => "bucket policy (replicas from other accounts)",
        (_, _, false) => "bucket policy (require TLS, access)",
        _ => "bucket policy (require TLS, access, replicas from other accounts)",
    };
    let seen = state.policy.as_ref().and_then(|o| o.present());
    let r = match resolved {
        Ok(()) => write_policy(aws, client, &spec.name, seen, &owned, desired).await,
        Err(e) => Err(e),
    };
    Some(StepOutcome { step: label, result: r.map_err(|e| e.to_string()) })
}

/// Apply `change` (computed from `state`) to the bucket. Returns each step's
/// outcome in order; steps after a failure are not attempted.
pub async fn apply(
    aws: &Aws,
    spec: &BucketSpec,
    region: &str,
    state: &BucketState,
    changes: &[Change],
    keys_made: bool,
    roles_made: bool,
) -> Vec<StepOutcome> {
    let Some(change) = changes.first() else {
        return Vec::new();
    };
    let client = aws.s3(region);
    let name = spec.name.as_str();
    let touches =
        |prefix: &str| change.attributes.iter().any(|a| a.name == prefix || a.name.starts_with(&format!("{prefix}.")));
    let mut out = Vec::new();
    // Once the bucket exists its settings are independent of each other: a
    // failed step is reported and the next ones still run (replication,
    // which needs versioning, checks that step itself).
    // A bucket this run creates answers NoSuchBucket (or OperationAborted,
    // "a conflicting conditional operation is in progress") for a while:
    // its steps wait (bounded) until it is visible (terraform-provider-aws
    // retries both, internal/service/s3/bucket.go).
    let created = change.action == Action::Create;
    let not_yet = |code: Option<&str>| created && matches!(code, Some("NoSuchBucket" | "OperationAborted"));
    macro_rules! step {
        ($op:expr, $label:expr, $fut:expr) => {{
            let r = aws
                .call_until_visible($op, &format!("bucket {name}"), || $fut, |e| not_yet(e.code()))
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, &[]).reason());
            out.push(StepOutcome { step: $label, result: r });
        }};
    }

    if change.action == Action::Create {
        out.push(create(aws, &client, spec, region).await);
        if out.iter().any(|s| s.result.is_err()) {
            return out;
        }
    }
    if let (Some(v), true) = (spec.versioning, touches("versioning")) {
        let status = match v {
            Versioning::Enabled => BucketVersioningStatus::Enabled,
            Versioning::Suspended => BucketVersioningStatus::Suspended,
        };
        step!(
            &ops::PUT_BUCKET_VERSIONING,
            steps::S3_VERSIONING.name,
            client
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(VersioningConfiguration::builder().status(status.clone()).build())
                .send()
        );
    }
    // Object Lock needs versioning enabled first (AWS S3 user guide,
    // "Configuring S3 Object Lock"), and comes before anything writes
    // objects so that every backup gets the default retention.
    if let (Some(lock), true) = (&spec.object_lock, touches("object_lock")) {
        if out.iter().any(|s| s.step == steps::S3_VERSIONING.name && s.result.is_err()) {
            out.push(StepOutcome { step: "object lock", result: Err("not tried: versioning is not enabled".into()) });
        } else {
            let conf = lock_config(lock);
            step!(
                &ops::PUT_OBJECT_LOCK_CONFIGURATION,
                "object lock",
                client.put_object_lock_configuration().bucket(name).object_lock_configuration(conf.clone()).send()
            );
        }
    }
    if let (Some(enc), true) = (&spec.encryption, touches("encryption")) {
        let conf = encryption_now(aws, enc, state, region, keys_made).await;
        match conf {
            Ok(conf) => step!(
                &ops::PUT_BUCKET_ENCRYPTION,
                "default encryption",
                client.put_bucket_encryption().bucket(name).server_side_encryption_configuration(conf.clone()).send()
            ),
            Err(e) => out.push(StepOutcome { step: "default encryption", result: Err(e.to_string()) }),
        }
    }
    if let (Some(pab), true) = (&spec.public_access_block, touches("public_access_block")) {
        let seen = state.public_access_block.as_ref().and_then(|o| o.present());
        let m = merged_pab(pab, seen);
        step!(
            &ops::PUT_PUBLIC_ACCESS_BLOCK,
            "public access block",
            client
                .put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(m.block_public_acls)
                        .ignore_public_acls(m.ignore_public_acls)
                        .block_public_policy(m.block_public_policy)
                        .restrict_public_buckets(m.restrict_public_buckets)
                        .build()
                )
                .send()
        );
    }
    // One write for the TLS and access statements: only the Sids of the
    // changes being made are replaced, every other statement is kept.
    out.extend(bucket_policy(aws, &client, spec, state, changes, roles_made).await);
    if let Some(want) = &spec.lifecycle {
        let prefix = format!("s3.{name}.lifecycle");
        if changes.iter().any(|c| c.address.as_str().starts_with(&prefix) && c.is_actionable()) {
            let seen = state.lifecycle.as_ref().and_then(|o| o.present());
            let r = write_lifecycle(aws, &client, name, seen, want, changes).await;
            out.push(StepOutcome { step: "lifecycle", result: r.map_err(|e| e.to_string()) });
        }
    }
    out
}

/// The Object Lock configuration to write: enabled, with the default
/// retention the policy names.
fn lock_config(lock: &crate::providers::s3::section::ObjectLock) -> ObjectLockConfiguration {
    ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(
            ObjectLockRule::builder()
                .default_retention(
                    DefaultRetention::builder()
                        .mode(ObjectLockRetentionMode::from(lock.mode.as_str()))
                        .days(i32::try_from(lock.days).unwrap_or(i32::MAX))
                        .build(),
                )
                .build(),
        )
        .build()
}

/// The default-encryption document to write. `bucket_key` the policy leaves
/// open keeps its live value, and so do the blocked encryption types the
/// format does not model (field-level ownership).
fn encryption_config(
    enc: &Encryption,
    seen_bucket_key: Option<bool>,
    seen_blocked: Option<Vec<String>>,
) -> Result<ServerSideEncryptionConfiguration, aws_sdk_s3::error::BuildError> {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(enc.algorithm.as_str()))
        .set_kms_master_key_id(enc.kms_key.clone())
        .build()?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .set_bucket_key_enabled(enc.bucket_key.or(seen_bucket_key))
        .set_blocked_encryption_types(seen_blocked.map(|types| {
            BlockedEncryptionTypes::builder()
                .set_encryption_type(Some(types.iter().map(|t| EncryptionType::from(t.as_str())).collect()))
                .build()
        }))
        .build();
    ServerSideEncryptionConfiguration::builder().rules(rule).build()
}

/// Why a bucket's write step failed (the step outcome says it in words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ApplyError {
    /// What S3, IAM or KMS answered (or a document S3 would refuse).
    #[error("{0}")]
    Refused(String),
    #[error("cannot re-read the {0}: {1}")]
    Unreadable(&'static str, String),
    #[error("the {0} changed since it was observed (someone else wrote it); nothing was written: re-run plan to see the new state")]
    Changed(&'static str),
    #[error("cannot read the ARN of role {0}: {1}")]
    RoleArn(String, String),
    #[error("access principals: {0}")]
    Principals(String),
    /// Writing would shut the tool out, or whether it would is not known.
    #[error("{0}; nothing written")]
    LocksOut(String),
}

/// Replace the lifecycle document, keeping rules the policy does not own,
/// unless it changed since `seen` was read.
async fn write_lifecycle(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    seen: Option<&LifecycleDoc>,
    want: &Lifecycle,
    changes: &[Change],
) -> Result<(), ApplyError> {
    let now = observe::read_lifecycle(aws, client, name).await.map_err(|f| ApplyError::Refused(f.message))?;
    let now = match now {
        Observed::Unknown { reason } => return Err(ApplyError::Unreadable("lifecycle configuration", reason)),
        Observed::Absent => None,
        Observed::Present(d) => Some(d),
    };
    if now.as_ref().map(|d| (&d.rules, &d.min_object_size)) != seen.map(|d| (&d.rules, &d.min_object_size)) {
        return Err(ApplyError::Changed("lifecycle configuration"));
    }
    let rules = lifecycle::merged(want, now.as_ref(), &lifecycle::actions(name, changes, "lifecycle"))
        .map_err(|e| ApplyError::Refused(e.to_string()))?;
    if rules.is_empty() {
        return aws
            .call(&ops::DELETE_BUCKET_LIFECYCLE, client.delete_bucket_lifecycle().bucket(name).send())
            .await
            .map(|_| ())
            .map_err(|e| ApplyError::Refused(classify(&e, &[]).reason()));
    }
    let conf = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| ApplyError::Refused(e.to_string()))?;
    aws.call(
        &ops::PUT_BUCKET_LIFECYCLE_CONFIGURATION,
        client
            .put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(conf)
            .set_transition_default_minimum_object_size(now.and_then(|d| d.min_object_size))
            .send(),
    )
    .await
    .map(|_| ())
    .map_err(|e| ApplyError::Refused(classify(&e, &[]).reason()))
}

/// The access restriction with every role an ARN: roles resolved at plan
/// time as they were, roles this apply created read now (waiting, bounded
/// by --wait, for IAM to show a role it made moments ago).
async fn access_now(
    aws: &Aws,
    want: &crate::providers::s3::section::Access,
    seen: &std::collections::BTreeMap<String, access::Principal>,
    roles_made: bool,
) -> Result<access::Resolved, ApplyError> {
    let mut principals = seen.clone();
    for (name, p) in principals.iter_mut() {
        if *p != access::Principal::AfterApply {
            continue;
        }
        let iam = aws.iam();
        let r = aws
            .call_until_visible(
                &ops::GET_ROLE,
                &format!("role {name}"),
                || iam.get_role().role_name(name).send(),
                |e| roles_made && e.code() == Some("NoSuchEntity"),
            )
            .await;
        *p = match r {
            Ok(o) => access::Principal::Arn(o.role().map(|r| r.arn().to_string()).unwrap_or_default()),
            Err(e) => return Err(ApplyError::RoleArn(name.clone(), classify(&e, &[]).reason())),
        };
    }
    access::resolve(want, &principals).map_err(|e| ApplyError::Principals(e.to_string()))
}

/// Replace the statements of the Sids in `owned` by `desired`, keeping
/// every other statement, unless the policy changed since `seen` was read.
async fn write_policy(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    name: &str,
    seen: Option<&PolicyDoc>,
    owned: &[&str],
    desired: Vec<serde_json::Value>,
) -> Result<(), ApplyError> {
    let now = observe::read_policy(aws, client, name).await.map_err(|f| ApplyError::Refused(f.message))?;
    let now = match now {
        Observed::Unknown { reason } => return Err(ApplyError::Unreadable("bucket policy", reason)),
        Observed::Absent => None,
        Observed::Present(d) => Some(d),
    };
    if now.as_ref() != seen {
        return Err(ApplyError::Changed("bucket policy"));
    }
    match tls::merged_statements(now.as_ref(), owned, desired) {
        Some(doc) => aws
            .call(&ops::PUT_BUCKET_POLICY, client.put_bucket_policy().bucket(name).policy(doc.to_string()).send())
            .await
            .map(|_| ())
            .map_err(|e| ApplyError::Refused(classify(&e, &[]).reason())),
        None => aws
            .call(&ops::DELETE_BUCKET_POLICY, client.delete_bucket_policy().bucket(name).send())
            .await
            .map(|_| ())
            .map_err(|e| ApplyError::Refused(classify(&e, &[]).reason())),
    }
}

/// Why a declared replica key's ARN could not be had.
#[derive(Debug, thiserror::Error)]
enum ReplicaKeyError {
    #[error("the key {alias} is in account {account}, which this run did not reach")]
    Unreached { alias: String, account: String },
    #[error("{0}")]
    Lookup(String),
}

/// Each declared replica key's ARN, as the rules are written: read at plan
/// time, or looked up now when the kms kind just created it, in the key's
/// region and account.
async fn replica_keys(
    ctx: &crate::providers::Ctx<'_>,
    want: &crate::providers::s3::section::Replication,
    pre: &Prerequisites,
    region: &str,
    keys_made: bool,
) -> Result<std::collections::BTreeMap<String, String>, ReplicaKeyError> {
    let mut keys = std::collections::BTreeMap::new();
    for r in &want.rules {
        let Some(alias) = r.replica_kms_key.as_deref().filter(|k| replication::names_declared_key(k)) else {
            continue;
        };
        let arn = match pre.keys.get(alias) {
            Some(Observed::Present(a)) => a.clone(),
            _ => {
                let (in_region, account) =
                    pre.key_regions.get(alias).map_or((region, None), |(r, a)| (r.as_str(), a.as_deref()));
                let Some(there) = ctx.in_account(account) else {
                    let account = account.unwrap_or("?").to_string();
                    return Err(ReplicaKeyError::Unreached { alias: alias.to_string(), account });
                };
                crate::aws::lookup::key_arn(there, in_region, alias, keys_made)
                    .await
                    .map_err(ReplicaKeyError::Lookup)?
            }
        };
        keys.insert(alias.to_string(), arn);
    }
    Ok(keys)
}

/// Phase two: write the replication configuration (after every bucket's
/// creation and versioning). None when there is nothing to write.
pub async fn apply_replication(
    ctx: &crate::providers::Ctx<'_>,
    spec: &BucketSpec,
    region: &str,
    seen: Option<&Observed<ReplicationDoc>>,
    pre: &Prerequisites,
    changes: &[Change],
    keys_made: bool,
) -> Option<StepOutcome> {
    let aws = ctx.aws;
    let want = spec.replication.as_ref()?;
    let name = spec.name.as_str();
    let head = changes.iter().find(|c| c.address == replication::address(name))?;
    let prefix = format!("{}.", head.address.as_str());
    let any = changes
        .iter()
        .any(|c| (c.address == head.address || c.address.as_str().starts_with(&prefix)) && c.is_actionable());
    if !any || !head.conflicts.is_empty() || !head.unknown.is_empty() {
        return None;
    }
    // A role the same apply just created is looked up now.
    let role_arn = match pre.roles.get(&want.role) {
        Some(Observed::Present(arn)) => arn.clone(),
        _ => match observe::role_arn(aws, &want.role).await {
            Ok(Observed::Present(arn)) => arn,
            Ok(_) => {
                return Some(StepOutcome {
                    step: "replication",
                    result: Err(format!("the role `{}` does not exist", want.role)),
                })
            }
            Err(f) => return Some(StepOutcome { step: "replication", result: Err(f.message) }),
        },
    };
    let role_arn = &role_arn;
    let keys = match replica_keys(ctx, want, pre, region, keys_made).await {
        Ok(k) => k,
        Err(why) => return Some(StepOutcome { step: "replication", result: Err(why.to_string()) }),
    };
    let want = &replication::with_keys(want, |a| keys.get(a).cloned().unwrap_or_else(|| a.to_string()));
    let client = aws.s3(region);
    let seen = seen.and_then(|o| o.present());
    let result = async {
        let now = match observe::read_replication(aws, &client, name)
            .await
            .map_err(|f| ApplyError::Refused(f.message))?
        {
            Observed::Unknown { reason } => return Err(ApplyError::Unreadable("replication configuration", reason)),
            Observed::Absent => None,
            Observed::Present(d) => Some(d),
        };
        if now.as_ref().map(|d| (&d.role, &d.rules)) != seen.map(|d| (&d.role, &d.rules)) {
            return Err(ApplyError::Changed("replication configuration"));
        }
        let act = lifecycle::actions(name, changes, "replication");
        match replication::merged(want, role_arn, now.as_ref(), &act).map_err(|e| ApplyError::Refused(e.to_string()))? {
            // Right after this run enabled versioning, S3 may still answer
            // "Versioning must be 'Enabled' on the bucket" (and a new role
            // may not be usable yet): the same eventual consistency,
            // waited out the same way (terraform-provider-aws retries
            // PutBucketReplication for it, bucket_replication_configuration.go).
            Some(conf) => aws
                .call_until_visible(
                    &ops::PUT_BUCKET_REPLICATION,
                    &format!("versioning and the role of {name}"),
                    || client.put_bucket_replication().bucket(name).replication_configuration(conf.clone()).send(),
                    |e| {
                        let (code, msg) = (e.code().unwrap_or(""), e.message().unwrap_or(""));
                        (code == "InvalidRequest" && msg.contains("ersioning"))
                            || (code == "InvalidArgument" && msg.to_ascii_lowercase().contains("role"))
                    },
                )
                .await
                .map(|_| ())
                .map_err(|e| ApplyError::Refused(classify(&e, &[]).reason())),
            None => aws
                .call(&ops::DELETE_BUCKET_REPLICATION, client.delete_bucket_replication().bucket(name).send())
                .await
                .map(|_| ())
                .map_err(|e| ApplyError::Refused(classify(&e, &[]).reason())),
        }
    }
    .await;
    Some(StepOutcome { step: "replication", result: result.map_err(|e| e.to_string()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Algorithm;

    #[test]
    fn encryption_keeps_what_the_policy_does_not_name() {
        let enc = Encryption {
            algorithm: Algorithm::AwsKms,
            kms_key: Some("k".into()),
            declared_key: None,
            bucket_key: None,
        };
        let conf = encryption_config(&enc, Some(true), Some(vec!["SSE-C".into()])).expect("conf");
        let rule = &conf.rules()[0];
        assert_eq!(rule.bucket_key_enabled(), Some(true), "bucket_key not named: kept");
        let blocked: Vec<&str> = rule
            .blocked_encryption_types()
            .map(|b| b.encryption_type().iter().map(|t| t.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(blocked, ["SSE-C"], "blocked types not modelled: kept");
        let none = encryption_config(&enc, None, None).expect("conf");
        assert!(none.rules()[0].blocked_encryption_types().is_none());
    }
}
