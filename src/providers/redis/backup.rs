//! `backup run redis.NAME`: an RDB snapshot fetched over the network (the
//! replication protocol, as `redis-cli --rdb` does; `rdb.rs`) and stored
//! as the PostgreSQL dumps are: streamed into the entry with its SHA-256
//! sidecar, the multipart upload aborted on any failure.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use futures::future::{FutureExt, LocalBoxFuture};

use super::rdb::{self, Endpoint, Io};
use crate::aws::{Aws, Op};
use crate::jobs::upload::Pending;
use crate::jobs::{self, Done, Job, JobCtx, JobKind, Outcome};
use crate::policy::{scrub, BackupRef, Policy, RedisSpec};
use crate::tls::{client_config, Verify};

/// `backup run redis.NAME`: an RDB snapshot (a registered job).
pub struct SnapshotJob;

/// The instance `address` names, `redis.NAME`.
pub(crate) fn instance<'p>(policy: &'p Policy, address: &str) -> Option<&'p RedisSpec> {
    let name = address.strip_prefix("redis.")?;
    policy.redis.iter().find(|r| r.name == name)
}

impl Job for SnapshotJob {
    fn kind(&self) -> JobKind {
        JobKind::Backup
    }
    fn instances(&self, policy: &Policy) -> Vec<(String, bool)> {
        policy.redis.iter().map(|r| (format!("redis.{}", r.name), r.backup.is_some())).collect()
    }
    fn entry<'p>(&self, policy: &'p Policy, address: &str) -> Option<&'p BackupRef> {
        instance(policy, address)?.backup.as_ref()
    }
    fn run<'a>(
        &'a self,
        ctx: &'a JobCtx<'a>,
        policy: &'a Policy,
        address: &'a str,
    ) -> LocalBoxFuture<'a, Result<Outcome, String>> {
        async move {
            let spec = instance(policy, address).ok_or_else(|| format!("{address} is not in the policy"))?;
            run(ctx.aws, spec, &ctx.default_region, &ctx.pending).await.map(Outcome::Backup)
        }
        .boxed_local()
    }
    fn ops(&self) -> &'static [Op] {
        jobs::upload::OPS
    }
}

/// A connection to the server: TCP, or TLS for `rediss://` (the system's
/// roots, or no check with `#insecure`).
pub async fn open(ep: &Endpoint, timeout: Duration) -> Result<Box<dyn Io>, String> {
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ep.host.as_str(), ep.port)))
        .await
        .map_err(|_| format!("connecting to {}:{} timed out", ep.host, ep.port))?
        .map_err(|e| format!("cannot connect to {}:{}: {e}", ep.host, ep.port))?;
    if !ep.tls {
        return Ok(Box::new(tcp));
    }
    let config = if ep.insecure {
        client_config(Verify::Nothing, None)?
    } else {
        client_config(Verify::Full, Some("system".into()))?
    };
    let name = ServerName::try_from(ep.host.clone()).map_err(|e| format!("{}: {e}", ep.host))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {}:{}: {e}", ep.host, ep.port))?;
    Ok(Box::new(tls))
}

/// Take one snapshot of `spec` into its `backup.to` entry.
pub async fn run(aws: &Aws, spec: &RedisSpec, default_region: &str, pending: &Pending) -> Result<Done, String> {
    let to = spec.backup.as_ref().ok_or_else(|| {
        format!("redis.{} has no `backup:` in the policy (backup: {{to: s3.BUCKET.backups.ENTRY}})", spec.name)
    })?;
    let url = spec.url.expose();
    let ep = rdb::endpoint(url).map_err(|e| scrub(&e, url))?;
    let io = open(&ep, Duration::from_secs(spec.timeout_secs)).await.map_err(|e| scrub(&e, url))?;
    let mut src = rdb::Rdb::start(io, &ep).await.map_err(|e| scrub(&e, url))?;
    let region = to.region.clone().unwrap_or_else(|| default_region.to_string());
    jobs::upload_to(aws, &format!("redis.{}", spec.name), to, &region, ".rdb", &mut src, pending)
        .await
        .map_err(|e| scrub(&e, url))
}
