//! Point-in-time recovery through pgBackRest against a real PostgreSQL 15
//! and moto over TLS (pgBackRest 2.45 speaks only HTTPS to S3): apply sets
//! archiving to pgBackRest's archive-push, `backup run …pitr` takes a full
//! backup, a drill to a noted time restores exactly the rows committed
//! before it, one to `latest` all of them, and the audit's PITR-* controls
//! and RPO-15MIN are met from that evidence. `validate` refuses what would
//! break the repository.

use std::time::{Duration, Instant};

use crate::harness::{control, heavy, need, unique, Moto, Postgres, TcpGate, World};

fn policy(bucket: &str, port: u16, ca: &str, data: &str, stanza: &str) -> String {
    format!(
        r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {bucket}:
      versioning: enabled
      encryption: {{algorithm: AES256}}
      object_lock: {{mode: governance, days: 1}}
      lifecycle:
        rules:
          - id: repo-noncurrent
            prefix: pgbackrest/
            noncurrent_expire_after_days: 14
postgres:
  primary:
    url: ${{PG_URL}}
    pitr:
      repo: {{bucket: {bucket}, prefix: pgbackrest/, endpoint: "https://localhost:{port}", ca_file: "{ca}"}}
      stanza: {stanza}
      data_directory: {data}
      window: 24h
      full_every: 7d
      rpo: 15m
      process_max: 2
      drill:
        rto: 10m
        checks:
          - {{name: rows, sql: "select count(*) from t", min: 1}}
"#
    )
}

/// The newest segment is in the archive: switch WAL and wait until
/// pg_stat_archiver reports the segment that held the last commit.
fn archive_now(pg: &Postgres) {
    let seg = pg.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    pg.sql("SELECT pg_switch_wal()");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = pg.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
        if done.as_str() >= seg.as_str() {
            return;
        }
        let failed = pg.sql("SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver");
        assert!(
            Instant::now() < deadline,
            "{seg} was not archived within 90 s (last archived {done}, last failed {failed})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn rows(rec: &serde_json::Value) -> f64 {
    rec["checks"][0]["value"].as_f64().unwrap_or_else(|| panic!("no row count in the record: {rec}"))
}

/// moto over TLS (and HTTP for the tool), its CA where the postgres user
/// can read it (archive_command runs as it: outside the test's private
/// directory), and PostgreSQL started with the emulator's static keys in
/// its environment, as a server's environment would hold them
/// (production uses the instance role: repo1-s3-key-type=auto). Returns
/// the world, the server, the CA's directory (kept alive) and path, and
/// the HTTPS port.
fn rig() -> (World, Postgres, tempfile::TempDir, String, u16) {
    rig_with(&[])
}

/// As `rig`, moto started with `env` (MOTO_CLOCK_FILE).
fn rig_with(env: &[(&str, &str)]) -> (World, Postgres, tempfile::TempDir, String, u16) {
    rig_wal(env, None)
}

/// As `rig_with`, the cluster made with `wal` (segment size in MiB, first
/// segment): see `Postgres::start_with_wal`.
fn rig_wal(env: &[(&str, &str)], wal: Option<(u32, &str)>) -> (World, Postgres, tempfile::TempDir, String, u16) {
    need("pgbackrest", "pgbackrest");
    let mut w = World::new();
    let (moto, tls_port, ca) = Moto::start_tls_with_env(w.dir.path(), env);
    w.moto = Some(moto);
    let shared = tempfile::Builder::new().prefix("suoops-ca-").tempdir_in("/tmp").expect("ca dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ca_copy = shared.path().join("ca.pem");
    std::fs::copy(&ca, &ca_copy).expect("copy ca");
    let keys = vec![
        ("PGBACKREST_REPO1_S3_KEY".to_string(), "test".to_string()),
        ("PGBACKREST_REPO1_S3_KEY_SECRET".to_string(), "test".to_string()),
    ];
    let pg = Postgres::start_with_wal(&keys, wal);
    (w, pg, shared, ca_copy.display().to_string(), tls_port)
}

#[test]
fn point_in_time_restore_honours_the_target_and_the_audit_measures_the_rpo() {
    let _heavy = heavy();
    let (w, pg, shared, ca, port) = rig();
    let bucket = unique("pitr");
    let stanza = unique("it");
    let data = pg.data_dir().display().to_string();
    let p = w.write("p.yaml", &policy(&bucket, port, &ca, &data, &stanza));
    let p = p.to_string_lossy().into_owned();
    let env = [("PG_URL", pg.url(Some("not-the-password")))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let plan = w.cli_with(&["plan", "-f", &p], &env);
    assert!(plan.stdout.contains("archive-push %p"), "plan shows the archive_command: {}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("archive_timeout"), "{}", plan.stdout);
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env).code(0);
    assert_eq!(pg.sql("SHOW archive_timeout"), "5min", "a third of the 15-minute RPO");
    // archive_mode takes effect at a restart (the plan says so).
    pg.restart();
    let cmd = pg.sql("SHOW archive_command");
    assert!(
        cmd.starts_with(&format!("pgbackrest --stanza={stanza} --repo1-type=s3 --repo1-s3-bucket={bucket}")),
        "{cmd}"
    );
    assert!(!cmd.contains("test"), "no key in the archive_command: {cmd}");
    w.cli_with(&["plan", "-f", &p, "--detailed-exitcode"], &env).code(0);

    // The host's configuration, from the same policy, without a secret.
    let conf = w.cli_with(&["backup", "config", "-f", &p, "postgres.primary.pitr"], &env);
    conf.code(0);
    assert!(conf.stdout.contains(&format!("[{stanza}]\npg1-path={data}\n")), "{}", conf.stdout);
    assert!(conf.stdout.contains("repo1-s3-key-type=shared\n") && !conf.stdout.contains("=test\n"), "{}", conf.stdout);

    pg.sql("CREATE TABLE t (i int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())");
    let b = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary.pitr", "--format", "json"], &env);
    b.code(0);
    let done = b.json();
    assert_eq!(done["instance"], "postgres.primary.pitr");
    assert!(done["detail"].as_str().unwrap_or_default().starts_with("full backup "), "{done}");
    assert!(done["detail"].as_str().unwrap_or_default().contains("repository verified in"), "{done}");
    assert!(done["key"].as_str().unwrap_or_default().starts_with(&format!("pgbackrest/backup/{stanza}/")), "{done}");

    // 20 rows 0.2 s apart; the target lies between the 10th and the 11th.
    let mut target = String::new();
    for i in 1..=20 {
        pg.sql(&format!("INSERT INTO t (i) VALUES ({i})"));
        std::thread::sleep(Duration::from_millis(200));
        if i == 10 {
            target =
                pg.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    archive_now(&pg);

    let d = w.cli_with(
        &["restore-drill", "-f", &p, "postgres.primary.pitr", "--target-time", &target, "--format", "json"],
        &env,
    );
    let rec = d.json();
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert_eq!(rows(&rec), 10.0, "exactly the rows committed before {target}: {rec}");
    assert_eq!(rec["pitr"]["target"], target.as_str());
    assert!(rec["phases"]["replay"].as_f64().is_some_and(|r| r > 0.0), "{rec}");
    let achieved = rec["pitr"]["achieved_rpo_seconds"].as_f64().expect("achieved RPO");
    assert!(achieved < 1.0, "the 10th row was committed within 0.4 s before the target: {rec}");

    let d = w.cli_with(&["restore-drill", "-f", &p, "postgres.primary.pitr", "--target", "latest"], &env);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(d.stdout.contains("PASSED") && d.stdout.contains("achieved RPO"), "{}", d.stdout);
    let d = w.cli_with(&["restore-drill", "-f", &p, "postgres.primary.pitr", "--format", "json"], &env);
    let rec = d.json();
    assert_eq!(rows(&rec), 20.0, "every committed row, after pg_switch_wal: {rec}");
    assert_eq!(rec["pitr"]["target"], "latest");
    let how = rec["pitr"]["rpo_measured"].as_str().unwrap_or_default();
    assert!(how.contains("replay having reached the archive's newest segment"), "the record says how: {rec}");
    // Nothing of the drills is left: no data directory, no server.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("suoops-drill-"))
        .filter(|e| std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some()))
        .collect();
    assert!(left.is_empty(), "drill scratch left behind: {left:?}");

    // The DR procedure as a command: a non-empty directory is refused and
    // left as it was; an empty one receives the cluster recovered to T,
    // promoted and shut down, with the remaining steps printed.
    let busy = shared.path().join("busy");
    std::fs::create_dir(&busy).expect("mkdir");
    std::fs::write(busy.join("keep.txt"), "mine\n").expect("write");
    let r = w.cli_with(&["restore", "-f", &p, "postgres.primary", "--into", &busy.display().to_string()], &env);
    r.code(1);
    assert!(r.stderr.contains("is not empty: nothing was changed"), "{}", r.stderr);
    let names: Vec<_> = std::fs::read_dir(&busy).expect("ls").flatten().map(|e| e.file_name()).collect();
    assert_eq!(names, ["keep.txt"], "nothing added");
    assert_eq!(std::fs::read_to_string(busy.join("keep.txt")).expect("kept"), "mine\n");
    let into = shared.path().join("restored");
    let r = w.cli_with(
        &["restore", "-f", &p, "postgres.primary", "--into", &into.display().to_string(), "--target-time", &target],
        &env,
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&format!("holds the cluster recovered to {target} from backup ")), "{}", r.stdout);
    for step in ["run the application's migrations", "point DATABASE_URL at it", "lift the write freeze"] {
        assert!(r.stdout.contains(step), "{step}: {}", r.stdout);
    }
    assert!(!into.join("recovery.signal").exists(), "promoted: no recovery pending");
    assert_eq!(pg.sql_in(&into, "SELECT count(*) FROM t"), "10", "the rows committed before {target}");

    let a = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env);
    let j = a.json();
    for id in ["PITR-BACKUP", "PITR-WAL", "PITR-WINDOW", "PITR-VERIFY", "PITR-DRILL"] {
        assert_eq!(
            control(&j, id, "postgres.primary.pitr")["status"],
            "pass",
            "{id}: {}",
            control(&j, id, "postgres.primary.pitr")
        );
    }
    assert_eq!(control(&j, "RESTORE-DRILL", "postgres.primary.pitr")["status"], "pass");
    // The repository's versions are locked: read from the newest backup's
    // manifest, not from the bucket's default.
    let locked = control(&j, "PITR-BACKUP", "postgres.primary.pitr")["observed"]["locked"].clone();
    assert!(locked.as_str().is_some_and(|l| l.contains("/backup.manifest locked GOVERNANCE for 24h00m")), "{locked}");
    let rpo = j["objectives"]
        .as_array()
        .expect("objectives")
        .iter()
        .find(|o| o["id"] == "RPO-15MIN")
        .expect("RPO-15MIN")
        .clone();
    assert_eq!(rpo["verdict"], "met", "{rpo}");

    // A segment deleted behind the tool's back is named by PITR-WAL.
    let wal =
        control(&j, "PITR-WAL", "postgres.primary.pitr")["observed"]["newest"].as_str().expect("newest").to_string();
    let older = format!("{}{:08X}", &wal[..16], u32::from_str_radix(&wal[16..], 16).expect("hex") - 1);
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
for o in s3.list_objects_v2(Bucket="{bucket}", Prefix="pgbackrest/archive/")["Contents"]:
    if "/{older}-" in o["Key"]:
        s3.delete_object(Bucket="{bucket}", Key=o["Key"])
"#
    ));
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    let c = control(&j, "PITR-WAL", "postgres.primary.pitr");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap_or_default().contains(&older), "the gap names itself: {c}");
    drop(shared);
}

#[test]
fn validate_refuses_what_would_break_a_pgbackrest_repository() {
    let w = World::new();
    let env = [("PG_URL", "postgres://u@db.internal/app")];
    let base = policy("repo-bucket", 9443, "/etc/ca.pem", "/var/lib/postgresql/15/main", "s");
    let expiring = base.replace(
        "            noncurrent_expire_after_days: 14\n",
        "            noncurrent_expire_after_days: 14\n          - id: age-out\n            prefix: pgbackrest/archive/\n            expire_after_days: 2\n",
    );
    let p = w.write("expire.yaml", &expiring);
    let r = w.cli_with(&["validate", "-f", &p.to_string_lossy()], &env);
    r.code(1);
    let line = expiring.lines().position(|l| l.contains("expire_after_days: 2")).expect("line") + 1;
    assert!(r.stderr.contains("repository-unsafe"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("expire.yaml:{line}:32")), "file:line:col of the rule's expiry: {}", r.stderr);
    assert!(r.stderr.contains("`age-out` expires current objects under `pgbackrest/`"), "{}", r.stderr);

    let glacier = base.replace(
        "            noncurrent_expire_after_days: 14\n",
        "            noncurrent_expire_after_days: 14\n          - id: cold\n            transitions: [{days: 30, storage_class: GLACIER}]\n",
    );
    let r = w.cli_with(&["validate", "-f", &w.write("cold.yaml", &glacier).to_string_lossy()], &env);
    r.code(1);
    assert!(r.stderr.contains("`cold` moves objects under `pgbackrest/`"), "{}", r.stderr);

    let both = base.replace("    pitr:\n", "    wal_archiving: {archive_command: \"cp %p /x/%f\"}\n    pitr:\n");
    let r = w.cli_with(&["validate", "-f", &w.write("both.yaml", &both).to_string_lossy()], &env);
    r.code(1);
    assert!(r.stderr.contains("exclude each other"), "{}", r.stderr);

    // Full backups less often than the window: valid, with what it costs.
    let r = w.cli_with(&["validate", "-f", &w.write("weekly.yaml", &base).to_string_lossy()], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning[value-out-of-range]") && r.stderr.contains("keeps up to 691200 s"),
        "{}",
        r.stderr
    );

    // pgBackRest's parallel processes: out of range is said, not clamped.
    let many = base.replace("      process_max: 2\n", "      process_max: 0\n");
    assert_ne!(many, base);
    let r = w.cli_with(&["validate", "-f", &w.write("procs.yaml", &many).to_string_lossy()], &env);
    r.code(1);
    let line = many.lines().position(|l| l.contains("process_max: 0")).expect("line") + 1;
    assert!(
        r.stderr.contains(&format!(
            "procs.yaml:{line}:20: error[value-out-of-range]: process_max 0 is not between 1 and 64"
        )),
        "{}",
        r.stderr
    );

    let other = base.replace("repo: {bucket: repo-bucket", "repo: {bucket: elsewhere");
    let r = w.cli_with(&["validate", "-f", &w.write("other.yaml", &other).to_string_lossy()], &env);
    r.code(1);
    assert!(r.stderr.contains("repository bucket `elsewhere` is not a bucket of this policy"), "{}", r.stderr);

    // Deletes denied on the bucket, and nobody named to run pgBackRest.
    let locked = base.replace(
        "      object_lock: {mode: governance, days: 1}\n",
        "      object_lock: {mode: governance, days: 1}\n      access: {deny_delete: true}\n",
    );
    assert_ne!(locked, base);
    let r = w.cli_with(&["validate", "-f", &w.write("nowriters.yaml", &locked).to_string_lossy()], &env);
    r.code(1);
    assert!(
        r.stderr.contains("error[access-locks-out]: bucket `repo-bucket` denies deletes but names no `access.writers`"),
        "{}",
        r.stderr
    );

    let ok_path = w
        .write("ok.yaml", &base.replace("/var/lib/postgresql/15/main", "/srv/nowhere/15/main"))
        .to_string_lossy()
        .into_owned();
    let ok = w.cli_with(&["validate", "-f", &ok_path], &env);
    assert_eq!(ok.code, 0, "{}", ok.stderr);

    // Off the database host the backup job says where it must run, in one
    // line, before touching anything.
    let r = w.cli_with(&["backup", "run", "-f", &ok_path, "postgres.primary.pitr"], &env);
    r.code(1);
    assert!(
        r.stderr.contains("postgres.primary.pitr runs on the database host: /srv/nowhere/15/main (pitr.data_directory) is not a PostgreSQL data directory on this machine"),
        "{}",
        r.stderr
    );
    let r = w.cli_with(&["restore-drill", "-f", &ok_path, "postgres.primary.pitr", "--target-time", "yesterday"], &env);
    r.code(1);
    assert!(r.stderr.contains("--target-time `yesterday` is not an RFC 3339 time"), "{}", r.stderr);
    let r = w.cli_with(&["restore-drill", "-f", &ok_path, "postgres.primary", "--target", "latest"], &env);
    r.code(1);
    // The address is resolved first: postgres.primary has no drill here.
    assert!(r.stderr.contains("postgres.primary declares no `restore_drill:`"), "{}", r.stderr);
}

#[test]
fn wal_written_while_the_store_is_down_is_kept_archived_later_and_recoverable() {
    let _heavy = heavy();
    let (w, pg, shared, ca, tls_port) = rig();
    // pgBackRest reaches the store through a gate the test can close.
    let gate = TcpGate::start(tls_port);
    let (bucket, stanza) = (unique("pitr-out"), unique("out"));
    let data = pg.data_dir().display().to_string();
    // An RPO of 30 s: archive_timeout 10 s, so the outage outlasts it.
    let text = policy(&bucket, gate.port, &ca, &data, &stanza).replace("rpo: 15m", "rpo: 30s");
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let env = [("PG_URL", pg.url(None))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env).code(0);
    pg.restart();
    assert_eq!(pg.sql("SHOW archive_timeout"), "10s");
    pg.sql("CREATE TABLE t (i int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())");
    w.cli_with(&["backup", "run", "-f", &p, "postgres.primary.pitr"], &env).code(0);
    archive_now(&pg);

    gate.down();
    let mut target = String::new();
    for i in 1..=35 {
        pg.sql(&format!("INSERT INTO t (i) VALUES ({i})"));
        std::thread::sleep(Duration::from_millis(1000));
        if i == 15 {
            target =
                pg.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Nothing left the server meanwhile (archive-push retries, then fails).
    let age: f64 =
        pg.sql("SELECT extract(epoch FROM now() - last_archived_time) FROM pg_stat_archiver").parse().expect("age");
    assert!(age > 30.0, "no segment archived while the store was down: {age}");
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    let c = control(&j, "PITR-WAL", "postgres.primary.pitr");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap_or_default().contains("archiving lags by"), "the lag is said: {c}");

    gate.up();
    // The archiver waits a minute after three failures; a reload wakes it.
    pg.sql("SELECT pg_reload_conf()");
    archive_now(&pg);
    let d = w.cli_with(
        &["restore-drill", "-f", &p, "postgres.primary.pitr", "--target-time", &target, "--format", "json"],
        &env,
    );
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert_eq!(rows(&d.json()), 15.0, "a point inside the outage, from WAL archived after it: {}", d.stdout);
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    assert_eq!(control(&j, "PITR-WAL", "postgres.primary.pitr")["status"], "pass");
    drop(shared);
}

/// The policy (repository in a new bucket, stanza `NAME-…`) applied to the
/// rig's cluster, which is restarted to archive, with table `t` made and
/// one full backup taken: (policy path, bucket, stanza, the cluster's URL
/// for PG_URL).
fn backed_up(w: &World, pg: &Postgres, ca: &str, tls_port: u16, name: &str) -> (String, String, String, String) {
    let (bucket, stanza) = (unique(&format!("pitr-{name}")), unique(name));
    let data = pg.data_dir().display().to_string();
    let p = w.write("p.yaml", &policy(&bucket, tls_port, ca, &data, &stanza)).to_string_lossy().into_owned();
    let url = pg.url(None);
    let env = [("PG_URL", url.as_str())];
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env).code(0);
    pg.restart();
    pg.sql("CREATE TABLE t (i int PRIMARY KEY)");
    w.cli_with(&["backup", "run", "-f", &p, "postgres.primary.pitr"], &env).code(0);
    (p, bucket, stanza, url)
}

/// Every key under `prefix` of the repository's bucket.
fn keys_under(w: &World, bucket: &str, prefix: &str) -> Vec<String> {
    let s3 = w.moto().s3("us-east-1");
    crate::harness::block_on(async {
        let out = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.expect("list");
        out.contents().iter().filter_map(|o| o.key()).map(str::to_string).collect()
    })
}

/// Delete `keys` from the bucket (a delete marker each: it is versioned).
fn delete_keys(w: &World, bucket: &str, keys: &[String]) {
    let s3 = w.moto().s3("us-east-1");
    crate::harness::block_on(async {
        for k in keys {
            s3.delete_object().bucket(bucket).key(k).send().await.expect("delete");
        }
    });
}

/// The one archived object of segment `name` (`…/NAME-SHA1.zst`).
fn segment_key(w: &World, bucket: &str, stanza: &str, name: &str) -> String {
    let all = keys_under(w, bucket, &format!("pgbackrest/archive/{stanza}/"));
    let keys: Vec<&String> = all.iter().filter(|k| k.contains(&format!("/{name}-"))).collect();
    assert_eq!(keys.len(), 1, "{name}: {all:?}");
    keys[0].clone()
}

/// The newest backup's manifest and its copy deleted from the bucket:
/// backup.info still lists the backup and the stored verify result still
/// says passed, but a restore of it would fail — PITR-BACKUP fails naming
/// the backup and PITR-VERIFY no longer passes (issue 38, case 3).
#[test]
fn a_backup_whose_manifest_is_gone_fails_pitr_backup_and_verify() {
    let _heavy = heavy();
    let (w, pg, shared, ca, tls_port) = rig();
    let (p, bucket, stanza, url) = backed_up(&w, &pg, &ca, tls_port, "man");
    let env = [("PG_URL", url.as_str())];
    archive_now(&pg);
    let status = |j: &serde_json::Value, id: &str| control(j, id, "postgres.primary.pitr")["status"].clone();
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    assert_eq!(status(&j, "PITR-BACKUP"), "pass", "{j}");
    assert_eq!(status(&j, "PITR-VERIFY"), "pass", "{j}");
    let manifests: Vec<String> = keys_under(&w, &bucket, &format!("pgbackrest/backup/{stanza}/"))
        .into_iter()
        .filter(|k| k.ends_with("/backup.manifest") || k.ends_with("/backup.manifest.copy"))
        .filter(|k| !k.contains("backup.history"))
        .collect();
    assert_eq!(manifests.len(), 2, "{manifests:?}");
    let label = manifests[0].split('/').nth(3).expect("label").to_string();
    delete_keys(&w, &bucket, &manifests);
    let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    let b = control(&j, "PITR-BACKUP", "postgres.primary.pitr");
    assert_eq!(b["status"], "fail", "{b}");
    let detail = b["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(&format!(
            "the newest backup {label} cannot be read from the repository: s3://{bucket}/pgbackrest/backup/{stanza}/{label}/: backup.manifest: not found"
        )),
        "{b}"
    );
    let v = control(&j, "PITR-VERIFY", "postgres.primary.pitr");
    assert_eq!(v["status"], "fail", "{v}");
    assert!(v["detail"].as_str().unwrap_or_default().contains("the stored verify result"), "{v}");
    drop(shared);
}

/// A repository that lost its older backups looks like a new one to
/// `pgbackrest info`: its oldest backup is minutes old. backup.history
/// remembers a backup made 40 days ago (moto's clock moved back while it
/// was written), so the 24-hour window is not kept: PITR-WINDOW fails,
/// where before it passed with "fills as it ages" (issue 38, case 7).
#[test]
fn a_repository_that_lost_its_older_backups_fails_the_window() {
    let _heavy = heavy();
    let clock = tempfile::NamedTempFile::new().expect("clock file");
    let clock_path = clock.path().to_string_lossy().into_owned();
    let (w, pg, shared, ca, tls_port) = rig_with(&[("MOTO_CLOCK_FILE", clock_path.as_str())]);
    let (p, bucket, stanza, url) = backed_up(&w, &pg, &ca, tls_port, "win");
    let env = [("PG_URL", url.as_str())];
    let window = |w: &World| {
        let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
        control(&j, "PITR-WINDOW", "postgres.primary.pitr").clone()
    };
    let c = window(&w);
    assert_eq!(c["status"], "pass", "{c}");
    assert!(c["detail"].as_str().unwrap_or_default().contains("fills as it ages"), "{c}");
    // The history of a backup made 40 days ago, long since expired.
    std::fs::write(clock.path(), "-3456000").expect("clock back 40 days");
    crate::harness::block_on(async {
        let body = aws_sdk_s3::primitives::ByteStream::from(b"[backup]\n".to_vec());
        let key = format!("pgbackrest/backup/{stanza}/backup.history/2026/20261027-020000F.manifest.gz");
        w.moto().s3("us-east-1").put_object().bucket(&bucket).key(key).body(body).send().await.expect("put history");
    });
    std::fs::write(clock.path(), "0").expect("clock now");
    let c = window(&w);
    assert_eq!(c["status"], "fail", "{c}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(
            "the repository has held backups for 40.0 d (backup.history), but the oldest it still holds starts"
        ),
        "{c}"
    );
    assert!(detail.contains("the window of 1.0 d is not kept"), "{c}");
    drop(shared);
}

/// A segment missing in the middle of the archive: recovery to `latest`
/// stops quietly at the gap and promotes what it has. The drill used to
/// pass with the rows before the gap and an RPO measured from them; it now
/// fails, naming the segment it could not restore (issue 38, case 5).
#[test]
fn a_drill_to_latest_that_stops_at_a_gap_fails_naming_the_segment() {
    let _heavy = heavy();
    let (w, pg, shared, ca, tls_port) = rig();
    let (p, bucket, stanza, url) = backed_up(&w, &pg, &ca, tls_port, "gap");
    let env = [("PG_URL", url.as_str())];
    let mut segments = Vec::new();
    for batch in 0..3 {
        pg.sql(&format!("INSERT INTO t SELECT g FROM generate_series({}, {}) g", batch * 100 + 1, batch * 100 + 100));
        segments.push(pg.sql("SELECT pg_walfile_name(pg_current_wal_lsn())"));
        archive_now(&pg);
    }
    // The middle one of the three segments written after the backup.
    let gap = segments[1].clone();
    delete_keys(&w, &bucket, &[segment_key(&w, &bucket, &stanza, &gap)]);
    let d = w.cli_with(
        &["restore-drill", "-f", &p, "postgres.primary.pitr", "--target", "latest", "--format", "json"],
        &env,
    );
    assert_ne!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let said = format!("{}{}", d.stdout, d.stderr);
    assert!(said.contains("short of the newest archived segment"), "{said}");
    assert!(said.contains(&format!("segment {gap} could not be restored")), "{said}");
    // To a time after the gap: PostgreSQL stops short of the target
    // rather than promote, and the drill says why.
    let after = pg.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    let d = w.cli_with(
        &["restore-drill", "-f", &p, "postgres.primary.pitr", "--target-time", &after, "--format", "json"],
        &env,
    );
    assert_ne!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let said = format!("{}{}", d.stdout, d.stderr);
    assert!(said.contains(&format!("recovery ended before the target {after} was reached")), "{said}");
    drop(shared);
}

/// The DR procedure run for real: the live cluster restored to a point
/// in time by the tool's own `restore --into` its (emptied) data
/// directory, started as the new primary, written to on timeline 2. The
/// archive then holds timeline 1 up to the switch point and timeline 2
/// after it, with 00000002.history between: PITR-WAL follows that path
/// (it checked nothing when the oldest backup's timeline was not the
/// newest segment's), and a timeline-1 segment deleted before the switch
/// is named with its timeline (issue 38, case 1).
#[test]
fn a_gap_before_a_timeline_switch_is_named_with_its_timeline() {
    let _heavy = heavy();
    let (w, pg, shared, ca, tls_port) = rig();
    let (p, bucket, stanza, url) = backed_up(&w, &pg, &ca, tls_port, "tli");
    let env = [("PG_URL", url.as_str())];
    pg.sql("INSERT INTO t SELECT g FROM generate_series(1, 100) g");
    let before = pg.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    archive_now(&pg);
    let target = pg.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    std::thread::sleep(Duration::from_millis(200));
    pg.sql("INSERT INTO t SELECT g FROM generate_series(101, 200) g");
    archive_now(&pg);

    let data = pg.data_dir().display().to_string();
    pg.stop_and_empty();
    let r = w.cli_with(&["restore", "-f", &p, "postgres.primary", "--into", &data, "--target-time", &target], &env);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    pg.start_again();
    assert_eq!(pg.sql("SELECT count(*) FROM t"), "100", "the rows committed before {target}");
    assert_eq!(pg.sql("SELECT timeline_id FROM pg_control_checkpoint()"), "2");
    pg.sql("INSERT INTO t SELECT g FROM generate_series(1001, 1100) g");
    archive_now(&pg);

    let wal = |w: &World| {
        let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
        control(&j, "PITR-WAL", "postgres.primary.pitr").clone()
    };
    let c = wal(&w);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["observed"]["timelines"], serde_json::json!([1, 2]), "{c}");
    assert!(c["observed"]["newest"].as_str().is_some_and(|n| n.starts_with("00000002")), "{c}");
    // A drill to the end of the archive from the timeline-1 backup follows
    // the history file onto timeline 2: the 100 rows kept and the 100
    // written after the switch.
    let d = w.cli_with(
        &["restore-drill", "-f", &p, "postgres.primary.pitr", "--target", "latest", "--format", "json"],
        &env,
    );
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert_eq!(rows(&d.json()), 200.0, "{}", d.stdout);

    // The timeline-1 segment that held the first 100 rows: before the
    // switch, so on the path.
    let archived = keys_under(&w, &bucket, &format!("pgbackrest/archive/{stanza}/"));
    assert!(archived.iter().any(|k| k.ends_with("/00000002.history")), "the history file is archived: {archived:?}");
    delete_keys(&w, &bucket, &[segment_key(&w, &bucket, &stanza, &before)]);
    let c = wal(&w);
    assert_eq!(c["status"], "fail", "{c}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("{before} (timeline 1)")), "the gap names its segment and timeline: {c}");
    drop(shared);
}

/// Evidence that went stale or cannot be read is not a pass: a verify
/// result older than `verify_every` fails PITR-VERIFY; a `backup run`
/// that failed after the newest backup fails PITR-BACKUP with its reason
/// (pgBackRest stopped for the stanza), though the newest full backup is
/// minutes old; and with `archive.info` and its copy gone, PITR-VERIFY is
/// unknown, not passed from the stored result (issue 38, cases 4 and 7b,
/// item 3).
#[test]
fn stale_or_unreadable_evidence_is_not_a_pass() {
    let _heavy = heavy();
    let (w, pg, shared, ca, tls_port) = rig();
    let (p, bucket, stanza, url) = backed_up(&w, &pg, &ca, tls_port, "stale");
    let env = [("PG_URL", url.as_str())];
    archive_now(&pg);
    let audit = |w: &World| w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
    let j = audit(&w);
    for id in ["PITR-BACKUP", "PITR-VERIFY"] {
        assert_eq!(control(&j, id, "postgres.primary.pitr")["status"], "pass", "{id}: {j}");
    }

    // A verify result older than verify_every (1 s here), though after
    // the newest backup.
    let text = std::fs::read_to_string(&p).expect("policy");
    std::fs::write(&p, text.replace("      rpo: 15m\n", "      rpo: 15m\n      verify_every: 1s\n")).expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    let c = loop {
        let c = control(&audit(&w), "PITR-VERIFY", "postgres.primary.pitr").clone();
        if c["status"] != "pass" || Instant::now() > deadline {
            break c;
        }
    };
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap_or_default().contains("old, over verify_every (1 s)"), "{c}");
    std::fs::write(&p, text).expect("write");

    // pgBackRest stopped for the stanza: the next run fails, and says so.
    let stop = std::path::Path::new("/tmp/pgbackrest").join(format!("{stanza}.stop"));
    assert!(stop.parent().is_some_and(|d| d.is_dir()), "pgBackRest's lock path exists after a backup");
    std::fs::write(&stop, "").expect("stop file");
    let b = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary.pitr"], &env);
    let _ = std::fs::remove_file(&stop);
    assert_ne!(b.code, 0, "{}{}", b.stdout, b.stderr);
    let c = control(&audit(&w), "PITR-BACKUP", "postgres.primary.pitr").clone();
    assert_eq!(c["status"], "fail", "{c}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with("the last backup run ("), "{c}");
    assert!(detail.contains("stop file exists"), "the run's own reason: {c}");
    // A run that succeeds again clears it.
    w.cli_with(&["backup", "run", "-f", &p, "postgres.primary.pitr"], &env).code(0);
    let j = audit(&w);
    for id in ["PITR-BACKUP", "PITR-VERIFY"] {
        assert_eq!(control(&j, id, "postgres.primary.pitr")["status"], "pass", "{id}: {j}");
    }

    // archive.info and its copy deleted: nothing of the repository reads.
    let infos: Vec<String> =
        ["archive.info", "archive.info.copy"].iter().map(|n| format!("pgbackrest/archive/{stanza}/{n}")).collect();
    delete_keys(&w, &bucket, &infos);
    let c = control(&audit(&w), "PITR-VERIFY", "postgres.primary.pitr").clone();
    assert_eq!(c["status"], "unknown", "{c}");
    assert!(c["detail"].as_str().unwrap_or_default().starts_with("the repository cannot be read now"), "{c}");
    drop(shared);
}

/// Clusters made with 1 MiB and 64 MiB WAL segments (`initdb
/// --wal-segsize`), their WAL begun near the end of the first 4 GiB "log
/// file" and archived across into the next: segment numbers run to 0xFFF
/// and 0x3F in a log file, not 0xFF. PITR-WAL reads the archive with the
/// cluster's segment size — from the server, and from the backups' LSNs
/// in the repository when the server is down — and finds it continuous.
/// With the server down it used to take 16 MiB: 64 MiB segments 0x3E,
/// 0x3F then the next log file's 0 read as 192 missing segments (issue
/// 38, case 6).
#[test]
fn archives_of_1_and_64_mib_segments_are_continuous() {
    let _heavy = heavy();
    for (mb, first, shown) in [(1, "000000010000000000000FFB", "1MB"), (64, "00000001000000000000003E", "64MB")] {
        let (w, pg, shared, ca, tls_port) = rig_wal(&[], Some((mb, first)));
        let (p, _bucket, _stanza, url) = backed_up(&w, &pg, &ca, tls_port, &format!("seg{mb}"));
        let env = [("PG_URL", url.as_str())];
        assert_eq!(pg.sql("SHOW wal_segment_size"), shown);
        for i in 0..6 {
            pg.sql(&format!("INSERT INTO t VALUES ({i})"));
            pg.sql("SELECT pg_switch_wal()");
        }
        archive_now(&pg);
        let wal = |w: &World| {
            let j = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env).json();
            control(&j, "PITR-WAL", "postgres.primary.pitr").clone()
        };
        let c = wal(&w);
        assert_eq!(c["status"], "pass", "{mb} MiB: {c}");
        let newest = c["observed"]["newest"].as_str().unwrap_or_default().to_string();
        assert!(newest.starts_with("0000000100000001"), "{mb} MiB: the archive crossed into the next log file: {c}");
        // The server down: the segment size comes from the repository.
        pg.stop();
        let c = wal(&w);
        assert_eq!(c["status"], "pass", "{mb} MiB, server down: {c}");
        assert_eq!(c["observed"]["newest"], newest.as_str(), "{c}");
        drop(shared);
    }
}
