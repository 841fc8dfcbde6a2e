//! S3 buckets: existence and region, versioning, default encryption, public
//! access block.

pub mod apply;
pub mod controls;
pub mod diff;
pub mod lifecycle;
pub mod observe;
pub mod replication;
pub mod tls;

pub use observe::{BucketState, EncryptionState, PabState};

/// The IAM actions each S3 operation of this provider needs. `plan` and
/// `audit` need only the read ones.
pub const READ_PERMISSIONS: &[&str] = &[
    "s3:ListBucket",        // HeadBucket
    "s3:GetBucketLocation", // only when HeadBucket answers 403
    "s3:GetBucketVersioning",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetLifecycleConfiguration",
    "s3:GetBucketPolicy",
    "s3:GetReplicationConfiguration",
    "iam:GetRole", // the replication role's ARN
];

pub const WRITE_PERMISSIONS: &[&str] = &[
    "s3:CreateBucket",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutReplicationConfiguration",
    "iam:PassRole", // S3 assumes the replication role
];
