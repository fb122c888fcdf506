//! The only module that knows about sled. Everything above it sees typed methods of
//! `store.queues` and `store.blobs`, each service's records, keys, locks and operations in
//! its own folder; this file opens the database, shares the group commit between them and
//! keeps what belongs to an account (service properties).
//!
//! Layout and invariants are written down in docs/design.md.

pub mod blob;
mod codec;
mod compact;
mod durability;
pub mod events;
mod ids;
pub mod keys;
pub mod queue;
mod snapshots;

pub use queue::{CreateOutcome, MessageView};
pub use snapshots::SnapshotInfo;

use crate::clock::Clock;
use crate::protocol::error::{Result, StorageError};
use crate::protocol::model::ServiceProperties;
use blob::BlobStore;
use codec::{decode, encode};
use durability::Durability;
use queue::QueueStore;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Bumped when the layout changes; checked at open. Format 1 also kept a durable
/// visibility index (`V`) and message counts (`C`); opening it drops those keys.
const FORMAT_VERSION: u64 = 2;
const FORMAT_KEY: &[u8] = b"format-version";
/// Present once the blob tag index has been built (stores from before it get it at open).
const TAG_INDEX_KEY: &[u8] = b"tag-index";
/// Present only while the store is closed after a clean shutdown.
const CLEAN_KEY: &[u8] = b"clean-shutdown";

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the store at {path}: {source}")]
    Sled { path: String, source: sled::Error },
    #[error("the store at {0} has format version {1}, this emulator reads {FORMAT_VERSION}")]
    Format(String, u64),
    #[error("the store is damaged: {0}")]
    Corrupt(String),
}

/// What both services' stores share: the database, the tree every record lives in, the
/// group commit and the clock.
#[derive(Clone)]
pub(crate) struct Core {
    db: sled::Db,
    /// Every record of both services (see docs/design.md for the key layout).
    data: sled::Tree,
    durability: Arc<Durability>,
    clock: Clock,
    /// What ids are drawn above (`ids.rs`).
    id_floor: u64,
}

impl Core {
    /// A new unique id.
    fn next_id(&self) -> sled::Result<u64> {
        ids::next(&self.db, self.id_floor)
    }

    /// Returns once every write made before the call is on disk.
    async fn durable(&self) -> Result<()> {
        self.durability.wait().await.map_err(StorageError::internal)
    }
}

/// Version 2 (2026-12-01) stores `AllowPermanentDelete` after the properties (version 1
/// is the properties alone).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ServiceRecord {
    properties: ServiceProperties,
    allow_permanent_delete: bool,
}

impl codec::Record for ServiceRecord {
    const VERSION: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Result<Self, codec::RecordError> {
        if version != 1 {
            return Err(codec::RecordError::Version(version));
        }
        Ok(ServiceRecord {
            properties: postcard::from_bytes(body)?,
            allow_permanent_delete: false,
        })
    }
}

/// Opens a sled database, waiting up to 2 s for the lock of a handle that is still going
/// away (a store dropped a moment ago: its flusher thread lets go of the database last).
fn open_locked(config: &sled::Config) -> sled::Result<sled::Db> {
    let mut tries = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::Other
                    && e.to_string().contains("could not acquire lock")
                    && tries < 40 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// The stored service properties of one account's service (the defaults if never set).
pub(crate) fn load_service_properties(
    data: &sled::Tree,
    account: &str,
    service: &str,
) -> Result<ServiceProperties> {
    Ok(
        match data
            .get(keys::service(account, service))
            .map_err(StorageError::internal)?
        {
            Some(v) => {
                let r = decode::<ServiceRecord>(&v).map_err(StorageError::internal)?;
                ServiceProperties {
                    allow_permanent_delete: r.allow_permanent_delete,
                    ..r.properties
                }
            }
            None => ServiceProperties::default(),
        },
    )
}

pub struct Store {
    core: Core,
    /// Service properties by (account, service): every request reads them for CORS.
    services:
        parking_lot::RwLock<std::collections::HashMap<(String, String), Arc<ServiceProperties>>>,
    pub queues: QueueStore,
    pub blobs: BlobStore,
    pub events: events::EventStore,
}

impl Store {
    /// Group commits so far and the writes they covered.
    pub fn flush_stats(&self) -> (u64, u64) {
        self.core.durability.stats()
    }

    /// Opens (or creates) a store in `dir`, or a temporary one when `dir` is None.
    #[cfg(test)]
    pub fn open(dir: Option<&Path>, cache_bytes: u64, clock: Clock) -> Result<Store, OpenError> {
        Self::open_with(
            dir,
            cache_bytes,
            clock,
            crate::config::DurabilityMode::Process,
        )
    }

    /// `open`, promising `mode` on every acknowledged write.
    pub fn open_with(
        dir: Option<&Path>,
        cache_bytes: u64,
        clock: Clock,
        mode: crate::config::DurabilityMode,
    ) -> Result<Store, OpenError> {
        let power = mode == crate::config::DurabilityMode::Power;
        let make = |p: &Path| {
            sled::Config::new()
                .cache_capacity(cache_bytes)
                .mode(sled::Mode::HighThroughput)
                // We flush ourselves (group commit) before acknowledging.
                .flush_every_ms(None)
                // A flush returns once its log writes are in the kernel: a killed process
                // loses none of them. Only power mode also waits for the disk: each log
                // buffer write fdatasynced (the rest of the store's files: `PowerSync`).
                .sync_log_writes(power)
                .sync_log_data(power)
                .path(p)
        };
        let path = dir
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "(temporary)".into());
        let sled_err = |source| OpenError::Sled {
            path: path.clone(),
            source,
        };
        let io_err = |e: std::io::Error| OpenError::Corrupt(format!("{path}: {e}"));
        let (db, sled_dir) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io_err)?;
                let live_dir = compact::live_dir(d).map_err(io_err)?;
                let db = open_locked(&make(&live_dir)).map_err(sled_err)?;
                let disk = compact::disk_bytes(&live_dir);
                // Cheap test first: a folder under the slack is never worth a scan.
                if disk > compact::SLACK {
                    let live = compact::live_bytes(&db).map_err(sled_err)?;
                    if compact::worth_it(d, disk, live) {
                        let to = compact::compact(d, &live_dir, db, live, make)
                            .map_err(|e| OpenError::Corrupt(format!("compacting {path}: {e}")))?;
                        if to == live_dir {
                            tracing::info!(
                                disk_mib = disk >> 20,
                                live_mib = live >> 20,
                                "a compacted copy would not be smaller: kept the store"
                            );
                        } else {
                            tracing::info!(
                                before_mib = disk >> 20,
                                after_mib = compact::disk_bytes(&to) >> 20,
                                live_mib = live >> 20,
                                "compacted the store"
                            );
                        }
                        (open_locked(&make(&to)).map_err(sled_err)?, Some(to))
                    } else {
                        (db, Some(live_dir))
                    }
                } else {
                    (db, Some(live_dir))
                }
            }
            None => (
                sled::Config::new()
                    .cache_capacity(cache_bytes)
                    .mode(sled::Mode::HighThroughput)
                    .flush_every_ms(None)
                    .temporary(true)
                    .open()
                    .map_err(sled_err)?,
                None,
            ),
        };
        let fresh = match db.get(FORMAT_KEY).map_err(sled_err)? {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .unwrap_or(u64::MAX);
                if found != FORMAT_VERSION && found != 1 {
                    return Err(OpenError::Format(path, found));
                }
                false
            }
            None => {
                db.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())
                    .map_err(sled_err)?;
                true
            }
        };
        let data = db.open_tree("data").map_err(sled_err)?;
        if !fresh {
            migrate(&db, &data).map_err(sled_err)?;
        }
        let was_clean = db.remove(CLEAN_KEY).map_err(sled_err)?.is_some();
        let id_floor = ids::open(&db, fresh).map_err(sled_err)?;
        let core = Core {
            id_floor,
            durability: Arc::new(Durability::new(
                db.clone(),
                dir.is_some(),
                sled_dir.filter(|_| power),
            )),
            db,
            data,
            clock,
        };
        let store = Store {
            queues: QueueStore::open(core.clone()).map_err(OpenError::Corrupt)?,
            blobs: BlobStore::open(core.clone(), dir, power).map_err(OpenError::Corrupt)?,
            events: events::EventStore::open(core.clone()).map_err(OpenError::Corrupt)?,
            core,
            services: Default::default(),
        };
        store.recover_snapshots().map_err(OpenError::Corrupt)?;
        if !was_clean && !fresh {
            tracing::warn!("the last shutdown was not clean: collecting orphaned bytes");
            store
                .blobs
                .collect_garbage()
                .map_err(|e| OpenError::Corrupt(e.to_string()))?;
        }
        if store
            .core
            .db
            .get(TAG_INDEX_KEY)
            .map_err(sled_err)?
            .is_none()
        {
            let n = store
                .blobs
                .build_tag_index()
                .map_err(|e| OpenError::Corrupt(e.to_string()))?;
            if n > 0 {
                tracing::info!(blobs = n, "built the blob tag index");
            }
            store.core.db.insert(TAG_INDEX_KEY, &[]).map_err(sled_err)?;
        }
        // Dead space in the packs of small bodies goes before serving starts.
        store
            .blobs
            .compact_packs()
            .map_err(|e| OpenError::Corrupt(format!("compacting packs: {e}")))?;
        // sled's id counter: a reopened store resumes at the persisted value plus two
        // persist intervals, and the first id drawn persists that resumed value, but only
        // in the log buffer. Drawn here and flushed below, it is on disk before any request
        // draws ids; otherwise a crash before the next flush would hand out the same ids
        // again, and a pack or extent file created with one of them before that crash (no
        // record had adopted it yet) made creating the new one fail (crash harness).
        store.core.next_id().map_err(sled_err)?;
        // A crash from here on must be detected at the next start.
        store.core.db.flush().map_err(sled_err)?;
        Ok(store)
    }

    /// Final checkpoint and flush at shutdown; marks the store as cleanly closed.
    pub fn close(&self) {
        let db = &self.core.db;
        let result = db
            .flush()
            .map_err(|e| e.to_string())
            .and_then(|_| db.insert(CLEAN_KEY, &[]).map_err(|e| e.to_string()))
            .and_then(|_| db.flush().map_err(|e| e.to_string()));
        if let Err(e) = result {
            tracing::error!(error = %e, "final flush failed");
        }
        self.core.durability.shutdown();
    }

    /// An account's service properties (the defaults until set); cached, since every
    /// request reads them for CORS.
    pub fn service_properties(
        &self,
        account: &str,
        service: &str,
    ) -> Result<Arc<ServiceProperties>> {
        let key = (account.to_string(), service.to_string());
        if let Some(p) = self.services.read().get(&key) {
            return Ok(p.clone());
        }
        let props = Arc::new(load_service_properties(&self.core.data, account, service)?);
        self.services.write().insert(key, props.clone());
        Ok(props)
    }

    pub async fn set_service_properties(
        &self,
        account: &str,
        service: &str,
        properties: ServiceProperties,
    ) -> Result<()> {
        {
            let mut cache = self.services.write();
            self.core
                .data
                .insert(
                    keys::service(account, service),
                    encode(&ServiceRecord {
                        allow_permanent_delete: properties.allow_permanent_delete,
                        properties: properties.clone(),
                    }),
                )
                .map_err(StorageError::internal)?;
            cache.insert(
                (account.to_string(), service.to_string()),
                Arc::new(properties),
            );
            // A new retention policy applies at once (Azure takes about 30 seconds).
            self.blobs.forget_protection(account);
        }
        self.core.durable().await
    }
}

/// Brings an older store to the current format. Idempotent: a crash part-way through
/// redoes it at the next open, since the version is written last.
fn migrate(db: &sled::Db, data: &sled::Tree) -> sled::Result<()> {
    let version = db
        .get(FORMAT_KEY)?
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes));
    if version != Some(1) {
        return Ok(());
    }
    tracing::info!("upgrading the store from format 1 to {FORMAT_VERSION}");
    for kind in [keys::LEGACY_VISIBLE, keys::LEGACY_COUNT] {
        loop {
            let chunk: Vec<sled::IVec> = data
                .scan_prefix([kind])
                .keys()
                .take(4096)
                .collect::<sled::Result<_>>()?;
            if chunk.is_empty() {
                break;
            }
            let mut batch = sled::Batch::default();
            for k in chunk {
                batch.remove(k);
            }
            data.apply_batch(batch)?;
        }
    }
    db.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

impl Drop for Store {
    fn drop(&mut self) {
        self.core.durability.shutdown();
    }
}
