//! What every request handler can reach: the store, the clock and the configuration.

use crate::auth::{PolicySource, Principal};
use crate::clock::Clock;
use crate::config::Config;
use crate::http::request::RequestParts;
use crate::protocol::error::Result;
use crate::protocol::model::AccessPolicy;
use crate::router::Route;
use crate::store::Store;

pub struct AppState {
    pub store: Store,
    pub clock: Clock,
    pub config: Config,
    /// Where the Blob service really listens (the configured port may be 0): copy sources
    /// addressed here are read locally, any other host is fetched over HTTP.
    pub blob_addr: std::net::SocketAddr,
    /// The TLS acceptor when serving HTTPS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Roots for `https://` copy sources besides the system's.
    pub copy_trust: crate::http::tls::CopyTrust,
    /// Fetches copy sources of other hosts (http and https), pooled; built by the first
    /// remote copy (`copy_client`).
    pub copy_client: std::sync::OnceLock<Result<crate::blob::source::RemoteClient, String>>,
    /// Fault injection rules (`/_emulator/faults`).
    pub faults: crate::faults::Faults,
    /// Counters and histograms (`/_emulator/metrics`).
    pub metrics: crate::metrics::Metrics,
    /// The last requests (`/_emulator/requests`).
    pub requests: crate::request_log::RequestLog,
    /// Every request and background task holds this shared while it runs; a state
    /// snapshot or restore holds it exclusively.
    pub gate: tokio::sync::RwLock<()>,
    /// Flips to true at shutdown (ends live streams so connections can drain).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// The pooled client for copy sources of other hosts, built on first use (reading the
    /// system's CA roots is not worth every start).
    pub fn copy_client(&self) -> Result<&crate::blob::source::RemoteClient> {
        self.copy_client
            .get_or_init(|| {
                self.copy_trust
                    .client_config()
                    .map(crate::blob::source::remote_client)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(crate::protocol::error::StorageError::internal)
    }
}

impl PolicySource for AppState {
    fn queue_policy(&self, account: &str, queue: &str, id: &str) -> Result<Option<AccessPolicy>> {
        self.store.queues.queue_policy(account, queue, id)
    }

    fn container_policy(
        &self,
        account: &str,
        container: &str,
        id: &str,
    ) -> Result<Option<AccessPolicy>> {
        Ok(self
            .store
            .blobs
            .container(account, container)?
            .and_then(|c| c.acl.into_iter().find(|s| s.id == id).map(|s| s.policy)))
    }

    fn container_access(&self, account: &str, container: &str) -> Result<Option<Option<String>>> {
        Ok(self
            .store
            .blobs
            .container(account, container)?
            .map(|c| c.public_access))
    }
}

/// One authenticated request on its way to a handler.
pub struct Ctx<'a> {
    pub app: &'a std::sync::Arc<AppState>,
    pub req: &'a RequestParts,
    pub route: &'a Route,
    pub version: &'a str,
    /// Who authorization found the caller to be.
    pub principal: Principal,
}

impl Ctx<'_> {
    /// The request's SAS may create blobs but not overwrite them (`c` without `w`).
    pub fn create_only(&self) -> bool {
        matches!(self.principal, Principal::Sas { create_only: true })
    }

    /// The account's endpoint as the client addressed it (for `ServiceEndpoint`).
    pub fn service_endpoint(&self) -> String {
        let host = self.req.host().unwrap_or("127.0.0.1");
        let account = if self.route.secondary {
            format!("{}-secondary", self.route.account)
        } else {
            self.route.account.clone()
        };
        let scheme = if self.req.tls { "https" } else { "http" };
        if self.route.path_style {
            format!("{scheme}://{host}/{account}/")
        } else {
            format!("{scheme}://{host}/")
        }
    }
}
