//! The Blob service's half of the store: containers, blobs, snapshots and staged blocks as
//! records in sled, their bytes as pieces (`extents`).
//!
//! The store owns bytes from the moment they arrive (`upload`) to the moment no record
//! references them (`pieces::free`). Every write is one operation here that takes the
//! received bytes and the request's `Preconditions`, checks the preconditions against the
//! current record inside the blob's lock, writes the new record, releases the lock, waits
//! for durability and only then frees the bytes the old record referenced. So a crash
//! never leaves a record pointing at freed data, and what a crash orphans is collected at
//! the next start (`gc`).
//!
//! Locks: container create and delete take `containers_lock` exclusively, every blob write
//! takes it shared and then one of 64 striped mutexes chosen by (account, container,
//! blob). Order: containers lock, then blob lock. Both are released before any wait.

mod blobs;
mod blocks;
mod containers;
pub mod extents;
mod files;
mod gc;
pub(crate) mod keys;
mod listing;
mod packs;
mod pages;
mod pieces;
mod records;
mod retention;
mod tags;
#[cfg(test)]
mod tests;
mod upload;
mod versions;

pub use blobs::{AppendLimits, DeleteMode, NewBlob};
pub use blocks::BlockSource;
pub use keys::version_slot as version_slot_of;
pub use listing::{ListItem, ListQuery};
pub use pages::{
    PageChange, PageRange, SequenceAction, SequenceCondition, MAX_PAGE_BLOB, MAX_SEQUENCE_NUMBER,
    PAGE,
};
pub use records::{BlobRecord, BlobType, ContainerRecord, ContentProperties};
pub use retention::{split_hidden, Expiry};
pub use upload::{Checksums, ChunkSource, Expect, Received};
pub use versions::{root_blob, Features, Protection};

use super::Core;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use parking_lot::{Mutex, RwLock};
use std::path::Path;
use std::sync::Arc;

/// Names one blob (the base blob or, with a snapshot id beside it, one of its snapshots).
#[derive(Debug, Clone, Copy)]
pub struct BlobName<'a> {
    pub account: &'a str,
    pub container: &'a str,
    pub blob: &'a str,
}

pub struct BlobStore {
    core: Core,
    extents: Arc<extents::Extents>,
    /// Container creation and deletion exclude every blob write.
    containers_lock: RwLock<()>,
    /// Striped per-blob locks serializing the writes of one blob.
    blob_locks: Vec<Mutex<()>>,
    /// Versioning and soft delete by account (cached; forgotten when a setting changes).
    protection: RwLock<std::collections::HashMap<String, Protection>>,
    default_features: RwLock<Features>,
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::internal(e)
}

fn blob_not_found() -> StorageError {
    StorageError::new(ErrorCode::BlobNotFound)
}

impl BlobStore {
    /// `power`: `--durability power` (packed small bodies are fdatasynced too).
    pub(super) fn open(core: Core, dir: Option<&Path>, power: bool) -> Result<BlobStore, String> {
        let extents =
            extents::Extents::open(dir, power).map_err(|e| format!("extents folder: {e}"))?;
        Ok(BlobStore {
            core,
            extents: Arc::new(extents),
            containers_lock: RwLock::new(()),
            blob_locks: (0..64).map(|_| Mutex::new(())).collect(),
            protection: RwLock::new(Default::default()),
            default_features: RwLock::new(Features::default()),
        })
    }

    fn blob_lock(&self, n: BlobName<'_>) -> &Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (n.account, n.container, n.blob).hash(&mut h);
        &self.blob_locks[(h.finish() % self.blob_locks.len() as u64) as usize]
    }

    fn now(&self) -> i64 {
        self.core.clock.now_ms()
    }

    /// The time and a fresh ETag for a write.
    fn bump(&self) -> Result<(i64, String)> {
        let now = self.now();
        let unique = self.core.next_id().map_err(internal)?;
        Ok((now, records::new_etag(now, unique)))
    }
}
