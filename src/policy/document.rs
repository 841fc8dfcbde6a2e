//! IAM's policy language, shared by every section that holds a document
//! (a role's trust and permissions, a managed policy, a KMS key policy): as
//! written (Version, Statement, Sid, Effect, Principal, Action, NotAction,
//! Resource, NotResource, Condition) in YAML with positions, and checked as
//! IAM itself would (effects, action and ARN syntax, condition operators,
//! principals, duplicate Sids, size limits).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::diag::{Code, Diagnostic, Pos};
use super::raw::Sp;
use super::validate::Validator;

/// A string, or a list of strings (numbers and booleans read as strings,
/// as IAM treats them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strs {
    pub items: Vec<String>,
    /// Written as a list (kept so the document is written back as written).
    pub list: bool,
}

struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Strs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strs, E> {
                Ok(Strs { items: vec![v.to_string()], list: false })
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Strs, E> {
                Ok(Strs { items: vec![v.to_string()], list: false })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Strs, E> {
                Ok(Strs { items: vec![v.to_string()], list: false })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Strs, E> {
                Ok(Strs { items: vec![v.to_string()], list: false })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strs, A::Error> {
                let mut items = Vec::new();
                while let Some(Scalar(s)) = seq.next_element()? {
                    items.push(s);
                }
                Ok(Strs { items, list: true })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Strs {
    fn schema_name() -> Cow<'static, str> {
        "StringOrList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "oneOf": [ {"type": ["string", "boolean", "number"]}, {"type": "array", "items": {"type": ["string", "boolean", "number"]}} ] })
    }
}

impl Strs {
    pub fn to_json(&self) -> Value {
        if self.list || self.items.len() != 1 {
            json!(self.items)
        } else {
            json!(self.items[0])
        }
    }
}

/// `"*"` or a map of principal types (AWS, Service, Federated,
/// CanonicalUser) to one or more values.
#[derive(Debug, Clone)]
pub enum RawPrincipal {
    Star(String),
    Map(BTreeMap<String, Strs>),
}

impl<'de> Deserialize<'de> for RawPrincipal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPrincipal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"*\" or a mapping such as {AWS: ARN} or {Service: s3.amazonaws.com}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPrincipal, E> {
                Ok(RawPrincipal::Star(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPrincipal, A::Error> {
                BTreeMap::<String, Strs>::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawPrincipal::Map)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RawPrincipal {
    fn schema_name() -> Cow<'static, str> {
        "Principal".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let s = g.subschema_for::<Strs>();
        schemars::json_schema!({ "oneOf": [ {"const": "*"}, {"type": "object", "additionalProperties": s} ] })
    }
}

impl RawPrincipal {
    pub fn to_json(&self) -> Value {
        match self {
            RawPrincipal::Star(s) => json!(s),
            RawPrincipal::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }
}

/// One statement, or a list of them.
#[derive(Debug, Default)]
pub struct Statements(pub Vec<RawStatement>);

impl<'de> Deserialize<'de> for Statements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Statements;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a statement or a list of statements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Statements, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element()? {
                    out.push(s);
                }
                Ok(Statements(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Statements, A::Error> {
                RawStatement::deserialize(de::value::MapAccessDeserializer::new(map)).map(|s| Statements(vec![s]))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Statements {
    fn schema_name() -> Cow<'static, str> {
        "Statements".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let s = g.subschema_for::<RawStatement>();
        schemars::json_schema!({ "oneOf": [ s.clone(), {"type": "array", "items": s} ] })
    }
}

/// An IAM policy document, in IAM's grammar.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIamDocument {
    #[serde(rename = "Version", default)]
    pub version: Option<Sp<String>>,
    #[serde(rename = "Id", default)]
    pub id: Option<Sp<String>>,
    #[serde(rename = "Statement")]
    pub statement: Sp<Statements>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStatement {
    #[serde(rename = "Sid", default)]
    pub sid: Option<Sp<String>>,
    #[serde(rename = "Effect")]
    pub effect: Sp<String>,
    #[serde(rename = "Principal", default)]
    pub principal: Option<Sp<RawPrincipal>>,
    #[serde(rename = "NotPrincipal", default)]
    pub not_principal: Option<Sp<RawPrincipal>>,
    #[serde(rename = "Action", default)]
    pub action: Option<Sp<Strs>>,
    #[serde(rename = "NotAction", default)]
    pub not_action: Option<Sp<Strs>>,
    #[serde(rename = "Resource", default)]
    pub resource: Option<Sp<Strs>>,
    #[serde(rename = "NotResource", default)]
    pub not_resource: Option<Sp<Strs>>,
    #[serde(rename = "Condition", default)]
    pub condition: Option<Sp<BTreeMap<String, BTreeMap<String, Strs>>>>,
}

impl RawIamDocument {
    /// The document as JSON, as written.
    pub fn to_json(&self) -> Value {
        let mut doc = serde_json::Map::new();
        if let Some(v) = &self.version {
            doc.insert("Version".into(), json!(v.value()));
        }
        if let Some(v) = &self.id {
            doc.insert("Id".into(), json!(v.value()));
        }
        let sts: Vec<Value> = self.statement.value().0.iter().map(RawStatement::to_json).collect();
        doc.insert("Statement".into(), Value::Array(sts));
        Value::Object(doc)
    }
}

impl RawStatement {
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        if let Some(s) = &self.sid {
            m.insert("Sid".into(), json!(s.value()));
        }
        m.insert("Effect".into(), json!(self.effect.value()));
        for (k, v) in [("Principal", &self.principal), ("NotPrincipal", &self.not_principal)] {
            if let Some(p) = v {
                m.insert(k.into(), p.value().to_json());
            }
        }
        for (k, v) in [
            ("Action", &self.action),
            ("NotAction", &self.not_action),
            ("Resource", &self.resource),
            ("NotResource", &self.not_resource),
        ] {
            if let Some(s) = v {
                m.insert(k.into(), s.value().to_json());
            }
        }
        if let Some(c) = &self.condition {
            let c: serde_json::Map<String, Value> = c
                .value()
                .iter()
                .map(|(op, kv)| (op.clone(), Value::Object(kv.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())))
                .collect();
            m.insert("Condition".into(), Value::Object(c));
        }
        Value::Object(m)
    }
}

/// Where a document is used decides its grammar and its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// Assume-role policy: Principal required, no Resource.
    Trust,
    /// Identity policy (inline or managed): Resource required, no Principal.
    Identity,
    /// KMS key policy: Principal and Resource required (`"*"` is the key
    /// itself), and a Sid on every statement (statements are owned by Sid).
    KeyPolicy,
}

/// IAM's default quotas, counted on the document without whitespace.
pub const TRUST_LIMIT: usize = 2048;
pub const INLINE_LIMIT: usize = 10240;
pub const MANAGED_LIMIT: usize = 6144;

/// A key policy's limit (AWS KMS developer guide, "Key policies": 32 KB).
pub const KEY_POLICY_LIMIT: usize = 32768;

const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

pub fn is_condition_operator(op: &str) -> bool {
    let op = op.strip_prefix("ForAllValues:").or_else(|| op.strip_prefix("ForAnyValue:")).unwrap_or(op);
    OPERATORS.contains(&op) || op.strip_suffix("IfExists").is_some_and(|b| b != "Null" && OPERATORS.contains(&b))
}

/// `*`, or `service:Action` with `*` and `?` wildcards.
pub fn is_action(a: &str) -> bool {
    if a == "*" {
        return true;
    }
    let Some((svc, act)) = a.split_once(':') else { return false };
    !svc.is_empty()
        && svc.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !act.is_empty()
        && act.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
}

/// `*`, or `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
pub fn is_arn(r: &str) -> bool {
    if r == "*" {
        return true;
    }
    let parts: Vec<&str> = r.splitn(6, ':').collect();
    parts.len() == 6 && parts[0] == "arn" && !parts[1].is_empty() && !parts[2].is_empty() && !parts[5].is_empty()
}

/// Compact JSON length, the measure IAM's size quotas use.
pub fn size(doc: &Value) -> usize {
    doc.to_string().chars().filter(|c| !c.is_whitespace()).count()
}

impl Validator<'_> {
    /// Check one document; its JSON as written, or None when invalid.
    pub(crate) fn iam_document(&mut self, doc: &Sp<RawIamDocument>, kind: DocKind, limit: usize) -> Option<Value> {
        let before = self.diags.len();
        let d = doc.value();
        if let Some(v) = &d.version {
            if v.value() != "2012-10-17" && v.value() != "2008-10-17" {
                self.diags.push(
                    Diagnostic::new(
                        Code::IamDocumentInvalid,
                        format!("Version `{}` is not an IAM policy language version", v.value()),
                        Some(v.pos()),
                    )
                    .help("write Version: \"2012-10-17\" (quoted, so YAML keeps it a string)"),
                );
            }
        }
        if d.statement.value().0.is_empty() {
            self.diags.push(
                Diagnostic::new(Code::IamDocumentInvalid, "the document has no statement", Some(d.statement.pos()))
                    .help("add at least one statement"),
            );
        }
        let mut sids: BTreeMap<String, u64> = BTreeMap::new();
        for st in &d.statement.value().0 {
            self.iam_statement(st, kind, &mut sids);
        }
        let mut json = d.to_json();
        self.resolve_principals(&mut json);
        let n = size(&json);
        if n > limit {
            self.diags.push(
                Diagnostic::new(
                    Code::DocumentTooLarge,
                    format!("the document is {n} characters without whitespace; IAM allows {limit} here"),
                    Some(doc.pos()),
                )
                .help("split it, or move statements into a managed policy"),
            );
        }
        (self.diags.len() == before).then_some(json)
    }

    /// A statement's Sid: letters and digits (spaces too in a key policy),
    /// once in its document.
    fn statement_sid(&mut self, st: &RawStatement, kind: DocKind, sids: &mut BTreeMap<String, u64>) {
        if let Some(sid) = &st.sid {
            let s = sid.value();
            // KMS key policies also take spaces (the default statement is
            // "Enable IAM User Permissions").
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || (kind == DocKind::KeyPolicy && c == ' ')) {
                self.diags.push(
                    Diagnostic::new(
                        Code::IamDocumentInvalid,
                        format!("Sid `{s}` may only hold letters and digits"),
                        Some(sid.pos()),
                    )
                    .help("write the Sid in letters and digits, e.g. WriteDumps"),
                );
            }
            if let Some(line) = sids.insert(s.clone(), sid.pos().line) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateSid,
                        format!("Sid `{s}` is used twice in this document (first at line {line})"),
                        Some(sid.pos()),
                    )
                    .help("give each statement its own Sid"),
                );
            }
        }
    }

    fn iam_statement(&mut self, st: &RawStatement, kind: DocKind, sids: &mut BTreeMap<String, u64>) {
        self.statement_sid(st, kind, sids);
        if st.effect.value() != "Allow" && st.effect.value() != "Deny" {
            self.diags.push(
                Diagnostic::new(
                    Code::IamDocumentInvalid,
                    format!("Effect `{}` is neither Allow nor Deny", st.effect.value()),
                    Some(st.effect.pos()),
                )
                .help("write Effect: Allow or Effect: Deny"),
            );
        }
        let at = st.effect.pos();
        match (&st.action, &st.not_action) {
            (Some(_), Some(n)) => self.diags.push(
                Diagnostic::new(
                    Code::IamDocumentInvalid,
                    "a statement has Action or NotAction, not both",
                    Some(n.pos()),
                )
                .help("remove one of them"),
            ),
            (None, None) => self.diags.push(
                Diagnostic::new(Code::IamDocumentInvalid, "the statement has neither Action nor NotAction", Some(at))
                    .help("add Action: [service:Operation, …]"),
            ),
            _ => {}
        }
        for a in [&st.action, &st.not_action].into_iter().flatten() {
            self.strs_check(
                a,
                is_action,
                "is not an action name",
                "write service:Action, e.g. s3:PutObject (wildcards * and ? allowed)",
            );
        }
        match kind {
            DocKind::Identity => self.identity_statement(st, at),
            DocKind::Trust => self.trust_statement(st, at),
            DocKind::KeyPolicy => self.key_policy_statement(st, at),
        }
        for r in [&st.resource, &st.not_resource].into_iter().flatten() {
            self.strs_check(r, is_arn, "is not an ARN", "write arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE, or \"*\"");
        }
        if kind == DocKind::Identity && st.effect.value() == "Allow" {
            self.grants_nothing(st);
        }
        for p in [&st.principal, &st.not_principal].into_iter().flatten() {
            self.principal_check(p);
        }
        if let Some(c) = &st.condition {
            for op in c.value().keys() {
                if !is_condition_operator(op) {
                    self.diags.push(
                        Diagnostic::new(Code::IamDocumentInvalid, format!("`{op}` is not an IAM condition operator"), Some(c.pos()))
                            .help("use StringEquals, StringLike, ArnLike, Bool, IpAddress, NumericLessThan … (with optional IfExists / ForAnyValue: / ForAllValues:)"),
                    );
                }
            }
        }
    }

    /// An identity policy's statement: no Principal, a Resource or a
    /// NotResource.
    fn identity_statement(&mut self, st: &RawStatement, at: Pos) {
        for p in [&st.principal, &st.not_principal].into_iter().flatten() {
            self.diags.push(
                Diagnostic::new(
                    Code::IamDocumentInvalid,
                    "an identity policy takes no Principal (the role is the principal)",
                    Some(p.pos()),
                )
                .help("remove Principal; trust documents name principals"),
            );
        }
        match (&st.resource, &st.not_resource) {
            (Some(_), Some(n)) => self.diags.push(
                Diagnostic::new(
                    Code::IamDocumentInvalid,
                    "a statement has Resource or NotResource, not both",
                    Some(n.pos()),
                )
                .help("remove one of them"),
            ),
            (None, None) => self.diags.push(
                Diagnostic::new(
                    Code::IamDocumentInvalid,
                    "the statement has neither Resource nor NotResource",
                    Some(at),
                )
                .help("add Resource: ARN (or \"*\")"),
            ),
            _ => {}
        }
    }

    /// A trust document's statement: no Resource, a Principal.
    fn trust_statement(&mut self, st: &RawStatement, at: Pos) {
        for r in [&st.resource, &st.not_resource].into_iter().flatten() {
            self.diags.push(
                Diagnostic::new(
                    Code::IamDocumentInvalid,
                    "a trust document takes no Resource (the role is the resource)",
                    Some(r.pos()),
                )
                .help("remove Resource"),
            );
        }
        if st.principal.is_none() && st.not_principal.is_none() {
            self.diags.push(
                Diagnostic::new(Code::IamDocumentInvalid, "a trust statement needs a Principal", Some(at))
                    .help("add Principal: {AWS: ARN} or {Service: s3.amazonaws.com}"),
            );
        }
    }

    /// A key policy's statement: a Principal, a Resource and a Sid.
    fn key_policy_statement(&mut self, st: &RawStatement, at: Pos) {
        if st.principal.is_none() && st.not_principal.is_none() {
            self.diags.push(
                Diagnostic::new(Code::IamDocumentInvalid, "a key policy statement needs a Principal", Some(at))
                    .help("add Principal: {AWS: arn:aws:iam::ACCOUNT:role/NAME}"),
            );
        }
        if st.resource.is_none() && st.not_resource.is_none() {
            self.diags.push(
                Diagnostic::new(Code::IamDocumentInvalid, "a key policy statement needs a Resource", Some(at))
                    .help("write Resource: \"*\" (in a key policy it means this key)"),
            );
        }
        if st.sid.is_none() {
            self.diags
                .push(Diagnostic::new(Code::IamDocumentInvalid, "a key policy statement needs a Sid", Some(at)).help(
                "the tool owns its key-policy statements by Sid and keeps every other one: add Sid: LettersAndDigits",
            ));
        }
    }

    /// Warnings for Allow statements that look like grants but grant
    /// nothing on AWS.
    fn grants_nothing(&mut self, st: &RawStatement) {
        let (Some(actions), Some(resources)) = (&st.action, &st.resource) else { return };
        let acts: Vec<String> = actions.value().items.iter().map(|a| a.to_ascii_lowercase()).collect();
        let res = &resources.value().items;
        // An alias ARN in Resource applies to the alias, not to the key
        // behind it: kms:Encrypt, Decrypt, GenerateDataKey… are denied (AWS
        // KMS developer guide, "Using aliases to control access to KMS keys").
        let kms = acts.iter().any(|a| a == "*" || a.starts_with("kms:"));
        if let Some(alias) = res.iter().find(|r| r.starts_with("arn:") && r.contains(":kms:") && r.contains(":alias/"))
        {
            if kms {
                let name = alias.rsplit(':').next().unwrap_or("alias/NAME");
                self.warnings.push(
                    Diagnostic::warning(
                        Code::KmsAliasInResource,
                        format!("`{alias}` is an alias ARN: in Resource it grants on the alias, not on the key behind it, so the KMS actions here are denied"),
                        Some(resources.pos()),
                    )
                    .help(format!(
                        "name the key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID), or Resource: arn:aws:kms:REGION:ACCOUNT:key/* with Condition: {{ForAnyValue:StringEquals: {{kms:ResourceAliases: {name}}}}}"
                    )),
                );
            }
        }
        // Object actions apply to `arn:aws:s3:::BUCKET/KEY`, never to the
        // bucket ARN itself (AWS S3 user guide, "Policy resources for Amazon
        // S3").
        const OBJECT: &[&str] = &[
            "s3:getobject",
            "s3:putobject",
            "s3:deleteobject",
            "s3:abortmultipartupload",
            "s3:listmultipartuploadparts",
            "s3:getobjectversion",
            "s3:deleteobjectversion",
            "s3:restoreobject",
        ];
        let items = &actions.value().items;
        let object_actions: Vec<&String> =
            items.iter().filter(|a| OBJECT.contains(&a.to_ascii_lowercase().as_str())).collect();
        let covers_objects = res.iter().any(|r| r == "*" || r.contains('/') || r.ends_with('*'));
        let buckets: Vec<&String> = res.iter().filter(|r| r.starts_with("arn:aws:s3:::") && !r.contains('/')).collect();
        if let (Some(action), Some(bucket), false) = (object_actions.first(), buckets.first(), covers_objects) {
            self.warnings.push(
                Diagnostic::warning(
                    Code::ObjectActionOnBucket,
                    format!(
                        "`{action}` acts on objects, and `{bucket}` is the bucket: this statement grants it on nothing"
                    ),
                    Some(resources.pos()),
                )
                .help(format!("add `{bucket}/*` (or a prefix: `{bucket}/postgres/*`) to Resource")),
            );
        }
    }

    fn strs_check(&mut self, s: &Sp<Strs>, ok: fn(&str) -> bool, what: &str, help: &str) {
        if s.value().items.is_empty() {
            self.diags.push(
                Diagnostic::new(Code::IamDocumentInvalid, "the list is empty", Some(s.pos())).help(help.to_string()),
            );
        }
        for v in &s.value().items {
            if !ok(v) {
                self.diags.push(
                    Diagnostic::new(Code::IamDocumentInvalid, format!("`{v}` {what}"), Some(s.pos()))
                        .help(help.to_string()),
                );
            }
        }
    }

    fn principal_check(&mut self, p: &Sp<RawPrincipal>) {
        match p.value() {
            RawPrincipal::Star(s) if s == "*" => {}
            RawPrincipal::Star(s) => self.diags.push(
                Diagnostic::new(
                    Code::IamDocumentInvalid,
                    format!("Principal `{s}` must be \"*\" or a mapping"),
                    Some(p.pos()),
                )
                .help("write Principal: {AWS: arn:aws:iam::ACCOUNT:role/NAME} or {Service: s3.amazonaws.com}"),
            ),
            RawPrincipal::Map(m) => {
                for (k, v) in m {
                    let valid = |x: &str| match k.as_str() {
                        "AWS" => {
                            x == "*"
                                || (x.len() == 12 && x.chars().all(|c| c.is_ascii_digit()))
                                || (is_arn(x) && x.starts_with("arn:") && x.contains(":iam::"))
                                || self.principal(x).is_ok_and(|arn| arn != x)
                        }
                        "Service" => x.ends_with(".amazonaws.com") || x.ends_with(".amazonaws.com.cn"),
                        "Federated" | "CanonicalUser" => !x.is_empty(),
                        _ => false,
                    };
                    let bad: Vec<(&String, Option<String>)> = v
                        .items
                        .iter()
                        .filter(|x| !valid(x))
                        .map(|x| (x, if k == "AWS" { self.principal(x).err().map(|e| e.to_string()) } else { None }))
                        .collect();
                    for (x, why) in bad {
                        self.diags.push(
                            Diagnostic::new(Code::IamDocumentInvalid, why.unwrap_or_else(|| format!("`{k}: {x}` is not a valid principal")), Some(p.pos()))
                                .help("AWS takes an account id, an IAM ARN, ACCOUNT:ROLE (a role of a declared account) or \"*\"; Service takes NAME.amazonaws.com; the types are AWS, Service, Federated, CanonicalUser"),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_and_arn_syntax() {
        for ok in ["*", "s3:PutObject", "s3:Get*", "sts:AssumeRole", "s3:*"] {
            assert!(is_action(ok), "{ok}");
        }
        for bad in ["s3", "S3:PutObject", "s3:", ":x", "s3:Put Object"] {
            assert!(!is_action(bad), "{bad}");
        }
        assert!(is_arn("arn:aws:s3:::bucket/*"));
        assert!(!is_arn("arn:aws:s3"));
        assert!(!is_arn("bucket"));
    }

    #[test]
    fn condition_operators() {
        for ok in ["StringEquals", "ForAnyValue:StringLike", "BoolIfExists", "Null", "ArnLike"] {
            assert!(is_condition_operator(ok), "{ok}");
        }
        for bad in ["StringEqual", "NullIfExists", "Equals"] {
            assert!(!is_condition_operator(bad), "{bad}");
        }
    }
}
