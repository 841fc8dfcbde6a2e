//! Audit: every desired setting becomes a control with a stable id, judged
//! pass / fail / unknown from the same observation and diff that plan uses,
//! with the observed evidence and the remediation.

pub mod objectives;

use serde::Serialize;

pub use crate::model::control::{AppliedWaiver, ControlDef, ControlResult, Severity, Status};

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub controls: Vec<ControlResult>,
    /// The strategy's objectives, computed from the controls.
    pub objectives: Vec<objectives::Objective>,
    /// Why parts of the live state could not be read at all (an endpoint
    /// unreachable, no credentials): their controls are unknown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreached: Vec<String>,
    /// Each declared account the audit needed, and its verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountStatus>,
    /// `audit --shard I/N`: which share of the estate this report covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// When, by which version and against what the audit ran: what an
    /// auditor reads first. None in golden tests' fixed estates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunContext>,
    /// The identity policies of the declared roles as read (audit only):
    /// the objectives judge what a role can really do from them.
    #[serde(skip)]
    #[schemars(skip)]
    pub identities: Vec<crate::iamdoc::Identity>,
    /// The KMS key policies as read (audit only).
    #[serde(skip)]
    #[schemars(skip)]
    pub key_policies: Vec<crate::iamdoc::KeyPolicy>,
}

/// A share of the estate (`audit --shard INDEX/OF`, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Shard {
    pub index: u32,
    pub of: u32,
}

/// One declared account's verdict: compliant (every control of its
/// resources passed or is waived), not compliant, or unreachable (the
/// role could not be assumed, or STS answered another account: its
/// resources are unknown).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AccountStatus {
    pub name: String,
    pub id: String,
    /// `compliant`, `not_compliant` or `unreachable`.
    pub status: String,
    /// Why it is unreachable (the AWS error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A declared account the run needed: name, id, and why it could not be
/// reached (None: reached).
pub type Reached = (String, String, Option<String>);

impl Report {
    /// Each account's verdict from its controls (after waivers).
    pub fn judge_accounts(&mut self, reached: &[Reached]) {
        self.accounts = reached
            .iter()
            .map(|(name, id, why)| {
                let failing = self.controls.iter().any(|c| {
                    c.account.as_deref() == Some(name.as_str())
                        && matches!(c.status, Status::Fail | Status::Unknown)
                        && c.waiver.is_none()
                });
                let status = match (why, failing) {
                    (Some(_), _) => "unreachable",
                    (None, true) => "not_compliant",
                    (None, false) => "compliant",
                };
                AccountStatus { name: name.clone(), id: id.clone(), status: status.to_string(), reason: why.clone() }
            })
            .collect();
    }
}

/// The facts of one audit run that make a report attributable.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RunContext {
    /// When the live state was read, RFC 3339 in UTC.
    pub generated_at: String,
    /// suoops-policy's version.
    pub tool_version: String,
    /// The AWS account of the credentials (STS GetCallerIdentity); None
    /// when it could not be read.
    pub account: Option<String>,
    /// The regions the policy's buckets and keys are in.
    pub regions: Vec<String>,
    /// The policy file, as given.
    pub policy: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ReportSummary {
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub waived: usize,
}

/// The reports' areas: each registered kind, in registry order, with the
/// ids of the controls it declares.
pub fn areas() -> Vec<(&'static str, Vec<&'static str>)> {
    crate::providers::REGISTRY.iter().map(|p| (p.kind(), p.controls().iter().map(|d| d.id).collect())).collect()
}

impl Report {
    /// The gauges the registered systems publish from this report's
    /// controls (OpenMetrics).
    pub fn gauges(&self) -> Vec<crate::model::control::Gauge> {
        crate::providers::REGISTRY.iter().flat_map(|p| p.gauges(&self.controls)).collect()
    }

    /// Add one part's controls and what its roles and keys allow; the
    /// controls stay sorted by address.
    pub fn absorb(
        &mut self,
        controls: Vec<ControlResult>,
        identities: Vec<crate::iamdoc::Identity>,
        key_policies: Vec<crate::iamdoc::KeyPolicy>,
    ) {
        self.controls.extend(controls);
        self.controls.sort_by(|a, b| (&a.address, a.id).cmp(&(&b.address, b.id)));
        self.identities.extend(identities);
        self.key_policies.extend(key_policies);
    }

    pub fn new(mut controls: Vec<ControlResult>) -> Self {
        controls.sort_by(|a, b| (&a.address, a.id).cmp(&(&b.address, b.id)));
        Report {
            controls,
            objectives: Vec::new(),
            unreached: Vec::new(),
            accounts: Vec::new(),
            shard: None,
            run: None,
            identities: Vec::new(),
            key_policies: Vec::new(),
        }
    }

    /// The one verdict every format and the exit code give: every control
    /// passes (or is waived), the live state could be read, and no
    /// objective the policy asks for is not met (one it does not ask for is
    /// "not evaluated", with the reason, and does not count).
    pub fn compliant(&self) -> bool {
        let s = self.summary();
        s.failed == 0
            && s.unknown == 0
            && self.unreached.is_empty()
            && !self.objectives.iter().any(|o| o.verdict == objectives::Verdict::NotMet)
    }

    pub fn summary(&self) -> ReportSummary {
        let mut s = ReportSummary::default();
        for c in &self.controls {
            match c.status {
                Status::Pass => s.passed += 1,
                Status::Fail => s.failed += 1,
                Status::Unknown => s.unknown += 1,
                Status::Waived => s.waived += 1,
            }
        }
        s
    }
}

impl Report {
    /// Mask every occurrence of `secrets` in what the report shows
    /// (expected, observed, detail, remediation), whatever put it there.
    pub fn redact(&mut self, secrets: &[String]) {
        if secrets.is_empty() {
            return;
        }
        fn walk(v: &mut serde_json::Value, secrets: &[String]) {
            match v {
                serde_json::Value::String(s) => *s = crate::policy::mask(s, secrets),
                serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, secrets)),
                serde_json::Value::Object(m) => m.values_mut().for_each(|x| walk(x, secrets)),
                _ => {}
            }
        }
        for c in &mut self.controls {
            walk(&mut c.expected, secrets);
            walk(&mut c.observed, secrets);
            if let Some(d) = &mut c.detail {
                *d = crate::policy::mask(d, secrets);
            }
            c.remediation = crate::policy::mask(&c.remediation, secrets);
        }
    }
}

/// Apply the policy's waivers: a failing or unknown control covered by an
/// active waiver (same id, its address or one above it) is waived; one
/// covered only by an expired waiver fails and says so. `today` is
/// YYYY-MM-DD.
pub fn apply_waivers(report: &mut Report, waivers: &[crate::policy::Waiver], today: &str) {
    for c in &mut report.controls {
        if c.status == Status::Pass {
            continue;
        }
        let covers = |w: &&crate::policy::Waiver| {
            w.control == c.id
                && (c.address.as_str() == w.address || c.address.as_str().starts_with(&format!("{}.", w.address)))
        };
        let mut matching: Vec<&crate::policy::Waiver> = waivers.iter().filter(covers).collect();
        matching.sort_by(|a, b| b.expires.cmp(&a.expires));
        let Some(w) = matching.first() else { continue };
        let expired = w.expires.as_str() < today;
        c.waiver = Some(AppliedWaiver {
            owner: w.owner.clone(),
            reason: w.reason.clone(),
            expires: w.expires.clone(),
            expired,
        });
        if expired {
            c.status = Status::Fail;
            let note = format!("the waiver by {} expired on {}", w.owner, w.expires);
            c.detail = Some(match &c.detail {
                Some(d) => format!("{d}; {note}"),
                None => note,
            });
        } else {
            c.status = Status::Waived;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;
    use crate::policy::Waiver;
    use serde_json::Value;

    fn control(id: &'static str, address: &str, status: Status) -> ControlResult {
        ControlResult {
            id,
            address: Address::parse(address),
            title: "t",
            rationale: "r",
            severity: Severity::Low,
            status,
            expected: Value::Null,
            observed: Value::Null,
            detail: None,
            remediation: String::new(),
            policy_line: 1,
            waiver: None,
            account: None,
        }
    }

    fn waiver(control: &str, address: &str, expires: &str) -> Waiver {
        Waiver {
            control: control.into(),
            address: address.into(),
            owner: "o".into(),
            reason: "r".into(),
            expires: expires.into(),
        }
    }

    #[test]
    fn active_waivers_waive_expired_ones_fail_and_passes_stay() {
        let mut r = Report::new(vec![
            control("S3-MFA-DELETE", "s3.a.mfa_delete", Status::Fail),
            control("S3-TLS", "s3.b", Status::Unknown),
            control("S3-SSE", "s3.c", Status::Pass),
            control("S3-SSE", "s3.cd", Status::Fail),
        ]);
        let ws = [
            waiver("S3-MFA-DELETE", "s3.a", "2026-12-31"),
            waiver("S3-TLS", "s3.b", "2026-11-23"),
            waiver("S3-SSE", "s3.c", "2030-01-01"),
        ];
        apply_waivers(&mut r, &ws, "2026-11-24");
        let st: Vec<Status> = r.controls.iter().map(|c| c.status).collect();
        assert_eq!(st, [Status::Waived, Status::Fail, Status::Pass, Status::Fail], "sorted by address: a, b, c, cd");
        let tls = r.controls.iter().find(|c| c.id == "S3-TLS").expect("tls");
        assert!(tls.detail.as_deref().unwrap_or("").contains("expired on 2026-11-23"));
        let sse = r.controls.iter().find(|c| c.address.as_str() == "s3.cd").expect("sse");
        assert_eq!(sse.status, Status::Fail, "s3.c does not cover s3.cd");
        assert_eq!(r.summary().waived, 1);
    }

    #[test]
    fn every_control_id_in_the_providers_is_declared() {
        // Ids written anywhere in the providers' source must be in the
        // registry's declarations (waiver validation reads those).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/providers");
        let mut stack = vec![root];
        let mut found = std::collections::BTreeSet::new();
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).expect("read");
                    for part in text.split('"').skip(1).step_by(2) {
                        let prefixed = ["S3-", "IAM-", "KMS-", "REDIS-", "PG-", "PITR-", "BACKUP-", "RESTORE-"]
                            .iter()
                            .any(|x| part.starts_with(x));
                        if prefixed && part.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-') {
                            found.insert(part.to_string());
                        }
                    }
                }
            }
        }
        // Objective ids (REDIS-DURABILITY) share the prefixes.
        for p in crate::providers::REGISTRY {
            for d in p.controls() {
                for o in d.objectives {
                    found.remove(*o);
                }
            }
        }
        let listed: std::collections::BTreeSet<String> =
            crate::providers::control_ids().iter().map(|s| s.to_string()).collect();
        assert_eq!(found, listed);
        assert_eq!(listed.len(), 39, "{listed:?}");
    }
}
