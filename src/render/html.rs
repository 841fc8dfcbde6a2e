//! The audit as one self-contained HTML file for people (auditors): no
//! scripts, no external assets; an at-a-glance chart of objectives and
//! controls, then every control by resource.

use std::fmt::Write;

use crate::audit::objectives::Verdict;
use crate::audit::{Report, Status};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const PASS: &str = "#2e7d32";
const FAIL: &str = "#c62828";
const UNKNOWN: &str = "#f9a825";
const WAIVED: &str = "#6d4c41";
const NA: &str = "#9e9e9e";

fn color(s: Status) -> &'static str {
    match s {
        Status::Pass => PASS,
        Status::Fail => FAIL,
        Status::Unknown => UNKNOWN,
        Status::Waived => WAIVED,
    }
}

/// A horizontal stacked bar: (count, colour, label) segments.
fn bar(out: &mut String, y: u32, label: &str, parts: &[(usize, &str, &str)]) {
    let total: usize = parts.iter().map(|p| p.0).sum::<usize>().max(1);
    let width = 560.0;
    let _ = write!(out, r#"<text x="0" y="{}" font-size="13">{}</text>"#, y + 15, esc(label));
    let mut x = 150.0;
    for (n, c, what) in parts {
        if *n == 0 {
            continue;
        }
        let w = width * (*n as f64) / (total as f64);
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="20" fill="{c}"><title>{n} {what}</title></rect>"#
        );
        if w > 18.0 {
            let _ = write!(out, r#"<text x="{:.1}" y="{}" font-size="12" fill="white">{n}</text>"#, x + 4.0, y + 15);
        }
        x += w;
    }
}

/// The report's style sheet.
const STYLE: &str = "\
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }\n\
h1 { margin-bottom: .2rem; } .sub { color: #555; margin-top: 0; }\n\
.verdict { display: inline-block; padding: .3rem .8rem; border-radius: 4px; color: white; font-weight: bold; }\n\
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; font-size: 14px; }\n\
th, td { border-bottom: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }\n\
.badge { color: white; border-radius: 3px; padding: 0 .4rem; font-size: 12px; font-weight: bold; }\n\
code { font-size: 12px; word-break: break-all; } h3 code { font-size: 16px; }\n\
.tiles { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0 1rem; }\n\
.tile { color: white; border-radius: 4px; padding: .5rem .7rem; min-width: 12rem; }\n\
.tile small { display: block; opacity: .9; }\n\
";

pub fn report(report: &Report, policy_file: &str) -> String {
    let s = report.summary();
    let compliant = report.compliant();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>suoops-policy audit</title>
<style>
{STYLE}</style></head><body>
<h1>Backup compliance audit</h1>
<p class="sub">policy <code>{}</code> · {} controls · <span class="verdict" style="background:{}">{}</span></p>
"#,
        esc(policy_file),
        report.controls.len(),
        if compliant { PASS } else { FAIL },
        if compliant { "compliant" } else { "not compliant" }
    );
    if let Some(r) = &report.run {
        let _ = writeln!(
            out,
            r#"<p class="sub">made <b>{}</b> · suoops-policy <b>{}</b> · AWS account <b>{}</b> · regions <b>{}</b></p>"#,
            esc(&r.generated_at),
            esc(&r.tool_version),
            esc(r.account.as_deref().unwrap_or("unknown")),
            esc(&r.regions.join(", "))
        );
    }
    for u in &report.unreached {
        let _ = writeln!(
            out,
            r#"<p class="verdict" style="background:{FAIL}">Could not read the live state: {}</p>"#,
            esc(u)
        );
    }
    accounts(&mut out, report);
    if !report.objectives.is_empty() {
        out.push_str("<h2>Objectives</h2><div class=\"tiles\">");
        for o in &report.objectives {
            let (c, word) = match o.verdict {
                Verdict::Met => (PASS, "met"),
                Verdict::NotMet => (FAIL, "not met"),
                Verdict::NotEvaluated => (NA, "not evaluated"),
            };
            let _ = write!(
                out,
                r#"<div class="tile" style="background:{c}" title="{}"><b>{}</b><small>{}</small><small>{word}</small></div>"#,
                esc(&o.reasons.join("; ")),
                esc(o.id),
                esc(o.title)
            );
        }
        out.push_str("</div>");
        for o in report.objectives.iter().filter(|o| !o.copies.is_empty()) {
            let _ = write!(out, "<h3>{}: every copy of the backups</h3><table><tr>", esc(o.id));
            for h in super::HORIZON_HEADER {
                let _ = write!(out, "<th>{h}</th>");
            }
            out.push_str("</tr>");
            for c in &o.copies {
                out.push_str("<tr>");
                for cell in super::horizon_row(c) {
                    let _ = write!(out, "<td>{}</td>", esc(&cell));
                }
                out.push_str("</tr>");
            }
            out.push_str("</table>");
        }
    }
    // One bar for all controls, then one per registered kind that has
    // controls in the report (a kind's are the ones it declares).
    let areas = crate::audit::areas();
    let kind_of = |id: &str| areas.iter().find(|(_, ids)| ids.contains(&id)).map(|(k, _)| *k);
    let matches = |area: Option<&str>, id: &str| area.is_none_or(|a| kind_of(id) == Some(a));
    let count = |area: Option<&str>, st: Status| {
        report.controls.iter().filter(|c| matches(area, c.id) && c.status == st).count()
    };
    let rows: Vec<Option<&str>> = std::iter::once(None)
        .chain(areas.iter().map(|(k, _)| Some(*k)))
        .filter(|area| report.controls.iter().any(|c| matches(*area, c.id)))
        .collect();
    let mut svg = String::new();
    for (i, area) in rows.iter().enumerate() {
        let parts = [
            (count(*area, Status::Pass), PASS, "passed"),
            (count(*area, Status::Fail), FAIL, "failed"),
            (count(*area, Status::Unknown), UNKNOWN, "unknown"),
            (count(*area, Status::Waived), WAIVED, "waived"),
        ];
        bar(&mut svg, 10 + 28 * i as u32, area.unwrap_or("all controls"), &parts);
    }
    let height = 20 + 28 * rows.len() as u32 + 20;
    let legend_y = height - 8;
    let _ = write!(
        out,
        r#"<h2>Controls</h2><svg role="img" aria-label="controls by status" width="740" height="{height}" xmlns="http://www.w3.org/2000/svg">{svg}
<rect x="150" y="{}" width="10" height="10" fill="{PASS}"/><text x="164" y="{legend_y}" font-size="12">passed {}</text>
<rect x="250" y="{}" width="10" height="10" fill="{FAIL}"/><text x="264" y="{legend_y}" font-size="12">failed {}</text>
<rect x="350" y="{}" width="10" height="10" fill="{UNKNOWN}"/><text x="364" y="{legend_y}" font-size="12">unknown {}</text>
<rect x="470" y="{}" width="10" height="10" fill="{WAIVED}"/><text x="484" y="{legend_y}" font-size="12">waived {}</text></svg>"#,
        legend_y - 9,
        s.passed,
        legend_y - 9,
        s.failed,
        legend_y - 9,
        s.unknown,
        legend_y - 9,
        s.waived
    );
    let mut last = None;
    for c in &report.controls {
        if last != Some(&c.address) {
            if last.is_some() {
                out.push_str("</table>");
            }
            let _ = write!(out, "<h3><code>{}</code></h3><table><tr><th>status</th><th>control</th><th>observed</th><th>detail / fix</th></tr>", esc(c.address.as_str()));
            last = Some(&c.address);
        }
        let word = format!("{:?}", c.status).to_lowercase();
        let mut detail = c.detail.clone().unwrap_or_default();
        if let Some(w) = &c.waiver {
            detail = format!("{detail} waiver: {} ({}, until {})", w.reason, w.owner, w.expires);
        }
        let fix =
            if c.status == Status::Pass { String::new() } else { format!("<br><i>fix:</i> {}", esc(&c.remediation)) };
        let _ = write!(
            out,
            r#"<tr><td><span class="badge" style="background:{}">{word}</span></td><td><b>{}</b> {}</td><td><code>{}</code></td><td>{}{fix}</td></tr>"#,
            color(c.status),
            esc(c.id),
            esc(c.title),
            super::pairs(&c.observed).iter().map(|p| esc(p)).collect::<Vec<_>>().join("</code><br><code>"),
            esc(detail.trim())
        );
    }
    if last.is_some() {
        out.push_str("</table>");
    }
    out.push_str("</body></html>\n");
    out
}

/// Each declared account's verdict, before anything else.
fn accounts(out: &mut String, report: &Report) {
    if report.accounts.is_empty() {
        return;
    }
    out.push_str("<h2>Accounts</h2><table><tr><th>account</th><th>id</th><th>verdict</th><th>why</th></tr>");
    for a in &report.accounts {
        let colour = if a.status == "compliant" { PASS } else { FAIL };
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td style="color:{colour}">{}</td><td>{}</td></tr>"#,
            esc(&a.name),
            esc(&a.id),
            esc(&a.status.replace('_', " ")),
            esc(a.reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>");
}

#[cfg(test)]
mod chart {
    use crate::audit::{Report, Severity, Status};
    use crate::model::control::ControlDef;
    use crate::model::Address;

    /// One bar per registered kind that has controls: KMS keys and
    /// PostgreSQL's point-in-time controls get theirs (they had none).
    #[test]
    fn the_chart_has_a_bar_for_every_kind_with_controls() {
        let def =
            |id: &'static str| ControlDef { id, title: "t", rationale: "r", severity: Severity::High, objectives: &[] };
        let r = Report::new(vec![
            def("KMS-ROTATION").result(
                &Address::parse("kms.k"),
                Status::Fail,
                serde_json::json!(true),
                serde_json::json!(false),
                None,
                "-",
                1,
            ),
            def("PITR-WAL").result(
                &Address::parse("postgres.p.pitr"),
                Status::Pass,
                serde_json::json!(1),
                serde_json::json!(1),
                None,
                "-",
                2,
            ),
            def("RESTORE-DRILL").result(
                &Address::parse("postgres.p"),
                Status::Pass,
                serde_json::json!(1),
                serde_json::json!(1),
                None,
                "-",
                3,
            ),
        ]);
        let html = super::report(&r, "p.yaml");
        for label in ["all controls", "kms", "postgres", "s3"] {
            assert!(html.contains(&format!(r#"font-size="13">{label}</text>"#)), "{label}: {html}");
        }
        assert!(!html.contains(r#"font-size="13">redis</text>"#), "no redis controls, no redis bar");
    }
}
