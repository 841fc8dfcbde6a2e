//! One folder per managed system. Each has observe (reads), diff (pure),
//! apply (writes) and controls (audit).

pub mod iam;
pub mod permissions;
pub mod postgres;
pub mod redis;
pub mod s3;
