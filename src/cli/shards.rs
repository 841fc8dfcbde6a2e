//! `audit --shard I/N` and `audit merge SHARD.json…`: an estate too large
//! for one runner audited as N deterministic shares (a CI matrix), then
//! joined into one report whose objectives are judged over the whole.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::audit::{Reached, Report, Shard};
use crate::model::control::{ControlResult, Status};
use crate::model::{Address, Targets};
use crate::policy::Policy;

/// Why a shard cannot be taken or shards cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {0}: write INDEX/OF, e.g. 1/4 (INDEX from 1 to OF)")]
    Syntax(String),
    #[error("cannot read {0}: {1}")]
    Unreadable(String, String),
    #[error("{0} is not an audit report in JSON (`audit --shard I/N --format json`): {1}")]
    NotJson(String, String),
    #[error("{0} is not a shard's report: it has no `shard` (run `audit --shard I/N --format json`)")]
    NotShard(String),
    #[error("`{0}` is not a control of this version")]
    UnknownControl(String),
    #[error("{0}: {1}")]
    BadControl(String, String),
    #[error("audit merge: name the shards' JSON reports")]
    NoShards,
    #[error("the shards are of different splits ({0} and {1})")]
    Splits(u32, u32),
    #[error("shard {0}/{1} is given twice")]
    Twice(u32, u32),
    #[error("shard(s) {0} missing: a merged report covers the whole estate")]
    Missing(String),
}

/// `I/N`, 1 ≤ I ≤ N.
pub fn parse(s: &str) -> Result<Shard, ShardError> {
    let bad = || ShardError::Syntax(s.to_string());
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (index, of): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if of == 0 || index == 0 || index > of {
        return Err(bad());
    }
    Ok(Shard { index, of })
}

/// The policy cut down to shard `s`: every resource ordered by account
/// (the declared ones by name, then the caller's undeclared), then by
/// address, and the `s.index`-th of `s.of` contiguous runs of it — so a
/// shard mostly stays in one account, and every resource is in exactly one
/// shard whatever machine computes it.
pub fn cut(policy: &Policy, s: Shard) -> Policy {
    let caller = policy.accounts.iter().find(|a| a.role.is_none()).map(|a| a.name.as_str());
    let mut labels: Vec<Option<&str>> = policy.accounts.iter().map(|a| Some(a.name.as_str())).collect();
    labels.sort();
    labels.push(None);
    let mut items: Vec<(Option<&str>, Address)> = Vec::new();
    for label in labels {
        let here = |a: Option<&str>| match label {
            Some(name) => a == Some(name) || (a.is_none() && caller == Some(name)),
            None => a.is_none() && caller.is_none(),
        };
        let part = crate::providers::in_account(policy, &here);
        let mut addresses: Vec<Address> =
            crate::providers::addresses(&part).into_iter().map(|a| a.resource_addr()).collect();
        addresses.sort();
        addresses.dedup();
        items.extend(addresses.into_iter().map(|a| (label, a)));
    }
    let n = items.len();
    let (from, to) = ((s.index as usize - 1) * n / s.of as usize, s.index as usize * n / s.of as usize);
    let mine: Vec<String> = items[from..to].iter().map(|(_, a)| a.to_string()).collect();
    if mine.is_empty() {
        // Nothing falls to this shard: a policy with no resource at all.
        return crate::providers::in_account(policy, &|_| false);
    }
    let all = crate::providers::addresses(policy).into_iter().map(|a| a.as_str().to_string());
    crate::providers::restricted(policy, &Targets::of(mine).among(all))
}

/// One shard's JSON report, read back.
struct Read {
    shard: Shard,
    doc: Value,
}

fn read(path: &Path) -> Result<Read, ShardError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ShardError::Unreadable(shown.clone(), e.to_string()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| ShardError::NotJson(shown.clone(), e.to_string()))?;
    let shard = serde_json::from_value::<Shard>(doc["shard"].clone()).map_err(|_| ShardError::NotShard(shown))?;
    Ok(Read { shard, doc })
}

/// A control of a shard's report, rebuilt on the registry's definition.
fn control(c: &Value) -> Result<ControlResult, ShardError> {
    let id = c["id"].as_str().unwrap_or_default();
    let def = crate::providers::control_def(id).ok_or_else(|| ShardError::UnknownControl(id.to_string()))?;
    let status: Status = serde_json::from_value(c["status"].clone())
        .map_err(|e| ShardError::BadControl(id.to_string(), e.to_string()))?;
    let mut r = def.result(
        &Address::parse(c["address"].as_str().unwrap_or_default()),
        status,
        c["expected"].clone(),
        c["observed"].clone(),
        c["detail"].as_str().map(str::to_string),
        c["remediation"].as_str().unwrap_or_default(),
        c["policy_line"].as_u64().unwrap_or(0),
    );
    r.waiver = serde_json::from_value(c["waiver"].clone()).ok();
    r.account = c["account"].as_str().map(str::to_string);
    Ok(r)
}

/// The shards' reports joined: every control once, what could not be read,
/// each account's verdict over all its shards, and the evidence the
/// objectives need. Err: a shard missing, twice, or of another split.
pub fn merge(files: &[&Path]) -> Result<(Report, Vec<Reached>), ShardError> {
    let shards: Vec<Read> = files.iter().map(|f| read(f)).collect::<Result<_, _>>()?;
    let of = shards.first().map(|s| s.shard.of).ok_or(ShardError::NoShards)?;
    let mut seen = BTreeSet::new();
    for s in &shards {
        if s.shard.of != of {
            return Err(ShardError::Splits(of, s.shard.of));
        }
        if !seen.insert(s.shard.index) {
            return Err(ShardError::Twice(s.shard.index, of));
        }
    }
    let missing: Vec<String> = (1..=of).filter(|i| !seen.contains(i)).map(|i| format!("{i}/{of}")).collect();
    if !missing.is_empty() {
        return Err(ShardError::Missing(missing.join(", ")));
    }
    let mut controls: Vec<ControlResult> = Vec::new();
    let mut once: BTreeSet<(String, &'static str)> = BTreeSet::new();
    let mut report = Report::new(Vec::new());
    let mut reached: Vec<Reached> = Vec::new();
    for s in &shards {
        for c in s.doc["controls"].as_array().into_iter().flatten() {
            let c = control(c)?;
            // Once: a bucket named like another's child (`a` and `a.b`) is
            // read by both their shards (`--target`'s prefix rule).
            if once.insert((c.address.to_string(), c.id)) {
                controls.push(c);
            }
        }
        for u in s.doc["unreached"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !report.unreached.iter().any(|x| x == u) {
                report.unreached.push(u.to_string());
            }
        }
        for a in s.doc["accounts"].as_array().into_iter().flatten() {
            let (name, id) = (a["name"].as_str().unwrap_or_default(), a["id"].as_str().unwrap_or_default());
            let why = a["reason"].as_str().map(str::to_string);
            match reached.iter_mut().find(|(n, ..)| n == name) {
                Some(r) => r.2 = r.2.take().or(why),
                None => reached.push((name.to_string(), id.to_string(), why)),
            }
        }
        let evidence = &s.doc["evidence"];
        report.identities.extend(serde_json::from_value::<Vec<_>>(evidence["identities"].clone()).unwrap_or_default());
        report
            .key_policies
            .extend(serde_json::from_value::<Vec<_>>(evidence["key_policies"].clone()).unwrap_or_default());
    }
    let Report { unreached, identities, key_policies, .. } = report;
    let mut report = Report::new(controls);
    (report.unreached, report.identities, report.key_policies) = (unreached, identities, key_policies);
    report.run = shards.first().and_then(|s| serde_json::from_value(s.doc["run"].clone()).ok());
    Ok((report, reached))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_falls_in_exactly_one_shard() {
        let text = "version: 1\naws: {region: us-east-1}\naccounts:\n  prod: {id: \"111111111111\"}\n  backup: {id: \"222222222222\", role: \"arn:aws:iam::222222222222:role/r\"}\ns3:\n  buckets:\n    bkt1: {}\n    bkt2: {account: backup}\n    bkt3: {}\n    bkt4: {account: backup}\n    bkt5: {}\niam:\n  roles:\n    w: {account: backup, trust: {Statement: [{Effect: Allow, Principal: {Service: s3.amazonaws.com}, Action: sts:AssumeRole}]}}\n";
        let policy = crate::policy::parse("p.yaml", text.as_bytes().to_vec(), &|_| None).expect("valid");
        let all: Vec<String> = crate::providers::addresses(&policy).iter().map(|a| a.to_string()).collect();
        for of in 1..=8 {
            let mut seen: Vec<String> = Vec::new();
            for index in 1..=of {
                let part = cut(&policy, Shard { index, of });
                seen.extend(crate::providers::addresses(&part).iter().map(|a| a.to_string()));
            }
            seen.sort();
            let mut want = all.clone();
            want.sort();
            assert_eq!(seen, want, "{of} shards");
        }
        // By account first: the backup account's resources come together.
        let first = cut(&policy, Shard { index: 1, of: 2 });
        let names: Vec<String> = crate::providers::addresses(&first).iter().map(|a| a.to_string()).collect();
        assert_eq!(names, ["iam.role.w", "s3.bkt2", "s3.bkt4"], "{names:?}");
    }

    #[test]
    fn shards_are_written_index_of() {
        assert_eq!(parse("2/3"), Ok(Shard { index: 2, of: 3 }));
        assert_eq!(parse("4/3"), Err(ShardError::Syntax("4/3".into())));
        for bad in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
