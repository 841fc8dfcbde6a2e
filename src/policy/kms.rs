//! Validation of the `kms:` section: customer-managed keys, each found by
//! its alias, with description, rotation and key-policy statements owned by
//! Sid. Buckets name a declared key by its name (`kms_key: NAME`).

use std::collections::BTreeMap;

use super::diag::{Code, Diagnostic};
use super::iam::{DocKind, KEY_POLICY_LIMIT};
use super::raw::{RawKms, RotationRaw, Sp};
use super::validate::Validator;
use super::KmsKeySpec;

/// A key's name in the policy: letters, digits, `_` and `-` (it becomes
/// `alias/NAME` when no alias is written, and it never looks like an alias,
/// a key id or an ARN).
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
    pub(super) fn kms(&mut self, raw: &Sp<RawKms>) -> Vec<KmsKeySpec> {
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
                let in_region = region.clone().or_else(|| self.default_region.clone());
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
            let rotation = k.rotation.as_ref().map(|r| *r.value() == RotationRaw::Enabled);
            let rotation_period_days = match &k.rotation_period_days {
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
            };
            let policy = k.policy.as_ref().and_then(|d| self.iam_document(d, DocKind::KeyPolicy, KEY_POLICY_LIMIT));
            if self.diags.len() != before {
                continue;
            }
            let Some(alias) = alias else { continue };
            out.push(KmsKeySpec {
                name: n,
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
