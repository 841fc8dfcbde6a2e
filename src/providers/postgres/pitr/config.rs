//! pgBackRest's configuration, derived from the policy's `pitr:` — there is
//! no hand-kept pgbackrest.conf. The same options are used three ways: as
//! command-line options of the tool's own pgBackRest runs (backup, restore,
//! info), inside `archive_command` (archive-push needs no file on the
//! database host), and printed as a pgbackrest.conf by `pgbackrest-config`.
//! No secret is ever an option: S3 keys and the cipher passphrase reach
//! pgBackRest through its environment variables (`PGBACKREST_REPO1_S3_KEY`,
//! `…_KEY_SECRET`, `…_TOKEN`, `PGBACKREST_REPO1_CIPHER_PASS`), which
//! pgBackRest reads like options (configuration reference, "Environment").

use crate::providers::postgres::section::Pitr;

/// The repository and stanza options, in a fixed order (the
/// archive_command they make must compare equal run to run).
pub fn options(p: &Pitr, default_region: &str) -> Vec<(&'static str, String)> {
    let region = p.repo.region.clone().unwrap_or_else(|| default_region.to_string());
    let mut v = vec![
        ("repo1-type", "s3".to_string()),
        ("repo1-s3-bucket", p.repo.bucket.clone()),
        ("repo1-s3-region", region.clone()),
        ("repo1-path", format!("/{}", p.repo.prefix.trim_end_matches('/'))),
    ];
    match p.endpoint.as_deref().and_then(|e| e.strip_prefix("https://")) {
        Some(hostport) => {
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, port)) if port.parse::<u16>().is_ok() => (h.to_string(), Some(port.to_string())),
                _ => (hostport.to_string(), None),
            };
            v.push(("repo1-s3-endpoint", host));
            if let Some(port) = port {
                v.push(("repo1-storage-port", port));
            }
            // S3-compatible stores rarely serve BUCKET.HOST names.
            v.push(("repo1-s3-uri-style", "path".to_string()));
            // Keys from the environment (the tool's own, or the server's).
            v.push(("repo1-s3-key-type", "shared".to_string()));
        }
        None => {
            // The regional endpoint (pgBackRest user guide, "S3-Compatible
            // Object Store Support": repo1-s3-endpoint=s3.REGION.amazonaws.com)
            // and the instance's role, never a key in a file.
            v.push(("repo1-s3-endpoint", format!("s3.{region}.amazonaws.com")));
            v.push(("repo1-s3-key-type", "auto".to_string()));
        }
    }
    if let Some(ca) = &p.ca_file {
        v.push(("repo1-storage-ca-file", ca.clone()));
    }
    if p.cipher_pass.is_some() {
        v.push(("repo1-cipher-type", "aes-256-cbc".to_string()));
    }
    // Time-based retention keeps full backups (and the WAL from the oldest
    // one kept) so that the window can be recovered: at least `window`
    // days, the least whole day being 1 (configuration reference,
    // repo-retention-full-type=time).
    v.push(("repo1-retention-full-type", "time".to_string()));
    v.push(("repo1-retention-full", p.window_secs.div_ceil(86400).max(1).to_string()));
    // Small files bundled into a few objects: a small cluster is ~1,000
    // objects unbundled, each one S3 request.
    v.push(("repo1-bundle", "y".to_string()));
    v.push(("compress-type", "zst".to_string()));
    v.push(("log-level-file", "off".to_string()));
    v.push(("pg1-path", p.data_directory.clone()));
    v
}

/// A value as one shell word (archive_command runs through `sh -c`).
fn word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `pgbackrest --stanza=S --OPTION=VALUE … archive-push %p`: what apply sets
/// as archive_command. The objects are encrypted by the bucket's default
/// encryption (the policy's SSE-KMS key): a request without encryption
/// headers gets the bucket default (S3 user guide, "Setting default
/// server-side encryption behavior for Amazon S3 buckets"), so the command
/// carries no key id that would have to be resolved offline.
pub fn archive_command(p: &Pitr, default_region: &str) -> String {
    let mut cmd = format!("pgbackrest --stanza={}", word(&p.stanza));
    // pgBackRest refuses a command-line option its command does not take
    // (error 031): retention and bundling are the backup's, not archive-push's.
    let push = options(p, default_region)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("repo1-retention") && *k != "repo1-bundle");
    for (k, v) in push {
        cmd.push_str(&format!(" --{k}={}", word(&v)));
    }
    cmd.push_str(" archive-push %p");
    cmd
}

/// The configuration file for the database host (`pgbackrest-config`):
/// the same options, with the key ARN the tool's own runs add.
pub fn file(p: &Pitr, default_region: &str, kms_key_arn: Option<&str>, source: &str) -> String {
    let mut out = format!(
        "# pgBackRest configuration for stanza {}, derived from {source} by suoops-policy.\n\
         # Do not edit: change the policy. S3 keys (when an endpoint is set) and the\n\
         # cipher passphrase come from the environment: PGBACKREST_REPO1_S3_KEY,\n\
         # PGBACKREST_REPO1_S3_KEY_SECRET, PGBACKREST_REPO1_CIPHER_PASS.\n[global]\n",
        p.stanza
    );
    let opts = options(p, default_region);
    for (k, v) in opts.iter().filter(|(k, _)| !k.starts_with("pg1-")) {
        out.push_str(&format!("{k}={v}\n"));
    }
    if let Some(arn) = kms_key_arn {
        out.push_str(&format!("repo1-s3-kms-key-id={arn}\n"));
    }
    out.push_str(&format!("process-max={}\n\n[{}]\n", p.process_max, p.stanza));
    for (k, v) in opts.iter().filter(|(k, _)| k.starts_with("pg1-")) {
        out.push_str(&format!("{k}={v}\n"));
    }
    out
}

/// The environment a pgBackRest run gets: the S3 keys the tool itself runs
/// with (when an endpoint is set, or whenever the tool has keys: an
/// operator's own credentials then serve, not the host's role) and the
/// cipher passphrase. Returned as pairs for `Command::envs`.
pub fn env(p: &Pitr, keys: Option<&Keys>) -> Vec<(String, String)> {
    let mut e = Vec::new();
    if let Some(k) = keys {
        e.push(("PGBACKREST_REPO1_S3_KEY".to_string(), k.id.clone()));
        e.push(("PGBACKREST_REPO1_S3_KEY_SECRET".to_string(), k.secret.clone()));
        if let Some(t) = &k.token {
            e.push(("PGBACKREST_REPO1_S3_TOKEN".to_string(), t.clone()));
        }
        e.push(("PGBACKREST_REPO1_S3_KEY_TYPE".to_string(), "shared".to_string()));
    }
    if let Some(c) = &p.cipher_pass {
        e.push(("PGBACKREST_REPO1_CIPHER_PASS".to_string(), c.expose().to_string()));
    }
    e
}

/// S3 credentials handed to pgBackRest (never printed).
#[derive(Clone)]
pub struct Keys {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::{BackupRef, Secret};

    /// A repository on AWS (or at `endpoint`), with the defaults.
    pub(crate) fn pitr(endpoint: Option<&str>) -> Pitr {
        Pitr {
            schedule: None,
            repo: BackupRef {
                bucket: "suoops-backups".into(),
                entry: "pitr".into(),
                prefix: "pgbackrest/".into(),
                key_format: None,
                region: None,
                encryption: None,
                object_lock_days: None,
            },
            endpoint: endpoint.map(str::to_string),
            ca_file: endpoint.map(|_| "/etc/ssl/test ca.pem".to_string()),
            stanza: "suoops-primary".into(),
            data_directory: "/var/lib/postgresql/15/main".into(),
            window_secs: 86400,
            full_every_secs: 7 * 86400,
            verify_every_secs: 7 * 86400,
            rpo_secs: 900,
            cipher_pass: Some(Secret::new("correct horse".into())),
            process_max: 4,
            drill: None,
            dr_copies: Vec::new(),
            line: 1,
        }
    }

    #[test]
    fn aws_uses_the_regional_endpoint_and_the_instance_role() {
        let cmd = archive_command(&pitr(None), "us-east-1");
        assert_eq!(
            cmd,
            "pgbackrest --stanza=suoops-primary --repo1-type=s3 --repo1-s3-bucket=suoops-backups \
             --repo1-s3-region=us-east-1 --repo1-path=/pgbackrest --repo1-s3-endpoint=s3.us-east-1.amazonaws.com \
             --repo1-s3-key-type=auto --repo1-cipher-type=aes-256-cbc --compress-type=zst --log-level-file=off \
             --pg1-path=/var/lib/postgresql/15/main archive-push %p"
        );
        assert!(!cmd.contains("correct horse"), "the passphrase is never an option");
    }

    #[test]
    fn an_endpoint_gives_host_port_path_style_and_quoted_paths() {
        let p = pitr(Some("https://localhost:9443"));
        let cmd = archive_command(&p, "us-east-1");
        assert!(cmd.contains(" --repo1-s3-endpoint=localhost --repo1-storage-port=9443 --repo1-s3-uri-style=path"));
        assert!(cmd.contains(" --repo1-s3-key-type=shared"));
        assert!(cmd.contains(" --repo1-storage-ca-file='/etc/ssl/test ca.pem'"), "{cmd}");
        let f = file(&p, "us-east-1", Some("arn:aws:kms:us-east-1:123456789012:key/k"), "policies/suoops.yaml");
        assert!(f.contains("[global]\nrepo1-type=s3\n"));
        assert!(f.contains("repo1-s3-kms-key-id=arn:aws:kms:us-east-1:123456789012:key/k\nprocess-max=4\n"));
        assert!(f.ends_with("[suoops-primary]\npg1-path=/var/lib/postgresql/15/main\n"), "{f}");
        let e = env(&p, Some(&Keys { id: "AK".into(), secret: "SK".into(), token: None }));
        assert!(e.contains(&("PGBACKREST_REPO1_CIPHER_PASS".into(), "correct horse".into())));
        assert!(e.contains(&("PGBACKREST_REPO1_S3_KEY_SECRET".into(), "SK".into())));
    }
}
