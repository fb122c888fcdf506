//! Microsoft Entra ID credentials for storage endpoints given without a key or SAS.
//!
//! `AZURE_STORAGE_CREDENTIAL` picks one:
//! - `auto` (the default): the first of these that is configured, in the order of the
//!   other SDKs' `DefaultAzureCredential`: a service principal's secret
//!   (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), workload identity
//!   (`AZURE_FEDERATED_TOKEN_FILE`), managed identity, then the developer's Azure CLI /
//!   Azure Developer CLI sign-in (`azure_identity::DeveloperToolsCredential`).
//! - `client-secret`, `workload-identity`, `managed-identity`, `developer-tools`: only that.
//! - `dev`: [`DevTokenCredential`], tokens for a local emulator run with `--oauth basic`.
//!   **For local use only**: real Azure refuses them (they are not signed by Entra ID).

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, Transport};
use azure_core::time::OffsetDateTime;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const CREDENTIAL_ENV: &str = "AZURE_STORAGE_CREDENTIAL";

/// The development token's tenant and object ids (fixed, so user delegation keys and
/// logs are stable across runs).
pub const DEV_TENANT: &str = "00000000-0000-0000-0000-00000000d0e7";
pub const DEV_OBJECT_ID: &str = "00000000-0000-0000-0000-0000000005e1";

/// Mints JWTs a local emulator's `--oauth basic` (ours or Azurite's) accepts: storage
/// audience, an Entra ID issuer, an hour's lifetime. Signed with HMAC under a fixed,
/// public key: they prove nothing, which is why only a local emulator takes them.
#[derive(Debug, Default, Clone)]
pub struct DevTokenCredential {
    _private: (),
}

impl DevTokenCredential {
    pub fn new() -> Arc<Self> {
        Arc::new(DevTokenCredential { _private: () })
    }

    /// A token valid from a minute ago for an hour.
    pub fn token_at(now: OffsetDateTime) -> (String, OffsetDateTime) {
        use hmac::Mac;
        let iat = now.unix_timestamp() - 60;
        let exp = now.unix_timestamp() + 3600;
        let claims = serde_json::json!({
            "aud": "https://storage.azure.com",
            "iss": format!("https://sts.windows.net/{DEV_TENANT}/"),
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "oid": DEV_OBJECT_ID,
            "tid": DEV_TENANT,
            "sub": DEV_OBJECT_ID,
            "appid": DEV_OBJECT_ID,
            "name": "storage-client development credential (local emulators only)",
            "ver": "1.0",
        });
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{head}.{body}");
        let sig = match hmac::Hmac::<sha2::Sha256>::new_from_slice(b"storage-client dev token") {
            Ok(mut m) => {
                m.update(signed.as_bytes());
                URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
            }
            Err(_) => String::new(),
        };
        (
            format!("{signed}.{sig}"),
            OffsetDateTime::from_unix_timestamp(exp).unwrap_or(now),
        )
    }
}

#[async_trait::async_trait]
impl TokenCredential for DevTokenCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let (token, expires_on) = Self::token_at(OffsetDateTime::now_utc());
        Ok(AccessToken::new(Secret::new(token), expires_on))
    }
}

/// Tries each credential until one gives a token, then keeps using that one.
#[derive(Debug)]
pub struct ChainedCredential {
    sources: Vec<(&'static str, Arc<dyn TokenCredential>)>,
    chosen: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenCredential for ChainedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.load(Ordering::Relaxed);
        if let Some((_, c)) = self.sources.get(chosen) {
            return c.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (i, (name, c)) in self.sources.iter().enumerate() {
            match c.get_token(scopes, options.clone()).await {
                Ok(t) => {
                    self.chosen.store(i, Ordering::Relaxed);
                    tracing::info!(credential = name, "Microsoft Entra ID token acquired");
                    return Ok(t);
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no Microsoft Entra ID credential gave a token ({}); set {CREDENTIAL_ENV} or sign in with `az login`",
                failures.join("; ")
            ),
        ))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The credential `AZURE_STORAGE_CREDENTIAL` names; `transport` carries the token
/// endpoints' requests too (so the CA handling is the same as for storage).
pub fn from_env(transport: Option<Transport>) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let choice = env(CREDENTIAL_ENV).unwrap_or_else(|| "auto".into());
    let options = || ClientOptions {
        transport: transport.clone(),
        ..Default::default()
    };
    let secret = || -> Option<azure_core::Result<Arc<dyn TokenCredential>>> {
        let (tenant, client, secret) = (
            env("AZURE_TENANT_ID")?,
            env("AZURE_CLIENT_ID")?,
            env("AZURE_CLIENT_SECRET")?,
        );
        Some(
            azure_identity::ClientSecretCredential::new(
                &tenant,
                client,
                Secret::new(secret),
                Some(azure_identity::ClientSecretCredentialOptions {
                    client_options: options(),
                }),
            )
            .map(|c| c as Arc<dyn TokenCredential>),
        )
    };
    let workload = || -> azure_core::Result<Arc<dyn TokenCredential>> {
        let mut o = azure_identity::WorkloadIdentityCredentialOptions::default();
        o.credential_options.client_options = options();
        Ok(azure_identity::WorkloadIdentityCredential::new(Some(o))? as Arc<dyn TokenCredential>)
    };
    let managed = || -> azure_core::Result<Arc<dyn TokenCredential>> {
        let user_assigned_id = env("AZURE_CLIENT_ID").map(azure_identity::UserAssignedId::ClientId);
        Ok(azure_identity::ManagedIdentityCredential::new(Some(
            azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id,
                client_options: options(),
            },
        ))? as Arc<dyn TokenCredential>)
    };
    let developer = || -> azure_core::Result<Arc<dyn TokenCredential>> {
        Ok(azure_identity::DeveloperToolsCredential::new(None)? as Arc<dyn TokenCredential>)
    };
    match choice.as_str() {
        "dev" => Ok(DevTokenCredential::new()),
        "client-secret" => secret().unwrap_or_else(|| {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "client-secret needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
            ))
        }),
        "workload-identity" => workload(),
        "managed-identity" => managed(),
        "developer-tools" => developer(),
        "auto" => {
            let mut sources: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();
            if let Some(c) = secret() {
                sources.push(("client secret", c?));
            }
            if env("AZURE_FEDERATED_TOKEN_FILE").is_some() {
                sources.push(("workload identity", workload()?));
            }
            sources.push(("managed identity", managed()?));
            sources.push(("developer tools", developer()?));
            Ok(Arc::new(ChainedCredential {
                sources,
                chosen: AtomicUsize::new(usize::MAX),
            }))
        }
        other => Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "{CREDENTIAL_ENV}={other}: expected auto, client-secret, workload-identity, managed-identity, developer-tools or dev"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_tokens_are_jwts_for_storage() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (token, exp) = DevTokenCredential::token_at(now);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://storage.azure.com");
        assert_eq!(claims["tid"], DEV_TENANT);
        assert_eq!(claims["exp"], 1_800_003_600);
        assert_eq!(exp.unix_timestamp(), 1_800_003_600);
    }
}
