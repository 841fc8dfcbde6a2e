//! Drives a run over the provider registry: observe every kind
//! concurrently, diff each, judge controls, and apply kinds in the order
//! their `after` relation gives (each kind starts once the kinds it names
//! are done; independent kinds run alongside), verifying each by re-reading.
//! It never names a system: providers do the talking.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::{FutureExt, LocalBoxFuture, Shared};

use crate::audit::{ControlResult, Report};
use crate::aws::Aws;
use crate::model::{Address, Applied, Change, Fatal, Plan, Targets};
use crate::policy::Policy;
use crate::providers::{self, Ctx, Observation, Prior};

/// A run-level failure: one line for the user, exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Fatal(String),
}

/// Everything observed in one run: one observation per registered kind,
/// in registry order.
pub struct Snapshot {
    pub parts: Vec<Box<dyn Observation>>,
}

impl Snapshot {
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
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
            for (addr, v) in p.fingerprints() {
                by.entry(addr.to_string()).or_default().insert(p.kind().to_string(), v);
            }
        }
        by.into_iter()
            .map(|(a, m)| (a, crate::model::sha256_hex(serde_json::Value::Object(m).to_string().as_bytes())))
            .collect()
    }
}

/// A provider's run-stopping error, with the endpoint it was talking to.
pub(crate) fn fatal(aws: &Aws) -> impl Fn(Fatal) -> RunError + '_ {
    move |f: Fatal| match f.input {
        true => RunError::Fatal(f.message),
        false => RunError::Fatal(format!("{} (endpoint: {})", f.message, aws.endpoint_for_humans())),
    }
}

/// Observe every resource the policy names: all kinds concurrently.
pub async fn observe(aws: &Aws, policy: &Policy, concurrency: usize, evidence: bool) -> Result<Snapshot, RunError> {
    let ctx = Ctx { aws, concurrency, evidence, verify_download: false };
    let parts = futures::future::try_join_all(providers::REGISTRY.iter().map(|p| p.observe(&ctx, policy)))
        .await
        .map_err(fatal(aws))?;
    Ok(Snapshot { parts })
}

/// Observe for the audit: a kind that cannot be observed at all (the
/// endpoint unreachable, no credentials) does not stop the run; its
/// resources are reported with every control unknown, and the reason is
/// returned once per distinct failure, so a scheduled audit still writes
/// its report and alerts exactly when something is badly wrong. Evidence
/// is read; with `verify_download`, a backup S3 holds no comparable
/// checksum of is downloaded and hashed.
pub async fn observe_all(
    aws: &Aws,
    policy: &Policy,
    concurrency: usize,
    verify_download: bool,
) -> (Snapshot, Vec<String>) {
    let ctx = Ctx { aws, concurrency, evidence: true, verify_download };
    let results = futures::future::join_all(providers::REGISTRY.iter().map(|p| p.observe(&ctx, policy))).await;
    let mut errors: Vec<String> = Vec::new();
    let parts = providers::REGISTRY
        .iter()
        .zip(results)
        .map(|(p, r)| {
            r.unwrap_or_else(|f| {
                let RunError::Fatal(reason) = fatal(aws)(f);
                let part = p.unobserved(&ctx, policy, &reason);
                if !errors.contains(&reason) {
                    errors.push(reason);
                }
                part
            })
        })
        .collect();
    (Snapshot { parts }, errors)
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

/// Every kind's diff, grouped by resource.
pub fn plan(snap: &Snapshot) -> Plan {
    Plan::new(grouped(snap.parts.iter().flat_map(|p| p.diff()).collect()))
}

pub fn audit(snap: &Snapshot) -> Report {
    let controls: Vec<ControlResult> = snap.parts.iter().flat_map(|p| p.controls(&p.diff())).collect();
    let mut report = Report::new(controls);
    report.identities = snap.parts.iter().flat_map(|p| p.identities()).collect();
    report.key_policies = snap.parts.iter().flat_map(|p| p.key_policies()).collect();
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
    let ctx = &Ctx { aws, concurrency, evidence: false, verify_download: false };
    let mut plan = plan(snap).changes;
    targets.restrict(&mut plan);
    let plan = &plan;
    let mut runs: BTreeMap<&'static str, KindRun<'_>> = BTreeMap::new();
    for provider in providers::apply_order() {
        let Some(part) = snap.parts.iter().find(|p| p.kind() == provider.kind()) else { continue };
        let deps: Vec<KindRun<'_>> = provider.after().iter().filter_map(|k| runs.get(k).cloned()).collect();
        let run = async move {
            let mut applied_before = Vec::new();
            for d in futures::future::join_all(deps).await {
                applied_before.extend(d?);
            }
            let mut changes = part.diff();
            targets.restrict(&mut changes);
            if !changes.iter().any(Change::is_actionable) {
                return Ok(Vec::new());
            }
            let prior = Prior { applied: &applied_before, plan };
            let done = part.apply(ctx, &changes, prior).await?;
            verify(ctx, part.as_ref(), done, targets, on_done).await
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
        let done = applied_reads >= 2 || (differs && stable_since.elapsed() >= STABLE);
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
