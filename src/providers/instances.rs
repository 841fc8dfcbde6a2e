//! The observation shape every "one connection per named instance" system
//! shares (Redis, PostgreSQL): each instance is observed, diffed to one
//! change, judged, applied and re-read on its own. A system implements
//! [`Instance`]; [`Instances`] is its [`Observation`].

use std::collections::BTreeSet;
use std::future::Future;

use futures::future::{FutureExt, LocalBoxFuture};
use serde_json::Value;

use super::{Ctx, Observation, Prior};
use crate::model::control::ControlResult;
use crate::model::{Address, Applied, AttrChange, Change, Fatal, StepOutcome};

/// One named instance of a system, reached through its own connection.
pub trait Instance: 'static {
    const KIND: &'static str;
    type Spec: Clone;
    type State;
    fn address(spec: &Self::Spec) -> Address;
    /// Never fails the run: an unreachable instance is Unknown.
    fn observe(spec: &Self::Spec) -> impl Future<Output = Self::State>;
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
