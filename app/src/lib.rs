//! The upload app: a person uploads images, they are streamed to Blob storage and a job is
//! queued for the worker; the gallery shows every job's state live.

pub mod config;
pub mod live;
pub mod manage;
pub mod routes;
pub mod state;
pub mod templates;
pub mod upload;

pub use config::{Config, ImageUrls};

use azure_core::http::RetryOptions;
use state::AppState;
use std::sync::Arc;
use std::time::Duration;
use storage_client::delegation;
use storage_client::job_store::{ensure_resources, JobStore};
use storage_client::Storage;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Builds the shared state and creates the containers and queues (retrying while storage
/// starts up).
pub async fn prepare(config: Config) -> anyhow::Result<Arc<AppState>> {
    let storage = Storage::connect_urls(
        &config.connection_string,
        config.blob_url.as_deref(),
        config.queue_url.as_deref(),
        RetryOptions::default(),
    )?;
    let mut image_urls = config.image_urls;
    if image_urls == ImageUrls::Sas && storage.signing_key().is_none() && storage.token.is_none() {
        info!("no account key and no Entra ID credential: images are proxied");
        image_urls = ImageUrls::Proxy;
    }
    let mut wait = Duration::from_millis(100);
    loop {
        match ensure_resources(&storage, &config.queue).await {
            Ok(()) => break,
            Err(e) if wait < Duration::from_secs(10) => {
                warn!(error = %e, "storage not ready; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // With a token and no key, image links are user delegation SAS URLs.
    let delegation = if image_urls == ImageUrls::Sas && storage.signing_key().is_none() {
        match delegation::fetch(&storage.blobs, KEY_LIFETIME).await {
            Ok(k) => Some(k),
            Err(e) => {
                warn!(error = %e, "no user delegation key (the identity may lack the Storage Blob Delegator role): images are proxied");
                image_urls = ImageUrls::Proxy;
                None
            }
        }
    } else {
        None
    };
    let refresh = delegation.is_some();
    let state = Arc::new(AppState {
        queue: storage.queue(&config.queue)?,
        jobs: JobStore::new(&storage),
        templates: templates::Templates::load()?,
        storage,
        config,
        image_urls,
        delegation: std::sync::RwLock::new(delegation),
        live: live::Live::default(),
        stopping: CancellationToken::new(),
    });
    if refresh {
        tokio::spawn(refresh_delegation_key(Arc::downgrade(&state)));
    }
    Ok(state)
}

/// How long a user delegation key is asked for (Azure allows up to seven days).
const KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// Renews the user delegation key well before it expires, for as long as the app runs.
async fn refresh_delegation_key(state: std::sync::Weak<AppState>) {
    loop {
        tokio::time::sleep(Duration::from_secs(300)).await;
        let Some(state) = state.upgrade() else {
            return;
        };
        let expires = state
            .delegation
            .read()
            .ok()
            .and_then(|k| k.as_ref().map(|k| k.expires_at));
        if expires.is_some_and(|t| t - chrono::Utc::now() > KEY_LIFETIME / 2) {
            continue;
        }
        match delegation::fetch(&state.storage.blobs, KEY_LIFETIME).await {
            Ok(k) => {
                if let Ok(mut slot) = state.delegation.write() {
                    *slot = Some(k);
                }
            }
            Err(e) => warn!(error = %e, "renewing the user delegation key failed; retrying"),
        }
    }
}

/// Serves until `shutdown` fires, then finishes in-flight requests.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let stopping = state.stopping.clone();
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            stopping.cancel();
        })
        .await
}
