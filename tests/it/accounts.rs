//! An estate over two AWS accounts: the caller's own (`prod`) and a backup
//! account whose role the tool assumes. moto and LocalStack act in the
//! account of an assumed role's credentials, so what lands where is read
//! back with each account's credentials. A role whose trust refuses the
//! caller is played by the fault proxy (the emulators assume any role).

use crate::harness::{squash, unique, FaultProxy, Faults, Replica, Server, World};

const BACKUP: &str = "222222222222";

fn policy(caller: &str, src: &str, dr: &str, restore: &str) -> String {
    format!(
        r#"version: 1
aws: {{region: us-east-1}}
accounts:
  prod: {{id: "{caller}"}}
  backup: {{id: "{BACKUP}", role: "arn:aws:iam::{BACKUP}:role/suoops-policy", external_id: "${{BACKUP_EXTERNAL_ID}}"}}
s3:
  buckets:
    {src}:
      versioning: enabled
      access:
        readers: [backup:{restore}]
    {dr}:
      account: backup
      versioning: enabled
iam:
  roles:
    {restore}:
      account: backup
      trust:
        Statement:
          - {{Effect: Allow, Principal: {{AWS: "prod:suoops-ci"}}, Action: sts:AssumeRole}}
"#
    )
}

/// Buckets and roles as `account` sees them (the caller's credentials, or
/// the backup account's role assumed).
fn seen_from(w: &World, account: Option<&str>) -> String {
    let creds = match account {
        None => "kw = base".to_string(),
        Some(id) => format!(
            r#"c = boto3.client("sts", **base).assume_role(RoleArn="arn:aws:iam::{id}:role/suoops-policy", RoleSessionName="test")["Credentials"]
kw = dict(base, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])"#
        ),
    };
    w.python(&format!(
        r#"
import sys, boto3
base = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
{creds}
buckets = sorted(b["Name"] for b in boto3.client("s3", **kw).list_buckets()["Buckets"])
roles = sorted(r["Arn"] for r in boto3.client("iam", **kw).list_roles()["Roles"])
print(" ".join(buckets + roles))
"#
    ))
}

crate::both!(two_accounts_plan_and_apply_in_one_run_and_audit_account_by_account, super::two_accounts_on);
fn two_accounts_on(server: Server) {
    let w = World::on(server);
    let (src, dr, restore) = (unique("acct-src"), unique("acct-dr"), unique("restore"));
    let p = w.write("p.yaml", &policy(w.account(), &src, &dr, &restore)).to_string_lossy().into_owned();
    let env = [("BACKUP_EXTERNAL_ID", "ext-secret-1")];
    let r = w.cli_with(&["plan", "-f", &p, "--detailed-exitcode"], &env);
    r.code(2);
    for made in
        [format!("+ s3.{src} will be created in account prod"), format!("+ s3.{dr} will be created in account backup")]
    {
        assert!(r.stdout.contains(&made), "{}", r.stdout);
    }
    // ACCOUNT:ROLE principals are written as the role's ARN.
    assert!(r.stdout.contains(&format!("arn:aws:iam::{BACKUP}:role/{restore}")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("arn:aws:iam::{}:role/suoops-ci", w.account())), "{}", r.stdout);
    let r = w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env);
    r.code(0);
    assert!(r.stdout.contains(&format!("s3.{dr}: done (account backup)")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("s3.{src}: done (account prod)")), "{}", r.stdout);
    w.cli_with(&["plan", "-f", &p, "--detailed-exitcode"], &env).code(0);
    // Each resource is in its own account, and only there.
    let caller = seen_from(&w, None);
    assert!(caller.contains(&src) && !caller.contains(&dr) && !caller.contains(&restore), "{caller}");
    let backup = seen_from(&w, Some(BACKUP));
    assert!(backup.contains(&dr) && !backup.contains(&src), "{backup}");
    // The reader in the backup account is let into the prod bucket: a
    // request across accounts needs the bucket policy's Allow too.
    let allow = w.python(&format!(
        r#"
import sys, json, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
doc = json.loads(s3.get_bucket_policy(Bucket="{src}")["Policy"])
print([s["Principal"]["AWS"] for s in doc["Statement"] if s.get("Sid") == "SuoopsPolicyReadersOfOtherAccounts"])
"#
    ));
    assert!(allow.contains(&format!("arn:aws:iam::{BACKUP}:role/{restore}")), "{allow}");
    assert!(backup.contains(&format!("arn:aws:iam::{BACKUP}:role/{restore}")), "{backup}");
    let r = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env);
    r.code(0);
    let doc = r.json();
    let statuses: Vec<(String, String)> = doc["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| (a["name"].as_str().unwrap_or("").to_string(), a["status"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(statuses, [("prod".into(), "compliant".into()), ("backup".into(), "compliant".into())]);
    let account_of = |addr: &str| -> Vec<String> {
        let controls = doc["controls"].as_array().expect("controls");
        let mut out: Vec<String> = controls
            .iter()
            .filter(|c| c["address"] == addr)
            .map(|c| c["account"].as_str().unwrap_or("-").to_string())
            .collect();
        out.dedup();
        out
    };
    assert_eq!(account_of(&format!("s3.{src}")), ["prod"]);
    assert_eq!(account_of(&format!("s3.{dr}")), ["backup"]);
    assert_eq!(account_of(&format!("iam.role.{restore}")), ["backup"]);
    // One account alone.
    let r = w.cli_with(&["audit", "-f", &p, "--target", "account:backup", "--format", "json"], &env);
    r.code(0);
    let addresses: Vec<String> = r.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|c| c["address"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !addresses.is_empty() && addresses.iter().all(|a| a.contains(&dr) || a.contains(&restore)),
        "{addresses:?}"
    );
    let r = w.cli_with(&["audit", "-f", &p, "--target", "account:bakup"], &env);
    r.code(1);
    assert!(r.stderr.contains("`bakup` is not an account of") && r.stderr.contains("prod, backup"), "{}", r.stderr);
}

#[test]
fn an_account_whose_role_cannot_be_assumed_is_unreachable_and_the_other_is_audited() {
    let w = World::with_moto();
    let (src, dr, restore) = (unique("acct-src"), unique("acct-dr"), unique("restore"));
    let p = w.write("p.yaml", &policy(w.account(), &src, &dr, &restore)).to_string_lossy().into_owned();
    let env = [("BACKUP_EXTERNAL_ID", "ext-secret-1")];
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env).code(0);
    // The backup account's trust policy now refuses the caller.
    let proxy = FaultProxy::with(w.moto().port, Faults::DenyBody(vec!["AssumeRole".into(), BACKUP.into()]), None);
    let url = proxy.url();
    let env = [("BACKUP_EXTERNAL_ID", "ext-secret-1"), ("AWS_ENDPOINT_URL", url.as_str())];
    let r = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env);
    // Incomplete: exit 1, with the report written all the same.
    r.code(1);
    let doc = r.json();
    let backup = &doc["accounts"][1];
    assert_eq!((backup["name"].as_str(), backup["status"].as_str()), (Some("backup"), Some("unreachable")), "{doc}");
    let why = backup["reason"].as_str().unwrap_or_default();
    assert!(why.contains(&format!("cannot assume arn:aws:iam::{BACKUP}:role/suoops-policy")), "{why}");
    assert!(why.contains("AccessDenied"), "{why}");
    assert_eq!(doc["accounts"][0]["status"], "compliant", "{doc}");
    assert!(doc["unreached"][0]
        .as_str()
        .is_some_and(|u| u.starts_with("account backup (222222222222) is unreachable")));
    for c in doc["controls"].as_array().expect("controls") {
        let want = if c["account"] == "backup" { "unknown" } else { "pass" };
        assert_eq!(c["status"], want, "{c}");
    }
    assert!(!doc["compliant"].as_bool().unwrap_or(true));
    // The secret external id appears nowhere.
    assert!(!r.stdout.contains("ext-secret-1") && !r.stderr.contains("ext-secret-1"));
    // Every format names the account and why.
    let text = w.cli_with(&["audit", "-f", &p], &env);
    text.code(1);
    assert!(text.stdout.contains("account backup (222222222222): UNREACHABLE"), "{}", text.stdout);
    assert!(text.stdout.contains("account prod ("), "{}", text.stdout);
    for format in ["markdown", "html"] {
        let r = w.cli_with(&["audit", "-f", &p, "--format", format], &env);
        assert!(r.stdout.contains("account backup (222222222222) is unreachable"), "{format}: {}", r.stdout);
    }
    let m = w.cli_with(&["audit", "-f", &p, "--format", "openmetrics"], &env);
    assert!(m.stdout.contains("\nsuoops_audit_up 0\n"), "{}", m.stdout);
    assert!(m.stdout.contains("suoops_account_up{account=\"backup\",id=\"222222222222\"} 0"), "{}", m.stdout);
    assert!(m.stdout.contains("suoops_account_up{account=\"prod\","), "{}", m.stdout);
    let unknown =
        format!("suoops_control_status{{control=\"S3-VERSIONING\",address=\"s3.{dr}\",account=\"backup\",severity=");
    assert!(m.stdout.contains(&unknown), "{}", m.stdout);
    // JUnit: a suite per account; SARIF: each result's account.
    let j = w.cli_with(&["audit", "-f", &p, "--format", "junit"], &env);
    assert!(j.stdout.contains("<testsuite name=\"account backup (222222222222)\""), "{}", j.stdout);
    assert!(j.stdout.contains("<testsuite name=\"account prod ("), "{}", j.stdout);
    let sarif = w.cli_with(&["audit", "-f", &p, "--format", "sarif"], &env).json();
    let accounts: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["properties"]["account"].as_str())
        .collect();
    // (Only what does not pass is a SARIF result: the backup account's.)
    assert!(!accounts.is_empty() && accounts.iter().all(|a| *a == "backup"), "{accounts:?}");
    // Plan says the same and changes nothing there.
    let r = w.cli_with(&["plan", "-f", &p], &env);
    r.code(1);
    assert!(
        r.stdout.contains(&format!("s3.{dr}")) && r.stdout.contains("account backup (222222222222) is unreachable"),
        "{}",
        r.stdout
    );
}

#[test]
fn credentials_in_another_account_than_declared_make_it_unreachable() {
    let w = World::with_moto();
    let (src, dr, restore) = (unique("acct-src"), unique("acct-dr"), unique("restore"));
    let p = w.write("p.yaml", &policy("999999999999", &src, &dr, &restore)).to_string_lossy().into_owned();
    let r = w.cli_with(&["audit", "-f", &p, "--format", "json"], &[("BACKUP_EXTERNAL_ID", "e1")]);
    r.code(1);
    let prod = &r.json()["accounts"][0];
    assert_eq!(prod["status"], "unreachable");
    assert_eq!(
        prod["reason"],
        format!("the caller's credentials are in account {}, not in `prod` (999999999999)", w.account())
    );
}

#[test]
fn accounts_are_checked_with_file_line_and_column() {
    let w = World::new();
    let p = w.write(
        "p.yaml",
        r#"version: 1
accounts:
  prod: {id: "12345"}
  backup: {id: "222222222222", role: "arn:aws:iam::333333333333:role/x"}
  ops: {id: "555555555555"}
  other: {id: "444444444444"}
s3:
  buckets:
    acct-bucket-one:
      account: bakup
      access:
        readers: ["stage:restore"]
"#,
    );
    let r = w.cli(&["validate", "-f", &p.to_string_lossy()]);
    r.code(1);
    let e = &r.stderr;
    assert!(e.contains("`12345` is not an AWS account id"), "{e}");
    assert!(
        e.contains(
            "role `arn:aws:iam::333333333333:role/x` is in account 333333333333, not in this account (222222222222)"
        ),
        "{e}"
    );
    assert!(e.contains("`other` has no `role`, like `ops` (line 5)"), "{e}");
    assert!(e.contains("`bakup` is not a declared account") && e.contains("did you mean `backup`?"), "{e}");
    assert!(e.contains("`stage` in `stage:restore` is not a declared account"), "{e}");
    for at in ["p.yaml:3:14:", "p.yaml:4:38:", "p.yaml:6:3:", "p.yaml:10:16:", "p.yaml:12:19:"] {
        assert!(e.contains(at), "{at} in {e}");
    }
}

#[test]
fn permissions_are_given_account_by_account() {
    let w = World::new();
    let p = w.write("p.yaml", &policy("123456789012", "perm-src", "perm-dr", "perm-restore"));
    let p = p.to_string_lossy();
    let env = [("BACKUP_EXTERNAL_ID", "ext-secret-1")];
    let r = w.cli_with(&["permissions", "--for", "audit", "-f", &p, "--account", "backup"], &env);
    r.code(0);
    let doc = r.json();
    assert_eq!(doc["role"], format!("arn:aws:iam::{BACKUP}:role/suoops-policy"));
    let trust = &doc["trust"]["Statement"][0];
    assert_eq!(trust["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
    assert_eq!(trust["Condition"]["StringEquals"]["sts:ExternalId"], "(sensitive value)");
    assert!(!r.stdout.contains("ext-secret-1"));
    let text = doc["permissions"].to_string();
    assert!(text.contains("arn:aws:s3:::perm-dr") && !text.contains("arn:aws:s3:::perm-src"), "{text}");
    assert!(text.contains("arn:aws:iam::*:role/perm-restore"), "{text}");
    // The caller's own: its resources, and assuming the backup account's role.
    let r = w.cli_with(&["permissions", "--for", "audit", "-f", &p], &env);
    r.code(0);
    let doc = r.json();
    let text = doc.to_string();
    assert!(text.contains("arn:aws:s3:::perm-src") && !text.contains("arn:aws:s3:::perm-dr"), "{text}");
    assert!(!text.contains("role/perm-restore"), "the backup account's role is not the caller's: {text}");
    let assume =
        doc["Statement"].as_array().expect("statements").iter().find(|s| s["Sid"] == "AssumeAccountRoles").cloned();
    assert_eq!(assume.expect("AssumeAccountRoles")["Resource"][0], format!("arn:aws:iam::{BACKUP}:role/suoops-policy"));
    let r = w.cli_with(&["permissions", "--for", "audit", "-f", &p, "--account", "stage"], &env);
    r.code(1);
    assert!(r.stderr.contains("--account stage: not an account of"), "{}", r.stderr);
}

#[test]
fn import_adopts_another_account_s_bucket_into_the_same_file() {
    let w = World::with_moto();
    let (src, dr, restore, extra) = (unique("acct-src"), unique("acct-dr"), unique("restore"), unique("acct-extra"));
    let p = w.write("p.yaml", &policy(w.account(), &src, &dr, &restore)).to_string_lossy().into_owned();
    let env = [("BACKUP_EXTERNAL_ID", "ext-secret-1")];
    // A bucket another team made in the backup account.
    w.python(&format!(
        r#"
import sys, boto3
base = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
c = boto3.client("sts", **base).assume_role(RoleArn="arn:aws:iam::{BACKUP}:role/suoops-policy", RoleSessionName="team")["Credentials"]
s3 = boto3.client("s3", **dict(base, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"]))
s3.create_bucket(Bucket="{extra}")
s3.put_bucket_versioning(Bucket="{extra}", VersioningConfiguration={{"Status": "Enabled"}})
"#
    ));
    let merged = w.dir.path().join("merged.yaml").to_string_lossy().into_owned();
    let r = w.cli_with(&["import", "--merge", &p, "--account", "backup", "--s3-bucket", &extra, "-o", &merged], &env);
    r.code(0);
    let text = std::fs::read_to_string(&merged).expect("merged");
    assert!(text.contains(&format!("    {extra}:\n      account: backup\n")), "{text}");
    // Planned where it lives: nothing to change.
    let r = w.cli_with(&["plan", "-f", &merged, "--target", &format!("s3.{extra}"), "--detailed-exitcode"], &env);
    r.code(0);
    let r = w.cli_with(&["import", "--merge", &p, "--account", "stage", "--s3-bucket", &extra], &env);
    r.code(1);
    assert!(r.stderr.contains("--account stage: not an account of"), "{}", r.stderr);
}

#[test]
fn shards_merged_give_the_verdicts_and_objectives_of_one_audit() {
    let w = World::with_moto();
    let (src, dr, restore) = (unique("acct-src"), unique("acct-dr"), unique("restore"));
    let extra: Vec<String> = (0..4).map(|i| unique(&format!("shard{i}"))).collect();
    let mut text = policy(w.account(), &src, &dr, &restore);
    let buckets: String = extra
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let account = if i % 2 == 0 { "      account: backup\n" } else { "" };
            format!("    {b}:\n{account}      versioning: enabled\n      encryption: {{algorithm: AES256}}\n")
        })
        .collect();
    text = text.replace("iam:\n", &format!("{buckets}iam:\n"));
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let env = [("BACKUP_EXTERNAL_ID", "ext-secret-1")];
    w.cli_with(&["apply", "-f", &p, "--auto-approve"], &env).code(0);
    // Drift in one bucket of each account, so some controls fail.
    for (i, b) in extra.iter().enumerate().take(2) {
        let creds = if i == 0 {
            format!(
                r#"c = boto3.client("sts", **base).assume_role(RoleArn="arn:aws:iam::{BACKUP}:role/suoops-policy", RoleSessionName="drift")["Credentials"]
kw = dict(base, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])"#
            )
        } else {
            "kw = base".to_string()
        };
        w.python(&format!(
            r#"
import sys, boto3
base = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
{creds}
boto3.client("s3", **kw).put_bucket_versioning(Bucket="{b}", VersioningConfiguration={{"Status": "Suspended"}})
"#
        ));
    }
    let whole = w.cli_with(&["audit", "-f", &p, "--format", "json"], &env);
    whole.code(2);
    let mut files = Vec::new();
    for i in 1..=3 {
        let out = w.dir.path().join(format!("shard{i}.json")).to_string_lossy().into_owned();
        let r = w.cli_with(&["audit", "-f", &p, "--shard", &format!("{i}/3"), "--format", "json", "-o", &out], &env);
        assert!(r.code == 0 || r.code == 2, "{} {}", r.stdout, r.stderr);
        files.push(out);
    }
    let merge = |files: &[String], format: &str| {
        let mut args = vec!["audit", "merge"];
        args.extend(files.iter().map(String::as_str));
        args.extend(["-f", p.as_str(), "--format", format]);
        w.cli_with(&args, &env)
    };
    let merged = merge(&files, "json");
    merged.code(2);
    let rows = |doc: &serde_json::Value| -> Vec<(String, String, String, String)> {
        let mut v: Vec<_> = doc["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or("-").to_string();
                (s("address"), s("id"), s("status"), s("account"))
            })
            .collect();
        v.sort();
        v
    };
    let verdicts = |doc: &serde_json::Value| -> Vec<(String, String)> {
        let list = doc["objectives"].as_array().expect("objectives");
        list.iter().map(|o| (o["id"].to_string(), o["verdict"].to_string())).collect()
    };
    let (a, b) = (whole.json(), merged.json());
    assert!(rows(&a).iter().any(|r| r.2 == "fail"), "the estate has drift: {:?}", rows(&a));
    assert_eq!(rows(&a), rows(&b));
    assert_eq!(verdicts(&a), verdicts(&b));
    assert_eq!(a["accounts"], b["accounts"]);
    // Every shard held a share, and each resource is in one shard only.
    let mut per: Vec<usize> = Vec::new();
    for f in &files {
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f).expect("shard")).expect("json");
        per.push(doc["controls"].as_array().map_or(0, Vec::len));
    }
    assert!(per.iter().all(|n| *n > 0) && per.iter().sum::<usize>() == rows(&a).len(), "{per:?}");
    // A shard missing is an error, not a smaller report.
    let r = merge(&files[..2], "text");
    r.code(1);
    assert!(r.stderr.contains("shard(s) 3/3 missing"), "{}", r.stderr);
    let r = merge(&files, "junit");
    assert!(r.stdout.contains("<testsuite name=\"account backup (222222222222)\""), "{}", r.stdout);
}

#[test]
fn replication_into_the_backup_account_names_it_and_hands_it_the_replicas() {
    let w = World::with_moto();
    let (src, dr, repl) = (unique("acct-src"), unique("acct-dr"), unique("repl"));
    let text = format!(
        r#"{head}s3:
  buckets:
    {src}:
      versioning: enabled
      replication:
        role: {repl}
        rules:
          - {{id: dr, destination: {dr}}}
    {dr}:
      account: backup
      versioning: enabled
iam:
  roles:
    {repl}:
      s3_replication: true
"#,
        head = head(w.account())
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &p]);
    r.code(0);
    let out = squash(&r.stdout);
    assert!(out.contains(&format!("+ destination_account = \"{BACKUP}\"")), "{out}");
    assert!(out.contains("+ owner_override = true"), "{out}");
    assert!(out.contains("s3:ObjectOwnerOverrideToBucketOwner"), "{out}");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    let live = w.python(&format!(
        r#"
import sys, json, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
d = s3.get_bucket_replication(Bucket="{src}")["ReplicationConfiguration"]["Rules"][0]["Destination"]
print(d.get("Account"), d.get("AccessControlTranslation", {{}}).get("Owner"), d["Bucket"])
"#
    ));
    assert_eq!(live.trim(), format!("{BACKUP} Destination arn:aws:s3:::{dr}"));
    // The destination's own policy, in the backup account, lets the
    // source's replication role in.
    let granted = w.python(&format!(
        r#"
import sys, json, boto3
base = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
c = boto3.client("sts", **base).assume_role(RoleArn="arn:aws:iam::{BACKUP}:role/suoops-policy", RoleSessionName="check")["Credentials"]
s3 = boto3.client("s3", **dict(base, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"]))
doc = json.loads(s3.get_bucket_policy(Bucket="{dr}")["Policy"])
st = [s for s in doc["Statement"] if s.get("Sid") == "SuoopsPolicyReplicasFromSources"][0]
print(st["Principal"]["AWS"], sorted(st["Action"]))
"#
    ));
    let role = format!("arn:aws:iam::{}:role/{repl}", w.account());
    assert!(granted.contains(&role) && granted.contains("s3:ObjectOwnerOverrideToBucketOwner"), "{granted}");
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    let grant = r.json()["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "S3-REPLICA-GRANT")
        .cloned()
        .expect("S3-REPLICA-GRANT");
    assert_eq!(
        (grant["address"].as_str(), grant["status"].as_str()),
        (Some(format!("s3.{dr}").as_str()), Some("pass")),
        "{grant}"
    );
    assert_eq!(grant["account"], "backup");
    // Taken away behind the tool's back: the audit says replicas are refused.
    w.python(&format!(
        r#"
import sys, boto3
base = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
c = boto3.client("sts", **base).assume_role(RoleArn="arn:aws:iam::{BACKUP}:role/suoops-policy", RoleSessionName="drift")["Credentials"]
boto3.client("s3", **dict(base, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])).delete_bucket_policy(Bucket="{dr}")
"#
    ));
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let doc = r.json();
    let grant = doc["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == "S3-REPLICA-GRANT")
        .cloned()
        .expect("grant");
    assert_eq!(grant["status"], "fail", "{grant}");
    assert!(
        grant["detail"].as_str().is_some_and(|d| d.contains("replicas from another account are refused")),
        "{grant}"
    );
    let dr_copy = doc["objectives"]
        .as_array()
        .expect("objectives")
        .iter()
        .find(|o| o["id"] == "DR-COPY")
        .cloned()
        .expect("DR-COPY");
    assert_eq!(dr_copy["verdict"], "not_met", "{dr_copy}");
}

/// The start of a policy over the caller's account (`prod`) and the
/// backup account.
fn head(caller: &str) -> String {
    format!(
        r#"version: 1
aws: {{region: us-east-1}}
accounts:
  prod: {{id: "{caller}"}}
  backup: {{id: "{BACKUP}", role: "arn:aws:iam::{BACKUP}:role/suoops-policy"}}
"#
    )
}

/// Python that sets `backup` to boto3 client keyword arguments acting in
/// the backup account (its role assumed) and `prod` to the caller's.
const AS_BACKUP: &str = r#"
import sys, json, boto3
prod = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
c = boto3.client("sts", **prod).assume_role(RoleArn="arn:aws:iam::222222222222:role/suoops-policy", RoleSessionName="check")["Credentials"]
backup = dict(prod, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
"#;

/// The live documents a replica into `dr` is judged by, as AWS holds them:
/// the replication role's inline policies (prod), the destination's bucket
/// policy and its key's policy and ARN (backup).
fn replica_as_live(w: &World, dr: &str, key_alias: &str, role: &str) -> Replica {
    let out = w.python(&format!(
        r#"{AS_BACKUP}
iam = boto3.client("iam", **prod)
docs = [iam.get_role_policy(RoleName="{role}", PolicyName=n)["PolicyDocument"] for n in iam.list_role_policies(RoleName="{role}")["PolicyNames"]]
docs = [d if isinstance(d, dict) else json.loads(d) for d in docs]
try:
    bp = json.loads(boto3.client("s3", **backup).get_bucket_policy(Bucket="{dr}")["Policy"])
except Exception:
    bp = {{}}
kms = boto3.client("kms", **backup)
arn = kms.describe_key(KeyId="{key_alias}")["KeyMetadata"]["Arn"]
kp = json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])
print(json.dumps({{"docs": docs, "bucket": bp, "key": kp, "arn": arn, "role": iam.get_role(RoleName="{role}")["Role"]["Arn"]}}))
"#
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("documents");
    Replica {
        bucket: dr.to_string(),
        region: "us-east-1".into(),
        key: (v["arn"].as_str().unwrap_or_default().to_string(), key_alias.to_string()),
        role: v["role"].as_str().unwrap_or_default().to_string(),
        role_docs: v["docs"].as_array().cloned().unwrap_or_default(),
        bucket_policy: v["bucket"].clone(),
        key_policy: v["key"].clone(),
    }
}

/// A replica PUT into `replica.bucket` through the proxy that judges it
/// as AWS would: "replicated", or S3's error code and message.
fn replicate(w: &World, replica: Replica) -> String {
    let proxy = FaultProxy::with(w.moto().port, Faults::CrossAccountReplica(Box::new(replica.clone())), None);
    let out = std::process::Command::new(crate::harness::python())
        .args([
            "-c",
            &format!(
                r#"
import sys, boto3
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
try:
    s3.put_object(Bucket="{}", Key="postgres/1.dump", Body=b"replica")
    print("replicated")
except ClientError as e:
    print(e.response["Error"]["Code"], e.response["Error"]["Message"])
"#,
                replica.bucket
            ),
            &proxy.url(),
        ])
        .output()
        .expect("python");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn objective_reasons(doc: &serde_json::Value, id: &str) -> String {
    let o =
        doc["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == id).cloned().expect("objective");
    o["reasons"].to_string()
}

fn control<'d>(doc: &'d serde_json::Value, id: &str, address: &str) -> &'d serde_json::Value {
    doc["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == id && c["address"] == address)
        .unwrap_or_else(|| panic!("no {id} on {address}: {doc}"))
}

#[test]
fn a_replica_into_the_backup_account_needs_the_bucket_policy_the_owner_override_and_the_key_policy() {
    let w = World::with_moto();
    let (src, dr, repl, ksrc, kdr) =
        (unique("xr-src"), unique("xr-dr"), unique("xr-repl"), unique("ksrc"), unique("kdr"));
    let text = format!(
        r#"{head}kms:
  keys:
    {ksrc}: {{rotation: enabled}}
    {kdr}: {{account: backup, rotation: enabled}}
s3:
  buckets:
    {src}:
      versioning: enabled
      encryption: {{algorithm: "aws:kms", kms_key: {ksrc}}}
      replication:
        role: {repl}
        rules:
          - {{id: dr, destination: {dr}, replica_kms_key: {kdr}, replicate_kms_encrypted: true}}
    {dr}:
      account: backup
      versioning: enabled
      encryption: {{algorithm: "aws:kms", kms_key: {kdr}}}
iam:
  roles:
    {repl}:
      s3_replication: true
"#,
        head = head(w.account())
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    let r = w.cli(&["plan", "-f", &p]);
    r.code(0);
    let out = squash(&r.stdout);
    assert!(out.contains(&format!("+ kms.{kdr} will be created in account backup")), "{out}");
    assert!(out.contains("SuoopsPolicyReplicasFromSources"), "the key policy's grant is planned: {out}");
    let r = w.cli(&["apply", "-f", &p, "--auto-approve"]);
    r.code(0);
    w.cli(&["plan", "-f", &p, "--detailed-exitcode"]).code(0);
    let alias = format!("alias/{kdr}");
    let live = replica_as_live(&w, &dr, &alias, &repl);
    let grant = live.key_policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["Sid"] == "SuoopsPolicyReplicasFromSources")
        .cloned()
        .expect("the key policy grants the source's role");
    assert_eq!(grant["Principal"]["AWS"], serde_json::json!([live.role.clone()]), "{grant}");
    assert!(
        live.key_policy.to_string().contains(&format!("arn:aws:iam::{BACKUP}:root")),
        "the key's default statement is kept: {}",
        live.key_policy
    );
    assert_eq!(replicate(&w, live), "replicated", "the derived documents let the replica in");
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    let doc = r.json();
    assert_eq!(control(&doc, "KMS-POLICY", &format!("kms.{kdr}"))["status"], "pass");
    let dr_copy = objective_reasons(&doc, "DR-COPY");
    assert!(!dr_copy.contains("cannot kms:"), "{dr_copy}");

    // Each grant taken away behind the tool's back: the replica is refused
    // as AWS would refuse it, the audit says why, and apply puts it back.
    let cases = [
        (
            "bucket policy",
            format!("s3 = boto3.client('s3', **backup)\ns3.delete_bucket_policy(Bucket='{dr}')"),
            "the bucket policy does not allow s3:ReplicateObject",
        ),
        (
            "owner override",
            format!(
                r#"iam = boto3.client("iam", **prod)
for n in iam.list_role_policies(RoleName="{repl}")["PolicyNames"]:
    d = iam.get_role_policy(RoleName="{repl}", PolicyName=n)["PolicyDocument"]
    d = d if isinstance(d, dict) else json.loads(d)
    for s in d["Statement"]:
        a = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        s["Action"] = [x for x in a if x != "s3:ObjectOwnerOverrideToBucketOwner"] or ["s3:GetObjectVersion"]
    iam.put_role_policy(RoleName="{repl}", PolicyName=n, PolicyDocument=json.dumps(d))"#
            ),
            "the role's own policies do not allow s3:ObjectOwnerOverrideToBucketOwner",
        ),
        (
            "key policy",
            format!(
                r#"kms = boto3.client("kms", **backup)
arn = kms.describe_key(KeyId="{alias}")["KeyMetadata"]["Arn"]
kp = json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])
kp["Statement"] = [s for s in kp["Statement"] if s.get("Sid") != "SuoopsPolicyReplicasFromSources"]
kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=json.dumps(kp))"#
            ),
            "the key policy does not allow kms:Encrypt",
        ),
    ];
    for (what, removal, refusal) in cases {
        w.python(&format!("{AS_BACKUP}\n{removal}\n"));
        let got = replicate(&w, replica_as_live(&w, &dr, &alias, &repl));
        assert!(got.starts_with("AccessDenied") && got.contains(refusal), "{what}: {got}");
        let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
        r.code(2);
        let doc = r.json();
        let dr_copy = objective_reasons(&doc, "DR-COPY");
        let failing = match what {
            "bucket policy" => control(&doc, "S3-REPLICA-GRANT", &format!("s3.{dr}")),
            "owner override" => control(&doc, "IAM-POLICY", &format!("iam.role.{repl}")),
            _ => control(&doc, "KMS-POLICY", &format!("kms.{kdr}")),
        };
        assert_eq!(failing["status"], "fail", "{what}: {failing}");
        let objective =
            doc["objectives"].as_array().expect("objectives").iter().find(|o| o["id"] == "DR-COPY").cloned();
        assert_eq!(objective.expect("DR-COPY")["verdict"], "not_met", "{what}: {dr_copy}");
        if what == "key policy" {
            assert!(dr_copy.contains(&format!("cannot kms:Encrypt with {alias}")), "{what}: {dr_copy}");
        }
        w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
        assert_eq!(replicate(&w, replica_as_live(&w, &dr, &alias, &repl)), "replicated", "{what} put back");
    }
}

/// As an administrator of the workload account (`admin`, an ARN there)
/// would fare against the backup account's bucket `dr` through a proxy
/// that judges it as AWS does across accounts: "ok" or S3's error code,
/// for a delete of an object and a change of the bucket's policy.
fn as_workload_admin(w: &World, dr: &str, admin: &str) -> (String, String) {
    let live = w.python(&format!(
        "{AS_BACKUP}\ntry:\n    print(boto3.client('s3', **backup).get_bucket_policy(Bucket='{dr}')['Policy'])\nexcept Exception:\n    print('{{}}')\n"
    ));
    let policy: serde_json::Value = serde_json::from_str(live.trim()).expect("policy");
    let proxy = FaultProxy::with(
        w.moto().port,
        Faults::CrossAccount { bucket: dr.to_string(), principal: admin.to_string(), policy },
        None,
    );
    let out = std::process::Command::new(crate::harness::python())
        .args([
            "-c",
            &format!(
                r#"
import sys, json, boto3
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
def attempt(f):
    try:
        f()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]
print(attempt(lambda: s3.delete_object(Bucket="{dr}", Key="postgres/1.dump")),
      attempt(lambda: s3.put_bucket_policy(Bucket="{dr}", Policy=s3.get_bucket_policy(Bucket="{dr}")["Policy"])))
"#
            ),
            &proxy.url(),
        ])
        .output()
        .expect("python");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (a, b) = text.split_once(' ').unwrap_or((&text, ""));
    (a.to_string(), b.to_string())
}

#[test]
fn the_workload_account_cannot_delete_or_reconfigure_the_backup_account_s_bucket() {
    let w = World::with_moto();
    let (src, dr, repl, restore) = (unique("iso-src"), unique("iso-dr"), unique("iso-repl"), unique("iso-restore"));
    let text = format!(
        r#"{head}privacy: {{erasure_within: 30d}}
s3:
  buckets:
    {src}:
      versioning: enabled
      replication:
        role: {repl}
        rules:
          - {{id: dr, destination: {dr}}}
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
      backups:
        - {{name: dump, prefix: postgres/, max_age: 26h, retention: 14d}}
    {dr}:
      account: backup
      versioning: enabled
      lifecycle:
        rules:
          - {{id: dumps, prefix: postgres/, expire_after_days: 14, noncurrent_expire_after_days: 1}}
      access:
        deny_delete: true
iam:
  roles:
    {repl}:
      s3_replication: true
    {restore}:
      account: backup
      trust:
        Statement:
          - {{Effect: Allow, Principal: {{AWS: "prod:suoops-ci"}}, Action: sts:AssumeRole}}
      inline_policies:
        read: {{Statement: [{{Effect: Allow, Action: ["s3:GetObject", "s3:ListBucket"], Resource: ["arn:aws:s3:::{dr}", "arn:aws:s3:::{dr}/*"]}}]}}
"#,
        head = head(w.account())
    );
    let p = w.write("p.yaml", &text).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    w.python(&format!(
        "{AS_BACKUP}\nboto3.client('s3', **backup).put_object(Bucket='{dr}', Key='postgres/1.dump', Body=b'copy')\n"
    ));
    let admin = format!("arn:aws:iam::{}:role/Admin", w.account());
    assert_eq!(as_workload_admin(&w, &dr, &admin), ("AccessDenied".into(), "AccessDenied".into()));
    let doc = w.cli(&["audit", "-f", &p, "--format", "json"]).json();
    let iso = control(&doc, "S3-ACCOUNT-ISOLATION", &format!("s3.{dr}"));
    assert_eq!(iso["status"], "pass", "{iso}");
    assert_eq!(iso["account"], "backup", "{iso}");
    assert!(
        iso["detail"].as_str().is_some_and(|d| d.contains(&format!("no principal of prod ({})", w.account()))),
        "{iso}"
    );
    let immutability = objective_reasons(&doc, "IMMUTABILITY");
    assert!(!immutability.contains("S3-ACCOUNT-ISOLATION") && !immutability.contains("may assume"), "{immutability}");
    // The DR copy's oldest version is read in its own account: a copy of
    // a source the other account holds.
    let oldest = control(&doc, "S3-OLDEST-VERSION", &format!("s3.{dr}"));
    assert_eq!(oldest["account"], "backup", "{oldest}");
    assert!(oldest["expected"].to_string().contains("DR copy of dump"), "{oldest}");

    // Someone in the backup account lets the workload account's root in.
    w.python(&format!(
        r#"{AS_BACKUP}
s3 = boto3.client("s3", **backup)
doc = json.loads(s3.get_bucket_policy(Bucket="{dr}")["Policy"])
doc["Statement"].append({{"Sid": "Ops", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{caller}:root"}},
    "Action": ["s3:DeleteObject", "s3:PutBucketPolicy"], "Resource": ["arn:aws:s3:::{dr}", "arn:aws:s3:::{dr}/*"]}})
s3.put_bucket_policy(Bucket="{dr}", Policy=json.dumps(doc))
"#,
        caller = w.account()
    ));
    assert_eq!(
        as_workload_admin(&w, &dr, &admin),
        ("AccessDenied".into(), "ok".into()),
        "AWS would let it change the policy now; `deny_delete` still refuses the delete"
    );
    let r = w.cli(&["audit", "-f", &p, "--format", "json"]);
    r.code(2);
    let doc = r.json();
    let iso = control(&doc, "S3-ACCOUNT-ISOLATION", &format!("s3.{dr}"));
    assert_eq!(iso["status"], "fail", "{iso}");
    let detail = iso["detail"].as_str().unwrap_or_default();
    let said = format!("prod ({}) may s3:PutBucketPolicy: statement `Ops` allows it", w.account());
    assert!(detail.contains(&said), "{detail}");
    assert!(!detail.contains("s3:DeleteObject"), "deny_delete still refuses deletes: {detail}");
    let immutability = objective_reasons(&doc, "IMMUTABILITY");
    assert!(immutability.contains(&format!("s3.{dr} S3-ACCOUNT-ISOLATION is fail")), "{immutability}");

    // And with the tool's delete denial taken away too, the workload's
    // administrator deletes: the control says so, as AWS would let it.
    w.python(&format!(
        r#"{AS_BACKUP}
s3 = boto3.client("s3", **backup)
doc = json.loads(s3.get_bucket_policy(Bucket="{dr}")["Policy"])
doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "SuoopsPolicyNoDelete"]
s3.put_bucket_policy(Bucket="{dr}", Policy=json.dumps(doc))
"#
    ));
    assert_eq!(as_workload_admin(&w, &dr, &admin), ("ok".into(), "ok".into()), "AWS would let it delete now");
    let doc = w.cli(&["audit", "-f", &p, "--format", "json"]).json();
    let iso = control(&doc, "S3-ACCOUNT-ISOLATION", &format!("s3.{dr}"));
    let detail = iso["detail"].as_str().unwrap_or_default();
    let said = format!("prod ({}) may s3:DeleteObject: statement `Ops` allows it", w.account());
    assert!(iso["status"] == "fail" && detail.contains(&said), "{iso}");
    w.cli(&["apply", "-f", &p, "--auto-approve"]).code(0);
    assert_eq!(as_workload_admin(&w, &dr, &admin).0, "AccessDenied", "the denial is back");

    // Through a role of the backup account the workload may assume.
    let widened = text.replace(
        "Action: [\"s3:GetObject\", \"s3:ListBucket\"]",
        "Action: [\"s3:GetObject\", \"s3:ListBucket\", \"s3:PutLifecycleConfiguration\"]",
    );
    let p2 = w.write("p2.yaml", &widened).to_string_lossy().into_owned();
    w.cli(&["apply", "-f", &p2, "--auto-approve"]).code(0);
    let doc = w.cli(&["audit", "-f", &p2, "--format", "json"]).json();
    let immutability = objective_reasons(&doc, "IMMUTABILITY");
    assert!(
        immutability
            .contains(&format!("prod may assume role `{restore}`, which may s3:PutLifecycleConfiguration on {dr}")),
        "{immutability}"
    );
}
