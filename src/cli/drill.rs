//! `restore-drill ADDR`: restore the newest dump into a throw-away
//! database, run the checks, measure the time to restore; the record goes
//! beside the backups (audit's RESTORE-DRILL reads it) and, with --log,
//! a row into the strategy's Markdown log.

use std::io::Write;

use clap::Args;

use super::{connect, error, load_policy, out, Format, Global, PolicyArg};
use crate::providers::postgres::drill;

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub policy: PolicyArg,
    /// What to drill, e.g. postgres.primary or redis.queues.
    #[arg(value_name = "ADDR")]
    pub address: String,
    /// Who ran it, for the record (default: $SUOOPS_OPERATOR, $GITHUB_ACTOR, $USER).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Append a row to this Markdown log (created with its header if new),
    /// e.g. docs/backup-restore-test-log.md.
    #[arg(long, value_name = "FILE")]
    pub log: Option<std::path::PathBuf>,
    /// Output format of the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the result as OpenMetrics gauges to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<std::path::PathBuf>,
}

fn operator(a: &DrillArgs) -> String {
    a.operator
        .clone()
        .or_else(|| ["SUOOPS_OPERATOR", "GITHUB_ACTOR", "USER"].iter().find_map(|v| std::env::var(v).ok()))
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub async fn run(g: &Global, a: &DrillArgs) -> u8 {
    let Some(policy) = load_policy(g, &a.policy.file) else { return 1 };
    let pg = a.address.strip_prefix("postgres.").and_then(|n| policy.postgres.iter().find(|p| p.name == n));
    let redis = a.address.strip_prefix("redis.").and_then(|n| policy.redis.iter().find(|r| r.name == n));
    let known: Vec<String> = policy
        .postgres
        .iter()
        .filter(|p| p.restore_drill.is_some())
        .map(|p| format!("postgres.{}", p.name))
        .chain(policy.redis.iter().filter(|r| r.restore_drill.is_some()).map(|r| format!("redis.{}", r.name)))
        .collect();
    let declared = pg.map(|p| p.restore_drill.is_some()).or(redis.map(|r| r.restore_drill.is_some()));
    if declared != Some(true) {
        return error(
            g,
            super::no_job(
                &policy.file,
                &a.address,
                declared.is_some(),
                "restore_drill",
                "restore_drill: {from: s3.BUCKET.backups.ENTRY}",
                &known,
            ),
        );
    }
    let aws = connect(g, policy.default_region.as_deref()).await;
    let region = aws.default_region().unwrap_or("us-east-1").to_string();
    let who = operator(a);
    let job = async {
        match (pg, redis) {
            (Some(spec), _) => drill::run(&aws, spec, &region, &who).await,
            (_, Some(spec)) => crate::providers::redis::drill::run(&aws, spec, &region, &who).await,
            _ => Err("nothing to drill".into()),
        }
    };
    // Ctrl-C drops the drill: its cluster is stopped and its files removed
    // as it unwinds.
    let rec = tokio::select! {
        r = job => r,
        _ = tokio::signal::ctrl_c() => return error(g, "restore-drill interrupted; what it made was removed, no record written"),
    };
    let rec = match rec {
        Ok(r) => r,
        Err(e) => return error(g, format!("restore-drill {} could not complete: {e}", a.address)),
    };
    if let Some(path) = &a.metrics {
        if let Err(e) = super::write_atomically(path, &crate::render::openmetrics::restore_drill(&rec)) {
            error(g, format!("cannot write {}: {e}", path.display()));
        }
    }
    if let Some(path) = &a.log {
        let new = !path.exists();
        let r = std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| {
            if new {
                f.write_all(crate::providers::jobs::LOG_HEADER.as_bytes())?;
            }
            f.write_all(crate::providers::jobs::log_row(&rec).as_bytes())
        });
        if let Err(e) = r {
            error(g, format!("cannot append to {}: {e}", path.display()));
        }
    }
    match a.format {
        Format::Json => out(&format!("{}\n", serde_json::to_string_pretty(&rec).unwrap_or_default())),
        Format::Text => {
            let p = &rec.phases;
            let mut text = format!(
                "restore-drill {}: {} in {:.1} s (RTO {} s): download {:.1} s, restore {:.1} s, migrate {:.1} s, checks {:.1} s\n",
                rec.instance,
                if rec.passed() { "PASSED" } else { "FAILED" },
                rec.total_seconds,
                rec.rto_seconds,
                p.download,
                p.restore,
                p.migrate,
                p.checks
            );
            if let Some(d) = &rec.dump {
                text.push_str(&format!(
                    "  dump s3://{}/{} ({} bytes, sha256 {})\n",
                    d.bucket, d.key, d.bytes, d.sha256
                ));
            }
            for c in &rec.checks {
                text.push_str(&format!(
                    "  {} {}: {}\n",
                    if c.passed { "ok  " } else { "FAIL" },
                    c.name,
                    c.value.map_or("no value".to_string(), |v| v.to_string())
                ));
            }
            if let Some(r) = &rec.reason {
                text.push_str(&format!("  reason: {r}\n"));
            }
            out(&text);
        }
    }
    if rec.passed() {
        0
    } else {
        2
    }
}
