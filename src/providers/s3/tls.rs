//! `require_tls`: one bucket-policy statement, owned by its Sid, that denies
//! every request made without TLS. Every other statement is kept. The audit
//! judges the live policy by meaning, so an equivalent statement of another
//! team's passes and a narrower one does not.

use serde_json::{json, Value};

use crate::iamdoc::{glob, statements};
use crate::model::{Action, Address, AttrChange, Change, Observed, Shortfall, UnknownSetting};

/// The Sid of the statement this tool owns.
pub const SID: &str = "SuoopsPolicyRequireTLS";

/// A bucket policy as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PolicyDoc {
    pub json: Value,
}

pub fn address(bucket: &str) -> Address {
    Address::s3_bucket(bucket).child("require_tls")
}

pub fn desired_statement(bucket: &str) -> Value {
    json!({
        "Sid": SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::Bool(b)) => vec![b.to_string()],
        Some(other) => vec![other.to_string()],
        None => vec![],
    };
    out.sort();
    out.dedup();
    out
}

/// Canonical form of a statement, as IAM documents are compared.
pub fn canonical(st: &Value) -> Value {
    crate::iamdoc::statement(st)
}

/// Does this statement deny everyone every S3 action without TLS, and on
/// which of (the bucket, its objects)?
fn denies_plaintext(st: &Value, bucket: &str) -> (bool, bool) {
    let c = canonical(st);
    let deny = c.get("Effect").and_then(Value::as_str) == Some("Deny");
    let everyone = c.get("Principal") == Some(&json!("*")) && c.get("NotPrincipal").is_none();
    let all_actions = strings(c.get("Action")).iter().any(|a| a == "*" || a.eq_ignore_ascii_case("s3:*"))
        && c.get("NotAction").is_none();
    let tls_only = match c.get("Condition") {
        Some(Value::Object(ops)) if ops.len() == 1 => ops
            .iter()
            .any(|(op, kv)| (op == "Bool" || op == "BoolIfExists") && kv == &json!({"aws:securetransport": ["false"]})),
        _ => false,
    };
    if !(deny && everyone && all_actions && tls_only) || c.get("NotResource").is_some() {
        return (false, false);
    }
    let res = strings(c.get("Resource"));
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let object_arn = format!("arn:aws:s3:::{bucket}/any/object");
    (res.iter().any(|r| glob(r, &bucket_arn)), res.iter().any(|r| glob(r, &object_arn)))
}

/// Whether the live policy, by meaning, denies non-TLS requests on both the
/// bucket and its objects, and a sentence saying what is missing.
pub fn enforced(doc: Option<&PolicyDoc>, bucket: &str) -> Result<(), Shortfall> {
    let Some(doc) = doc else {
        return Err("the bucket has no policy".into());
    };
    let (mut b, mut o) = (false, false);
    for st in statements(&doc.json) {
        let (sb, so) = denies_plaintext(st, bucket);
        b |= sb;
        o |= so;
    }
    match (b, o) {
        (true, true) => Ok(()),
        (false, true) => Err("non-TLS requests are denied on the objects but not on the bucket itself".into()),
        (true, false) => Err("non-TLS requests are denied on the bucket but not on its objects".into()),
        (false, false) => Err("no statement denies all principals s3:* when aws:SecureTransport is false".into()),
    }
}

fn own(doc: Option<&PolicyDoc>) -> Option<&Value> {
    doc.and_then(|d| statements(&d.json).into_iter().find(|s| s.get("Sid").and_then(Value::as_str) == Some(SID)))
}

/// The bucket policy as a change of its statements sees it: the document,
/// or none; an unreadable policy is recorded on `c` (None: stop there).
pub fn readable<'a>(seen: &'a Observed<PolicyDoc>, c: &mut Change) -> Option<Option<&'a PolicyDoc>> {
    match seen {
        Observed::Unknown { reason } => {
            c.unknown.push(UnknownSetting { attribute: "bucket policy".into(), reason: reason.clone() });
            None
        }
        Observed::Absent => Some(None),
        Observed::Present(d) => Some(Some(d)),
    }
}

/// Writing the policy back with a foreign statement that names a deleted
/// principal fails as a whole: a conflict on `c` instead of a write.
pub fn refuse_deleted_principals(doc: Option<&PolicyDoc>, ours: &[&str], c: &mut Change) {
    let bad = doc.map(|d| crate::iamdoc::statements_with_deleted_principals(&d.json, ours)).unwrap_or_default();
    if !bad.is_empty() {
        c.conflicts.push(format!(
            "the bucket policy has statements naming deleted principals: {}; S3 refuses the whole policy while they are there (remove or fix them, then run apply)",
            bad.join("; ")
        ));
    }
}

pub fn diff(bucket: &str, want: bool, seen: &Observed<PolicyDoc>) -> Change {
    let mut c = Change::new(address(bucket), Action::NoOp);
    let Some(doc) = readable(seen, &mut c) else { return c };
    let mine = own(doc);
    let desired = desired_statement(bucket);
    match (want, mine) {
        (true, Some(m)) if canonical(m) == canonical(&desired) => {}
        (true, None) if enforced(doc, bucket).is_ok() => {
            c.reason = Some("already enforced by another statement of the bucket policy".into());
        }
        (true, m) => {
            c.action = if m.is_some() { Action::Update } else { Action::Create };
            c.attributes.push(AttrChange::new(&format!("statement {SID}"), m.cloned(), desired));
            c.reason = Some("other statements of the bucket policy are kept".into());
        }
        (false, Some(m)) => {
            c.action = Action::Delete;
            c.destructive = true;
            let mut a = AttrChange::new(&format!("statement {SID}"), Some(m.clone()), Value::Null);
            a.destructive = true;
            c.attributes.push(a);
        }
        (false, None) => {}
    }
    if c.action != Action::NoOp {
        refuse_deleted_principals(doc, &[SID], &mut c);
    }
    c
}

/// The policy to write (None: delete the bucket policy, nothing is left).
#[cfg(test)]
pub fn merged(doc: Option<&PolicyDoc>, bucket: &str, want: bool) -> Option<Value> {
    merged_statements(doc, &[SID], if want { vec![desired_statement(bucket)] } else { vec![] })
}

/// The bucket policy with the statements of the Sids in `owned` replaced
/// by `desired`, every other statement kept as read. None: nothing is
/// left, delete the bucket policy.
pub fn merged_statements(doc: Option<&PolicyDoc>, owned: &[&str], desired: Vec<Value>) -> Option<Value> {
    let mut base = doc.map(|d| d.json.clone()).unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
    let mut sts: Vec<Value> = statements(&base)
        .into_iter()
        .filter(|s| !s.get("Sid").and_then(Value::as_str).is_some_and(|sid| owned.contains(&sid)))
        .cloned()
        .collect();
    sts.extend(desired);
    if sts.is_empty() {
        return None;
    }
    if let Value::Object(m) = &mut base {
        m.entry("Version").or_insert_with(|| json!("2012-10-17"));
        m.insert("Statement".into(), Value::Array(sts));
    }
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(sts: Value) -> PolicyDoc {
        PolicyDoc { json: json!({"Version": "2012-10-17", "Statement": sts}) }
    }

    #[test]
    fn an_equivalent_foreign_statement_passes() {
        let d = doc(json!([{
            "Sid": "TheirTls", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:*"],
            "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::b"],
            "Condition": {"Bool": {"aws:securetransport": false}}
        }]));
        assert_eq!(enforced(Some(&d), "b"), Ok(()));
        assert_eq!(diff("b", true, &Observed::Present(d)).action, Action::NoOp);
    }

    #[test]
    fn a_statement_on_objects_only_or_some_actions_fails() {
        let objects =
            doc(json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]));
        assert!(enforced(Some(&objects), "b").unwrap_err().contains("not on the bucket itself"));
        let some = doc(
            json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]),
        );
        assert!(enforced(Some(&some), "b").is_err());
        let allow = doc(json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]));
        assert!(enforced(Some(&allow), "b").is_err());
        let wildcard = doc(json!([{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "arn:aws:s3:::b*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]));
        assert_eq!(enforced(Some(&wildcard), "b"), Ok(()));
    }

    #[test]
    fn merging_keeps_every_foreign_statement() {
        let foreign = json!({"Sid": "ReadForAuditors", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"});
        let d = doc(json!([foreign.clone()]));
        let c = diff("b", true, &Observed::Present(d.clone()));
        assert_eq!(c.action, Action::Create);
        let m = merged(Some(&d), "b", true).expect("policy");
        assert_eq!(m["Statement"][0], foreign);
        assert_eq!(m["Statement"][1]["Sid"], SID);
        // Our own statement, once written, is a no-op; removing it is destructive and keeps the rest.
        let written = PolicyDoc { json: m };
        assert_eq!(diff("b", true, &Observed::Present(written.clone())).action, Action::NoOp);
        let c = diff("b", false, &Observed::Present(written.clone()));
        assert!(c.destructive && c.action == Action::Delete);
        assert_eq!(merged(Some(&written), "b", false).expect("policy")["Statement"], json!([foreign]));
        assert_eq!(merged(None, "b", false), None);
    }

    #[test]
    fn a_foreign_statement_naming_a_deleted_role_is_a_conflict_not_a_write() {
        let d = doc(
            json!([{"Sid": "OldReader", "Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEID123456789"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
        );
        let c = diff("b", true, &Observed::Present(d));
        assert!(!c.is_actionable());
        assert!(c.conflicts[0].contains("`OldReader` (AROAEXAMPLEID123456789)"), "{:?}", c.conflicts);
        // Nothing to write: nothing to refuse.
        let ok = doc(
            json!([{"Sid": "OldReader", "Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEID123456789"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}, desired_statement("b")]),
        );
        assert!(diff("b", true, &Observed::Present(ok)).conflicts.is_empty());
    }

    #[test]
    fn globbing() {
        assert!(glob("arn:aws:s3:::b*", "arn:aws:s3:::b/x"));
        assert!(glob("*", "anything"));
        assert!(!glob("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(glob("a?c", "abc"));
    }
}
