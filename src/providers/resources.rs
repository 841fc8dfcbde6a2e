//! The shape the AWS kinds share (as `instances.rs` is for the systems
//! reached through one connection per instance): an observation that is a
//! list of resources, each applied on its own — `--concurrency` at a time —
//! and read again by address for verify. A kind implements [`Resources`];
//! [`Seen`] is its [`Observation`], written once.

use std::collections::BTreeSet;

use futures::future::{FutureExt, LocalBoxFuture};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

use super::{Ctx, Observation, Prior};
use crate::model::control::ControlResult;
use crate::model::{Address, Applied, Change, Fatal};

/// What one AWS kind observed: its resources and how each is applied and
/// read again.
pub trait Resources: Sized + 'static {
    const KIND: &'static str;
    type Item;
    fn items(&self) -> &[Self::Item];
    /// The address apply reports and verify reads the item by.
    fn address(item: &Self::Item) -> Address;
    /// Desired vs observed; pure.
    fn diff(&self) -> Vec<Change>;
    /// Audit controls; pure.
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult>;
    /// The item's stable observed state, canonically.
    fn fingerprint(&self, item: &Self::Item) -> Value;
    /// Apply the item's part of `changes`; None when it has nothing to do.
    fn apply_one<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        item: &'a Self::Item,
        changes: &'a [Change],
        prior: &'a Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Option<Applied>, Fatal>>;
    /// Read `items` again, for verify.
    fn reread<'a>(&'a self, ctx: &'a Ctx<'a>, items: Vec<&'a Self::Item>) -> LocalBoxFuture<'a, Result<Self, Fatal>>;
    /// The KMS key policies read (KMS, audit only).
    fn key_policies(&self) -> Vec<crate::iamdoc::KeyPolicy> {
        Vec::new()
    }
}

/// The observation of a [`Resources`] kind.
pub struct Seen<R>(pub R);

impl<R: Resources> Observation for Seen<R> {
    fn kind(&self) -> &'static str {
        R::KIND
    }
    fn len(&self) -> usize {
        self.0.items().len()
    }
    fn diff(&self) -> Vec<Change> {
        self.0.diff()
    }
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult> {
        self.0.controls(changes)
    }
    fn fingerprints(&self) -> Vec<(Address, Value)> {
        self.0.items().iter().map(|i| (R::address(i), self.0.fingerprint(i))).collect()
    }
    fn key_policies(&self) -> Vec<crate::iamdoc::KeyPolicy> {
        self.0.key_policies()
    }
    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        changes: &'a [Change],
        prior: Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<Applied>, Fatal>> {
        async move {
            let prior = &prior;
            let done: Vec<Option<Applied>> = stream::iter(self.0.items())
                .map(|item| self.0.apply_one(ctx, item, changes, prior))
                .buffer_unordered(ctx.concurrency.max(1))
                .try_collect()
                .await?;
            Ok(done.into_iter().flatten().collect())
        }
        .boxed_local()
    }
    fn reobserve<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        addresses: &'a BTreeSet<Address>,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            let items = self.0.items().iter().filter(|i| addresses.contains(&R::address(i))).collect();
            Ok(Box::new(Seen(self.0.reread(ctx, items).await?)) as Box<dyn Observation>)
        }
        .boxed_local()
    }
}
