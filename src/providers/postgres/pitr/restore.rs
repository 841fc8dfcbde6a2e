//! `restore postgres.NAME --into DIR [--target-time T | --target latest]`:
//! the strategy's disaster-recovery procedure, done — "restore last
//! backup, replay WAL to point-in-time, promote" — into an empty
//! directory, by pgBackRest, with the same recovery as the point-in-time
//! drill. The cluster is started once on loopback (archive_mode off for
//! that run only), replays to the target, promotes, and is shut down
//! cleanly; the operator then starts it where it will serve (it archives
//! into the same repository as the new primary) and does what the tool
//! cannot: migrations, DATABASE_URL, smoke tests, lifting the write
//! freeze. A directory that is not empty is refused before anything is
//! read or written; on failure what was restored into DIR is removed.

use std::path::{Path, PathBuf};

use futures::future::FutureExt;

use super::drill::{recover, target, How, Recovered, Target};
use super::Runner;
use crate::jobs::{self, JobCtx, JobError, JobKind, Outcome, Restored, Stage};
use crate::providers::instances::InstanceJob;
use crate::providers::postgres::drill::Scratch;
use crate::providers::postgres::section::PostgresSpec;

/// The disaster-recovery restore (a registered job): `restore
/// postgres.NAME --into DIR`.
pub const PITR_RESTORE: InstanceJob<PostgresSpec> = InstanceJob {
    kind: JobKind::Restore,
    synopsis: "postgres.NAME: the cluster from its pgBackRest repository into an empty directory, WAL replayed to a point in time, promoted",
    system: "postgres",
    suffix: "",
    specs: |p| p.postgres.as_slice(),
    name: |s| s.name.as_str(),
    entry: super::repo,
    drill: None,
    run: |ctx, _, spec| run(ctx, spec).map(|r| r.map(Outcome::Restored)).boxed_local(),
    ops: &[],
    engine_actions: &[],
    takes_target: true,
    render: Some(render),
    config: None,
    schedule: |_| None,
    // pgBackRest reads the cluster's files: as the data directory's owner.
    on_host: Some(jobs::OnHost {
        user: "postgres",
        // pgBackRest's log and spool directories (its defaults).
        writes: &["-/var/log/pgbackrest", "-/var/spool/pgbackrest"],
    }),
};

/// What was restored, and the strategy's DR steps that remain.
fn render(outcome: &Outcome) -> Option<String> {
    let Outcome::Restored(done) = outcome else { return None };
    Some(format!(
        "restore {}: {} holds the cluster recovered to {} from backup {} and promoted \
         (last transaction replayed: {}): restore {:.1} s, WAL replay {:.1} s; it is shut down.\n\
         \n\
         What remains (the strategy's DR procedure), by hand:\n\
         \x20 1. start it where it will serve, as its owner: pg_ctl -D {} start\n\
         \x20    (its configuration is the primary's: it archives its new timeline into the same repository)\n\
         \x20 2. run the application's migrations against it\n\
         \x20 3. point DATABASE_URL at it\n\
         \x20 4. run the smoke tests\n\
         \x20 5. lift the write freeze\n\
         \x20 6. take a full backup of the new timeline: suoops-policy backup run {}.pitr\n",
        done.instance,
        done.into,
        done.target,
        done.backup,
        done.last_replayed.as_deref().unwrap_or("none"),
        done.restore_seconds,
        done.replay_seconds,
        done.into,
        done.instance,
    ))
}
/// DIR as given, made absolute, checked empty (or absent, then created
/// 0700): the only state in which anything is written.
fn destination(into: &Path) -> Result<(PathBuf, bool), JobError> {
    let abs = if into.is_absolute() {
        into.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| JobError::failed(Stage::Prepare, e.to_string()))?.join(into)
    };
    match std::fs::read_dir(&abs) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(JobError::failed(
                    Stage::Prepare,
                    format!("{} is not empty: nothing was changed (restore into an empty directory)", abs.display()),
                ));
            }
            Ok((abs, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !abs.parent().is_some_and(Path::is_dir) {
                return Err(JobError::failed(
                    Stage::Prepare,
                    format!("{}: its parent directory does not exist: nothing was changed", abs.display()),
                ));
            }
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&abs)
                .map_err(|e| JobError::failed(Stage::Prepare, format!("{}: {e}", abs.display())))?;
            Ok((abs, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(JobError::failed(Stage::Prepare, format!("{} is not a directory: nothing was changed", abs.display())))
        }
        Err(e) => Err(JobError::failed(Stage::Prepare, format!("{}: {e}: nothing was changed", abs.display()))),
    }
}

/// What this run put into DIR, removed unless the restore succeeded.
struct Undo {
    dir: PathBuf,
    created: bool,
    done: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let p = e.path();
                let _ =
                    if p.is_dir() && !p.is_symlink() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            }
        }
    }
}

/// The new timeline's history file marked for archiving. The promotion
/// ran with archive_mode off, so PostgreSQL did not mark it (it does so
/// only while archiving: timeline.c, writeTimeLineHistory); without it
/// in the archive, no later recovery from a backup taken before the
/// switch can follow onto this timeline. The archiver sends every
/// `archive_status/*.ready` once the cluster starts with archiving on
/// (pgarch.c), as the new primary does.
fn ready_history(data: &Path) -> Result<(), JobError> {
    let wal = data.join("pg_wal");
    let newest = std::fs::read_dir(&wal)
        .map_err(|e| JobError::failed(Stage::Restore, format!("{}: {e}", wal.display())))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.len() == 16 && n.ends_with(".history") && n[..8].chars().all(|c| c.is_ascii_hexdigit()))
        .max();
    let Some(name) = newest else { return Ok(()) };
    let status = wal.join("archive_status");
    if status.join(format!("{name}.done")).exists() {
        return Ok(());
    }
    let ready = status.join(format!("{name}.ready"));
    std::fs::write(&ready, b"").map_err(|e| JobError::failed(Stage::Restore, format!("{}: {e}", ready.display())))?;
    // Owned as the directory is: the server's user renames it to .done.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&status)
        .map_err(|e| JobError::failed(Stage::Restore, format!("{}: {e}", status.display())))?;
    std::os::unix::fs::chown(&ready, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| JobError::failed(Stage::Restore, format!("{}: {e}", ready.display())))
}

async fn run(ctx: &JobCtx<'_>, spec: &PostgresSpec) -> Result<Restored, JobError> {
    let pitr = spec.pitr.as_ref().ok_or_else(|| {
        JobError::failed(Stage::Prepare, format!("postgres.{} has no `pitr:` in the policy", spec.name))
    })?;
    let into =
        ctx.into.as_deref().ok_or(JobError::failed(Stage::Restore, "restore needs --into DIR (an empty directory)"))?;
    let target_arg = target(ctx.target_time.as_deref())?;
    super::binary()?;
    // Everything that can be refused is refused before DIR is touched.
    let mut runner = Runner::new(ctx.aws, pitr, &ctx.default_region).await?;
    let (dir, created) = destination(into)?;
    let mut undo = Undo { dir: dir.clone(), created, done: false };
    let scratch = Scratch { dir: jobs::scratch_dir()?, pg_ctl: None };
    let rto_secs = pitr.drill.as_ref().map_or(3600, |d| d.rto_secs);
    let how = How { data: &dir, scratch: &scratch.dir, drill: false, rto_secs };
    let Recovered { label, restore_secs, replay_secs, last_replayed, cluster, .. } =
        recover(&mut runner, spec, &target_arg, &how).await.map_err(|(e, _)| e)?;
    cluster.stop().await?;
    ready_history(&dir)?;
    undo.done = true;
    drop(scratch);
    Ok(Restored {
        instance: format!("postgres.{}", spec.name),
        into: dir.display().to_string(),
        backup: label,
        target: match target_arg {
            Target::Time(t, _) => t,
            Target::Latest => "latest".into(),
        },
        last_replayed,
        restore_seconds: restore_secs,
        replay_seconds: replay_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_or_absent_directory_is_taken() {
        let base = tempfile::tempdir().expect("tempdir");
        let full = base.path().join("full");
        std::fs::create_dir(&full).expect("mkdir");
        std::fs::write(full.join("PG_VERSION"), "15\n").expect("write");
        let e = destination(&full).unwrap_err();
        assert!(e.to_string().ends_with("is not empty: nothing was changed (restore into an empty directory)"), "{e}");
        assert_eq!(std::fs::read_to_string(full.join("PG_VERSION")).expect("kept"), "15\n");
        let new = base.path().join("new");
        assert_eq!(destination(&new), Ok((new.clone(), true)));
        assert!(new.is_dir());
        assert_eq!(destination(&new), Ok((new.clone(), false)), "empty: taken");
        let orphan = base.path().join("no/such/dir");
        assert!(destination(&orphan).unwrap_err().to_string().contains("its parent directory does not exist"));
        assert!(!base.path().join("no").exists());
    }
}
