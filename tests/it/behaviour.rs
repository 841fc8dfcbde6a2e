//! The tool against AWS's behaviour rather than moto's: the harness's
//! proxy plays region redirects, eventual consistency, stale configuration
//! reads, throttling and latency (`Faults::aws`), together.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::harness::{squash, unique, FaultProxy, Faults, World};

fn estate(k: &str, kdr: &str, src: &str, dst: &str, writer: &str, repl: &str) -> String {
    format!(
        r#"version: 1
aws: {{region: us-east-1}}
kms:
  keys:
    {k}:
      rotation: enabled
      policy:
        Statement:
          - Sid: WriterUsesKey
            Effect: Allow
            Principal: {{AWS: "arn:aws:iam::123456789012:role/{writer}"}}
            Action: [kms:GenerateDataKey, kms:Decrypt]
            Resource: "*"
    {kdr}: {{region: eu-west-1, rotation: enabled}}
s3:
  buckets:
    {src}:
      versioning: enabled
      encryption: {{algorithm: aws:kms, kms_key: {k}, bucket_key: true}}
      public_access_block: all
      require_tls: true
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
      replication:
        role: {repl}
        rules:
          - {{id: dr-copy, destination: {dst}, replica_kms_key: {kdr}, replication_time: 15m}}
    {dst}:
      region: eu-west-1
      versioning: enabled
      encryption: {{algorithm: aws:kms, kms_key: {kdr}}}
      public_access_block: all
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
iam:
  roles:
    {writer}:
      trust:
        Statement:
          - {{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}
      inline_policies:
        write:
          Statement:
            - {{Effect: Allow, Action: s3:PutObject, Resource: "arn:aws:s3:::{src}/postgres/*"}}
    {repl}:
      s3_replication: true
"#
    )
}

#[test]
fn one_apply_on_an_empty_estate_converges_through_aws_behaviour() {
    let w = World::with_moto();
    let (k, kdr) = (unique("bhv"), unique("bhv-dr"));
    let (src, dst) = (unique("bhv-src"), unique("bhv-dst"));
    let (writer, repl) = (unique("writer"), unique("repl"));
    let p = w.write("p.yaml", &estate(&k, &kdr, &src, &dst, &writer, &repl)).to_string_lossy().into_owned();
    let proxy = FaultProxy::with(
        w.moto().port,
        Faults::aws(vec![(dst.clone(), "eu-west-1".into())], Duration::from_millis(1200), 40, Duration::from_millis(5)),
        None,
    );
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "-v", "apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    for addr in [format!("iam.role.{writer}"), format!("kms.{k}"), format!("s3.{src}"), format!("s3.{dst}")] {
        assert!(r.stdout.contains(&format!("{addr}: done")), "{addr}\n{}\n{}", r.stdout, r.stderr);
    }
    assert!(!r.stdout.contains("still differs"), "{}", r.stdout);
    // Every behaviour was met on the way and waited out.
    assert!(proxy.counts.denied.load(Relaxed) > 0, "{}", proxy.counts.summary());
    assert!(r.stderr.contains("waiting for AWS to report"), "{}", r.stderr);
    let r = w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]);
    r.code(0);
    eprintln!("{}", proxy.counts.summary());
}

#[test]
fn verify_waits_out_stale_configuration_reads() {
    let w = World::with_moto();
    let b = unique("stale");
    let policy = |days: u32| {
        format!(
            "version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {b}:\n      lifecycle:\n        rules:\n          - {{id: dumps, prefix: postgres/, expire_after_days: {days}}}\n"
        )
    };
    let p = w.write("p.yaml", &policy(14)).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    std::fs::write(&p, policy(30)).expect("edit");
    let proxy = FaultProxy::with(w.moto().port, Faults::stale_reads(Duration::from_millis(1500)), None);
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "-v", "apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(!r.stdout.contains("still differs"), "{}", r.stdout);
    assert!(r.stderr.contains("waiting for AWS to report the s3 changes as applied"), "{}", r.stderr);
    assert!(proxy.counts.stale.load(Relaxed) > 0, "{}", proxy.counts.summary());

    // With no wait, the one read after the write is the stale one.
    std::fs::write(&p, policy(45)).expect("edit");
    let proxy = FaultProxy::with(w.moto().port, Faults::stale_reads(Duration::from_millis(60_000)), None);
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "--wait", "0", "apply", "-f", &p, "--auto-approve"]);
    assert_ne!(r.code, 0);
    assert!(squash(&r.stdout).contains("still differs"), "{}", r.stdout);
}

#[test]
fn a_throttled_import_of_200_buckets_slows_down_and_completes() {
    let _heavy = crate::harness::heavy();
    let w = World::with_moto();
    let prefix = unique("thr");
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
for i in range(200):
    s3.create_bucket(Bucket="{prefix}-%03d" % i)
"#
    ));
    // 60 a second: under the load of the whole suite on two cores the
    // run makes about 100 calls a second, so 150 was not always reached
    // and the test sometimes saw no throttling at all.
    let proxy = FaultProxy::with(w.moto().port, Faults::rate_limit(60), None);
    let url = proxy.url();
    let out = w.dir.path().join("imported.yaml").to_string_lossy().into_owned();
    let r = w.cli(&["--endpoint-url", &url, "import", "--all-buckets", "--output", &out]);
    r.code(0);
    let text = std::fs::read_to_string(&out).expect("imported");
    let entries = text.lines().filter(|l| l.starts_with(&format!("    {prefix}-"))).count();
    assert_eq!(entries, 200, "{}", r.stderr);
    assert!(proxy.counts.slowdown.load(Relaxed) > 0, "the proxy throttled: {}", proxy.counts.summary());
}

#[test]
fn the_shipped_policy_converges_in_one_apply_through_aws_behaviour() {
    // Its AWS part (Redis and PostgreSQL are tested against their own
    // servers): keys, roles, three buckets in two regions, replication.
    let _heavy = crate::harness::heavy();
    let w = World::with_moto();
    // Apply runs with moto's root credentials here: the root joins the
    // administrators, as in the sandbox (apply never shuts out its caller).
    let shipped = std::fs::read_to_string(crate::harness::root().join("policies/suoops.yaml")).expect("shipped policy");
    let admins = "administrators: [arn:aws:iam::123456789012:role/suoops-policy-apply]";
    assert!(shipped.contains(admins), "the shipped policy names its administrators");
    let text = shipped.replace(
        admins,
        "administrators: [arn:aws:iam::123456789012:role/suoops-policy-apply, \"arn:aws:iam::123456789012:root\"]",
    );
    let p = w.write("suoops.yaml", &text).to_string_lossy().into_owned();
    let proxy = FaultProxy::with(
        w.moto().port,
        Faults::aws(
            vec![("suoops-backups-dr".into(), "eu-west-1".into())],
            Duration::from_millis(1500),
            40,
            Duration::from_millis(20),
        ),
        None,
    );
    let url = proxy.url();
    let targets = ["--target", "iam", "--target", "kms", "--target", "s3"];
    let mut args = vec!["--endpoint-url", &url, "-v", "apply", "-f", &p, "--auto-approve"];
    args.extend(targets);
    let r = w.cli(&args);
    // The note quotes this run: the output and the waits.
    eprintln!("{}", r.stdout);
    for l in r.stderr.lines().filter(|l| l.starts_with("waiting for AWS")) {
        eprintln!("{l}");
    }
    eprintln!("proxy: {}", proxy.counts.summary());
    r.code(0);
    assert!(!r.stdout.contains("still differs"), "{}", r.stdout);
    for addr in ["kms.suoops-backups", "kms.suoops-backups-dr", "s3.suoops-backups", "s3.suoops-backups-dr"] {
        assert!(r.stdout.contains(&format!("{addr}: done")), "{addr}\n{}", r.stdout);
    }
    let mut args = vec!["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"];
    args.extend(targets);
    w.cli(&args).code(0);
}

/// With an S3 Bucket Key on the destination, S3 asks KMS for the replica
/// with the *bucket's* ARN as encryption context (AWS S3 user guide,
/// "Replicating encrypted objects": S3 Bucket Keys and replication), as
/// the proxy plays it: a replication role conditioned on the object ARN
/// only (the document this tool derived before) is refused, the derived
/// one is not.
#[test]
fn a_replica_into_a_bucket_key_destination_needs_the_bucket_arn_context() {
    let w = World::with_moto();
    let (src, dst) = (unique("bk-src"), unique("bk-dst"));
    let text = format!(
        "version: 1\naws: {{region: us-east-1}}\nkms:\n  keys:\n    k: {{rotation: enabled}}\n    k-dr: {{region: eu-west-1}}\ns3:\n  buckets:\n    {src}:\n      versioning: enabled\n      encryption: {{algorithm: aws:kms, kms_key: k, bucket_key: true}}\n      replication:\n        role: repl\n        rules: [{{id: dr, destination: {dst}, replica_kms_key: k-dr}}]\n    {dst}:\n      region: eu-west-1\n      versioning: enabled\n      encryption: {{algorithm: aws:kms, kms_key: k-dr, bucket_key: true}}\niam:\n  roles:\n    repl:\n      s3_replication: true\n"
    );
    let p = suoops_policy::policy::parse("p.yaml", text.into_bytes(), &|_| None).expect("valid policy");
    let derived =
        p.iam.roles.iter().find(|r| r.name == "repl").and_then(|r| r.inline_policies.as_ref()).expect("inline")
            ["s3-replication"]
            .clone();
    let both = format!("[\"arn:aws:s3:::{dst}\",\"arn:aws:s3:::{dst}/*\"]");
    assert!(derived.to_string().contains(&both), "{derived}");
    let object_only: serde_json::Value =
        serde_json::from_str(&derived.to_string().replace(&both, &format!("\"arn:aws:s3:::{dst}/*\""))).expect("json");
    w.python(&format!(
        r#"
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t").create_bucket(
    Bucket="{dst}", CreateBucketConfiguration={{"LocationConstraint": "eu-west-1"}})
"#
    ));
    let replicate = |role: serde_json::Value| -> String {
        let proxy = FaultProxy::with(
            w.moto().port,
            Faults::BucketKeyContext {
                buckets: vec![(dst.clone(), "eu-west-1".into(), "alias/k-dr".into())],
                role: vec![role],
            },
            None,
        );
        let out = std::process::Command::new(crate::harness::python())
            .args([
                "-c",
                &format!(
                    r#"
import sys, boto3
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
try:
    s3.put_object(Bucket="{dst}", Key="postgres/1.dump", Body=b"replica", ServerSideEncryption="aws:kms", BucketKeyEnabled=True)
    print("replicated")
except ClientError as e:
    print(e.response["Error"]["Code"])
"#
                ),
                &proxy.url(),
            ])
            .output()
            .expect("python");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(replicate(object_only), "AccessDenied", "the object-ARN-only role fails as on AWS");
    assert_eq!(replicate(derived), "replicated", "the derived role allows the bucket ARN context");
}
