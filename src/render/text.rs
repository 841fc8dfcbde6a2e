//! Plan and audit as text for people: each resource with its attributes
//! before → after, then a summary line.

use std::fmt::Write;

use serde_json::Value;

use super::Paint;
use crate::audit::{Report, Status};
use crate::model::Applied;
use crate::model::{Action, Change, Plan};

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn before(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(|| "(not set)".to_string(), value)
}

/// Text for one resource's change (nothing for an unchanged resource).
pub fn change(out: &mut String, c: &Change, p: Paint) {
    if let (Some(step), false) = (&c.manual, c.is_noop()) {
        let _ = writeln!(
            out,
            "{} {} needs a manual step (apply never makes this change)",
            p.yellow("!"),
            p.bold(c.address.as_str())
        );
        for a in &c.attributes {
            let _ = writeln!(out, "    {} {} {} → {}", p.yellow("~"), a.name, before(&a.before), value(&a.after));
        }
        let _ = writeln!(out, "    {} {step}\n", p.yellow("run:"));
        return;
    }
    let within = c.account.as_deref().map(|a| format!(" in account {a}")).unwrap_or_default();
    let head = match c.action {
        Action::Create => format!("{} {} will be created{within}", p.green("+"), p.bold(c.address.as_str())),
        Action::Update => {
            format!("{} {} will be updated in place{within}", p.yellow("~"), p.bold(c.address.as_str()))
        }
        Action::Delete => format!("{} {} will be destroyed{within}", p.red("-"), p.bold(c.address.as_str())),
        Action::NoOp if !c.conflicts.is_empty() || !c.unknown.is_empty() => {
            format!("{} {}", p.red("!"), p.bold(c.address.as_str()))
        }
        Action::NoOp => {
            if let Some(r) = &c.reason {
                let _ = writeln!(out, "{} {}: {r}\n", p.dim("="), p.dim(c.address.as_str()));
            }
            return;
        }
    };
    let _ = writeln!(out, "{head}");
    if let Some(r) = &c.reason {
        let _ = writeln!(out, "    {}", p.dim(&format!("# {r}")));
    }
    if c.destructive && c.attributes.is_empty() {
        let _ = writeln!(out, "    {}", p.red("# destructive: needs --allow-destroy"));
    }
    let width = c.attributes.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &c.attributes {
        if let (Some(d), false) = (&a.diff, a.sensitive) {
            // A document: its canonical JSON as a diff, line by line.
            let mark = if c.action == Action::Create { p.green("+") } else { p.yellow("~") };
            let _ = writeln!(out, "    {mark} {}:", a.name);
            for line in d.lines().filter(|l| !l.starts_with("---") && !l.starts_with("+++")) {
                let line = match line.chars().next() {
                    Some('+') => p.green(line),
                    Some('-') => p.red(line),
                    Some('@') => p.dim(line),
                    _ => line.to_string(),
                };
                let _ = writeln!(out, "        {line}");
            }
            continue;
        }
        let after = if a.sensitive { crate::model::SENSITIVE.to_string() } else { value(&a.after) };
        let line = match c.action {
            Action::Create => format!("    {} {:width$} = {after}", p.green("+"), a.name),
            _ => {
                let b = if a.sensitive { crate::model::SENSITIVE.to_string() } else { before(&a.before) };
                format!("    {} {:width$} {b} → {after}", p.yellow("~"), a.name)
            }
        };
        let _ = writeln!(out, "{line}");
        if a.destructive {
            let _ = writeln!(out, "      {}", p.red("# destructive: needs --allow-destroy"));
        }
        if a.irreversible {
            let _ = writeln!(out, "      {}", p.red("# irreversible: nobody can undo it; needs --allow-irreversible"));
        }
    }
    for u in &c.unknown {
        let _ = writeln!(out, "    {} {}: unknown ({})", p.red("?"), u.attribute, u.reason);
    }
    for conflict in &c.conflicts {
        let _ = writeln!(out, "    {} {}", p.red("conflict:"), conflict);
    }
    let _ = writeln!(out);
}

pub fn plan(plan: &Plan, p: Paint) -> String {
    let mut out = String::new();
    for c in &plan.changes {
        change(&mut out, c, p);
    }
    let s = plan.summary();
    let mut line = format!("Plan: {} to create, {} to change, {} unchanged", s.create, s.update, s.unchanged);
    if s.delete > 0 {
        line.push_str(&format!(", {} to destroy", s.delete));
    }
    if s.unknown > 0 {
        line.push_str(&format!(", {} not fully readable", s.unknown));
    }
    if s.conflicts > 0 {
        line.push_str(&format!(", {} in conflict", s.conflicts));
    }
    if s.manual > 0 {
        line.push_str(&format!(", {} manual step(s)", s.manual));
    }
    line.push('.');
    if !plan.has_changes() && !plan.is_incomplete() {
        let _ = writeln!(out, "No changes. The live state matches the policy.");
    }
    let _ = writeln!(out, "{}", p.bold(&line));
    out
}

pub fn audit(report: &Report, p: Paint) -> String {
    let mut out = String::new();
    if let Some(line) = super::run_line(report) {
        let _ = writeln!(out, "{}\n", p.dim(&format!("Audit of {line}")));
    }
    for u in &report.unreached {
        let _ = writeln!(out, "{} could not read the live state: {u}\n", p.red("!"));
    }
    for a in &report.accounts {
        let verdict = match a.status.as_str() {
            "compliant" => p.green("compliant"),
            "unreachable" => p.red("UNREACHABLE"),
            _ => p.red("not compliant"),
        };
        let _ = writeln!(out, "account {} ({}): {verdict}", a.name, a.id);
    }
    if !report.accounts.is_empty() {
        out.push('\n');
    }
    let mut last = None;
    for c in &report.controls {
        if last != Some(&c.address) {
            let heading = match &c.account {
                Some(a) => format!("{} (account {a})", c.address),
                None => c.address.to_string(),
            };
            let _ = writeln!(out, "{}", p.bold(&heading));
            last = Some(&c.address);
        }
        let mark = match c.status {
            Status::Pass => p.green("PASS"),
            Status::Fail => p.red("FAIL"),
            Status::Unknown => p.yellow("UNKNOWN"),
            Status::Waived => p.yellow("WAIVED"),
        };
        let _ = writeln!(out, "  {mark:<4} {:<18} {}", c.id, c.title);
        let _ = writeln!(out, "       {} {}", p.dim("observed:"), super::pairs(&c.observed).join(", "));
        if c.status != Status::Pass {
            let _ = writeln!(out, "       {} {}", p.dim("expected:"), super::pairs(&c.expected).join(", "));
            if let Some(d) = &c.detail {
                let _ = writeln!(out, "       {} {d}", p.dim("detail:  "));
            }
            let _ = writeln!(out, "       {} {}", p.dim("fix:     "), c.remediation);
        }
        if let Some(w) = &c.waiver {
            let state = if w.expired { "expired" } else { "until" };
            let _ = writeln!(out, "       {} {} ({}), {state} {}", p.dim("waiver:  "), w.reason, w.owner, w.expires);
        }
    }
    if !report.objectives.is_empty() {
        let _ = writeln!(out, "\n{}", p.bold("Objectives (from the backup strategy)"));
        for o in &report.objectives {
            let mark = match o.verdict {
                crate::audit::objectives::Verdict::Met => p.green("MET"),
                crate::audit::objectives::Verdict::NotMet => p.red("NOT MET"),
                crate::audit::objectives::Verdict::NotEvaluated => p.dim("n/a"),
            };
            let _ = writeln!(out, "  {mark:<7} {:<22} {}", o.id, o.title);
            for r in &o.reasons {
                let _ = writeln!(out, "          {}", p.dim(&format!("- {r}")));
            }
            for n in &o.notes {
                let _ = writeln!(out, "          {}", p.dim(&format!("note: {n}")));
            }
            for c in &o.copies {
                let [copy, horizon, within, oldest] = super::horizon_row(c);
                let _ = writeln!(
                    out,
                    "          {copy}: up to {horizon} (erasure_within {within}; oldest version held: {oldest})"
                );
            }
        }
    }
    let s = report.summary();
    let verdict = if report.compliant() { p.green("compliant") } else { p.red("NOT compliant") };
    let waived = if s.waived > 0 { format!(", {} waived", s.waived) } else { String::new() };
    let unmet = report.objectives.iter().filter(|o| o.verdict == crate::audit::objectives::Verdict::NotMet).count();
    let unmet = if unmet > 0 { format!(", {unmet} objective(s) not met") } else { String::new() };
    let _ = writeln!(
        out,
        "\nAudit: {} passed, {} failed, {} unknown{waived}{unmet}: {verdict}.",
        s.passed, s.failed, s.unknown
    );
    out
}

/// The apply result; `planned` (the plan's changes) lets the summary count
/// what the plan's summary counts: changes by address, as well as the
/// resources they were made on (a bucket's rules change with the bucket).
pub fn applied(results: &[Applied], planned: &[Change], p: Paint) -> String {
    let mut out = String::new();
    let mut ok = 0;
    let mut failed = 0;
    let covered = |a: &Applied| {
        let prefix = format!("{}.", a.address);
        planned
            .iter()
            .filter(|c| c.is_actionable())
            .filter(|c| c.address == a.address || c.address.as_str().starts_with(&prefix))
            .count()
    };
    let (mut made, mut not_made) = (0, 0);
    for a in results {
        let mark = if a.failed() { p.red("failed") } else { p.green("done") };
        // The account the resource is in, as the plan said.
        let account = planned
            .iter()
            .find(|c| c.address.resource_addr() == a.address.resource_addr())
            .and_then(|c| c.account.as_deref())
            .map(|n| format!(" (account {n})"))
            .unwrap_or_default();
        let _ = writeln!(out, "{}: {mark}{account}", p.bold(a.address.as_str()));
        for s in &a.steps {
            match &s.result {
                Ok(()) => {
                    let _ = writeln!(out, "    {} {}", p.green("✓"), s.step);
                }
                Err(e) => {
                    let _ = writeln!(out, "    {} {}: {e}", p.red("✗"), s.step);
                }
            }
        }
        for d in &a.did_not_take {
            let _ = writeln!(out, "    {} re-read after apply still differs: {d}", p.red("✗"));
        }
        if a.failed() {
            failed += 1;
            not_made += covered(a);
        } else {
            ok += 1;
            made += covered(a);
        }
    }
    let failed = if failed == 0 {
        "0 failed".to_string()
    } else {
        format!("{not_made} change(s) on {failed} resource(s) failed")
    };
    let _ = writeln!(out, "\nApply: {made} planned change(s) made on {ok} resource(s), {failed}.");
    out
}
