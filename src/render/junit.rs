//! The audit report as JUnit XML: one test case per control, for CI
//! dashboards.

use std::fmt::Write;

use super::compact;
use crate::audit::{ControlResult, Report, Status};

fn xml(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The suites: one per declared account when the policy declares accounts
/// (`account NAME (ID)`, its resources' controls in address order), else
/// one per resource.
fn suites(report: &Report) -> Vec<(String, Vec<&ControlResult>)> {
    if report.accounts.is_empty() {
        let mut out: Vec<(String, Vec<&ControlResult>)> = Vec::new();
        for c in &report.controls {
            match out.last_mut() {
                Some((name, group)) if name == c.address.as_str() => group.push(c),
                _ => out.push((c.address.to_string(), vec![c])),
            }
        }
        return out;
    }
    let mut out: Vec<(String, Vec<&ControlResult>)> = report
        .accounts
        .iter()
        .map(|a| {
            let mine = report.controls.iter().filter(|c| c.account.as_deref() == Some(a.name.as_str())).collect();
            (format!("account {} ({})", a.name, a.id), mine)
        })
        .collect();
    let rest: Vec<&ControlResult> = report.controls.iter().filter(|c| c.account.is_none()).collect();
    if !rest.is_empty() {
        out.push(("the caller's account".to_string(), rest));
    }
    out.retain(|(_, g)| !g.is_empty());
    out
}

/// JUnit XML: a test suite per resource (per account when the policy
/// declares accounts), a test case per control; failures carry the detail,
/// unknown and waived controls are skipped with why.
pub fn report(report: &Report) -> String {
    let s = report.summary();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"suoops-policy audit\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
        report.controls.len(),
        s.failed,
        s.unknown + s.waived
    );
    for (name, group) in suites(report) {
        let failures = group.iter().filter(|c| c.status == Status::Fail).count();
        let skipped = group.iter().filter(|c| matches!(c.status, Status::Unknown | Status::Waived)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
            xml(&name),
            group.len()
        );
        for c in &group {
            let addr = &c.address;
            let _ =
                write!(out, "    <testcase classname=\"{}\" name=\"{} {}\"", xml(addr.as_str()), c.id, xml(c.title));
            let body = format!(
                "expected: {}\nobserved: {}\nfix: {}",
                compact(&c.expected),
                compact(&c.observed),
                c.remediation
            );
            match c.status {
                Status::Pass => out.push_str("/>\n"),
                Status::Fail => {
                    let msg = c.detail.clone().unwrap_or_else(|| "does not match the policy".into());
                    let _ = write!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                        xml(&msg),
                        xml(&body)
                    );
                }
                Status::Unknown | Status::Waived => {
                    let msg = match (&c.waiver, &c.detail) {
                        (Some(w), _) if c.status == Status::Waived => {
                            format!("waived until {} by {}: {}", w.expires, w.owner, w.reason)
                        }
                        (_, Some(d)) => format!("could not be evaluated: {d}"),
                        _ => "could not be evaluated".into(),
                    };
                    let _ = write!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml(&msg));
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
