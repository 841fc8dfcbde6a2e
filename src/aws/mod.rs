//! AWS SDK set-up and error classification. One shared `SdkConfig` from the
//! aws-config credential chain (nothing hand-rolled), one S3 client per
//! region, reused by every resource. Retries and timeouts come from the
//! SDK's own configuration.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use tokio::sync::Semaphore;

use crate::model::{Fatal, Observed};

pub mod lookup;
pub mod ops;

/// Whether an operation only reads (plan, audit, import) or writes (apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What an operation's IAM action is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Bucket,
    /// Objects in the policy's buckets (backup evidence).
    Objects,
    Role,
    ManagedPolicy,
    /// IAM gives no narrower resource (ListPolicies).
    Any,
    /// Any managed policy attached to the policy's roles, or set as their
    /// permissions boundary, AWS-managed ones included: the audit reads
    /// them to judge what a role can really do.
    AttachedPolicy,
    /// KMS keys (the keys the policy's buckets encrypt with).
    Key,
    /// KMS aliases of the policy's keys (CreateAlias also needs the key).
    Alias,
    /// KMS calls with no resource of their own (CreateKey, ListKeys).
    AnyKey,
    /// The object `audit --state s3://BUCKET/KEY` names: not in the policy,
    /// so `permissions` cannot scope it (docs/commands.md says what to grant).
    StateObject,
    /// The account's bucket list (`import --all-buckets` only).
    Account,
    /// Objects the backup job and the drill write (`permissions --for
    /// backup|restore-drill` scopes them to each entry's prefix).
    Backups,
}

/// A statement a provider adds to `permissions --for COMMAND` beyond its
/// operations (iam:PassRole of a replication role, kms:Decrypt of
/// evidence): the command it is for (`audit`, `apply`) and the statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub command: &'static str,
    pub statement: serde_json::Value,
}

/// One API operation a provider may call: the SDK method, its IAM action,
/// read or write, and what it acts on. Providers declare theirs as data;
/// `permissions` and the "every SDK call is declared" test read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub sdk: &'static str,
    pub action: &'static str,
    pub access: Access,
    pub on: On,
}

impl Op {
    pub const fn read(sdk: &'static str, action: &'static str, on: On) -> Op {
        Op { sdk, action, access: Access::Read, on }
    }
    pub const fn write(sdk: &'static str, action: &'static str, on: On) -> Op {
        Op { sdk, action, access: Access::Write, on }
    }
}

/// Most IAM calls in flight at once (IAM's control plane has low request
/// quotas; AWS IAM user guide, "IAM and AWS STS quotas").
pub const IAM_CONCURRENCY: usize = 4;
/// Most KMS calls in flight at once (KMS request quotas are shared per
/// account and region; AWS KMS developer guide, "Request quotas").
pub const KMS_CONCURRENCY: usize = 8;

/// Why a declared account cannot be reached: its role refused, or STS
/// answering another account than the one declared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("cannot assume {role}: {why}")]
    Refused { role: String, why: String },
    #[error("assuming {role} landed in account {landed}, not the declared {declared}")]
    Elsewhere { role: String, landed: String, declared: String },
    #[error("the caller's credentials are in account {landed}, not in `{name}` ({declared})")]
    CallerElsewhere { landed: String, name: String, declared: String },
}

/// How the user pointed us at AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub concurrency: usize,
    /// Log each API call with its duration on stderr (`-v`).
    pub verbose: bool,
    /// How long a step waits for something created in the same run to
    /// become visible (`--wait`).
    pub wait: Duration,
}

/// The run's connection to AWS: config, per-region clients, and the bound
/// on API calls in flight.
#[derive(Clone)]
pub struct Aws {
    config: SdkConfig,
    path_style: bool,
    endpoint: Option<String>,
    s3: Arc<Mutex<HashMap<String, aws_sdk_s3::Client>>>,
    kms: Arc<Mutex<HashMap<String, aws_sdk_kms::Client>>>,
    iam: aws_sdk_iam::Client,
    /// Calls in flight per service: S3 takes `--concurrency`; IAM's and
    /// KMS's request quotas are far lower (IAM's control plane throttles
    /// at a few requests per second per account), so they get less.
    limit: Arc<Semaphore>,
    iam_limit: Arc<Semaphore>,
    kms_limit: Arc<Semaphore>,
    /// The three bounds' sizes (S3, IAM, KMS), for another account's.
    bounds: [usize; 3],
    calls: Arc<AtomicUsize>,
    /// What the run is waiting for AWS to report, for the progress line.
    waiting: Arc<Mutex<Option<String>>>,
    verbose: bool,
    wait: Duration,
}

impl Aws {
    /// Load the shared config. `default_region` is the policy's `aws.region`;
    /// `--region` wins over it, the SDK's chain (AWS_REGION, profile) is last.
    pub async fn load(opts: &AwsOptions, default_region: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // Adaptive mode: standard retries plus a client-side rate
            // limiter that slows the run down when a service throttles
            // (SlowDown, Throttling), so a throttled run completes.
            .retry_config(RetryConfig::adaptive().with_max_attempts(5))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(r) = opts.region.as_deref().or(default_region) {
            loader = loader.region(Region::new(r.to_string()));
        }
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &opts.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let config = loader.load().await;
        let endpoint = config.endpoint_url().map(str::to_string);
        Aws {
            // IAM is global; its endpoint signs for us-east-1 in the aws
            // partition whatever the run's region.
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config)
                    .region(config.region().cloned().unwrap_or_else(|| Region::new("us-east-1")))
                    .build(),
            ),
            path_style: endpoint.is_some(),
            endpoint,
            config,
            s3: Arc::default(),
            kms: Arc::default(),
            limit: Arc::new(Semaphore::new(opts.concurrency.max(1))),
            iam_limit: Arc::new(Semaphore::new(opts.concurrency.clamp(1, IAM_CONCURRENCY))),
            kms_limit: Arc::new(Semaphore::new(opts.concurrency.clamp(1, KMS_CONCURRENCY))),
            bounds: [
                opts.concurrency.max(1),
                opts.concurrency.clamp(1, IAM_CONCURRENCY),
                opts.concurrency.clamp(1, KMS_CONCURRENCY),
            ],
            calls: Arc::default(),
            waiting: Arc::default(),
            verbose: opts.verbose,
            wait: opts.wait,
        }
    }

    /// How long a step may wait for AWS to report a change (`--wait`).
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Say (on the progress line, and with `-v` on stderr) what the run is
    /// waiting for AWS to report; None when it no longer waits.
    pub fn waiting_for(&self, what: Option<String>) {
        if let (true, Some(w)) = (self.verbose, &what) {
            eprintln!("waiting for AWS to report {w}");
        }
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = what;
    }

    /// What the run waits for now, if anything.
    pub fn waiting(&self) -> Option<String> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether waits and calls are said on stderr (`-v`).
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    /// The region used where the policy names none.
    pub fn default_region(&self) -> Option<&str> {
        self.config.region().map(|r| r.as_ref())
    }

    /// The S3 client for `region`, made once and reused.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let mut map = self.s3.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_s3::config::Builder::from(&self.config)
                    .region(Region::new(region.to_string()))
                    .force_path_style(self.path_style)
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .clone()
    }

    /// The KMS client for `region` (keys are regional), made once and reused.
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        let mut map = self.kms.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(region.to_string())
            .or_insert_with(|| {
                let conf =
                    aws_sdk_kms::config::Builder::from(&self.config).region(Region::new(region.to_string())).build();
                aws_sdk_kms::Client::from_conf(conf)
            })
            .clone()
    }

    /// The IAM client (IAM is global: one for the run).
    pub fn iam(&self) -> &aws_sdk_iam::Client {
        &self.iam
    }

    /// Run one declared API call under the `--concurrency` bound (`-v`
    /// logs it by its SDK name).
    pub async fn call<F: std::future::Future>(&self, op: &'static Op, fut: F) -> F::Output {
        let limit = match op.action.split(':').next() {
            Some("iam") => &self.iam_limit,
            Some("kms") => &self.kms_limit,
            _ => &self.limit,
        };
        let _permit = limit.acquire().await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.verbose {
            return fut.await;
        }
        let start = std::time::Instant::now();
        let out = fut.await;
        eprintln!("api {} {:.1} ms", op.sdk, start.elapsed().as_secs_f64() * 1000.0);
        out
    }

    /// Run a call that may fail only because something this run created is
    /// not visible yet (AWS is eventually consistent: NoSuchBucket for
    /// seconds after CreateBucket, NoSuchEntity after CreateRole; AWS S3
    /// user guide, "Amazon S3 data consistency model"; terraform-provider-aws
    /// retries the same for up to 2 minutes, internal/service/s3/bucket.go).
    /// `make` builds the request again for each try; `transient` says which
    /// errors mean "not yet". Bounded by `--wait`, with backoff (200 ms
    /// doubling to 5 s); with `-v` each wait is said.
    pub async fn call_until_visible<T, E, F, Fut>(
        &self,
        op: &'static Op,
        what: &str,
        make: F,
        transient: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let start = std::time::Instant::now();
        let mut waited = false;
        let mut pause = Duration::from_millis(200);
        loop {
            match self.call(op, make()).await {
                Err(e) if transient(&e) && start.elapsed() + pause <= self.wait => {
                    waited = true;
                    self.waiting_for(Some(format!("{what} ({} ms)", pause.as_millis())));
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                other => {
                    if waited {
                        self.waiting_for(None);
                    }
                    return other;
                }
            }
        }
    }

    /// The account the credentials belong to (STS GetCallerIdentity, which
    /// needs no IAM permission: AWS STS API reference, GetCallerIdentity).
    /// None when it cannot be read.
    pub async fn account(&self) -> Option<String> {
        let sts = aws_sdk_sts::Client::new(&self.config);
        let out = sts.get_caller_identity().send().await.ok()?;
        out.account().map(str::to_string)
    }

    /// The caller's ARN (STS GetCallerIdentity): an assumed-role session
    /// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`, a user or the
    /// root. None when it cannot be read.
    pub async fn caller(&self) -> Option<String> {
        let sts = aws_sdk_sts::Client::new(&self.config);
        let out = sts.get_caller_identity().send().await.ok()?;
        out.arn().map(str::to_string)
    }

    /// This run's settings with `role` assumed once from this handle's
    /// credentials (STS AssumeRole, refreshed by aws-config as it nears
    /// expiry; never chained: AWS caps a chained session at one hour), its
    /// own clients and its own bounds on calls in flight (AWS throttles
    /// per account). Err: why the account cannot be reached — STS refused
    /// the role, or GetCallerIdentity answered another account than `id`.
    pub async fn assume(
        &self,
        id: &str,
        role: &str,
        external_id: Option<&str>,
        session: (&str, u64),
    ) -> Result<Aws, AccountError> {
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name(session.0)
            .session_length(Duration::from_secs(session.1))
            .configure(&self.config);
        if let Some(e) = external_id {
            provider = provider.external_id(e);
        }
        let provider = provider.build().await;
        let config = self
            .config
            .to_builder()
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
            .build();
        let sts = aws_sdk_sts::Client::new(&config);
        let landed = match sts.get_caller_identity().send().await {
            Ok(out) => out.account().unwrap_or_default().to_string(),
            Err(e) => {
                // A refused AssumeRole surfaces as the credentials
                // provider's error under the identity call: its causes say
                // what STS answered.
                let why = match e.code() {
                    Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
                    None => root_cause(&e),
                };
                return Err(AccountError::Refused { role: role.to_string(), why });
            }
        };
        if landed != id {
            return Err(AccountError::Elsewhere { role: role.to_string(), landed, declared: id.to_string() });
        }
        let mut aws = self.clone();
        aws.iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&config)
                .region(config.region().cloned().unwrap_or_else(|| Region::new("us-east-1")))
                .build(),
        );
        aws.config = config;
        aws.s3 = Arc::default();
        aws.kms = Arc::default();
        aws.limit = Arc::new(Semaphore::new(self.bounds[0]));
        aws.iam_limit = Arc::new(Semaphore::new(self.bounds[1]));
        aws.kms_limit = Arc::new(Semaphore::new(self.bounds[2]));
        Ok(aws)
    }

    /// API calls made so far (for `-v` and the benchmark).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Where requests go, for messages.
    /// The credentials the tool runs with, for a program that signs its own
    /// requests (pgBackRest): access key id, secret and session token.
    /// None when the chain finds none. Never printed.
    pub async fn credentials(&self) -> Option<(String, String, Option<String>)> {
        use aws_credential_types::provider::ProvideCredentials;
        let c = self.config.credentials_provider()?.provide_credentials().await.ok()?;
        Some((c.access_key_id().to_string(), c.secret_access_key().to_string(), c.session_token().map(str::to_string)))
    }

    pub fn endpoint_for_humans(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| "AWS".to_string())
    }
}

/// What a failed API call means to the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The thing is not there (404 with one of the expected codes).
    NotFound(String),
    /// This resource cannot be read or written with these credentials.
    AccessDenied(String),
    /// The whole run cannot go on: no credentials, endpoint unreachable,
    /// credentials rejected. One line, said once.
    Fatal(String),
    /// Anything else, for this resource only.
    Other(String),
}

impl ApiError {
    /// The one mapping from a failed read to an observation: not found is
    /// Absent, a run-stopping error is `Fatal`, anything else is Unknown
    /// with its reason (never Absent).
    pub fn observed<T>(self) -> Result<Observed<T>, Fatal> {
        match self {
            ApiError::Fatal(m) => Err(Fatal::api(m)),
            ApiError::NotFound(_) => Ok(Observed::Absent),
            other => Ok(Observed::Unknown { reason: other.reason() }),
        }
    }

    pub fn reason(&self) -> String {
        match self {
            ApiError::NotFound(c) => format!("not found ({c})"),
            ApiError::AccessDenied(m) => format!("access denied: {m}"),
            ApiError::Fatal(m) | ApiError::Other(m) => m.clone(),
        }
    }
}

const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
];

/// Classify an SDK error. `not_found` lists the error codes that mean "the
/// setting is absent" for this call.
pub fn classify<E>(err: &SdkError<E, HttpResponse>, not_found: &[&str]) -> ApiError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("");
            let msg = e.message().unwrap_or("");
            if not_found.contains(&code) {
                ApiError::NotFound(code.to_string())
            } else if code == "AccessDenied" || code == "AccessDeniedException" || code == "Forbidden" {
                ApiError::AccessDenied(if msg.is_empty() { code.to_string() } else { msg.to_string() })
            } else if CREDENTIAL_CODES.contains(&code) {
                ApiError::Fatal(format!("the credentials were rejected ({code}): {msg}"))
            } else if code.is_empty() {
                // A reply without an error body (HEAD requests, some 5xx,
                // proxies): say its status, not the SDK's debug text.
                let status = se.raw().status().as_u16();
                let reason = http_reason(status);
                ApiError::Other(format!("HTTP {status}{reason} with no error code"))
            } else {
                ApiError::Other(format!("{code}: {msg}"))
            }
        }
        SdkError::ConstructionFailure(_) if !root_cause(err).to_ascii_lowercase().contains("credential") => {
            ApiError::Fatal(format!("cannot build the request: {}", root_cause(err)))
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ConstructionFailure(_) => {
            let text = root_cause(err);
            let text = text.lines().next().unwrap_or_default().trim_end_matches(". Attempted:").to_string();
            let lower = text.to_ascii_lowercase();
            if lower.contains("credential") {
                ApiError::Fatal(format!(
                    "no AWS credentials found ({text}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --profile, or use SSO"
                ))
            } else {
                ApiError::Fatal(format!("cannot reach the endpoint: {text}"))
            }
        }
        SdkError::ResponseError(_) => ApiError::Other(format!("unreadable reply: {}", root_cause(err))),
        _ => ApiError::Other(root_cause(err)),
    }
}

/// The reason phrase of common statuses, for messages (" Forbidden").
fn http_reason(status: u16) -> &'static str {
    match status {
        301 => " Moved Permanently",
        400 => " Bad Request",
        403 => " Forbidden",
        404 => " Not Found",
        409 => " Conflict",
        500 => " Internal Server Error",
        503 => " Service Unavailable",
        _ => "",
    }
}

/// The chain of causes, innermost last, joined on one line without the SDK's
/// debug noise.
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.retain(|p| !p.is_empty() && p != "dispatch failure" && p != "service error" && p != "io error");
    parts.join(": ")
}
