//! `audit --notify` against a local HTTP receiver on loopback: a failing
//! estate posts once, an unchanged run posts nothing, a fix posts one
//! recovery; 5xx answers are retried; an unreachable receiver is one line
//! and the exit code stays the audit's; the webhook's token never shows.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{block_on, unique, Server, World};

/// A webhook receiver: records each request's path and JSON body, and
/// answers with the next status of `script` (then 200).
pub(crate) struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Receiver {
    pub(crate) fn start(script: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let got: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
        let (g2, script) = (got.clone(), Arc::new(Mutex::new(script)));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(serde_json::Value::Null);
                let status = {
                    let mut s = script.lock().expect("script");
                    if s.is_empty() {
                        200
                    } else {
                        s.remove(0)
                    }
                };
                if status == 200 {
                    g2.lock().expect("got").push((path, body));
                }
                let _ = write!(c, "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            }
        });
        Receiver { port, got }
    }

    /// A webhook URL with a token in its path, as Slack's are.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/services/T000/B000/SECRETTOKEN", self.port)
    }

    pub(crate) fn posts(&self) -> Vec<serde_json::Value> {
        self.got.lock().expect("got").iter().map(|(_, b)| b.clone()).collect()
    }
}

fn policy(bucket: &str) -> String {
    format!(
        "version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {bucket}:
      versioning: enabled
      backups:
        - name: postgres-daily-dump
          prefix: postgres/
          max_age: 26h
          sha256_sidecar: true
"
    )
}

crate::both!(
    a_change_posts_once_an_unchanged_run_nothing_and_a_fix_one_recovery,
    super::a_change_posts_once_an_unchanged_run_nothing_and_a_fix_one_recovery_on
);
fn a_change_posts_once_an_unchanged_run_nothing_and_a_fix_one_recovery_on(server: Server) {
    let w = World::on(server);
    let b = unique("notify");
    let p = w.write("p.yaml", &policy(&b)).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let rx = Receiver::start(vec![]);
    let state = w.dir.path().join("state.json").to_string_lossy().into_owned();
    let hook = rx.url();
    let audit = |extra: &[&str]| {
        let mut args = vec!["audit", "-f", &p, "--notify", "env:SUOOPS_TEST_WEBHOOK", "--state", &state];
        args.extend(extra);
        w.cli_with(&args, &[("SUOOPS_TEST_WEBHOOK", &hook)])
    };

    // No dump yet: failing. One post, Slack-shaped, naming the control,
    // its evidence and the fix.
    let r = audit(&[]);
    r.code(2);
    let posts = rx.posts();
    assert_eq!(posts.len(), 1, "{posts:?}\n{}", r.stderr);
    let text = posts[0].to_string();
    assert!(posts[0]["text"].as_str().unwrap_or("").contains("started failing"), "{text}");
    assert!(text.contains("BACKUP-FRESHNESS") && text.contains("no backup under postgres/"), "{text}");
    assert!(text.contains("_Fix:_ check the backup job"), "{text}");
    assert_eq!(posts[0]["blocks"][0]["type"], "header");
    for out in [&r.stdout, &r.stderr] {
        assert!(!out.contains("SECRETTOKEN"), "the webhook's token leaked: {out}");
    }
    assert!(r.stderr.contains("notify: posted to http://127.0.0.1:"), "{}", r.stderr);

    // Nothing changed: nothing posted.
    audit(&[]).code(2);
    assert_eq!(rx.posts().len(), 1);

    // The backup job runs: one recovery post (as the generic document).
    let key = format!(
        "postgres/{}.dump",
        suoops_policy::model::time::format_time("%Y%m%d-%H%M%S", suoops_policy::model::time::now())
    );
    block_on(async {
        let s3 = w.moto().s3("us-east-1");
        // With its SHA-256, as `backup run` uploads: the sidecar has
        // something to be compared with.
        let body = ByteStream::from_static(b"dump");
        let req = s3.put_object().bucket(&b).key(&key).body(body);
        req.checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256).send().await.expect("dump");
    });
    let sum = w.python("import hashlib; print(hashlib.sha256(b'dump').hexdigest())");
    block_on(async {
        w.moto()
            .s3("us-east-1")
            .put_object()
            .bucket(&b)
            .key(format!("{key}.sha256"))
            .body(ByteStream::from(format!("{}  dump\n", sum.trim()).into_bytes()))
            .send()
            .await
            .expect("sidecar");
    });
    audit(&["--notify-format", "json"]).code(0);
    let posts = rx.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[1]["format_version"], "1");
    assert_eq!(posts[1]["compliant"], true);
    let recovered: Vec<&str> =
        posts[1]["recovered"].as_array().expect("recovered").iter().filter_map(|r| r["control"].as_str()).collect();
    assert!(recovered.contains(&"BACKUP-FRESHNESS"), "{}", posts[1]);
    audit(&[]).code(0);
    assert_eq!(rx.posts().len(), 2, "compliant and unchanged: nothing more");
}

#[test]
fn delivery_retries_5xx_and_an_unreachable_receiver_is_one_line() {
    let w = World::with_moto();
    let b = unique("notify");
    let p = w.write("p.yaml", &policy(&b)).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);

    // 500, 500, then 200: the message arrives once.
    let rx = Receiver::start(vec![500, 500]);
    let state = w.dir.path().join("state.json").to_string_lossy().into_owned();
    let r = w.cli(&["audit", "-f", &p, "--notify", &rx.url(), "--state", &state]);
    r.code(2);
    assert_eq!(rx.posts().len(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("SECRETTOKEN") && !r.stdout.contains("SECRETTOKEN"));

    // Nobody listens: one line, the audit's own exit code, and the state
    // is not advanced (the next run tries again).
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let state2 = w.dir.path().join("state2.json");
    let url = format!("http://127.0.0.1:{dead}/hook/SECRETTOKEN");
    // Delivery is bounded: the audit ends (the tool gives up after 30 s).
    let child = w.spawn(&["audit", "-f", &p, "--notify", &url, "--state", &state2.to_string_lossy()]);
    let out = World::wait_within(child, 90, "an audit notifying a dead webhook");
    let r = crate::harness::Run::from(out);
    r.code(2);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("notify")).collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(lines[0].contains(&format!("http://127.0.0.1:{dead}/…: gave up after")), "{}", lines[0]);
    assert!(!r.stderr.contains("SECRETTOKEN"));
    assert!(!state2.exists(), "the outcome is kept only once delivered");

    // --notify without --state, or an unset variable: a clear error before anything is read.
    let r = w.cli(&["audit", "-f", &p, "--notify", &url]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--state"), "{}", r.stderr);
    let r = w.cli(&["audit", "-f", &p, "--notify", "env:SUOOPS_NO_SUCH_HOOK", "--state", &state]);
    r.code(1);
    assert!(r.stderr.contains("`SUOOPS_NO_SUCH_HOOK` is not set"), "{}", r.stderr);
}

crate::both!(
    the_state_can_live_in_s3_for_jobs_on_fresh_runners,
    super::the_state_can_live_in_s3_for_jobs_on_fresh_runners_on
);
fn the_state_can_live_in_s3_for_jobs_on_fresh_runners_on(server: Server) {
    let w = World::on(server);
    let (b, state_bucket) = (unique("notify"), unique("audit-state"));
    let p = w.write("p.yaml", &policy(&b)).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    block_on(async { w.moto().s3("us-east-1").create_bucket().bucket(&state_bucket).send().await.expect("bucket") });
    let rx = Receiver::start(vec![]);
    let state = format!("s3://{state_bucket}/suoops/audit-state.json");
    // Two runs, as two fresh runners would: only the first posts.
    for _ in 0..2 {
        w.cli(&["audit", "-f", &p, "--notify", &rx.url(), "--state", &state]).code(2);
    }
    assert_eq!(rx.posts().len(), 1);
    let kept = block_on(async {
        let out = w
            .moto()
            .s3("us-east-1")
            .get_object()
            .bucket(&state_bucket)
            .key("suoops/audit-state.json")
            .send()
            .await
            .expect("state object");
        String::from_utf8_lossy(&out.body.collect().await.expect("body").into_bytes()).into_owned()
    });
    let doc: serde_json::Value = serde_json::from_str(&kept).expect("json");
    assert_eq!(doc["format_version"], "1");
    assert!(doc["failing"].as_object().is_some_and(|m| m.keys().any(|k| k.starts_with("BACKUP-FRESHNESS"))), "{doc}");
}

/// The nightly audit when AWS (and PostgreSQL) cannot be reached: it still
/// writes its report with every control it would judge unknown and the
/// reason, sets `suoops_audit_up 0`, posts once through --notify, and exits
/// 1 ("could not run in full"); the next run of the same outage posts
/// nothing new.
#[test]
fn an_audit_that_cannot_reach_aws_still_reports_alerts_and_exits_1() {
    let w = World::new();
    let dead = format!("http://127.0.0.1:{}", crate::harness::free_port());
    let pg_dead = format!("postgres://postgres@127.0.0.1:{}/postgres", crate::harness::free_port());
    let b = unique("unreached");
    let text = format!(
        "{}iam:\n  roles:\n    {b}-writer:\n      trust: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: \"sts:AssumeRole\"}}]}}\npostgres:\n  primary:\n    url: ${{T_PG_DEAD}}\n    wal_archiving: {{archive_timeout: 5min}}\n",
        policy(&b)
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let rx = Receiver::start(vec![]);
    let hook = rx.url();
    let state = w.dir.path().join("state.json").to_string_lossy().into_owned();
    let report = w.dir.path().join("report.json").to_string_lossy().into_owned();
    let env = [("SUOOPS_TEST_WEBHOOK", hook.as_str()), ("T_PG_DEAD", pg_dead.as_str())];
    let audit = |format: &str, out: &str| {
        w.cli_with(
            &[
                "--endpoint-url",
                &dead,
                "audit",
                "-f",
                &p,
                "--format",
                format,
                "--output",
                out,
                "--notify",
                "env:SUOOPS_TEST_WEBHOOK",
                "--state",
                &state,
            ],
            &env,
        )
    };
    let r = audit("json", &report);
    r.code(1);
    assert!(r.stderr.contains("cannot reach the endpoint"), "{}", r.stderr);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the report was written")).expect("json");
    assert_eq!(j["compliant"], false);
    assert!(j["unreached"][0].as_str().unwrap_or("").contains("cannot reach the endpoint"), "{j:#}");
    let ids: Vec<&str> = j["controls"].as_array().expect("controls").iter().filter_map(|c| c["id"].as_str()).collect();
    for id in ["S3-VERSIONING", "BACKUP-FRESHNESS", "IAM-ROLE", "PG-WAL-ARCHIVING"] {
        assert!(ids.contains(&id), "{id} is reported: {ids:?}");
    }
    for c in j["controls"].as_array().expect("controls") {
        assert_eq!(c["status"], "unknown", "{c}");
        assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "each says why: {c}");
    }
    let s3 = crate::harness::control(&j, "S3-VERSIONING", &format!("s3.{b}"));
    assert!(s3["detail"].as_str().unwrap_or("").contains("cannot reach the endpoint"), "{s3}");
    let posts = rx.posts();
    assert_eq!(posts.len(), 1, "one post: {posts:?}\n{}", r.stderr);
    let head = posts[0]["text"].as_str().unwrap_or("");
    assert!(head.contains("could not read the live state"), "{head}");
    assert!(posts[0].to_string().contains("cannot reach the endpoint"), "{}", posts[0]);
    assert!(!r.stderr.contains("SECRETTOKEN") && !r.stdout.contains("SECRETTOKEN"));

    // The same outage an hour later: the metrics say the audit is down;
    // nothing new is posted.
    let prom = w.dir.path().join("audit.prom").to_string_lossy().into_owned();
    audit("openmetrics", &prom).code(1);
    let metrics = std::fs::read_to_string(&prom).expect("metrics written");
    assert!(metrics.contains("\nsuoops_audit_up 0\n"), "{metrics}");
    assert!(metrics.contains("\nsuoops_audit_compliant 0\n"), "{metrics}");
    assert_eq!(rx.posts().len(), 1, "no second post for the same outage");
}
