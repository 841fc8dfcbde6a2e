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

/// A JSON value on one line; strings without quotes.
pub(crate) fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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
        r
    }

    #[test]
    fn audit_json() {
        assert_eq!(estate().objectives.len(), 9);
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
