//! The PostgreSQL client programs the backup job and the drill run
//! (pg_dump, pg_restore, psql, initdb, pg_ctl): found where Debian puts
//! them, their major version, and a connection handed over through libpq's
//! environment variables so no password appears on a command line (where
//! every local user can read it in /proc).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::jobs::{JobError, Stage};
use crate::policy::scrub;

/// `NAME` from the newest /usr/lib/postgresql/*/bin (Debian installs each
/// major there), else from PATH.
pub fn find(name: &str) -> Result<PathBuf, JobError> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin").join(name)))
        })
        .filter(|(_, p)| p.exists())
        .collect();
    dirs.sort();
    if let Some((_, p)) = dirs.pop() {
        return Ok(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            JobError::failed(
                Stage::Prepare,
                format!(
                "{name} is not installed: install the PostgreSQL client (Debian: apt-get install postgresql-client)"
            ),
            )
        })
}

/// The major version `TOOL --version` reports ("pg_dump (PostgreSQL) 15.10").
pub async fn major(tool: &Path) -> Result<u32, JobError> {
    let out = tokio::process::Command::new(tool)
        .arg("--version")
        .output()
        .await
        .map_err(|e| JobError::failed(Stage::Prepare, format!("cannot run {}: {e}", tool.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.split('.').next().and_then(|m| m.parse::<u32>().ok()))
        .ok_or_else(|| JobError::failed(Stage::Prepare, format!("{} --version said `{}`", tool.display(), text.trim())))
}

/// libpq environment variables for `url` (host, port, user, password,
/// database, sslmode and the other query parameters libpq knows).
/// The URL without the query parameters libpq knows and tokio-postgres
/// does not (sslmode verify-ca/verify-full, sslrootcert, …), and those
/// parameters.
pub fn split_params(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), Vec::new()) };
    let (mut keep, mut libpq) = (Vec::new(), Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if ["sslmode", "sslrootcert", "sslcert", "sslkey"].contains(&k) {
            libpq.push((k.to_string(), v.to_string()));
        } else {
            keep.push(pair);
        }
    }
    let url = if keep.is_empty() { base.to_string() } else { format!("{base}?{}", keep.join("&")) };
    (url, libpq)
}

pub fn env(url: &str) -> Result<Vec<(String, String)>, JobError> {
    let (plain, _) = split_params(url);
    let cfg = tokio_postgres::Config::from_str(&plain)
        .map_err(|e| JobError::failed(Stage::Prepare, scrub(&format!("invalid PostgreSQL URL: {e}"), url)))?;
    let mut out: Vec<(String, String)> = Vec::new();
    if let Some(h) = cfg.get_hosts().first() {
        let host = match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        out.push(("PGHOST".into(), host));
    }
    if let Some(p) = cfg.get_ports().first() {
        out.push(("PGPORT".into(), p.to_string()));
    }
    if let Some(u) = cfg.get_user() {
        out.push(("PGUSER".into(), u.to_string()));
    }
    if let Some(p) = cfg.get_password() {
        out.push(("PGPASSWORD".into(), String::from_utf8_lossy(p).into_owned()));
    }
    if let Some(d) = cfg.get_dbname() {
        out.push(("PGDATABASE".into(), d.to_string()));
    }
    // Parameters tokio-postgres does not model are passed as libpq reads
    // them from the environment.
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let var = match k {
                "sslmode" => "PGSSLMODE",
                "sslrootcert" => "PGSSLROOTCERT",
                "sslcert" => "PGSSLCERT",
                "sslkey" => "PGSSLKEY",
                "connect_timeout" => "PGCONNECT_TIMEOUT",
                "application_name" => "PGAPPNAME",
                _ => continue,
            };
            out.push((var.into(), v.to_string()));
        }
    }
    Ok(out)
}

/// The one line a failed client program gets: how it ended and the last
/// line it wrote to stderr (where libpq and the tools put the reason),
/// scrubbed of the URL's secrets.
pub fn failure(stage: Stage, what: &str, status: std::process::ExitStatus, stderr: &str, secret: &str) -> JobError {
    let last = scrub(stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim(), secret);
    let how = status.code().map_or("was killed".to_string(), |c| format!("exited with {c}"));
    let tool = what.split_whitespace().next().unwrap_or(what);
    JobError::tool(stage, tool, &last, scrub(&format!("{what} {how}: {last}"), secret))
}

/// Run as the `postgres` user when this process is root (initdb and the
/// server refuse to run as root; Debian's packages make that user).
pub fn as_postgres_if_root(tool: &Path) -> tokio::process::Command {
    if is_root() {
        let mut c = tokio::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        tokio::process::Command::new(tool)
    }
}

pub fn is_root() -> bool {
    // The owner of /proc/self is this process's effective user.
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_becomes_libpq_environment_without_a_command_line() {
        let e = env("postgres://app:s3cr%40t@db.internal:6432/orders?sslmode=verify-full&sslrootcert=/etc/ca.pem")
            .expect("env");
        let get = |k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("db.internal"));
        assert_eq!(get("PGPORT"), Some("6432"));
        assert_eq!(get("PGUSER"), Some("app"));
        assert_eq!(get("PGPASSWORD"), Some("s3cr@t"));
        assert_eq!(get("PGDATABASE"), Some("orders"));
        assert_eq!(get("PGSSLMODE"), Some("verify-full"));
        assert_eq!(get("PGSSLROOTCERT"), Some("/etc/ca.pem"));
        let bad = env("postgres://u:hunter2@[::1").unwrap_err();
        assert!(!bad.to_string().contains("hunter2"), "{bad}");
    }
}
