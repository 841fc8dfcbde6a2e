//! The strategy's own jobs against a real PostgreSQL and moto: `backup run`
//! streams pg_dump into S3 with its SHA-256 sidecar and leaves no
//! multipart upload behind, also when pg_dump dies mid-stream;
//! `restore-drill` restores the newest dump into a throw-away cluster,
//! runs the checks, records the drill where audit reads it, and refuses a
//! dump that does not match its sidecar before restoring anything.

use serde_json::Value;

use crate::harness::{control, unique, FaultProxy, Faults, Postgres, World};

fn policy(bucket: &str, extra: &str) -> String {
    format!(
        r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {bucket}:
      versioning: enabled
      encryption: {{algorithm: AES256}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 26h, sha256_sidecar: true}}
postgres:
  primary:
    url: ${{PG_URL}}
    backup:
      to: s3.{bucket}.backups.dump
      schedule: "0 2 * * *"
{extra}"#
    )
}

/// Objects under `prefix`, the open multipart uploads, and the body of
/// `key` (sha256 hex) when given.
fn bucket_state(w: &World, bucket: &str, key: Option<&str>) -> Value {
    let out = w.python(&format!(
        r#"
import sys, json, hashlib, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
objs = {{o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket="{bucket}").get("Contents", [])}}
ups = [u["Key"] for u in s3.list_multipart_uploads(Bucket="{bucket}").get("Uploads", [])]
out = {{"objects": objs, "uploads": ups}}
key = "{key}"
if key:
    o = s3.get_object(Bucket="{bucket}", Key=key)
    out["sha256"] = hashlib.sha256(o["Body"].read()).hexdigest()
    out["sse"] = o.get("ServerSideEncryption")
    out["sidecar"] = s3.get_object(Bucket="{bucket}", Key=key + ".sha256")["Body"].read().decode()
print(json.dumps(out))
"#,
        key = key.unwrap_or("")
    ));
    serde_json::from_str(&out).expect("json")
}

/// About `rows` × 2 KB of incompressible rows (`blobs`): several 8 MiB parts.
fn seed_blobs(pg: &Postgres, rows: u32) {
    pg.sql(&format!(
        "CREATE TABLE blobs AS SELECT i, decode(string_agg(md5(i::text || j::text), ''), 'hex') AS b \
         FROM generate_series(1, {rows}) i, generate_series(1, 128) j GROUP BY i;"
    ));
}

fn seed(pg: &Postgres) {
    pg.sql(
        "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL); \
         INSERT INTO users (email) SELECT 'user' || i || '@example.com' FROM generate_series(1, 250) i;",
    );
}

#[test]
fn backup_run_streams_the_dump_with_its_sidecar_and_leaves_nothing_open() {
    let w = World::with_moto();
    let pg = Postgres::start();
    seed(&pg);
    let b = unique("dumps");
    let p = w.write("p.yaml", &policy(&b, "")).to_string_lossy().into_owned();
    let env = [("PG_URL", pg.url(Some("not-the-password")))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env).code(0);

    let r = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary", "--format", "json"], &env);
    r.code(0);
    assert!(!r.stdout.contains("not-the-password") && !r.stderr.contains("not-the-password"));
    let done = r.json();
    let key = done["key"].as_str().expect("key");
    assert!(key.starts_with("postgres/") && key.ends_with("Z.dump"), "{done}");
    let s = bucket_state(&w, &b, Some(key));
    assert_eq!(s["objects"][key], done["bytes"], "{s}");
    assert_eq!(s["sha256"], done["sha256"], "the object is what was hashed: {s}");
    assert!(s["sidecar"].as_str().unwrap_or("").starts_with(done["sha256"].as_str().unwrap_or("-")), "{s}");
    assert_eq!(s["sse"], "AES256", "{s}");
    assert_eq!(s["uploads"], serde_json::json!([]), "{s}");
    // The evidence check reads what the job wrote.
    let r = w.cli_with(&["audit", "-f", &p, "--format", "json", "--target", &format!("s3.{b}")], &env);
    let j = r.json();
    for id in ["BACKUP-FRESHNESS", "BACKUP-INTEGRITY"] {
        let c = j["controls"].as_array().expect("controls").iter().find(|c| c["id"] == id).expect(id);
        assert_eq!(c["status"], "pass", "{c}");
    }

    // A text result line for schedulers, and gauges for node_exporter.
    let prom = w.dir.path().join("backup.prom").to_string_lossy().into_owned();
    let r = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary", "--metrics", &prom], &env);
    r.code(0);
    assert!(r.stdout.starts_with("backup postgres.primary: s3://"), "{}", r.stdout);
    let m = std::fs::read_to_string(&prom).expect("metrics");
    let labels = format!("instance=\"postgres.primary\",entry=\"s3.{b}.backups.dump\"");
    assert!(m.contains(&format!("suoops_backup_run_success{{{labels}}} 1\n")), "{m}");
    assert!(m.contains(&format!("suoops_backup_run_bytes{{{labels}}} ")), "{m}");
    // What the dead-man rule reads: the success, and the schedule's gap.
    let job = "{kind=\"backup\",address=\"postgres.primary\"}";
    assert!(m.contains(&format!("suoops_job_last_success_timestamp_seconds{job} ")), "{m}");
    assert!(m.contains(&format!("suoops_job_expected_interval_seconds{job} 86400\n")), "{m}");
    assert!(m.ends_with("# EOF\n"), "{m}");
}

#[test]
fn a_dump_of_several_parts_is_stored_whole_and_verified() {
    let w = World::with_moto();
    let pg = Postgres::start();
    // Some 20 MB: three parts.
    seed_blobs(&pg, 10_000);
    let b = unique("dumps");
    let p = w.write("p.yaml", &policy(&b, "")).to_string_lossy().into_owned();
    let url = pg.url(None);
    let env = [("PG_URL", url.as_str())];
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env).code(0);
    let r = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary", "--format", "json"], &env);
    r.code(0);
    let done = r.json();
    assert!(done["parts"].as_u64().unwrap_or(0) >= 3, "{done}");
    let s = bucket_state(&w, &b, done["key"].as_str());
    assert_eq!(s["sha256"], done["sha256"], "{s}");
    assert_eq!(s["objects"][done["key"].as_str().unwrap_or("")], done["bytes"], "{s}");
    assert_eq!(s["uploads"], serde_json::json!([]), "{s}");

    // The audit tells, without downloading, that the sidecar describes
    // this multipart object: moto reports its composite checksum bare…
    let integrity = |extra: &[&str]| {
        let target = format!("s3.{b}");
        let mut args = extra.to_vec();
        args.extend(["audit", "-f", p.as_str(), "--format", "json", "--target", target.as_str()]);
        let j = w.cli_with(&args, &env).json();
        j["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .find(|c| c["id"] == "BACKUP-INTEGRITY")
            .expect("BACKUP-INTEGRITY")
            .clone()
    };
    let c = integrity(&[]);
    assert_eq!(c["status"], "pass", "moto's form: {c}");
    // …and S3 with its "-N", as the proxy plays it, for a dump written and
    // audited through it.
    let proxy = FaultProxy::with(w.moto().port, Faults::composite_checksums(), None);
    let url = proxy.url();
    let r =
        w.cli_with(&["--endpoint-url", &url, "backup", "run", "-f", &p, "postgres.primary", "--format", "json"], &env);
    r.code(0);
    let key = r.json()["key"].as_str().expect("key").to_string();
    let c = integrity(&["--endpoint-url", &url]);
    assert_eq!(c["status"], "pass", "S3's form: {c}");
    // A sidecar whose text was changed, what the upload recorded kept.
    let rewrite = |hex: &str, keep_metadata: bool| {
        w.python(&format!(
            r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
side = "{key}.sha256"
meta = s3.head_object(Bucket="{b}", Key=side)["Metadata"] if {keep} else {{}}
s3.put_object(Bucket="{b}", Key=side, Body=b"{hex}  dump\n", Metadata=meta)
print(sorted(meta))
"#,
            keep = if keep_metadata { "True" } else { "False" }
        ))
    };
    let wrong = "0".repeat(64);
    let kept = rewrite(&wrong, true);
    assert!(kept.contains("suoops-composite-sha256"), "{kept}");
    for extra in [vec![], vec!["--endpoint-url", url.as_str()]] {
        let c = integrity(&extra);
        assert_eq!(c["status"], "fail", "{extra:?}: {c}");
        assert!(c["detail"].as_str().unwrap_or("").contains("the sidecar was changed"), "{c}");
    }
    // A sidecar another tool wrote (no record of the parts): S3's
    // composite cannot be compared with it, said as unknown, never a pass.
    rewrite(&wrong, false);
    let c = integrity(&["--endpoint-url", &url]);
    assert_eq!(c["status"], "unknown", "{c}");
    assert!(c["detail"].as_str().unwrap_or("").contains("not verifiable without downloading"), "{c}");
}

#[test]
fn a_pg_dump_killed_mid_stream_leaves_no_object_and_no_open_upload() {
    let w = World::with_moto();
    let pg = Postgres::start();
    // Some 40 MB: the upload is under way long enough to be cut.
    seed_blobs(&pg, 20_000);
    let b = unique("dumps");
    let p = w.write("p.yaml", &policy(&b, "")).to_string_lossy().into_owned();
    let url = pg.url(None);
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &[("PG_URL", &url)]).code(0);
    let prom = w.dir.path().join("killed.prom");
    let prom_arg = prom.to_string_lossy().into_owned();
    // The job says its failure to a webhook too (one post, naming pg_dump).
    let rx = crate::notify::Receiver::start(vec![]);
    let hook = rx.url();
    let child = w.spawn_with(
        &["backup", "run", "-f", &p, "postgres.primary", "--metrics", &prom_arg, "--notify", "env:T_HOOK"],
        &[("PG_URL", &url), ("T_HOOK", &hook)],
    );
    // Once a multipart upload is open, end pg_dump's session.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(std::time::Instant::now() < deadline, "no multipart upload started");
        if bucket_state(&w, &b, None)["uploads"].as_array().is_some_and(|u| !u.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump';");
    let out = child.wait_with_output().expect("backup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed: pg_dump exited with 1"), "{stderr}");
    assert!(stderr.contains("nothing was stored"), "{stderr}");
    let m = std::fs::read_to_string(&prom).expect("metrics written on failure too");
    assert!(m.contains("suoops_backup_run_success{instance=\"postgres.primary\""), "{m}");
    assert!(m.contains("} 0\n") && !m.contains("suoops_backup_run_bytes"), "{m}");
    let s = bucket_state(&w, &b, None);
    assert_eq!(s["uploads"], serde_json::json!([]), "the upload was aborted: {s}");
    assert_eq!(s["objects"], serde_json::json!({}), "{s}");
    let posts = rx.posts();
    assert_eq!(posts.len(), 1, "one post per run: {posts:?}");
    assert_eq!(posts[0]["text"], "suoops-policy backup run postgres.primary: FAILED", "{}", posts[0]);
    let text = posts[0].to_string();
    assert!(text.contains("pg_dump exited with 1") && text.contains("nothing was stored"), "{text}");
    assert!(!stderr.contains("SECRETTOKEN"), "{stderr}");
}

/// Every job run says its outcome to --notify, success as well as failure;
/// an unreachable webhook is one stderr line and the exit code stays the
/// job's.
#[test]
fn jobs_post_their_outcome_and_a_dead_webhook_never_changes_the_exit_code() {
    let w = World::with_moto();
    let pg = Postgres::start();
    seed(&pg);
    let b = unique("dumps");
    let p = w.write("p.yaml", &policy(&b, &DRILL.replace("BUCKET", &b))).to_string_lossy().into_owned();
    let url = pg.url(None);
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &[("PG_URL", &url)]).code(0);
    let rx = crate::notify::Receiver::start(vec![]);
    let hook = rx.url();
    let dead = format!("http://127.0.0.1:{}/hooks/SECRETTOKEN", crate::harness::free_port());
    let env = [("PG_URL", url.as_str()), ("T_HOOK", hook.as_str()), ("T_DEAD", dead.as_str())];
    let r = w.cli_with(
        &["backup", "run", "-f", &p, "postgres.primary", "--notify", "env:T_HOOK", "--notify-format", "json"],
        &env,
    );
    r.code(0);
    let posts = rx.posts();
    assert_eq!(posts.len(), 1, "{posts:?}\n{}", r.stderr);
    let m = &posts[0];
    assert_eq!(m["source"], "suoops-policy backup run");
    assert_eq!(m["address"], "postgres.primary");
    assert_eq!(m["ok"], true);
    assert!(
        m["object"].as_str().is_some_and(|o| o.starts_with(&format!("s3://{b}/postgres/")) && o.ends_with(".dump")),
        "{m}"
    );
    assert!(m["bytes"].as_u64().is_some_and(|n| n > 0) && m["seconds"].is_number(), "{m}");
    assert!(m["reason"].is_null(), "{m}");

    // The drill posts its outcome too (Slack form by default).
    let (code, _, stderr, _) = drill(&w, &p, &env, &["--notify", "env:T_HOOK"]);
    assert_eq!(code, 0, "{stderr}");
    let posts = rx.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[1]["text"], "suoops-policy restore-drill postgres.primary: succeeded", "{}", posts[1]);

    // A webhook nobody answers: one line, the job's exit code unchanged.
    let r = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary", "--notify", "env:T_DEAD"], &env);
    r.code(0);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("notify")).collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(lines[0].starts_with("error: notify: http://127.0.0.1:"), "{}", r.stderr);
    assert!(!r.stderr.contains("SECRETTOKEN") && !r.stdout.contains("SECRETTOKEN"), "{}", r.stderr);
}

const DRILL: &str = r#"    restore_drill:
      from: s3.BUCKET.backups.dump
      jobs: 2
      migrate: psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c 'ALTER TABLE users ADD COLUMN migrated boolean DEFAULT true'
      checks:
        - {name: users present, sql: "select count(*) from users", min: 250, max: 250}
        - {name: migrated, sql: "select count(*) from users where migrated", min: 250}
      rto: 10m
      schedule: "0 4 * * 0"
"#;

/// Run restore-drill in the background (to know its pid), and return its
/// exit code, stdout and stderr.
fn drill(w: &World, p: &str, env: &[(&str, &str)], extra: &[&str]) -> (i32, String, String, u32) {
    let mut args = vec!["restore-drill", "-f", p, "postgres.primary", "--operator", "ci-test"];
    args.extend_from_slice(extra);
    let child = w.spawn_with(&args, env);
    let pid = child.id();
    let out = child.wait_with_output().expect("restore-drill");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
    )
}

/// Nothing the drill `pid` made is left: no scratch directory (its
/// cluster's data and the downloaded dump).
fn nothing_left(pid: u32) {
    let left: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("suoops-drill-{pid}-")))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// moto, a seeded PostgreSQL and an applied policy whose primary has a
/// backup and a drill: the world, the server, the bucket, the policy file
/// and the server's URL (the policy's `PG_URL`).
fn drilled_estate() -> (World, Postgres, String, String, String) {
    let w = World::with_moto();
    let pg = Postgres::start();
    seed(&pg);
    let b = unique("dumps");
    let p = w.write("p.yaml", &policy(&b, &DRILL.replace("BUCKET", &b))).to_string_lossy().into_owned();
    let url = pg.url(None);
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &[("PG_URL", url.as_str())]).code(0);
    (w, pg, b, p, url)
}

#[test]
fn restore_drill_restores_the_newest_dump_checks_it_and_refuses_a_tampered_one() {
    let (w, pg, b, p, url) = drilled_estate();
    let env = [("PG_URL", url.as_str())];
    // No drill yet: RESTORE-DRILL fails and says where it looked.
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    let c = control(&j, "RESTORE-DRILL", "postgres.primary");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["address"], "postgres.primary", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("no drill record under s3://{b}/drills/postgres.primary/")),
        "{c}"
    );

    let done = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary", "--format", "json"], &env);
    done.code(0);
    let done = done.json();
    let log = w.dir.path().join("restore-log.md").to_string_lossy().into_owned();
    let prom = w.dir.path().join("drill.prom").to_string_lossy().into_owned();
    let (code, out, err, pid) = drill(&w, &p, &env, &["--format", "json", "--log", &log, "--metrics", &prom]);
    assert_eq!(code, 0, "{out}\n{err}");
    nothing_left(pid);
    let rec: Value = serde_json::from_str(&out).expect("record");
    assert_eq!(rec["result"], "passed", "{rec}");
    assert_eq!(rec["operator"], "ci-test");
    assert_eq!(rec["dump"]["key"], done["key"], "{rec}");
    assert_eq!(rec["dump"]["sha256"], done["sha256"], "{rec}");
    assert_eq!(rec["checks"][0]["value"], 250.0, "the seeded rows were restored: {rec}");
    assert_eq!(rec["checks"][1]["value"], 250.0, "migrate ran on the restored database: {rec}");
    assert!(rec["phases"]["restore"].as_f64().unwrap_or(0.0) > 0.0, "{rec}");
    let m = std::fs::read_to_string(&prom).expect("metrics");
    assert!(m.contains("suoops_restore_drill_success{instance=\"postgres.primary\"} 1\n"), "{m}");
    assert!(m.contains("suoops_restore_drill_phase_seconds{instance=\"postgres.primary\",phase=\"restore\"} "), "{m}");
    // The job gauges the dead-man rule reads: a weekly schedule's gap.
    let job = "{kind=\"drill\",address=\"postgres.primary\"}";
    let success = |m: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("suoops_job_last_success_timestamp_seconds{job} ")))
            .map(str::to_string)
    };
    let first = success(&m).unwrap_or_else(|| panic!("a last success: {m}"));
    assert!(m.contains(&format!("suoops_job_expected_interval_seconds{job} 604800\n")), "{m}");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.starts_with("# Backup restore test log\n\n| Date | Operator |"), "{text}");
    assert!(text.contains("| ci-test | postgres.primary | success |"), "{text}");
    // The source database is untouched by the drill.
    assert_eq!(pg.sql("select count(*) from information_schema.columns where column_name = 'migrated'"), "0");

    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    assert_eq!(control(&j, "RESTORE-DRILL", "postgres.primary")["status"], "pass", "{j}");
    let o = j["objectives"].as_array().expect("o").iter().find(|o| o["id"] == "RTO-60MIN-READINESS").expect("rto");
    assert_eq!(o["verdict"], "met", "{o}");
    // The drill stops being started: its record aged past the weekly
    // schedule's gap and margin (7 d 14 h) fails RESTORE-DRILL, naming the
    // schedule it missed.
    w.python(&format!(
        r#"
import sys, json, time, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
key = max(o["Key"] for o in s3.list_objects_v2(Bucket="{b}", Prefix="drills/postgres.primary/")["Contents"])
rec = json.loads(s3.get_object(Bucket="{b}", Key=key)["Body"].read())
rec["started"] = int(time.time()) - 8 * 86400
s3.put_object(Bucket="{b}", Key=key, Body=json.dumps(rec).encode())
"#
    ));
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    let c = control(&j, "RESTORE-DRILL", "postgres.primary");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["expected"]["within_seconds"], 7 * 86400 + 14 * 3600, "{c}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("more than every 182h00m")
            && detail.contains("its job runs `0 4 * * 0` (UTC) and missed a run"),
        "{c}"
    );

    // The dump is tampered with in S3: the drill (two pg_restore jobs,
    // which restore from the verified file) fails on the checksum before
    // restoring anything, leaves nothing behind, and audit fails
    // RESTORE-DRILL.
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3.put_object(Bucket="{b}", Key="{key}", Body=b"PGDMP tampered")
"#,
        key = done["key"].as_str().expect("key")
    ));
    let (code, out, err, pid) = drill(&w, &p, &env, &["--metrics", &prom]);
    assert_eq!(code, 2, "{out}\n{err}");
    nothing_left(pid);
    assert!(out.contains("FAILED"), "{out}");
    // The failed drill is written as one, and keeps the success before it.
    let m = std::fs::read_to_string(&prom).expect("metrics");
    assert!(m.contains("suoops_restore_drill_success{instance=\"postgres.primary\"} 0\n"), "{m}");
    assert_eq!(success(&m).as_deref(), Some(first.as_str()), "{m}");
    assert!(out.contains("does not match its sidecar"), "{out}");
    assert!(out.contains("does not match its sidecar") && out.contains(": nothing was restored"), "{out}");
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    let c = control(&j, "RESTORE-DRILL", "postgres.primary");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap_or("").contains("does not match its sidecar"), "{c}");
}

/// With one pg_restore job the drill restores the dump as it arrives. The
/// connection drops half-way through the download: the drill fails in one
/// line naming the download, pg_restore is not left waiting for bytes that
/// never come, and nothing it made is left behind. A tampered dump fails
/// the drill on its checksum whatever pg_restore made of it.
#[test]
fn a_download_cut_mid_dump_fails_the_streamed_drill_and_leaves_nothing() {
    let (w, _pg, b, p, url) = drilled_estate(); // the server lives to the end
    let one = std::fs::read_to_string(&p).expect("policy").replace("jobs: 2", "jobs: 1");
    w.write("p.yaml", &one);
    let env = [("PG_URL", url.as_str())];
    let done = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary", "--format", "json"], &env);
    done.code(0);
    let bytes = done.json()["bytes"].as_u64().expect("bytes");
    assert!(bytes > 3000, "a dump worth cutting: {bytes} bytes");
    let proxy = crate::harness::FaultProxy::with(
        w.moto().port,
        crate::harness::Faults::CutBody { on: ".dump?x-id=GetObject".into(), keep: 2048 },
        None,
    );
    let endpoint = proxy.url();
    let child = w.spawn_with(
        &["--endpoint-url", &endpoint, "restore-drill", "-f", &p, "postgres.primary", "--format", "json"],
        &env,
    );
    let pid = child.id();
    // Nothing waits for the rest of the dump: the drill ends.
    let out = World::wait_within(child, 120, "the drill with its download cut");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    nothing_left(pid);
    let rec: Value = serde_json::from_str(&stdout).expect("record");
    assert_eq!(rec["result"], "failed", "{rec}");
    let reason = rec["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with(&format!("downloading s3://{b}/postgres/")), "{rec}");
    // The whole body, other bytes.
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3.put_object(Bucket="{b}", Key="{key}", Body=b"PGDMP tampered")
"#,
        key = done.json()["key"].as_str().expect("key")
    ));
    let (code, out, err, pid) = drill(&w, &p, &env, &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    nothing_left(pid);
    assert!(out.contains("does not match its sidecar"), "{out}");
    assert!(out.contains("the drill fails; what it restored goes with its throw-away cluster"), "{out}");
}

/// A Redis instance whose queues need durability: its RDB snapshot is
/// fetched over the network (AUTH, the replication protocol; no access to
/// its files), stored with its sidecar, loaded by the drill into a
/// throw-away redis-server whose DBSIZE is checked; a tampered snapshot is
/// refused before it is loaded.
#[test]
fn redis_snapshots_are_backed_up_over_the_network_and_drilled() {
    use crate::harness::RedisServer;
    let w = World::with_moto();
    let password = "queue-secret-9f2";
    let redis = RedisServer::start(w.dir.path(), &format!("requirepass {password}"), true);
    let mut mset = vec!["MSET"];
    let pairs: Vec<String> = (0..300).flat_map(|i| [format!("job:{i}"), format!("payload {i}")]).collect();
    mset.extend(pairs.iter().map(String::as_str));
    redis.cli(Some(password), &mset);
    let b = unique("rdb");
    let p = w.write(
        "p.yaml",
        &format!(
            r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      backups: [{{name: redis-rdb, prefix: redis/, max_age: 7h, sha256_sidecar: true}}]
redis:
  queues:
    url: ${{REDIS_URL}}
    persistence: {{aof: {{fsync: everysec}}}}
    backup: {{to: s3.{b}.backups.redis-rdb}}
    restore_drill:
      from: s3.{b}.backups.redis-rdb
      min_keys: 300
      max_keys: 300
      rto: 5m
"#
        ),
    );
    let p = p.to_string_lossy().into_owned();
    let url = redis.url(Some(password));
    let env = [("REDIS_URL", url.as_str())];
    w.cli_with(&["apply", "-f", &p, "--target", &format!("s3.{b}"), "--auto-approve"], &env).code(0);

    let r = w.cli_with(&["backup", "run", "-f", &p, "redis.queues", "--format", "json"], &env);
    r.code(0);
    assert!(!r.stdout.contains(password) && !r.stderr.contains(password));
    let done = r.json();
    let key = done["key"].as_str().expect("key");
    assert!(key.starts_with("redis/") && key.ends_with(".rdb"), "{done}");
    let s = bucket_state(&w, &b, Some(key));
    assert_eq!(s["sha256"], done["sha256"], "{s}");
    assert_eq!(s["uploads"], serde_json::json!([]), "{s}");

    let (code, out, err, pid) = {
        let child = w.spawn_with(&["restore-drill", "-f", &p, "redis.queues", "--format", "json"], &env);
        let pid = child.id();
        let o = child.wait_with_output().expect("drill");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            pid,
        )
    };
    assert_eq!(code, 0, "{out}\n{err}");
    nothing_left(pid);
    let rec: Value = serde_json::from_str(&out).expect("record");
    assert_eq!(rec["result"], "passed", "{rec}");
    assert_eq!(rec["checks"][0]["value"], 300.0, "the snapshot holds the seeded keys: {rec}");
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    let c = control(&j, "RESTORE-DRILL", "redis.queues");
    assert_eq!(c["status"], "pass", "{c}");

    // A wrong password: one line, no password in it.
    let bad = redis.url(Some("wrong-pass"));
    let r = w.cli_with(&["backup", "run", "-f", &p, "redis.queues"], &[("REDIS_URL", bad.as_str())]);
    r.code(1);
    assert!(r.stderr.contains("AUTH was refused"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-pass"), "{}", r.stderr);

    // Tampered: refused before it is loaded.
    w.python(&format!(
        r#"
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t").put_object(Bucket="{b}", Key="{key}", Body=b"REDIS0011 tampered")
"#
    ));
    let r = w.cli_with(&["restore-drill", "-f", &p, "redis.queues"], &env);
    r.code(2);
    assert!(r.stdout.contains("does not match its sidecar"), "{}", r.stdout);
}

/// Confidential tables out of the dump (`exclude_table_data`, pg_dump's
/// --exclude-table-data): their definitions are in the stored dump, their
/// rows are not; the drill finds each table and checks it came back
/// empty, the row counts in its record; a pattern that matches no table
/// fails the drill.
#[test]
fn confidential_tables_are_left_out_of_the_dump_and_the_drill_checks_them_empty() {
    let w = World::with_moto();
    let pg = Postgres::start();
    seed(&pg);
    pg.sql(
        "CREATE TABLE oauth_tokens (id int, token text); \
         INSERT INTO oauth_tokens SELECT i, 'tok-SECRET-' || i FROM generate_series(1, 3) i; \
         CREATE SCHEMA vault; CREATE TABLE vault.api_keys (k text); INSERT INTO vault.api_keys VALUES ('key-SECRET-a'), ('key-SECRET-b');",
    );
    let b = unique("dumps");
    let with = |patterns: &str| {
        format!(
            "      exclude_table_data: [{patterns}]\n    restore_drill:\n      from: s3.{b}.backups.dump\n      checks:\n        - {{name: users present, sql: \"select count(*) from users\", min: 250}}\n"
        )
    };
    let p = w.write("p.yaml", &policy(&b, &with("oauth_tokens, \"vault.*\""))).to_string_lossy().into_owned();
    let url = pg.url(None);
    let env = [("PG_URL", url.as_str())];
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env).code(0);
    let done = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary", "--format", "json"], &env);
    done.code(0);
    let key = done.json()["key"].as_str().expect("key").to_string();
    // The stored dump, read back with stock pg_restore.
    let shared = tempfile::Builder::new().prefix("suoops-dump-").tempdir_in("/tmp").expect("dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let file = shared.path().join("stored.dump");
    w.python(&format!(
        r#"
import sys, os, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3.download_file("{b}", "{key}", "{f}")
os.chmod("{f}", 0o644)
"#,
        f = file.display()
    ));
    let sql = pg.run("pg_restore", &["-f", "-", &file.display().to_string()]);
    assert!(sql.contains("CREATE TABLE public.oauth_tokens"), "the definition is kept");
    assert!(sql.contains("CREATE TABLE vault.api_keys"), "the definition is kept");
    assert!(sql.contains("user1@example.com"), "other data is there");
    assert!(!sql.contains("SECRET"), "no confidential row in the dump");

    let (code, out, err, _) = drill(&w, &p, &env, &["--format", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let rec: Value = serde_json::from_str(&out).expect("record");
    let checks = rec["checks"].as_array().expect("checks");
    for t in ["public.oauth_tokens", "vault.api_keys"] {
        let c = checks
            .iter()
            .find(|c| c["name"] == format!("{t} has no rows (exclude_table_data)"))
            .unwrap_or_else(|| panic!("{t} checked: {rec}"));
        assert_eq!(c["value"], 0.0, "{c}");
        assert_eq!(c["passed"], true, "{c}");
    }
    assert_eq!(rec["result"], "passed", "{rec}");

    // A pattern that matches no table fails the drill, named.
    let p = w.write("p2.yaml", &policy(&b, &with("oauth_tokens, api_tokenz"))).to_string_lossy().into_owned();
    let (code, out, _, _) = drill(&w, &p, &env, &["--format", "json"]);
    let rec: Value = serde_json::from_str(&out).expect("record");
    assert_eq!(rec["result"], "failed", "{rec}");
    let miss = rec["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "a table matches exclude_table_data `api_tokenz`")
        .cloned()
        .unwrap_or_else(|| panic!("{rec}"));
    assert_eq!(miss["passed"], false);
    assert_ne!(code, 0);
}

/// Client-side encryption with age (`backup.encrypt_to`): the stored dump
/// is an age file that stock `age -d -i KEY` decrypts and stock
/// `pg_restore` restores; the drill decrypts with `decrypt_with`, and a
/// wrong or missing identity fails it before anything is restored; the
/// audit's BACKUP-CLIENT-ENCRYPTED reads the first bytes only, and fails a
/// plaintext dump. The identity's contents appear in no output.
#[test]
fn an_encrypted_dump_decrypts_with_stock_age_and_the_drill_needs_the_identity() {
    let age = crate::harness::need("age", "age");
    let w = World::with_moto();
    let pg = Postgres::start();
    seed(&pg);
    let shared = tempfile::Builder::new().prefix("suoops-age-").tempdir_in("/tmp").expect("dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let key = |name: &str| -> (String, String) {
        let path = shared.path().join(name);
        let public = crate::harness::age_keygen(&path);
        (path.display().to_string(), public)
    };
    let (id, recipient) = key("key.txt");
    let (other, _) = key("other.txt");
    let secret = std::fs::read_to_string(&id).expect("key");
    let secret = secret.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).expect("secret").to_string();
    let b = unique("dumps");
    let extra = format!(
        "      encrypt_to: [{recipient}]\n    restore_drill:\n      from: s3.{b}.backups.dump\n      decrypt_with: ${{AGE_ID}}\n      checks:\n        - {{name: users present, sql: \"select count(*) from users\", min: 250, max: 250}}\n"
    );
    let p = w.write("p.yaml", &policy(&b, &extra)).to_string_lossy().into_owned();
    let url = pg.url(None);
    let env = [("PG_URL", url.as_str()), ("AGE_ID", id.as_str())];
    let mut outputs = String::new();
    let r = w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env);
    r.code(0);
    outputs += &(r.stdout.clone() + &r.stderr);
    let r = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary", "--format", "json"], &env);
    r.code(0);
    outputs += &(r.stdout.clone() + &r.stderr);
    let done = r.json();
    let object = done["key"].as_str().expect("key").to_string();
    assert!(object.ends_with(".dump.age"), "{done}");

    // Stock age, then stock pg_restore.
    let stored = shared.path().join("stored.dump.age");
    w.python(&format!(
        r#"
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t").download_file("{b}", "{object}", "{f}")
"#,
        f = stored.display()
    ));
    let bytes = std::fs::read(&stored).expect("stored");
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "an age file");
    assert!(!bytes.windows(9).any(|x| x == b"@example."), "no plaintext row in the object");
    let plain = shared.path().join("plain.dump");
    let out = std::process::Command::new(&age)
        .args(["-d", "-i", &id, "-o", &plain.display().to_string(), &stored.display().to_string()])
        .output()
        .expect("age -d");
    assert!(out.status.success(), "age -d: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let sql = pg.run("pg_restore", &["-f", "-", &plain.display().to_string()]);
    assert!(sql.contains("user250@example.com"), "the rows are in the decrypted dump");

    let j = w.cli_with(&["audit", "-f", &p, "--format", "json", "--target", &format!("s3.{b}")], &env).json();
    let addr = format!("s3.{b}.backups.dump");
    assert_eq!(control(&j, "BACKUP-CLIENT-ENCRYPTED", &addr)["status"], "pass", "{j}");
    assert_eq!(control(&j, "BACKUP-INTEGRITY", &addr)["status"], "pass", "the sidecar is of the stored object");

    // The drill decrypts with the identity and restores.
    let (code, out, err, pid) = drill(&w, &p, &env, &["--format", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    nothing_left(pid);
    outputs += &(out.clone() + &err);
    let rec: Value = serde_json::from_str(&out).expect("record");
    assert_eq!(rec["result"], "passed", "{rec}");
    assert_eq!(rec["checks"][0]["value"], 250.0, "{rec}");

    // A wrong identity: one line, before anything is restored.
    let wrong = [("PG_URL", url.as_str()), ("AGE_ID", other.as_str())];
    let (code, out, err, pid) = drill(&w, &p, &wrong, &["--format", "json"]);
    nothing_left(pid);
    outputs += &(out.clone() + &err);
    assert_ne!(code, 0);
    let rec: Value = serde_json::from_str(&out).expect("record");
    assert_eq!(rec["result"], "failed", "{rec}");
    let reason = rec["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("is not a recipient of this backup (no matching key): nothing was restored"), "{rec}");
    assert_eq!(rec["phases"]["restore"], 0.0, "nothing restored: {rec}");
    // A missing one: before anything is downloaded.
    let missing = [("PG_URL", url.as_str()), ("AGE_ID", "/nonexistent/age.key")];
    let (code, out, err, _) = drill(&w, &p, &missing, &["--format", "json"]);
    outputs += &(out.clone() + &err);
    assert_ne!(code, 0);
    assert!(out.contains("the identity file /nonexistent/age.key cannot be read"), "{out}{err}");

    // A plaintext dump where encrypt_to is set fails the control, named.
    w.python(&format!(
        r#"
import sys, hashlib, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
body = b"PGDMP plaintext dump"
s3.put_object(Bucket="{b}", Key="postgres/29991231T235959Z.dump", Body=body)
s3.put_object(Bucket="{b}", Key="postgres/29991231T235959Z.dump.sha256", Body=(hashlib.sha256(body).hexdigest() + "  x\n").encode())
"#
    ));
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json", "--target", &format!("s3.{b}")], &env).json();
    let c = control(&j, "BACKUP-CLIENT-ENCRYPTED", &addr);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("postgres/29991231T235959Z.dump is not encrypted client-side: it begins with `PGDMP plaint`"),
        "{c}"
    );
    let enc = j["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == "ENCRYPTION-AT-REST").cloned();
    assert_eq!(enc.expect("objective")["verdict"], "not_met");
    outputs += &j.to_string();
    assert!(!outputs.contains(&secret), "the identity's contents were shown");
    assert!(!outputs.contains("AGE-SECRET-KEY"), "the identity's contents were shown");
}

/// A Redis snapshot encrypted with age (`backup.encrypt_to` of a Redis
/// entry): stored as an age file, loaded by the drill after decryption
/// with `decrypt_with`, judged by BACKUP-CLIENT-ENCRYPTED.
#[test]
fn an_encrypted_redis_snapshot_is_drilled_with_its_identity() {
    use crate::harness::RedisServer;
    let w = World::with_moto();
    let redis = RedisServer::start(w.dir.path(), "", true);
    let mut mset = vec!["MSET"];
    let pairs: Vec<String> = (0..50).flat_map(|i| [format!("job:{i}"), format!("payload {i}")]).collect();
    mset.extend(pairs.iter().map(String::as_str));
    redis.cli(None, &mset);
    let id = w.dir.path().join("age.key");
    let recipient = crate::harness::age_keygen(&id);
    let b = unique("rdb");
    let p = w.write(
        "p.yaml",
        &format!(
            r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      backups: [{{name: redis-rdb, prefix: redis/, max_age: 7h, sha256_sidecar: true}}]
redis:
  queues:
    url: ${{REDIS_URL}}
    persistence: {{aof: {{fsync: everysec}}}}
    backup: {{to: s3.{b}.backups.redis-rdb, encrypt_to: [{recipient}]}}
    restore_drill:
      from: s3.{b}.backups.redis-rdb
      decrypt_with: ${{AGE_ID}}
      min_keys: 50
      max_keys: 50
"#
        ),
    );
    let p = p.to_string_lossy().into_owned();
    let url = redis.url(None);
    let idp = id.display().to_string();
    let env = [("REDIS_URL", url.as_str()), ("AGE_ID", idp.as_str())];
    w.cli_with(&["apply", "-f", &p, "--target", &format!("s3.{b}"), "--auto-approve"], &env).code(0);
    let r = w.cli_with(&["backup", "run", "-f", &p, "redis.queues", "--format", "json"], &env);
    r.code(0);
    let key = r.json()["key"].as_str().expect("key").to_string();
    assert!(key.ends_with(".rdb.age"), "{key}");
    let r = w.cli_with(&["restore-drill", "-f", &p, "redis.queues", "--format", "json"], &env);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let rec = r.json();
    assert_eq!(rec["checks"][0]["value"], 50.0, "{rec}");
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json", "--target", &format!("s3.{b}")], &env).json();
    assert_eq!(control(&j, "BACKUP-CLIENT-ENCRYPTED", &format!("s3.{b}.backups.redis-rdb"))["status"], "pass");
    assert!(!j.to_string().contains("AGE-SECRET-KEY") && !r.stdout.contains("AGE-SECRET-KEY"));
}
