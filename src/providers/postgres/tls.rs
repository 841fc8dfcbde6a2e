//! Connecting to PostgreSQL as libpq does: `sslmode` (disable, allow,
//! prefer — the default —, require, verify-ca, verify-full) and
//! `sslrootcert` from the URL, with rustls (the TLS stack the AWS SDK
//! already builds). Managed services force TLS (RDS for PostgreSQL 15+:
//! `rds.force_ssl = 1`), so `NoTls` cannot reach them. The modes follow
//! the libpq documentation ("SSL Support", table "SSL Mode Descriptions"):
//! prefer and require encrypt without checking the certificate; verify-ca
//! checks it chains to the root certificates; verify-full also checks the
//! host name. The root certificates are `sslrootcert`, else
//! ~/.postgresql/root.crt, or the system's with `sslrootcert=system`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::tools::split_params;
use crate::jobs::{JobError, Stage};
use crate::policy::scrub;
use crate::tls::{client_config, Verify};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Connect to `url` honouring its sslmode and sslrootcert; the connection
/// task is spawned. Errors are one line, scrubbed of the URL's secrets.
pub async fn connect(url: &str, timeout: Duration) -> Result<tokio_postgres::Client, JobError> {
    let (plain, libpq) = split_params(url);
    let get = |k: &str| libpq.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mode = match get("sslmode").as_deref() {
        None | Some("prefer") => SslMode::Prefer,
        Some("disable") => SslMode::Disable,
        Some("allow") => SslMode::Allow,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some(other) => {
            return Err(JobError::failed(
                Stage::Connect,
                format!("invalid sslmode `{other}`: disable, allow, prefer, require, verify-ca or verify-full"),
            ))
        }
    };
    let mut cfg = tokio_postgres::Config::from_str(&plain)
        .map_err(|e| JobError::failed(Stage::Connect, scrub(&format!("invalid PostgreSQL URL: {e}"), url)))?;
    cfg.connect_timeout(timeout);
    let fail = |e: tokio_postgres::Error| {
        // The reason is in the source chain (a certificate error, a
        // refused pg_hba entry); say it, without the URL.
        let mut text = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            text = format!("{text}: {s}");
            src = s.source();
        }
        JobError::failed(Stage::Connect, scrub(&format!("cannot connect: {text}"), url))
    };
    if mode == SslMode::Disable {
        cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.map_err(fail)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        return Ok(client);
    }
    cfg.ssl_mode(match mode {
        SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let verify = match mode {
        SslMode::VerifyFull => Verify::Full,
        SslMode::VerifyCa => Verify::Chain,
        _ => Verify::Nothing,
    };
    let tls = MakeRustls {
        config: Arc::new(
            client_config(verify, get("sslrootcert")).map_err(|e| JobError::failed(Stage::Connect, e.to_string()))?,
        ),
    };
    let (client, conn) = cfg.connect(tls).await.map_err(fail)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// tokio-postgres's TLS hooks over tokio-rustls.
#[derive(Clone)]
struct MakeRustls {
    config: Arc<rustls::ClientConfig>,
}

struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name =
            ServerName::try_from(domain.to_string()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect { config: self.config.clone(), name })
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { connector.connect(self.name, stream).await.map(RustlsStream) })
    }
}

struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
