//! The policy file as written: serde types that keep every value's position
//! (serde-saphyr `Spanned`), so validation can point at file:line:col. These
//! types are also the source of the JSON Schema (`suoops-policy schema`).
//! Nothing here judges values; `validate.rs` does.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::diag::Pos;
use super::sections::{iam, kms, postgres, redis, s3};

/// A value with the position it was written at.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Sp<T>(pub Spanned<T>);

impl<T> Sp<T> {
    pub fn value(&self) -> &T {
        &self.0.value
    }
    pub fn pos(&self) -> Pos {
        Pos::from_location(&self.0.referenced)
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A mapping whose keys are names (bucket names…), in file order, each key
/// with its position.
#[derive(Debug, Clone)]
pub struct NamedMap<V>(pub Vec<(Sp<String>, V)>);

impl<V> Default for NamedMap<V> {
    fn default() -> Self {
        NamedMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for NamedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = NamedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Sp<String>>()? {
                    out.push((k, map.next_value()?));
                }
                Ok(NamedMap(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(NamedMap(Vec::new()))
            }
        }
        deserializer.deserialize_map(V2(std::marker::PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for NamedMap<V> {
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let v = generator.subschema_for::<V>();
        schemars::json_schema!({ "type": "object", "additionalProperties": v })
    }
}

/// The whole policy file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "suoops-policy v1", description = "Desired state of the backup estate.")]
pub struct RawPolicy {
    /// Format version; must be 1.
    pub version: Sp<u32>,
    #[serde(default)]
    pub aws: Option<Sp<RawAws>>,
    /// The AWS accounts of the estate, by name: `backup: {id: "222222222222",
    /// role: arn:aws:iam::222222222222:role/suoops-policy}`. A resource
    /// names its `account:`; without one it is in the caller's account.
    #[serde(default)]
    pub accounts: Option<Sp<super::accounts::RawAccounts>>,
    #[serde(default)]
    pub s3: Option<Sp<s3::raw::RawS3>>,
    /// Customer-managed KMS keys the buckets encrypt with.
    #[serde(default)]
    pub kms: Option<Sp<kms::RawKms>>,
    #[serde(default)]
    pub iam: Option<Sp<iam::raw::RawIam>>,
    /// Redis instances by name.
    #[serde(default)]
    pub redis: Option<Sp<redis::RawRedisMap>>,
    /// PostgreSQL servers by name.
    #[serde(default)]
    pub postgres: Option<Sp<postgres::raw::RawPostgresMap>>,
    /// Accepted exceptions to controls, each with an owner and an expiry.
    #[serde(default)]
    pub waivers: Vec<Sp<RawWaiver>>,
    /// What the backups may hold how long: `erasure_within`, the longest a
    /// row deleted today may stay recoverable from any copy of any backup
    /// (objective ERASURE-HORIZON).
    #[serde(default)]
    pub privacy: Option<Sp<RawPrivacy>>,
    /// The scheduled audit: `schedule:` (cron's five fields, in UTC).
    #[serde(default)]
    pub audit: Option<Sp<RawAudit>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// When the audit runs: cron's five fields, in UTC (`15 3 * * *`).
    pub schedule: Sp<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    /// Default region for buckets and API clients, e.g. us-east-1.
    #[serde(default)]
    pub region: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    /// e.g. 30d: every copy of every backup (current objects, noncurrent
    /// versions, DR replicas, Object Lock retention, the pgBackRest window
    /// and full-backup cycle) is gone within it.
    pub erasure_within: Sp<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWaiver {
    /// A control id, e.g. S3-MFA-DELETE.
    pub control: Sp<String>,
    /// The address it covers, and everything under it, e.g. s3.suoops-backups.
    pub address: Sp<String>,
    pub owner: Sp<String>,
    pub reason: Sp<String>,
    /// YYYY-MM-DD (quote it so YAML keeps it a string).
    pub expires: Sp<String>,
}
