//! IAM documents compared by meaning. Documents come back URL-encoded from
//! some calls (GetRole, GetRolePolicy) and not from others; both are parsed
//! and put in a canonical form: one-element lists equal strings, statement,
//! action and resource order does not matter, `Version` defaults, condition
//! keys are case-insensitive. A real difference is shown as a unified diff
//! of the canonical JSON.

use serde_json::{json, Map, Value};

/// Parse a document as IAM returns it: JSON, or URL-encoded JSON.
pub fn parse(text: &str) -> Result<Value, String> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(first) => {
            let decoded = percent_decode(text);
            serde_json::from_str(&decoded).map_err(|_| format!("not a JSON document: {first}"))
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn strings(v: &Value) -> Vec<Value> {
    let mut out: Vec<String> = match v {
        Value::Array(a) => a.iter().map(scalar).collect(),
        other => vec![scalar(other)],
    };
    out.sort();
    out.dedup();
    out.into_iter().map(Value::String).collect()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn principal(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 && m.get("AWS").is_some_and(|a| strings(a) == [json!("*")]) => json!("*"),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::Array(strings(v)))).collect()),
        other => other.clone(),
    }
}

/// The canonical form of one statement (see [`canonical`]).
pub fn statement(st: &Value) -> Value {
    let Value::Object(m) = st else { return st.clone() };
    let mut out = Map::new();
    for (k, v) in m {
        let v = match k.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => Value::Array(strings(v)),
            "Principal" | "NotPrincipal" => principal(v),
            "Condition" => match v {
                Value::Object(ops) => Value::Object(
                    ops.iter()
                        .map(|(op, kv)| {
                            let kv = match kv {
                                Value::Object(kv) => Value::Object(
                                    kv.iter()
                                        .map(|(k, v)| (k.to_ascii_lowercase(), Value::Array(strings(v))))
                                        .collect(),
                                ),
                                other => other.clone(),
                            };
                            (op.clone(), kv)
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// The canonical form of a document.
pub fn canonical(doc: &Value) -> Value {
    let Value::Object(m) = doc else { return doc.clone() };
    let mut out = Map::new();
    out.insert("Version".into(), m.get("Version").cloned().unwrap_or_else(|| json!("2012-10-17")));
    if let Some(id) = m.get("Id") {
        out.insert("Id".into(), id.clone());
    }
    let mut sts: Vec<Value> = match m.get("Statement") {
        Some(Value::Array(a)) => a.iter().map(statement).collect(),
        Some(one) => vec![statement(one)],
        None => vec![],
    };
    sts.sort_by_key(|s| s.to_string());
    sts.dedup();
    out.insert("Statement".into(), Value::Array(sts));
    Value::Object(out)
}

/// The text to send to IAM: as written, with `Version` made explicit (the
/// comparison already treats a missing Version as 2012-10-17, and IAM
/// needs it for policy variables).
pub fn for_write(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Value::Object(m) = &mut d {
        m.entry("Version").or_insert_with(|| json!("2012-10-17"));
    }
    d.to_string()
}

pub fn same(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// A unified diff of the canonical, pretty-printed documents.
pub fn diff_text(before: Option<&Value>, after: &Value) -> String {
    let pretty = |v: &Value| serde_json::to_string_pretty(&canonical(v)).unwrap_or_default() + "\n";
    let b = before.map(pretty).unwrap_or_default();
    let a = pretty(after);
    similar::TextDiff::from_lines(&b, &a).unified_diff().context_radius(3).header("live", "policy").to_string()
}

/// A document's statements: `Statement` may be one object or a list.
pub fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => vec![],
    }
}

/// The principals of a resource-policy statement that are unique IDs
/// (`AROA…` a role, `AIDA…` a user): what AWS shows in place of an ARN
/// once that principal was deleted (AWS IAM user guide, "IAM JSON policy
/// elements: Principal" — "if the role is deleted … the ARN is replaced by
/// the principal ID"). A document holding one is refused when written back
/// (MalformedPolicy: invalid principal).
pub fn deleted_principals(st: &Value) -> Vec<String> {
    fn is_unique_id(s: &str) -> bool {
        ["AROA", "AIDA", "AGPA", "ANPA", "ANVA", "ASIA", "AKIA", "AIPA"].iter().any(|p| s.starts_with(p))
            && s.len() >= 16
            && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    }
    let mut out = Vec::new();
    for key in ["Principal", "NotPrincipal"] {
        let Some(Value::Object(m)) = st.get(key) else { continue };
        if let Some(aws) = m.get("AWS") {
            let list: Vec<&Value> = match aws {
                Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            out.extend(list.into_iter().filter_map(Value::as_str).filter(|s| is_unique_id(s)).map(str::to_string));
        }
    }
    out
}

/// Each statement of `doc` that names a deleted principal, as "Sid (ID)"
/// (or "statement N (ID)" when it has no Sid), skipping the Sids in `ours`
/// (statements the tool replaces anyway).
pub fn statements_with_deleted_principals(doc: &Value, ours: &[&str]) -> Vec<String> {
    statements(doc)
        .iter()
        .enumerate()
        .filter(|(_, st)| !st.get("Sid").and_then(Value::as_str).is_some_and(|s| ours.contains(&s)))
        .filter_map(|(i, st)| {
            let ids = deleted_principals(st);
            (!ids.is_empty()).then(|| {
                let name =
                    st.get("Sid").and_then(Value::as_str).map_or(format!("statement {}", i + 1), |s| format!("`{s}`"));
                format!("{name} ({})", ids.join(", "))
            })
        })
        .collect()
}

/// A service principal as IAM writes one (`logging.s3.amazonaws.com`):
/// in `access:` lists, an entry ending in `.amazonaws.com` is one (a role
/// whose name ends so is written as its ARN).
pub fn is_service_principal(s: &str) -> bool {
    s.strip_suffix(".amazonaws.com").is_some_and(|name| {
        !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    })
}

/// `*` and `?` wildcards, as IAM matches resources.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// What a resource policy's Deny statements do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// A Deny statement certainly applies.
    Denied,
    /// No Deny statement applies.
    NotDenied,
    /// A Deny statement may apply: it has a condition this evaluation does
    /// not know (aws:PrincipalArn, aws:PrincipalServiceName and TLS are
    /// known; anything else is not).
    Maybe,
}

/// Does a Deny statement of the resource policy `doc` apply to a request
/// by `principal` (its aws:PrincipalArn) for `action` on `resource`, made
/// over TLS? Principal, NotPrincipal, Action, NotAction, Resource and
/// NotResource are matched as IAM does; conditions (see
/// [`conditions_hold`]) only on aws:PrincipalArn, aws:PrincipalServiceName
/// (a `principal` ending in `.amazonaws.com` is a service) and
/// aws:SecureTransport.
pub fn denial(doc: &Value, principal: &str, action: &str, resource: &str) -> Denial {
    let mut out = Denial::NotDenied;
    for st in statements(doc) {
        let c = statement(st);
        if c.get("Effect").and_then(Value::as_str) != Some("Deny") {
            continue;
        }
        let service = is_service_principal(principal);
        let principal_ok = match (c.get("Principal"), c.get("NotPrincipal")) {
            (Some(p), _) => named(p, principal, service),
            (None, Some(np)) => !exempted(np, principal, service),
            (None, None) => false,
        };
        if !(principal_ok && covers(&c, action, resource)) {
            continue;
        }
        // Requests from this tool and from the SDKs use TLS. A service
        // principal's request has aws:PrincipalServiceName and no
        // aws:PrincipalArn; an IAM principal's the reverse.
        let (arn, svc) =
            if service { (vec![], vec![principal.to_string()]) } else { (vec![principal.to_string()], vec![]) };
        let req = [
            ("aws:PrincipalArn", arn),
            ("aws:PrincipalServiceName", svc),
            ("aws:SecureTransport", vec!["true".to_string()]),
        ];
        match conditions_hold(c.get("Condition"), &req) {
            Ok(true) => return Denial::Denied,
            Ok(false) => {}
            Err(_) => out = Denial::Maybe,
        }
    }
    out
}

/// The `AWS` (or, for a service, `Service`) entries of a Principal or
/// NotPrincipal element.
fn principal_entries(v: &Value, service: bool) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(m) => m
            .get(if service { "Service" } else { "AWS" })
            .map(|a| strings(a).iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        _ => vec![],
    }
}

/// The account of an IAM ARN (`arn:aws:iam::ACCOUNT:role/NAME`).
fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Does a statement's Principal name `principal` (a role's or user's ARN,
/// or a service)? `*`, the ARN itself, or its account — as an id or as
/// `arn:aws:iam::ACCOUNT:root` — which stands for every principal of that
/// account (AWS IAM user guide, "AWS JSON policy elements: Principal":
/// AWS account principals).
fn named(v: &Value, principal: &str, service: bool) -> bool {
    let account = account_of(principal);
    principal_entries(v, service).iter().any(|p| {
        p == "*"
            || p == principal
            || account.is_some_and(|a| !service && (p == a || *p == format!("arn:aws:iam::{a}:root")))
    })
}

/// Does a Deny's NotPrincipal exempt `principal`? Requests are matched on
/// every principal they carry: the account, the role and the assumed-role
/// session (AWS IAM user guide, "AWS JSON policy elements: NotPrincipal":
/// with Deny, name the account and, for a role, the assumed-role session
/// ARN too — naming only the role's ARN still denies its sessions). A
/// role is exempted only when the element names its account, the role and
/// a session of it; a user, its account and itself; a service, itself.
fn exempted(v: &Value, principal: &str, service: bool) -> bool {
    let entries = principal_entries(v, service);
    if entries.iter().any(|p| p == "*") {
        return true;
    }
    if service {
        return entries.iter().any(|p| p == principal);
    }
    let Some(account) = account_of(principal) else { return entries.iter().any(|p| p == principal) };
    let has_account = entries.iter().any(|p| p == account || *p == format!("arn:aws:iam::{account}:root"));
    let has_self = entries.iter().any(|p| p == principal);
    let role = principal.split(":role/").nth(1).map(|path| path.rsplit('/').next().unwrap_or(path));
    let has_session = match role {
        Some(name) => {
            let session = format!("arn:aws:sts::{account}:assumed-role/{name}/");
            entries.iter().any(|p| p.starts_with(&session))
        }
        None => true,
    };
    has_account && has_self && has_session
}

/// Does the (canonical) statement `c` name `action` on `resource`?
/// Action / NotAction (case-insensitive) and Resource / NotResource
/// (wildcards), as IAM matches them (AWS IAM user guide, "IAM JSON policy
/// elements: NotAction" and "NotResource": the statement applies to every
/// action or resource except those listed).
fn covers(c: &Value, action: &str, resource: &str) -> bool {
    let list = |k: &str| -> Option<Vec<String>> {
        c.get(k).map(|v| match v {
            Value::Array(a) => a.iter().map(scalar).collect(),
            other => vec![scalar(other)],
        })
    };
    let any = |pats: &[String], s: &str, fold: bool| {
        pats.iter().any(|p| if fold { glob(&p.to_ascii_lowercase(), &s.to_ascii_lowercase()) } else { glob(p, s) })
    };
    let action_ok = match (list("Action"), list("NotAction")) {
        (Some(a), _) => any(&a, action, true),
        (None, Some(na)) => !any(&na, action, true),
        _ => false,
    };
    let resource_ok = match (list("Resource"), list("NotResource")) {
        (Some(r), _) => any(&r, resource, false),
        (None, Some(nr)) => !any(&nr, resource, false),
        _ => false,
    };
    action_ok && resource_ok
}

/// One role's identity-based policies as read: every inline policy (the
/// policy's and any other kept beside them) and every attached managed
/// policy (AWS-managed ones too, by their default version), and its
/// permissions boundary. What a role can do is what these allow together
/// (AWS IAM user guide, "Policy evaluation logic"); SCPs and session
/// policies limit it further and cannot be read from a member account.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub role: String,
    /// The role's ARN as read (None when the role was not read): what a
    /// KMS key policy names.
    pub arn: Option<String>,
    /// (name, document): `inline NAME`, or a managed policy's ARN; Err:
    /// why they could not all be read.
    pub policies: Result<Vec<(String, Value)>, String>,
    /// The permissions boundary's ARN and document.
    pub boundary: Option<(String, Value)>,
}

/// Why a request no policy allows is refused.
pub const NO_ALLOW: &str = "no policy of the role allows it";

/// Whether an identity may make one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Allowed, by the policy named.
    Allowed(String),
    /// Not allowed: why (no Allow, a Deny, outside the boundary).
    Refused(String),
    /// Not known here: what this evaluation cannot evaluate.
    Unknown(String),
}

impl Identity {
    /// May this role make `action` on `resource`? As IAM evaluates it
    /// within one account (AWS IAM user guide, "Policy evaluation logic"):
    /// an explicit Deny in any identity policy or the boundary wins; else
    /// an identity policy must Allow it, and, with a permissions boundary,
    /// the boundary too. With `req`, conditions are evaluated against it;
    /// without, a conditional Allow is taken as allowing (the worst case
    /// for "can it do more than it should") and a conditional Deny as not
    /// applying. A condition `req` cannot evaluate makes a Deny uncertain
    /// and an Allow unknown, never silently absent.
    pub fn may(&self, action: &str, resource: &str, req: Option<&Request>) -> Grant {
        let policies = match &self.policies {
            Ok(p) => p,
            Err(why) => return Grant::Unknown(format!("its policies could not be read: {why}")),
        };
        let docs: Vec<(&str, &Value)> = policies.iter().map(|(n, d)| (n.as_str(), d)).collect();
        let boundary: Vec<(&str, &Value)> = self.boundary.iter().map(|(n, d)| (n.as_str(), d)).collect();
        let mut unknown = None;
        for (name, doc) in docs.iter().chain(boundary.iter()) {
            match effect(doc, "Deny", action, resource, req, false) {
                Ok(true) => return Grant::Refused(format!("{name} denies it")),
                Ok(false) => {}
                Err(e) => unknown = Some(format!("whether {name} denies it ({e} is not evaluated)")),
            }
        }
        let allowed_by = |set: &[(&str, &Value)]| -> Result<Option<String>, String> {
            let mut unsure = None;
            for (name, doc) in set {
                match effect(doc, "Allow", action, resource, req, true) {
                    Ok(true) => return Ok(Some(name.to_string())),
                    Ok(false) => {}
                    Err(e) => unsure = Some(format!("whether {name} allows it ({e} is not evaluated)")),
                }
            }
            unsure.map_or(Ok(None), Err)
        };
        let by = match allowed_by(&docs) {
            Ok(Some(by)) => by,
            Ok(None) => return Grant::Refused(NO_ALLOW.into()),
            Err(e) => return Grant::Unknown(e),
        };
        if let Some((arn, _)) = &self.boundary {
            match allowed_by(&boundary) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Grant::Refused(format!("{by} allows it, but the permissions boundary {arn} does not"))
                }
                Err(e) => return Grant::Unknown(e),
            }
        }
        match unknown {
            Some(u) => Grant::Unknown(u),
            None => Grant::Allowed(by),
        }
    }
}

/// A KMS key's policy as read, under each name the policy may give the
/// key (its name under `kms.keys`, its alias, its ARN).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyPolicy {
    pub names: Vec<String>,
    /// The document, or why it could not be read.
    pub policy: Result<Value, String>,
}

impl KeyPolicy {
    /// Does the key policy let `principal` (a role's ARN) use the key for
    /// `action`? No IAM policy grants access to a KMS key unless its key
    /// policy allows the principal — directly, or through a statement for
    /// the account (its root), which lets the account's IAM policies grant
    /// it; an explicit Deny wins (AWS KMS developer guide, "Key policies in
    /// AWS KMS" and "Default key policy": allows access to the AWS account
    /// and enables IAM policies). Conditions as in [`Identity::may`].
    pub fn allows(&self, principal: &str, action: &str, req: Option<&Request>) -> Grant {
        let doc = match &self.policy {
            Ok(d) => d,
            Err(why) => return Grant::Unknown(format!("the key policy could not be read: {why}")),
        };
        let key = self.names.iter().find(|n| n.starts_with("arn:") && n.contains(":key/")).map_or("*", String::as_str);
        let account = account_of(principal);
        let mut unknown = None;
        let mut allowed = None;
        for st in statements(doc) {
            let c = statement(st);
            let Some(p) = c.get("Principal") else { continue };
            let entries = principal_entries(p, false);
            let direct = entries.iter().any(|e| e == "*" || e == principal);
            let through_iam =
                account.is_some_and(|a| entries.iter().any(|e| e == a || *e == format!("arn:aws:iam::{a}:root")));
            if !(direct || through_iam) || !(covers(&c, action, key) || covers(&c, action, "*")) {
                continue;
            }
            let effect = c.get("Effect").and_then(Value::as_str).unwrap_or("");
            let cond = c.get("Condition").filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
            let holds = match (cond, req) {
                (None, _) => Ok(true),
                (Some(_), None) => Ok(effect == "Allow"),
                (Some(cond), Some(req)) => conditions_hold(Some(cond), req),
            };
            match (effect, holds) {
                ("Deny", Ok(true)) => return Grant::Refused("the key policy denies it".into()),
                ("Deny", Err(e)) => unknown = Some(format!("whether the key policy denies it ({e} is not evaluated)")),
                ("Allow", Ok(true)) => {
                    let how = if direct { "the key policy allows it" } else { "the key policy lets IAM grant it" };
                    allowed = allowed.or(Some(how.to_string()));
                }
                ("Allow", Err(e)) => {
                    unknown = unknown.or(Some(format!("whether the key policy allows it ({e} is not evaluated)")))
                }
                _ => {}
            }
        }
        match (allowed, unknown) {
            (_, Some(u)) => Grant::Unknown(u),
            (Some(by), None) => Grant::Allowed(by),
            (None, None) => Grant::Refused(
                "the key policy neither allows the role nor lets the account's IAM policies grant it (no statement for the account root)".into(),
            ),
        }
    }
}

/// May a principal of `account` — another account than the resource's —
/// make `action` on `resource`, as far as the resource policy `doc` says?
/// A request across accounts needs the resource policy's Allow as well as
/// the caller's own policies, and the caller's account can grant its
/// principals anything, so the resource policy decides (AWS IAM user
/// guide, "Cross-account policy evaluation logic"). An Allow counts when
/// it names `*`, the account, its root or one of its principals, its
/// conditions holding for a request with `aws:PrincipalAccount` that
/// account over TLS; a Deny refuses when it names the whole account (or
/// `*`, or excepts none of its principals with NotPrincipal) and no
/// condition of it names one of the account's principals as an exception.
pub fn account_may(doc: &Value, account: &str, action: &str, resource: &str) -> Grant {
    resource_grant(doc, account, None, action, resource)
}

/// May the principal `arn`, of another account than the resource's, make
/// `action` on `resource` as far as the resource policy `doc` says? As
/// [`account_may`], for that one principal: a statement names it by its
/// ARN, its account (id or root) or `*`.
pub fn principal_may(doc: &Value, arn: &str, action: &str, resource: &str) -> Grant {
    match account_of(arn) {
        Some(account) => resource_grant(doc, account, Some(arn), action, resource),
        None => Grant::Unknown(format!("{arn} names no account")),
    }
}

fn resource_grant(doc: &Value, account: &str, who: Option<&str>, action: &str, resource: &str) -> Grant {
    let root = format!("arn:aws:iam::{account}:root");
    let anyone = format!("arn:aws:iam::{account}:role/*");
    let req = [
        ("aws:PrincipalAccount", vec![account.to_string()]),
        ("aws:PrincipalArn", vec![who.map_or(anyone, str::to_string)]),
        ("aws:SecureTransport", vec!["true".to_string()]),
    ];
    let whole = |e: &String| e == "*" || e == account || *e == root || who.is_some_and(|w| e == w);
    let mine = |e: &String| match who {
        None => account_of(e) == Some(account),
        Some(w) => e == w,
    };
    let (mut allowed, mut unknown) = (None, None);
    for st in statements(doc) {
        let c = statement(st);
        if !covers(&c, action, resource) {
            continue;
        }
        let sid = c
            .get("Sid")
            .and_then(Value::as_str)
            .map_or_else(|| "a statement".to_string(), |s| format!("statement `{s}`"));
        let (names_all, names_some) = match (c.get("Principal"), c.get("NotPrincipal")) {
            (Some(p), _) => {
                let e = principal_entries(p, false);
                (e.iter().any(whole), e.iter().any(|x| whole(x) || mine(x)))
            }
            (None, Some(np)) => {
                let e = principal_entries(np, false);
                let excepted = e.iter().any(|x| whole(x) || mine(x));
                (!excepted, !excepted)
            }
            (None, None) => (false, false),
        };
        let cond = c.get("Condition");
        match c.get("Effect").and_then(Value::as_str) {
            Some("Deny") if names_all => {
                // A condition that excepts one of the account's principals
                // leaves that one in (for one principal: the condition is
                // evaluated on its ARN).
                let excepts_some =
                    who.is_none() && cond.is_some_and(|v| v.to_string().contains(&format!(":{account}:")));
                match conditions_hold(cond, &req) {
                    Ok(true) if !excepts_some => return Grant::Refused(format!("{sid} denies it")),
                    Ok(_) => {}
                    Err(e) => unknown = Some(format!("whether {sid} denies it ({e} is not evaluated)")),
                }
            }
            Some("Allow") if names_some => match conditions_hold(cond, &req) {
                Ok(true) => allowed = allowed.or(Some(sid)),
                Ok(false) => {}
                Err(e) => unknown = unknown.or(Some(format!("whether {sid} allows it ({e} is not evaluated)"))),
            },
            _ => {}
        }
    }
    match (allowed, unknown) {
        (Some(by), _) => Grant::Allowed(format!("{by} allows it")),
        (None, Some(u)) => Grant::Unknown(u),
        (None, None) => Grant::Refused(NO_ALLOW_RESOURCE.into()),
    }
}

/// Why a request across accounts no resource policy statement allows is
/// refused.
pub const NO_ALLOW_RESOURCE: &str = "no statement of the resource policy allows it";

/// Does a statement of `doc` with `want` effect apply to `action` on
/// `resource`? Conditions as [`Identity::may`] says (`lenient`: without a
/// request, a condition is taken as holding).
fn effect(
    doc: &Value,
    want: &str,
    action: &str,
    resource: &str,
    req: Option<&Request>,
    lenient: bool,
) -> Result<bool, String> {
    let mut unknown = None;
    for st in statements(doc) {
        let c = statement(st);
        if c.get("Effect").and_then(Value::as_str) != Some(want) || !covers(&c, action, resource) {
            continue;
        }
        let cond = c.get("Condition").filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
        let holds = match (cond, req) {
            (None, _) => Ok(true),
            (Some(_), None) => Ok(lenient),
            (Some(cond), Some(req)) => conditions_hold(Some(cond), req),
        };
        match holds {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => unknown = Some(e),
        }
    }
    unknown.map_or(Ok(false), Err)
}

/// The request an evaluation imagines: each condition key it knows, with
/// the request's values for it; an empty list is a key known to be absent.
pub type Request<'a> = [(&'a str, Vec<String>)];

/// Whether every condition of a statement holds for `req`, or Err naming
/// what cannot be evaluated here (an operator, or a key `req` does not
/// know). Operators as IAM defines them (AWS IAM user guide, "IAM JSON
/// policy elements: Condition operators" and "Single-valued vs.
/// multivalued context keys"): the `ForAnyValue:`/`ForAllValues:` set
/// prefixes, `…IfExists`, negated operators true when the key is absent,
/// `ArnEquals` matching wildcards like `ArnLike`.
pub fn conditions_hold(cond: Option<&Value>, req: &Request) -> Result<bool, String> {
    let Some(Value::Object(ops)) = cond else { return Ok(true) };
    let mut all = true;
    for (op, kv) in ops {
        let Value::Object(kv) = kv else { return Err(format!("the condition operator `{op}`")) };
        let (set, rest) = match op.split_once(':') {
            Some((s @ ("ForAnyValue" | "ForAllValues"), r)) => (Some(s), r),
            _ => (None, op.as_str()),
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        let negated = base.contains("Not");
        let matcher: fn(&str, &str) -> bool = match base.replacen("Not", "", 1).as_str() {
            "StringEquals" => |p, v| p == v,
            "StringEqualsIgnoreCase" | "Bool" => |p, v| p.eq_ignore_ascii_case(v),
            "StringLike" | "ArnEquals" | "ArnLike" => glob,
            "Null" => |_, _| false,
            _ => return Err(format!("the condition operator `{op}`")),
        };
        for (key, values) in kv {
            let values: Vec<String> = match values {
                Value::Array(a) => a.iter().map(scalar).collect(),
                other => vec![scalar(other)],
            };
            let Some((_, have)) = req.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) else {
                return Err(format!("the condition key `{key}`"));
            };
            let matches = |h: &String| values.iter().any(|p| matcher(p, h));
            let holds = if base == "Null" {
                values.iter().all(|v| v.eq_ignore_ascii_case("true") == have.is_empty())
            } else if have.is_empty() {
                match set {
                    Some("ForAllValues") => true,
                    Some(_) => false,
                    None => negated || if_exists,
                }
            } else {
                match (set, negated) {
                    (Some("ForAllValues"), false) => have.iter().all(matches),
                    (Some("ForAnyValue"), true) => have.iter().any(|h| !matches(h)),
                    (_, false) => have.iter().any(matches),
                    (_, true) => !have.iter().any(matches),
                }
            };
            all &= holds;
        }
    }
    Ok(all)
}

/// An IAM document with its keys in the order people write them.
pub fn in_writing_order(doc: &Value) -> Value {
    const DOC: &[&str] = &["Version", "Id", "Statement"];
    const STATEMENT: &[&str] =
        &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];
    fn ordered(v: &Value, order: &[&str]) -> Value {
        let Value::Object(m) = v else { return v.clone() };
        let mut out = serde_json::Map::new();
        for k in order {
            if let Some(x) = m.get(*k) {
                out.insert((*k).to_string(), x.clone());
            }
        }
        for (k, x) in m {
            if !order.contains(&k.as_str()) {
                out.insert(k.clone(), x.clone());
            }
        }
        Value::Object(out)
    }
    let mut d = ordered(doc, DOC);
    if let Some(st) = d.get_mut("Statement") {
        let sts = match &*st {
            Value::Array(a) => a.iter().map(|s| ordered(s, STATEMENT)).collect(),
            one => vec![ordered(one, STATEMENT)],
        };
        *st = Value::Array(sts);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn identity(policies: Vec<(&str, Value)>, boundary: Option<Value>) -> Identity {
        Identity {
            role: "writer".into(),
            arn: None,
            policies: Ok(policies.into_iter().map(|(n, d)| (n.to_string(), d)).collect()),
            boundary: boundary.map(|d| ("arn:aws:iam::1:policy/boundary".to_string(), d)),
        }
    }

    #[test]
    fn a_role_may_what_its_identity_policies_allow_together() {
        let obj = "arn:aws:s3:::b/postgres/1.dump";
        let put = json!({"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]});
        let full = json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
        let id = identity(vec![("inline policy write", put.clone())], None);
        assert_eq!(id.may("s3:PutObject", obj, None), Grant::Allowed("inline policy write".into()));
        assert!(matches!(id.may("s3:GetObject", obj, None), Grant::Refused(_)));
        // An attached managed policy counts, and says so.
        let arn = "arn:aws:iam::aws:policy/AmazonS3FullAccess";
        let id = identity(vec![("inline policy write", put.clone()), (arn, full.clone())], None);
        assert_eq!(id.may("s3:DeleteBucketPolicy", "arn:aws:s3:::b", None), Grant::Allowed(arn.into()));
        // NotAction allows everything but what it lists.
        let not = json!({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]});
        let id = identity(vec![("not-iam", not)], None);
        assert_eq!(id.may("s3:GetObject", obj, None), Grant::Allowed("not-iam".into()));
        assert!(matches!(id.may("iam:PassRole", "*", None), Grant::Refused(_)));
        // NotResource: everything but the bucket.
        let nr = json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/*"}]});
        assert!(matches!(identity(vec![("nr", nr)], None).may("s3:GetObject", obj, None), Grant::Refused(_)));
        // An explicit Deny anywhere wins.
        let deny = json!({"Statement": [{"Effect": "Deny", "Action": "s3:Get*", "Resource": "*"}]});
        let id = identity(vec![(arn, full.clone()), ("inline policy deny", deny)], None);
        assert_eq!(id.may("s3:GetObject", obj, None), Grant::Refused("inline policy deny denies it".into()));
        // The boundary limits what the policies allow.
        let id = identity(vec![(arn, full.clone())], Some(put));
        assert_eq!(id.may("s3:PutObject", obj, None), Grant::Allowed(arn.into()));
        assert_eq!(
            id.may("s3:GetObject", obj, None),
            Grant::Refused(format!(
                "{arn} allows it, but the permissions boundary arn:aws:iam::1:policy/boundary does not"
            ))
        );
        // A condition the request cannot evaluate is unknown, not absent.
        let cond = json!({"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestTag/team": "db"}}}]});
        let req = [("kms:ViaService", vec!["s3.us-east-1.amazonaws.com".to_string()])];
        assert!(matches!(identity(vec![("c", cond)], None).may("kms:Decrypt", "k", Some(&req)), Grant::Unknown(_)));
        // Policies that could not be read are unknown.
        let unread = Identity { role: "r".into(), arn: None, policies: Err("AccessDenied".into()), boundary: None };
        assert!(matches!(unread.may("s3:GetObject", obj, None), Grant::Unknown(_)));
    }

    #[test]
    fn a_key_policy_must_allow_the_role_or_delegate_to_iam() {
        let role = "arn:aws:iam::111122223333:role/repl";
        let kp =
            |doc: Value| KeyPolicy { names: vec!["arn:aws:kms:us-east-1:111122223333:key/k".into()], policy: Ok(doc) };
        let root = json!({"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"});
        let direct = json!({"Effect": "Allow", "Principal": {"AWS": role}, "Action": "kms:Decrypt", "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}});
        let req = [("kms:ViaService", vec!["s3.us-east-1.amazonaws.com".to_string()])];
        assert_eq!(
            kp(json!({"Statement": [root.clone()]})).allows(role, "kms:Decrypt", Some(&req)),
            Grant::Allowed("the key policy lets IAM grant it".into())
        );
        assert_eq!(
            kp(json!({"Statement": [direct.clone()]})).allows(role, "kms:Decrypt", Some(&req)),
            Grant::Allowed("the key policy allows it".into())
        );
        // Neither: IAM policies alone do not count.
        let other = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/other"}, "Action": "kms:*", "Resource": "*"});
        assert!(matches!(kp(json!({"Statement": [other]})).allows(role, "kms:Decrypt", Some(&req)), Grant::Refused(_)));
        // Through S3 in another region: the condition does not hold.
        let west = [("kms:ViaService", vec!["s3.eu-west-1.amazonaws.com".to_string()])];
        assert!(matches!(
            kp(json!({"Statement": [direct]})).allows(role, "kms:Decrypt", Some(&west)),
            Grant::Refused(_)
        ));
        // A Deny wins over the account's statement.
        let deny = json!({"Effect": "Deny", "Principal": {"AWS": role}, "Action": "kms:Decrypt", "Resource": "*"});
        assert_eq!(
            kp(json!({"Statement": [root, deny]})).allows(role, "kms:Decrypt", Some(&req)),
            Grant::Refused("the key policy denies it".into())
        );
        let unread = KeyPolicy { names: vec![], policy: Err("AccessDeniedException".into()) };
        assert!(matches!(unread.allows(role, "kms:Decrypt", None), Grant::Unknown(_)));
    }

    #[test]
    fn not_principal_and_account_principals_match_as_aws_does() {
        let role = "arn:aws:iam::111122223333:role/admin";
        let obj = "arn:aws:s3:::b/k";
        let deny = |who: Value| json!({"Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": who}, "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}]});
        // The role's ARN alone does not exempt its sessions.
        assert_eq!(denial(&deny(json!(role)), role, "s3:DeleteObject", obj), Denial::Denied);
        assert_eq!(
            denial(&deny(json!([role, "arn:aws:iam::111122223333:root"])), role, "s3:DeleteObject", obj),
            Denial::Denied
        );
        // The account, the role and its session: exempted.
        let all = json!([role, "111122223333", "arn:aws:sts::111122223333:assumed-role/admin/ci"]);
        assert_eq!(denial(&deny(all), role, "s3:DeleteObject", obj), Denial::NotDenied);
        // A Deny naming the account covers every principal in it.
        for acct in ["111122223333", "arn:aws:iam::111122223333:root"] {
            let d = json!({"Statement": [{"Effect": "Deny", "Principal": {"AWS": acct}, "Action": "s3:*", "Resource": "*"}]});
            assert_eq!(denial(&d, role, "s3:DeleteObject", obj), Denial::Denied, "{acct}");
            assert_eq!(denial(&d, "arn:aws:iam::999999999999:role/x", "s3:DeleteObject", obj), Denial::NotDenied);
        }
    }

    #[test]
    fn url_encoded_documents_parse() {
        let enc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(parse(enc).expect("decoded"), json!({"Version": "2012-10-17", "Statement": []}));
    }

    #[test]
    fn string_and_one_element_list_are_the_same() {
        let a = json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
        let b = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}});
        assert!(same(&a, &b));
        let c = json!({"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]});
        assert!(!same(&a, &c));
        let d = diff_text(Some(&a), &c);
        assert!(d.contains("-        \"s3:GetObject\"") && d.contains("+        \"s3:PutObject\""), "{d}");
    }

    #[test]
    fn principal_star_forms_and_condition_key_case() {
        let a = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": false}}}]});
        let b = json!({"Statement": [{"Effect": "Deny", "Principal": {"AWS": ["*"]}, "Action": ["s3:*"], "Resource": "*",
            "Condition": {"Bool": {"aws:securetransport": "false"}}}]});
        assert!(same(&a, &b));
    }

    /// Statements as (allow, actions, resources).
    type Sts = Vec<(bool, Vec<String>, Vec<String>)>;

    fn doc_strategy() -> impl Strategy<Value = (Sts, u64)> {
        let action = prop::sample::select(vec!["s3:GetObject", "s3:PutObject", "s3:ListBucket", "kms:Decrypt", "s3:*"]);
        let resource = prop::sample::select(vec!["arn:aws:s3:::a", "arn:aws:s3:::a/*", "arn:aws:s3:::b/*", "*"]);
        (
            prop::collection::vec(
                (
                    any::<bool>(),
                    prop::collection::vec(action.prop_map(String::from), 1..4),
                    prop::collection::vec(resource.prop_map(String::from), 1..3),
                ),
                1..5,
            ),
            any::<u64>(),
        )
    }

    fn render(sts: &Sts, seed: u64, shuffle: bool) -> Value {
        let pick = |v: &Vec<String>, salt: u64| -> Value {
            let mut v = v.clone();
            if shuffle {
                v.reverse();
                if (seed ^ salt).is_multiple_of(3) {
                    let n = v.len().min(1);
                    v.rotate_left(n);
                }
            }
            if v.len() == 1 && (seed ^ salt).is_multiple_of(2) {
                json!(v[0])
            } else {
                json!(v)
            }
        };
        let mut list: Vec<Value> = sts
            .iter()
            .enumerate()
            .map(|(i, (allow, a, r))| {
                json!({"Effect": if *allow {"Allow"} else {"Deny"}, "Action": pick(a, i as u64), "Resource": pick(r, i as u64 + 7)})
            })
            .collect();
        if shuffle {
            list.reverse();
        }
        json!({"Version": "2012-10-17", "Statement": list})
    }

    proptest! {
        #[test]
        fn reordering_and_string_list_rewriting_never_diff((sts, seed) in doc_strategy()) {
            let a = render(&sts, seed, false);
            let b = render(&sts, seed.wrapping_mul(31).wrapping_add(1), true);
            prop_assert!(same(&a, &b), "{a} vs {b}");
        }
    }
}
