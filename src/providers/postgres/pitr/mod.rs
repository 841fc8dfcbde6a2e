//! Point-in-time recovery through pgBackRest, the field's standard engine
//! (not a home-made WAL shipper): its configuration derived from the
//! policy (`config`), its backup job (`backup`), its point-in-time drill
//! (`drill`), and the audit read from the repository itself
//! (`pgbackrest info` and the archive's listing, `controls`).

pub mod backup;
pub mod config;
pub mod controls;
pub mod drill;
pub mod info;
pub mod restore;
pub mod verify;

use std::path::PathBuf;

use crate::aws::Aws;
use crate::jobs::{JobError, Stage};
use crate::providers::postgres::section::{Pitr, PostgresSpec};
use config::Keys;

/// The address of an instance's point-in-time jobs and controls.
pub fn address(spec: &PostgresSpec) -> String {
    format!("postgres.{}.pitr", spec.name)
}

/// The repository, as the entry the point-in-time jobs write and read.
fn repo(spec: &PostgresSpec) -> Option<&crate::policy::BackupRef> {
    spec.pitr.as_ref().map(|p| &p.repo)
}

/// The pgbackrest program, or how to install it.
pub fn binary() -> Result<PathBuf, JobError> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("pgbackrest"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            JobError::failed(
                Stage::Prepare,
                "pgbackrest is not installed: install it (Debian: apt-get install pgbackrest)",
            )
        })
}

/// pgBackRest's version, as `pgbackrest version` prints it
/// ("pgBackRest 2.45" → "2.45").
pub async fn version() -> Result<String, JobError> {
    let out = tokio::process::Command::new(binary()?)
        .arg("version")
        .output()
        .await
        .map_err(|e| JobError::failed(Stage::Prepare, format!("running pgbackrest version: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| JobError::failed(Stage::Prepare, format!("pgbackrest version printed `{}`", text.trim())))
}

/// Whether this pgBackRest can write to the repository: 2.55.0 stopped
/// sending Content-MD5 with its uploads, and S3 refuses a PutObject
/// without a content checksum into a bucket with Object Lock, so every
/// archive-push and backup there fails (pgbackrest/pgbackrest#2613; the
/// change was reverted in 2.55.1; AWS S3 user guide, "Configuring S3
/// Object Lock": Content-MD5 or x-amz-sdk-checksum-algorithm required).
pub fn usable_on(version: &str, bucket: &str, locked: bool) -> Result<(), JobError> {
    if locked && version == "2.55.0" {
        return Err(JobError::failed(Stage::Prepare, format!(
            "pgBackRest 2.55.0 cannot write to s3://{bucket}: it sends no Content-MD5, which S3 requires on every upload to a bucket with Object Lock (pgbackrest/pgbackrest#2613): install 2.55.1 or later, or an earlier release"
        )));
    }
    Ok(())
}

/// One pgBackRest invocation's setting: the policy's options, the region,
/// the tool's own S3 keys and the bucket's key ARN, and who runs it.
pub struct Runner<'a> {
    pub pitr: &'a Pitr,
    pub region: String,
    keys: Option<Keys>,
    kms_key_arn: Option<String>,
    /// Run as this user (the data directory's owner) when root.
    pub user: Option<String>,
    /// The configuration file the runs read (`--config`): pgBackRest
    /// ignores a file's options its command does not take, where it
    /// refuses them on the command line. No secret is in it.
    conf: ConfFile,
}

/// The configuration files, removed on drop: for runs as the cluster's
/// owner, and for runs as root (its own lock directory, which would
/// otherwise shut out the owner's archive-push and backups).
struct ConfFile {
    owner: PathBuf,
    root: PathBuf,
}

impl Drop for ConfFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.owner);
        let _ = std::fs::remove_file(&self.root);
    }
}

impl<'a> Runner<'a> {
    /// The settings for `pitr` with the credentials `aws` runs with (an
    /// endpoint needs them; on AWS the tool's own credentials serve when
    /// it has some, else pgBackRest's instance role), and the bucket's
    /// declared key resolved to its ARN for `repo1-s3-kms-key-id`.
    pub async fn new(aws: &Aws, pitr: &'a Pitr, default_region: &str) -> Result<Runner<'a>, JobError> {
        let region = pitr.repo.region.clone().unwrap_or_else(|| default_region.to_string());
        let keys = aws.credentials().await.map(|(id, secret, token)| Keys { id, secret, token });
        if keys.is_none() && pitr.endpoint.is_some() {
            return Err(JobError::failed(
                Stage::Prepare,
                format!(
                    "no AWS credentials to hand pgBackRest for {}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                    pitr.endpoint.as_deref().unwrap_or_default()
                ),
            ));
        }
        let kms_key_arn = match pitr.repo.encryption.as_ref() {
            Some(e) if e.declared_key.is_some() => match e.kms_key.as_deref() {
                Some(alias) => Some(
                    crate::aws::lookup::key_arn(aws, &region, alias, false)
                        .await
                        .map_err(JobError::at(Stage::Prepare))?,
                ),
                None => None,
            },
            Some(e) => e.kms_key.clone().filter(|k| k.starts_with("arn:")),
            None => None,
        };
        let text = config::file(pitr, &region, kms_key_arn.as_deref(), "the policy");
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("suoops-pgbackrest-{}-{n}", std::process::id()));
        let conf = ConfFile { owner: base.with_extension("conf"), root: base.with_extension("root.conf") };
        let root = text.replacen("[global]\n", "[global]\nlock-path=/tmp/pgbackrest-root\n", 1);
        for (path, text) in [(&conf.owner, &text), (&conf.root, &root)] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(path, text)
                .map_err(|e| JobError::failed(Stage::Prepare, format!("{}: {e}", path.display())))?;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
        }
        Ok(Runner { pitr, region, keys, kms_key_arn, user: None, conf })
    }

    /// The S3 keys handed to pgBackRest (never printed).
    pub fn keys(&self) -> Option<&Keys> {
        self.keys.as_ref()
    }

    /// The KMS key ARN the tool's runs encrypt with (for pgbackrest-config).
    pub fn kms_key_arn(&self) -> Option<&str> {
        self.kms_key_arn.as_deref()
    }

    /// `pgbackrest --stanza=S OPTIONS… EXTRA… COMMAND`, ready to run.
    pub fn command(&self, command: &str, extra: &[String]) -> Result<tokio::process::Command, JobError> {
        let exe = binary()?;
        let root = super::tools::is_root();
        let (mut c, conf) = match (&self.user, root) {
            // runuser keeps the environment (HOME, SHELL, USER and LOGNAME
            // aside), so the keys reach pgBackRest without a command line.
            (Some(u), true) if u != "root" => {
                let mut c = tokio::process::Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&exe);
                (c, &self.conf.owner)
            }
            _ => (tokio::process::Command::new(&exe), if root { &self.conf.root } else { &self.conf.owner }),
        };
        c.arg(format!("--config={}", conf.display()));
        c.arg(format!("--stanza={}", self.pitr.stanza));
        c.args(extra).arg(command);
        c.envs(config::env(self.pitr, self.keys.as_ref()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        Ok(c)
    }

    /// Run `command`; its stdout, or one line saying why it failed (its
    /// last error line: pgBackRest prints `ERROR: [NNN]: …`).
    pub async fn run(&self, command: &str, extra: &[String]) -> Result<String, JobError> {
        self.run_bytes(command, extra, &[]).await.map(|out| String::from_utf8_lossy(&out).into_owned())
    }

    /// As `run` with `args` after the command (`repo-get FILE`), stdout as
    /// bytes (a compressed file).
    pub async fn run_bytes(&self, command: &str, extra: &[String], args: &[String]) -> Result<Vec<u8>, JobError> {
        let out = self
            .command(command, extra)?
            .args(args)
            .output()
            .await
            .map_err(|e| JobError::failed(Stage::Prepare, format!("cannot run pgbackrest {command}: {e}")))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        let line = text
            .lines()
            .rev()
            .find(|l| l.contains("ERROR:"))
            .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .trim();
        let line = line.split_once("ERROR:").map_or(line, |(_, r)| r.trim());
        let how = out.status.code().map_or("was killed".to_string(), |c| format!("exited with {c}"));
        let (mut line, mut msg) = (line.to_string(), format!("pgbackrest {command} {how}: {line}"));
        for secret in self.secrets() {
            line = line.replace(&secret, "(redacted)");
            msg = msg.replace(&secret, "(redacted)");
        }
        Err(JobError::tool(stage_of(command), "pgbackrest", &line, msg))
    }

    fn secrets(&self) -> Vec<String> {
        let mut s: Vec<String> =
            self.keys.iter().flat_map(|k| [Some(k.secret.clone()), k.token.clone()]).flatten().collect();
        s.extend(self.pitr.cipher_pass.as_ref().map(|c| c.expose().to_string()));
        s.retain(|x| !x.is_empty());
        s
    }

    /// `info --output=json` of the stanza.
    pub async fn info(&self) -> Result<info::Stanza, JobError> {
        // A store that does not answer is said within seconds, not after
        // the minute a backup would wait.
        let out = self.run("info", &["--output=json".to_string(), "--io-timeout=10".to_string()]).await?;
        info::parse(&out, &self.pitr.stanza).map_err(|e| JobError::failed(Stage::Prepare, e.to_string()))
    }
}

/// The stage of a job a pgBackRest command is.
fn stage_of(command: &str) -> Stage {
    match command {
        "backup" => Stage::Backup,
        "restore" => Stage::Restore,
        "verify" => Stage::Verify,
        _ => Stage::Prepare,
    }
}

/// The owner of `dir` (the data directory), by name.
pub fn owner(dir: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(dir).ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid)).then(|| f[0].to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn pgbackrest_2_55_0_is_refused_on_a_locked_repository() {
        assert!(super::usable_on("2.55.0", "b", true).is_err_and(|e| e.to_string().contains("2.55.1")));
        assert!(super::usable_on("2.55.0", "b", false).is_ok());
        assert!(super::usable_on("2.55.1", "b", true).is_ok());
        assert!(super::usable_on("2.45", "b", true).is_ok());
    }
}
