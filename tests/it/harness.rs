//! Test harness: each test gets its own temp dir and, when it needs one, its
//! own moto server (through scripts/moto_launcher.py) on a free loopback
//! port. A missing server fails the test with how to install it; it never
//! skips.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has moto installed: $SUOOPS_TEST_PYTHON, else the
/// project's .venv made by scripts/test.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SUOOPS_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv/bin/python");
    if !venv.exists() {
        panic!(
            "moto is not installed for the tests: run `scripts/test` (it creates .venv with moto[server]), \
             or `python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-test.txt`, \
             or point SUOOPS_TEST_PYTHON at a Python that has moto[server]"
        );
    }
    venv
}

/// Held by the tests that load the machine most (pgBackRest backups,
/// verifies and restores) and by the ones whose AWS timing a loaded
/// machine upsets (the proxy's consistency delays): they never overlap.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// `openssl ARGS` in `dir` (test CAs and certificates), which must succeed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl (Debian: openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A new age identity at `path` (stock `age-keygen`); returns its
/// recipient (`age1…`).
pub fn age_keygen(path: &Path) -> String {
    let keygen = need("age-keygen", "age");
    let out = Command::new(keygen).arg("-o").arg(path).output().expect("run age-keygen");
    assert!(out.status.success(), "age-keygen: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(path).expect("read the age identity");
    text.lines().find_map(|l| l.strip_prefix("# public key: ")).expect("its public key").to_string()
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local addr").port()
}

/// The Python that has LocalStack installed: $SUOOPS_LOCALSTACK_PYTHON,
/// else the project's .venv-localstack made by scripts/test (with the
/// system's python3, ≥ 3.11).
pub fn localstack_python() -> PathBuf {
    if let Some(p) = std::env::var_os("SUOOPS_LOCALSTACK_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv-localstack/bin/python");
    if !venv.exists() {
        panic!(
            "LocalStack is not installed for the tests: run `scripts/test` (it creates .venv-localstack with the \
             system's python3 and scripts/requirements-localstack.txt), or point SUOOPS_LOCALSTACK_PYTHON at a \
             Python ≥ 3.11 that has localstack-core[runtime]==4.13.1"
        );
    }
    venv
}

/// Which emulator a test talks to. S3, IAM and KMS tests run their one
/// body against both (`both!`): moto, and LocalStack, whose S3 is its own
/// implementation and validates more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Moto,
    LocalStack,
}

/// An emulator server owned by one test (moto or LocalStack); killed (by
/// its PID) when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    /// The account id the server answers as.
    pub account: &'static str,
}

impl Moto {
    pub fn start(dir: &Path) -> Moto {
        Moto::start_with_env(dir, &[])
    }

    /// Start moto with extra environment (e.g. INITIAL_NO_AUTH_ACTION_COUNT,
    /// which makes moto enforce IAM after that many requests).
    /// moto serving HTTPS too, on `https://localhost:PORT` with a
    /// certificate for `DNS:localhost` from a test CA (pgBackRest speaks
    /// only HTTPS to S3 and checks DNS names only): (moto, the HTTPS port,
    /// the CA's PEM file). The two listeners share one state.
    /// With `extra` environment (MOTO_CLOCK_FILE), or none.
    pub fn start_tls_with_env(dir: &Path, extra: &[(&str, &str)]) -> (Moto, u16, PathBuf) {
        let ssl = |args: &[&str]| openssl(dir, args);
        ssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "s3-ca.key",
            "-out",
            "s3-ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=suoops test S3 CA",
        ]);
        ssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "s3.key", "-out", "s3.csr", "-subj", "/CN=localhost"]);
        std::fs::write(dir.join("s3.ext"), "subjectAltName = DNS:localhost\n").expect("write ext");
        ssl(&[
            "x509",
            "-req",
            "-in",
            "s3.csr",
            "-CA",
            "s3-ca.pem",
            "-CAkey",
            "s3-ca.key",
            "-CAcreateserial",
            "-out",
            "s3.pem",
            "-days",
            "2",
            "-extfile",
            "s3.ext",
        ]);
        let tls_port = free_port();
        let (port, cert, key) =
            (tls_port.to_string(), dir.join("s3.pem").display().to_string(), dir.join("s3.key").display().to_string());
        let mut env =
            vec![("MOTO_TLS_PORT", port.as_str()), ("MOTO_TLS_CERT", cert.as_str()), ("MOTO_TLS_KEY", key.as_str())];
        env.extend_from_slice(extra);
        let moto = Moto::start_with_env(dir, &env);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto's HTTPS listener did not start: {}",
                std::fs::read_to_string(&moto.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Readable by the postgres user (archive_command runs as it).
        let ca = dir.join("s3-ca.pem");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).expect("chmod ca");
        (moto, tls_port, ca)
    }

    pub fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Moto {
        let python = python();
        let log = dir.join("moto.log");
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port();
            let logf = std::fs::File::create(&log).expect("create moto log");
            let child = Command::new(&python)
                .arg(root().join("scripts/moto_launcher.py"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(logf.try_clone().expect("dup log"))
                .stderr(logf)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start moto with {}: {e}; run scripts/test to install it", python.display())
                });
            let mut moto = Moto { child, port, log: log.clone(), account: "123456789012" };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = moto.child.try_wait() {
                    last_err =
                        format!("moto exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return moto;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if last_err.is_empty() {
                last_err = "moto did not listen within 30 s".into();
            }
        }
        panic!("{last_err}; is moto[server] installed (scripts/test installs it)?");
    }

    /// LocalStack in host mode (no Docker, no token) on a free loopback
    /// port, its files in `dir`; ready when its health endpoint says so.
    pub fn start_localstack(dir: &Path) -> Moto {
        let python = localstack_python();
        let log = dir.join("localstack.log");
        let root_dir = dir.join("localstack");
        std::fs::create_dir_all(&root_dir).expect("localstack dir");
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port();
            let logf = std::fs::File::create(&log).expect("create localstack log");
            let child = Command::new(&python)
                .args(["-m", "localstack.runtime.main"])
                .current_dir(&root_dir)
                .env("OVERRIDE_IN_DOCKER", "0")
                .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
                .env("GATEWAY_SERVER", "hypercorn")
                .env("SERVICES", "s3,iam,sts,kms")
                .env("DNS_ADDRESS", "0")
                .env("SKIP_SSL_CERT_DOWNLOAD", "1")
                .env("PERSISTENCE", "0")
                .env("FILESYSTEM_ROOT", &root_dir)
                .env("LOCALSTACK_CLI", "0")
                .env_remove("AWS_ENDPOINT_URL")
                .stdin(Stdio::null())
                .stdout(logf.try_clone().expect("dup log"))
                .stderr(logf)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start LocalStack with {}: {e}; run scripts/test to install it", python.display())
                });
            let mut ls = Moto { child, port, log: log.clone(), account: "000000000000" };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = ls.child.try_wait() {
                    last_err = format!(
                        "LocalStack exited with {status}: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                if healthy(port) {
                    return ls;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if last_err.is_empty() {
                last_err = format!(
                    "LocalStack was not healthy within 60 s: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
        panic!("{last_err}; is localstack-core installed (scripts/test installs it)?");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An S3 client of the test's own, for seeding and for drift made
    /// behind the tool's back.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .endpoint_url(self.url())
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

impl Moto {
    /// Kill the server (by its PID), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// LocalStack's health endpoint answers and S3, IAM and KMS are up.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /_localstack/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
        && ["\"s3\"", "\"iam\"", "\"kms\""].iter().all(|svc| {
            out.split(svc).nth(1).is_some_and(|rest| rest.trim_start_matches([':', ' ', '"']).starts_with(['a', 'r']))
        })
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's world: a temp dir and optionally a moto.
pub struct World {
    pub dir: tempfile::TempDir,
    pub moto: Option<Moto>,
}

impl World {
    pub fn new() -> World {
        World { dir: tempfile::tempdir().expect("temp dir"), moto: None }
    }

    pub fn with_moto() -> World {
        let mut w = World::new();
        w.moto = Some(Moto::start(w.dir.path()));
        w
    }

    /// A world with the given emulator.
    pub fn on(server: Server) -> World {
        match server {
            Server::Moto => World::with_moto(),
            Server::LocalStack => {
                let mut w = World::new();
                w.moto = Some(Moto::start_localstack(w.dir.path()));
                w
            }
        }
    }

    /// The account id of this world's emulator (moto 123456789012,
    /// LocalStack 000000000000).
    pub fn account(&self) -> &'static str {
        self.moto().account
    }

    pub fn with_moto_env(env: &[(&str, &str)]) -> World {
        let mut w = World::new();
        w.moto = Some(Moto::start_with_env(w.dir.path(), env));
        w
    }

    /// Run a Python snippet with the test Python (it has boto3, as moto
    /// needs it); argv[1] is moto's URL. Returns stdout.
    pub fn python(&self, code: &str) -> String {
        let out = Command::new(python()).arg("-c").arg(code).arg(self.moto().url()).output().expect("run python");
        assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Create a role S3 may assume for replication (as another team would);
    /// returns its ARN.
    pub fn replication_role(&self, name: &str) -> String {
        self.python(&format!(
            r#"
import sys, json, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
trust = {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"Service": "s3.amazonaws.com"}}, "Action": "sts:AssumeRole"}}]}}
print(iam.create_role(RoleName="{name}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
"#
        ))
    }

    /// Create a KMS key in `region` with `alias` (as the platform team
    /// would); returns the key's ARN.
    pub fn kms_key(&self, region: &str, alias: &str) -> String {
        let arn = self.python(&format!(
            r#"
import sys, boto3
kms = boto3.client("kms", endpoint_url=sys.argv[1], region_name="{region}", aws_access_key_id="t", aws_secret_access_key="t")
key = kms.create_key(Description="test key")["KeyMetadata"]
kms.create_alias(AliasName="{alias}", TargetKeyId=key["KeyId"])
print(key["Arn"])
"#
        ));
        arn.trim().to_string()
    }

    /// Disable a KMS key (by id or ARN) behind the tool's back.
    pub fn disable_kms_key(&self, region: &str, key: &str) {
        self.python(&format!(
            r#"
import sys, boto3
kms = boto3.client("kms", endpoint_url=sys.argv[1], region_name="{region}", aws_access_key_id="t", aws_secret_access_key="t")
kms.disable_key(KeyId="{key}".split("/")[-1])
"#
        ));
    }

    pub fn moto(&self) -> &Moto {
        self.moto.as_ref().expect("this world has no moto")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// Run the CLI as a user would: the built binary, credentials for moto,
    /// no colour, stdin closed.
    pub fn cli(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run suoops-policy"))
    }

    /// As `cli`, with extra environment variables.
    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run::from(self.command(args).envs(env.iter().copied()).output().expect("run suoops-policy"))
    }

    /// As `cli_with`, but started in the background, its output piped.
    pub fn spawn_with(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        self.command(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start suoops-policy")
    }

    /// A started command's output, once it exits — within `secs`, or the
    /// test fails saying `what` did not end (and the command is killed).
    pub fn wait_within(mut child: Child, secs: u64, what: &str) -> std::process::Output {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let read = |p: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = p {
                    let _ = p.read_to_end(&mut buf);
                }
                buf
            })
        };
        let stdout = read(out.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
        let stderr = read(err.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not end within {secs} s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::process::Output { status, stdout: stdout.join().expect("stdout"), stderr: stderr.join().expect("stderr") }
    }

    /// As `cli`, but started in the background, its output piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start suoops-policy")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_suoops-policy"));
        cmd.current_dir(root())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.path().join("no-aws-credentials"))
            .env("NO_COLOR", "1")
            // The shipped policy reads its connection URLs from these.
            .env("REDIS_CACHE_URL", "redis://127.0.0.1:1/0")
            .env("REDIS_QUEUE_URL", "redis://127.0.0.1:1/0")
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres")
            .env("WAL_ARCHIVE_COMMAND", "cp %p /archive/%f")
            .stdin(Stdio::null());
        if let Some(m) = &self.moto {
            cmd.env("AWS_ENDPOINT_URL", m.url());
        }
        cmd.args(args);
        cmd
    }

    pub fn cli_env(&self, args: &[&str], set: &[(&str, &str)], unset: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_suoops-policy"));
        cmd.current_dir(root())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.path().join("no-aws-credentials"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for u in unset {
            cmd.env_remove(u);
        }
        for (k, v) in set {
            cmd.env(k, v);
        }
        cmd.args(args);
        Run::from(cmd.output().expect("run suoops-policy"))
    }
}

/// A finished CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(self.code, want, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// The control `id` on `address` in an audit's JSON report.
pub fn control<'a>(j: &'a serde_json::Value, id: &str, address: &str) -> &'a serde_json::Value {
    j["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == id && c["address"] == address)
        .unwrap_or_else(|| panic!("no {id} on {address}: {j}"))
}

/// Text with runs of spaces collapsed, so assertions do not depend on
/// column alignment.
pub fn squash(s: &str) -> String {
    s.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")
}

/// A bucket name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// A redis-server of one test's own: its config file in the test's temp
/// dir (so CONFIG REWRITE is real), or none at all.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub conf: Option<PathBuf>,
    dir: PathBuf,
    args: Vec<String>,
}

pub fn need(binary: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(binary))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("`{binary}` is not installed: run scripts/test (it installs it) or `apt-get install {package}`")
    })
}

impl RedisServer {
    /// `extra` lines go into the config file (e.g. requirepass).
    pub fn start(dir: &Path, extra: &str, with_config_file: bool) -> RedisServer {
        let bin = need("redis-server", "redis-server");
        let port = free_port();
        let data = dir.join(format!("redis-{port}"));
        std::fs::create_dir_all(&data).expect("redis dir");
        let base = format!("port {port}\nbind 127.0.0.1\ndir {}\nsave \"\"\nappendonly no\n{extra}\n", data.display());
        let (conf, args) = if with_config_file {
            let conf = data.join("redis.conf");
            std::fs::write(&conf, base).expect("redis.conf");
            (Some(conf.clone()), vec![conf.display().to_string()])
        } else {
            let args = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                data.display().to_string(),
                "--save".into(),
                String::new(),
            ];
            (None, args)
        };
        let mut s = RedisServer { child: None, port, conf, dir: data, args };
        s.spawn(&bin);
        s
    }

    fn spawn(&mut self, bin: &Path) {
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("log");
        let child = Command::new(bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen: {}",
                std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop and start again from the same config file.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn(&need("redis-server", "redis-server"));
    }

    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("redis://default:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// redis-cli against this server (CONFIG may be renamed: use `command`).
    pub fn cli(&self, password: Option<&str>, args: &[&str]) -> String {
        let mut cmd = Command::new(need("redis-cli", "redis-tools"));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(p) = password {
            cmd.env("REDISCLI_AUTH", p);
        }
        let out = cmd.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A throw-away PostgreSQL cluster made with initdb in a temp dir, run as
/// the `postgres` user when the tests run as root (initdb refuses root).
pub struct Postgres {
    pub port: u16,
    data: PathBuf,
    root: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// Environment the server runs with (archive_command sees it).
    env: Vec<(String, String)>,
}

fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.pop().unwrap_or_else(|| need("pg_ctl", "postgresql").parent().map(Path::to_path_buf).unwrap_or_default())
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with_env(&[])
    }

    /// Start with `env` in the server's environment (what archive_command
    /// runs with: pgBackRest's PGBACKREST_REPO1_S3_* keys in the tests).
    pub fn start_with_env(env: &[(String, String)]) -> Postgres {
        Postgres::start_with_wal(env, None)
    }

    /// As `start_with_env`, the cluster made with `initdb --wal-segsize=MB`
    /// and its WAL begun at segment `first` (pg_resetwal -l), when given.
    pub fn start_with_wal(env: &[(String, String)], wal: Option<(u32, &str)>) -> Postgres {
        let bin = pg_bin();
        assert!(
            bin.join("initdb").exists(),
            "PostgreSQL is not installed: run scripts/test or `apt-get install postgresql`"
        );
        let as_postgres = is_root();
        let root = tempfile::Builder::new().prefix("suoops-pg-").tempdir_in("/tmp").expect("pg temp dir");
        let data = root.path().join("data");
        let archive = root.path().join("archive");
        std::fs::create_dir_all(&archive).expect("archive dir");
        if as_postgres {
            for p in [root.path(), archive.as_path()] {
                let st = Command::new("chown")
                    .args(["postgres:postgres", &p.display().to_string()])
                    .status()
                    .expect("chown");
                assert!(st.success(), "chown postgres failed");
            }
        }
        let pg = Postgres { port: free_port(), data, root, bin, as_postgres, env: env.to_vec() };
        let data = pg.data.display().to_string();
        let mut initdb = vec!["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"];
        let size = wal.map(|(mb, _)| format!("--wal-segsize={mb}"));
        initdb.extend(size.as_deref());
        pg.run("initdb", &initdb);
        if let Some((_, first)) = wal {
            pg.run("pg_resetwal", &["-l", first, "-D", &data]);
        }
        pg.ctl(&["start"]);
        pg
    }

    pub fn stop(&self) {
        self.ctl(&["stop", "-m", "fast"]);
    }

    pub fn run(&self, tool: &str, args: &[&str]) -> String {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "env"]);
            c.args(self.env.iter().map(|(k, v)| format!("{k}={v}"))).arg(&exe);
            c
        } else {
            let mut c = Command::new(&exe);
            c.envs(self.env.iter().map(|(k, v)| (k, v)));
            c
        };
        let out =
            cmd.args(args).current_dir(self.root.path()).stdin(Stdio::null()).output().expect("run a postgres tool");
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ctl(&self, args: &[&str]) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.root.path().display()
        );
        let mut all = vec!["-D", self.data.to_str().unwrap_or_default(), "-l", "pg.log", "-w", "-t", "60", "-o", &opts];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    pub fn restart(&self) {
        self.ctl(&["restart", "-m", "fast"]);
    }

    /// The server stopped and its data directory moved aside (returned),
    /// an empty one in its place, owned and private as initdb leaves it:
    /// where a restore of the cluster goes.
    pub fn stop_and_empty(&self) -> PathBuf {
        self.ctl(&["stop", "-m", "fast"]);
        let aside = self.root.path().join("data.old");
        std::fs::rename(&self.data, &aside).expect("move the data directory aside");
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&self.data).expect("empty data directory");
        if self.as_postgres {
            let st = Command::new("chown")
                .args(["postgres:postgres", &self.data.display().to_string()])
                .status()
                .expect("chown");
            assert!(st.success(), "chown postgres failed");
        }
        aside
    }

    /// Start the server again on its data directory (after a restore).
    pub fn start_again(&self) {
        self.ctl(&["start"]);
    }

    /// TLS on with this certificate and key (PEM), and TCP connections
    /// without TLS refused, as managed services do (RDS: rds.force_ssl).
    pub fn force_ssl(&self, cert: &str, key: &str) {
        let dir = self.root.path();
        let (crt, k) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::write(&crt, cert).expect("write cert");
        std::fs::write(&k, key).expect("write key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
        let hba = self.data.join("pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("write pg_hba.conf");
        if self.as_postgres {
            for p in [&crt, &k, &hba] {
                let st = Command::new("chown")
                    .args(["postgres:postgres", &p.display().to_string()])
                    .status()
                    .expect("chown");
                assert!(st.success());
            }
        }
        // ALTER SYSTEM runs outside a transaction: one statement a call.
        self.sql(&format!("ALTER SYSTEM SET ssl_cert_file = '{}'", crt.display()));
        self.sql(&format!("ALTER SYSTEM SET ssl_key_file = '{}'", k.display()));
        self.sql("ALTER SYSTEM SET ssl = on");
        self.sql("SELECT pg_reload_conf()");
        // The reload has taken effect once a new connection is over TLS.
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.sql("SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)") != "t" {
            assert!(Instant::now() < deadline, "the server did not take TLS on within 20 s of pg_reload_conf");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("postgres://postgres:{p}@127.0.0.1:{}/postgres", self.port),
            None => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
        }
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn archive_dir(&self) -> PathBuf {
        self.root.path().join("archive")
    }

    /// psql -At -c SQL.
    /// Start the cluster in `data` (one `restore --into` made) on a free
    /// loopback port without archiving, run `sql`, stop it.
    pub fn sql_in(&self, data: &Path, sql: &str) -> String {
        let port = free_port().to_string();
        let sock = data.display().to_string();
        let opts =
            format!("-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sock} -c archive_mode=off");
        let d = data.display().to_string();
        let log = data.join("restored.log").display().to_string();
        self.run("pg_ctl", &["-D", &d, "-l", &log, "-w", "-o", &opts, "start"]);
        let out = self.run("psql", &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-At", "-c", sql]);
        self.run("pg_ctl", &["-D", &d, "-m", "fast", "-w", "stop"]);
        out.trim().to_string()
    }

    pub fn sql(&self, sql: &str) -> String {
        self.run("psql", &["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-At", "-c", sql])
            .trim()
            .to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd.args(["-D", self.data.to_str().unwrap_or_default(), "-m", "immediate", "-w", "stop"]).output();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A TCP gate in front of a loopback port: while up it forwards bytes
/// both ways (TLS passes through untouched); `down` cuts every open
/// connection and refuses new ones, as an unreachable endpoint does.
pub struct TcpGate {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl TcpGate {
    pub fn start(target: u16) -> TcpGate {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind gate");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (u, o) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !u.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let mut list = o.lock().unwrap_or_else(|p| p.into_inner());
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        list.push(c);
                    }
                }
                for (mut from, mut to) in
                    [(client.try_clone(), server.try_clone()), (server.try_clone(), client.try_clone())]
                        .into_iter()
                        .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        TcpGate { port, up, open }
    }

    /// Cut every connection and refuse new ones until `up`.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What the fault proxy does to the requests it sees while armed.
#[derive(Debug, Clone)]
pub enum Faults {
    /// 403 AccessDenied to every request whose request line contains this.
    Deny(String),
    /// STS's 403 AccessDenied (its XML) to every request whose body holds
    /// all of these: an AssumeRole the role's trust policy refuses, which
    /// moto and LocalStack never do.
    DenyBody(Vec<String>),
    /// 403 with no body at all (as S3 answers HEAD, and as some proxies
    /// answer anything) to requests whose request line contains this.
    Bare(String),
    /// Buckets living in a region (name, region): as real S3 does, a
    /// request for such a bucket signed for another region gets `301 Moved
    /// Permanently` with the bucket's region in `x-amz-bucket-region` (and
    /// no body for HEAD). moto answers from any region.
    Regions(Vec<(String, String)>),
    /// Eventual consistency: for `window` after a CreateBucket passes, every
    /// other request for that bucket answers 404 NoSuchBucket, as S3 may
    /// for seconds after it created one.
    Consistency { window: Duration, created: std::sync::Arc<std::sync::Mutex<Vec<(String, std::time::Instant)>>> },
    /// For `window` after a bucket's versioning is enabled, its
    /// PutBucketReplication answers 400 InvalidRequest "Versioning must be
    /// 'Enabled' on the bucket", as S3 may.
    VersioningLag { window: Duration, enabled: std::sync::Arc<std::sync::Mutex<Vec<(String, std::time::Instant)>>> },
    /// IAM: for `window` after a CreateRole passes, any other request naming
    /// that role answers 404 NoSuchEntity, as IAM may.
    RoleLag { window: Duration, created: std::sync::Arc<std::sync::Mutex<Vec<(String, std::time::Instant)>>> },
    /// KMS: for `window` after a CreateRole passes, a PutKeyPolicy whose
    /// policy names that role answers 400 MalformedPolicyDocumentException
    /// "…invalid principals", as KMS does until IAM has propagated it.
    PrincipalLag { window: Duration, created: std::sync::Arc<std::sync::Mutex<Vec<(String, std::time::Instant)>>> },
    /// From a seed, `percent` % of requests get a fault: 503 SlowDown, 500
    /// InternalError, a connection closed without an answer, or a 300 ms
    /// delay before forwarding.
    Chaos { seed: u64, percent: u64 },
    /// Every request waits this long before it is forwarded.
    Delay(Duration),
    /// The answer to a request whose request line contains `on` is cut
    /// after `keep` bytes of its body, its Content-Length unchanged: the
    /// connection drops mid-download, as a network or S3 node may.
    CutBody { on: String, keep: usize },
    /// Stale configuration reads: for `window` after a bucket setting was
    /// written (lifecycle, policy, replication, encryption, versioning,
    /// public access block), a read of it answers what it answered before
    /// the write, as S3's eventually consistent configuration reads may.
    StaleReads { window: Duration, state: std::sync::Arc<std::sync::Mutex<Stale>> },
    /// A request rate per service (S3, IAM, KMS) above which requests are
    /// throttled as each service does: S3 503 SlowDown, IAM 400 Throttling,
    /// KMS 400 ThrottlingException.
    RateLimit {
        per_sec: usize,
        state: std::sync::Arc<std::sync::Mutex<HashMap<&'static str, (std::time::Instant, usize)>>>,
    },
    /// S3's composite checksums: an object completed by
    /// CompleteMultipartUpload is answered with its SHA-256 as S3 gives
    /// it, "BASE64-N" (N its part count) — in the CompleteMultipartUpload
    /// answer and the `x-amz-checksum-sha256` of HeadObject and GetObject
    /// (AWS S3 user guide, "Checking object integrity": using part-level
    /// checksums for multipart uploads). moto answers it without "-N".
    CompositeChecksums { parts: std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>> },
    /// SSE-KMS writes into buckets with an S3 Bucket Key, as S3 makes
    /// them for the replication role: KMS is asked with the *bucket's* ARN
    /// as encryption context `aws:s3:arn` (AWS S3 user guide, "Replicating
    /// encrypted objects": S3 Bucket Keys and replication), through S3 in
    /// the bucket's region, for its key (known by its alias); a PutObject
    /// into one of `buckets` (name, region, key alias) is refused with 403
    /// AccessDenied unless a statement of `role` (the replication role's
    /// documents) allows kms:Encrypt for that request, its conditions
    /// evaluated.
    BucketKeyContext { buckets: Vec<(String, String, String)>, role: Vec<serde_json::Value> },
    /// S3's replication status: HEAD and GET of an object whose path
    /// contains `on` (`/bucket/key`) answer `x-amz-replication-status:
    /// status` (PENDING, COMPLETED, FAILED, REPLICA), as S3 does for an
    /// object in a replication rule's scope (AWS S3 user guide, "Getting
    /// replication status information"). moto sets none.
    ReplicationStatus { on: String, status: String },
    /// S3 replication into a bucket of another account, as S3 makes it for
    /// the replication role: a plain PUT into `bucket` stands for a replica
    /// written as `role` (its ARN), and is refused with 403 AccessDenied
    /// unless both sides allow each action (AWS S3 user guide, "Configuring
    /// replication for source and destination buckets owned by different
    /// accounts" and "Changing the replica owner"; AWS KMS developer guide,
    /// "Allowing users in other accounts to use a KMS key"):
    /// s3:ReplicateObject and s3:ObjectOwnerOverrideToBucketOwner on the
    /// object, by the role's documents and by the bucket's policy; and
    /// kms:Encrypt with the replica key (`key`: ARN, alias) by the role's
    /// documents and by the key's policy — each condition evaluated for a
    /// request through S3 in `region` with the object's ARN as encryption
    /// context. An explicit Deny on either side refuses.
    CrossAccountReplica(Box<Replica>),
    /// Requests to `bucket` by a principal of another account (`principal`,
    /// an IAM ARN there) that delete objects or change the bucket's policy,
    /// lifecycle, versioning, replication or lock, judged as AWS judges a
    /// request across accounts: the bucket's policy (`policy`, as read)
    /// must allow it and no Deny of it apply; the principal's own account
    /// lets it do anything (an administrator). Refused with 403
    /// AccessDenied (AWS IAM user guide, "Cross-account policy evaluation
    /// logic"); moto lets every account into every bucket.
    CrossAccount { bucket: String, principal: String, policy: serde_json::Value },
    /// Several behaviours at once, in order: the first that answers wins.
    All(Vec<Faults>),
}

/// What [`Faults::CrossAccountReplica`] judges a replica PUT by.
#[derive(Debug, Clone)]
pub struct Replica {
    pub bucket: String,
    pub region: String,
    pub key: (String, String),
    pub role: String,
    pub role_docs: Vec<serde_json::Value>,
    pub bucket_policy: serde_json::Value,
    pub key_policy: serde_json::Value,
}

impl Replica {
    /// Why a replica of `object` is refused; None: both sides allow it.
    pub fn refused(&self, object: &str) -> Option<String> {
        let object_arn = format!("arn:aws:s3:::{}/{object}", self.bucket);
        let req = [
            ("kms:ViaService", vec![format!("s3.{}.amazonaws.com", self.region)]),
            ("kms:EncryptionContext:aws:s3:arn", vec![object_arn.clone()]),
            ("kms:ResourceAliases", vec![self.key.1.clone()]),
        ];
        let checks = [
            ("s3:ReplicateObject", object_arn.as_str(), &self.bucket_policy, "the bucket policy"),
            ("s3:ObjectOwnerOverrideToBucketOwner", object_arn.as_str(), &self.bucket_policy, "the bucket policy"),
            ("kms:Encrypt", self.key.0.as_str(), &self.key_policy, "the key policy"),
        ];
        for (action, resource, theirs, which) in checks {
            if !allows(&self.role_docs, None, action, resource, &req) {
                return Some(format!("the role's own policies do not allow {action}"));
            }
            if !allows(std::slice::from_ref(theirs), Some(&self.role), action, resource, &req) {
                return Some(format!("{which} does not allow {action}"));
            }
        }
        None
    }
}

/// The IAM action and resource of an S3 request that deletes objects or
/// re-configures a bucket (path-style), if it is one.
fn s3_action(request_line: &str) -> Option<(&'static str, String)> {
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next()?, words.next()?);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (bucket, key) = path.trim_start_matches('/').split_once('/').unwrap_or((path.trim_start_matches('/'), ""));
    let has = |q: &str| query.split('&').any(|p| p == q || p.starts_with(&format!("{q}=")));
    let action = match (method, key.is_empty()) {
        ("DELETE", false) if has("versionId") => "s3:DeleteObjectVersion",
        ("DELETE", false) => "s3:DeleteObject",
        ("POST", true) if has("delete") => "s3:DeleteObject",
        ("PUT", true) if has("policy") => "s3:PutBucketPolicy",
        ("DELETE", true) if has("policy") => "s3:DeleteBucketPolicy",
        ("PUT", true) if has("lifecycle") => "s3:PutLifecycleConfiguration",
        ("PUT", true) if has("versioning") => "s3:PutBucketVersioning",
        ("PUT", true) if has("replication") => "s3:PutReplicationConfiguration",
        ("PUT", true) if has("object-lock") => "s3:PutBucketObjectLockConfiguration",
        _ => return None,
    };
    let resource =
        if key.is_empty() { format!("arn:aws:s3:::{bucket}") } else { format!("arn:aws:s3:::{bucket}/{key}") };
    Some((action, resource))
}

/// Do `docs` allow `principal` (None: identity policies, no Principal)
/// `action` on `resource` for `req`, with no explicit Deny?
fn allows(
    docs: &[serde_json::Value],
    principal: Option<&str>,
    action: &str,
    resource: &str,
    req: &suoops_policy::iamdoc::Request,
) -> bool {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    let account = principal.and_then(|p| p.split(':').nth(4)).unwrap_or("-");
    let root = format!("arn:aws:iam::{account}:root");
    let applies = |st: &serde_json::Value| {
        let glob = suoops_policy::iamdoc::glob;
        let named = match principal {
            None => true,
            Some(p) => {
                let who = strings(st.get("Principal").and_then(|x| x.get("AWS")).unwrap_or(&serde_json::Value::Null));
                st.get("Principal") == Some(&serde_json::json!("*"))
                    || who.iter().any(|w| w == "*" || w == p || w == account || *w == root)
            }
        };
        named
            && strings(st.get("Action").unwrap_or(&serde_json::Value::Null)).iter().any(|a| glob(a, action))
            && strings(st.get("Resource").unwrap_or(&serde_json::Value::Null)).iter().any(|r| glob(r, resource))
            && suoops_policy::iamdoc::conditions_hold(st.get("Condition"), req).unwrap_or(false)
    };
    let all: Vec<serde_json::Value> = docs
        .iter()
        .flat_map(|d| suoops_policy::iamdoc::canonical(d)["Statement"].as_array().cloned().unwrap_or_default())
        .collect();
    let effect = |e: &str| all.iter().filter(|st| st["Effect"] == e).any(&applies);
    effect("Allow") && !effect("Deny")
}

impl Faults {
    pub fn composite_checksums() -> Faults {
        Faults::CompositeChecksums { parts: Default::default() }
    }
}

/// What `Faults::StaleReads` remembers.
#[derive(Debug, Default)]
pub struct Stale {
    /// The last answer to each configuration read (`bucket?sub`).
    last: HashMap<String, Vec<u8>>,
    /// When each was last written.
    written: HashMap<String, std::time::Instant>,
}

/// Faults injected so far, by kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub forwarded: std::sync::atomic::AtomicUsize,
    pub slowdown: std::sync::atomic::AtomicUsize,
    pub internal: std::sync::atomic::AtomicUsize,
    pub reset: std::sync::atomic::AtomicUsize,
    pub delay: std::sync::atomic::AtomicUsize,
    pub denied: std::sync::atomic::AtomicUsize,
    pub stale: std::sync::atomic::AtomicUsize,
}

impl FaultCounts {
    pub fn summary(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        format!(
            "forwarded {}, throttled {}, 500 {}, reset {}, delayed {}, denied {}, stale {}",
            self.forwarded.load(Relaxed),
            self.slowdown.load(Relaxed),
            self.internal.load(Relaxed),
            self.reset.load(Relaxed),
            self.delay.load(Relaxed),
            self.denied.load(Relaxed),
            self.stale.load(Relaxed)
        )
    }
}

/// A loopback HTTP proxy between the tool and moto that injects `Faults`
/// (while armed) and forwards everything else; a thread per connection,
/// one request per connection (moto answers `Connection: close`). After
/// `die_after` forwarded requests it stops answering at all, as a server
/// that died mid-run.
pub struct FaultProxy {
    pub port: u16,
    pub counts: std::sync::Arc<FaultCounts>,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// splitmix64: a reproducible stream of decisions from one seed.
fn next_random(state: &std::sync::atomic::AtomicU64) -> u64 {
    let mut z = state.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FaultProxy {
    /// 403 AccessDenied to requests whose request line contains `fail_on`.
    pub fn start(upstream: u16, fail_on: &str) -> FaultProxy {
        FaultProxy::with(upstream, Faults::Deny(fail_on.to_string()), None)
    }

    pub fn with(upstream: u16, faults: Faults, die_after: Option<usize>) -> FaultProxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let armed = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(FaultCounts::default());
        let seed = match &faults {
            Faults::Chaos { seed, .. } => *seed,
            _ => 0,
        };
        let rng = Arc::new(AtomicU64::new(seed));
        let (a2, s2, c2) = (armed.clone(), stop.clone(), counts.clone());
        std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                if die_after.is_some_and(|n| c2.forwarded.load(Ordering::Relaxed) >= n) {
                    // The server is gone: nothing listens any more.
                    s2.store(true, Ordering::Relaxed);
                    break;
                }
                let (a3, c3, r3, f3) = (a2.clone(), c2.clone(), rng.clone(), faults.clone());
                std::thread::spawn(move || proxy_one(client, upstream, &a3, &c3, &r3, &f3));
            }
        });
        FaultProxy { port, counts, armed, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn disarm(&self) {
        self.armed.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

fn proxy_one(
    mut client: TcpStream,
    upstream: u16,
    armed: &std::sync::atomic::AtomicBool,
    counts: &FaultCounts,
    rng: &std::sync::atomic::AtomicU64,
    faults: &Faults,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    // Read the head, then the body by Content-Length.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => break None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break Some(i + 4);
        }
    };
    let Some(head_end) = head_end else { return };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if armed.load(Ordering::Relaxed) && intercept(faults, &mut client, &head, &buf[head_end..], counts, rng) {
        return;
    }
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
    counts.forwarded.fetch_add(1, Ordering::Relaxed);
    let _ = up.write_all(&buf);
    let mut resp: Vec<u8> = Vec::new();
    let _ = up.read_to_end(&mut resp);
    if armed.load(Ordering::Relaxed) {
        forwarded(faults, &head, &resp);
        resp = rewritten(faults, &head, &buf[head_end..], resp);
    }
    let _ = client.write_all(&resp);
}

/// The answer as the behaviour `faults` plays it (most leave it as is).
fn rewritten(faults: &Faults, head: &str, body: &[u8], resp: Vec<u8>) -> Vec<u8> {
    match faults {
        Faults::All(list) => list.iter().fold(resp, |r, f| rewritten(f, head, body, r)),
        Faults::CompositeChecksums { parts } => {
            let line = head.lines().next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let Ok(mut known) = parts.lock() else { return resp };
            let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else { return resp };
            let (resp_head, resp_body) = (String::from_utf8_lossy(&resp[..end]).into_owned(), resp[end..].to_vec());
            let suffix = |sum: &str, n: usize| if sum.contains('-') { sum.to_string() } else { format!("{sum}-{n}") };
            if method == "POST" && query.contains("uploadId=") && resp_head.starts_with("HTTP/1.1 200") {
                let n = String::from_utf8_lossy(body).matches("<Part>").count();
                known.insert(path.to_string(), n);
                let text = String::from_utf8_lossy(&resp_body).into_owned();
                let Some((a, rest)) = text.split_once("<ChecksumSHA256>") else { return resp };
                let Some((sum, b)) = rest.split_once("</ChecksumSHA256>") else { return resp };
                let new_body = format!("{a}<ChecksumSHA256>{}</ChecksumSHA256>{b}", suffix(sum, n));
                let new_head: String = resp_head
                    .split("\r\n")
                    .map(|l| {
                        if l.to_ascii_lowercase().starts_with("content-length:") {
                            format!("Content-Length: {}", new_body.len())
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\r\n");
                return [new_head.into_bytes(), new_body.into_bytes()].concat();
            }
            if method == "PUT" && !query.contains("uploadId=") {
                // Overwritten by a single PutObject: a full checksum again.
                known.remove(path);
            }
            let Some(&n) = known.get(path).filter(|_| method == "HEAD" || method == "GET") else { return resp };
            let new_head: String = resp_head
                .split("\r\n")
                .map(|l| match l.split_once(':') {
                    Some((k, v)) if k.eq_ignore_ascii_case("x-amz-checksum-sha256") => {
                        format!("{k}: {}", suffix(v.trim(), n))
                    }
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\r\n");
            [new_head.into_bytes(), resp_body].concat()
        }
        Faults::ReplicationStatus { on, status } => {
            let line = head.lines().next().unwrap_or("");
            let target = line.split_whitespace().nth(1).unwrap_or("");
            let path = target.split('?').next().unwrap_or("");
            let object = (line.starts_with("HEAD ") || line.starts_with("GET ")) && path.ends_with(on.as_str());
            let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 2) else { return resp };
            if !object || !resp.starts_with(b"HTTP/1.1 200") {
                return resp;
            }
            [&resp[..end], format!("x-amz-replication-status: {status}\r\n").as_bytes(), &resp[end..]].concat()
        }
        Faults::CutBody { on, keep } if head.lines().next().unwrap_or("").contains(on.as_str()) => {
            let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else { return resp };
            resp[..(end + keep).min(resp.len())].to_vec()
        }
        _ => resp,
    }
}

/// One fault's turn at a request: true when it answered it itself.
fn intercept(
    faults: &Faults,
    client: &mut TcpStream,
    head: &str,
    body: &[u8],
    counts: &FaultCounts,
    rng: &std::sync::atomic::AtomicU64,
) -> bool {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let mut client = client;
    let request_line = head.lines().next().unwrap_or("").to_string();
    let answer = |client: &mut &mut TcpStream, status: &str, code: &str| {
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected fault</Message><RequestId>fault</RequestId></Error>");
        let _ = write!(
            client,
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    match faults {
        Faults::DenyBody(needles) if needles.iter().all(|n| String::from_utf8_lossy(body).contains(n.as_str())) => {
            counts.denied.fetch_add(1, Ordering::Relaxed);
            let xml = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/test is not authorized to perform: sts:AssumeRole on resource: the role</Message></Error><RequestId>fault</RequestId></ErrorResponse>";
            let _ = write!(
                client,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            return true;
        }
        Faults::Deny(needle) if request_line.contains(needle.as_str()) => {
            counts.denied.fetch_add(1, Ordering::Relaxed);
            {
                answer(&mut client, "403 Forbidden", "AccessDenied");
                return true;
            }
        }
        Faults::Regions(homes) => {
            // The region the request was signed for: the credential
            // scope `Credential=KEY/DATE/REGION/s3/aws4_request`.
            let signed = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .and_then(|l| l.split("Credential=").nth(1))
                .and_then(|c| c.split('/').nth(2))
                .unwrap_or("")
                .to_string();
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let bucket = path.trim_start_matches('/').split(['/', '?']).next().unwrap_or("");
            if let Some((_, home)) = homes.iter().find(|(b, r)| b == bucket && *r != signed && signed.contains('-')) {
                counts.denied.fetch_add(1, Ordering::Relaxed);
                let head_request = request_line.starts_with("HEAD ");
                let body = if head_request {
                    String::new()
                } else {
                    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Bucket>{bucket}</Bucket></Error>")
                };
                let _ = write!(
                        client,
                        "HTTP/1.1 301 Moved Permanently\r\nx-amz-bucket-region: {home}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                return true;
            }
        }
        Faults::BucketKeyContext { buckets, role } => {
            let mut words = request_line.split_whitespace();
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let path = target.split('?').next().unwrap_or("");
            let (bucket, key) = path.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
            let plain_put = method == "PUT" && !target.contains('?') && !key.is_empty();
            if let Some((b, region, alias)) = buckets.iter().find(|(b, _, _)| plain_put && b == bucket) {
                let req = [
                    ("kms:ViaService", vec![format!("s3.{region}.amazonaws.com")]),
                    ("kms:EncryptionContext:aws:s3:arn", vec![format!("arn:aws:s3:::{b}")]),
                    ("kms:ResourceAliases", vec![alias.clone()]),
                ];
                let allowed = role.iter().any(|d| {
                    let c = suoops_policy::iamdoc::canonical(d);
                    c["Statement"].as_array().into_iter().flatten().any(|st| {
                        let acts = st["Action"].as_array().cloned().unwrap_or_default();
                        st["Effect"] == "Allow"
                            && acts
                                .iter()
                                .any(|a| a.as_str().is_some_and(|a| suoops_policy::iamdoc::glob(a, "kms:Encrypt")))
                            && suoops_policy::iamdoc::conditions_hold(st.get("Condition"), &req).unwrap_or(false)
                    })
                });
                if !allowed {
                    counts.denied.fetch_add(1, Ordering::Relaxed);
                    answer(&mut client, "403 Forbidden", "AccessDenied");
                    return true;
                }
            }
        }
        Faults::CrossAccountReplica(replica) => {
            let mut words = request_line.split_whitespace();
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let path = target.split('?').next().unwrap_or("");
            let (bucket, key) = path.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
            if method == "PUT" && !target.contains('?') && !key.is_empty() && bucket == replica.bucket {
                if let Some(why) = replica.refused(key) {
                    counts.denied.fetch_add(1, Ordering::Relaxed);
                    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>{why}</Message></Error>");
                    let _ = write!(
                        client,
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return true;
                }
            }
        }
        Faults::CrossAccount { bucket, principal, policy } => {
            if let Some((action, resource)) = s3_action(&request_line).filter(|(_, r)| {
                r.strip_prefix("arn:aws:s3:::").and_then(|r| r.split('/').next()) == Some(bucket.as_str())
            }) {
                let account = principal.split(':').nth(4).unwrap_or_default().to_string();
                let req = [
                    ("aws:PrincipalAccount", vec![account]),
                    ("aws:PrincipalArn", vec![principal.clone()]),
                    ("aws:SecureTransport", vec!["true".to_string()]),
                ];
                if !allows(std::slice::from_ref(policy), Some(principal), action, &resource, &req) {
                    counts.denied.fetch_add(1, Ordering::Relaxed);
                    answer(&mut client, "403 Forbidden", "AccessDenied");
                    return true;
                }
            }
        }
        Faults::Bare(needle) if request_line.contains(needle.as_str()) => {
            counts.denied.fetch_add(1, Ordering::Relaxed);
            let _ = write!(client, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return true;
        }
        Faults::Chaos { percent, .. } => {
            let roll = next_random(rng);
            if roll % 100 < *percent {
                match (roll / 100) % 4 {
                    0 => {
                        counts.slowdown.fetch_add(1, Ordering::Relaxed);
                        {
                            answer(&mut client, "503 Slow Down", "SlowDown");
                            return true;
                        }
                    }
                    1 => {
                        counts.internal.fetch_add(1, Ordering::Relaxed);
                        {
                            answer(&mut client, "500 Internal Server Error", "InternalError");
                            return true;
                        }
                    }
                    2 => {
                        // Close without a word: the client sees the connection end.
                        counts.reset.fetch_add(1, Ordering::Relaxed);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return true;
                    }
                    _ => {
                        counts.delay.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(300));
                    }
                }
            }
        }
        Faults::Delay(d) => {
            counts.delay.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(*d);
        }
        // Forwarded, then cut (`rewritten`).
        Faults::CutBody { .. } => {}
        Faults::Consistency { window, created } => {
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let bucket = path.trim_start_matches('/').split(['/', '?']).next().unwrap_or("").to_string();
            let is_create = request_line.starts_with("PUT ") && path.trim_end_matches('/') == format!("/{bucket}");
            let young =
                created.lock().map(|c| c.iter().any(|(b, t)| *b == bucket && t.elapsed() < *window)).unwrap_or(false);
            if is_create {
                if let Ok(mut c) = created.lock() {
                    c.push((bucket, std::time::Instant::now()));
                }
            } else if young {
                counts.denied.fetch_add(1, Ordering::Relaxed);
                {
                    answer(&mut client, "404 Not Found", "NoSuchBucket");
                    return true;
                }
            }
        }
        Faults::VersioningLag { window, enabled } => {
            let path = request_line.split_whitespace().nth(1).unwrap_or("");
            let bucket = path.trim_start_matches('/').split(['/', '?']).next().unwrap_or("").to_string();
            if request_line.starts_with("PUT ") && path.contains("?versioning") {
                if let Ok(mut e) = enabled.lock() {
                    e.push((bucket, std::time::Instant::now()));
                }
            } else if request_line.starts_with("PUT ") && path.contains("?replication") {
                let young = enabled
                    .lock()
                    .map(|e| e.iter().any(|(b, t)| *b == bucket && t.elapsed() < *window))
                    .unwrap_or(false);
                if young {
                    counts.denied.fetch_add(1, Ordering::Relaxed);
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidRequest</Code><Message>Versioning must be 'Enabled' on the bucket to apply a replication configuration</Message><RequestId>fault</RequestId></Error>";
                    let _ = write!(
                            client,
                            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    return true;
                }
            }
        }
        Faults::RoleLag { window, created } => {
            let body = String::from_utf8_lossy(body).into_owned();
            let field =
                |k: &str| body.split('&').find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap_or("").to_string();
            let (action, role) = (field("Action"), field("RoleName"));
            if action == "CreateRole" {
                if let Ok(mut c) = created.lock() {
                    c.push((role, std::time::Instant::now()));
                }
            } else if !role.is_empty()
                && created.lock().map(|c| c.iter().any(|(r, t)| *r == role && t.elapsed() < *window)).unwrap_or(false)
            {
                counts.denied.fetch_add(1, Ordering::Relaxed);
                let xml = format!("<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name {role} cannot be found.</Message></Error><RequestId>fault</RequestId></ErrorResponse>");
                let _ = write!(
                        client,
                        "HTTP/1.1 404 Not Found\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                        xml.len()
                    );
                return true;
            }
        }
        Faults::PrincipalLag { window, created } => {
            let body = String::from_utf8_lossy(body).into_owned();
            let target = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-amz-target:").map(|v| v.trim().to_string()))
                .unwrap_or_default();
            let role = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("RoleName="))
                .filter(|_| body.contains("Action=CreateRole"))
                .map(str::to_string);
            if let Some(role) = role {
                if let Ok(mut c) = created.lock() {
                    c.push((role, std::time::Instant::now()));
                }
            } else if target == "trentservice.putkeypolicy"
                && created
                    .lock()
                    .map(|c| c.iter().any(|(r, t)| body.contains(&format!(":role/{r}")) && t.elapsed() < *window))
                    .unwrap_or(false)
            {
                counts.denied.fetch_add(1, Ordering::Relaxed);
                let json = r#"{"__type":"MalformedPolicyDocumentException","message":"Policy contains a statement with one or more invalid principals."}"#;
                let _ = write!(
                        client,
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                        json.len()
                    );
                return true;
            }
        }
        Faults::All(list) => {
            return list.iter().any(|f| intercept(f, client, head, body, counts, rng));
        }
        Faults::StaleReads { window, state } => {
            if let Some((method, key)) = config_request(head) {
                let old = state.lock().ok().and_then(|st| {
                    let young = st.written.get(&key).is_some_and(|t| t.elapsed() < *window);
                    (method == "GET" && young).then(|| st.last.get(&key).cloned()).flatten()
                });
                if let Some(old) = old {
                    counts.stale.fetch_add(1, Ordering::Relaxed);
                    let _ = client.write_all(&old);
                    return true;
                }
            }
        }
        Faults::RateLimit { per_sec, state } => {
            let text = String::from_utf8_lossy(body);
            let lower = head.to_ascii_lowercase();
            let service = if lower.contains("x-amz-target: trentservice.") {
                "kms"
            } else if text.contains("Version=2010-05-08") {
                "iam"
            } else {
                "s3"
            };
            let over = state.lock().map(|mut m| {
                let e = m.entry(service).or_insert((std::time::Instant::now(), 0));
                if e.0.elapsed() >= Duration::from_secs(1) {
                    *e = (std::time::Instant::now(), 0);
                }
                e.1 += 1;
                e.1 > *per_sec
            });
            if over.unwrap_or(false) {
                counts.slowdown.fetch_add(1, Ordering::Relaxed);
                let (status, ctype, text) = match service {
                        "iam" => ("400 Bad Request", "text/xml", "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault</RequestId></ErrorResponse>".to_string()),
                        "kms" => ("400 Bad Request", "application/x-amz-json-1.1", r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string()),
                        _ => ("503 Slow Down", "application/xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault</RequestId></Error>".to_string()),
                    };
                let _ = write!(
                        client,
                        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                return true;
            }
        }
        Faults::Deny(_)
        | Faults::DenyBody(_)
        | Faults::Bare(_)
        | Faults::CompositeChecksums { .. }
        | Faults::ReplicationStatus { .. } => {}
    }
    false
}

/// What a fault learns from a forwarded request and its answer (stale
/// reads remember the last answer to each configuration read).
fn forwarded(faults: &Faults, head: &str, resp: &[u8]) {
    match faults {
        Faults::All(list) => list.iter().for_each(|f| forwarded(f, head, resp)),
        Faults::StaleReads { window, state } => {
            let Some((method, key)) = config_request(head) else { return };
            let ok = resp.starts_with(b"HTTP/1.1 2") || resp.starts_with(b"HTTP/1.0 2");
            let Ok(mut st) = state.lock() else { return };
            let young = st.written.get(&key).is_some_and(|t| t.elapsed() < *window);
            match method.as_str() {
                "GET" if !young => {
                    st.last.insert(key, resp.to_vec());
                }
                "PUT" | "DELETE" if ok => {
                    st.written.insert(key, std::time::Instant::now());
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// (method, "bucket?subresource") of a bucket-configuration request.
fn config_request(head: &str) -> Option<(String, String)> {
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?);
    let (bucket_path, query) = path.split_once('?')?;
    let bucket = bucket_path.trim_matches('/');
    if bucket.is_empty() || bucket.contains('/') {
        return None;
    }
    let sub = query.split(['&', '=']).next()?;
    ["lifecycle", "policy", "replication", "encryption", "versioning", "publicAccessBlock"]
        .contains(&sub)
        .then(|| (method, format!("{bucket}?{sub}")))
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Another client suspends a bucket's versioning (drift behind the tool's back).
pub fn suspend_versioning(w: &World, bucket: &str) {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    block_on(async {
        w.moto()
            .s3("us-east-1")
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build(),
            )
            .send()
            .await
            .expect("suspend versioning");
    });
}

impl Faults {
    /// Eventual consistency for `window` after each CreateBucket.
    pub fn consistency(window: Duration) -> Faults {
        Faults::Consistency { window, created: Default::default() }
    }

    /// IAM roles invisible for `window` after their CreateRole.
    pub fn role_lag(window: Duration) -> Faults {
        Faults::RoleLag { window, created: Default::default() }
    }

    /// Key policies naming a role refused for `window` after its CreateRole.
    pub fn principal_lag(window: Duration) -> Faults {
        Faults::PrincipalLag { window, created: Default::default() }
    }

    /// Configuration reads stale for `window` after each write.
    pub fn stale_reads(window: Duration) -> Faults {
        Faults::StaleReads { window, state: Default::default() }
    }

    /// At most `per_sec` requests a second per service.
    pub fn rate_limit(per_sec: usize) -> Faults {
        Faults::RateLimit { per_sec, state: Default::default() }
    }

    /// AWS as it behaves, in one proxy: buckets in their regions (301
    /// elsewhere), eventual consistency after CreateBucket / CreateRole /
    /// versioning / for principals, stale configuration reads, a request
    /// rate per service, and `latency` on every request.
    pub fn aws(homes: Vec<(String, String)>, window: Duration, per_sec: usize, latency: Duration) -> Faults {
        Faults::All(vec![
            Faults::Delay(latency),
            Faults::rate_limit(per_sec),
            Faults::Regions(homes),
            Faults::consistency(window),
            Faults::role_lag(window),
            Faults::principal_lag(window),
            Faults::versioning_lag(window),
            Faults::stale_reads(window),
        ])
    }

    /// Replication refused for `window` after versioning is enabled.
    pub fn versioning_lag(window: Duration) -> Faults {
        Faults::VersioningLag { window, enabled: Default::default() }
    }
}

/// One test body against both emulators: `both!(name, body)` makes
/// `name::moto` and `name::localstack`, each calling `body(Server)`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:path) => {
        mod $name {
            #[test]
            fn moto() {
                $body($crate::harness::Server::Moto)
            }
            #[test]
            fn localstack() {
                $body($crate::harness::Server::LocalStack)
            }
        }
    };
}
