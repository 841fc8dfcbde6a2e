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

use futures::future::FutureExt;

use super::{address, Runner};
use crate::jobs::{self, secs, JobCtx, JobKind, Outcome, PointInTime, Record};
use crate::jobs::{JobError, Stage};
use crate::model::time::parse_rfc3339;
use crate::providers::instances::{DrillTiming, InstanceJob};
use crate::providers::postgres::drill::{checks, connect, ids, run_tool, Scratch, NON_DURABLE};
use crate::providers::postgres::section::PostgresSpec;
use crate::providers::postgres::tools;

/// The point-in-time drill (a registered job). Judged by RESTORE-DRILL
/// like every drill (passed, recent, within the RTO); PITR-DRILL judges its
/// achieved RPO.
pub const PITR_DRILL: InstanceJob<PostgresSpec> = InstanceJob {
    kind: JobKind::Drill,
    synopsis: "postgres.NAME.pitr: a point-in-time restore from the pgBackRest repository to a target, the checks run, the RPO measured",
    system: "postgres",
    suffix: ".pitr",
    specs: |p| p.postgres.as_slice(),
    name: |s| s.name.as_str(),
    entry: super::repo,
    drill: Some(|s| {
        let p = s.pitr.as_ref()?;
        Some(p.drill.as_ref().map_or(
            DrillTiming { rto_secs: 3600, every_secs: 30 * 86400, schedule: None, line: p.line },
            |d| DrillTiming {
                rto_secs: d.rto_secs,
                every_secs: d.every_secs,
                schedule: d.schedule.as_ref(),
                line: d.line,
            },
        ))
    }),
    run: |ctx, _, spec| run(ctx, spec).map(|r| r.map(|r| Outcome::Drill(Box::new(r)))).boxed_local(),
    ops: &[],
    engine_actions: &[],
    takes_target: true,
    render: Some(render),
    config: None,
    schedule: |s| s.pitr.as_ref().and_then(|p| p.drill.as_ref()).and_then(|d| d.schedule.as_ref()),
    // pgBackRest reads the cluster's files: as the data directory's owner.
    on_host: Some(jobs::OnHost {
        user: "postgres",
        // pgBackRest's log and spool directories (its defaults).
        writes: &["-/var/log/pgbackrest", "-/var/spool/pgbackrest"],
    }),
};

/// Its phases and the RPO it achieved, on two lines.
fn render(outcome: &Outcome) -> Option<String> {
    let Outcome::Drill(rec) = outcome else { return None };
    let (p, pit) = (&rec.phases, rec.pitr.as_ref()?);
    Some(format!(
        "restore-drill {}: {} in {:.1} s (RTO {} s): restore {:.1} s, WAL replay {:.1} s, checks {:.1} s\n  target {}, backup {}, last replayed commit {}, achieved RPO {} (RPO {} s)\n",
        rec.instance,
        if rec.passed() { "PASSED" } else { "FAILED" },
        rec.total_seconds,
        rec.rto_seconds,
        p.restore,
        p.replay,
        p.checks,
        pit.target,
        if pit.backup.is_empty() { "-" } else { pit.backup.as_str() },
        pit.last_replayed.as_deref().unwrap_or("none"),
        pit.achieved_rpo_seconds.map_or("not measured".to_string(), |s| format!("{s:.1} s")),
        pit.rpo_seconds
    ))
}
/// The drill's target: a time (its text and Unix seconds) or the end of
/// the archive.
#[derive(Debug)]
pub(super) enum Target {
    Time(String, f64),
    Latest,
}

pub(super) fn target(t: Option<&str>) -> Result<Target, JobError> {
    match t {
        None | Some("latest") => Ok(Target::Latest),
        Some(t) => parse_rfc3339(t).map(|secs| Target::Time(t.to_string(), secs)).ok_or_else(|| {
            JobError::failed(
                Stage::Prepare,
                format!("--target-time `{t}` is not an RFC 3339 time (e.g. 2026-12-02T04:22:20.340Z) or `latest`"),
            )
        }),
    }
}

async fn run(ctx: &JobCtx<'_>, spec: &PostgresSpec) -> Result<Record, JobError> {
    let pitr = spec.pitr.as_ref().ok_or_else(|| {
        JobError::failed(Stage::Prepare, format!("postgres.{} has no `pitr:` in the policy", spec.name))
    })?;
    let target = target(ctx.target_time.as_deref())?;
    super::binary()?;
    let version = super::version().await?;
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
        rpo_measured: None,
        rpo_seconds: pitr.rpo_secs,
        pgbackrest: Some(version),
    });
    jobs::drill(ctx.aws, &pitr.repo, &ctx.default_region, rec, async |_region, rec| {
        phases(ctx, spec, &target, rec).await
    })
    .await
}

async fn phases(ctx: &JobCtx<'_>, spec: &PostgresSpec, target: &Target, rec: &mut Record) -> Result<(), JobError> {
    let pitr = spec.pitr.as_ref().ok_or(JobError::failed(Stage::Restore, "no pitr"))?;
    let mut runner = Runner::new(ctx.aws, pitr, &ctx.default_region).await?;
    let scratch = Scratch { dir: jobs::scratch_dir()?, pg_ctl: None };
    let data = scratch.dir.join("data");
    let how = How { data: &data, scratch: &scratch.dir, drill: true, rto_secs: rec.rto_seconds };
    let r = recover(&mut runner, spec, target, &how).await;
    let got = match r {
        Ok(got) => got,
        Err(e) => {
            if let (Some(p), Some(label)) = (rec.pitr.as_mut(), e.1) {
                p.backup = label;
            }
            return Err(e.0);
        }
    };
    rec.phases.restore = got.restore_secs;
    rec.phases.replay = got.replay_secs;
    if let Some(p) = rec.pitr.as_mut() {
        p.backup = got.label.clone();
        let (reference, how) = match target {
            Target::Time(_, t) => (*t, "the target time minus the commit time of the last transaction replayed before it"),
            // Replay reached the archive's newest segment (checked above),
            // so the last commit replayed is the newest the archive holds:
            // what a loss at the drill's start would have kept.
            Target::Latest => (
                rec.started as f64,
                "the drill's start minus the commit time of the last transaction replayed, replay having reached the archive's newest segment (the newest commit the archive holds)",
            ),
        };
        p.rpo_measured = Some(how.to_string());
        p.last_replayed = got.last_replayed.clone();
        p.achieved_rpo_seconds = got.replayed_at.map(|r| ((reference - r).max(0.0) * 100.0).round() / 100.0);
    }
    let wanted = pitr.drill.as_ref().map(|d| d.checks.as_slice()).unwrap_or_default();
    let t = Instant::now();
    rec.checks = checks(&got.url, wanted).await?;
    rec.phases.checks = secs(t);
    drop(got);
    drop(scratch);
    Ok(())
}

/// Where and how to recover: the data directory, a private scratch
/// directory (sockets, the throw-away pg_hba.conf, the log), and whether
/// it is a drill (its new timeline never archived, its tablespaces mapped
/// into the scratch directory) or the real thing (`restore --into`).
pub(super) struct How<'a> {
    pub data: &'a Path,
    pub scratch: &'a Path,
    pub drill: bool,
    pub rto_secs: u64,
}

/// A recovered, promoted cluster, running on loopback until dropped.
pub(super) struct Recovered {
    pub label: String,
    pub restore_secs: f64,
    pub replay_secs: f64,
    /// The last transaction replayed (commit time, text and Unix seconds).
    pub last_replayed: Option<String>,
    pub replayed_at: Option<f64>,
    pub url: String,
    pub cluster: Cluster,
}

/// A cluster this process started: stopped when dropped (immediately;
/// `stop` shuts it down cleanly first).
pub(super) struct Cluster {
    data: std::path::PathBuf,
    pg_ctl: std::path::PathBuf,
    stopped: bool,
}

impl Cluster {
    /// A clean shutdown (a checkpoint: the directory starts without
    /// recovery next time).
    pub async fn stop(mut self) -> Result<(), JobError> {
        let mut c = tools::as_postgres_if_root(&self.pg_ctl);
        c.args(["-D", &self.data.display().to_string(), "-m", "fast", "-w", "stop"]);
        let r = run_tool(Stage::Replay, c, "pg_ctl stop", "").await;
        self.stopped = r.is_ok();
        r
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let mut c = if tools::is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&self.pg_ctl);
            c
        } else {
            std::process::Command::new(&self.pg_ctl)
        };
        let _ = c
            .args(["-D", &self.data.display().to_string(), "-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The backup to restore for `target` (the newest that ended before it:
/// pgBackRest replays forward only), restored into `how.data` and
/// recovered to the target, promoted, running. Err: why, with the backup
/// label when one was chosen.
/// The backup a recovery to `target` starts from: the newest, or the
/// newest that ended before the target time.
fn backup_for<'s>(
    stanza: &'s super::info::Stanza,
    target: &Target,
    pitr: &crate::providers::postgres::section::Pitr,
    spec: &PostgresSpec,
) -> Result<&'s super::info::Backup, JobError> {
    match target {
        Target::Latest => stanza.newest(),
        Target::Time(_, t) => {
            stanza.backup.iter().filter(|b| (b.timestamp.stop as f64) < *t).max_by_key(|b| b.timestamp.stop)
        }
    }
    .ok_or_else(|| {
        let why = match target {
            Target::Latest => format!(
                "the repository holds no backup of stanza {}: run `backup run {}` first",
                pitr.stanza,
                address(spec)
            ),
            Target::Time(t, _) => format!(
                "no backup of stanza {} ended before {t}: the target is outside the recoverable window",
                pitr.stanza
            ),
        };
        JobError::failed(Stage::Restore, why)
    })
}

/// pgBackRest's restore options: the data directory, the backup, a drill's
/// tablespaces kept in its scratch with archiving off, and the target.
fn restore_args(how: &How<'_>, label: &str, target: &Target) -> Vec<String> {
    let mut args = vec![format!("--pg1-path={}", how.data.display()), format!("--set={label}")];
    if how.drill {
        // The drill's cluster never archives (its new timeline would go
        // into the repository) and keeps its tablespaces in its scratch.
        args.push(format!("--tablespace-map-all={}", how.scratch.join("tablespaces").display()));
        args.push("--archive-mode=off".to_string());
    }
    match target {
        Target::Time(_, secs) => {
            args.push("--type=time".into());
            args.push(format!("--target={}", pg_time(*secs)));
            args.push("--target-action=promote".into());
        }
        Target::Latest => args.push("--type=default".into()),
    }
    args
}

/// A drill to the end of the archive must have replayed all of it:
/// recovery stops quietly at the first segment restore_command cannot
/// fetch, and promotes what it has.
async fn reached_newest(client: &tokio_postgres::Client, stanza: &super::info::Stanza) -> Result<(), JobError> {
    let max = stanza.current_archive().and_then(|a| a.max.clone());
    let row = client
        .query_one(
            "SELECT pg_last_wal_replay_lsn()::text, (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')",
            &[],
        )
        .await
        .map_err(|e| JobError::failed(Stage::Restore, e.to_string()))?;
    let (lsn, seg_size): (Option<String>, i64) = (row.get(0), row.get(1));
    match (lsn, max) {
        (Some(lsn), Some(max)) => replay_reached(&lsn, seg_size.max(1) as u64, &max),
        _ => Ok(()),
    }
}

pub(super) async fn recover(
    runner: &mut Runner<'_>,
    spec: &PostgresSpec,
    target: &Target,
    how: &How<'_>,
) -> Result<Recovered, (JobError, Option<String>)> {
    let pitr = spec.pitr.as_ref().ok_or((JobError::failed(Stage::Prepare, "no pitr"), None))?;
    let stanza = runner.info().await.map_err(|e| (e, None))?;
    let set = backup_for(&stanza, target, pitr, spec).map_err(|e| (e, None))?;
    let label = set.label.clone();
    let fail = |e: JobError| (e, Some(label.clone()));
    let replay = |e: String| (JobError::failed(Stage::Replay, e), Some(label.clone()));
    if tools::is_root() {
        let (uid, gid) = ids("postgres").ok_or_else(|| {
            fail(JobError::failed(
                Stage::Restore,
                "pgBackRest and the restored cluster cannot run as root and there is no `postgres` user",
            ))
        })?;
        for d in [how.scratch, how.data] {
            if d.exists() {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))
                    .map_err(|e| fail(JobError::failed(Stage::Restore, format!("chown: {e}"))))?;
            }
        }
        runner.user = Some("postgres".into());
    }
    let t = Instant::now();
    let args = restore_args(how, &label, target);
    runner.run("restore", &args).await.map_err(fail)?;
    let restore_secs = secs(t);
    // Replayed on loopback with trust, whatever the primary's pg_hba.conf
    // says: the authentication files are the scratch directory's (the
    // restored ones are left as they are), and the configuration files
    // Debian keeps outside the data directory are made empty if absent.
    let hba = how.scratch.join("pg_hba.conf");
    let ident = how.scratch.join("pg_ident.conf");
    std::fs::write(&hba, "local all all trust\nhost all all 127.0.0.1/32 trust\n")
        .map_err(|e| replay(format!("{}: {e}", hba.display())))?;
    std::fs::write(&ident, "").map_err(|e| replay(format!("{}: {e}", ident.display())))?;
    let conf = how.data.join("postgresql.conf");
    if !conf.exists() {
        std::fs::write(&conf, "").map_err(|e| replay(format!("{}: {e}", conf.display())))?;
    }
    if tools::is_root() {
        let (uid, gid) = ids("postgres").ok_or_else(|| replay("no postgres user".into()))?;
        for f in [&hba, &ident, &conf] {
            let _ = std::os::unix::fs::chown(f, Some(uid), Some(gid));
        }
    }
    let pg_ctl = tools::find("pg_ctl").map_err(fail)?;
    let port = jobs::free_port().map_err(fail)?;
    // archive_mode=off for this run only: a drill's timeline is never
    // archived; a real restore archives once its operator starts it.
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} -c archive_mode=off -c ssl=off \
         -c hba_file={hba} -c ident_file={ident} -c hot_standby=on{durability}",
        dir = how.scratch.display(),
        hba = hba.display(),
        ident = ident.display(),
        // A drill's cluster is thrown away: replayed without flushing to
        // disk. A real restore is replayed durably.
        durability = if how.drill { format!(" {NON_DURABLE}") } else { String::new() }
    );
    let t = Instant::now();
    let log = how.scratch.join("pg.log");
    let mut c = runner_pg_ctl(runner, &pg_ctl);
    c.args(["-D", &how.data.display().to_string(), "-l", &log.display().to_string()]).args([
        "-w",
        "-t",
        &how.rto_secs.to_string(),
        "-o",
        &opts,
        "start",
    ]);
    if let Err(e) = run_tool(Stage::Replay, c, "pg_ctl start", "").await {
        return Err(replay(stopped(&e.to_string(), &log, target)));
    }
    let cluster = Cluster { data: how.data.to_path_buf(), pg_ctl, stopped: false };
    let (user, db) = user_db(spec.url.expose()).map_err(fail)?;
    let url = format!("postgres://{user}@127.0.0.1:{port}/{db}");
    // The server may already be going down: recovery that cannot reach
    // its target ends in FATAL right after pg_ctl saw it accept.
    let client = connect(&url).await.map_err(|e| replay(stopped(&e.to_string(), &log, target)))?;
    // Recovery replays to the target, then promotes (target-action
    // promote; end of archive for latest).
    let deadline = Instant::now() + Duration::from_secs(how.rto_secs);
    loop {
        // PostgreSQL 13 on stops with FATAL "recovery ended before
        // configured recovery target was reached" when the archive runs out
        // (a gap, or a target after its end) rather than promote short of
        // the target (release notes 13, "Recovery"): the server goes away.
        let r = match client.query_one("SELECT pg_is_in_recovery()", &[]).await {
            Ok(r) => r,
            Err(e) => return Err(replay(stopped(&e.to_string(), &log, target))),
        };
        if !r.get::<_, bool>(0) {
            break;
        }
        if Instant::now() > deadline {
            return Err(replay(format!(
                "the restored cluster was still replaying WAL after the RTO of {} s",
                how.rto_secs
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replay_secs = secs(t);
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
        .map_err(|e| replay(e.to_string()))?;
    let (replayed_at, last_replayed): (Option<f64>, Option<String>) = (row.get(0), row.get(1));
    if how.drill && matches!(target, Target::Latest) {
        reached_newest(&client, &stanza).await.map_err(fail)?;
    }
    Ok(Recovered { label, restore_secs, replay_secs, last_replayed, replayed_at, url, cluster })
}

/// Did replay reach the archive's newest segment `max`? `lsn` is the last
/// WAL location replayed (`pg_last_wal_replay_lsn()`, `X/Y`), `seg_size`
/// the cluster's `wal_segment_size` in bytes: a segment is named by
/// timeline, then the LSN's segment number split at 2^32 bytes
/// (PostgreSQL's XLogFileName). Err names the first segment replay did not
/// reach.
pub fn replay_reached(lsn: &str, seg_size: u64, max: &str) -> Result<(), JobError> {
    let (hi, lo) =
        lsn.split_once('/').ok_or_else(|| JobError::failed(Stage::Restore, format!("`{lsn}` is not an LSN")))?;
    let parse = |h: &str| {
        u64::from_str_radix(h, 16).map_err(|_| JobError::failed(Stage::Restore, format!("`{lsn}` is not an LSN")))
    };
    let at = (parse(hi)? << 32) | parse(lo)?;
    let per_log = (1u64 << 32) / seg_size.max(1);
    let field = |r: std::ops::Range<usize>| {
        max.get(r)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or_else(|| JobError::failed(Stage::Restore, format!("`{max}` is not a segment name")))
    };
    let (tli, log, seg) = (field(0..8)?, field(8..16)?, field(16..24)?);
    // The LSN is the end of the last record replayed: that record lies
    // before it (a WAL switch ends exactly at the next segment's start).
    let (reached, newest) = (at.saturating_sub(1) / seg_size.max(1), log * per_log + seg);
    if reached >= newest {
        return Ok(());
    }
    let next = reached + 1;
    Err(JobError::failed(Stage::Restore, format!(
        "replay stopped at {lsn}, short of the newest archived segment {max}: segment {tli:08X}{:08X}{:08X} could not be restored (missing or unreadable), so a restore to the end of the archive loses everything after it",
        next / per_log,
        next % per_log
    )))
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
fn user_db(url: &str) -> Result<(String, String), JobError> {
    let env = tools::env(url)?;
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let user = get("PGUSER").unwrap_or_else(|| "postgres".into());
    let db = get("PGDATABASE").unwrap_or_else(|| user.clone());
    Ok((user, db))
}

/// Why the restored cluster did not start or went away during recovery,
/// from its log.
fn stopped(error: &str, log: &Path, target: &Target) -> String {
    const SHORT: &str = "recovery ended before configured recovery target was reached";
    // Looked for in the whole log: connection attempts made while the
    // server went down may log FATAL lines after it.
    let text = std::fs::read_to_string(log).unwrap_or_default();
    match (target, text.lines().find(|l| l.contains(SHORT))) {
        (Target::Time(t, _), Some(line)) => format!(
            "recovery ended before the target {t} was reached: the archive holds no continuous WAL up to it (a missing segment, or a target after the newest archived commit); the restored cluster's log says: {}",
            line.trim()
        ),
        _ => format!("{error}; the restored cluster's log says: {}", last_log_line(log)),
    }
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
        // 16 MiB segments: 0/5000028 is in segment 5; 0/6000000, the end
        // of a WAL switch in segment 5, too.
        assert_eq!(replay_reached("0/5000028", 16 << 20, "000000010000000000000005"), Ok(()));
        assert_eq!(replay_reached("0/6000000", 16 << 20, "000000010000000000000005"), Ok(()));
        let short = replay_reached("0/3000100", 16 << 20, "000000010000000000000005").expect_err("short");
        assert!(short.to_string().contains("segment 000000010000000000000004 could not be restored"), "{short}");
        // 1 MiB segments: 4096 a log file; 1/00200000 is segment 2 of log 1.
        assert_eq!(replay_reached("1/200010", 1 << 20, "000000010000000100000002"), Ok(()));
        let short = replay_reached("0/FFF00010", 1 << 20, "000000010000000100000002").expect_err("short");
        assert!(short.to_string().contains("segment 000000010000000100000000 could not be restored"), "{short}");
        assert!(matches!(target(Some("latest")), Ok(Target::Latest)));
        assert!(
            matches!(target(Some("2026-12-02T04:22:20.340Z")), Ok(Target::Time(_, t)) if (t - 1_796_185_340.34).abs() < 1e-3)
        );
        assert!(target(Some("04:22")).unwrap_err().to_string().contains("RFC 3339"));
        assert_eq!(pg_time(1_796_185_340.34), "2026-12-02 04:22:20.340000+00");
    }
}
