//! Azure Storage connection strings, parsed the way Microsoft's SDKs read them: `key=value`
//! pairs separated by `;`, keys case-insensitive, values may contain `=` (base64 keys, SAS
//! tokens), empty segments ignored.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::fmt;

/// The well-known development account every emulator accepts.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// What the app and worker use when `AZURE_STORAGE_CONNECTION_STRING` is not set.
pub const DEFAULT_CONNECTION_STRING: &str = "UseDevelopmentStorage=true";

/// How requests are authorized.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Account name and the decoded account key: requests are signed with Shared Key.
    SharedKey { account: String, key: Vec<u8> },
    /// A SAS token (without the leading `?`) appended to every request URL.
    Sas(String),
    /// Neither: requests carry a Microsoft Entra ID token (`identity`), or nothing when
    /// `AZURE_STORAGE_CREDENTIAL=anonymous` (then only public reads work).
    Anonymous,
}

impl fmt::Debug for Credential {
    // Never print secrets: connection strings end up in logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::SharedKey { account, .. } => f
                .debug_struct("SharedKey")
                .field("account", account)
                .field("key", &"<redacted>")
                .finish(),
            Credential::Sas(_) => f.write_str("Sas(<redacted>)"),
            Credential::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// A parsed connection string: where each service is and how to authorize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageAccount {
    /// The account name, when known (always with Shared Key).
    pub account: Option<String>,
    pub credential: Credential,
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    pub blob_endpoint: Option<String>,
    pub queue_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    #[error("connection string is empty")]
    Empty,
    #[error("connection string segment {index} has no '=' (expected Key=Value)")]
    MissingEquals { index: usize },
    #[error("connection string segment {index} has an empty key")]
    EmptyKey { index: usize },
    #[error("connection string setting '{0}' appears twice")]
    Duplicate(String),
    #[error("connection string setting '{0}' is not a known setting")]
    UnknownSetting(String),
    #[error("connection string setting '{key}' has an invalid value: {reason}")]
    InvalidValue { key: String, reason: String },
    #[error("connection string sets AccountKey but no AccountName")]
    KeyWithoutName,
    #[error("connection string sets both AccountKey and SharedAccessSignature; use one")]
    KeyAndSas,
    #[error("connection string names no {0} endpoint: set AccountName or {0}Endpoint")]
    NoEndpoint(&'static str),
    #[error("UseDevelopmentStorage=true cannot be combined with '{0}'")]
    DevelopmentConflict(String),
}

const KNOWN: &[&str] = &[
    "DefaultEndpointsProtocol",
    "AccountName",
    "AccountKey",
    "EndpointSuffix",
    "BlobEndpoint",
    "QueueEndpoint",
    "TableEndpoint",
    "FileEndpoint",
    "SharedAccessSignature",
    "UseDevelopmentStorage",
    "DevelopmentStorageProxyUri",
];

impl StorageAccount {
    /// Parses a connection string. Errors name the offending setting, never its value
    /// (which may be a key).
    pub fn parse(s: &str) -> Result<StorageAccount, ConnectionStringError> {
        let settings = split(s)?;
        let get = |name: &str| -> Option<&str> {
            settings
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };

        if let Some(v) = get("UseDevelopmentStorage") {
            if !v.eq_ignore_ascii_case("true") {
                return Err(invalid("UseDevelopmentStorage", "only 'true' is allowed"));
            }
            if let Some((k, _)) = settings.iter().find(|(k, _)| {
                !k.eq_ignore_ascii_case("UseDevelopmentStorage")
                    && !k.eq_ignore_ascii_case("DevelopmentStorageProxyUri")
            }) {
                return Err(ConnectionStringError::DevelopmentConflict(k.clone()));
            }
            let (scheme, host) = match get("DevelopmentStorageProxyUri") {
                Some(uri) => {
                    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
                        invalid("DevelopmentStorageProxyUri", "expected scheme://host")
                    })?;
                    let host = rest.trim_end_matches('/');
                    // The proxy replaces the host; the service ports stay the emulator's.
                    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
                    if host.is_empty() {
                        return Err(invalid("DevelopmentStorageProxyUri", "no host"));
                    }
                    (scheme.to_ascii_lowercase(), host.to_string())
                }
                None => ("http".to_string(), "127.0.0.1".to_string()),
            };
            return Ok(StorageAccount {
                account: Some(DEV_ACCOUNT.into()),
                credential: Credential::SharedKey {
                    account: DEV_ACCOUNT.into(),
                    key: STANDARD
                        .decode(DEV_KEY)
                        .map_err(|_| invalid("AccountKey", "not base64"))?,
                },
                blob_endpoint: Some(format!("{scheme}://{host}:10000/{DEV_ACCOUNT}")),
                queue_endpoint: Some(format!("{scheme}://{host}:10001/{DEV_ACCOUNT}")),
            });
        }
        if get("DevelopmentStorageProxyUri").is_some() {
            return Err(invalid(
                "DevelopmentStorageProxyUri",
                "only valid with UseDevelopmentStorage=true",
            ));
        }

        let protocol = match get("DefaultEndpointsProtocol") {
            None => "https".to_string(),
            Some(p) if p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https") => {
                p.to_ascii_lowercase()
            }
            Some(_) => {
                return Err(invalid(
                    "DefaultEndpointsProtocol",
                    "expected 'http' or 'https'",
                ))
            }
        };
        let account = match get("AccountName") {
            Some("") => return Err(invalid("AccountName", "empty")),
            Some(a) => Some(a.to_string()),
            None => None,
        };
        let suffix = match get("EndpointSuffix") {
            Some("") => return Err(invalid("EndpointSuffix", "empty")),
            Some(s) => s.trim_matches('.').to_string(),
            None => "core.windows.net".to_string(),
        };
        let credential = match (get("AccountKey"), get("SharedAccessSignature")) {
            (Some(_), Some(_)) => return Err(ConnectionStringError::KeyAndSas),
            (Some(key), None) => {
                let account = account
                    .clone()
                    .ok_or(ConnectionStringError::KeyWithoutName)?;
                let key = STANDARD
                    .decode(key)
                    .map_err(|_| invalid("AccountKey", "not valid base64"))?;
                if key.is_empty() {
                    return Err(invalid("AccountKey", "empty"));
                }
                Credential::SharedKey { account, key }
            }
            (None, Some(sas)) => {
                let sas = sas.trim_start_matches('?');
                if sas.is_empty() {
                    return Err(invalid("SharedAccessSignature", "empty"));
                }
                Credential::Sas(sas.to_string())
            }
            (None, None) => Credential::Anonymous,
        };
        let endpoint =
            |key: &str, service: &str| -> Result<Option<String>, ConnectionStringError> {
                match get(key) {
                    Some(url) => endpoint_url(key, url).map(Some),
                    None => Ok(account
                        .as_ref()
                        .map(|a| format!("{protocol}://{a}.{service}.{suffix}"))),
                }
            };
        let parsed = StorageAccount {
            blob_endpoint: endpoint("BlobEndpoint", "blob")?,
            queue_endpoint: endpoint("QueueEndpoint", "queue")?,
            account,
            credential,
        };
        for key in ["TableEndpoint", "FileEndpoint"] {
            if let Some(url) = get(key) {
                endpoint_url(key, url)?;
            }
        }
        if parsed.blob_endpoint.is_none() && parsed.queue_endpoint.is_none() {
            return Err(ConnectionStringError::NoEndpoint("Blob"));
        }
        Ok(parsed)
    }

    /// Endpoints given as URLs (no secret: Entra ID authorizes).
    pub fn from_urls(blob: &str, queue: &str) -> Result<StorageAccount, ConnectionStringError> {
        let mut a = StorageAccount {
            account: None,
            credential: Credential::Anonymous,
            blob_endpoint: Some(endpoint_url("AZURE_STORAGE_BLOB_URL", blob)?),
            queue_endpoint: Some(endpoint_url("AZURE_STORAGE_QUEUE_URL", queue)?),
        };
        a.account = a.account_name();
        Ok(a)
    }

    /// The account name: given, or read from the blob endpoint
    /// (`https://NAME.blob.core.windows.net` or path style `http://host:port/NAME`).
    pub fn account_name(&self) -> Option<String> {
        if let Some(a) = &self.account {
            return Some(a.clone());
        }
        let url = self
            .blob_endpoint
            .as_deref()
            .or(self.queue_endpoint.as_deref())?;
        let rest = url.split_once("://")?.1;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let first = path.split('/').next().unwrap_or("");
        if !first.is_empty() {
            return Some(first.to_string());
        }
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let (label, rest) = host.split_once('.')?;
        (rest.starts_with("blob.") || rest.starts_with("queue.")).then(|| label.to_string())
    }

    /// The blob endpoint, or an error saying the connection string lacks one.
    pub fn blob(&self) -> Result<&str, ConnectionStringError> {
        self.blob_endpoint
            .as_deref()
            .ok_or(ConnectionStringError::NoEndpoint("Blob"))
    }

    pub fn queue(&self) -> Result<&str, ConnectionStringError> {
        self.queue_endpoint
            .as_deref()
            .ok_or(ConnectionStringError::NoEndpoint("Queue"))
    }
}

fn invalid(key: &str, reason: &str) -> ConnectionStringError {
    ConnectionStringError::InvalidValue {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

fn endpoint_url(key: &str, url: &str) -> Result<String, ConnectionStringError> {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid(key, "expected an absolute http(s) URL"))?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(invalid(key, "expected an http or https URL"));
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid(key, "URL has no host"));
    }
    if url.contains(['?', '#', ' ']) {
        return Err(invalid(
            key,
            "URL must not carry a query, fragment or spaces",
        ));
    }
    Ok(url.to_string())
}

/// Splits into (canonical key, value) pairs, rejecting malformed and duplicate segments.
fn split(s: &str) -> Result<Vec<(String, String)>, ConnectionStringError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, segment) in s.split(';').enumerate() {
        let segment = segment.trim();
        if segment.is_empty() {
            continue;
        }
        let (k, v) = segment
            .split_once('=')
            .ok_or(ConnectionStringError::MissingEquals { index: i + 1 })?;
        let k = k.trim();
        if k.is_empty() {
            return Err(ConnectionStringError::EmptyKey { index: i + 1 });
        }
        let canonical = KNOWN
            .iter()
            .find(|known| known.eq_ignore_ascii_case(k))
            .ok_or_else(|| ConnectionStringError::UnknownSetting(k.to_string()))?;
        if out.iter().any(|(seen, _)| seen == canonical) {
            return Err(ConnectionStringError::Duplicate(canonical.to_string()));
        }
        out.push((canonical.to_string(), v.trim().to_string()));
    }
    if out.is_empty() {
        return Err(ConnectionStringError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key_of(a: &StorageAccount) -> Vec<u8> {
        match &a.credential {
            Credential::SharedKey { key, .. } => key.clone(),
            other => panic!("expected a key, got {other:?}"),
        }
    }

    #[test]
    fn development_storage() {
        let a = StorageAccount::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(a.account.as_deref(), Some(DEV_ACCOUNT));
        assert_eq!(
            a.blob_endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(
            a.queue_endpoint.as_deref(),
            Some("http://127.0.0.1:10001/devstoreaccount1")
        );
        assert_eq!(key_of(&a), STANDARD.decode(DEV_KEY).unwrap());
        // Keys are case-insensitive, and so is the value `true`.
        let b = StorageAccount::parse("usedevelopmentstorage=TRUE;").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn development_storage_proxy() {
        let a = StorageAccount::parse(
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://emulator:8080/",
        )
        .unwrap();
        assert_eq!(
            a.blob_endpoint.as_deref(),
            Some("http://emulator:10000/devstoreaccount1")
        );
        assert_eq!(
            a.queue_endpoint.as_deref(),
            Some("http://emulator:10001/devstoreaccount1")
        );
        assert_eq!(
            StorageAccount::parse("UseDevelopmentStorage=true;AccountName=x"),
            Err(ConnectionStringError::DevelopmentConflict(
                "AccountName".into()
            ))
        );
        assert!(matches!(
            StorageAccount::parse("UseDevelopmentStorage=false"),
            Err(ConnectionStringError::InvalidValue { .. })
        ));
        assert!(matches!(
            StorageAccount::parse("DevelopmentStorageProxyUri=http://x;AccountName=a"),
            Err(ConnectionStringError::InvalidValue { .. })
        ));
    }

    #[test]
    fn azure_account_with_suffix_and_protocol() {
        let a = StorageAccount::parse(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=a2V5PT0=;EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
        assert_eq!(
            a.blob_endpoint.as_deref(),
            Some("https://acme.blob.core.chinacloudapi.cn")
        );
        assert_eq!(
            a.queue_endpoint.as_deref(),
            Some("https://acme.queue.core.chinacloudapi.cn")
        );
        // A key whose base64 ends in '=' survives the split on the first '='.
        assert_eq!(key_of(&a), b"key==");
        let b = StorageAccount::parse("AccountName=acme;AccountKey=a2V5PT0=").unwrap();
        assert_eq!(
            b.blob_endpoint.as_deref(),
            Some("https://acme.blob.core.windows.net")
        );
        let c = StorageAccount::parse(
            "defaultendpointsprotocol=HTTP;ACCOUNTNAME=acme;accountkey=a2V5PT0=",
        )
        .unwrap();
        assert_eq!(
            c.queue_endpoint.as_deref(),
            Some("http://acme.queue.core.windows.net")
        );
    }

    #[test]
    fn explicit_endpoints_override() {
        let a = StorageAccount::parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};\
             BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
        ))
        .unwrap();
        assert_eq!(
            a.blob_endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(
            a.queue_endpoint.as_deref(),
            Some("http://127.0.0.1:10001/devstoreaccount1")
        );
    }

    #[test]
    fn sas_connection_string() {
        let a = StorageAccount::parse(
            "BlobEndpoint=https://acme.blob.core.windows.net/;QueueEndpoint=https://acme.queue.core.windows.net/;\
             FileEndpoint=https://acme.file.core.windows.net/;TableEndpoint=https://acme.table.core.windows.net/;\
             SharedAccessSignature=sv=2022-11-02&ss=bq&srt=sco&sp=rwdlacup&se=2030-01-01T00:00:00Z&sig=abc%2Bdef%3D",
        )
        .unwrap();
        assert_eq!(a.account, None);
        assert_eq!(
            a.credential,
            Credential::Sas(
                "sv=2022-11-02&ss=bq&srt=sco&sp=rwdlacup&se=2030-01-01T00:00:00Z&sig=abc%2Bdef%3D"
                    .into()
            )
        );
        assert_eq!(
            a.blob_endpoint.as_deref(),
            Some("https://acme.blob.core.windows.net")
        );
        // A leading '?' on the token is tolerated.
        let b = StorageAccount::parse("BlobEndpoint=https://x.example;SharedAccessSignature=?sv=1")
            .unwrap();
        assert_eq!(b.credential, Credential::Sas("sv=1".into()));
        assert_eq!(b.queue_endpoint, None);
        assert!(b.queue().is_err());
    }

    #[test]
    fn anonymous_with_endpoint_only() {
        let a =
            StorageAccount::parse("BlobEndpoint=http://localhost:10000/devstoreaccount1").unwrap();
        assert_eq!(a.credential, Credential::Anonymous);
    }

    #[test]
    fn errors_name_the_setting_but_never_the_key() {
        let secret = "c2VjcmV0c2VjcmV0";
        let cases: Vec<(String, ConnectionStringError)> = vec![
            ("".into(), ConnectionStringError::Empty),
            (" ; ;".into(), ConnectionStringError::Empty),
            (
                format!("AccountName=a;{secret}"),
                ConnectionStringError::MissingEquals { index: 2 },
            ),
            ("=x".into(), ConnectionStringError::EmptyKey { index: 1 }),
            (
                "AccountName=a;accountname=b".into(),
                ConnectionStringError::Duplicate("AccountName".into()),
            ),
            (
                "AcountName=a".into(),
                ConnectionStringError::UnknownSetting("AcountName".into()),
            ),
            (
                format!("AccountKey={secret}"),
                ConnectionStringError::KeyWithoutName,
            ),
            (
                format!("AccountName=a;AccountKey={secret};SharedAccessSignature=sv=1"),
                ConnectionStringError::KeyAndSas,
            ),
            (
                "SharedAccessSignature=sv=1".into(),
                ConnectionStringError::NoEndpoint("Blob"),
            ),
        ];
        for (input, want) in cases {
            let got = StorageAccount::parse(&input).unwrap_err();
            assert_eq!(got, want, "{input}");
            assert!(!got.to_string().contains(secret), "{got}");
        }
        for (input, key) in [
            ("AccountName=a;AccountKey=not base64!", "AccountKey"),
            ("AccountName=a;AccountKey=", "AccountKey"),
            ("AccountName=", "AccountName"),
            (
                "AccountName=a;DefaultEndpointsProtocol=ftp",
                "DefaultEndpointsProtocol",
            ),
            ("AccountName=a;BlobEndpoint=localhost:10000", "BlobEndpoint"),
            ("AccountName=a;QueueEndpoint=ftp://x", "QueueEndpoint"),
            ("AccountName=a;BlobEndpoint=http://x/?sv=1", "BlobEndpoint"),
            ("AccountName=a;TableEndpoint=nope", "TableEndpoint"),
            ("AccountName=a;EndpointSuffix=", "EndpointSuffix"),
        ] {
            match StorageAccount::parse(input) {
                Err(ConnectionStringError::InvalidValue { key: k, .. }) => {
                    assert_eq!(k, key, "{input}")
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let a = StorageAccount::parse("UseDevelopmentStorage=true").unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains(&DEV_KEY[..12]), "{shown}");
        let s = StorageAccount::parse("BlobEndpoint=http://x;SharedAccessSignature=sig=topsecret")
            .unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
