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
use crate::model::control::{ControlDef, ControlResult};
use crate::model::{Address, Applied, AttrChange, Change, Fatal, StepOutcome};
use crate::policy::Policy;

/// One named instance of a system, reached through its own connection.
pub trait Instance: 'static {
    const KIND: &'static str;
    const CONTROLS: &'static [ControlDef];
    /// Its jobs (`backup run`, `restore-drill`).
    const JOBS: &'static [&'static dyn crate::jobs::Job] = &[];
    type Spec: Clone;
    type State;
    /// The instances the policy names.
    fn specs(policy: &Policy) -> &[Self::Spec];
    /// Its part of `import`.
    fn import(req: &ImportRequest) -> impl Future<Output = Result<Imported, Fatal>>;
    fn address(spec: &Self::Spec) -> Address;
    /// Never fails the run: an unreachable instance is Unknown.
    fn observe(spec: &Self::Spec) -> impl Future<Output = Self::State>;
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
    fn controls(&self) -> &'static [ControlDef] {
        I::CONTROLS
    }
    fn jobs(&self) -> &'static [&'static dyn crate::jobs::Job] {
        I::JOBS
    }
    fn addresses(&self, policy: &Policy) -> Vec<Address> {
        I::specs(policy).iter().map(I::address).collect()
    }
    fn observe<'a>(
        &'a self,
        _ctx: &'a Ctx<'a>,
        policy: &'a Policy,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move { Ok(Box::new(Instances::<I>::observe(I::specs(policy).iter()).await) as Box<dyn Observation>) }
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
    pub async fn observe<'a>(specs: impl Iterator<Item = &'a I::Spec>) -> Self {
        Instances(futures::future::join_all(specs.map(|s| async move { (s.clone(), I::observe(s).await) })).await)
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
        _ctx: &'a Ctx<'a>,
        addresses: &'a BTreeSet<Address>,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            let specs = self.0.iter().map(|(s, _)| s).filter(|s| addresses.contains(&I::address(s)));
            Ok(Box::new(Self::observe(specs).await) as Box<dyn Observation>)
        }
        .boxed_local()
    }
    fn pending(&self, change: &Change, attr: &AttrChange) -> bool {
        self.find(&change.address).is_some_and(|(_, state)| I::pending(state, attr))
    }
}
