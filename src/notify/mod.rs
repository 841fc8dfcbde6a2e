//! `audit --notify`: post a message to webhooks when the audit's outcome
//! changes — a control or objective starts failing, or recovers — never on
//! every run. The outcome of the last run lives in a small state file
//! (`--state`), so a scheduled job on a fresh runner only posts changes.
//! Slack-compatible JSON by default, or a generic versioned document.
//! Delivery retries 5xx answers, timeouts and refused connections with
//! backoff for a bounded time; a webhook URL is a secret and is never
//! printed (only its scheme and host).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::objectives::Verdict;
use crate::audit::{Report, Status};

pub mod state;

/// How long one webhook may take in all, retries included.
pub const DELIVERY_BUDGET: Duration = Duration::from_secs(30);
/// One attempt's timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum NotifyFormat {
    /// Slack-compatible: `text` and `blocks`.
    #[default]
    Slack,
    /// A generic, versioned JSON document (`format_version`).
    Json,
}

/// The outcome of one audit, as the state file keeps it: each failing or
/// unknown control (`ID address` → status and detail) and each objective's
/// verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub format_version: String,
    /// "ID address" → "fail" / "unknown", only for those not passing.
    pub failing: BTreeMap<String, String>,
    /// Objective id → "met" / "not_met" / "not_evaluated".
    pub objectives: BTreeMap<String, String>,
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Unknown => "unknown",
        Status::Waived => "waived",
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Met => "met",
        Verdict::NotMet => "not_met",
        Verdict::NotEvaluated => "not_evaluated",
    }
}

/// Why a notification, or the state it compares with, failed. None
/// carries a webhook's path or query (which hold its token).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotifyError {
    /// `--notify env:NAME` with NAME unset or empty.
    #[error("--notify env:{0}: the environment variable `{0}` is not set")]
    VariableUnset(String),
    /// `--notify` that is not an http(s) URL (as `shown`).
    #[error("--notify {0}: not an http(s) URL")]
    NotHttp(String),
    #[error("{0}: not a valid URL")]
    InvalidUrl(String),
    #[error("no TLS roots: {0}")]
    NoTlsRoots(String),
    #[error("{0}")]
    Request(String),
    /// Every attempt within the budget failed; `why` is the last one's.
    #[error("{url}: gave up after {tries} attempt(s): {why}")]
    GaveUp { url: String, tries: u32, why: String },
    /// The state file cannot be read.
    #[error("cannot read {path}: {why}")]
    StateUnreadable { path: String, why: String },
    /// What the state file holds is not a state document.
    #[error("{at} is not a suoops-policy state file: {why}")]
    NotState { at: String, why: String },
    #[error("the state bucket `{0}` does not exist")]
    NoStateBucket(String),
    #[error("the state bucket `{bucket}`: {why}")]
    StateBucket { bucket: String, why: String },
    /// Reading or writing the state object in S3.
    #[error("{doing} s3://{bucket}/{key}: {why}")]
    StateObject { doing: &'static str, bucket: String, key: String, why: String },
}

impl Outcome {
    pub fn of(report: &Report) -> Outcome {
        Outcome {
            format_version: "1".into(),
            failing: report
                .controls
                .iter()
                .filter(|c| matches!(c.status, Status::Fail | Status::Unknown))
                .map(|c| (format!("{} {}", c.id, c.address), status_word(c.status).to_string()))
                .collect(),
            objectives: report.objectives.iter().map(|o| (o.id.to_string(), verdict_word(o.verdict).into())).collect(),
        }
    }

    /// The state file's outcome; None when there is none yet (first run).
    pub fn load(path: &Path) -> Result<Option<Outcome>, NotifyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Outcome::parse(&text, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NotifyError::StateUnreadable { path: path.display().to_string(), why: e.to_string() }),
        }
    }

    /// A state document read from `at` (for messages).
    pub fn parse(text: &str, at: &str) -> Result<Outcome, NotifyError> {
        serde_json::from_str(text).map_err(|e| NotifyError::NotState { at: at.to_string(), why: e.to_string() })
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// What changed since the last run; empty when nothing did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// Controls failing (or unknown) now that were not before.
    pub started: Vec<String>,
    /// Controls that were failing and pass (or are waived) now.
    pub recovered: Vec<String>,
    /// Objectives whose verdict changed: (id, before, now).
    pub objectives: Vec<(String, String, String)>,
}

impl Change {
    pub fn between(before: Option<&Outcome>, now: &Outcome) -> Change {
        let empty = Outcome::default();
        let b = before.unwrap_or(&empty);
        let started = now.failing.keys().filter(|k| b.failing.get(*k) != now.failing.get(*k)).cloned().collect();
        let recovered = b.failing.keys().filter(|k| !now.failing.contains_key(*k)).cloned().collect();
        let objectives = now
            .objectives
            .iter()
            .filter_map(|(id, v)| {
                let was = b.objectives.get(id).cloned().unwrap_or_else(|| "none".into());
                // On a first run only what is not met is news.
                let news = if before.is_none() { v == "not_met" } else { was != *v };
                news.then(|| (id.clone(), was, v.clone()))
            })
            .collect();
        Change { started, recovered, objectives }
    }

    pub fn is_empty(&self) -> bool {
        self.started.is_empty() && self.recovered.is_empty() && self.objectives.is_empty()
    }
}

/// The message for `change`, in `format`. `report` gives each failing
/// control's evidence and fix.
pub fn message(format: NotifyFormat, report: &Report, change: &Change, policy_file: &str) -> Value {
    let compliant = report.compliant();
    let find = |key: &str| report.controls.iter().find(|c| format!("{} {}", c.id, c.address) == key);
    let failing: Vec<Value> = change
        .started
        .iter()
        .filter_map(|k| find(k))
        .map(|c| {
            json!({
                "control": c.id, "address": c.address.as_str(), "status": status_word(c.status),
                "detail": c.detail, "remediation": c.remediation, "severity": format!("{:?}", c.severity).to_lowercase(),
            })
        })
        .collect();
    let recovered: Vec<Value> = change
        .recovered
        .iter()
        .map(|k| {
            let (id, addr) = k.split_once(' ').unwrap_or((k, ""));
            json!({"control": id, "address": addr})
        })
        .collect();
    let objectives: Vec<Value> =
        change.objectives.iter().map(|(id, b, n)| json!({"objective": id, "before": b, "now": n})).collect();
    match format {
        NotifyFormat::Json => json!({
            "format_version": "1",
            "source": "suoops-policy audit",
            "policy": policy_file,
            "compliant": compliant,
            "unreached": report.unreached,
            "started_failing": failing,
            "recovered": recovered,
            "objectives_changed": objectives,
        }),
        NotifyFormat::Slack => {
            let head = if !report.unreached.is_empty() {
                format!(
                    "suoops-policy: the audit could not read the live state, {} control(s) unknown ({policy_file})",
                    report.summary().unknown
                )
            } else if compliant {
                format!("suoops-policy: the backup estate is compliant again ({policy_file})")
            } else {
                format!(
                    "suoops-policy: {} control(s) started failing, {} recovered ({policy_file})",
                    change.started.len(),
                    change.recovered.len()
                )
            };
            let mut blocks =
                vec![json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&head, 150)}})];
            if !report.unreached.is_empty() {
                let text = format!("*Could not read*\n{}", report.unreached.join("\n"));
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, 2900)}}));
            }
            for f in &failing {
                let detail = f["detail"].as_str().unwrap_or("");
                let text = format!(
                    "*{} {}* `{}`\n{}\n_Fix:_ {}",
                    f["status"].as_str().unwrap_or("").to_uppercase(),
                    f["control"].as_str().unwrap_or(""),
                    f["address"].as_str().unwrap_or(""),
                    if detail.is_empty() { "(no detail)" } else { detail },
                    f["remediation"].as_str().unwrap_or("")
                );
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, 2900)}}));
            }
            if !recovered.is_empty() {
                let list: Vec<String> = recovered
                    .iter()
                    .map(|r| {
                        format!("• {} `{}`", r["control"].as_str().unwrap_or(""), r["address"].as_str().unwrap_or(""))
                    })
                    .collect();
                let text = format!("*Recovered*\n{}", list.join("\n"));
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, 2900)}}));
            }
            if !objectives.is_empty() {
                let list: Vec<String> = change
                    .objectives
                    .iter()
                    .map(|(id, b, n)| format!("• {id}: {} → {}", b.replace('_', " "), n.replace('_', " ")))
                    .collect();
                let text = format!("*Objectives*\n{}", list.join("\n"));
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, 2900)}}));
            }
            // Slack allows 50 blocks in a message.
            blocks.truncate(50);
            json!({"text": head, "blocks": blocks})
        }
    }
}

/// One run of a job (`backup run`, `restore-drill`), as its message says it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRun {
    pub command: &'static str,
    pub address: String,
    /// The backup was stored (and verified), or the drill passed.
    pub ok: bool,
    /// The object written or restored, `s3://BUCKET/KEY`.
    pub object: Option<String>,
    pub bytes: Option<u64>,
    pub seconds: Option<f64>,
    /// Why it failed, in one line.
    pub reason: Option<String>,
    /// The stage that failed (`upload`, `restore`, `check`…), when the
    /// job itself failed.
    pub stage: Option<&'static str>,
}

/// The one message of a job run, success or failure (the strategy: "emit
/// metric/Slack webhook on backup success/failure").
pub fn job_message(format: NotifyFormat, run: &JobRun) -> Value {
    match format {
        NotifyFormat::Json => json!({
            "format_version": "1",
            "source": format!("suoops-policy {}", run.command),
            "address": run.address,
            "ok": run.ok,
            "object": run.object,
            "bytes": run.bytes,
            "seconds": run.seconds,
            "reason": run.reason,
            "stage": run.stage,
        }),
        NotifyFormat::Slack => {
            let what = if run.ok { "succeeded" } else { "FAILED" };
            let head = format!("suoops-policy {} {}: {what}", run.command, run.address);
            let mut lines = Vec::new();
            if let Some(o) = &run.object {
                lines.push(format!("`{o}`"));
            }
            match (run.bytes, run.seconds) {
                (Some(b), Some(s)) => lines.push(format!("{b} bytes in {s:.1} s")),
                (None, Some(s)) => lines.push(format!("{s:.1} s")),
                _ => {}
            }
            match (&run.reason, run.stage) {
                (Some(r), Some(stage)) => lines.push(format!("_Reason ({stage}):_ {r}")),
                (Some(r), None) => lines.push(format!("_Reason:_ {r}")),
                _ => {}
            }
            let mut blocks =
                vec![json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&head, 150)}})];
            if !lines.is_empty() {
                blocks.push(
                    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&lines.join("\n"), 2900)}}),
                );
            }
            json!({"text": head, "blocks": blocks})
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
}

/// A webhook as the user named it: a URL, or `env:NAME` (read from the
/// environment, which keeps it out of shell history and CI logs).
pub fn resolve(arg: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, NotifyError> {
    let url = match arg.strip_prefix("env:") {
        Some(var) => env(var).filter(|v| !v.is_empty()).ok_or_else(|| NotifyError::VariableUnset(var.to_string()))?,
        None => arg.to_string(),
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(NotifyError::NotHttp(shown(arg)));
    }
    Ok(url)
}

/// What may be shown of a webhook: its scheme and host, never the path or
/// query (which carry the token).
pub fn shown(url: &str) -> String {
    if let Some(var) = url.strip_prefix("env:") {
        return format!("env:{var}");
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

/// POST `body` to `url`: retries on 5xx, timeouts and connection errors
/// with backoff (1 s, 2 s, 4 s …) within `budget`. Err: one line, without
/// the URL's path or query.
pub async fn deliver(url: &str, body: &Value, budget: Duration) -> Result<(), NotifyError> {
    use http_body_util::{BodyExt, Full};
    let uri: hyper::Uri = url.parse().map_err(|_| NotifyError::InvalidUrl(shown(url)))?;
    // The system's roots, the host name checked: as any HTTPS client.
    let tls = crate::tls::client_config(crate::tls::Verify::Full, Some("system".into()))
        .map_err(|e| NotifyError::NoTlsRoots(e.to_string()))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
    let payload = bytes::Bytes::from(body.to_string());
    let start = std::time::Instant::now();
    let mut pause = Duration::from_secs(1);
    let mut tries = 0;
    loop {
        tries += 1;
        let req = hyper::Request::post(uri.clone())
            .header("content-type", "application/json")
            .header("user-agent", concat!("suoops-policy/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(payload.clone()))
            .map_err(|e| NotifyError::Request(e.to_string()))?;
        let outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(req)).await {
            Err(_) => Err((true, "timed out".to_string())),
            Ok(Err(e)) => Err((true, if e.is_connect() { "cannot connect".into() } else { "request failed".into() })),
            Ok(Ok(resp)) => {
                let status = resp.status();
                // Read the answer (small) so the connection can be reused.
                let _ = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect()).await;
                if status.is_success() {
                    Ok(())
                } else {
                    Err((status.is_server_error() || status.as_u16() == 429, format!("HTTP {status}")))
                }
            }
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err((true, _)) if start.elapsed() + pause < budget => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(8));
            }
            Err((_, why)) => {
                return Err(NotifyError::GaveUp { url: shown(url), tries, why });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(failing: &[&str], objectives: &[(&str, &str)]) -> Outcome {
        Outcome {
            format_version: "1".into(),
            failing: failing.iter().map(|k| (k.to_string(), "fail".to_string())).collect(),
            objectives: objectives.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }

    #[test]
    fn only_changes_are_news() {
        let first = outcome(&["S3-SSE s3.b"], &[("ENCRYPTION-AT-REST", "not_met"), ("DR-COPY", "met")]);
        let c = Change::between(None, &first);
        assert_eq!(c.started, ["S3-SSE s3.b"]);
        assert_eq!(c.objectives, [("ENCRYPTION-AT-REST".to_string(), "none".to_string(), "not_met".to_string())]);
        assert!(Change::between(Some(&first), &first).is_empty(), "an unchanged run says nothing");
        let fixed = outcome(&[], &[("ENCRYPTION-AT-REST", "met"), ("DR-COPY", "met")]);
        let c = Change::between(Some(&first), &fixed);
        assert_eq!(c.recovered, ["S3-SSE s3.b"]);
        assert!(c.started.is_empty());
        // A compliant first run is no news.
        assert!(Change::between(None, &fixed).is_empty());
    }

    #[test]
    fn a_webhook_is_shown_without_its_token() {
        assert_eq!(shown("https://hooks.example.com/services/T0/B0/SECRET?x=1"), "https://hooks.example.com/…");
        assert_eq!(shown("https://user:pw@h.example/p"), "https://h.example/…");
        assert_eq!(shown("env:SLACK_WEBHOOK_URL"), "env:SLACK_WEBHOOK_URL");
        let env = |k: &str| (k == "HOOK").then(|| "https://h.example/T/SECRET".to_string());
        assert_eq!(resolve("env:HOOK", &env).as_deref(), Ok("https://h.example/T/SECRET"));
        let err = resolve("env:NOPE", &env).expect_err("unset");
        assert_eq!(err, NotifyError::VariableUnset("NOPE".into()));
        assert!(err.to_string().contains("`NOPE` is not set"), "{err}");
        let err = resolve("ftp://x/SECRET", &env).expect_err("scheme");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}
