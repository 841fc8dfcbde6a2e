//! One folder per managed system. Each has observe (reads), diff (pure),
//! apply (writes) and controls (audit).

pub mod iam;
pub mod permissions;
pub mod s3;
