//! SDK clients signed with our Shared Key policy, and the error shape tests assert on.

use azure_core::error::ErrorKind;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, RetryOptions, Url};
use azure_storage_blob::{BlobServiceClient, BlobServiceClientOptions};
use azure_storage_queue::{QueueServiceClient, QueueServiceClientOptions};
use std::sync::Arc;

/// Client options that sign every try with Shared Key and never retry (a retried 500 would
/// hide the status a test asserts on).
pub fn shared_key_options(account: &str, key: &str) -> ClientOptions {
    ClientOptions {
        per_try_policies: vec![Arc::new(crate::shared_key::policy(account, key)) as Arc<dyn Policy>],
        retry: RetryOptions::none(),
        ..Default::default()
    }
}

/// `endpoint`: `http://host:port/account`, no trailing slash.
pub fn queue_service(endpoint: &str, account: &str, key: &str) -> QueueServiceClient {
    let options = QueueServiceClientOptions {
        client_options: shared_key_options(account, key),
        ..Default::default()
    };
    QueueServiceClient::new(
        Url::parse(endpoint).expect("endpoint URL"),
        None,
        Some(options),
    )
    .expect("queue client")
}

/// `endpoint`: `http://host:port/account`, no trailing slash.
pub fn blob_service(endpoint: &str, account: &str, key: &str) -> BlobServiceClient {
    let options = BlobServiceClientOptions {
        client_options: shared_key_options(account, key),
        ..Default::default()
    };
    BlobServiceClient::new(
        Url::parse(endpoint).expect("endpoint URL"),
        None,
        Some(options),
    )
    .expect("blob client")
}

/// (HTTP status, `x-ms-error-code`) of an SDK error; panics on non-HTTP errors.
pub fn status_code(e: &azure_core::Error) -> (u16, String) {
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => (u16::from(*status), error_code.clone().unwrap_or_default()),
        other => panic!("expected an HTTP error, got {other:?}: {e}"),
    }
}
