//! The HTTP client under the SDK's pipeline. Built here rather than by `azure_core`, whose
//! default panics (`failed to build reqwest client: No CA certificates were loaded from the
//! system`) on a machine without a CA store, even for plain `http://` storage.
//!
//! - Trust: the system's roots, plus the PEM certificates of `AZURE_STORAGE_CA_FILE` (how a
//!   local emulator's self-signed certificate is trusted without installing it).
//! - No system roots and no CA file: `http://` endpoints work as before; an `https://`
//!   endpoint is refused when the client is built, in one line that says what to do.

use azure_core::http::{HttpClient, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Extra PEM roots to trust for storage and token endpoints.
pub const CA_FILE_ENV: &str = "AZURE_STORAGE_CA_FILE";

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{path}: cannot read CA certificates: {reason}")]
    CaFile { path: String, reason: String },
    #[error(
        "no CA certificates: none were found on the system (install the ca-certificates package) \
         and {CA_FILE_ENV} is not set, so {endpoint} cannot be verified"
    )]
    NoRoots { endpoint: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

fn ca_certs(path: &Path) -> Result<Vec<reqwest::Certificate>, TransportError> {
    let fail = |reason: String| TransportError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let ders = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if ders.is_empty() {
        return Err(fail("no PEM certificate in the file".into()));
    }
    ders.iter()
        .map(|d| reqwest::Certificate::from_der(d.as_ref()).map_err(|e| fail(e.to_string())))
        .collect()
}

fn builder() -> reqwest::ClientBuilder {
    // What azure_core's default client sets: no redirects (storage never redirects), the
    // same connect and read timeouts.
    reqwest::ClientBuilder::new()
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
}

/// A client for `endpoints`, trusting the system and `ca_file`.
pub fn client(
    endpoints: &[&str],
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, TransportError> {
    let extra = match ca_file {
        Some(p) => ca_certs(p)?,
        None => Vec::new(),
    };
    let with_system = builder().tls_certs_merge(extra.clone()).build();
    match with_system {
        Ok(c) => Ok(c),
        Err(system_error) => {
            // No system store. A CA file alone is enough; plain http needs no roots at all.
            if !extra.is_empty() {
                return builder()
                    .tls_certs_only(extra)
                    .build()
                    .map_err(|e| TransportError::Build(e.to_string()));
            }
            if let Some(endpoint) = endpoints.iter().find(|e| e.starts_with("https:")) {
                return Err(TransportError::NoRoots {
                    endpoint: endpoint.to_string(),
                });
            }
            builder()
                .tls_backend_preconfigured(refusing_tls())
                .build()
                .map_err(|e| TransportError::Build(format!("{e} (after: {system_error})")))
        }
    }
}

/// The SDK transport over [`client`], with the CA file from the environment.
pub fn transport(endpoints: &[&str]) -> Result<Transport, TransportError> {
    let ca = std::env::var_os(CA_FILE_ENV).filter(|v| !v.is_empty());
    let client = client(endpoints, ca.as_deref().map(Path::new))?;
    Ok(Transport::new(Arc::new(client) as Arc<dyn HttpClient>))
}

/// TLS that refuses every server: for a client that only ever speaks plain http.
fn refusing_tls() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions();
    match config {
        Ok(c) => c
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoRoots))
            .with_no_client_auth(),
        // Unreachable with the default provider; an empty store fails the same way.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    }
}

#[derive(Debug)]
struct NoRoots;

impl rustls::client::danger::ServerCertVerifier for NoRoots {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(format!(
            "no CA certificates on this system; set {CA_FILE_ENV}"
        )))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("no CA certificates".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("no CA certificates".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
