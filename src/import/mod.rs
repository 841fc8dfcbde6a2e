//! `import`: write a policy from live state, so adopting the tool starts
//! from what exists. Each provider reads what the request names as if the
//! policy mentioned every setting and writes its own section's entries
//! (`providers/*/import.rs`); this module puts the sections into a new
//! policy file, or into an existing one as text (`merge.rs`).

pub mod merge;

use crate::aws::Aws;
use crate::engine::{fatal, RunError};
use crate::policy::writer::{literal_env, scalar, Writer};
use crate::providers::{self, Ctx, Imported};

pub use crate::providers::ImportRequest as Request;

/// Policy entries, each a `NAME:` block at column 0, per section, and the
/// settings that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entries {
    /// In the order the policy file has its sections.
    pub sections: Vec<Imported>,
    /// `ADDRESS SETTING: reason` for each setting that could not be read.
    pub unreadable: Vec<String>,
    /// Variables the written policy refers to for values not written
    /// (they may hold a secret): (variable, what to set it to).
    pub variables: Vec<(String, String)>,
}

impl Entries {
    pub fn is_empty(&self) -> bool {
        self.sections.iter().all(|s| s.entries.is_empty())
    }

    /// "3 bucket(s), 2 role(s), 1 Redis, 1 PostgreSQL".
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .sections
            .iter()
            .filter(|s| !s.entries.is_empty())
            .map(|s| format!("{} {}", s.entries.len(), s.noun))
            .collect();
        parts.join(", ")
    }
}

/// The policy file's top-level keys in the order the format declares them
/// (the JSON Schema's property order), so sections land where people look.
fn file_order() -> Vec<String> {
    let schema = serde_json::to_value(schemars::schema_for!(crate::policy::raw::RawPolicy)).unwrap_or_default();
    schema["properties"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Every provider's part of the import: read and write its entries.
/// `default_region` is the policy's `aws.region`: a bucket elsewhere gets
/// its own `region:` (with None, every bucket does).
pub async fn entries(
    aws: &Aws,
    req: &Request,
    default_region: Option<&str>,
    concurrency: usize,
    account: Option<&str>,
) -> Result<Entries, RunError> {
    let ctx = Ctx::new(aws, concurrency);
    let each = providers::REGISTRY.iter().filter_map(|p| {
        let part = p.import(&ctx, req, default_region)?;
        // `import --account NAME`: what AWS holds is in that account.
        let here = account.filter(|_| p.on_aws());
        Some(futures::FutureExt::map(part, move |r| {
            r.map(|mut part| {
                if let Some(a) = here {
                    part.in_account(a);
                }
                part
            })
        }))
    });
    let parts = futures::future::try_join_all(each).await.map_err(fatal(aws))?;
    let order = file_order();
    let rank =
        |s: &Imported| order.iter().position(|k| Some(k.as_str()) == s.section.first().copied()).unwrap_or(usize::MAX);
    let mut e = Entries::default();
    for mut part in parts {
        e.unreadable.append(&mut part.unreadable);
        e.variables.append(&mut part.variables);
        e.sections.push(part);
    }
    e.sections.sort_by_key(|s| rank(s));
    Ok(e)
}

/// A whole new policy file; `schema` is the path of the JSON Schema
/// relative to where the file goes (None: no schema comment).
pub fn document(e: &Entries, region: &str, schema: Option<&str>) -> String {
    let mut w = Writer::new();
    if let Some(s) = schema {
        w.comment(0, &format!("yaml-language-server: $schema={s}"));
        w.comment(0, "");
    }
    w.comment(
        0,
        "Imported from the live state by `suoops-policy import`. Review it before use: comments mark AWS defaults and what the policy format cannot express. Backup evidence (`backups:`) and waivers cannot be observed: add them yourself.",
    );
    w.raw(0, "version", "1", None);
    w.open(0, "aws");
    w.raw(2, "region", &scalar(&literal_env(region)), None);
    // The same insertion `--merge` makes, into a file with no section yet.
    let head = w.finish();
    add_to(&head, e).unwrap_or(head)
}

/// Every entry inserted into the policy text under its section, the rest
/// of the text kept as it is (`--merge`).
pub fn add_to(text: &str, e: &Entries) -> Result<String, String> {
    let mut text = text.to_string();
    for s in &e.sections {
        let blocks: Vec<String> = s.entries.iter().map(|(_, t)| t.clone()).collect();
        text = merge::insert(&text, s.section, &blocks)?;
    }
    Ok(text)
}
