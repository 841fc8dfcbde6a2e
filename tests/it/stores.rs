//! Redis and PostgreSQL against real servers the harness starts: settings
//! applied so they survive a restart, the cases CONFIG cannot handle, WAL
//! archiving with restart-required settings, and a secrets sweep.

use std::time::{Duration, Instant};

use crate::harness::{control, squash, Postgres, RedisServer, Run, World};

const QUEUE: &str = "version: 1\nredis:\n  queues:\n    url: ${T_REDIS_URL}\n    persistence:\n      aof: {fsync: everysec}\n      rdb: [{after: 6h, changes: 1}]\n";

fn with(w: &World, args: &[&str], url: &str) -> Run {
    w.cli_env(args, &[("T_REDIS_URL", url), ("T_PG_URL", url)], &["AWS_ENDPOINT_URL"])
}

#[test]
fn redis_persistence_is_applied_and_survives_a_restart() {
    let w = World::new();
    let mut r = RedisServer::start(w.dir.path(), "", true);
    let p = w.write("p.yaml", QUEUE).to_string_lossy().into_owned();
    let url = r.url(None);
    let out = with(&w, &["plan", "-f", &p, "--detailed-exitcode"], &url);
    out.code(2);
    assert!(out.stdout.contains("~ redis.queues will be updated in place"), "{}", out.stdout);
    let text = squash(&out.stdout);
    assert!(text.contains("~ appendonly \"no\" → \"yes\""), "{text}");
    assert!(!text.contains("appendfsync"), "settings already right are not listed: {text}");
    assert!(text.contains("~ save \"\" → \"21600 1\""), "{text}");
    let out = with(&w, &["audit", "-f", &p], &url);
    out.code(2);
    // Enough data that the initial AOF rewrite takes a moment: apply waits
    // for it, so right afterwards none is running and a restart works.
    r.cli(None, &["EVAL", "for i=1,300000 do redis.call('SET','k'..i,string.rep('x',100)) end", "0"]);
    let out = with(&w, &["apply", "-f", &p, "--auto-approve"], &url);
    out.code(0);
    assert!(out.stdout.contains("✓ initial AOF rewrite"), "{}", out.stdout);
    let info = r.cli(None, &["INFO", "persistence"]);
    assert!(info.contains("aof_rewrite_in_progress:0"), "{info}");
    assert!(info.contains("aof_rewrite_scheduled:0"), "{info}");
    assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
    let conf = std::fs::read_to_string(r.conf.as_ref().expect("config file")).expect("read redis.conf");
    assert!(conf.contains("appendonly yes") && conf.contains("save 21600 1"), "CONFIG REWRITE wrote the file:\n{conf}");
    r.restart();
    assert_eq!(r.cli(None, &["CONFIG", "GET", "appendonly"]), "appendonly\nyes");
    assert_eq!(r.cli(None, &["CONFIG", "GET", "save"]), "save\n21600 1");
    assert_eq!(r.cli(None, &["CONFIG", "GET", "appendfsync"]), "appendfsync\neverysec");
    with(&w, &["plan", "-f", &p, "--detailed-exitcode"], &url).code(0);
    let out = with(&w, &["audit", "-f", &p, "--format", "json"], &url);
    out.code(0);
    let ids: Vec<String> = out.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids, ["REDIS-AOF", "REDIS-LAST-SAVE", "REDIS-RDB", "REDIS-STATE"]);
}

#[test]
fn redis_without_a_config_file_is_refused_because_the_change_would_not_survive() {
    let w = World::new();
    let r = RedisServer::start(w.dir.path(), "", false);
    let p = w.write("p.yaml", QUEUE).to_string_lossy().into_owned();
    let url = r.url(None);
    let out = with(&w, &["plan", "-f", &p], &url);
    out.code(1);
    assert!(out.stdout.contains("runs without a config file"), "{}", out.stdout);
    let out = with(&w, &["apply", "-f", &p, "--auto-approve"], &url);
    out.code(1);
    assert_eq!(r.cli(None, &["CONFIG", "GET", "appendonly"]), "appendonly\nno", "nothing was changed");
}

#[test]
fn redis_with_config_renamed_is_not_manageable_and_audit_reads_info() {
    let w = World::new();
    let r = RedisServer::start(w.dir.path(), "rename-command CONFIG \"\"", true);
    let p = w.write("p.yaml", QUEUE).to_string_lossy().into_owned();
    let url = r.url(None);
    let out = with(&w, &["plan", "-f", &p], &url);
    out.code(1);
    assert!(out.stdout.contains("not manageable by CONFIG"), "{}", out.stdout);
    assert!(!out.stdout.contains("panicked") && !out.stderr.contains("panicked"));
    let out = with(&w, &["audit", "-f", &p, "--format", "json"], &url);
    let j = out.json();
    let aof =
        j["controls"].as_array().expect("controls").iter().find(|c| c["id"] == "REDIS-AOF").cloned().expect("aof");
    assert_eq!(aof["observed"]["appendonly"], "no", "from INFO persistence: {aof}");
    assert_eq!(aof["status"], "fail");
}

#[test]
fn redis_with_a_password_works_and_a_wrong_one_is_a_clear_error() {
    let w = World::new();
    let r = RedisServer::start(w.dir.path(), "requirepass s3cret-redis-pw", true);
    let p = w.write("p.yaml", QUEUE).to_string_lossy().into_owned();
    let good = r.url(Some("s3cret-redis-pw"));
    with(&w, &["apply", "-f", &p, "--auto-approve"], &good).code(0);
    with(&w, &["plan", "-f", &p, "--detailed-exitcode"], &good).code(0);
    let bad = r.url(Some("wrong-password-123"));
    let out = with(&w, &["plan", "-f", &p], &bad);
    out.code(1);
    assert!(out.stdout.contains("? connection: unknown (cannot connect"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("wrong-password-123") && !out.stderr.contains("wrong-password-123"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

fn pg_policy(command: &str) -> String {
    format!(
        "version: 1\npostgres:\n  primary:\n    url: ${{T_PG_URL}}\n    wal_archiving:\n      wal_level: replica\n      archive_mode: \"on\"\n      archive_timeout: 5min\n      archive_command: \"{command}\"\n"
    )
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn postgres_wal_archiving_is_applied_marked_restart_required_and_audited() {
    let w = World::new();
    let pg = Postgres::start();
    let cmd = format!("cp %p {}/%f", pg.archive_dir().display());
    let p = w.write("p.yaml", &pg_policy(&cmd)).to_string_lossy().into_owned();
    let url = pg.url(None);
    let out = with(&w, &["plan", "-f", &p, "--detailed-exitcode"], &url);
    out.code(2);
    assert!(out.stdout.contains("~ postgres.primary will be updated in place"), "{}", out.stdout);
    assert!(
        out.stdout.contains("# restart required: archive_mode takes effect only after a server restart"),
        "{}",
        out.stdout
    );
    assert!(squash(&out.stdout).contains("~ archive_timeout \"0s\" → \"300s\""), "{}", out.stdout);
    with(&w, &["apply", "-f", &p, "--auto-approve"], &url).code(0);
    // Before the restart: archive_mode waits, the audit says so.
    let out = with(&w, &["audit", "-f", &p, "--format", "json"], &url);
    out.code(2);
    let j = out.json();
    let c = j["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "PG-WAL-ARCHIVING")
        .cloned()
        .expect("control");
    assert_eq!(c["status"], "fail");
    assert!(c["observed"]["archive_mode"]["pending_restart"] == true, "{c}");
    pg.restart();
    assert_eq!(pg.sql("SHOW archive_mode"), "on");
    assert_eq!(pg.sql("SHOW archive_timeout"), "5min");
    with(&w, &["plan", "-f", &p, "--detailed-exitcode"], &url).code(0);
    pg.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS x");
    pg.sql("SELECT pg_switch_wal()");
    wait_for("a WAL segment archived", || pg.sql("SELECT archived_count FROM pg_stat_archiver") != "0");
    let j = with(&w, &["audit", "-f", &p, "--format", "json"], &url).json();
    for id in ["PG-WAL-ARCHIVING", "PG-ARCHIVER"] {
        assert_eq!(control(&j, id, "postgres.primary")["status"], "pass", "{id}");
    }
    // Archiving alone is no point-in-time recovery: WAL needs a physical
    // base backup to be replayed onto (tests/it/pitr.rs has the whole).
    let rpo =
        j["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == "RPO-15MIN").expect("rpo").clone();
    assert_eq!(rpo["verdict"], "not_met", "{rpo}");
    assert!(rpo["reasons"].to_string().contains("postgres.primary declares no `pitr:`"), "{rpo}");
}

#[test]
fn a_failing_archive_command_shows_in_audit() {
    let w = World::new();
    let pg = Postgres::start();
    let p = w.write("p.yaml", &pg_policy("false")).to_string_lossy().into_owned();
    let url = pg.url(None);
    with(&w, &["apply", "-f", &p, "--auto-approve"], &url).code(0);
    pg.restart();
    pg.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS x");
    pg.sql("SELECT pg_switch_wal()");
    wait_for("a failed archive attempt", || pg.sql("SELECT failed_count FROM pg_stat_archiver") != "0");
    let out = with(&w, &["audit", "-f", &p, "--format", "json"], &url);
    out.code(2);
    let j = out.json();
    let c = j["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "PG-ARCHIVER")
        .cloned()
        .expect("control");
    assert_eq!(c["status"], "fail");
    assert!(c["detail"].as_str().unwrap_or("").contains("archiving is failing"), "{c}");
}

#[test]
fn a_planted_password_never_appears_in_any_output_or_file() {
    const SECRET: &str = "Pl4nted-S3cret-9f2c";
    // An archive_command written with ${VAR} may hold a key: masked too.
    const COMMAND_SECRET: &str = "Arch1ve-T0ken-77ab";
    let w = World::new();
    let r = RedisServer::start(w.dir.path(), &format!("requirepass {SECRET}"), true);
    let pg = Postgres::start();
    let p = w
        .write(
            "p.yaml",
            "version: 1\nredis:\n  queues:\n    url: ${T_REDIS_URL}\n    persistence: {aof: {fsync: everysec}}\n  down:\n    url: ${T_REDIS_DOWN}\n    persistence: none\npostgres:\n  primary:\n    url: ${T_PG_URL}\n    wal_archiving: {archive_mode: \"on\", archive_timeout: 5min, archive_command: \"${T_ARCHIVE_CMD}\"}\n",
        )
        .to_string_lossy()
        .into_owned();
    let down = format!("redis://default:{SECRET}@127.0.0.1:{}/0", crate::harness::free_port());
    let command = format!("/bin/true --token={COMMAND_SECRET} %p");
    let rx = crate::notify::Receiver::start(vec![]);
    let hook = rx.url();
    let env = [
        ("T_REDIS_URL", r.url(Some(SECRET))),
        ("T_REDIS_DOWN", down),
        ("T_PG_URL", pg.url(Some(SECRET))),
        ("T_ARCHIVE_CMD", command),
        ("T_HOOK", hook.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let file = |name: &str| w.dir.path().join(name).to_string_lossy().into_owned();
    let (report, saved, journal, md, imported) =
        (file("report.json"), file("plan.json"), file("journal.jsonl"), file("plan.md"), file("imported.yaml"));
    let state = file("state.json");
    let merged = w.write("merged.yaml", "version: 1\n").to_string_lossy().into_owned();
    let mut outputs = String::new();
    let mut written = vec![
        report.clone(),
        saved.clone(),
        journal.clone(),
        md.clone(),
        imported.clone(),
        merged.clone(),
        state.clone(),
    ];
    // A key whose name carries a user and a value: the audit's look at the
    // keyspace reports neither (only the pattern rq:job:*).
    const USER_KEY: &str = "rq:job:PlantedUser-4242";
    const VALUE: &str = "Planted-Value-6e1f";
    r.cli(Some(SECRET), &["SET", USER_KEY, VALUE]);
    let run = |args: &[&str], outputs: &mut String| {
        let out = w.cli_env(args, &env, &["AWS_ENDPOINT_URL"]);
        outputs.push_str(&out.stdout);
        outputs.push_str(&out.stderr);
    };
    for args in [
        vec!["validate", "-f", &p],
        vec!["validate", "-f", &p, "--format", "json"],
        vec!["plan", "-f", &p],
        vec!["plan", "-f", &p, "--format", "json"],
        vec!["plan", "-f", &p, "--format", "markdown", "--output", &md, "--out", &saved],
        vec!["-v", "apply", "-f", &p, "--auto-approve", "--journal", &journal],
        vec!["apply", &saved, "--auto-approve"],
        vec!["apply", "-f", &p, "--auto-approve", "--format", "json"],
    ] {
        run(&args, &mut outputs);
    }
    // archive_mode needs a restart; after it the server shows the command.
    pg.restart();
    assert!(pg.sql("SHOW archive_command").contains(COMMAND_SECRET), "the command is live");
    for args in [
        vec!["plan", "-f", &p],
        vec!["audit", "-f", &p],
        vec!["audit", "-f", &p, "--format", "json", "--output", &report],
        vec!["audit", "-f", &p, "--notify", "env:T_HOOK", "--state", &state],
        vec!["audit", "-f", &p, "--notify", "env:T_HOOK", "--notify-format", "json", "--state", &file("state2.json")],
        vec!["permissions", "--for", "apply", "-f", &p],
        vec!["import", "--redis", "queues=T_REDIS_URL", "--postgres", "primary=T_PG_URL", "-o", &imported],
        vec!["import", "--redis", "queues=T_REDIS_URL", "--postgres", "primary=T_PG_URL", "--merge", &merged],
        vec!["import", "--redis", "down=T_REDIS_DOWN"],
    ] {
        run(&args, &mut outputs);
    }
    for format in ["text", "markdown", "junit", "sarif", "html", "openmetrics"] {
        let path = file(&format!("report.{format}"));
        run(&["audit", "-f", &p, "--format", format, "--output", &path], &mut outputs);
        written.push(path);
    }
    for path in &written {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path} was not written: {e}"));
        assert!(!text.trim().is_empty(), "{path} is empty");
        outputs.push_str(&text);
    }
    let posts = rx.posts();
    assert_eq!(posts.len(), 2, "each state file posted once: {posts:?}");
    for post in &posts {
        outputs.push_str(&post.to_string());
    }
    assert!(outputs.contains("url: ${T_REDIS_URL}"), "import wrote the variable: {outputs}");
    assert!(
        outputs.contains("archive_command: ${PRIMARY_ARCHIVE_COMMAND}"),
        "import wrote a variable for the archive command: {outputs}"
    );
    assert!(outputs.contains("set PRIMARY_ARCHIVE_COMMAND to"), "import said which variable to set: {outputs}");
    assert!(outputs.contains("redis.queues") && outputs.contains("postgres.primary"), "the commands ran: {outputs}");
    assert!(outputs.contains("PG-WAL-ARCHIVING") && outputs.contains("(sensitive value)"), "{outputs}");
    assert!(outputs.contains("cannot connect"), "the unreachable instance was reported: {outputs}");
    assert!(!outputs.contains(SECRET), "the password leaked:\n{outputs}");
    assert!(!outputs.contains(COMMAND_SECRET), "the archive command leaked:\n{outputs}");
    assert!(!outputs.contains("SECRETTOKEN"), "the webhook's token leaked:\n{outputs}");
    assert!(outputs.contains("rq:job:*"), "the keyspace was looked at: {outputs}");
    assert!(!outputs.contains("PlantedUser-4242"), "a key name carrying a user leaked:\n{outputs}");
    assert!(!outputs.contains(VALUE), "a key's value leaked:\n{outputs}");
}

#[test]
fn alter_system_without_the_privilege_is_a_clear_error() {
    let w = World::new();
    let pg = Postgres::start();
    pg.sql("CREATE ROLE app LOGIN");
    let p = w.write("p.yaml", &pg_policy("cp %p /nowhere/%f")).to_string_lossy().into_owned();
    let url = format!("postgres://app@127.0.0.1:{}/postgres", pg.port);
    let out = with(&w, &["apply", "-f", &p, "--auto-approve"], &url);
    out.code(1);
    assert!(out.stdout.contains("ALTER SYSTEM needs a superuser or GRANT ALTER SYSTEM ON PARAMETER"), "{}", out.stdout);
    assert_eq!(pg.sql("SHOW archive_timeout"), "0", "nothing was changed");
}

/// Turning archive_mode on with no archive_command anywhere would keep
/// every WAL segment in pg_wal until the disk fills: refused at plan time,
/// and apply changes nothing. While archive_mode is off the server hides
/// the command ("(disabled)"); one set in the configuration counts.
#[test]
fn archive_mode_without_any_archive_command_is_refused_at_plan_time() {
    let w = World::new();
    let pg = Postgres::start();
    let text = "version: 1\npostgres:\n  primary:\n    url: ${T_PG_URL}\n    wal_archiving:\n      wal_level: replica\n      archive_mode: \"on\"\n";
    let p = w.write("p.yaml", text).to_string_lossy().into_owned();
    let url = pg.url(None);
    assert_eq!(pg.sql("SHOW archive_command"), "(disabled)");
    let out = with(&w, &["plan", "-f", &p], &url);
    out.code(1);
    assert!(out.stdout.contains("no archive_command or archive_library is set, so turning archiving on would keep every WAL segment in pg_wal"), "{}", out.stdout);
    let out = with(&w, &["apply", "-f", &p, "--auto-approve"], &url);
    out.code(1);
    pg.restart();
    assert_eq!(pg.sql("SHOW archive_mode"), "off", "nothing was changed");
    // A command configured on the server (hidden while archiving is off)
    // satisfies the policy that names none.
    let cmd = format!("cp %p {}/%f", pg.archive_dir().display());
    pg.sql(&format!("ALTER SYSTEM SET archive_command = '{cmd}'"));
    pg.sql("SELECT pg_reload_conf()");
    assert_eq!(pg.sql("SHOW archive_command"), "(disabled)");
    let out = with(&w, &["plan", "-f", &p], &url);
    out.code(0);
    assert!(!out.stdout.contains("no archive_command"), "{}", out.stdout);
    with(&w, &["apply", "-f", &p, "--auto-approve"], &url).code(0);
}
