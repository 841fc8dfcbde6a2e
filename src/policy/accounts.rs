//! `accounts:` — the AWS accounts of the estate — and what names them: a
//! resource's `account:`, and a principal written `ACCOUNT:ROLE` (a role of
//! a declared account, its ARN derived, so the policy never writes an
//! account id twice).
//!
//! An account without `role` is the caller's own (its credentials act
//! there, as for a resource that names no account); with `role`, the tool
//! assumes that role once from the caller's credentials (AWS STS
//! AssumeRole, "Switching to an IAM role (AWS API)"), never chained.

use schemars::JsonSchema;
use serde::Deserialize;

use super::diag::{Code, Diagnostic};
use super::raw::{NamedMap, Sp};
use super::validate::Validator;
use super::Secret;

/// An AWS account of the estate (`accounts.NAME`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    /// The 12-digit account id, quoted: "222222222222".
    pub id: Sp<String>,
    /// The role the tool assumes there from the caller's credentials, an
    /// ARN in this account; none: the caller's own account.
    #[serde(default)]
    pub role: Option<Sp<String>>,
    /// The external id the role's trust policy asks for (write
    /// `${VAR}`: it is a secret of sorts).
    #[serde(default)]
    pub external_id: Option<Sp<String>>,
    /// The session's name in the account's CloudTrail (default
    /// suoops-policy).
    #[serde(default)]
    pub session_name: Option<Sp<String>>,
    /// How long the assumed session lasts, 15m to 12h (default 1h).
    #[serde(default)]
    pub session_duration: Option<Sp<String>>,
}

pub type RawAccounts = NamedMap<Sp<RawAccount>>;

/// A declared account.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub name: String,
    pub id: String,
    /// The role assumed there; None: the caller's own account.
    pub role: Option<String>,
    pub external_id: Option<Secret>,
    pub session_name: String,
    pub session_secs: u64,
    pub line: u64,
}

/// Why `ACCOUNT:ROLE` names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("`{0}` names no role after `{1}:`")]
    NoRole(String, String),
    #[error("`{account}` in `{written}` is not a declared account{near}")]
    Undeclared { account: String, written: String, near: String },
}

/// The role `name` of account `id`, as IAM writes its ARN.
pub fn role_arn(id: &str, name: &str) -> String {
    format!("arn:aws:iam::{id}:role/{name}")
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

/// The account id of an IAM role ARN (`arn:PARTITION:iam::ID:role/…`).
fn arn_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn" && parts[2] == "iam" && parts[5].starts_with("role/")).then(|| parts[4])
}

impl Validator<'_> {
    /// Every declared account, checked: a 12-digit id, once; a role that is
    /// a role ARN in that very account; a session name and duration STS
    /// takes.
    pub(crate) fn accounts(&mut self, raw: &Sp<RawAccounts>) -> Vec<Account> {
        let (mut out, mut known): (Vec<Account>, Vec<Account>) = (Vec::new(), Vec::new());
        for (name, a) in &raw.value().0 {
            let before = self.diags.len();
            let n = name.value();
            let valid_name = !n.is_empty()
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !n.chars().all(|c| c.is_ascii_digit());
            if !valid_name {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, format!("`{n}` is not an account name"), Some(name.pos()))
                        .help(
                            "name an account with letters, digits, `-` and `_` (prod, backup…); its id goes in `id:`",
                        ),
                );
            }
            let a = a.value();
            let id = a.id.value().trim().to_string();
            if !is_account_id(&id) {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, format!("`{id}` is not an AWS account id"), Some(a.id.pos()))
                        .help(
                            "an account id is 12 digits, quoted so YAML keeps its leading zeros: id: \"012345678901\"",
                        ),
                );
            }
            if let Some(first) = out.iter().find(|x| x.id == id && is_account_id(&id)) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateKey,
                        format!("account id {id} is declared twice (as `{}` at line {})", first.name, first.line),
                        Some(a.id.pos()),
                    )
                    .help("declare each account once"),
                );
            }
            let role = a.role.as_ref().and_then(|r| self.account_role(r, &id));
            let external_id = a.external_id.as_ref().and_then(|e| self.expand(e)).map(Secret::new);
            let session_name = match &a.session_name {
                Some(s) => self.session_name(s),
                None => Some("suoops-policy".to_string()),
            };
            let session_secs = match &a.session_duration {
                Some(d) => self.session_duration(d),
                None => Some(3600),
            };
            if let (Some(e), true) = (&a.external_id, a.role.is_none()) {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, "`external_id` without `role`", Some(e.pos()))
                        .help("an external id goes with the role assumed in the account; remove it, or add `role:`"),
                );
            }
            if let (None, Some(first)) = (&a.role, out.iter().find(|x| x.role.is_none())) {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!(
                            "`{n}` has no `role`, like `{}` (line {}): only the caller's own account has none",
                            first.name, first.line
                        ),
                        Some(name.pos()),
                    )
                    .help("give every account but the one the tool's credentials are in the `role:` to assume there"),
                );
            }
            let account = Account {
                name: n.clone(),
                id,
                role,
                external_id,
                session_name: session_name.unwrap_or_default(),
                session_secs: session_secs.unwrap_or(3600),
                line: name.pos().line,
            };
            // One with errors is still a name resources may use: what
            // names it is not reported again (the policy does not load).
            if self.diags.len() == before {
                out.push(account.clone());
            }
            known.push(account);
        }
        self.accounts = known;
        out
    }

    fn account_role(&mut self, r: &Sp<String>, id: &str) -> Option<String> {
        let arn = self.expand(r)?;
        match arn_account(&arn) {
            Some(a) if a == id => Some(arn),
            Some(a) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("role `{arn}` is in account {a}, not in this account ({id})"),
                        Some(r.pos()),
                    )
                    .help(format!("name a role of account {id}: arn:aws:iam::{id}:role/NAME")),
                );
                None
            }
            None => {
                self.diags.push(
                    Diagnostic::new(Code::RoleInvalid, format!("`{arn}` is not an IAM role ARN"), Some(r.pos()))
                        .help(format!("write arn:aws:iam::{id}:role/NAME")),
                );
                None
            }
        }
    }

    /// STS: 2 to 64 characters of letters, digits and `=,.@-_`.
    fn session_name(&mut self, s: &Sp<String>) -> Option<String> {
        let v = self.expand(s)?;
        let ok = (2..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c));
        if !ok {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, format!("`{v}` is not a role session name"), Some(s.pos()))
                    .help("STS takes 2 to 64 characters of letters, digits and =,.@-_"),
            );
        }
        ok.then_some(v)
    }

    /// STS: 15 minutes to 12 hours (and no longer than the role's own
    /// maximum, which only STS knows).
    fn session_duration(&mut self, d: &Sp<String>) -> Option<u64> {
        let secs = self.duration(d, "session_duration")?;
        if !(900..=43200).contains(&secs) {
            self.diags.push(
                Diagnostic::new(
                    Code::ValueOutOfRange,
                    format!("session_duration of {secs} s is not between 15m and 12h"),
                    Some(d.pos()),
                )
                .help("STS issues sessions of 15 minutes to 12 hours (1h by default)"),
            );
            return None;
        }
        Some(secs)
    }

    /// A resource's `account:`: one of the declared accounts.
    pub(crate) fn account_ref(&mut self, a: &Sp<String>) -> Option<String> {
        let name = a.value();
        if self.accounts.iter().any(|x| &x.name == name) {
            return Some(name.clone());
        }
        let known: Vec<&str> = self.accounts.iter().map(|x| x.name.as_str()).collect();
        let help = match super::validate::closest(name, known.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None if known.is_empty() => "declare it under `accounts:` (NAME: {id: \"123456789012\"})".to_string(),
            None => format!("the declared accounts are {}", known.join(", ")),
        };
        self.diags.push(
            Diagnostic::new(Code::InvalidValue, format!("`{name}` is not a declared account"), Some(a.pos()))
                .help(help),
        );
        None
    }

    /// A principal as written: `ACCOUNT:ROLE` (a role of a declared
    /// account) becomes the role's ARN; anything else is as written. Err:
    /// it has that form but names no declared account.
    pub(crate) fn principal(&self, p: &str) -> Result<String, PrincipalError> {
        if p.starts_with("arn:") || crate::iamdoc::is_service_principal(p) {
            return Ok(p.to_string());
        }
        let Some((account, role)) = p.split_once(':') else { return Ok(p.to_string()) };
        match self.accounts.iter().find(|a| a.name == account) {
            Some(a) if !role.is_empty() => Ok(role_arn(&a.id, role)),
            Some(_) => Err(PrincipalError::NoRole(p.to_string(), account.to_string())),
            None => {
                let known: Vec<&str> = self.accounts.iter().map(|x| x.name.as_str()).collect();
                let near = super::validate::closest(account, known.iter().copied())
                    .map(|n| format!(" (did you mean `{n}:{role}`?)"))
                    .unwrap_or_default();
                Err(PrincipalError::Undeclared { account: account.to_string(), written: p.to_string(), near })
            }
        }
    }

    /// A document's `AWS` principals in `ACCOUNT:ROLE` form, made ARNs.
    pub(crate) fn resolve_principals(&self, doc: &mut serde_json::Value) {
        let Some(statements) = doc.get_mut("Statement").and_then(|s| s.as_array_mut()) else { return };
        for st in statements {
            for key in ["Principal", "NotPrincipal"] {
                let Some(aws) = st.get_mut(key).and_then(|p| p.get_mut("AWS")) else { continue };
                let fix = |v: &mut serde_json::Value| {
                    if let Some(Ok(arn)) = v.as_str().map(|s| self.principal(s)) {
                        *v = serde_json::Value::String(arn);
                    }
                };
                match aws {
                    serde_json::Value::Array(items) => items.iter_mut().for_each(fix),
                    other => fix(other),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_name_their_account() {
        assert_eq!(arn_account("arn:aws:iam::222222222222:role/suoops-policy"), Some("222222222222"));
        assert_eq!(arn_account("arn:aws:iam::222222222222:role/path/x"), Some("222222222222"));
        assert_eq!(arn_account("arn:aws:iam::222222222222:user/x"), None);
        assert_eq!(arn_account("suoops-policy"), None);
        assert!(is_account_id("012345678901") && !is_account_id("12345") && !is_account_id("12345678901a"));
        assert_eq!(role_arn("222222222222", "r"), "arn:aws:iam::222222222222:role/r");
    }
}
