//! `backup run redis.NAME`: an RDB snapshot fetched over the network (the
//! replication protocol, as `redis-cli --rdb` does; `rdb.rs`) and stored
//! as the PostgreSQL dumps are: streamed into the entry with its SHA-256
//! sidecar, the multipart upload aborted on any failure.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use futures::future::FutureExt;

use super::rdb::{self, Endpoint, Io};
use crate::aws::Aws;
use crate::jobs::upload::Pending;
use crate::jobs::{self, Done, JobKind, Outcome};
use crate::jobs::{JobError, Stage};
use crate::policy::scrub;
use crate::providers::instances::InstanceJob;
use crate::providers::redis::section::RedisSpec;
use crate::tls::{client_config, Verify};

/// `backup run redis.NAME`: an RDB snapshot (a registered job).
pub const SNAPSHOT: InstanceJob<RedisSpec> = InstanceJob {
    kind: JobKind::Backup,
    synopsis: "redis.NAME: an RDB snapshot (BGSAVE), streamed to its `backup.to` entry",
    system: "redis",
    suffix: "",
    specs: |p| p.redis.as_slice(),
    name: |s| s.name.as_str(),
    entry: |s| s.backup.as_ref(),
    drill: None,
    run: |ctx, _, spec| {
        run(ctx.aws, spec, &ctx.default_region, &ctx.pending).map(|r| r.map(Outcome::Backup)).boxed_local()
    },
    ops: jobs::upload::OPS,
    engine_actions: &[],
    takes_target: false,
    render: None,
    config: None,
    schedule: |s| s.backup_schedule.as_ref(),
    on_host: None,
};

/// A connection to the server: TCP, or TLS for `rediss://` (the system's
/// roots, or no check with `#insecure`).
pub async fn open(ep: &Endpoint, timeout: Duration) -> Result<Box<dyn Io>, JobError> {
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ep.host.as_str(), ep.port)))
        .await
        .map_err(|_| JobError::failed(Stage::Connect, format!("connecting to {}:{} timed out", ep.host, ep.port)))?
        .map_err(|e| JobError::failed(Stage::Connect, format!("cannot connect to {}:{}: {e}", ep.host, ep.port)))?;
    if !ep.tls {
        return Ok(Box::new(tcp));
    }
    let config = if ep.insecure {
        client_config(Verify::Nothing, None).map_err(|e| JobError::failed(Stage::Connect, e.to_string()))?
    } else {
        client_config(Verify::Full, Some("system".into()))
            .map_err(|e| JobError::failed(Stage::Connect, e.to_string()))?
    };
    let name = ServerName::try_from(ep.host.clone())
        .map_err(|e| JobError::failed(Stage::Connect, format!("{}: {e}", ep.host)))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| JobError::failed(Stage::Connect, format!("TLS with {}:{}: {e}", ep.host, ep.port)))?;
    Ok(Box::new(tls))
}

/// Take one snapshot of `spec` into its `backup.to` entry.
pub async fn run(aws: &Aws, spec: &RedisSpec, default_region: &str, pending: &Pending) -> Result<Done, JobError> {
    let to = spec.backup.as_ref().ok_or_else(|| {
        JobError::failed(
            Stage::Prepare,
            format!("redis.{} has no `backup:` in the policy (backup: {{to: s3.BUCKET.backups.ENTRY}})", spec.name),
        )
    })?;
    let url = spec.url.expose();
    let ep = rdb::endpoint(url).map_err(|e| e.map_message(|m| scrub(&m, url)))?;
    let io = open(&ep, Duration::from_secs(spec.timeout_secs)).await.map_err(|e| e.map_message(|m| scrub(&m, url)))?;
    let mut src = rdb::Rdb::start(io, &ep).await.map_err(|e| e.map_message(|m| scrub(&m, url)))?;
    let region = to.region.clone().unwrap_or_else(|| default_region.to_string());
    let instance = format!("redis.{}", spec.name);
    if spec.encrypt_to.is_empty() {
        return jobs::upload_to(aws, &instance, to, &region, ".rdb", &mut src, pending)
            .await
            .map_err(|e| e.map_message(|m| scrub(&m, url)));
    }
    // Client-side encryption (age) of the snapshot stream.
    let mut enc = jobs::encrypt::Encrypting::new(src, &spec.encrypt_to)?;
    let ext = format!(".rdb{}", jobs::encrypt::EXT);
    jobs::upload_to(aws, &instance, to, &region, &ext, &mut enc, pending)
        .await
        .map_err(|e| e.map_message(|m| scrub(&m, url)))
}
