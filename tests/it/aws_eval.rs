//! The audit judged the way AWS evaluates (issue 42): a role's attached
//! managed policies and permissions boundary count toward what it can do;
//! the DR copy is judged from S3's replication status (played by the
//! harness proxy: moto sets none).

use serde_json::Value;

use crate::harness::{block_on, unique, FaultProxy, Faults, World};

fn objective(j: &Value, id: &str) -> Value {
    j["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == id).cloned().expect(id)
}

fn boto(w: &World, code: &str) -> String {
    w.python(&format!(
        r#"
import sys, json, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
{code}
"#
    ))
}

/// The writer role gets AmazonS3FullAccess attached beside the policy's
/// put-only inline document (kept: the policy does not name managed
/// policies). On AWS it can then read the dumps and remove the bucket
/// policy that denies it deletes: LEAST-PRIVILEGE is not met, naming the
/// AWS-managed policy that grants it. A permissions boundary that allows
/// only PutObject limits it back.
#[test]
fn a_writer_with_s3_full_access_attached_does_not_meet_least_privilege() {
    let w = World::with_moto_env(&[("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")]);
    let (b, writer, restore) = (unique("lp"), unique("writer"), unique("restore"));
    let text = format!(
        r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      access: {{writers: [{writer}], readers: [{restore}], deny_delete: true}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 26h}}
iam:
  roles:
    {writer}:
      trust: {{Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}]}}
      inline_policies:
        write: {{Statement: [{{Effect: Allow, Action: s3:PutObject, Resource: "arn:aws:s3:::{b}/postgres/*"}}]}}
    {restore}:
      trust: {{Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}]}}
      inline_policies:
        read: {{Statement: [{{Effect: Allow, Action: s3:GetObject, Resource: "arn:aws:s3:::{b}/*"}}]}}
"#
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let least = || objective(&w.cli(&["audit", "-f", &p, "--format", "json"]).json(), "LEAST-PRIVILEGE");
    let o = least();
    assert_eq!(o["verdict"], "met", "{o}");
    assert!(o["notes"][0].as_str().is_some_and(|n| n.contains("service control policies")), "{o}");

    let full = "arn:aws:iam::aws:policy/AmazonS3FullAccess";
    boto(&w, &format!(r#"iam.attach_role_policy(RoleName="{writer}", PolicyArn="{full}")"#));
    let o = least();
    assert_eq!(o["verdict"], "not_met", "{o}");
    let reasons: Vec<&str> = o["reasons"].as_array().expect("reasons").iter().filter_map(Value::as_str).collect();
    for want in [
        format!("{writer} writes {b}/postgres/ and can also delete ({full})"),
        format!("{writer} can s3:DeleteBucketPolicy on {b} ({full}): it can remove the bucket's protections"),
        format!("{writer} can s3:PutBucketPolicy on {b} ({full}): it can remove the bucket's protections"),
        format!("{writer} can s3:PutLifecycleConfiguration on {b} ({full}): it can remove the bucket's protections"),
    ] {
        assert!(reasons.contains(&want.as_str()), "{want} in {reasons:#?}");
    }
    // The plan still has nothing to change: the attachment is not the
    // policy's to remove.
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);

    // A permissions boundary that allows only PutObject: what the role can
    // do is what both allow.
    boto(
        &w,
        &format!(
            r#"
doc = {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}}]}}
arn = iam.create_policy(PolicyName="{writer}-boundary", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
iam.put_role_permissions_boundary(RoleName="{writer}", PermissionsBoundary=arn)
"#
        ),
    );
    let o = least();
    assert_eq!(o["verdict"], "met", "{o}");
}

fn replication_estate(w: &World) -> (String, String, String) {
    w.replication_role("repl");
    let (src, dst) = (unique("rs-src"), unique("rs-dr"));
    let text = format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {src}:
      versioning: enabled
      replication:
        role: repl
        rules:
          - {{id: dumps, prefix: postgres/, destination: {dst}}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 10m}}
    {dst}:
      region: eu-west-1
      versioning: enabled
"
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    block_on(async {
        let body = aws_sdk_s3::primitives::ByteStream::from(b"the dump".to_vec());
        let s3 = w.moto().s3("us-east-1");
        s3.put_object().bucket(&src).key("postgres/20261206-020000.dump").body(body).send().await.expect("put");
    });
    (src, dst, p)
}

fn replica(w: &World, endpoint: &str, p: &str) -> Value {
    let r = w.cli(&["--endpoint-url", endpoint, "audit", "-f", p, "--format", "json"]);
    let j = r.json();
    j["controls"].as_array().expect("controls").iter().find(|c| c["id"] == "BACKUP-REPLICA").cloned().expect("replica")
}

/// BACKUP-REPLICA from `x-amz-replication-status`: a backup written a
/// moment ago and not copied is a failure without a status (no rule
/// covered it), a pass while PENDING, and a failure when FAILED (S3 never
/// retries it) — whatever its age, so a 10-minute entry can fail.
#[test]
fn the_dr_copy_is_judged_from_the_replication_status() {
    let w = World::with_moto();
    let (src, dst, p) = replication_estate(&w);
    let key = "postgres/20261206-020000.dump";
    let c = replica(&w, &w.moto().url(), &p);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        c["detail"],
        format!("{key} is not in {dst} and carries no replication status: no replication rule covered it when it was written")
    );
    let with = |status: &str| {
        let faults = Faults::ReplicationStatus { on: format!("/{src}/{key}"), status: status.into() };
        let proxy = FaultProxy::with(w.moto().port, faults, None);
        replica(&w, &proxy.url(), &p)
    };
    let c = with("PENDING");
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["observed"]["replication_status"], "PENDING");
    assert!(c["detail"].as_str().is_some_and(|d| d.starts_with(&format!("{key} is PENDING replication, "))), "{c}");
    let c = with("FAILED");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("S3 reports the replication of {key} to {dst} FAILED"))),
        "{c}"
    );
    let c = with("COMPLETED");
    assert_eq!(c["detail"], format!("S3 reports {key} replicated (COMPLETED) but it is not in {dst}"));
    // The copy there, the same object: COMPLETED passes.
    block_on(async {
        let body = aws_sdk_s3::primitives::ByteStream::from(b"the dump".to_vec());
        w.moto().s3("eu-west-1").put_object().bucket(&dst).key(key).body(body).send().await.expect("put copy");
    });
    let c = with("COMPLETED");
    assert_eq!(c["status"], "pass", "{c}");
    // FAILED fails even beside a copy someone made by hand.
    let c = with("FAILED");
    assert_eq!(c["status"], "fail", "{c}");
}
