//! Applying KMS changes: create (found again by its tag after a stopped
//! run), alias, description, rotation and the merged key policy.

use super::*;

pub(super) const CHANGED: &str = "changed since it was observed: not replaced (run plan again)";

/// Transient right after CreateKey / CreateRole: the new key is not yet
/// known everywhere, or a key policy names a role IAM has not propagated
/// ("Policy contains a statement with one or more invalid principals";
/// terraform-provider-aws retries both, internal/service/kms/key.go and
/// key_policy.go, for IAM's propagation time).
pub(super) fn transient(e: &impl ProvideErrorMetadata, created: bool) -> bool {
    let code = e.code().unwrap_or("");
    (created && code == "NotFoundException")
        || (code == "MalformedPolicyDocumentException"
            && e.message().unwrap_or("").to_lowercase().contains("principal"))
}

/// A key tagged as this policy's `name` that an earlier run created but
/// never gave its alias (ListKeys, then each key's tags).
pub(super) async fn orphan(aws: &Aws, c: &aws_sdk_kms::Client, name: &str) -> Result<Option<String>, String> {
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .call(&ops::LIST_KEYS, c.list_keys().set_marker(marker.clone()).send())
            .await
            .map_err(|e| classify(&e, &[]).reason())?;
        for k in out.keys() {
            let Some(id) = k.key_id() else { continue };
            let tags = match aws.call(&ops::LIST_RESOURCE_TAGS, c.list_resource_tags().key_id(id).send()).await {
                Ok(t) => t,
                // AWS-managed keys and keys we may not read: not ours.
                Err(_) => continue,
            };
            if tags.tags().iter().any(|t| t.tag_key() == NAME_TAG && t.tag_value() == name) {
                let d = aws.call(&ops::DESCRIBE_KEY, c.describe_key().key_id(id).send()).await;
                let usable =
                    d.ok().and_then(|d| d.key_metadata().map(|m| m.key_state().map(|s| s.as_str().to_string())));
                // Only an enabled one: a half-made key someone disabled (or
                // scheduled for deletion) is left alone.
                if usable.flatten().is_some_and(|s| s == "Enabled") {
                    return Ok(Some(id.to_string()));
                }
            }
        }
        match out.next_marker().filter(|_| out.truncated()) {
            Some(m) => marker = Some(m.to_string()),
            None => return Ok(None),
        }
    }
}

pub(super) async fn apply_key(aws: &Aws, key: &Key, change: &Change) -> Vec<StepOutcome> {
    let spec = &key.spec;
    let c = aws.kms(&key.region);
    let touches = |p: &str| change.attributes.iter().any(|a| a.name == p || a.name.starts_with(&format!("{p}.")));
    let mut out = Vec::new();
    let created = change.action == Action::Create;
    let mut adopted_key = false;
    let id = match key.state.key.present() {
        Some(k) => k.id.clone(),
        None => {
            let adopted = match orphan(aws, &c, &spec.name).await {
                Ok(a) => a,
                Err(e) => {
                    out.push(StepOutcome { step: "create key", result: Err(e) });
                    return out;
                }
            };
            let id = match adopted {
                Some(id) => {
                    out.push(StepOutcome { step: "adopt the key an earlier run created", result: Ok(()) });
                    adopted_key = true;
                    id
                }
                None => {
                    // No policy on create: KMS gives the default key policy
                    // (the account may manage the key through IAM), and the
                    // declared statements are merged into it below (AWS KMS
                    // developer guide, "Default key policy").
                    let tag = Tag::builder().tag_key(NAME_TAG).tag_value(&spec.name).build();
                    let r = match tag {
                        Ok(tag) => aws
                            .call(
                                &ops::CREATE_KEY,
                                c.create_key()
                                    .set_description(spec.description.clone())
                                    .key_spec(KeySpec::SymmetricDefault)
                                    .key_usage(KeyUsageType::EncryptDecrypt)
                                    .tags(tag)
                                    .send(),
                            )
                            .await
                            .map_err(|e| classify(&e, &[]).reason())
                            .and_then(|o| {
                                o.key_metadata()
                                    .map(|m| m.key_id().to_string())
                                    .ok_or_else(|| "no key id in the reply".into())
                            }),
                        Err(e) => Err(e.to_string()),
                    };
                    match r {
                        Ok(id) => {
                            out.push(StepOutcome { step: "create key", result: Ok(()) });
                            id
                        }
                        Err(e) => {
                            out.push(StepOutcome { step: "create key", result: Err(e) });
                            return out;
                        }
                    }
                }
            };
            let r = aws
                .call_until_visible(
                    &ops::CREATE_ALIAS,
                    &format!("key {}", spec.alias),
                    || c.create_alias().alias_name(&spec.alias).target_key_id(&id).send(),
                    |e| transient(e, true),
                )
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, &[]).reason());
            let failed = r.is_err();
            out.push(StepOutcome { step: crate::model::steps::KMS_ALIAS.name, result: r });
            if failed {
                return out;
            }
            id
        }
    };
    macro_rules! step {
        ($op:expr, $label:expr, $make:expr) => {{
            let r = aws
                .call_until_visible($op, &format!("key {}", spec.alias), || $make, |e| transient(e, created))
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, &[]).reason());
            out.push(StepOutcome { step: $label, result: r });
        }};
    }
    if touches("enabled") {
        step!(&ops::ENABLE_KEY, "enable key", c.enable_key().key_id(&id).send());
    }
    // A new key got its description from CreateKey; an adopted one may
    // carry an older one.
    if touches("description") && (!created || adopted_key) {
        step!(
            &ops::UPDATE_KEY_DESCRIPTION,
            "description",
            c.update_key_description().key_id(&id).description(spec.description.clone().unwrap_or_default()).send()
        );
    }
    if touches("rotation") || touches("rotation_period_days") {
        match spec.rotation {
            Some(true) => step!(
                &ops::ENABLE_KEY_ROTATION,
                "rotation",
                c.enable_key_rotation().key_id(&id).set_rotation_period_in_days(spec.rotation_period_days).send()
            ),
            Some(false) => step!(&ops::DISABLE_KEY_ROTATION, "rotation", c.disable_key_rotation().key_id(&id).send()),
            None => {}
        }
    }
    if let (Some(want), true) = (&spec.policy, touches("policy")) {
        let seen = key.state.policy.as_ref().and_then(|p| p.present());
        let r = async {
            let now = match read_policy(aws, &c, &id).await.map_err(|f| f.message)? {
                Observed::Present(v) => v,
                other => {
                    return Err(format!(
                        "cannot re-read the key policy: {}",
                        other.unknown_reason().unwrap_or("absent")
                    ))
                }
            };
            if let Some(seen) = seen {
                if !iamdoc::same(seen, &now) {
                    return Err(format!("the key policy {CHANGED}"));
                }
            }
            let doc = merged_policy(want, &now).to_string();
            aws.call_until_visible(
                &ops::PUT_KEY_POLICY,
                &format!("the principals of the key policy of {}", spec.alias),
                || c.put_key_policy().key_id(&id).policy_name("default").policy(&doc).send(),
                |e| transient(e, created),
            )
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, &[]).reason())
        }
        .await;
        out.push(StepOutcome { step: "key policy", result: r });
    }
    out
}
