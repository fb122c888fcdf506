//! SDK clients built from a connection string: Shared Key signing as a per-try policy, or a
//! SAS token on every URL, or anonymous.

use crate::connection_string::{ConnectionStringError, Credential, StorageAccount};
use crate::shared_key::SharedKeyPolicy;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, RetryOptions, Url};
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
}

/// Service clients for one storage account (share it behind an `Arc`).
pub struct Storage {
    pub account: StorageAccount,
    pub queues: QueueServiceClient,
    pub blobs: BlobServiceClient,
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

    pub fn from_account(
        account: StorageAccount,
        retry: RetryOptions,
    ) -> Result<Storage, ClientError> {
        let queues = QueueServiceClient::new(
            endpoint_url(account.queue()?, &account.credential)?,
            None,
            Some(QueueServiceClientOptions {
                client_options: client_options(&account.credential, retry.clone()),
                ..Default::default()
            }),
        )?;
        let blobs = BlobServiceClient::new(
            endpoint_url(account.blob()?, &account.credential)?,
            None,
            Some(BlobServiceClientOptions {
                client_options: client_options(&account.credential, retry),
                ..Default::default()
            }),
        )?;
        Ok(Storage {
            account,
            queues,
            blobs,
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
pub fn client_options(credential: &Credential, retry: RetryOptions) -> ClientOptions {
    let mut per_try_policies: Vec<Arc<dyn Policy>> = Vec::new();
    if let Credential::SharedKey { account, key } = credential {
        per_try_policies.push(Arc::new(SharedKeyPolicy::new(account.clone(), key.clone())));
    }
    ClientOptions {
        per_try_policies,
        retry,
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
