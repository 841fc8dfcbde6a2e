//! Apply under faults, through the harness's fault proxy between the tool
//! and moto: with 20 % of requests answered 503 SlowDown, 500, a dropped
//! connection or a delay, apply converges (the SDK's retry configuration
//! does the retrying); a server that dies mid-apply is a clear error and a
//! re-run converges; and afterwards nothing outside the policy changed —
//! checked on full snapshots of the estate.

use serde_json::Value;

use crate::harness::{FaultProxy, Faults, Run, World};

const POLICY: &str = r#"version: 1
aws:
  region: us-east-1
s3:
  buckets:
    ch-backups:
      versioning: enabled
      encryption: {algorithm: aws:kms, kms_key: alias/ch-backups, bucket_key: true}
      public_access_block: all
      require_tls: true
      lifecycle:
        rules:
          - id: dumps
            prefix: postgres/
            expire_after_days: 14
          - id: tiering
            transitions: [{days: 30, storage_class: STANDARD_IA}, {days: 180, storage_class: GLACIER}]
      replication:
        role: ch-replication
        rules:
          - id: dr
            destination: ch-dr
            replica_kms_key: arn:aws:kms:eu-west-1:123456789012:alias/ch-dr
    ch-dr:
      region: eu-west-1
      versioning: enabled
      encryption: {algorithm: AES256}
      public_access_block: all
    ch-uploads:
      versioning: enabled
      public_access_block: all
iam:
  roles:
    ch-replication:
      s3_replication: true
      trust:
        Statement:
          - Effect: Allow
            Principal: {Service: s3.amazonaws.com}
            Action: sts:AssumeRole
    ch-writer:
      trust:
        Statement:
          - Effect: Allow
            Principal: {AWS: "arn:aws:iam::123456789012:role/ci-runner"}
            Action: sts:AssumeRole
      inline_policies:
        write:
          Statement:
            - Effect: Allow
              Action: s3:PutObject
              Resource: arn:aws:s3:::ch-backups/postgres/*
"#;

/// What other teams own: a lifecycle rule and a bucket-policy statement on
/// a managed bucket, an inline policy on a managed role, and a bucket the
/// policy does not name at all.
const FOREIGN: &str = r#"
import sys, json, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3, iam = boto3.client("s3", **kw), boto3.client("iam", **kw)
s3.create_bucket(Bucket="ch-backups")
s3.put_bucket_lifecycle_configuration(Bucket="ch-backups", LifecycleConfiguration={"Rules": [
    {"ID": "analytics", "Filter": {"Prefix": "exports/"}, "Status": "Enabled", "Expiration": {"Days": 30}}]})
s3.put_bucket_policy(Bucket="ch-backups", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "Auditors", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::ch-backups/*"}]}))
iam.create_role(RoleName="ch-writer", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}))
iam.put_role_policy(RoleName="ch-writer", PolicyName="legacy", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::ch-backups"}]}))
s3.create_bucket(Bucket="ch-analytics")
s3.put_bucket_versioning(Bucket="ch-analytics", VersioningConfiguration={"Status": "Suspended"})
s3.put_bucket_lifecycle_configuration(Bucket="ch-analytics", LifecycleConfiguration={"Rules": [
    {"ID": "purge", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 7}}]})
"#;

/// Every bucket's and role's documents, as moto holds them (JSON).
const SNAPSHOT: &str = r#"
import sys, json, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3, iam = boto3.client("s3", **kw), boto3.client("iam", **kw)
def get(f, key, **a):
    try:
        out = f(**a)
        return out.get(key) if key else {k: v for k, v in out.items() if k != "ResponseMetadata"}
    except Exception as e:
        return "absent: " + type(e).__name__
snap = {"buckets": {}, "roles": {}}
for b in s3.list_buckets()["Buckets"]:
    n = b["Name"]
    snap["buckets"][n] = {
        "versioning": get(s3.get_bucket_versioning, None, Bucket=n),
        "encryption": get(s3.get_bucket_encryption, "ServerSideEncryptionConfiguration", Bucket=n),
        "public_access_block": get(s3.get_public_access_block, "PublicAccessBlockConfiguration", Bucket=n),
        "lifecycle": get(s3.get_bucket_lifecycle_configuration, "Rules", Bucket=n),
        "policy": json.loads(get(s3.get_bucket_policy, "Policy", Bucket=n) or "null") if not str(get(s3.get_bucket_policy, "Policy", Bucket=n)).startswith("absent") else None,
        "replication": get(s3.get_bucket_replication, "ReplicationConfiguration", Bucket=n),
    }
for r in iam.list_roles()["Roles"]:
    n = r["RoleName"]
    names = iam.list_role_policies(RoleName=n)["PolicyNames"]
    snap["roles"][n] = {
        "trust": r["AssumeRolePolicyDocument"],
        "inline": {p: iam.get_role_policy(RoleName=n, PolicyName=p)["PolicyDocument"] for p in names},
        "attached": sorted(a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=n)["AttachedPolicies"]),
    }
print(json.dumps(snap, sort_keys=True, default=str))
"#;

fn snapshot(w: &World) -> Value {
    serde_json::from_str(&w.python(SNAPSHOT)).expect("snapshot JSON")
}

fn rule<'a>(snap: &'a Value, bucket: &str, id: &str) -> &'a Value {
    snap["buckets"][bucket]["lifecycle"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["ID"] == id))
        .unwrap_or(&Value::Null)
}

fn statement<'a>(snap: &'a Value, bucket: &str, sid: &str) -> &'a Value {
    snap["buckets"][bucket]["policy"]["Statement"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["Sid"] == sid))
        .unwrap_or(&Value::Null)
}

/// Nothing the policy does not name changed between `before` and `after`.
fn foreign_intact(before: &Value, after: &Value) {
    assert_ne!(rule(before, "ch-backups", "analytics"), &Value::Null, "the foreign rule was seeded");
    assert_eq!(
        rule(before, "ch-backups", "analytics"),
        rule(after, "ch-backups", "analytics"),
        "foreign lifecycle rule"
    );
    assert_eq!(
        statement(before, "ch-backups", "Auditors"),
        statement(after, "ch-backups", "Auditors"),
        "foreign statement"
    );
    assert_eq!(
        before["roles"]["ch-writer"]["inline"]["legacy"], after["roles"]["ch-writer"]["inline"]["legacy"],
        "foreign inline policy"
    );
    assert_eq!(before["buckets"]["ch-analytics"], after["buckets"]["ch-analytics"], "a bucket outside the policy");
    // The managed parts did change: the run did something.
    assert_ne!(rule(after, "ch-backups", "dumps"), &Value::Null, "{after}");
    assert_ne!(statement(after, "ch-backups", "SuoopsPolicyRequireTLS"), &Value::Null, "{after}");
}

fn through(w: &World, proxy: &FaultProxy, args: &[&str]) -> Run {
    let url = proxy.url();
    let mut all = vec!["--endpoint-url", url.as_str()];
    all.extend_from_slice(args);
    w.cli(&all)
}

#[test]
fn apply_converges_with_twenty_percent_faults_and_leaves_foreign_state_alone() {
    let w = World::with_moto();
    w.python(FOREIGN);
    let before = snapshot(&w);
    let p = w.write("p.yaml", POLICY).to_string_lossy().into_owned();
    let proxy = FaultProxy::with(w.moto().port, Faults::Chaos { seed: 20_261_125, percent: 20 }, None);
    // A call whose five attempts all fail (0.2^5 per call) fails its step;
    // the re-run picks up from there.
    let mut runs = Vec::new();
    for _ in 0..4 {
        let r = through(&w, &proxy, &["apply", "-f", &p, "--auto-approve"]);
        assert!(!r.stderr.contains("panicked") && !r.stdout.contains("panicked"), "{}", r.stderr);
        let done = r.code == 0;
        runs.push(r);
        if done {
            break;
        }
    }
    let last = runs.last().expect("a run");
    assert_eq!(last.code, 0, "apply did not converge in {} runs:\n{}\n{}", runs.len(), last.stdout, last.stderr);
    // Plan, still through the faults, finds nothing left to do.
    let mut plan = through(&w, &proxy, &["plan", "-f", &p, "--detailed-exitcode"]);
    for _ in 0..2 {
        if plan.code == 0 {
            break;
        }
        plan = through(&w, &proxy, &["plan", "-f", &p, "--detailed-exitcode"]);
    }
    plan.code(0);
    let c = &proxy.counts;
    use std::sync::atomic::Ordering::Relaxed;
    eprintln!("apply runs: {}; faults: {}", runs.len(), c.summary());
    assert!(
        c.slowdown.load(Relaxed) > 0
            && c.internal.load(Relaxed) > 0
            && c.reset.load(Relaxed) > 0
            && c.delay.load(Relaxed) > 0,
        "every kind of fault was injected: {}",
        c.summary()
    );
    foreign_intact(&before, &snapshot(&w));
}

#[test]
fn a_server_that_dies_mid_apply_is_a_clear_error_and_a_rerun_converges() {
    let w = World::with_moto();
    w.python(FOREIGN);
    let before = snapshot(&w);
    let p = w.write("p.yaml", POLICY).to_string_lossy().into_owned();
    // The plan reads about 20 things; the server dies a few writes later.
    let proxy = FaultProxy::with(w.moto().port, Faults::Chaos { seed: 1, percent: 0 }, Some(26));
    let r = through(&w, &proxy, &["apply", "-f", &p, "--auto-approve"]);
    r.code(1);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(!all.contains("panicked"), "{all}");
    assert!(all.contains("Connection refused") || all.contains("cannot reach the endpoint"), "a clear error: {all}");
    eprintln!(
        "apply when the server died: {}",
        all.lines().filter(|l| l.contains("error")).collect::<Vec<_>>().join(" | ")
    );
    let mid = snapshot(&w);
    assert_ne!(mid, before, "the apply got part of the way");
    // The server is back (the tool talks to moto directly): a re-run converges.
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    foreign_intact(&before, &snapshot(&w));
}

#[test]
fn moto_killed_mid_apply_is_a_clear_error_and_a_rerun_against_a_new_one_converges() {
    let mut w = World::with_moto();
    let p = w.write("p.yaml", POLICY).to_string_lossy().into_owned();
    // Every request takes 100 ms, so the apply is still going when moto dies.
    let proxy = FaultProxy::with(w.moto().port, Faults::Delay(std::time::Duration::from_millis(100)), None);
    let url = proxy.url();
    let child = w.spawn(&["--endpoint-url", &url, "apply", "-f", &p, "--auto-approve"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while proxy.counts.forwarded.load(std::sync::atomic::Ordering::Relaxed) < 25 {
        assert!(std::time::Instant::now() < deadline, "apply did not get going: {}", proxy.counts.summary());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    w.moto.as_mut().expect("moto").kill();
    let r = Run::from(child.wait_with_output().expect("apply ends"));
    r.code(1);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(!all.contains("panicked"), "{all}");
    assert!(all.contains("cannot reach the endpoint") || all.contains("Connection refused"), "a clear error: {all}");
    eprintln!(
        "apply when moto was killed: {}",
        all.lines().filter(|l| l.contains("error") || l.contains('✗')).collect::<Vec<_>>().join(" | ")
    );
    // moto keeps its state in memory: a new one starts empty, and one apply
    // sets everything up again.
    w.moto = Some(crate::harness::Moto::start(w.dir.path()));
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
}
