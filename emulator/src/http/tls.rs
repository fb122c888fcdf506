//! TLS: the server's certificate (Azurite's `--cert`/`--key` PEM pair, or a PFX with
//! `--pwd`) and the trust roots for fetching `https://` copy sources.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the server's certificate and key come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// A PEM certificate chain, or a PKCS#12 (PFX) archive when `key` is None.
    pub cert: PathBuf,
    /// The PEM private key for a PEM chain.
    pub key: Option<PathBuf>,
    /// The PFX password.
    pub password: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

fn err(path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError(format!("{}: {what}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificate chain and key the files hold.
pub fn load_identity(
    files: &TlsFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    match &files.key {
        Some(key) => {
            let certs = read_pem_certs(&files.cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| err(key, format!("no usable private key ({e})")))?;
            Ok((certs, key))
        }
        None => {
            let data = std::fs::read(&files.cert).map_err(|e| err(&files.cert, e))?;
            let password = files.password.as_deref().unwrap_or("");
            let store = p12_keystore::KeyStore::from_pkcs12(
                &data,
                password,
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| {
                err(
                    &files.cert,
                    format!("not a PFX this password opens (use --key for a PEM pair): {e}"),
                )
            })?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| err(&files.cert, "the PFX holds no private key"))?;
            let certs: Vec<CertificateDer<'static>> = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            if certs.is_empty() {
                return Err(err(&files.cert, "the PFX holds no certificate for its key"));
            }
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
            Ok((certs, key))
        }
    }
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, e))?;
    if certs.is_empty() {
        return Err(err(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The server side: HTTP/1.1 only (the listener speaks nothing else).
pub fn server_config(
    files: &TlsFiles,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            err(
                &files.cert,
                format!("the key does not fit the certificate: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Trust for `https://` copy sources besides the system's roots: `--copySourceCa` (read
/// and checked at start) and the server's own certificate (so a copy from this emulator's
/// address works when it is not recognized as local). The system's roots are read only
/// when the first remote https copy needs them, not at every start.
#[derive(Debug, Default)]
pub struct CopyTrust {
    extra: Vec<CertificateDer<'static>>,
}

impl CopyTrust {
    pub fn new(
        extra_ca: Option<&Path>,
        own: &[CertificateDer<'static>],
    ) -> Result<CopyTrust, TlsError> {
        let mut extra = own.to_vec();
        if let Some(path) = extra_ca {
            let certs = read_pem_certs(path)?;
            let mut check = rustls::RootCertStore::empty();
            for cert in &certs {
                check
                    .add(cert.clone())
                    .map_err(|e| err(path, format!("not a usable CA certificate: {e}")))?;
            }
            extra.extend(certs);
        }
        Ok(CopyTrust { extra })
    }

    /// The client configuration, with the system's roots read now.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let _ = roots.add_parsable_certificates(native.certs);
        let _ = roots.add_parsable_certificates(self.extra.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?;
        if roots.is_empty() {
            // Nothing to trust: every https source fails its handshake with a clear reason
            // rather than the emulator refusing to start.
            return Ok(config
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Fixed { accept: false }))
                .with_no_client_auth());
        }
        Ok(config.with_root_certificates(roots).with_no_client_auth())
    }
}

/// A TLS client for the container health probe: it asks its own server on loopback
/// whether it is up, so any certificate is accepted.
pub fn health_probe(host: std::net::IpAddr) -> Option<rustls::ClientConnection> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Fixed { accept: true }))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(host.into());
    rustls::ClientConnection::new(Arc::new(config), name).ok()
}

/// A verifier that decides without roots: `accept` every certificate (the health probe
/// of its own server), or refuse every one saying no CA is known.
#[derive(Debug)]
struct Fixed {
    accept: bool,
}

impl Fixed {
    fn refusal() -> rustls::Error {
        rustls::Error::General(
            "no CA certificates: none on the system and no --copySourceCa".into(),
        )
    }
}

impl rustls::client::danger::ServerCertVerifier for Fixed {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(Self::refusal())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        if !self.accept {
            return Err(Self::refusal());
        }
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        if !self.accept {
            return Err(Self::refusal());
        }
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
