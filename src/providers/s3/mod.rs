//! S3 buckets: existence and region, versioning, default encryption, public
//! access block.

pub mod apply;
pub mod controls;
pub mod diff;
pub mod evidence;
pub mod lifecycle;
pub mod observe;
pub mod replication;
pub mod tls;

pub use observe::{BucketState, EncryptionState, PabState};
