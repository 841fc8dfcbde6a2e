//! The provider contract and the one registry. Every managed system (S3
//! buckets, their replication, IAM, Redis, PostgreSQL) implements
//! [`Provider`] and declares as data its kind, what it comes after in
//! apply, its audit controls and the API operations it may call; its
//! observation ([`Observation`]) diffs, judges controls, fingerprints and
//! applies itself. The engine, saved plans, `--target`, `permissions`,
//! waiver validation and objectives iterate [`REGISTRY`] and never name a
//! system. Adding a system: a folder here, one line in `REGISTRY`, one
//! field in the policy (see ARCHITECTURE.md, "Adding a system").

pub mod iam;
pub mod instances;
pub mod kms;
pub mod objectives;
pub mod postgres;
pub mod redis;
pub mod resources;
pub mod s3;

use std::collections::{BTreeMap, BTreeSet};

use futures::future::LocalBoxFuture;
use serde_json::Value;

use crate::aws::{Aws, Op};
use crate::jobs::{DrillDecl, Job};
use crate::model::control::{ControlDef, ControlResult};
use crate::model::{Address, Applied, AttrChange, Change, Fatal, StepId};
use crate::policy::Policy;

/// What a provider is given to talk to the live systems.
pub struct Ctx<'a> {
    pub aws: &'a Aws,
    /// Most API calls in flight (`--concurrency`).
    pub concurrency: usize,
    /// Read backup evidence too (audit only).
    pub evidence: bool,
    /// `audit --verify-download`: a backup whose checksum S3 cannot
    /// compare with its sidecar is downloaded and hashed.
    pub verify_download: bool,
    /// The other declared accounts the run reached, by id, each with its
    /// credentials: what a resource of this account names in another
    /// (a replica key in the backup account) is read there, since AWS
    /// resolves an alias only in the caller's own account (AWS KMS
    /// developer guide, "Using aliases": an alias cannot name a KMS key in
    /// a different AWS account).
    pub accounts: &'a [(String, Aws)],
}

impl<'a> Ctx<'a> {
    /// A context for the caller's account alone.
    pub fn new(aws: &'a Aws, concurrency: usize) -> Self {
        Ctx { aws, concurrency, evidence: false, verify_download: false, accounts: &[] }
    }

    /// The credentials of account `id`: this part's own when it is not a
    /// declared account the run reached.
    pub fn in_account(&self, id: Option<&str>) -> Option<&'a Aws> {
        match id {
            None => Some(self.aws),
            Some(id) => self.accounts.iter().find(|(a, _)| a == id).map(|(_, aws)| aws),
        }
    }
}

/// What apply tells a provider about the rest of the run.
pub struct Prior<'a> {
    /// Outcomes of the kinds this one comes after (see [`Provider::after`]).
    pub applied: &'a [Applied],
    /// The whole plan (after `--target`), for plan-time conflicts of
    /// resources another kind owns.
    pub plan: &'a [Change],
}

impl Prior<'_> {
    /// Did one of `steps` of the resource at `addr` fail earlier in this
    /// run (a dependent needs exactly those)?
    pub fn step_failed(&self, addr: &Address, steps: &[StepId]) -> bool {
        self.applied
            .iter()
            .filter(|a| a.address == *addr)
            .flat_map(|a| a.steps.iter())
            .any(|s| s.result.is_err() && steps.iter().any(|id| id.name == s.step))
    }

    /// Did a resource of the step's kind complete it in this run (e.g. a
    /// KMS alias made: what it names may take a moment to be visible)?
    pub fn made(&self, step: StepId) -> bool {
        let prefix = format!("{}.", step.kind);
        self.applied
            .iter()
            .filter(|a| a.address.as_str().starts_with(&prefix))
            .flat_map(|a| a.steps.iter())
            .any(|s| s.step == step.name && s.result.is_ok())
    }

    /// Is the resource at `addr` blocked by a plan-time conflict?
    pub fn conflicted(&self, addr: &Address) -> bool {
        self.plan.iter().any(|c| c.address == *addr && !c.conflicts.is_empty())
    }
}

/// What `import` was asked to read (the command line's names).
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub buckets: Vec<String>,
    pub all_buckets: bool,
    pub roles: Vec<String>,
    /// KMS keys by alias, `alias/NAME[@REGION]`.
    pub kms_keys: Vec<String>,
    /// (name, environment variable holding the URL).
    pub redis: Vec<(String, String)>,
    pub postgres: Vec<(String, String)>,
    /// Buckets already in the policy `--merge` adds to: not read again.
    pub skip_buckets: BTreeSet<String>,
    /// The environment the URLs are read from.
    pub env: BTreeMap<String, String>,
}

/// One provider's part of an imported policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Where the entries go in the file (`["s3", "buckets"]`).
    pub section: &'static [&'static str],
    /// What an entry is called in the summary line (`bucket(s)`).
    pub noun: &'static str,
    /// (name, its `NAME:` block at column 0), sorted by name.
    pub entries: Vec<(String, String)>,
    /// `ADDRESS SETTING: reason` for each setting that could not be read.
    pub unreadable: Vec<String>,
    /// Environment variables the entries refer to for values import does
    /// not write (they may hold a secret): (variable, what to set it to).
    pub variables: Vec<(String, String)>,
}

impl Imported {
    pub fn new(section: &'static [&'static str], noun: &'static str) -> Self {
        Imported { section, noun, entries: Vec::new(), unreadable: Vec::new(), variables: Vec::new() }
    }

    /// Each entry says it is in the declared account `name` (`account:`,
    /// its first setting).
    pub fn in_account(&mut self, name: &str) {
        for (_, block) in &mut self.entries {
            let (head, rest) = block.split_once('\n').unwrap_or((block.as_str(), ""));
            *block = format!("{head}\n  account: {name}\n{rest}");
        }
    }
}

/// A connection URL from the environment variable `import` was told.
pub(crate) fn url_from_env(
    env: &BTreeMap<String, String>,
    name: &str,
    var: &str,
    what: &str,
) -> Result<crate::policy::Secret, Fatal> {
    env.get(var).filter(|v| !v.is_empty()).cloned().map(crate::policy::Secret::new).ok_or_else(|| {
        Fatal::input(format!(
            "environment variable `{var}` (the URL of {what} `{name}`) is not set; export it, then run import again"
        ))
    })
}

/// What `validate` counts of one kind: how many the policy declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub n: usize,
    /// The noun for one and for many (`bucket`, `buckets`).
    pub one: &'static str,
    pub many: &'static str,
    /// Its key in `validate --format json`.
    pub key: &'static str,
}

/// What one audit read, for judging the objectives: every control, and
/// the roles' identity policies and the keys' policies as read.
pub struct Evidence<'a> {
    pub controls: &'a [ControlResult],
    pub identities: &'a [crate::iamdoc::Identity],
    pub key_policies: &'a [crate::iamdoc::KeyPolicy],
}

/// What a system judges of one objective: a verdict with its reasons
/// (None: it has no say on the verdict), the copies ERASURE-HORIZON
/// lists, and notes on what the verdict could not see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Judged {
    pub verdict: Option<crate::model::objective::Verdict>,
    pub reasons: Vec<String>,
    pub copies: Vec<crate::model::objective::CopyHorizon>,
    pub notes: Vec<String>,
}

impl Judged {
    /// Not met for `reasons`; no say when there are none.
    pub fn unless_empty(reasons: Vec<String>) -> Option<Judged> {
        (!reasons.is_empty()).then(|| Judged {
            verdict: Some(crate::model::objective::Verdict::NotMet),
            reasons,
            ..Judged::default()
        })
    }

    pub fn of((verdict, reasons): (crate::model::objective::Verdict, Vec<String>)) -> Judged {
        Judged { verdict: Some(verdict), reasons, ..Judged::default() }
    }
}

/// A managed system, declared as data plus one entry point (`observe`).
pub trait Provider: Sync {
    /// Its kind: `iam`, `kms`, `s3`, `s3.replication`, `redis`, `postgres`.
    fn kind(&self) -> &'static str;
    /// Kinds whose apply must finish before this one's starts.
    fn after(&self) -> &'static [&'static str] {
        &[]
    }
    /// What it is called in `--help` (`S3`, `PostgreSQL (pgBackRest)`);
    /// empty for a kind that is part of another's (replication).
    fn title(&self) -> &'static str;
    /// Its audit controls.
    fn controls(&self) -> &'static [ControlDef];
    /// The API operations it may call, with their IAM actions.
    fn ops(&self) -> &'static [Op] {
        &[]
    }
    /// Its jobs (`backup run`, `restore-drill`), declared like its controls.
    fn jobs(&self) -> &'static [&'static dyn Job] {
        &[]
    }
    /// The top-level addresses of this kind the policy names (`s3.B`,
    /// `iam.role.N`…), for `--target` and messages.
    fn addresses(&self, policy: &Policy) -> Vec<Address>;
    /// The resources its part of the policy gives the tool's operations on
    /// `on` (`permissions -f POLICY`): `arn:aws:s3:::B` for each bucket…
    fn scope(&self, _policy: &Policy, _on: crate::aws::On) -> Vec<String> {
        Vec::new()
    }
    /// Statements beyond its operations, for a command (`permissions`);
    /// `None`: no policy, as broad as any policy could need.
    fn grants(&self, _policy: Option<&Policy>) -> Vec<crate::aws::Grant> {
        Vec::new()
    }
    /// Does control result `c` (one of its own) feed `objective`? As its
    /// definition says, unless the system knows better of this policy.
    fn feeds(&self, c: &ControlResult, objective: &str, _policy: &Policy) -> bool {
        self.controls().iter().any(|d| d.id == c.id && d.objectives.contains(&objective))
    }
    /// What it alone can judge of `objective` (see [`Judged`]).
    fn judge(&self, _objective: &str, _ev: &Evidence<'_>, _policy: &Policy) -> Option<Judged> {
        None
    }
    /// The gauges it publishes from its controls' results (`audit
    /// --format openmetrics`), e.g. each backups entry's newest age.
    fn gauges(&self, _controls: &[ControlResult]) -> Vec<crate::model::control::Gauge> {
        Vec::new()
    }
    /// Is it reached through AWS (its resources need credentials and an
    /// account)?
    fn on_aws(&self) -> bool {
        false
    }
    /// The AWS regions its resources in the policy live in (`default`
    /// where the policy names none), for the report's header.
    fn regions(&self, _policy: &Policy, _default: &str) -> Vec<String> {
        Vec::new()
    }
    /// What `validate` says the policy declares of it.
    fn counts(&self, _policy: &Policy) -> Vec<Count> {
        Vec::new()
    }
    /// `import --merge`: drop from `req` what the policy already declares
    /// of this kind (kept as written, not read again); the addresses
    /// dropped.
    fn keep_existing(&self, _policy: &Policy, _req: &mut ImportRequest) -> Vec<String> {
        Vec::new()
    }
    /// Keep of its part of `policy` only what `targets` touches (the rest
    /// is neither read nor changed: `--target`).
    fn restrict(&self, _policy: &mut Policy, _targets: &crate::model::Targets) {}
    /// Keep of its part of `policy` only the resources in the account a
    /// part of the run observes: those whose `account:` `here` accepts
    /// (None: the resource names no account). Per-instance systems are not
    /// in an AWS account: they go with the caller's own part (`here(None)`).
    fn in_account(&self, policy: &mut Policy, here: &dyn Fn(Option<&str>) -> bool);
    /// The secret values its part of the policy resolved (connection URLs,
    /// commands written with `${VAR}`), for the last sweep over what the
    /// tool writes.
    fn secrets(&self, _policy: &Policy) -> Vec<String> {
        Vec::new()
    }
    /// Read what the policy mentions (the only reads).
    fn observe<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        policy: &'a Policy,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>>;
    /// What the audit reports when this kind could not be observed at all
    /// (`reason`: the endpoint is unreachable, no credentials…): every
    /// resource the policy names, every setting Unknown with the reason, so
    /// each control it would judge is reported unknown rather than missing.
    fn unobserved(&self, ctx: &Ctx<'_>, policy: &Policy, reason: &str) -> Box<dyn Observation>;
    /// Its part of `import`: read what the request names as if the policy
    /// mentioned every setting, and write its section's entries. None: the
    /// kind has no section of its own (replication is part of a bucket).
    fn import<'a>(
        &'a self,
        _ctx: &'a Ctx<'a>,
        _req: &'a ImportRequest,
        _default_region: Option<&'a str>,
    ) -> Option<LocalBoxFuture<'a, Result<Imported, Fatal>>> {
        None
    }
}

/// What one provider observed in one run.
pub trait Observation {
    fn kind(&self) -> &'static str;
    /// Resources observed.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Desired vs observed; pure.
    fn diff(&self) -> Vec<Change>;
    /// Audit controls from the observation and its diff; pure.
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult>;
    /// Per resource address, a canonical serialisation of the stable
    /// observed state (no counters): what a saved plan compares.
    fn fingerprints(&self) -> Vec<(Address, Value)>;
    /// The identity policies of the roles this kind read (IAM, audit
    /// only): what the objectives judge a role's real permissions by.
    fn identities(&self) -> Vec<crate::iamdoc::Identity> {
        Vec::new()
    }
    /// The KMS key policies this kind read (audit only): a key policy
    /// must allow a role before its IAM policies count.
    fn key_policies(&self) -> Vec<crate::iamdoc::KeyPolicy> {
        Vec::new()
    }
    /// Make the actionable `changes` (the only writes); one outcome per
    /// resource touched, `did_not_take` left empty for verify.
    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        changes: &'a [Change],
        prior: Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<Applied>, Fatal>>;
    /// Read again the resources at `addresses`, for verify.
    fn reobserve<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        addresses: &'a BTreeSet<Address>,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>>;
    /// A difference still seen after apply that is pending, not failed
    /// (e.g. a PostgreSQL setting waiting for a restart).
    fn pending(&self, _change: &Change, _attr: &AttrChange) -> bool {
        false
    }
}

/// Every managed system, in plan order. Apply order comes from `after`.
pub static REGISTRY: &[&dyn Provider] =
    &[&iam::Iam, &kms::Kms, &s3::Buckets, &s3::crr::Replication, &redis::REDIS, &postgres::POSTGRES];

/// The registry in apply order: each kind after the kinds it names in
/// `after` (a small dependency order; registry order breaks ties).
pub fn apply_order() -> Vec<&'static dyn Provider> {
    let mut done: Vec<&'static dyn Provider> = Vec::new();
    while done.len() < REGISTRY.len() {
        let next = REGISTRY.iter().find(|p| {
            !done.iter().any(|d| d.kind() == p.kind()) && p.after().iter().all(|a| done.iter().any(|d| d.kind() == *a))
        });
        match next {
            Some(p) => done.push(*p),
            // A cycle or an unknown kind: a programming error the unit test
            // below catches; never reached at run time.
            None => break,
        }
    }
    done
}

/// Every control id the tool reports, sorted (waivers name one of these).
pub fn control_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = REGISTRY.iter().flat_map(|p| p.controls().iter().map(|c| c.id)).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Every declared API operation of every provider and of its jobs.
pub fn operations() -> impl Iterator<Item = &'static Op> {
    REGISTRY.iter().flat_map(|p| p.ops().iter().chain(p.jobs().iter().flat_map(|j| j.ops().iter())))
}

/// Every job of every provider.
pub fn jobs() -> impl Iterator<Item = &'static dyn Job> {
    REGISTRY.iter().flat_map(|p| p.jobs().iter().copied())
}

/// Every restore drill the policy declares, whichever system's.
pub fn drills(policy: &Policy) -> Vec<DrillDecl> {
    jobs().flat_map(|j| j.drills(policy)).collect()
}

/// The systems the tool manages, for `--help`.
pub fn systems() -> String {
    REGISTRY.iter().map(|p| p.title()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(", ")
}

/// The top-level `--help` line.
pub fn about() -> String {
    format!("Keeps backup infrastructure ({}) in the state one YAML policy describes", systems())
}

/// The jobs of `kind`, one line each, for `--help`.
pub fn job_lines(kind: crate::jobs::JobKind) -> String {
    let lines: Vec<String> = jobs().filter(|j| j.kind() == kind).map(|j| format!("  {}", j.synopsis())).collect();
    lines.join("\n")
}

/// The addresses the jobs of `kind` take (`redis.NAME, postgres.NAME`),
/// for a one-line `--help`.
pub fn job_addresses(kind: crate::jobs::JobKind) -> String {
    let all: Vec<&str> =
        jobs().filter(|j| j.kind() == kind).map(|j| j.synopsis().split(':').next().unwrap_or_default()).collect();
    all.join(", ")
}

/// Does the policy name anything reached through AWS?
pub fn uses_aws(policy: &Policy) -> bool {
    REGISTRY.iter().any(|p| p.on_aws() && !p.addresses(policy).is_empty())
}

/// The AWS regions of the policy's resources, sorted; `default` when it
/// names none.
pub fn regions(policy: &Policy, default: &str) -> Vec<String> {
    let mut out: Vec<String> = REGISTRY.iter().flat_map(|p| p.regions(policy, default)).collect();
    if out.is_empty() {
        out.push(default.to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// What the policy declares, kind by kind, for `validate`.
pub fn counts(policy: &Policy) -> Vec<Count> {
    REGISTRY.iter().flat_map(|p| p.counts(policy)).collect()
}

/// Only the resources `targets` touches, of every kind (the others are
/// dropped: neither read nor changed).
pub fn restricted(policy: &Policy, targets: &crate::model::Targets) -> Policy {
    let mut out = policy.clone();
    for p in REGISTRY {
        p.restrict(&mut out, targets);
    }
    out
}

/// Only the resources of one part of the run (see `Provider::in_account`).
pub fn in_account(policy: &Policy, here: &dyn Fn(Option<&str>) -> bool) -> Policy {
    let mut out = policy.clone();
    for p in REGISTRY {
        p.in_account(&mut out, here);
    }
    // The copies of the backups are judged over the whole policy: a DR copy
    // is one of a source another part holds. This part keeps its buckets'.
    let mine: std::collections::BTreeSet<&str> = out.buckets.iter().map(|b| b.name.as_str()).collect();
    let copies = crate::policy::erasure::copies(policy).into_iter().filter(|c| mine.contains(c.bucket.as_str()));
    out.copies = copies.collect();
    out
}

/// Every secret value the policy resolved, and the password of each URL
/// among them, longest first: whatever path a value takes into a report,
/// the last sweep turns it into `(sensitive value)`.
pub fn sensitive_values(policy: &Policy) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // The accounts' external ids, and what each system resolved.
    let external = policy.accounts.iter().filter_map(|a| a.external_id.as_ref()).map(|e| e.expose().to_string());
    for value in external.chain(REGISTRY.iter().flat_map(|p| p.secrets(policy))) {
        if let Some(password) = crate::policy::url_password(&value) {
            out.push(password.to_string());
        }
        out.push(value);
    }
    // A short value would mask ordinary words; a real secret is longer.
    out.retain(|v| v.len() >= 4);
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

/// Every top-level address the policy names, kind by kind.
pub fn addresses(policy: &Policy) -> Vec<Address> {
    REGISTRY.iter().flat_map(|p| p.addresses(policy)).collect()
}

/// The definition of control `id`, whichever system declares it.
pub fn control_def(id: &str) -> Option<&'static ControlDef> {
    REGISTRY.iter().flat_map(|p| p.controls().iter()).find(|d| d.id == id)
}

/// Does the policy name anything at or under `target`?
pub fn matches(policy: &Policy, target: &str) -> bool {
    let all = addresses(policy);
    let t = crate::model::Targets::of(vec![target.to_string()]).among(all.iter().map(|a| a.as_str().to_string()));
    all.iter().any(|a| t.touches(a.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_order_puts_every_kind_after_what_it_names() {
        let order = apply_order();
        assert_eq!(order.len(), REGISTRY.len(), "a cycle or an unknown kind in `after`");
        for (i, p) in order.iter().enumerate() {
            for a in p.after() {
                let j = order.iter().position(|q| q.kind() == *a).expect("declared kind");
                assert!(j < i, "{} must come after {a}", p.kind());
            }
        }
        let kinds: Vec<&str> = order.iter().map(|p| p.kind()).collect();
        assert_eq!(kinds, ["iam", "kms", "s3", "s3.replication", "redis", "postgres"]);
    }

    #[test]
    fn control_ids_are_unique_across_providers() {
        let all: Vec<&str> = REGISTRY.iter().flat_map(|p| p.controls().iter().map(|c| c.id)).collect();
        let unique: BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len(), "{all:?}");
    }
}
