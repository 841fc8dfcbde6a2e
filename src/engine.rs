//! Drives a run: observe every resource the policy names (concurrently,
//! bounded by `--concurrency`), diff each, and apply in order. Providers do
//! the talking; this module only sequences them.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::audit::{ControlResult, Report};
use crate::aws::Aws;
use crate::model::{Address, Change, Plan};
use crate::policy::{BucketSpec, Policy};
use crate::providers::s3::{self, apply::StepOutcome, observe::Fatal, BucketState};

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
}

impl Observation {
    /// The bucket's change first, then its sub-resources'.
    pub fn changes(&self) -> Vec<Change> {
        s3::diff::diff(&self.spec, &self.region, &self.state)
    }
}

/// Observe every bucket of the policy.
pub async fn observe(
    aws: &Aws,
    policy: &Policy,
    concurrency: usize,
) -> Result<Vec<Observation>, RunError> {
    let default = aws.default_region().map(str::to_string);
    let mut jobs = Vec::with_capacity(policy.buckets.len());
    for spec in &policy.buckets {
        let region = match spec.region.clone().or_else(|| default.clone()) {
            Some(r) => r,
            None => {
                return Err(RunError::NoRegion {
                    bucket: spec.name.clone(),
                })
            }
        };
        jobs.push((spec, region));
    }
    let mut out: Vec<Observation> = stream::iter(jobs)
        .map(|(spec, region)| async move {
            let state = s3::observe::observe(aws, spec, &region)
                .await
                .map_err(|Fatal(m)| {
                    RunError::Fatal(format!("{m} (endpoint: {})", aws.endpoint_for_humans()))
                })?;
            Ok::<_, RunError>(Observation {
                spec: spec.clone(),
                region,
                state,
            })
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(out)
}

pub fn plan(observations: &[Observation]) -> Plan {
    Plan::new(observations.iter().flat_map(Observation::changes).collect())
}

pub fn audit(observations: &[Observation]) -> Report {
    let mut controls: Vec<ControlResult> = Vec::new();
    for o in observations {
        let changes = o.changes();
        controls.extend(s3::controls::controls(
            &o.spec, &o.region, &o.state, &changes,
        ));
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
/// not a manual step. Each bucket is independent; within a bucket the
/// provider keeps the safe order. Each is re-observed afterwards to verify.
pub async fn apply(
    aws: &Aws,
    observations: &[Observation],
    concurrency: usize,
) -> Result<Vec<Applied>, RunError> {
    let todo: Vec<(&Observation, Vec<Change>)> = observations
        .iter()
        .map(|o| (o, o.changes()))
        .filter(|(_, c)| c[0].conflicts.is_empty() && c.iter().any(Change::is_actionable))
        .collect();
    let mut out: Vec<Applied> = stream::iter(todo)
        .map(|(o, changes)| async move {
            let steps = s3::apply::apply(aws, &o.spec, &o.region, &o.state, &changes).await;
            let mut did_not_take = Vec::new();
            if steps.iter().all(|s| s.result.is_ok()) {
                let after = s3::observe::observe(aws, &o.spec, &o.region).await?;
                for again in s3::diff::diff(&o.spec, &o.region, &after) {
                    if again.is_actionable() && again.attributes.is_empty() {
                        did_not_take.push(
                            format!("{} (still to {:?})", again.address, again.action)
                                .to_lowercase(),
                        );
                    } else if again.is_actionable() {
                        did_not_take.extend(
                            again
                                .attributes
                                .iter()
                                .map(|a| format!("{} {}", again.address, a.name)),
                        );
                    }
                    did_not_take.extend(again.unknown.iter().map(|u| {
                        format!("{} {} (unknown: {})", again.address, u.attribute, u.reason)
                    }));
                }
            }
            Ok::<_, RunError>(Applied {
                address: changes[0].address.clone(),
                steps,
                did_not_take,
            })
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}
