//! IAM roles and managed policies against moto: create from nothing,
//! converge, drift behind the tool's back, ownership of inline policies and
//! attachments, deletion behind --allow-destroy; and the tool's own
//! least-privilege policy.

use crate::harness::{squash, unique, Server, World};

fn policy(role: &str, managed: &str, exclusive: bool) -> String {
    format!(
        r#"version: 1
iam:
  policies:
    {managed}:
      description: read backups
      document:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: s3:GetObject
            Resource: arn:aws:s3:::suoops-backups/*
  roles:
    {role}:
      description: writes dumps
      max_session_duration: 7200
      tags: {{owner: platform}}
      exclusive: {exclusive}
      trust:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{AWS: "arn:aws:iam::123456789012:role/ci-runner"}}
            Action: sts:AssumeRole
      inline_policies:
        write-backups:
          Statement:
            - Sid: PutDumps
              Effect: Allow
              Action: [s3:PutObject, s3:AbortMultipartUpload]
              Resource: [arn:aws:s3:::suoops-backups/postgres/*, arn:aws:s3:::suoops-backups/wal/*]
      managed_policies: [{managed}]
"#
    )
}

/// Python run against moto: argv[1] is the URL, argv[2] the role.
const IAM: &str = r#"
import sys, json, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
"#;

fn py(w: &World, role: &str, body: &str) -> String {
    let code = format!("{IAM}role = {role:?}\n{body}");
    w.python(&code)
}

crate::both!(
    roles_and_policies_are_created_from_nothing_and_converge,
    super::roles_and_policies_are_created_from_nothing_and_converge_on
);
fn roles_and_policies_are_created_from_nothing_and_converge_on(server: Server) {
    let w = World::on(server);
    let (role, managed) = (unique("writer"), unique("read-backups"));
    let p = w.write("p.yaml", &policy(&role, &managed, false)).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    let out = squash(&r.stdout);
    assert!(out.contains(&format!("+ iam.policy.{managed} will be created")), "{out}");
    assert!(out.contains(&format!("+ iam.role.{role} will be created")), "{out}");
    assert!(out.contains(&format!("+ iam.role.{role}.inline.write-backups will be created")), "{out}");
    assert!(out.contains(&format!("+ iam.role.{role}.attachment.{managed} will be created")), "{out}");
    assert!(out.contains(&format!("+ policy_arn = \"(known after apply: policy {managed})\"")), "{out}");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(0);
    let ids: Vec<String> = r.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids, ["IAM-POLICY", "IAM-ROLE", "IAM-TRUST"]);
    // What the tool wrote, read back independently.
    let got = py(&w, &role, "r = iam.get_role(RoleName=role)['Role']\nprint(r['Description'], r['MaxSessionDuration'], [a['PolicyName'] for a in iam.list_attached_role_policies(RoleName=role)['AttachedPolicies']])");
    assert_eq!(got.trim(), format!("writes dumps 7200 ['{managed}']"));
}

crate::both!(
    drift_behind_the_tools_back_shows_and_fails_audit,
    super::drift_behind_the_tools_back_shows_and_fails_audit_on
);
fn drift_behind_the_tools_back_shows_and_fails_audit_on(server: Server) {
    let w = World::on(server);
    let (role, managed) = (unique("writer"), unique("read-backups"));
    let p = w.write("p.yaml", &policy(&role, &managed, false)).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    py(
        &w,
        &role,
        r#"
doc = {"Version": "2012-10-17", "Statement": [
    {"Sid": "PutDumps", "Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload"], "Resource": ["arn:aws:s3:::suoops-backups/postgres/*", "arn:aws:s3:::suoops-backups/wal/*"]},
    {"Sid": "Sneaky", "Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "*"}]}
iam.put_role_policy(RoleName=role, PolicyName="write-backups", PolicyDocument=json.dumps(doc))
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}]}
iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(trust))
for a in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
    iam.detach_role_policy(RoleName=role, PolicyArn=a["PolicyArn"])
"#,
    );
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    let out = &r.stdout;
    assert!(out.contains(&format!("~ iam.role.{role} will be updated in place")), "{out}");
    assert!(out.contains("-          \"arn:aws:iam::999999999999:root\""), "trust diff: {out}");
    assert!(out.contains("+          \"arn:aws:iam::123456789012:role/ci-runner\""), "trust diff: {out}");
    assert!(out.contains("-      \"Sid\": \"Sneaky\""), "inline diff: {out}");
    assert!(squash(out).contains(&format!("+ iam.role.{role}.attachment.{managed} will be created")), "{out}");
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let failed: Vec<String> = r.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(failed, ["IAM-POLICY", "IAM-TRUST"]);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

crate::both!(
    foreign_inline_policy_is_kept_unless_exclusive_and_deletions_need_allow_destroy,
    super::foreign_inline_policy_is_kept_unless_exclusive_and_deletions_need_allow_destroy_on
);
fn foreign_inline_policy_is_kept_unless_exclusive_and_deletions_need_allow_destroy_on(server: Server) {
    let w = World::on(server);
    let (role, managed) = (unique("writer"), unique("read-backups"));
    let shared = w.write("shared.yaml", &policy(&role, &managed, false)).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &shared, "--auto-approve"]).code(0);
    py(
        &w,
        &role,
        r#"iam.put_role_policy(RoleName=role, PolicyName="other-team", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))"#,
    );
    let r = w.cli(&["plan", "-f", &shared, "--detailed-exitcode"]);
    r.code(0);
    assert!(
        r.stdout.contains(&format!("= iam.role.{role}.inline.other-team: not managed by this policy, kept")),
        "{}",
        r.stdout
    );

    let exclusive = w.write("exclusive.yaml", &policy(&role, &managed, true)).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &exclusive, "--detailed-exitcode"]);
    r.code(2);
    assert!(r.stdout.contains(&format!("- iam.role.{role}.inline.other-team will be destroyed")), "{}", r.stdout);
    let r = w.cli(&["apply", "-f", &exclusive, "--auto-approve"]);
    r.code(1);
    assert!(r.stderr.contains("--allow-destroy was not given; nothing was changed"), "{}", r.stderr);
    let names = py(&w, &role, "print(sorted(iam.list_role_policies(RoleName=role)['PolicyNames']))");
    assert_eq!(names.trim(), "['other-team', 'write-backups']");
    w.cli(&["apply", "-f", &exclusive, "--auto-approve", "--allow-destroy"]).code(0);
    let names = py(&w, &role, "print(sorted(iam.list_role_policies(RoleName=role)['PolicyNames']))");
    assert_eq!(names.trim(), "['write-backups']");

    // state: absent deletes the role, only with --allow-destroy.
    let gone = w
        .write("gone.yaml", &format!("version: 1\niam:\n  roles:\n    {role}:\n      state: absent\n"))
        .to_string_lossy()
        .into_owned();
    let r = w.cli(&["plan", "-f", &gone]);
    r.code(0);
    assert!(r.stdout.contains(&format!("- iam.role.{role} will be destroyed")), "{}", r.stdout);
    w.cli(&["apply", "-f", &gone, "--auto-approve"]).code(1);
    w.cli(&["apply", "-f", &gone, "--auto-approve", "--allow-destroy"]).code(0);
    let exists = py(&w, &role, "print(any(r['RoleName'] == role for r in iam.list_roles()['Roles']))");
    assert_eq!(exists.trim(), "False");
    w.cli(&["plan", "-f", &gone, "--detailed-exitcode"]).code(0);
}

crate::both!(
    a_changed_managed_policy_gets_a_new_default_version_pruning_the_oldest,
    super::a_changed_managed_policy_gets_a_new_default_version_pruning_the_oldest_on
);
fn a_changed_managed_policy_gets_a_new_default_version_pruning_the_oldest_on(server: Server) {
    let w = World::on(server);
    let (role, managed) = (unique("writer"), unique("read-backups"));
    let p = w.write("p.yaml", &policy(&role, &managed, false)).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    // Fill the policy up to IAM's limit of five versions behind the tool's back.
    let arn = py(
        &w,
        &managed,
        r#"
arn = [p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"] == role][0]
for i in range(4):
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::old-{i}/*"}]}), SetAsDefault=True)
print(arn)
"#,
    );
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(r.stdout.contains(&format!("~ iam.policy.{managed} will be updated in place")), "{}", r.stdout);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    let versions = py(&w, arn.trim(), "print(len(iam.list_policy_versions(PolicyArn=role)['Versions']))");
    assert_eq!(versions.trim(), "5", "the oldest version was pruned to make room");
}

#[test]
fn permissions_output_is_a_valid_iam_document_covering_every_declared_action() {
    let w = World::new();
    let r = w.cli(&["permissions", "--for", "apply"]);
    r.code(0);
    let doc = r.json();
    // apply, audit and import together need every declared action.
    let audit = w.cli(&["permissions", "--for", "audit", "--state", "s3://ops-bucket/suoops/state.json"]);
    audit.code(0);
    assert!(audit.stdout.contains("arn:aws:s3:::ops-bucket/suoops/state.json"), "{}", audit.stdout);
    let import = w.cli(&["permissions", "--for", "import"]);
    import.code(0);
    // The jobs' own: the writer puts and aborts uploads, never reads.
    let backup = w.cli(&["permissions", "--for", "backup"]);
    backup.code(0);
    assert!(!backup.stdout.contains("s3:GetObject") && !backup.stdout.contains("s3:Delete"), "{}", backup.stdout);
    let drill = w.cli(&["permissions", "--for", "restore-drill"]);
    drill.code(0);
    assert!(drill.stdout.contains("/drills/*"), "{}", drill.stdout);
    let text = format!("{doc}{}{}{}{}", audit.stdout, import.stdout, backup.stdout, drill.stdout);
    assert!(
        import.stdout.contains("\"s3:ListAllMyBuckets\"") && !import.stdout.contains("s3:Put"),
        "import reads only, and lists buckets: {}",
        import.stdout
    );
    assert!(!doc.to_string().contains("ListAllMyBuckets"), "apply never lists every bucket");
    for op in suoops_policy::providers::operations() {
        assert!(text.contains(&format!("\"{}\"", op.action)), "{} missing", op.action);
    }
    assert!(
        audit.stdout.contains("s3:GetObject") && !doc.to_string().contains("s3:GetObject"),
        "backup evidence is read by audit only"
    );
    // The output is a document IAM accepts: run it through our own IAM checks
    // as a managed policy (YAML is a superset of JSON).
    let mut indented = String::new();
    for line in serde_json::to_string_pretty(&doc).expect("json").lines() {
        indented.push_str("        ");
        indented.push_str(line);
        indented.push('\n');
    }
    let p = w.write(
        "perm.yaml",
        &format!("version: 1\niam:\n  policies:\n    suoops-policy-apply:\n      document:\n{indented}"),
    );
    let r = w.cli(&["validate", "-f", &p.to_string_lossy()]);
    r.code(0);

    let r = w.cli(&["permissions", "--for", "plan", "-f", "policies/suoops.yaml"]);
    r.code(0);
    let text = r.stdout.clone();
    assert!(text.contains("arn:aws:s3:::suoops-backups\""), "{text}");
    assert!(text.contains("arn:aws:iam::*:role/suoops-backup-writer"), "{text}");
    assert!(
        !text.contains("s3:Put") && !text.contains("iam:Create") && !text.contains("iam:PassRole"),
        "plan is read-only: {text}"
    );

    // backup: pgBackRest (postgres.primary.pitr) also reads and expires
    // its own repository, and only there; the dumps stay write-only.
    let r = w.cli(&["permissions", "--for", "backup", "-f", "policies/suoops.yaml"]);
    r.code(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let sts = doc["Statement"].as_array().expect("statements");
    let engine = sts.iter().find(|s| s["Sid"] == "EngineRepository").expect("EngineRepository");
    assert_eq!(engine["Action"], serde_json::json!(["s3:DeleteObject", "s3:GetObject"]));
    assert_eq!(engine["Resource"], serde_json::json!(["arn:aws:s3:::suoops-backups/pgbackrest/*"]));
    let list = sts.iter().find(|s| s["Sid"] == "EngineListsRepository").expect("EngineListsRepository");
    assert_eq!(list["Condition"]["StringLike"]["s3:prefix"], serde_json::json!(["pgbackrest/*"]));
    let reads: Vec<&serde_json::Value> =
        sts.iter().filter(|s| s["Action"].to_string().contains("s3:GetObject")).collect();
    assert_eq!(reads.len(), 1, "only the repository is read: {doc}");
}

/// Right after CreateRole, IAM may answer NoSuchEntity for the new role:
/// its inline policy and attachment wait (bounded) and one apply converges.
#[test]
fn a_new_role_not_yet_visible_is_waited_for_and_apply_converges_in_one_run() {
    let w = World::with_moto();
    let (role, managed) = (unique("lagged"), unique("read-backups"));
    let p = w.write("p.yaml", &policy(&role, &managed, false)).to_string_lossy().into_owned();
    let proxy = crate::harness::FaultProxy::with(
        w.moto().port,
        crate::harness::Faults::role_lag(std::time::Duration::from_millis(1200)),
        None,
    );
    let url = proxy.url();
    let r = w.cli(&["--endpoint-url", &url, "-v", "apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    assert!(r.stdout.contains(&format!("iam.role.{role}: done")), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("waiting for AWS to report role {role}")), "{}", r.stderr);
    assert!(proxy.counts.denied.load(std::sync::atomic::Ordering::Relaxed) > 0, "the proxy hid the role at first");
    w.cli(&["--endpoint-url", &url, "plan", "-f", &p, "--detailed-exitcode"]).code(0);
}

crate::both!(
    a_role_setting_the_policy_does_not_name_survives_an_update_of_another,
    super::a_role_setting_the_policy_does_not_name_survives_an_update_of_another_on
);
fn a_role_setting_the_policy_does_not_name_survives_an_update_of_another_on(server: Server) {
    let w = World::on(server);
    let role = unique("fieldwise");
    // Made by hand with a description; the policy names only the session
    // duration (and the trust it needs).
    py(
        &w,
        &role,
        r#"iam.create_role(RoleName=role, Description="made by the platform team", MaxSessionDuration=3600,
    AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))"#,
    );
    let p = w
        .write(
            "p.yaml",
            &format!(
                "version: 1\niam:\n  roles:\n    {role}:\n      max_session_duration: 7200\n      trust:\n        Statement:\n          - {{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}\n"
            ),
        )
        .to_string_lossy()
        .into_owned();
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(!r.stdout.contains("description"), "{}", r.stdout);
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let out =
        py(&w, &role, "r = iam.get_role(RoleName=role)['Role']; print(r.get('Description'), r['MaxSessionDuration'])");
    assert_eq!(out.trim(), "made by the platform team 7200");
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
}
