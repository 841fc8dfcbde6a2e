//! KMS keys as a managed system, against moto: one apply on an empty
//! estate creates roles, keys (alias, rotation, key policy), buckets that
//! encrypt with the keys' ARNs and replication into the DR key; a disabled
//! key fails KMS-KEY and S3-SSE; foreign key-policy statements are kept.

use serde_json::Value;

use crate::harness::{control, squash, unique, Server, World};

fn policy(k: &str, kdr: &str, src: &str, dst: &str, writer: &str, repl: &str) -> String {
    format!(
        r#"version: 1
aws: {{region: us-east-1}}
kms:
  keys:
    {k}:
      description: backups of the primary database
      rotation: enabled
      policy:
        Version: "2012-10-17"
        Statement:
          - Sid: WriterUsesKey
            Effect: Allow
            Principal: {{AWS: "arn:aws:iam::123456789012:role/{writer}"}}
            Action: [kms:GenerateDataKey, kms:Decrypt]
            Resource: "*"
    {kdr}:
      region: eu-west-1
      description: DR copy
      rotation: enabled
s3:
  buckets:
    {src}:
      versioning: enabled
      encryption: {{algorithm: aws:kms, kms_key: {k}, bucket_key: true}}
      replication:
        role: {repl}
        rules:
          - id: dr-copy
            destination: {dst}
            replica_kms_key: {kdr}
            replication_time: 15m
    {dst}:
      region: eu-west-1
      versioning: enabled
      encryption: {{algorithm: aws:kms, kms_key: {kdr}}}
iam:
  roles:
    {writer}:
      trust:
        Statement:
          - Effect: Allow
            Principal: {{Service: ec2.amazonaws.com}}
            Action: sts:AssumeRole
    {repl}:
      s3_replication: true
"#
    )
}

/// What moto holds, read with boto3: each alias's key (ARN, state,
/// description, rotation, policy), each bucket's encryption key and the
/// source's replica key.
fn live(w: &World, aliases: &[(&str, &str)], buckets: &[(&str, &str)], src: &str) -> Value {
    let aliases: Vec<String> = aliases.iter().map(|(r, a)| format!("(\"{r}\", \"{a}\")")).collect();
    let buckets: Vec<String> = buckets.iter().map(|(r, b)| format!("(\"{r}\", \"{b}\")")).collect();
    let out = w.python(&format!(
        r#"
import sys, json, boto3
def c(svc, region):
    return boto3.client(svc, endpoint_url=sys.argv[1], region_name=region, aws_access_key_id="t", aws_secret_access_key="t")
out = {{"keys": {{}}, "buckets": {{}}}}
for region, alias in [{aliases}]:
    kms = c("kms", region)
    try:
        m = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        out["keys"][alias] = None
        continue
    out["keys"][alias] = {{
        "arn": m["Arn"], "state": m["KeyState"], "description": m["Description"],
        "rotation": kms.get_key_rotation_status(KeyId=m["KeyId"])["KeyRotationEnabled"],
        "policy": json.loads(kms.get_key_policy(KeyId=m["KeyId"], PolicyName="default")["Policy"]),
        "tags": kms.list_resource_tags(KeyId=m["KeyId"])["Tags"],
    }}
for region, b in [{buckets}]:
    enc = c("s3", region).get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"][0]
    out["buckets"][b] = enc["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
if "{src}":
    conf = c("s3", "us-east-1").get_bucket_replication(Bucket="{src}")["ReplicationConfiguration"]
    out["replica_key"] = conf["Rules"][0]["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"]
print(json.dumps(out))
"#,
        aliases = aliases.join(", "),
        buckets = buckets.join(", "),
    ));
    serde_json::from_str(&out).expect("json")
}

crate::both!(
    one_apply_on_an_empty_estate_creates_roles_keys_buckets_and_encrypted_replication,
    super::one_apply_on_an_empty_estate_creates_roles_keys_buckets_and_encrypted_replication_on
);
fn one_apply_on_an_empty_estate_creates_roles_keys_buckets_and_encrypted_replication_on(server: Server) {
    let w = World::on(server);
    let (k, kdr) = (unique("bk"), unique("bk-dr"));
    let (src, dst) = (unique("kms-src"), unique("kms-dst"));
    let (writer, repl) = (unique("writer"), unique("repl"));
    let p = w.write("p.yaml", &policy(&k, &kdr, &src, &dst, &writer, &repl)).to_string_lossy().into_owned();

    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    let plan = squash(&r.stdout);
    assert!(plan.contains(&format!("+ kms.{k}")), "{}", r.stdout);
    assert!(plan.contains(&format!("alias = \"alias/{k}\"")), "{}", r.stdout);
    assert!(plan.contains(&format!("(known after apply: key alias/{kdr})")), "{}", r.stdout);

    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    // Keys come after the roles their policies name and before the buckets.
    let at = |s: &str| r.stdout.find(s).unwrap_or_else(|| panic!("no `{s}` in\n{}", r.stdout));
    assert!(at(&format!("iam.role.{writer}")) < at(&format!("kms.{k}")), "{}", r.stdout);
    assert!(at(&format!("kms.{k}")) < at(&format!("s3.{src}")), "{}", r.stdout);

    let l = live(
        &w,
        &[("us-east-1", &format!("alias/{k}")), ("eu-west-1", &format!("alias/{kdr}"))],
        &[("us-east-1", &src), ("eu-west-1", &dst)],
        &src,
    );
    let key = &l["keys"][format!("alias/{k}")];
    let dr = &l["keys"][format!("alias/{kdr}")];
    assert_eq!(key["state"], "Enabled", "{l}");
    assert_eq!(key["description"], "backups of the primary database");
    assert_eq!(key["rotation"], true);
    assert!(key["tags"].to_string().contains(&format!(r#""TagValue":"{k}""#)), "{l}");
    let sids: Vec<&str> =
        key["policy"]["Statement"].as_array().expect("statements").iter().filter_map(|s| s["Sid"].as_str()).collect();
    assert_eq!(sids, ["Enable IAM User Permissions", "WriterUsesKey"], "the default statement is kept: {l}");
    assert!(dr["arn"].as_str().expect("arn").starts_with("arn:aws:kms:eu-west-1:"), "{l}");
    // Buckets and the replica key name the keys by ARN, resolved at apply.
    assert_eq!(l["buckets"][&src], key["arn"], "{l}");
    assert_eq!(l["buckets"][&dst], dr["arn"], "{l}");
    assert_eq!(l["replica_key"], dr["arn"], "{l}");

    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(0);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(0);
    let j = r.json();
    for id in ["KMS-KEY", "KMS-ROTATION", "KMS-POLICY"] {
        assert_eq!(control(&j, id, &format!("kms.{k}"))["status"], "pass", "{id}: {j}");
    }

    // Disabled behind the tool's back: KMS-KEY and S3-SSE fail with the
    // reason; the plan enables it again, and apply does.
    w.disable_kms_key("us-east-1", key["arn"].as_str().expect("arn"));
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let j = r.json();
    let kk = control(&j, "KMS-KEY", &format!("kms.{k}"));
    assert_eq!(kk["status"], "fail", "{kk}");
    assert!(kk["detail"].as_str().unwrap_or("").contains("is Disabled"), "{kk}");
    let sse = control(&j, "S3-SSE", &format!("s3.{src}"));
    assert_eq!(sse["status"], "fail", "{sse}");
    assert!(sse["detail"].as_str().unwrap_or("").contains("Disabled"), "{sse}");
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(squash(&r.stdout).contains("~ enabled false → true"), "{}", r.stdout);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["audit", "-f", &p]).code(0);
}

crate::both!(
    key_policy_statements_are_owned_by_sid_and_foreign_ones_survive,
    super::key_policy_statements_are_owned_by_sid_and_foreign_ones_survive_on
);
fn key_policy_statements_are_owned_by_sid_and_foreign_ones_survive_on(server: Server) {
    let w = World::on(server);
    let (k, kdr) = (unique("own"), unique("own-dr"));
    let (src, dst) = (unique("own-src"), unique("own-dst"));
    let (writer, repl) = (unique("writer"), unique("repl"));
    let text = policy(&k, &kdr, &src, &dst, &writer, &repl);
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);

    // Another team adds a statement; ours is narrowed by hand.
    w.python(&format!(
        r#"
import sys, json, boto3
kms = boto3.client("kms", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
kid = kms.describe_key(KeyId="alias/{k}")["KeyMetadata"]["KeyId"]
doc = json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"])
for s in doc["Statement"]:
    if s.get("Sid") == "WriterUsesKey":
        s["Action"] = "kms:Decrypt"
doc["Statement"].append({{"Sid": "AuditorsDescribe", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::123456789012:root"}}, "Action": "kms:DescribeKey", "Resource": "*"}})
kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=json.dumps(doc))
"#
    ));
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let j = r.json();
    let kp = control(&j, "KMS-POLICY", &format!("kms.{k}"));
    assert_eq!(kp["status"], "fail");
    assert!(kp["detail"].as_str().unwrap_or("").contains("lacks: WriterUsesKey"), "{kp}");
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    let plan = squash(&r.stdout);
    assert!(plan.contains("policy.WriterUsesKey"), "{}", r.stdout);
    assert!(plan.contains("key policy also has: Enable IAM User Permissions, AuditorsDescribe, kept"), "{}", r.stdout);

    // A description change and the statement in one apply: the foreign
    // statement and the account's default one survive.
    std::fs::write(&p, text.replace("description: DR copy", "description: DR copy, eu-west-1")).expect("edit");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let l = live(&w, &[("us-east-1", &format!("alias/{k}")), ("eu-west-1", &format!("alias/{kdr}"))], &[], &src);
    let sids: Vec<&str> = l["keys"][format!("alias/{k}")]["policy"]["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert_eq!(sids, ["Enable IAM User Permissions", "AuditorsDescribe", "WriterUsesKey"], "{l}");
    assert_eq!(l["keys"][format!("alias/{kdr}")]["description"], "DR copy, eu-west-1");
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);

    // Import reads the key back; the imported entry plans clean.
    let r = w.cli(&["import", "--kms-key", &format!("alias/{k}"), "--kms-key", &format!("alias/{kdr}@eu-west-1")]);
    r.code(0);
    assert!(r.stdout.contains(&format!("    {kdr}:\n      # arn:aws:kms:eu-west-1:")), "{}", r.stdout);
    assert!(r.stdout.contains("region: eu-west-1\n      description: \"DR copy, eu-west-1\""), "{}", r.stdout);
    assert!(r.stdout.contains("rotation: enabled"), "{}", r.stdout);
    assert!(r.stdout.contains("Sid: AuditorsDescribe"), "{}", r.stdout);
    let imported = w.write("imported.yaml", &r.stdout).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &imported, "--detailed-exitcode"]);
    r.code(0);
}

crate::both!(
    a_key_whose_alias_was_never_made_is_adopted_not_made_twice,
    super::a_key_whose_alias_was_never_made_is_adopted_not_made_twice_on
);
fn a_key_whose_alias_was_never_made_is_adopted_not_made_twice_on(server: Server) {
    let w = World::on(server);
    let k = unique("orphan");
    // An earlier run stopped between CreateKey and CreateAlias: the key
    // carries the tool's tag but has no alias.
    let orphan = w.python(&format!(
        r#"
import sys, boto3
kms = boto3.client("kms", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
print(kms.create_key(Description="half made", Tags=[{{"TagKey": "suoops-policy:key", "TagValue": "{k}"}}])["KeyMetadata"]["Arn"])
"#
    ));
    let p = w
        .write(
            "p.yaml",
            &format!("version: 1\naws: {{region: us-east-1}}\nkms:\n  keys:\n    {k}:\n      rotation: enabled\n"),
        )
        .to_string_lossy()
        .into_owned();
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(r.stdout.contains("adopt the key an earlier run created"), "{}", r.stdout);
    let l = live(&w, &[("us-east-1", &format!("alias/{k}"))], &[], "");
    assert_eq!(l["keys"][format!("alias/{k}")]["arn"].as_str(), Some(orphan.trim()), "{l}");
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

#[test]
fn a_key_policy_naming_a_role_iam_has_not_propagated_is_retried_within_wait() {
    let w = World::with_moto();
    let (k, kdr) = (unique("lag"), unique("lag-dr"));
    let (src, dst) = (unique("lag-src"), unique("lag-dst"));
    let (writer, repl) = (unique("writer"), unique("repl"));
    let p = w.write("p.yaml", &policy(&k, &kdr, &src, &dst, &writer, &repl)).to_string_lossy().into_owned();
    let proxy = crate::harness::FaultProxy::with(
        w.moto().port,
        crate::harness::Faults::principal_lag(std::time::Duration::from_millis(1200)),
        None,
    );
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "-v", "apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(r.stdout.contains(&format!("kms.{k}: done")), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("waiting for AWS to report the principals of the key policy of alias/{k}")),
        "{}",
        r.stderr
    );
    assert!(
        proxy.counts.denied.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the proxy refused the principal at first"
    );
    w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]).code(0);

    // Without the wait the same first apply fails on the key policy, with
    // KMS's reason, and a second run converges.
    let w = World::with_moto();
    let p = w.write("p.yaml", &policy(&k, &kdr, &src, &dst, &writer, &repl)).to_string_lossy().into_owned();
    let proxy = crate::harness::FaultProxy::with(
        w.moto().port,
        crate::harness::Faults::principal_lag(std::time::Duration::from_millis(60_000)),
        None,
    );
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "--wait", "0", "apply", "-f", &p, "--auto-approve"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(squash(&r.stdout).contains("✗ key policy"), "{}", r.stdout);
    assert!(r.stdout.contains("invalid principals"), "{}", r.stdout);
    proxy.disarm();
    w.cli(&["--endpoint-url", &url, "apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

#[test]
fn a_bucket_naming_a_key_nobody_made_fails_at_once_not_after_the_wait() {
    let w = World::with_moto();
    let (k, b) = (unique("never"), unique("never-b"));
    let p = w
        .write(
            "p.yaml",
            &format!(
                "version: 1\naws: {{region: us-east-1}}\nkms:\n  keys:\n    {k}: {{rotation: enabled}}\ns3:\n  buckets:\n    {b}:\n      encryption: {{algorithm: aws:kms, kms_key: {k}}}\n"
            ),
        )
        .to_string_lossy()
        .into_owned();
    // Only the bucket is applied: the key is not made in this run, so there
    // is nothing to wait for (the default --wait is two minutes).
    let r = w.cli(&["apply", "-v", "-f", &p, "--auto-approve", "--target", &format!("s3.{b}")]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains(&format!("the key alias/{k} does not exist in us-east-1")), "{}", r.stdout);
    // -v says each wait and each call: no wait, the key looked up (plan, apply) and not polled.
    assert!(!r.stderr.contains("waiting for AWS to report"), "{}", r.stderr);
    assert!(r.stderr.matches("api describe_key ").count() <= 2, "{}", r.stderr);
    // With the key in the same run, it converges.
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
}
