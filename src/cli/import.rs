//! `import`: write a policy from what exists, so adoption starts from the
//! live state rather than a blank file. Reads only; the file it writes
//! passes `validate` and plans with no change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{error, load_policy, note, out, Global};
use crate::import::{self, Request};
use crate::policy::{self, LoadError};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A bucket to import (repeatable).
    #[arg(long = "s3-bucket", value_name = "NAME")]
    pub buckets: Vec<String>,
    /// Every bucket these credentials can list.
    #[arg(long)]
    pub all_buckets: bool,
    /// An IAM role to import (repeatable).
    #[arg(long = "iam-role", value_name = "NAME")]
    pub roles: Vec<String>,
    /// A KMS key to import, by its alias (repeatable); `@REGION` when it is
    /// not in the default region.
    #[arg(long = "kms-key", value_name = "alias/NAME[@REGION]")]
    pub kms_keys: Vec<String>,
    /// A Redis instance whose URL is in the environment variable ENV_VAR
    /// (written to the policy as ${ENV_VAR}, never as its value).
    #[arg(long = "redis", value_name = "NAME=ENV_VAR", value_parser = name_and_var)]
    pub redis: Vec<(String, String)>,
    /// A PostgreSQL server whose URL is in the environment variable ENV_VAR.
    #[arg(long = "postgres", value_name = "NAME=ENV_VAR", value_parser = name_and_var)]
    pub postgres: Vec<(String, String)>,
    /// Write the policy to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Add the imported resources to this policy file, in place (or to
    /// --output); what it already has is kept exactly as written.
    #[arg(long, value_name = "POLICY")]
    pub merge: Option<PathBuf>,
    /// Import from this account of the --merge policy (its role assumed);
    /// each AWS entry says `account: NAME`.
    #[arg(long, value_name = "NAME", requires = "merge")]
    pub account: Option<String>,
}

/// `--account NAME`: the credentials that act there — its role assumed,
/// or the caller's own for the account without a role. None, said on
/// stderr: no such account, or it cannot be reached.
async fn in_account(
    g: &Global,
    aws: &crate::aws::Aws,
    policy: &crate::policy::Policy,
    name: &str,
) -> Option<crate::aws::Aws> {
    let account = super::declared_account(g, policy, name, &format!("--account {name}:"))?;
    let Some(role) = &account.role else { return Some(aws.clone()) };
    let external = account.external_id.as_ref().map(|e| e.expose());
    match aws.assume(&account.id, role, external, (&account.session_name, account.session_secs)).await {
        Ok(aws) => Some(aws),
        Err(e) => {
            error(g, crate::engine::unreachable(name, &account.id, &e));
            None
        }
    }
}

/// `NAME=ENV_VAR`.
fn name_and_var(s: &str) -> Result<(String, String), String> {
    let (name, var) = s.split_once('=').ok_or_else(|| format!("`{s}` is not NAME=ENV_VAR"))?;
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(format!("`{name}` is not a resource name: use letters, digits, `-` and `_`"));
    }
    let var_ok = var.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !var_ok {
        return Err(format!("`{var}` is not an environment variable name"));
    }
    Ok((name.to_string(), var.to_string()))
}

/// A new policy of `entries`, with the `$schema` comment when the schema
/// file is found beside the output or above it (said when it is not).
fn new_document(g: &Global, a: &ImportArgs, entries: &import::Entries, region: &str) -> String {
    let dir = match &a.output {
        Some(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        None => PathBuf::new(),
    };
    let schema = schema_path_from(&dir);
    if schema.is_none() {
        note(
            g,
            "no schema/suoops-policy.schema.json found in the output's folder or above it, so the policy has no $schema comment: write the schema with `suoops-policy schema > FILE` and add `# yaml-language-server: $schema=PATH-TO-FILE` as the first line for editor checks",
        );
    }
    import::document(entries, region, schema.as_deref())
}

/// What is written must load as it will be used: it is checked first, the
/// snippets showing the text that would have been written. A variable the
/// import introduced for a value it does not write counts as set: the user
/// sets it before the first plan (said after). Err: the exit code.
fn validated(
    g: &Global,
    a: &ImportArgs,
    target: Option<&Path>,
    text: &str,
    req: &Request,
    entries: &import::Entries,
) -> Result<(), u8> {
    let label = match (&a.merge, target) {
        (Some(_), Some(p)) => format!("{} (merged)", p.display()),
        (None, Some(p)) => p.display().to_string(),
        _ => "(imported policy)".to_string(),
    };
    let env = |name: &str| {
        req.env
            .get(name)
            .cloned()
            .or_else(|| entries.variables.iter().any(|(v, _)| v == name).then(|| "(to be set)".to_string()))
    };
    if let Err(LoadError::Invalid(d)) =
        policy::parse_checked(&label, text.as_bytes().to_vec(), &env, Some(&crate::providers::control_ids()))
    {
        eprint!("{}", d.render(g.color.enabled_for_stderr()));
        let why = if a.merge.is_some() {
            "the merged policy does not validate (see above: a layout the merge cannot follow, or a live setting the policy format rejects)"
        } else {
            "the imported policy does not validate (a live setting the policy format rejects, see above)"
        };
        return Err(error(g, format!("{why}; nothing was written")));
    }
    Ok(())
}

/// The text to write and where: `entries` merged into the `--merge` file
/// (`merging`: it loaded), or a new document; None: nothing to add.
fn document(
    g: &Global,
    a: &ImportArgs,
    merging: bool,
    entries: &import::Entries,
    region: &str,
) -> Result<Option<(String, Option<PathBuf>)>, u8> {
    match (merging, &a.merge) {
        (true, Some(path)) => {
            if entries.is_empty() {
                note(g, format!("nothing to add to {}", path.display()));
                return Ok(None);
            }
            let current = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return Err(error(g, format!("cannot read {}: {e}", path.display()))),
            };
            let text = match import::add_to(&current, entries) {
                Ok(t) => t,
                Err(e) => {
                    return Err(error(g, format!("cannot merge into {}: {e}; nothing was written", path.display())))
                }
            };
            Ok(Some((text, Some(a.output.clone().unwrap_or_else(|| path.clone())))))
        }
        _ => {
            if entries.is_empty() {
                return Err(error(g, "nothing to import: no bucket was found"));
            }
            Ok(Some((new_document(g, a, entries, region), a.output.clone())))
        }
    }
}

pub async fn run(g: &Global, a: &ImportArgs) -> u8 {
    if a.buckets.is_empty()
        && !a.all_buckets
        && a.roles.is_empty()
        && a.kms_keys.is_empty()
        && a.redis.is_empty()
        && a.postgres.is_empty()
    {
        return error(
            g,
            "nothing to import: name --s3-bucket, --all-buckets, --iam-role, --kms-key, --redis or --postgres",
        );
    }
    // With --merge: the file must be valid first, and what it has is kept.
    let existing = match &a.merge {
        Some(path) => match load_policy(g, path) {
            Some(p) => Some(p),
            None => return error(g, format!("{} must be valid before import can merge into it", path.display())),
        },
        None => None,
    };
    let mut req = Request {
        buckets: a.buckets.clone(),
        all_buckets: a.all_buckets,
        roles: a.roles.clone(),
        kms_keys: a.kms_keys.clone(),
        redis: a.redis.clone(),
        postgres: a.postgres.clone(),
        skip_buckets: BTreeSet::new(),
        env: std::env::vars().collect(),
    };
    if let Some(p) = &existing {
        // What the file already has is kept as written, and not read again.
        let kept: Vec<String> = crate::providers::REGISTRY.iter().flat_map(|k| k.keep_existing(p, &mut req)).collect();
        if !kept.is_empty() {
            note(g, format!("already in {}, kept as written: {}", p.file, kept.join(", ")));
        }
    }
    let aws = super::connect(g, existing.as_ref().and_then(|p| p.default_region.as_deref())).await;
    let aws = match (&a.account, &existing) {
        (Some(name), Some(p)) => match in_account(g, &aws, p, name).await {
            Some(aws) => aws,
            None => return 1,
        },
        _ => aws,
    };
    let region = aws.default_region().unwrap_or("us-east-1").to_string();
    let progress = super::Progress::start(g, &aws, "reading the live state");
    let default_region = match &existing {
        Some(p) => p.default_region.clone(),
        None => Some(region.clone()),
    };
    let entries =
        import::entries(&aws, &req, default_region.as_deref(), g.concurrency as usize, a.account.as_deref()).await;
    progress.finish();
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return error(g, e),
    };
    let (text, target) = match document(g, a, existing.is_some(), &entries, &region) {
        Ok(Some(d)) => d,
        Ok(None) => return 0,
        Err(code) => return code,
    };
    if let Err(code) = validated(g, a, target.as_deref(), &text, &req, &entries) {
        return code;
    }
    match &target {
        Some(path) => {
            if let Err(e) = super::write_atomically(path, &text) {
                return error(g, format!("cannot write {}: {e}", path.display()));
            }
            note(g, format!("imported {} into {}", entries.summary(), path.display()));
        }
        None => out(&text),
    }
    for (var, what) in &entries.variables {
        let set = if req.env.contains_key(var) { " (it is set in this shell)" } else { "" };
        note(g, format!("set {var} to {what} before plan or apply{set}: import writes ${{{var}}}, never the value, which may hold a secret"));
    }
    if !entries.unreadable.is_empty() {
        return error(
            g,
            format!(
                "the import is incomplete: {} setting(s) could not be read and are left unmanaged: {}",
                entries.unreadable.len(),
                entries.unreadable.join("; ")
            ),
        );
    }
    0
}

/// The path of `schema/suoops-policy.schema.json` relative to `dir` (the
/// folder the policy is written to), found in `dir` or a folder above it.
fn schema_path_from(dir: &Path) -> Option<String> {
    let base = if dir.as_os_str().is_empty() { std::env::current_dir().ok()? } else { dir.canonicalize().ok()? };
    base.ancestors().enumerate().find_map(|(up, a)| {
        a.join("schema/suoops-policy.schema.json")
            .is_file()
            .then(|| format!("{}schema/suoops-policy.schema.json", "../".repeat(up)))
    })
}
