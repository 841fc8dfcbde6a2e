//! Every API operation a provider may call, once: the SDK method, its IAM
//! action, read or write, and what it acts on. Call sites name one of
//! these (`aws.call(&ops::HEAD_BUCKET, …)`), so `-v` logs, `permissions` and
//! the declared-operations test all come from this list; each provider
//! lists the ones it uses in `Provider::ops`.

use super::{On, Op};

pub const ATTACH_ROLE_POLICY: Op = Op::write("attach_role_policy", "iam:AttachRolePolicy", On::Role);
pub const ABORT_MULTIPART_UPLOAD: Op = Op::write("abort_multipart_upload", "s3:AbortMultipartUpload", On::Backups);
pub const COMPLETE_MULTIPART_UPLOAD: Op = Op::write("complete_multipart_upload", "s3:PutObject", On::Backups);
pub const CREATE_MULTIPART_UPLOAD: Op = Op::write("create_multipart_upload", "s3:PutObject", On::Backups);
pub const UPLOAD_PART: Op = Op::write("upload_part", "s3:PutObject", On::Backups);
pub const CREATE_BUCKET: Op = Op::write("create_bucket", "s3:CreateBucket", On::Bucket);
pub const CREATE_POLICY: Op = Op::write("create_policy", "iam:CreatePolicy", On::ManagedPolicy);
pub const CREATE_POLICY_VERSION: Op = Op::write("create_policy_version", "iam:CreatePolicyVersion", On::ManagedPolicy);
pub const CREATE_ROLE: Op = Op::write("create_role", "iam:CreateRole", On::Role);
pub const DELETE_BUCKET_LIFECYCLE: Op =
    Op::write("delete_bucket_lifecycle", "s3:PutLifecycleConfiguration", On::Bucket);
pub const DELETE_BUCKET_POLICY: Op = Op::write("delete_bucket_policy", "s3:DeleteBucketPolicy", On::Bucket);
pub const DELETE_BUCKET_REPLICATION: Op =
    Op::write("delete_bucket_replication", "s3:PutReplicationConfiguration", On::Bucket);
pub const DELETE_POLICY_VERSION: Op = Op::write("delete_policy_version", "iam:DeletePolicyVersion", On::ManagedPolicy);
pub const DELETE_ROLE: Op = Op::write("delete_role", "iam:DeleteRole", On::Role);
pub const DELETE_ROLE_POLICY: Op = Op::write("delete_role_policy", "iam:DeleteRolePolicy", On::Role);
pub const DESCRIBE_KEY: Op = Op::read("describe_key", "kms:DescribeKey", On::Key);
pub const DETACH_ROLE_POLICY: Op = Op::write("detach_role_policy", "iam:DetachRolePolicy", On::Role);
pub const GET_BUCKET_ENCRYPTION: Op = Op::read("get_bucket_encryption", "s3:GetEncryptionConfiguration", On::Bucket);
pub const GET_BUCKET_LIFECYCLE_CONFIGURATION: Op =
    Op::read("get_bucket_lifecycle_configuration", "s3:GetLifecycleConfiguration", On::Bucket);
pub const GET_BUCKET_LOCATION: Op = Op::read("get_bucket_location", "s3:GetBucketLocation", On::Bucket);
pub const GET_BUCKET_POLICY: Op = Op::read("get_bucket_policy", "s3:GetBucketPolicy", On::Bucket);
pub const GET_BUCKET_REPLICATION: Op = Op::read("get_bucket_replication", "s3:GetReplicationConfiguration", On::Bucket);
pub const GET_BUCKET_VERSIONING: Op = Op::read("get_bucket_versioning", "s3:GetBucketVersioning", On::Bucket);
pub const GET_OBJECT: Op = Op::read("get_object", "s3:GetObject", On::Objects);
pub const GET_POLICY_VERSION: Op = Op::read("get_policy_version", "iam:GetPolicyVersion", On::ManagedPolicy);
/// An attached or boundary policy's default version (its document is
/// then read with GET_POLICY_VERSION).
pub const GET_POLICY: Op = Op::read("get_policy", "iam:GetPolicy", On::AttachedPolicy);
pub const GET_OBJECT_LOCK_CONFIGURATION: Op =
    Op::read("get_object_lock_configuration", "s3:GetBucketObjectLockConfiguration", On::Bucket);
pub const GET_PUBLIC_ACCESS_BLOCK: Op =
    Op::read("get_public_access_block", "s3:GetBucketPublicAccessBlock", On::Bucket);
pub const GET_ROLE: Op = Op::read("get_role", "iam:GetRole", On::Role);
pub const GET_ROLE_POLICY: Op = Op::read("get_role_policy", "iam:GetRolePolicy", On::Role);
pub const HEAD_BUCKET: Op = Op::read("head_bucket", "s3:ListBucket", On::Bucket);
pub const HEAD_OBJECT: Op = Op::read("head_object", "s3:GetObject", On::Objects);
pub const LIST_ATTACHED_ROLE_POLICIES: Op =
    Op::read("list_attached_role_policies", "iam:ListAttachedRolePolicies", On::Role);
pub const LIST_BUCKETS: Op = Op::read("list_buckets", "s3:ListAllMyBuckets", On::Account);
pub const LIST_OBJECT_VERSIONS: Op = Op::read("list_object_versions", "s3:ListBucketVersions", On::Bucket);
pub const LIST_OBJECTS_V2: Op = Op::read("list_objects_v2", "s3:ListBucket", On::Bucket);
pub const LIST_POLICIES: Op = Op::read("list_policies", "iam:ListPolicies", On::Any);
pub const LIST_POLICY_VERSIONS: Op = Op::write("list_policy_versions", "iam:ListPolicyVersions", On::ManagedPolicy);
pub const LIST_ROLE_POLICIES: Op = Op::read("list_role_policies", "iam:ListRolePolicies", On::Role);
pub const PUT_BUCKET_ENCRYPTION: Op = Op::write("put_bucket_encryption", "s3:PutEncryptionConfiguration", On::Bucket);
pub const PUT_BUCKET_LIFECYCLE_CONFIGURATION: Op =
    Op::write("put_bucket_lifecycle_configuration", "s3:PutLifecycleConfiguration", On::Bucket);
pub const PUT_BUCKET_POLICY: Op = Op::write("put_bucket_policy", "s3:PutBucketPolicy", On::Bucket);
pub const PUT_BUCKET_REPLICATION: Op =
    Op::write("put_bucket_replication", "s3:PutReplicationConfiguration", On::Bucket);
pub const PUT_BUCKET_VERSIONING: Op = Op::write("put_bucket_versioning", "s3:PutBucketVersioning", On::Bucket);
/// The notify state object (`audit --state s3://…`), outside the policy.
pub const PUT_OBJECT: Op = Op::write("put_object", "s3:PutObject", On::StateObject);
pub const PUT_OBJECT_LOCK_CONFIGURATION: Op =
    Op::write("put_object_lock_configuration", "s3:PutBucketObjectLockConfiguration", On::Bucket);
pub const PUT_PUBLIC_ACCESS_BLOCK: Op =
    Op::write("put_public_access_block", "s3:PutBucketPublicAccessBlock", On::Bucket);
pub const PUT_ROLE_POLICY: Op = Op::write("put_role_policy", "iam:PutRolePolicy", On::Role);
pub const TAG_ROLE: Op = Op::write("tag_role", "iam:TagRole", On::Role);
pub const UPDATE_ASSUME_ROLE_POLICY: Op =
    Op::write("update_assume_role_policy", "iam:UpdateAssumeRolePolicy", On::Role);
pub const UPDATE_ROLE: Op = Op::write("update_role", "iam:UpdateRole", On::Role);
pub const CREATE_ALIAS: Op = Op::write("create_alias", "kms:CreateAlias", On::Alias);
pub const CREATE_KEY: Op = Op::write("create_key", "kms:CreateKey", On::AnyKey);
pub const DISABLE_KEY_ROTATION: Op = Op::write("disable_key_rotation", "kms:DisableKeyRotation", On::Key);
pub const ENABLE_KEY: Op = Op::write("enable_key", "kms:EnableKey", On::Key);
pub const ENABLE_KEY_ROTATION: Op = Op::write("enable_key_rotation", "kms:EnableKeyRotation", On::Key);
pub const GET_KEY_POLICY: Op = Op::read("get_key_policy", "kms:GetKeyPolicy", On::Key);
pub const GET_KEY_ROTATION_STATUS: Op = Op::read("get_key_rotation_status", "kms:GetKeyRotationStatus", On::Key);
pub const LIST_KEYS: Op = Op::read("list_keys", "kms:ListKeys", On::AnyKey);
pub const LIST_RESOURCE_TAGS: Op = Op::read("list_resource_tags", "kms:ListResourceTags", On::Key);
pub const PUT_KEY_POLICY: Op = Op::write("put_key_policy", "kms:PutKeyPolicy", On::Key);
pub const UPDATE_KEY_DESCRIPTION: Op = Op::write("update_key_description", "kms:UpdateKeyDescription", On::Key);
