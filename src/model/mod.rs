//! The shared vocabulary of plan, apply and audit: addresses, the closed set
//! of actions, per-attribute changes and the three-valued observation.
//! Nothing here does I/O.

pub mod control;
pub mod objective;
pub mod time;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Stable name of a resource, the key of every plan row, report row,
/// `--target` and log line: `s3.BUCKET`, `s3.BUCKET.lifecycle.RULE`,
/// `iam.role.NAME.inline.POLICY`… Built from its parts, so it knows where
/// the resource ends even when a name has dots in it (S3 bucket names may).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    text: String,
    /// Length of the resource part (`s3.BUCKET`, `iam.role.NAME`).
    resource_len: usize,
}

/// The child segments a resource's parts start with; read back from text,
/// the first of them after the kind ends the resource's name.
const PARTS: &[&str] = &["lifecycle", "replication", "mfa_delete", "require_tls", "backups", "inline", "attachment"];

impl Address {
    /// A resource: `kind` is `s3`, `iam.role`, `iam.policy`, `redis`…
    pub fn resource(kind: &str, name: &str) -> Self {
        let text = format!("{kind}.{name}");
        Address { resource_len: text.len(), text }
    }

    pub fn s3_bucket(name: &str) -> Self {
        Address::resource("s3", name)
    }

    /// A part of this resource (or of this part): `s3.B` → `s3.B.lifecycle`.
    pub fn child(&self, part: &str) -> Self {
        Address { text: format!("{}.{part}", self.text), resource_len: self.resource_len }
    }

    /// The resource this address belongs to (`s3.B` for `s3.B.lifecycle.R`).
    pub fn resource_addr(&self) -> Address {
        Address { text: self.text[..self.resource_len].to_string(), resource_len: self.resource_len }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Is this address strictly under `parent`?
    pub fn is_under(&self, parent: &Address) -> bool {
        self.text[..self.resource_len] == parent.text[..parent.resource_len] && is_under(&self.text, &parent.text)
    }

    /// This address or one under it.
    pub fn at_or_under(&self, parent: &Address) -> bool {
        self == parent || self.is_under(parent)
    }

    /// Read an address back from its text (saved plans, `--target`): the
    /// kind's own segments (`iam.role`) and the name, up to the first
    /// segment that starts a part.
    pub fn parse(text: &str) -> Self {
        let segs: Vec<&str> = text.split('.').collect();
        let kind = if segs.first() == Some(&"iam") { 2 } else { 1 };
        let end =
            segs.iter().enumerate().skip(kind + 1).find(|(_, s)| PARTS.contains(s)).map_or(segs.len(), |(i, _)| i);
        let resource_len = segs[..end.max(kind + 1).min(segs.len())].join(".").len();
        Address { text: text.to_string(), resource_len }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Address::parse(&String::deserialize(d)?))
    }
}

impl schemars::JsonSchema for Address {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Address".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A resource or one of its parts: s3.BUCKET, s3.BUCKET.lifecycle.RULE, iam.role.NAME, redis.NAME, postgres.NAME…"
        })
    }
}

/// An error that stops the whole run (no credentials, endpoint
/// unreachable): one line for the user, said once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Fatal {
    pub message: String,
    /// A problem of the input, not of the endpoint: said without naming
    /// the endpoint.
    pub input: bool,
}

impl Fatal {
    /// The endpoint or the credentials stop the run.
    pub fn api(message: String) -> Fatal {
        Fatal { message, input: false }
    }

    /// The input stops the run (e.g. a bucket with no region).
    pub fn input(message: String) -> Fatal {
        Fatal { message, input: true }
    }
}

/// `--target` addresses: an address and everything under it — but not
/// another resource whose name extends it (bucket `a.b` is not under the
/// target `s3.a`: S3 bucket names may have dots), once the policy's
/// resources are known ([`Targets::among`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub list: Vec<String>,
    /// The policy's resources whose names extend a target's and that no
    /// target names (empty until [`Targets::among`]).
    apart: Vec<String>,
    /// Each target's resource: the longest resource it is at or under
    /// (None until [`Targets::among`], or when it names a kind).
    owners: Vec<Option<String>>,
}

impl Targets {
    pub fn of(list: Vec<String>) -> Targets {
        Targets { list, apart: Vec::new(), owners: Vec::new() }
    }

    /// The same targets, knowing the policy's resources: those under a
    /// target by name only are set apart, and each target knows its own.
    pub fn among(mut self, resources: impl IntoIterator<Item = String>) -> Targets {
        let mut all: Vec<String> = resources.into_iter().collect();
        all.sort();
        let known: std::collections::HashSet<&str> = all.iter().map(String::as_str).collect();
        let named: std::collections::HashSet<&str> = self.list.iter().map(String::as_str).collect();
        let owner = |t: &str| {
            let cuts = t.match_indices('.').map(|(i, _)| i).chain([t.len()]);
            cuts.rev().find(|i| known.contains(&t[..*i])).map(|i| t[..i].to_string())
        };
        self.owners = self.list.iter().map(|t| owner(t)).collect();
        let mut apart = Vec::new();
        // A target naming a kind (`s3`) covers all of it.
        for (t, _) in self.list.iter().zip(&self.owners).filter(|(_, o)| o.is_some()) {
            // Sorted, the names starting `t.` are one run.
            let head = format!("{t}.");
            let from = all.partition_point(|r| r.as_str() < head.as_str());
            let run = all[from..].iter().take_while(|r| r.starts_with(&head));
            apart.extend(run.filter(|r| !named.contains(r.as_str())).cloned());
        }
        apart.sort();
        apart.dedup();
        self.apart = apart;
        self
    }

    /// Does `addr`, at or under `t`, belong to another resource — one
    /// whose name extends `t`'s and that no target names?
    fn apart(&self, t: &str, addr: &str) -> bool {
        self.apart.iter().any(|r| is_under(r, t) && (addr == r || is_under(addr, r)))
    }

    /// Is `addr` one of the targets or under one? (No targets: everything.)
    pub fn covers(&self, addr: &str) -> bool {
        self.list.is_empty() || self.list.iter().any(|t| (addr == t || is_under(addr, t)) && !self.apart(t, addr))
    }

    /// Does the resource at `addr` need reading: covered, or holding a
    /// target (not when the target is another resource whose name extends
    /// `addr`)?
    pub fn touches(&self, addr: &str) -> bool {
        self.covers(addr)
            || self.list.iter().enumerate().any(|(i, t)| {
                let owner = self.owners.get(i).and_then(Option::as_deref);
                is_under(t, addr) && owner.is_none_or(|o| !is_under(o, addr))
            })
    }

    /// Make every change outside the targets a no-op, so apply leaves it.
    pub fn restrict(&self, changes: &mut [Change]) {
        for c in changes.iter_mut().filter(|c| !self.covers(c.address.as_str())) {
            c.action = Action::NoOp;
            c.attributes.clear();
            c.destructive = false;
        }
    }
}

/// Why a piece of evidence falls short of what a control asks (a
/// sidecar that does not match, a lock shorter than the retention, a
/// manifest that cannot be read): a finding about the estate, which the
/// control reports as its detail — not a failure of the tool, which is
/// `Observed::Unknown` or `Fatal`.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(transparent)]
#[error("{0}")]
pub struct Shortfall(pub String);

impl From<String> for Shortfall {
    fn from(why: String) -> Shortfall {
        Shortfall(why)
    }
}

impl From<&str> for Shortfall {
    fn from(why: &str) -> Shortfall {
        Shortfall(why.to_string())
    }
}

impl From<Shortfall> for String {
    fn from(s: Shortfall) -> String {
        s.0
    }
}

impl std::ops::Deref for Shortfall {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Evidence judged: what was found when it holds, else why it falls short.
pub type Finding<T> = Result<T, Shortfall>;

/// What the live system holds for one setting. `Unknown` (access denied,
/// timeout…) is never taken for `Absent`, and blocks destructive changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Observed<T> {
    Present(T),
    Absent,
    Unknown { reason: String },
}

impl<T> Observed<T> {
    /// The present value mapped; absence and unknown reasons kept.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Observed<U> {
        match self {
            Observed::Present(v) => Observed::Present(f(v)),
            Observed::Absent => Observed::Absent,
            Observed::Unknown { reason } => Observed::Unknown { reason },
        }
    }

    /// Not read, for `reason`.
    pub fn unknown(reason: &str) -> Self {
        Observed::Unknown { reason: reason.to_string() }
    }

    pub fn present(&self) -> Option<&T> {
        match self {
            Observed::Present(v) => Some(v),
            _ => None,
        }
    }

    pub fn unknown_reason(&self) -> Option<&str> {
        match self {
            Observed::Unknown { reason } => Some(reason),
            _ => None,
        }
    }
}

/// The closed set of things the tool can do to a resource (Terraform's
/// `plans.Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Delete,
}

/// One attribute's before → after. `before` is `None` when the setting is
/// absent on the live system; `unknown` carries why it could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttrChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destructive: bool,
    /// Cannot be undone by anyone once made (e.g. COMPLIANCE-mode Object
    /// Lock retention): apply needs --allow-irreversible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub irreversible: bool,
    /// For documents: a unified diff of the canonical JSON, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// A JSON value on one line; strings without quotes.
pub fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The SHA-256 of `bytes` in lower-case hex (fingerprints, saved plans).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What every renderer prints instead of a sensitive value.
pub const SENSITIVE: &str = "(sensitive value)";

impl AttrChange {
    /// The change as it may be shown or written: a sensitive value (one
    /// that may come from a secret) is replaced by `(sensitive value)`.
    pub fn masked(&self) -> AttrChange {
        if !self.sensitive {
            return self.clone();
        }
        AttrChange {
            before: self.before.as_ref().map(|_| Value::String(SENSITIVE.into())),
            after: Value::String(SENSITIVE.into()),
            diff: None,
            ..self.clone()
        }
    }

    pub fn new(name: &str, before: Option<Value>, after: Value) -> Self {
        AttrChange {
            name: name.to_string(),
            before,
            after,
            unknown: None,
            sensitive: false,
            destructive: false,
            irreversible: false,
            diff: None,
        }
    }
}

/// Attribute changes between two serialisable records, field by field
/// (`skip` names fields that identify the record rather than describe it).
/// With no `before`, every field is listed.
pub fn field_changes<T: Serialize>(before: Option<&T>, after: &T, skip: &[&str]) -> Vec<AttrChange> {
    let fields = |r: &T| match serde_json::to_value(r) {
        Ok(Value::Object(mut m)) => {
            for k in skip {
                m.remove(*k);
            }
            m
        }
        _ => serde_json::Map::new(),
    };
    let a = fields(after);
    let b = before.map(fields).unwrap_or_default();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.is_none() || a.get(*k) != b.get(*k))
        .map(|k| AttrChange::new(k, b.get(k).cloned(), a.get(k).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// Everything the plan says about one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// Attributes that differ (for NoOp: empty).
    pub attributes: Vec<AttrChange>,
    /// Settings that could not be read: the resource cannot be fully planned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<UnknownSetting>,
    /// Things apply cannot do and a person must (e.g. a bucket in the wrong region).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destructive: bool,
    /// Some attribute is irreversible: apply needs --allow-irreversible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub irreversible: bool,
    /// For humans only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A change the tool must not make itself: the exact step a person runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
    /// The declared account (`accounts:`) the resource is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnknownSetting {
    pub attribute: String,
    pub reason: String,
}

impl Change {
    /// The change with its sensitive values masked, for output and files.
    pub fn masked(&self) -> Change {
        Change { attributes: self.attributes.iter().map(AttrChange::masked).collect(), ..self.clone() }
    }

    pub fn new(address: Address, action: Action) -> Self {
        Change {
            address,
            action,
            attributes: Vec::new(),
            unknown: Vec::new(),
            conflicts: Vec::new(),
            destructive: false,
            irreversible: false,
            reason: None,
            manual: None,
            account: None,
        }
    }

    pub fn is_noop(&self) -> bool {
        self.action == Action::NoOp
    }

    /// Something `apply` itself will do.
    pub fn is_actionable(&self) -> bool {
        !self.is_noop() && self.manual.is_none() && self.conflicts.is_empty()
    }
}

/// One apply step (one API call) done, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub step: &'static str,
    pub result: Result<(), String>,
}

/// A step of apply that another kind depends on, named once: the provider
/// that makes it writes `name` as its step, the kinds that wait on it ask
/// `Prior` with the same constant ([`steps`]), so no step name is compared
/// as a bare string across providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepId {
    /// The kind whose resources make it.
    pub kind: &'static str,
    pub name: &'static str,
}

/// The steps other kinds depend on.
pub mod steps {
    use super::StepId;
    /// A key's alias made: what it names may take a moment to be visible
    /// (S3 waits for it before writing the key's ARN).
    pub const KMS_ALIAS: StepId = StepId { kind: "kms", name: "alias" };
    /// A role made: bucket and key policies naming it may be refused for a
    /// moment ("invalid principal").
    pub const IAM_CREATE_ROLE: StepId = StepId { kind: "iam", name: "create role" };
    /// Replication needs its buckets created and versioned.
    pub const S3_CREATE_BUCKET: StepId = StepId { kind: "s3", name: "create bucket" };
    pub const S3_VERSIONING: StepId = StepId { kind: "s3", name: "versioning" };
}

/// What apply did to one resource and its sub-resources.
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

/// The changes at `addr` and under it (`s3.B`, `s3.B.lifecycle.R`…), in order.
pub fn changes_under(changes: &[Change], addr: &Address) -> Vec<Change> {
    changes.iter().filter(|c| c.address.at_or_under(addr)).cloned().collect()
}

/// Is `addr` strictly under `parent` (`s3.B.replication` under `s3.B`)?
pub fn is_under(addr: &str, parent: &str) -> bool {
    addr.len() > parent.len() && addr.starts_with(parent) && addr.as_bytes()[parent.len()] == b'.'
}

/// An Unknown observation blocks every destructive change of the same
/// resource (`s3.B`, `iam.role.N`…): the change stays in the plan as a
/// conflict saying why, and apply does not make it.
pub fn block_destruction_on_unknown(changes: &mut [Change]) {
    let unknown: std::collections::BTreeSet<Address> =
        changes.iter().filter(|c| !c.unknown.is_empty()).map(|c| c.address.resource_addr()).collect();
    for c in changes.iter_mut().filter(|c| c.destructive) {
        let res = c.address.resource_addr();
        if unknown.contains(&res) {
            c.conflicts.push(format!("destructive change blocked: part of {res} could not be read"));
            c.action = Action::NoOp;
            c.destructive = false;
            c.attributes.clear();
        }
    }
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
    pub unknown: usize,
    pub conflicts: usize,
    pub manual: usize,
}

/// The whole plan: resources sorted by name, each followed by its
/// sub-resources in the order apply handles them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn new(changes: Vec<Change>) -> Self {
        Plan { changes }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                _ if c.manual.is_some() => {}
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
                Action::NoOp if c.unknown.is_empty() => s.unchanged += 1,
                Action::NoOp => {}
            }
            if !c.unknown.is_empty() {
                s.unknown += 1;
            }
            if !c.conflicts.is_empty() {
                s.conflicts += 1;
            }
            if c.manual.is_some() && !c.is_noop() {
                s.manual += 1;
            }
        }
        s
    }

    /// True when `apply` itself has something to do.
    pub fn has_actionable(&self) -> bool {
        self.changes.iter().any(Change::is_actionable)
    }

    /// True when the live state differs from the policy.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| !c.is_noop())
    }

    /// True when some part of the world could not be read or cannot be
    /// reconciled by the tool: the run cannot vouch for the result.
    pub fn is_incomplete(&self) -> bool {
        self.changes.iter().any(|c| !c.unknown.is_empty() || !c.conflicts.is_empty())
    }
}

#[cfg(test)]
mod tests {
    /// S3 bucket names may have dots: bucket `a.b` is not under the target
    /// `s3.a`, nor is bucket `a` read for the target `s3.a.b`.
    #[test]
    fn a_target_stops_where_another_resource_s_name_begins() {
        let resources = ["s3.a", "s3.a.b", "postgres.primary"].map(String::from);
        let t = |list: &[&str]| Targets::of(list.iter().map(|s| s.to_string()).collect()).among(resources.clone());
        let a = t(&["s3.a"]);
        for yes in ["s3.a", "s3.a.backups.dump", "s3.a.lifecycle.expire"] {
            assert!(a.covers(yes), "{yes}");
        }
        for no in ["s3.a.b", "s3.a.b.lifecycle.expire", "s3.ab"] {
            assert!(!a.covers(no) && !a.touches(no), "{no}");
        }
        let ab = t(&["s3.a.b"]);
        assert!(ab.covers("s3.a.b.backups.dump"));
        assert!(!ab.covers("s3.a") && !ab.touches("s3.a"), "s3.a holds no target");
        let part = t(&["s3.a.lifecycle.expire"]);
        assert!(part.touches("s3.a") && !part.covers("s3.a") && !part.touches("s3.a.b"));
        let both = t(&["s3.a", "s3.a.b"]);
        assert!(both.covers("s3.a.b.lifecycle.expire") && both.covers("s3.a.backups.dump"));
        // A kind covers all of its resources; a job's address is its instance's.
        assert!(t(&["s3"]).covers("s3.a.b"));
        assert!(t(&["postgres.primary"]).covers("postgres.primary.pitr"));
        // Without the policy's resources, names alone.
        assert!(Targets::of(vec!["s3.a".into()]).covers("s3.a.b"));
    }

    use super::*;

    #[test]
    fn an_address_knows_its_resource_even_with_dots_in_a_bucket_name() {
        let rule = Address::s3_bucket("logs.example.com").child("lifecycle").child("expire.old");
        assert_eq!(rule.as_str(), "s3.logs.example.com.lifecycle.expire.old");
        assert_eq!(rule.resource_addr(), Address::s3_bucket("logs.example.com"));
        assert!(rule.is_under(&Address::s3_bucket("logs.example.com")));
        assert!(!rule.is_under(&Address::s3_bucket("logs")), "s3.logs is another bucket");
        // Read back from text (saved plans), the first part segment ends the name.
        assert_eq!(Address::parse(rule.as_str()).resource_addr().as_str(), "s3.logs.example.com");
        let inline = Address::resource("iam.role", "writer").child("inline").child("write");
        assert_eq!(Address::parse(inline.as_str()).resource_addr().as_str(), "iam.role.writer");
        assert_eq!(Address::parse("redis.queues").resource_addr().as_str(), "redis.queues");
        assert_eq!(Address::parse("iam.role").resource_addr().as_str(), "iam.role");
        let json = serde_json::to_string(&rule).expect("json");
        assert_eq!(json, "\"s3.logs.example.com.lifecycle.expire.old\"");
        let back: Address = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, rule);
    }

    #[test]
    fn unknown_blocks_destruction_on_the_same_resource_only() {
        let mut unk = Change::new(Address::parse("s3.a"), Action::NoOp);
        unk.unknown.push(UnknownSetting { attribute: "versioning".into(), reason: "access denied".into() });
        let mut del_a = Change::new(Address::parse("s3.a.lifecycle.old"), Action::Delete);
        del_a.destructive = true;
        let mut del_b = Change::new(Address::parse("s3.b.lifecycle.old"), Action::Delete);
        del_b.destructive = true;
        let mut all = vec![unk, del_a, del_b];
        block_destruction_on_unknown(&mut all);
        assert_eq!(all[1].action, Action::NoOp);
        assert!(all[1].conflicts[0].contains("blocked: part of s3.a could not be read"));
        assert_eq!(all[2].action, Action::Delete, "another bucket is not affected");
    }
}
