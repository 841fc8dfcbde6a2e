//! TLS for the tool's own connections — PostgreSQL (sslmode as libpq), Redis
//! (`rediss://`) and webhook delivery — set up once, with rustls and the
//! aws-lc provider the AWS SDK already builds: how far the server's
//! certificate is checked, and against which roots.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why a TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("sslrootcert=system: no system root certificates were found")]
    NoSystemRoots,
    #[error("root certificate file \"{}\" cannot be read ({source}): give sslrootcert=PATH (or sslrootcert=system), or use sslmode=require", path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("TLS set-up: {0}")]
    SetUp(String),
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypted only (libpq's prefer/require, `#insecure`).
    Nothing,
    /// The chain to the roots (verify-ca).
    Chain,
    /// The chain and the host name (verify-full, and every HTTPS client).
    Full,
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The root certificates to check against: a PEM file, `system` (the
/// system's roots), or by default ~/.postgresql/root.crt (libpq's
/// `sslrootcert` conventions, which the other clients share).
fn roots(rootcert: Option<String>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    if rootcert.as_deref() == Some("system") {
        let found = rustls_native_certs::load_native_certs();
        for c in found.certs {
            let _ = store.add(c);
        }
        if store.is_empty() {
            return Err(TlsError::NoSystemRoots);
        }
        return Ok(store);
    }
    let path = match rootcert {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".postgresql/root.crt"),
    };
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(source) => return Err(TlsError::Unreadable { path, source }),
    };
    let mut n = 0;
    for c in rustls_pemfile_certs(&text) {
        store.add(c).map_err(|e| TlsError::BadCertificate { path: path.clone(), reason: e.to_string() })?;
        n += 1;
    }
    if n == 0 {
        return Err(TlsError::NoCertificate { path });
    }
    Ok(store)
}

/// The CERTIFICATE blocks of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).collect()
}

/// A client configuration that checks the server as `verify` says, against
/// `rootcert`'s roots.
pub fn client_config(verify: Verify, rootcert: Option<String>) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Chain | Verify::Full => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(rootcert)?), provider.clone())
                .build()
                .map_err(|e| TlsError::SetUp(e.to_string()))?;
            Arc::new(Checked { inner, names: verify == Verify::Full })
        }
        Verify::Nothing => Arc::new(Unchecked(provider.clone())),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::SetUp(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Encrypted, the certificate not checked (libpq's prefer / require;
/// `#insecure` Redis URLs).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// verify-ca (the chain only) and verify-full (the chain and the name).
#[derive(Debug)]
struct Checked {
    inner: Arc<WebPkiServerVerifier>,
    names: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // The chain was checked first; only the name differs.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
