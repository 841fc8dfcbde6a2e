//! The one integration-test binary: the CLI run as a user runs it, against
//! real local servers the harness starts.

mod access;
mod accounts;
mod aws_eval;
mod backup;
mod behaviour;
mod evidence;
mod faults;
mod harness;
mod iam;
mod import;
mod kms;
mod moto_launcher;
mod notify;
mod pg_tls;
mod pitr;
mod redis_state;
mod s3;
mod s3_documents;
mod schedule;
mod schema;
mod stores;
mod validate;
