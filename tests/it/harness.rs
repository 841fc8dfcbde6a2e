//! Test harness: each test gets its own temp dir and, when it needs one, its
//! own moto server (through scripts/moto_launcher.py) on a free loopback
//! port. A missing server fails the test with how to install it; it never
//! skips.

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

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local addr").port()
}

/// A moto server owned by one test; killed (by its PID) when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Moto {
    pub fn start(dir: &Path) -> Moto {
        Moto::start_with_env(dir, &[])
    }

    /// Start moto with extra environment (e.g. INITIAL_NO_AUTH_ACTION_COUNT,
    /// which makes moto enforce IAM after that many requests).
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
            let mut moto = Moto { child, port, log: log.clone() };
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
            .stdin(Stdio::null());
        if let Some(m) = &self.moto {
            cmd.env("AWS_ENDPOINT_URL", m.url());
        }
        cmd.args(args);
        Run::from(cmd.output().expect("run suoops-policy"))
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

/// A bucket name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}
