//! The layering ARCHITECTURE.md promises, checked on every test run so it
//! cannot silently break: no file outside `src/providers/` names one
//! system's provider module, reads a system's section of the policy
//! (`policy.buckets`, `.postgres`…; `src/policy/` loads them) or names one
//! of their control ids (systems are reached through the registry); a
//! system's policy section (`src/providers/NAME/section`) is part of the
//! policy layer and reaches nothing of its provider; and the top-level
//! modules depend on each other only as the code map's "may depend on"
//! column says, which has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the top-level modules it may use (test code
/// aside). Keep in step with ARCHITECTURE.md's code map.
const MAY_DEPEND_ON: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("iamdoc", &[]),
    ("tls", &[]),
    ("aws", &["model"]),
    ("policy", &["iamdoc", "model"]),
    ("jobs", &["aws", "model", "policy"]),
    ("providers", &["aws", "iamdoc", "jobs", "model", "policy", "tls"]),
    ("audit", &["iamdoc", "model", "policy", "providers"]),
    ("render", &["audit", "jobs", "model"]),
    ("notify", &["audit", "aws", "model", "tls"]),
    ("engine", &["audit", "aws", "model", "policy", "providers"]),
    ("saved_plan", &["engine", "model"]),
    ("import", &["aws", "engine", "policy", "providers"]),
    ("permissions", &["aws", "jobs", "policy", "providers"]),
    (
        "cli",
        &[
            "audit",
            "aws",
            "engine",
            "import",
            "jobs",
            "model",
            "notify",
            "permissions",
            "policy",
            "providers",
            "render",
            "saved_plan",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's text without its test module (tests may reach anywhere).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    text.split("#[cfg(test)]").next().unwrap_or_default().to_string()
}

/// The top-level modules `text` names through `crate::`. A system's policy
/// section (`crate::providers::NAME::section`) counts as `policy`: it is
/// part of the policy layer, kept beside its provider.
fn named(text: &str, modules: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let words: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
            None => vec![rest],
        };
        for w in words {
            let path: String =
                w.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
            let first = path.split("::").next().unwrap_or_default();
            if is_section_path(&path) {
                out.insert("policy".to_string());
            } else if modules.contains(first) {
                out.insert(first.to_string());
            }
        }
    }
    out
}

/// `providers::NAME::section…`: a system's policy section.
fn is_section_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split("::").collect();
    parts.len() >= 3 && parts[0] == "providers" && parts[2] == "section"
}

/// A file of a system's policy section (`src/providers/NAME/section.rs` or
/// under `src/providers/NAME/section/`).
fn in_section(f: &Path) -> bool {
    let Ok(rel) = f.strip_prefix(src().join("providers")) else { return false };
    let parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    parts.len() >= 2 && (parts[1] == "section.rs" || parts[1] == "section")
}

#[test]
fn no_file_outside_providers_names_a_system() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let systems = ["s3", "iam", "redis", "postgres", "kms"];
    let mut naming = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(src().join("providers"))) {
        let text = code(f);
        let loader = f.starts_with(src().join("policy"));
        for (i, _) in text.match_indices("providers::") {
            let rest = &text[i + "providers::".len()..];
            let path: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
            if loader && is_section_path(&format!("providers::{path}")) {
                continue;
            }
            let first: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let grouped = rest.strip_prefix('{').map(|g| g.split('}').next().unwrap_or("")).unwrap_or("");
            if systems.contains(&first.as_str()) || systems.iter().any(|s| grouped.split(',').any(|w| w.trim() == *s)) {
                naming.push(f.strip_prefix(src()).unwrap_or(f).display().to_string());
            }
        }
    }
    assert!(naming.is_empty(), "outside src/providers/, reach systems through the registry: {naming:?}");
}

/// ARCHITECTURE.md's code map: each row's module (`cli/`, `engine.rs`)
/// and the modules its last column lists.
fn code_map() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).expect("read");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(|w| w.trim_end_matches('/').trim_end_matches(".rs").to_string())
            .collect()
    };
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        if let (Some(first), Some(last)) = (cells.first(), cells.last()) {
            if let Some(module) = ticked(first).first() {
                out.insert(module.clone(), ticked(last).into_iter().collect());
            }
        }
    }
    out
}

#[test]
fn architecture_md_s_code_map_says_what_this_file_checks() {
    let map = code_map();
    for (module, deps) in MAY_DEPEND_ON {
        let listed = map.get(*module).unwrap_or_else(|| panic!("ARCHITECTURE.md's code map has no row for {module}"));
        let want: BTreeSet<String> = deps.iter().map(|d| d.to_string()).collect();
        assert_eq!(listed, &want, "ARCHITECTURE.md's \"may depend on\" for {module}");
    }
    assert_eq!(map.len(), MAY_DEPEND_ON.len(), "rows: {:?}", map.keys().collect::<Vec<_>>());
}

/// The policy's per-system sections: only `src/providers/` (and the
/// loader, `src/policy/`) read them.
const SECTIONS: &[&str] = &["buckets", "postgres", "redis", "kms", "iam"];

/// `RECEIVER.SECTION` reads of a policy in `text` (a receiver named
/// `policy`, `…_policy`, `p`, `pol` or `existing`; not a method call).
fn section_reads(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for section in SECTIONS {
        let needle = format!(".{section}");
        for (i, _) in text.match_indices(&needle) {
            let after = &text[i + needle.len()..];
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '(') {
                continue;
            }
            let receiver: String = text[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if ["policy", "p", "pol", "existing"].contains(&receiver.as_str()) || receiver.ends_with("_policy") {
                out.push(format!("{receiver}.{section}"));
            }
        }
    }
    out
}

#[test]
fn no_file_outside_providers_reads_a_system_s_policy_section_or_control_id() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let ids = crate::providers::control_ids();
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(src().join("providers")) && !f.starts_with(src().join("policy"))) {
        let name = f.strip_prefix(src()).unwrap_or(f).display().to_string();
        if name == "architecture.rs" {
            continue;
        }
        let text = code(f);
        for read in section_reads(&text) {
            found.push(format!("{name}: {read}"));
        }
        for id in &ids {
            if text.contains(&format!("\"{id}\"")) {
                found.push(format!("{name}: \"{id}\""));
            }
        }
    }
    assert!(found.is_empty(), "outside src/providers/, ask the registry: {found:?}");
    // The scan finds what it looks for.
    assert_eq!(
        section_reads("let n = policy.buckets.len(); aws.kms(r); a.redis; p.iam.roles"),
        ["policy.buckets", "p.iam"]
    );
}

#[test]
fn a_system_s_policy_section_reaches_nothing_of_its_provider() {
    let mut files = Vec::new();
    rust_files(&src().join("providers"), &mut files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| in_section(f)) {
        let name = f.strip_prefix(src()).unwrap_or(f).display().to_string();
        let text = code(f);
        // `section.rs`'s `super` is the provider; `section/x.rs`'s is the
        // section itself.
        let outward = if name.ends_with("section.rs") { "super::" } else { "super::super" };
        if text.contains(outward) {
            found.push(format!("{name}: {outward}"));
        }
        for (i, _) in text.match_indices("crate::providers::") {
            let path: String = text[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if !is_section_path(&path) {
                found.push(format!("{name}: {path}"));
            }
        }
    }
    assert!(found.is_empty(), "a policy section uses the policy layer and other sections only: {found:?}");
    assert!(is_section_path("providers::s3::section::BucketSpec") && !is_section_path("providers::s3::apply"));
}

#[test]
fn top_level_modules_depend_only_as_the_code_map_says_without_cycles() {
    let allowed: BTreeMap<&str, &[&str]> = MAY_DEPEND_ON.iter().copied().collect();
    let modules: BTreeSet<&str> = allowed.keys().copied().collect();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in std::fs::read_dir(src()).expect("read src") {
        let p = e.expect("entry").path();
        let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if name == "lib" || name == "main" || name == "architecture" {
            continue;
        }
        assert!(modules.contains(name.as_str()), "src/{name} is not in MAY_DEPEND_ON (and ARCHITECTURE.md's code map)");
        let mut files = Vec::new();
        if p.is_dir() {
            rust_files(&p, &mut files);
        } else {
            files.push(p.clone());
        }
        for f in files {
            let module = if in_section(&f) { "policy".to_string() } else { name.clone() };
            let uses = found.entry(module.clone()).or_default();
            uses.extend(named(&code(&f), &modules).into_iter().filter(|m| *m != module));
        }
    }
    let mut wrong = Vec::new();
    for (m, uses) in &found {
        for u in uses {
            if !allowed[m.as_str()].contains(&u.as_str()) {
                wrong.push(format!("{m} uses {u}"));
            }
        }
    }
    assert!(wrong.is_empty(), "not in the code map's \"may depend on\": {wrong:?}");
    // The allowed graph itself has no cycle: every module can be placed
    // after everything it may use.
    let mut placed: Vec<&str> = Vec::new();
    while placed.len() < modules.len() {
        let next = modules
            .iter()
            .find(|m| !placed.contains(m) && allowed[*m].iter().all(|d| placed.contains(d)))
            .unwrap_or_else(|| {
                panic!("a cycle among {:?}", modules.iter().filter(|m| !placed.contains(m)).collect::<Vec<_>>())
            });
        placed.push(next);
    }
}
