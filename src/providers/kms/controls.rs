//! The KMS audit controls: KMS-KEY, KMS-ROTATION, KMS-POLICY.

use super::*;

pub(super) const KEY: ControlDef = ControlDef {
    id: "KMS-KEY",
    title: "KMS key exists and is enabled",
    rationale: "S3 encrypts every backup with the key: a missing, disabled or deleted key makes writes fail and backups unreadable (strategy: encryption at rest).",
    severity: Severity::High,
    objectives: &["ENCRYPTION-AT-REST"],
};
pub(super) const ROTATION: ControlDef = ControlDef {
    id: "KMS-ROTATION",
    title: "KMS key rotation",
    rationale: "Rotating the key material limits what one exposed key version protects (AWS KMS developer guide, \"Rotating AWS KMS keys\"; strategy: encryption).",
    severity: Severity::Medium,
    objectives: &["ENCRYPTION-AT-REST"],
};
pub(super) const POLICY: ControlDef = ControlDef {
    id: "KMS-POLICY",
    title: "Key policy grants what the policy says",
    rationale: "The roles that write, restore and replicate backups need the key; a key policy without them denies every write and restore.",
    severity: Severity::High,
    objectives: &[],
};

impl KmsSeen {
    pub(super) fn controls_of(&self, changes: &[Change]) -> Vec<ControlResult> {
        let mut out = Vec::new();
        for k in &self.keys {
            let addr = address(&k.spec.name);
            let Some(change) = changes.iter().find(|c| c.address == addr) else { continue };
            let seen = k.state.key.present();
            let unknown = change.unknown.first().map(|u| format!("{}: {}", u.attribute, u.reason));
            let (status, detail) = match &k.state.key {
                Observed::Unknown { reason } => (Status::Unknown, Some(reason.clone())),
                Observed::Absent => (
                    Status::Fail,
                    Some(format!(
                        "no key has the alias {} in {}: buckets encrypting with it cannot be written",
                        k.spec.alias, k.region
                    )),
                ),
                Observed::Present(s) => match unusable(s) {
                    Some(why) => (Status::Fail, Some(why)),
                    None if s.state == "Disabled" => (
                        Status::Fail,
                        Some(format!("the key {} is Disabled: every write to a bucket encrypted with it fails", s.arn)),
                    ),
                    None => (Status::Pass, None),
                },
            };
            out.push(KEY.result(
                &addr,
                status,
                json!({"alias": k.spec.alias, "region": k.region, "state": "Enabled"}),
                json!(seen),
                detail,
                "suoops-policy apply (creates or enables the key); a deletion someone scheduled is cancelled by hand",
                k.spec.line,
            ));
            let present = seen.is_some();
            if let Some(want) = k.spec.rotation {
                let differs: Vec<&str> = change
                    .attributes
                    .iter()
                    .filter(|a| a.name.starts_with("rotation"))
                    .map(|a| a.name.as_str())
                    .collect();
                let (status, detail) = if let Some(u) = unknown.as_ref().filter(|u| u.starts_with("rotation")) {
                    (Status::Unknown, Some(u.clone()))
                } else if !present {
                    (Status::Fail, Some("the key does not exist".to_string()))
                } else if !differs.is_empty() {
                    (Status::Fail, Some(format!("differs: {}", differs.join(", "))))
                } else if let Some(why) = change.conflicts.iter().find(|c| c.starts_with(super::diff::NO_ROTATION)) {
                    (Status::Fail, Some(why.clone()))
                } else {
                    (Status::Pass, None)
                };
                let observed = k.state.rotation.as_ref().and_then(|r| r.present()).map(|r| json!(r));
                out.push(ROTATION.result(
                    &addr,
                    status,
                    json!({"enabled": want, "period_days": k.spec.rotation_period_days}),
                    observed.unwrap_or(Value::Null),
                    detail,
                    "suoops-policy apply",
                    k.spec.line,
                ));
            }
            if let Some(want) = &k.spec.policy {
                let live = k.state.policy.as_ref().and_then(|p| p.present());
                let missing: Vec<String> =
                    missing_statements(want, live).into_iter().map(|s| sid(s).unwrap_or("?").to_string()).collect();
                let (status, detail) = if let Some(u) = unknown.as_ref().filter(|u| u.starts_with("policy")) {
                    (Status::Unknown, Some(u.clone()))
                } else if !present {
                    (Status::Fail, Some("the key does not exist".to_string()))
                } else if !missing.is_empty() {
                    (Status::Fail, Some(format!("the key policy lacks: {}", missing.join(", "))))
                } else {
                    (Status::Pass, None)
                };
                out.push(POLICY.result(
                    &addr,
                    status,
                    iamdoc::canonical(want),
                    live.map(iamdoc::canonical).unwrap_or(Value::Null),
                    detail,
                    "suoops-policy apply (writes the missing statements; the others are kept)",
                    k.spec.line,
                ));
            }
        }
        out
    }
}
