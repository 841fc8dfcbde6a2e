//! The project's moto launcher corrects two replies moto gets wrong (see
//! scripts/moto_launcher.py). One test per correction, through aws-sdk-s3.

use aws_sdk_s3::types::{
    BucketVersioningStatus, DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus, VersioningConfiguration,
};

use crate::harness::{block_on, unique, World};

#[test]
fn get_bucket_versioning_decodes_in_aws_sdk_s3() {
    let w = World::with_moto();
    let b = unique("versioned");
    let s3 = w.moto().s3("us-east-1");
    block_on(async {
        s3.create_bucket().bucket(&b).send().await.expect("create");
        let v = s3.get_bucket_versioning().bucket(&b).send().await.expect("never-versioned bucket decodes");
        assert_eq!(v.status(), None);
        s3.put_bucket_versioning()
            .bucket(&b)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .expect("enable");
        let v = s3.get_bucket_versioning().bucket(&b).send().await.expect("versioning decodes");
        assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    });
}

#[test]
fn get_bucket_replication_returns_what_was_stored() {
    let w = World::with_moto();
    let (src, dst) = (unique("src"), unique("dst"));
    let s3 = w.moto().s3("us-east-1");
    block_on(async {
        for b in [&src, &dst] {
            s3.create_bucket().bucket(b).send().await.expect("create");
            s3.put_bucket_versioning()
                .bucket(b)
                .versioning_configuration(
                    VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
                )
                .send()
                .await
                .expect("enable");
        }
        let rule = ReplicationRule::builder()
            .id("dr-copy")
            .priority(3)
            .status(ReplicationRuleStatus::Enabled)
            .filter(ReplicationRuleFilter::builder().prefix("postgres/").build())
            .delete_marker_replication(
                DeleteMarkerReplication::builder().status(DeleteMarkerReplicationStatus::Enabled).build(),
            )
            .destination(Destination::builder().bucket(format!("arn:aws:s3:::{dst}")).build().expect("destination"))
            .build()
            .expect("rule");
        let conf = ReplicationConfiguration::builder()
            .role("arn:aws:iam::123456789012:role/suoops-s3-replication")
            .rules(rule)
            .build()
            .expect("conf");
        s3.put_bucket_replication().bucket(&src).replication_configuration(conf).send().await.expect("put replication");
        let got = s3.get_bucket_replication().bucket(&src).send().await.expect("get replication");
        let r = &got.replication_configuration().expect("conf").rules()[0];
        assert_eq!(r.filter().and_then(|f| f.prefix()), Some("postgres/"));
        assert_eq!(
            r.delete_marker_replication().and_then(|d| d.status()),
            Some(&DeleteMarkerReplicationStatus::Enabled)
        );
        assert_eq!(r.priority(), Some(3));
    });
}

#[test]
fn tls_only_deny_does_not_block_object_calls_but_other_denies_do() {
    use aws_sdk_s3::primitives::ByteStream;
    let w = World::with_moto();
    let b = unique("tls");
    let s3 = w.moto().s3("us-east-1");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"TlsOnly","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::{b}","arn:aws:s3:::{b}/*"],"Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}},
            {{"Sid":"NoSecrets","Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/secret/*"}}]}}"#
    );
    block_on(async {
        s3.create_bucket().bucket(&b).send().await.expect("create");
        s3.put_bucket_policy().bucket(&b).policy(&policy).send().await.expect("policy");
        s3.put_object()
            .bucket(&b)
            .key("postgres/dump")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put under TLS-only");
        s3.get_object().bucket(&b).key("postgres/dump").send().await.expect("get under TLS-only");
        s3.put_object().bucket(&b).key("secret/x").body(ByteStream::from_static(b"x")).send().await.expect("put");
        let denied = s3.get_object().bucket(&b).key("secret/x").send().await;
        assert!(denied.is_err(), "the other Deny statement still applies");
    });
}
