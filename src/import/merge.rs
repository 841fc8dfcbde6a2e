//! `import --merge`: add imported entries to an existing policy file
//! without rewriting what is there. The file is edited as text, so the
//! user's comments, order and layout survive: each entry is inserted at the
//! end of its section's block (`s3.buckets`, `iam.roles`, `redis`,
//! `postgres`), indented like its siblings; a missing section is added.

/// Prefix every non-empty line with `n` spaces.
fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut out = String::with_capacity(text.len() + 16 * n);
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(line);
        } else {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line that says something (not blank, not only a comment).
fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// If `line` is the key `key` (plain or quoted) of a mapping, what follows
/// its colon on the same line, without a comment ("" for a block).
fn key_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let t = line.trim_start();
    let rest = [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .find_map(|k| t.strip_prefix(k.as_str()).and_then(|r| r.strip_prefix(':')))?;
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    Some(match rest.find(" #") {
        _ if rest.starts_with('#') => "",
        Some(i) if !rest.starts_with(['"', '\'']) => rest[..i].trim(),
        _ => rest,
    })
}

/// Lines `lo..hi` (content lines at `indent`) form a block; find `key` in it.
fn find(lines: &[String], lo: usize, hi: usize, indent: usize, key: &str) -> Option<usize> {
    (lo..hi).find(|&i| is_content(&lines[i]) && indent_of(&lines[i]) == indent && key_value(&lines[i], key).is_some())
}

/// The end (exclusive) of the block opened by the key on line `at`: the
/// line after its last line indented deeper than the key. A comment at or
/// left of the key's column does not end the block (people write comments
/// at the margin anywhere); the next key there does.
fn block_end(lines: &[String], at: usize) -> usize {
    let own = indent_of(&lines[at]);
    let mut last = at;
    for (i, l) in lines.iter().enumerate().skip(at + 1) {
        if l.trim().is_empty() {
            continue;
        }
        if indent_of(l) <= own {
            if is_content(l) {
                break;
            }
            continue;
        }
        last = i;
    }
    last + 1
}

/// Indentation of the first content line inside the block at `at`.
fn child_indent(lines: &[String], at: usize, end: usize) -> Option<usize> {
    (at + 1..end).find(|&i| is_content(&lines[i])).map(|i| indent_of(&lines[i]))
}

/// Insert `entries` (each a `NAME:` block at column 0) under `path` in the
/// policy text. Errors say why the file cannot be edited safely.
pub fn insert(text: &str, path: &[&str], entries: &[String]) -> Result<String, String> {
    if entries.is_empty() {
        return Ok(text.to_string());
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let body = entries.join("\n");
    // Windows line ends stay Windows line ends.
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lo = 0;
    let mut hi = lines.len();
    let mut level_indent = 0;
    for (depth, key) in path.iter().enumerate() {
        match find(&lines, lo, hi, level_indent, key) {
            Some(at) => {
                let value = key_value(&lines[at], key).unwrap_or_default();
                let end = block_end(&lines, at);
                match value {
                    "" => {}
                    "{}" | "null" | "~" => {
                        // An empty mapping written inline: open it as a block.
                        lines[at] = format!("{}{key}:", " ".repeat(level_indent));
                    }
                    other => {
                        return Err(format!(
                        "`{}` on line {} is written inline (`{other}`); write it as a block mapping to merge into it",
                        path[..=depth].join("."),
                        at + 1
                    ))
                    }
                }
                if depth + 1 == path.len() {
                    let child = child_indent(&lines, at, end).unwrap_or(level_indent + 2);
                    let block = indent(&body, child);
                    lines.splice(end..end, block.lines().map(str::to_string));
                    return Ok(lines.join(eol) + eol);
                }
                lo = at + 1;
                hi = end;
                level_indent = child_indent(&lines, at, end).unwrap_or(level_indent + 2);
            }
            None => {
                // Add the missing keys at the end of the enclosing block.
                let mut add = String::new();
                for (d, k) in path[depth..].iter().enumerate() {
                    add.push_str(&format!("{}{k}:\n", " ".repeat(level_indent + 2 * d)));
                }
                add.push_str(&indent(&body, level_indent + 2 * (path.len() - depth)));
                let at = if depth == 0 {
                    // Top level: after the last line, with a blank line before.
                    if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                        lines.push(String::new());
                    }
                    lines.len()
                } else {
                    hi
                };
                lines.splice(at..at, add.lines().map(str::to_string));
                return Ok(lines.join(eol) + eol);
            }
        }
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "# mine\nversion: 1\naws:\n  region: us-east-1\ns3:\n  buckets:\n    # the old one\n    old:\n      versioning: enabled   # keep\n\n# trailing comment about iam\niam:\n   roles: {}\n";

    #[test]
    fn entries_go_at_the_end_of_their_section_and_everything_else_stays() {
        let out = insert(BASE, &["s3", "buckets"], &["new:\n  versioning: suspended\n".into()]).expect("merge");
        assert_eq!(
            out,
            "# mine\nversion: 1\naws:\n  region: us-east-1\ns3:\n  buckets:\n    # the old one\n    old:\n      versioning: enabled   # keep\n    new:\n      versioning: suspended\n\n# trailing comment about iam\niam:\n   roles: {}\n"
        );
    }

    #[test]
    fn an_inline_empty_mapping_is_opened_and_missing_sections_are_added() {
        let out = insert(BASE, &["iam", "roles"], &["r:\n  path: /\n".into()]).expect("merge");
        assert!(out.ends_with("iam:\n   roles:\n     r:\n       path: /\n"), "{out}");
        let out = insert(&out, &["redis"], &["cache:\n  url: ${U}\n".into()]).expect("merge");
        assert!(out.ends_with("       path: /\n\nredis:\n  cache:\n    url: ${U}\n"), "{out}");
        let no_buckets = "version: 1\ns3:\n  # none yet\n";
        let out = insert(no_buckets, &["s3", "buckets"], &["b:\n  versioning: enabled\n".into()]).expect("merge");
        assert_eq!(out, "version: 1\ns3:\n  # none yet\n  buckets:\n    b:\n      versioning: enabled\n");
    }

    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn parse(text: &str) -> Value {
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    /// A block-style policy with some of its sections, comments at any
    /// indentation and blank lines between, in any order.
    fn policy_text() -> impl Strategy<Value = (String, Value)> {
        // Names never YAML's own words (null, true, no…), which a key cannot be.
        let bucket = "x[a-z]{0,5}";
        (
            prop::collection::btree_set(bucket, 0..3),
            prop::option::of(prop::collection::btree_set("x[a-z]{0,5}", 0..3)),
            any::<bool>(),
            prop::collection::vec((0usize..8, any::<bool>()), 0..6),
            prop::sample::select(vec![2usize, 3, 4]),
        )
            .prop_map(|(buckets, redis, with_s3, noise, step)| {
                let pad = |n: usize| " ".repeat(n * step);
                let mut sections: Vec<(String, Value)> = Vec::new();
                if with_s3 {
                    let mut t = format!("s3:\n{}buckets:\n", pad(1));
                    let mut m = serde_json::Map::new();
                    for b in &buckets {
                        t.push_str(&format!("{}{b}:\n{}versioning: enabled\n", pad(2), pad(3)));
                        m.insert(b.clone(), json!({"versioning": "enabled"}));
                    }
                    let v = if buckets.is_empty() { Value::Null } else { Value::Object(m) };
                    sections.push((t, json!({"buckets": v})));
                }
                if let Some(r) = redis {
                    let mut t = "redis:\n".to_string();
                    let mut m = serde_json::Map::new();
                    for n in &r {
                        t.push_str(&format!("{}{n}:\n{}persistence: none\n", pad(1), pad(2)));
                        m.insert(n.clone(), json!({"persistence": "none"}));
                    }
                    sections.push((t, if r.is_empty() { Value::Null } else { Value::Object(m) }));
                }
                let mut text = "version: 1\n".to_string();
                let mut want = serde_json::Map::new();
                want.insert("version".into(), json!(1));
                for (i, (t, v)) in sections.into_iter().enumerate() {
                    // Comments and blank lines anywhere between lines.
                    for line in t.lines() {
                        text.push_str(line);
                        text.push('\n');
                        for (indent, blank) in noise.iter().filter(|(k, _)| k % 4 == i % 4) {
                            text.push_str(&if *blank {
                                "\n".to_string()
                            } else {
                                format!("{}# note\n", " ".repeat(*indent))
                            });
                        }
                    }
                    let key = if t.starts_with("s3") { "s3" } else { "redis" };
                    want.insert(key.into(), v);
                }
                (text, Value::Object(want))
            })
    }

    proptest! {
        /// Inserting into any layout keeps every existing entry and adds
        /// the new one where it belongs.
        #[test]
        fn insertion_keeps_the_document_and_adds_the_entry((text, want) in policy_text()) {
            let out = insert(&text, &["s3", "buckets"], &["zz-new:\n  versioning: suspended\n".into()]).expect("insert");
            let out = insert(&out, &["redis"], &["zz-cache:\n  persistence: none\n".into()]).expect("insert");
            let got = parse(&out);
            let mut expect = want.clone();
            let buckets = &mut expect["s3"]["buckets"];
            if !buckets.is_object() {
                *buckets = json!({});
            }
            buckets["zz-new"] = json!({"versioning": "suspended"});
            if !expect["redis"].is_object() {
                expect["redis"] = json!({});
            }
            expect["redis"]["zz-cache"] = json!({"persistence": "none"});
            prop_assert_eq!(got, expect, "{}", out);
            prop_assert!(out.starts_with(text.lines().next().unwrap_or("")));
        }
    }

    #[test]
    fn a_comment_at_the_margin_inside_a_block_does_not_end_it() {
        // Found by the property test: `buckets` was not seen under `s3` and
        // was added a second time.
        let out = insert("version: 1\ns3:\n# note\n  buckets:\n# note\n", &["s3", "buckets"], &["b:\n  x: 1\n".into()])
            .expect("insert");
        assert_eq!(out, "version: 1\ns3:\n# note\n  buckets:\n    b:\n      x: 1\n# note\n");
    }

    #[test]
    fn quoted_keys_and_trailing_comments_are_understood() {
        let out = insert(
            "version: 1\n\"redis\":   # ours\n  a:\n    persistence: none\n",
            &["redis"],
            &["b:\n  persistence: none\n".into()],
        )
        .expect("insert");
        assert!(out.ends_with("  a:\n    persistence: none\n  b:\n    persistence: none\n"), "{out}");
        assert_eq!(key_value("  'buckets': {}  # none yet", "buckets"), Some("{}"));
        assert_eq!(key_value("  bucketsx: 1", "buckets"), None);
        assert_eq!(key_value("  buckets:x", "buckets"), None);
    }

    #[test]
    fn trailing_blank_lines_are_kept_when_a_section_is_added() {
        // Found by fuzzing: the blank (whitespace-only) lines at the end were dropped.
        let out = insert("version: 1\n   \n\n", &["redis"], &["b:\n  persistence: none\n".into()]).expect("insert");
        assert_eq!(out, "version: 1\n   \n\nredis:\n  b:\n    persistence: none\n");
    }

    #[test]
    fn windows_line_ends_are_kept() {
        let out = insert(
            "version: 1\r\nredis:\r\n  a:\r\n    persistence: none\r\n",
            &["redis"],
            &["b:\n  persistence: none\n".into()],
        )
        .expect("insert");
        assert_eq!(out, "version: 1\r\nredis:\r\n  a:\r\n    persistence: none\r\n  b:\r\n    persistence: none\r\n");
    }

    #[test]
    fn a_flow_mapping_with_content_is_refused() {
        let err =
            insert("version: 1\nredis: {a: {url: x, persistence: none}}\n", &["redis"], &["b:\n  url: y\n".into()])
                .expect_err("flow");
        assert!(err.contains("`redis` on line 2 is written inline"), "{err}");
    }
}
