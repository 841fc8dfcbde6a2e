//! The pure KMS diff: key-policy statements owned by Sid and compared by
//! meaning, every other statement kept.

use super::*;

pub(super) fn sid(st: &Value) -> Option<&str> {
    st.get("Sid").and_then(Value::as_str)
}

/// A statement by meaning, without its Sid.
pub(super) fn meaning(st: &Value) -> Value {
    let mut c = iamdoc::statement(st);
    if let Value::Object(m) = &mut c {
        m.remove("Sid");
    }
    c
}

/// The declared statements the live policy lacks: judged by meaning, so an
/// equivalent statement under another Sid counts (as for the TLS statement).
pub fn missing_statements<'a>(want: &'a Value, live: Option<&Value>) -> Vec<&'a Value> {
    let have: Vec<Value> = live.map(|l| statements(l).into_iter().map(meaning).collect()).unwrap_or_default();
    statements(want).into_iter().filter(|st| !have.contains(&meaning(st))).collect()
}

/// The key policy to write: the live one with each missing declared
/// statement put in place of the live statement of the same Sid (or added);
/// every other statement kept as read.
pub fn merged_policy(want: &Value, live: &Value) -> Value {
    let missing = missing_statements(want, Some(live));
    let owned: BTreeSet<&str> = missing.iter().filter_map(|s| sid(s)).collect();
    let mut sts: Vec<Value> =
        statements(live).into_iter().filter(|s| !sid(s).is_some_and(|x| owned.contains(x))).cloned().collect();
    sts.extend(missing.into_iter().cloned());
    let mut out = live.clone();
    if let Value::Object(m) = &mut out {
        m.entry("Version").or_insert_with(|| json!("2012-10-17"));
        m.insert("Statement".into(), Value::Array(sts));
    } else {
        out = json!({"Version": "2012-10-17", "Statement": sts});
    }
    out
}

/// Why a present key cannot serve the policy (a person must act), if so.
pub(super) fn unusable(k: &KeySeen) -> Option<String> {
    if k.state == "PendingDeletion" || k.state == "PendingReplicaDeletion" {
        return Some(format!(
            "the key {} is scheduled for deletion{}: cancel it (aws kms cancel-key-deletion --key-id {}) — the tool never cancels a deletion someone scheduled",
            k.arn,
            k.deletion_date.as_deref().map(|d| format!(" on {d}")).unwrap_or_default(),
            k.id
        ));
    }
    if k.manager != "CUSTOMER" {
        return Some(format!("the alias names an AWS-managed key ({}), which the tool cannot manage", k.arn));
    }
    // S3 encrypts only with symmetric encryption keys (AWS S3 user guide,
    // "Using server-side encryption with AWS KMS keys (SSE-KMS)").
    if (!k.spec.is_empty() && k.spec != "SYMMETRIC_DEFAULT") || (!k.usage.is_empty() && k.usage != "ENCRYPT_DECRYPT") {
        return Some(format!(
            "the key {} is {} for {}: S3 encrypts only with symmetric ENCRYPT_DECRYPT keys",
            k.arn, k.spec, k.usage
        ));
    }
    if !matches!(k.state.as_str(), "Enabled" | "Disabled" | "Creating") {
        return Some(format!("the key {} is {}", k.arn, k.state));
    }
    None
}

/// The start of the conflict a key AWS cannot rotate gets.
pub(super) const NO_ROTATION: &str = "rotation cannot be changed here:";

/// Why KMS would refuse to change this key's automatic rotation: keys
/// with imported key material and keys in a custom key store do not
/// rotate automatically, and a multi-Region replica's rotation is set on
/// its primary key and shared (AWS KMS developer guide, "Rotate AWS KMS
/// keys": automatic key rotation is not supported on keys with imported
/// key material, in custom key stores, …; "Rotating multi-Region keys").
pub(super) fn cannot_rotate(k: &KeySeen) -> Option<String> {
    match k.origin.as_deref() {
        Some("EXTERNAL") => Some(format!(
            "{NO_ROTATION} {} holds imported key material, which KMS does not rotate automatically; rotate it by hand (a new key, its material imported, the alias moved) or drop `rotation:`",
            k.arn
        )),
        Some(store @ ("AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE")) => Some(format!(
            "{NO_ROTATION} {} is in a custom key store ({store}), where KMS does not rotate keys automatically; drop `rotation:` for it",
            k.arn
        )),
        _ if k.replica => Some(format!(
            "{NO_ROTATION} {} is a multi-Region replica key: its rotation is set on the primary key and shared by its replicas",
            k.arn
        )),
        _ => None,
    }
}

impl Key {
    /// The key's change; pure.
    pub(super) fn change(&self) -> Change {
        let spec = &self.spec;
        let mut c = Change::new(address(&spec.name), Action::NoOp);
        let k = match &self.state.key {
            Observed::Unknown { reason } => {
                c.unknown.push(UnknownSetting { attribute: "key".into(), reason: reason.clone() });
                return c;
            }
            Observed::Absent => return self.create(c),
            Observed::Present(k) => k,
        };
        if let Some(why) = unusable(k) {
            c.conflicts.push(why);
            return c;
        }
        if k.state == "Disabled" {
            c.attributes.push(AttrChange::new("enabled", Some(json!(false)), json!(true)));
        }
        if let Some(d) = spec.description.as_ref().filter(|d| **d != k.description) {
            c.attributes.push(AttrChange::new("description", Some(json!(k.description)), json!(d)));
        }
        match (&spec.rotation, &self.state.rotation) {
            (Some(_), Some(Observed::Unknown { reason })) => {
                c.unknown.push(UnknownSetting { attribute: "rotation".into(), reason: reason.clone() })
            }
            (Some(want), Some(Observed::Present(r))) => {
                if r.enabled != *want {
                    c.attributes.push(AttrChange::new("rotation", Some(json!(r.enabled)), json!(want)));
                }
                if let Some(p) = spec.rotation_period_days {
                    match r.period_days {
                        Some(live) if live == p => {}
                        Some(live) if r.enabled => {
                            c.attributes.push(AttrChange::new("rotation_period_days", Some(json!(live)), json!(p)))
                        }
                        _ if !r.enabled => c.attributes.push(AttrChange::new("rotation_period_days", None, json!(p))),
                        _ => c.unknown.push(UnknownSetting {
                            attribute: "rotation_period_days".into(),
                            reason: "the server does not report the rotation period".into(),
                        }),
                    }
                }
            }
            _ => {}
        }
        // A rotation AWS would refuse is not planned: the plan says why.
        if let Some(why) = cannot_rotate(k).filter(|_| c.attributes.iter().any(|a| a.name.starts_with("rotation"))) {
            c.attributes.retain(|a| !a.name.starts_with("rotation"));
            c.conflicts.push(why);
        }
        self.policy_statements(&mut c);
        if !c.attributes.is_empty() {
            c.action = Action::Update;
        }
        c
    }

    /// The key to create, with what the policy says of it.
    fn create(&self, mut c: Change) -> Change {
        let spec = &self.spec;
        c.action = Action::Create;
        c.attributes.push(AttrChange::new("alias", None, json!(spec.alias)));
        c.attributes.push(AttrChange::new("region", None, json!(self.region)));
        if let Some(d) = &spec.description {
            c.attributes.push(AttrChange::new("description", None, json!(d)));
        }
        if let Some(r) = spec.rotation {
            c.attributes.push(AttrChange::new("rotation", None, json!(r)));
        }
        if let Some(p) = spec.rotation_period_days {
            c.attributes.push(AttrChange::new("rotation_period_days", None, json!(p)));
        }
        if let Some(p) = &spec.policy {
            for st in statements(p) {
                let name = format!("policy.{}", sid(st).unwrap_or("?"));
                c.attributes.push(AttrChange::new(&name, None, iamdoc::statement(st)));
            }
            c.reason = Some("the key policy is the account's default plus these statements".into());
        }
        c
    }

    /// The key policy's statements the policy owns (by Sid) that are
    /// missing or differ; every other statement is kept and said.
    fn policy_statements(&self, c: &mut Change) {
        match (&self.spec.policy, &self.state.policy) {
            (Some(_), Some(Observed::Unknown { reason })) => {
                c.unknown.push(UnknownSetting { attribute: "policy".into(), reason: reason.clone() })
            }
            (Some(want), Some(Observed::Present(live))) => {
                for st in missing_statements(want, Some(live)) {
                    let s = sid(st).unwrap_or("?");
                    let before = statements(live).into_iter().find(|l| sid(l) == Some(s)).map(iamdoc::statement);
                    let mut a = AttrChange::new(&format!("policy.{s}"), before.clone(), iamdoc::statement(st));
                    a.diff = Some(iamdoc::diff_text(
                        before.map(|b| json!({"Statement": [b]})).as_ref(),
                        &json!({"Statement": [st]}),
                    ));
                    c.attributes.push(a);
                }
                let owned: Vec<&str> = statements(want).into_iter().filter_map(sid).collect();
                let bad = iamdoc::statements_with_deleted_principals(live, &owned);
                if !c.attributes.is_empty() && !bad.is_empty() {
                    c.conflicts.push(format!(
                        "the key policy has statements naming deleted principals: {}; KMS refuses the whole policy while they are there (remove or fix them, then run apply)",
                        bad.join("; ")
                    ));
                }
                let foreign: Vec<String> = statements(live)
                    .into_iter()
                    .filter(|l| !statements(want).iter().any(|w| sid(w).is_some() && sid(w) == sid(l)))
                    .map(|l| sid(l).unwrap_or("(no Sid)").to_string())
                    .collect();
                if !foreign.is_empty() {
                    c.reason = Some(format!("key policy also has: {}, kept", foreign.join(", ")));
                }
            }
            _ => {}
        }
    }
}
