//! A small block-YAML writer of the policy format, for `import` (each
//! provider writes its own entries with it): the policy it writes is read by
//! people first, so it is laid out by hand (keys in a fixed order, comments
//! beside values) rather than by a serializer. Scalars are quoted whenever a
//! YAML parser could read them as anything but the string they are.

use serde_json::Value;

/// YAML text under construction, with the comments that explain it.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

/// Longest flow sequence (`[a, b]`) written on one line.
const FLOW_WIDTH: usize = 72;

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn finish(self) -> String {
        self.out
    }

    /// A comment line; long text is wrapped at about 79 columns.
    pub fn comment(&mut self, indent: usize, text: &str) {
        let pad = " ".repeat(indent);
        let width = 74usize.saturating_sub(indent + 2).max(30);
        for para in text.lines() {
            let mut line = String::new();
            for word in para.split_whitespace() {
                if !line.is_empty() && line.len() + 1 + word.len() > width {
                    self.out.push_str(&format!("{pad}# {line}\n"));
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            if line.is_empty() {
                self.out.push_str(&format!("{pad}#\n"));
            } else {
                self.out.push_str(&format!("{pad}# {line}\n"));
            }
        }
    }

    /// `key:` opening a nested block.
    /// A setting that could not be read: said in a comment, and counted
    /// (`gaps`) so the import reports itself incomplete; never written as
    /// if it were absent.
    pub fn unreadable(&mut self, indent: usize, gaps: &mut Vec<String>, address: &str, setting: &str, reason: &str) {
        self.comment(indent, &format!("{setting}: could not be read ({reason}); left unmanaged"));
        gaps.push(format!("{address} {setting}: {reason}"));
    }

    pub fn open(&mut self, indent: usize, key: &str) {
        self.out.push_str(&format!("{}{}:\n", " ".repeat(indent), scalar(key)));
    }

    /// `key: value`, the value written as given (already YAML), with an
    /// optional trailing comment.
    pub fn raw(&mut self, indent: usize, key: &str, value: &str, note: Option<&str>) {
        let mut line = format!("{}{}: {value}", " ".repeat(indent), scalar(key));
        if let Some(n) = note {
            let width = line.chars().count();
            line.push_str(&" ".repeat(36usize.saturating_sub(width).max(2)));
            line.push_str("# ");
            line.push_str(n);
        }
        line.push('\n');
        self.out.push_str(&line);
    }

    /// `key: value` for any JSON value, nested blocks for objects and lists.
    pub fn value(&mut self, indent: usize, key: &str, v: &Value, note: Option<&str>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                self.open(indent, key);
                for (k, x) in m {
                    self.value(indent + 2, k, x, None);
                }
            }
            Value::Array(items) if !items.is_empty() => match flow(items) {
                Some(f) => self.raw(indent, key, &f, note),
                None => {
                    self.open(indent, key);
                    for item in items {
                        self.item(indent + 2, item);
                    }
                }
            },
            other => self.raw(indent, key, &inline(other), note),
        }
    }

    /// One `- item` of a block sequence; a mapping starts on the dash line.
    pub fn item(&mut self, indent: usize, v: &Value) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(m) if !m.is_empty() && flow_map(m).is_some() => {
                self.out.push_str(&format!("{pad}- {}\n", flow_map(m).unwrap_or_default()));
            }
            Value::Object(m) if !m.is_empty() => {
                let mut first = true;
                for (k, x) in m {
                    if first {
                        // Written at indent+2, then the first two spaces become "- ".
                        let start = self.out.len();
                        self.value(indent + 2, k, x, None);
                        self.out.replace_range(start..start + indent + 2, &format!("{pad}- "));
                        first = false;
                    } else {
                        self.value(indent + 2, k, x, None);
                    }
                }
            }
            Value::Array(items) if !items.is_empty() => {
                self.out.push_str(&format!("{pad}- {}\n", flow(items).unwrap_or_else(|| inline_json(v))));
            }
            other => self.out.push_str(&format!("{pad}- {}\n", inline(other))),
        }
    }
}

/// A short list of scalars as `[a, b]`; None when it would not fit or
/// holds something other than scalars.
fn flow(items: &[Value]) -> Option<String> {
    if items.iter().any(|i| i.is_object() || i.is_array()) {
        return None;
    }
    let text = format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", "));
    (text.len() <= FLOW_WIDTH).then_some(text)
}

/// A small mapping of scalars as `{k: v, k2: v2}` (list items such as
/// transitions); None when it would not fit, nests, or holds a `:` that a
/// flow context could misread. Records with an `id` (rules) stay blocks.
fn flow_map(m: &serde_json::Map<String, Value>) -> Option<String> {
    let simple = |s: &str| !s.contains(':');
    if m.contains_key("id") {
        return None;
    }
    if m.iter().any(|(k, v)| !simple(k) || v.is_object() || v.is_array() || v.as_str().is_some_and(|s| !simple(s))) {
        return None;
    }
    let text = format!(
        "{{{}}}",
        m.iter().map(|(k, v)| format!("{}: {}", scalar(k), inline(v))).collect::<Vec<_>>().join(", ")
    );
    (text.len() <= FLOW_WIDTH).then_some(text)
}

/// A value on one line: scalars, `{}` and `[]`.
fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => inline_json(other),
    }
}

/// JSON is YAML: the fallback for nested values on one line.
fn inline_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A string as a YAML scalar: plain when no parser can mistake it for
/// anything else (a number, a boolean, null, a date, an alias…), else
/// double-quoted with JSON's escapes, which YAML shares.
pub fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    }
}

fn plain_ok(s: &str) -> bool {
    const WORDS: &[&str] =
        &["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "nan", ".nan", ".inf", "-.inf", "+.inf"];
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
        return false;
    }
    if WORDS.contains(&s.to_ascii_lowercase().as_str()) || s.ends_with(':') {
        return false;
    }
    s.chars().all(|c| c.is_ascii_alphanumeric() || "_./:*@+=-".contains(c))
}

/// `${` in a value the policy expands (names, prefixes, URLs, commands)
/// must be written `$${` to stay literal.
pub fn literal_env(s: &str) -> String {
    s.replace("${", "$${")
}

/// Seconds as the shortest duration the policy reads back exactly:
/// `1d`, `6h`, `5min`, `30s`.
pub fn duration(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_that_a_parser_could_misread_are_quoted() {
        for s in ["on", "Off", "yes", "null", "~", "2012-10-17", "123", "0x1F", "", " x", "a: b", "*", "&a", "!x", "x:"]
        {
            assert!(scalar(s).starts_with('"'), "{s} must be quoted");
        }
        for s in ["enabled", "us-east-1", "s3:PutObject", "arn:aws:s3:::b/*", "alias/key", "postgres/", "STANDARD_IA"] {
            assert_eq!(scalar(s), s);
        }
        assert_eq!(scalar("say \"hi\"\n"), r#""say \"hi\"\n""#);
    }

    use proptest::prelude::*;

    /// Parse YAML the way the policy loader does, into JSON.
    fn parse(text: &str) -> Value {
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            any::<String>().prop_map(Value::String),
            "[a-z:*/ .@${}\\[\\],#'\"-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[A-Za-z:_ -]{1,10}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever a string holds, the scalar written for it reads back as
        /// that string, as a value and as a key.
        #[test]
        fn any_string_reads_back_as_itself(s in any::<String>()) {
            let doc = parse(&format!("{}: {}\n", scalar(&s), scalar(&s)));
            prop_assert_eq!(doc, json!({ s.clone(): s }));
        }

        /// Nested documents (IAM policies, tags) read back equal.
        #[test]
        fn any_document_reads_back_equal(v in json_value()) {
            let mut w = Writer::new();
            w.value(0, "doc", &v, Some("a note"));
            let text = w.finish();
            prop_assert_eq!(parse(&text), json!({"doc": v}), "{}", text);
        }
    }

    #[test]
    fn durations_read_back_exactly() {
        for s in [1, 59, 60, 300, 900, 3_600, 21_600, 86_400, 90_061, 172_800] {
            assert_eq!(crate::policy::parse_duration(&duration(s)), Some(s), "{}", duration(s));
        }
        assert_eq!(duration(21_600), "6h");
        assert_eq!(duration(300), "5min");
    }

    #[test]
    fn nested_values_become_block_yaml() {
        let mut w = Writer::new();
        w.value(
            0,
            "doc",
            &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}),
            None,
        );
        assert_eq!(
            w.finish(),
            "doc:\n  Version: \"2012-10-17\"\n  Statement:\n    - Effect: Allow\n      Action: [s3:GetObject, s3:ListBucket]\n      Condition:\n        Bool:\n          aws:SecureTransport: \"true\"\n"
        );
    }
}
