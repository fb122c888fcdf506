//! What every handler shares: storage clients, the job store and the templates.

use crate::config::{Config, ImageUrls};
use crate::templates::Templates;
use azure_storage_queue::QueueClient;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use storage_client::delegation::DelegationKey;
use storage_client::job::{JobRecord, Output};
use storage_client::job_store::JobStore;
use storage_client::sas::{blob_sas_query, encode_blob_path};
use storage_client::Storage;

pub struct AppState {
    pub config: Config,
    pub storage: Storage,
    pub queue: QueueClient,
    pub jobs: JobStore,
    pub templates: Templates,
    pub image_urls: ImageUrls,
    /// The user delegation key image links are signed with when requests carry an Entra ID
    /// token (no account key to sign with); refreshed in the background.
    pub delegation: std::sync::RwLock<Option<DelegationKey>>,
    /// Live-update streams for the pages.
    pub live: crate::live::Live,
    /// Fires when the app stops, ending the live streams so shutdown is not held up.
    pub stopping: tokio_util::sync::CancellationToken,
}

/// A job as pages and the JSON API show it.
#[derive(Serialize, Debug, Clone)]
pub struct JobView {
    pub id: String,
    pub state: &'static str,
    pub reason: Option<String>,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub attempts: u64,
    pub uploaded: String,
    pub updated: String,
    pub took_ms: Option<u64>,
    pub original_url: String,
    pub thumbnail: Option<ImageView>,
    pub web: Option<ImageView>,
}

#[derive(Serialize, Debug, Clone)]
pub struct ImageView {
    pub url: String,
    pub width: u32,
    pub height: u32,
}

impl AppState {
    /// A URL the browser can load `container/blob` from.
    pub fn image_url(&self, container: &str, blob: &str, now: DateTime<Utc>) -> String {
        let path = encode_blob_path(blob);
        // Expiry snapped to a 5-minute grid, so the URL (and the browser's cached copy)
        // stays the same across polls; always at least 10 minutes away.
        let bucket = now.duration_trunc(Duration::minutes(5)).unwrap_or(now);
        let expiry = bucket + Duration::minutes(15);
        let proxied = || format!("/media/{container}/{path}");
        let Ok(endpoint) = self.storage.account.blob() else {
            return proxied();
        };
        if self.image_urls != ImageUrls::Sas {
            return proxied();
        }
        if let Some((account, key)) = self.storage.signing_key() {
            let sas = blob_sas_query(account, key, container, blob, "r", expiry);
            return format!("{endpoint}/{container}/{path}?{sas}");
        }
        let key = self.delegation.read().ok().and_then(|k| k.clone());
        match (key, self.storage.account.account_name()) {
            (Some(key), Some(account)) if key.expires_at > expiry => {
                let sas = storage_client::delegation::blob_sas_query(
                    &account, &key, container, blob, "r", expiry,
                );
                format!("{endpoint}/{container}/{path}?{sas}")
            }
            _ => proxied(),
        }
    }

    pub fn view(&self, r: &JobRecord, now: DateTime<Utc>) -> JobView {
        let image = |o: &Option<Output>| {
            o.as_ref().map(|o| ImageView {
                url: self.image_url(storage_client::job::THUMBNAILS, &o.blob, now),
                width: o.width,
                height: o.height,
            })
        };
        JobView {
            id: r.id.to_string(),
            state: r.state.as_str(),
            reason: r.reason.clone(),
            file_name: r.file_name.clone(),
            content_type: r.content_type.clone(),
            size: r.size,
            attempts: r.attempts,
            uploaded: r
                .id
                .created()
                .map(storage_client::job::now_rfc3339)
                .unwrap_or_default(),
            updated: r.updated.clone(),
            took_ms: r.took_ms,
            original_url: self.image_url(storage_client::job::UPLOADS, &r.original, now),
            thumbnail: image(&r.thumbnail),
            web: image(&r.web),
        }
    }
}
