//! The upload app: a person uploads images, they are streamed to Blob storage and a job is
//! queued for the worker; the gallery shows every job's state live.

pub mod config;
pub mod routes;
pub mod state;
pub mod templates;
pub mod upload;

pub use config::{Config, ImageUrls};

use azure_core::http::RetryOptions;
use state::AppState;
use std::sync::Arc;
use std::time::Duration;
use storage_client::job_store::{ensure_resources, JobStore};
use storage_client::Storage;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Builds the shared state and creates the containers and queues (retrying while storage
/// starts up).
pub async fn prepare(config: Config) -> anyhow::Result<Arc<AppState>> {
    let storage = Storage::connect_with(&config.connection_string, RetryOptions::default())?;
    let mut image_urls = config.image_urls;
    if image_urls == ImageUrls::Sas && storage.signing_key().is_none() {
        info!("no account key in the connection string: images are proxied");
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
    Ok(Arc::new(AppState {
        queue: storage.queue(&config.queue)?,
        jobs: JobStore::new(&storage),
        templates: templates::Templates::load()?,
        storage,
        config,
        image_urls,
    }))
}

/// Serves until `shutdown` fires, then finishes in-flight requests.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
