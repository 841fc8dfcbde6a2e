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
    /// The archive of the current database (the last one listed).
    pub fn current_archive(&self) -> Option<&Archive> {
        self.archive.last()
    }
}

/// The stanza `name` in `info --output=json`'s array.
pub fn parse(json: &str, name: &str) -> Result<Stanza, String> {
    let all: Vec<Stanza> =
        serde_json::from_str(json).map_err(|e| format!("pgbackrest info printed JSON this tool cannot read: {e}"))?;
    let s =
        all.into_iter().find(|s| s.name == name).ok_or_else(|| format!("pgbackrest info shows no stanza {name}"))?;
    // `info` exits 0 when it cannot reach the repository and says so in
    // the status: code 99, "other" (command reference, "Info Command").
    if s.status.code == 99 {
        let why = s.repo.iter().map(|r| r.status.message.trim()).find(|m| !m.is_empty()).unwrap_or(&s.status.message);
        return Err(format!("pgBackRest could not read the repository: {}", why.lines().next().unwrap_or("").trim()));
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

/// The segments missing between `start` and `newest` (names) on
/// `newest`'s timeline, among `seen`, for `seg_size`-byte segments.
pub fn missing_between(
    seen: &std::collections::BTreeMap<String, u64>,
    start: &str,
    newest: &str,
    seg_size: u64,
) -> Vec<String> {
    let (Some((tli, last)), Some((start_tli, first))) = (segment_in(newest, seg_size), segment_in(start, seg_size))
    else {
        return Vec::new();
    };
    if start_tli != tli {
        return Vec::new();
    }
    (first..=last).map(|n| segment_name_in(tli, n, seg_size)).filter(|name| !seen.contains_key(name)).collect()
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
        assert!(parse(json, "other").unwrap_err().contains("no stanza other"));
        let down = r#"[{"archive":[],"backup":[],"cipher":"none","db":[],"name":"s",
          "repo":[{"cipher":"none","key":1,"status":{"code":99,"message":"[HostConnectError] unable to connect to 'localhost:9443'"}}],
          "status":{"code":99,"lock":{"backup":{"held":false}},"message":"other"}}]"#;
        assert_eq!(
            parse(down, "s").unwrap_err(),
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
        assert!(missing_between(&one, "0000000100000000000000FF", "000000010000000000000101", 1 << 20).is_empty());
        // As 16 MiB segments, 0x101 is no segment number at all.
        assert_eq!(segment_in("000000010000000000000101", 16 << 20), None);
        let big = names(&["00000001000000000000003F", "000000010000000100000000"]);
        assert!(missing_between(&big, "00000001000000000000003F", "000000010000000100000000", 64 << 20).is_empty());
        let gap = names(&["000000010000000000000001", "000000010000000000000003"]);
        assert_eq!(
            missing_between(&gap, "000000010000000000000001", "000000010000000000000003", 16 << 20),
            ["000000010000000000000002"]
        );
    }
}
