//! Turning plans and reports into text for people and JSON for machines.
//! Output is deterministic: sorted by address, no timestamps.

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod openmetrics;
pub mod sarif;
pub mod text;

use std::io::IsTerminal;

/// Colour on a TTY unless NO_COLOR is set or `--color` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn enabled_for_stdout(self) -> bool {
        self.enabled(std::io::stdout().is_terminal())
    }
    pub fn enabled_for_stderr(self) -> bool {
        self.enabled(std::io::stderr().is_terminal())
    }
    fn enabled(self, tty: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

/// Paints text when colour is on.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub on: bool,
}

impl Paint {
    fn wrap(&self, style: anstyle::Style, s: &str) -> String {
        if self.on {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_string()
        }
    }
    pub fn green(&self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Green.on_default(), s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Yellow.on_default(), s)
    }
    pub fn red(&self, s: &str) -> String {
        self.wrap(anstyle::AnsiColor::Red.on_default(), s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.wrap(anstyle::Style::new().bold(), s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.wrap(anstyle::Style::new().dimmed(), s)
    }
}

pub(crate) use crate::model::compact;

/// An observed or expected value as short `key: value` pairs for people
/// (nested keys joined with `.`, lists of scalars with `, `); JSON stays
/// in the JSON format.
pub(crate) fn pairs(v: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => Some("(none)".into()),
            Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
            Value::Array(a) if a.is_empty() => Some("(none)".into()),
            Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
                Some(a.iter().filter_map(scalar).collect::<Vec<_>>().join(", "))
            }
            Value::Object(m) if m.is_empty() => Some("(none)".into()),
            _ => None,
        }
    }
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        match (scalar(v), v) {
            (Some(s), _) if prefix.is_empty() => out.push(s),
            (Some(s), _) => out.push(format!("{prefix}: {s}")),
            (None, Value::Object(m)) => m.iter().for_each(|(k, x)| walk(&key(k), x, out)),
            (None, Value::Array(a)) => a.iter().enumerate().for_each(|(i, x)| walk(&format!("{prefix}[{i}]"), x, out)),
            (None, _) => {}
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

/// ERASURE-HORIZON's table, one row per copy: the copy, how long a deleted
/// row stays recoverable from it, the erasure_within it answers to, and the
/// oldest version found there.
pub(crate) const HORIZON_HEADER: [&str; 4] = ["copy", "recoverable up to", "erasure_within", "oldest version held"];

pub(crate) fn horizon_row(c: &crate::audit::objectives::CopyHorizon) -> [String; 4] {
    let days = |d: u64| if d == 1 { "1 day".to_string() } else { format!("{d} days") };
    [
        c.copy.clone(),
        match (&c.horizon_days, &c.unbounded) {
            (Some(d), _) => days(*d),
            (None, Some(why)) => format!("indefinitely ({why})"),
            (None, None) => "indefinitely".into(),
        },
        c.erasure_within_days.map_or_else(|| "not judged".into(), days),
        match (c.oldest_version_days, c.versions) {
            (Some(d), _) => format!("{d:.1} days old"),
            (None, Some(_)) => "none held".into(),
            (None, None) => "not read".into(),
        },
    ]
}

/// The report's run facts on one line ("2026-12-02T06:00:00Z · suoops-policy
/// 0.1.0 · AWS account 123456789012 · regions eu-west-1, us-east-1"); None
/// without them (golden tests).
pub(crate) fn run_line(report: &crate::audit::Report) -> Option<String> {
    let r = report.run.as_ref()?;
    let account = r.account.as_deref().map_or("AWS account unknown".to_string(), |a| format!("AWS account {a}"));
    Some(format!(
        "{} · suoops-policy {} · {account} · regions {} · policy {}",
        r.generated_at,
        r.tool_version,
        r.regions.join(", "),
        r.policy
    ))
}

/// Golden tests of the audit report formats for one fixed estate: a
/// passing, a failing (with a waiver that expired), an unknown and a
/// waived control, and the objectives they give.
#[cfg(test)]
mod golden {
    use serde_json::json;

    use crate::audit::{apply_waivers, objectives, Report, Severity, Status};
    use crate::model::control::ControlDef;
    use crate::model::Address;

    fn estate() -> Report {
        const SSE: ControlDef = ControlDef {
            id: "S3-SSE",
            title: "Default encryption at rest",
            rationale: "Backups hold PII.",
            severity: Severity::High,
            objectives: &["ENCRYPTION-AT-REST"],
        };
        const TLS: ControlDef = ControlDef { id: "S3-TLS", title: "TLS only", objectives: &[], ..SSE };
        const AOF: ControlDef =
            ControlDef { id: "REDIS-AOF", title: "Append-only file", severity: Severity::Medium, ..TLS };
        const MFA: ControlDef = ControlDef { id: "S3-MFA-DELETE", title: "MFA delete", severity: Severity::Low, ..TLS };
        let b = Address::parse("s3.suoops-backups");
        let mut r = Report::new(vec![
            SSE.result(
                &b,
                Status::Pass,
                json!({"algorithm": "aws:kms"}),
                json!({"algorithm": "aws:kms"}),
                None,
                "-",
                9,
            ),
            TLS.result(
                &b,
                Status::Fail,
                json!(true),
                json!(null),
                Some("no TLS-only statement <&>".into()),
                "apply",
                12,
            ),
            AOF.result(
                &Address::parse("redis.queues"),
                Status::Unknown,
                json!({"appendonly": "yes"}),
                json!(null),
                Some("cannot connect".into()),
                "apply",
                40,
            ),
            MFA.result(&b, Status::Fail, json!("enabled"), json!("disabled"), None, "root step", 7),
        ]);
        let waiver = |control: &str, expires: &str| crate::policy::Waiver {
            control: control.into(),
            address: "s3.suoops-backups".into(),
            owner: "platform".into(),
            reason: "accepted".into(),
            expires: expires.into(),
        };
        apply_waivers(&mut r, &[waiver("S3-MFA-DELETE", "2030-01-01"), waiver("S3-TLS", "2026-01-01")], "2026-11-30");
        let policy = crate::policy::parse("p.yaml", b"version: 1\n".to_vec(), &|_| None).expect("policy");
        r.objectives = objectives::evaluate(&r, &policy);
        // Fixed run facts: the header every report starts with.
        r.run = Some(crate::audit::RunContext {
            generated_at: "2026-12-02T03:15:00Z".into(),
            tool_version: "0.0.0-golden".into(),
            account: Some("123456789012".into()),
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            policy: "policies/suoops.yaml".into(),
        });
        r
    }

    #[test]
    fn every_format_for_people_shows_the_copies_and_their_horizons() {
        let mut r = estate();
        let o = r.objectives.iter_mut().find(|o| o.id == "ERASURE-HORIZON").expect("objective");
        o.copies = vec![
            objectives::CopyHorizon {
                copy: "s3://suoops-backups/postgres/ (postgres-daily-dump)".into(),
                horizon_days: Some(17),
                unbounded: None,
                erasure_within_days: Some(30),
                oldest_version_days: Some(16.4),
                versions: Some(12),
            },
            objectives::CopyHorizon {
                copy: "s3://suoops-backups-dr/pgbackrest/ (DR copy of the pgBackRest repository)".into(),
                horizon_days: None,
                unbounded: Some(
                    "no lifecycle rule of suoops-backups-dr expires current objects under pgbackrest/".into(),
                ),
                erasure_within_days: Some(30),
                oldest_version_days: None,
                versions: None,
            },
        ];
        let md = super::markdown::report(&r);
        assert!(md.contains("| copy | recoverable up to | erasure_within | oldest version held |"), "{md}");
        assert!(
            md.contains("| s3://suoops-backups/postgres/ (postgres-daily-dump) | 17 days | 30 days | 16.4 days old |"),
            "{md}"
        );
        assert!(md.contains("| indefinitely (no lifecycle rule of suoops-backups-dr expires current objects under pgbackrest/) | 30 days | not read |"), "{md}");
        let html = super::html::report(&r, "p");
        assert!(html.contains("<tr><td>s3://suoops-backups/postgres/ (postgres-daily-dump)</td><td>17 days</td><td>30 days</td><td>16.4 days old</td></tr>"), "{html}");
        let text = super::text::audit(&r, super::Paint { on: false });
        assert!(text.contains("s3://suoops-backups/postgres/ (postgres-daily-dump): up to 17 days (erasure_within 30 days; oldest version held: 16.4 days old)"), "{text}");
    }

    #[test]
    fn audit_markdown_and_html_start_with_the_run_facts_and_show_pairs() {
        let md = super::markdown::report(&estate());
        assert!(md.contains("2026-12-02T03:15:00Z · suoops-policy 0.0.0-golden · AWS account 123456789012 · regions eu-west-1, us-east-1"), "{md}");
        assert!(md.contains("`algorithm: aws:kms`"), "{md}");
        let html = super::html::report(&estate(), "policies/suoops.yaml");
        assert!(
            html.contains("AWS account <b>123456789012</b>") && html.contains("<code>algorithm: aws:kms</code>"),
            "{html}"
        );
        let mut unreached = estate();
        unreached.unreached = vec!["cannot reach the endpoint: connection refused".into()];
        for text in [
            super::markdown::report(&unreached),
            super::html::report(&unreached, "p"),
            super::text::audit(&unreached, super::Paint { on: false }),
        ] {
            assert!(
                text.contains("Could not read the live state") || text.contains("could not read the live state"),
                "{text}"
            );
            assert!(text.contains("connection refused"), "{text}");
        }
        assert!(super::openmetrics::report(&unreached).contains("\nsuoops_audit_up 0\n"));
        assert!(super::openmetrics::report(&estate()).contains("\nsuoops_audit_up 1\n"));
    }

    #[test]
    fn pairs_read_as_short_key_value_lines() {
        let v = json!({"status": "Enabled", "rules": [{"id": "a", "days": 3}], "tags": ["x", "y"], "none": null, "deep": {"k": {"j": 1}}});
        assert_eq!(
            super::pairs(&v),
            ["status: Enabled", "rules[0].id: a", "rules[0].days: 3", "tags: x, y", "none: (none)", "deep.k.j: 1"]
        );
        assert_eq!(super::pairs(&json!("disabled")), ["disabled"]);
    }

    #[test]
    fn audit_json() {
        assert_eq!(estate().objectives.len(), 10);
        insta::assert_snapshot!(format!("{:#}", super::json::audit(&estate())));
    }

    #[test]
    fn audit_junit() {
        insta::assert_snapshot!(super::junit::report(&estate()));
    }

    #[test]
    fn audit_sarif() {
        insta::assert_snapshot!(format!("{:#}", super::sarif::report(&estate(), "policies/suoops.yaml")));
    }

    #[test]
    fn audit_text() {
        insta::assert_snapshot!(super::text::audit(&estate(), super::Paint { on: false }));
    }
}
