//! Cross-region replication as its own kind, applied after every bucket
//! (`after: s3`): one apply on an empty estate creates roles, then buckets
//! and their versioning, then replication. It reads, once per run, what
//! replication needs from outside each bucket (each role's ARN, each
//! destination the policy does not declare).

use futures::future::{FutureExt, LocalBoxFuture};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::controls::{observed_json, result, CRR};
use super::replication::{self, Prerequisites, ReplicationDoc};
use super::{observe, region_of};
use crate::aws::ops;
use crate::aws::Op;
use crate::model::control::{ControlDef, ControlResult, Status};
use crate::model::{steps, Address, Applied, Change, Fatal, Observed};
use crate::policy::Policy;
use crate::providers::resources::{Resources, Seen};
use crate::providers::s3::section::{BucketSpec, Versioning};
use crate::providers::{Ctx, Observation, Prior, Provider};

/// The replication provider.
pub struct Replication;

const OPS: &[Op] =
    &[ops::GET_BUCKET_REPLICATION, ops::GET_ROLE, ops::PUT_BUCKET_REPLICATION, ops::DELETE_BUCKET_REPLICATION];

const CONTROLS: &[ControlDef] = &[CRR.control];

impl Provider for Replication {
    fn kind(&self) -> &'static str {
        "s3.replication"
    }
    fn title(&self) -> &'static str {
        ""
    }
    fn after(&self) -> &'static [&'static str] {
        &["iam", "kms", "s3"]
    }
    fn controls(&self) -> &'static [ControlDef] {
        CONTROLS
    }
    fn ops(&self) -> &'static [Op] {
        OPS
    }
    fn on_aws(&self) -> bool {
        true
    }
    fn scope(&self, policy: &Policy, on: crate::aws::On) -> Vec<String> {
        match on {
            crate::aws::On::Role => roles(policy).map(|r| format!("arn:aws:iam::*:role/{r}")).collect(),
            _ => Vec::new(),
        }
    }
    fn grants(&self, policy: Option<&Policy>) -> Vec<crate::aws::Grant> {
        let roles: Vec<String> = match policy {
            None => vec!["*".to_string()],
            Some(p) => roles(p).map(|r| format!("arn:aws:iam::*:role/{r}")).collect(),
        };
        if roles.is_empty() {
            return Vec::new();
        }
        vec![crate::aws::Grant {
            command: "apply",
            statement: serde_json::json!({
                "Sid": "PassReplicationRole", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": roles,
                "Condition": {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}
            }),
        }]
    }
    /// The buckets' part of the policy does it (`Buckets::in_account`):
    /// replication is read from the same buckets.
    fn in_account(&self, _policy: &mut Policy, _here: &dyn Fn(Option<&str>) -> bool) {}
    fn addresses(&self, policy: &Policy) -> Vec<Address> {
        policy.buckets.iter().filter(|b| b.replication.is_some()).map(|b| replication::address(&b.name)).collect()
    }
    fn unobserved(&self, ctx: &Ctx<'_>, policy: &Policy, reason: &str) -> Box<dyn Observation> {
        let default = ctx.aws.default_region();
        let buckets = policy
            .buckets
            .iter()
            .filter(|b| b.replication.is_some())
            .map(|b| Replicating {
                spec: b.clone(),
                region: region_of(b, default).unwrap_or_default(),
                doc: crate::model::Observed::Unknown { reason: reason.to_string() },
            })
            .collect();
        Box::new(Seen(ReplicationSeen { buckets, pre: from_policy(policy, default) }))
    }
    fn observe<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        policy: &'a Policy,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            let specs: Vec<&BucketSpec> = policy.buckets.iter().filter(|b| b.replication.is_some()).collect();
            let mut seen = read_all(ctx, &specs).await?;
            let pre = prerequisites(ctx, policy, &seen).await?;
            seen.pre = pre;
            Ok(Box::new(Seen(seen)) as Box<dyn Observation>)
        }
        .boxed_local()
    }
}

/// One replicating bucket's configuration as read.
#[derive(Debug, Clone)]
pub struct Replicating {
    pub spec: BucketSpec,
    pub region: String,
    pub doc: Observed<ReplicationDoc>,
}

/// Every replicating bucket of the policy, and the run-level prerequisites.
pub struct ReplicationSeen {
    pub buckets: Vec<Replicating>,
    pub pre: Prerequisites,
}

async fn read_all(ctx: &Ctx<'_>, specs: &[&BucketSpec]) -> Result<ReplicationSeen, Fatal> {
    let aws = ctx.aws;
    let default = aws.default_region();
    let jobs = specs.iter().map(|s| region_of(s, default).map(|r| (*s, r))).collect::<Result<Vec<_>, _>>()?;
    let mut buckets: Vec<Replicating> = stream::iter(jobs)
        .map(|(spec, region)| async move {
            let doc = observe::read_replication(aws, &aws.s3(&region), &spec.name).await?;
            Ok::<_, Fatal>(Replicating { spec: spec.clone(), region, doc })
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .try_collect()
        .await?;
    buckets.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(ReplicationSeen { buckets, pre: Prerequisites::default() })
}

/// The prerequisites the policy itself answers: its roles, its versioned
/// buckets and their regions.
fn from_policy(policy: &Policy, default_region: Option<&str>) -> Prerequisites {
    Prerequisites {
        in_policy_roles: policy.iam.roles.iter().filter(|r| !r.absent).map(|r| r.name.clone()).collect(),
        // A destination declared in another account counts as declared: the
        // policy says what it is, and its own account's part reads it.
        in_policy_versioned: policy
            .buckets
            .iter()
            .chain(&policy.elsewhere)
            .filter(|b| b.versioning == Some(Versioning::Enabled))
            .map(|b| b.name.clone())
            .collect(),
        regions: policy
            .buckets
            .iter()
            .chain(&policy.elsewhere)
            .filter_map(|b| region_of(b, default_region).ok().map(|r| (b.name.clone(), r)))
            .collect(),
        ..Default::default()
    }
}

/// What replication needs from outside each bucket, read once per run:
/// each role's ARN and each destination the policy does not declare.
async fn prerequisites(ctx: &Ctx<'_>, policy: &Policy, seen: &ReplicationSeen) -> Result<Prerequisites, Fatal> {
    let aws = ctx.aws;
    let default_region = aws.default_region().unwrap_or("us-east-1");
    let mut pre = from_policy(policy, aws.default_region());
    let readable: Vec<&Replicating> = seen.buckets.iter().filter(|o| o.doc.unknown_reason().is_none()).collect();
    let mut roles: Vec<&str> =
        readable.iter().filter_map(|o| o.spec.replication.as_ref()).map(|r| r.role.as_str()).collect();
    roles.sort();
    roles.dedup();
    let mut dests: Vec<&str> = readable
        .iter()
        .filter_map(|o| o.spec.replication.as_ref())
        .flat_map(|r| r.rules.iter().map(|x| x.destination.as_str()))
        .filter(|d| !policy.buckets.iter().chain(&policy.elsewhere).any(|b| b.name == *d))
        .collect();
    dests.sort();
    dests.dedup();
    // Replica keys named by a declared key's alias, each read in its own
    // region (the key's, else the destination's) and account (a key this
    // part's policy does not hold is the destination account's).
    let mut keys: Vec<(String, (String, Option<String>))> = readable
        .iter()
        .filter_map(|o| o.spec.replication.as_ref())
        .flat_map(|r| r.rules.iter())
        .filter_map(|r| {
            let alias = r.replica_kms_key.as_deref().filter(|k| replication::names_declared_key(k))?;
            let here = policy.kms.iter().find(|k| k.alias == alias);
            let region = here
                .map(|k| k.region_or(default_region).to_string())
                .or_else(|| pre.regions.get(&r.destination).cloned())
                .unwrap_or_else(|| default_region.to_string());
            let account = r.destination_account.clone().filter(|_| here.is_none());
            Some((alias.to_string(), (region, account)))
        })
        .collect();
    keys.sort();
    keys.dedup();
    pre.key_regions = keys.iter().cloned().collect();
    let concurrency = ctx.concurrency.max(1);
    pre.keys = stream::iter(keys)
        .map(|(alias, at)| async move {
            let arn = key_arn(ctx, &alias, &at).await?;
            Ok::<_, Fatal>((alias, arn))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    pre.roles = stream::iter(roles)
        .map(|r| async move { observe::role_arn(aws, r).await.map(|a| (r.to_string(), a)) })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    pre.destinations = stream::iter(dests)
        .map(|d| async move { observe::destination(aws, default_region, d).await.map(|v| (d.to_string(), v)) })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(pre)
}

impl Replicating {
    fn changes(&self, pre: &Prerequisites) -> Vec<Change> {
        let Some(want) = &self.spec.replication else { return Vec::new() };
        let mut c = replication::diff(&self.spec.name, want, &self.doc, pre);
        crate::model::block_destruction_on_unknown(&mut c);
        c
    }
}

impl Resources for ReplicationSeen {
    const KIND: &'static str = "s3.replication";
    type Item = Replicating;
    fn items(&self) -> &[Replicating] {
        &self.buckets
    }
    fn address(b: &Replicating) -> Address {
        Address::s3_bucket(&b.spec.name)
    }
    fn diff(&self) -> Vec<Change> {
        self.buckets.iter().flat_map(|b| b.changes(&self.pre)).collect()
    }
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult> {
        let mut out = Vec::new();
        for b in &self.buckets {
            let Some(want) = &b.spec.replication else { continue };
            let mine = crate::model::changes_under(changes, &replication::address(&b.spec.name));
            // Same-region replication is a copy, not a disaster-recovery copy.
            let same_region: Vec<String> = want
                .rules
                .iter()
                .filter(|r| self.pre.regions.get(&r.destination) == Some(&b.region))
                .map(|r| format!("rule {} copies to {} in the same region ({})", r.id, r.destination, b.region))
                .collect();
            let (status, detail) = if let Some(u) = mine.iter().find_map(|c| c.unknown.first()) {
                (Status::Unknown, Some(format!("{}: {}", u.attribute, u.reason)))
            } else if let Some(conflict) = mine.iter().find_map(|c| c.conflicts.first()) {
                (Status::Fail, Some(conflict.clone()))
            } else if !same_region.is_empty() {
                (Status::Fail, Some(same_region.join("; ")))
            } else {
                let bad: Vec<&str> = mine.iter().filter(|c| !c.is_noop()).map(|c| c.address.as_str()).collect();
                if bad.is_empty() {
                    (Status::Pass, None)
                } else {
                    (Status::Fail, Some(format!("differs: {}", bad.join(", "))))
                }
            };
            let observed = observed_json(&b.doc, |d| json!({"role": d.role, "rules": d.rules}));
            // The control stands on the bucket, as every bucket control does.
            let bucket = Change::new(Address::s3_bucket(&b.spec.name), crate::model::Action::NoOp);
            out.push(result(
                &CRR,
                &b.spec,
                &bucket,
                json!({"role": want.role, "rules": want.rules}),
                observed,
                status,
                detail,
                "write the replication configuration (suoops-policy apply)",
            ));
        }
        out
    }
    fn fingerprint(&self, b: &Replicating) -> Value {
        json!({"replication": b.doc, "prerequisites": self.pre})
    }
    fn apply_one<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        b: &'a Replicating,
        changes: &'a [Change],
        prior: &'a Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Option<Applied>, Fatal>> {
        async move {
            let bucket = Address::s3_bucket(&b.spec.name);
            let mine = crate::model::changes_under(changes, &replication::address(&b.spec.name));
            if prior.conflicted(&bucket) || !mine.iter().any(Change::is_actionable) {
                return Ok(None);
            }
            let Some(want) = b.spec.replication.as_ref() else { return Ok(None) };
            // Blocked at plan time (role missing, destination not
            // versioned…): said as skipped, with the reason, not
            // written and then reported as "still differs".
            let head = mine.iter().find(|c| c.address == replication::address(&b.spec.name));
            if let Some(conflict) = head.and_then(|h| h.conflicts.first()) {
                let step =
                    crate::model::StepOutcome { step: "replication", result: Err(format!("skipped: {conflict}")) };
                return Ok(Some(Applied { address: bucket, steps: vec![step], did_not_take: Vec::new() }));
            }
            // A failed step skips exactly its dependents: replication
            // needs the source and every destination created and
            // versioned (S3 refuses it otherwise), nothing else.
            let needs = [steps::S3_CREATE_BUCKET, steps::S3_VERSIONING];
            let blocked = std::iter::once(b.spec.name.as_str())
                .chain(want.rules.iter().map(|x| replication::bucket_of(&x.destination)))
                .find(|n| prior.step_failed(&Address::s3_bucket(n), &needs));
            let step = match blocked {
                Some(n) => crate::model::StepOutcome {
                    step: "replication",
                    result: Err(format!("skipped: bucket `{n}` did not apply")),
                },
                None => {
                    let step = super::apply::apply_replication(
                        ctx,
                        &b.spec,
                        &b.region,
                        Some(&b.doc),
                        &self.pre,
                        &mine,
                        prior.made(steps::KMS_ALIAS),
                    )
                    .await;
                    let Some(step) = step else { return Ok(None) };
                    step
                }
            };
            Ok(Some(Applied { address: bucket, steps: vec![step], did_not_take: Vec::new() }))
        }
        .boxed_local()
    }
    fn reread<'a>(&'a self, ctx: &'a Ctx<'a>, items: Vec<&'a Replicating>) -> LocalBoxFuture<'a, Result<Self, Fatal>> {
        async move {
            let specs: Vec<&BucketSpec> = items.iter().map(|b| &b.spec).collect();
            let mut seen = read_all(ctx, &specs).await?;
            // Roles this apply created have an ARN now: read them once.
            let mut pre = self.pre.clone();
            for (role, arn) in pre.roles.iter_mut() {
                if arn.present().is_none() {
                    *arn = observe::role_arn(ctx.aws, role).await?;
                }
            }
            // So have keys it created.
            for (alias, arn) in pre.keys.iter_mut() {
                if let (None, Some(at)) = (arn.present(), pre.key_regions.get(alias)) {
                    *arn = key_arn(ctx, alias, at).await?;
                }
            }
            seen.pre = pre;
            Ok(seen)
        }
        .boxed_local()
    }
}

/// The ARN of the key `alias` names, read in its region and account; unknown
/// when that account could not be reached.
async fn key_arn(
    ctx: &Ctx<'_>,
    alias: &str,
    (region, account): &(String, Option<String>),
) -> Result<Observed<String>, Fatal> {
    match ctx.in_account(account.as_deref()) {
        Some(aws) => Ok(observe::describe_key(aws, region, alias).await?.map(|f| f.arn)),
        None => Ok(Observed::Unknown {
            reason: format!(
                "the key is in account {}, which this run did not reach",
                account.as_deref().unwrap_or("?")
            ),
        }),
    }
}

/// The replication roles the policy's buckets name (by role name).
fn roles(policy: &Policy) -> impl Iterator<Item = &str> {
    policy.buckets.iter().filter_map(|b| b.replication.as_ref()).map(|r| crate::policy::role_name(&r.role))
}
