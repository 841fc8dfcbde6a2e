//! PostgreSQL reached over TLS as libpq does (`sslmode`, `sslrootcert`),
//! against a local server that refuses connections without TLS, as RDS
//! for PostgreSQL 15+ does by default: plan, audit and the dump job work
//! with verify-full and the right CA; a wrong CA fails with a clear line.

use std::path::Path;
use std::process::Command;

use crate::harness::{openssl, unique, Postgres, World};

/// A CA, a server certificate it signs for 127.0.0.1, and another CA.
struct Certs {
    ca: String,
    other_ca: String,
    cert: String,
    key: String,
}

fn certs(dir: &Path) -> Certs {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=suoops test {ca}"),
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let read = |f: &str| dir.join(f).display().to_string();
    Certs {
        ca: read("ca.pem"),
        other_ca: read("other-ca.pem"),
        cert: std::fs::read_to_string(dir.join("server.crt")).expect("crt"),
        key: std::fs::read_to_string(dir.join("server.key")).expect("key"),
    }
}

#[test]
fn forced_tls_is_met_with_sslmode_and_a_wrong_ca_is_a_clear_error() {
    let w = World::with_moto();
    let pg = Postgres::start();
    pg.sql("CREATE TABLE users (id int); INSERT INTO users SELECT generate_series(1, 10);");
    let c = certs(w.dir.path());
    pg.force_ssl(&c.cert, &c.key);
    let b = unique("tls-dumps");
    let p = w.write(
        "p.yaml",
        &format!(
            r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      backups: [{{name: dump, prefix: postgres/, max_age: 26h, sha256_sidecar: true}}]
postgres:
  primary:
    url: ${{PG_URL}}
    wal_archiving: {{wal_level: replica, archive_mode: "off"}}
    backup: {{to: s3.{b}.backups.dump}}
"#
        ),
    );
    let p = p.to_string_lossy().into_owned();
    let base = pg.url(Some("not-the-password"));
    let with = |q: &str| format!("{base}?{q}");

    // Without TLS the server refuses, as RDS does with rds.force_ssl.
    let r = w.cli_with(&["plan", "-f", &p, "--target", "postgres"], &[("PG_URL", &with("sslmode=disable"))]);
    r.code(1);
    assert!(r.stdout.contains("no encryption"), "{}", r.stdout);

    // verify-full with the CA that signed the server's certificate.
    let full = with(&format!("sslmode=verify-full&sslrootcert={}", c.ca));
    let r = w.cli_with(&["plan", "-f", &p, "--target", "postgres", "--detailed-exitcode"], &[("PG_URL", &full)]);
    r.code(0);
    let j = w.cli_with(&["audit", "-f", &p, "--target", "postgres", "--format", "json"], &[("PG_URL", &full)]).json();
    let wal = j["controls"].as_array().expect("c").iter().find(|c| c["id"] == "PG-WAL-ARCHIVING").expect("PG-WAL");
    assert_ne!(wal["status"], "unknown", "{wal}");
    w.cli_with(&["apply", "-f", &p, "--target", &format!("s3.{b}"), "--auto-approve"], &[("PG_URL", &full)]).code(0);
    // pg_dump gets the same sslmode and root certificate through libpq's environment.
    let r = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary"], &[("PG_URL", &full)]);
    r.code(0);
    // The default (prefer) encrypts too.
    w.cli_with(&["plan", "-f", &p, "--target", "postgres", "--detailed-exitcode"], &[("PG_URL", &base)]).code(0);

    // Another CA: one clear line, no password, nothing half-done.
    let wrong = with(&format!("sslmode=verify-full&sslrootcert={}", c.other_ca));
    let r = w.cli_with(&["plan", "-f", &p, "--target", "postgres"], &[("PG_URL", &wrong)]);
    r.code(1);
    assert!(r.stdout.contains("UnknownIssuer") || r.stdout.contains("invalid peer certificate"), "{}", r.stdout);
    assert!(!r.stdout.contains("not-the-password") && !r.stderr.contains("not-the-password"));
    let r = w.cli_with(&["backup", "run", "-f", &p, "postgres.primary"], &[("PG_URL", &wrong)]);
    r.code(1);
    assert!(r.stderr.contains("certificate verify failed") || r.stderr.contains("UnknownIssuer"), "{}", r.stderr);
    assert!(!r.stderr.contains("not-the-password"), "{}", r.stderr);
    // A root certificate file that does not exist is said as such.
    let missing = with("sslmode=verify-ca&sslrootcert=/nonexistent/root.crt");
    let r = w.cli_with(&["plan", "-f", &p, "--target", "postgres"], &[("PG_URL", &missing)]);
    r.code(1);
    assert!(r.stdout.contains("root certificate file \"/nonexistent/root.crt\" cannot be read"), "{}", r.stdout);
}

/// A redis-server that speaks TLS only, killed when dropped.
struct TlsRedis(std::process::Child);

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rediss://` against a TLS-only redis-server: observed and snapshotted
/// with `#insecure` (no certificate check, as the redis crate reads it);
/// without it, a certificate no system root signs is one clear line.
#[test]
fn rediss_reaches_a_tls_only_redis_and_an_unknown_certificate_is_refused() {
    let w = World::with_moto();
    let c = certs(w.dir.path());
    let dir = w.dir.path();
    std::fs::write(dir.join("redis.crt"), &c.cert).expect("crt");
    std::fs::write(dir.join("redis.key"), &c.key).expect("key");
    let port = crate::harness::free_port();
    let server = Command::new(crate::harness::need("redis-server", "redis-server"))
        .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1", "--tls-auth-clients", "no"])
        .args(["--tls-cert-file", "redis.crt", "--tls-key-file", "redis.key", "--tls-ca-cert-file", &c.ca])
        .args(["--requirepass", "tls-secret", "--save", "", "--appendonly", "no", "--dir", "."])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server");
    let _server = TlsRedis(server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server did not listen on {port} within 10 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let b = unique("tls-rdb");
    let p = w.write(
        "p.yaml",
        &format!(
            r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      backups: [{{name: rdb, prefix: redis/, max_age: 7h, sha256_sidecar: true}}]
redis:
  cache:
    url: ${{REDIS_URL}}
    persistence: none
    backup: {{to: s3.{b}.backups.rdb}}
"#
        ),
    );
    let p = p.to_string_lossy().into_owned();
    let insecure = format!("rediss://:tls-secret@127.0.0.1:{port}/0#insecure");
    w.cli_with(&["apply", "-f", &p, "--target", &format!("s3.{b}"), "--auto-approve"], &[("REDIS_URL", &insecure)])
        .code(0);
    let r = w.cli_with(&["plan", "-f", &p, "--target", "redis", "--detailed-exitcode"], &[("REDIS_URL", &insecure)]);
    r.code(0);
    let r = w.cli_with(&["backup", "run", "-f", &p, "redis.cache", "--format", "json"], &[("REDIS_URL", &insecure)]);
    r.code(0);
    assert!(r.json()["bytes"].as_u64().unwrap_or(0) > 0, "{}", r.stdout);

    // Checked against the system's roots, this certificate is unknown.
    let checked = format!("rediss://:tls-secret@127.0.0.1:{port}/0");
    let r = w.cli_with(&["backup", "run", "-f", &p, "redis.cache"], &[("REDIS_URL", &checked)]);
    r.code(1);
    assert!(r.stderr.contains("UnknownIssuer") || r.stderr.contains("invalid peer certificate"), "{}", r.stderr);
    assert!(!r.stderr.contains("tls-secret"), "{}", r.stderr);
    let r = w.cli_with(&["plan", "-f", &p, "--target", "redis"], &[("REDIS_URL", &checked)]);
    r.code(1);
    assert!(!r.stdout.contains("tls-secret") && !r.stderr.contains("tls-secret"));
}
