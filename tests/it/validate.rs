//! `validate` on good and bad policies; every diagnostic is snapshotted with
//! its file:line:col, and every diagnostic code is produced by some fixture.

use std::collections::BTreeSet;

use crate::harness::{root, World};

fn yaml_files(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_and_good_policies_validate() {
    let w = World::new();
    let mut n = 0;
    for dir in ["policies", "tests/fixtures/good"] {
        for f in yaml_files(dir) {
            let path = format!("{dir}/{f}");
            let r = w.cli(&["validate", "-f", &path]);
            r.code(0);
            assert!(r.stdout.contains(": valid ("), "{path}: {}", r.stdout);
            assert!(!r.stderr.contains("warning["), "{path} should load without warnings: {}", r.stderr);
            n += 1;
        }
    }
    assert!(n >= 2, "expected shipped and good policies, found {n}");
}

#[test]
fn bad_policies_give_located_diagnostics() {
    let w = World::new();
    let files = yaml_files("tests/fixtures/bad");
    assert!(files.len() >= 20);
    let mut codes = BTreeSet::new();
    for f in files {
        let path = format!("tests/fixtures/bad/{f}");
        let r = w.cli(&["validate", "-f", &path]);
        r.code(1);
        assert!(r.stdout.is_empty(), "{path}: diagnostics go to stderr");
        assert!(!r.stderr.contains("panicked"), "{path} panicked: {}", r.stderr);
        assert!(!r.stderr.contains("hunter2"), "{path}: a password in the file was shown: {}", r.stderr);
        // Every diagnostic names the file with line and column.
        let heads: Vec<&str> = r.stderr.lines().filter(|l| l.contains(": error[")).collect();
        assert!(!heads.is_empty(), "{path}: no diagnostic:\n{}", r.stderr);
        for h in &heads {
            let loc = h.split(": error[").next().unwrap_or("");
            let parts: Vec<&str> = loc.rsplitn(3, ':').collect();
            assert!(
                parts.len() == 3
                    && parts[0].parse::<u32>().is_ok()
                    && parts[1].parse::<u32>().is_ok()
                    && parts[2] == path,
                "{path}: head without file:line:col: {h}"
            );
            codes.insert(h.split("error[").nth(1).and_then(|s| s.split(']').next()).unwrap_or("").to_string());
        }
        let name = f.trim_end_matches(".yaml").to_string();
        insta::assert_snapshot!(name, r.stderr);
    }
    // The JSON form carries the same facts for machines.
    let r = w.cli(&["validate", "-f", "tests/fixtures/bad/many-errors-at-once.yaml", "--format", "json"]);
    r.code(1);
    let j = r.json();
    assert_eq!(j["valid"], false);
    assert_eq!(j["diagnostics"].as_array().map(Vec::len), Some(5), "{j:#}");
    assert_eq!(j["diagnostics"][0]["line"], 3);

    let r = w.cli(&["validate", "-f", "tests/fixtures/bad/does-not-exist.yaml"]);
    r.code(1);
    assert!(r.stderr.contains("error[file-unreadable]"), "{}", r.stderr);
    codes.insert("file-unreadable".into());

    // Warnings: the policy loads (exit 0), each warning located and
    // snapshotted like an error.
    for f in yaml_files("tests/fixtures/warn") {
        let path = format!("tests/fixtures/warn/{f}");
        let r = w.cli(&["validate", "-f", &path]);
        r.code(0);
        assert!(r.stdout.contains(": valid ("), "{path}: {}", r.stdout);
        let heads: Vec<&str> = r.stderr.lines().filter(|l| l.contains(": warning[")).collect();
        assert!(!heads.is_empty(), "{path}: no warning:\n{}", r.stderr);
        assert!(!r.stderr.contains(": error["), "{path}: {}", r.stderr);
        for h in &heads {
            assert!(h.starts_with(&format!("{path}:")), "{path}: head without file:line:col: {h}");
            codes.insert(h.split("warning[").nth(1).and_then(|s| s.split(']').next()).unwrap_or("").to_string());
        }
        insta::assert_snapshot!(format!("warn-{}", f.trim_end_matches(".yaml")), r.stderr);
        // The policy loads for every command, which shows the warnings too.
        let j = w.cli(&["validate", "-f", &path, "--format", "json"]);
        j.code(0);
        assert_eq!(j.json()["warnings"].as_array().map(Vec::len), Some(heads.len()), "{}", j.stdout);
    }

    let all: BTreeSet<String> = suoops_policy::policy::diag::Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(codes, all, "every diagnostic code has a fixture that produces it");
}

#[test]
fn diagnostic_codes_are_stable() {
    let names: Vec<&str> = suoops_policy::policy::diag::Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "access-locks-out",
            "backup-ref-invalid",
            "bucket-key-not-allowed",
            "bucket-name-invalid",
            "confidential-unprotected",
            "destination-invalid",
            "document-too-large",
            "duration-invalid",
            "duplicate-key",
            "duplicate-priority",
            "duplicate-rule-id",
            "duplicate-sid",
            "env-var-invalid",
            "env-var-missing",
            "expiration-before-transition",
            "file-unreadable",
            "iam-document-invalid",
            "iam-name-invalid",
            "invalid-type",
            "invalid-value",
            "kms-alias-in-resource",
            "kms-key-not-allowed",
            "kms-key-region",
            "kms-key-required",
            "lock-outlasts-lifecycle",
            "missing-field",
            "noncurrent-versions-kept",
            "not-utf8",
            "object-action-on-bucket",
            "object-lock-needs-versioning",
            "policy-ref-invalid",
            "region-invalid",
            "replica-kms-key-required",
            "replication-needs-versioning",
            "repository-unsafe",
            "replication-role-unused",
            "role-invalid",
            "rule-does-nothing",
            "rule-id-invalid",
            "schedule-invalid",
            "schedule-outruns-evidence",
            "too-many-rules",
            "transition-order",
            "transition-too-early",
            "unknown-field",
            "unsupported-version",
            "url-invalid",
            "value-out-of-range",
            "writer-in-other-account",
            "yaml-syntax",
        ]
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
}

#[test]
fn env_vars_are_resolved_and_missing_ones_named_with_their_line() {
    let w = World::new();
    let p = w.write("p.yaml", "version: 1\naws:\n  region: ${SUOOPS_T_REGION}\ns3:\n  buckets:\n    backups-${SUOOPS_T_ENV}:\n      versioning: enabled\n");
    let p = p.to_string_lossy().into_owned();
    let r = w.cli_env(&["validate", "-f", &p], &[("SUOOPS_T_REGION", "eu-west-1"), ("SUOOPS_T_ENV", "prod")], &[]);
    r.code(0);
    let r = w.cli_env(&["validate", "-f", &p], &[("SUOOPS_T_REGION", "eu-west-1")], &["SUOOPS_T_ENV"]);
    r.code(1);
    assert!(
        r.stderr.contains(&format!("{p}:6:5: error[env-var-missing]: environment variable `SUOOPS_T_ENV` is not set")),
        "{}",
        r.stderr
    );
    // A value from the environment is still checked.
    let r = w.cli_env(&["validate", "-f", &p], &[("SUOOPS_T_REGION", "moon"), ("SUOOPS_T_ENV", "prod")], &[]);
    r.code(1);
    assert!(r.stderr.contains("error[region-invalid]: `moon` is not an AWS region name"), "{}", r.stderr);
}

/// pg_restore's parallel jobs for a drill: 1 to 64, located when not.
#[test]
fn drill_jobs_out_of_range_are_located() {
    let w = World::new();
    let body = |jobs: &str| {
        format!(
            "version: 1\ns3:\n  buckets:\n    dumps-t:\n      versioning: enabled\n      backups:\n        - {{name: dump, prefix: pg/, max_age: 26h}}\npostgres:\n  primary:\n    url: postgres://u@127.0.0.1:5432/app\n    restore_drill:\n      from: s3.dumps-t.backups.dump\n      jobs: {jobs}\n      checks: [{{name: rows, sql: select 1, min: 1}}]\n"
        )
    };
    for bad in ["0", "65"] {
        let p = w.write("p.yaml", &body(bad)).to_string_lossy().into_owned();
        let r = w.cli(&["validate", "-f", &p]);
        r.code(1);
        assert!(
            r.stderr.contains(&format!("{p}:13:13: error[value-out-of-range]: jobs {bad} is not between 1 and 64")),
            "{}",
            r.stderr
        );
    }
    let p = w.write("p.yaml", &body("4")).to_string_lossy().into_owned();
    w.cli(&["validate", "-f", &p]).code(0);
}

/// What a new user types wrong gets a message that says what to do.
#[test]
fn job_commands_say_what_to_type_instead() {
    let w = World::new();
    let p = "policies/suoops.yaml";
    let r = w.cli(&["backup", "-f", p, "postgres.primary"]);
    r.code(1);
    assert!(
        r.stderr
            .contains("`backup` takes a subcommand: suoops-policy backup run -f policies/suoops.yaml postgres.primary"),
        "{}",
        r.stderr
    );
    let r = w.cli(&["backup", "run", "-f", p, "postgres.primry"]);
    r.code(1);
    assert!(r.stderr.contains("did you mean `postgres.primary`?"), "{}", r.stderr);
    assert!(
        r.stderr.contains("addresses with a `backup:`: postgres.primary, postgres.primary.pitr, redis.queues"),
        "{}",
        r.stderr
    );
    let r = w.cli(&["backup", "run", "-f", p, "redis.cache"]);
    r.code(1);
    assert!(r.stderr.contains("redis.cache declares no `backup:` in policies/suoops.yaml"), "{}", r.stderr);
    assert!(!r.stderr.contains("failed"), "a configuration error, not a failed backup: {}", r.stderr);
    let r = w.cli(&["restore-drill", "-f", p, "redis.cache"]);
    r.code(1);
    assert!(r.stderr.contains("redis.cache declares no `restore_drill:`"), "{}", r.stderr);
    let r = w.cli(&["restore-drill", "-f", p, "postgres.primay"]);
    assert!(r.stderr.contains("did you mean `postgres.primary`?"), "{}", r.stderr);
    let help = crate::harness::squash(&w.cli(&["--help"]).stdout.replace('\n', " "));
    assert!(help.contains("S3, IAM, KMS and STS"), "{help}");
    // The systems and each job's address come from the registry.
    assert!(help.contains("(IAM, KMS, S3, Redis, PostgreSQL with pg_dump and pgBackRest)"), "{help}");
    assert!(
        help.contains("`backup run ADDR` takes one backup now (redis.NAME, postgres.NAME, postgres.NAME.pitr)"),
        "{help}"
    );
    let help = crate::harness::squash(&w.cli(&["restore-drill", "--help"]).stdout.replace('\n', " "));
    assert!(help.contains("postgres.NAME.pitr: a point-in-time restore from the pgBackRest repository"), "{help}");
}

/// A policy of 200 buckets with the same warning: plan and audit show the
/// code once with its count and first places (validate shows every one;
/// -q none), so CI logs stay readable.
#[test]
fn many_warnings_of_one_kind_are_summarised_outside_validate() {
    let w = World::new();
    let mut text = String::from("version: 1\naws: {region: us-east-1}\ns3:\n  buckets:\n");
    for i in 0..200 {
        text.push_str(&format!(
            "    warn-{i:03}:\n      versioning: enabled\n      lifecycle:\n        rules:\n          - {{id: dumps, prefix: postgres/, expire_after_days: 14}}\n"
        ));
    }
    let p = w.write("many.yaml", &text).to_string_lossy().into_owned();
    let v = w.cli(&["validate", "-f", &p]);
    v.code(0);
    assert_eq!(v.stderr.matches("warning[noncurrent-versions-kept]").count(), 200, "validate shows each");
    // plan fails to connect (no server) after loading: the warnings are
    // said before that.
    let r = w.cli(&["--endpoint-url", "http://127.0.0.1:1", "plan", "-f", &p]);
    assert_eq!(r.stderr.matches("warning[noncurrent-versions-kept]").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("… 199 more like it: "), "{}", r.stderr);
    assert!(r.stderr.contains(" and 196 more"), "{}", r.stderr);
    assert!(r.stderr.contains("200 warnings (`suoops-policy validate -f "), "{}", r.stderr);
    assert!(r.stderr.lines().count() < 12, "a few lines, not thousands: {}", r.stderr);
    let q = w.cli(&["-q", "--endpoint-url", "http://127.0.0.1:1", "plan", "-f", &p]);
    assert!(!q.stderr.contains("warning["), "{}", q.stderr);
}
