//! Redis persistence: observe with CONFIG GET (INFO when CONFIG is renamed
//! or disabled, as on managed services), apply with CONFIG SET then CONFIG
//! REWRITE so the change survives a restart. The URL holds a password: it
//! is never printed, and error texts are scrubbed of it.

pub mod backup;
pub mod drill;
mod import;
pub mod keyspace;
pub mod rdb;
pub mod section;

use std::collections::BTreeMap;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use serde_json::{json, Value};

use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use crate::model::{Action, Address, AttrChange, Change, Observed, StepOutcome, UnknownSetting};
use crate::policy::scrub;
use crate::providers::redis::section::{Persistence, RedisSpec};

use crate::model::Fatal;
use crate::policy::Policy;
use crate::providers::instances::{Instance, Kind};
use crate::providers::{ImportRequest, Imported};

/// What one instance shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RedisState {
    /// Connection and INFO; Unknown when the server cannot be reached.
    pub info: Observed<BTreeMap<String, String>>,
    /// CONFIG GET of the persistence settings; Unknown (with why) when
    /// CONFIG is not available.
    pub config: Observed<BTreeMap<String, String>>,
    /// What the keyspace holds (audit only; None: not looked at).
    pub keyspace: Option<Observed<keyspace::Sample>>,
}

pub fn address(name: &str) -> Address {
    Address::resource("redis", name)
}

fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.trim().split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Why the tool could not do what it needed with a Redis instance. No
/// variant holds the URL (it may carry a password): each text is scrubbed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RedisError {
    #[error("invalid Redis URL: {0}")]
    Url(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{command}: {why}")]
    Command { command: &'static str, why: String },
    #[error("the initial AOF rewrite ended with status {0}")]
    AofRewrite(String),
    #[error(
        "the initial AOF rewrite is still running after {0} s; the data is durable once it ends (INFO persistence)"
    )]
    AofRunning(u64),
}

async fn connect(spec: &RedisSpec) -> Result<redis::aio::MultiplexedConnection, RedisError> {
    let url = spec.url.expose();
    let client = redis::Client::open(url).map_err(|e| RedisError::Url(scrub(&e.to_string(), url)))?;
    let t = Duration::from_secs(spec.timeout_secs);
    let cfg = AsyncConnectionConfig::new().set_connection_timeout(Some(t)).set_response_timeout(Some(t));
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .map_err(|e| RedisError::Connect(scrub(&e.to_string(), url)))
}

const KEYS: &[&str] = &["appendonly", "appendfsync", "save"];

/// Observe one instance.
pub async fn observe(spec: &RedisSpec) -> RedisState {
    let url = spec.url.expose();
    let unknown = |reason: String| RedisState {
        info: Observed::Unknown { reason: reason.clone() },
        config: Observed::Unknown { reason },
        keyspace: None,
    };
    let mut con = match connect(spec).await {
        Ok(c) => c,
        Err(e) => return unknown(e.to_string()),
    };
    let info: Result<String, _> = redis::cmd("INFO").arg("server").arg("persistence").query_async(&mut con).await;
    let info = match info {
        Ok(t) => parse_info(&t),
        Err(e) => return unknown(scrub(&format!("INFO failed: {e}"), url)),
    };
    let mut config = BTreeMap::new();
    for key in KEYS {
        let got: Result<Vec<String>, _> = redis::cmd("CONFIG").arg("GET").arg(*key).query_async(&mut con).await;
        match got {
            Ok(pair) if pair.len() == 2 => {
                config.insert(pair[0].clone(), pair[1].clone());
            }
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                let reason = if text.contains("unknown command")
                    || text.contains("NOPERM")
                    || text.contains("no permissions")
                {
                    "CONFIG is renamed or disabled (as on managed Redis): not manageable by CONFIG; audit reads INFO persistence".to_string()
                } else {
                    scrub(&format!("CONFIG GET failed: {text}"), url)
                };
                return RedisState {
                    info: Observed::Present(info),
                    config: Observed::Unknown { reason },
                    keyspace: None,
                };
            }
        }
    }
    RedisState { info: Observed::Present(info), config: Observed::Present(config), keyspace: None }
}

/// As [`observe`], and, for the audit, a bounded look at what the keyspace
/// holds, on a connection of its own (`spec.sample_keys` keys at most, 0:
/// no look).
pub async fn observe_with_keyspace(spec: &RedisSpec) -> RedisState {
    let mut state = observe(spec).await;
    if state.info.present().is_none() || spec.sample_keys == 0 {
        return state;
    }
    let url = spec.url.expose();
    let look = match connect(spec).await {
        Ok(mut con) => {
            keyspace::sample(&mut con, spec.sample_keys, spec.sample_ms).await.map_err(|e| scrub(&e.to_string(), url))
        }
        Err(e) => Err(e.to_string()),
    };
    state.keyspace = Some(match look {
        Ok(s) => Observed::Present(s),
        Err(reason) => Observed::Unknown { reason },
    });
    state
}

fn norm_save(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn diff(spec: &RedisSpec, state: &RedisState) -> Change {
    let mut c = Change::new(address(&spec.name), Action::NoOp);
    let info = match &state.info {
        Observed::Present(i) => i,
        other => {
            c.unknown.push(UnknownSetting {
                attribute: "connection".into(),
                reason: other.unknown_reason().unwrap_or("").into(),
            });
            return c;
        }
    };
    let config = match &state.config {
        Observed::Present(cfg) => cfg,
        other => {
            c.conflicts.push(other.unknown_reason().unwrap_or("CONFIG unavailable").to_string());
            return c;
        }
    };
    for (key, want) in spec.persistence.config() {
        let live = config.get(key).cloned();
        let same = match key {
            "save" => live.as_deref().map(norm_save) == Some(norm_save(&want)),
            _ => live.as_deref() == Some(want.as_str()),
        };
        if !same {
            c.attributes.push(AttrChange::new(key, live.map(|l| json!(l)), json!(want)));
        }
    }
    if !c.attributes.is_empty() {
        c.action = Action::Update;
        if info.get("config_file").is_none_or(|f| f.trim().is_empty()) {
            c.conflicts.push(
                "the server runs without a config file: CONFIG REWRITE cannot save the change, so it would be lost on restart; start redis-server with a config file"
                    .into(),
            );
        }
    }
    c
}

/// CONFIG SET each differing setting, then CONFIG REWRITE.
pub async fn apply(spec: &RedisSpec, change: &Change) -> Vec<StepOutcome> {
    let url = spec.url.expose();
    let mut steps = Vec::new();
    let mut con = match connect(spec).await {
        Ok(c) => c,
        Err(e) => return vec![StepOutcome { step: "connect", result: Err(e.to_string()) }],
    };
    for a in &change.attributes {
        let value = a.after.as_str().unwrap_or_default().to_string();
        let r: Result<(), _> = redis::cmd("CONFIG").arg("SET").arg(&a.name).arg(&value).query_async(&mut con).await;
        let failed = r.is_err();
        steps.push(StepOutcome { step: "CONFIG SET", result: r.map_err(|e| scrub(&format!("{}: {e}", a.name), url)) });
        if failed {
            return steps;
        }
    }
    let r: Result<(), _> = redis::cmd("CONFIG").arg("REWRITE").query_async(&mut con).await;
    steps.push(StepOutcome { step: "CONFIG REWRITE", result: r.map_err(|e| scrub(&e.to_string(), url)) });
    // Turning AOF on starts an initial rewrite in the background; until it
    // is done the data is not yet durable, and Redis refuses a shutdown
    // ("Writing initial AOF, can't exit"). Wait for it, bounded, and say
    // how it ended.
    let aof_on = change.attributes.iter().any(|a| a.name == "appendonly" && a.after.as_str() == Some("yes"));
    if aof_on && steps.iter().all(|s| s.result.is_ok()) {
        steps.push(StepOutcome {
            step: "initial AOF rewrite",
            result: initial_aof(&mut con, url).await.map_err(|e| e.to_string()),
        });
    }
    steps
}

/// How long apply waits for the initial AOF rewrite.
const AOF_WAIT: Duration = Duration::from_secs(120);

/// Poll INFO persistence until no AOF rewrite is running or scheduled,
/// with backoff (50 ms doubling to 1 s), at most [`AOF_WAIT`].
async fn initial_aof(con: &mut redis::aio::MultiplexedConnection, url: &str) -> Result<(), RedisError> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let text: String = redis::cmd("INFO")
            .arg("persistence")
            .query_async(&mut *con)
            .await
            .map_err(|e| RedisError::Command { command: "INFO persistence", why: scrub(&e.to_string(), url) })?;
        let info = parse_info(&text);
        let busy = |k: &str| info.get(k).is_some_and(|v| v != "0");
        if !busy("aof_rewrite_in_progress") && !busy("aof_rewrite_scheduled") {
            return match info.get("aof_last_bgrewrite_status").map(String::as_str) {
                Some("ok") | None => Ok(()),
                Some(other) => Err(RedisError::AofRewrite(other.to_string())),
            };
        }
        if start.elapsed() >= AOF_WAIT {
            return Err(RedisError::AofRunning(AOF_WAIT.as_secs()));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

const RATIONALE: &str = "Redis is a cache except where queues need durability: AOF every second and an RDB snapshot every 6 hours (strategy: Redis).";
const fn def(id: &'static str, title: &'static str, objectives: &'static [&'static str]) -> ControlDef {
    ControlDef { id, title, rationale: RATIONALE, severity: Severity::Medium, objectives }
}
const PERSISTENCE: ControlDef = def("REDIS-PERSISTENCE", "Cache without persistence", &[]);
const AOF: ControlDef = def("REDIS-AOF", "Append-only file", &["REDIS-DURABILITY"]);
const RDB: ControlDef = def("REDIS-RDB", "RDB snapshot schedule", &["REDIS-DURABILITY"]);
const LAST_SAVE: ControlDef = def("REDIS-LAST-SAVE", "Last AOF write / RDB save succeeded", &["REDIS-DURABILITY"]);
const STATE: ControlDef = ControlDef {
    id: "REDIS-STATE",
    title: "What the instance holds matches its persistence",
    rationale: "A cache is not backed up; queues and counters are state a restart must not lose. An instance declared `persistence: none` that holds Celery, RQ, Sidekiq or Bull queues, or rate-limit counters, loses them on restart (strategy: Redis, evaluate Redis persistence for Celery and rate-limit counters).",
    severity: Severity::High,
    objectives: &["REDIS-DURABILITY"],
};

pub fn controls(spec: &RedisSpec, state: &RedisState, change: &Change) -> Vec<ControlResult> {
    let mut out = Vec::new();
    let info = state.info.present();
    let unknown = state.info.unknown_reason().map(str::to_string);
    let live = |key: &str| -> Option<String> {
        if let Some(cfg) = state.config.present() {
            return cfg.get(key).cloned();
        }
        // Without CONFIG, INFO persistence says whether AOF is on and
        // whether RDB saves are configured (not the exact schedule).
        let i = info?;
        match key {
            "appendonly" => i.get("aof_enabled").map(|v| if v == "1" { "yes".into() } else { "no".into() }),
            _ => None,
        }
    };
    let mut push = |def: &ControlDef, status: Status, expected: Value, observed: Value, detail: Option<String>| {
        let fix = "suoops-policy apply (CONFIG SET + CONFIG REWRITE)";
        out.push(def.result(&change.address, status, expected, observed, detail, fix, spec.line))
    };
    let judge = |keys: &[&str], want: &[(&str, String)]| -> (Status, Value, Option<String>) {
        if let Some(u) = &unknown {
            return (Status::Unknown, Value::Null, Some(u.clone()));
        }
        let mut observed = serde_json::Map::new();
        let mut status = Status::Pass;
        let mut detail = None;
        for k in keys {
            let w = want.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).unwrap_or_default();
            match live(k) {
                Some(l) => {
                    if norm_save(&l) != norm_save(&w) {
                        status = Status::Fail;
                    }
                    observed.insert((*k).into(), json!(l));
                }
                None => {
                    if status == Status::Pass {
                        status = Status::Unknown;
                    }
                    detail = state.config.unknown_reason().map(str::to_string);
                }
            }
        }
        (status, Value::Object(observed), detail)
    };
    let want = spec.persistence.config();
    let expected = |keys: &[&str]| {
        Value::Object(want.iter().filter(|(k, _)| keys.contains(k)).map(|(k, v)| ((*k).into(), json!(v))).collect())
    };
    match &spec.persistence {
        Persistence::None => {
            let keys = ["appendonly", "save"];
            let (s, o, d) = judge(&keys, &want);
            push(&PERSISTENCE, s, expected(&keys), o, d);
        }
        Persistence::Durable { aof, rdb } => {
            let aof_keys: &[&str] = if aof.is_some() { &["appendonly", "appendfsync"] } else { &["appendonly"] };
            let (s, o, d) = judge(aof_keys, &want);
            push(&AOF, s, expected(aof_keys), o, d);
            let (s, o, d) = judge(&["save"], &want);
            push(&RDB, s, expected(&["save"]), o, d);
            let last = info.map(|i| {
                let mut bad = Vec::new();
                if aof.is_some() && i.get("aof_last_write_status").is_some_and(|v| v != "ok") {
                    bad.push("the last AOF write failed");
                }
                if !rdb.is_empty() && i.get("rdb_last_bgsave_status").is_some_and(|v| v != "ok") {
                    bad.push("the last RDB save failed");
                }
                (bad, json!({"aof_last_write_status": i.get("aof_last_write_status"), "rdb_last_bgsave_status": i.get("rdb_last_bgsave_status")}))
            });
            let (s, o, d) = match last {
                None => (Status::Unknown, Value::Null, unknown.clone()),
                Some((bad, o)) if bad.is_empty() => (Status::Pass, o, None),
                Some((bad, o)) => (Status::Fail, o, Some(bad.join("; "))),
            };
            push(&LAST_SAVE, s, json!({"status": "ok"}), o, d);
        }
    }
    if let Some(look) = &state.keyspace {
        out.push(state_control(spec, look, &change.address));
    }
    out
}

/// REDIS-STATE: an instance declared a cache holds no queue or counter
/// state; unknown when the keyspace could not be looked at.
fn state_control(spec: &RedisSpec, look: &Observed<keyspace::Sample>, addr: &Address) -> ControlResult {
    let cache = matches!(spec.persistence, Persistence::None);
    let expected = json!({"persistence": if cache { "none" } else { "durable" }, "queue_or_counter_state": !cache});
    let fix = "declare it durable (persistence: {aof: {fsync: everysec}, rdb: [{after: 6h, changes: 1}]}) and back it up, or move the queues and counters to the durable instance";
    let (status, observed, detail) = match look {
        Observed::Present(s) => {
            let durable: Vec<String> = s
                .durable()
                .iter()
                .map(|f| format!("{} ({} key(s), {} item(s) waiting: {})", f.kind, f.keys, f.items, f.patterns.join(", ")))
                .collect();
            let summary = format!(
                "{}; {} with a TTL, {} without ({} of them no known pattern)",
                s.coverage(),
                s.with_ttl,
                s.without_ttl,
                s.unrecognised_without_ttl
            );
            if cache && !durable.is_empty() {
                let why = format!(
                    "declared `persistence: none` but holds {}: a restart loses them ({summary})",
                    durable.join("; ")
                );
                (Status::Fail, json!(s), Some(why))
            } else {
                (Status::Pass, json!(s), Some(summary))
            }
        }
        Observed::Absent => (Status::Unknown, Value::Null, Some("the keyspace was not looked at".to_string())),
        Observed::Unknown { reason } => (
            Status::Unknown,
            Value::Null,
            Some(format!(
                "what the instance holds is not known: {reason} (the ACL user needs INFO, SELECT, SCAN, TYPE, PTTL, LLEN and ZCARD)"
            )),
        ),
    };
    STATE.result(addr, status, expected, observed, detail, fix.to_string(), spec.line)
}

/// The redis provider (a registry entry).
pub const REDIS: Kind<One> = Kind::new();

/// One redis instance: the shared per-instance observation.
pub struct One;

impl Instance for One {
    const KIND: &'static str = "redis";
    const TITLE: &'static str = "Redis";
    const NOUNS: (&'static str, &'static str, &'static str) = ("Redis instance", "Redis instances", "redis");
    fn requested(req: &mut ImportRequest) -> &mut Vec<(String, String)> {
        &mut req.redis
    }
    const CONTROLS: &'static [ControlDef] = &[PERSISTENCE, AOF, RDB, LAST_SAVE, STATE];
    const JOBS: &'static [&'static dyn crate::jobs::Job] = &[&backup::SNAPSHOT, &drill::DRILL];
    type Spec = RedisSpec;
    type State = RedisState;
    fn specs(policy: &Policy) -> &[RedisSpec] {
        &policy.redis
    }
    fn specs_mut(policy: &mut Policy) -> &mut Vec<RedisSpec> {
        &mut policy.redis
    }
    fn secrets(spec: &RedisSpec) -> Vec<String> {
        vec![spec.url.expose().to_string()]
    }
    fn import(req: &ImportRequest) -> impl std::future::Future<Output = Result<Imported, Fatal>> {
        import::import(req)
    }
    fn address(spec: &RedisSpec) -> Address {
        address(&spec.name)
    }
    async fn observe<'a>(ctx: &'a crate::providers::Ctx<'a>, spec: &'a RedisSpec) -> RedisState {
        if ctx.evidence {
            observe_with_keyspace(spec).await
        } else {
            observe(spec).await
        }
    }
    fn unknown(spec: &RedisSpec, reason: &str) -> RedisState {
        RedisState {
            info: Observed::Unknown { reason: reason.to_string() },
            config: Observed::Unknown { reason: reason.to_string() },
            keyspace: (spec.sample_keys > 0).then(|| Observed::Unknown { reason: reason.to_string() }),
        }
    }
    fn diff(spec: &RedisSpec, state: &RedisState) -> Change {
        diff(spec, state)
    }
    fn controls(spec: &RedisSpec, state: &RedisState, change: &Change) -> Vec<ControlResult> {
        controls(spec, state, change)
    }
    fn apply(spec: &RedisSpec, change: &Change) -> impl std::future::Future<Output = Vec<StepOutcome>> {
        apply(spec, change)
    }
    fn fingerprint(state: &RedisState) -> Value {
        json!({"config": state.config, "config_file": state.info.present().and_then(|i| i.get("config_file"))})
    }
}
