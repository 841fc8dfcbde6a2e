//! The strategy's objectives, each met / not met with reasons. Which
//! objectives there are is data (`OBJECTIVES`); the registered systems
//! say which of their controls feed each and add what only they can judge
//! (`Provider::feeds`, `Provider::judge`); this module only iterates.

pub use crate::model::objective::{CopyHorizon, Objective, Verdict};

use super::Report;
use crate::policy::Policy;
use crate::providers::{objectives::judge_saying, Evidence, Judged, REGISTRY};

/// One of the strategy's objectives.
pub struct ObjectiveDef {
    pub id: &'static str,
    pub title: &'static str,
    /// Judged from the controls that feed it (else only from what the
    /// systems judge of it).
    pub from_controls: bool,
    /// Each failing control's reason ends with its detail.
    pub why: bool,
}

/// The strategy's objectives, in report order.
pub const OBJECTIVES: &[ObjectiveDef] = &[
    ObjectiveDef {
        id: "RPO-15MIN",
        title: "Data loss under 15 minutes (WAL archived and fresh)",
        from_controls: true,
        why: false,
    },
    ObjectiveDef {
        id: "RETENTION-14D",
        title: "Backups kept as long as the strategy says",
        from_controls: true,
        why: true,
    },
    ObjectiveDef { id: "ENCRYPTION-AT-REST", title: "Backups encrypted at rest", from_controls: true, why: false },
    ObjectiveDef {
        id: "ENCRYPTION-IN-TRANSIT",
        title: "Backups reachable over TLS only",
        from_controls: true,
        why: false,
    },
    ObjectiveDef {
        id: "DR-COPY",
        title: "A disaster-recovery copy in another region",
        from_controls: true,
        why: false,
    },
    ObjectiveDef {
        id: "REDIS-DURABILITY",
        title: "Redis durable where queues need it",
        from_controls: true,
        why: false,
    },
    ObjectiveDef {
        id: "ERASURE-HORIZON",
        title: "A deleted row is gone from every copy of the backups within privacy.erasure_within",
        from_controls: false,
        why: false,
    },
    ObjectiveDef {
        id: "IMMUTABILITY",
        title: "Backups cannot be deleted or overwritten within their retention",
        from_controls: false,
        why: false,
    },
    ObjectiveDef {
        id: "RTO-60MIN-READINESS",
        title: "A restore role can read the latest dump, and a restore drill proved it",
        from_controls: false,
        why: false,
    },
    ObjectiveDef {
        id: "LEAST-PRIVILEGE",
        title: "The writer cannot read or delete; the restore role cannot write",
        from_controls: false,
        why: false,
    },
];

pub fn evaluate(report: &Report, policy: &Policy) -> Vec<Objective> {
    let ev =
        Evidence { controls: &report.controls, identities: &report.identities, key_policies: &report.key_policies };
    OBJECTIVES.iter().map(|def| one(def, &ev, policy)).collect()
}

/// One objective: its controls' verdict, then what each system judges of
/// it. Not met when any part is not met (with every such part's
/// reasons); met when some part is met and none is not.
fn one(def: &ObjectiveDef, ev: &Evidence<'_>, policy: &Policy) -> Objective {
    let mut parts: Vec<Judged> = Vec::new();
    if def.from_controls {
        let fed = crate::providers::objectives::feeding(ev, policy, def.id, &|_| true);
        let (verdict, reasons) = judge_saying(&fed, def.why);
        parts.push(Judged { verdict: Some(verdict), reasons, ..Judged::default() });
    }
    parts.extend(REGISTRY.iter().filter_map(|p| p.judge(def.id, ev, policy)));
    let judged: Vec<&Judged> = parts.iter().filter(|j| j.verdict.is_some()).collect();
    let (verdict, reasons) = if judged.iter().any(|j| j.verdict == Some(Verdict::NotMet)) {
        let r = judged.iter().filter(|j| j.verdict == Some(Verdict::NotMet)).flat_map(|j| j.reasons.clone());
        (Verdict::NotMet, r.collect())
    } else if judged.iter().any(|j| j.verdict == Some(Verdict::Met)) {
        (Verdict::Met, Vec::new())
    } else {
        let r = judged.first().map(|j| j.reasons.clone());
        (Verdict::NotEvaluated, r.unwrap_or_else(|| vec!["no control in the policy covers it".into()]))
    };
    Objective {
        id: def.id,
        title: def.title,
        verdict,
        reasons,
        copies: parts.iter().flat_map(|j| j.copies.clone()).collect(),
        notes: parts.iter().flat_map(|j| j.notes.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{ControlResult, Severity, Status};
    use crate::iamdoc as doc;
    use crate::model::Address;
    use serde_json::Value;

    fn policy(writer_actions: &str) -> Policy {
        let text = format!(
            r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    bkt:
      versioning: enabled
      object_lock: {{mode: governance, days: 14}}
      access: {{writers: [writer], readers: [restore], deny_delete: true, administrators: ["arn:aws:iam::123456789012:role/ci-apply"]}}
      backups: [{{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}]
iam:
  roles:
    writer:
      trust: {{Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}]}}
      inline_policies:
        p: {{Statement: [{{Effect: Allow, Action: [{writer_actions}], Resource: "arn:aws:s3:::bkt/postgres/*"}}]}}
    restore:
      trust: {{Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}]}}
      inline_policies:
        p: {{Statement: [{{Effect: Allow, Action: "s3:Get*", Resource: "arn:aws:s3:::bkt/*"}}]}}
"#
        );
        crate::policy::parse("p.yaml", text.into_bytes(), &|_| None).expect("valid policy")
    }

    fn control(id: &'static str, status: Status) -> ControlResult {
        ControlResult {
            id,
            address: Address::parse("s3.bkt"),
            title: "t",
            rationale: "r",
            severity: Severity::High,
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

    fn replicating(role: &str) -> Policy {
        replicating_with("", role)
    }

    /// `extra` goes into the source bucket's encryption (`, bucket_key: true`).
    fn replicating_with(extra: &str, role: &str) -> Policy {
        let text = format!(
            r#"version: 1
aws: {{region: us-east-1}}
kms:
  keys:
    k: {{rotation: enabled}}
    k-dr: {{region: eu-west-1}}
s3:
  buckets:
    src:
      versioning: enabled
      encryption: {{algorithm: aws:kms, kms_key: k{extra}}}
      replication:
        role: repl
        rules: [{{id: dr, destination: dst, replica_kms_key: k-dr}}]
    dst: {{region: eu-west-1, versioning: enabled}}
iam:
  roles:
    repl:
{role}
"#
        );
        crate::policy::parse("p.yaml", text.into_bytes(), &|_| None).expect("valid policy")
    }

    #[test]
    fn a_rule_leaving_sse_kms_objects_out_of_a_kms_bucket_copies_nothing() {
        let on_role =
            |id: &'static str| ControlResult { address: Address::parse("iam.role.repl"), ..control(id, Status::Pass) };
        let r = Report::new(vec![control("S3-CRR", Status::Pass), on_role("IAM-ROLE"), on_role("IAM-POLICY")]);
        let text = r#"version: 1
aws: {region: us-east-1}
s3:
  buckets:
    src:
      versioning: enabled
      encryption: {algorithm: aws:kms, kms_key: alias/k}
      replication:
        role: repl
        rules: [{id: dr, destination: dst, replicate_kms_encrypted: false}]
      backups: [{name: dump, prefix: postgres/, max_age: 26h}]
    dst: {region: eu-west-1, versioning: enabled}
iam:
  roles:
    repl:
      s3_replication: true
"#;
        let p = crate::policy::parse("p.yaml", text.as_bytes().to_vec(), &|_| None).expect("valid policy");
        let o = evaluate(&r, &p);
        let dr = o.iter().find(|x| x.id == "DR-COPY").expect("DR-COPY");
        assert_eq!(dr.verdict, Verdict::NotMet, "{dr:?}");
        assert_eq!(
            dr.reasons,
            ["replication rule dr of src leaves SSE-KMS objects out (replicate_kms_encrypted: false) and src encrypts with KMS: nothing reaches dst"]
        );
    }

    #[test]
    fn dr_copy_needs_the_key_policy_to_allow_the_replication_role() {
        let on_role =
            |id: &'static str| ControlResult { address: Address::parse("iam.role.repl"), ..control(id, Status::Pass) };
        let mut r = Report::new(vec![control("S3-CRR", Status::Pass), on_role("IAM-ROLE"), on_role("IAM-POLICY")]);
        let p = replicating("      s3_replication: true");
        let role = p.iam.roles.iter().find(|x| x.name == "repl").expect("repl");
        let derived: Vec<(String, Value)> =
            role.inline_policies.iter().flatten().map(|(n, d)| (format!("inline policy {n}"), d.clone())).collect();
        r.identities = vec![doc::Identity {
            role: "repl".into(),
            arn: Some("arn:aws:iam::123456789012:role/repl".into()),
            policies: Ok(derived),
            boundary: None,
        }];
        let root = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}]});
        let only_writer = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/writer"}, "Action": "kms:*", "Resource": "*"}]});
        let kp = |name: &str, d: &Value| doc::KeyPolicy {
            names: vec![name.into(), format!("alias/{name}")],
            policy: Ok(d.clone()),
        };
        // The account's statement delegates to IAM: met.
        r.key_policies = vec![kp("k", &root), kp("k-dr", &root)];
        assert_eq!(verdict(&evaluate(&r, &p), "DR-COPY"), Verdict::Met);
        // The source key's policy names only the writer: IAM cannot grant it.
        r.key_policies = vec![kp("k", &only_writer), kp("k-dr", &root)];
        let o = evaluate(&r, &p);
        let dr = o.iter().find(|x| x.id == "DR-COPY").expect("DR-COPY");
        assert_eq!(dr.verdict, Verdict::NotMet);
        assert_eq!(
            dr.reasons,
            ["replication role `repl` cannot kms:Decrypt with alias/k, the key of src: the key policy neither allows the role nor lets the account's IAM policies grant it (no statement for the account root)"]
        );
    }

    #[test]
    fn dr_copy_needs_the_replication_role_able_to_use_both_keys() {
        let on_role =
            |id: &'static str| ControlResult { address: Address::parse("iam.role.repl"), ..control(id, Status::Pass) };
        let r = Report::new(vec![control("S3-CRR", Status::Pass), on_role("IAM-ROLE"), on_role("IAM-POLICY")]);
        // The derived document grants Decrypt on the source key and
        // Encrypt on the replica key (matched by their aliases).
        let derived = replicating("      s3_replication: true");
        assert_eq!(verdict(&evaluate(&r, &derived), "DR-COPY"), Verdict::Met);
        // A hand-written one without KMS: the copy would miss every
        // SSE-KMS object.
        let manual = replicating(
            "      trust: {Statement: [{Effect: Allow, Principal: {Service: s3.amazonaws.com}, Action: sts:AssumeRole}]}\n      inline_policies:\n        p: {Statement: [{Effect: Allow, Action: \"s3:Replicate*\", Resource: \"arn:aws:s3:::dst/*\"}]}",
        );
        let o = evaluate(&r, &manual);
        let dr = o.iter().find(|x| x.id == "DR-COPY").expect("DR-COPY");
        assert_eq!(dr.verdict, Verdict::NotMet);
        assert!(dr.reasons.iter().any(|x| x.contains("cannot kms:Decrypt with alias/k")), "{:?}", dr.reasons);
        assert!(dr.reasons.iter().any(|x| x.contains("cannot kms:Encrypt with alias/k-dr")), "{:?}", dr.reasons);
        // Not live as declared: not judged from the declaration.
        let drifted = Report::new(vec![control("S3-CRR", Status::Pass), on_role("IAM-ROLE"), {
            let mut c = on_role("IAM-POLICY");
            c.status = Status::Fail;
            c
        }]);
        assert_eq!(verdict(&evaluate(&drifted, &derived), "DR-COPY"), Verdict::NotMet);
    }

    #[test]
    fn dr_copy_evaluates_the_role_conditions_against_the_bucket_key_encryption_context() {
        let on_role =
            |id: &'static str| ControlResult { address: Address::parse("iam.role.repl"), ..control(id, Status::Pass) };
        let r = Report::new(vec![control("S3-CRR", Status::Pass), on_role("IAM-ROLE"), on_role("IAM-POLICY")]);
        // The derived document follows the source's Bucket Key.
        assert_eq!(
            verdict(&evaluate(&r, &replicating_with(", bucket_key: true", "      s3_replication: true")), "DR-COPY"),
            Verdict::Met
        );
        // A hand-written role conditioned on the object ARN only: with a
        // Bucket Key S3 passes the bucket ARN, so AWS would deny it.
        let statement = |ctx: &str| {
            format!(
                "      trust: {{Statement: [{{Effect: Allow, Principal: {{Service: s3.amazonaws.com}}, Action: sts:AssumeRole}}]}}\n      inline_policies:\n        p: {{Statement: [{{Effect: Allow, Action: [kms:Decrypt, kms:Encrypt], Resource: \"*\", Condition: {{{ctx}}}}}]}}"
            )
        };
        let object_arn = statement("StringLike: {kms:ViaService: \"s3.*.amazonaws.com\", \"kms:EncryptionContext:aws:s3:arn\": [\"arn:aws:s3:::src/*\", \"arn:aws:s3:::dst/*\"]}");
        assert_eq!(verdict(&evaluate(&r, &replicating_with("", &object_arn)), "DR-COPY"), Verdict::Met);
        let o = evaluate(&r, &replicating_with(", bucket_key: true", &object_arn));
        let dr = o.iter().find(|x| x.id == "DR-COPY").expect("DR-COPY");
        assert_eq!(dr.verdict, Verdict::NotMet);
        assert_eq!(
            dr.reasons,
            ["replication role `repl` cannot kms:Decrypt with alias/k, the key of src, for encryption context arn:aws:s3:::src"]
        );
        // A condition the audit cannot evaluate is said, never taken as allowed.
        let ip = statement("IpAddress: {aws:SourceIp: 10.0.0.0/8}");
        let o = evaluate(&r, &replicating_with("", &ip));
        let dr = o.iter().find(|x| x.id == "DR-COPY").expect("DR-COPY");
        assert_eq!(dr.verdict, Verdict::NotMet);
        assert!(
            dr.reasons
                .iter()
                .all(|x| x.contains("is not known here: whether inline policy p allows it (the condition operator `IpAddress` is not evaluated)")),
            "{:?}",
            dr.reasons
        );
    }

    /// S3-LIFECYCLE and S3-OBJECT-LOCK found as declared on these buckets.
    fn lifecycle_and_lock_live(buckets: &[&str]) -> Report {
        let live = |b: &str, id: &'static str| ControlResult {
            address: Address::parse(&format!("s3.{b}")),
            ..control(id, Status::Pass)
        };
        Report::new(
            buckets
                .iter()
                .flat_map(|b| [live(b, "S3-LIFECYCLE"), live(b, "S3-OBJECT-LOCK"), live(b, "S3-OLDEST-VERSION")])
                .collect(),
        )
    }

    #[test]
    fn the_erasure_horizon_is_the_longest_copy_and_names_the_one_that_outlives_it() {
        let text = |dr_noncurrent: u32, within: &str| {
            format!(
                "version: 1\naws: {{region: us-east-1}}\nprivacy: {{erasure_within: {within}}}\ns3:\n  buckets:\n    src:\n      versioning: enabled\n      object_lock: {{mode: governance, days: 14}}\n      lifecycle:\n        rules:\n          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}\n      backups:\n        - {{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}\n      replication:\n        role: repl\n        rules: [{{id: dr, destination: dst}}]\n    dst:\n      region: eu-west-1\n      versioning: enabled\n      object_lock: {{mode: governance, days: 14}}\n      lifecycle:\n        rules:\n          - {{id: replicas, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: {dr_noncurrent}}}\niam:\n  roles:\n    repl:\n      s3_replication: true\n"
            )
        };
        let parse = |t: String| crate::policy::parse("p.yaml", t.into_bytes(), &|_| None).expect("valid");
        let r = lifecycle_and_lock_live(&["src", "dst"]);
        let o = evaluate(&r, &parse(text(1, "30d")));
        let e = o.iter().find(|x| x.id == "ERASURE-HORIZON").expect("objective");
        assert_eq!(e.verdict, Verdict::Met, "{:?}", e.reasons);
        // The DR copy keeps noncurrent versions 90 days: 14 + 90.
        let o = evaluate(&r, &parse(text(90, "30d")));
        let e = o.iter().find(|x| x.id == "ERASURE-HORIZON").expect("objective");
        assert_eq!(e.verdict, Verdict::NotMet);
        assert_eq!(
            e.reasons,
            ["s3://dst/postgres/ (DR copy of dump) keeps a deleted row recoverable up to 106 days, 76 over erasure_within (30 days)"]
        );
        // The source alone: 14 + 1 days, each rounded up to the next
        // midnight, or its 14-day lock and a lifecycle run.
        let o = evaluate(&r, &parse(text(1, "7d")));
        let e = o.iter().find(|x| x.id == "ERASURE-HORIZON").expect("objective");
        assert!(
            e.reasons[0]
                .starts_with("s3://src/postgres/ (dump) keeps a deleted row recoverable up to 17 days, 10 over"),
            "{:?}",
            e.reasons
        );
        // Not declared: not evaluated.
        let o = evaluate(&r, &parse(text(1, "30d").replace("privacy: {erasure_within: 30d}\n", "")));
        assert_eq!(verdict(&o, "ERASURE-HORIZON"), Verdict::NotEvaluated);
        // The entry's own erasure_within is what its copies answer to, the
        // DR replica included, over the policy's (which alone would be met).
        let own = |t: String| t.replace("retention: 14d}", "retention: 14d, erasure_within: 10d}");
        let o = evaluate(&r, &parse(own(text(1, "30d"))));
        let e = o.iter().find(|x| x.id == "ERASURE-HORIZON").expect("objective");
        assert_eq!(e.verdict, Verdict::NotMet);
        assert_eq!(
            e.reasons,
            [
                "s3://src/postgres/ (dump) keeps a deleted row recoverable up to 17 days, 7 over erasure_within (10 days)",
                "s3://dst/postgres/ (DR copy of dump) keeps a deleted row recoverable up to 17 days, 7 over erasure_within (10 days)",
            ]
        );
        // ... and it is evaluated without a policy-wide one.
        let o = evaluate(&r, &parse(own(text(1, "30d")).replace("privacy: {erasure_within: 30d}\n", "")));
        assert_eq!(verdict(&o, "ERASURE-HORIZON"), Verdict::NotMet);
        let loose = |t: String| t.replace("retention: 14d}", "retention: 14d, erasure_within: 20d}");
        let o = evaluate(&r, &parse(loose(text(1, "30d")).replace("privacy: {erasure_within: 30d}\n", "")));
        assert_eq!(verdict(&o, "ERASURE-HORIZON"), Verdict::Met);
    }

    #[test]
    fn the_repository_s_dr_copy_is_expired_by_pgbackrest_only_when_delete_markers_replicate() {
        let rules = |markers: bool| format!("[{{id: dr, destination: dst, delete_marker_replication: {markers}}}]");
        let text = |rules: String| {
            format!(
                "version: 1\naws: {{region: us-east-1}}\nprivacy: {{erasure_within: 30d}}\ns3:\n  buckets:\n    src:\n      versioning: enabled\n      object_lock: {{mode: governance, days: 14}}\n      lifecycle:\n        rules:\n          - {{id: pgbackrest, prefix: pgbackrest/, noncurrent_expire_after_days: 14}}\n      replication:\n        role: repl\n        rules: {rules}\n    dst:\n      region: eu-west-1\n      versioning: enabled\n      object_lock: {{mode: governance, days: 14}}\n      lifecycle:\n        rules:\n          - {{id: pgbackrest, prefix: pgbackrest/, noncurrent_expire_after_days: 14}}\niam:\n  roles:\n    repl:\n      s3_replication: true\npostgres:\n  primary:\n    url: postgresql://localhost/app\n    pitr:\n      repo: {{bucket: src, prefix: pgbackrest/}}\n      stanza: app\n      data_directory: /var/lib/postgresql/15/main\n      window: 24h\n      full_every: 24h\n"
            )
        };
        let parse = |t: String| crate::policy::parse("p.yaml", t.into_bytes(), &|_| None).expect("valid");
        let r = lifecycle_and_lock_live(&["src", "dst"]);
        // The window and one cycle (2 days), then 14 days noncurrent.
        let horizon = |rules: String| {
            let o = evaluate(&r, &parse(text(rules)));
            let e = o.iter().find(|x| x.id == "ERASURE-HORIZON").expect("objective").clone();
            (e.verdict, e.reasons)
        };
        assert_eq!(horizon(rules(true)).0, Verdict::Met, "{:?}", horizon(rules(true)).1);
        let unbounded = ["s3://dst/pgbackrest/ (DR copy of the pgBackRest repository) keeps a deleted row recoverable indefinitely: no lifecycle rule of dst expires current objects under pgbackrest/"];
        assert_eq!(horizon(rules(false)).1, unbounded);
        // Two rules to the same destination: the one of higher priority
        // copies the repository (the shipped policy's pattern).
        let two = |repo_priority: u8| {
            format!("[{{id: dr, priority: 2, destination: dst, delete_marker_replication: false}}, {{id: repo, priority: {repo_priority}, prefix: pgbackrest/, destination: dst, delete_marker_replication: true}}]")
        };
        assert_eq!(horizon(two(3)).0, Verdict::Met, "{:?}", horizon(two(3)).1);
        assert_eq!(horizon(two(1)).1, unbounded);
    }

    #[test]
    fn immutability_needs_the_lock_the_delete_denial_and_versioning_measured() {
        let p = policy("s3:PutObject");
        let pass = |id| control(id, Status::Pass);
        let all = vec![pass("S3-OBJECT-LOCK"), pass("S3-ACCESS"), pass("S3-VERSIONING")];
        assert_eq!(verdict(&evaluate(&Report::new(all.clone()), &p), "IMMUTABILITY"), Verdict::Met);
        // Object Lock found off (or weaker) live.
        let mut off = all.clone();
        off[0].status = Status::Fail;
        let o = evaluate(&Report::new(off), &p);
        let imm = o.iter().find(|x| x.id == "IMMUTABILITY").expect("IMMUTABILITY");
        assert_eq!(imm.verdict, Verdict::NotMet);
        assert_eq!(imm.reasons, ["s3.bkt S3-OBJECT-LOCK is fail"]);
        // Governance mode without the configuration restricted: anyone who
        // can rewrite the bucket policy can lift it.
        let mut open = p.clone();
        open.buckets[0].access.as_mut().expect("access").administrators = None;
        let o = evaluate(&Report::new(all.clone()), &open);
        let imm = o.iter().find(|x| x.id == "IMMUTABILITY").expect("IMMUTABILITY");
        assert_eq!(imm.verdict, Verdict::NotMet);
        assert!(imm.reasons[0].starts_with("bkt locks in GOVERNANCE mode and does not restrict"), "{:?}", imm.reasons);
        // Compliance mode needs no administrators.
        open.buckets[0].object_lock.as_mut().expect("lock").mode = crate::policy::sections::s3::LockMode::Compliance;
        assert_eq!(verdict(&evaluate(&Report::new(all.clone()), &open), "IMMUTABILITY"), Verdict::Met);
        // Not declared at all: said, whatever the controls.
        let bare = crate::policy::parse(
            "p.yaml",
            b"version: 1
aws: {region: us-east-1}
s3:
  buckets:
    bkt:
      versioning: enabled
      backups: [{name: dump, prefix: postgres/, max_age: 26h}]
"
            .to_vec(),
            &|_| None,
        )
        .expect("policy");
        // Asked for nowhere: not evaluated, and said why (the strategy asks
        // for versioning, not for Object Lock).
        let o = evaluate(&Report::new(all.clone()), &bare);
        let imm = o.iter().find(|x| x.id == "IMMUTABILITY").expect("IMMUTABILITY");
        assert_eq!(imm.verdict, Verdict::NotEvaluated);
        assert!(imm.reasons[0].contains("asks for no `object_lock:` or `access.deny_delete`"), "{:?}", imm.reasons);
        // Asked for on one bucket: every bucket holding backups is judged.
        let half = crate::policy::parse(
            "p.yaml",
            b"version: 1
aws: {region: us-east-1}
s3:
  buckets:
    bkt:
      versioning: enabled
      backups: [{name: dump, prefix: postgres/, max_age: 26h}]
    other:
      versioning: enabled
      object_lock: {mode: governance, days: 30}
      backups: [{name: dump, prefix: redis/, max_age: 26h}]
"
            .to_vec(),
            &|_| None,
        )
        .expect("policy");
        let o = evaluate(&Report::new(all), &half);
        let imm = o.iter().find(|x| x.id == "IMMUTABILITY").expect("IMMUTABILITY");
        assert_eq!(imm.verdict, Verdict::NotMet);
        assert!(imm.reasons.iter().any(|r| r.contains("bkt has no object_lock")), "{:?}", imm.reasons);
        assert!(imm.reasons.iter().any(|r| r.contains("bkt does not deny deletes")), "{:?}", imm.reasons);
        // No backups at all: nothing to judge.
        let none = crate::policy::parse(
            "p.yaml",
            b"version: 1
"
            .to_vec(),
            &|_| None,
        )
        .expect("policy");
        assert_eq!(verdict(&evaluate(&Report::new(vec![]), &none), "IMMUTABILITY"), Verdict::NotEvaluated);
    }

    fn verdict(objs: &[Objective], id: &str) -> Verdict {
        objs.iter().find(|o| o.id == id).map(|o| o.verdict).expect("objective")
    }

    #[test]
    fn objectives_follow_their_controls() {
        let p = policy("s3:PutObject");
        let r = Report::new(vec![
            control("S3-SSE", Status::Pass),
            control("S3-TLS", Status::Fail),
            control("IAM-POLICY", Status::Pass),
            control("S3-ACCESS", Status::Pass),
        ]);
        let o = evaluate(&r, &p);
        assert_eq!(verdict(&o, "ENCRYPTION-AT-REST"), Verdict::Met);
        assert_eq!(verdict(&o, "ENCRYPTION-IN-TRANSIT"), Verdict::NotMet);
        assert_eq!(verdict(&o, "DR-COPY"), Verdict::NotEvaluated);
        assert_eq!(verdict(&o, "RTO-60MIN-READINESS"), Verdict::Met, "restore reads postgres/ through s3:Get* on bk/*");
        assert_eq!(verdict(&o, "LEAST-PRIVILEGE"), Verdict::Met);
    }

    #[test]
    fn a_writer_that_can_delete_breaks_least_privilege() {
        let p = policy("s3:PutObject, s3:DeleteObject");
        let r = Report::new(vec![control("IAM-POLICY", Status::Pass), control("S3-ACCESS", Status::Pass)]);
        let o = evaluate(&r, &p);
        assert_eq!(verdict(&o, "LEAST-PRIVILEGE"), Verdict::NotMet);
        let reasons = &o.iter().find(|x| x.id == "LEAST-PRIVILEGE").expect("o").reasons;
        assert_eq!(reasons, &["writer writes bkt/postgres/ and can also delete (inline policy p)"]);
        // The bucket-side restriction failing: least privilege is not met,
        // readiness (the restore role can read) still is.
        let p = policy("s3:PutObject");
        let r = Report::new(vec![control("IAM-POLICY", Status::Pass), control("S3-ACCESS", Status::Fail)]);
        let o = evaluate(&r, &p);
        assert_eq!(verdict(&o, "LEAST-PRIVILEGE"), Verdict::NotMet);
        assert_eq!(verdict(&o, "RTO-60MIN-READINESS"), Verdict::Met);
        // Roles not verified live: the access objectives cannot be met.
        let r = Report::new(vec![control("IAM-POLICY", Status::Fail)]);
        assert_eq!(verdict(&evaluate(&r, &p), "RTO-60MIN-READINESS"), Verdict::NotMet);
    }
    #[test]
    fn a_restore_role_in_another_account_reads_only_what_the_bucket_policy_lets_it() {
        let yaml = "accounts:\n  prod: {id: \"123456789012\"}\n  backup: {id: \"222222222222\", role: \"arn:aws:iam::222222222222:role/t\"}\n";
        let src = format!(
            r#"version: 1
aws: {{region: us-east-1}}
{yaml}s3:
  buckets:
    bkt:
      versioning: enabled
      backups: [{{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}]
iam:
  roles:
    restore:
      account: backup
      trust: {{Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}]}}
      inline_policies:
        p: {{Statement: [{{Effect: Allow, Action: "s3:Get*", Resource: "arn:aws:s3:::bkt/*"}}]}}
"#
        );
        let p = crate::policy::parse("p.yaml", src.into_bytes(), &|_| None).expect("valid policy");
        let with_policy = |doc: Value| {
            let mut c = control("S3-ACCOUNT-ISOLATION", Status::Pass);
            c.observed = serde_json::json!({"policy": doc, "lock_mode": null});
            Report::new(vec![control("IAM-POLICY", Status::Pass), c])
        };
        // Its own IAM policy allows the read; the bucket's account does not.
        let o = evaluate(&with_policy(serde_json::json!({"Statement": []})), &p);
        assert_eq!(verdict(&o, "RTO-60MIN-READINESS"), Verdict::NotMet);
        let reasons = &o.iter().find(|x| x.id == "RTO-60MIN-READINESS").expect("o").reasons;
        assert!(
            reasons.iter().any(|r| r.contains("restore is in another account than bkt, whose bucket policy does not let it read")),
            "{reasons:?}"
        );
        // The bucket policy lets it in: ready.
        let allow = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:role/restore"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}]});
        assert_eq!(verdict(&evaluate(&with_policy(allow), &p), "RTO-60MIN-READINESS"), Verdict::Met);
    }
}
