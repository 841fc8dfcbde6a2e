//! The shape every "one connection per named instance" system shares
//! (Redis, PostgreSQL): each instance is observed, diffed to one change,
//! judged, applied and re-read on its own. A system implements
//! [`Instance`]; [`Kind`] is its [`Provider`] and [`Instances`] its
//! [`Observation`].

use std::collections::BTreeSet;
use std::future::Future;

use futures::future::{FutureExt, LocalBoxFuture};
use serde_json::Value;

use super::{Ctx, ImportRequest, Imported, Observation, Prior, Provider};
use crate::jobs::{JobCtx, JobError, Outcome, Stage};
use crate::model::control::{ControlDef, ControlResult};
use crate::model::{Address, Applied, AttrChange, Change, Fatal, StepOutcome};
use crate::policy::Policy;

/// One named instance of a system, reached through its own connection.
pub trait Instance: 'static {
    const KIND: &'static str;
    const CONTROLS: &'static [ControlDef];
    /// Its jobs (`backup run`, `restore-drill`).
    const JOBS: &'static [&'static dyn crate::jobs::Job] = &[];
    /// What the system is called in `--help`.
    const TITLE: &'static str;
    /// What one and many instances are called (`validate`), and the key.
    const NOUNS: (&'static str, &'static str, &'static str);
    /// The resources of `on` its instances give the tool (see
    /// `Provider::scope`).
    fn scope(_specs: &[Self::Spec], _on: crate::aws::On) -> Vec<String> {
        Vec::new()
    }
    /// What it alone can judge of an objective (see `Provider::judge`).
    fn judge(_objective: &str, _ev: &super::Evidence<'_>, _policy: &Policy) -> Option<super::Judged> {
        None
    }
    /// The instances `import` was asked for: (name, environment variable).
    fn requested(req: &mut ImportRequest) -> &mut Vec<(String, String)>;
    type Spec: Clone;
    type State;
    /// The instances the policy names.
    fn specs(policy: &Policy) -> &[Self::Spec];
    /// The same, to keep only those `--target` touches.
    fn specs_mut(policy: &mut Policy) -> &mut Vec<Self::Spec>;
    /// The secret values an instance's entry resolved (see
    /// `Provider::secrets`).
    fn secrets(_spec: &Self::Spec) -> Vec<String> {
        Vec::new()
    }
    /// Its part of `import`.
    fn import(req: &ImportRequest) -> impl Future<Output = Result<Imported, Fatal>>;
    fn address(spec: &Self::Spec) -> Address;
    /// Never fails the run: an unreachable instance is Unknown. `ctx`
    /// says whether the audit also wants evidence, and gives AWS.
    fn observe<'a>(ctx: &'a Ctx<'a>, spec: &'a Self::Spec) -> impl Future<Output = Self::State> + 'a;
    /// The state of an instance that could not be read, for `reason`.
    fn unknown(spec: &Self::Spec, reason: &str) -> Self::State;
    fn diff(spec: &Self::Spec, state: &Self::State) -> Change;
    fn controls(spec: &Self::Spec, state: &Self::State, change: &Change) -> Vec<ControlResult>;
    fn apply(spec: &Self::Spec, change: &Change) -> impl Future<Output = Vec<StepOutcome>>;
    /// The stable settings, canonically (no counters).
    fn fingerprint(state: &Self::State) -> Value;
    /// A difference right after apply that is pending, not failed.
    fn pending(_state: &Self::State, _attr: &AttrChange) -> bool {
        false
    }
}

/// The provider of an [`Instance`] system (a registry entry).
pub struct Kind<I>(std::marker::PhantomData<fn() -> I>);

impl<I> Kind<I> {
    pub const fn new() -> Self {
        Kind(std::marker::PhantomData)
    }
}

impl<I> Default for Kind<I> {
    fn default() -> Self {
        Kind::new()
    }
}

impl<I: Instance> Provider for Kind<I> {
    fn kind(&self) -> &'static str {
        I::KIND
    }
    fn title(&self) -> &'static str {
        I::TITLE
    }
    fn controls(&self) -> &'static [ControlDef] {
        I::CONTROLS
    }
    fn jobs(&self) -> &'static [&'static dyn crate::jobs::Job] {
        I::JOBS
    }
    fn addresses(&self, policy: &Policy) -> Vec<Address> {
        I::specs(policy).iter().map(I::address).collect()
    }
    fn scope(&self, policy: &Policy, on: crate::aws::On) -> Vec<String> {
        I::scope(I::specs(policy), on)
    }
    fn judge(&self, objective: &str, ev: &super::Evidence<'_>, policy: &Policy) -> Option<super::Judged> {
        I::judge(objective, ev, policy)
    }
    fn restrict(&self, policy: &mut Policy, targets: &crate::model::Targets) {
        I::specs_mut(policy).retain(|s| targets.touches(I::address(s).as_str()));
    }
    fn secrets(&self, policy: &Policy) -> Vec<String> {
        I::specs(policy).iter().flat_map(I::secrets).collect()
    }
    fn in_account(&self, policy: &mut Policy, here: &dyn Fn(Option<&str>) -> bool) {
        if !here(None) {
            I::specs_mut(policy).clear();
        }
    }
    fn counts(&self, policy: &Policy) -> Vec<super::Count> {
        let (one, many, key) = I::NOUNS;
        vec![super::Count { n: I::specs(policy).len(), one, many, key }]
    }
    fn keep_existing(&self, policy: &Policy, req: &mut ImportRequest) -> Vec<String> {
        let have: BTreeSet<String> = self.addresses(policy).iter().map(|a| a.as_str().to_string()).collect();
        let mut kept = Vec::new();
        I::requested(req).retain(|(name, _)| {
            let addr = format!("{}.{name}", I::KIND);
            let has = have.contains(&addr);
            if has {
                kept.push(addr);
            }
            !has
        });
        kept
    }
    fn observe<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        policy: &'a Policy,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move { Ok(Box::new(Instances::<I>::observe(ctx, I::specs(policy).iter()).await) as Box<dyn Observation>) }
            .boxed_local()
    }
    fn unobserved(&self, _ctx: &Ctx<'_>, policy: &Policy, reason: &str) -> Box<dyn Observation> {
        Box::new(Instances::<I>(I::specs(policy).iter().map(|s| (s.clone(), I::unknown(s, reason))).collect()))
    }
    fn import<'a>(
        &'a self,
        _ctx: &'a Ctx<'a>,
        req: &'a ImportRequest,
        _default_region: Option<&'a str>,
    ) -> Option<LocalBoxFuture<'a, Result<Imported, Fatal>>> {
        Some(I::import(req).boxed_local())
    }
}

/// Every instance of the policy, as observed.
pub struct Instances<I: Instance>(pub Vec<(I::Spec, I::State)>);

impl<I: Instance> Instances<I> {
    /// Observe every instance, concurrently.
    pub async fn observe<'a>(ctx: &'a Ctx<'a>, specs: impl Iterator<Item = &'a I::Spec>) -> Self {
        Instances(futures::future::join_all(specs.map(|s| async move { (s.clone(), I::observe(ctx, s).await) })).await)
    }

    fn find(&self, addr: &Address) -> Option<&(I::Spec, I::State)> {
        self.0.iter().find(|(s, _)| I::address(s) == *addr)
    }
}

impl<I: Instance> Observation for Instances<I> {
    fn kind(&self) -> &'static str {
        I::KIND
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn diff(&self) -> Vec<Change> {
        self.0.iter().map(|(spec, state)| I::diff(spec, state)).collect()
    }
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult> {
        let mut out = Vec::new();
        for (spec, state) in &self.0 {
            if let Some(change) = changes.iter().find(|c| c.address == I::address(spec)) {
                out.extend(I::controls(spec, state, change));
            }
        }
        out
    }
    fn fingerprints(&self) -> Vec<(Address, Value)> {
        self.0.iter().map(|(spec, state)| (I::address(spec), I::fingerprint(state))).collect()
    }
    fn apply<'a>(
        &'a self,
        _ctx: &'a Ctx<'a>,
        changes: &'a [Change],
        _prior: Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<Applied>, Fatal>> {
        async move {
            let jobs = self.0.iter().filter_map(|(spec, _)| {
                let change = changes.iter().find(|c| c.address == I::address(spec) && c.is_actionable())?;
                Some(async move {
                    let steps = I::apply(spec, change).await;
                    Applied { address: change.address.clone(), steps, did_not_take: Vec::new() }
                })
            });
            Ok(futures::future::join_all(jobs).await)
        }
        .boxed_local()
    }
    fn reobserve<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        addresses: &'a BTreeSet<Address>,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            let specs = self.0.iter().map(|(s, _)| s).filter(|s| addresses.contains(&I::address(s)));
            Ok(Box::new(Self::observe(ctx, specs).await) as Box<dyn Observation>)
        }
        .boxed_local()
    }
    fn pending(&self, change: &Change, attr: &AttrChange) -> bool {
        self.find(&change.address).is_some_and(|(_, state)| I::pending(state, attr))
    }
}

/// How an instance job runs (or writes its configuration) for one instance.
pub type JobFn<S, T> = for<'a> fn(&'a JobCtx<'a>, &'a Policy, &'a S) -> LocalBoxFuture<'a, Result<T, JobError>>;

/// A job of an instance system (`backup run redis.NAME`, `restore-drill
/// postgres.NAME.pitr`), declared as data: which instances declare it, the
/// entry it writes or reads, how one instance's run starts, what it calls
/// and how its outcome reads. The address is `SYSTEM.NAME` and `suffix`.
pub struct InstanceJob<S: 'static> {
    pub kind: crate::jobs::JobKind,
    /// What it does, for `--help`.
    pub synopsis: &'static str,
    pub system: &'static str,
    /// What the address adds to `SYSTEM.NAME` (`.pitr`); "" for most.
    pub suffix: &'static str,
    pub specs: fn(&Policy) -> &[S],
    pub name: fn(&S) -> &str,
    /// The entry it writes (a backup) or reads (a drill); None: the
    /// instance does not declare the job.
    pub entry: fn(&S) -> Option<&crate::policy::BackupRef>,
    /// For a drill the audit judges: its timing, from the declaration.
    pub drill: Option<fn(&S) -> Option<DrillTiming<'_>>>,
    pub run: JobFn<S, Outcome>,
    pub ops: &'static [crate::aws::Op],
    /// See `Job::engine_actions`.
    pub engine_actions: &'static [&'static str],
    /// Does it recover to a point in time (`--target-time`, `--target`)?
    pub takes_target: bool,
    /// Its own text for an outcome (see `Job::render`).
    pub render: Option<fn(&Outcome) -> Option<String>>,
    /// The engine's configuration file (see `Job::config`).
    pub config: Option<JobFn<S, String>>,
    /// When it runs (see `Job::schedule`).
    pub schedule: fn(&S) -> Option<&crate::policy::schedule::Schedule>,
    /// Where it must run (see `Job::on_host`).
    pub on_host: Option<crate::jobs::OnHost>,
}

fn not_in_policy(address: &str) -> JobError {
    JobError::failed(Stage::Prepare, format!("{address} is not in the policy"))
}

/// A declared drill's RTO and interval (seconds) and its policy line.
#[derive(Debug, Clone, Copy)]
pub struct DrillTiming<'p> {
    pub rto_secs: u64,
    pub every_secs: u64,
    /// Its `schedule:`, if written (the audit names it).
    pub schedule: Option<&'p crate::policy::schedule::Schedule>,
    pub line: u64,
}

impl<S: 'static> InstanceJob<S> {
    fn address(&self, spec: &S) -> String {
        format!("{}.{}{}", self.system, (self.name)(spec), self.suffix)
    }
    fn find<'p>(&self, policy: &'p Policy, address: &str) -> Option<&'p S> {
        (self.specs)(policy).iter().find(|s| self.address(s) == address)
    }
}

impl<S: 'static> crate::jobs::Job for InstanceJob<S> {
    fn kind(&self) -> crate::jobs::JobKind {
        self.kind
    }
    fn synopsis(&self) -> &'static str {
        self.synopsis
    }
    fn instances(&self, policy: &Policy) -> Vec<(String, bool)> {
        (self.specs)(policy).iter().map(|s| (self.address(s), (self.entry)(s).is_some())).collect()
    }
    fn entry<'p>(&self, policy: &'p Policy, address: &str) -> Option<&'p crate::policy::BackupRef> {
        self.find(policy, address).and_then(self.entry)
    }
    fn schedule<'p>(&self, policy: &'p Policy, address: &str) -> Option<&'p crate::policy::schedule::Schedule> {
        self.find(policy, address).and_then(self.schedule)
    }
    fn on_host(&self) -> Option<crate::jobs::OnHost> {
        self.on_host
    }
    fn run<'a>(
        &'a self,
        ctx: &'a JobCtx<'a>,
        policy: &'a Policy,
        address: &'a str,
    ) -> LocalBoxFuture<'a, Result<Outcome, JobError>> {
        match self.find(policy, address) {
            Some(spec) => (self.run)(ctx, policy, spec),
            None => async move { Err(not_in_policy(address)) }.boxed_local(),
        }
    }
    fn ops(&self) -> &'static [crate::aws::Op] {
        self.ops
    }
    fn engine_actions(&self) -> &'static [&'static str] {
        self.engine_actions
    }
    fn takes_target(&self) -> bool {
        self.takes_target
    }
    fn render(&self, outcome: &Outcome) -> Option<String> {
        self.render.and_then(|r| r(outcome))
    }
    fn config<'a>(
        &'a self,
        ctx: &'a JobCtx<'a>,
        policy: &'a Policy,
        address: &'a str,
    ) -> Option<LocalBoxFuture<'a, Result<String, JobError>>> {
        let config = self.config?;
        Some(match self.find(policy, address) {
            Some(spec) => config(ctx, policy, spec),
            None => async move { Err(not_in_policy(address)) }.boxed_local(),
        })
    }
    fn drills(&self, policy: &Policy) -> Vec<crate::jobs::DrillDecl> {
        let Some(drill) = self.drill else { return Vec::new() };
        (self.specs)(policy)
            .iter()
            .filter_map(|s| {
                let DrillTiming { rto_secs, every_secs, schedule, line } = drill(s)?;
                let from = (self.entry)(s)?.clone();
                let schedule = schedule.map(|s| s.text.clone());
                Some(crate::jobs::DrillDecl { instance: self.address(s), from, rto_secs, every_secs, schedule, line })
            })
            .collect()
    }
}
