//! IAM roles and customer-managed policies: observe (only what the policy
//! mentions), a pure diff with documents compared by meaning and
//! attachment/inline-policy ownership, and apply. IAM is applied before any
//! S3 change, so roles exist before replication names them.

mod apply;
mod controls;
mod diff;
pub(crate) mod import;
mod observe;
pub mod section;

pub use apply::{apply, IamApplied};
use controls::*;
pub use diff::diff;
pub use observe::*;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::aws::ops;
use crate::iamdoc as doc;
use crate::model::control::{ControlDef, ControlResult, Severity, Status};
use futures::future::{FutureExt, LocalBoxFuture};

use crate::aws::{classify, ApiError, Aws, Op};
use crate::model::Applied;
use crate::model::{Action, Address, AttrChange, Change, Fatal, Observed, StepOutcome, UnknownSetting};
use crate::policy::Policy;
use crate::providers::iam::section::{Iam as IamSpec, ManagedPolicySpec, RoleSpec};
use crate::providers::{Ctx, ImportRequest, Imported, Observation, Prior, Provider};

/// The IAM provider: roles and customer-managed policies.
pub struct Iam;

const OPS: &[Op] = &[
    ops::GET_ROLE,
    ops::LIST_ROLE_POLICIES,
    ops::GET_ROLE_POLICY,
    ops::LIST_ATTACHED_ROLE_POLICIES,
    ops::LIST_POLICIES,
    ops::GET_POLICY_VERSION,
    ops::GET_POLICY,
    ops::CREATE_ROLE,
    ops::UPDATE_ROLE,
    ops::UPDATE_ASSUME_ROLE_POLICY,
    ops::TAG_ROLE,
    ops::PUT_ROLE_POLICY,
    ops::DELETE_ROLE_POLICY,
    ops::ATTACH_ROLE_POLICY,
    ops::DETACH_ROLE_POLICY,
    ops::DELETE_ROLE,
    ops::CREATE_POLICY,
    ops::CREATE_POLICY_VERSION,
    ops::LIST_POLICY_VERSIONS,
    ops::DELETE_POLICY_VERSION,
];

const CONTROLS: &[ControlDef] = &[ROLE, TRUST, POLICY];

impl Provider for Iam {
    fn kind(&self) -> &'static str {
        "iam"
    }
    fn title(&self) -> &'static str {
        "IAM"
    }
    fn controls(&self) -> &'static [ControlDef] {
        CONTROLS
    }
    fn ops(&self) -> &'static [Op] {
        OPS
    }
    fn addresses(&self, policy: &Policy) -> Vec<Address> {
        let roles = policy.iam.roles.iter().map(|r| role_address(&r.name));
        roles.chain(policy.iam.policies.iter().map(|p| policy_address(&p.name))).collect()
    }
    fn restrict(&self, policy: &mut Policy, targets: &crate::model::Targets) {
        policy.iam.roles.retain(|r| targets.touches(role_address(&r.name).as_str()));
        policy.iam.policies.retain(|m| targets.touches(policy_address(&m.name).as_str()));
    }
    fn in_account(&self, policy: &mut Policy, here: &dyn Fn(Option<&str>) -> bool) {
        policy.iam.roles.retain(|r| here(r.account.as_deref()));
        policy.iam.policies.retain(|m| here(m.account.as_deref()));
    }
    fn on_aws(&self) -> bool {
        true
    }
    fn judge(
        &self,
        objective: &str,
        ev: &crate::providers::Evidence<'_>,
        policy: &Policy,
    ) -> Option<crate::providers::Judged> {
        use crate::providers::{objectives as o, Judged};
        // What the audit cannot see of a role's permissions, said once.
        let notes = if ev.identities.is_empty() { Vec::new() } else { vec![o::SCP_NOTE.to_string()] };
        let mut j = match objective {
            "RTO-60MIN-READINESS" => Judged::of(o::access(ev, policy).0),
            "LEAST-PRIVILEGE" => Judged::of(o::access(ev, policy).1),
            "DR-COPY" => Judged::default(),
            _ => return None,
        };
        j.notes = notes;
        Some(j)
    }
    fn scope(&self, policy: &Policy, on: crate::aws::On) -> Vec<String> {
        use crate::aws::On;
        match on {
            On::Role => policy.iam.roles.iter().map(|r| format!("arn:aws:iam::*:role/{}", r.name)).collect(),
            On::ManagedPolicy => {
                policy.iam.policies.iter().map(|m| format!("arn:aws:iam::*:policy{}{}", m.path, m.name)).collect()
            }
            // ListPolicies has no narrower resource.
            On::Any if !policy.iam.policies.is_empty() => vec!["*".to_string()],
            // The policies attached to a role may be any, the AWS-managed
            // ones included; the audit reads them (and boundaries) by ARN.
            On::AttachedPolicy if !policy.iam.roles.is_empty() => vec!["arn:aws:iam::*:policy/*".to_string()],
            _ => Vec::new(),
        }
    }
    fn counts(&self, policy: &Policy) -> Vec<crate::providers::Count> {
        use crate::providers::Count;
        vec![
            Count { n: policy.iam.roles.len(), one: "role", many: "roles", key: "roles" },
            Count {
                n: policy.iam.policies.len(),
                one: "managed policy",
                many: "managed policies",
                key: "managed_policies",
            },
        ]
    }
    fn keep_existing(&self, policy: &Policy, req: &mut ImportRequest) -> Vec<String> {
        let mut kept = Vec::new();
        req.roles.retain(|r| {
            let has = policy.iam.roles.iter().any(|x| &x.name == r);
            if has {
                kept.push(format!("iam.role.{r}"));
            }
            !has
        });
        kept
    }
    fn import<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        req: &'a ImportRequest,
        _default_region: Option<&'a str>,
    ) -> Option<LocalBoxFuture<'a, Result<Imported, Fatal>>> {
        Some(import::import(ctx, req).boxed_local())
    }
    fn unobserved(&self, _ctx: &Ctx<'_>, policy: &Policy, reason: &str) -> Box<dyn Observation> {
        Box::new(unobserved(&policy.iam, reason))
    }
    fn observe<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        policy: &'a Policy,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            let mut state = observe(ctx.aws, &policy.iam).await?;
            if ctx.evidence {
                state.identities = identities(ctx.aws, &state.roles).await?;
            }
            Ok(Box::new(state) as Box<dyn Observation>)
        }
        .boxed_local()
    }
}

impl Observation for IamState {
    fn kind(&self) -> &'static str {
        "iam"
    }
    fn len(&self) -> usize {
        self.roles.len() + self.policies.len()
    }
    fn diff(&self) -> Vec<Change> {
        diff(self)
    }
    fn controls(&self, changes: &[Change]) -> Vec<ControlResult> {
        controls(self, changes)
    }
    fn identities(&self) -> Vec<doc::Identity> {
        self.identities.clone()
    }
    fn fingerprints(&self) -> Vec<(Address, Value)> {
        let roles = self.roles.iter().map(|(spec, state)| (role_address(&spec.name), json!(state)));
        roles.chain(self.policies.iter().map(|(spec, state)| (policy_address(&spec.name), json!(state)))).collect()
    }
    fn apply<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        changes: &'a [Change],
        _prior: Prior<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<Applied>, Fatal>> {
        async move {
            let done = apply(ctx.aws, self, changes).await;
            Ok(done
                .into_iter()
                .map(|d| Applied { address: d.address, steps: d.steps, did_not_take: Vec::new() })
                .collect())
        }
        .boxed_local()
    }
    fn reobserve<'a>(
        &'a self,
        ctx: &'a Ctx<'a>,
        _addresses: &'a BTreeSet<Address>,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, Fatal>> {
        async move {
            // All of IAM: a role's attachments are judged against the
            // managed policies' ARNs, which are read with them.
            let spec = IamSpec {
                roles: self.roles.iter().map(|(s, _)| s.clone()).collect(),
                policies: self.policies.iter().map(|(s, _)| s.clone()).collect(),
            };
            Ok(Box::new(observe(ctx.aws, &spec).await?) as Box<dyn Observation>)
        }
        .boxed_local()
    }
}
