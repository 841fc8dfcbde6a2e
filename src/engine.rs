//! Drives a run: observe every resource the policy names (concurrently,
//! bounded by `--concurrency`), diff each, and apply in order. Providers do
//! the talking; this module only sequences them.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::audit::{ControlResult, Report};
use crate::aws::Aws;
use crate::model::Observed;
use crate::model::StepOutcome;
use crate::model::{Address, Change, Plan, Targets};
use crate::policy::{BucketSpec, Policy, Versioning};
use crate::policy::{PostgresSpec, RedisSpec};
use crate::providers::iam::{self, IamState};
use crate::providers::postgres::{self, PostgresState};
use crate::providers::redis::{self, RedisState};
use crate::providers::s3::evidence::Evidence;
use crate::providers::s3::{self, observe::Fatal, replication::Prerequisites, BucketState};

/// A run-level failure: one line for the user, exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Fatal(String),
    #[error("bucket `{bucket}` has no region: set `aws.region` in the policy or `region:` on the bucket, or pass --region / set AWS_REGION")]
    NoRegion { bucket: String },
}

impl From<Fatal> for RunError {
    fn from(f: Fatal) -> Self {
        RunError::Fatal(f.0)
    }
}

/// One bucket: what is wanted, where, and what was seen.
#[derive(Debug, Clone)]
pub struct Observation {
    pub spec: BucketSpec,
    pub region: String,
    pub state: BucketState,
    /// Backup evidence; read for `audit` only.
    pub evidence: Vec<Evidence>,
}

impl Observation {
    /// The bucket's change first, then its sub-resources'.
    pub fn changes(&self) -> Vec<Change> {
        let mut c = s3::diff::diff(&self.spec, &self.region, &self.state);
        crate::model::block_destruction_on_unknown(&mut c);
        c
    }
}

/// Observe every bucket of the policy.
/// Everything observed in one run.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub buckets: Vec<Observation>,
    pub iam: IamState,
    pub redis: Vec<(RedisSpec, RedisState)>,
    pub postgres: Vec<(PostgresSpec, PostgresState)>,
}

impl Snapshot {
    pub fn len(&self) -> usize {
        self.buckets.len() + self.iam.roles.len() + self.iam.policies.len() + self.redis.len() + self.postgres.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Observe every resource the policy names: IAM and buckets concurrently.
pub async fn observe(aws: &Aws, policy: &Policy, concurrency: usize, evidence: bool) -> Result<Snapshot, RunError> {
    let (iam, buckets, redis, postgres) = tokio::join!(
        iam::observe(aws, &policy.iam),
        observe_buckets(aws, policy, concurrency, evidence),
        futures::future::join_all(policy.redis.iter().map(|r| async move { (r.clone(), redis::observe(r).await) })),
        futures::future::join_all(
            policy.postgres.iter().map(|p| async move { (p.clone(), postgres::observe(p).await) })
        ),
    );
    Ok(Snapshot { iam: iam.map_err(fatal(aws))?, buckets: buckets?, redis, postgres })
}

async fn observe_buckets(
    aws: &Aws,
    policy: &Policy,
    concurrency: usize,
    evidence: bool,
) -> Result<Vec<Observation>, RunError> {
    let default = aws.default_region().map(str::to_string);
    let mut jobs = Vec::with_capacity(policy.buckets.len());
    for spec in &policy.buckets {
        let region = match spec.region.clone().or_else(|| default.clone()) {
            Some(r) => r,
            None => return Err(RunError::NoRegion { bucket: spec.name.clone() }),
        };
        jobs.push((spec, region));
    }
    let mut out: Vec<Observation> = stream::iter(jobs)
        .map(|(spec, region)| async move {
            let state = s3::observe::observe(aws, spec, &region, evidence).await.map_err(fatal(aws))?;
            let evidence = match state.bucket.present() {
                Some(actual) if evidence => s3::evidence::observe(aws, spec, actual).await.map_err(fatal(aws))?,
                _ if evidence => s3::evidence::without_bucket(spec, &state.bucket),
                _ => Vec::new(),
            };
            Ok::<_, RunError>(Observation { spec: spec.clone(), region, state, evidence })
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    let pre = prerequisites(aws, policy, &out, default.as_deref().unwrap_or("us-east-1"), concurrency).await?;
    for o in &mut out {
        if o.spec.replication.is_some() {
            o.state.prerequisites = pre.clone();
        }
    }
    Ok(out)
}

/// A provider's run-stopping error, with the endpoint it was talking to.
pub(crate) fn fatal(aws: &Aws) -> impl Fn(Fatal) -> RunError + '_ {
    move |Fatal(m)| RunError::Fatal(format!("{m} (endpoint: {})", aws.endpoint_for_humans()))
}

/// What replication needs from outside each bucket, read once per run:
/// each role's ARN and each destination the policy does not declare.
async fn prerequisites(
    aws: &Aws,
    policy: &Policy,
    observed: &[Observation],
    default_region: &str,
    concurrency: usize,
) -> Result<Prerequisites, RunError> {
    let mut pre = Prerequisites {
        in_policy_roles: policy.iam.roles.iter().filter(|r| !r.absent).map(|r| r.name.clone()).collect(),
        in_policy_versioned: policy
            .buckets
            .iter()
            .filter(|b| b.versioning == Some(Versioning::Enabled))
            .map(|b| b.name.clone())
            .collect(),
        ..Default::default()
    };
    let replicating: Vec<&Observation> =
        observed.iter().filter(|o| o.spec.replication.is_some() && o.state.bucket.unknown_reason().is_none()).collect();
    let mut roles: Vec<&str> =
        replicating.iter().filter_map(|o| o.spec.replication.as_ref()).map(|r| r.role.as_str()).collect();
    roles.sort();
    roles.dedup();
    let mut dests: Vec<&str> = replicating
        .iter()
        .filter_map(|o| o.spec.replication.as_ref())
        .flat_map(|r| r.rules.iter().map(|x| x.destination.as_str()))
        .filter(|d| !policy.buckets.iter().any(|b| b.name == *d))
        .collect();
    dests.sort();
    dests.dedup();
    let role_arns: Vec<(String, Observed<String>)> = stream::iter(roles)
        .map(|r| async move { s3::observe::role_arn(aws, r).await.map(|a| (r.to_string(), a)) })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
        .map_err(fatal(aws))?;
    let destinations: Vec<(String, Observed<bool>)> = stream::iter(dests)
        .map(|d| async move { s3::observe::destination(aws, default_region, d).await.map(|v| (d.to_string(), v)) })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
        .map_err(fatal(aws))?;
    pre.destinations = destinations.into_iter().collect();
    // Each bucket names its own role; store them all and let the diff pick.
    pre.roles = role_arns.into_iter().collect();
    Ok(pre)
}

/// IAM first (it is applied first), then each bucket with its parts.
pub fn plan(snap: &Snapshot) -> Plan {
    let mut changes = iam::diff(&snap.iam);
    changes.extend(snap.buckets.iter().flat_map(Observation::changes));
    changes.extend(snap.redis.iter().map(|(spec, state)| redis::diff(spec, state)));
    changes.extend(snap.postgres.iter().map(|(spec, state)| postgres::diff(spec, state)));
    Plan::new(changes)
}

pub fn audit(snap: &Snapshot) -> Report {
    let mut controls: Vec<ControlResult> = iam::controls(&snap.iam, &iam::diff(&snap.iam));
    for (spec, state) in &snap.redis {
        controls.extend(redis::controls(spec, state, &redis::diff(spec, state)));
    }
    for (spec, state) in &snap.postgres {
        controls.extend(postgres::controls(spec, state, &postgres::diff(spec, state)));
    }
    for o in &snap.buckets {
        let changes = o.changes();
        controls.extend(s3::controls::controls(&o.spec, &o.region, &o.state, &changes));
        controls.extend(s3::evidence::controls(&o.spec, &o.evidence, o.state.lifecycle.as_ref()));
    }
    Report::new(controls)
}

/// What apply did to one bucket and its sub-resources.
#[derive(Debug, Clone)]
pub struct Applied {
    pub address: Address,
    pub steps: Vec<StepOutcome>,
    /// Attributes that still differ when re-read after apply.
    pub did_not_take: Vec<String>,
}

impl Applied {
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.result.is_err()) || !self.did_not_take.is_empty()
    }
}

/// Apply every change that can be applied: not unknown, not in conflict,
/// not a manual step. Phase one makes each bucket (create, versioning,
/// encryption, public access, policy, lifecycle), buckets in parallel;
/// phase two writes replication, once the bucket and every destination it
/// names went through phase one. A failed step skips what depends on it;
/// independent buckets go on. Every touched bucket is re-read to verify.
/// Told about each resource as soon as its steps are done and verified
/// (the journal).
pub type OnApplied<'a> = &'a (dyn Fn(&Applied) + Sync);

pub async fn apply(
    aws: &Aws,
    snap: &Snapshot,
    concurrency: usize,
    targets: &Targets,
    on_done: OnApplied<'_>,
) -> Result<Vec<Applied>, RunError> {
    // Phase zero: IAM (managed policies, then roles), so replication finds
    // its role.
    let mut iam_changes = iam::diff(&snap.iam);
    targets.restrict(&mut iam_changes);
    let mut iam_results: Vec<Applied> = Vec::new();
    if iam_changes.iter().any(Change::is_actionable) {
        let done = iam::apply(aws, &snap.iam, &iam_changes).await;
        let after = iam::observe(aws, &iam_spec(&snap.iam)).await.map_err(fatal(aws))?;
        let mut again = iam::diff(&after);
        targets.restrict(&mut again);
        for d in done {
            let prefix = format!("{}.", d.address.0);
            let mut did_not_take = Vec::new();
            if d.steps.iter().all(|s| s.result.is_ok()) {
                for c in again.iter().filter(|c| c.address == d.address || c.address.0.starts_with(&prefix)) {
                    if c.is_actionable() {
                        did_not_take.push(format!("{} (still to {:?})", c.address, c.action).to_lowercase());
                    }
                }
            }
            let applied = Applied { address: d.address, steps: d.steps, did_not_take };
            on_done(&applied);
            iam_results.push(applied);
        }
    }
    // Redis and PostgreSQL are independent of AWS and of each other.
    let stores = stores_apply(snap, targets, on_done);
    let observations = &snap.buckets;
    let todo: Vec<(&Observation, Vec<Change>)> = observations
        .iter()
        .map(|o| {
            let mut c = o.changes();
            targets.restrict(&mut c);
            (o, c)
        })
        .filter(|(_, c)| c[0].conflicts.is_empty() && c.iter().any(Change::is_actionable))
        .collect();
    let phase1: Vec<(String, Vec<StepOutcome>)> = stream::iter(todo.iter())
        .map(|(o, changes)| async move {
            (o.spec.name.clone(), s3::apply::apply(aws, &o.spec, &o.region, &o.state, changes).await)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut steps: BTreeMap<String, Vec<StepOutcome>> = phase1.into_iter().collect();
    let failed: BTreeSet<String> =
        steps.iter().filter(|(_, s)| s.iter().any(|x| x.result.is_err())).map(|(n, _)| n.clone()).collect();
    let phase2: Vec<(String, Option<StepOutcome>)> = stream::iter(todo.iter())
        .map(|(o, changes)| {
            let failed = &failed;
            async move {
                let blocked = o.spec.replication.as_ref().and_then(|r| {
                    std::iter::once(o.spec.name.as_str())
                        .chain(r.rules.iter().map(|x| x.destination.as_str()))
                        .find(|b| failed.contains(*b))
                });
                let outcome = match blocked {
                    Some(b) => Some(StepOutcome {
                        step: "replication",
                        result: Err(format!("skipped: bucket `{b}` did not apply")),
                    }),
                    None => s3::apply::apply_replication(aws, &o.spec, &o.region, &o.state, changes).await,
                };
                (o.spec.name.clone(), outcome)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (name, outcome) in phase2 {
        if let Some(step) = outcome {
            steps.entry(name).or_default().push(step);
        }
    }
    // Roles this apply created have an ARN now: read them once for the check.
    let mut fresh = observations.iter().find(|o| o.spec.replication.is_some()).map(|o| o.state.prerequisites.clone());
    if let Some(pre) = &mut fresh {
        for (role, arn) in pre.roles.iter_mut() {
            if arn.present().is_none() {
                *arn = s3::observe::role_arn(aws, role).await.map_err(fatal(aws))?;
            }
        }
    }
    let fresh = &fresh;
    let mut out: Vec<Applied> = stream::iter(todo.iter())
        .map(|(o, changes)| {
            let steps = steps.get(&o.spec.name).cloned().unwrap_or_default();
            async move {
                let mut did_not_take = Vec::new();
                if steps.iter().all(|s| s.result.is_ok()) {
                    let mut after = s3::observe::observe(aws, &o.spec, &o.region, false).await.map_err(fatal(aws))?;
                    after.prerequisites = fresh.clone().unwrap_or_default();
                    let mut again_all = s3::diff::diff(&o.spec, &o.region, &after);
                    targets.restrict(&mut again_all);
                    for again in again_all {
                        if again.is_actionable() && again.attributes.is_empty() {
                            did_not_take
                                .push(format!("{} (still to {:?})", again.address, again.action).to_lowercase());
                        } else if again.is_actionable() {
                            did_not_take
                                .extend(again.attributes.iter().map(|a| format!("{} {}", again.address, a.name)));
                        }
                        did_not_take.extend(
                            again
                                .unknown
                                .iter()
                                .map(|u| format!("{} {} (unknown: {})", again.address, u.attribute, u.reason)),
                        );
                    }
                }
                let applied = Applied { address: changes[0].address.clone(), steps, did_not_take };
                on_done(&applied);
                Ok::<_, RunError>(applied)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    out.sort_by(|a, b| a.address.cmp(&b.address));
    iam_results.extend(out);
    iam_results.extend(stores.await);
    Ok(iam_results)
}

/// Apply and verify every Redis and PostgreSQL change, concurrently.
async fn stores_apply(snap: &Snapshot, targets: &Targets, on_done: OnApplied<'_>) -> Vec<Applied> {
    let redis_jobs = snap.redis.iter().filter_map(|(spec, state)| {
        let change = redis::diff(spec, state);
        (change.is_actionable() && targets.covers(&change.address.0)).then_some(async move {
            let steps = redis::apply(spec, &change).await;
            let mut did_not_take = Vec::new();
            if steps.iter().all(|s| s.result.is_ok()) {
                let again = redis::diff(spec, &redis::observe(spec).await);
                did_not_take.extend(again.attributes.iter().map(|a| format!("{} {}", again.address, a.name)));
                did_not_take.extend(
                    again.unknown.iter().map(|u| format!("{} {} (unknown: {})", again.address, u.attribute, u.reason)),
                );
            }
            let applied = Applied { address: change.address.clone(), steps, did_not_take };
            on_done(&applied);
            applied
        })
    });
    let pg_jobs = snap.postgres.iter().filter_map(|(spec, state)| {
        let change = postgres::diff(spec, state);
        (change.is_actionable() && targets.covers(&change.address.0)).then_some(async move {
            let steps = postgres::apply(spec, &change).await;
            let mut did_not_take = Vec::new();
            if steps.iter().all(|s| s.result.is_ok()) {
                let after = postgres::observe(spec).await;
                let again = postgres::diff(spec, &after);
                // A setting that needs a restart is pending, not failed:
                // pg_settings shows the old value until the restart.
                let settings = after.settings.present();
                let pending = |name: &str| {
                    let restart = settings.and_then(|s| s.get(name)).is_some_and(|s| s.pending_restart);
                    // While archive_mode is off, pg_settings shows archive_command
                    // as "(disabled)": it cannot be read back before the restart
                    // that turns archiving on.
                    let hidden = settings.and_then(|s| s.get(name)).is_some_and(|s| s.value == "(disabled)");
                    restart || hidden
                };
                for a in &again.attributes {
                    if !pending(&a.name) {
                        did_not_take.push(format!("{} {}", again.address, a.name));
                    }
                }
                did_not_take.extend(
                    again.unknown.iter().map(|u| format!("{} {} (unknown: {})", again.address, u.attribute, u.reason)),
                );
            }
            let applied = Applied { address: change.address.clone(), steps, did_not_take };
            on_done(&applied);
            applied
        })
    });
    let (mut r, p) = tokio::join!(futures::future::join_all(redis_jobs), futures::future::join_all(pg_jobs));
    r.extend(p);
    r
}

/// The specs of an observed IAM state (to observe it again).
fn iam_spec(state: &IamState) -> crate::policy::Iam {
    crate::policy::Iam {
        roles: state.roles.iter().map(|(s, _)| s.clone()).collect(),
        policies: state.policies.iter().map(|(s, _)| s.clone()).collect(),
    }
}
