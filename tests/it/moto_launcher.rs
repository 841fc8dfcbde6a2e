//! The project's moto launcher corrects replies and policy checks moto gets wrong (see
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
        // A Filter.And keeps its tags (moto drops them).
        let tagged = ReplicationRule::builder()
            .id("tagged")
            .priority(1)
            .status(ReplicationRuleStatus::Enabled)
            .filter(
                ReplicationRuleFilter::builder()
                    .and(
                        aws_sdk_s3::types::ReplicationRuleAndOperator::builder()
                            .prefix("postgres/")
                            .tags(aws_sdk_s3::types::Tag::builder().key("class").value("keep").build().expect("tag"))
                            .build(),
                    )
                    .build(),
            )
            .delete_marker_replication(
                DeleteMarkerReplication::builder().status(DeleteMarkerReplicationStatus::Disabled).build(),
            )
            .destination(Destination::builder().bucket(format!("arn:aws:s3:::{dst}")).build().expect("destination"))
            .build()
            .expect("rule");
        let conf = ReplicationConfiguration::builder()
            .role("arn:aws:iam::123456789012:role/suoops-s3-replication")
            .rules(tagged)
            .build()
            .expect("conf");
        s3.put_bucket_replication().bucket(&src).replication_configuration(conf).send().await.expect("put replication");
        let got = s3.get_bucket_replication().bucket(&src).send().await.expect("get replication");
        let and = got.replication_configuration().expect("conf").rules()[0].filter().and_then(|f| f.and()).cloned();
        let and = and.expect("And");
        assert_eq!(and.prefix(), Some("postgres/"));
        assert_eq!(and.tags().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), [("class", "keep")]);
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

/// Python that runs object calls as given principals against the test's
/// moto and prints `LABEL ok` or `LABEL CODE` for each: `as_role(NAME)`
/// assumes the role (made first with `role(NAME, PATH)`), `as_root()` is
/// the account root.
pub const AS_PRINCIPALS: &str = r#"
import sys, json, boto3
from botocore.exceptions import ClientError
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1")
root = dict(aws_access_key_id="t", aws_secret_access_key="t")
iam = boto3.client("iam", **kw, **root)
sts = boto3.client("sts", **kw, **root)
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
def role(name, path="/"):
    try:
        return iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except ClientError:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
def as_role(name):
    arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    c = sts.assume_role(RoleArn=arn, RoleSessionName="test")["Credentials"]
    return boto3.client("s3", **kw, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
def as_root():
    return boto3.client("s3", **kw, **root)
def attempt(label, f):
    try:
        f()
        print(label, "ok")
    except ClientError as e:
        print(label, e.response["Error"].get("Code") or e.response["ResponseMetadata"]["HTTPStatusCode"])
"#;

#[test]
fn principal_arn_conditions_are_evaluated_against_the_caller() {
    let w = World::with_moto();
    let b = unique("locked");
    let out = w.python(&format!(
        r#"{AS_PRINCIPALS}
writer = role("writer", "/backup/")
admin = role("admin")
s3 = as_root()
s3.create_bucket(Bucket="{b}")
s3.put_bucket_versioning(Bucket="{b}", VersioningConfiguration={{"Status": "Enabled"}})
s3.put_bucket_policy(Bucket="{b}", Policy=json.dumps({{"Version": "2012-10-17", "Statement": [
    {{"Sid": "OnlyWriterPuts", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::{b}/*",
     "Condition": {{"ArnNotLike": {{"aws:PrincipalArn": [writer, admin]}}}}}},
    {{"Sid": "NoDelete", "Effect": "Deny", "Principal": "*", "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"], "Resource": "arn:aws:s3:::{b}/*",
     "Condition": {{"ArnNotLike": {{"aws:PrincipalArn": admin}}}}}}]}}))
w, a = as_role("writer"), as_role("admin")
attempt("writer-put", lambda: w.put_object(Bucket="{b}", Key="k", Body=b"x"))
attempt("root-put", lambda: s3.put_object(Bucket="{b}", Key="k", Body=b"y"))
attempt("root-head", lambda: s3.head_object(Bucket="{b}", Key="k"))
up = w.create_multipart_upload(Bucket="{b}", Key="big")["UploadId"]
attempt("writer-multipart", lambda: w.upload_part(Bucket="{b}", Key="big", UploadId=up, PartNumber=1, Body=b"z"))
attempt("root-multipart", lambda: s3.create_multipart_upload(Bucket="{b}", Key="big2"))
v = s3.list_object_versions(Bucket="{b}")["Versions"][0]["VersionId"]
attempt("writer-delete-version", lambda: w.delete_object(Bucket="{b}", Key="k", VersionId=v))
attempt("root-delete-version", lambda: s3.delete_object(Bucket="{b}", Key="k", VersionId=v))
attempt("admin-delete-version", lambda: a.delete_object(Bucket="{b}", Key="k", VersionId=v))
"#
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "writer-put ok",
            "root-put AccessDenied",
            "root-head ok",
            "writer-multipart ok",
            "root-multipart AccessDenied",
            "writer-delete-version AccessDenied",
            "root-delete-version AccessDenied",
            "admin-delete-version ok",
        ],
        "{out}"
    );
}

/// A "directory" whose objects were all deleted in a versioned bucket is
/// no longer a CommonPrefix, as on S3 (moto kept listing it).
#[test]
fn a_prefix_holding_only_delete_markers_is_not_listed() {
    let w = World::with_moto();
    let b = unique("dirs");
    let s3 = w.moto().s3("us-east-1");
    block_on(async {
        s3.create_bucket().bucket(&b).send().await.expect("create");
        s3.put_bucket_versioning()
            .bucket(&b)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .expect("versioning");
        for k in ["backup/20261201-010101F/backup.manifest", "backup/20261202-010101F/backup.manifest"] {
            s3.put_object()
                .bucket(&b)
                .key(k)
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"m"))
                .send()
                .await
                .expect("put");
        }
        s3.delete_object().bucket(&b).key("backup/20261201-010101F/backup.manifest").send().await.expect("delete");
        let out = s3.list_objects_v2().bucket(&b).prefix("backup/").delimiter("/").send().await.expect("list");
        let dirs: Vec<&str> = out.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
        assert_eq!(dirs, ["backup/20261202-010101F/"]);
    });
}
