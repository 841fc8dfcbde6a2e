//! Markdown for pull requests: the audit report, and the plan split into
//! comments of at most 65,536 characters.

use std::fmt::Write;

use super::compact;
use crate::audit::{Report, Status};

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown: a summary table, then one table per resource.
pub fn report(report: &Report) -> String {
    let s = report.summary();
    let verdict = if report.compliant() { "compliant" } else { "**not compliant**" };
    let mut out = String::from("## suoops-policy audit\n\n");
    if let Some(line) = super::run_line(report) {
        let _ = writeln!(out, "{}\n", md(&line));
    }
    for u in &report.unreached {
        let _ = writeln!(out, "> **Could not read the live state:** {}\n", md(u));
    }
    if !report.accounts.is_empty() {
        let _ = writeln!(out, "| account | id | verdict |\n|---|---|---|");
        for a in &report.accounts {
            let why = a.reason.as_deref().map(|r| format!(": {}", md(r))).unwrap_or_default();
            let _ = writeln!(out, "| {} | {} | {}{why} |", md(&a.name), a.id, a.status.replace('_', " "));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "| passed | failed | unknown | waived | verdict |\n|---:|---:|---:|---:|---|");
    let _ = writeln!(out, "| {} | {} | {} | {} | {verdict} |\n", s.passed, s.failed, s.unknown, s.waived);
    if !report.objectives.is_empty() {
        let _ = writeln!(out, "### Objectives\n\n| objective | verdict | reasons |\n|---|---|---|");
        for o in &report.objectives {
            let v = match o.verdict {
                crate::audit::objectives::Verdict::Met => "✅ met",
                crate::audit::objectives::Verdict::NotMet => "❌ not met",
                crate::audit::objectives::Verdict::NotEvaluated => "➖ not evaluated",
            };
            let notes = o.notes.iter().map(|n| format!("note: {n}"));
            let said: Vec<String> = o.reasons.iter().cloned().chain(notes).collect();
            let _ = writeln!(out, "| {} — {} | {v} | {} |", o.id, md(o.title), md(&said.join("; ")));
        }
        for o in report.objectives.iter().filter(|o| !o.copies.is_empty()) {
            let _ = writeln!(
                out,
                "\n#### {}: every copy of the backups\n\n| {} |\n|---|---|---|---|",
                o.id,
                super::HORIZON_HEADER.join(" | ")
            );
            for c in &o.copies {
                let row = super::horizon_row(c).map(|s| md(&s));
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
        }
    }
    let mut last = None;
    for c in &report.controls {
        if last != Some(&c.address) {
            let _ =
                writeln!(out, "\n### `{}`\n\n| status | control | observed | detail |\n|---|---|---|---|", c.address);
            last = Some(&c.address);
        }
        let mark = match c.status {
            Status::Pass => "✅ pass",
            Status::Fail => "❌ fail",
            Status::Unknown => "❔ unknown",
            Status::Waived => "⏸ waived",
        };
        let detail = match (&c.waiver, &c.detail) {
            (Some(w), d) => format!(
                "{}waiver by {} until {}: {}",
                d.as_deref().map(|d| format!("{d}; ")).unwrap_or_default(),
                w.owner,
                w.expires,
                w.reason
            ),
            (None, Some(d)) => d.clone(),
            (None, None) => String::new(),
        };
        let observed: Vec<String> = super::pairs(&c.observed)
            .iter()
            .map(|p| {
                let p = if p.chars().count() > 120 {
                    format!("{}…", p.chars().take(120).collect::<String>())
                } else {
                    p.clone()
                };
                format!("`{}`", md(&p).replace('`', "'"))
            })
            .collect();
        let _ = writeln!(out, "| {mark} | {} {} | {} | {} |", c.id, md(c.title), observed.join("<br>"), md(&detail));
    }
    out
}

/// GitHub's limit on one pull-request comment.
pub const COMMENT_LIMIT: usize = 65_536;

/// The plan as Markdown for pull-request comments: a summary table first,
/// one collapsible section per resource, destructive changes called out.
/// Split into numbered parts of at most [`COMMENT_LIMIT`] characters; a
/// section too large on its own is cut with a pointer to the JSON plan.
pub fn plan(plan: &crate::model::Plan, limit: usize) -> Vec<String> {
    use crate::model::Action;
    let s = plan.summary();
    let destructive: Vec<&str> = plan.changes.iter().filter(|c| c.destructive).map(|c| c.address.as_str()).collect();
    let mut head = String::from("## suoops-policy plan\n\n");
    let _ = writeln!(
        head,
        "| to create | to change | to destroy | unchanged | unreadable | in conflict | manual |\n|---:|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} | {} |\n",
        s.create, s.update, s.delete, s.unchanged, s.unknown, s.conflicts, s.manual
    );
    if !destructive.is_empty() {
        let _ = writeln!(
            head,
            "> ⚠️ **Destructive** (apply needs `--allow-destroy`): {}\n",
            destructive.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
        );
    }
    let irreversible: Vec<String> =
        plan.changes.iter().filter(|c| c.irreversible).map(|c| format!("`{}`", c.address)).collect();
    if !irreversible.is_empty() {
        let _ = writeln!(
            head,
            "> ⚠️ **Irreversible**, nobody can undo it (apply needs `--allow-irreversible`): {}\n",
            irreversible.join(", ")
        );
    }
    // Sections, in plan order, one per resource with something to say.
    let mut sections: Vec<String> = Vec::new();
    let mut current: Option<(String, String, bool)> = None;
    let flush = |cur: Option<(String, String, bool)>, out: &mut Vec<String>| {
        if let Some((res, body, bad)) = cur {
            if !body.is_empty() {
                let mark = if bad { " ⚠️ destructive" } else { "" };
                out.push(format!(
                    "<details><summary><code>{res}</code>{mark}</summary>\n\n```diff\n{body}```\n\n</details>\n"
                ));
            }
        }
    };
    for c in &plan.changes {
        let res = c.address.resource_addr().to_string();
        if current.as_ref().is_none_or(|(r, _, _)| r != &res) {
            flush(current.take(), &mut sections);
            current = Some((res, String::new(), false));
        }
        let Some((_, body, bad)) = current.as_mut() else { continue };
        let sign = match c.action {
            Action::Create => "+",
            // GitHub colours only `+`, `-` and `!` in a diff block.
            Action::Update => "!",
            Action::Delete => "-",
            Action::NoOp if !c.unknown.is_empty() || !c.conflicts.is_empty() || c.manual.is_some() => "!",
            Action::NoOp => continue,
        };
        *bad |= c.destructive;
        let _ = writeln!(body, "{sign} {} ({:?})", c.address, c.action);
        for a in c.attributes.iter().map(crate::model::AttrChange::masked) {
            let before = a.before.as_ref().map_or("(not set)".to_string(), compact);
            if c.action == Action::Update {
                let _ = writeln!(body, "-     {}: {before}", a.name);
                let _ = writeln!(body, "+     {}: {}", a.name, compact(&a.after));
            } else {
                let _ = writeln!(body, "{sign}     {}: {} -> {}", a.name, before, compact(&a.after));
            }
        }
        for u in &c.unknown {
            let _ = writeln!(body, "!     {}: unknown ({})", u.attribute, u.reason);
        }
        for k in &c.conflicts {
            let _ = writeln!(body, "!     conflict: {k}");
        }
        if let Some(m) = &c.manual {
            let _ = writeln!(body, "!     manual step: {m}");
        }
    }
    flush(current, &mut sections);
    if sections.is_empty() {
        head.push_str("No changes. The live state matches the policy.\n");
    }
    // Pack into parts; reserve room for the part header.
    let header = |i: usize, n: usize| {
        if n > 1 {
            format!("<!-- suoops-policy plan, part {i} of {n} -->\n**Part {i} of {n}**\n\n")
        } else {
            String::new()
        }
    };
    let room = limit.saturating_sub(80);
    let cut = |s: String| -> String {
        if s.len() <= room {
            return s;
        }
        let mut end = room.saturating_sub(120);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}\n```\n\n… section truncated; the full plan is in `suoops-policy plan --format json`.\n\n</details>\n",
            &s[..end]
        )
    };
    let mut parts: Vec<String> = vec![head];
    for sec in sections.into_iter().map(cut) {
        let last = parts.last_mut().map(|p| p.len()).unwrap_or(0);
        if last + sec.len() > room {
            parts.push(String::new());
        }
        if let Some(p) = parts.last_mut() {
            p.push_str(&sec);
        }
    }
    let n = parts.len();
    parts.into_iter().enumerate().map(|(i, p)| format!("{}{p}", header(i + 1, n))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Address, AttrChange, Change, Plan, UnknownSetting};
    use serde_json::json;

    fn sample() -> Plan {
        let mut create = Change::new(Address::parse("s3.suoops-backups"), Action::Create);
        create.attributes.push(AttrChange::new("versioning", None, json!("enabled")));
        let mut rule = Change::new(Address::parse("s3.suoops-backups.lifecycle.old"), Action::Delete);
        rule.destructive = true;
        let mut role = Change::new(Address::parse("iam.role.writer"), Action::Update);
        role.attributes.push(AttrChange::new("description", Some(json!("a")), json!("b")));
        let mut redis = Change::new(Address::parse("redis.queues"), Action::NoOp);
        redis.unknown.push(UnknownSetting { attribute: "connection".into(), reason: "cannot connect: refused".into() });
        let mut pg = Change::new(Address::parse("postgres.primary"), Action::Update);
        let mut cmd = AttrChange::new("archive_command", Some(json!("cp %p /old")), json!("push --token s3cr3t %p"));
        cmd.sensitive = true;
        pg.attributes.push(cmd);
        Plan::new(vec![role, create, rule, redis, pg, Change::new(Address::parse("s3.quiet"), Action::NoOp)])
    }

    #[test]
    fn plan_text_snapshot() {
        insta::assert_snapshot!(crate::render::text::plan(&sample(), crate::render::Paint { on: false }));
    }

    #[test]
    fn sensitive_values_are_masked_in_every_plan_format() {
        let text = crate::render::text::plan(&sample(), crate::render::Paint { on: false });
        let json = crate::render::json::plan(&sample()).to_string();
        let md = plan(&sample(), COMMENT_LIMIT).concat();
        for (name, out) in [("text", &text), ("json", &json), ("markdown", &md)] {
            assert!(!out.contains("s3cr3t") && !out.contains("/old"), "{name}: {out}");
            assert!(out.contains("(sensitive value)"), "{name}: {out}");
        }
    }

    #[test]
    fn markdown_plan_marks_updates_with_colours_github_shows() {
        let md = plan(&sample(), COMMENT_LIMIT).concat();
        assert!(md.contains("! iam.role.writer (Update)\n-     description: a\n+     description: b\n"), "{md}");
        let in_diff_blocks = md.split("```diff\n").skip(1).flat_map(|b| b.split("```").next().unwrap_or("").lines());
        for line in in_diff_blocks {
            assert!(matches!(line.chars().next(), Some('+' | '-' | '!')), "uncoloured line {line:?}");
        }
    }

    #[test]
    fn plan_markdown_snapshot() {
        let parts = plan(&sample(), COMMENT_LIMIT);
        assert_eq!(parts.len(), 1);
        insta::assert_snapshot!(parts[0]);
    }

    #[test]
    fn plan_json_snapshot() {
        insta::assert_snapshot!(serde_json::to_string_pretty(&crate::render::json::plan(&sample())).unwrap_or_default());
    }

    #[test]
    fn small_limits_split_and_truncate_with_a_pointer() {
        let parts = plan(&sample(), 700);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= 700), "{parts:?}");
        // One resource larger than a comment: cut, with a pointer to the JSON.
        let mut big = Change::new(Address::parse("s3.huge"), Action::Create);
        for i in 0..300 {
            big.attributes.push(AttrChange::new(&format!("tags.key{i}"), None, json!("value")));
        }
        let parts = plan(&Plan::new(vec![big]), 2000);
        assert!(parts.iter().all(|p| p.len() <= 2000), "{parts:?}");
        assert!(
            parts.concat().contains("section truncated; the full plan is in `suoops-policy plan --format json`"),
            "{parts:?}"
        );
    }
}
