//! PostgreSQL WAL archiving: observe from pg_settings and pg_stat_archiver,
//! apply with ALTER SYSTEM + pg_reload_conf(). Settings whose context is
//! `postmaster` need a restart: the plan says so and the audit reports
//! pending_restart. The URL holds a password and is never printed.

pub mod backup;
pub mod drill;
mod import;
pub mod pitr;
pub mod section;
pub mod tls;
pub mod tools;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::jobs::{JobError, Stage};
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::StepOutcome;
use crate::model::{Action, Address, AttrChange, Change, Observed, UnknownSetting};
use crate::policy::scrub;
use crate::providers::postgres::section::PostgresSpec;

use crate::model::Fatal;
use crate::policy::Policy;
use crate::providers::instances::{Instance, Kind};
use crate::providers::{Ctx, ImportRequest, Imported};

/// One row of pg_settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    pub value: String,
    pub unit: Option<String>,
    pub context: String,
    pub pending_restart: bool,
}

/// pg_stat_archiver.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Archiver {
    pub archived_count: i64,
    pub failed_count: i64,
    /// Seconds since the last archived segment (None: never).
    pub last_archived_age: Option<f64>,
    /// A failure newer than the last success.
    pub failing: bool,
    pub last_failed_wal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PostgresState {
    pub settings: Observed<BTreeMap<String, Setting>>,
    pub archiver: Observed<Archiver>,
    /// The archive_command the configuration files set, read only while
    /// archive_mode is off: pg_settings then shows "(disabled)" whatever is
    /// configured. Absent: none is set.
    #[serde(skip)]
    pub configured_archive_command: Option<Observed<String>>,
    /// The pgBackRest repository as the audit read it (`pitr:`, audit only).
    #[serde(skip)]
    pub pitr: Option<pitr::controls::PitrSeen>,
}

pub fn address(name: &str) -> Address {
    Address::resource("postgres", name)
}

const NAMES: &[&str] = &["wal_level", "archive_mode", "archive_timeout", "archive_command", "archive_library"];

/// Connect as libpq would: sslmode and sslrootcert from the URL (`tls`).
async fn connect(spec: &PostgresSpec) -> Result<tokio_postgres::Client, JobError> {
    tls::connect(spec.url.expose(), Duration::from_secs(spec.timeout_secs)).await
}

/// The server's major version (`server_version_num` / 10000).
pub async fn server_major(spec: &PostgresSpec) -> Result<u32, JobError> {
    let client = connect(spec).await?;
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| JobError::failed(Stage::Connect, pg_error(&e, spec.url.expose())))?;
    Ok((row.get::<_, i32>(0) / 10000) as u32)
}

fn pg_error(e: &tokio_postgres::Error, url: &str) -> String {
    let text = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    scrub(&text, url)
}

/// Nothing could be read, for `reason`.
fn unknown(reason: String) -> PostgresState {
    PostgresState {
        settings: Observed::Unknown { reason: reason.clone() },
        archiver: Observed::Unknown { reason },
        configured_archive_command: None,
        pitr: None,
    }
}

/// The server, and with `evidence` (audit) its pgBackRest repository.
pub async fn observe(ctx: &Ctx<'_>, spec: &PostgresSpec) -> PostgresState {
    let repo = async {
        match (&spec.pitr, ctx.evidence) {
            (Some(p), true) => Some(pitr::controls::observe(ctx.aws, spec, p).await),
            _ => None,
        }
    };
    let (mut state, seen) = futures::join!(observe_server(spec), repo);
    state.pitr = seen;
    state
}

async fn observe_server(spec: &PostgresSpec) -> PostgresState {
    let url = spec.url.expose();
    let client = match connect(spec).await {
        Ok(c) => c,
        Err(e) => return unknown(e.to_string()),
    };
    let names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    let rows = client
        .query("SELECT name, setting, unit, context, pending_restart FROM pg_settings WHERE name = ANY($1)", &[&names])
        .await;
    let settings = match rows {
        Ok(rows) => {
            let mut m = BTreeMap::new();
            for r in rows {
                m.insert(
                    r.get::<_, String>(0),
                    Setting { value: r.get(1), unit: r.get(2), context: r.get(3), pending_restart: r.get(4) },
                );
            }
            Observed::Present(m)
        }
        Err(e) => return unknown(format!("reading pg_settings: {}", pg_error(&e, url))),
    };
    let archiver = client
        .query_one(
            "SELECT archived_count, failed_count,
                    EXTRACT(EPOCH FROM now() - last_archived_time)::float8,
                    coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false),
                    last_failed_wal
             FROM pg_stat_archiver",
            &[],
        )
        .await;
    let archiver = match archiver {
        Ok(r) => Observed::Present(Archiver {
            archived_count: r.get(0),
            failed_count: r.get(1),
            last_archived_age: r.get(2),
            failing: r.get(3),
            last_failed_wal: r.get(4),
        }),
        Err(e) => Observed::Unknown { reason: format!("reading pg_stat_archiver: {}", pg_error(&e, url)) },
    };
    let disabled = settings.present().and_then(|s| s.get("archive_command")).is_some_and(|s| s.value == "(disabled)");
    let configured_archive_command = if disabled {
        // pg_file_settings shows what the files say (the last entry wins);
        // it needs a superuser or pg_read_all_settings.
        let row = client
            .query_opt(
                "SELECT setting FROM pg_file_settings WHERE name = 'archive_command' AND error IS NULL ORDER BY seqno DESC LIMIT 1",
                &[],
            )
            .await;
        Some(match row {
            Ok(Some(r)) => match r.get::<_, Option<String>>(0).filter(|c| !c.trim().is_empty()) {
                Some(c) => Observed::Present(c),
                None => Observed::Absent,
            },
            Ok(None) => Observed::Absent,
            Err(e) => Observed::Unknown { reason: format!("reading pg_file_settings: {}", pg_error(&e, url)) },
        })
    } else {
        None
    };
    PostgresState { settings, archiver, configured_archive_command, pitr: None }
}

/// A setting's value in seconds (archive_timeout is stored in seconds).
pub fn seconds(s: &Setting) -> Option<u64> {
    let n: u64 = s.value.parse().ok()?;
    Some(match s.unit.as_deref() {
        Some("ms") => n / 1000,
        Some("min") => n * 60,
        Some("h") => n * 3600,
        _ => n,
    })
}

/// The settings the policy wants, as ALTER SYSTEM values. With `pitr:`,
/// archiving goes to pgBackRest's archive-push with the policy's
/// repository, archive_mode is on and archive_timeout at most a third of
/// the RPO (a segment then leaves well within it, the push included).
fn wanted(spec: &PostgresSpec) -> Vec<(&'static str, String)> {
    if let Some(p) = &spec.pitr {
        let timeout = (p.rpo_secs / 3).max(1);
        let timeout = spec.archive_timeout_secs.map_or(timeout, |t| t.min(timeout));
        let mode = spec.archive_mode.clone().filter(|m| m == "always").unwrap_or_else(|| "on".to_string());
        return vec![
            ("wal_level", spec.wal_level.clone().filter(|l| l != "minimal").unwrap_or_else(|| "replica".to_string())),
            ("archive_mode", mode),
            ("archive_timeout", timeout.to_string()),
            ("archive_command", pitr::config::archive_command(p, "us-east-1")),
        ];
    }
    let mut v = Vec::new();
    if let Some(l) = &spec.wal_level {
        v.push(("wal_level", l.clone()));
    }
    if let Some(m) = &spec.archive_mode {
        v.push(("archive_mode", m.clone()));
    }
    if let Some(t) = spec.archive_timeout_secs {
        v.push(("archive_timeout", t.to_string()));
    }
    if let Some(c) = &spec.archive_command {
        v.push(("archive_command", c.clone()));
    }
    v
}

pub fn diff(spec: &PostgresSpec, state: &PostgresState) -> Change {
    let mut c = Change::new(address(&spec.name), Action::NoOp);
    let settings = match &state.settings {
        Observed::Present(s) => s,
        other => {
            c.unknown.push(UnknownSetting {
                attribute: "connection".into(),
                reason: other.unknown_reason().unwrap_or("").into(),
            });
            return c;
        }
    };
    let mut restart = Vec::new();
    for (name, want) in wanted(spec) {
        let live = settings.get(name);
        let same = match (name, live) {
            ("archive_timeout", Some(s)) => seconds(s).map(|x| x.to_string()) == Some(want.clone()),
            (_, Some(s)) => s.value == want,
            (_, None) => false,
        };
        if !same {
            let before = live.map(|s| match (name, seconds(s)) {
                ("archive_timeout", Some(x)) => json!(format!("{x}s")),
                _ => json!(s.value),
            });
            let after = if name == "archive_timeout" { json!(format!("{want}s")) } else { json!(want) };
            let mut a = AttrChange::new(name, before, after);
            a.sensitive = name == "archive_command" && spec.archive_command_sensitive;
            c.attributes.push(a);
            if live.is_some_and(|s| s.context == "postmaster") {
                restart.push(name);
            }
        }
    }
    let archiving_on = spec.archive_mode.as_deref().is_none_or(|m| m != "off");
    if spec.wal_archiving && archiving_on && spec.archive_command.is_none() && spec.pitr.is_none() {
        let mut cmd = settings.get("archive_command").map(|s| s.value.trim().to_string()).unwrap_or_default();
        // While archive_mode is off pg_settings hides the command: turning
        // archiving on without one would keep every WAL segment in pg_wal
        // until the disk fills, so it is refused here, before apply.
        if cmd == "(disabled)" {
            match &state.configured_archive_command {
                Some(Observed::Present(configured)) => cmd = configured.clone(),
                Some(Observed::Unknown { reason }) => {
                    c.conflicts.push(format!(
                        "archive_mode is off, so the server hides archive_command, and the configuration cannot be read to check one is set ({reason}); set `archive_command` in the policy"
                    ));
                    cmd = "(unknown)".into();
                }
                _ => cmd.clear(),
            }
        }
        let lib = settings.get("archive_library").map(|s| s.value.trim().to_string()).unwrap_or_default();
        if cmd.is_empty() && lib.is_empty() {
            c.conflicts.push(
                "no archive_command or archive_library is set, so turning archiving on would keep every WAL segment in pg_wal until the disk fills; set `archive_command` in the policy or on the server".into(),
            );
        }
    }
    if !c.attributes.is_empty() {
        c.action = Action::Update;
    }
    let pending: Vec<&str> = settings.iter().filter(|(_, s)| s.pending_restart).map(|(n, _)| n.as_str()).collect();
    // "archive_mode takes effect", "wal_level, archive_mode take effect".
    let verb = |names: &[&str], one: &'static str, many: &'static str| if names.len() == 1 { one } else { many };
    if !restart.is_empty() {
        c.reason = Some(format!(
            "restart required: {} {} effect only after a server restart",
            restart.join(", "),
            verb(&restart, "takes", "take")
        ));
    } else if !pending.is_empty() {
        c.reason = Some(format!(
            "restart required: {} {} changed and {} for a server restart",
            pending.join(", "),
            verb(&pending, "has", "have"),
            verb(&pending, "waits", "wait")
        ));
    }
    c
}

/// A quoted SQL literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// ALTER SYSTEM SET each differing setting, then pg_reload_conf().
pub async fn apply(spec: &PostgresSpec, change: &Change) -> Vec<StepOutcome> {
    let url = spec.url.expose();
    let client = match connect(spec).await {
        Ok(c) => c,
        Err(e) => return vec![StepOutcome { step: "connect", result: Err(e.to_string()) }],
    };
    let mut steps = Vec::new();
    for a in &change.attributes {
        let value = match a.name.as_str() {
            "archive_timeout" => {
                wanted(spec).into_iter().find(|(n, _)| *n == "archive_timeout").map(|(_, v)| v).unwrap_or_default()
            }
            _ => a.after.as_str().unwrap_or_default().to_string(),
        };
        // ALTER SYSTEM takes no bind parameters; the name comes from a fixed
        // list and the value is quoted.
        let sql = format!("ALTER SYSTEM SET {} = {}", a.name, literal(&value));
        let r = client.batch_execute(&sql).await.map_err(|e| {
            let msg = pg_error(&e, url);
            if msg.contains("permission denied") || msg.contains("must be superuser") {
                format!("{msg}: ALTER SYSTEM needs a superuser or GRANT ALTER SYSTEM ON PARAMETER {}", a.name)
            } else {
                msg
            }
        });
        let failed = r.is_err();
        steps.push(StepOutcome { step: "ALTER SYSTEM", result: r });
        if failed {
            return steps;
        }
    }
    let r = client.batch_execute("SELECT pg_reload_conf()").await.map_err(|e| pg_error(&e, url));
    steps.push(StepOutcome { step: "pg_reload_conf()", result: r });
    steps
}

const RATIONALE: &str = "The 15-minute RPO rests on WAL archiving: segments leave the server at least every archive_timeout (strategy: PostgreSQL backups).";
const WAL_ARCHIVING: ControlDef = ControlDef {
    id: "PG-WAL-ARCHIVING",
    title: "WAL archiving settings",
    rationale: RATIONALE,
    severity: Severity::High,
    objectives: &["RPO-15MIN"],
};
const ARCHIVER: ControlDef = ControlDef {
    id: "PG-ARCHIVER",
    title: "WAL segments archived within the RPO",
    rationale: RATIONALE,
    severity: Severity::High,
    objectives: &["RPO-15MIN"],
};

pub fn controls(spec: &PostgresSpec, state: &PostgresState, change: &Change) -> Vec<ControlResult> {
    let mut out = Vec::new();
    if let (Some(p), Some(seen)) = (&spec.pitr, &state.pitr) {
        out.extend(pitr::controls::controls(spec, p, seen, &state.archiver));
    }
    if !spec.wal_archiving && spec.pitr.is_none() {
        return out;
    }
    let mut push = |def: &ControlDef, status: Status, expected: Value, observed: Value, detail: Option<String>| {
        let fix = "suoops-policy apply (ALTER SYSTEM + reload; restart where marked)";
        out.push(def.result(&change.address, status, expected, observed, detail, fix, spec.line))
    };
    // A command written with `${VAR}` may hold a secret: neither the wanted
    // nor the live value is shown, as the plan shows neither.
    let shown = |name: &str, value: &str| {
        if name == "archive_command" && spec.archive_command_sensitive {
            json!(crate::model::SENSITIVE)
        } else {
            json!(value)
        }
    };
    let expected = Value::Object(wanted(spec).into_iter().map(|(k, v)| (k.into(), shown(k, &v))).collect());
    match &state.settings {
        Observed::Present(s) => {
            let observed: serde_json::Map<String, Value> = s
                .iter()
                .map(|(k, v)| {
                    let value = shown(k, &v.value);
                    (k.clone(), json!({"value": value, "unit": v.unit, "pending_restart": v.pending_restart}))
                })
                .collect();
            let pending: Vec<&str> = s.iter().filter(|(_, v)| v.pending_restart).map(|(k, _)| k.as_str()).collect();
            let (status, detail) = if !change.attributes.is_empty() || !change.conflicts.is_empty() {
                let mut d: Vec<String> = change.attributes.iter().map(|a| format!("{} differs", a.name)).collect();
                d.extend(change.conflicts.iter().cloned());
                (Status::Fail, Some(d.join("; ")))
            } else if !pending.is_empty() {
                {
                    let verb = if pending.len() == 1 { "waits" } else { "wait" };
                    (Status::Fail, Some(format!("pending_restart: {} {verb} for a server restart", pending.join(", "))))
                }
            } else {
                (Status::Pass, None)
            };
            push(&WAL_ARCHIVING, status, expected, Value::Object(observed), detail);
        }
        other => {
            push(&WAL_ARCHIVING, Status::Unknown, expected, Value::Null, other.unknown_reason().map(str::to_string))
        }
    }
    let rpo = spec.pitr.as_ref().map_or(spec.rpo_secs, |p| p.rpo_secs);
    match &state.archiver {
        Observed::Present(a) => {
            let observed = json!({
                "archived_count": a.archived_count, "failed_count": a.failed_count,
                "last_archived_age_seconds": a.last_archived_age.map(|x| x.round()), "last_failed_wal": a.last_failed_wal,
            });
            let (status, detail) = if a.failing {
                (
                    Status::Fail,
                    Some(format!(
                        "archiving is failing: the last attempt ({}) failed after the last success",
                        a.last_failed_wal.as_deref().unwrap_or("?")
                    )),
                )
            } else {
                match a.last_archived_age {
                    None => (Status::Fail, Some("no WAL segment has been archived yet".into())),
                    Some(age) if age > rpo as f64 => (
                        Status::Fail,
                        Some(format!("the last archived segment is {:.0} s old, over the RPO of {rpo} s", age)),
                    ),
                    Some(_) => (Status::Pass, None),
                }
            };
            push(&ARCHIVER, status, json!({"max_age_seconds": rpo, "failing": false}), observed, detail);
        }
        other => push(
            &ARCHIVER,
            Status::Unknown,
            json!({"max_age_seconds": rpo}),
            Value::Null,
            other.unknown_reason().map(str::to_string),
        ),
    }
    out
}

/// The postgres provider (a registry entry).
pub const POSTGRES: Kind<One> = Kind::new();

/// One postgres instance: the shared per-instance observation.
pub struct One;

impl Instance for One {
    const KIND: &'static str = "postgres";
    const TITLE: &'static str = "PostgreSQL with pg_dump and pgBackRest";
    const NOUNS: (&'static str, &'static str, &'static str) =
        ("PostgreSQL instance", "PostgreSQL instances", "postgres");
    fn requested(req: &mut ImportRequest) -> &mut Vec<(String, String)> {
        &mut req.postgres
    }
    /// RPO-15MIN needs each instance's point-in-time evidence.
    fn judge(
        objective: &str,
        ev: &crate::providers::Evidence<'_>,
        policy: &Policy,
    ) -> Option<crate::providers::Judged> {
        (objective == "RPO-15MIN")
            .then(|| crate::providers::Judged::unless_empty(crate::providers::objectives::rpo_gaps(ev, policy)))
            .flatten()
    }
    /// The audit reads a pgBackRest repository's info and archive.
    fn scope(specs: &[PostgresSpec], on: crate::aws::On) -> Vec<String> {
        match on {
            crate::aws::On::Objects => specs
                .iter()
                .filter_map(|s| s.pitr.as_ref())
                .map(|p| format!("arn:aws:s3:::{}/*", p.repo.bucket))
                .collect(),
            _ => Vec::new(),
        }
    }
    const CONTROLS: &'static [ControlDef] = &[
        WAL_ARCHIVING,
        ARCHIVER,
        pitr::controls::BACKUP,
        pitr::controls::WAL,
        pitr::controls::WINDOW,
        pitr::controls::VERIFY,
        pitr::controls::DRILL,
        pitr::controls::REPLICA,
    ];
    const JOBS: &'static [&'static dyn crate::jobs::Job] = &[
        &backup::DUMP,
        &drill::DRILL,
        &pitr::backup::PITR_BACKUP,
        &pitr::drill::PITR_DRILL,
        &pitr::restore::PITR_RESTORE,
    ];
    type Spec = PostgresSpec;
    type State = PostgresState;
    fn specs(policy: &Policy) -> &[PostgresSpec] {
        &policy.postgres
    }
    fn specs_mut(policy: &mut Policy) -> &mut Vec<PostgresSpec> {
        &mut policy.postgres
    }
    fn secrets(spec: &PostgresSpec) -> Vec<String> {
        let drill = spec.restore_drill.as_ref().and_then(|d| d.url.as_ref());
        let mut out: Vec<String> = std::iter::once(&spec.url).chain(drill).map(|u| u.expose().to_string()).collect();
        out.extend(spec.archive_command.clone().filter(|_| spec.archive_command_sensitive));
        out
    }
    fn import(req: &ImportRequest) -> impl std::future::Future<Output = Result<Imported, Fatal>> {
        import::import(req)
    }
    fn address(spec: &PostgresSpec) -> Address {
        address(&spec.name)
    }
    fn observe<'a>(ctx: &'a Ctx<'a>, spec: &'a PostgresSpec) -> impl std::future::Future<Output = PostgresState> + 'a {
        observe(ctx, spec)
    }
    /// With `pitr:`, its controls are reported unknown too, not left out.
    fn unknown(spec: &PostgresSpec, reason: &str) -> PostgresState {
        let mut state = unknown(reason.to_string());
        state.pitr = spec.pitr.as_ref().map(|_| pitr::controls::PitrSeen::unknown(reason));
        state
    }
    fn diff(spec: &PostgresSpec, state: &PostgresState) -> Change {
        diff(spec, state)
    }
    fn controls(spec: &PostgresSpec, state: &PostgresState, change: &Change) -> Vec<ControlResult> {
        controls(spec, state, change)
    }
    fn apply(spec: &PostgresSpec, change: &Change) -> impl std::future::Future<Output = Vec<StepOutcome>> {
        apply(spec, change)
    }
    fn fingerprint(state: &PostgresState) -> Value {
        json!(state.settings)
    }
    /// A setting that needs a restart is pending, not failed: pg_settings
    /// shows the old value until the restart. While archive_mode is off,
    /// pg_settings shows archive_command as "(disabled)": it cannot be read
    /// back before the restart that turns archiving on.
    fn pending(state: &PostgresState, attr: &AttrChange) -> bool {
        let setting = state.settings.present().and_then(|s| s.get(&attr.name));
        setting.is_some_and(|s| s.pending_restart || s.value == "(disabled)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instance the audit could not observe at all still reports its
    /// point-in-time controls, unknown with the reason, not left out.
    #[test]
    fn unobserved_pitr_controls_are_unknown_not_missing() {
        let text = "version: 1\naws: {region: us-east-1}\ns3:\n  buckets:\n    repo-b:\n      versioning: enabled\npostgres:\n  primary:\n    url: postgres://u@db.internal/app\n    pitr:\n      repo: {bucket: repo-b, prefix: pgbackrest/}\n      stanza: s\n      data_directory: /var/lib/postgresql/15/main\n      window: 24h\n      full_every: 1d\n      rpo: 15m\n";
        let policy = crate::policy::parse("p.yaml", text.as_bytes().to_vec(), &|_| None).expect("valid");
        let spec = &policy.postgres[0];
        let state = <One as Instance>::unknown(spec, "the endpoint did not answer");
        let change = diff(spec, &state);
        let out = controls(spec, &state, &change);
        for id in ["PITR-BACKUP", "PITR-WAL", "PITR-WINDOW", "PITR-VERIFY", "PITR-DRILL", "PG-ARCHIVER"] {
            let c = out.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("{id} missing"));
            assert_eq!(c.status, Status::Unknown, "{id}");
            assert!(c.detail.as_deref().unwrap_or_default().contains("did not answer"), "{id}: {:?}", c.detail);
        }
    }
}
