//! `apply`: plan, confirm, change the live systems, verify by re-reading.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use super::{error, load_policy, note, out, Format, Global};
use crate::engine;
use crate::render::{self, Paint};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["file", "saved"])))]
pub struct ApplyArgs {
    /// The policy file (plan and apply in one run).
    #[arg(short = 'f', long = "file", value_name = "POLICY")]
    pub file: Option<std::path::PathBuf>,
    /// A plan saved with `plan --out`: apply exactly its changes, refused
    /// when what it observed has changed since.
    #[arg(value_name = "PLAN.json")]
    pub saved: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub targets: super::TargetArg,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Allow destructive changes (e.g. suspending versioning).
    #[arg(long)]
    pub allow_destroy: bool,
    /// Allow changes nobody can undo (e.g. COMPLIANCE-mode Object Lock
    /// retention, which not even the root user can shorten or remove).
    #[arg(long)]
    pub allow_irreversible: bool,
    /// Append a JSON line per resource to FILE as apply goes: its steps,
    /// their outcome, and each changed setting's value before the change.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<std::path::PathBuf>,
    /// Output format of the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Read a saved plan and check it still fits the policy file it names.
fn load_saved(g: &Global, path: &std::path::Path) -> Result<(crate::saved_plan::SavedPlan, crate::policy::Policy), u8> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(g, format!("cannot read the saved plan {}: {e}", path.display())))?;
    let saved: crate::saved_plan::SavedPlan =
        serde_json::from_str(&text).map_err(|e| error(g, format!("{} is not a saved plan: {e}", path.display())))?;
    if saved.format_version != crate::saved_plan::FORMAT_VERSION {
        return Err(error(
            g,
            format!(
                "{} has plan format {}; this version reads {}",
                path.display(),
                saved.format_version,
                crate::saved_plan::FORMAT_VERSION
            ),
        ));
    }
    // Another version may plan, order or fingerprint differently: a plan
    // is applied by the version that made it (as Terraform does).
    if saved.tool_version != env!("CARGO_PKG_VERSION") {
        return Err(error(
            g,
            format!(
                "{} was made by suoops-policy {}; this is {}: run plan again with this version",
                path.display(),
                saved.tool_version,
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    let bytes = std::fs::read(&saved.policy_file)
        .map_err(|e| error(g, format!("cannot read {} named by the plan: {e}", saved.policy_file)))?;
    if crate::saved_plan::sha256_hex(&bytes) != saved.policy_sha256 {
        return Err(error(g, format!("{} changed since the plan was made: run plan again", saved.policy_file)));
    }
    let policy = load_policy(g, std::path::Path::new(&saved.policy_file)).ok_or(1u8)?;
    Ok((saved, policy))
}

/// What apply starts from: a saved plan and its policy, or the policy
/// file. Err: the exit code, the error said.
fn source(g: &Global, a: &ApplyArgs) -> Result<(Option<crate::saved_plan::SavedPlan>, crate::policy::Policy), u8> {
    if a.saved.is_some() && !a.targets.target.is_empty() {
        return Err(error(g, "--target goes with plan: a saved plan already holds exactly what it changes"));
    }
    match (&a.saved, &a.file) {
        (Some(path), _) => load_saved(g, path).map(|(s, p)| (Some(s), p)),
        (None, Some(file)) => load_policy(g, file).map(|p| (None, p)).ok_or(1),
        (None, None) => Err(error(g, "apply needs -f POLICY or a saved PLAN.json")),
    }
}

/// Why a saved plan no longer applies: what it changes changed since.
fn stale(saved: &crate::saved_plan::SavedPlan, observations: &crate::engine::Snapshot) -> Option<String> {
    let stale = crate::saved_plan::stale(saved, &crate::saved_plan::fingerprints(observations));
    (!stale.is_empty()).then(|| {
        format!(
            "the saved plan is stale: {} changed since it was made; nothing was changed, run plan again",
            stale.join(", ")
        )
    })
}

/// Why the plan may not be applied with the flags given: destructive
/// changes without --allow-destroy, irreversible ones without
/// --allow-irreversible.
fn refused(plan: &crate::model::Plan, a: &ApplyArgs) -> Option<String> {
    // Each marked change with its marked settings: `ADDRESS (a, b)`.
    let marked = |change: fn(&crate::model::Change) -> bool, attr: fn(&crate::model::AttrChange) -> bool| {
        let found: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| change(c))
            .map(|c| {
                let attrs: Vec<&str> = c.attributes.iter().filter(|x| attr(x)).map(|x| x.name.as_str()).collect();
                format!("{} ({})", c.address, attrs.join(", "))
            })
            .collect();
        found.join("; ")
    };
    let destructive = marked(|c| c.destructive, |x| x.destructive);
    if !destructive.is_empty() && !a.allow_destroy {
        return Some(format!(
            "the plan has destructive changes and --allow-destroy was not given; nothing was changed: {destructive}"
        ));
    }
    let irreversible = marked(|c| c.irreversible && c.is_actionable(), |x| x.irreversible);
    if !irreversible.is_empty() && !a.allow_irreversible {
        return Some(format!(
            "the plan has changes nobody can undo and --allow-irreversible was not given; nothing was changed: {irreversible}"
        ));
    }
    None
}

/// Ask on the terminal; only "yes" goes on.
fn confirmed() -> bool {
    eprint!("Apply these changes? Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    answer.trim() == "yes"
}

/// One journal line: the resource's steps and outcome, and each changed
/// setting's value before the run.
fn journal_line(plan: &crate::model::Plan, done: &crate::model::Applied, run_id: u64) -> serde_json::Value {
    let prefix = format!("{}.", done.address);
    let before: serde_json::Map<String, serde_json::Value> = plan
        .changes
        .iter()
        .filter(|c| c.address == done.address || c.address.as_str().starts_with(&prefix))
        .flat_map(|c| {
            c.attributes.iter().map(move |x| {
                (format!("{} {}", c.address, x.name), x.before.clone().unwrap_or(serde_json::Value::Null))
            })
        })
        .collect();
    let account = plan
        .changes
        .iter()
        .find(|c| c.address.resource_addr() == done.address.resource_addr())
        .and_then(|c| c.account.clone());
    serde_json::json!({
        "run": run_id,
        "address": done.address,
        "account": account,
        "ok": !done.failed(),
        "steps": done.steps.iter().map(|s| serde_json::json!({"step": s.step, "ok": s.result.is_ok(), "error": s.result.as_ref().err()})).collect::<Vec<_>>(),
        "before": before,
        "did_not_take": done.did_not_take,
    })
}

/// A saved plan re-reads only what it changes and makes exactly its
/// changes: its targets and the policy cut down to them; None when it
/// changes nothing.
fn saved_targets(
    s: &crate::saved_plan::SavedPlan,
    policy: &crate::policy::Policy,
) -> Option<(crate::model::Targets, crate::policy::Policy)> {
    let touched = crate::saved_plan::touched(s);
    if touched.list.is_empty() {
        return None;
    }
    // Another resource whose name extends a changed one's is not part of
    // the change.
    let resources: Vec<String> =
        crate::providers::addresses(policy).into_iter().map(|a| a.as_str().to_string()).collect();
    let exact = crate::saved_plan::exact(s).among(resources.clone());
    Some((exact, crate::providers::restricted(policy, &touched.among(resources))))
}

pub async fn run(g: &Global, a: &ApplyArgs) -> u8 {
    let (saved, policy) = match source(g, a) {
        Ok(sp) => sp,
        Err(code) => return code,
    };
    let (targets, policy) = match &saved {
        Some(s) => match saved_targets(s, &policy) {
            Some(tp) => tp,
            None => {
                note(g, "The saved plan has nothing to apply.");
                return 0;
            }
        },
        None => match a.targets.apply(g, policy) {
            Some(tp) => tp,
            None => return 1,
        },
    };
    let interactive = std::io::stdin().is_terminal();
    if !a.auto_approve && !interactive {
        return error(g, "apply needs --auto-approve when stdin is not a terminal");
    }
    let (aws, observations) = match super::connect_and_observe(g, &policy, false).await {
        Ok(o) => o,
        Err(code) => return code,
    };
    if let Some(why) = saved.as_ref().and_then(|s| stale(s, &observations)) {
        return error(g, why);
    }
    let mut plan = engine::plan(&observations);
    plan.changes.retain(|c| targets.covers(c.address.as_str()));
    let paint = Paint { on: g.color.enabled_for_stdout() };
    if a.format == Format::Text {
        out(&render::text::plan(&plan, paint));
    }
    if let Some(why) = refused(&plan, a) {
        return error(g, why);
    }
    let manual: Vec<&str> = plan.changes.iter().filter(|c| !c.is_noop()).filter_map(|c| c.manual.as_deref()).collect();
    if !plan.has_actionable() {
        if !manual.is_empty() {
            note(g, format!("Nothing for apply to do; {} manual step(s) remain (see above).", manual.len()));
        }
        if a.format == Format::Json {
            out(&format!("{:#}\n", render::json::applied(&[])));
        }
        return if plan.is_incomplete() {
            error(g, "some settings could not be read or cannot be reconciled (see above)")
        } else {
            0
        };
    }
    if !a.auto_approve && !confirmed() {
        note(g, "Apply cancelled; nothing was changed.");
        return 1;
    }
    let journal = match &a.journal {
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Some(std::sync::Mutex::new(f)),
            Err(e) => return error(g, format!("cannot open the journal {}: {e}", path.display())),
        },
        None => None,
    };
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let record = |done: &crate::model::Applied| {
        let Some(j) = &journal else { return };
        let line = journal_line(&plan, done, run_id);
        if let Ok(mut f) = j.lock() {
            use std::io::Write as _;
            let _ = writeln!(f, "{line}");
        }
    };
    let progress = super::Progress::start(g, &aws, "applying");
    let results = engine::apply(&aws, &observations, g.concurrency as usize, &targets, &record).await;
    progress.finish();
    let results = match results {
        Ok(r) => r,
        Err(e) => return error(g, format!("{e}; a re-run of apply continues from the live state")),
    };
    match a.format {
        Format::Text => out(&render::text::applied(&results, &plan.changes, paint)),
        Format::Json => out(&format!("{:#}\n", render::json::applied(&results))),
    }
    if !manual.is_empty() {
        note(g, format!("{} manual step(s) remain (see the plan above).", manual.len()));
    }
    if results.iter().any(|r| r.failed()) {
        return error(g, "apply did not complete; fix the errors above and re-run (it converges from the live state)");
    }
    if plan.is_incomplete() {
        return error(g, "some settings could not be read or cannot be reconciled (see above)");
    }
    0
}
