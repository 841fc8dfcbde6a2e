//! `schedule render`: what starts each job, read the way its scheduler
//! reads it — systemd-analyze for the units, the Kubernetes schemas for
//! the CronJobs (kubernetes-validate, offline), crontab(5)'s fields for
//! the cron.d file.

use crate::harness::World;

/// The shipped policy's secrets: rendering reads the policy as every
/// command does.
const ENV: [(&str, &str); 3] = [
    ("REDIS_CACHE_URL", "redis://127.0.0.1:1/0"),
    ("REDIS_QUEUE_URL", "redis://127.0.0.1:1/0"),
    ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres"),
];

fn run(program: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): scripts/test installs it (Debian: systemd; .venv: kubernetes-validate)")
    });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_shipped_policy_s_units_pass_systemd_analyze_verify() {
    let w = World::new();
    let dir = w.dir.path().join("units");
    let bin = env!("CARGO_BIN_EXE_suoops-policy");
    let (d, p) = (dir.to_string_lossy().into_owned(), "policies/suoops.yaml");
    w.cli_with(&["schedule", "render", "--for", "systemd", "-f", p, "--out", &d, "--bin", bin], &ENV).code(0);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("units")
        .map(|e| e.expect("entry").path().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let names: Vec<&str> = files.iter().filter_map(|f| f.rsplit('/').next()).collect();
    assert_eq!(
        names,
        [
            "suoops-audit.service",
            "suoops-audit.timer",
            "suoops-backup-run-postgres-primary-pitr.service",
            "suoops-backup-run-postgres-primary-pitr.timer",
            "suoops-backup-run-postgres-primary.service",
            "suoops-backup-run-postgres-primary.timer",
            "suoops-backup-run-redis-queues.service",
            "suoops-backup-run-redis-queues.timer",
            "suoops-restore-drill-postgres-primary-pitr.service",
            "suoops-restore-drill-postgres-primary-pitr.timer",
            "suoops-restore-drill-postgres-primary.service",
            "suoops-restore-drill-postgres-primary.timer",
            "suoops-restore-drill-redis-queues.service",
            "suoops-restore-drill-redis-queues.timer",
        ]
    );
    let mut args = vec!["verify", "--man=no"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = run("systemd-analyze", &args);
    assert_eq!((code, err.trim()), (0, ""), "systemd-analyze verify: {out}");
    // Every calendar event is one systemd reads, and names the next run in UTC.
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).expect("unit");
    for f in names.iter().filter(|n| n.ends_with(".timer")) {
        let timer = read(f);
        assert!(timer.contains("Persistent=true"), "{timer}");
        for cal in timer.lines().filter_map(|l| l.strip_prefix("OnCalendar=")) {
            let (code, out, err) = run("systemd-analyze", &["calendar", cal]);
            assert!(code == 0 && out.contains("UTC"), "{cal}: {out}{err}");
        }
    }
    assert!(read("suoops-backup-run-postgres-primary.timer").contains("OnCalendar=*-*-* 02:00:00 UTC"));
    // pgBackRest as the data directory's owner; the rest unprivileged.
    let pitr = read("suoops-backup-run-postgres-primary-pitr.service");
    assert!(pitr.contains("User=postgres\n") && pitr.contains("NoNewPrivileges=yes"), "{pitr}");
    let dump = read("suoops-backup-run-postgres-primary.service");
    assert!(dump.contains("User=suoops\n") && dump.contains("EnvironmentFile=/etc/suoops-policy/env"), "{dump}");
    assert!(!dump.contains("postgres://"), "no secret on a command line: {dump}");
    // As printed with the installed paths: a snapshot of what an operator installs.
    let r = w.cli_with(&["schedule", "render", "--for", "systemd", "-f", p], &ENV);
    r.code(0);
    insta::assert_snapshot!("shipped-policy-systemd-units", r.stdout);
}

#[test]
fn the_cron_file_holds_each_schedule_in_utc_under_a_lock() {
    let w = World::new();
    let r = w.cli_with(&["schedule", "render", "--for", "cron", "-f", "policies/suoops.yaml"], &ENV);
    r.code(0);
    assert!(r.stdout.contains("\nCRON_TZ=UTC\n"), "{}", r.stdout);
    let jobs: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains('=') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let when: Vec<String> = jobs.iter().map(|f| f[..5].join(" ")).collect();
    // The backups, their monthly drills and the audit.
    assert_eq!(
        when,
        ["30 */6 * * *", "0 5 1 * *", "0 2 * * *", "0 3 1 * *", "0 */6 * * *", "0 4 1 * *", "15 3 * * *"],
        "{}",
        r.stdout
    );
    for f in &jobs {
        assert!(f[5] == "suoops" || f[5] == "postgres", "{f:?}");
        assert_eq!(f[6..8], ["flock", "-n"], "no two runs at once: {f:?}");
    }
}

#[test]
fn the_cronjobs_pass_the_kubernetes_schemas_and_host_jobs_stay_on_the_host() {
    let w = World::new();
    let dir = w.dir.path().join("k8s");
    let d = dir.to_string_lossy().into_owned();
    let image = "registry.example/platform/suoops-policy:1";
    let args =
        ["schedule", "render", "--for", "kubernetes", "-f", "policies/suoops.yaml", "--out", &d, "--image", image];
    let r = w.cli_with(&args, &ENV);
    r.code(0);
    assert!(
        r.stderr
            .contains("not rendered: suoops-backup-run-postgres-primary-pitr reads the database host's data directory"),
        "{}",
        r.stderr
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("manifests")
        .map(|e| e.expect("e").path().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // The audit, the dump and the snapshot, and their drills; the
    // point-in-time backup and drill stay on the database host.
    assert_eq!(files.len(), 5, "{files:?}");
    let validate = crate::harness::python().with_file_name("kubernetes-validate");
    let mut args = vec!["-k", "1.31.0", "--strict"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = run(&validate.to_string_lossy(), &args);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.matches(" passed for resource cronjob/").count() + err.matches(" passed for resource cronjob/").count(),
        5,
        "{out}{err}"
    );
    assert!(
        r.stderr.contains(
            "not rendered: suoops-restore-drill-postgres-primary-pitr reads the database host's data directory"
        ),
        "{}",
        r.stderr
    );
    let audit = std::fs::read_to_string(dir.join("suoops-audit.yaml")).expect("audit");
    for want in [
        "concurrencyPolicy: Forbid",
        "timeZone: Etc/UTC",
        "schedule: \"15 3 * * *\"",
        "secretRef: {name: suoops-policy}",
        &format!("image: {image}"),
    ] {
        assert!(audit.contains(want), "{want}: {audit}");
    }
    // The drill restores under /tmp: a scratch volume on a read-only root.
    let drill = std::fs::read_to_string(dir.join("suoops-restore-drill-postgres-primary.yaml")).expect("drill");
    for want in
        ["readOnlyRootFilesystem: true", "{name: tmp, mountPath: /tmp}", "emptyDir: {}", "\"postgres.primary\"]"]
    {
        assert!(drill.contains(want), "{want}: {drill}");
    }
    // A policy without schedules has nothing to render.
    let p = w.write("p.yaml", "version: 1\n");
    let r = w.cli(&["schedule", "render", "--for", "cron", "-f", &p.to_string_lossy()]);
    r.code(1);
    assert!(r.stderr.contains("declares no `schedule:`"), "{}", r.stderr);
}

/// Cron's day fields, both restricted, run on a day matching either: two
/// calendar events, each read by systemd, with weekdays by name.
#[test]
fn cron_days_and_weekdays_become_calendar_events_systemd_reads() {
    let w = World::new();
    for (cron, want) in [
        ("0 2 * * 1-5", vec!["Mon,Tue,Wed,Thu,Fri *-*-* 02:00:00 UTC"]),
        ("30 4 1,15 * 0", vec!["*-*-01,15 04:30:00 UTC", "Sun *-*-* 04:30:00 UTC"]),
        ("*/20 9-10 * 6 *", vec!["*-06-* 09,10:00,20,40:00 UTC"]),
        // Names and macros, as Kubernetes and GitHub Actions take them.
        ("0 2 * * mon-FRI", vec!["Mon,Tue,Wed,Thu,Fri *-*-* 02:00:00 UTC"]),
        ("@weekly", vec!["Sun *-*-* 00:00:00 UTC"]),
        // A `*`-led day field: cron wants both day fields, not either.
        ("0 0 */10 * 1", vec!["Mon *-*-01,11,21,31 00:00:00 UTC"]),
    ] {
        let p = w.write("p.yaml", &format!("version: 1\naudit: {{schedule: \"{cron}\"}}\n"));
        let r = w.cli(&["schedule", "render", "--for", "systemd", "-f", &p.to_string_lossy()]);
        r.code(0);
        let got: Vec<&str> = r.stdout.lines().filter_map(|l| l.strip_prefix("OnCalendar=")).collect();
        assert_eq!(got, want, "{cron}");
        for cal in got {
            let (code, out, err) = run("systemd-analyze", &["calendar", cal]);
            assert!(code == 0 && out.contains("Next elapse:"), "{cal}: {out}{err}");
        }
        // The cron file gets numbers: Debian's cron takes no ranges of names.
        let r = w.cli(&["schedule", "render", "--for", "cron", "-f", &p.to_string_lossy()]);
        let line = r.stdout.lines().find(|l| l.contains("flock")).unwrap_or_default().to_string();
        let when: Vec<&str> = line.split_whitespace().take(5).collect();
        assert!(
            when.len() == 5 && when.iter().all(|f| f.chars().all(|c| c.is_ascii_digit() || "*-,/".contains(c))),
            "{line}"
        );
    }
}

/// GitHub Actions runs the audit, never a backup: its schedule is best
/// effort.
#[test]
fn github_actions_gets_the_audit_and_the_backups_are_refused_with_the_reason() {
    let w = World::new();
    let r = w.cli_with(&["schedule", "render", "--for", "github-actions", "-f", "policies/suoops.yaml"], &ENV);
    r.code(0);
    let refused = r.stderr.lines().filter(|l| l.starts_with("not rendered:") && l.contains("best effort")).count();
    assert_eq!(refused, 6, "three backups and three drills: {}", r.stderr);
    let body = r.stdout.split_once('\n').map(|x| x.1).unwrap_or("");
    let code = "import sys, yaml, json\nd = yaml.safe_load(sys.stdin.read())\nprint(json.dumps([d[True]['schedule'][0]['cron'], d['jobs']['audit']['steps'][2]['run']]))";
    let mut child = std::process::Command::new(crate::harness::python())
        .args(["-c", code])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("write");
    let parsed = String::from_utf8_lossy(&child.wait_with_output().expect("yaml").stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(parsed.trim()).expect("json");
    assert_eq!(v[0], "15 3 * * *");
    assert!(v[1].as_str().is_some_and(|c| c.contains("--output audit.sarif --output audit.html")), "{v}");
}

/// On the jobs' host, the environment file they read holds what the
/// policy's `${VAR}`s name: render reads it too, and the file is named in
/// what it writes, its secrets never.
#[test]
fn render_reads_the_policy_s_variables_from_the_jobs_environment_file() {
    let w = World::new();
    let lines: String = ENV.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
    let file = w.write("env", &format!("# the jobs' secrets\n{lines}"));
    let file = file.to_string_lossy().into_owned();
    let unset = ENV.map(|(k, _)| k);
    let r = w.cli_env(
        &["schedule", "render", "--for", "cron", "-f", "policies/suoops.yaml", "--env-file", &file],
        &[],
        &unset,
    );
    r.code(0);
    assert!(r.stdout.contains(&format!(". {file}")), "{}", r.stdout);
    assert!(!r.stdout.contains("127.0.0.1:1"), "no secret in the output: {}", r.stdout);
    // Neither in the environment nor in a file: the policy cannot be read.
    let args = ["schedule", "render", "--for", "cron", "-f", "policies/suoops.yaml", "--env-file", "/nonexistent"];
    let r = w.cli_env(&args, &[], &unset);
    r.code(1);
    assert!(r.stderr.contains("environment variable `DATABASE_URL` is not set"), "{}", r.stderr);
    assert!(!r.stderr.contains("cannot read"), "an absent file is the usual case: {}", r.stderr);
    // One that cannot be read is said, so the missing variable is no riddle.
    let dir = w.dir.path().to_string_lossy().into_owned();
    let args = ["schedule", "render", "--for", "cron", "-f", "policies/suoops.yaml", "--env-file", &dir];
    let r = w.cli_env(&args, &[], &unset);
    r.code(1);
    assert!(r.stderr.contains(&format!("cannot read {dir} (")), "{}", r.stderr);
}
