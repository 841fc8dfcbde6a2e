//! Reading backups back: the newest object under a prefix (for the
//! audit's freshness check and for the drills), and the drill's verified
//! download into a scratch directory only its owner can read.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::record::{secs, DumpRef, Record, RECORDS};
use super::upload;
use super::{JobError, Stage};
use crate::aws::ops;
use crate::aws::{classify, ApiError, Aws, Op};
use crate::model::time::now;
use crate::policy::BackupRef;

/// What a drill calls: the newest dump found and read with its sidecar,
/// the bucket's key resolved, and the record written beside the backups.
pub const OPS: &[Op] = &[ops::LIST_OBJECTS_V2, ops::GET_OBJECT, ops::DESCRIBE_KEY, ops::PUT_OBJECT];

/// An object as ListObjectsV2 shows it.
pub struct Listed {
    pub key: String,
    /// Last modified, Unix seconds.
    pub modified: i64,
    pub size: u64,
}

/// The newest object under `prefix` — sidecars, folders and drill records
/// left out, so an entry whose prefix is the whole bucket lists them
/// harmlessly — and how many objects were listed to find it.
pub async fn newest_object(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    start_after: Option<String>,
) -> Result<(Option<Listed>, usize), ApiError> {
    let mut token: Option<String> = None;
    let mut best: Option<Listed> = None;
    let mut listed = 0;
    loop {
        let req = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after.clone())
            .set_continuation_token(token.clone());
        let page = aws.call(&ops::LIST_OBJECTS_V2, req.send()).await.map_err(|e| classify(&e, &["NoSuchBucket"]))?;
        for o in page.contents() {
            listed += 1;
            let (Some(key), Some(t)) = (o.key(), o.last_modified()) else { continue };
            if key.ends_with(".sha256") || key.ends_with('/') || key.starts_with(RECORDS) {
                continue;
            }
            if best.as_ref().is_none_or(|b| (t.secs(), key) > (b.modified, b.key.as_str())) {
                best = Some(Listed {
                    key: key.to_string(),
                    modified: t.secs(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                });
            }
        }
        token = page.next_continuation_token().map(str::to_string);
        if !page.is_truncated().unwrap_or(false) || token.is_none() {
            break;
        }
    }
    Ok((best, listed))
}

/// A free loopback port for a drill's throw-away server.
pub fn free_port() -> Result<u16, JobError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| JobError::failed(Stage::Prepare, format!("no free port: {e}")))
}

/// A scratch directory for one drill (under the temporary directory),
/// readable by its owner only: the dump in it holds the database's data.
pub fn scratch_dir() -> Result<std::path::PathBuf, JobError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("suoops-drill-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).map_err(|e| JobError::failed(Stage::Prepare, format!("{}: {e}", dir.display())))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| JobError::failed(Stage::Prepare, format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// The newest dump of `from` and the SHA-256 its sidecar gives (an entry
/// without a readable sidecar is not restored at all).
pub async fn locate(aws: &Aws, from: &BackupRef, region: &str) -> Result<(String, String), JobError> {
    let client = aws.s3(region);
    let bucket = from.bucket.as_str();
    let key = newest_object(aws, &client, bucket, &from.prefix, None)
        .await
        .map_err(|e| {
            JobError::failed(Stage::Download, format!("listing s3://{bucket}/{}: {}", from.prefix, e.reason()))
        })?
        .0
        .map(|o| o.key)
        .ok_or_else(|| JobError::failed(Stage::Download, format!("no dump under s3://{bucket}/{}", from.prefix)))?;
    let side = get_text(aws, &client, bucket, &format!("{key}.sha256")).await.map_err(|e| {
        JobError::failed(
            Stage::Download,
            format!("the dump {key} has no readable sidecar ({e}): it cannot be verified, so it is not restored"),
        )
    })?;
    Ok((key, side.split_whitespace().next().unwrap_or("").to_ascii_lowercase()))
}

/// The newest dump of `from`, downloaded into `path` and checked against
/// its sidecar as it arrives; the download is timed into `rec`. A
/// mismatch is an error: nothing may be restored from it.
pub async fn fetch_verified(
    aws: &Aws,
    from: &BackupRef,
    region: &str,
    path: &Path,
    rec: &mut Record,
) -> Result<String, JobError> {
    let (key, want) = locate(aws, from, region).await?;
    fetch_located(aws, from, region, &key, &want, path, rec).await?;
    Ok(key)
}

/// `fetch_verified` of a dump already located (`locate`: its key and the
/// SHA-256 its sidecar gives).
pub async fn fetch_located(
    aws: &Aws,
    from: &BackupRef,
    region: &str,
    key: &str,
    want: &str,
    path: &Path,
    rec: &mut Record,
) -> Result<(), JobError> {
    let t = Instant::now();
    let got = download(aws, region, &from.bucket, key, path, None).await;
    rec.phases.download = secs(t);
    verified(rec, &from.bucket, key, got, want, "nothing was restored")
}

/// Record what was downloaded and compare its SHA-256 with the sidecar's;
/// `consequence` ends the error (what became of the restore).
pub fn verified(
    rec: &mut Record,
    bucket: &str,
    key: &str,
    got: Result<(u64, String), JobError>,
    want: &str,
    consequence: &str,
) -> Result<(), JobError> {
    let (bytes, got) = got?;
    rec.dump = Some(DumpRef { bucket: bucket.to_string(), key: key.to_string(), bytes, sha256: got.clone() });
    if got != want {
        return Err(JobError::failed(
            Stage::Download,
            format!("{key} does not match its sidecar (SHA-256 {got}, the sidecar says {want}): {consequence}"),
        ));
    }
    Ok(())
}

/// How far a download has written its file, for a reader of it as it
/// grows ([`Growing`]): bytes written, and whether it ended (Some(true):
/// complete, Some(false): failed).
#[derive(Debug, Default)]
pub struct Growth {
    state: Mutex<(u64, Option<bool>)>,
    changed: Condvar,
}

impl Growth {
    fn update(&self, f: impl FnOnce(&mut (u64, Option<bool>))) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.notify_all();
    }
}

/// The file a download is writing, read as it grows: a read at its end
/// waits for more, the end of the file is the end of a complete download,
/// and a failed download is an error. Blocking: for a blocking thread.
pub struct Growing {
    file: std::fs::File,
    pos: u64,
    growth: Arc<Growth>,
}

impl Growing {
    pub fn open(path: &Path, growth: Arc<Growth>) -> Result<Growing, JobError> {
        let file = std::fs::File::open(path)
            .map_err(|e| JobError::failed(Stage::Download, format!("{}: {e}", path.display())))?;
        Ok(Growing { file, pos: 0, growth })
    }
}

impl Read for Growing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let (written, ended) = {
            let g = self.growth.state.lock().unwrap_or_else(|p| p.into_inner());
            let g = self
                .growth
                .changed
                .wait_while(g, |(written, ended)| *written <= self.pos && ended.is_none())
                .unwrap_or_else(|p| p.into_inner());
            *g
        };
        if written > self.pos {
            let room = usize::try_from(written - self.pos).unwrap_or(usize::MAX).min(buf.len());
            let n = self.file.read(&mut buf[..room])?;
            self.pos += n as u64;
            return Ok(n);
        }
        match ended {
            Some(true) => Ok(0),
            _ => Err(std::io::Error::other("the download of the dump failed")),
        }
    }
}

async fn get_text(aws: &Aws, client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String, JobError> {
    let out = aws.call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send()).await.map_err(|e| {
        JobError::failed(
            Stage::Download,
            format!("reading s3://{bucket}/{key}: {}", classify(&e, &["NoSuchKey"]).reason()),
        )
    })?;
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| JobError::failed(Stage::Download, format!("reading s3://{bucket}/{key}: {e}")))?;
    Ok(String::from_utf8_lossy(&body.into_bytes()).into_owned())
}

/// Download `key` into `path`, hashing as it arrives; with `growth`, a
/// reader of the file ([`Growing`]) is told of every chunk and of the end.
pub async fn download(
    aws: &Aws,
    region: &str,
    bucket: &str,
    key: &str,
    path: &Path,
    growth: Option<&Growth>,
) -> Result<(u64, String), JobError> {
    // The end is told however the download ends — done, failed, or dropped
    // half-way (Ctrl-C): its reader must never wait for bytes that will not
    // come. Failed unless marked done below.
    struct Ends<'a>(Option<&'a Growth>, bool);
    impl Drop for Ends<'_> {
        fn drop(&mut self) {
            if let Some(g) = self.0 {
                let ok = self.1;
                g.update(|s| s.1 = Some(ok));
            }
        }
    }
    let mut ends = Ends(growth, false);
    let client = aws.s3(region);
    let out = aws.call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send()).await.map_err(|e| {
        JobError::failed(Stage::Download, format!("downloading s3://{bucket}/{key}: {}", classify(&e, &[]).reason()))
    })?;
    let mut body = out.body;
    // Written with plain writes (into the page cache), so that a reader
    // of the file sees each chunk as soon as it is counted.
    let mut file = std::fs::File::create(path)
        .map_err(|e| JobError::failed(Stage::Download, format!("{}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut n: u64 = 0;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| JobError::failed(Stage::Download, format!("downloading s3://{bucket}/{key}: {e}")))?
    {
        h.update(&chunk);
        n += chunk.len() as u64;
        file.write_all(&chunk).map_err(|e| JobError::failed(Stage::Download, format!("{}: {e}", path.display())))?;
        if let Some(g) = growth {
            g.update(|s| s.0 = n);
        }
    }
    ends.1 = true;
    Ok((n, upload::hex(&h.finalize())))
}
