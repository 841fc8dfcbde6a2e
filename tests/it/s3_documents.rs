//! Whole-document S3 settings against moto: lifecycle rules with rule-level
//! ownership, the TLS-only bucket-policy statement, MFA delete as a manual
//! step, and a concurrent change between plan and apply.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};

use crate::harness::{block_on, squash, unique, Server, World};

fn lifecycle_policy(bucket: &str, ownership: &str) -> String {
    format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {bucket}:
      versioning: enabled
      lifecycle:
        ownership: {ownership}
        rules:
          - id: postgres-dumps
            prefix: postgres/
            expire_after_days: 14
            noncurrent_expire_after_days: 7
          - id: tiering
            transitions:
              - {{days: 30, storage_class: STANDARD_IA}}
              - {{days: 180, storage_class: GLACIER}}
            noncurrent_transitions:
              - {{days: 30, storage_class: STANDARD_IA}}
          - id: expire-non-critical
            prefix: tmp/
            tags: {{class: non-critical}}
            expire_after_days: 365
            abort_incomplete_multipart_days: 7
          - id: paused
            enabled: false
            prefix: scratch/
            expire_after_days: 3
"
    )
}

/// A rule another team wrote: on moto the legacy way (top-level Prefix,
/// which S3 returns as written); LocalStack refuses that as MalformedXML,
/// so there a `Filter.Prefix`.
#[allow(deprecated)]
fn foreign_rule(server: Server) -> LifecycleRule {
    let rule = LifecycleRule::builder().id("other-team").status(ExpirationStatus::Enabled);
    let rule = match server {
        Server::Moto => rule.prefix("logs/"),
        Server::LocalStack => rule.filter(LifecycleRuleFilter::builder().prefix("logs/").build()),
    };
    rule.expiration(LifecycleExpiration::builder().days(90).build()).build().expect("rule")
}

fn put_rules(w: &World, bucket: &str, rules: Vec<LifecycleRule>) {
    block_on(async {
        w.moto()
            .s3("us-east-1")
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().expect("conf"),
            )
            .send()
            .await
            .expect("put lifecycle");
    });
}

fn live_rule_ids(w: &World, bucket: &str) -> Vec<String> {
    block_on(async {
        let out = w
            .moto()
            .s3("us-east-1")
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .expect("get lifecycle");
        let mut ids: Vec<String> = out.rules().iter().map(|r| r.id().unwrap_or_default().to_string()).collect();
        ids.sort();
        ids
    })
}

crate::both!(
    lifecycle_round_trip_has_no_diff_and_passes_audit,
    super::lifecycle_round_trip_has_no_diff_and_passes_audit_on
);
fn lifecycle_round_trip_has_no_diff_and_passes_audit_on(server: Server) {
    let w = World::on(server);
    let b = unique("lc");
    let p = w.write("p.yaml", &lifecycle_policy(&b, "shared")).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    let out = squash(&r.stdout);
    assert!(out.contains(&format!("+ s3.{b}.lifecycle.tiering will be created")), "{out}");
    assert!(
        out.contains(
            r#"+ transitions = [{"days":30,"storage_class":"STANDARD_IA"},{"days":180,"storage_class":"GLACIER"}]"#
        ),
        "{out}"
    );
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(0);
    let j = r.json();
    let lc = j["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "S3-LIFECYCLE")
        .cloned()
        .expect("S3-LIFECYCLE");
    assert_eq!(lc["status"], "pass");
    assert_eq!(live_rule_ids(&w, &b), ["expire-non-critical", "paused", "postgres-dumps", "tiering"]);
}

crate::both!(
    foreign_rule_is_kept_under_shared_and_removed_under_exclusive_only_with_allow_destroy,
    super::foreign_rule_is_kept_under_shared_and_removed_under_exclusive_only_with_allow_destroy_on
);
fn foreign_rule_is_kept_under_shared_and_removed_under_exclusive_only_with_allow_destroy_on(server: Server) {
    let w = World::on(server);
    let b = unique("lc");
    block_on(async { w.moto().s3("us-east-1").create_bucket().bucket(&b).send().await.expect("create") });
    put_rules(&w, &b, vec![foreign_rule(server)]);
    let shared = w.write("shared.yaml", &lifecycle_policy(&b, "shared")).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &shared]);
    r.code(0);
    assert!(
        r.stdout.contains(&format!("= s3.{b}.lifecycle.other-team: not managed by this policy, kept")),
        "{}",
        r.stdout
    );
    w.cli(&["apply", "-f", &shared, "--auto-approve"]).code(0);
    assert_eq!(live_rule_ids(&w, &b), ["expire-non-critical", "other-team", "paused", "postgres-dumps", "tiering"]);
    let kept = block_on(async {
        let out = w.moto().s3("us-east-1").get_bucket_lifecycle_configuration().bucket(&b).send().await.expect("get");
        out.rules().iter().find(|r| r.id() == Some("other-team")).cloned().expect("foreign rule")
    });
    assert_eq!(kept.expiration().and_then(|e| e.days()), Some(90), "the foreign rule is intact");
    w.cli(&["plan", "-f", &shared, "--detailed-exitcode"]).code(0);

    let exclusive = w.write("exclusive.yaml", &lifecycle_policy(&b, "exclusive")).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &exclusive, "--detailed-exitcode"]);
    r.code(2);
    assert!(r.stdout.contains(&format!("- s3.{b}.lifecycle.other-team will be destroyed")), "{}", r.stdout);
    assert!(r.stdout.contains("# destructive: needs --allow-destroy"), "{}", r.stdout);
    let r = w.cli(&["apply", "-f", &exclusive, "--auto-approve"]);
    r.code(1);
    assert!(r.stderr.contains(&format!("s3.{b}.lifecycle.other-team")), "{}", r.stderr);
    assert!(live_rule_ids(&w, &b).contains(&"other-team".to_string()), "nothing removed without --allow-destroy");
    w.cli(&["apply", "-f", &exclusive, "--auto-approve", "--allow-destroy"]).code(0);
    assert_eq!(live_rule_ids(&w, &b), ["expire-non-critical", "paused", "postgres-dumps", "tiering"]);
    w.cli(&["plan", "-f", &exclusive, "--detailed-exitcode"]).code(0);
}

// moto only: it reads moto's request log.
#[test]
fn a_change_made_between_plan_and_apply_is_not_clobbered() {
    let w = World::with_moto();
    let b = unique("lc");
    block_on(async { w.moto().s3("us-east-1").create_bucket().bucket(&b).send().await.expect("create") });
    let p = w.write("p.yaml", &lifecycle_policy(&b, "shared")).to_string_lossy().into_owned();
    // Run apply on a terminal (util-linux `script`), so it shows the plan
    // and waits for "yes"; meanwhile another team writes a rule.
    let mut child = Command::new("script")
        .args(["-qfec", &format!("{} apply -f {p}", env!("CARGO_BIN_EXE_suoops-policy")), "/dev/null"])
        .env("AWS_ENDPOINT_URL", w.moto().url())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux is needed for this test: apt-get install bsdutils");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // Wait until the plan is shown and apply asks (everything observed).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("Only 'yes' is accepted") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!("apply never asked: {}", String::from_utf8_lossy(&seen)),
        }
    }
    put_rules(&w, &b, vec![foreign_rule(Server::Moto)]);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"yes\n").expect("answer yes");
    drop(stdin);
    let status = child.wait().expect("wait");
    reader.join().expect("reader");
    seen.extend(rx.try_iter().flatten());
    let out = String::from_utf8_lossy(&seen).into_owned();
    assert!(!status.success(), "{out}");
    assert!(out.contains("the lifecycle configuration changed since it was observed"), "{out}");
    assert_eq!(live_rule_ids(&w, &b), ["other-team"], "the concurrent change survives");
    // A re-run sees the new rule, keeps it, and converges.
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    assert_eq!(live_rule_ids(&w, &b), ["expire-non-critical", "other-team", "paused", "postgres-dumps", "tiering"]);
}

/// A bucket holding another team's bucket policy `foreign`, and a policy
/// file that only asks for `require_tls`; returns the file's path.
fn tls_policy_over(w: &World, b: &str, foreign: &str) -> String {
    block_on(async {
        let s3 = w.moto().s3("us-east-1");
        s3.create_bucket().bucket(b).send().await.expect("create");
        s3.put_bucket_policy().bucket(b).policy(foreign).send().await.expect("policy");
    });
    w.write(
        "p.yaml",
        &format!("version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {b}:\n      require_tls: true\n"),
    )
    .to_string_lossy()
    .into_owned()
}

/// The bucket policy as S3 holds it now.
fn live_policy(w: &World, b: &str) -> String {
    block_on(async {
        let out = w.moto().s3("us-east-1").get_bucket_policy().bucket(b).send().await.expect("get policy");
        out.policy().unwrap_or_default().to_string()
    })
}

crate::both!(
    tls_statement_is_merged_with_foreign_statements_kept,
    super::tls_statement_is_merged_with_foreign_statements_kept_on
);
fn tls_statement_is_merged_with_foreign_statements_kept_on(server: Server) {
    let w = World::on(server);
    let b = unique("tls");
    let foreign = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"AuditorsRead","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::123456789012:root"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}}]}}"#
    );
    let p = tls_policy_over(&w, &b, &foreign);
    let r = w.cli(&["audit", "-f", &p]);
    r.code(2);
    assert!(r.stdout.contains("FAIL S3-TLS"), "{}", r.stdout);
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(r.stdout.contains(&format!("+ s3.{b}.require_tls will be created")), "{}", r.stdout);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let live: serde_json::Value = serde_json::from_str(&live_policy(&w, &b)).expect("json");
    let sids: Vec<&str> =
        live["Statement"].as_array().expect("statements").iter().filter_map(|s| s["Sid"].as_str()).collect();
    assert_eq!(sids, ["AuditorsRead", "SuoopsPolicyRequireTLS"]);
    let original: serde_json::Value = serde_json::from_str(&foreign).expect("json");
    assert_eq!(live["Statement"][0], original["Statement"][0], "the foreign statement is intact");
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    w.cli(&["audit", "-f", &p]).code(0);
}

crate::both!(
    a_foreign_statement_naming_a_deleted_role_is_a_plan_conflict_not_a_failed_write,
    super::a_foreign_statement_naming_a_deleted_role_is_a_plan_conflict_not_a_failed_write_on
);
fn a_foreign_statement_naming_a_deleted_role_is_a_plan_conflict_not_a_failed_write_on(server: Server) {
    let w = World::on(server);
    let b = unique("deleted-principal");
    // What S3 shows once the role a statement named was deleted: its
    // unique ID instead of its ARN. Writing this document back fails.
    let foreign = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"OldReader","Effect":"Allow","Principal":{{"AWS":"AROA5EXAMPLEUNIQUEID7"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}}]}}"#
    );
    let p = tls_policy_over(&w, &b, &foreign);
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    assert_ne!(r.code, 0);
    let text = squash(&r.stdout);
    assert!(text.contains("statements naming deleted principals: `OldReader` (AROA5EXAMPLEUNIQUEID7)"), "{}", r.stdout);
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    assert!(!r.stdout.contains("✓ bucket policy"), "{}", r.stdout);
    let live = live_policy(&w, &b);
    assert!(!live.contains("SuoopsPolicyRequireTLS"), "nothing was sent: {live}");
}

crate::both!(
    an_equivalent_foreign_tls_statement_satisfies_plan_and_audit,
    super::an_equivalent_foreign_tls_statement_satisfies_plan_and_audit_on
);
fn an_equivalent_foreign_tls_statement_satisfies_plan_and_audit_on(server: Server) {
    let w = World::on(server);
    let b = unique("tls");
    let theirs = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"TheirTls","Effect":"Deny","Principal":{{"AWS":"*"}},"Action":["s3:*"],"Resource":["arn:aws:s3:::{b}/*","arn:aws:s3:::{b}"],"Condition":{{"Bool":{{"aws:SecureTransport":false}}}}}}]}}"#
    );
    let p = tls_policy_over(&w, &b, &theirs);
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(0);
    assert!(r.stdout.contains("already enforced by another statement"), "{}", r.stdout);
    w.cli(&["audit", "-f", &p]).code(0);
}

#[test]
fn mfa_delete_is_a_manual_step_apply_never_attempts() {
    let w = World::with_moto();
    let b = unique("mfa");
    let p = w.write("p.yaml", &format!("version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {b}:\n      versioning: enabled\n      mfa_delete: enabled\n")).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(r.stdout.contains(&format!("! s3.{b}.mfa_delete needs a manual step")), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("aws s3api put-bucket-versioning --bucket {b} --versioning-configuration Status=Enabled,MFADelete=Enabled --mfa")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 manual step(s)"), "{}", r.stdout);
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(r.stderr.contains("Nothing for apply to do; 1 manual step(s) remain"), "{}", r.stderr);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let j = r.json();
    let c = j["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "S3-MFA-DELETE")
        .cloned()
        .expect("control");
    assert_eq!(c["status"], "fail");
    assert!(c["remediation"].as_str().unwrap_or("").contains("root user"));
}

fn replication_policy(src: &str, dst: &str) -> String {
    format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {src}:
      versioning: enabled
      replication:
        role: suoops-s3-replication
        rules:
          - id: dr-copy
            destination: {dst}
            storage_class: STANDARD_IA
          - id: dumps-with-deletes
            priority: 5
            prefix: postgres/
            destination: arn:aws:s3:::{dst}
            delete_marker_replication: true
    {dst}:
      region: eu-west-1
      versioning: enabled
"
    )
}

crate::both!(
    one_apply_sets_up_replication_on_an_empty_estate,
    super::one_apply_sets_up_replication_on_an_empty_estate_on
);
fn one_apply_sets_up_replication_on_an_empty_estate_on(server: Server) {
    let w = World::on(server);
    let arn = w.replication_role("suoops-s3-replication");
    let (src, dst) = (unique("src"), unique("dr"));
    let p = w.write("p.yaml", &replication_policy(&src, &dst)).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    let out = squash(&r.stdout);
    assert!(out.contains(&format!("+ s3.{src}.replication will be created")), "{out}");
    assert!(out.contains(&format!("+ role = \"{}\"", arn.trim())), "{out}");
    assert!(out.contains(&format!("+ s3.{src}.replication.dr-copy will be created")), "{out}");

    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(r.stdout.contains("✓ replication"), "{}", r.stdout);
    let conf = block_on(async {
        let out = w.moto().s3("us-east-1").get_bucket_replication().bucket(&src).send().await.expect("replication");
        out.replication_configuration().cloned().expect("conf")
    });
    assert_eq!(conf.role(), arn.trim());
    assert_eq!(conf.rules().len(), 2);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(0);
    let j = r.json();
    assert!(j["controls"].as_array().expect("controls").iter().any(|c| c["id"] == "S3-CRR" && c["status"] == "pass"));
}

crate::both!(
    replication_without_its_role_is_a_conflict_not_a_failed_write,
    super::replication_without_its_role_is_a_conflict_not_a_failed_write_on
);
fn replication_without_its_role_is_a_conflict_not_a_failed_write_on(server: Server) {
    let w = World::on(server);
    let (src, dst) = (unique("src"), unique("dr"));
    let p = w.write("p.yaml", &replication_policy(&src, &dst)).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &p]);
    r.code(1);
    assert!(r.stdout.contains("replication role `suoops-s3-replication` does not exist"), "{}", r.stdout);
    // apply still makes both buckets; replication waits for the role and
    // says so once, with the reason.
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(1);
    assert!(r.stdout.contains(&format!("s3.{dst}: done")), "{}", r.stdout);
    assert!(
        r.stdout.contains("✗ replication: skipped: replication role `suoops-s3-replication` does not exist"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("still differs"), "{}", r.stdout);
    w.replication_role("suoops-s3-replication");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

#[test]
fn a_waiver_covers_a_failing_control_until_it_expires() {
    let w = World::with_moto();
    let b = unique("mfa");
    let body = |expires: &str| {
        format!(
            "version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {b}:\n      versioning: enabled\n      mfa_delete: enabled\nwaivers:\n  - control: S3-MFA-DELETE\n    address: s3.{b}\n    owner: platform@suoops\n    reason: root MFA device being replaced\n    expires: \"{expires}\"\n"
        )
    };
    let active = w.write("active.yaml", &body("2099-12-31")).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &active, "--auto-approve"]).code(0);
    let r = w.cli(&["audit", "-f", &active]);
    r.code(0);
    assert!(r.stdout.contains("WAIVED S3-MFA-DELETE"), "{}", r.stdout);
    assert!(
        r.stdout.contains("waiver:   root MFA device being replaced (platform@suoops), until 2099-12-31"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 waived: compliant"), "{}", r.stdout);
    let expired = w.write("expired.yaml", &body("2020-01-01")).to_string_lossy().into_owned();
    let r = w.cli(&["audit", "-f", &expired, "--format", "json"]);
    r.code(2);
    let c = r.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "S3-MFA-DELETE")
        .cloned()
        .expect("control");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["waiver"]["expired"], true);
}

#[test]
fn target_limits_plan_apply_and_audit_to_an_address_and_what_is_under_it() {
    let w = World::with_moto();
    let (a, b) = (unique("ta"), unique("tb"));
    let text = format!(
        "version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {a}:\n      versioning: enabled\n      lifecycle:\n        rules:\n          - {{id: one, prefix: one/, expire_after_days: 3}}\n          - {{id: two, prefix: two/, expire_after_days: 4}}\n    {b}:\n      versioning: enabled\n"
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &p, "--target", &format!("s3.{b}")]);
    r.code(0);
    assert!(r.stdout.contains(&format!("+ s3.{b} will be created")), "{}", r.stdout);
    assert!(!r.stdout.contains(&format!("s3.{a}")), "{}", r.stdout);
    w.cli(&["apply", "-f", &p, "--auto-approve", "--target", &format!("s3.{b}")]).code(0);
    let exists =
        |name: &str| block_on(async { w.moto().s3("us-east-1").head_bucket().bucket(name).send().await.is_ok() });
    assert!(exists(&b) && !exists(&a), "only the target was created");

    // A rule inside a bucket: only that rule is written.
    block_on(async { w.moto().s3("us-east-1").create_bucket().bucket(&a).send().await.expect("create") });
    w.cli(&["apply", "-f", &p, "--auto-approve", "--target", &format!("s3.{a}.lifecycle.one")]).code(0);
    assert_eq!(live_rule_ids(&w, &a), ["one"]);
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(r.stdout.contains(&format!("+ s3.{a}.lifecycle.two will be created")), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("~ s3.{a} will be updated in place")),
        "versioning was not touched: {}",
        r.stdout
    );

    let r = w.cli(&["audit", "-f", &p, "--format", "json", "--target", &format!("s3.{b}")]);
    r.code(0);
    assert!(r.json()["controls"].as_array().expect("controls").iter().all(|c| c["address"] == format!("s3.{b}")));

    let r = w.cli(&["plan", "-f", &p, "--target", "s3.nope"]);
    r.code(1);
    assert!(r.stderr.contains("--target s3.nope matches nothing"), "{}", r.stderr);
}

#[test]
fn a_failed_step_skips_exactly_its_dependents_and_a_rerun_converges() {
    let w = World::with_moto();
    w.replication_role("suoops-s3-replication");
    let (src, dst, other) = (unique("src"), unique("dr"), unique("other"));
    let text = format!("{}    {other}:\n      versioning: enabled\n", replication_policy(&src, &dst));
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    // Every PutBucketVersioning of the destination is denied.
    let proxy = crate::harness::FaultProxy::start(w.moto().port, &format!("PUT /{dst}/?versioning"));
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "apply", "-f", &p, "--auto-approve"]);
    r.code(1);
    let out = &r.stdout;
    assert!(out.contains("✗ versioning: access denied: injected fault"), "{out}");
    assert!(
        out.contains(&format!("✗ replication: skipped: bucket `{dst}` did not apply")),
        "the dependent is skipped: {out}"
    );
    assert!(out.contains(&format!("s3.{other}: done")), "independent work goes on: {out}");
    let conf = block_on(async { w.moto().s3("us-east-1").get_bucket_replication().bucket(&src).send().await.is_ok() });
    assert!(!conf, "no replication was written towards an unversioned destination");
    proxy.disarm();
    w.cli(&["--endpoint-url", &url, "apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

fn kms_replication_policy(src: &str, dst: &str, account: &str) -> String {
    format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {src}:
      versioning: enabled
      encryption: {{algorithm: aws:kms, kms_key: arn:aws:kms:us-east-1:{account}:alias/backups}}
      replication:
        role: suoops-s3-replication
        rules:
          - id: dr-copy
            destination: {dst}
            replica_kms_key: arn:aws:kms:eu-west-1:{account}:alias/backups-dr
            replication_time: 15m
          - id: plain
            priority: 2
            prefix: plain/
            destination: {dst}
            replicate_kms_encrypted: false
    {dst}:
      region: eu-west-1
      versioning: enabled
"
    )
}

/// Rewrite one live replication rule with a Python client, as an operator
/// (or another tool) would.
fn edit_rule(w: &World, src: &str, rule: &str, edit: &str) {
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
conf = s3.get_bucket_replication(Bucket="{src}")["ReplicationConfiguration"]
for r in conf["Rules"]:
    if r["ID"] == "{rule}":
{edit}
s3.put_bucket_replication(Bucket="{src}", ReplicationConfiguration=conf)
"#
    ));
}

crate::both!(
    sse_kms_replication_opts_in_names_the_replica_key_and_keeps_what_the_policy_does_not_name,
    super::sse_kms_replication_opts_in_names_the_replica_key_and_keeps_what_the_policy_does_not_name_on
);
fn sse_kms_replication_opts_in_names_the_replica_key_and_keeps_what_the_policy_does_not_name_on(server: Server) {
    let w = World::on(server);
    w.replication_role("suoops-s3-replication");
    w.kms_key("us-east-1", "alias/backups");
    let (src, dst) = (unique("kms-src"), unique("kms-dr"));
    let p = w.write("p.yaml", &kms_replication_policy(&src, &dst, w.account())).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let conf = block_on(async {
        let out = w.moto().s3("us-east-1").get_bucket_replication().bucket(&src).send().await.expect("replication");
        out.replication_configuration().cloned().expect("conf")
    });
    let dr = conf.rules().iter().find(|r| r.id() == Some("dr-copy")).expect("dr-copy");
    let kms = dr.source_selection_criteria().and_then(|c| c.sse_kms_encrypted_objects()).map(|k| k.status().as_str());
    assert_eq!(kms, Some("Enabled"), "{dr:?}");
    let d = dr.destination().expect("destination");
    assert_eq!(
        d.encryption_configuration().and_then(|e| e.replica_kms_key_id()),
        Some(format!("arn:aws:kms:eu-west-1:{}:alias/backups-dr", w.account()).as_str())
    );
    assert_eq!(d.replication_time().and_then(|t| t.time()).and_then(|t| t.minutes()), Some(15));
    assert_eq!(d.metrics().map(|m| m.status().as_str()), Some("Enabled"));
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    // Every control passes, but the replication role is outside the policy:
    // its KMS permissions cannot be verified, so DR-COPY is not met, and
    // one verdict says so (exit 2).
    r.code(2);
    let j = r.json();
    assert_eq!(j["summary"]["failed"], 0, "{j:#}");
    let dr = j["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == "DR-COPY").expect("DR-COPY");
    assert!(dr["reasons"][0].as_str().unwrap_or("").contains("is not in the policy"), "{dr}");

    // The opt-in removed behind the tool's back: the DR copy would miss
    // every SSE-KMS object. Plan shows it, S3-CRR and DR-COPY fail.
    edit_rule(&w, &src, "dr-copy", "        r.pop('SourceSelectionCriteria', None)");
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(squash(&r.stdout).contains("~ replicate_kms_encrypted false → true"), "{}", r.stdout);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let j = r.json();
    let crr = j["controls"].as_array().expect("controls").iter().find(|c| c["id"] == "S3-CRR").expect("S3-CRR").clone();
    assert_eq!(crr["status"], "fail", "{crr}");
    assert!(crr["detail"].as_str().unwrap_or("").contains("replication.dr-copy"), "{crr}");
    let dr_obj =
        j["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == "DR-COPY").expect("DR").clone();
    assert_eq!(dr_obj["verdict"], "not_met", "{dr_obj}");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);

    // Replication Time Control added by an operator on the rule that does
    // not name it, and a destination account: no diff, and an apply that
    // changes that rule's storage class keeps both.
    edit_rule(
        &w,
        &src,
        "plain",
        &format!("        r['Destination']['ReplicationTime'] = {{'Status': 'Enabled', 'Time': {{'Minutes': 15}}}}\n        r['Destination']['Metrics'] = {{'Status': 'Enabled', 'EventThreshold': {{'Minutes': 15}}}}\n        r['Destination']['Account'] = '{}'", w.account()),
    );
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    let changed = kms_replication_policy(&src, &dst, w.account()).replace(
        "            replicate_kms_encrypted: false\n",
        "            replicate_kms_encrypted: false\n            storage_class: GLACIER\n",
    );
    std::fs::write(&p, changed).expect("edit policy");
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(squash(&r.stdout).contains("also has: destination account, kept"), "{}", r.stdout);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let conf = block_on(async {
        let out = w.moto().s3("us-east-1").get_bucket_replication().bucket(&src).send().await.expect("replication");
        out.replication_configuration().cloned().expect("conf")
    });
    let plain = conf.rules().iter().find(|r| r.id() == Some("plain")).expect("plain");
    let d = plain.destination().expect("destination");
    assert_eq!(d.storage_class().map(|c| c.as_str()), Some("GLACIER"));
    assert_eq!(d.replication_time().and_then(|t| t.time()).and_then(|t| t.minutes()), Some(15), "{plain:?}");
    assert_eq!(d.account(), Some(w.account()));
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);

    // A tag filter added to a rule the policy owns narrows what reaches
    // the DR copy: a difference (not a setting kept), S3-CRR fails, and
    // apply writes the rule back to its prefix.
    edit_rule(
        &w,
        &src,
        "dr-copy",
        "        r['Filter'] = {'And': {'Prefix': r['Filter'].get('Prefix', ''), 'Tags': [{'Key': 'class', 'Value': 'keep'}]}}\n        r['DeleteMarkerReplication'] = {'Status': 'Disabled'}",
    );
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(squash(&r.stdout).contains("filter_tags"), "{}", r.stdout);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    let j = r.json();
    let crr = j["controls"].as_array().expect("controls").iter().find(|c| c["id"] == "S3-CRR").expect("S3-CRR").clone();
    assert_eq!(crr["status"], "fail", "{crr}");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let conf = block_on(async {
        let out = w.moto().s3("us-east-1").get_bucket_replication().bucket(&src).send().await.expect("replication");
        out.replication_configuration().cloned().expect("conf")
    });
    let dr = conf.rules().iter().find(|r| r.id() == Some("dr-copy")).expect("dr-copy");
    assert!(dr.filter().is_some_and(|f| f.and().is_none() && f.tag().is_none()), "{dr:?}");
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

/// One failed setting does not stop the bucket's other settings, and an
/// error reply with no body says its status, not the SDK's debug text.
#[test]
fn a_failed_setting_leaves_the_bucket_s_independent_settings_applied() {
    let w = World::with_moto();
    let b = unique("indep");
    let text = format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      encryption: {{algorithm: AES256}}
      public_access_block: all
      require_tls: true
"
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    // PutBucketEncryption answers 403 with no body at all.
    let proxy = crate::harness::FaultProxy::with(
        w.moto().port,
        crate::harness::Faults::Bare(format!("PUT /{b}/?encryption")),
        None,
    );
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "apply", "-f", &p, "--auto-approve"]);
    r.code(1);
    let out = &r.stdout;
    assert!(out.contains("✗ default encryption: HTTP 403 Forbidden with no error code"), "{out}");
    assert!(!out.contains("s3_extended_request_id") && !out.contains("Error {"), "no SDK debug text: {out}");
    assert!(out.contains("✓ public access block"), "independent steps still run: {out}");
    assert!(out.contains("✓ bucket policy (require TLS)"), "{out}");
    let pab = block_on(async { w.moto().s3("us-east-1").get_public_access_block().bucket(&b).send().await.is_ok() });
    assert!(pab, "the public access block was written after the failed encryption step");
    proxy.disarm();
    w.cli(&["--endpoint-url", &url, "apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

/// Real S3 answers a request signed for another region than the bucket's
/// with 301 and the bucket's region in `x-amz-bucket-region` (the Rust SDK
/// does not follow it). The proxy behaves so; moto alone answers from any
/// region.
#[test]
fn region_redirects_give_the_wrong_region_conflict_and_read_outside_destinations() {
    let w = World::with_moto();
    w.replication_role("suoops-s3-replication");
    let (misplaced, src, outside) = (unique("moved"), unique("src"), unique("outside-dr"));
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
for b in ("{misplaced}", "{outside}"):
    s3.create_bucket(Bucket=b, CreateBucketConfiguration={{"LocationConstraint": "eu-west-1"}})
s3.put_bucket_versioning(Bucket="{outside}", VersioningConfiguration={{"Status": "Enabled"}})
"#
    ));
    let text = format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {misplaced}:
      versioning: enabled
    {src}:
      versioning: enabled
      replication:
        role: suoops-s3-replication
        rules:
          - {{id: dr, destination: {outside}}}
"
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let homes = vec![(misplaced.clone(), "eu-west-1".to_string()), (outside.clone(), "eu-west-1".to_string())];
    let proxy = crate::harness::FaultProxy::with(w.moto().port, crate::harness::Faults::Regions(homes), None);
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "plan", "-f", &p]);
    r.code(1);
    assert!(
        r.stdout.contains("the bucket exists in eu-west-1 but the policy puts it in us-east-1"),
        "the 301 names the bucket's region: {}",
        r.stdout
    );
    assert!(!r.stdout.contains("unknown"), "nothing is left unreadable: {}", r.stdout);
    // The destination outside the policy was read in its own region: the
    // replication is planned, not blocked as missing or unversioned.
    let out = squash(&r.stdout);
    assert!(out.contains(&format!("+ s3.{src}.replication.dr will be created")), "{out}");
    assert!(!out.contains(&format!("`{outside}` does not exist")) && !out.contains("not versioned"), "{out}");
    assert!(proxy.counts.denied.load(std::sync::atomic::Ordering::Relaxed) > 0, "the proxy redirected");
}

/// Right after CreateBucket, S3 may answer NoSuchBucket for seconds: the
/// first apply on an empty estate still converges in one run, its steps
/// waiting (bounded) until the bucket is visible.
#[test]
fn a_new_bucket_not_yet_visible_is_waited_for_and_apply_converges_in_one_run() {
    let w = World::with_moto();
    let b = unique("fresh");
    let text = format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      encryption: {{algorithm: AES256}}
      public_access_block: all
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
"
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let proxy = crate::harness::FaultProxy::with(
        w.moto().port,
        crate::harness::Faults::consistency(std::time::Duration::from_millis(1500)),
        None,
    );
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "-v", "apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(r.stdout.contains(&format!("s3.{b}: done")), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("waiting for AWS to report bucket {b}")),
        "the wait is said with -v: {}",
        r.stderr
    );
    assert!(proxy.counts.denied.load(std::sync::atomic::Ordering::Relaxed) > 0, "the proxy answered NoSuchBucket");
    w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]).code(0);
    // A bound too short to outwait the window: one clear failure, and a
    // re-run converges.
    let b2 = unique("fresh");
    std::fs::write(&p, text.replace(&b, &b2)).expect("policy");
    let r = w.cli(&["--endpoint-url", &url, "--wait", "0", "apply", "-f", &p, "--auto-approve"]);
    r.code(1);
    assert!(
        r.stdout.lines().any(|l| l.contains('✗') && l.contains("NoSuchBucket")),
        "a failed step names NoSuchBucket: {}",
        r.stdout
    );
    std::thread::sleep(std::time::Duration::from_millis(1600));
    w.cli(&["--endpoint-url", &url, "apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

/// Right after versioning is turned on, S3 may refuse a replication
/// configuration ("Versioning must be 'Enabled'"): one apply on an empty
/// estate still sets replication up, waiting it out.
#[test]
fn replication_right_after_versioning_waits_for_s3_and_converges_in_one_apply() {
    let w = World::with_moto();
    w.replication_role("suoops-s3-replication");
    let (src, dst) = (unique("lag-src"), unique("lag-dr"));
    let p = w.write("p.yaml", &replication_policy(&src, &dst)).to_string_lossy().into_owned();
    let proxy = crate::harness::FaultProxy::with(
        w.moto().port,
        crate::harness::Faults::versioning_lag(std::time::Duration::from_millis(1200)),
        None,
    );
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "-v", "apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(r.stdout.contains("✓ replication"), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("waiting for AWS to report versioning and the role of {src}")), "{}", r.stderr);
    assert!(proxy.counts.denied.load(std::sync::atomic::Ordering::Relaxed) > 0, "the proxy refused at first");
    w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]).code(0);
}
