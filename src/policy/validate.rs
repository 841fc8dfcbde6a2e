//! Phase two of loading: turn the spanned raw model into a clean `Policy`,
//! resolving `${VAR}` and checking every rule the systems themselves would
//! enforce. Every problem is collected; the caller gets all of them at once.
//! This file keeps the pipeline (YAML errors, `${VAR}`, regions, durations,
//! URLs, backup references, waivers) and the rules across systems; each
//! system's own rules live in its section (`providers/NAME/section`).

use std::collections::HashMap;
use std::sync::Arc;

use super::diag::{Code, Diagnostic, Diagnostics, Pos};
use super::raw::{self, RawPolicy, Sp};
use super::sections::{kms::KmsKeySpec, s3::BucketSpec};
use super::{parse_duration, BackupRef, Policy, Secret};

/// Parse the bytes of `file` and validate them.
pub fn parse_and_validate(
    file: &str,
    bytes: Vec<u8>,
    env: &dyn Fn(&str) -> Option<String>,
    controls: Option<&[&str]>,
) -> Result<Policy, Diagnostics> {
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let bad = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..bad]).into_owned();
            let line = prefix.matches('\n').count() as u64 + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
            return Err(Diagnostics {
                file: file.to_string(),
                source: Arc::new(prefix),
                items: vec![Diagnostic::new(
                    Code::NotUtf8,
                    format!("the file is not valid UTF-8 (byte {bad} at line {line}, column {column})"),
                    Some(Pos { line, column, offset: bad, len: 0 }),
                )
                .help("save the policy file as UTF-8")],
            });
        }
    };
    let source = Arc::new(text);
    let fail = |items| Diagnostics { file: file.to_string(), source: source.clone(), items };

    if source.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        let end = source.len();
        return Err(fail(vec![Diagnostic::new(
            Code::MissingField,
            "the policy file is empty",
            Some(Pos { line: source.lines().count().max(1) as u64, column: 1, offset: end, len: 0 }),
        )
        .help("a policy starts with `version: 1`; see policies/ for an example")]));
    }
    let raw: RawPolicy = match serde_saphyr::from_str(&source) {
        Ok(r) => r,
        Err(e) => return Err(fail(parse_errors(&source, &e))),
    };
    let mut v = Validator {
        env,
        controls,
        diags: Vec::new(),
        warnings: Vec::new(),
        destinations: Vec::new(),
        keys: Vec::new(),
        default_region: None,
        replica_keys: Vec::new(),
        broken_replication_roles: Vec::new(),
        at: HashMap::new(),
        accounts: Vec::new(),
        untimed: Vec::new(),
    };
    let mut policy = v.policy(file, &raw);
    let at = |d: &Diagnostic| d.pos.map(|p| (p.line, p.column));
    v.warnings.sort_by_key(at);
    if v.diags.is_empty() {
        policy.warnings = fail(v.warnings);
        Ok(policy)
    } else {
        v.diags.append(&mut v.warnings);
        v.diags.sort_by_key(at);
        Err(fail(v.diags))
    }
}

/// Turn a serde-saphyr error into a diagnostic with a stable code, and help
/// that says what would be right.
/// Every error the file's reading meets, not only the first (STYLE,
/// two-phase configuration): an error that belongs to one line — an
/// unknown field, a value that is not allowed, a wrong type, a duplicate
/// key — has that line, and the lines nested under it, blanked (same
/// length, so every position stays true), and the text is read again, up
/// to 20 errors. Only such one-line errors after the blanked line are
/// gathered (the file is read in order, so what came before was read
/// already): a field now missing, or a parent left empty, is the
/// blanking's doing rather than the file's, and a syntax error makes what
/// follows unreliable; they end the search.
fn parse_errors(source: &str, first: &serde_saphyr::Error) -> Vec<Diagnostic> {
    let local = |d: &Diagnostic| {
        matches!(d.code, Code::UnknownField | Code::InvalidValue | Code::InvalidType | Code::DuplicateKey)
    };
    let mut out = vec![from_parse_error(first, source)];
    let mut text = source.to_string();
    while out.len() < 20 {
        let last = &out[out.len() - 1];
        let Some(line) = last.pos.map(|p| p.line as usize).filter(|_| local(last)) else { break };
        let Some(blanked) = blank_block(&text, line) else { break };
        text = blanked;
        match serde_saphyr::from_str::<RawPolicy>(&text) {
            Ok(_) => break,
            Err(e) => {
                let d = from_parse_error(&e, source);
                // Only errors that belong to a line of their own, after the
                // line blanked (everything before it was read before): a
                // missing field, or a parent left empty above it, is the
                // blanking's doing.
                let after = d.pos.is_some_and(|p| p.line as usize > line);
                if !local(&d) || !after {
                    break;
                }
                out.push(d);
            }
        }
    }
    out
}

/// `text` with line `line` (1-based) and the more-indented lines under it
/// replaced by spaces; None when there is nothing left to blank there.
fn blank_block(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let first = lines.get(line.checked_sub(1)?)?;
    if first.trim().is_empty() {
        return None;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    // A sequence item's key (`- id: x`) owns the lines indented past its dash.
    let own = indent(first);
    let mut end = line;
    while end < lines.len() && (lines[end].trim().is_empty() || indent(lines[end]) > own) {
        end += 1;
    }
    let blank = |l: &str| " ".repeat(l.len());
    let out: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| if i + 1 >= line && i < end { blank(l) } else { l.to_string() })
        .collect();
    Some(out.join("\n"))
}

fn from_parse_error(e: &serde_saphyr::Error, source: &str) -> Diagnostic {
    let full = e.without_snippet().to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    };
    let pos = e.location().map(|l| Pos::from_location(&l));
    let (code, help) = if message.starts_with("unknown field") {
        (Code::UnknownField, suggestion(&message, "remove it, or use one of the fields listed"))
    } else if message.starts_with("unknown variant") {
        (Code::InvalidValue, suggestion(&message, "use one of the values listed"))
    } else if message.starts_with("duplicate mapping key") {
        let key = message.split(": ").nth(1).and_then(|k| k.split(',').next()).unwrap_or("");
        return Diagnostic::new(Code::DuplicateKey, format!("duplicate key `{key}`"), pos)
            .help("a key may appear only once in a mapping; merge the two entries");
    } else if message.starts_with("missing field") {
        (Code::MissingField, "add the field; see `suoops-policy schema` for the format".to_string())
    } else if message.contains("externally tagged enum expected scalar") {
        return Diagnostic::new(Code::InvalidType, "expected a single value here, not a list", pos)
            .help("write one of the allowed words; see `suoops-policy schema`");
    } else if message == "expected mapping start" {
        let line = pos.and_then(|p| source.lines().nth(p.line.saturating_sub(1) as usize)).unwrap_or("");
        if line.len() > 1024 {
            return Diagnostic::new(
                Code::YamlSyntax,
                "a key longer than 1024 characters (YAML's limit for a key)",
                pos,
            )
            .help("shorten the key; bucket names are at most 63 characters");
        }
        return Diagnostic::new(Code::YamlSyntax, "expected a mapping (`key: value` lines) here", pos)
            .help("this key takes named settings, not a list or a single value; see `suoops-policy schema`");
    } else if message.starts_with("multiple YAML documents") {
        return Diagnostic::new(Code::YamlSyntax, "the file holds more than one YAML document (`---`)", pos).help(
            "a policy is one document: remove the `---` line and what follows it, or move it to a file of its own",
        );
    } else if let Some(ty) = message.strip_prefix("invalid ").filter(|t| ["u32", "u64", "i32", "i64"].contains(t)) {
        let range = match ty {
            "u32" => "0 to 4294967295",
            "u64" => "0 to 18446744073709551615",
            "i32" => "-2147483648 to 2147483647",
            _ => "-9223372036854775808 to 9223372036854775807",
        };
        return Diagnostic::new(Code::InvalidType, format!("expected a whole number from {range}"), pos).help(
            "write a whole number without a fraction or quotes; see `suoops-policy schema` for each key's range",
        );
    } else if message.contains("recursion limit") {
        return Diagnostic::new(Code::YamlSyntax, "the YAML nests too deeply", pos)
            .help("a policy nests a few levels deep; look for runaway `[` or `{` brackets");
    } else if message.starts_with("invalid type") || message.starts_with("invalid ") {
        (Code::InvalidType, "see `suoops-policy schema` for the type each key takes".to_string())
    } else {
        (Code::YamlSyntax, "fix the YAML syntax at this position".to_string())
    };
    Diagnostic::new(code, message, pos).help(help)
}

/// For "unknown field `x`, expected one of a, b" messages: name the closest
/// expected word when one is near.
fn suggestion(message: &str, fallback: &str) -> String {
    let got = message.split('`').nth(1).unwrap_or("");
    let expected = message.split("expected ").nth(1).unwrap_or("");
    let candidates =
        expected.trim_start_matches("one of ").split(',').map(|w| w.trim().trim_matches('`')).filter(|w| !w.is_empty());
    let best = closest(got, candidates);
    match best {
        Some(c) => format!("did you mean `{c}`?"),
        None => fallback.to_string(),
    }
}

/// The candidate nearest to `got`, when one is near enough to be a typo.
pub fn closest<'a>(got: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(got, c), c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) struct Validator<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The control ids waivers may name (the registry's, given by the
    /// caller: policy knows no provider); None: not checked.
    controls: Option<&'a [&'a str]>,
    pub(crate) diags: Vec<Diagnostic>,
    /// Problems that do not stop the policy from loading.
    pub(crate) warnings: Vec<Diagnostic>,
    /// Replication destinations seen, checked against the policy's own
    /// buckets once all are known.
    pub(crate) destinations: Vec<(String, Pos)>,
    /// `kms.keys`, validated before the buckets that name them.
    pub(crate) keys: Vec<KmsKeySpec>,
    pub(crate) default_region: Option<String>,
    /// (key name, destination bucket, position) of each `replica_kms_key`
    /// naming a declared key, checked against the destination's region.
    pub(crate) replica_keys: Vec<(String, String, Pos)>,
    /// The roles of replication configurations that had errors (and were
    /// left out): what follows from their absence is not reported again.
    pub(crate) broken_replication_roles: Vec<String>,
    /// Where a bucket's `access.writers` and `object_lock` are written,
    /// for checks across buckets.
    pub(crate) at: HashMap<(String, &'static str), Pos>,
    /// `accounts:`, validated first: resources and principals name them.
    pub(crate) accounts: Vec<super::Account>,
    /// (bucket, entry, position) of each backups entry without `max_age`:
    /// it comes from the schedule of the job that writes it.
    pub(crate) untimed: Vec<(String, String, Pos)>,
}

impl Validator<'_> {
    fn policy(&mut self, file: &str, raw: &RawPolicy) -> Policy {
        if *raw.version.value() != 1 {
            self.diags.push(
                Diagnostic::new(
                    Code::UnsupportedVersion,
                    format!("policy format version {} is not supported", raw.version.value()),
                    Some(raw.version.pos()),
                )
                .label("this version")
                .help("write `version: 1`"),
            );
        }
        let default_region = raw.aws.as_ref().and_then(|a| a.value().region.as_ref()).and_then(|r| self.region(r));
        self.default_region = default_region.clone();
        let accounts = raw.accounts.as_ref().map(|a| self.accounts(a)).unwrap_or_default();
        self.keys = raw.kms.as_ref().map(|k| self.kms(k)).unwrap_or_default();
        let buckets = self.buckets(raw.s3.as_ref(), default_region.as_deref());
        let iam = raw.iam.as_ref().map(|i| self.iam(i, &buckets, default_region.as_deref())).unwrap_or_default();
        let redis = raw.redis.as_ref().map(|r| self.redis(r, &buckets)).unwrap_or_default();
        let postgres = raw.postgres.as_ref().map(|p| self.postgres(p, &buckets, raw.s3.as_ref())).unwrap_or_default();
        let mut buckets = buckets;
        // Entries a dump job encrypts client-side: the audit checks them.
        let encrypted = postgres
            .iter()
            .filter_map(|p| p.backup.as_ref())
            .filter(|b| !b.encrypt_to.is_empty())
            .map(|b| &b.to)
            .chain(redis.iter().filter(|r| !r.encrypt_to.is_empty()).filter_map(|r| r.backup.as_ref()));
        for to in encrypted {
            if let Some(e) = buckets
                .iter_mut()
                .find(|x| x.name == to.bucket)
                .and_then(|x| x.backups.iter_mut().find(|e| e.name == to.entry))
            {
                e.client_encrypted = true;
            }
        }
        // A pgBackRest repository under a bucket's `access:`: its
        // statements leave pgBackRest (the writers) its reads and expiry.
        for repo in postgres.iter().filter_map(|p| p.pitr.as_ref()).map(|p| &p.repo) {
            if let Some(a) = buckets.iter_mut().find(|b| b.name == repo.bucket).and_then(|b| b.access.as_mut()) {
                if !a.repos.contains(&repo.prefix) {
                    a.repos.push(repo.prefix.clone());
                    a.repos.sort();
                }
            }
        }
        let jobs_timing = postgres
            .iter()
            .filter_map(|p| p.backup.as_ref().and_then(|b| Some((&b.to, b.schedule.as_ref()?))))
            .chain(redis.iter().filter_map(|r| Some((r.backup.as_ref()?, r.backup_schedule.as_ref()?))));
        let timing: Vec<(BackupRef, super::schedule::Schedule)> =
            jobs_timing.map(|(t, s)| (t.clone(), s.clone())).collect();
        self.entries_timed(&mut buckets, &timing);
        let waivers = raw.waivers.iter().filter_map(|w| self.waiver(w)).collect();
        let erasure_within_secs =
            raw.privacy.as_ref().and_then(|p| self.duration(&p.value().erasure_within, "erasure_within"));
        let audit_schedule = raw.audit.as_ref().and_then(|a| self.schedule(&a.value().schedule));
        Policy {
            audit_schedule,
            file: file.to_string(),
            default_region,
            accounts,
            buckets,
            elsewhere: Vec::new(),
            copies: Vec::new(),
            kms: std::mem::take(&mut self.keys),
            iam,
            redis,
            postgres,
            waivers,
            erasure_within_secs,
            warnings: Diagnostics { file: file.to_string(), source: Default::default(), items: Vec::new() },
        }
    }

    /// Resolve `${VAR}` in a string value; `$${` writes a literal `${`.
    pub(crate) fn expand(&mut self, s: &Sp<String>) -> Option<String> {
        let text = s.value();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        let mut ok = true;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("${") {
                let Some(end) = tail.find('}') else {
                    self.diags.push(
                        Diagnostic::new(Code::EnvVarInvalid, "`${` is not closed by `}`", Some(s.pos()))
                            .help("write ${NAME}, or $${ for a literal `${`"),
                    );
                    return None;
                };
                let name = &tail[..end];
                let valid = !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    self.diags.push(
                        Diagnostic::new(
                            Code::EnvVarInvalid,
                            format!("`${{{name}}}` is not a valid variable reference"),
                            Some(s.pos()),
                        )
                        .help("variable names are letters, digits and `_`, not starting with a digit"),
                    );
                    ok = false;
                } else {
                    match (self.env)(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::EnvVarMissing,
                                    format!("environment variable `{name}` is not set"),
                                    Some(s.pos()),
                                )
                                .label(format!("needs ${name}"))
                                .help(format!("export {name}=… before running suoops-policy")),
                            );
                            ok = false;
                        }
                    }
                }
                rest = &tail[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        ok.then_some(out)
    }

    pub(crate) fn region(&mut self, r: &Sp<String>) -> Option<String> {
        let region = self.expand(r)?;
        if is_region(&region) {
            Some(region)
        } else {
            self.diags.push(
                Diagnostic::new(Code::RegionInvalid, format!("`{region}` is not an AWS region name"), Some(r.pos()))
                    .help("a region looks like us-east-1, eu-west-1 or ap-southeast-2"),
            );
            None
        }
    }

    /// A job's `schedule:`, cron's five fields in UTC: None (with a
    /// diagnostic at its position) when it cannot be read.
    pub(crate) fn schedule(&mut self, s: &Sp<String>) -> Option<super::schedule::Schedule> {
        match super::schedule::Schedule::parse(s.value()) {
            Ok(sch) => Some(sch),
            Err(e) => {
                self.diags.push(
                    Diagnostic::new(Code::ScheduleInvalid, format!("`{}`: {e}", s.value()), Some(s.pos())).help(
                        "write cron's five fields, in UTC: `0 2 * * *` is daily at 02:00, `0 */6 * * *` every 6 hours",
                    ),
                );
                None
            }
        }
    }

    /// Each entry a scheduled job writes names the schedule; one without
    /// `max_age` takes the schedule's longest gap and a twelfth of it (at
    /// least 10 minutes, the margin of the dead-man alert). An entry with
    /// neither is an error at its name.
    fn entries_timed(&mut self, buckets: &mut [BucketSpec], timing: &[(BackupRef, super::schedule::Schedule)]) {
        for (to, sch) in timing {
            let entry = buckets
                .iter_mut()
                .find(|b| b.name == to.bucket)
                .and_then(|b| b.backups.iter_mut().find(|e| e.name == to.entry));
            if let Some(e) = entry {
                e.schedule = Some(sch.text.clone());
                if e.max_age_secs == 0 {
                    e.max_age_secs = sch.allowance_secs();
                }
            }
        }
        for (bucket, entry, pos) in std::mem::take(&mut self.untimed) {
            let timed = timing.iter().any(|(to, _)| to.bucket == bucket && to.entry == entry);
            if !timed {
                self.diags.push(
                    Diagnostic::new(
                        Code::MissingField,
                        format!("backups entry `{entry}` of {bucket} has no `max_age`, and no job with a `schedule:` writes it"),
                        Some(pos),
                    )
                    .help("write `max_age: 26h` (how old its newest backup may be), or a `schedule:` on the job whose `to:` names it"),
                );
            }
        }
    }

    /// A job's schedule, checked against the evidence of the entry it
    /// writes (`to`).
    pub(crate) fn job_schedule(
        &mut self,
        s: Option<&Sp<String>>,
        to: Option<&BackupRef>,
        buckets: &[BucketSpec],
    ) -> Option<super::schedule::Schedule> {
        let s = s?;
        let sch = self.schedule(s)?;
        if let Some(to) = to {
            let entry = buckets
                .iter()
                .find(|b| b.name == to.bucket)
                .and_then(|b| b.backups.iter().find(|e| e.name == to.entry));
            let name = format!("s3.{}.backups.{}", to.bucket, to.entry);
            self.schedule_meets(&sch, s.pos(), (&name, "a max_age"), entry.map(|e| e.max_age_secs));
        }
        Some(sch)
    }

    /// A job that runs every `interval` writes `to`, whose evidence must be
    /// at most `max_age` old: a max_age shorter than the interval fails
    /// between two runs that both went well.
    pub(crate) fn schedule_meets(
        &mut self,
        sch: &super::schedule::Schedule,
        at: Pos,
        (to, key): (&str, &str),
        max_age_secs: Option<u64>,
    ) {
        // 0: not written, it comes from this schedule.
        let Some(max_age) = max_age_secs.filter(|m| *m > 0 && *m < sch.interval_secs) else { return };
        let human = |s: u64| crate::model::time::human(s);
        self.warnings.push(
            Diagnostic::warning(
                Code::ScheduleOutrunsEvidence,
                format!(
                    "`{}` runs as rarely as every {}, but {to} must be at most {} old: the audit fails between two good runs",
                    sch.text,
                    human(sch.interval_secs),
                    human(max_age)
                ),
                Some(at),
            )
            .help(format!("run it more often, or give {to} {key} of at least {} (the interval and a margin)", human(sch.allowance_secs()))),
        );
    }

    /// A drill's `every` and `schedule:`: how recent its last passing run
    /// must be — as written, else the schedule's gap and margin, else 30
    /// days — and when it runs. None for `every`: it could not be read.
    pub(crate) fn drill_every(
        &mut self,
        every: Option<&Sp<String>>,
        schedule: Option<&Sp<String>>,
        drill: &str,
    ) -> (Option<u64>, Option<super::schedule::Schedule>) {
        let sch = schedule.and_then(|s| self.schedule(s).map(|sch| (sch, s.pos())));
        let every = match (every, &sch) {
            (Some(e), _) => self.duration(e, "every"),
            (None, Some((sch, _))) => Some(sch.allowance_secs()),
            (None, None) => Some(30 * 86400),
        };
        if let (Some((sch, at)), Some(e)) = (&sch, every) {
            self.schedule_meets(sch, *at, (drill, "an `every`"), Some(e));
        }
        (every, sch.map(|(sch, _)| sch))
    }

    pub(crate) fn duration(&mut self, d: &Sp<String>, what: &str) -> Option<u64> {
        match parse_duration(d.value()) {
            Some(0) | None => {
                self.diags.push(
                    Diagnostic::new(
                        Code::DurationInvalid,
                        format!("`{}` is not a duration for {what}", d.value()),
                        Some(d.pos()),
                    )
                    .help("write a positive number with a unit: 30s, 15m, 5min, 6h, 1d"),
                );
                None
            }
            Some(s) => Some(s),
        }
    }

    /// A count of parallel workers, 1 to 64: None (with a diagnostic at
    /// its position) outside, Some(None) when not given.
    pub(crate) fn parallel(&mut self, n: Option<&Sp<u32>>, name: &str, help: &str) -> Option<Option<u32>> {
        match n {
            Some(n) if !(1..=64).contains(n.value()) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::ValueOutOfRange,
                        format!("{name} {} is not between 1 and 64", n.value()),
                        Some(n.pos()),
                    )
                    .help(help.to_string()),
                );
                None
            }
            n => Some(n.map(|n| *n.value())),
        }
    }

    pub(crate) fn url(&mut self, u: &Sp<String>, schemes: &[&str]) -> Option<Secret> {
        let url = self.expand(u)?;
        let ok = schemes.iter().any(|s| url.starts_with(&format!("{s}://")));
        if !ok {
            // Never quote the value: it may hold a password.
            self.diags.push(
                Diagnostic::new(
                    Code::UrlInvalid,
                    format!(
                        "the URL must start with {}",
                        schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ")
                    ),
                    Some(u.pos()),
                )
                .help("write the URL in an environment variable and refer to it as ${VAR}"),
            );
            return None;
        }
        Some(Secret::new(url))
    }

    /// `s3.BUCKET.backups.ENTRY`: a `backups:` entry the policy declares
    /// (bucket names may hold dots: the last `.backups.` splits).
    pub(crate) fn backup_ref(&mut self, r: &Sp<String>, buckets: &[BucketSpec]) -> Option<BackupRef> {
        let text = r.value();
        let found = text.strip_prefix("s3.").and_then(|rest| rest.rsplit_once(".backups.")).and_then(|(b, e)| {
            let bucket = buckets.iter().find(|x| x.name == b)?;
            let entry = bucket.backups.iter().find(|x| x.name == e)?;
            Some(BackupRef {
                bucket: bucket.name.clone(),
                entry: entry.name.clone(),
                prefix: entry.prefix.clone(),
                key_format: entry.key_format.clone(),
                region: bucket.region.clone(),
                encryption: bucket.encryption.clone(),
                object_lock_days: bucket.object_lock.as_ref().map(|l| l.days),
            })
        });
        if found.is_none() {
            let known: Vec<String> = buckets
                .iter()
                .flat_map(|b| b.backups.iter().map(move |e| format!("s3.{}.backups.{}", b.name, e.name)))
                .collect();
            self.diags.push(
                Diagnostic::new(
                    Code::BackupRefInvalid,
                    format!("`{text}` is not a backups entry of this policy"),
                    Some(r.pos()),
                )
                .help(if known.is_empty() {
                    "declare the entry under s3.buckets.BUCKET.backups and name it s3.BUCKET.backups.ENTRY".to_string()
                } else {
                    format!("one of: {}", known.join(", "))
                }),
            );
        }
        found
    }

    /// `encrypt_to:`: age recipients (X25519 `age1…` or SSH public keys),
    /// each parsed as the `age` crate parses it.
    pub(crate) fn recipients(&mut self, list: Option<&Sp<Vec<Sp<String>>>>) -> Vec<String> {
        let mut out = Vec::new();
        for r in list.iter().flat_map(|l| l.value().iter()) {
            let Some(v) = self.expand(r) else { continue };
            let v = v.trim().to_string();
            use std::str::FromStr;
            let ok = age::x25519::Recipient::from_str(&v).is_ok() || age::ssh::Recipient::from_str(&v).is_ok();
            if !ok {
                self.diags.push(
                    Diagnostic::new(Code::InvalidValue, format!("`{v}` is not an age recipient"), Some(r.pos()))
                        .help("write an age recipient (age1…, as age-keygen prints it) or an SSH public key (ssh-ed25519 AAAA…)"),
                );
            } else if !out.contains(&v) {
                out.push(v);
            }
        }
        if let Some(l) = list.filter(|l| l.value().is_empty()) {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, "`encrypt_to` names no recipient", Some(l.pos()))
                    .help("name at least one recipient, or leave `encrypt_to` out"),
            );
        }
        out
    }

    fn waiver(&mut self, w: &Sp<raw::RawWaiver>) -> Option<super::Waiver> {
        let wv = w.value();
        let before = self.diags.len();
        if let Some(ids) = self.controls.filter(|ids| !ids.contains(&wv.control.value().as_str())) {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`{}` is not a control id", wv.control.value()),
                    Some(wv.control.pos()),
                )
                .help(format!("one of {}", ids.join(", "))),
            );
        }
        let d = wv.expires.value();
        let b = d.as_bytes();
        let valid_date = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && d.chars().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
            && (1..=12).contains(&d[5..7].parse::<u32>().unwrap_or(0))
            && (1..=31).contains(&d[8..10].parse::<u32>().unwrap_or(0));
        if !valid_date {
            self.diags.push(
                Diagnostic::new(Code::InvalidValue, format!("expires `{d}` is not a date"), Some(wv.expires.pos()))
                    .help("write expires: \"2027-01-31\" (YYYY-MM-DD)"),
            );
        }
        for (what, v) in [("owner", &wv.owner), ("reason", &wv.reason), ("address", &wv.address)] {
            if v.value().trim().is_empty() {
                self.diags.push(
                    Diagnostic::new(Code::MissingField, format!("the waiver's {what} is empty"), Some(v.pos()))
                        .help("auditors need to know who accepted what and why"),
                );
            }
        }
        (self.diags.len() == before).then(|| super::Waiver {
            control: wv.control.value().clone(),
            address: wv.address.value().clone(),
            owner: wv.owner.value().clone(),
            reason: wv.reason.value().clone(),
            expires: d.clone(),
        })
    }
}

/// `us-east-1`, `us-gov-west-1`, `ap-southeast-2`, `eu-central-2`…
pub fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts.last().is_some_and(|n| (1..=2).contains(&n.len()) && n.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_of_a_file_is_reported_not_only_the_first() {
        let text = "version: 1\ns3:\n  buckets:\n    b1:\n      versoning: enabled\n      encryption:\n        algorithm: AES257\n    b2:\n      versioning: sometimes\n";
        let d = parse_and_validate("p.yaml", text.as_bytes().to_vec(), &|_| None, None).expect_err("invalid");
        let got: Vec<(Code, u64)> = d.items.iter().map(|i| (i.code, i.pos.map_or(0, |p| p.line))).collect();
        assert_eq!(got, [(Code::UnknownField, 5), (Code::InvalidValue, 7), (Code::InvalidValue, 9)], "{:?}", d.items);
        assert!(d.items[0].message.contains("versoning"), "{:?}", d.items[0]);
        assert!(d.items[1].message.contains("AES257"), "{:?}", d.items[1]);
        // A syntax error ends the search; a field missing only because its
        // line was blanked is not reported.
        let broken = "version: 1\ns3:\n  buckets:\n    b1: [\n";
        let d = parse_and_validate("p.yaml", broken.as_bytes().to_vec(), &|_| None, None).expect_err("invalid");
        assert_eq!(d.items.len(), 1, "{:?}", d.items);
        let required = "version: 1\nbogus: 1\n";
        let d = parse_and_validate("p.yaml", required.as_bytes().to_vec(), &|_| None, None).expect_err("invalid");
        assert_eq!(d.items.len(), 1, "{:?}", d.items);
    }

    #[test]
    fn regions_are_recognised() {
        for ok in ["us-east-1", "eu-west-1", "us-gov-west-1", "ap-southeast-2", "il-central-1"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["us-east", "useast1", "US-EAST-1", "us-east-1a", "", "u-east-1"] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Policy, Diagnostics> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        parse_and_validate("p.yaml", text.as_bytes().to_vec(), &lookup, None)
    }

    #[test]
    fn max_age_comes_from_the_schedule_of_the_job_that_writes_the_entry() {
        let text = "version: 1\ns3:\n  buckets:\n    bkt:\n      backups:\n        - {name: dump, prefix: postgres/}\n        - {name: other, prefix: other/}\npostgres:\n  p:\n    url: postgres://h/db\n    backup: {to: s3.bkt.backups.dump, schedule: \"0 */6 * * *\"}\n";
        let d = load(text, &[]).expect_err("`other` has neither");
        let msgs: Vec<String> = d.items.iter().map(|i| i.message.clone()).collect();
        assert_eq!(msgs, ["backups entry `other` of bkt has no `max_age`, and no job with a `schedule:` writes it"]);
        assert_eq!(d.items[0].pos.map(|p| p.line), Some(7));
        let p = load(&text.replace("{name: other, prefix: other/}", "{name: other, prefix: other/, max_age: 2h}"), &[])
            .expect("valid");
        let dump = &p.buckets[0].backups[0];
        // Six hours and the margin (half an hour: a twelfth).
        assert_eq!((dump.max_age_secs, dump.schedule.as_deref()), (6 * 3600 + 1800, Some("0 */6 * * *")));
        assert_eq!(p.buckets[0].backups[1].max_age_secs, 7200);
    }

    #[test]
    fn env_expansion_and_escape() {
        let p = load("version: 1\naws:\n  region: ${R}\ns3:\n  buckets:\n    b-${E}:\n      encryption: {algorithm: aws:kms, kms_key: \"alias/$${x}\"}\n", &[("R", "eu-west-1"), ("E", "prod")]);
        let err = p.expect_err("alias/${x} is not a valid key");
        assert_eq!(err.items.len(), 1);
        assert!(err.items[0].message.contains("`alias/${x}`"), "{}", err.items[0].message);
        let p = load(
            "version: 1\naws:\n  region: ${R}\ns3:\n  buckets:\n    b-${E}: {}\n",
            &[("R", "eu-west-1"), ("E", "prod")],
        )
        .expect("valid");
        assert_eq!(p.default_region.as_deref(), Some("eu-west-1"));
        assert_eq!(p.buckets[0].name, "b-prod");
    }

    #[test]
    fn glacier_must_come_thirty_days_after_standard_ia() {
        let policy = |glacier: i64| {
            format!("version: 1\naws: {{region: us-east-1}}\ns3:\n  buckets:\n    tiers:\n      lifecycle:\n        rules:\n          - id: t\n            transitions:\n              - {{days: 30, storage_class: STANDARD_IA}}\n              - {{days: {glacier}, storage_class: GLACIER}}\n")
        };
        let err = load(&policy(45), &[]).expect_err("a 15-day gap");
        assert_eq!(err.items.len(), 1);
        assert_eq!(err.items[0].code.as_str(), "transition-too-early");
        assert!(
            err.items[0].message.contains("GLACIER at 45 days comes 15 days after STANDARD_IA at 30"),
            "{}",
            err.items[0].message
        );
        assert_eq!(err.items[0].help.as_deref(), Some("write `days: 60` or more"));
        assert!(load(&policy(60), &[]).is_ok());
    }

    #[test]
    fn every_problem_is_reported_in_one_run() {
        let err =
            load("version: 3\naws: {region: x}\ns3:\n  buckets:\n    A: {encryption: {algorithm: aws:kms}}\n", &[])
                .expect_err("invalid");
        let codes: Vec<_> = err.items.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["unsupported-version", "region-invalid", "bucket-name-invalid", "kms-key-required"]);
    }

    #[test]
    fn unknown_field_suggests_the_near_name() {
        let h = suggestion("unknown field `versionin`, expected one of region, versioning, encryption", "x");
        assert_eq!(h, "did you mean `versioning`?");
        assert_eq!(suggestion("unknown field `zzzzzz`, expected one of region", "fallback"), "fallback");
    }
}
