//! Drives a run over the provider registry: observe every kind
//! concurrently, diff each, judge controls, and apply kinds in the order
//! their `after` relation gives (each kind starts once the kinds it names
//! are done; independent kinds run alongside), verifying each by re-reading.
//! It never names a system: providers do the talking.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::{FutureExt, LocalBoxFuture, Shared};
use futures::StreamExt;

use crate::audit::{ControlResult, Report};
use crate::aws::{AccountError, Aws};
use crate::model::{Address, Applied, Change, Fatal, Plan, Targets};
use crate::policy::{Account, Policy};
use crate::providers::{self, Ctx, Observation, Prior};

/// A run-level failure: one line for the user, exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Fatal(String),
}

/// One part of a run: one kind's resources in one account, read with that
/// account's credentials.
pub struct Part {
    /// The declared account (`accounts:`); None: the caller's, undeclared,
    /// or a system in no AWS account (Redis, PostgreSQL).
    pub account: Option<String>,
    pub aws: Aws,
    pub obs: Box<dyn Observation>,
}

/// A declared account the run needed, and whether it reached it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reach {
    pub name: String,
    pub id: String,
    /// Why it could not be reached (its resources are unknown); None:
    /// reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

/// Everything observed in one run: each registered kind, in registry
/// order, for each account the policy's resources are in.
pub struct Snapshot {
    pub parts: Vec<Part>,
    pub accounts: Vec<Reach>,
}

impl Snapshot {
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.obs.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Per resource address, the SHA-256 of the canonical JSON of what every
    /// kind observed of it (stable settings only).
    pub fn fingerprints(&self) -> BTreeMap<String, String> {
        let mut by: BTreeMap<String, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
        // Keyed by the address text, as saved plans write them.
        for p in &self.parts {
            for (addr, v) in p.obs.fingerprints() {
                by.entry(addr.to_string()).or_default().insert(p.obs.kind().to_string(), v);
            }
        }
        by.into_iter()
            .map(|(a, m)| (a, crate::model::sha256_hex(serde_json::Value::Object(m).to_string().as_bytes())))
            .collect()
    }

    /// Each declared account the run reached, by id, with its credentials.
    pub fn reached(&self) -> Vec<(String, Aws)> {
        let of = |r: &Reach| {
            let part = self.parts.iter().find(|p| p.account.as_deref() == Some(r.name.as_str()))?;
            Some((r.id.clone(), part.aws.clone()))
        };
        self.accounts.iter().filter(|r| r.unreachable.is_none()).filter_map(of).collect()
    }
}

/// The line that says account `name` (`id`) could not be reached, and why.
pub fn unreachable(name: &str, id: &str, why: &dyn std::fmt::Display) -> String {
    format!("account {name} ({id}) is unreachable: {why}")
}

/// A provider's run-stopping error, with the endpoint it was talking to.
pub(crate) fn fatal(aws: &Aws) -> impl Fn(Fatal) -> RunError + '_ {
    move |f: Fatal| match f.input {
        true => RunError::Fatal(f.message),
        false => RunError::Fatal(format!("{} (endpoint: {})", f.message, aws.endpoint_for_humans())),
    }
}

/// One account's share of the run: its part of the policy and its
/// credentials, or why there are none.
struct Pass {
    account: Option<Account>,
    aws: Result<Aws, AccountError>,
    policy: Policy,
}

/// The run's passes: the caller's own account (resources that name no
/// account, or the declared account without a role, whose id the caller's
/// credentials must be in), then each declared account with a role that
/// resources name, its role assumed once, concurrently.
async fn passes(aws: &Aws, policy: &Policy) -> Vec<Pass> {
    let caller = policy.accounts.iter().find(|a| a.role.is_none());
    let mine = |a: Option<&str>| a.is_none() || a.is_some_and(|n| caller.is_some_and(|c| c.name == n));
    let own = providers::in_account(policy, &mine);
    let own_aws = match caller.filter(|_| providers::uses_aws(&own)) {
        Some(c) => match aws.account().await {
            Some(landed) if landed != c.id => {
                Err(AccountError::CallerElsewhere { landed, name: c.name.clone(), declared: c.id.clone() })
            }
            // Unknown: the kinds themselves say why AWS cannot be read.
            _ => Ok(aws.clone()),
        },
        None => Ok(aws.clone()),
    };
    let mut out = vec![Pass { account: caller.cloned(), aws: own_aws, policy: own }];
    let assumed = policy.accounts.iter().filter_map(|a| {
        let role = a.role.as_ref()?;
        let part = providers::in_account(policy, &|x| x == Some(a.name.as_str()));
        providers::uses_aws(&part).then_some(async move {
            let external = a.external_id.as_ref().map(|e| e.expose());
            let aws = aws.assume(&a.id, role, external, (&a.session_name, a.session_secs)).await;
            Pass { account: Some(a.clone()), aws, policy: part }
        })
    });
    out.extend(futures::future::join_all(assumed).await);
    out
}

/// How many accounts are observed at once. Each reads with its own
/// concurrency bound (AWS throttles per account and region), and a part is
/// handed on as soon as its account is read, so a run holds the
/// observations of this many accounts at a time, never the estate's.
const ACCOUNTS_AT_ONCE: usize = 2;

/// The declared accounts a run needed, and why each part could not be
/// read: what is left of a run once its parts are handed on.
pub struct Reached {
    pub accounts: Vec<Reach>,
    /// Why the run could not read everything: each account it could not
    /// reach, then each kind that could not be observed.
    pub unreached: Vec<String>,
}

/// Observe every resource the policy names, account by account (a few at
/// once), all kinds of an account concurrently, and hand each part to
/// `on_part` as soon as its account is read, in a fixed order (the
/// caller's account, then the declared ones). A kind that cannot be
/// observed at all (the endpoint unreachable, no credentials) is an error
/// with `strict` (plan, apply); otherwise (audit) its resources are
/// reported with every control unknown, and the reason is returned once
/// per distinct failure, so a scheduled audit still writes its report and
/// alerts exactly when something is badly wrong. An account that cannot be
/// reached never stops the others: its resources are unknown with the
/// reason, in every mode.
async fn each_part(
    aws: &Aws,
    policy: &Policy,
    ctx: Ctx<'_>,
    strict: bool,
    on_part: &mut dyn FnMut(Part),
) -> Result<Reached, RunError> {
    let passes = passes(aws, policy).await;
    let reached: Vec<(String, Aws)> =
        passes.iter().filter_map(|p| Some((p.account.as_ref()?.id.clone(), p.aws.as_ref().ok()?.clone()))).collect();
    let reached = &reached;
    let accounts: Vec<Reach> = passes
        .iter()
        .filter_map(|p| {
            let a = p.account.as_ref()?;
            Some(Reach {
                name: a.name.clone(),
                id: a.id.clone(),
                unreachable: p.aws.as_ref().err().map(AccountError::to_string),
            })
        })
        .collect();
    let mut errors: Vec<String> = Vec::new();
    // Each pass (its share of the policy) goes with its observation.
    let mut read = futures::stream::iter(
        passes.into_iter().map(|pass| async move { observe_pass(aws, &pass, Ctx { accounts: reached, ..ctx }).await }),
    )
    .buffered(ACCOUNTS_AT_ONCE);
    while let Some((parts, failed)) = read.next().await {
        for (part, failure) in parts.into_iter().zip(failed) {
            if let Some(reason) = failure {
                if strict {
                    return Err(RunError::Fatal(reason));
                }
                if !errors.contains(&reason) {
                    errors.push(reason);
                }
            }
            on_part(part);
        }
    }
    let unreached = accounts
        .iter()
        .filter_map(|r| r.unreachable.as_ref().map(|why| unreachable(&r.name, &r.id, why)))
        .chain(errors)
        .collect();
    Ok(Reached { accounts, unreached })
}

/// One account's parts, each kind's, with why a kind could not be
/// observed (its part then says unknown).
async fn observe_pass(aws: &Aws, pass: &Pass, ctx: Ctx<'_>) -> (Vec<Part>, Vec<Option<String>>) {
    let label = pass.account.as_ref().map(|a| a.name.clone());
    let here = pass.aws.as_ref().unwrap_or(aws);
    let pctx = Ctx { aws: here, ..ctx };
    let results = match &pass.aws {
        Ok(_) => futures::future::join_all(providers::REGISTRY.iter().map(|p| p.observe(&pctx, &pass.policy))).await,
        Err(why) => {
            let reason = match &pass.account {
                Some(a) => unreachable(&a.name, &a.id, why),
                None => why.to_string(),
            };
            providers::REGISTRY.iter().map(|p| Ok(p.unobserved(&pctx, &pass.policy, &reason))).collect()
        }
    };
    let mut parts = Vec::new();
    let mut failed = Vec::new();
    for (p, r) in providers::REGISTRY.iter().zip(results) {
        let (obs, failure) = match r {
            Ok(o) => (o, None),
            Err(f) => {
                let RunError::Fatal(reason) = fatal(here)(f);
                (p.unobserved(&pctx, &pass.policy, &reason), Some(reason))
            }
        };
        // Redis and PostgreSQL are in no AWS account.
        parts.push(Part { account: label.clone().filter(|_| p.on_aws()), aws: here.clone(), obs });
        failed.push(failure);
    }
    (parts, failed)
}

/// Observe every resource the policy names (plan, apply): see
/// `each_part`.
pub async fn observe(aws: &Aws, policy: &Policy, concurrency: usize, evidence: bool) -> Result<Snapshot, RunError> {
    let ctx = Ctx { evidence, ..Ctx::new(aws, concurrency) };
    let mut parts = Vec::new();
    let reached = each_part(aws, policy, ctx, true, &mut |p| parts.push(p)).await?;
    Ok(Snapshot { parts, accounts: reached.accounts })
}

/// Observe and judge for the audit: nothing stops the run (see
/// `each_part`); evidence is read, and with `verify_download` a backup S3
/// holds no comparable checksum of is downloaded and hashed. Each part is
/// judged as soon as its account is read and then dropped, so the audit
/// holds the controls of the estate, not its observations.
pub async fn audit_all(aws: &Aws, policy: &Policy, concurrency: usize, verify_download: bool) -> (Report, Reached) {
    let ctx = Ctx { evidence: true, verify_download, ..Ctx::new(aws, concurrency) };
    let mut report = Report::new(Vec::new());
    let mut judge = |p: Part| report.absorb(judged(&p), p.obs.identities(), p.obs.key_policies());
    match each_part(aws, policy, ctx, false, &mut judge).await {
        Ok(reached) => (report, reached),
        // Not strict: nothing is an error.
        Err(RunError::Fatal(e)) => (report, Reached { accounts: Vec::new(), unreached: vec![e] }),
    }
}

/// Changes grouped by resource, resources in the order they first appear
/// (registry order, then each kind's own order): a resource's parts that
/// another kind owns (a bucket's replication) follow the resource.
fn grouped(changes: Vec<Change>) -> Vec<Change> {
    let mut first: BTreeMap<Address, usize> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        first.entry(c.address.resource_addr()).or_insert(i);
    }
    let mut keyed: Vec<(usize, Change)> =
        changes.into_iter().map(|c| (first.get(&c.address.resource_addr()).copied().unwrap_or(0), c)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, c)| c).collect()
}

/// Every kind's diff, grouped by resource, each naming its account.
pub fn plan(snap: &Snapshot) -> Plan {
    let mut changes = Vec::new();
    for p in &snap.parts {
        changes.extend(p.obs.diff().into_iter().map(|mut c| {
            c.account = p.account.clone();
            c
        }));
    }
    Plan::new(grouped(changes))
}

/// One part's controls, each naming its account.
fn judged(p: &Part) -> Vec<ControlResult> {
    let mut mine = p.obs.controls(&p.obs.diff());
    for c in &mut mine {
        c.account = p.account.clone();
    }
    mine
}

/// Every kind's controls, each naming its account; what every account's
/// roles and keys allow, for the objectives.
pub fn audit(snap: &Snapshot) -> Report {
    let mut report = Report::new(Vec::new());
    for p in &snap.parts {
        report.absorb(judged(p), p.obs.identities(), p.obs.key_policies());
    }
    report
}

/// Told about each resource as soon as its steps are done and verified
/// (the journal).
pub type OnApplied<'a> = &'a (dyn Fn(&Applied) + Sync);

type KindRun<'a> = Shared<LocalBoxFuture<'a, Result<Vec<Applied>, Fatal>>>;

/// Apply every change that can be applied (not unknown, not in conflict,
/// not a manual step), kind by kind in dependency order: a kind starts when
/// the kinds it comes after are done, and gets their outcomes, so a failed
/// step skips exactly what depends on it while independent work goes on.
/// Every touched resource is re-read to verify.
pub async fn apply(
    aws: &Aws,
    snap: &Snapshot,
    concurrency: usize,
    targets: &Targets,
    on_done: OnApplied<'_>,
) -> Result<Vec<Applied>, RunError> {
    let mut plan = plan(snap).changes;
    targets.restrict(&mut plan);
    let plan = &plan;
    let reached = &snap.reached();
    let mut runs: BTreeMap<&'static str, KindRun<'_>> = BTreeMap::new();
    for provider in providers::apply_order() {
        // The kind's part in each account, each with that account's
        // credentials: they run alongside.
        let parts: Vec<&Part> = snap.parts.iter().filter(|p| p.obs.kind() == provider.kind()).collect();
        if parts.is_empty() {
            continue;
        }
        let deps: Vec<KindRun<'_>> = provider.after().iter().filter_map(|k| runs.get(k).cloned()).collect();
        let run = async move {
            let mut applied_before = Vec::new();
            for d in futures::future::join_all(deps).await {
                applied_before.extend(d?);
            }
            let applied_before = &applied_before;
            let each = parts.into_iter().map(|part| async move {
                let ctx = Ctx { accounts: reached, ..Ctx::new(&part.aws, concurrency) };
                let mut changes = part.obs.diff();
                targets.restrict(&mut changes);
                if !changes.iter().any(Change::is_actionable) {
                    return Ok(Vec::new());
                }
                let prior = Prior { applied: applied_before, plan };
                let done = part.obs.apply(&ctx, &changes, prior).await?;
                verify(&ctx, part.obs.as_ref(), done, targets, on_done).await
            });
            let mut out = Vec::new();
            for r in futures::future::join_all(each).await {
                out.extend(r?);
            }
            Ok(out)
        }
        .boxed_local()
        .shared();
        runs.insert(provider.kind(), run);
    }
    let mut by_kind = Vec::new();
    for p in providers::REGISTRY {
        if let Some(run) = runs.get(p.kind()) {
            by_kind.push(run.clone());
        }
    }
    let mut out: Vec<Applied> = Vec::new();
    for r in futures::future::join_all(by_kind).await {
        let mut r = r.map_err(fatal(aws))?;
        r.sort_by(|a, b| a.address.cmp(&b.address));
        for a in r {
            // A resource two kinds touched (a bucket and its replication)
            // is one outcome.
            match out.iter_mut().find(|o| o.address == a.address) {
                Some(o) => {
                    o.steps.extend(a.steps);
                    o.did_not_take.extend(a.did_not_take);
                }
                None => out.push(a),
            }
        }
    }
    Ok(out)
}

/// Re-read what `done` touched (when every step of it went through) and
/// report what still differs: the one "did this change take" check.
async fn verify(
    ctx: &Ctx<'_>,
    part: &dyn Observation,
    mut done: Vec<Applied>,
    targets: &Targets,
    on_done: OnApplied<'_>,
) -> Result<Vec<Applied>, Fatal> {
    let clean: BTreeSet<Address> =
        done.iter().filter(|d| d.steps.iter().all(|s| s.result.is_ok())).map(|d| d.address.clone()).collect();
    let again = if clean.is_empty() { Vec::new() } else { settled(ctx, part, &clean, targets).await? };
    for d in &mut done {
        if clean.contains(&d.address) {
            d.did_not_take = still_differs(&d.address, &again);
        }
        on_done(d);
    }
    Ok(done)
}

/// Re-read what apply touched until two consecutive reads show it applied
/// (AWS's configuration reads are eventually consistent: a Get right after
/// a Put may return the old document; terraform-provider-aws waits for two
/// consecutive matching reads, internal/service/s3/
/// bucket_lifecycle_configuration.go). A difference that has read the same
/// for `STABLE` is taken as real; `--wait` bounds the whole.
async fn settled(
    ctx: &Ctx<'_>,
    part: &dyn Observation,
    clean: &BTreeSet<Address>,
    targets: &Targets,
) -> Result<Vec<(Vec<bool>, Change)>, Fatal> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(200);
    const STABLE: std::time::Duration = std::time::Duration::from_secs(5);
    let mut applied_reads = 0;
    let mut stable_since = std::time::Instant::now();
    let mut previous: Option<Vec<(Address, serde_json::Value)>> = None;
    loop {
        let after = part.reobserve(ctx, clean).await?;
        let mut again = after.diff();
        targets.restrict(&mut again);
        let again: Vec<(Vec<bool>, Change)> =
            again.into_iter().map(|c| (after_pending(after.as_ref(), &c), c)).collect();
        let differs = clean.iter().any(|a| !still_differs(a, &again).is_empty());
        let seen = after.fingerprints();
        if previous.as_ref() != Some(&seen) {
            stable_since = std::time::Instant::now();
        }
        previous = Some(seen);
        if differs {
            applied_reads = 0;
        } else {
            applied_reads += 1;
        }
        // A resource this run made that reads as absent is AWS's eventual
        // consistency (a read right after CreateBucket may answer
        // NoSuchBucket for a while: AWS S3 user guide, "Amazon S3 data
        // consistency model"), never a change that did not take: it is
        // read again until the wait runs out, not given up after STABLE.
        let unborn = again.iter().any(|(_, c)| c.action == crate::model::Action::Create && clean.contains(&c.address));
        let done = applied_reads >= 2 || (differs && !unborn && stable_since.elapsed() >= STABLE);
        if done || start.elapsed() + pause > ctx.aws.wait() {
            if ctx.aws.waiting().is_some() {
                ctx.aws.waiting_for(None);
            }
            return Ok(again);
        }
        if differs {
            ctx.aws.waiting_for(Some(format!("the {} changes as applied ({} ms)", part.kind(), pause.as_millis())));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
}

/// For each attribute of `c`, whether it is pending rather than failed.
fn after_pending(after: &dyn Observation, c: &Change) -> Vec<bool> {
    c.attributes.iter().map(|a| after.pending(c, a)).collect()
}

fn still_differs(addr: &Address, again: &[(Vec<bool>, Change)]) -> Vec<String> {
    let mut out = Vec::new();
    for (pending, c) in again.iter().filter(|(_, c)| c.address.at_or_under(addr)) {
        let attrs: Vec<&str> =
            c.attributes.iter().zip(pending).filter(|(_, p)| !**p).map(|(a, _)| a.name.as_str()).collect();
        if c.is_actionable() && c.attributes.is_empty() {
            out.push(format!("{} (still to {:?})", c.address, c.action).to_lowercase());
        } else if c.is_actionable() {
            out.extend(attrs.iter().map(|a| format!("{} {a}", c.address)));
        }
        out.extend(c.unknown.iter().map(|u| format!("{} {} (unknown: {})", c.address, u.attribute, u.reason)));
    }
    out
}
