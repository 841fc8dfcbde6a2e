//! `import` against real servers: every kind of setting the tool manages is
//! imported and the imported policy plans with no change (the round trip);
//! what the format cannot say is said in a comment; URLs are written as
//! `${VAR}` and no secret reaches the file; `--merge` adds to a policy
//! without touching what is there.

use crate::harness::{Postgres, RedisServer, Run, Server, World};

/// A mixed estate, set up by the tool itself: a KMS-encrypted, TLS-only,
/// replicated bucket with every kind of lifecycle rule; its DR copy in
/// another region with some public-access flags; the replication role and a
/// writer role with a path, tags, trust, inline and managed policies.
const ESTATE: &str = r#"version: 1
aws:
  region: us-east-1
s3:
  buckets:
    imp-backups:
      versioning: enabled
      encryption: {algorithm: aws:kms, kms_key: alias/imp-backups, bucket_key: true}
      public_access_block: all
      require_tls: true
      lifecycle:
        rules:
          - id: dumps
            prefix: postgres/
            expire_after_days: 14
            noncurrent_expire_after_days: 7
          - id: tiering
            tags: {class: archive}
            transitions:
              - {days: 30, storage_class: STANDARD_IA}
              - {days: 180, storage_class: GLACIER}
            noncurrent_transitions: [{days: 30, storage_class: STANDARD_IA}]
          - id: uploads
            abort_incomplete_multipart_days: 3
            enabled: false
      replication:
        role: imp-replication
        rules:
          - id: dr-copy
            priority: 5
            prefix: ""
            destination: imp-backups-dr
            storage_class: STANDARD_IA
            delete_marker_replication: true
            replica_kms_key: arn:aws:kms:eu-west-1:123456789012:alias/imp-dr
            replication_time: 15m
    imp-backups-dr:
      region: eu-west-1
      versioning: enabled
      encryption: {algorithm: AES256}
      public_access_block: {block_public_acls: true, ignore_public_acls: true, block_public_policy: false, restrict_public_buckets: false}
iam:
  policies:
    imp-read:
      document:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: s3:GetObject
            Resource: arn:aws:s3:::imp-backups/*
  roles:
    imp-replication:
      s3_replication: true
      trust:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: s3.amazonaws.com}
            Action: sts:AssumeRole
    imp-writer:
      path: /backup/
      description: "writes dumps: daily"
      max_session_duration: 7200
      tags: {owner: platform, "cost center": "42"}
      trust:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {AWS: "arn:aws:iam::123456789012:role/ci-runner"}
            Action: sts:AssumeRole
            Condition: {Bool: {"aws:MultiFactorAuthPresent": "true"}}
      inline_policies:
        write-backups:
          Version: "2012-10-17"
          Statement:
            - Sid: PutDumps
              Effect: Allow
              Action: [s3:PutObject, s3:AbortMultipartUpload]
              Resource: arn:aws:s3:::imp-backups/postgres/*
      managed_policies: [imp-read]
"#;

/// Behind the tool's back: an unversioned, unencrypted bucket whose
/// lifecycle has a rule on a date (the format cannot say it) and whose
/// bucket policy has another team's statement.
const FOREIGN: &str = r#"
import sys, json, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3.create_bucket(Bucket="imp-legacy")
s3.delete_bucket_encryption(Bucket="imp-legacy")
s3.put_bucket_lifecycle_configuration(Bucket="imp-legacy", LifecycleConfiguration={"Rules": [
    {"ID": "old-reports", "Filter": {"Prefix": "reports/"}, "Status": "Enabled", "Expiration": {"Date": "2030-01-01T00:00:00Z"}},
    {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 365}},
]})
s3.put_bucket_policy(Bucket="imp-legacy", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "AuditorsRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::imp-legacy/*"}]}))
s3.create_bucket(Bucket="imp-suspended")
s3.put_bucket_versioning(Bucket="imp-suspended", VersioningConfiguration={"Status": "Suspended", "MFADelete": "Enabled"}, MFA="arn:aws:iam::123456789012:mfa/root 123456")
s3.put_bucket_encryption(Bucket="imp-suspended", ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
s3.put_public_access_block(Bucket="imp-suspended", PublicAccessBlockConfiguration={"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
"#;

fn seeded() -> World {
    let w = World::with_moto();
    let p = w.write("estate.yaml", ESTATE).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    w.python(FOREIGN);
    w
}

fn import(w: &World, args: &[&str]) -> Run {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    w.cli(&all)
}

#[test]
fn an_imported_estate_plans_with_no_change() {
    let w = seeded();
    // A repository layout: the schema in schema/, the policy in policies/;
    // the $schema comment points from the one to the other.
    std::fs::create_dir_all(w.dir.path().join("schema")).expect("schema dir");
    std::fs::create_dir_all(w.dir.path().join("policies")).expect("policies dir");
    std::fs::write(w.dir.path().join("schema/suoops-policy.schema.json"), "{}").expect("schema");
    let path = w.dir.path().join("policies/imported.yaml");
    let r = import(
        &w,
        &[
            "--all-buckets",
            "--iam-role",
            "imp-writer",
            "--iam-role",
            "imp-replication",
            "--output",
            &path.to_string_lossy(),
        ],
    );
    r.code(0);
    assert!(r.stderr.contains("imported 4 bucket(s), 2 role(s) into"), "{}", r.stderr);
    let text = std::fs::read_to_string(&path).expect("imported policy");
    insta::assert_snapshot!("imported-estate", text);
    let p = path.to_string_lossy().into_owned();
    w.cli(&["validate", "-f", &p]).code(0);
    let plan = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    plan.code(0);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    // The foreign rule and statement are kept (shared ownership), not dropped.
    assert!(plan.stdout.contains("s3.imp-legacy.lifecycle.old-reports"), "{}", plan.stdout);
    let flat: String = text.lines().map(|l| l.trim_start().trim_start_matches("# ")).collect::<Vec<_>>().join(" ");
    assert!(flat.contains("`old-reports` has what the policy format cannot express (expiration on a date)"), "{text}");
    assert!(flat.contains("(AuditorsRead); they are kept"), "{text}");
    // Every setting kind was read: the plan names each sub-resource.
    for addr in [
        "s3.imp-backups.require_tls",
        "s3.imp-backups.lifecycle.tiering",
        "s3.imp-backups.replication.dr-copy",
        "iam.role.imp-writer.inline.write-backups",
        "iam.role.imp-writer.attachment.imp-read",
    ] {
        let r = w.cli(&["plan", "-f", &p, "--target", addr, "--detailed-exitcode"]);
        r.code(0);
    }
}

#[test]
fn drift_after_import_shows_in_the_plan() {
    let w = seeded();
    let path = w.dir.path().join("imported.yaml");
    let p = path.to_string_lossy().into_owned();
    import(&w, &["--s3-bucket", "imp-backups-dr", "-o", &p]).code(0);
    crate::harness::suspend_versioning(&w, "imp-backups-dr");
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(crate::harness::squash(&r.stdout).contains("~ versioning \"suspended\" → \"enabled\""), "{}", r.stdout);
}

#[test]
fn merge_adds_resources_and_keeps_the_file_as_written() {
    let w = seeded();
    let original = "# yaml-language-server: $schema=../schema/suoops-policy.schema.json\n# Our estate. Hand-written; keep this comment.\nversion: 1\naws:\n  region: us-east-1\n\ns3:\n  buckets:\n    imp-backups-dr:          # the DR copy\n      region: eu-west-1\n      versioning: enabled\n\n# roles come later\n";
    let path = w.write("policy.yaml", original);
    let p = path.to_string_lossy().into_owned();
    let r = import(
        &w,
        &["--merge", &p, "--s3-bucket", "imp-backups-dr", "--s3-bucket", "imp-legacy", "--iam-role", "imp-writer"],
    );
    r.code(0);
    assert!(r.stderr.contains("already in"), "{}", r.stderr);
    assert!(r.stderr.contains("kept as written: s3.imp-backups-dr"), "{}", r.stderr);
    let merged = std::fs::read_to_string(&path).expect("merged");
    let (head, _) = original.split_at(original.find("\n# roles").expect("marker"));
    assert!(merged.starts_with(head), "the existing text is untouched:\n{merged}");
    assert!(merged.contains("    imp-legacy:\n"), "{merged}");
    assert!(merged.contains("\niam:\n  roles:\n    imp-writer:\n"), "{merged}");
    assert_eq!(merged.matches("imp-backups-dr:").count(), 1, "{merged}");
    assert!(merged.contains("# roles come later"), "{merged}");
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    // Again: nothing to add, and the file is left alone.
    let r = import(&w, &["--merge", &p, "--s3-bucket", "imp-legacy"]);
    r.code(0);
    assert!(r.stderr.contains("nothing to add"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&path).expect("again"), merged);
}

#[test]
fn merge_refuses_an_invalid_policy_and_writes_nothing() {
    let w = World::with_moto();
    let bad = "version: 1\ns3:\n  buckets:\n    b:\n      versionning: enabled\n";
    let path = w.write("bad.yaml", bad);
    let r = import(&w, &["--merge", &path.to_string_lossy(), "--all-buckets"]);
    r.code(1);
    assert!(r.stderr.contains("bad.yaml:5:7: error[unknown-field]"), "{}", r.stderr);
    assert!(r.stderr.contains("must be valid before import can merge into it"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&path).expect("bad"), bad);
    // A layout the text merge cannot follow (the whole file in flow style)
    // is caught by validating the result: the file stays as it was.
    w.python("import sys, boto3\nboto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t').create_bucket(Bucket='flow-b')\n");
    let flow = "{version: 1, s3: {buckets: {}}}\n";
    let path = w.write("flow.yaml", flow);
    let r = import(&w, &["--merge", &path.to_string_lossy(), "--s3-bucket", "flow-b"]);
    r.code(1);
    assert!(r.stderr.contains("the merged policy does not validate"), "{}", r.stderr);
    assert!(r.stderr.contains("flow.yaml (merged):"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&path).expect("flow"), flow);
}

crate::both!(import_errors_say_what_is_wrong, super::import_errors_say_what_is_wrong_on);
fn import_errors_say_what_is_wrong_on(server: Server) {
    let w = World::on(server);
    let r = import(&w, &[]);
    r.code(1);
    assert!(r.stderr.contains("nothing to import: name --s3-bucket"), "{}", r.stderr);
    let r = import(&w, &["--s3-bucket", "no-such-bucket"]);
    r.code(1);
    assert!(r.stderr.contains("bucket `no-such-bucket` does not exist; nothing to import"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let r = import(&w, &["--iam-role", "no-such-role"]);
    r.code(1);
    assert!(r.stderr.contains("IAM role `no-such-role` does not exist"), "{}", r.stderr);
    let r = w.cli_env(&["import", "--redis", "cache=T_NOT_SET"], &[], &["T_NOT_SET"]);
    r.code(1);
    assert!(
        r.stderr.contains("environment variable `T_NOT_SET` (the URL of Redis `cache`) is not set"),
        "{}",
        r.stderr
    );
    let r = import(&w, &["--redis", "cache"]);
    r.code(2);
    assert!(r.stderr.contains("`cache` is not NAME=ENV_VAR"), "{}", r.stderr);
}

#[test]
fn redis_and_postgres_round_trip_with_urls_from_the_environment() {
    let w = World::new();
    let password = "Imp0rt-s3cret-pw";
    let cache = RedisServer::start(w.dir.path(), &format!("requirepass {password}"), true);
    let queue = RedisServer::start(w.dir.path(), "", true);
    queue.cli(None, &["CONFIG", "SET", "appendonly", "yes"]);
    queue.cli(None, &["CONFIG", "SET", "appendfsync", "always"]);
    queue.cli(None, &["CONFIG", "SET", "save", "21600 1 900 100"]);
    let defaults = RedisServer::start(w.dir.path(), "save 3600 1 300 100 60 10000", true);
    let pg = Postgres::start();
    let tuned = Postgres::start();
    tuned.sql("ALTER SYSTEM SET archive_timeout = '5min'");
    tuned.sql("ALTER SYSTEM SET archive_command = 'cp %p /archive/${HOST}/%f'");
    tuned.sql("ALTER SYSTEM SET archive_mode = 'on'");
    tuned.restart();
    let (cache_url, queue_url, defaults_url) = (cache.url(Some(password)), queue.url(None), defaults.url(None));
    let (pg_url, tuned_url) = (pg.url(Some(password)), tuned.url(None));
    let env = [
        ("T_CACHE", cache_url.as_str()),
        ("T_QUEUE", queue_url.as_str()),
        ("T_DEFAULTS", defaults_url.as_str()),
        ("T_PG", pg_url.as_str()),
        ("T_TUNED", tuned_url.as_str()),
    ];
    let path = w.dir.path().join("stores.yaml");
    let p = path.to_string_lossy().into_owned();
    let args = [
        "import",
        "--redis",
        "cache=T_CACHE",
        "--redis",
        "queue=T_QUEUE",
        "--redis",
        "defaults=T_DEFAULTS",
        "--postgres",
        "primary=T_PG",
        "--postgres",
        "tuned=T_TUNED",
        "-o",
        &p,
    ];
    let r = w.cli_env(&args, &env, &["AWS_ENDPOINT_URL"]);
    r.code(0);
    let text = std::fs::read_to_string(&path).expect("imported");
    // Outside a repository with schema/: no $schema comment, and a note
    // saying how to add one (it would point nowhere).
    assert!(!text.contains("$schema"), "{text}");
    assert!(r.stderr.contains("so the policy has no $schema comment"), "{}", r.stderr);
    insta::assert_snapshot!("imported-stores", text);
    for secret in [password, &cache_url, &pg_url] {
        assert!(!text.contains(secret) && !r.stdout.contains(secret) && !r.stderr.contains(secret), "secret leaked");
    }
    assert!(text.contains("  cache:\n    url: ${T_CACHE}\n    persistence: none"), "{text}");
    assert!(text.contains("aof: {fsync: always}"), "{text}");
    assert!(text.contains("rdb: [{after: 6h, changes: 1}, {after: 15min, changes: 100}]"), "{text}");
    assert!(
        text.contains("{after: 1h, changes: 1}, {after: 5min, changes: 100}, {after: 1min, changes: 10000}]"),
        "{text}"
    );
    assert!(text.contains("archive_timeout: 5min"), "{text}");
    // The archive command may hold a secret: written as a variable, and
    // import says which one to set.
    assert!(text.contains("archive_command: ${TUNED_ARCHIVE_COMMAND}"), "{text}");
    assert!(!text.contains("/archive/"), "the live command is not written: {text}");
    assert!(r.stderr.contains("set TUNED_ARCHIVE_COMMAND to the archive_command of postgres.tuned"), "{}", r.stderr);
    assert!(text.contains("# archive_timeout: 0 (off, the PostgreSQL default)"), "{text}");
    // Set as the user would: the value is taken as is (its `${HOST}` is
    // the command's own, not a policy variable).
    let mut env = env.to_vec();
    env.push(("TUNED_ARCHIVE_COMMAND", "cp %p /archive/${HOST}/%f"));
    w.cli_env(&["validate", "-f", &p], &env, &[]).code(0);
    let plan = w.cli_env(&["plan", "-f", &p, "--detailed-exitcode"], &env, &["AWS_ENDPOINT_URL"]);
    plan.code(0);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
}
