//! S3 buckets end to end against moto: plan, apply, converge, audit, drift
//! made behind the tool's back, and the error paths a user meets.

use aws_sdk_s3::types::{BucketVersioningStatus, PublicAccessBlockConfiguration, VersioningConfiguration};

use crate::harness::{block_on, squash, unique, Server, World};

fn policy(w: &World, a: &str, b: &str) -> String {
    let text = format!(
        "version: 1\naws:\n  region: us-east-1\ns3:\n  buckets:\n    {a}:\n      versioning: enabled\n      encryption:\n        algorithm: aws:kms\n        kms_key: alias/suoops-backups\n        bucket_key: true\n      public_access_block: all\n    {b}:\n      region: eu-west-1\n      versioning: enabled\n      encryption: {{algorithm: AES256}}\n      public_access_block: all\n"
    );
    w.write("policy.yaml", &text).to_string_lossy().into_owned()
}

crate::both!(
    empty_estate_plans_creates_applies_and_converges,
    super::empty_estate_plans_creates_applies_and_converges_on
);
fn empty_estate_plans_creates_applies_and_converges_on(server: Server) {
    let w = World::on(server);
    w.kms_key("us-east-1", "alias/suoops-backups");
    let (a, b) = (unique("backups"), unique("dr"));
    let p = policy(&w, &a, &b);

    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(r.stdout.contains(&format!("+ s3.{a} will be created")), "{}", r.stdout);
    assert!(squash(&r.stdout).contains("+ region = \"eu-west-1\""), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 2 to create, 0 to change, 0 unchanged."), "{}", r.stdout);

    let r = w.cli(&["plan", "-f", &p, "--format", "json"]);
    r.code(0);
    let j = r.json();
    assert_eq!(j["format_version"], "1");
    assert_eq!(j["summary"]["create"], 2);
    assert_eq!(j["changes"][0]["address"], format!("s3.{a}"));
    assert_eq!(j["changes"][0]["action"], "create");
    // The document follows the checked-in schema (python-jsonschema).
    let plan_json = w.dir.path().join("plan-doc.json");
    std::fs::write(&plan_json, &r.stdout).expect("write plan json");
    let out = std::process::Command::new(crate::harness::python())
        .args([
            "-c",
            "import json, sys, jsonschema\njsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))\nprint('valid')",
            &plan_json.to_string_lossy(),
            &crate::harness::root().join("schema/suoops-plan.schema.json").to_string_lossy(),
        ])
        .output()
        .expect("python");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid", "{}", String::from_utf8_lossy(&out.stderr));

    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(r.stdout.contains("Apply: 2 planned change(s) made on 2 resource(s), 0 failed."), "{}", r.stdout);

    // What the tool did, read back with a client of our own.
    let m = w.moto();
    block_on(async {
        let s3 = m.s3("eu-west-1");
        let loc = s3.get_bucket_location().bucket(&b).send().await.expect("location");
        assert_eq!(loc.location_constraint().map(|c| c.as_str()), Some("eu-west-1"));
        let v = s3.get_bucket_versioning().bucket(&b).send().await.expect("versioning");
        assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
        let s3 = m.s3("us-east-1");
        let loc = s3.get_bucket_location().bucket(&a).send().await.expect("location");
        assert_eq!(
            loc.location_constraint().map(|c| c.as_str()).unwrap_or(""),
            "",
            "us-east-1 takes no LocationConstraint"
        );
        let e = s3.get_bucket_encryption().bucket(&a).send().await.expect("encryption");
        let rule = &e.server_side_encryption_configuration().expect("conf").rules()[0];
        let d = rule.apply_server_side_encryption_by_default().expect("default");
        assert_eq!(d.sse_algorithm().as_str(), "aws:kms");
        assert_eq!(d.kms_master_key_id(), Some("alias/suoops-backups"));
        assert_eq!(rule.bucket_key_enabled(), Some(true));
        let pab = s3.get_public_access_block().bucket(&a).send().await.expect("pab");
        let c = pab.public_access_block_configuration().expect("pab conf");
        assert_eq!(c.restrict_public_buckets(), Some(true));
    });

    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to create, 0 to change, 2 unchanged."), "{}", r.stdout);

    // apply is idempotent: nothing to do, nothing done.
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(!r.stdout.contains("Apply:"), "{}", r.stdout);

    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(0);
    let j = r.json();
    assert_eq!(j["compliant"], true);
    assert_eq!(j["summary"]["passed"], 8);
    let r = w.cli(&["audit", "-f", &p]);
    r.code(0);
    assert!(r.stdout.contains("Audit: 8 passed, 0 failed, 0 unknown: compliant."), "{}", r.stdout);
}

crate::both!(
    drift_behind_the_tools_back_shows_in_plan_and_fails_audit,
    super::drift_behind_the_tools_back_shows_in_plan_and_fails_audit_on
);
fn drift_behind_the_tools_back_shows_in_plan_and_fails_audit_on(server: Server) {
    let w = World::on(server);
    w.kms_key("us-east-1", "alias/suoops-backups");
    let (a, b) = (unique("backups"), unique("dr"));
    let p = policy(&w, &a, &b);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);

    let m = w.moto();
    block_on(async {
        let s3 = m.s3("us-east-1");
        s3.put_bucket_versioning()
            .bucket(&a)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build(),
            )
            .send()
            .await
            .expect("suspend");
        s3.delete_bucket_encryption().bucket(&a).send().await.expect("delete encryption");
        s3.put_public_access_block()
            .bucket(&a)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(false)
                    .ignore_public_acls(true)
                    .block_public_policy(false)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .expect("loosen pab");
    });

    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    let out = &squash(&r.stdout);
    assert!(out.contains(&format!("~ s3.{a} will be updated in place")), "{out}");
    assert!(out.contains("~ versioning \"suspended\" → \"enabled\""), "{out}");
    assert!(out.contains("~ encryption.algorithm (not set) → \"aws:kms\""), "{out}");
    assert!(out.contains("~ public_access_block.block_public_acls false → true"), "{out}");
    assert!(out.contains("~ public_access_block.block_public_policy false → true"), "{out}");
    assert!(!out.contains("ignore_public_acls"), "unchanged flags are not listed: {out}");
    assert!(!out.contains(&format!("s3.{b}")), "the untouched bucket is not listed: {out}");
    assert!(out.contains("Plan: 0 to create, 1 to change, 1 unchanged."), "{out}");

    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let j = r.json();
    assert_eq!(j["compliant"], false);
    // The report validates against the project's checked-in schema.
    let report = w.write("report.json", &r.stdout);
    let out = std::process::Command::new(crate::harness::python())
        .args([
            "-c",
            "import json, sys, jsonschema\njsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))\nprint('valid')",
            &report.to_string_lossy(),
            &crate::harness::root().join("schema/suoops-audit-report.schema.json").to_string_lossy(),
        ])
        .output()
        .expect("python");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid", "{}", String::from_utf8_lossy(&out.stderr));
    let failed: Vec<String> = j["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| format!("{} {}", c["address"].as_str().unwrap_or(""), c["id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(failed, [format!("s3.{a} S3-PUBLIC-ACCESS"), format!("s3.{a} S3-SSE"), format!("s3.{a} S3-VERSIONING")]);
    let v = j["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "S3-VERSIONING" && c["status"] == "fail")
        .cloned();
    assert_eq!(v.expect("versioning control")["observed"], "suspended");

    let r = w.cli(&["audit", "-f", &p]);
    r.code(2);
    assert!(r.stdout.contains("FAIL S3-SSE"), "{}", r.stdout);
    assert!(
        r.stdout.contains("Audit: 5 passed, 3 failed, 0 unknown, 1 objective(s) not met: NOT compliant."),
        "{}",
        r.stdout
    );

    // Re-enabling versioning is not destructive: apply fixes all of it.
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    w.cli(&["audit", "-f", &p]).code(0);
}

crate::both!(suspending_versioning_needs_allow_destroy, super::suspending_versioning_needs_allow_destroy_on);
fn suspending_versioning_needs_allow_destroy_on(server: Server) {
    let w = World::on(server);
    let a = unique("backups");
    let on = w.write(
        "on.yaml",
        &format!("version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {a}:\n      versioning: enabled\n"),
    );
    let off = w.write(
        "off.yaml",
        &format!("version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {a}:\n      versioning: suspended\n"),
    );
    let (on, off) = (on.to_string_lossy().into_owned(), off.to_string_lossy().into_owned());
    w.cli(&["apply", "-f", &on, "--auto-approve"]).code(0);

    let r = w.cli(&["plan", "-f", &off]);
    r.code(0);
    assert!(r.stdout.contains("# destructive: needs --allow-destroy"), "{}", r.stdout);
    let r = w.cli(&["apply", "-f", &off, "--auto-approve"]);
    r.code(1);
    assert!(r.stderr.contains("--allow-destroy was not given; nothing was changed"), "{}", r.stderr);
    w.cli(&["plan", "-f", &on, "--detailed-exitcode"]).code(0);

    w.cli(&["apply", "-f", &off, "--auto-approve", "--allow-destroy"]).code(0);
    w.cli(&["plan", "-f", &off, "--detailed-exitcode"]).code(0);
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let w = World::with_moto();
    let (a, b) = (unique("backups"), unique("dr"));
    let p = policy(&w, &a, &b);
    let r = w.cli(&["apply", "-f", &p]);
    r.code(1);
    assert!(r.stderr.contains("apply needs --auto-approve when stdin is not a terminal"), "{}", r.stderr);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(2);
}

// moto only: it reads moto's request log.
/// S3 bucket names may have dots: `--target s3.A` is bucket A and its
/// parts, not bucket `A.copies` — in plan, apply, a saved plan and the
/// audit — and `--target s3.A.copies` leaves bucket A alone.
#[test]
fn a_target_is_one_bucket_even_when_another_s_name_extends_it() {
    let w = World::with_moto();
    let a = unique("dotted");
    let copies = format!("{a}.copies");
    let p = w.write(
        "p.yaml",
        &format!(
            "version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {a}:\n      versioning: enabled\n    {copies}:\n      versioning: enabled\n"
        ),
    );
    let p = p.to_string_lossy().into_owned();
    let planned = |target: &str| -> Vec<String> {
        let j = w.cli(&["plan", "-f", &p, "--target", target, "--format", "json"]).json();
        let changes = j["changes"].as_array().cloned().unwrap_or_default();
        changes
            .iter()
            .filter(|c| c["action"] != "no-op")
            .map(|c| c["address"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(planned(&format!("s3.{a}")), [format!("s3.{a}")]);
    assert_eq!(planned(&format!("s3.{copies}")), [format!("s3.{copies}")]);
    w.cli(&["apply", "-f", &p, "--target", &format!("s3.{a}"), "--auto-approve"]).code(0);
    let exists = |b: &str| block_on(async { w.moto().s3("us-east-1").head_bucket().bucket(b).send().await.is_ok() });
    assert!(exists(&a), "the target was made");
    assert!(!exists(&copies), "the bucket whose name extends the target's was not");
    // The audit of one is the audit of that one bucket.
    let j = w.cli(&["audit", "-f", &p, "--target", &format!("s3.{a}"), "--format", "json"]).json();
    let addresses: Vec<&str> =
        j["controls"].as_array().expect("controls").iter().filter_map(|c| c["address"].as_str()).collect();
    assert!(
        !addresses.is_empty()
            && addresses.iter().all(|x| *x == format!("s3.{a}")
                || x.starts_with(&format!("s3.{a}.")) && !x.starts_with(&format!("s3.{copies}"))),
        "{addresses:?}"
    );
    // A saved plan of the other bucket makes only that bucket.
    let saved = w.dir.path().join("plan.json").to_string_lossy().into_owned();
    w.cli(&["plan", "-f", &p, "--target", &format!("s3.{copies}"), "--out", &saved]).code(0);
    w.cli(&["apply", &saved, "--auto-approve"]).code(0);
    assert!(exists(&copies));
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

#[test]
fn plan_reads_only_the_settings_the_policy_mentions() {
    let w = World::with_moto();
    let a = unique("backups");
    let p = w.write(
        "p.yaml",
        &format!("version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {a}:\n      versioning: enabled\n"),
    );
    let p = p.to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let before = std::fs::read_to_string(&w.moto().log).expect("moto log");
    let r = w.cli(&["-v", "plan", "-f", &p, "--detailed-exitcode"]);
    r.code(0);
    let logged: Vec<&str> =
        r.stderr.lines().filter(|l| l.starts_with("api ")).map(|l| l.split(' ').nth(1).unwrap_or("")).collect();
    // One read per setting the policy mentions: no HeadBucket first.
    assert_eq!(logged, ["get_bucket_versioning"], "-v logs each API call: {}", r.stderr);
    let after = std::fs::read_to_string(&w.moto().log).expect("moto log");
    let calls: Vec<&str> = after[before.len()..]
        .lines()
        .filter_map(|l| l.split('"').nth(1))
        // moto colours 4xx request lines
        .map(|req| req.trim_start_matches("\u{1b}[33m"))
        .map(|req| req.split(" HTTP").next().unwrap_or(req))
        .collect();
    assert_eq!(calls, [format!("GET /{a}/?versioning")], "plan made other calls");
}

#[test]
fn unreachable_endpoint_is_an_error_not_absent() {
    let w = World::new();
    let p = w.write(
        "p.yaml",
        "version: 1\naws: {region: us-east-1}\ns3:\n  buckets:\n    some-bucket:\n      versioning: enabled\n",
    );
    let p = p.to_string_lossy().into_owned();
    let port = crate::harness::free_port();
    let url = format!("http://127.0.0.1:{port}");
    for cmd in ["plan", "audit"] {
        let r = w.cli(&["--endpoint-url", &url, cmd, "-f", &p]);
        r.code(1);
        assert!(!r.stdout.contains("will be created") && !r.stdout.contains("FAIL"), "{}", r.stdout);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one clear line: {}", r.stderr);
        assert!(lines[0].starts_with("error: cannot reach the endpoint"), "{}", r.stderr);
        assert!(lines[0].contains(&url), "{}", r.stderr);
    }
}

#[test]
fn missing_credentials_is_one_clear_line() {
    let w = World::with_moto();
    let p = w.write(
        "p.yaml",
        "version: 1\naws: {region: us-east-1}\ns3:\n  buckets:\n    some-bucket:\n      versioning: enabled\n",
    );
    let p = p.to_string_lossy().into_owned();
    let url = w.moto().url();
    let r = w.cli_env(
        &["--endpoint-url", &url, "plan", "-f", &p],
        &[],
        &[
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ],
    );
    r.code(1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: no AWS credentials found"), "{}", r.stderr);
}

#[test]
fn bucket_in_another_region_is_a_conflict_apply_will_not_touch() {
    let w = World::with_moto();
    let a = unique("moved");
    block_on(async {
        w.moto()
            .s3("eu-west-1")
            .create_bucket()
            .bucket(&a)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .expect("create in eu-west-1");
    });
    let p = w.write(
        "p.yaml",
        &format!("version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {a}:\n      versioning: enabled\n"),
    );
    let p = p.to_string_lossy().into_owned();
    // moto answers from any region; AWS redirects a request signed for
    // another region than the bucket's (the harness's proxy plays that).
    let proxy = crate::harness::FaultProxy::with(
        w.moto().port,
        crate::harness::Faults::Regions(vec![(a.clone(), "eu-west-1".into())]),
        None,
    );
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "plan", "-f", &p]);
    r.code(1);
    assert!(r.stdout.contains("the bucket exists in eu-west-1 but the policy puts it in us-east-1"), "{}", r.stdout);
    let r = w.cli(&["--endpoint-url", &url, "audit", "-f", &p, "--format", "json"]);
    r.code(2);
    assert_eq!(r.json()["controls"][0]["id"], "S3-BUCKET");
    assert_eq!(r.json()["controls"][0]["status"], "fail");
}

/// moto enforces IAM after the first five requests: set-up runs before
/// that, the tool then runs as a user who may not read versioning. (moto
/// names HeadBucket's action `s3:HeadBucket` and checks the encryption and
/// public-access-block reads as `s3:ListBucket`.)
const SETUP_READER: &str = r#"
import sys, json, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
s3 = boto3.client("s3", **kw)
s3.create_bucket(Bucket="denied-versioning")
s3.put_bucket_versioning(Bucket="denied-versioning", VersioningConfiguration={"Status": "Enabled"})
iam = boto3.client("iam", **kw)
iam.create_user(UserName="reader")
iam.put_user_policy(UserName="reader", PolicyName="read-some", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:HeadBucket", "s3:ListBucket"], "Resource": "*"}]}))
k = iam.create_access_key(UserName="reader")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;

#[test]
fn access_denied_is_unknown_never_absent() {
    let w = World::with_moto_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "5")]);
    let keys = w.python(SETUP_READER);
    let (ak, sk) = keys.trim().split_once(' ').expect("access key and secret");
    let p = w.write(
        "p.yaml",
        "version: 1\naws: {region: us-east-1}\ns3:\n  buckets:\n    denied-versioning:\n      versioning: enabled\n      public_access_block: all\n    denied-unknown-bucket:\n      versioning: enabled\n",
    );
    let p = p.to_string_lossy().into_owned();
    let url = w.moto().url();
    let creds = [("AWS_ACCESS_KEY_ID", ak), ("AWS_SECRET_ACCESS_KEY", sk), ("AWS_ENDPOINT_URL", url.as_str())];

    let r = w.cli_env(&["plan", "-f", &p], &creds, &[]);
    r.code(1);
    let out = squash(&r.stdout);
    assert!(out.contains("? versioning: unknown (access denied"), "{out}");
    assert!(!out.contains("~ versioning"), "an unreadable setting is never planned as absent: {out}");
    // HeadBucket is allowed for the reader, so a missing bucket is still a create.
    assert!(out.contains("+ s3.denied-unknown-bucket will be created"), "{out}");
    assert!(r.stderr.contains("the plan is incomplete"), "{}", r.stderr);

    let r = w.cli_env(&["audit", "-f", &p, "--format", "json"], &creds, &[]);
    r.code(1);
    let j = r.json();
    let status = |id: &str, addr: &str| {
        j["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .find(|c| c["id"] == id && c["address"] == addr)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status("S3-PUBLIC-ACCESS", "s3.denied-versioning"), Some("fail".into()));
    assert_eq!(status("S3-VERSIONING", "s3.denied-versioning"), Some("unknown".into()));

    // Credentials the server does not know are one fatal line, not "unknown".
    let bad = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEWRONGKEY1"),
        ("AWS_SECRET_ACCESS_KEY", sk),
        ("AWS_ENDPOINT_URL", url.as_str()),
    ];
    let r = w.cli_env(&["plan", "-f", &p], &bad, &[]);
    r.code(1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("the credentials were rejected (InvalidAccessKeyId)"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn a_bucket_without_any_region_is_a_clear_error() {
    let w = World::new();
    let p = w.write("p.yaml", "version: 1\ns3:\n  buckets:\n    no-region-bucket:\n      versioning: enabled\n");
    let p = p.to_string_lossy().into_owned();
    let r = w.cli(&["--endpoint-url", "http://127.0.0.1:9", "plan", "-f", &p]);
    r.code(1);
    assert_eq!(
        r.stderr.trim(),
        "error: bucket `no-region-bucket` has no region: set `aws.region` in the policy or `region:` on the bucket, or pass --region / set AWS_REGION"
    );
}

#[test]
fn region_flag_sets_where_buckets_without_their_own_region_go() {
    let w = World::with_moto();
    let a = unique("flagged");
    let p = w.write("p.yaml", &format!("version: 1\ns3:\n  buckets:\n    {a}:\n      versioning: enabled\n"));
    let p = p.to_string_lossy().into_owned();
    w.cli(&["--region", "eu-west-1", "apply", "-f", &p, "--auto-approve"]).code(0);
    let loc =
        block_on(async { w.moto().s3("eu-west-1").get_bucket_location().bucket(&a).send().await.expect("location") });
    assert_eq!(loc.location_constraint().map(|c| c.as_str()), Some("eu-west-1"));
    w.cli(&["--region", "eu-west-1", "plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

/// One audit writes every report a nightly job needs: each file in the
/// format its extension names, from the same reading of the estate (one
/// run's API calls, one moment).
#[test]
fn one_audit_writes_several_reports_each_in_the_format_of_its_extension() {
    let w = World::with_moto();
    let (a, b) = (unique("many"), unique("many-dr"));
    let p = policy(&w, &a, &b);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    block_on(async { w.moto().s3("us-east-1").delete_bucket_encryption().bucket(&a).send().await.expect("drift") });
    let file = |n: &str| w.dir.path().join(n).to_string_lossy().into_owned();
    let names = ["a.json", "a.sarif", "a.xml", "a.html", "a.prom", "a.md", "a.txt"];
    let mut args = vec!["audit".to_string(), "-f".into(), p.clone()];
    for n in names {
        args.extend(["--output".to_string(), file(n)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = w.cli(&args);
    r.code(2);
    assert!(r.stdout.is_empty(), "every report went to its file: {}", r.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("a.json")).expect("json")).expect("JSON");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("a.sarif")).expect("sarif")).expect("SARIF");
    assert_eq!(sarif["version"], "2.1.0");
    let failing = json["controls"].as_array().expect("controls").iter().filter(|c| c["status"] == "fail").count();
    let results = sarif["runs"][0]["results"].as_array().expect("results").len();
    assert_eq!((failing, results), (1, 1), "the same audit in both");
    let read = |n: &str| std::fs::read_to_string(file(n)).expect("report");
    assert!(read("a.xml").starts_with("<?xml") && read("a.xml").contains("<testsuites"), "{}", read("a.xml"));
    assert!(read("a.html").contains("<html"), "HTML");
    assert!(read("a.prom").contains("suoops_audit_compliant") && read("a.prom").trim_end().ends_with("# EOF"));
    assert!(read("a.md").contains("| S3-SSE"), "{}", read("a.md"));
    assert!(read("a.txt").contains("NOT compliant") && !read("a.txt").contains('\u{1b}'), "{}", read("a.txt"));
    // Same instant: every report carries the one run's time.
    let at = json["run"]["generated_at"].as_str().expect("generated_at").to_string();
    assert!(read("a.html").contains(&at) && read("a.md").contains(&at), "one run: {at}");
    // What cannot be told is refused before anything is read.
    let r = w.cli(&["audit", "-f", &p, "--output", &file("x.json"), "--output", &file("x.pdf")]);
    r.code(1);
    assert!(r.stderr.contains("cannot tell the report format of") && r.stderr.contains("x.pdf"), "{}", r.stderr);
    assert!(!std::path::Path::new(&file("x.json")).exists(), "nothing written");
    let r = w.cli(&["audit", "-f", &p, "--format", "json", "--output", &file("y.json"), "--output", &file("y.xml")]);
    r.code(1);
    assert!(r.stderr.contains("leave --format out"), "{}", r.stderr);
}

#[test]
fn audit_reports_in_junit_and_markdown() {
    let w = World::with_moto();
    let (a, b) = (unique("backups"), unique("dr"));
    let p = policy(&w, &a, &b);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    block_on(async { w.moto().s3("us-east-1").delete_bucket_encryption().bucket(&a).send().await.expect("drift") });
    let xml = w.dir.path().join("audit.xml");
    let r = w.cli(&["audit", "-f", &p, "--format", "junit", "--output", &xml.to_string_lossy()]);
    r.code(2);
    // Parsed by a real XML parser.
    let out = std::process::Command::new(crate::harness::python())
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET\nr = ET.parse(sys.argv[1]).getroot()\nprint(r.get('tests'), r.get('failures'), len(r.findall('testsuite')), [c.get('name') for c in r.iter('testcase') if c.find('failure') is not None])",
            &xml.to_string_lossy(),
        ])
        .output()
        .expect("python");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "8 1 2 ['S3-SSE Default encryption at rest']",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = w.cli(&["audit", "-f", &p, "--format", "markdown"]);
    r.code(2);
    assert!(r.stdout.contains("| 7 | 1 | 0 | 0 | **not compliant** |"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("### `s3.{a}`")), "{}", r.stdout);
    assert!(r.stdout.contains("| ❌ fail | S3-SSE Default encryption at rest |"), "{}", r.stdout);
}

/// Headless Chromium, as the env notes say it must be started here.
fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    let bin = ["chromium", "chromium-browser"]
        .iter()
        .map(|b| std::path::Path::new("/usr/bin").join(b))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("chromium is not installed: run scripts/test (it installs it) or `apt-get install chromium`")
        });
    std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn audit_reports_in_sarif_and_html() {
    let w = World::with_moto();
    let (a, b) = (unique("backups"), unique("dr"));
    let p = policy(&w, &a, &b);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    block_on(async { w.moto().s3("us-east-1").delete_bucket_encryption().bucket(&a).send().await.expect("drift") });

    let sarif = w.dir.path().join("audit.sarif");
    w.cli(&["audit", "-f", &p, "--format", "sarif", "--output", &sarif.to_string_lossy()]).code(2);
    // Parsed by a SARIF 2.1.0 object model (sarif-pydantic).
    let out = std::process::Command::new(crate::harness::python())
        .args([
            "-c",
            "import sys\nfrom sarif_pydantic import Sarif\ns = Sarif.model_validate_json(open(sys.argv[1]).read())\nr = s.runs[0].results\nprint(s.version, len(r), r[0].rule_id, r[0].locations[0].physical_location.region.start_line)",
            &sarif.to_string_lossy(),
        ])
        .output()
        .expect("python");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2.1.0 1 S3-SSE 9",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let html = w.dir.path().join("audit.html");
    w.cli(&["audit", "-f", &p, "--format", "html", "--output", &html.to_string_lossy()]).code(2);
    let text = std::fs::read_to_string(&html).expect("html");
    assert!(!text.contains("<script") && !text.contains("src=\"http"), "self-contained");
    let url = format!("file://{}", html.display());
    let dom = chromium(&["--dump-dom", &url], &w.dir.path().join("chrome-dom"));
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("Backup compliance audit") && dom.contains("not compliant"), "rendered DOM: {dom}");
    assert!(dom.contains("S3-SSE") && dom.contains("ENCRYPTION-AT-REST"), "{dom}");
    let png = w.dir.path().join("audit.png");
    let shot = chromium(
        &[&format!("--screenshot={}", png.display()), "--window-size=1200,1400", &url],
        &w.dir.path().join("chrome-shot"),
    );
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&shot.stderr)));
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "a real screenshot, {} bytes", bytes.len());
    if let Some(keep) = std::env::var_os("SUOOPS_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).expect("keep screenshot");
    }
}

#[test]
fn a_large_plan_in_markdown_is_split_into_comment_sized_parts() {
    let w = World::with_moto();
    let mut text = String::from("version: 1\naws: {region: us-east-1}\ns3:\n  buckets:\n");
    let names: Vec<String> = (0..300).map(|i| format!("md-{}-{i:03}", std::process::id())).collect();
    for n in &names {
        text.push_str(&format!(
            "    {n}:\n      versioning: enabled\n      encryption: {{algorithm: AES256}}\n      public_access_block: all\n      lifecycle:\n        rules:\n          - {{id: dumps, prefix: postgres/, expire_after_days: 14}}\n"
        ));
    }
    let p = w.write("big.yaml", &text).to_string_lossy().into_owned();
    let out = w.dir.path().join("plan.md");
    let r = w.cli(&["plan", "-f", &p, "--format", "markdown", "--output", &out.to_string_lossy()]);
    r.code(0);
    let mut parts = Vec::new();
    for i in 1.. {
        let path = if i == 1 { out.clone() } else { w.dir.path().join(format!("plan.{i}.md")) };
        match std::fs::read_to_string(&path) {
            Ok(t) => parts.push(t),
            Err(_) => break,
        }
    }
    assert!(parts.len() >= 2, "a 300-bucket plan needs several comments, got {}", parts.len());
    for (i, p) in parts.iter().enumerate() {
        assert!(p.chars().count() <= 65_536, "part {} is {} characters", i + 1, p.chars().count());
        assert!(p.contains(&format!("**Part {} of {}**", i + 1, parts.len())), "numbered");
    }
    assert!(parts[0].contains("| 600 | 0 | 0 | 0 | 0 | 0 | 0 |"), "summary first: {}", &parts[0][..400]);
    let all = parts.concat();
    for n in &names {
        assert!(all.contains(&format!("<summary><code>s3.{n}</code></summary>")), "{n} missing");
    }
    eprintln!("300-bucket plan: {} parts, {} characters", parts.len(), all.chars().count());
}

crate::both!(
    a_saved_plan_is_applied_exactly_and_refused_when_stale,
    super::a_saved_plan_is_applied_exactly_and_refused_when_stale_on
);
fn a_saved_plan_is_applied_exactly_and_refused_when_stale_on(server: Server) {
    let w = World::on(server);
    let (a, b) = (unique("saved"), unique("dr"));
    let p = policy(&w, &a, &b);
    let saved = w.dir.path().join("plan.json");
    let saved_s = saved.to_string_lossy().into_owned();
    w.cli(&["plan", "-f", &p, "--out", &saved_s]).code(0);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&saved).expect("saved")).expect("json");
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["fingerprints"].as_object().map(|m| m.len()), Some(2));
    let r = w.cli(&["apply", &saved_s, "--auto-approve"]);
    r.code(0);
    assert!(r.stdout.contains("Apply: 2 planned change(s) made on 2 resource(s), 0 failed."), "{}", r.stdout);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);

    // Plan a fix, then someone else changes the bucket: the plan is stale.
    block_on(async {
        w.moto().s3("us-east-1").delete_bucket_encryption().bucket(&a).send().await.expect("drift 1");
    });
    w.cli(&["plan", "-f", &p, "--out", &saved_s]).code(0);
    crate::harness::suspend_versioning(&w, &a);
    let r = w.cli(&["apply", &saved_s, "--auto-approve"]);
    r.code(1);
    assert!(r.stderr.contains(&format!("the saved plan is stale: s3.{a} changed since it was made")), "{}", r.stderr);
    // The fix was not made: no default encryption. (moto answers 404 after
    // DeleteBucketEncryption, LocalStack an empty 200.)
    let encrypted = || {
        block_on(async {
            let r = w.moto().s3("us-east-1").get_bucket_encryption().bucket(&a).send().await;
            r.ok()
                .and_then(|o| o.server_side_encryption_configuration().map(|c| !c.rules().is_empty()))
                .unwrap_or(false)
        })
    };
    assert!(!encrypted(), "nothing was changed");

    // A changed policy file refuses the plan too.
    w.cli(&["plan", "-f", &p, "--out", &saved_s]).code(0);
    std::fs::write(&p, std::fs::read_to_string(&p).expect("policy") + "# edited\n").expect("edit");
    let r = w.cli(&["apply", &saved_s, "--auto-approve"]);
    r.code(1);
    assert!(r.stderr.contains("changed since the plan was made: run plan again"), "{}", r.stderr);

    // A plan made by another version of the tool is refused, nothing changed.
    w.cli(&["plan", "-f", &p, "--out", &saved_s]).code(0);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).expect("saved")).expect("json");
    doc["tool_version"] = "0.0.1".into();
    std::fs::write(&saved, doc.to_string()).expect("rewrite");
    let r = w.cli(&["apply", &saved_s, "--auto-approve"]);
    r.code(1);
    assert!(
        r.stderr.contains(&format!(
            "was made by suoops-policy 0.0.1; this is {}: run plan again with this version",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        r.stderr
    );
    assert!(!encrypted(), "nothing was changed");
}

#[test]
fn the_journal_records_each_resource_with_its_before_values() {
    let w = World::with_moto();
    let (a, b) = (unique("jr"), unique("dr"));
    let p = policy(&w, &a, &b);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    crate::harness::suspend_versioning(&w, &a);
    let journal = w.dir.path().join("journal.jsonl");
    w.cli(&["apply", "-f", &p, "--auto-approve", "--journal", &journal.to_string_lossy()]).code(0);
    let text = std::fs::read_to_string(&journal).expect("journal written");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["address"], format!("s3.{a}"));
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["before"][format!("s3.{a} versioning")], "suspended");
    assert_eq!(lines[0]["steps"][0]["step"], "versioning");
}

// S3 accepts default encryption naming a key that does not exist or is
// disabled; every write then fails. S3-SSE judges the key, not the name.
crate::both!(s3_sse_checks_the_key_not_just_its_name, super::s3_sse_checks_the_key_not_just_its_name_on);
fn s3_sse_checks_the_key_not_just_its_name_on(server: Server) {
    let w = World::on(server);
    let (a, b) = (unique("keyed"), unique("dr"));
    let p = policy(&w, &a, &b);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let sse = |w: &World| {
        let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
        let j = r.json();
        j["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .find(|c| c["id"] == "S3-SSE" && c["address"] == format!("s3.{a}"))
            .cloned()
            .expect("S3-SSE")
    };
    // The setting is as the policy says, but the alias names no key.
    let c = sse(&w);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["detail"], "the key `alias/suoops-backups` does not exist: writes to the bucket fail");
    // The platform creates the key: the control passes, with the key's ARN.
    let arn = w.kms_key("us-east-1", "alias/suoops-backups");
    let c = sse(&w);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["observed"]["key"]["arn"], arn.as_str());
    assert_eq!(c["observed"]["key"]["state"], "Enabled");
    // Disabled behind the tool's back: fails, and says which key.
    w.disable_kms_key("us-east-1", &arn);
    let c = sse(&w);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["detail"], format!("the key {arn} is Disabled: writes to the bucket fail"));
    let r = w.cli(&["audit", "-f", &p]);
    r.code(2);
    assert!(r.stdout.contains("ENCRYPTION-AT-REST"), "{}", r.stdout);
    // A read-only role without kms:DescribeKey would see Unknown, never a
    // pass: the permission is part of plan/audit.
    let doc = w.cli(&["permissions", "--for", "audit", "-f", &p]);
    assert!(doc.stdout.contains("\"kms:DescribeKey\""), "{}", doc.stdout);
}

/// One verdict in every format and in the exit code: an objective the
/// policy does not ask for (IMMUTABILITY without Object Lock or
/// deny_delete) is "not evaluated" and the report is compliant; one it
/// asks for and misses (LEAST-PRIVILEGE: the writer can read) makes it not
/// compliant, exit 2, though every control passes. The report names its
/// time, version, account and regions first, and shows observed values as
/// key: value lines (looked at in headless Chromium).
#[test]
fn the_verdict_is_one_thing_in_every_format_and_the_report_says_when_and_where() {
    let w = World::with_moto();
    let b = unique("verdict");
    let bucket = format!(
        "version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {b}:\n      versioning: enabled\n      encryption: {{algorithm: AES256}}\n      backups:\n        - {{name: dumps, prefix: postgres/, max_age: 26h}}\n"
    );
    let p = w.write("p.yaml", &bucket).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    block_on(async {
        w.moto()
            .s3("us-east-1")
            .put_object()
            .bucket(&b)
            .key("postgres/20261202T020000Z.dump")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"dump"))
            .send()
            .await
            .expect("put a dump")
    });
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(0);
    let j = r.json();
    assert_eq!(j["compliant"], true, "{j:#}");
    assert_eq!(j["run"]["account"], "123456789012", "{j:#}");
    assert_eq!(j["run"]["regions"], serde_json::json!(["us-east-1"]));
    assert_eq!(j["run"]["tool_version"], env!("CARGO_PKG_VERSION"));
    assert!(j["run"]["generated_at"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 20), "{j:#}");
    let objectives = j["objectives"].as_array().expect("objectives");
    assert!(objectives.iter().all(|o| o["verdict"] != "not_met"), "{objectives:#?}");
    let immutability = objectives.iter().find(|o| o["id"] == "IMMUTABILITY").expect("IMMUTABILITY");
    assert_eq!(immutability["verdict"], "not_evaluated");
    assert!(immutability["reasons"][0].as_str().unwrap_or("").contains("object_lock"), "{immutability}");
    let text = w.cli(&["audit", "-f", &p]);
    text.code(0);
    assert!(text.stdout.starts_with("Audit of "), "{}", text.stdout);
    assert!(text.stdout.contains("AWS account 123456789012 · regions us-east-1"), "{}", text.stdout);
    assert!(text.stdout.contains(": compliant."), "{}", text.stdout);
    assert!(
        text.stdout.contains("observed: algorithm: AES256, kms_key: (none)"),
        "key: value, not JSON: {}",
        text.stdout
    );
    let md = w.cli(&["audit", "-f", &p, "--format", "markdown"]);
    assert!(md.stdout.contains("| compliant |") && md.stdout.contains("AWS account 123456789012"), "{}", md.stdout);

    // The writer can also read its dumps: every control passes, the
    // objective does not, and every format says not compliant.
    let role = format!(
        "iam:\n  roles:\n    {b}-writer:\n      trust: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: \"sts:AssumeRole\"}}]}}\n      inline_policies:\n        dumps: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: [\"s3:PutObject\", \"s3:GetObject\"], Resource: \"arn:aws:s3:::{b}/postgres/*\"}}]}}\n"
    );
    let p2 = w.write("p2.yaml", &format!("{bucket}{role}")).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p2, "--auto-approve"]).code(0);
    let r = w.cli(&["audit", "-f", &p2, "--format", "json"]);
    r.code(2);
    let j = r.json();
    assert_eq!(j["compliant"], false);
    assert_eq!(j["summary"]["failed"], 0, "every control passes: {j:#}");
    let least = j["objectives"].as_array().expect("o").iter().find(|o| o["id"] == "LEAST-PRIVILEGE").expect("lp");
    assert_eq!(least["verdict"], "not_met", "{least}");
    let text = w.cli(&["audit", "-f", &p2]);
    text.code(2);
    assert!(text.stdout.contains("objective(s) not met: NOT compliant."), "{}", text.stdout);
    let prom = w.cli(&["audit", "-f", &p2, "--format", "openmetrics"]);
    assert!(prom.stdout.contains("\nsuoops_audit_compliant 0\n") && prom.stdout.contains("suoops_audit_up 1\n"));

    let html = w.dir.path().join("verdict.html");
    w.cli(&["audit", "-f", &p, "--format", "html", "--output", &html.to_string_lossy()]).code(0);
    let url = format!("file://{}", html.display());
    let dom = chromium(&["--dump-dom", &url], &w.dir.path().join("chrome-dom"));
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains(">compliant<") && !dom.contains("not compliant"), "rendered DOM: {dom}");
    assert!(dom.contains("AWS account <b>123456789012</b>") && dom.contains("regions <b>us-east-1</b>"), "{dom}");
    assert!(dom.contains(&format!("suoops-policy <b>{}</b>", env!("CARGO_PKG_VERSION"))), "{dom}");
    let tiles = dom.split("<h2>Objectives</h2>").nth(1).and_then(|t| t.split("</div><h2>").next()).unwrap_or("");
    assert!(!tiles.is_empty() && !tiles.contains("#c62828"), "no objective tile in red: {tiles}");
    assert!(
        dom.contains("<code>algorithm: AES256</code><br><code>kms_key: (none)</code>"),
        "observed values as key: value lines: {dom}"
    );
}
