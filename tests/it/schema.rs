//! The checked-in JSON Schema matches the code, and every shipped policy
//! points editors at it.

use crate::harness::{root, World};

#[test]
fn checked_in_schema_is_current() {
    let w = World::new();
    let r = w.cli(&["schema"]);
    r.code(0);
    let path = root().join("schema/suoops-policy.schema.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != r.stdout {
        panic!("schema/suoops-policy.schema.json is stale: run `cargo run -q -- schema > schema/suoops-policy.schema.json`");
    }
    let j = r.json();
    assert_eq!(j["properties"]["version"]["type"], "integer");
    assert!(j.to_string().contains("public_access_block"));
}

#[test]
fn shipped_policies_start_with_the_schema_comment() {
    let mut n = 0;
    for e in std::fs::read_dir(root().join("policies")).expect("policies/") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".yaml") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("read policy");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/suoops-policy.schema.json\n"),
            "policies/{name} must start with the yaml-language-server comment"
        );
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn checked_in_plan_schema_is_current() {
    let w = World::new();
    let r = w.cli(&["schema", "--plan"]);
    r.code(0);
    let checked_in = std::fs::read_to_string(root().join("schema/suoops-plan.schema.json")).unwrap_or_default();
    assert!(
        checked_in == r.stdout,
        "schema/suoops-plan.schema.json is stale: run `cargo run -q -- schema --plan > schema/suoops-plan.schema.json`"
    );
    assert_eq!(r.json()["title"], "suoops-policy plan");
}

#[test]
fn checked_in_report_schema_is_current() {
    let w = World::new();
    let r = w.cli(&["schema", "--report"]);
    r.code(0);
    let checked_in = std::fs::read_to_string(root().join("schema/suoops-audit-report.schema.json")).unwrap_or_default();
    assert!(
        checked_in == r.stdout,
        "schema/suoops-audit-report.schema.json is stale: run `cargo run -q -- schema --report > schema/suoops-audit-report.schema.json`"
    );
}

#[test]
fn completions_and_man_page_come_from_the_cli_definitions() {
    let w = World::new();
    for (shell, marker) in [
        ("bash", "_suoops__policy()"),
        ("zsh", "#compdef suoops-policy"),
        ("fish", "complete -c suoops-policy"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let r = w.cli(&["completions", shell]);
        r.code(0);
        assert!(r.stdout.contains(marker), "{shell}: {}", &r.stdout[..r.stdout.len().min(300)]);
        for word in ["plan", "apply", "audit", "import", "detailed-exitcode", "allow-destroy"] {
            assert!(r.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let r = w.cli(&["completions", "tcsh"]);
    r.code(2);
    assert!(r.stderr.contains("invalid value 'tcsh'"), "{}", r.stderr);
    let man = w.cli(&["man"]);
    man.code(0);
    assert!(man.stdout.contains(".TH suoops-policy 1"), "{}", man.stdout);
    for sub in ["plan", "apply", "audit", "validate", "import", "permissions", "schema", "completions"] {
        assert!(man.stdout.contains(&format!(".TH suoops-policy-{sub} ")), "no page section for {sub}");
    }
    // The flags and the exit codes the README promises are in it.
    for text in ["detailed\\-exitcode", "allow\\-destroy", "Exit codes:"] {
        assert!(man.stdout.contains(text), "man page lacks {text}");
    }
}
