//! `access:` — who may put, get and delete a bucket's objects, whatever
//! their own IAM policies allow. Rendered as Deny statements of the bucket
//! policy, each owned by its Sid (every other statement is kept, as for the
//! TLS statement), that exempt the named principals through
//! `aws:PrincipalArn` (AWS IAM user guide, "AWS global condition context
//! keys": aws:PrincipalArn is the role's ARN for an assumed-role session;
//! "AWS JSON policy elements: NotPrincipal" recommends exactly this —
//! Principal "*" with an ARN condition on aws:PrincipalArn — over
//! NotPrincipal for resource policies).
//! Object actions, and — only where the policy names `administrators` —
//! the bucket's configuration: its policy, lifecycle and Object Lock, which
//! a principal could otherwise rewrite to lift the rest (governance-mode
//! retention included); the plan says when that would shut out the
//! caller, and apply refuses to. The audit
//! judges the live policy by meaning: an equivalent statement of another
//! team's counts.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::tls::PolicyDoc;
use crate::iamdoc::{denial, statements, Denial};
use crate::model::{Action, Address, AttrChange, Change, Observed, UnknownSetting};
use crate::providers::s3::section::Access;

pub const SID_WRITE: &str = "SuoopsPolicyOnlyWritersPut";
pub const SID_READ: &str = "SuoopsPolicyOnlyReadersGet";
pub const SID_DELETE: &str = "SuoopsPolicyNoDelete";
pub const SID_RECORDS: &str = "SuoopsPolicyOnlyReadersRecordDrills";
/// In a pgBackRest repository (`pitr.repo` in this bucket): pgBackRest,
/// run as the writers, reads its own files (archive.info, backup.info,
/// the WAL it checks) and expires them with DeleteObject, which on a
/// versioned bucket only adds delete markers; the versions stay locked
/// and no one but break glass deletes a version (pgBackRest aborts a
/// backup it cannot clean up after: pgbackrest/pgbackrest#2686).
pub const SID_REPO_READ: &str = "SuoopsPolicyRepoReadersAndWritersGet";
pub const SID_REPO_EXPIRE: &str = "SuoopsPolicyRepoOnlyWritersExpire";
pub const SID_REPO_VERSIONS: &str = "SuoopsPolicyRepoNoVersionDelete";
/// Only the administrators (and break glass) change the bucket's policy,
/// lifecycle and Object Lock configuration.
pub const SID_CONFIG: &str = "SuoopsPolicyOnlyAdministratorsReconfigure";
/// Readers of another account than the bucket's: a request across
/// accounts needs the bucket policy's Allow as well as the reader's own
/// IAM policy (AWS IAM user guide, "Cross-account policy evaluation
/// logic"); the Deny statements only keep everyone else out.
pub const SID_OTHER_READERS: &str = "SuoopsPolicyReadersOfOtherAccounts";
/// The Sids this tool owns in a bucket with `access:`.
pub const SIDS: [&str; 9] = [
    SID_WRITE,
    SID_READ,
    SID_DELETE,
    SID_RECORDS,
    SID_REPO_READ,
    SID_REPO_EXPIRE,
    SID_REPO_VERSIONS,
    SID_CONFIG,
    SID_OTHER_READERS,
];
pub use crate::jobs::RECORDS;

/// Writing an object: PutObject covers PutObject, CopyObject and every
/// step of a multipart upload (AWS S3 API permissions reference);
/// replicas are written with ReplicateObject/ReplicateDelete.
pub const WRITE: &[&str] = &["s3:PutObject", "s3:ReplicateDelete", "s3:ReplicateObject"];
/// Reading an object, any version, also as replication reads it.
pub const READ: &[&str] = &["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectVersionForReplication"];
/// Removing data: a delete (marker), a version, or lifting governance
/// retention. Lifecycle expiration is done by S3 and not subject to it.
pub const DELETE: &[&str] = &["s3:BypassGovernanceRetention", "s3:DeleteObject", "s3:DeleteObjectVersion"];
/// Rewriting what protects the objects: whoever may delete the bucket
/// policy removes its Deny statements (`s3:*` includes it), and a
/// lifecycle rule or a new lock configuration can cut retention short
/// (AWS S3 user guide, "Object Lock considerations": governance mode can
/// be bypassed by principals who may remove the policy that denies it).
pub const CONFIG: &[&str] = &[
    "s3:DeleteBucketPolicy",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketPolicy",
    "s3:PutLifecycleConfiguration",
];

/// What the multipart writer and the replication role must keep (checked
/// against the rendered statements in the tests).
pub const WRITER_NEEDS: &[&str] = &["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"];

pub fn address(bucket: &str) -> Address {
    Address::s3_bucket(bucket).child("access")
}

/// A principal of `access:` as observed: a role name resolved to its ARN
/// (GetRole: the ARN carries the role's path), or why it is not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    Arn(String),
    /// A role the policy declares and this apply creates.
    AfterApply,
    /// No such role, and the policy does not declare it.
    Missing,
    Unknown(String),
}

/// The restriction with every principal an ARN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    pub writers: Option<Vec<String>>,
    pub readers: Option<Vec<String>>,
    pub deny_delete: bool,
    pub break_glass: Vec<String>,
    /// Who may change the bucket's configuration; None: not restricted.
    pub administrators: Option<Vec<String>>,
    /// pgBackRest repository prefixes in the bucket.
    pub repos: Vec<String>,
    /// The bucket's account id, when the policy declares accounts.
    pub home: Option<String>,
}

impl Resolved {
    /// The readers (ARNs) in another account than the bucket's.
    fn other_readers(&self) -> Vec<&String> {
        let Some(home) = &self.home else { return Vec::new() };
        let other = |a: &&String| a.split(':').nth(4).is_some_and(|acct| !acct.is_empty() && acct != home);
        self.readers.iter().flatten().filter(other).collect()
    }

    /// `drills/` is reserved for restore-drill records, written by the
    /// readers (who run the drills) and nobody else: whenever readers are
    /// restricted (so the statements do not depend on which drills the
    /// policy declares, and an imported bucket plans clean).
    fn records(&self) -> bool {
        self.readers.is_some()
    }
}

/// Why the restriction cannot be rendered yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    #[error("role(s) {} do not exist yet", .0.join(", "))]
    /// Roles this apply creates: known after apply.
    Pending(Vec<String>),
    #[error("role(s) {} do not exist", .0.join(", "))]
    Missing(Vec<String>),
    #[error("{0}")]
    Unknown(String),
}

/// Resolve every role name of `want` through `principals`.
pub fn resolve(want: &Access, principals: &BTreeMap<String, Principal>) -> Result<Resolved, Unresolved> {
    let (mut pending, mut missing, mut unknown) = (Vec::new(), Vec::new(), None);
    let mut one = |p: &String| -> Option<String> {
        if p.starts_with("arn:") || crate::policy::is_service_principal(p) {
            return Some(p.clone());
        }
        match principals.get(p) {
            Some(Principal::Arn(a)) => Some(a.clone()),
            Some(Principal::AfterApply) => {
                pending.push(p.clone());
                None
            }
            Some(Principal::Unknown(r)) => {
                unknown = Some(r.clone());
                None
            }
            Some(Principal::Missing) | None => {
                missing.push(p.clone());
                None
            }
        }
    };
    let mut list = |l: &Option<Vec<String>>| l.as_ref().map(|v| v.iter().filter_map(&mut one).collect::<Vec<_>>());
    let r = Resolved {
        writers: list(&want.writers),
        readers: list(&want.readers),
        deny_delete: want.deny_delete,
        break_glass: list(&Some(want.break_glass.clone())).unwrap_or_default(),
        administrators: list(&want.administrators),
        repos: want.repos.clone(),
        home: want.home.clone(),
    };
    if let Some(reason) = unknown {
        return Err(Unresolved::Unknown(reason));
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(Unresolved::Missing(missing));
    }
    if !pending.is_empty() {
        pending.sort();
        pending.dedup();
        return Err(Unresolved::Pending(pending));
    }
    Ok(r)
}

fn deny(sid: &str, actions: &[&str], bucket: &str, exempt: Vec<String>) -> Value {
    let mut exempt = exempt;
    exempt.sort();
    exempt.dedup();
    let mut st = json!({
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": format!("arn:aws:s3:::{bucket}/*"),
    });
    // No one exempt: the statement denies everyone. Services are exempt
    // by name: a service principal's request has aws:PrincipalServiceName
    // and no aws:PrincipalArn (so ArnNotLike holds for it), an IAM
    // principal's the reverse (so …IfExists holds for it): each condition
    // lets its own kind through (AWS IAM user guide, "AWS global condition
    // context keys": aws:PrincipalServiceName).
    let (services, arns): (Vec<String>, Vec<String>) =
        exempt.into_iter().partition(|p| crate::policy::is_service_principal(p));
    let mut cond = serde_json::Map::new();
    if !arns.is_empty() || services.is_empty() {
        cond.insert("ArnNotLike".into(), json!({"aws:PrincipalArn": arns}));
    }
    if !services.is_empty() {
        cond.insert("StringNotEqualsIfExists".into(), json!({"aws:PrincipalServiceName": services}));
    }
    if cond.get("ArnNotLike").is_some_and(|c| c["aws:PrincipalArn"].as_array().is_some_and(|a| a.is_empty())) {
        cond.remove("ArnNotLike");
    }
    if !cond.is_empty() {
        st["Condition"] = Value::Object(cond);
    }
    st
}

/// The statements `r` renders to, in Sid order.
pub fn desired_statements(bucket: &str, r: &Resolved) -> Vec<Value> {
    let with_glass = |l: &Vec<String>| [l.clone(), r.break_glass.clone()].concat();
    let mut out = Vec::new();
    if let Some(w) = &r.writers {
        let mut st = deny(SID_WRITE, WRITE, bucket, with_glass(w));
        // Drill records are not backups: the writers statement covers every
        // object but them, and the next one says who records drills.
        if r.records() {
            if let Value::Object(m) = &mut st {
                m.remove("Resource");
                m.insert("NotResource".into(), json!(format!("arn:aws:s3:::{bucket}/{RECORDS}*")));
            }
        }
        out.push(st);
    }
    if let Some(rd) = &r.readers {
        let mut exempt = with_glass(rd);
        exempt.extend(r.writers.iter().flatten().cloned());
        let mut st = deny(SID_RECORDS, &["s3:PutObject"], bucket, exempt);
        st["Resource"] = json!(format!("arn:aws:s3:::{bucket}/{RECORDS}*"));
        out.push(st);
    }
    let repos: Vec<String> = r.repos.iter().map(|p| format!("arn:aws:s3:::{bucket}/{p}*")).collect();
    // Outside the repositories, when there are any.
    let outside = |mut st: Value| {
        if !repos.is_empty() {
            if let Value::Object(m) = &mut st {
                m.remove("Resource");
                m.insert("NotResource".into(), json!(repos));
            }
        }
        st
    };
    let inside = |mut st: Value| {
        st["Resource"] = json!(repos);
        st
    };
    let writers = r.writers.clone().unwrap_or_default();
    if let Some(rd) = &r.readers {
        out.push(outside(deny(SID_READ, READ, bucket, with_glass(rd))));
        if !repos.is_empty() {
            let exempt = [with_glass(rd), writers.clone()].concat();
            out.push(inside(deny(SID_REPO_READ, READ, bucket, exempt)));
        }
    }
    let others = r.other_readers();
    if !others.is_empty() {
        out.push(json!({
            "Sid": SID_OTHER_READERS,
            "Effect": "Allow",
            "Principal": {"AWS": others},
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        }));
    }
    if let Some(admins) = &r.administrators {
        let mut st = deny(SID_CONFIG, CONFIG, bucket, with_glass(admins));
        st["Resource"] = json!(format!("arn:aws:s3:::{bucket}"));
        out.push(st);
    }
    if r.deny_delete {
        out.push(outside(deny(SID_DELETE, DELETE, bucket, r.break_glass.clone())));
        if !repos.is_empty() {
            out.push(inside(deny(SID_REPO_EXPIRE, &["s3:DeleteObject"], bucket, with_glass(&writers))));
            out.push(inside(deny(
                SID_REPO_VERSIONS,
                &["s3:BypassGovernanceRetention", "s3:DeleteObjectVersion"],
                bucket,
                r.break_glass.clone(),
            )));
        }
    }
    out
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// One line per statement, for the plan.
pub fn explain(r: &Resolved) -> String {
    let names = |l: &[String]| l.iter().map(|a| short(a).to_string()).collect::<Vec<_>>().join(", ");
    let glass =
        if r.break_glass.is_empty() { String::new() } else { format!(" (and break glass: {})", names(&r.break_glass)) };
    let mut parts = Vec::new();
    if let Some(w) = &r.writers {
        parts.push(format!("{SID_WRITE}: only {} may put objects{glass}", or_nobody(&names(w))));
    }
    if let Some(rd) = &r.readers {
        parts.push(format!("{SID_READ}: only {} may get objects{glass}", or_nobody(&names(rd))));
    }
    if let Some(rd) = &r.readers {
        parts.push(format!(
            "{SID_RECORDS}: restore drills ({}) record their results under {RECORDS}, the only place they may write",
            or_nobody(&names(rd))
        ));
    }
    if let Some(admins) = &r.administrators {
        parts.push(format!(
            "{SID_CONFIG}: only {}{glass} may change the bucket's policy, lifecycle or Object Lock configuration",
            or_nobody(&names(admins))
        ));
    }
    if r.deny_delete {
        parts.push(format!(
            "{SID_DELETE}: nobody{} deletes objects or versions (lifecycle expiration still runs)",
            if r.break_glass.is_empty() { String::new() } else { format!(" but {}", names(&r.break_glass)) }
        ));
    }
    if !r.repos.is_empty() {
        let writers = names(r.writers.as_deref().unwrap_or_default());
        parts.push(format!(
            "in the pgBackRest repository ({}) {} also read{} and expire (delete markers only; no version is deleted)",
            r.repos.join(", "),
            or_nobody(&writers),
            if r.writers.as_ref().is_some_and(|w| w.len() == 1) { "s" } else { "" }
        ));
    }
    parts.push("other statements of the bucket policy are kept".into());
    parts.join("; ")
}

fn or_nobody(s: &str) -> &str {
    if s.is_empty() {
        "nobody"
    } else {
        s
    }
}

fn ours(doc: Option<&PolicyDoc>) -> Vec<&Value> {
    doc.map(|d| {
        statements(&d.json)
            .into_iter()
            .filter(|s| s.get("Sid").and_then(Value::as_str).is_some_and(|sid| SIDS.contains(&sid)))
            .collect()
    })
    .unwrap_or_default()
}

/// A principal no exemption names, to probe what the policy denies.
const OUTSIDER: &str = "arn:aws:iam::000000000000:role/suoops-policy-probe-outsider";

/// The probes: an outsider of another account, and one of each account the
/// restriction's principals belong to (the bucket's own, in practice). A
/// statement that denies only other accounts (`ArnNotLike aws:PrincipalArn
/// arn:aws:iam::ACCOUNT:*`) denies the first and not the others, and
/// enforces nothing against the account's own principals.
fn outsiders(r: &Resolved) -> Vec<String> {
    let mut accounts: Vec<&str> = r
        .writers
        .iter()
        .flatten()
        .chain(r.readers.iter().flatten())
        .chain(r.break_glass.iter())
        .chain(r.administrators.iter().flatten())
        .filter_map(|arn| arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .collect();
    accounts.sort();
    accounts.dedup();
    std::iter::once(OUTSIDER.to_string())
        .chain(accounts.into_iter().map(|a| format!("arn:aws:iam::{a}:role/suoops-policy-probe-outsider")))
        .collect()
}

/// Whether the live policy, by meaning, enforces `r`: everyone else is
/// denied each restricted action, and the named principals are not.
/// Returns each gap as a sentence.
pub fn enforced(doc: Option<&PolicyDoc>, bucket: &str, r: &Resolved) -> Result<(), Vec<String>> {
    let empty = json!({"Statement": []});
    let json = doc.map_or(&empty, |d| &d.json);
    let object = format!("arn:aws:s3:::{bucket}/any/object");
    let mut gaps = Vec::new();
    let probes = outsiders(r);
    let mut check = |what: &str, actions: &[&str], allowed: &[String], on: &str| {
        let open: Vec<&str> = actions
            .iter()
            .copied()
            .filter(|a| probes.iter().any(|p| denial(json, p, a, on) != Denial::Denied))
            .collect();
        if !open.is_empty() {
            gaps.push(format!("principals other than the {what} are not denied {}", open.join(", ")));
        }
        for p in allowed {
            let shut: Vec<&str> =
                actions.iter().copied().filter(|a| denial(json, p, a, on) == Denial::Denied).collect();
            if !shut.is_empty() {
                gaps.push(format!("{p} is denied {}", shut.join(", ")));
            }
        }
    };
    let with_glass = |l: &Vec<String>| [l.clone(), r.break_glass.clone()].concat();
    if let Some(w) = &r.writers {
        check("writers", &["s3:PutObject"], &with_glass(w), &object);
    }
    if let Some(rd) = &r.readers {
        check("readers", &["s3:GetObject", "s3:GetObjectVersion"], &with_glass(rd), &object);
    }
    if r.deny_delete {
        check("break-glass principals", &["s3:DeleteObject", "s3:DeleteObjectVersion"], &r.break_glass, &object);
    }
    // The bucket's configuration: its policy, lifecycle and lock.
    if let Some(admins) = &r.administrators {
        check("administrators", CONFIG, &with_glass(admins), &format!("arn:aws:s3:::{bucket}"));
    }
    for reader in r.other_readers() {
        let grant = crate::iamdoc::principal_may(json, reader, "s3:GetObject", &object);
        if !matches!(grant, crate::iamdoc::Grant::Allowed(_)) {
            gaps.push(format!("{reader}, of another account, is not allowed s3:GetObject by the bucket policy"));
        }
    }
    // In each pgBackRest repository: the writers read and expire, and
    // still delete no version.
    let writers = r.writers.clone().unwrap_or_default();
    for prefix in &r.repos {
        let object = format!("arn:aws:s3:::{bucket}/{prefix}archive/any");
        let mut at = |what: &str, action: &str, allowed: &[String], denied: &[String]| {
            if probes.iter().any(|p| denial(json, p, action, &object) != Denial::Denied) {
                gaps.push(format!("in {prefix}, principals other than the {what} are not denied {action}"));
            }
            for p in allowed.iter().filter(|p| denial(json, p, action, &object) == Denial::Denied) {
                gaps.push(format!("in {prefix}, {p} is denied {action}"));
            }
            for p in denied.iter().filter(|p| denial(json, p, action, &object) != Denial::Denied) {
                gaps.push(format!("in {prefix}, {p} is not denied {action}"));
            }
        };
        if let Some(rd) = &r.readers {
            at("readers and writers", "s3:GetObject", &[with_glass(rd), writers.clone()].concat(), &[]);
        }
        if r.deny_delete {
            at("writers", "s3:DeleteObject", &with_glass(&writers), &[]);
            at("break-glass principals", "s3:DeleteObjectVersion", &r.break_glass, &writers);
        }
    }
    if gaps.is_empty() {
        Ok(())
    } else {
        Err(gaps)
    }
}

/// Whether the caller (GetCallerIdentity's ARN) is among `exempt` as
/// `ArnNotLike aws:PrincipalArn` matches it: an assumed-role session is
/// its role (`arn:aws:sts::A:assumed-role/NAME/S` is role NAME of account
/// A: AWS IAM user guide, "AWS global condition context keys":
/// aws:PrincipalArn; the session ARN carries no path, so the name
/// decides), a user or the root is itself.
pub fn caller_exempt(caller: &str, exempt: &[String]) -> bool {
    let session = caller.strip_prefix("arn:aws:sts::").and_then(|rest| {
        let (account, role) = rest.split_once(":assumed-role/")?;
        Some((account, role.split('/').next()?))
    });
    exempt.iter().any(|e| {
        crate::iamdoc::glob(e, caller)
            || session.is_some_and(|(account, name)| {
                crate::iamdoc::glob(e, &format!("arn:aws:iam::{account}:role/{name}"))
                    || (e.split(':').nth(4) == Some(account)
                        && e.contains(":role/")
                        && crate::iamdoc::glob(e.rsplit('/').next().unwrap_or(e), name))
            })
    })
}

/// Why writing `r` would shut `caller` out of the bucket's configuration,
/// if it would.
pub fn locks_out(r: &Resolved, caller: Option<&str>) -> Option<String> {
    let admins = r.administrators.as_ref()?;
    let caller = caller?;
    let exempt = [admins.clone(), r.break_glass.clone()].concat();
    (!caller_exempt(caller, &exempt)).then(|| {
        format!(
            "{caller} (who runs this) is neither among access.administrators nor break glass: {SID_CONFIG} would deny it the bucket's policy, lifecycle and Object Lock configuration; apply refuses to write it unless run as one of them"
        )
    })
}

/// The plan for the bucket's access statements.
pub fn diff(
    bucket: &str,
    want: &Access,
    principals: &BTreeMap<String, Principal>,
    seen: &Observed<PolicyDoc>,
    caller: Option<&str>,
) -> Change {
    let mut c = Change::new(address(bucket), Action::NoOp);
    let Some(doc) = super::tls::readable(seen, &mut c) else { return c };
    let mine: BTreeMap<&str, &Value> =
        ours(doc).into_iter().filter_map(|s| Some((s.get("Sid")?.as_str()?, s))).collect();
    let resolved = match resolve(want, principals) {
        Ok(r) => r,
        Err(Unresolved::Unknown(reason)) => {
            c.unknown.push(UnknownSetting { attribute: "access principals".into(), reason });
            return c;
        }
        Err(Unresolved::Missing(names)) => {
            c.conflicts.push(format!(
                "access names role(s) that do not exist and are not declared under iam.roles: {}; declare them, or write their ARNs",
                names.join(", ")
            ));
            return c;
        }
        Err(Unresolved::Pending(names)) => {
            c.action = if mine.is_empty() { Action::Create } else { Action::Update };
            c.attributes.push(AttrChange::new(
                "statements",
                None,
                json!(format!("(known after apply: the ARNs of role(s) {})", names.join(", "))),
            ));
            // Explained with the role names, as they will be.
            let named: BTreeMap<String, Principal> = principals
                .iter()
                .map(|(k, v)| match v {
                    Principal::AfterApply => (k.clone(), Principal::Arn(k.clone())),
                    other => (k.clone(), other.clone()),
                })
                .collect();
            c.reason = resolve(want, &named).ok().map(|r| explain(&r));
            return c;
        }
    };
    let desired = desired_statements(bucket, &resolved);
    for sid in SIDS {
        let want_st = desired.iter().find(|s| s["Sid"] == sid);
        let have = mine.get(sid).copied();
        match (want_st, have) {
            (Some(w), Some(h)) if crate::iamdoc::statement(w) == crate::iamdoc::statement(h) => {}
            (Some(w), h) => c.attributes.push(AttrChange::new(&format!("statement {sid}"), h.cloned(), w.clone())),
            (None, Some(h)) => {
                c.attributes.push(AttrChange::new(&format!("statement {sid}"), Some(h.clone()), Value::Null));
            }
            (None, None) => {}
        }
    }
    if c.attributes.is_empty() {
        return c;
    }
    // Another statement may already say the same: nothing to write.
    if mine.is_empty() && enforced(doc, bucket, &resolved).is_ok() {
        c.attributes.clear();
        c.reason = Some("already enforced by other statements of the bucket policy".into());
        return c;
    }
    c.action = if mine.is_empty() { Action::Create } else { Action::Update };
    c.reason = Some(explain(&resolved));
    if let Some(why) = locks_out(&resolved, caller) {
        c.reason = c.reason.map(|r| format!("{r}; WARNING: {why}"));
    }
    super::tls::refuse_deleted_principals(doc, &SIDS, &mut c);
    c
}

/// What `import` reads back from the tool's own statements: writers,
/// readers (each with the break-glass principals taken out), deny_delete
/// and break_glass.
pub fn read_back(doc: &PolicyDoc) -> Option<Access> {
    let mine = ours(Some(doc));
    if mine.is_empty() {
        return None;
    }
    let exempt = |sid: &str| -> Option<Vec<String>> {
        let st = mine.iter().find(|s| s["Sid"] == sid)?;
        let c = crate::iamdoc::statement(st);
        let at = |path: &str| -> Vec<String> {
            c.pointer(path)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default()
        };
        Some(
            [
                at("/Condition/ArnNotLike/aws:principalarn"),
                at("/Condition/StringNotEqualsIfExists/aws:principalservicename"),
            ]
            .concat(),
        )
    };
    let break_glass = exempt(SID_DELETE).unwrap_or_default();
    let without = |l: Vec<String>| l.into_iter().filter(|p| !break_glass.contains(p)).collect::<Vec<_>>();
    Some(Access {
        writers: exempt(SID_WRITE).map(without),
        readers: exempt(SID_READ).map(without),
        deny_delete: exempt(SID_DELETE).is_some(),
        administrators: exempt(SID_CONFIG).map(without),
        break_glass: break_glass.clone(),
        // From the policy's `pitr:` entries, not from the statements.
        repos: Vec::new(),
        home: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITER: &str = "arn:aws:iam::123456789012:role/suoops-backup-writer";
    const RESTORE: &str = "arn:aws:iam::123456789012:role/suoops-backup-restore";
    const REPL: &str = "arn:aws:iam::123456789012:role/service/suoops-s3-replication";
    const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admin";

    fn resolved() -> Resolved {
        Resolved {
            writers: Some(vec![WRITER.into()]),
            readers: Some(vec![RESTORE.into(), REPL.into()]),
            deny_delete: true,
            break_glass: vec![ADMIN.into()],
            administrators: None,
            repos: vec![],
            home: None,
        }
    }

    fn doc(sts: Vec<Value>) -> PolicyDoc {
        PolicyDoc { json: json!({"Version": "2012-10-17", "Statement": sts}) }
    }

    #[test]
    fn the_rendered_statements_deny_everyone_but_the_named_principals() {
        let d = doc(desired_statements("b", &resolved()));
        let j = &d.json;
        let obj = "arn:aws:s3:::b/postgres/20261130T020000Z.dump";
        let outsider = "arn:aws:iam::123456789012:role/ci-admin";
        let root = "arn:aws:iam::123456789012:root";
        // Nobody outside break glass deletes a version: not the writer,
        // not an admin role, not the account root.
        for p in [WRITER, RESTORE, outsider, root] {
            assert_eq!(denial(j, p, "s3:DeleteObjectVersion", obj), Denial::Denied, "{p}");
            assert_eq!(denial(j, p, "s3:DeleteObject", obj), Denial::Denied, "{p}");
            assert_eq!(denial(j, p, "s3:BypassGovernanceRetention", obj), Denial::Denied, "{p}");
        }
        assert_eq!(denial(j, ADMIN, "s3:DeleteObjectVersion", obj), Denial::NotDenied);
        // Only the writer puts, with every multipart step.
        for a in WRITER_NEEDS {
            assert_eq!(denial(j, WRITER, a, obj), Denial::NotDenied, "{a}");
        }
        assert_eq!(denial(j, outsider, "s3:PutObject", obj), Denial::Denied);
        assert_eq!(denial(j, RESTORE, "s3:PutObject", obj), Denial::Denied);
        // Only the restore role and replication read.
        assert_eq!(denial(j, RESTORE, "s3:GetObject", obj), Denial::NotDenied);
        assert_eq!(denial(j, WRITER, "s3:GetObject", obj), Denial::Denied);
        for a in ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"] {
            assert_eq!(denial(j, REPL, a, obj), Denial::NotDenied, "{a}");
        }
        // Bucket configuration is never denied: apply cannot lock itself out.
        for a in ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:ListBucket", "s3:PutLifecycleConfiguration"] {
            assert_eq!(denial(j, outsider, a, "arn:aws:s3:::b"), Denial::NotDenied, "{a}");
        }
        assert_eq!(enforced(Some(&d), "b", &resolved()), Ok(()));
    }

    #[test]
    fn pgbackrest_reads_and_expires_its_repository_and_deletes_no_version() {
        let r = Resolved { repos: vec!["pgbackrest/".into()], ..resolved() };
        let d = doc(desired_statements("b", &r));
        let j = &d.json;
        let (repo, dump) =
            ("arn:aws:s3:::b/pgbackrest/archive/s/15-1/0000000100000000/x.zst", "arn:aws:s3:::b/postgres/1.dump");
        let outsider = "arn:aws:iam::123456789012:role/ci-admin";
        // The writer (pgBackRest) reads and expires its own files…
        assert_eq!(denial(j, WRITER, "s3:GetObject", repo), Denial::NotDenied);
        assert_eq!(denial(j, WRITER, "s3:PutObject", repo), Denial::NotDenied);
        assert_eq!(denial(j, WRITER, "s3:DeleteObject", repo), Denial::NotDenied);
        // …never deletes a version or lifts the lock, there or elsewhere…
        for a in ["s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"] {
            assert_eq!(denial(j, WRITER, a, repo), Denial::Denied, "{a}");
            assert_eq!(denial(j, ADMIN, a, repo), Denial::NotDenied, "{a}");
        }
        // …and stays write-only on the dumps.
        assert_eq!(denial(j, WRITER, "s3:GetObject", dump), Denial::Denied);
        assert_eq!(denial(j, WRITER, "s3:DeleteObject", dump), Denial::Denied);
        // The restore role reads the repository (restore, the drill, audit).
        assert_eq!(denial(j, RESTORE, "s3:GetObject", repo), Denial::NotDenied);
        assert_eq!(denial(j, RESTORE, "s3:DeleteObject", repo), Denial::Denied);
        for a in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
            assert_eq!(denial(j, outsider, a, repo), Denial::Denied, "{a}");
        }
        assert_eq!(enforced(Some(&d), "b", &r), Ok(()));
        // The statements without the carve-out leave pgBackRest unable to
        // clean up: a gap, named.
        let plain = doc(desired_statements("b", &resolved()));
        let gaps = enforced(Some(&plain), "b", &r).unwrap_err();
        assert!(gaps.iter().any(|g| g == &format!("in pgbackrest/, {WRITER} is denied s3:DeleteObject")), "{gaps:?}");
        assert!(gaps.iter().any(|g| g == &format!("in pgbackrest/, {WRITER} is denied s3:GetObject")), "{gaps:?}");
    }

    #[test]
    fn a_named_service_may_write_and_no_other_service_may() {
        // S3 server access logging writes as a service principal: no
        // aws:PrincipalArn in its requests, so an ArnNotLike exemption
        // alone denies it (a negated operator holds when the key is absent).
        let logs = "logging.s3.amazonaws.com";
        let r = Resolved { writers: Some(vec![WRITER.into(), logs.into()]), ..resolved() };
        let d = doc(desired_statements("b", &r));
        let j = &d.json;
        let obj = "arn:aws:s3:::b/logs/2026-12-03-00-00-00";
        assert_eq!(denial(j, logs, "s3:PutObject", obj), Denial::NotDenied);
        assert_eq!(denial(j, WRITER, "s3:PutObject", obj), Denial::NotDenied);
        assert_eq!(denial(j, "inventory.s3.amazonaws.com", "s3:PutObject", obj), Denial::Denied);
        assert_eq!(denial(j, "arn:aws:iam::123456789012:role/ci-admin", "s3:PutObject", obj), Denial::Denied);
        // Not a reader, and no delete for it either.
        assert_eq!(denial(j, logs, "s3:GetObject", obj), Denial::Denied);
        assert_eq!(denial(j, logs, "s3:DeleteObject", obj), Denial::Denied);
        let st = j["Statement"].as_array().expect("sts").iter().find(|s| s["Sid"] == SID_WRITE).expect("write").clone();
        assert_eq!(st["Condition"]["StringNotEqualsIfExists"]["aws:PrincipalServiceName"], json!([logs]));
        assert_eq!(enforced(Some(&d), "b", &r), Ok(()));
        // Without the service in the list, its writes are a gap only for it.
        let plain = doc(desired_statements("b", &resolved()));
        let gaps = enforced(Some(&plain), "b", &r).unwrap_err();
        assert_eq!(gaps, [format!("{logs} is denied s3:PutObject")]);
        // Read back by import with the service.
        let back = read_back(&d).expect("ours");
        assert!(back.writers.as_ref().is_some_and(|w| w.contains(&logs.to_string())), "{back:?}");
    }

    #[test]
    fn drill_records_are_written_by_readers_under_drills_only() {
        let r = resolved();
        let d = doc(desired_statements("b", &r));
        let j = &d.json;
        let (dump, record) = ("arn:aws:s3:::b/postgres/1.dump", "arn:aws:s3:::b/drills/postgres.primary/1.json");
        assert_eq!(denial(j, RESTORE, "s3:PutObject", record), Denial::NotDenied);
        assert_eq!(denial(j, RESTORE, "s3:PutObject", dump), Denial::Denied, "still read-only on the backups");
        assert_eq!(denial(j, WRITER, "s3:PutObject", dump), Denial::NotDenied);
        let outsider = "arn:aws:iam::123456789012:role/ci-admin";
        assert_eq!(denial(j, outsider, "s3:PutObject", record), Denial::Denied);
        assert_eq!(denial(j, outsider, "s3:PutObject", dump), Denial::Denied);
        assert_eq!(enforced(Some(&d), "b", &r), Ok(()));
    }

    #[test]
    fn administrators_alone_may_reconfigure_and_the_caller_is_never_shut_out() {
        const CI: &str = "arn:aws:iam::123456789012:role/ci/suoops-apply";
        let r = Resolved { administrators: Some(vec![CI.into()]), ..resolved() };
        let sts = desired_statements("b", &r);
        let cfg = sts.iter().find(|s| s["Sid"] == SID_CONFIG).expect("config statement");
        assert_eq!(cfg["Resource"], "arn:aws:s3:::b");
        assert_eq!(cfg["Action"], json!(CONFIG));
        assert_eq!(cfg["Condition"]["ArnNotLike"]["aws:PrincipalArn"], json!([CI, ADMIN]));
        assert_eq!(enforced(Some(&doc(sts.clone())), "b", &r), Ok(()));
        // Without it: everyone else may still rewrite the policy.
        let without: Vec<Value> = sts.into_iter().filter(|s| s["Sid"] != SID_CONFIG).collect();
        let gaps = enforced(Some(&doc(without)), "b", &r).expect_err("gaps");
        assert!(
            gaps[0].starts_with("principals other than the administrators are not denied s3:DeleteBucketPolicy"),
            "{gaps:?}"
        );
        // The caller as GetCallerIdentity names it: a session of the
        // administrators' role (no path in the session ARN), break glass,
        // or someone else.
        assert!(caller_exempt("arn:aws:sts::123456789012:assumed-role/suoops-apply/gha-42", &[CI.into()]));
        assert!(caller_exempt("arn:aws:sts::123456789012:assumed-role/platform-admin/me", &[ADMIN.into()]));
        assert!(!caller_exempt("arn:aws:sts::123456789012:assumed-role/suoops-backup-writer/x", &[CI.into()]));
        assert!(!caller_exempt("arn:aws:sts::999999999999:assumed-role/suoops-apply/x", &[CI.into()]));
        assert!(caller_exempt("arn:aws:iam::123456789012:root", &["arn:aws:iam::123456789012:root".into()]));
        assert_eq!(locks_out(&r, Some("arn:aws:sts::123456789012:assumed-role/suoops-apply/gha")), None);
        let why = locks_out(&r, Some("arn:aws:iam::123456789012:user/alice")).expect("locked out");
        assert!(why.starts_with("arn:aws:iam::123456789012:user/alice (who runs this) is neither"), "{why}");
        assert_eq!(locks_out(&resolved(), Some("arn:aws:iam::123456789012:user/alice")), None);
    }

    #[test]
    fn an_equivalent_foreign_statement_counts_and_a_weaker_one_does_not() {
        let r = Resolved {
            writers: None,
            readers: None,
            deny_delete: true,
            break_glass: vec![ADMIN.into()],
            administrators: None,
            repos: vec![],
            home: None,
        };
        let theirs = doc(vec![json!({
            "Sid": "TheirWorm", "Effect": "Deny", "Principal": {"AWS": "*"},
            "Action": ["s3:DeleteObject*"], "Resource": "arn:aws:s3:::b/*",
            "Condition": {"StringNotLike": {"aws:PrincipalARN": [ADMIN]}}
        })]);
        assert_eq!(enforced(Some(&theirs), "b", &r), Ok(()));
        let c = diff(
            "b",
            &Access { deny_delete: true, break_glass: vec![ADMIN.into()], ..Default::default() },
            &BTreeMap::new(),
            &Observed::Present(theirs),
            None,
        );
        assert_eq!(c.action, Action::NoOp, "{c:?}");
        // Conditioned on something else: not known to deny.
        let weaker = doc(vec![json!({
            "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject*", "Resource": "arn:aws:s3:::b/*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
        })]);
        let gaps = enforced(Some(&weaker), "b", &r).unwrap_err();
        assert!(gaps[0].contains("not denied s3:DeleteObject, s3:DeleteObjectVersion"), "{gaps:?}");
        // A statement that also shuts out break glass.
        let all = doc(vec![json!({"Effect": "Deny", "Principal": "*", "Action": "s3:Delete*", "Resource": "*"})]);
        let gaps = enforced(Some(&all), "b", &r).unwrap_err();
        assert!(gaps.iter().any(|g| g.contains("platform-admin is denied")), "{gaps:?}");
        assert!(enforced(None, "b", &r).is_err());
    }

    #[test]
    fn a_foreign_statement_that_denies_only_other_accounts_enforces_nothing() {
        // Denies everyone outside account 123456789012: a probe from
        // another account is denied, the account's own principals are not.
        let others_only = doc(vec![json!({
            "Sid": "OnlyOurAccount", "Effect": "Deny", "Principal": "*",
            "Action": ["s3:PutObject", "s3:GetObject*", "s3:DeleteObject*", "s3:BypassGovernanceRetention"],
            "Resource": "arn:aws:s3:::b/*",
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:*"}}
        })]);
        assert_eq!(denial(&others_only.json, OUTSIDER, "s3:PutObject", "arn:aws:s3:::b/x"), Denial::Denied);
        let gaps = enforced(Some(&others_only), "b", &resolved()).unwrap_err();
        assert!(gaps.iter().any(|g| g == "principals other than the writers are not denied s3:PutObject"), "{gaps:?}");
        assert!(gaps.iter().any(|g| g.starts_with("principals other than the readers are not denied")), "{gaps:?}");
        assert!(gaps.iter().any(|g| g.starts_with("principals other than the break-glass principals")), "{gaps:?}");
        // The plan does not take it for ours: the statements are written.
        let want = Access {
            writers: Some(vec![WRITER.into()]),
            readers: Some(vec![RESTORE.into()]),
            deny_delete: true,
            break_glass: vec![ADMIN.into()],
            administrators: None,
            repos: vec![],
            home: None,
        };
        let c = diff("b", &want, &BTreeMap::new(), &Observed::Present(others_only), None);
        assert_eq!(c.action, Action::Create, "{c:?}");
        assert_eq!(c.attributes.len(), 4, "{c:?}");
    }

    #[test]
    fn merging_keeps_foreign_statements_and_reads_back() {
        let foreign = json!({"Sid": "Auditors", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"});
        let want = Access {
            writers: Some(vec!["suoops-backup-writer".into()]),
            readers: Some(vec!["suoops-backup-restore".into()]),
            deny_delete: true,
            break_glass: vec![ADMIN.into()],
            administrators: None,
            repos: vec![],
            home: None,
        };
        let principals: BTreeMap<String, Principal> = [
            ("suoops-backup-writer".to_string(), Principal::Arn(WRITER.into())),
            ("suoops-backup-restore".to_string(), Principal::Arn(RESTORE.into())),
        ]
        .into();
        let d = doc(vec![foreign.clone()]);
        let c = diff("b", &want, &principals, &Observed::Present(d.clone()), None);
        assert_eq!(c.action, Action::Create);
        assert_eq!(c.attributes.len(), 4);
        assert!(c.reason.as_deref().unwrap().contains("SuoopsPolicyOnlyWritersPut: only suoops-backup-writer may put objects (and break glass: platform-admin)"), "{:?}", c.reason);
        let r = resolve(&want, &principals).unwrap();
        let merged = super::super::tls::merged_statements(Some(&d), &SIDS, desired_statements("b", &r)).unwrap();
        assert_eq!(merged["Statement"][0], foreign);
        let written = PolicyDoc { json: merged };
        assert_eq!(diff("b", &want, &principals, &Observed::Present(written.clone()), None).action, Action::NoOp);
        let back = read_back(&written).unwrap();
        assert_eq!(back.writers, Some(vec![WRITER.to_string()]));
        assert_eq!(back.readers, Some(vec![RESTORE.to_string()]));
        assert_eq!(back.break_glass, vec![ADMIN.to_string()]);
        assert!(back.deny_delete);
        // A role declared but not created yet: known after apply.
        let mut later = principals.clone();
        later.insert("suoops-backup-writer".into(), Principal::AfterApply);
        let c = diff("b", &want, &later, &Observed::Absent, None);
        assert_eq!(c.action, Action::Create);
        assert!(c.attributes[0].after.as_str().unwrap().contains("known after apply"));
        // A role nobody declares: a conflict, nothing written.
        let c = diff("b", &want, &BTreeMap::new(), &Observed::Absent, None);
        assert!(c.conflicts[0].contains("suoops-backup-restore, suoops-backup-writer"), "{:?}", c.conflicts);
    }
    #[test]
    fn a_reader_of_another_account_is_let_in_as_well_as_the_others_kept_out() {
        let other = "arn:aws:iam::222222222222:role/restore";
        let r = Resolved {
            readers: Some(vec![RESTORE.into(), other.into()]),
            home: Some("123456789012".into()),
            ..resolved()
        };
        let desired = desired_statements("b", &r);
        let allow = desired.iter().find(|s| s["Sid"] == SID_OTHER_READERS).expect("the Allow");
        assert_eq!(allow["Principal"]["AWS"], json!([other]), "only the other account's reader: {allow}");
        assert_eq!(enforced(Some(&doc(desired.clone())), "b", &r), Ok(()));
        let without: Vec<Value> = desired.into_iter().filter(|s| s["Sid"] != SID_OTHER_READERS).collect();
        let gaps = enforced(Some(&doc(without)), "b", &r).expect_err("the Allow is missing");
        assert_eq!(gaps, [format!("{other}, of another account, is not allowed s3:GetObject by the bucket policy")]);
        // One account: no Allow at all.
        assert!(desired_statements("b", &resolved()).iter().all(|s| s["Effect"] == "Deny"));
    }
}
