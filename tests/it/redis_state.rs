//! What a Redis instance really holds, looked at by the audit against a
//! real redis-server: a "cache" carrying a Celery queue fails REDIS-STATE
//! naming Celery (and REDIS-DURABILITY is not met); one holding only keys
//! with a TTL passes; a keyspace larger than the sample says it was
//! sampled and how much; an ACL user who may not SCAN gets unknown with
//! the command named.

use crate::harness::{control, RedisServer, Run, World};

fn policy(extra: &str) -> String {
    format!("version: 1\nredis:\n  cache:\n    url: ${{T_REDIS_URL}}\n    persistence: none\n{extra}")
}

fn audit(w: &World, p: &str, url: &str) -> Run {
    w.cli_env(&["audit", "-f", p, "--format", "json"], &[("T_REDIS_URL", url)], &["AWS_ENDPOINT_URL"])
}

#[test]
fn a_cache_carrying_a_celery_queue_fails_and_one_of_ttl_keys_passes() {
    let w = World::new();
    let r = RedisServer::start(w.dir.path(), "", true);
    let p = w.write("p.yaml", &policy("")).to_string_lossy().into_owned();
    let url = r.url(None);
    for i in 0..50 {
        r.cli(None, &["SET", &format!("page:{i}"), "cached", "EX", "3600"]);
    }
    let j = audit(&w, &p, &url).json();
    let c = control(&j, "REDIS-STATE", "redis.cache");
    assert_eq!(c["status"], "pass", "only keys with a TTL: {c}");
    assert!(c["detail"].as_str().unwrap_or_default().starts_with("looked at every key (50); 50 with a TTL"), "{c}");

    // As kombu's Redis transport leaves it: the queue's list and its binding.
    r.cli(None, &["LPUSH", "celery", "{\"body\": \"m1\"}", "{\"body\": \"m2\"}", "{\"body\": \"m3\"}"]);
    r.cli(None, &["SADD", "_kombu.binding.celery", "celery\x06\x16\x06\x16celery"]);
    let out = audit(&w, &p, &url);
    out.code(2);
    let j = out.json();
    let c = control(&j, "REDIS-STATE", "redis.cache");
    assert_eq!(c["status"], "fail", "{c}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("declared `persistence: none` but holds Celery (kombu) (2 key(s), 3 item(s) waiting"),
        "{c}"
    );
    assert!(!out.stdout.contains("m1") && !out.stdout.contains("\\\"body\\\""), "no value is read: {}", out.stdout);
    let durability = j["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == "REDIS-DURABILITY");
    assert_eq!(durability.expect("REDIS-DURABILITY")["verdict"], "not_met", "{j}");

    // import proposes what the keyspace calls for, and says why.
    let out = w.cli_env(&["import", "--redis", "cache=T_REDIS_URL"], &[("T_REDIS_URL", &url)], &["AWS_ENDPOINT_URL"]);
    out.code(0);
    let said = out.stdout.replace("\n    # ", " ");
    assert!(said.contains("holds Celery (kombu)") && said.contains("proposed durable"), "{}", out.stdout);
    assert!(
        out.stdout.contains("    persistence:\n      aof: {fsync: everysec}\n      rdb: [{after: 6h, changes: 1}]"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_keyspace_larger_than_the_sample_is_reported_as_sampled() {
    let w = World::new();
    let r = RedisServer::start(w.dir.path(), "", true);
    r.cli(None, &["EVAL", "for i=1,1000 do redis.call('SET','k'..i,'v') end", "0"]);
    let p = w.write("p.yaml", &policy("    evaluate: {sample: 100}\n")).to_string_lossy().into_owned();
    let j = audit(&w, &p, &r.url(None)).json();
    let c = control(&j, "REDIS-STATE", "redis.cache");
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["observed"]["complete"], false, "{c}");
    assert_eq!(c["observed"]["total"], 1000, "{c}");
    assert!(c["detail"].as_str().unwrap_or_default().starts_with("sampled 100 of 1000 keys (10.0 %)"), "{c}");
}

#[test]
fn an_acl_user_without_scan_gets_unknown_naming_the_command() {
    let w = World::new();
    let r = RedisServer::start(w.dir.path(), "", true);
    r.cli(None, &["ACL", "SETUSER", "auditor", "on", ">auditor-pw", "~*", "+@all", "-scan"]);
    r.cli(None, &["SET", "celery-like", "x"]);
    let url = format!("redis://auditor:auditor-pw@127.0.0.1:{}/0", r.port);
    let p = w.write("p.yaml", &policy("")).to_string_lossy().into_owned();
    let out = audit(&w, &p, &url);
    out.code(1);
    let j = out.json();
    let c = control(&j, "REDIS-STATE", "redis.cache");
    assert_eq!(c["status"], "unknown", "{c}");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("SCAN was refused") && detail.contains("no permissions to run the 'scan' command"), "{c}");
    assert!(!out.stdout.contains("auditor-pw"), "{}", out.stdout);
}
