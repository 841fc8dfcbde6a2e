//! `restore-drill redis.NAME`: the newest RDB snapshot of the entry,
//! verified against its sidecar while it downloads, loaded into a
//! throw-away `redis-server` on a free loopback port (no persistence, in a
//! temporary directory), and its key count (DBSIZE) checked against the
//! bounds; timed against the RTO; recorded beside the backups. The server
//! and the files are removed on every path.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::FutureExt;

use crate::aws::Aws;
use crate::jobs::{self, secs, CheckResult, JobKind, Outcome, Record};
use crate::jobs::{JobError, Stage};
use crate::providers::instances::{DrillTiming, InstanceJob};
use crate::providers::redis::section::{RedisDrill, RedisSpec};

/// The drill's directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn redis_server() -> Result<PathBuf, JobError> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            JobError::failed(
                Stage::Prepare,
                "redis-server is not installed: the drill loads the snapshot into one (Debian: apt-get install redis-server)",
            )
        })
}

/// `restore-drill redis.NAME` (a registered job).
pub const DRILL: InstanceJob<RedisSpec> = InstanceJob {
    kind: JobKind::Drill,
    synopsis: "redis.NAME: the newest snapshot loaded into a throw-away redis-server, keys counted",
    system: "redis",
    suffix: "",
    specs: |p| p.redis.as_slice(),
    name: |s| s.name.as_str(),
    entry: |s| s.restore_drill.as_ref().map(|d| &d.from),
    drill: Some(|s| {
        s.restore_drill.as_ref().map(|d| DrillTiming {
            rto_secs: d.rto_secs,
            every_secs: d.every_secs,
            schedule: d.schedule.as_ref(),
            line: d.line,
        })
    }),
    run: |ctx, _, spec| {
        run(ctx.aws, spec, &ctx.default_region, &ctx.operator)
            .map(|r| r.map(|r| Outcome::Drill(Box::new(r))))
            .boxed_local()
    },
    ops: jobs::fetch::OPS,
    engine_actions: &[],
    takes_target: false,
    render: None,
    config: None,
    schedule: |s| s.restore_drill.as_ref().and_then(|d| d.schedule.as_ref()),
    on_host: None,
};

/// Run the drill of `spec`; the record is returned (and stored) whether
/// it passed or not.
pub async fn run(aws: &Aws, spec: &RedisSpec, default_region: &str, operator: &str) -> Result<Record, JobError> {
    let drill = spec.restore_drill.as_ref().ok_or_else(|| {
        JobError::failed(Stage::Prepare, format!("redis.{} has no `restore_drill:` in the policy", spec.name))
    })?;
    let rec = jobs::record(&format!("redis.{}", spec.name), operator, "local", drill.rto_secs);
    jobs::drill(aws, &drill.from, default_region, rec, async |region, rec| phases(aws, drill, region, rec).await).await
}

async fn phases(aws: &Aws, drill: &RedisDrill, region: &str, rec: &mut Record) -> Result<(), JobError> {
    if let Some(path) = &drill.decrypt_with {
        jobs::encrypt::identities(std::path::Path::new(path))?;
    }
    let scratch = Scratch(jobs::scratch_dir()?);
    let file = scratch.0.join("dump.rdb");
    let key = jobs::fetch_verified(aws, &drill.from, region, &file, rec).await?;
    // An encrypted snapshot is decrypted in place before redis-server
    // loads it; an identity that is not a recipient stops here.
    if key.ends_with(jobs::encrypt::EXT) {
        let path = drill.decrypt_with.clone().ok_or_else(|| {
            JobError::failed(
                Stage::Restore,
                format!(
                    "{key} is encrypted (age) and restore_drill names no `decrypt_with` identity: nothing was restored"
                ),
            )
        })?;
        let (from, to) = (scratch.0.join("dump.rdb.age"), file.clone());
        std::fs::rename(&file, &from).map_err(|e| JobError::failed(Stage::Restore, e.to_string()))?;
        tokio::task::spawn_blocking(move || -> Result<(), JobError> {
            let ids = jobs::encrypt::identities(std::path::Path::new(&path))?;
            let r = jobs::encrypt::decrypt_file(&from, &to, &ids);
            let _ = std::fs::remove_file(&from);
            r
        })
        .await
        .map_err(|e| JobError::failed(Stage::Restore, e.to_string()))??;
    }
    let t = Instant::now();
    let server = redis_server()?;
    let port = jobs::free_port()?;
    let mut child = tokio::process::Command::new(server)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(&scratch.0)
        .args(["--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| JobError::failed(Stage::Restore, format!("cannot run redis-server: {e}")))?;
    // It loads the snapshot before it answers (LOADING until then); a
    // snapshot it cannot read makes it exit.
    let url = format!("redis://127.0.0.1:{port}/0");
    let deadline = Instant::now() + Duration::from_secs(drill.rto_secs.max(10));
    let keys: i64 = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().await.map_err(|e| JobError::failed(Stage::Restore, e.to_string()))?;
            let log = String::from_utf8_lossy(&out.stdout);
            let why = log.lines().rev().find(|l| l.contains('#')).unwrap_or("").trim().to_string();
            return Err(JobError::failed(
                Stage::Restore,
                format!("redis-server could not load the snapshot ({status}): {why}"),
            ));
        }
        let tried = async {
            let client =
                redis::Client::open(url.as_str()).map_err(|e| JobError::failed(Stage::Restore, e.to_string()))?;
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| JobError::failed(Stage::Restore, e.to_string()))?;
            redis::cmd("DBSIZE")
                .query_async::<i64>(&mut con)
                .await
                .map_err(|e| JobError::failed(Stage::Restore, e.to_string()))
        }
        .await;
        match tried {
            Ok(n) => break n,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => {
                return Err(JobError::failed(
                    Stage::Restore,
                    format!("the throw-away redis-server did not answer: {e}"),
                ))
            }
        }
    };
    rec.phases.restore = secs(t);
    let t = Instant::now();
    let passed = drill.min_keys.is_none_or(|m| keys >= m) && drill.max_keys.is_none_or(|m| keys <= m);
    rec.checks = vec![CheckResult {
        name: "keys (DBSIZE)".into(),
        value: Some(keys as f64),
        min: drill.min_keys.map(|v| v as f64),
        max: drill.max_keys.map(|v| v as f64),
        passed,
    }];
    rec.phases.checks = secs(t);
    let _ = child.kill().await;
    drop(scratch);
    Ok(())
}
