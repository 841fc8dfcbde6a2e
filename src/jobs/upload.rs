//! Stream bytes of unknown length into one S3 object: parts of
//! [`PART_SIZE`] uploaded while the next one fills (at most two in flight,
//! so memory stays bounded whatever the size), each part with its own
//! SHA-256 checksum, the whole object's SHA-256 computed on the way, and
//! the completed object verified (size, and S3's checksum when it reports
//! one) instead of merely listed. On any failure the multipart upload is
//! aborted, so no part is left behind (and billed). A stream shorter than
//! one part is one PutObject.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesOrdered, StreamExt};
use sha2::{Digest, Sha256};

use super::{JobError, Stage};
use crate::aws::ops;
use crate::aws::{classify, Aws, Op};
use crate::policy::{Algorithm, Encryption};

/// What a backup job calls: the bucket's key resolved, the streamed
/// upload (multipart, aborted on failure), the check of what S3 holds, and
/// the sidecar.
pub const OPS: &[Op] = &[
    ops::DESCRIBE_KEY,
    ops::CREATE_MULTIPART_UPLOAD,
    ops::UPLOAD_PART,
    ops::COMPLETE_MULTIPART_UPLOAD,
    ops::ABORT_MULTIPART_UPLOAD,
    ops::HEAD_OBJECT,
    ops::PUT_OBJECT,
];

/// 8 MiB: above S3's 5 MiB minimum part; 10,000 parts hold 80 GiB.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading while the next one fills.
const IN_FLIGHT: usize = 2;

/// Where the bytes go and how S3 encrypts them.
pub struct Target<'a> {
    pub aws: &'a Aws,
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub sse: Sse,
}

/// Server-side encryption set on each object, as the policy's bucket says
/// (the bucket default would apply anyway; saying it makes the object's
/// encryption independent of a default changed later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    BucketDefault,
    Aes256,
    Kms { key: Option<String>, bucket_key: Option<bool> },
}

impl Sse {
    /// From the bucket's declared encryption; `key_arn` is the declared
    /// key resolved (a key under kms.keys is written as its key ARN).
    pub fn from_policy(enc: Option<&Encryption>, key_arn: Option<String>) -> Sse {
        match enc {
            None => Sse::BucketDefault,
            Some(e) if e.algorithm == Algorithm::Aes256 => Sse::Aes256,
            Some(e) => Sse::Kms { key: key_arn.or_else(|| e.kms_key.clone()), bucket_key: e.bucket_key },
        }
    }
}

impl Sse {
    /// The request's encryption headers: algorithm, key, bucket key.
    fn headers(&self) -> (Option<ServerSideEncryption>, Option<String>, Option<bool>) {
        match self {
            Sse::BucketDefault => (None, None, None),
            Sse::Aes256 => (Some(ServerSideEncryption::Aes256), None, None),
            Sse::Kms { key, bucket_key } => (Some(ServerSideEncryption::AwsKms), key.clone(), *bucket_key),
        }
    }
}

/// A source of bytes: the dump's stdout, gzip of it, a Redis RDB stream.
#[allow(async_fn_in_trait)]
pub trait Chunks {
    /// The next bytes; None at the end.
    async fn next(&mut self) -> Result<Option<Bytes>, JobError>;
    /// Called once the source is exhausted: did its producer succeed?
    /// (pg_dump's exit status.) Nothing is completed before this is Ok.
    async fn finish(&mut self) -> Result<(), JobError>;
}

/// What was stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    pub bucket: String,
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
    pub parts: usize,
    /// A multipart object's composite checksum as S3 reports it (the
    /// SHA-256 of the parts' SHA-256s, base64, "-N"), recorded with the
    /// sidecar: the audit compares it without downloading the object.
    pub composite: Option<String>,
}

/// What an error says when the object may be stored after all.
pub const UNSURE: &str = "whether S3 stored it is not known";

/// The sidecar's user metadata holding [`Uploaded::composite`], and the
/// object's SHA-256 beside it (so a sidecar whose text was changed no
/// longer agrees with what the upload recorded).
pub const COMPOSITE_META: &str = "suoops-composite-sha256";
pub const SHA256_META: &str = "suoops-sha256";

/// The multipart upload under way, for an interrupt handler to abort.
pub type Pending = Arc<Mutex<Option<(String, String, String, String)>>>;

/// Fill `buf` up to one part from `carry`, then from `src`. What goes
/// beyond the part waits in `carry`, so a part's buffer is allocated once
/// at its size and never grown (memory stays at the parts in flight).
/// True when `src` is exhausted.
async fn fill(buf: &mut BytesMut, carry: &mut Option<Bytes>, src: &mut impl Chunks) -> Result<bool, JobError> {
    if buf.capacity() < PART_SIZE {
        buf.reserve(PART_SIZE - buf.len());
    }
    while buf.len() < PART_SIZE {
        let b = match carry.take() {
            Some(b) => b,
            None => match src.next().await? {
                Some(b) => b,
                None => return Ok(true),
            },
        };
        let room = PART_SIZE - buf.len();
        if b.len() > room {
            buf.extend_from_slice(&b[..room]);
            *carry = Some(b.slice(room..));
        } else {
            buf.extend_from_slice(&b);
        }
    }
    Ok(false)
}

/// Upload everything `src` yields to `t`; `pending` holds the multipart
/// upload while it is open (region, bucket, key, upload id).
pub async fn stream(t: &Target<'_>, src: &mut impl Chunks, pending: &Pending) -> Result<Uploaded, JobError> {
    let mut whole = Sha256::new();
    let mut buf = BytesMut::new();
    let mut carry: Option<Bytes> = None;
    let mut total: u64 = 0;
    // Fill the first part: a short stream is one PutObject.
    let ended = fill(&mut buf, &mut carry, src).await?;
    if ended && buf.len() < PART_SIZE {
        src.finish().await?;
        let body = buf.freeze();
        whole.update(&body);
        let sha = whole.finalize();
        let echoed = put_single(t, body.clone(), &sha).await?;
        let up = Uploaded {
            bucket: t.bucket.clone(),
            key: t.key.clone(),
            bytes: body.len() as u64,
            sha256: hex(&sha),
            parts: 1,
            composite: None,
        };
        verify(t, &up, echoed, None).await?;
        return Ok(up);
    }
    let client = t.aws.s3(&t.region);
    let (sse, kms_key, bucket_key) = t.sse.headers();
    let req = client
        .create_multipart_upload()
        .bucket(&t.bucket)
        .key(&t.key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .set_server_side_encryption(sse)
        .set_ssekms_key_id(kms_key)
        .set_bucket_key_enabled(bucket_key);
    let created = t.aws.call(&ops::CREATE_MULTIPART_UPLOAD, req.send()).await.map_err(|e| {
        JobError::failed(
            Stage::Upload,
            format!("cannot start the upload to s3://{}/{}: {}", t.bucket, t.key, classify(&e, &[]).reason()),
        )
    })?;
    let id = created.upload_id().unwrap_or_default().to_string();
    *pending.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((t.region.clone(), t.bucket.clone(), t.key.clone(), id.clone()));
    let r = parts(t, &client, &id, src, &mut whole, &mut buf, &mut carry, ended, &mut total).await;
    let r = match r {
        Ok((done, digests)) => complete(t, &client, &id, done, digests, whole, total).await,
        Err(e) => Err(e),
    };
    if r.is_err() {
        abort(t.aws, &t.region, &t.bucket, &t.key, &id).await;
    }
    *pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
    r
}

type PartResult = Result<(i32, String, String, [u8; 32]), JobError>;

/// Upload the parts as they fill; returns the completed parts and each
/// part's raw SHA-256.
#[allow(clippy::too_many_arguments)]
async fn parts(
    t: &Target<'_>,
    client: &aws_sdk_s3::Client,
    id: &str,
    src: &mut impl Chunks,
    whole: &mut Sha256,
    buf: &mut BytesMut,
    carry: &mut Option<Bytes>,
    ended: bool,
    total: &mut u64,
) -> Result<(Vec<CompletedPart>, Vec<[u8; 32]>), JobError> {
    let mut flying: FuturesOrdered<futures::future::LocalBoxFuture<'_, PartResult>> = FuturesOrdered::new();
    let mut done: Vec<CompletedPart> = Vec::new();
    let mut digests: Vec<[u8; 32]> = Vec::new();
    let mut number: i32 = 0;
    let (mut ended, mut finished) = (ended, false);
    let mut collect = |r: PartResult, done: &mut Vec<CompletedPart>| -> Result<(), JobError> {
        let (n, etag, sum, digest) = r?;
        done.push(CompletedPart::builder().part_number(n).e_tag(etag).checksum_sha256(sum).build());
        digests.push(digest);
        Ok(())
    };
    loop {
        if !ended && buf.len() < PART_SIZE {
            ended = fill(buf, carry, src).await?;
        }
        if ended && !finished {
            // Nothing is completed unless the producer succeeded.
            finished = true;
            src.finish().await?;
        }
        if buf.is_empty() {
            break;
        }
        let take = buf.len().min(PART_SIZE);
        let part: Bytes = buf.split_to(take).freeze();
        whole.update(&part);
        *total += part.len() as u64;
        number += 1;
        if number > 10_000 {
            return Err(JobError::failed(
                Stage::Upload,
                format!("the stream is over {} GiB, S3's limit at this part size", (PART_SIZE * 10_000) >> 30),
            ));
        }
        let digest: [u8; 32] = Sha256::digest(&part).into();
        let b64 = aws_smithy_types::base64::encode(digest);
        let n = number;
        let fut = async move {
            let out = t
                .aws
                .call(
                    &ops::UPLOAD_PART,
                    client
                        .upload_part()
                        .bucket(&t.bucket)
                        .key(&t.key)
                        .upload_id(id)
                        .part_number(n)
                        .checksum_algorithm(ChecksumAlgorithm::Sha256)
                        .checksum_sha256(&b64)
                        .body(ByteStream::from(part))
                        .send(),
                )
                .await
                .map_err(|e| {
                    JobError::failed(
                        Stage::Upload,
                        format!("part {n} of s3://{}/{}: {}", t.bucket, t.key, classify(&e, &[]).reason()),
                    )
                })?;
            Ok((n, out.e_tag().unwrap_or_default().to_string(), b64, digest))
        };
        flying.push_back(Box::pin(fut));
        while flying.len() >= IN_FLIGHT {
            if let Some(r) = flying.next().await {
                collect(r, &mut done)?;
            }
        }
        if ended && buf.is_empty() {
            break;
        }
    }
    while let Some(r) = flying.next().await {
        collect(r, &mut done)?;
    }
    Ok((done, digests))
}

async fn complete(
    t: &Target<'_>,
    client: &aws_sdk_s3::Client,
    id: &str,
    done: Vec<CompletedPart>,
    digests: Vec<[u8; 32]>,
    whole: Sha256,
    total: u64,
) -> Result<Uploaded, JobError> {
    let n = done.len();
    let completed: Result<_, _> = t
        .aws
        .call(
            &ops::COMPLETE_MULTIPART_UPLOAD,
            client
                .complete_multipart_upload()
                .bucket(&t.bucket)
                .key(&t.key)
                .upload_id(id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
                .send(),
        )
        .await;
    // S3's checksum of a multipart object is the SHA-256 of the parts'
    // SHA-256s, "-N" (AWS S3 user guide, "Checking object integrity":
    // checksums of multipart uploads).
    let mut composite = Sha256::new();
    for d in &digests {
        composite.update(d);
    }
    let composite = format!("{}-{n}", aws_smithy_types::base64::encode(composite.finalize()));
    let up = Uploaded {
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        bytes: total,
        sha256: hex(&whole.finalize()),
        parts: n,
        composite: Some(composite.clone()),
    };
    let echoed = match completed {
        Ok(c) => c.checksum_sha256().map(str::to_string),
        // CompleteMultipartUpload can fail after S3 completed it (a 200
        // with an error in its body, a connection dropped before the
        // answer: AWS S3 API reference, CompleteMultipartUpload): whether
        // the object is there decides what to say.
        Err(e) => {
            let why = classify(&e, &[]).reason();
            return match verify(t, &up, None, Some(composite)).await {
                Ok(Verified::Checked | Verified::SizeOnly) => Ok(up),
                Ok(Verified::Unread) => Err(JobError::Unsure {
                    message: format!(
                        "completing s3://{}/{}: {why}; {UNSURE} (the writer may not read it back): check the bucket",
                        t.bucket, t.key
                    ),
                }),
                Err(_) => {
                    Err(JobError::failed(Stage::Upload, format!("completing s3://{}/{}: {why}", t.bucket, t.key)))
                }
            };
        }
    };
    verify(t, &up, echoed, Some(composite)).await?;
    Ok(up)
}

/// One small object (a sidecar, a drill record), with its SHA-256.
pub async fn put(t: &Target<'_>, body: Bytes) -> Result<(), JobError> {
    let sha: [u8; 32] = Sha256::digest(&body).into();
    put_single(t, body, &sha).await.map(|_| ())
}

/// PutObject with the body's SHA-256 (S3 refuses a body that does not
/// match it); returns the checksum S3 reports it stored.
async fn put_single(t: &Target<'_>, body: Bytes, sha: &[u8]) -> Result<Option<String>, JobError> {
    put_single_with(t, body, sha, None).await
}

async fn put_single_with(
    t: &Target<'_>,
    body: Bytes,
    sha: &[u8],
    meta: Option<std::collections::HashMap<String, String>>,
) -> Result<Option<String>, JobError> {
    let client = t.aws.s3(&t.region);
    let (sse, kms_key, bucket_key) = t.sse.headers();
    let req = client
        .put_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(aws_smithy_types::base64::encode(sha))
        .set_server_side_encryption(sse)
        .set_ssekms_key_id(kms_key)
        .set_bucket_key_enabled(bucket_key)
        .set_metadata(meta)
        .body(ByteStream::from(body));
    t.aws.call(&ops::PUT_OBJECT, req.send()).await.map(|o| o.checksum_sha256().map(str::to_string)).map_err(|e| {
        JobError::failed(Stage::Upload, format!("writing s3://{}/{}: {}", t.bucket, t.key, classify(&e, &[]).reason()))
    })
}

/// The object as S3 stored it. S3 checked each part's (or the object's)
/// SHA-256 on arrival; the checksum it reports for the completed object
/// (the full SHA-256, or for a multipart upload the SHA-256 of the parts'
/// SHA-256s, "-N") must be the one computed here. When S3 echoes none,
/// HeadObject reads it with the size — unless the writer may not read
/// (the bucket's `access` keeps the backup role write-only), which leaves
/// the per-part checks S3 made.
async fn verify(
    t: &Target<'_>,
    up: &Uploaded,
    echoed: Option<String>,
    composite: Option<String>,
) -> Result<Verified, JobError> {
    let same = |sum: &str| checksum_matches(sum, &sha_b64(&up.sha256), composite.as_deref());
    if let Some(sum) = echoed {
        return if same(&sum) {
            Ok(Verified::Checked)
        } else {
            Err(JobError::failed(
                Stage::Upload,
                format!("s3://{}/{}: S3's SHA-256 checksum {sum} is not the one sent", t.bucket, t.key),
            ))
        };
    }
    let client = t.aws.s3(&t.region);
    let head = t
        .aws
        .call(
            &ops::HEAD_OBJECT,
            client.head_object().bucket(&t.bucket).key(&t.key).checksum_mode(ChecksumMode::Enabled).send(),
        )
        .await;
    let head = match head {
        Ok(h) => h,
        // HEAD has no error body: a refusal is its 403. Not verified:
        // said as such, never taken for a check.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => return Ok(Verified::Unread),
        Err(e) => {
            return Err(JobError::failed(
                Stage::Upload,
                format!("verifying s3://{}/{}: {}", t.bucket, t.key, classify(&e, &[]).reason()),
            ))
        }
    };
    let size = head.content_length().unwrap_or(-1);
    if size != up.bytes as i64 {
        return Err(JobError::failed(
            Stage::Upload,
            format!("s3://{}/{} holds {size} bytes, {} were sent", t.bucket, t.key, up.bytes),
        ));
    }
    match head.checksum_sha256() {
        Some(sum) if !same(sum) => Err(JobError::failed(
            Stage::Upload,
            format!("s3://{}/{}: S3's SHA-256 checksum {sum} is not the one sent", t.bucket, t.key),
        )),
        Some(_) => Ok(Verified::Checked),
        None => Ok(Verified::SizeOnly),
    }
}

/// How far the stored object was checked after the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// S3's checksum of the object is the one computed here.
    Checked,
    /// The size is right; S3 reported no checksum to compare.
    SizeOnly,
    /// The writer may not read the object back (HeadObject refused): only
    /// S3's checks of each part on arrival stand.
    Unread,
}

/// Is S3's checksum `sum` of an object the one of these bytes? `whole` is
/// the full object's SHA-256 (base64), `composite` the composite checksum
/// of its parts ("B64-N"). S3 reports the composite for a multipart
/// upload with its "-N" (AWS S3 user guide, "Checking object integrity":
/// using part-level checksums for multipart uploads); moto reports it
/// without. A composite matches only with the same part count.
pub fn checksum_matches(sum: &str, whole: &str, composite: Option<&str>) -> bool {
    let (base, parts) = match sum.split_once('-') {
        Some((b, n)) => (b, Some(n)),
        None => (sum, None),
    };
    if parts.is_none() && base == whole {
        return true;
    }
    let Some((c_base, c_parts)) = composite.and_then(|c| c.split_once('-')) else { return false };
    base == c_base && parts.is_none_or(|n| n == c_parts)
}

/// Abort a multipart upload (best effort: what failed is already said).
pub async fn abort(aws: &Aws, region: &str, bucket: &str, key: &str, id: &str) {
    let client = aws.s3(region);
    let _ = aws
        .call(
            &ops::ABORT_MULTIPART_UPLOAD,
            client.abort_multipart_upload().bucket(bucket).key(key).upload_id(id).send(),
        )
        .await;
}

/// Abort the multipart upload a failed or interrupted job left open, if
/// any (the job's own error paths abort theirs; this is for a job dropped
/// mid-part by Ctrl-C).
pub async fn abort_pending(aws: &Aws, pending: &Pending) {
    let open = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some((region, bucket, key, id)) = open {
        abort(aws, &region, &bucket, &key, &id).await;
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha_b64(hex: &str) -> String {
    let bytes: Vec<u8> =
        (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
    aws_smithy_types::base64::encode(bytes)
}

/// Write `KEY.sha256` beside the object: the hex digest and the object's
/// name, as `sha256sum` prints it (the evidence check reads the first word).
pub async fn sidecar(t: &Target<'_>, up: &Uploaded) -> Result<(), JobError> {
    let name = up.key.rsplit('/').next().unwrap_or(&up.key);
    let body = Bytes::from(format!("{}  {name}\n", up.sha256));
    let side = Target {
        aws: t.aws,
        region: t.region.clone(),
        bucket: t.bucket.clone(),
        key: format!("{}.sha256", up.key),
        sse: t.sse.clone(),
    };
    let sha: [u8; 32] = Sha256::digest(&body).into();
    let meta = up
        .composite
        .as_ref()
        .map(|c| [(COMPOSITE_META.to_string(), c.clone()), (SHA256_META.to_string(), up.sha256.clone())].into());
    put_single_with(&side, body, &sha, meta).await.map(|_| ())
}
