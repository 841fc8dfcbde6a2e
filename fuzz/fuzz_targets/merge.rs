//! `import --merge` edits a user's policy file as text: on any text, the
//! insertion returns a result or an error, never panics, and a result keeps
//! every line of the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suoops_policy::import::merge;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let entry = vec!["new-entry:\n  versioning: enabled\n".to_string()];
    for path in [&["s3", "buckets"][..], &["iam", "roles"][..], &["redis"][..]] {
        if let Ok(out) = merge::insert(&text, path, &entry) {
            // Every input line survives, in order (an inline `{}` may be
            // opened; a last line gains its line end).
            let mut got = out.split('\n').map(|l| l.trim_end_matches('\r'));
            for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
                let opened = line.split(':').next().unwrap_or("").to_string() + ":";
                assert!(got.any(|l| l == line || l.trim_end() == opened), "lost {line:?}");
            }
        }
    }
});
