//! The audit as OpenMetrics text, for Prometheus (node_exporter's textfile
//! collector, or a push gateway): a gauge state set per control, one gauge
//! per objective, and the newest backup of each `backups:` entry (age,
//! size, sidecar). Only gauges, so the text also parses as Prometheus' own
//! text format, which the textfile collector reads (it takes `# UNIT` and
//! `# EOF` as comments, but knows no `stateset` type). Sorted like every
//! report; no timestamps (the collector stamps the file).

use std::fmt::Write;

use crate::audit::objectives::Verdict;
use crate::audit::{Report, Status};

/// A label value with `\`, `"` and newlines escaped (OpenMetrics ABNF).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn report(report: &Report) -> String {
    let mut out = String::new();
    let status = |s: Status| match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Unknown => "unknown",
        Status::Waived => "waived",
    };
    let _ = writeln!(out, "# TYPE suoops_audit_up gauge");
    let _ = writeln!(
        out,
        "# HELP suoops_audit_up 1 when the audit could read every system it judges, 0 when one could not be reached (its controls are unknown)."
    );
    let _ = writeln!(out, "suoops_audit_up {}", u8::from(report.unreached.is_empty()));
    if !report.accounts.is_empty() {
        let _ = writeln!(out, "# TYPE suoops_account_up gauge");
        let _ = writeln!(out, "# HELP suoops_account_up 1 when the audit reached the declared account, 0 when it could not (its resources are unknown).");
        for a in &report.accounts {
            let up = u8::from(a.status != "unreachable");
            let _ = writeln!(out, "suoops_account_up{{account=\"{}\",id=\"{}\"}} {up}", label(&a.name), label(&a.id));
        }
        let _ = writeln!(out, "# TYPE suoops_account_compliant gauge");
        let _ = writeln!(
            out,
            "# HELP suoops_account_compliant 1 when every control of the account's resources passes (or is waived)."
        );
        for a in &report.accounts {
            let ok = u8::from(a.status == "compliant");
            let _ = writeln!(
                out,
                "suoops_account_compliant{{account=\"{}\",id=\"{}\"}} {ok}",
                label(&a.name),
                label(&a.id)
            );
        }
    }
    let _ = writeln!(out, "# TYPE suoops_audit_compliant gauge");
    let _ = writeln!(
        out,
        "# HELP suoops_audit_compliant 1 when every control passes (or is waived) and no objective is not met, else 0."
    );
    let s = report.summary();
    let _ = writeln!(out, "suoops_audit_compliant {}", u8::from(report.compliant()));
    let _ = writeln!(out, "# TYPE suoops_audit_controls gauge");
    let _ = writeln!(out, "# HELP suoops_audit_controls Controls by status.");
    for (st, n) in [("pass", s.passed), ("fail", s.failed), ("unknown", s.unknown), ("waived", s.waived)] {
        let _ = writeln!(out, "suoops_audit_controls{{status=\"{st}\"}} {n}");
    }

    let _ = writeln!(out, "# TYPE suoops_control_status gauge");
    let _ = writeln!(
        out,
        "# HELP suoops_control_status 1 for the status one control has on one resource, 0 for the others."
    );
    for c in &report.controls {
        let account = c.account.as_deref().map(|a| format!(",account=\"{}\"", label(a))).unwrap_or_default();
        for st in ["pass", "fail", "unknown", "waived"] {
            let _ = writeln!(
                out,
                "suoops_control_status{{control=\"{}\",address=\"{}\"{account},severity=\"{}\",status=\"{st}\"}} {}",
                label(c.id),
                label(c.address.as_str()),
                format!("{:?}", c.severity).to_lowercase(),
                u8::from(status(c.status) == st)
            );
        }
    }

    let _ = writeln!(out, "# TYPE suoops_objective_met gauge");
    let _ = writeln!(
        out,
        "# HELP suoops_objective_met 1 when the strategy's objective is met, 0 when not, NaN when nothing evaluates it."
    );
    for o in &report.objectives {
        let v = match o.verdict {
            Verdict::Met => "1",
            Verdict::NotMet => "0",
            Verdict::NotEvaluated => "NaN",
        };
        let _ = writeln!(out, "suoops_objective_met{{objective=\"{}\"}} {v}", label(o.id));
    }

    // What the systems publish of their controls (each backups entry's
    // newest backup: age, size, sidecar).
    for g in report.gauges() {
        let _ = writeln!(out, "# TYPE {} gauge", g.name);
        if let Some(u) = g.unit {
            let _ = writeln!(out, "# UNIT {} {u}", g.name);
        }
        let _ = writeln!(out, "# HELP {} {}", g.name, g.help);
        for (addr, v) in g.values {
            let _ = writeln!(out, "{}{{address=\"{}\"}} {v}", g.name, label(&addr));
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The result of one `backup run`, for node_exporter's textfile collector:
/// success, when, and (on success) the size and duration. Written on
/// failure too, so an alert sees the job fail, not only go quiet.
pub fn backup_run(instance: &str, entry: &str, now: u64, done: Option<(u64, f64)>, job: &JobTimes) -> String {
    let mut out = String::new();
    let labels = format!("instance=\"{}\",entry=\"{}\"", label(instance), label(entry));
    let mut gauge = |name: &str, help: &str, value: String| {
        let _ = writeln!(out, "# TYPE {name} gauge\n# HELP {name} {help}\n{name}{{{labels}}} {value}");
    };
    gauge(
        "suoops_backup_run_success",
        "1 when the last backup run stored its backup, 0 when it failed.",
        u8::from(done.is_some()).to_string(),
    );
    gauge("suoops_backup_run_timestamp_seconds", "When the last backup run ended (Unix seconds).", now.to_string());
    if let Some((bytes, secs)) = done {
        gauge("suoops_backup_run_bytes", "Size of the backup the last run stored.", bytes.to_string());
        gauge("suoops_backup_run_duration_seconds", "How long the last run took.", format!("{secs}"));
    }
    out.push_str(&job.gauges("backup", instance, now, done.is_some()));
    out.push_str("# EOF\n");
    out
}

/// `text` (OpenMetrics, ending `# EOF`) with the job gauges of `kind` at
/// `address` added: the audit's own, when it writes its metrics to a file.
/// It succeeded when it read every system it judges.
pub fn with_job(text: String, kind: &str, address: &str, job: &JobTimes, ok: bool) -> String {
    let mut out = text.strip_suffix("# EOF\n").map(str::to_string).unwrap_or(text);
    out.push_str(&job.gauges(kind, address, crate::model::time::now(), ok));
    out.push_str("# EOF\n");
    out
}

/// When a job last succeeded, read back from the metrics file its last run
/// wrote (a failed run must not forget the success before it), and how
/// often it should run (its schedule's longest gap).
#[derive(Debug, Clone, Default)]
pub struct JobTimes {
    pub last_success: Option<u64>,
    pub interval_secs: Option<u64>,
}

const LAST_SUCCESS: &str = "suoops_job_last_success_timestamp_seconds";

impl JobTimes {
    /// The last success `previous` (the file's former content) records for
    /// `job` at `address`.
    pub fn read(previous: &str, job: &str, address: &str, interval_secs: Option<u64>) -> JobTimes {
        let head = format!("{LAST_SUCCESS}{{kind=\"{}\",address=\"{}\"}} ", label(job), label(address));
        let last_success = previous.lines().find_map(|l| l.strip_prefix(&head)).and_then(|v| v.trim().parse().ok());
        JobTimes { last_success, interval_secs }
    }

    /// As [`JobTimes::read`], from the metrics file at `path` (absent: no
    /// success recorded yet).
    pub fn from_file(path: &std::path::Path, job: &str, address: &str, interval_secs: Option<u64>) -> JobTimes {
        JobTimes::read(&std::fs::read_to_string(path).unwrap_or_default(), job, address, interval_secs)
    }

    /// The job gauges (the dead-man rule's input): last success, last
    /// attempt, expected interval, labelled by `kind` (backup) and address —
    /// not `job`, which Prometheus gives every scraped series (the textfile
    /// collector's would become `exported_job`).
    fn gauges(&self, job: &str, address: &str, now: u64, ok: bool) -> String {
        let labels = format!("kind=\"{}\",address=\"{}\"", label(job), label(address));
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# TYPE {name} gauge\n# HELP {name} {help}\n{name}{{{labels}}} {value}");
        };
        if let Some(t) = if ok { Some(now) } else { self.last_success } {
            gauge(LAST_SUCCESS, "When the job last succeeded (Unix seconds).", t);
        }
        gauge(
            "suoops_job_last_attempt_timestamp_seconds",
            "When the job last ran, whatever its outcome (Unix seconds).",
            now,
        );
        if let Some(i) = self.interval_secs {
            gauge("suoops_job_expected_interval_seconds", "The longest gap between two runs its schedule allows.", i);
        }
        out
    }
}

/// The result of one `restore-drill` for `address`: passed, when, the time
/// to restore and each phase's seconds — or, when it could not complete
/// (`rec` None), a failure — and the job gauges.
pub fn restore_drill(address: &str, rec: Option<&crate::jobs::Record>, now: u64, job: &JobTimes) -> String {
    let mut out = String::new();
    let labels = format!("instance=\"{}\"", label(address));
    let mut gauge = |name: &str, help: &str, extra: &str, value: String| {
        let _ = writeln!(out, "# TYPE {name} gauge\n# HELP {name} {help}\n{name}{{{labels}{extra}}} {value}");
    };
    let passed = rec.is_some_and(crate::jobs::Record::passed);
    gauge(
        "suoops_restore_drill_success",
        "1 when the last restore drill passed, else 0.",
        "",
        u8::from(passed).to_string(),
    );
    gauge(
        "suoops_restore_drill_timestamp_seconds",
        "When the last restore drill started (Unix seconds).",
        "",
        rec.map_or(now, |r| r.started).to_string(),
    );
    if let Some(rec) = rec {
        gauge(
            "suoops_restore_drill_duration_seconds",
            "The last drill's time to restore (download, restore, migrate, checks).",
            "",
            rec.total_seconds.to_string(),
        );
        gauge("suoops_restore_drill_rto_seconds", "The RTO the drill is held to.", "", rec.rto_seconds.to_string());
        let _ = writeln!(out, "# TYPE suoops_restore_drill_phase_seconds gauge\n# HELP suoops_restore_drill_phase_seconds Each phase of the last drill.");
        let p = &rec.phases;
        for (phase, v) in
            [("download", p.download), ("restore", p.restore), ("migrate", p.migrate), ("checks", p.checks)]
        {
            let _ = writeln!(out, "suoops_restore_drill_phase_seconds{{{labels},phase=\"{phase}\"}} {v}");
        }
    }
    out.push_str(&job.gauges("drill", address, now, passed));
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
    #[test]
    fn a_failed_run_keeps_the_last_success_and_the_expected_interval() {
        let ok = backup_run(
            "postgres.primary",
            "s3.b.backups.dump",
            1000,
            Some((10, 1.0)),
            &JobTimes { last_success: None, interval_secs: Some(86_400) },
        );
        let labels = "{kind=\"backup\",address=\"postgres.primary\"}";
        assert!(ok.contains(&format!("suoops_job_last_success_timestamp_seconds{labels} 1000\n")), "{ok}");
        assert!(ok.contains(&format!("suoops_job_expected_interval_seconds{labels} 86400\n")), "{ok}");
        // The next run fails: its attempt is new, the success is the one before.
        let times = JobTimes::read(&ok, "backup", "postgres.primary", Some(86_400));
        assert_eq!(times.last_success, Some(1000));
        let failed = backup_run("postgres.primary", "s3.b.backups.dump", 5000, None, &times);
        assert!(failed.contains(&format!("suoops_job_last_success_timestamp_seconds{labels} 1000\n")), "{failed}");
        assert!(failed.contains(&format!("suoops_job_last_attempt_timestamp_seconds{labels} 5000\n")), "{failed}");
        assert!(failed.ends_with("# EOF\n"));
        // Never succeeded, no schedule: no success, no interval.
        let never = backup_run("redis.queues", "s3.b.backups.rdb", 5000, None, &JobTimes::default());
        assert!(!never.contains("last_success") && !never.contains("expected_interval"), "{never}");
    }
}
