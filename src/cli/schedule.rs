//! `schedule render --for systemd|cron|kubernetes`: what starts each
//! scheduled job (and the audit), from the policy's `schedule:` fields —
//! the schedule as data, rendered for the scheduler that runs it.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{error, note, out, Global, PolicyArg};
use crate::policy::schedule::Schedule;
use crate::policy::Policy;

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// `render`: the only action.
    #[arg(value_parser = ["render"])]
    pub action: String,
    #[command(flatten)]
    pub policy: PolicyArg,
    /// The scheduler to render for.
    #[arg(long = "for", value_enum)]
    pub target: Scheduler,
    /// Write one file per unit, crontab or manifest into DIR (created);
    /// default: print them, each after a `# FILE` line.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The installed binary the units run.
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/suoops-policy")]
    pub bin: String,
    /// The policy file's path on the host that runs the jobs.
    #[arg(long, value_name = "PATH", default_value = "/etc/suoops-policy/policy.yaml")]
    pub policy_path: String,
    /// The file of `NAME=value` lines the jobs' secrets come from (mode
    /// 0600; never on a command line). Where it can be read, the policy's
    /// `${VAR}`s the environment lacks are read from it.
    #[arg(long, value_name = "PATH", default_value = "/etc/suoops-policy/env")]
    pub env_file: String,
    /// The unprivileged user the other jobs run as.
    #[arg(long, value_name = "USER", default_value = "suoops")]
    pub user: String,
    /// The container image the CronJobs run (`--for kubernetes`): one
    /// with this binary and the tools its jobs drive (pg_dump and
    /// pg_restore, initdb for a dump's drill, redis-server for a
    /// snapshot's, age); default `suoops-policy:VERSION`.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Where each job writes its metrics: node_exporter's textfile
    /// collector directory (the default is the one Debian's
    /// prometheus-node-exporter package reads).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/prometheus/node-exporter")]
    pub metrics_dir: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scheduler {
    Systemd,
    Cron,
    Kubernetes,
    /// The audit only: GitHub Actions' `schedule` is best effort (runs
    /// are delayed or dropped under load, and disabled after 60 days
    /// without activity) — fine for an audit, wrong for a backup.
    GithubActions,
}

/// One thing to start: a name for its files, its arguments, its schedule,
/// the user it runs as, and whether it reads the database host's files.
struct Task<'p> {
    name: String,
    args: Vec<String>,
    schedule: &'p Schedule,
    /// Where it must run (the database host, as its user), if anywhere.
    host: Option<crate::jobs::OnHost>,
    /// How it writes its metrics file on a host (`--metrics` or the
    /// audit's `--output`), added where a textfile collector reads them.
    metrics: [String; 2],
}

fn tasks<'p>(policy: &'p Policy, a: &ScheduleArgs) -> Vec<Task<'p>> {
    let mut out = Vec::new();
    for job in crate::providers::jobs() {
        for (address, _) in job.instances(policy) {
            let Some(schedule) = job.schedule(policy, &address) else { continue };
            let command = job.kind().command();
            let mut args: Vec<String> = command.split(' ').map(str::to_string).collect();
            args.extend(["-f".into(), a.policy_path.clone(), address.clone()]);
            let name = format!("suoops-{}-{}", command.replace(' ', "-"), address.replace(['.', '_'], "-"));
            let metrics = ["--metrics".into(), format!("{}/{name}.prom", a.metrics_dir)];
            out.push(Task { name, args, schedule, host: job.on_host(), metrics });
        }
    }
    if let Some(schedule) = &policy.audit_schedule {
        out.push(Task {
            name: "suoops-audit".into(),
            args: vec!["audit".into(), "-f".into(), a.policy_path.clone()],
            schedule,
            host: None,
            metrics: ["--output".into(), format!("{}/suoops-audit.prom", a.metrics_dir)],
        });
    }
    out
}

pub fn run(g: &Global, a: &ScheduleArgs) -> u8 {
    // On the host the jobs run on, their environment file holds what the
    // policy's `${VAR}`s name: read as the jobs will read it.
    let env_file = std::path::Path::new(&a.env_file);
    if let Err(e) = std::fs::read(env_file) {
        // Absent is the usual case off the jobs' host; unreadable (mode
        // 0600, another user) is said, or a missing variable is a riddle.
        if e.kind() != std::io::ErrorKind::NotFound {
            note(g, format!("cannot read {} ({e}): the policy's ${{VAR}}s come from the environment only", a.env_file));
        }
    }
    let loaded = crate::policy::load_with_file(&a.policy.file, env_file, &crate::providers::control_ids());
    let Some(policy) = super::loaded(g, loaded) else { return 1 };
    let tasks = tasks(&policy, a);
    if tasks.is_empty() {
        return error(g, format!("{} declares no `schedule:`: nothing to render", policy.file));
    }
    let files = match a.target {
        Scheduler::Systemd => tasks.iter().flat_map(|t| systemd(t, a)).collect(),
        Scheduler::Cron => vec![("suoops-policy".to_string(), cron(&tasks, a))],
        Scheduler::Kubernetes => {
            // A job that reads the database host's files runs there.
            let (host, pods): (Vec<&Task<'_>>, Vec<&Task<'_>>) = tasks.iter().partition(|t| t.host.is_some());
            for t in &host {
                eprintln!(
                    "not rendered: {} reads the database host's data directory (as {}): run it there, from systemd or cron",
                    t.name,
                    t.host.map_or("", |h| h.user)
                );
            }
            if pods.is_empty() {
                return error(g, "every scheduled job runs on the database host: nothing to render for Kubernetes");
            }
            let image = a.image.clone().unwrap_or_else(|| format!("suoops-policy:{}", env!("CARGO_PKG_VERSION")));
            pods.iter().map(|t| (format!("{}.yaml", t.name), cronjob(t, &image))).collect::<Vec<_>>()
        }
        Scheduler::GithubActions => {
            for t in tasks.iter().filter(|t| t.name != "suoops-audit") {
                eprintln!(
                    "not rendered: {} runs a backup or its drill; GitHub Actions' schedule is best effort (runs delayed or dropped, disabled after 60 days without activity): start it with systemd, cron or Kubernetes",
                    t.name
                );
            }
            match tasks.iter().find(|t| t.name == "suoops-audit") {
                Some(t) => vec![("suoops-audit.yml".to_string(), workflow(t))],
                None => {
                    return error(
                        g,
                        "GitHub Actions runs only the audit here, and the policy has no `audit: {schedule:}`",
                    )
                }
            }
        }
    };
    match &a.out {
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir) {
                return error(g, format!("cannot create {}: {e}", dir.display()));
            }
            for (name, text) in files {
                let path = dir.join(&name);
                if let Err(e) = super::write_atomically(&path, &text) {
                    return error(g, format!("cannot write {}: {e}", path.display()));
                }
                eprintln!("wrote {}", path.display());
            }
        }
        None => {
            let mut text = String::new();
            for (name, body) in files {
                let _ = write!(text, "# {name}\n{body}\n");
            }
            out(&text);
        }
    }
    0
}

/// A command line, each argument quoted for systemd's ExecStart and sh.
fn quoted(args: &[String]) -> String {
    args.iter()
        .map(|s| {
            if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c)) {
                s.clone()
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The systemd calendar events of a cron schedule, in UTC (systemd.time(7):
/// `DOW YYYY-MM-DD HH:MM:SS TZ`); two when both day fields are restricted
/// (cron runs on a day matching either).
fn on_calendar(s: &Schedule) -> Vec<String> {
    let f = s.fields();
    let list =
        |v: &[u32], width: usize| -> String { v.iter().map(|n| format!("{n:0width$}")).collect::<Vec<_>>().join(",") };
    let (mins, hours) = (list(&f.minutes, 2), list(&f.hours, 2));
    let months = f.months.as_ref().map_or("*".into(), |m| list(m, 2));
    let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let dow = |d: &[u32]| d.iter().map(|n| names[*n as usize]).collect::<Vec<_>>().join(",");
    let at = |dow: Option<String>, days: String| {
        let head = dow.map(|d| format!("{d} ")).unwrap_or_default();
        format!("{head}*-{months}-{days} {hours}:{mins}:00 UTC")
    };
    match (&f.days, &f.weekdays) {
        // Either day field: two events; both: one event with both.
        (Some(d), Some(w)) if f.either => vec![at(None, list(d, 2)), at(Some(dow(w)), "*".into())],
        (Some(d), Some(w)) => vec![at(Some(dow(w)), list(d, 2))],
        (Some(d), None) => vec![at(None, list(d, 2))],
        (None, Some(w)) => vec![at(Some(dow(w)), "*".into())],
        (None, None) => vec![at(None, "*".into())],
    }
}

/// A `.service` and a `.timer` per task.
fn systemd(t: &Task<'_>, a: &ScheduleArgs) -> Vec<(String, String)> {
    let mut args = vec![a.bin.clone()];
    args.extend(t.args.iter().chain(&t.metrics).cloned());
    let user = t.host.map_or(a.user.clone(), |h| h.user.to_string());
    // The engine's own directories too (a leading `-`: skipped when absent).
    let mut writes = vec![a.metrics_dir.clone()];
    writes.extend(t.host.iter().flat_map(|h| h.writes.iter().map(|w| w.to_string())));
    let service = format!(
        "[Unit]\n\
         Description=suoops-policy: {name}\n\
         Documentation=man:suoops-policy(1)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         # A oneshot unit is never started twice at once: a run the timer\n\
         # fires while the last one is going waits for it.\n\
         Type=oneshot\n\
         User={user}\n\
         # The secrets (URLs, passwords) come from here, never the command line.\n\
         EnvironmentFile={env}\n\
         ExecStart={exec}\n\
         ProtectSystem=strict\n\
         ReadWritePaths={writes}\n\
         PrivateTmp=yes\n\
         ProtectHome=yes\n\
         NoNewPrivileges=yes\n\
         ProtectKernelTunables=yes\n\
         ProtectControlGroups=yes\n\
         RestrictSUIDSGID=yes\n",
        name = t.name,
        env = a.env_file,
        exec = quoted(&args),
        writes = writes.join(" "),
    );
    let mut timer = format!(
        "[Unit]\nDescription=Start {name} on its schedule ({sched} UTC)\n\n[Timer]\n",
        name = t.name,
        sched = t.schedule.text
    );
    for c in on_calendar(t.schedule) {
        let _ = writeln!(timer, "OnCalendar={c}");
    }
    // A run missed while the host was down happens at boot; a small spread
    // keeps many hosts off the same second, never more than a twentieth of
    // the interval or five minutes.
    let spread = (t.schedule.interval_secs / 20).min(300);
    let _ = write!(
        timer,
        "Persistent=true\nRandomizedDelaySec={spread}\nUnit={name}.service\n\n[Install]\nWantedBy=timers.target\n",
        name = t.name
    );
    vec![(format!("{}.service", t.name), service), (format!("{}.timer", t.name), timer)]
}

/// An /etc/cron.d file: UTC, the secrets sourced from the environment
/// file, each job under `flock -n` so two runs never overlap.
fn cron(tasks: &[Task<'_>], a: &ScheduleArgs) -> String {
    let mut out = String::from(
        "# /etc/cron.d/suoops-policy: the backup jobs, their drills and the audit, in UTC.\n\
         # m h dom mon dow user command\n\
         CRON_TZ=UTC\n\
         SHELL=/bin/sh\n\
         PATH=/usr/local/bin:/usr/bin:/bin\n",
    );
    for t in tasks {
        let user = t.host.map_or(a.user.clone(), |h| h.user.to_string());
        let mut args = vec![a.bin.clone()];
        args.extend(t.args.iter().chain(&t.metrics).cloned());
        // `%` ends a command in crontab(5): escaped.
        let command = format!(
            "flock -n /run/lock/{name}.lock sh -c 'set -a; . {env}; set +a; exec \"$0\" \"$@\"' {args}",
            name = t.name,
            env = a.env_file,
            args = quoted(&args)
        )
        .replace('%', "\\%");
        let _ = writeln!(out, "{} {user} {command}", t.schedule.cron);
    }
    out
}

/// A Kubernetes CronJob (batch/v1) per task: UTC, never two at once, a
/// run that could not start within its deadline skipped, the secrets from
/// a Secret by reference, the policy from a ConfigMap, a read-only root
/// with a scratch /tmp (a drill restores there).
fn cronjob(t: &Task<'_>, image: &str) -> String {
    // In the pod the policy is the ConfigMap's; the report goes to the log.
    let args: Vec<String> = t
        .args
        .iter()
        .map(|s| if s.ends_with(".yaml") { "/etc/suoops-policy/policy.yaml".to_string() } else { s.clone() })
        .map(|s| format!("\"{s}\""))
        .collect();
    let args = args.join(", ");
    let deadline = (t.schedule.interval_secs / 2).clamp(60, 3600);
    format!(
        "apiVersion: batch/v1\n\
         kind: CronJob\n\
         metadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: suoops-policy}}\n\
         spec:\n\
         \x20 schedule: \"{sched}\"\n\
         \x20 timeZone: Etc/UTC\n\
         \x20 concurrencyPolicy: Forbid\n\
         \x20 startingDeadlineSeconds: {deadline}\n\
         \x20 successfulJobsHistoryLimit: 3\n\
         \x20 failedJobsHistoryLimit: 3\n\
         \x20 jobTemplate:\n\
         \x20   spec:\n\
         \x20     backoffLimit: 0\n\
         \x20     template:\n\
         \x20       spec:\n\
         \x20         restartPolicy: Never\n\
         \x20         containers:\n\
         \x20           - name: suoops-policy\n\
         \x20             image: {image}\n\
         \x20             args: [{args}]\n\
         \x20             envFrom:\n\
         \x20               - secretRef: {{name: suoops-policy}}\n\
         \x20             volumeMounts:\n\
         \x20               - {{name: policy, mountPath: /etc/suoops-policy, readOnly: true}}\n\
         \x20               - {{name: tmp, mountPath: /tmp}}\n\
         \x20             securityContext: {{runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}}\n\
         \x20         volumes:\n\
         \x20           - name: policy\n\
         \x20             configMap: {{name: suoops-policy}}\n\
         \x20           - name: tmp\n\
         \x20             emptyDir: {{}}\n",
        name = t.name,
        sched = t.schedule.cron,
    )
}

/// A GitHub Actions workflow for the scheduled audit: one audit, every
/// report, the notification on a change (as docs/github-actions/
/// nightly-audit.yml).
fn workflow(t: &Task<'_>) -> String {
    format!(
        "# The scheduled audit ({sched} UTC). GitHub's schedule is best effort: an\n\
         # audit may start late; backups run from systemd, cron or Kubernetes.\n\
         name: suoops-policy audit\n\
         on:\n\
         \x20 schedule: [{{cron: \"{sched}\"}}]\n\
         \x20 workflow_dispatch: {{}}\n\
         permissions: {{id-token: write, contents: read, security-events: write}}\n\
         jobs:\n\
         \x20 audit:\n\
         \x20   runs-on: ubuntu-latest\n\
         \x20   steps:\n\
         \x20     - uses: actions/checkout@v4\n\
         \x20     - uses: aws-actions/configure-aws-credentials@v4\n\
         \x20       with: {{role-to-assume: \"${{{{ vars.SUOOPS_AUDIT_ROLE }}}}\", aws-region: us-east-1}}\n\
         \x20     - name: audit\n\
         \x20       env:   # and each variable your policy's ${{VAR}}s read, from secrets\n\
         \x20         SLACK_WEBHOOK_URL: ${{{{ secrets.SLACK_WEBHOOK_URL }}}}\n\
         \x20       run: >\n\
         \x20         ./suoops-policy audit -f {policy}\n\
         \x20         --output audit.sarif --output audit.html --output audit.xml --output audit.json\n\
         \x20         --notify env:SLACK_WEBHOOK_URL --state s3://YOUR-BUCKET/suoops-policy/audit-state.json\n\
         \x20     - if: always()\n\
         \x20       uses: github/codeql-action/upload-sarif@v3\n\
         \x20       with: {{sarif_file: audit.sarif}}\n\
         \x20     - if: always()\n\
         \x20       uses: actions/upload-artifact@v4\n\
         \x20       with: {{name: audit, path: \"audit.*\"}}\n",
        sched = t.schedule.cron,
        policy = t.args.get(2).map_or("policies/suoops.yaml", String::as_str),
    )
}
