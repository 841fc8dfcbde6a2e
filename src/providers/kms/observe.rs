//! Reading KMS keys: each declared key by its alias in its region,
//! with its rotation and key policy.

use super::*;

/// The tag a key this tool creates carries (its name in the policy): a key
/// whose alias was never made (the run stopped between CreateKey and
/// CreateAlias) is found again by it instead of a second key being made.
pub const NAME_TAG: &str = "suoops-policy:key";

/// A key as DescribeKey shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeySeen {
    pub arn: String,
    pub id: String,
    /// Enabled, Disabled, PendingDeletion, PendingImport, Unavailable…
    pub state: String,
    /// CUSTOMER or AWS.
    pub manager: String,
    pub spec: String,
    pub usage: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<String>,
    /// Where the key material comes from when not from KMS itself
    /// (EXTERNAL: imported; AWS_CLOUDHSM, EXTERNAL_KEY_STORE: a custom key
    /// store); None for AWS_KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// A multi-Region replica key (its rotation is its primary's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replica: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    pub enabled: bool,
    /// None: the server did not say (AWS always does).
    pub period_days: Option<i32>,
}

/// One declared key as read: only what the policy mentions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyState {
    pub key: Observed<KeySeen>,
    pub rotation: Option<Observed<Rotation>>,
    pub policy: Option<Observed<Value>>,
}

#[derive(Debug, Clone)]
pub struct Key {
    pub spec: KmsKeySpec,
    pub region: String,
    pub state: KeyState,
}

/// Every declared key of the run.
pub struct KmsSeen {
    pub keys: Vec<Key>,
}

pub fn address(name: &str) -> Address {
    Address::resource("kms", name)
}

/// Read one key by its alias. `wait`: the key was created by this run and
/// its alias may not be visible yet (reobserve after apply).
pub(super) async fn read_key(aws: &Aws, spec: &KmsKeySpec, region: &str, wait: bool) -> Result<KeyState, Fatal> {
    let c = aws.kms(region);
    let r = if wait {
        aws.call_until_visible(
            &ops::DESCRIBE_KEY,
            &format!("key {}", spec.alias),
            || c.describe_key().key_id(&spec.alias).send(),
            |e| e.code() == Some("NotFoundException"),
        )
        .await
    } else {
        aws.call(&ops::DESCRIBE_KEY, c.describe_key().key_id(&spec.alias).send()).await
    };
    let key = match r {
        Ok(out) => match out.key_metadata() {
            Some(m) => Observed::Present(KeySeen {
                arn: m.arn().unwrap_or_default().to_string(),
                id: m.key_id().to_string(),
                state: m.key_state().map_or("Unknown", |s| s.as_str()).to_string(),
                manager: m.key_manager().map_or("", |s| s.as_str()).to_string(),
                spec: m.key_spec().map_or("", |s| s.as_str()).to_string(),
                usage: m.key_usage().map_or("", |s| s.as_str()).to_string(),
                description: m.description().unwrap_or_default().to_string(),
                deletion_date: m.deletion_date().map(|d| d.to_string()),
                origin: m.origin().map(|o| o.as_str().to_string()).filter(|o| o != "AWS_KMS"),
                replica: m.multi_region_configuration().and_then(|c| c.multi_region_key_type()).map(|t| t.as_str())
                    == Some("REPLICA"),
            }),
            None => Observed::Absent,
        },
        Err(e) => classify(&e, &["NotFoundException"]).observed()?,
    };
    let Some(id) = key.present().map(|k| k.id.clone()) else {
        fn like<T>(k: &Observed<KeySeen>) -> Observed<T> {
            match k {
                Observed::Unknown { reason } => Observed::Unknown { reason: reason.clone() },
                _ => Observed::Absent,
            }
        }
        return Ok(KeyState {
            rotation: spec.rotation.map(|_| like(&key)),
            policy: spec.policy.as_ref().map(|_| like(&key)),
            key,
        });
    };
    let (rotation, policy) = tokio::join!(
        async {
            if spec.rotation.is_none() {
                return Ok(None);
            }
            match aws.call(&ops::GET_KEY_ROTATION_STATUS, c.get_key_rotation_status().key_id(&id).send()).await {
                Ok(o) => Ok(Some(Observed::Present(Rotation {
                    enabled: o.key_rotation_enabled(),
                    period_days: o.rotation_period_in_days(),
                }))),
                Err(e) => classify(&e, &["NotFoundException"]).observed().map(Some),
            }
        },
        async {
            if spec.policy.is_none() {
                return Ok(None);
            }
            read_policy(aws, &c, &id).await.map(Some)
        }
    );
    Ok(KeyState { key, rotation: rotation?, policy: policy? })
}

pub(super) async fn read_policy(aws: &Aws, c: &aws_sdk_kms::Client, id: &str) -> Result<Observed<Value>, Fatal> {
    match aws.call(&ops::GET_KEY_POLICY, c.get_key_policy().key_id(id).policy_name("default").send()).await {
        Ok(o) => Ok(match o.policy().map(iamdoc::parse) {
            Some(Ok(v)) => Observed::Present(v),
            Some(Err(e)) => Observed::Unknown { reason: format!("key policy: {e}") },
            None => Observed::Present(json!({"Version": "2012-10-17", "Statement": []})),
        }),
        Err(e) => classify(&e, &["NotFoundException"]).observed(),
    }
}

pub(super) async fn read_all(ctx: &Ctx<'_>, specs: &[(KmsKeySpec, bool)]) -> Result<KmsSeen, Fatal> {
    let aws = ctx.aws;
    let default = aws.default_region().unwrap_or("us-east-1").to_string();
    let mut keys: Vec<Key> = stream::iter(specs.iter().cloned())
        .map(|(spec, wait)| {
            let region = spec.region_or(&default).to_string();
            async move {
                let mut state = read_key(aws, &spec, &region, wait).await?;
                // The audit judges who can use the key by its policy, whether
                // the policy declares statements of it or not.
                if let (true, None, Some(k)) = (ctx.evidence, &state.policy, state.key.present()) {
                    state.policy = Some(read_policy(aws, &aws.kms(&region), &k.id).await?);
                }
                Ok::<_, Fatal>(Key { spec, region, state })
            }
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .try_collect()
        .await?;
    keys.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(KmsSeen { keys })
}

/// Every declared key, none of it read (`reason`).
pub(super) fn unobserved(ctx: &Ctx<'_>, specs: &[KmsKeySpec], reason: &str) -> KmsSeen {
    let default = ctx.aws.default_region().unwrap_or("us-east-1");
    let keys = specs
        .iter()
        .map(|spec| Key {
            region: spec.region_or(default).to_string(),
            state: KeyState {
                key: Observed::unknown(reason),
                rotation: spec.rotation.map(|_| Observed::unknown(reason)),
                policy: spec.policy.as_ref().map(|_| Observed::unknown(reason)),
            },
            spec: spec.clone(),
        })
        .collect();
    KmsSeen { keys }
}
