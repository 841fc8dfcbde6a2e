//! `import` for Redis: read each instance whose URL the request names by
//! its environment variable, and write its persistence; the URL is written
//! as `${VAR}`, never as a URL.

use std::collections::BTreeMap;

use super::{observe_with_keyspace, RedisState};
use crate::model::{Fatal, Observed};
use crate::policy::writer::{duration, scalar, Writer};
use crate::providers::redis::section::{Persistence, RedisSpec};
use crate::providers::{url_from_env, ImportRequest, Imported};

pub(crate) async fn import(req: &ImportRequest) -> Result<Imported, Fatal> {
    let mut out = Imported::new(&["redis"], "Redis");
    let mut specs = Vec::new();
    for (name, var) in &req.redis {
        let url = url_from_env(&req.env, name, var, "Redis")?;
        specs.push((
            RedisSpec {
                name: name.clone(),
                url,
                persistence: Persistence::None,
                timeout_secs: 5,
                backup: None,
                backup_schedule: None,
                encrypt_to: Vec::new(),
                restore_drill: None,
                sample_keys: 5000,
                sample_ms: 1000,
                line: 0,
            },
            var,
        ));
    }
    let states = futures::future::join_all(specs.iter().map(|(s, _)| observe_with_keyspace(s))).await;
    let mut seen = Vec::new();
    for ((spec, var), state) in specs.iter().zip(states) {
        if let Observed::Unknown { reason } = &state.info {
            return Err(Fatal::input(format!("Redis `{}` (${{{var}}}): {reason}", spec.name)));
        }
        seen.push((spec.name.clone(), var.to_string(), state));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var, state) in seen {
        let text = redis_entry(&name, &var, &state, &mut out.unreadable);
        out.entries.push((name, text));
    }
    Ok(out)
}

/// Redis `save` ("3600 1 300 100") as (seconds, changes) pairs; None when
/// it is not such a list.
pub(crate) fn save_pairs(save: &str) -> Option<Vec<(u64, u64)>> {
    let nums: Vec<u64> = save.split_whitespace().map(|n| n.parse().ok()).collect::<Option<_>>()?;
    if !nums.len().is_multiple_of(2) || nums.contains(&0) {
        return None;
    }
    Some(nums.chunks(2).map(|c| (c[0], c[1])).collect())
}

fn redis_entry(name: &str, var: &str, st: &RedisState, gaps: &mut Vec<String>) -> String {
    let mut w = Writer::new();
    w.open(0, name);
    w.raw(2, "url", &format!("${{{var}}}"), None);
    let (config, from_info) = match &st.config {
        Observed::Present(c) => (c.clone(), false),
        other => {
            // CONFIG renamed (managed Redis): INFO tells whether AOF is on,
            // not the fsync policy or the save schedule.
            let reason = other.unknown_reason().unwrap_or("CONFIG unavailable").to_string();
            gaps.push(format!("redis.{name} persistence: {reason}"));
            w.comment(
                2,
                &format!(
                    "{reason}. Persistence below is what INFO shows; fsync and the save schedule could not be read."
                ),
            );
            let info = st.info.present().cloned().unwrap_or_default();
            let mut c = BTreeMap::new();
            let aof = info.get("aof_enabled").is_some_and(|v| v.trim() == "1");
            c.insert("appendonly".to_string(), if aof { "yes" } else { "no" }.to_string());
            c.insert("appendfsync".to_string(), "everysec".to_string());
            c.insert("save".to_string(), String::new());
            (c, true)
        }
    };
    let aof = config.get("appendonly").is_some_and(|v| v == "yes");
    let save = config.get("save").map(String::as_str).unwrap_or_default().trim().to_string();
    let fsync = config.get("appendfsync").cloned().unwrap_or_else(|| "everysec".into());
    let pairs = save_pairs(&save);
    // What the keyspace holds decides between a cache and durable state:
    // queues or counters on a server without persistence are proposed
    // durable (the plan then shows the change), saying why.
    let held = st.keyspace.as_ref().and_then(|k| k.present());
    let durable: Vec<String> = held
        .map(|k| k.durable().iter().map(|f| format!("{} ({})", f.kind, f.patterns.join(", "))).collect())
        .unwrap_or_default();
    if !aof && save.is_empty() && !durable.is_empty() {
        w.comment(
            2,
            &format!(
                "the server has no persistence (appendonly no, save \"\") but holds {}: proposed durable, as the strategy asks for queues and counters; apply sets it",
                durable.join("; ")
            ),
        );
        w.open(2, "persistence");
        w.raw(4, "aof", "{fsync: everysec}", None);
        w.raw(4, "rdb", "[{after: 6h, changes: 1}]", None);
        return w.finish();
    }
    if !aof && save.is_empty() {
        let looked = held.map(|k| format!("; {}: no queue or counter state", k.coverage())).unwrap_or_default();
        w.raw(2, "persistence", "none", Some(&format!("a cache: appendonly no, save \"\"{looked}")));
        return w.finish();
    }
    w.open(2, "persistence");
    if aof {
        let note = (fsync == "everysec" && !from_info).then_some("Redis default fsync");
        w.raw(4, "aof", &format!("{{fsync: {}}}", scalar(&fsync)), note);
    }
    match pairs {
        Some(p) if !p.is_empty() => {
            let items: Vec<String> =
                p.iter().map(|(s, c)| format!("{{after: {}, changes: {c}}}", duration(*s))).collect();
            let note = (save == "3600 1 300 100 60 10000").then_some("Redis default schedule");
            w.raw(4, "rdb", &format!("[{}]", items.join(", ")), note);
        }
        _ if save.is_empty() => {}
        _ => w.comment(4, &format!("save `{save}` is not a list of seconds/changes pairs; not imported")),
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_save_schedules() {
        assert_eq!(save_pairs("3600 1 300 100"), Some(vec![(3600, 1), (300, 100)]));
        assert_eq!(save_pairs(""), Some(vec![]));
        assert_eq!(save_pairs("3600"), None);
        assert_eq!(save_pairs("x 1"), None);
    }
}
