//! `import` for PostgreSQL: read each server whose URL the request names
//! by its environment variable, and write its WAL archiving; the URL is
//! written as `${VAR}`, never as a URL.

use super::{observe_server, PostgresState};
use crate::model::{Fatal, Observed};
use crate::policy::writer::{duration, scalar, Writer};
use crate::policy::PostgresSpec;
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
    match get("archive_command").as_deref() {
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
    w.finish()
}
