//! Command-line interface: global options and one file per subcommand.

mod apply;
mod audit;
mod backup;
mod drill;
mod generate;
mod import;
mod permissions;
mod plan;
mod restore;
mod schedule;
mod schema;
mod shards;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::{Aws, AwsOptions};
use crate::policy::{self, LoadError, Policy};
use crate::render::ColorChoice;

const EXIT_CODES: &str = "\
Exit codes:
  0  ok: nothing differs / compliant
  1  error: bad input, unreadable state, API or apply failure; audit: could not run in full
     (a system unreachable or a control unknown — the report, metrics and --notify still go out)
  2  the live state differs from the policy (plan --detailed-exitcode; audit: a control failed
     or an objective the policy asks for is not met)";

// Its `--help` line names the registry's systems (providers::about).
#[derive(Debug, Parser)]
#[command(name = "suoops-policy", version, about = crate::providers::about(), after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The AWS endpoint for S3, IAM, KMS and STS (e.g. a local moto server); turns on path-style addressing.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Region for clients; wins over the policy's `aws.region` (buckets with their own region keep it).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS profile from the shared config files.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Most API calls in flight at once.
    #[arg(long, global = true, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Seconds a step waits for something created in the same run to become
    /// visible (AWS is eventually consistent), with backoff.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 120)]
    pub wait: u32,
    /// More detail on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a policy file offline (no credentials, no network).
    Validate(validate::ValidateArgs),
    /// Show what differs between the live systems and the policy (read-only).
    Plan(plan::PlanArgs),
    /// Change the live systems to match the policy.
    Apply(apply::ApplyArgs),
    /// Check compliance control by control (read-only).
    Audit(audit::AuditArgs),
    /// Print the policy file's JSON Schema (or, with --report / --plan, the audit report's or the JSON plan's).
    Schema(schema::SchemaArgs),
    /// Print the least-privilege IAM policy this tool needs for a command.
    Permissions(permissions::PermissionsArgs),
    // The job commands' help lists the registry's jobs of their kind.
    #[command(about = format!("Write a policy from the live state ({}); reads only", crate::providers::systems()))]
    Import(import::ImportArgs),
    #[command(
        about = format!("The strategy's backup jobs: `backup run ADDR` takes one backup now ({})", crate::providers::job_addresses(crate::jobs::JobKind::Backup)),
        long_about = format!("The strategy's backup jobs: `backup run ADDR` takes one backup now, one of:\n{}", crate::providers::job_lines(crate::jobs::JobKind::Backup))
    )]
    Backup(backup::BackupArgs),
    #[command(
        about = format!("Restore the newest backup into a throw-away copy, run the checks, measure the time to restore ({})", crate::providers::job_addresses(crate::jobs::JobKind::Drill)),
        long_about = format!("Restore the newest backup into a throw-away copy, run the checks, measure the time to restore; one of:\n{}", crate::providers::job_lines(crate::jobs::JobKind::Drill))
    )]
    RestoreDrill(drill::DrillArgs),
    #[command(
        about = format!("Disaster recovery: restore into an empty directory, replay to a point in time, promote ({})", crate::providers::job_addresses(crate::jobs::JobKind::Restore)),
        long_about = format!("Disaster recovery, one of:\n{}", crate::providers::job_lines(crate::jobs::JobKind::Restore))
    )]
    Restore(restore::RestoreArgs),
    /// Render what starts each scheduled job and the audit, from the policy's `schedule:` fields: systemd units, a cron.d file or Kubernetes CronJobs.
    Schedule(schedule::ScheduleArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish).
    Completions(generate::CompletionsArgs),
    /// Print the man page (roff), generated from the same definitions as --help.
    Man,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `--target`, shared by plan, apply and audit.
#[derive(Debug, Args)]
pub struct TargetArg {
    /// Only this address and everything under it (repeatable), e.g. s3.suoops-backups or iam.role.NAME; account:NAME for the resources of one declared account.
    #[arg(long = "target", value_name = "ADDR")]
    pub target: Vec<String>,
}

impl TargetArg {
    /// The targets, and the policy cut down to what they need; an error
    /// names a target that matches nothing.
    pub fn apply(&self, g: &Global, policy: Policy) -> Option<(crate::model::Targets, Policy)> {
        let (accounts, addresses): (Vec<&String>, Vec<&String>) =
            self.target.iter().partition(|t| t.starts_with("account:"));
        let mut policy = policy;
        if !accounts.is_empty() {
            policy = account_targets(g, &policy, &accounts)?;
        }
        let t = crate::model::Targets::of(addresses.into_iter().cloned().collect());
        if t.list.is_empty() {
            return Some((t, policy));
        }
        let t = t.among(crate::providers::addresses(&policy).into_iter().map(|a| a.as_str().to_string()));
        for one in &t.list {
            if !crate::providers::matches(&policy, one) {
                error(g, format!("--target {one} matches nothing in {}; addresses look like s3.BUCKET, s3.BUCKET.lifecycle.RULE, iam.role.NAME, redis.NAME, postgres.NAME", policy.file));
                return None;
            }
        }
        let restricted = crate::providers::restricted(&policy, &t);
        Some((t, restricted))
    }
}

/// `--target account:NAME`: only the resources in those declared accounts
/// (the caller's own, role-less account includes what names no account).
/// None, said on stderr: a target names no declared account.
fn account_targets(g: &Global, policy: &Policy, targets: &[&String]) -> Option<Policy> {
    let mut names: Vec<&str> = Vec::new();
    for t in targets {
        let name = t.trim_start_matches("account:");
        declared_account(g, policy, name, &format!("--target {t}: `{name}` is"))?;
        names.push(name);
    }
    let caller = policy.accounts.iter().find(|a| a.role.is_none()).map(|a| a.name.as_str());
    let here = |a: Option<&str>| names.contains(&a.or(caller).unwrap_or_default());
    Some(crate::providers::in_account(policy, &here))
}

/// The declared account `name`; None, said on stderr after `lead` (how the
/// command line named it), when the policy declares no such account.
fn declared_account<'p>(g: &Global, policy: &'p Policy, name: &str, lead: &str) -> Option<&'p crate::policy::Account> {
    let found = policy.accounts.iter().find(|a| a.name == name);
    if found.is_none() {
        let known: Vec<&str> = policy.accounts.iter().map(|a| a.name.as_str()).collect();
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        error(g, format!("{lead} not an account of {} (declared: {known})", policy.file));
    }
    found
}

/// The policy file option shared by commands.
#[derive(Debug, Args)]
pub struct PolicyArg {
    /// The policy file.
    #[arg(short = 'f', long = "file", value_name = "POLICY")]
    pub file: PathBuf,
}

pub fn run(cli: Cli) -> ExitCode {
    let code = match &cli.command {
        Command::Validate(a) => validate::run(&cli.global, a),
        Command::Schema(a) => schema::run(a),
        Command::Permissions(a) => permissions::run(&cli.global, a),
        Command::Schedule(a) => schedule::run(&cli.global, a),
        Command::Completions(a) => generate::completions(a),
        Command::Man => generate::man(),
        Command::Plan(a) => with_runtime(|| plan::run(&cli.global, a)),
        Command::Apply(a) => with_runtime(|| apply::run(&cli.global, a)),
        Command::Audit(a) => with_runtime(|| audit::run(&cli.global, a)),
        Command::Import(a) => with_runtime(|| import::run(&cli.global, a)),
        Command::Backup(a) => with_runtime(|| backup::run(&cli.global, a)),
        Command::RestoreDrill(a) => with_runtime(|| drill::run(&cli.global, a)),
        Command::Restore(a) => with_runtime(|| restore::run(&cli.global, a)),
    };
    ExitCode::from(code)
}

fn with_runtime<F, Fut>(f: F) -> u8
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    // One thread: the tool waits on the network, and handing every socket
    // event between worker threads cost more CPU (context switches) than
    // the work itself.
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(f()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            1
        }
    }
}

/// Load the policy or print its diagnostics; `None` means exit 1.
fn load_policy(g: &Global, path: &Path) -> Option<Policy> {
    loaded(g, policy::load(path, &crate::providers::control_ids()))
}

/// The policy's diagnostics said, and the policy if it is valid.
fn loaded(g: &Global, policy: Result<Policy, LoadError>) -> Option<Policy> {
    match policy {
        Ok(p) => {
            if !g.quiet && !p.warnings.items.is_empty() {
                eprint!("{}", p.warnings.summary());
            }
            Some(p)
        }
        Err(LoadError::Invalid(d)) => {
            eprint!("{}", d.render_for(g.color.enabled_for_stderr(), stderr_is_terminal()));
            None
        }
    }
}

/// `--notify` of the jobs: one message per run, success or failure.
#[derive(Debug, Args)]
pub struct JobNotify {
    /// Post the run's outcome (success or failure: the address, the object,
    /// its size and duration, or the reason) to this webhook (repeatable);
    /// `env:NAME` reads the URL from the environment variable NAME (only
    /// its host is ever printed).
    #[arg(long, value_name = "URL|env:NAME")]
    pub notify: Vec<String>,
    /// The message format for --notify.
    #[arg(long, value_enum, default_value_t = crate::notify::NotifyFormat::Slack)]
    pub notify_format: crate::notify::NotifyFormat,
}

impl JobNotify {
    /// The webhooks' URLs, checked before the job runs.
    fn hooks(&self) -> Result<Vec<String>, crate::notify::NotifyError> {
        let env = |k: &str| std::env::var(k).ok();
        self.notify.iter().map(|n| crate::notify::resolve(n, &env)).collect()
    }
}

/// What a job command starts from: its webhooks (checked first), the
/// policy, the job the address resolves to, and the connection.
struct JobStart {
    hooks: Vec<String>,
    policy: Policy,
    job: &'static dyn crate::jobs::Job,
    aws: Aws,
}

impl JobStart {
    /// Webhooks → policy → the job for `address` (or why there is none) →
    /// connect. `Err` is the exit code, the error already said.
    async fn new(
        g: &Global,
        kind: crate::jobs::JobKind,
        file: &Path,
        address: &str,
        notify: &JobNotify,
    ) -> Result<JobStart, u8> {
        let hooks = notify.hooks().map_err(|e| error(g, e))?;
        let policy = load_policy(g, file).ok_or(1u8)?;
        let job = crate::jobs::resolve(crate::providers::jobs(), kind, &policy, address).map_err(|e| error(g, e))?;
        let aws = connect(g, policy.default_region.as_deref()).await;
        Ok(JobStart { hooks, policy, job, aws })
    }

    fn ctx(&self, operator: Option<&str>) -> crate::jobs::JobCtx<'_> {
        crate::jobs::JobCtx {
            aws: &self.aws,
            default_region: self.aws.default_region().unwrap_or("us-east-1").to_string(),
            operator: self::operator(operator),
            pending: Default::default(),
            target_time: None,
            into: None,
        }
    }
}

/// Post a job's outcome to every webhook; a delivery that fails is one
/// line on stderr and never changes the job's exit code.
async fn notify_job(g: &Global, hooks: &[String], format: crate::notify::NotifyFormat, run: &crate::notify::JobRun) {
    if hooks.is_empty() {
        return;
    }
    let body = crate::notify::job_message(format, run);
    for hook in hooks {
        match crate::notify::deliver(hook, &body, crate::notify::DELIVERY_BUDGET).await {
            Ok(()) => note(g, format!("notify: posted to {}", crate::notify::shown(hook))),
            Err(e) => {
                let _ = error(g, format!("notify: {e}"));
            }
        }
    }
}

/// Who runs a job, for its record: as given, else $SUOOPS_OPERATOR,
/// $GITHUB_ACTOR, $USER.
fn operator(given: Option<&str>) -> String {
    given
        .map(str::to_string)
        .or_else(|| ["SUOOPS_OPERATOR", "GITHUB_ACTOR", "USER"].iter().find_map(|v| std::env::var(v).ok()))
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// The run's AWS connection; `default_region` is the policy's `aws.region`.
async fn connect(g: &Global, default_region: Option<&str>) -> Aws {
    let opts = AwsOptions {
        endpoint_url: g.endpoint_url.clone().filter(|e| !e.is_empty()),
        region: g.region.clone(),
        profile: g.profile.clone(),
        concurrency: g.concurrency as usize,
        verbose: g.verbose > 0,
        wait: std::time::Duration::from_secs(u64::from(g.wait)),
    };
    Aws::load(&opts, default_region).await
}

/// What plan starts from: the targets and what was observed.
pub(crate) struct Prepared {
    pub targets: crate::model::Targets,
    pub snapshot: crate::engine::Snapshot,
}

/// The one preamble: load the policy → apply `--target` → connect →
/// observe. `Err` is the exit code, the error already said. (The audit
/// observes with `engine::observe_all`: an unreachable system does not
/// stop it.)
pub(crate) async fn prepare(g: &Global, file: &Path, targets: &TargetArg, evidence: bool) -> Result<Prepared, u8> {
    let policy = load_policy(g, file).ok_or(1u8)?;
    let (targets, policy) = targets.apply(g, policy).ok_or(1u8)?;
    let (_, snapshot) = connect_and_observe(g, &policy, evidence).await?;
    Ok(Prepared { targets, snapshot })
}

/// Connect for the policy's default region and observe what it names.
pub(crate) async fn connect_and_observe(
    g: &Global,
    policy: &Policy,
    evidence: bool,
) -> Result<(Aws, crate::engine::Snapshot), u8> {
    let aws = connect(g, policy.default_region.as_deref()).await;
    match observe(g, &aws, policy, evidence).await {
        Ok(s) => Ok((aws, s)),
        Err(e) => Err(error(g, e)),
    }
}

/// Observe everything the policy names; with `-v`, say how long it took.
async fn observe(
    g: &Global,
    aws: &Aws,
    policy: &Policy,
    evidence: bool,
) -> Result<crate::engine::Snapshot, crate::engine::RunError> {
    let start = std::time::Instant::now();
    let progress = Progress::start(g, aws, "reading the live state");
    let obs = crate::engine::observe(aws, policy, g.concurrency as usize, evidence).await;
    progress.finish();
    let obs = obs?;
    if g.verbose > 0 {
        eprintln!(
            "observed {} resource(s) with {} API call(s) in {} ms",
            obs.len(),
            aws.calls(),
            start.elapsed().as_millis()
        );
    }
    Ok(obs)
}

/// A spinner on stderr with the API calls made so far, shown only when
/// stderr is a terminal and not `-q` (CI logs stay clean).
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn start(g: &Global, aws: &Aws, what: &'static str) -> Progress {
        use std::io::IsTerminal;
        if g.quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None, ticker: None };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let (b2, a2) = (bar.clone(), aws.clone());
        let ticker = tokio::spawn(async move {
            loop {
                let waiting = a2.waiting().map(|w| format!(" — waiting for AWS to report {w}")).unwrap_or_default();
                b2.set_message(format!("{what}: {} API calls{waiting}", a2.calls()));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        });
        Progress { bar: Some(bar), ticker: Some(ticker) }
    }

    pub(crate) fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// Write through a temporary file beside `path` and rename it into place,
/// so a failure never leaves a half-written file and a reader (a collector,
/// the next run) never sees one.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn error(g: &Global, msg: impl std::fmt::Display) -> u8 {
    let p = crate::render::Paint { on: g.color.enabled_for_stderr() };
    eprintln!("{} {msg}", p.red("error:"));
    1
}

fn note(g: &Global, msg: impl std::fmt::Display) {
    if !g.quiet {
        eprintln!("{msg}");
    }
}

/// Write `text` to stdout; a closed pipe is not an error worth a panic.
fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}
