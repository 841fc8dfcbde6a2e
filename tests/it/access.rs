//! Bucket-side access restriction and Object Lock (issue 18): one apply
//! sets both, the second plan is empty and the audit meets IMMUTABILITY; a
//! foreign statement is kept; the restriction removed behind the tool's
//! back fails S3-ACCESS; COMPLIANCE needs --allow-irreversible; and a
//! `deny_delete` bucket refuses DeleteObjectVersion from everyone outside
//! break glass (moto, through the launcher that evaluates aws:PrincipalArn).

use serde_json::Value;

use crate::harness::{control, squash, unique, Server, World};
use crate::moto_launcher::AS_PRINCIPALS;

fn policy(fresh: &str, old: &str, writer: &str, restore: &str, admin: &str, mode: &str) -> String {
    // Whoever runs apply here (the emulator's root) administers the bucket.
    let root = admin.split(":role/").next().map(|a| format!("{a}:root")).unwrap_or_default();
    format!(
        r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {fresh}:
      versioning: enabled
      object_lock: {{mode: {mode}, days: 14}}
      access:
        writers: [{writer}]
        readers: [{restore}]
        deny_delete: true
        break_glass: ["{admin}"]
        administrators: ["{root}"]
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}
    {old}:
      versioning: enabled
      object_lock: {{mode: governance, days: 14}}
      access:
        deny_delete: true
iam:
  roles:
    {writer}:
      trust: {{Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}]}}
      inline_policies:
        write: {{Statement: [{{Effect: Allow, Action: s3:PutObject, Resource: "arn:aws:s3:::{fresh}/postgres/*"}}]}}
    {restore}:
      trust: {{Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}]}}
      inline_policies:
        read: {{Statement: [{{Effect: Allow, Action: s3:GetObject, Resource: "arn:aws:s3:::{fresh}/*"}}]}}
"#
    )
}

/// The policy applied (governance mode) to a new bucket and an existing
/// empty, versioned one, with roles of their own and `admin` as break glass.
struct Applied {
    fresh: String,
    old: String,
    writer: String,
    restore: String,
    p: String,
}

fn applied(w: &World, admin: &str) -> Applied {
    let (fresh, old) = (unique("locked"), unique("adopted"));
    let (writer, restore) = (unique("writer"), unique("restore"));
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3.create_bucket(Bucket="{old}")
s3.put_bucket_versioning(Bucket="{old}", VersioningConfiguration={{"Status": "Enabled"}})
"#
    ));
    let text = policy(&fresh, &old, &writer, &restore, admin, "governance");
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    // Object Lock turned on for the existing bucket cannot be undone.
    w.cli(&["apply", "-f", &p, "--auto-approve", "--allow-irreversible"]).code(0);
    Applied { fresh, old, writer, restore, p }
}

fn objective<'a>(j: &'a Value, id: &str) -> &'a Value {
    j["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == id).expect("objective")
}

/// The bucket policy's statements and the Object Lock configuration, as
/// the server holds them.
fn live(w: &World, b: &str) -> Value {
    let out = w.python(&format!(
        r#"
import sys, json, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
policy = json.loads(s3.get_bucket_policy(Bucket="{b}")["Policy"])
lock = s3.get_object_lock_configuration(Bucket="{b}")["ObjectLockConfiguration"]
print(json.dumps({{"statements": policy["Statement"], "lock": lock}}))
"#
    ));
    serde_json::from_str(&out).expect("json")
}

crate::both!(
    one_apply_restricts_access_and_locks_objects_then_plans_empty,
    super::one_apply_restricts_access_and_locks_objects_then_plans_empty_on
);
fn one_apply_restricts_access_and_locks_objects_then_plans_empty_on(server: Server) {
    let w = World::on(server);
    let (fresh, old) = (unique("locked"), unique("adopted"));
    let (writer, restore) = (unique("writer"), unique("restore"));
    let admin = format!("arn:aws:iam::{}:role/platform-admin", w.account());
    // An existing, empty, versioned bucket with another team's statement.
    w.python(&format!(
        r#"
import sys, json, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3.create_bucket(Bucket="{old}")
s3.put_bucket_versioning(Bucket="{old}", VersioningConfiguration={{"Status": "Enabled"}})
s3.put_bucket_policy(Bucket="{old}", Policy=json.dumps({{"Version": "2012-10-17", "Statement": [
    {{"Sid": "AuditorsList", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{acct}:root"}}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::{old}"}}]}}))
"#,
        acct = w.account()
    ));
    let p = w.write("p.yaml", &policy(&fresh, &old, &writer, &restore, &admin, "governance"));
    let p = p.to_string_lossy().into_owned();

    // The roles do not exist yet: their ARNs are known after apply, and
    // each statement is explained in one line.
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    let plan = squash(&r.stdout);
    assert!(plan.contains(&format!("+ s3.{fresh}.access will be created")), "{}", r.stdout);
    assert!(plan.contains(&format!("(known after apply: the ARNs of role(s) {restore}, {writer})")), "{}", r.stdout);
    assert!(plan.contains("+ object_lock.mode = \"GOVERNANCE\""), "{}", r.stdout);
    assert!(
        plan.contains("SuoopsPolicyNoDelete: nobody deletes objects or versions (lifecycle expiration still runs); other statements of the bucket policy are kept"),
        "{}",
        r.stdout
    );

    // Object Lock on the existing bucket can never be turned off again:
    // irreversible, refused without the flag, nothing changed.
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = lines.iter().position(|l| l.contains("object_lock.enabled")).expect("object_lock.enabled planned");
    assert!(lines[at + 1].contains("# irreversible: nobody can undo it; needs --allow-irreversible"), "{}", r.stdout);
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(1);
    assert!(r.stderr.contains(&format!("s3.{old} (object_lock.enabled)")), "{}", r.stderr);
    assert!(r.stderr.contains("--allow-irreversible was not given; nothing was changed"), "{}", r.stderr);
    assert!(!r.stdout.contains("✓"), "nothing applied: {}", r.stdout);
    let r = w.cli(&["apply", "-f", &p, "--auto-approve", "--allow-irreversible"]);
    r.code(0);
    assert!(r.stdout.contains("✓ object lock"), "{}", r.stdout);
    assert!(r.stdout.contains("✓ bucket policy (access)"), "{}", r.stdout);
    let l = live(&w, &fresh);
    assert_eq!(l["lock"]["ObjectLockEnabled"], "Enabled", "{l}");
    assert_eq!(l["lock"]["Rule"]["DefaultRetention"]["Mode"], "GOVERNANCE", "{l}");
    assert_eq!(l["lock"]["Rule"]["DefaultRetention"]["Days"], 14, "{l}");
    let st = |l: &Value, sid: &str| -> Value {
        l["statements"].as_array().expect("statements").iter().find(|s| s["Sid"] == sid).cloned().unwrap_or_default()
    };
    let acct = w.account();
    assert_eq!(
        st(&l, "SuoopsPolicyOnlyWritersPut")["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
        serde_json::json!([admin.clone(), format!("arn:aws:iam::{acct}:role/{writer}")]),
        "{l}"
    );
    assert_eq!(
        st(&l, "SuoopsPolicyNoDelete")["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
        serde_json::json!([admin])
    );
    // The foreign statement of the adopted bucket is kept beside ours.
    let l = live(&w, &old);
    let sids: Vec<&str> = l["statements"].as_array().expect("st").iter().filter_map(|s| s["Sid"].as_str()).collect();
    assert_eq!(sids, ["AuditorsList", "SuoopsPolicyNoDelete"], "{l}");

    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    let j = r.json();
    for b in [&fresh, &old] {
        for id in ["S3-ACCESS", "S3-OBJECT-LOCK"] {
            assert_eq!(control(&j, id, &format!("s3.{b}"))["status"], "pass", "{id} {b}: {j}");
        }
    }
    assert_eq!(objective(&j, "IMMUTABILITY")["verdict"], "met", "{j}");

    // import reads both back; the imported policy plans clean.
    let out = w.dir.path().join("imported.yaml").to_string_lossy().into_owned();
    w.cli(&["import", "--s3-bucket", &fresh, "--s3-bucket", &old, "--output", &out]).code(0);
    let text = std::fs::read_to_string(&out).expect("imported");
    assert!(text.contains("object_lock: {mode: governance, days: 14}"), "{text}");
    assert!(text.contains("deny_delete: true"), "{text}");
    let r = w.cli(&["plan", "-f", &out, "--detailed-exitcode"]);
    r.code(0);
}

#[test]
fn restriction_removed_behind_the_tools_back_fails_and_compliance_needs_allow_irreversible() {
    let w = World::with_moto();
    let admin = format!("arn:aws:iam::{}:role/platform-admin", w.account());
    let Applied { fresh, old, writer, restore, p } = applied(&w, &admin);

    // Someone deletes the bucket policy: S3-ACCESS fails with what is open,
    // IMMUTABILITY and LEAST-PRIVILEGE are no longer met.
    w.python(&format!(
        r#"
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t").delete_bucket_policy(Bucket="{fresh}")
"#
    ));
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let j = r.json();
    let c = control(&j, "S3-ACCESS", &format!("s3.{fresh}"));
    assert_eq!(c["status"], "fail", "{c}");
    let detail = c["detail"].as_str().unwrap_or("");
    assert!(detail.contains("principals other than the writers are not denied s3:PutObject"), "{detail}");
    assert!(detail.contains("not denied s3:DeleteObject, s3:DeleteObjectVersion"), "{detail}");
    assert_eq!(objective(&j, "IMMUTABILITY")["verdict"], "not_met", "{j}");
    assert_eq!(objective(&j, "LEAST-PRIVILEGE")["verdict"], "not_met", "{j}");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let j = w.cli(&["audit", "-f", &p, "--format", "json"]).json();
    assert_eq!(control(&j, "S3-ACCESS", &format!("s3.{fresh}"))["status"], "pass", "{j}");

    // GOVERNANCE → COMPLIANCE: the plan says irreversible, apply refuses
    // without --allow-irreversible and changes nothing.
    let text = policy(&fresh, &old, &writer, &restore, &admin, "compliance");
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    r.code(2);
    assert!(r.stdout.contains("# irreversible: nobody can undo it; needs --allow-irreversible"), "{}", r.stdout);
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(1);
    assert!(r.stderr.contains("--allow-irreversible was not given; nothing was changed"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("s3.{fresh} (object_lock.mode)")), "{}", r.stderr);
    assert_eq!(live(&w, &fresh)["lock"]["Rule"]["DefaultRetention"]["Mode"], "GOVERNANCE");
    w.cli(&["apply", "-f", &p, "--auto-approve", "--allow-irreversible"]).code(0);
    assert_eq!(live(&w, &fresh)["lock"]["Rule"]["DefaultRetention"]["Mode"], "COMPLIANCE");
    let r = w.cli(&["plan", "-f", &p, "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn deny_delete_refuses_delete_object_version_outside_break_glass() {
    let w = World::with_moto();
    let admin_name = unique("admin");
    let admin = format!("arn:aws:iam::{}:role/{admin_name}", w.account());
    let Applied { fresh, writer, restore, .. } = applied(&w, &admin);
    let out = w.python(&format!(
        r#"{AS_PRINCIPALS}
role("{admin_name}")
wr, rs, adm, root = as_role("{writer}"), as_role("{restore}"), as_role("{admin_name}"), as_root()
body = b"-- dump"
attempt("writer-put", lambda: wr.put_object(Bucket="{fresh}", Key="postgres/1.dump", Body=body, ChecksumAlgorithm="SHA256"))
attempt("root-put", lambda: root.put_object(Bucket="{fresh}", Key="postgres/2.dump", Body=body, ChecksumAlgorithm="SHA256"))
attempt("restore-get", lambda: rs.get_object(Bucket="{fresh}", Key="postgres/1.dump"))
attempt("writer-get", lambda: wr.get_object(Bucket="{fresh}", Key="postgres/1.dump"))
v = root.list_object_versions(Bucket="{fresh}")["Versions"][0]["VersionId"]
attempt("writer-delete-version", lambda: wr.delete_object(Bucket="{fresh}", Key="postgres/1.dump", VersionId=v))
attempt("restore-delete-version", lambda: rs.delete_object(Bucket="{fresh}", Key="postgres/1.dump", VersionId=v))
attempt("root-delete-version", lambda: root.delete_object(Bucket="{fresh}", Key="postgres/1.dump", VersionId=v))
attempt("root-delete", lambda: root.delete_object(Bucket="{fresh}", Key="postgres/1.dump"))
attempt("admin-get", lambda: adm.get_object(Bucket="{fresh}", Key="postgres/1.dump"))
"#
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "writer-put ok",
            "root-put AccessDenied",
            "restore-get ok",
            "writer-get AccessDenied",
            "writer-delete-version AccessDenied",
            "restore-delete-version AccessDenied",
            "root-delete-version AccessDenied",
            "root-delete AccessDenied",
            "admin-get ok",
        ],
        "{out}"
    );
}

/// The backups themselves are judged, not the bucket's default retention
/// (which locks only what is put after it: AWS S3 user guide, "Object Lock
/// considerations"): a backup whose own retain-until date is short of its
/// retention fails BACKUP-LOCKED (so IMMUTABILITY) with its key, whatever
/// S3-OBJECT-LOCK finds in the configuration; the next backup, locked by
/// the default, passes. (An object with no retention at all cannot be
/// made on moto, which refuses Object Lock on a bucket holding objects:
/// the verdict's unit test covers that message.)
#[test]
fn a_backup_locked_for_less_than_its_retention_fails_backup_locked() {
    let w = World::with_moto();
    let b = unique("prelock");
    let text = format!(
        "version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    {b}:\n      versioning: enabled\n      object_lock: {{mode: governance, days: 14}}\n      backups:\n        - {{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}\n"
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let put = |key: &str, days: Option<u32>| {
        w.python(&format!(
            r#"
import sys, datetime, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
extra = {{}}
if {days} is not None:
    extra = dict(ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days={days}))
s3.put_object(Bucket="{b}", Key="postgres/{key}.dump", Body=b"dump", **extra)
"#,
            days = days.map_or("None".to_string(), |d| d.to_string())
        ))
    };
    put("first", Some(1));
    let j = w.cli(&["audit", "-f", &p, "--format", "json"]).json();
    assert_eq!(control(&j, "S3-OBJECT-LOCK", &format!("s3.{b}"))["status"], "pass", "the configuration is right");
    let c = control(&j, "BACKUP-LOCKED", &format!("s3.{b}.backups.dump"));
    assert_eq!(c["status"], "fail", "{c}");
    let detail = c["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with(&format!("s3://{b}/postgres/first.dump is locked (GOVERNANCE) ")), "{c}");
    assert!(detail.ends_with("less than its 336h00m retention"), "{c}");
    let imm = objective(&j, "IMMUTABILITY");
    assert_eq!(imm["verdict"], "not_met", "{imm}");
    assert!(imm["reasons"].to_string().contains("BACKUP-LOCKED is fail"), "{imm}");
    // The next backup is put under the default retention.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    put("second", None);
    let j = w.cli(&["audit", "-f", &p, "--format", "json"]).json();
    let c = control(&j, "BACKUP-LOCKED", &format!("s3.{b}.backups.dump"));
    assert_eq!(c["status"], "pass", "{c}");
    assert!(c["observed"].as_str().unwrap_or("").contains("second.dump locked GOVERNANCE for 336h"), "{c}");
}

/// Object Lock turned on for a versioned bucket that already holds a
/// backup (S3 allows it since 2023; the launcher plays it, moto refuses):
/// the default retention locks only what is put after, so the backup
/// written before stays deletable — BACKUP-LOCKED fails on it and
/// IMMUTABILITY is not met — until a backup put under the lock is the
/// newest.
#[test]
fn a_backup_written_before_the_lock_is_not_immutable() {
    let w = World::with_moto();
    let b = unique("prelock");
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3.create_bucket(Bucket="{b}")
s3.put_bucket_versioning(Bucket="{b}", VersioningConfiguration={{"Status": "Enabled"}})
s3.put_object(Bucket="{b}", Key="postgres/20261205-020000.dump", Body=b"before the lock")
"#
    ));
    let text = format!(
        r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      object_lock: {{mode: governance, days: 14}}
      access: {{deny_delete: true, administrators: ["arn:aws:iam::123456789012:root"]}}
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}
"#
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let r = w.cli(&["apply", "-f", &p, "--auto-approve", "--allow-irreversible"]);
    r.code(0);
    assert!(r.stdout.contains("✓ object lock"), "{}", r.stdout);
    let audit = || w.cli(&["audit", "-f", &p, "--format", "json"]).json();
    let j = audit();
    let locked = control(&j, "BACKUP-LOCKED", &format!("s3.{b}.backups.dump"));
    assert_eq!(locked["status"], "fail", "{locked}");
    assert_eq!(
        locked["detail"],
        format!("s3://{b}/postgres/20261205-020000.dump is not locked (no Object Lock retention on the object itself)")
    );
    assert_eq!(control(&j, "S3-OBJECT-LOCK", &format!("s3.{b}"))["status"], "pass", "{j}");
    let imm = objective(&j, "IMMUTABILITY");
    assert_eq!(imm["verdict"], "not_met", "{imm}");
    assert!(
        imm["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.contains("BACKUP-LOCKED is fail"))),
        "{imm}"
    );
    // The next backup is put under the lock: locked by the default
    // retention, and the newest.
    w.python(&format!(
        r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
s3.put_object(Bucket="{b}", Key="postgres/20261206-020000.dump", Body=b"after the lock", ChecksumAlgorithm="SHA256")
"#
    ));
    let j = audit();
    let locked = control(&j, "BACKUP-LOCKED", &format!("s3.{b}.backups.dump"));
    assert_eq!(locked["status"], "pass", "{locked}");
    assert_eq!(objective(&j, "IMMUTABILITY")["verdict"], "met", "{j}");
}

/// Governance mode needs the configuration restricted: with
/// `access.administrators` naming who runs apply, only they (and break
/// glass) may change the bucket's policy, lifecycle and lock, and
/// IMMUTABILITY is met; naming someone else, the plan says the statement
/// would shut out its caller and apply refuses to write it.
#[test]
fn administrators_alone_reconfigure_and_apply_never_shuts_itself_out() {
    let w = World::with_moto();
    let b = unique("admins");
    let acct = w.account();
    let text = |admins: &str| {
        format!(
            r#"version: 1
aws: {{region: us-east-1}}
s3:
  buckets:
    {b}:
      versioning: enabled
      object_lock: {{mode: governance, days: 14}}
      access: {{deny_delete: true, break_glass: ["arn:aws:iam::{acct}:role/platform-admin"]{admins}}}
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}
"#
        )
    };
    // Without administrators: governance retention that any principal who
    // can rewrite the bucket policy can lift.
    let p = w.write("p.yaml", &text("")).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve", "--allow-irreversible"]).code(0);
    let j = w.cli(&["audit", "-f", &p, "--format", "json"]).json();
    let imm = objective(&j, "IMMUTABILITY");
    assert_eq!(imm["verdict"], "not_met", "{imm}");
    assert!(
        imm["reasons"][0].as_str().is_some_and(|r| r.contains("locks in GOVERNANCE mode and does not restrict")),
        "{imm}"
    );

    // Someone else as the administrators: the tool's own caller (moto's
    // root here) would be shut out — said by plan, refused by apply.
    let other = format!(", administrators: [\"arn:aws:iam::{acct}:role/suoops-policy-apply\"]");
    std::fs::write(&p, text(&other)).expect("policy");
    let r = w.cli(&["plan", "-f", &p]);
    assert!(
        squash(&r.stdout).contains(&format!(
            "WARNING: arn:aws:iam::{acct}:root (who runs this) is neither among access.administrators nor break glass"
        )),
        "{}",
        r.stdout
    );
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(squash(&r.stdout).contains("nothing written"), "{}", r.stdout);
    let l = live(&w, &b);
    assert!(
        l["statements"].as_array().expect("st").iter().all(|s| s["Sid"] != "SuoopsPolicyOnlyAdministratorsReconfigure"),
        "{l}"
    );

    // The caller among them: written, enforced (S3-ACCESS), IMMUTABILITY met.
    let me =
        format!(", administrators: [\"arn:aws:iam::{acct}:role/suoops-policy-apply\", \"arn:aws:iam::{acct}:root\"]");
    std::fs::write(&p, text(&me)).expect("policy");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    let l = live(&w, &b);
    let cfg = l["statements"]
        .as_array()
        .expect("st")
        .iter()
        .find(|s| s["Sid"] == "SuoopsPolicyOnlyAdministratorsReconfigure")
        .cloned()
        .expect("config statement");
    assert_eq!(cfg["Resource"], format!("arn:aws:s3:::{b}"));
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    let j = w.cli(&["audit", "-f", &p, "--format", "json"]).json();
    assert_eq!(control(&j, "S3-ACCESS", &format!("s3.{b}"))["status"], "pass", "{j}");
    assert_eq!(objective(&j, "IMMUTABILITY")["verdict"], "met", "{j}");
    // (moto applies bucket policies to object calls only, so the denial
    // itself is judged by meaning, through S3-ACCESS, not by a request.)
}
