//! PostgreSQL reached over TLS as libpq does (`sslmode`, `sslrootcert`),
//! against a local server that refuses connections without TLS, as RDS
//! for PostgreSQL 15+ does by default: plan, audit and the dump job work
//! with verify-full and the right CA; a wrong CA fails with a clear line.

use std::path::Path;
use std::process::Command;

use crate::harness::{unique, Postgres, World};

/// A CA, a server certificate it signs for 127.0.0.1, and another CA.
struct Certs {
    ca: String,
    other_ca: String,
    cert: String,
    key: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl (Debian: openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
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
