//! S3 buckets: existence and region, versioning, default encryption, public
//! access block, the TLS-only statement, lifecycle rules, MFA delete, and
//! the backup evidence audit reads. Replication is its own kind
//! (`crr.rs`), applied after every bucket.

pub mod access;
pub mod apply;
pub mod controls;
pub mod crr;
pub mod diff;
pub mod evidence;
pub mod grant;
pub mod import;
pub mod isolation;
pub mod lifecycle;
pub mod observe;
pub mod oldest;
pub mod replication;
pub mod section;
pub mod tls;

use futures::future::{FutureExt, LocalBoxFuture};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};

pub use observe::{BucketState, EncryptionState, PabState};

use super::resources::{Resources, Seen};
use super::{Ctx, ImportRequest, Imported, Observation, Prior, Provider};
use crate::aws::ops;
use crate::aws::Op;
use crate::model::control::{ControlDef, ControlResult};
use crate::model::{steps, Address, Applied, Change, Fatal};
use crate::policy::Policy;
use crate::providers::s3::section::BucketSpec;

/// The S3 bucket provider.
pub struct Buckets;

/// Every S3 operation the bucket provider may call.
const OPS: &[Op] = &[
    ops::HEAD_BUCKET,
    ops::GET_BUCKET_LOCATION,
    ops::GET_BUCKET_VERSIONING,
    ops::GET_BUCKET_ENCRYPTION,
    ops::GET_PUBLIC_ACCESS_BLOCK,
    ops::GET_BUCKET_LIFECYCLE_CONFIGURATION,
    ops::GET_BUCKET_POLICY,
    ops::GET_OBJECT_LOCK_CONFIGURATION,
    ops::GET_ROLE,
    ops::LIST_BUCKETS,
    ops::DESCRIBE_KEY,
    ops::GET_KEY_POLICY,
    ops::LIST_OBJECTS_V2,
    ops::LIST_OBJECT_VERSIONS,
    ops::GET_OBJECT,
    ops::HEAD_OBJECT,
    ops::CREATE_BUCKET,
    ops::PUT_BUCKET_VERSIONING,
    ops::PUT_BUCKET_ENCRYPTION,
    ops::PUT_PUBLIC_ACCESS_BLOCK,
    ops::PUT_BUCKET_LIFECYCLE_CONFIGURATION,
    ops::DELETE_BUCKET_LIFECYCLE,
    ops::PUT_BUCKET_POLICY,
    ops::DELETE_BUCKET_POLICY,
    ops::PUT_OBJECT_LOCK_CONFIGURATION,
    ops::PUT_OBJECT,
];

const CONTROLS: &[ControlDef] = &{
    let mut all = [controls::CONTROLS[0]; controls::CONTROLS.len() + evidence::CONTROLS.len()];
    let mut i = 0;
    while i < controls::CONTROLS.len() {
        all[i] = controls::CONTROLS[i];
        i += 1;
    }
    while i < all.len() {
        all[i] = evidence::CONTROLS[i - controls::CONTROLS.len()];
        i += 1;
    }
    all
};

/// The region a bucket must be in: its own, else the run's default.
pub fn region_of(spec: &BucketSpec, default: Option<&str>) -> Result<String, Fatal> {
    spec.region.clone().or_else(|| default.map(str::to_string)).ok_or_else(|| {
        Fatal::input(format!(
            "bucket `{}` has no region: set `aws.region` in the policy or `region:` on the bucket, or pass --region / set AWS_REGION",
            spec.name
        ))
    })
}

/// The bucket as the bucket kind reads it: replication is read by its own
/// kind, so it is left out here.
fn without_replication(spec: &BucketSpec) -> BucketSpec {
    BucketSpec { replication: None, ..spec.clone() }
}

impl Provider for Buckets {
    fn kind(&self) -> &'static str {
        "s3"
    }
    fn title(&self) -> &'static str {
        "S3"
    }
    fn after(&self) -> &'static [&'static str] {
        // Keys before the buckets that encrypt with them.
        &["iam", "kms"]
    }
    fn controls(&self) -> &'static [ControlDef] {
        CONTROLS
    }
    fn ops(&self) -> &'static [Op] {
        OPS
    }
    fn addresses(&self, policy: &Policy) -> Vec<Address> {
        policy.buckets.iter().map(|b| Address::s3_bucket(&b.name)).collect()
    }
    fn restrict(&self, policy: &mut Policy, targets: &crate::model::Targets) {
        policy.buckets.retain(|b| targets.touches(Address::s3_bucket(&b.name).as_str()));
    }
    fn in_account(&self, policy: &mut Policy, here: &dyn Fn(Option<&str>) -> bool) {
        let (mine, theirs): (Vec<BucketSpec>, Vec<BucketSpec>) =
            std::mem::take(&mut policy.buckets).into_iter().partition(|b| here(b.account.as_deref()));
        // Of the other accounts' buckets, only the destinations this
        // account's rules replicate into: a part never holds the estate.
        let dests: std::collections::BTreeSet<&str> = mine
            .iter()
            .filter_map(|b| b.replication.as_ref())
            .flat_map(|r| r.rules.iter().map(|x| x.destination.as_str()))
            .collect();
        policy.elsewhere.extend(theirs.into_iter().filter(|b| dests.contains(b.name.as_str())));
        policy.buckets = mine;
    }
    fn on_aws(&self) -> bool {
        true
    }
    fn regions(&self, policy: &Policy, default: &str) -> Vec<String> {
        policy.buckets.iter().map(|b| b.region_or(default).to_string()).collect()
    }
    fn scope(&self, policy: &Policy, on: crate::aws::On) -> Vec<String> {
        use crate::aws::On;
        let kms = |b: &&BucketSpec| b.encryption.as_ref().is_some_and(|e| e.kms_key.is_some());
        match on {
            On::Bucket => policy.buckets.iter().map(|b| format!("arn:aws:s3:::{}", b.name)).collect(),
            // The audit reads the backups entries' evidence.
            On::Objects => policy
                .buckets
                .iter()
                .filter(|b| !b.backups.is_empty())
                .map(|b| format!("arn:aws:s3:::{}/*", b.name))
                .collect(),
            // DescribeKey resolves an alias to its key, so no narrower
            // resource than the keys of the account can be named before
            // the read.
            On::Key if policy.buckets.iter().any(|b| kms(&b)) => vec!["arn:aws:kms:*:*:key/*".to_string()],
            _ => Vec::new(),
        }
    }
    fn feeds(&self, c: &ControlResult, objective: &str, policy: &Policy) -> bool {
        let declared = CONTROLS.iter().any(|d| d.id == c.id && d.objectives.contains(&objective));
        // Backup freshness feeds the RPO only for entries of 15 minutes or
        // less: a daily dump says nothing of a 15-minute loss.
        declared
            && (c.id != evidence::FRESHNESS.id
                || objective != "RPO-15MIN"
                || super::objectives::fast_entries(policy).contains(&c.address))
    }
    fn judge(&self, objective: &str, ev: &super::Evidence<'_>, policy: &Policy) -> Option<super::Judged> {
        use super::{objectives as o, Judged};
        match objective {
            "DR-COPY" => Judged::unless_empty(o::replication_key_access(ev, policy)),
            "IMMUTABILITY" => Some(Judged::of(o::immutability(ev, policy))),
            "ERASURE-HORIZON" => {
                let mut j = Judged::of(o::erasure_horizon(ev, policy));
                if j.verdict != Some(crate::model::objective::Verdict::NotEvaluated) {
                    j.copies = o::copy_table(ev, policy);
                }
                Some(j)
            }
            _ => None,
        }
    }
    fn gauges(&self, controls: &[ControlResult]) -> Vec<crate::model::control::Gauge> {
        evidence::gauges(controls)
    }
    fn grants(&self, policy: Option<&Policy>) -> Vec<crate::aws::Grant> {
        // Reading a sidecar from an SSE-KMS bucket decrypts it: GetObject
        // alone is denied (AWS S3 user guide, "Specifying server-side
        // encryption with AWS KMS (SSE-KMS)"); only through S3.
        let evidence = policy.is_none_or(|p| {
            p.buckets
                .iter()
                .any(|b| !b.backups.is_empty() && b.encryption.as_ref().is_some_and(|e| e.kms_key.is_some()))
        });
        if !evidence {
            return Vec::new();
        }
        vec![crate::aws::Grant {
            command: "audit",
            statement: json!({
                "Sid": "DecryptBackupEvidence", "Effect": "Allow", "Action": ["kms:Decrypt"],
                "Resource": ["arn:aws:kms:*:*:key/*"],
                "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
            }),
        }]
    }
    fn counts(&self, policy: &Policy) -> Vec<super::Count> {
        vec![super::Count { n: policy.buckets.len(), one: "bucket", many: "buckets", key: "buckets" }]
    }
    fn keep_existing(&self, policy: &Policy, req: &mut ImportRequest) -> Vec<String> {
        req.skip_buckets = policy.buckets.iter().map(|b| b.name.clone()).collect();
        let mut kept = Vec::new();
        let skip = &req.skip_buckets;
        req.buckets.retain(|b| {
            let has = skip.contains(b);
            if has {
                kept.push(format!("s3.{b}"));
            }
            !has
        });
        kept
    }
    fn import<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        req: &'a ImportRequest,
        default_region: Option<&'a str>,
    ) -> Option<LocalBoxFuture<'a, Result<Imported, Fatal>>> {
        Some(import::import(ctx, req, default_region).boxed_local())
    }
    fn unobserved(&self, ctx: &Ctx<'_>, policy: &Policy, reason: &str) -> Box<dyn Observation> {
        let declared: Vec<String> = policy.iam.roles.iter().filter(|r| !r.absent).map(|r| r.name.clone()).collect();
        let declared_drills = crate::providers::drills(policy);
        let copies = erasure_copies(ctx, policy);
        let unknown = crate::model::Observed::Unknown { reason: reason.to_string() };
        let buckets = policy
            .buckets
            .iter()
            .map(|full| {
                let spec = without_replication(full);
                let (evidence, drills, oldest) = if ctx.evidence {
                    (
                        evidence::without_bucket(full, &unknown),
                        evidence::drills_unread(&full.name, &declared_drills, reason),
                        oldest::unread(&full.name, &copies, reason),
                    )
                } else {
                    (Vec::new(), Vec::new(), Vec::new())
                };
                BucketSeen {
                    region: region_of(full, ctx.aws.default_region()).unwrap_or_default(),
                    state: observe::missing(&spec, ctx.evidence, unknown.clone()),
                    spec,
                    evidence,
                    drills,
                    oldest,
                }
            })
            .collect();
        Box::new(Seen(BucketsSeen { buckets, declared }))
    }
    fn observe<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        policy: &'a Policy,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            let declared: Vec<String> = policy.iam.roles.iter().filter(|r| !r.absent).map(|r| r.name.clone()).collect();
            let drills = crate::providers::drills(policy);
            let copies = erasure_copies(ctx, policy);
            let buckets = observe_buckets(ctx, &policy.buckets, ctx.evidence, &declared, &drills, &copies).await?;
            Ok(Box::new(Seen(BucketsSeen { buckets, declared })) as Box<dyn Observation>)
        }
        .boxed_local()
    }
}

/// The copies whose oldest versions the audit reads: when it reads
/// evidence and the policy asks for ERASURE-HORIZON.
fn erasure_copies(ctx: &Ctx<'_>, policy: &Policy) -> Vec<crate::policy::erasure::Copy> {
    if ctx.evidence && !policy.copies.is_empty() {
        // Judged over the whole policy when the run was cut into parts.
        policy.copies.clone()
    } else if ctx.evidence && crate::policy::erasure::evaluated(policy) {
        crate::policy::erasure::copies(policy)
    } else {
        Vec::new()
    }
}

/// One bucket: what is wanted, where, and what was seen.
#[derive(Debug, Clone)]
pub struct BucketSeen {
    pub spec: BucketSpec,
    pub region: String,
    pub state: BucketState,
    /// Backup evidence; read for `audit` only.
    pub evidence: Vec<evidence::Evidence>,
    /// The restore drills of this bucket's entries, with their last record
    /// (audit only).
    pub drills: Vec<evidence::DrillSeen>,
    /// The oldest version under each prefix holding a copy of a backup
    /// (audit only, when the policy asks for ERASURE-HORIZON).
    pub oldest: Vec<oldest::Seen>,
}

impl BucketSeen {
    /// The bucket's change first, then its sub-resources'.
    pub fn changes(&self) -> Vec<Change> {
        let mut c = diff::diff(&self.spec, &self.region, &self.state);
        crate::model::block_destruction_on_unknown(&mut c);
        c
    }
}

/// Observe `specs` (the bucket kind's settings; replication is read by its
/// own kind, but the evidence looks for the newest backups in the DR copy).
async fn observe_buckets(
    ctx: &Ctx<'_>,
    specs: &[BucketSpec],
    evidence: bool,
    declared_roles: &[String],
    drills: &[crate::jobs::DrillDecl],
    copies: &[crate::policy::erasure::Copy],
) -> Result<Vec<BucketSeen>, Fatal> {
    let aws = ctx.aws;
    let default = aws.default_region();
    let jobs = specs.iter().map(|s| region_of(s, default).map(|r| (s, r))).collect::<Result<Vec<_>, _>>()?;
    // A destination's region: as the policy declares it, else the default.
    let dest_region = |name: &str| {
        let spec = specs.iter().find(|b| b.name == name);
        spec.and_then(|s| region_of(s, default).ok()).or(default.map(str::to_string)).unwrap_or_default()
    };
    let dest_region = &dest_region;
    let mut out: Vec<BucketSeen> = stream::iter(jobs)
        .map(|(full, region)| async move {
            let spec = without_replication(full);
            let state = observe::observe(aws, &spec, &region, evidence).await?;
            let (evidence, drills, oldest) = match state.bucket.present() {
                Some(actual) if evidence => (
                    evidence::observe(aws, full, actual, dest_region, ctx.verify_download).await?,
                    evidence::drills(aws, &full.name, actual, drills).await?,
                    oldest::observe(aws, &aws.s3(actual), &full.name, copies).await?,
                ),
                _ if evidence => {
                    // A missing bucket holds no version: S3-BUCKET says it
                    // is missing, and ERASURE-HORIZON that its copies were
                    // not measured.
                    let (drills, oldest) = match state.bucket.unknown_reason() {
                        Some(reason) => (
                            evidence::drills_unread(&full.name, drills, reason),
                            oldest::unread(&full.name, copies, reason),
                        ),
                        None => (Vec::new(), Vec::new()),
                    };
                    (evidence::without_bucket(full, &state.bucket), drills, oldest)
                }
                _ => (Vec::new(), Vec::new(), Vec::new()),
            };
            Ok::<_, Fatal>(BucketSeen { spec, region, state, evidence, drills, oldest })
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .try_collect()
        .await?;
    out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    let principals = principals(ctx, specs, declared_roles).await?;
    if !principals.is_empty() {
        for o in out.iter_mut().filter(|o| o.spec.access.is_some()) {
            o.state.principals = principals.clone();
        }
    }
    let administered = |o: &BucketSeen| o.spec.access.as_ref().is_some_and(|a| a.administrators.is_some());
    if out.iter().any(administered) {
        let caller = ctx.aws.caller().await;
        for o in out.iter_mut().filter(|o| administered(o)) {
            o.state.caller = caller.clone();
        }
    }
    Ok(out)
}

/// The role names `access:` uses, each resolved once to its ARN (GetRole:
/// the ARN carries the role's path, as aws:PrincipalArn does).
async fn principals(
    ctx: &Ctx<'_>,
    specs: &[BucketSpec],
    declared_roles: &[String],
) -> Result<std::collections::BTreeMap<String, access::Principal>, Fatal> {
    let mut names: Vec<&str> = specs
        .iter()
        .filter_map(|s| s.access.as_ref())
        .flat_map(|a| a.principals())
        .filter(|p| !p.starts_with("arn:"))
        .collect();
    names.sort();
    names.dedup();
    stream::iter(names)
        .map(|n| async move {
            let p = match observe::role_arn(ctx.aws, n).await? {
                crate::model::Observed::Present(arn) => access::Principal::Arn(arn),
                crate::model::Observed::Absent if declared_roles.iter().any(|d| d == n) => {
                    access::Principal::AfterApply
                }
                crate::model::Observed::Absent => access::Principal::Missing,
                crate::model::Observed::Unknown { reason } => access::Principal::Unknown(reason),
            };
            Ok::<_, Fatal>((n.to_string(), p))
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .try_collect()
        .await
}

/// Every bucket of the policy, as observed.
pub struct BucketsSeen {
    pub buckets: Vec<BucketSeen>,
    /// The roles the policy declares (an `access:` role not yet made is
    /// known after apply).
    pub declared: Vec<String>,
}

impl Resources for BucketsSeen {
    const KIND: &'static str = "s3";
    type Item = BucketSeen;
    fn items(&self) -> &[BucketSeen] {
        &self.buckets
    }
    fn address(o: &BucketSeen) -> Address {
        Address::s3_bucket(&o.spec.name)
    }
    fn diff(&self) -> Vec<Change> {
        self.buckets.iter().flat_map(BucketSeen::changes).collect()
    }
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult> {
        let mut out = Vec::new();
        for o in &self.buckets {
            let addr = Address::s3_bucket(&o.spec.name);
            let mine = crate::model::changes_under(changes, &addr);
            out.extend(controls::controls(&o.spec, &o.region, &o.state, &mine));
            out.extend(evidence::controls(&o.spec, &o.evidence, o.state.lifecycle.as_ref()));
            out.extend(evidence::drill_controls(&o.drills));
            out.extend(oldest::control(&o.spec.name, o.spec.line, &o.oldest));
        }
        out
    }
    fn fingerprint(&self, o: &BucketSeen) -> Value {
        json!(o.state)
    }
    fn key_policies(&self) -> Vec<crate::iamdoc::KeyPolicy> {
        self.buckets
            .iter()
            .filter_map(|o| {
                let policy = match o.state.key_policy.as_ref()? {
                    crate::model::Observed::Present(v) => Ok(v.clone()),
                    crate::model::Observed::Unknown { reason } => Err(reason.clone()),
                    crate::model::Observed::Absent => return None,
                };
                let mut names: Vec<String> = o.spec.encryption.iter().filter_map(|e| e.kms_key.clone()).collect();
                names.extend(o.state.key.as_ref().and_then(|k| k.present()).map(|k| k.arn.clone()));
                Some(crate::iamdoc::KeyPolicy { names, policy })
            })
            .collect()
    }
    fn apply_one<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        o: &'a BucketSeen,
        changes: &'a [Change],
        prior: &'a Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Option<Applied>, Fatal>> {
        async move {
            let c = crate::model::changes_under(changes, &Address::s3_bucket(&o.spec.name));
            if !c.first().is_some_and(|h| h.conflicts.is_empty()) || !c.iter().any(Change::is_actionable) {
                return Ok(None);
            }
            // Keys and roles made moments ago are waited for; others are not.
            let (keys_made, roles_made) = (prior.made(steps::KMS_ALIAS), prior.made(steps::IAM_CREATE_ROLE));
            let steps = apply::apply(ctx.aws, &o.spec, &o.region, &o.state, &c, keys_made, roles_made).await;
            Ok(Some(Applied { address: c[0].address.clone(), steps, did_not_take: Vec::new() }))
        }
        .boxed_local()
    }
    fn reread<'a>(&'a self, ctx: &'a Ctx<'a>, items: Vec<&'a BucketSeen>) -> LocalBoxFuture<'a, Result<Self, Fatal>> {
        async move {
            let specs: Vec<BucketSpec> = items.iter().map(|o| o.spec.clone()).collect();
            let buckets = observe_buckets(ctx, &specs, false, &self.declared, &[], &[]).await?;
            Ok(BucketsSeen { buckets, declared: self.declared.clone() })
        }
        .boxed_local()
    }
}
