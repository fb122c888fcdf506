//! SDK clients built from a connection string: Shared Key signing as a per-try policy, a
//! SAS token on every URL, or, with neither, a Microsoft Entra ID token (see `identity`).

use crate::connection_string::{ConnectionStringError, Credential, StorageAccount};
use crate::identity;
use crate::shared_key::SharedKeyPolicy;
use crate::transport::{self, TransportError};
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, RetryOptions, Transport, Url};
use azure_storage_blob::{BlobContainerClient, BlobServiceClient, BlobServiceClientOptions};
use azure_storage_queue::{QueueClient, QueueServiceClient, QueueServiceClientOptions};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    ConnectionString(#[from] ConnectionStringError),
    #[error("endpoint is not a usable URL: {0}")]
    Url(String),
    #[error(transparent)]
    Sdk(#[from] azure_core::Error),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Service clients for one storage account (share it behind an `Arc`).
pub struct Storage {
    pub account: StorageAccount,
    pub queues: QueueServiceClient,
    pub blobs: BlobServiceClient,
    /// The Entra ID credential, when requests carry tokens.
    pub token: Option<Arc<dyn TokenCredential>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Parses the connection string and builds both service clients, retrying transient
    /// failures the SDK's default way.
    pub fn connect(connection_string: &str) -> Result<Storage, ClientError> {
        Self::connect_with(connection_string, RetryOptions::default())
    }

    pub fn connect_with(
        connection_string: &str,
        retry: RetryOptions,
    ) -> Result<Storage, ClientError> {
        let account = StorageAccount::parse(connection_string)?;
        Self::from_account(account, retry)
    }

    /// The connection string, unless `blob_url` and `queue_url` are both given (then they
    /// name the endpoints and authorization is Entra ID, as for a connection string with
    /// endpoints and no secret).
    pub fn connect_urls(
        connection_string: &str,
        blob_url: Option<&str>,
        queue_url: Option<&str>,
        retry: RetryOptions,
    ) -> Result<Storage, ClientError> {
        match (blob_url, queue_url) {
            (Some(b), Some(q)) => Self::from_account(StorageAccount::from_urls(b, q)?, retry),
            _ => Self::connect_with(connection_string, retry),
        }
    }

    pub fn from_account(
        account: StorageAccount,
        retry: RetryOptions,
    ) -> Result<Storage, ClientError> {
        let transport = transport::transport(&[account.blob()?, account.queue()?])?;
        // No key and no SAS: Entra ID, unless anonymous access is asked for.
        let token = match account.credential {
            Credential::Anonymous
                if std::env::var(identity::CREDENTIAL_ENV).as_deref() != Ok("anonymous") =>
            {
                Some(identity::from_env(Some(transport.clone()))?)
            }
            _ => None,
        };
        let queues = QueueServiceClient::new(
            endpoint_url(account.queue()?, &account.credential)?,
            token.clone(),
            Some(QueueServiceClientOptions {
                client_options: client_options(&account.credential, retry.clone(), &transport),
                ..Default::default()
            }),
        )?;
        let blobs = BlobServiceClient::new(
            endpoint_url(account.blob()?, &account.credential)?,
            token.clone(),
            Some(BlobServiceClientOptions {
                client_options: client_options(&account.credential, retry, &transport),
                ..Default::default()
            }),
        )?;
        Ok(Storage {
            account,
            queues,
            blobs,
            token,
        })
    }

    pub fn queue(&self, name: &str) -> Result<QueueClient, ClientError> {
        Ok(self.queues.queue_client(name)?)
    }

    pub fn container(&self, name: &str) -> BlobContainerClient {
        self.blobs.blob_container_client(name)
    }

    /// The account name and key, when the connection string carries a key (needed to mint
    /// SAS tokens).
    pub fn signing_key(&self) -> Option<(&str, &[u8])> {
        match &self.account.credential {
            Credential::SharedKey { account, key } => Some((account, key)),
            _ => None,
        }
    }
}

/// Client options that authorize every try (after the retry policy, so each retry gets a
/// fresh `x-ms-date`).
pub fn client_options(
    credential: &Credential,
    retry: RetryOptions,
    transport: &Transport,
) -> ClientOptions {
    let mut per_try_policies: Vec<Arc<dyn Policy>> = Vec::new();
    if let Credential::SharedKey { account, key } = credential {
        per_try_policies.push(Arc::new(SharedKeyPolicy::new(account.clone(), key.clone())));
    }
    ClientOptions {
        per_try_policies,
        retry,
        transport: Some(transport.clone()),
        ..Default::default()
    }
}

fn endpoint_url(endpoint: &str, credential: &Credential) -> Result<Url, ClientError> {
    let raw = match credential {
        // The SDK builds request URLs from the endpoint and keeps its query, so the token
        // rides along on every request.
        Credential::Sas(token) => format!("{endpoint}?{token}"),
        _ => endpoint.to_string(),
    };
    Url::parse(&raw).map_err(|e| ClientError::Url(format!("{endpoint}: {e}")))
}
