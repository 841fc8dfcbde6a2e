//! `pgbackrest info --output=json`, read into what the audit and the jobs
//! need. `db[].system-id` exceeds 2^53: serde_json reads an integer
//! literal as u64 exactly (never through f64).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Stanza {
    pub name: String,
    #[serde(default)]
    pub backup: Vec<Backup>,
    #[serde(default)]
    pub archive: Vec<Archive>,
    #[serde(default)]
    pub db: Vec<Db>,
    pub status: Status,
    #[serde(default)]
    pub repo: Vec<Repo>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Repo {
    pub status: Status,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Status {
    pub code: i64,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Backup {
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: Span,
    #[serde(default)]
    pub archive: Option<WalRange>,
    /// The backup's start and stop LSNs (`X/Y`).
    #[serde(default)]
    pub lsn: Option<WalRange>,
    #[serde(default)]
    pub error: Option<bool>,
    #[serde(default)]
    pub info: Option<BackupInfo>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Span {
    pub start: u64,
    pub stop: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct WalRange {
    pub start: Option<String>,
    pub stop: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BackupInfo {
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub repository: Option<RepoSize>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RepoSize {
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub delta: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Archive {
    pub id: String,
    pub min: Option<String>,
    pub max: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Db {
    pub id: u64,
    #[serde(rename = "system-id")]
    pub system_id: u64,
    pub version: String,
}

impl Stanza {
    /// The newest backup of any type.
    pub fn newest(&self) -> Option<&Backup> {
        self.backup.iter().max_by_key(|b| b.timestamp.stop)
    }
    /// The newest full backup.
    pub fn newest_full(&self) -> Option<&Backup> {
        self.backup.iter().filter(|b| b.kind == "full").max_by_key(|b| b.timestamp.stop)
    }
    pub fn oldest(&self) -> Option<&Backup> {
        self.backup.iter().min_by_key(|b| b.timestamp.start)
    }
    /// The cluster's WAL segment size, from what `info` says of its
    /// backups: the one power of two (1 MiB to 1 GiB, initdb's range) for
    /// which each backup's start LSN falls in the segment its archive
    /// start names. For an audit that cannot reach the server.
    pub fn segment_size(&self) -> Option<u64> {
        let mut sizes: Vec<u64> = (20..=30).map(|b| 1u64 << b).collect();
        for b in &self.backup {
            let (Some(lsn), Some(name)) = (
                b.lsn.as_ref().and_then(|l| l.start.as_deref()).and_then(lsn),
                b.archive.as_ref().and_then(|a| a.start.as_deref()),
            ) else {
                continue;
            };
            sizes.retain(|&size| segment_in(name, size).is_some_and(|(_, n)| n == lsn / size));
        }
        match sizes.as_slice() {
            [] => None,
            [one] => Some(*one),
            // A backup in the cluster's first segments fits several sizes.
            many => many.contains(&(16 << 20)).then_some(16 << 20),
        }
    }
    /// The archive of the current database (the last one listed).
    pub fn current_archive(&self) -> Option<&Archive> {
        self.archive.last()
    }
}

/// What the repository's own files say that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InfoError {
    #[error("pgbackrest info printed JSON this tool cannot read: {0}")]
    Json(String),
    #[error("pgbackrest info shows no stanza {0}")]
    NoStanza(String),
    #[error("pgBackRest could not read the repository: {0}")]
    Unreadable(String),
    /// A timeline history file's line (1-based) that is not one.
    #[error("line {line} is not \"timeline<TAB>switch point<TAB>reason\": {text}")]
    HistoryLine { line: usize, text: String },
    #[error("line {line}: timelines and switch points must increase: {text}")]
    HistoryOrder { line: usize, text: String },
    #[error("the oldest backup starts on timeline {start}, which is not an ancestor of timeline {newest} (the newest archived segment's): it cannot be recovered to the newest point")]
    OffPath { start: u32, newest: u32 },
    #[error("the oldest backup starts on timeline {start} at {segment}, after timeline {child} branched off from it: it cannot be recovered to the newest point")]
    AfterBranch { start: u32, segment: String, child: u32 },
}

/// The stanza `name` in `info --output=json`'s array.
pub fn parse(json: &str, name: &str) -> Result<Stanza, InfoError> {
    let all: Vec<Stanza> = serde_json::from_str(json).map_err(|e| InfoError::Json(e.to_string()))?;
    let s = all.into_iter().find(|s| s.name == name).ok_or_else(|| InfoError::NoStanza(name.to_string()))?;
    // `info` exits 0 when it cannot reach the repository and says so in
    // the status: code 99, "other" (command reference, "Info Command").
    if s.status.code == 99 {
        let why = s.repo.iter().map(|r| r.status.message.trim()).find(|m| !m.is_empty()).unwrap_or(&s.status.message);
        return Err(InfoError::Unreadable(why.lines().next().unwrap_or("").trim().to_string()));
    }
    Ok(s)
}

/// A WAL segment name's (timeline, segment number) for 16 MiB segments:
/// TTTTTTTTXXXXXXXXYYYYYYYY, number = XX × 0x100 + YY.
pub fn segment(name: &str) -> Option<(u32, u64)> {
    segment_in(name, 16 << 20)
}

/// The segment name of (timeline, number), 16 MiB segments.
pub fn segment_name(tli: u32, n: u64) -> String {
    segment_name_in(tli, n, 16 << 20)
}

/// Segments in one 4 GiB "log file" for `seg_size`-byte segments: a
/// segment's name is its timeline, then its number split at 2^32 bytes
/// (PostgreSQL's XLogFileName: 256 for 16 MiB, 4096 for 1 MiB, 64 for
/// 64 MiB; `initdb --wal-segsize`).
fn per_log(seg_size: u64) -> u64 {
    (1u64 << 32) / seg_size.clamp(1 << 20, 1 << 30)
}

/// (timeline, segment number) of a segment name, for `seg_size`-byte
/// segments.
pub fn segment_in(name: &str, seg_size: u64) -> Option<(u32, u64)> {
    if name.len() != 24 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(&name[..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..], 16).ok()?;
    let per = per_log(seg_size);
    (seg < per).then_some((tli, log * per + seg))
}

/// The segment name of (timeline, number), for `seg_size`-byte segments.
pub fn segment_name_in(tli: u32, n: u64, seg_size: u64) -> String {
    let per = per_log(seg_size);
    format!("{tli:08X}{:08X}{:08X}", n / per, n % per)
}

/// One line of a timeline history file (`0000000N.history`, written at
/// each promotion and archived with the WAL): timeline `tli` ended at LSN
/// `end`, where its child branched off. PostgreSQL's format: "parentTLI
/// <tab> switchpoint <tab> reason", `#` comments (timeline.c,
/// readTimeLineHistory).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Switch {
    pub tli: u32,
    pub end: u64,
}

/// An LSN as PostgreSQL prints it, `X/Y` in hexadecimal.
pub fn lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.trim().split_once('/')?;
    Some(u64::from_str_radix(hi, 16).ok()? << 32 | u64::from_str_radix(lo, 16).ok()?)
}

/// The ancestors of a timeline, oldest first, from its history file.
pub fn parse_history(text: &str) -> Result<Vec<Switch>, InfoError> {
    let mut out: Vec<Switch> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(tli), Some(end)) = (f.next().and_then(|t| t.parse::<u32>().ok()), f.next().and_then(lsn)) else {
            return Err(InfoError::HistoryLine { line: n + 1, text: line.to_string() });
        };
        if out.last().is_some_and(|prev| prev.tli >= tli || prev.end > end) {
            return Err(InfoError::HistoryOrder { line: n + 1, text: line.to_string() });
        }
        out.push(Switch { tli, end });
    }
    Ok(out)
}

/// The segments recovery needs, from `start` (the oldest backup's first
/// segment) to `newest`, that are not among `seen`, for `seg_size`-byte
/// segments. `history` is `newest`'s timeline's history (empty on the
/// first timeline): each ancestor is read up to the segment before its
/// switch point, and the child from the segment that holds the switch
/// point on (PostgreSQL copies that segment onto the new timeline at
/// promotion, and recovery reads a segment from the newest timeline that
/// had begun by then: xlogrecovery.c, XLogFileReadAnyTLI). Err when
/// `start` is on a timeline off that path, or on it after the branch.
pub fn missing_along(
    seen: &std::collections::BTreeMap<String, u64>,
    start: &str,
    newest: &str,
    history: &[Switch],
    seg_size: u64,
) -> Result<Vec<String>, InfoError> {
    let (Some((tli, last)), Some((start_tli, first))) = (segment_in(newest, seg_size), segment_in(start, seg_size))
    else {
        return Ok(Vec::new());
    };
    let seg = |lsn: u64| lsn / seg_size.clamp(1 << 20, 1 << 30);
    // (timeline, first segment it serves, last segment it serves)
    let mut path = Vec::new();
    let mut begin = 0;
    for s in history.iter().filter(|s| s.tli < tli) {
        path.push((s.tli, begin, seg(s.end).saturating_sub(1)));
        begin = seg(s.end);
    }
    path.push((tli, begin, last));
    let Some(from) = path.iter().position(|(t, _, _)| *t == start_tli) else {
        return Err(InfoError::OffPath { start: start_tli, newest: tli });
    };
    if first > path[from].2 && from + 1 < path.len() {
        return Err(InfoError::AfterBranch { start: start_tli, segment: start.to_string(), child: path[from + 1].0 });
    }
    let mut out = Vec::new();
    for &(t, lo, hi) in &path[from..] {
        let lo = if t == start_tli { first.max(lo) } else { lo };
        out.extend((lo..=hi).map(|n| segment_name_in(t, n, seg_size)).filter(|name| !seen.contains_key(name)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_keeps_a_system_id_beyond_f64() {
        let json = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000005","min":"000000010000000000000001"}],
          "backup":[{"archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},"error":false,
            "info":{"delta":29000000,"repository":{"delta":3500000,"size":3500000},"size":29000000},
            "label":"20261202-101010F","prior":null,"reference":null,"timestamp":{"start":1796205010,"stop":1796205017},"type":"full"}],
          "cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7443305720190566747,"version":"15"}],
          "name":"suoops-primary","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],
          "status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;
        let s = parse(json, "suoops-primary").expect("parses");
        assert_eq!(s.db[0].system_id, 7_443_305_720_190_566_747);
        assert_eq!(s.newest_full().map(|b| b.label.as_str()), Some("20261202-101010F"));
        assert_eq!(s.current_archive().and_then(|a| a.max.as_deref()), Some("000000010000000000000005"));
        assert!(parse(json, "other").unwrap_err().to_string().contains("no stanza other"));
        let down = r#"[{"archive":[],"backup":[],"cipher":"none","db":[],"name":"s",
          "repo":[{"cipher":"none","key":1,"status":{"code":99,"message":"[HostConnectError] unable to connect to 'localhost:9443'"}}],
          "status":{"code":99,"lock":{"backup":{"held":false}},"message":"other"}}]"#;
        assert_eq!(
            parse(down, "s").unwrap_err().to_string(),
            "pgBackRest could not read the repository: [HostConnectError] unable to connect to 'localhost:9443'"
        );
    }

    #[test]
    fn segment_numbers_roll_over_at_ff() {
        assert_eq!(segment("0000000100000000000000FF"), Some((1, 0xFF)));
        assert_eq!(segment("000000010000000100000000"), Some((1, 0x100)));
        assert_eq!(segment_name(1, 0x100), "000000010000000100000000");
        assert_eq!(segment("00000001000000000000000"), None);
        assert_eq!(segment("000000010000000000000003.00000028.backup"), None);
        // 1 MiB segments run to 0xFFF in a log file, 64 MiB to 0x3F; a
        // continuous archive has no gap either way.
        let names = |v: &[&str]| v.iter().map(|n| (n.to_string(), 0u64)).collect::<std::collections::BTreeMap<_, _>>();
        let one = names(&["0000000100000000000000FF", "000000010000000000000100", "000000010000000000000101"]);
        assert!(
            missing_along(&one, "0000000100000000000000FF", "000000010000000000000101", &[], 1 << 20) == Ok(vec![])
        );
        // As 16 MiB segments, 0x101 is no segment number at all.
        assert_eq!(segment_in("000000010000000000000101", 16 << 20), None);
        let big = names(&["00000001000000000000003F", "000000010000000100000000"]);
        assert!(
            missing_along(&big, "00000001000000000000003F", "000000010000000100000000", &[], 64 << 20) == Ok(vec![])
        );
        let gap = names(&["000000010000000000000001", "000000010000000000000003"]);
        assert_eq!(
            missing_along(&gap, "000000010000000000000001", "000000010000000000000003", &[], 16 << 20),
            Ok(vec!["000000010000000000000002".to_string()])
        );
    }

    #[test]
    fn the_segment_size_is_read_from_the_backups_lsns() {
        let stanza = |lsn: &str, start: &str| Stanza {
            name: "s".into(),
            backup: vec![Backup {
                label: "20261206-101010F".into(),
                kind: "full".into(),
                timestamp: Span { start: 1, stop: 2 },
                archive: Some(WalRange { start: Some(start.into()), stop: None }),
                lsn: Some(WalRange { start: Some(lsn.into()), stop: None }),
                error: None,
                info: None,
            }],
            archive: vec![],
            db: vec![],
            status: Status { code: 0, message: "ok".into() },
            repo: vec![],
        };
        // 1 MiB: segment 0xFF3 of log 0; 64 MiB: log 1's first; 16 MiB.
        assert_eq!(stanza("0/FF300028", "000000010000000000000FF3").segment_size(), Some(1 << 20));
        assert_eq!(stanza("1/0000028", "000000010000000100000000").segment_size(), Some(16 << 20));
        assert_eq!(stanza("0/F8000028", "00000001000000000000003E").segment_size(), Some(64 << 20));
        assert_eq!(stanza("0/5000028", "000000010000000000000005").segment_size(), Some(16 << 20));
        assert_eq!(stanza("0/5000028", "000000010000000000000009").segment_size(), None);
    }

    #[test]
    fn recovery_follows_the_timeline_path_of_the_history_file() {
        let h = parse_history(
            "1\t0/5000028\tbefore 2026-12-06 10:00:00+00\n\n# comment\n2\t0/8000000\tno recovery target specified\n",
        )
        .expect("parses");
        assert_eq!(h, [Switch { tli: 1, end: 0x500_0028 }, Switch { tli: 2, end: 0x800_0000 }]);
        assert!(parse_history("1\tnonsense\n").unwrap_err().to_string().starts_with("line 1 is not"));
        assert!(parse_history("2\t0/5000000\tx\n1\t0/6000000\tx\n").unwrap_err().to_string().contains("must increase"));
        let names = |v: &[&str]| v.iter().map(|n| (n.to_string(), 0u64)).collect::<std::collections::BTreeMap<_, _>>();
        // Timeline 1 from the backup's segment 3 to 4 (the switch point is
        // inside 5), timeline 2 from 5 to 7 (its switch point is 8's first
        // byte), timeline 3 from 8 to the newest, 9.
        let all = [
            "000000010000000000000003",
            "000000010000000000000004",
            "000000020000000000000005",
            "000000020000000000000006",
            "000000020000000000000007",
            "000000030000000000000008",
            "000000030000000000000009",
        ];
        let seen = names(&all);
        let start = "000000010000000000000003";
        assert_eq!(missing_along(&seen, start, "000000030000000000000009", &h, 16 << 20), Ok(vec![]));
        // Timeline 1's own 5..9 (left when the old primary went on) and
        // timeline 2's 8 are not on the path: absent, they are not missed.
        let gap = names(&[all[0], all[2], all[3], all[4], all[5], all[6]]);
        assert_eq!(
            missing_along(&gap, start, "000000030000000000000009", &h, 16 << 20),
            Ok(vec!["000000010000000000000004".to_string()])
        );
        let gap = names(&[all[0], all[1], all[2], all[4], all[5], all[6]]);
        assert_eq!(
            missing_along(&gap, start, "000000030000000000000009", &h, 16 << 20),
            Ok(vec!["000000020000000000000006".to_string()])
        );
        // A backup on timeline 1 taken after timeline 2 branched off.
        let late = "000000010000000000000006";
        assert!(missing_along(&seen, late, "000000030000000000000009", &h, 16 << 20)
            .unwrap_err()
            .to_string()
            .contains("after timeline 2 branched off"));
        // A backup on a timeline off the path.
        assert!(missing_along(&seen, "000000040000000000000003", "000000030000000000000009", &h, 16 << 20)
            .unwrap_err()
            .to_string()
            .contains("not an ancestor of timeline 3"));
        // A backup on timeline 2 needs nothing of timeline 1.
        assert_eq!(
            missing_along(&seen, "000000020000000000000006", "000000030000000000000009", &h, 16 << 20),
            Ok(vec![])
        );
    }
}
