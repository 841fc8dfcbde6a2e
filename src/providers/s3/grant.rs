//! A destination bucket in another account than the sources that
//! replicate into it: its bucket policy lets each source's replication
//! role write the replicas and hand them to the bucket's owner — both
//! sides must allow a cross-account request, the role's own permissions
//! are not enough (AWS S3 user guide, "Configuring replication for source
//! and destination buckets owned by different accounts": the destination
//! bucket policy grants s3:ReplicateObject, s3:ReplicateDelete and, for
//! the owner override, s3:ObjectOwnerOverrideToBucketOwner on the
//! objects). The guide's example also grants s3:List*,
//! s3:GetBucketVersioning and s3:PutBucketVersioning on the bucket;
//! replication does not need them, and PutBucketVersioning would let the
//! workload account suspend the backup account's versioning, so they are
//! not granted, and a statement an earlier version wrote under the
//! bucket Sid is removed. One statement, owned by its Sid; every other
//! statement of the bucket policy is kept.

use serde_json::{json, Value};

use super::tls::{canonical, readable, PolicyDoc};
use crate::iamdoc::statements;
use crate::model::{Action, Address, AttrChange, Change, Observed, Shortfall};

pub const SID_OBJECTS: &str = "SuoopsPolicyReplicasFromSources";
pub const SID_BUCKET: &str = "SuoopsPolicyReplicasFromSourcesBucket";
/// The Sids this tool owns for the grant.
pub const SIDS: [&str; 2] = [SID_OBJECTS, SID_BUCKET];

pub fn address(bucket: &str) -> Address {
    Address::s3_bucket(bucket).child("replica_grant")
}

/// The statement letting `roles` (the sources' replication roles, as
/// ARNs) replicate into `bucket`.
pub fn desired_statements(bucket: &str, roles: &[String]) -> Vec<Value> {
    vec![json!({
        "Sid": SID_OBJECTS,
        "Effect": "Allow",
        "Principal": {"AWS": roles},
        "Action": ["s3:ObjectOwnerOverrideToBucketOwner", "s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
        "Resource": format!("arn:aws:s3:::{bucket}/*"),
    })]
}

fn own(doc: Option<&PolicyDoc>, sid: &str) -> Option<Value> {
    let d = doc?;
    statements(&d.json).into_iter().find(|s| s.get("Sid").and_then(Value::as_str) == Some(sid)).cloned()
}

/// Whether the live policy holds the grant as this tool writes it, and
/// what is missing.
pub fn granted(doc: Option<&PolicyDoc>, bucket: &str, roles: &[String]) -> Result<(), Shortfall> {
    let missing: Vec<&str> = desired_statements(bucket, roles)
        .iter()
        .filter(|want| {
            let sid = want["Sid"].as_str().unwrap_or_default();
            own(doc, sid).is_none_or(|have| canonical(&have) != canonical(want))
        })
        .map(|_| "write the replicas")
        .collect();
    if !missing.is_empty() {
        return Err(Shortfall(format!(
            "the bucket policy does not let {} {}: replicas from another account are refused",
            roles.join(", "),
            missing.join(" or ")
        )));
    }
    match own(doc, SID_BUCKET) {
        Some(_) => Err(Shortfall(format!(
            "the bucket policy's statement {SID_BUCKET} lets the sources' account change this bucket's versioning, which replication does not need"
        ))),
        None => Ok(()),
    }
}

pub fn diff(bucket: &str, roles: &[String], seen: &Observed<PolicyDoc>) -> Change {
    let mut c = Change::new(address(bucket), Action::NoOp);
    let Some(doc) = readable(seen, &mut c) else { return c };
    for want in desired_statements(bucket, roles) {
        let sid = want["Sid"].as_str().unwrap_or_default().to_string();
        let have = own(doc, &sid);
        if have.as_ref().is_none_or(|h| canonical(h) != canonical(&want)) {
            c.attributes.push(AttrChange::new(&format!("statement {sid}"), have, want));
        }
    }
    if let Some(stale) = own(doc, SID_BUCKET) {
        c.attributes.push(AttrChange::new(&format!("statement {SID_BUCKET}"), Some(stale), Value::Null));
    }
    if !c.attributes.is_empty() {
        c.action = if SIDS.iter().any(|s| own(doc, s).is_some()) { Action::Update } else { Action::Create };
        c.reason = Some(format!(
            "{} replicate into this bucket from another account; other statements of the bucket policy are kept",
            roles.join(", ")
        ));
        super::tls::refuse_deleted_principals(doc, &SIDS, &mut c);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_is_written_once_and_then_holds() {
        let roles = vec!["arn:aws:iam::111111111111:role/repl".to_string()];
        let none = Observed::Absent;
        let c = diff("dr", &roles, &none);
        assert_eq!(c.action, Action::Create);
        assert_eq!(c.attributes.len(), 1);
        let doc = PolicyDoc { json: json!({"Version": "2012-10-17", "Statement": desired_statements("dr", &roles)}) };
        assert!(diff("dr", &roles, &Observed::Present(doc.clone())).is_noop());
        assert_eq!(granted(Some(&doc), "dr", &roles), Ok(()));
        let why = granted(None, "dr", &roles).expect_err("no policy");
        assert!(why.contains("does not let arn:aws:iam::111111111111:role/repl write the replicas"), "{why:?}");
        // A bucket statement an earlier version wrote is taken away.
        let mut old = doc.json.clone();
        old["Statement"].as_array_mut().expect("list").push(json!({"Sid": SID_BUCKET, "Effect": "Allow",
            "Principal": {"AWS": roles}, "Action": "s3:PutBucketVersioning", "Resource": "arn:aws:s3:::dr"}));
        let c = diff("dr", &roles, &Observed::Present(PolicyDoc { json: old.clone() }));
        assert_eq!(c.action, Action::Update, "{c:?}");
        assert!(granted(Some(&PolicyDoc { json: old }), "dr", &roles).is_err());
    }
}
