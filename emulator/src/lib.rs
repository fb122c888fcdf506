//! A local, durable, fast emulator of the Azure Storage Queue and Blob REST APIs.
//!
//! Start it inside a test:
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = emulator::Emulator::in_memory().start().await?;
//! let conn = emulator.connection_string(); // hand this to any Azure SDK
//! emulator.clock().advance_ms(60_000);     // move time for TTL / visibility tests
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod blob;
pub(crate) mod clock;
pub(crate) mod config;
mod console;
pub mod events;
pub mod faults;
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz_entry;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod protocol;
pub(crate) mod queue;
pub mod request_log;
pub(crate) mod router;
pub(crate) mod seed;
pub(crate) mod state;
pub(crate) mod store;
pub use store::events::Subscription as EventSubscription;
pub use store::SnapshotInfo;

use http::listener;
use http::request::Service;
use state::AppState;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use clock::Clock;
pub use config::{Account, Accounts, Config, DurabilityMode, DEV_ACCOUNT, DEV_KEY};
pub use http::tls::TlsFiles;
#[doc(hidden)]
pub use rustls;

/// The `--healthcheck` probe's TLS client (accepts any certificate: it only asks its own
/// server on loopback whether it is up).
#[doc(hidden)]
pub fn health_probe_tls(host: std::net::IpAddr) -> Option<rustls::ClientConnection> {
    http::tls::health_probe(host)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::OpenError),
    #[error("TLS: {0}")]
    Tls(#[from] http::tls::TlsError),
    #[error("--oauth basic needs HTTPS (--cert): Azure refuses bearer tokens over plain HTTP")]
    OAuthWithoutTls,
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
    #[error("--eventSubscription: {0}")]
    Events(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Builder for an emulator instance.
#[derive(Clone, Debug)]
pub struct Emulator {
    config: Config,
}

impl Emulator {
    pub fn new(config: Config) -> Self {
        Emulator { config }
    }

    /// In-memory store, loopback, ports picked by the OS: what a test wants.
    pub fn in_memory() -> Self {
        let mut config = Config::default();
        config.blob_addr.set_port(0);
        config.queue_addr.set_port(0);
        Emulator { config }
    }

    /// Keep data in `dir` (durable across restarts).
    pub fn location(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.location = Some(dir.into());
        self
    }

    pub fn accounts(mut self, accounts: Accounts) -> Self {
        self.config.accounts = accounts;
        self
    }

    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Opens the store, binds both ports and starts serving.
    pub async fn start(self) -> Result<RunningEmulator, StartError> {
        let config = self.config;
        if config.oauth && config.tls.is_none() {
            return Err(StartError::OAuthWithoutTls);
        }
        // The identity is read once (a PFX costs a key derivation): for the server, and
        // as a root copy sources may present.
        let (tls, own_certs) = match &config.tls {
            Some(files) => {
                let (certs, key) = http::tls::load_identity(files)?;
                let acceptor = tokio_rustls::TlsAcceptor::from(http::tls::server_config(
                    files,
                    certs.clone(),
                    key,
                )?);
                (Some(acceptor), certs)
            }
            None => (None, Vec::new()),
        };
        let copy_trust = http::tls::CopyTrust::new(config.copy_source_ca.as_deref(), &own_certs)?;
        let clock = Clock::new();
        let store = store::Store::open_with(
            config.location.as_deref(),
            config.cache_bytes,
            clock.clone(),
            config.durability,
        )?;
        store.blobs.set_default_features(store::blob::Features {
            versioning: config.blob_versioning,
            container_retention_days: config.container_soft_delete_days,
        });
        if let Some(path) = &config.seed {
            let added = seed::load(&store, &config.accounts, path).await?;
            tracing::info!(
                containers = added.containers,
                blobs = added.blobs,
                queues = added.queues,
                messages = added.messages,
                "seeded"
            );
        }
        for sub in &config.event_subscriptions {
            let sub = events::validate(sub.clone(), &config)
                .map_err(|e| StartError::Events(e.to_string()))?;
            admin::subscribe_in(&store, sub)
                .await
                .map_err(|e| StartError::Events(e.to_string()))?;
        }
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        // A service not served (`azurite-blob`, `azurite-queue`) binds nothing: its port
        // stays free for another process.
        let queue_listener = match config.serve_queue {
            true => Some(bind(config.queue_addr).await?),
            false => None,
        };
        let blob_listener = match config.serve_blob {
            true => Some(bind(config.blob_addr).await?),
            false => None,
        };
        let local = |l: &Option<TcpListener>, addr: SocketAddr| match l {
            Some(l) => l
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source }),
            None => Ok(addr),
        };
        let queue_addr = local(&queue_listener, config.queue_addr)?;
        let blob_addr = local(&blob_listener, config.blob_addr)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let app = Arc::new(AppState {
            store,
            clock,
            requests: request_log::RequestLog::new(config.request_log),
            config,
            blob_addr,
            tls,
            copy_trust,
            copy_client: std::sync::OnceLock::new(),
            faults: faults::Faults::default(),
            metrics: metrics::Metrics::default(),
            gate: tokio::sync::RwLock::new(()),
            shutdown: shutdown_rx.clone(),
        });
        let mut tasks = Vec::new();
        for (listener, service) in [
            (queue_listener, Service::Queue),
            (blob_listener, Service::Blob),
        ] {
            if let Some(l) = listener {
                tasks.push(tokio::spawn(listener::serve(
                    l,
                    service,
                    app.clone(),
                    shutdown_rx.clone(),
                )));
            }
        }
        tasks.push(tokio::spawn(events::dispatcher(
            app.clone(),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(housekeeping(app.clone(), shutdown_rx)));
        Ok(RunningEmulator {
            queue_addr,
            blob_addr,
            app,
            shutdown: shutdown_tx,
            tasks,
        })
    }
}

/// Keys the purger may remove per housekeeping tick (about 20,000 messages a second).
const PURGE_BUDGET: usize = 40_960;

/// Sweeps expired messages and purges deleted queues in the background.
async fn housekeeping(app: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    // Every second a quick sweep; every five minutes a full one.
    let mut tick: u64 = 0;
    loop {
        let gate = app.gate.read().await;
        let work = app.clone();
        let full = tick.is_multiple_of(300);
        tick += 1;
        let result =
            tokio::task::spawn_blocking(move || -> Result<(), protocol::error::StorageError> {
                work.store.queues.sweep_expired(full)?;
                work.store.queues.purge_orphans(PURGE_BUDGET)?;
                Ok(())
            })
            .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "housekeeping failed");
        }
        // Soft-deleted data past its retention, blobs past their expiry.
        if let Err(e) = app.store.blobs.sweep_deadlines().await {
            tracing::warn!(error = %e, "blob retention sweep failed");
        }
        drop(gate);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = app.clock.advanced() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A running emulator. Dropping it without `shutdown` leaves the tasks running until the
/// runtime ends.
pub struct RunningEmulator {
    queue_addr: SocketAddr,
    blob_addr: SocketAddr,
    app: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningEmulator {
    pub fn queue_addr(&self) -> SocketAddr {
        self.queue_addr
    }

    pub fn blob_addr(&self) -> SocketAddr {
        self.blob_addr
    }

    fn first_account(&self) -> (String, String) {
        use base64::Engine;
        let a = self.app.config.accounts.first();
        let name = a
            .map(|a| a.name.clone())
            .unwrap_or_else(|| DEV_ACCOUNT.to_string());
        let key = a
            .and_then(|a| a.keys.first())
            .map(|k| base64::engine::general_purpose::STANDARD.encode(k))
            .unwrap_or_default();
        (name, key)
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.app.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `http://127.0.0.1:<port>/<account>` (`https` when serving TLS).
    pub fn queue_endpoint(&self) -> String {
        format!(
            "{}://{}/{}",
            self.scheme(),
            self.queue_addr,
            self.first_account().0
        )
    }

    pub fn blob_endpoint(&self) -> String {
        format!(
            "{}://{}/{}",
            self.scheme(),
            self.blob_addr,
            self.first_account().0
        )
    }

    /// A connection string for the first account, for any Azure SDK.
    pub fn connection_string(&self) -> String {
        let (name, key) = self.first_account();
        format!(
            "DefaultEndpointsProtocol={};AccountName={name};AccountKey={key};BlobEndpoint={};QueueEndpoint={};",
            self.scheme(),
            self.blob_endpoint(),
            self.queue_endpoint()
        )
    }

    pub fn clock(&self) -> &Clock {
        &self.app.clock
    }

    /// Empties one account (or all, with None) as `POST /_emulator/reset` does; returns how
    /// many queues and containers went.
    pub async fn reset(&self, account: Option<&str>) -> Result<(usize, usize), String> {
        let accounts: Vec<String> = match account {
            Some(a) => vec![a.to_string()],
            None => self
                .app
                .config
                .accounts
                .iter()
                .map(|a| a.name.clone())
                .collect(),
        };
        admin::reset_accounts(&self.app, &accounts)
            .await
            .map_err(|e| e.to_string())
    }

    /// Takes state snapshot `name` (replacing one of that name), as
    /// `POST /_emulator/snapshots/{name}` does.
    pub async fn snapshot(&self, name: &str) -> Result<store::SnapshotInfo, String> {
        let name = name.to_string();
        admin::exclusive(&self.app, move |s| s.create_snapshot(&name))
            .await
            .map_err(|e| e.to_string())
    }

    /// Makes the whole state snapshot `name`'s, as `.../snapshots/{name}/restore` does.
    pub async fn restore(&self, name: &str) -> Result<store::SnapshotInfo, String> {
        let name = name.to_string();
        admin::exclusive(&self.app, move |s| s.restore_snapshot(&name))
            .await
            .map_err(|e| e.to_string())
    }

    /// Adds (or replaces, by name) a blob event subscription, as `POST /_emulator/events`
    /// does; returns it completed with its defaults.
    pub async fn subscribe(&self, sub: EventSubscription) -> Result<EventSubscription, String> {
        admin::subscribe(&self.app, sub)
            .await
            .map_err(|e| e.to_string())
    }

    /// The metrics `GET /_emulator/metrics` serves (Prometheus text).
    pub fn metrics(&self) -> Result<String, String> {
        admin::metrics_text(&self.app).map_err(|e| e.to_string())
    }

    /// Fault injection rules, as `/_emulator/faults` manages them.
    pub fn faults(&self) -> &faults::Faults {
        &self.app.faults
    }

    /// The last requests, as `/_emulator/requests` lists them.
    pub fn requests(&self) -> &request_log::RequestLog {
        &self.app.requests
    }

    /// Stops accepting, lets in-flight requests finish, flushes the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let app = self.app.clone();
        let _ = tokio::task::spawn_blocking(move || app.store.close()).await;
    }
}
