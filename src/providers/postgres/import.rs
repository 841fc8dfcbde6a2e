//! `import` for PostgreSQL: read each server whose URL the request names
//! by its environment variable, and write its WAL archiving; the URL is
//! written as `${VAR}`, never as a URL.

use super::{observe_server, PostgresState};
use crate::model::{Fatal, Observed};
use crate::policy::writer::{duration, scalar, Writer};
use crate::providers::postgres::section::PostgresSpec;
use crate::providers::{url_from_env, ImportRequest, Imported};

pub(crate) async fn import(req: &ImportRequest) -> Result<Imported, Fatal> {
    let mut out = Imported::new(&["postgres"], "PostgreSQL");
    let mut specs = Vec::new();
    for (name, var) in &req.postgres {
        let url = url_from_env(&req.env, name, var, "PostgreSQL")?;
        let spec = PostgresSpec {
            name: name.clone(),
            url,
            wal_level: None,
            archive_mode: None,
            archive_timeout_secs: None,
            archive_command: None,
            archive_command_sensitive: false,
            wal_archiving: true,
            rpo_secs: 900,
            timeout_secs: 5,
            backup: None,
            restore_drill: None,
            pitr: None,
            line: 0,
        };
        specs.push((spec, var));
    }
    let states = futures::future::join_all(specs.iter().map(|(s, _)| observe_server(s))).await;
    let mut seen = Vec::new();
    for ((spec, var), state) in specs.iter().zip(states) {
        if let Observed::Unknown { reason } = &state.settings {
            return Err(Fatal::input(format!("PostgreSQL `{}` (${{{var}}}): {reason}", spec.name)));
        }
        seen.push((spec.name.clone(), var.to_string(), state));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var, state) in seen {
        let text = postgres_entry(&name, &var, &state, &mut out.variables);
        out.entries.push((name, text));
    }
    Ok(out)
}

/// The variable an imported `archive_command` is written as: the command
/// may hold a secret (a key, a password), so its value is never written.
pub(crate) fn archive_command_var(name: &str) -> String {
    let upper: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("{upper}_ARCHIVE_COMMAND")
}

fn postgres_entry(name: &str, var: &str, st: &PostgresState, variables: &mut Vec<(String, String)>) -> String {
    let mut w = Writer::new();
    w.open(0, name);
    w.raw(2, "url", &format!("${{{var}}}"), None);
    let settings = st.settings.present().cloned().unwrap_or_default();
    let get = |n: &str| settings.get(n).map(|s| s.value.trim().to_string());
    w.open(2, "wal_archiving");
    if let Some(l) = get("wal_level") {
        w.raw(4, "wal_level", &scalar(&l), (l == "replica").then_some("PostgreSQL default"));
    }
    if let Some(m) = get("archive_mode") {
        w.raw(4, "archive_mode", &scalar(&m), None);
    }
    match settings.get("archive_timeout").and_then(super::seconds) {
        Some(0) => w.comment(
            4,
            "archive_timeout: 0 (off, the PostgreSQL default): a quiet server may hold a WAL segment indefinitely; the policy takes a positive duration, so it is left unmanaged",
        ),
        Some(t) => {
            w.raw(4, "archive_timeout", &duration(t), None);
            if t > 900 {
                w.raw(
                    4,
                    "rpo",
                    &duration(t),
                    Some("as long as archive_timeout; the strategy's RPO is 15min"),
                );
            }
        }
        None => {}
    }
    let pitr = get("archive_command").as_deref().and_then(pgbackrest_push);
    match get("archive_command").as_deref() {
        Some(_) if pitr.is_some() => {
            w.comment(4, "archive_command: pgBackRest's archive-push, derived from `pitr:` below");
        }
        Some("(disabled)") => w.comment(4, "archive_command is hidden while archive_mode is off; left unmanaged"),
        Some("") => w.raw(4, "archive_command", &scalar(""), Some("nothing is archived")),
        Some(_) => {
            let cmd_var = archive_command_var(name);
            w.raw(4, "archive_command", &format!("${{{cmd_var}}}"), Some("not written: it may hold a secret"));
            variables.push((
                cmd_var,
                format!("the archive_command of postgres.{name} (`SHOW archive_command` on the server prints it)"),
            ));
        }
        None => {}
    }
    if let Some(lib) = get("archive_library").filter(|l| !l.is_empty()) {
        w.comment(4, &format!("archive_library `{lib}` archives WAL; the policy format manages archive_command only"));
    }
    if let Some(o) = pitr {
        let opt = |k: &str| o.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        w.open(2, "pitr");
        let (bucket, path) = (opt("repo1-s3-bucket").unwrap_or_default(), opt("repo1-path").unwrap_or_default());
        let mut repo = vec![format!("bucket: {}", scalar(&bucket))];
        repo.push(format!("prefix: {}", scalar(&format!("{}/", path.trim_matches('/')))));
        // The regional AWS endpoint is the default; another is written.
        if let Some(host) =
            opt("repo1-s3-endpoint").filter(|h| !(h.starts_with("s3.") && h.ends_with(".amazonaws.com")))
        {
            let port = opt("repo1-storage-port").map(|p| format!(":{p}")).unwrap_or_default();
            repo.push(format!("endpoint: {}", scalar(&format!("https://{host}{port}"))));
        }
        if let Some(ca) = opt("repo1-storage-ca-file") {
            repo.push(format!("ca_file: {}", scalar(&ca)));
        }
        w.raw(4, "repo", &format!("{{{}}}", repo.join(", ")), None);
        w.raw(4, "stanza", &scalar(&opt("stanza").unwrap_or_default()), None);
        w.raw(4, "data_directory", &scalar(&opt("pg1-path").unwrap_or_default()), None);
        if opt("repo1-cipher-type").is_some() {
            let var =
                format!("{}_PGBACKREST_CIPHER_PASS", archive_command_var(name).trim_end_matches("_ARCHIVE_COMMAND"));
            w.raw(4, "cipher_pass", &format!("${{{var}}}"), Some("the repository's passphrase: never written"));
            variables.push((var, format!("the pgBackRest repository passphrase of postgres.{name}")));
        }
        w.comment(4, "window, full_every, rpo and drill: not in archive_command (the defaults apply); write yours");
    }
    w.finish()
}

/// The options of a pgBackRest `archive-push` archive_command (what
/// `apply` writes for `pitr:`), or None for any other command.
fn pgbackrest_push(cmd: &str) -> Option<Vec<(String, String)>> {
    let words = shell_words(cmd)?;
    let (first, rest) = words.split_first()?;
    if first.rsplit('/').next() != Some("pgbackrest") || rest.last().map(String::as_str) != Some("%p") {
        return None;
    }
    let n = rest.len();
    if n < 2 || rest[n - 2] != "archive-push" {
        return None;
    }
    let opts: Vec<(String, String)> = rest[..n - 2]
        .iter()
        .filter_map(|w| w.strip_prefix("--")?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let has = |k: &str| opts.iter().any(|(n, _)| n == k);
    let s3 = opts.iter().any(|(k, v)| k == "repo1-type" && v == "s3");
    (s3 && has("stanza") && has("repo1-s3-bucket") && has("repo1-path") && has("pg1-path")).then_some(opts)
}

/// Split a command as `sh` would for plain and single-quoted words (what
/// the derived archive_command holds); None for anything else.
fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            '"' | '$' | '`' | ';' | '|' | '&' => return None,
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pgbackrest_archive_push_is_read_back_and_nothing_else() {
        let cmd = "pgbackrest --stanza=main --repo1-type=s3 --repo1-s3-bucket=b --repo1-s3-region=us-east-1 --repo1-path=/pgbackrest --repo1-s3-endpoint=localhost --repo1-storage-port=4443 --repo1-storage-ca-file='/tmp/my ca.pem' --pg1-path=/var/lib/postgresql/15/main archive-push %p";
        let o = pgbackrest_push(cmd).expect("read back");
        let get = |k: &str| o.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("stanza"), Some("main"));
        assert_eq!(get("repo1-storage-ca-file"), Some("/tmp/my ca.pem"));
        assert_eq!(get("pg1-path"), Some("/var/lib/postgresql/15/main"));
        for other in [
            "cp %p /archive/%f",
            "pgbackrest --stanza=main archive-push %p",
            "pgbackrest --stanza=x --repo1-type=posix archive-get %f %p",
            "pgbackrest $(cat /etc/x) archive-push %p",
        ] {
            assert!(pgbackrest_push(other).is_none(), "{other}");
        }
    }
}
