//! Diagnostics for bad input: every problem a user can cause in a policy file
//! becomes one `Diagnostic` with a stable code, a message, a label at
//! file:line:col and help text. Loading collects all of them before failing.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, SourceSpan};

/// Every diagnostic code the policy loader can emit. Codes are part of the
/// user contract (people grep and suppress by them): a test pins the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    AccessLocksOut,
    BackupRefInvalid,
    BucketKeyNotAllowed,
    BucketNameInvalid,
    ConfidentialUnprotected,
    DestinationInvalid,
    DocumentTooLarge,
    DuplicateKey,
    DuplicatePriority,
    DuplicateRuleId,
    DuplicateSid,
    DurationInvalid,
    EnvVarInvalid,
    EnvVarMissing,
    ExpirationBeforeTransition,
    FileUnreadable,
    IamDocumentInvalid,
    IamNameInvalid,
    InvalidType,
    InvalidValue,
    KmsAliasInResource,
    KmsKeyNotAllowed,
    KmsKeyRegion,
    KmsKeyRequired,
    LockOutlastsLifecycle,
    MissingField,
    NoncurrentVersionsKept,
    NotUtf8,
    ObjectActionOnBucket,
    ObjectLockNeedsVersioning,
    PolicyRefInvalid,
    RegionInvalid,
    ReplicaKmsKeyRequired,
    ReplicationNeedsVersioning,
    ReplicationRoleUnused,
    RepositoryUnsafe,
    RoleInvalid,
    RuleDoesNothing,
    RuleIdInvalid,
    ScheduleInvalid,
    ScheduleOutrunsEvidence,
    TooManyRules,
    TransitionOrder,
    TransitionTooEarly,
    UnknownField,
    UnsupportedVersion,
    UrlInvalid,
    ValueOutOfRange,
    WriterInOtherAccount,
    YamlSyntax,
}

impl Code {
    /// Every code, in the order of their names.
    pub const ALL: &[Code] = &[
        Code::AccessLocksOut,
        Code::BackupRefInvalid,
        Code::BucketKeyNotAllowed,
        Code::BucketNameInvalid,
        Code::ConfidentialUnprotected,
        Code::DestinationInvalid,
        Code::DocumentTooLarge,
        Code::DuplicateKey,
        Code::DuplicatePriority,
        Code::DuplicateRuleId,
        Code::DuplicateSid,
        Code::DurationInvalid,
        Code::EnvVarInvalid,
        Code::EnvVarMissing,
        Code::ExpirationBeforeTransition,
        Code::FileUnreadable,
        Code::IamDocumentInvalid,
        Code::IamNameInvalid,
        Code::InvalidType,
        Code::InvalidValue,
        Code::KmsAliasInResource,
        Code::KmsKeyNotAllowed,
        Code::KmsKeyRegion,
        Code::KmsKeyRequired,
        Code::LockOutlastsLifecycle,
        Code::MissingField,
        Code::NoncurrentVersionsKept,
        Code::NotUtf8,
        Code::ObjectActionOnBucket,
        Code::ObjectLockNeedsVersioning,
        Code::PolicyRefInvalid,
        Code::RegionInvalid,
        Code::ReplicaKmsKeyRequired,
        Code::ReplicationNeedsVersioning,
        Code::ReplicationRoleUnused,
        Code::RepositoryUnsafe,
        Code::RoleInvalid,
        Code::RuleDoesNothing,
        Code::RuleIdInvalid,
        Code::ScheduleInvalid,
        Code::ScheduleOutrunsEvidence,
        Code::TooManyRules,
        Code::TransitionOrder,
        Code::TransitionTooEarly,
        Code::UnknownField,
        Code::UnsupportedVersion,
        Code::UrlInvalid,
        Code::ValueOutOfRange,
        Code::WriterInOtherAccount,
        Code::YamlSyntax,
    ];

    /// The stable kebab-case name users see.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::AccessLocksOut => "access-locks-out",
            Code::BackupRefInvalid => "backup-ref-invalid",
            Code::BucketKeyNotAllowed => "bucket-key-not-allowed",
            Code::BucketNameInvalid => "bucket-name-invalid",
            Code::ConfidentialUnprotected => "confidential-unprotected",
            Code::DestinationInvalid => "destination-invalid",
            Code::DocumentTooLarge => "document-too-large",
            Code::DuplicateKey => "duplicate-key",
            Code::DuplicatePriority => "duplicate-priority",
            Code::DuplicateRuleId => "duplicate-rule-id",
            Code::DuplicateSid => "duplicate-sid",
            Code::DurationInvalid => "duration-invalid",
            Code::EnvVarInvalid => "env-var-invalid",
            Code::EnvVarMissing => "env-var-missing",
            Code::ExpirationBeforeTransition => "expiration-before-transition",
            Code::FileUnreadable => "file-unreadable",
            Code::IamDocumentInvalid => "iam-document-invalid",
            Code::IamNameInvalid => "iam-name-invalid",
            Code::InvalidType => "invalid-type",
            Code::InvalidValue => "invalid-value",
            Code::KmsKeyNotAllowed => "kms-key-not-allowed",
            Code::KmsKeyRegion => "kms-key-region",
            Code::KmsAliasInResource => "kms-alias-in-resource",
            Code::KmsKeyRequired => "kms-key-required",
            Code::LockOutlastsLifecycle => "lock-outlasts-lifecycle",
            Code::MissingField => "missing-field",
            Code::NoncurrentVersionsKept => "noncurrent-versions-kept",
            Code::NotUtf8 => "not-utf8",
            Code::ObjectActionOnBucket => "object-action-on-bucket",
            Code::ObjectLockNeedsVersioning => "object-lock-needs-versioning",
            Code::PolicyRefInvalid => "policy-ref-invalid",
            Code::RegionInvalid => "region-invalid",
            Code::ReplicaKmsKeyRequired => "replica-kms-key-required",
            Code::RepositoryUnsafe => "repository-unsafe",
            Code::ReplicationNeedsVersioning => "replication-needs-versioning",
            Code::ReplicationRoleUnused => "replication-role-unused",
            Code::RoleInvalid => "role-invalid",
            Code::RuleDoesNothing => "rule-does-nothing",
            Code::RuleIdInvalid => "rule-id-invalid",
            Code::ScheduleInvalid => "schedule-invalid",
            Code::ScheduleOutrunsEvidence => "schedule-outruns-evidence",
            Code::TooManyRules => "too-many-rules",
            Code::TransitionOrder => "transition-order",
            Code::WriterInOtherAccount => "writer-in-other-account",
            Code::TransitionTooEarly => "transition-too-early",
            Code::UnknownField => "unknown-field",
            Code::UnsupportedVersion => "unsupported-version",
            Code::UrlInvalid => "url-invalid",
            Code::ValueOutOfRange => "value-out-of-range",
            Code::YamlSyntax => "yaml-syntax",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A position in the policy file: 1-based line and column plus the byte
/// range miette needs to draw the snippet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
    pub offset: usize,
    pub len: usize,
}

impl Pos {
    pub fn from_location(loc: &serde_saphyr::Location) -> Self {
        let span = loc.span();
        Pos {
            line: loc.line(),
            column: loc.column(),
            offset: span.byte_offset().unwrap_or(span.offset()) as usize,
            len: span.byte_len().unwrap_or(span.len()) as usize,
        }
    }
}

/// One problem in the input.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub pos: Option<Pos>,
    pub label: String,
    pub help: Option<String>,
    /// A warning: shown, but the policy loads (e.g. a statement that
    /// grants nothing); exit codes are unchanged.
    pub warning: bool,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>, pos: Option<Pos>) -> Self {
        let message = message.into();
        Diagnostic { code, label: String::new(), message, pos, help: None, warning: false }
    }

    /// A problem that does not stop the policy from loading.
    pub fn warning(code: Code, message: impl Into<String>, pos: Option<Pos>) -> Self {
        Diagnostic { warning: true, ..Diagnostic::new(code, message, pos) }
    }

    fn level(&self) -> &'static str {
        if self.warning {
            "warning"
        } else {
            "error"
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// All diagnostics of one file, rendered together.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: String,
    pub source: Arc<String>,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Render with miette's graphical handler (colour if `color`), each
    /// diagnostic headed by `file:line:col` so editors and CI logs can jump to it.
    pub fn render(&self, color: bool) -> String {
        self.render_for(color, false)
    }

    /// As `render`; on a terminal (`tty`) each diagnostic is said once, in
    /// its box (which names file:line:col and the code), without the
    /// one-line head that logs and editors read.
    pub fn render_for(&self, color: bool, tty: bool) -> String {
        const MAX_SNIPPET_LINE: usize = 400;
        let theme = if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
        let source = Arc::new(mask_secrets(&self.source));
        let mut out = String::new();
        for d in &self.items {
            let head = match d.pos {
                Some(p) => format!("{}:{}:{}", self.file, p.line, p.column),
                None => self.file.clone(),
            };
            // A snippet of a huge line would bury the message: show the
            // message and help alone.
            let line_len =
                d.pos.and_then(|p| source.lines().nth(p.line.saturating_sub(1) as usize)).map_or(0, str::len);
            if !tty || line_len > MAX_SNIPPET_LINE || d.pos.is_none() {
                out.push_str(&format!("{head}: {}[{}]: {}\n", d.level(), d.code, d.message));
            }
            if line_len > MAX_SNIPPET_LINE {
                out.push_str(&format!(
                    "  × {}\n  (line {} is {line_len} characters long: not shown)\n",
                    d.message,
                    d.pos.map_or(0, |p| p.line)
                ));
                if let Some(h) = &d.help {
                    out.push_str(&format!("  help: {h}\n"));
                }
            } else {
                let report = Rendered { diag: d, file: &self.file, source: &source };
                let _ = handler.render_report(&mut out, &report);
            }
            out.push('\n');
        }
        let errors = self.items.iter().filter(|d| !d.warning).count();
        let warnings = self.items.len() - errors;
        let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let summary = match (errors, warnings) {
            (0, w) => count(w, "warning"),
            (e, 0) => format!("{} found", count(e, "error")),
            (e, w) => format!("{} found, and {}", count(e, "error"), count(w, "warning")),
        };
        out.push_str(&format!("{}: {summary}\n", self.file));
        out
    }

    /// The warnings as `plan`, `audit` and `apply` show them, so a policy
    /// of a thousand buckets does not bury the run: each code once, with
    /// its first message, how many times it occurs and the first few
    /// places; `validate` shows every one.
    pub fn summary(&self) -> String {
        const PLACES: usize = 3;
        let place = |d: &Diagnostic| match d.pos {
            Some(p) => format!("{}:{}:{}", self.file, p.line, p.column),
            None => self.file.clone(),
        };
        let mut codes: Vec<Code> = Vec::new();
        for d in &self.items {
            if !codes.contains(&d.code) {
                codes.push(d.code);
            }
        }
        let mut out = String::new();
        for code in codes {
            let all: Vec<&Diagnostic> = self.items.iter().filter(|d| d.code == code).collect();
            let first = all[0];
            out.push_str(&format!("{}: {}[{code}]: {}\n", place(first), first.level(), first.message));
            if all.len() > 1 {
                let more: Vec<String> = all.iter().skip(1).take(PLACES).map(|d| place(d)).collect();
                let rest = all.len() - 1 - more.len();
                let rest = if rest > 0 { format!(" and {rest} more") } else { String::new() };
                out.push_str(&format!("  … {} more like it: {}{rest}\n", all.len() - 1, more.join(", ")));
            }
            if let Some(h) = &first.help {
                out.push_str(&format!("  help: {h}\n"));
            }
        }
        let n = self.items.len();
        out.push_str(&format!(
            "{}: {n} warning{} (`suoops-policy validate -f {}` shows each)\n",
            self.file,
            if n == 1 { "" } else { "s" },
            self.file
        ));
        out
    }

    /// Machine-readable form for `validate --format json`.
    pub fn to_json(&self) -> serde_json::Value {
        let items: Vec<_> = self
            .items
            .iter()
            .map(|d| {
                serde_json::json!({
                    "level": d.level(),
                    "code": d.code,
                    "message": d.message,
                    "file": self.file,
                    "line": d.pos.map(|p| p.line),
                    "column": d.pos.map(|p| p.column),
                    "help": d.help,
                })
            })
            .collect();
        serde_json::json!({ "format_version": "1", "valid": false, "diagnostics": items })
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostics {}

/// The file's text with credentials in URLs (`scheme://user:PASSWORD@…`)
/// replaced by `*`, byte for byte, so snippets never show a password and
/// every span still points at the same place.
pub fn mask_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while let Some(i) = rest.find("://") {
            let (head, tail) = rest.split_at(i + 3);
            out.push_str(head);
            let end = tail.find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '/').unwrap_or(tail.len());
            let authority = &tail[..end];
            match authority.rfind('@') {
                Some(at) => {
                    let userinfo = &authority[..at];
                    match userinfo.find(':') {
                        Some(colon) => {
                            out.push_str(&userinfo[..=colon]);
                            out.push_str(&"*".repeat(userinfo.len() - colon - 1));
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push_str(&authority[at..]);
                }
                None => out.push_str(authority),
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
    }
    out
}

/// Adapter so miette can draw one diagnostic against the file's text.
struct Rendered<'a> {
    diag: &'a Diagnostic,
    file: &'a str,
    source: &'a Arc<String>,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(if self.diag.warning { miette::Severity::Warning } else { miette::Severity::Error })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.help.as_ref().map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.diag.pos.map(|_| self as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let p = self.diag.pos?;
        let max = self.source.len();
        let start = p.offset.min(max);
        let len = p.len.max(1).min(max.saturating_sub(start));
        let span = SourceSpan::new(start.into(), len);
        let label = (!self.diag.label.is_empty()).then(|| self.diag.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(label, span))))
    }
}

impl miette::SourceCode for Rendered<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let inner = self.source.as_str().read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.file.to_string(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::mask_secrets;

    #[test]
    fn passwords_in_urls_are_masked_keeping_offsets() {
        let text =
            "url: \"redis://default:hunter2@host:6379/0\"\nother: postgres://u:p%40ss@db/x\nplain: http://host/x\n";
        let masked = mask_secrets(text);
        assert_eq!(masked.len(), text.len());
        assert!(!masked.contains("hunter2") && !masked.contains("p%40ss"), "{masked}");
        assert!(masked.contains("redis://default:*******@host:6379/0"), "{masked}");
        assert!(masked.contains("plain: http://host/x"));
    }

    #[test]
    fn on_a_terminal_each_diagnostic_is_said_once() {
        use super::{Code, Diagnostic, Diagnostics, Pos};
        let d = Diagnostics {
            file: "p.yaml".into(),
            source: std::sync::Arc::new("version: 1\nbogus: 2\n".into()),
            items: vec![Diagnostic::new(
                Code::UnknownField,
                "unknown field `bogus`",
                Some(Pos { line: 2, column: 1, offset: 11, len: 5 }),
            )],
        };
        let tty = d.render_for(false, true);
        assert_eq!(tty.matches("unknown field `bogus`").count(), 1, "{tty}");
        assert!(tty.contains("p.yaml:2:1"), "the box names the place: {tty}");
        let log = d.render_for(false, false);
        assert!(log.starts_with("p.yaml:2:1: error[unknown-field]: unknown field `bogus`"), "{log}");
    }
}
