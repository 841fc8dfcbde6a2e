//! Make one bucket match the policy, in a safe order: create it, then
//! versioning, then default encryption (before anything writes objects),
//! then the public access block. Each step is one API call; a failed step
//! stops the later steps of this bucket only.

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};

use super::diff::merged_pab;
use super::observe::BucketState;
use crate::aws::{classify, Aws};
use crate::model::{Action, Change};
use crate::policy::{BucketSpec, Encryption, Versioning};

/// One step done, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub step: &'static str,
    pub result: Result<(), String>,
}

/// Apply `change` (computed from `state`) to the bucket. Returns each step's
/// outcome in order; steps after a failure are not attempted.
pub async fn apply(
    aws: &Aws,
    spec: &BucketSpec,
    region: &str,
    state: &BucketState,
    change: &Change,
) -> Vec<StepOutcome> {
    let client = aws.s3(region);
    let name = spec.name.as_str();
    let touches = |prefix: &str| {
        change
            .attributes
            .iter()
            .any(|a| a.name == prefix || a.name.starts_with(&format!("{prefix}.")))
    };
    let mut out = Vec::new();
    macro_rules! step {
        ($label:expr, $fut:expr) => {{
            let r = aws
                .call($fut)
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, &[]).reason());
            let failed = r.is_err();
            out.push(StepOutcome {
                step: $label,
                result: r,
            });
            if failed {
                return out;
            }
        }};
    }

    if change.action == Action::Create {
        let mut req = client.create_bucket().bucket(name);
        // us-east-1 is the one region that takes no LocationConstraint.
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        step!("create bucket", req.send());
    }
    if let (Some(v), true) = (spec.versioning, touches("versioning")) {
        let status = match v {
            Versioning::Enabled => BucketVersioningStatus::Enabled,
            Versioning::Suspended => BucketVersioningStatus::Suspended,
        };
        step!(
            "versioning",
            client
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
        );
    }
    if let (Some(enc), true) = (&spec.encryption, touches("encryption")) {
        let seen_bucket_key = state
            .encryption
            .as_ref()
            .and_then(|o| o.present())
            .map(|e| e.bucket_key);
        match encryption_config(enc, seen_bucket_key) {
            Ok(conf) => step!(
                "default encryption",
                client
                    .put_bucket_encryption()
                    .bucket(name)
                    .server_side_encryption_configuration(conf)
                    .send()
            ),
            Err(e) => {
                out.push(StepOutcome {
                    step: "default encryption",
                    result: Err(e.to_string()),
                });
                return out;
            }
        }
    }
    if let (Some(pab), true) = (&spec.public_access_block, touches("public_access_block")) {
        let seen = state.public_access_block.as_ref().and_then(|o| o.present());
        let m = merged_pab(pab, seen);
        step!(
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
    out
}

/// The default-encryption document to write. `bucket_key` the policy leaves
/// open keeps its live value.
fn encryption_config(
    enc: &Encryption,
    seen_bucket_key: Option<bool>,
) -> Result<ServerSideEncryptionConfiguration, aws_sdk_s3::error::BuildError> {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::from(enc.algorithm.as_str()))
        .set_kms_master_key_id(enc.kms_key.clone())
        .build()?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .set_bucket_key_enabled(enc.bucket_key.or(seen_bucket_key))
        .build();
    ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
}
