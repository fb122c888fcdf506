//! Time-driven removal on the emulator's clock: soft-deleted blobs, snapshots, versions
//! and containers purged when their retention passes, blobs gone at their expiry time
//! (Set Blob Expiry); and container soft delete and restore.
//!
//! Every deadline is an `X deadline what` key written in the batch that sets it. The
//! sweeper walks them in time order and re-checks the record each names, so an entry left
//! behind (the record undeleted, moved or rewritten) is simply dropped.

use super::containers::container_not_found;
use super::pages::RefDelta;
use super::records::{BlobRecord, Deletion};
use super::versions::Owners;
use super::{internal, keys, BlobName, BlobStore};
use crate::protocol::conditions::Preconditions;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::store::codec::{decode, encode};
use crate::store::keys::{BLOB, BLOCK, CONTAINER, DEADLINE, PAGE};

/// A base blob's name and tags.
type TaggedBlob = (String, Vec<(String, String)>);
/// Deadlines handled per sweep call (the rest wait for the next).
const SWEEP_BUDGET: usize = 4096;

/// Set Blob Expiry's `x-ms-expiry-option` with its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    /// Milliseconds after the blob's creation.
    RelativeToCreation(i64),
    /// Milliseconds from now.
    RelativeToNow(i64),
    /// A time (ms since the epoch).
    Absolute(i64),
}

/// The version a soft-deleted container is listed and restored by: 16 hex digits, the
/// deletion time in 100 ns units since 1601 (as Azure's look).
fn container_version(now_ms: i64, tick: u64) -> String {
    format!(
        "{:016X}",
        (now_ms as u64 + 11_644_473_600_000) * 10_000 + tick
    )
}

/// The stored name of a soft-deleted container.
pub fn hidden_name(name: &str, version: &str) -> String {
    format!("{name}{}{version}", keys::DELETED_CONTAINER)
}

/// (name, version) of a stored container name, the version for a soft-deleted one.
pub fn split_hidden(stored: &str) -> (&str, Option<&str>) {
    match stored.split_once(keys::DELETED_CONTAINER) {
        Some((n, v)) => (n, Some(v)),
        None => (stored, None),
    }
}

impl BlobStore {
    /// Purges what is due on the clock now. Returns how many deadlines it handled.
    pub async fn sweep_deadlines(&self) -> Result<usize> {
        let now = self.now();
        let start = vec![DEADLINE];
        let end = keys::deadline(now.saturating_add(1), &[]);
        let due: Vec<sled::IVec> = self
            .core
            .data
            .range(start..end)
            .keys()
            .take(SWEEP_BUDGET)
            .collect::<std::result::Result<_, _>>()
            .map_err(internal)?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut freed = Vec::new();
        for k in &due {
            let what = &k[9..];
            match what.first() {
                Some(&BLOB) => {
                    if let Some((account, container, blob, slot)) = keys::parse_blob_key(what) {
                        let n = BlobName {
                            account: &account,
                            container: &container,
                            blob: &blob,
                        };
                        freed.extend(self.purge_due_blob(n, &slot, now)?);
                    }
                }
                Some(&CONTAINER) => {
                    if let Some((account, stored)) = parse_container_key(what) {
                        let _guard = self.containers_lock.write();
                        let due = self
                            .container(&account, &stored)?
                            .and_then(|r| r.deleted)
                            .is_some_and(|d| d.purge_ms <= now);
                        if due {
                            freed.extend(self.purge_container(&account, &stored)?);
                        }
                    }
                }
                _ => {}
            }
            self.core.data.remove(k).map_err(internal)?;
        }
        self.core.durable().await?;
        self.free(&freed);
        Ok(due.len())
    }

    /// A blob record whose retention or expiry has passed goes for good.
    fn purge_due_blob(
        &self,
        n: BlobName<'_>,
        slot: &str,
        now: i64,
    ) -> Result<Vec<super::extents::Piece>> {
        let _c = self.containers_lock.read();
        let _b = self.blob_lock(n).lock();
        let Some(record) = self.blob_raw(n, slot)? else {
            return Ok(Vec::new());
        };
        let purge = record.deleted.is_some_and(|d| d.purge_ms <= now);
        let expire = record.deleted.is_none()
            && slot.is_empty()
            && record.expiry_ms.is_some_and(|e| e <= now);
        if !purge && !expire {
            return Ok(Vec::new());
        }
        let mut batch = sled::Batch::default();
        let mut owners = Owners::default();
        let mut delta = RefDelta::default();
        self.purge_record(&mut batch, &mut owners, &mut delta, n, slot, &record)?;
        if expire {
            // An expired blob goes with its snapshots.
            for id in self.snapshot_ids(n)? {
                if let Some(s) = self.blob_raw(n, &id)? {
                    self.purge_record(&mut batch, &mut owners, &mut delta, n, &id, &s)?;
                }
            }
        }
        let mut freed = self.apply_refs(&mut batch, delta)?;
        freed.extend(self.apply_owners(&mut batch, owners)?);
        self.core.data.apply_batch(batch).map_err(internal)?;
        if expire {
            self.unindex_tags(n, &record.tags, None)?;
            freed.extend(self.drop_staged(n)?);
        }
        Ok(freed)
    }

    /// Set Blob Expiry on the base blob; ETag and Last-Modified stay.
    pub async fn set_blob_expiry(
        &self,
        n: BlobName<'_>,
        expiry: Expiry,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        let now = self.now();
        let key = keys::blob(n.account, n.container, n.blob, "");
        self.change_blob(n, "", pre, false, None, |r| {
            let at = match expiry {
                Expiry::Never => None,
                Expiry::RelativeToCreation(ms) => Some(r.created_ms.saturating_add(ms)),
                Expiry::RelativeToNow(ms) => Some(now.saturating_add(ms)),
                Expiry::Absolute(at) => Some(at),
            };
            if at.is_some_and(|at| at <= now) {
                return Err(StorageError::invalid_header(
                    "x-ms-expiry-time",
                    &at.map(crate::clock::rfc1123).unwrap_or_default(),
                )
                .with_message("The expiry time must be in the future."));
            }
            if let Some(at) = at {
                self.core
                    .data
                    .insert(keys::deadline(at, &key), &[])
                    .map_err(internal)?;
            }
            r.expiry_ms = at;
            Ok(())
        })
        .await
    }

    /// Puts into `batch` what moves every blob, staged block and page run of container
    /// `from` to container `to` (a soft delete or a restore), with the deadlines of what
    /// moved. Returns the base blobs' tags (`live`: the ones to index or unindex).
    fn move_container_keys(
        &self,
        batch: &mut sled::Batch,
        account: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<TaggedBlob>> {
        let now = self.now();
        let mut tagged = Vec::new();
        for kind in [BLOB, BLOCK, PAGE] {
            let src = keys::blob_scope(kind, account, from);
            let dst = keys::blob_scope(kind, account, to);
            for item in self.core.data.scan_prefix(&src) {
                let (k, v) = item.map_err(internal)?;
                let mut nk = dst.clone();
                nk.extend_from_slice(&k[src.len()..]);
                if kind == BLOB {
                    let record: BlobRecord = decode(&v).map_err(internal)?;
                    if let Some(d) = record.deleted {
                        batch.insert(keys::deadline(d.purge_ms, &nk), &[]);
                    }
                    if let Some((blob, slot)) = keys::parse_blob_tail(&k[src.len()..]) {
                        if slot.is_empty() {
                            if let Some(e) = record.expiry_ms {
                                batch.insert(keys::deadline(e, &nk), &[]);
                            }
                            if Self::is_live(&record, "", now) && !record.tags.is_empty() {
                                tagged.push((blob, record.tags));
                            }
                        }
                    }
                }
                batch.remove(k);
                batch.insert(nk, v);
            }
        }
        Ok(tagged)
    }

    /// Delete Container with container soft delete on: the container and everything in
    /// it move to a hidden name until the retention passes.
    pub(super) async fn soft_delete_container(
        &self,
        account: &str,
        container: &str,
        pre: &Preconditions,
        days: u32,
    ) -> Result<()> {
        {
            let _guard = self.containers_lock.write();
            let mut record = self.require_container(account, container)?;
            pre.check(Some(record.current()), self.now())?;
            let now = self.now();
            let mut tick = 0;
            let hidden = loop {
                let h = hidden_name(container, &container_version(now, tick));
                if self.container(account, &h)?.is_none() {
                    break h;
                }
                tick += 1;
            };
            let mut batch = sled::Batch::default();
            let tagged = self.move_container_keys(&mut batch, account, container, &hidden)?;
            let d = Deletion::after_days(now, days);
            record.deleted = Some(d);
            let hidden_key = keys::container(account, &hidden);
            batch.insert(keys::deadline(d.purge_ms, &hidden_key), &[]);
            batch.insert(hidden_key, encode(&record));
            batch.remove(keys::container(account, container));
            self.core.data.apply_batch(batch).map_err(internal)?;
            for (blob, tags) in tagged {
                let n = BlobName {
                    account,
                    container,
                    blob: &blob,
                };
                self.unindex_tags(n, &tags, None)?;
            }
        }
        self.core.durable().await
    }

    /// Restore Container: the soft-deleted container `deleted_name` of `version` comes
    /// back as `container`, everything in it with it.
    pub async fn restore_container(
        &self,
        account: &str,
        container: &str,
        deleted_name: &str,
        version: &str,
    ) -> Result<()> {
        {
            let _guard = self.containers_lock.write();
            let hidden = hidden_name(deleted_name, version);
            let now = self.now();
            let mut record = self
                .container(account, &hidden)?
                .filter(|r| r.deleted.is_some_and(|d| d.purge_ms > now))
                .ok_or_else(container_not_found)?;
            if self.container(account, container)?.is_some() {
                return Err(StorageError::new(ErrorCode::ContainerAlreadyExists));
            }
            let mut batch = sled::Batch::default();
            let tagged = self.move_container_keys(&mut batch, account, &hidden, container)?;
            record.deleted = None;
            batch.remove(keys::container(account, &hidden));
            batch.insert(keys::container(account, container), encode(&record));
            for (blob, tags) in &tagged {
                let n = BlobName {
                    account,
                    container,
                    blob,
                };
                self.index_tags(n, tags)?;
            }
            self.core.data.apply_batch(batch).map_err(internal)?;
        }
        self.core.durable().await
    }
}

/// (account, stored container name) of a `K` key.
fn parse_container_key(k: &[u8]) -> Option<(String, String)> {
    let rest = k.strip_prefix(&[CONTAINER])?;
    let nul = rest.iter().position(|b| *b == 0)?;
    Some((
        String::from_utf8(rest[..nul].to_vec()).ok()?,
        String::from_utf8(rest[nul + 1..].to_vec()).ok()?,
    ))
}
