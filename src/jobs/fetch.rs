//! Reading backups back: the newest object under a prefix (for the
//! audit's freshness check and for the drills), and the drill's verified
//! download into a scratch directory only its owner can read.

use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::record::{secs, DumpRef, Record, RECORDS};
use super::upload;
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
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A scratch directory for one drill (under the temporary directory),
/// readable by its owner only: the dump in it holds the database's data.
pub fn scratch_dir() -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("suoops-drill-{}-{}", std::process::id(), now()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
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
) -> Result<String, String> {
    let client = aws.s3(region);
    let bucket = from.bucket.as_str();
    let key = newest_object(aws, &client, bucket, &from.prefix, None)
        .await
        .map_err(|e| format!("listing s3://{bucket}/{}: {}", from.prefix, e.reason()))?
        .0
        .map(|o| o.key)
        .ok_or_else(|| format!("no dump under s3://{bucket}/{}", from.prefix))?;
    let side = get_text(aws, &client, bucket, &format!("{key}.sha256")).await.map_err(|e| {
        format!("the dump {key} has no readable sidecar ({e}): it cannot be verified, so it is not restored")
    })?;
    let want = side.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
    let t = Instant::now();
    let (bytes, got) = download(aws, &client, bucket, &key, path).await?;
    rec.phases.download = secs(t);
    rec.dump = Some(DumpRef { bucket: bucket.to_string(), key: key.clone(), bytes, sha256: got.clone() });
    if got != want {
        return Err(format!(
            "{key} does not match its sidecar (SHA-256 {got}, the sidecar says {want}): nothing was restored"
        ));
    }
    Ok(key)
}

async fn get_text(aws: &Aws, client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String, String> {
    let out = aws
        .call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send())
        .await
        .map_err(|e| format!("reading s3://{bucket}/{key}: {}", classify(&e, &["NoSuchKey"]).reason()))?;
    let body = out.body.collect().await.map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?;
    Ok(String::from_utf8_lossy(&body.into_bytes()).into_owned())
}

/// Download `key` into `path`, hashing as it arrives.
async fn download(
    aws: &Aws,
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &Path,
) -> Result<(u64, String), String> {
    let out = aws
        .call(&ops::GET_OBJECT, client.get_object().bucket(bucket).key(key).send())
        .await
        .map_err(|e| format!("downloading s3://{bucket}/{key}: {}", classify(&e, &[]).reason()))?;
    let mut body = out.body;
    let mut file = tokio::fs::File::create(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut n: u64 = 0;
    while let Some(chunk) = body.try_next().await.map_err(|e| format!("downloading s3://{bucket}/{key}: {e}"))? {
        h.update(&chunk);
        n += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    file.flush().await.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((n, upload::hex(&h.finalize())))
}
