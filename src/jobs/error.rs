//! Why a job failed: the stage that failed and, where the job drove a tool
//! (pg_dump, pg_restore, pgBackRest, redis-server), which tool and the last
//! line it wrote to stderr. The message is what the operator reads, as
//! before; the stage and the tool are for machines (a notification's
//! `stage`, a drill record's `failed_stage`).

/// A job's stages, in the order a job meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Before anything is read or written: the address, the policy's
    /// entry, this machine (a scratch directory, a port, a data directory).
    Prepare,
    /// Connecting to the instance (PostgreSQL, Redis).
    Connect,
    /// Taking the backup: pg_dump, the RDB snapshot, a pgBackRest backup.
    Backup,
    /// Encrypting to the entry's age recipients.
    Encrypt,
    /// Writing to S3: the multipart upload, its check, the sidecar.
    Upload,
    /// Checking the repository after a backup (`pgbackrest verify`).
    Verify,
    /// Finding the newest backup and reading it back, verified.
    Download,
    /// Decrypting with the drill's age identity.
    Decrypt,
    /// Restoring: pg_restore, redis-server loading the snapshot, a
    /// pgBackRest restore.
    Restore,
    /// Replaying WAL to the target and promoting.
    Replay,
    /// The drill's `migrate` command.
    Migrate,
    /// The drill's checks.
    Check,
    /// Storing the drill record or the run's outcome.
    Record,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Prepare => "prepare",
            Stage::Connect => "connect",
            Stage::Backup => "backup",
            Stage::Encrypt => "encrypt",
            Stage::Upload => "upload",
            Stage::Verify => "verify",
            Stage::Download => "download",
            Stage::Decrypt => "decrypt",
            Stage::Restore => "restore",
            Stage::Replay => "replay",
            Stage::Migrate => "migrate",
            Stage::Check => "check",
            Stage::Record => "record",
        }
    }
}

/// A job's failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    /// A stage failed, for the reason the message gives.
    #[error("{message}")]
    Failed { stage: Stage, message: String },
    /// A tool the job drives failed or could not start.
    #[error("{message}")]
    Tool {
        stage: Stage,
        tool: String,
        /// The last non-empty line it wrote to stderr, if any.
        stderr: Option<String>,
        message: String,
    },
    /// S3's answer to the upload's completion was lost and the object
    /// could not be read back: it may be stored after all.
    #[error("{message}")]
    Unsure { message: String },
    /// Ctrl-C; what the job made was removed.
    #[error("interrupted{0}")]
    Interrupted(&'static str),
}

impl JobError {
    pub fn failed(stage: Stage, message: impl Into<String>) -> JobError {
        JobError::Failed { stage, message: message.into() }
    }

    /// For `map_err`: a message from below (a helper that says only what
    /// went wrong) failed `stage`.
    pub fn at(stage: Stage) -> impl Fn(String) -> JobError {
        move |message| JobError::Failed { stage, message }
    }

    /// `tool` failed at `stage`; `stderr` is what it wrote there.
    pub fn tool(stage: Stage, tool: &str, stderr: &str, message: impl Into<String>) -> JobError {
        let last = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
        JobError::Tool { stage, tool: tool.to_string(), stderr: last, message: message.into() }
    }

    pub fn stage(&self) -> Stage {
        match self {
            JobError::Failed { stage, .. } | JobError::Tool { stage, .. } => *stage,
            JobError::Unsure { .. } => Stage::Upload,
            JobError::Interrupted(_) => Stage::Prepare,
        }
    }

    /// May the backup be stored although the job failed?
    pub fn maybe_stored(&self) -> bool {
        matches!(self, JobError::Unsure { .. })
    }

    /// The same failure, its message passed through `f` (scrubbing a
    /// secret, adding what the caller knows).
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> JobError {
        match self {
            JobError::Failed { stage, message } => JobError::Failed { stage, message: f(message) },
            JobError::Tool { stage, tool, stderr, message } => {
                JobError::Tool { stage, tool, stderr, message: f(message) }
            }
            JobError::Unsure { message } => JobError::Unsure { message: f(message) },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_s_failure_keeps_its_last_stderr_line_and_its_stage() {
        let e =
            JobError::tool(Stage::Restore, "pg_restore", "warning: x\nerror: relation exists\n\n", "pg_restore failed");
        assert_eq!(e.to_string(), "pg_restore failed");
        assert_eq!(e.stage(), Stage::Restore);
        let JobError::Tool { stderr, tool, .. } = &e else { panic!("{e:?}") };
        assert_eq!((tool.as_str(), stderr.as_deref()), ("pg_restore", Some("error: relation exists")));
        assert!(!e.maybe_stored());
        assert!(JobError::Unsure { message: "m".into() }.maybe_stored());
        assert_eq!(JobError::at(Stage::Check)("no rows".into()).stage().as_str(), "check");
    }
}
