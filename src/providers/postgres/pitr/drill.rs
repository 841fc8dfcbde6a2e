//! `restore-drill postgres.NAME.pitr [--target-time T | --target latest]`:
//! the strategy's DR procedure as a test. pgBackRest restores the backup
//! that precedes the target into a throw-away data directory and the
//! cluster replays WAL from the repository up to the target, then
//! promotes; the smoke checks run; restore, replay and checks are timed
//! and the achieved RPO is measured (see `PointInTime`). The restored
//! cluster runs with archive_mode=off, so its new timeline never reaches
//! the repository, on loopback only, its tablespaces mapped into the
//! scratch directory; everything is removed on every path (Ctrl-C too).

use std::path::Path;
use std::time::{Duration, Instant};

use futures::future::{FutureExt, LocalBoxFuture};

use super::{address, Runner};
use crate::jobs::{self, secs, DrillDecl, Job, JobCtx, JobKind, Outcome, PointInTime, Record};
use crate::model::time::parse_rfc3339;
use crate::policy::{BackupRef, Policy, PostgresSpec};
use crate::providers::postgres::drill::{checks, connect, ids, run_tool, Scratch};
use crate::providers::postgres::tools;

/// The point-in-time drill (a registered job).
pub struct PitrDrill;

pub const PITR_DRILL: PitrDrill = PitrDrill;

impl Job for PitrDrill {
    fn kind(&self) -> JobKind {
        JobKind::Drill
    }
    fn instances(&self, policy: &Policy) -> Vec<(String, bool)> {
        super::instances(policy)
    }
    fn entry<'p>(&self, policy: &'p Policy, addr: &str) -> Option<&'p BackupRef> {
        super::entry(policy, addr)
    }
    fn run<'a>(
        &'a self,
        ctx: &'a JobCtx<'a>,
        policy: &'a Policy,
        addr: &'a str,
    ) -> LocalBoxFuture<'a, Result<Outcome, String>> {
        async move {
            let spec = super::find(policy, addr)?;
            run(ctx, spec).await.map(|r| Outcome::Drill(Box::new(r)))
        }
        .boxed_local()
    }
    /// Judged by RESTORE-DRILL like every drill (passed, recent, within
    /// the RTO); PITR-DRILL judges its achieved RPO.
    fn drills(&self, policy: &Policy) -> Vec<DrillDecl> {
        policy
            .postgres
            .iter()
            .filter_map(|s| {
                let p = s.pitr.as_ref()?;
                let (rto_secs, every_secs, line) =
                    p.drill.as_ref().map_or((3600, 30 * 86400, p.line), |d| (d.rto_secs, d.every_secs, d.line));
                Some(DrillDecl { instance: address(s), from: p.repo.clone(), rto_secs, every_secs, line })
            })
            .collect()
    }
}

/// The drill's target: a time (its text and Unix seconds) or the end of
/// the archive.
#[derive(Debug)]
enum Target {
    Time(String, f64),
    Latest,
}

fn target(t: Option<&str>) -> Result<Target, String> {
    match t {
        None | Some("latest") => Ok(Target::Latest),
        Some(t) => parse_rfc3339(t).map(|secs| Target::Time(t.to_string(), secs)).ok_or_else(|| {
            format!("--target-time `{t}` is not an RFC 3339 time (e.g. 2026-12-02T04:22:20.340Z) or `latest`")
        }),
    }
}

async fn run(ctx: &JobCtx<'_>, spec: &PostgresSpec) -> Result<Record, String> {
    let pitr = spec.pitr.as_ref().ok_or_else(|| format!("postgres.{} has no `pitr:` in the policy", spec.name))?;
    let target = target(ctx.target_time.as_deref())?;
    super::binary()?;
    let rto = pitr.drill.as_ref().map_or(3600, |d| d.rto_secs);
    let mut rec = jobs::record(&address(spec), &ctx.operator, "local", rto);
    rec.pitr = Some(PointInTime {
        target: match &target {
            Target::Time(t, _) => t.clone(),
            Target::Latest => "latest".into(),
        },
        backup: String::new(),
        last_replayed: None,
        achieved_rpo_seconds: None,
        rpo_seconds: pitr.rpo_secs,
    });
    jobs::drill(ctx.aws, &pitr.repo, &ctx.default_region, rec, async |_region, rec| {
        phases(ctx, spec, &target, rec).await
    })
    .await
}

async fn phases(ctx: &JobCtx<'_>, spec: &PostgresSpec, target: &Target, rec: &mut Record) -> Result<(), String> {
    let pitr = spec.pitr.as_ref().ok_or("no pitr")?;
    let mut runner = Runner::new(ctx.aws, pitr, &ctx.default_region).await?;
    let stanza = runner.info().await?;
    // The newest backup that ended before the target: pgBackRest replays
    // forward only.
    let set = match target {
        Target::Latest => stanza.newest(),
        Target::Time(_, t) => {
            stanza.backup.iter().filter(|b| (b.timestamp.stop as f64) < *t).max_by_key(|b| b.timestamp.stop)
        }
    }
    .ok_or_else(|| match target {
        Target::Latest => format!(
            "the repository holds no backup of stanza {}: run `backup run {}` first",
            pitr.stanza,
            address(spec)
        ),
        Target::Time(t, _) => format!(
            "no backup of stanza {} ended before {t}: the target is outside the recoverable window",
            pitr.stanza
        ),
    })?;
    let label = set.label.clone();
    if let Some(p) = rec.pitr.as_mut() {
        p.backup = label.clone();
    }
    let mut scratch = Scratch { dir: jobs::scratch_dir()?, pg_ctl: None };
    if tools::is_root() {
        let (uid, gid) = ids("postgres")
            .ok_or("pgBackRest and the restored cluster cannot run as root and there is no `postgres` user")?;
        std::os::unix::fs::chown(&scratch.dir, Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))?;
        runner.user = Some("postgres".into());
    }
    let data = scratch.dir.join("data");
    let t = Instant::now();
    let mut args = vec![
        format!("--pg1-path={}", data.display()),
        format!("--set={label}"),
        format!("--tablespace-map-all={}", scratch.dir.join("tablespaces").display()),
        "--archive-mode=off".to_string(),
    ];
    match target {
        Target::Time(_, secs) => {
            args.push("--type=time".into());
            args.push(format!("--target={}", pg_time(*secs)));
            args.push("--target-action=promote".into());
        }
        Target::Latest => args.push("--type=default".into()),
    }
    runner.run("restore", &args).await?;
    rec.phases.restore = secs(t);
    // A throw-away cluster: trust on loopback and on its own socket
    // directory (0700), whatever the primary's pg_hba.conf said; the
    // configuration files live outside the data directory on Debian.
    let hba = data.join("pg_hba.conf");
    std::fs::write(&hba, "local all all trust\nhost all all 127.0.0.1/32 trust\n")
        .map_err(|e| format!("{}: {e}", hba.display()))?;
    for f in ["postgresql.conf", "pg_ident.conf"] {
        let p = data.join(f);
        if !p.exists() {
            std::fs::write(&p, "").map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    if tools::is_root() {
        let (uid, gid) = ids("postgres").ok_or("no postgres user")?;
        for f in ["pg_hba.conf", "postgresql.conf", "pg_ident.conf"] {
            let _ = std::os::unix::fs::chown(data.join(f), Some(uid), Some(gid));
        }
    }
    let pg_ctl = tools::find("pg_ctl")?;
    let port = jobs::free_port()?;
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} -c archive_mode=off -c ssl=off \
         -c hba_file={data}/pg_hba.conf -c ident_file={data}/pg_ident.conf -c hot_standby=on",
        dir = scratch.dir.display(),
        data = data.display()
    );
    scratch.pg_ctl = Some(pg_ctl.clone());
    let t = Instant::now();
    let mut c = runner_pg_ctl(&runner, &pg_ctl);
    c.args(["-D", &data.display().to_string(), "-l", &scratch.dir.join("pg.log").display().to_string()]).args([
        "-w",
        "-t",
        &rec.rto_seconds.to_string(),
        "-o",
        &opts,
        "start",
    ]);
    if let Err(e) = run_tool(c, "pg_ctl start", "").await {
        return Err(format!("{e}; the restored cluster's log says: {}", last_log_line(&scratch.dir.join("pg.log"))));
    }
    let (user, db) = user_db(spec.url.expose())?;
    let url = format!("postgres://{user}@127.0.0.1:{port}/{db}");
    let client = connect(&url).await?;
    // Recovery replays to the target, then promotes (target-action
    // promote; end of archive for latest).
    let deadline = Instant::now() + Duration::from_secs(rec.rto_seconds);
    loop {
        let r = client.query_one("SELECT pg_is_in_recovery()", &[]).await.map_err(|e| e.to_string())?;
        if !r.get::<_, bool>(0) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the restored cluster was still replaying WAL after the RTO of {} s", rec.rto_seconds));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rec.phases.replay = secs(t);
    // Static once recovery is over: the commit time of the last
    // transaction it applied (PostgreSQL manual, "Recovery Information
    // Functions").
    let row = client
        .query_one(
            "SELECT extract(epoch FROM pg_last_xact_replay_timestamp())::float8, \
             to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let (replayed, text): (Option<f64>, Option<String>) = (row.get(0), row.get(1));
    if let Some(p) = rec.pitr.as_mut() {
        let reference = match target {
            Target::Time(_, t) => *t,
            Target::Latest => rec.started as f64,
        };
        p.last_replayed = text;
        p.achieved_rpo_seconds = replayed.map(|r| ((reference - r).max(0.0) * 100.0).round() / 100.0);
    }
    let wanted = pitr.drill.as_ref().map(|d| d.checks.as_slice()).unwrap_or_default();
    let t = Instant::now();
    rec.checks = checks(&url, wanted).await?;
    rec.phases.checks = secs(t);
    drop(client);
    drop(scratch);
    Ok(())
}

/// pg_ctl with the runner's environment (archive-get, the restore_command
/// pgBackRest wrote, needs the S3 keys), as the runner's user.
fn runner_pg_ctl(runner: &Runner<'_>, pg_ctl: &Path) -> tokio::process::Command {
    let mut c = tools::as_postgres_if_root(pg_ctl);
    c.envs(super::config::env(runner.pitr, runner.keys()));
    c
}

/// A time as recovery_target_time takes it (`2026-12-02 04:22:20.340000+00`:
/// the server refuses RFC 3339's `T`), in UTC to the microsecond.
fn pg_time(secs: f64) -> String {
    let whole = secs.floor();
    let micros = ((secs - whole) * 1e6).round().min(999_999.0) as u64;
    format!("{}.{micros:06}+00", crate::model::time::format_time("%Y-%m-%d %H:%M:%S", whole as u64))
}

/// The user and database of the primary's URL (the restored cluster has
/// the same roles and databases).
fn user_db(url: &str) -> Result<(String, String), String> {
    let env = tools::env(url)?;
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let user = get("PGUSER").unwrap_or_else(|| "postgres".into());
    let db = get("PGDATABASE").unwrap_or_else(|| user.clone());
    Ok((user, db))
}

/// The log's last lines that say why (a FATAL is often preceded by the
/// LOG line that names the setting).
fn last_log_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let fatal =
        lines.iter().rposition(|l| l.contains("FATAL") || l.contains("ERROR")).unwrap_or(lines.len().saturating_sub(1));
    let from = fatal.saturating_sub(2);
    let shown: Vec<&str> = lines.get(from..=fatal).unwrap_or_default().iter().map(|l| l.trim()).collect();
    if shown.is_empty() {
        "(empty)".to_string()
    } else {
        shown.join(" / ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(matches!(target(None), Ok(Target::Latest)));
        assert!(matches!(target(Some("latest")), Ok(Target::Latest)));
        assert!(
            matches!(target(Some("2026-12-02T04:22:20.340Z")), Ok(Target::Time(_, t)) if (t - 1_796_185_340.34).abs() < 1e-3)
        );
        assert!(target(Some("04:22")).unwrap_err().contains("RFC 3339"));
        assert_eq!(pg_time(1_796_185_340.34), "2026-12-02 04:22:20.340000+00");
    }
}
