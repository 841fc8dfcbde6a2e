//! What an instance really holds: a bounded look at its keyspace for the
//! audit. `INFO keyspace` gives each database's totals; `SCAN … COUNT`
//! walks at most `sample` keys within `time` (never `KEYS *`), and for
//! each key only `TYPE`, `PTTL` and, for lists and sorted sets, their
//! length — never a value. Key names are matched against the names the
//! common job queues and rate limiters use and reported only as those
//! patterns (`rq:job:*`), never as the name itself, which may carry a
//! user's id.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One kind of state recognised in the sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// What holds it: `Celery (kombu)`, `RQ`, `rate-limit counters`…
    pub kind: &'static str,
    /// Queue or counter state a restart must not lose (not cache).
    pub durable: bool,
    /// Keys sampled of this kind.
    pub keys: u64,
    /// Items waiting in its lists and sorted sets (messages, jobs).
    pub items: u64,
    /// The key patterns seen, e.g. `_kombu.binding.*`.
    pub patterns: Vec<&'static str>,
}

/// The look at one instance's keyspace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Keys in every database (`INFO keyspace`).
    pub total: u64,
    /// Keys looked at.
    pub sampled: u64,
    /// Every key was looked at.
    pub complete: bool,
    pub with_ttl: u64,
    pub without_ttl: u64,
    /// Sampled keys no pattern recognised, without a TTL.
    pub unrecognised_without_ttl: u64,
    pub found: Vec<Found>,
    /// Keys per database (`INFO keyspace`).
    pub databases: BTreeMap<u32, u64>,
    pub seconds: f64,
}

impl Sample {
    /// The kinds of durable state it holds.
    pub fn durable(&self) -> Vec<&Found> {
        self.found.iter().filter(|f| f.durable).collect()
    }

    /// "sampled 5,000 of 1,000,000 keys (0.5 %)" or "every key (12)".
    pub fn coverage(&self) -> String {
        if self.sampled == 0 && self.total == 0 {
            "the keyspace is empty".to_string()
        } else if self.complete {
            format!("looked at every key ({})", self.sampled)
        } else {
            let pct = if self.total == 0 { 100.0 } else { self.sampled as f64 * 100.0 / self.total as f64 };
            format!("sampled {} of {} keys ({pct:.1} %)", self.sampled, self.total)
        }
    }
}

/// Why the keyspace could not be looked at: a command the server or the
/// ACL refused, named (an ACL user needs each of them).
#[derive(Debug, thiserror::Error)]
#[error("{command} was refused: {source}")]
pub struct Refused {
    pub command: &'static str,
    #[source]
    pub source: redis::RedisError,
}

/// `map_err` for one command.
fn refused(command: &'static str) -> impl FnOnce(redis::RedisError) -> Refused {
    move |source| Refused { command, source }
}

/// A sampled key: its name (kept in memory only), type, TTL, length.
struct Key {
    name: String,
    kind: String,
    ttl: bool,
    len: u64,
}

/// The `INFO keyspace` lines: `db0:keys=10,expires=2,avg_ttl=0`.
pub fn databases(info: &str) -> BTreeMap<u32, u64> {
    info.lines()
        .filter_map(|l| {
            let (db, rest) = l.trim().split_once(':')?;
            let n = db.strip_prefix("db")?.parse().ok()?;
            let keys = rest.split(',').find_map(|kv| kv.strip_prefix("keys="))?.parse().ok()?;
            Some((n, keys))
        })
        .collect()
}

/// Look at the keyspace through `con` (a connection of its own: SELECT
/// moves it between databases): at most `max_keys` keys and `max_ms`.
pub async fn sample(
    con: &mut redis::aio::MultiplexedConnection,
    max_keys: u64,
    max_ms: u64,
) -> Result<Sample, Refused> {
    let start = Instant::now();
    let deadline = start + Duration::from_millis(max_ms);
    let info: String =
        redis::cmd("INFO").arg("keyspace").query_async(&mut *con).await.map_err(refused("INFO keyspace"))?;
    let dbs = databases(&info);
    let total = dbs.values().sum();
    let mut keys: Vec<Key> = Vec::new();
    let mut complete = true;
    'dbs: for (&db, &n) in &dbs {
        if n == 0 {
            continue;
        }
        let _: () = redis::cmd("SELECT").arg(db).query_async(&mut *con).await.map_err(refused("SELECT"))?;
        let mut cursor = 0u64;
        loop {
            if keys.len() as u64 >= max_keys || Instant::now() >= deadline {
                complete = false;
                break 'dbs;
            }
            let count = (max_keys - keys.len() as u64).clamp(1, 1000);
            let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut *con)
                .await
                .map_err(refused("SCAN"))?;
            keys.extend(describe(con, names).await?);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    let _: Result<(), _> = redis::cmd("SELECT").arg(0).query_async(&mut *con).await;
    keys.truncate(max_keys as usize);
    let complete = complete && keys.len() as u64 >= total;
    Ok(summarise(&keys, total, complete, dbs, start.elapsed().as_secs_f64()))
}

/// TYPE and PTTL of each key, and the length of lists and sorted sets, in
/// two pipelined round trips.
async fn describe(con: &mut redis::aio::MultiplexedConnection, names: Vec<String>) -> Result<Vec<Key>, Refused> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = redis::pipe();
    for n in &names {
        p.cmd("TYPE").arg(n).cmd("PTTL").arg(n);
    }
    let got: Vec<redis::Value> = p.query_async(&mut *con).await.map_err(refused("TYPE/PTTL"))?;
    let mut keys = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let kind = match got.get(2 * i) {
            Some(redis::Value::SimpleString(s)) => s.clone(),
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => "none".to_string(),
        };
        let ttl = matches!(got.get(2 * i + 1), Some(redis::Value::Int(t)) if *t >= 0);
        keys.push(Key { name, kind, ttl, len: 0 });
    }
    let mut p = redis::pipe();
    let lengths: Vec<usize> =
        keys.iter().enumerate().filter(|(_, k)| k.kind == "list" || k.kind == "zset").map(|(i, _)| i).collect();
    if lengths.is_empty() {
        return Ok(keys);
    }
    for &i in &lengths {
        let cmd = if keys[i].kind == "list" { "LLEN" } else { "ZCARD" };
        p.cmd(cmd).arg(&keys[i].name);
    }
    let lens: Vec<u64> = p.query_async(&mut *con).await.map_err(refused("LLEN/ZCARD"))?;
    for (&i, n) in lengths.iter().zip(lens) {
        keys[i].len = n;
    }
    Ok(keys)
}

/// A name pattern of one kind of state.
struct Pattern {
    kind: &'static str,
    durable: bool,
    /// Shown in reports instead of the names it matches.
    shown: &'static str,
    matches: fn(&str) -> bool,
}

/// Django's cache keys are `PREFIX:VERSION:KEY` (django.core.cache.backends
/// .base.default_key_func): the key past them.
fn django_key(name: &str) -> &str {
    let mut parts = name.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(v), Some(rest)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => name,
    }
}

/// The names job queues and rate limiters give their keys.
const PATTERNS: &[Pattern] = &[
    // kombu's Redis transport (kombu/transport/redis.py): the queue is a
    // list named after it (`celery` by default), its bindings the set
    // `_kombu.binding.QUEUE`, messages in flight the hash `unacked` and the
    // sorted set `unacked_index`.
    Pattern {
        kind: "Celery (kombu)",
        durable: true,
        shown: "_kombu.binding.*",
        matches: |n| n.starts_with("_kombu.binding."),
    },
    Pattern {
        kind: "Celery (kombu)",
        durable: true,
        shown: "unacked",
        matches: |n| n == "unacked" || n == "unacked_mutex",
    },
    Pattern { kind: "Celery (kombu)", durable: true, shown: "unacked_index", matches: |n| n == "unacked_index" },
    // RQ (rq/queue.py, rq/job.py): `rq:queue:NAME` lists, `rq:job:ID`
    // hashes, the `rq:queues` set, registries `rq:wip:*`, `rq:deferred:*`,
    // `rq:scheduled:*`.
    Pattern { kind: "RQ", durable: true, shown: "rq:queue:*", matches: |n| n.starts_with("rq:queue:") },
    Pattern { kind: "RQ", durable: true, shown: "rq:job:*", matches: |n| n.starts_with("rq:job:") },
    Pattern {
        kind: "RQ",
        durable: true,
        shown: "rq:*",
        matches: |n| n == "rq:queues" || ["rq:wip:", "rq:deferred:", "rq:scheduled:"].iter().any(|p| n.starts_with(p)),
    },
    // Sidekiq (lib/sidekiq/api.rb): `queue:NAME` lists, the `queues` set,
    // the `schedule`, `retry` and `dead` sorted sets.
    Pattern { kind: "Sidekiq", durable: true, shown: "queue:*", matches: |n| n.starts_with("queue:") },
    Pattern {
        kind: "Sidekiq",
        durable: true,
        shown: "schedule/retry/dead",
        matches: |n| ["schedule", "retry", "dead", "queues"].contains(&n),
    },
    // Bull and BullMQ (lib/commands): `bull:QUEUE:wait|active|delayed|…`.
    Pattern { kind: "Bull", durable: true, shown: "bull:*", matches: |n| n.starts_with("bull:") },
    // Rate limiters: the `limits` library behind Flask-Limiter
    // (limits/storage/redis.py, PREFIX = "LIMITS"); django-ratelimit's
    // cache keys `rl:…` (django_ratelimit/core.py, _make_cache_key);
    // Django REST framework's throttles `throttle_SCOPE_IDENT`
    // (rest_framework/throttling.py, cache_format) — the ident may be a
    // user's id, so only the pattern is shown.
    Pattern { kind: "rate-limit counters", durable: true, shown: "LIMITS:*", matches: |n| n.starts_with("LIMITS:") },
    Pattern {
        kind: "rate-limit counters",
        durable: true,
        shown: "rl:*",
        matches: |n| django_key(n).starts_with("rl:"),
    },
    Pattern {
        kind: "rate-limit counters",
        durable: true,
        shown: "throttle_*",
        matches: |n| django_key(n).starts_with("throttle_"),
    },
    Pattern {
        kind: "rate-limit counters",
        durable: true,
        shown: "ratelimit:*",
        matches: |n| ["ratelimit:", "rate_limit:", "rate-limit:"].iter().any(|p| n.starts_with(p)),
    },
];

/// Classify the sampled keys: named patterns, and the lists kombu binds
/// (a queue's list is named after the queue, which `_kombu.binding.QUEUE`
/// names, or `celery`).
fn summarise(keys: &[Key], total: u64, complete: bool, databases: BTreeMap<u32, u64>, seconds: f64) -> Sample {
    let bound: BTreeSet<&str> =
        keys.iter().filter_map(|k| k.name.strip_prefix("_kombu.binding.")).chain(["celery"]).collect();
    let mut found: BTreeMap<&'static str, Found> = BTreeMap::new();
    let mut unrecognised_without_ttl = 0;
    for k in keys {
        let hit = if k.kind == "list" && bound.contains(k.name.as_str()) {
            Some(("Celery (kombu)", true, "queue lists named in _kombu.binding.* (or celery)"))
        } else {
            PATTERNS.iter().find(|p| (p.matches)(&k.name)).map(|p| (p.kind, p.durable, p.shown))
        };
        let Some((kind, durable, shown)) = hit else {
            if !k.ttl {
                unrecognised_without_ttl += 1;
            }
            continue;
        };
        let f = found.entry(kind).or_insert(Found { kind, durable, keys: 0, items: 0, patterns: Vec::new() });
        f.keys += 1;
        f.items += k.len;
        if !f.patterns.contains(&shown) {
            f.patterns.push(shown);
        }
    }
    let with_ttl = keys.iter().filter(|k| k.ttl).count() as u64;
    Sample {
        total,
        sampled: keys.len() as u64,
        complete,
        with_ttl,
        without_ttl: keys.len() as u64 - with_ttl,
        unrecognised_without_ttl,
        found: found.into_values().collect(),
        databases,
        seconds: (seconds * 1000.0).round() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, kind: &str, ttl: bool, len: u64) -> Key {
        Key { name: name.into(), kind: kind.into(), ttl, len }
    }

    #[test]
    fn queues_and_counters_are_recognised_by_name_and_shown_as_patterns() {
        let keys = [
            key("celery", "list", false, 3),
            key("_kombu.binding.celery", "set", false, 0),
            key("emails", "list", false, 2),
            key("_kombu.binding.emails", "set", false, 0),
            key("rq:job:4f1c-user-42", "hash", false, 0),
            key(":1:throttle_user_42", "string", true, 0),
            key("session:abc", "string", true, 0),
            key("plain", "string", false, 0),
        ];
        let s = summarise(&keys, 8, true, BTreeMap::from([(0, 8)]), 0.01);
        let kinds: Vec<&str> = s.found.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["Celery (kombu)", "RQ", "rate-limit counters"]);
        let celery = &s.found[0];
        assert_eq!((celery.keys, celery.items), (4, 5), "{celery:?}");
        let shown = format!("{:?}", s.found);
        assert!(!shown.contains("user_42") && !shown.contains("4f1c") && !shown.contains("emails"), "{shown}");
        assert_eq!((s.with_ttl, s.without_ttl, s.unrecognised_without_ttl), (2, 6, 1));
        assert_eq!(s.coverage(), "looked at every key (8)");
        let part = summarise(&keys[..2], 1_000_000, false, BTreeMap::new(), 1.0);
        assert_eq!(part.coverage(), "sampled 2 of 1000000 keys (0.0 %)");
    }

    #[test]
    fn info_keyspace_is_read_per_database() {
        let info = "# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=0\r\ndb3:keys=5,expires=0,avg_ttl=0\r\n";
        assert_eq!(databases(info), BTreeMap::from([(0, 10), (3, 5)]));
        assert_eq!(django_key(":1:rl:abc"), "rl:abc");
        assert_eq!(django_key("rq:job:1"), "rq:job:1");
    }
}
