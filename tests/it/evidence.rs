//! Backup evidence against real objects in moto: freshness, the SHA-256
//! sidecar (present, missing, malformed, not matching S3's checksum) and
//! retention against the bucket's lifecycle.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;

use crate::harness::{block_on, unique, Server, World};

fn put(w: &World, bucket: &str, key: &str, body: &[u8], sha256: bool) {
    block_on(async {
        let mut req =
            w.moto().s3("us-east-1").put_object().bucket(bucket).key(key).body(ByteStream::from(body.to_vec()));
        if sha256 {
            req = req.checksum_algorithm(ChecksumAlgorithm::Sha256);
        }
        req.send().await.expect("put object");
    });
}

fn policy(bucket: &str, max_age: &str) -> String {
    format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {bucket}:
      lifecycle:
        rules:
          - {{id: postgres-dumps, prefix: postgres/, expire_after_days: 14}}
      backups:
        - name: postgres-daily-dump
          prefix: postgres/
          max_age: {max_age}
          sha256_sidecar: true
          retention: 14d
          key_format: \"%Y%m%d-%H%M%S\"
        - name: wal-archive
          prefix: wal/
          max_age: 15m
          retention: 1d
"
    )
}

fn statuses(w: &World, p: &str) -> Vec<String> {
    let r = w.cli(&["audit", "-f", p, "--format", "json"]);
    r.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .filter(|c| c["id"].as_str().unwrap_or("").starts_with("BACKUP-"))
        .map(|c| {
            format!(
                "{} {} {}",
                c["address"].as_str().unwrap_or(""),
                c["id"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or("")
            )
        })
        .collect()
}

crate::both!(
    fresh_dump_with_a_good_sidecar_and_retention_passes,
    super::fresh_dump_with_a_good_sidecar_and_retention_passes_on
);
fn fresh_dump_with_a_good_sidecar_and_retention_passes_on(server: Server) {
    let w = World::on(server);
    let b = unique("bk");
    let p = w.write("p.yaml", &policy(&b, "26h")).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let dump = b"-- pg_dump output\n";
    let key = format!(
        "postgres/{}.sql.gz",
        suoops_policy::model::time::format_time(
            "%Y%m%d-%H%M%S",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        )
    );
    put(&w, &b, &key, dump, true);
    let hex = "9b1c7d8c0e5b6a3f1f0a5d4c3b2a19081726354453627180918a7b6c5d4e3f20";
    let real = {
        // sha256 of the dump, computed by the test's Python (hashlib).
        let out = std::process::Command::new(crate::harness::python())
            .args([
                "-c",
                "import hashlib,sys;print(hashlib.sha256(sys.argv[1].encode()).hexdigest())",
                std::str::from_utf8(dump).unwrap_or(""),
            ])
            .output()
            .expect("python");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_ne!(real, hex);
    put(&w, &b, &format!("{key}.sha256"), format!("{real}  dump.sql.gz\n").as_bytes(), false);
    put(&w, &b, "wal/000000010000000000000001", b"wal", false);
    let got = statuses(&w, &p);
    let want: Vec<String> = [
        "postgres-daily-dump BACKUP-FRESHNESS pass",
        "postgres-daily-dump BACKUP-INTEGRITY pass",
        "postgres-daily-dump BACKUP-RETENTION pass",
        "wal-archive BACKUP-FRESHNESS pass",
        "wal-archive BACKUP-RETENTION fail",
    ]
    .iter()
    .map(|s| format!("s3.{b}.backups.{s}"))
    .collect();
    assert_eq!(got, want);

    // The same audit as OpenMetrics, for Prometheus: it parses with the
    // prometheus_client OpenMetrics parser, and says what the controls say.
    let prom = w.dir.path().join("suoops.prom");
    let r = w.cli(&["audit", "-f", &p, "--format", "openmetrics", "--output", &prom.to_string_lossy()]);
    r.code(2);
    let parsed = w.python(&format!(
        r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {{}}
for fam in text_string_to_metric_families(open({prom:?}).read()):
    for s in fam.samples:
        labels = ",".join(f"{{k}}={{v}}" for k, v in sorted(s.labels.items()))
        v = float(s.value)
        out[f"{{s.name}}{{{{{{labels}}}}}}"] = v if v == v else "NaN"
print(json.dumps(out, sort_keys=True))
"#
    ));
    let m: serde_json::Value = serde_json::from_str(&parsed).expect("parsed metrics");
    let entry = format!("address=s3.{b}.backups.postgres-daily-dump");
    assert_eq!(m[format!("suoops_backup_size_bytes{{{entry}}}")].as_f64(), Some(dump.len() as f64), "{m}");
    assert!(m[format!("suoops_backup_age_seconds{{{entry}}}")].as_f64().is_some_and(|a| a < 600.0), "{m}");
    assert_eq!(m[format!("suoops_backup_max_age_seconds{{{entry}}}")].as_f64(), Some(93600.0), "{m}");
    assert_eq!(m[format!("suoops_backup_sidecar_match{{{entry}}}")].as_f64(), Some(1.0), "{m}");
    let state = |control: &str, addr: &str, st: &str| {
        let (head, tail) =
            (format!("suoops_control_status{{address={addr},control={control},"), format!("status={st}}}"));
        let obj = m.as_object().expect("metrics");
        obj.iter().find(|(k, _)| k.starts_with(&head) && k.ends_with(&tail)).and_then(|(_, v)| v.as_f64())
    };
    let wal = format!("s3.{b}.backups.wal-archive");
    assert_eq!(state("BACKUP-RETENTION", &wal, "fail"), Some(1.0), "{m}");
    assert_eq!(state("BACKUP-RETENTION", &wal, "pass"), Some(0.0), "{m}");
    assert_eq!(state("BACKUP-FRESHNESS", &wal, "pass"), Some(1.0), "{m}");
    assert_eq!(m["suoops_audit_compliant{}"].as_f64(), Some(0.0), "{m}");
    // The audit's own job gauges, addressed by its policy: it read every
    // system, so it succeeded (not compliant is a finding, not a failure);
    // the policy gives it no schedule, so no expected interval.
    let job = format!("{{address={p},kind=audit}}");
    let last = m[format!("suoops_job_last_success_timestamp_seconds{job}")].as_f64();
    assert!(last.is_some_and(|t| t > 1.7e9), "{m}");
    assert!(m[format!("suoops_job_expected_interval_seconds{job}")].is_null(), "{m}");
    // Prometheus' own linter takes it too (the textfile collector reads
    // Prometheus' text format), and the shipped alert rules check and pass
    // their unit tests.
    let promtool = |args: &[&str], stdin: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new("promtool");
        cmd.args(args).current_dir(crate::harness::root());
        if let Some(f) = stdin {
            cmd.stdin(std::fs::File::open(f).expect("metrics file"));
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("promtool is needed for this test ({e}): apt-get install prometheus (scripts/test installs it)")
        });
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    promtool(&["check", "metrics"], Some(&prom));
    promtool(&["check", "rules", "docs/prometheus-alerts.yml"], None);
    promtool(&["test", "rules", "docs/prometheus-alerts.test.yml"], None);

    // A sidecar that does not match the checksum S3 holds fails.
    put(&w, &b, &format!("{key}.sha256"), format!("{hex}\n").as_bytes(), false);
    let r = w.cli(&["audit", "-f", &p]);
    r.code(2);
    assert!(r.stdout.contains("does not match the SHA-256 checksum S3 holds"), "{}", r.stdout);
}

crate::both!(stale_missing_and_malformed_evidence_fails, super::stale_missing_and_malformed_evidence_fails_on);
fn stale_missing_and_malformed_evidence_fails_on(server: Server) {
    let w = World::on(server);
    let b = unique("bk");
    let p = w.write("p.yaml", &policy(&b, "2s")).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    // Nothing written yet.
    let r = w.cli(&["audit", "-f", &p]);
    r.code(2);
    assert!(r.stdout.contains("no backup under postgres/"), "{}", r.stdout);
    let key = format!(
        "postgres/{}.sql.gz",
        suoops_policy::model::time::format_time(
            "%Y%m%d-%H%M%S",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        )
    );
    put(&w, &b, &key, b"dump", false);
    let r = w.cli(&["audit", "-f", &p]);
    assert!(r.stdout.contains(&format!("{key}.sha256 is missing")), "{}", r.stdout);
    put(&w, &b, &format!("{key}.sha256"), b"not a hash\n", false);
    let r = w.cli(&["audit", "-f", &p]);
    assert!(r.stdout.contains("does not hold a SHA-256 (64 hex digits)"), "{}", r.stdout);
    // Let the dump age past max_age (moto has no clock to move).
    std::thread::sleep(std::time::Duration::from_secs(3));
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let fresh = r.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "BACKUP-FRESHNESS" && c["address"].as_str().unwrap_or("").ends_with("postgres-daily-dump"))
        .cloned()
        .expect("freshness");
    assert_eq!(fresh["status"], "fail");
    assert!(fresh["detail"].as_str().unwrap_or("").contains("old, over 2s"), "{fresh}");
}

// The DR copy judged by what is in it: the newest backup of an entry that
// a replication rule covers must be in the destination bucket, the same
// object. moto does not replicate, so the test writes the copy as S3
// would, or a wrong one.
crate::both!(
    backup_replica_checks_the_newest_backup_is_in_the_dr_bucket,
    super::backup_replica_checks_the_newest_backup_is_in_the_dr_bucket_on
);
fn backup_replica_checks_the_newest_backup_is_in_the_dr_bucket_on(server: Server) {
    let w = World::on(server);
    w.replication_role("repl");
    let (src, dst) = (unique("ev-src"), unique("ev-dr"));
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
        - {{name: dump, prefix: postgres/, max_age: 26h}}
        - {{name: wal, prefix: wal/, max_age: 15m}}
    {dst}:
      region: eu-west-1
      versioning: enabled
"
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let replica = |w: &World| {
        let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
        let j = r.json();
        let found: Vec<serde_json::Value> = j["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .filter(|c| c["id"] == "BACKUP-REPLICA")
            .cloned()
            .collect();
        assert_eq!(found.len(), 1, "only the entry a rule covers (postgres/, not wal/): {found:?}");
        found[0].clone()
    };
    put(&w, &src, "postgres/20261130-020000.dump", b"the dump", true);
    put(&w, &src, "wal/000000010000000000000001", b"wal", false);
    // Written just now, not copied, and no replication status (the
    // emulators set none): no rule covered it, a failure at once.
    let c = replica(&w);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"].as_str().is_some_and(
            |d| d.ends_with("carries no replication status: no replication rule covered it when it was written")
        ),
        "{c}"
    );
    // A copy of another size is not the backup.
    block_on(async {
        let s3 = w.moto().s3("eu-west-1");
        let body = ByteStream::from(b"truncated".to_vec());
        s3.put_object().bucket(&dst).key("postgres/20261130-020000.dump").body(body).send().await.expect("put");
    });
    let c = replica(&w);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["detail"], format!("the copy in {dst} has 9 bytes, the backup 8"));
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    let dr = r.json()["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == "DR-COPY").cloned();
    assert_eq!(dr.expect("DR-COPY")["verdict"], "not_met");
    // The right copy, with the same SHA-256: passes.
    block_on(async {
        let s3 = w.moto().s3("eu-west-1");
        s3.put_object()
            .bucket(&dst)
            .key("postgres/20261130-020000.dump")
            .body(ByteStream::from(b"the dump".to_vec()))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .expect("put");
    });
    let c = replica(&w);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["observed"]["bucket"], dst.as_str());
}

/// ERASURE-HORIZON from evidence: a version S3 made 40 days ago (moto's
/// clock moved back through the launcher's MOTO_CLOCK_FILE while it was
/// put) under a prefix whose copies promise 17 days fails
/// S3-OLDEST-VERSION, named with its version; once it is deleted the copy
/// is within its horizon and the table shows the oldest version held.
#[test]
fn an_old_version_under_a_prefix_fails_the_erasure_evidence() {
    let clock = tempfile::NamedTempFile::new().expect("clock file");
    let clock_path = clock.path().to_string_lossy().into_owned();
    let w = World::with_moto_env(&[("MOTO_CLOCK_FILE", clock_path.as_str())]);
    let b = unique("erase");
    let p = w.write(
        "p.yaml",
        &format!(
            "version: 1
aws: {{region: us-east-1}}
privacy: {{erasure_within: 30d}}
s3:
  buckets:
    {b}:
      versioning: enabled
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}
"
        ),
    );
    let p = p.to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    std::fs::write(clock.path(), "-3456000").expect("clock back 40 days");
    put(&w, &b, "postgres/20261023-020000.dump", b"old rows", false);
    std::fs::write(clock.path(), "0").expect("clock now");
    put(&w, &b, "postgres/20261202-020000.dump", b"new rows", false);
    let audit = || {
        let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
        let j = r.json();
        let control = j["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .find(|c| c["id"] == "S3-OLDEST-VERSION")
            .cloned()
            .expect("S3-OLDEST-VERSION");
        let objective = j["objectives"]
            .as_array()
            .expect("objectives")
            .iter()
            .find(|o| o["id"] == "ERASURE-HORIZON")
            .cloned()
            .expect("ERASURE-HORIZON");
        (control, objective)
    };
    let (c, o) = audit();
    assert_eq!(c["status"], "fail", "{c}");
    let version = c["observed"]["postgres/"]["version_id"].as_str().expect("version").to_string();
    let detail = c["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(&format!("s3://{b}/postgres/20261023-020000.dump (version {version}) is 40.0 days old, over the 17-day horizon of s3://{b}/postgres/ (dump)")),
        "{detail}"
    );
    assert_eq!(c["observed"]["postgres/"]["versions"], 2);
    assert_eq!(o["verdict"], "not_met", "{o}");
    assert!(o["reasons"][0].as_str().expect("reason").contains("S3-OLDEST-VERSION is fail: s3://"), "{o}");
    assert_eq!(o["copies"][0]["copy"], format!("s3://{b}/postgres/ (dump)"));
    assert_eq!(o["copies"][0]["horizon_days"], 17);
    assert_eq!(o["copies"][0]["oldest_version_days"], 40.0);
    // The old version removed: within the horizon, the objective met.
    block_on(async {
        w.moto()
            .s3("us-east-1")
            .delete_object()
            .bucket(&b)
            .key("postgres/20261023-020000.dump")
            .version_id(&version)
            .send()
            .await
            .expect("delete the old version");
    });
    let (c, o) = audit();
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["detail"], "postgres/: oldest version 0.0 days old, horizon 17 days");
    assert_eq!(o["verdict"], "met", "{o}");
    assert_eq!(o["copies"][0]["oldest_version_days"], 0.0);
}

/// A DR bucket that keeps noncurrent versions 90 days outlives a 30-day
/// erasure_within: ERASURE-HORIZON names the DR copy and by how much, the
/// source's copy is within it, and the Markdown report's table shows both.
#[test]
fn a_dr_copy_keeping_noncurrent_versions_90_days_fails_the_erasure_horizon() {
    let w = World::with_moto();
    w.replication_role("repl");
    let (src, dst) = (unique("er-src"), unique("er-dr"));
    let text = format!(
        "version: 1
aws: {{region: us-east-1}}
privacy: {{erasure_within: 30d}}
s3:
  buckets:
    {src}:
      versioning: enabled
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
      replication:
        role: repl
        rules:
          - {{id: dumps, prefix: postgres/, destination: {dst}}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 26h}}
    {dst}:
      region: eu-west-1
      versioning: enabled
      lifecycle:
        rules:
          - {{id: replicas, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 90}}
"
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    put(&w, &src, "postgres/20261202-020000.dump", b"the dump", false);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    let o = r.json()["objectives"]
        .as_array()
        .expect("objectives")
        .iter()
        .find(|o| o["id"] == "ERASURE-HORIZON")
        .cloned()
        .expect("ERASURE-HORIZON");
    assert_eq!(o["verdict"], "not_met", "{o}");
    assert_eq!(
        o["reasons"][0],
        format!("s3://{dst}/postgres/ (DR copy of dump) keeps a deleted row recoverable up to 106 days, 76 over erasure_within (30 days)")
    );
    assert_eq!(o["reasons"].as_array().map(Vec::len), Some(1), "{o}");
    let md = w.cli(&["audit", "-f", &p, "--format", "markdown"]).stdout;
    assert!(md.contains(&format!("| s3://{src}/postgres/ (dump) | 17 days | 30 days | 0.0 days old |")), "{md}");
    assert!(
        md.contains(&format!("| s3://{dst}/postgres/ (DR copy of dump) | 106 days | 30 days | none held |")),
        "{md}"
    );
}

fn control(w: &World, args: &[&str], id: &str, address_end: &str) -> serde_json::Value {
    let r = w.cli(args);
    r.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == id && c["address"].as_str().unwrap_or("").ends_with(address_end))
        .cloned()
        .unwrap_or_else(|| panic!("{id} of {address_end}: {}", r.stdout))
}

fn objective(w: &World, p: &str, id: &str) -> serde_json::Value {
    let r = w.cli(&["audit", "-f", p, "--format", "json"]);
    r.json()["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == id).cloned().expect(id)
}

// S3 honours the shortest of overlapping expirations: another team's
// whole-bucket rule of 3 days, kept beside the policy's 14-day rule for
// postgres/ (shared ownership), expires the dumps after 3 days.
crate::both!(a_shorter_foreign_expiration_fails_retention, super::a_shorter_foreign_expiration_fails_retention_on);
fn a_shorter_foreign_expiration_fails_retention_on(server: Server) {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    };
    let w = World::on(server);
    let b = unique("bk");
    block_on(async {
        let s3 = w.moto().s3("us-east-1");
        s3.create_bucket().bucket(&b).send().await.expect("create bucket");
        let other = LifecycleRule::builder()
            .id("other-team")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(LifecycleExpiration::builder().days(3).build())
            .build()
            .expect("rule");
        let doc = BucketLifecycleConfiguration::builder().rules(other).build().expect("doc");
        s3.put_bucket_lifecycle_configuration().bucket(&b).lifecycle_configuration(doc).send().await.expect("put");
    });
    let p = w.write("p.yaml", &policy(&b, "26h")).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let args = ["audit", "-f", p.as_str(), "--format", "json"];
    let c = control(&w, &args, "BACKUP-RETENTION", "postgres-daily-dump");
    assert_eq!(c["status"], "fail", "{c}");
    let why = "rule other-team (the whole bucket) expires the backups under postgres/ after 3 days, before their 14-day retention: S3 honours the shortest expiration";
    assert_eq!(c["detail"], why, "{c}");
    assert_eq!(c["observed"]["rule"], "other-team");
    let o = objective(&w, &p, "RETENTION-14D");
    assert_eq!(o["verdict"], "not_met", "{o}");
    assert!(
        o["reasons"].as_array().expect("reasons").iter().any(|r| r.as_str().is_some_and(|r| r.ends_with(why))),
        "{o}"
    );
}

// A dump uploaded the way `aws s3 cp` and current SDKs do (a CRC checksum,
// or none) beside a sidecar of 64 zeros: nothing S3 holds can be compared
// with a SHA-256, so BACKUP-INTEGRITY is unknown, never a pass; with
// --verify-download the dump is hashed and the sidecar found wrong.
crate::both!(
    a_sidecar_with_nothing_to_compare_is_not_a_pass,
    super::a_sidecar_with_nothing_to_compare_is_not_a_pass_on
);
fn a_sidecar_with_nothing_to_compare_is_not_a_pass_on(server: Server) {
    let w = World::on(server);
    let b = unique("bk");
    let p = w.write("p.yaml", &policy(&b, "26h")).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let key = format!(
        "postgres/{}.dump",
        suoops_policy::model::time::format_time("%Y%m%d-%H%M%S", suoops_policy::model::time::now())
    );
    put(&w, &b, &key, b"-- a dump uploaded with a CRC\n", false);
    put(&w, &b, &format!("{key}.sha256"), format!("{}\n", "0".repeat(64)).as_bytes(), false);
    let audit = ["audit", "-f", p.as_str(), "--format", "json"];
    let c = control(&w, &audit, "BACKUP-INTEGRITY", "postgres-daily-dump");
    assert_eq!(c["status"], "unknown", "{c}");
    let detail = c["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with(&format!("S3 holds no SHA-256 checksum of {key} (")), "{detail}");
    assert!(detail.ends_with("not verifiable without downloading it (audit --verify-download)"), "{detail}");
    let verify = ["audit", "-f", p.as_str(), "--format", "json", "--verify-download"];
    let c = control(&w, &verify, "BACKUP-INTEGRITY", "postgres-daily-dump");
    assert_eq!(c["status"], "fail", "{c}");
    let got = c["detail"].as_str().unwrap_or("").rsplit(' ').next().unwrap_or("").to_string();
    let real = w.python("import hashlib;print(hashlib.sha256(b'-- a dump uploaded with a CRC\\n').hexdigest())");
    assert_eq!(got, real.trim(), "{c}");
    // The sidecar written from the dump itself: the download matches it.
    put(&w, &b, &format!("{key}.sha256"), format!("{}  dump\n", real.trim()).as_bytes(), false);
    let c = control(&w, &verify, "BACKUP-INTEGRITY", "postgres-daily-dump");
    assert_eq!(c["status"], "pass", "{c}");
}

/// A job's schedule sets how fresh its evidence must be when `max_age` is
/// not written: the daily dump (`0 2 * * *`) has 24 h and a twelfth. Its
/// newest dump made 25 h ago passes; made 27 h ago (moto's clock moved
/// back while it was put) it fails, naming the schedule it missed.
#[test]
fn a_job_s_schedule_sets_how_fresh_its_backups_must_be() {
    let clock = tempfile::NamedTempFile::new().expect("clock file");
    let clock_path = clock.path().to_string_lossy().into_owned();
    let w = World::with_moto_env(&[("MOTO_CLOCK_FILE", clock_path.as_str())]);
    let b = unique("sched");
    let p = w.write(
        "p.yaml",
        &format!(
            "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      backups:
        - {{name: dump, prefix: postgres/}}
postgres:
  primary:
    url: postgres://postgres@127.0.0.1:1/postgres
    backup: {{to: s3.{b}.backups.dump, schedule: \"0 2 * * *\"}}
"
        ),
    );
    let p = p.to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve", "--target", "s3"]).code(0);
    let freshness = || {
        let r = w.cli(&["audit", "-f", &p, "--format", "json", "--target", &format!("s3.{b}")]);
        r.json()["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .find(|c| c["id"] == "BACKUP-FRESHNESS")
            .cloned()
            .expect("BACKUP-FRESHNESS")
    };
    std::fs::write(clock.path(), (-25 * 3600).to_string()).expect("clock back 25 h");
    put(&w, &b, "postgres/a.dump", b"rows", false);
    std::fs::write(clock.path(), "0").expect("clock now");
    let c = freshness();
    assert_eq!(c["status"], "pass", "within the schedule's day and margin: {c}");
    assert_eq!(c["expected"]["max_age_seconds"], 24 * 3600 + 2 * 3600, "{c}");
    w.python(&format!(
        "import sys, boto3\nboto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t').delete_object(Bucket='{b}', Key='postgres/a.dump')\n"
    ));
    std::fs::write(clock.path(), (-27 * 3600).to_string()).expect("clock back 27 h");
    put(&w, &b, "postgres/b.dump", b"rows", false);
    std::fs::write(clock.path(), "0").expect("clock now");
    let c = freshness();
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .is_some_and(|d| d.contains("over 26h00m: its job runs `0 2 * * *` (UTC) and missed a run")),
        "{c}"
    );
}
