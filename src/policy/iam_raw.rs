//! IAM documents and roles as written in the policy file: IAM's own grammar
//! (Version, Statement, Sid, Effect, Principal, Action, NotAction, Resource,
//! NotResource, Condition) in YAML, with positions for diagnostics.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::raw::{NamedMap, Sp};

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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIam {
    /// IAM roles by name.
    #[serde(default)]
    pub roles: NamedMap<Sp<RawRole>>,
    /// Customer-managed policies by name.
    #[serde(default)]
    pub policies: NamedMap<Sp<RawManagedPolicy>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateRaw {
    Present,
    /// Delete the role (needs --allow-destroy).
    Absent,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    #[serde(default)]
    pub state: Option<Sp<StateRaw>>,
    #[serde(default)]
    pub path: Option<Sp<String>>,
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// Seconds, 3600–43200.
    #[serde(default)]
    pub max_session_duration: Option<Sp<i64>>,
    #[serde(default)]
    pub tags: Option<Sp<BTreeMap<String, String>>>,
    /// The assume-role (trust) policy document.
    #[serde(default)]
    pub trust: Option<Sp<RawIamDocument>>,
    #[serde(default)]
    pub inline_policies: Option<Sp<NamedMap<Sp<RawIamDocument>>>>,
    /// Managed policy ARNs, or names of policies under `iam.policies`.
    #[serde(default)]
    pub managed_policies: Option<Sp<Vec<Sp<String>>>>,
    /// Remove inline policies and attachments the policy does not name
    /// (needs --allow-destroy).
    #[serde(default)]
    pub exclusive: Option<Sp<bool>>,
    /// Derive the standard S3 replication permissions (inline policy
    /// `s3-replication`) from the replication rules that name this role.
    #[serde(default)]
    pub s3_replication: Option<Sp<bool>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawManagedPolicy {
    #[serde(default)]
    pub path: Option<Sp<String>>,
    #[serde(default)]
    pub description: Option<Sp<String>>,
    pub document: Sp<RawIamDocument>,
}
