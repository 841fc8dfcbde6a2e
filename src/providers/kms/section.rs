//! `kms:` of the policy file, kept with its provider (part of the policy
//! layer: the validated type, the file as written, and its rules): customer-managed keys, each found by
//! its alias, with description, rotation and key-policy statements owned by
//! Sid. Buckets name a declared key by its name (`kms_key: NAME`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::policy::diag::{Code, Diagnostic};
use crate::policy::document::{DocKind, RawIamDocument, KEY_POLICY_LIMIT};
use crate::policy::raw::{NamedMap, Sp};
use crate::policy::validate::Validator;

/// A key's name in the policy: letters, digits, `_` and `-` (it becomes
/// `alias/NAME` when no alias is written, and it never looks like an alias,
/// a key id or an ARN).
/// A customer-managed KMS key (`kms.keys.NAME`), identified by its alias.
/// `None`: not mentioned, neither read nor changed.
#[derive(Debug, Clone, PartialEq)]
pub struct KmsKeySpec {
    pub name: String,
    /// The declared account it lives in (`account:`); None: the caller's.
    pub account: Option<String>,

    pub region: Option<String>,
    /// `alias/…`: how the key is found, and how buckets name it.
    pub alias: String,
    pub description: Option<String>,
    pub rotation: Option<bool>,
    pub rotation_period_days: Option<i32>,
    /// The policy's statements (each with a Sid), as a document.
    pub policy: Option<serde_json::Value>,
    pub line: u64,
}

impl KmsKeySpec {
    pub fn region_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.region.as_deref().unwrap_or(default)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKms {
    /// Keys by name. A key named here is created if absent and never
    /// deleted, disabled or scheduled for deletion by the tool. Buckets name
    /// it in `kms_key` / `replica_kms_key` by this name.
    #[serde(default)]
    pub keys: NamedMap<Sp<RawKmsKey>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKmsKey {
    /// The declared account (`accounts:`) it lives in; default the
    /// caller's own.
    #[serde(default)]
    pub account: Option<Sp<String>>,
    /// Region of the key; default `aws.region`. S3 needs the key in the
    /// bucket's region.
    #[serde(default)]
    pub region: Option<Sp<String>>,
    /// The alias that identifies the key (`alias/NAME`); default
    /// `alias/<the key's name>`.
    #[serde(default)]
    pub alias: Option<Sp<String>>,
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// Automatic yearly (or `rotation_period_days`) rotation of the key
    /// material.
    #[serde(default)]
    pub rotation: Option<Sp<RotationRaw>>,
    /// Days between rotations, 90–2560 (AWS default 365); with
    /// `rotation: enabled` only.
    #[serde(default)]
    pub rotation_period_days: Option<Sp<i64>>,
    /// Key policy statements, in IAM grammar, each with a Sid: the tool
    /// owns its statements by Sid and keeps every other (the account's
    /// default statement among them).
    #[serde(default)]
    pub policy: Option<Sp<RawIamDocument>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RotationRaw {
    Enabled,
    Disabled,
}

fn is_key_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 250 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `alias/NAME`, not in the reserved `alias/aws/` space (AWS KMS API
/// reference, "CreateAlias": 1–256 characters of a-zA-Z0-9:/_-).
fn alias_problem(a: &str) -> Option<&'static str> {
    let Some(rest) = a.strip_prefix("alias/") else { return Some("an alias starts with `alias/`") };
    if rest.is_empty() || a.len() > 256 {
        return Some("an alias is `alias/` and 1–250 characters");
    }
    if rest.starts_with("aws/") {
        return Some("`alias/aws/` is reserved for AWS-managed keys");
    }
    if !rest.chars().all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c)) {
        return Some("an alias holds letters, digits, `/`, `_` and `-`");
    }
    None
}

impl Validator<'_> {
    pub(crate) fn kms(&mut self, raw: &Sp<RawKms>) -> Vec<KmsKeySpec> {
        let mut out: Vec<KmsKeySpec> = Vec::new();
        let mut aliases: BTreeMap<(Option<String>, String), u64> = BTreeMap::new();
        for (name, key) in &raw.value().keys.0 {
            let n = name.value().clone();
            if !is_key_name(&n) {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, format!("`{n}` is not a valid key name"), Some(name.pos()))
                        .help("name a key with letters, digits, `_` and `-` (it becomes alias/NAME unless `alias:` says otherwise)"),
                );
                continue;
            }
            if let Some(first) = out.iter().find(|k| k.name == n) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateKey,
                        format!("key `{n}` is declared twice (first at line {})", first.line),
                        Some(name.pos()),
                    )
                    .help("declare each key once"),
                );
                continue;
            }
            let k = key.value();
            let before = self.diags.len();
            let region = k.region.as_ref().and_then(|r| self.region(r));
            let account = k.account.as_ref().and_then(|a| self.account_ref(a));
            let alias = self.key_alias(name, k, region.as_deref(), &mut aliases);
            let description = self.key_description(k);
            let rotation = k.rotation.as_ref().map(|r| *r.value() == RotationRaw::Enabled);
            let rotation_period_days = self.rotation_period(k, rotation);
            let policy = k.policy.as_ref().and_then(|d| self.iam_document(d, DocKind::KeyPolicy, KEY_POLICY_LIMIT));
            if self.diags.len() != before {
                continue;
            }
            let Some(alias) = alias else { continue };
            out.push(KmsKeySpec {
                name: n,
                account,
                region,
                alias,
                description,
                rotation,
                rotation_period_days,
                policy,
                line: name.pos().line,
            });
        }
        out
    }

    /// The key's alias (`alias/NAME` unless written), usable as KMS takes
    /// aliases and naming one key per region.
    fn key_alias(
        &mut self,
        name: &Sp<String>,
        k: &RawKmsKey,
        region: Option<&str>,
        aliases: &mut BTreeMap<(Option<String>, String), u64>,
    ) -> Option<String> {
        let n = name.value();
        let alias = match &k.alias {
            None => Some(format!("alias/{n}")),
            Some(a) => self.expand(a).filter(|v| match alias_problem(v) {
                None => true,
                Some(why) => {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            format!("`{v}` is not a usable alias: {why}"),
                            Some(a.pos()),
                        )
                        .help("write alias/NAME, e.g. alias/suoops-backups"),
                    );
                    false
                }
            }),
        };
        if let Some(a) = &alias {
            let in_region = region.map(str::to_string).or_else(|| self.default_region.clone());
            if let Some(line) = aliases.insert((in_region, a.clone()), name.pos().line) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateKey,
                        format!("alias `{a}` names two keys in one region (first at line {line})"),
                        Some(k.alias.as_ref().map_or(name.pos(), |x| x.pos())),
                    )
                    .help("an alias names one key per region: give each key its own alias"),
                );
            }
        }
        alias
    }

    /// The description, at most 8192 characters (KMS's limit).
    fn key_description(&mut self, k: &RawKmsKey) -> Option<String> {
        let description = k.description.as_ref().and_then(|d| self.expand(d));
        if let (Some(d), Some(pos)) = (&description, &k.description) {
            if d.chars().count() > 8192 {
                self.diags.push(
                    Diagnostic::new(
                        Code::ValueOutOfRange,
                        "a key description holds at most 8192 characters",
                        Some(pos.pos()),
                    )
                    .help("shorten the description"),
                );
            }
        }
        description
    }

    /// `rotation_period_days`: 90 to 2560 (KMS's range), with rotation on.
    fn rotation_period(&mut self, k: &RawKmsKey, rotation: Option<bool>) -> Option<i32> {
        match &k.rotation_period_days {
            None => None,
            Some(p) => {
                let v = *p.value();
                if !(90..=2560).contains(&v) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::ValueOutOfRange,
                            format!("rotation_period_days {v} must be between 90 and 2560"),
                            Some(p.pos()),
                        )
                        .help("KMS rotates every 90 to 2560 days (365 when not said)"),
                    );
                } else if rotation != Some(true) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            "`rotation_period_days` applies only with `rotation: enabled`",
                            Some(p.pos()),
                        )
                        .help("add `rotation: enabled`, or remove the period"),
                    );
                }
                i32::try_from(v).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_checked_as_kms_does() {
        assert_eq!(alias_problem("alias/suoops-backups"), None);
        assert_eq!(alias_problem("alias/team/x_1"), None);
        assert!(alias_problem("suoops").is_some());
        assert!(alias_problem("alias/").is_some());
        assert!(alias_problem("alias/aws/s3").is_some_and(|w| w.contains("reserved")));
        assert!(alias_problem("alias/a b").is_some());
        assert!(is_key_name("suoops-backups") && !is_key_name("alias/x") && !is_key_name(""));
    }
}
