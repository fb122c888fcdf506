//! Blob writes that are not about blocks: Put Blob (and the copies that commit like it),
//! property, metadata, tag and seal changes, Append Block, snapshots, leases and delete.

use super::pages::{PageChange, RefDelta};
use super::records::{
    snapshot_id, BlobRecord, BlobType, CommittedBlock, ContentProperties, CopyInfo,
};
use super::upload::Received;
use super::versions::{Owners, Retire, Why};
use super::{blob_not_found, internal, keys, BlobName, BlobStore};
use crate::protocol::conditions::Preconditions;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::lease::{self, Lease};
use crate::protocol::model::Metadata;
use crate::protocol::tiers::{archived, Priority, Rehydration, Tier, TierState};
use crate::store::codec::encode;
use std::collections::HashSet;

/// What a new version of a blob is made of, besides its bytes.
#[derive(Debug, Clone)]
pub struct NewBlob {
    pub blob_type: BlobType,
    pub properties: ContentProperties,
    pub metadata: Metadata,
    pub tags: Vec<(String, String)>,
    /// A copied block blob keeps its source's committed block list.
    pub blocks: Vec<CommittedBlock>,
    pub append_blocks: u64,
    /// A copy destination records (copy id, source URL); the store adds length and time.
    pub copy: Option<(String, String)>,
    /// `x-ms-access-tier`, when the write names one (else the tier is inferred).
    pub tier: Option<Tier>,
    /// Page blobs: the declared size and the starting sequence number.
    pub page_size: u64,
    pub sequence_number: u64,
}

impl NewBlob {
    pub fn new(blob_type: BlobType) -> NewBlob {
        NewBlob {
            blob_type,
            properties: ContentProperties::default(),
            metadata: Vec::new(),
            tags: Vec::new(),
            blocks: Vec::new(),
            append_blocks: 0,
            copy: None,
            tier: None,
            page_size: 0,
            sequence_number: 0,
        }
    }

    /// The tier state a new blob with `tier` starts with.
    pub(super) fn tier_state(tier: Option<Tier>, now_ms: i64) -> TierState {
        TierState {
            tier,
            changed_ms: tier.map(|_| now_ms),
            rehydration: None,
        }
    }
}

/// The append-blob conditions of Append Block (412 when not met).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppendLimits {
    /// `x-ms-blob-condition-maxsize`
    pub max_size: Option<u64>,
    /// `x-ms-blob-condition-appendpos`
    pub append_pos: Option<u64>,
}

/// What Delete Blob removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteMode {
    /// The base blob; refused while it has snapshots.
    Base,
    Snapshot(String),
    IncludeSnapshots,
    OnlySnapshots,
    /// `deletetype=permanent`: a soft-deleted snapshot or version, for good.
    Permanent(String),
}

impl BlobStore {
    /// The live record at `snapshot` (a snapshot id, a version's slot, or empty for the
    /// base blob): soft-deleted and expired records are not found.
    pub fn blob(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        snapshot: &str,
    ) -> Result<Option<BlobRecord>> {
        let n = BlobName {
            account,
            container,
            blob,
        };
        let now = self.now();
        Ok(self
            .blob_raw(n, snapshot)?
            .filter(|r| Self::is_live(r, snapshot, now)))
    }

    /// The blob (or snapshot) a read addresses, with the read's preconditions checked.
    pub fn read_blob(
        &self,
        n: BlobName<'_>,
        snapshot: &str,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        self.require_container(n.account, n.container)?;
        let record = self
            .blob(n.account, n.container, n.blob, snapshot)?
            .ok_or_else(|| {
                let e = blob_not_found();
                if self.is_soft_deleted(n, snapshot) {
                    e.with_header("x-ms-is-soft-deleted", "true")
                } else {
                    e
                }
            })?;
        pre.check(Some(record.current()), self.now())?;
        Ok(record)
    }

    /// Refuses early what the current state already refuses, before a large body is read
    /// (the authoritative check runs again inside the commit's lock).
    pub fn precheck(
        &self,
        n: BlobName<'_>,
        pre: &Preconditions,
        must_exist: bool,
        want: Option<BlobType>,
    ) -> Result<()> {
        self.require_container(n.account, n.container)?;
        let current = self.blob(n.account, n.container, n.blob, "")?;
        match &current {
            None if must_exist => return Err(blob_not_found()),
            Some(c) if want.is_some_and(|t| t != c.blob_type) => {
                return Err(StorageError::new(ErrorCode::InvalidBlobType))
            }
            _ => {}
        }
        pre.check(current.as_ref().map(|c| c.current()), self.now())
    }

    /// Writes a record whose new pieces came from `adopted`; on failure those are freed
    /// at once (no record references them).
    fn insert_record(
        &self,
        key: Vec<u8>,
        record: &BlobRecord,
        adopted: &[super::extents::Piece],
    ) -> Result<()> {
        if let Err(e) = self.core.data.insert(key, encode(record)) {
            self.free(adopted);
            return Err(internal(e));
        }
        Ok(())
    }

    /// Put Blob, and every copy: the received bytes become the blob's content, replacing
    /// the current version (whose bytes, page runs and staged blocks are freed once this
    /// is durable).
    pub async fn put_blob(
        &self,
        n: BlobName<'_>,
        content: Received,
        new: NewBlob,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        self.put_blob_with(n, content, new, pre, None).await
    }

    /// Copy Blob of a page blob: the destination is a page blob with copies of the
    /// source's runs (sparse, however large the blob). `source` is the source's page run
    /// prefix.
    pub async fn copy_page_blob(
        &self,
        n: BlobName<'_>,
        source: BlobName<'_>,
        source_snapshot: &str,
        new: NewBlob,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        let from = Self::page_prefix(source, source_snapshot);
        let empty = self.receive_empty();
        self.put_blob_with(n, empty, new, pre, Some(&from)).await
    }

    async fn put_blob_with(
        &self,
        n: BlobName<'_>,
        content: Received,
        new: NewBlob,
        pre: &Preconditions,
        page_source: Option<&[u8]>,
    ) -> Result<BlobRecord> {
        let (record, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let protection = self.protection_of(n.account)?;
            let raw = self.blob_raw(n, "")?;
            let current = raw.clone().filter(|r| Self::is_live(r, "", self.now()));
            pre.check(current.as_ref().map(|c| c.current()), self.now())?;
            let (now, etag) = self.bump()?;
            let length = content.len();
            let mut batch = sled::Batch::default();
            let mut delta = RefDelta::default();
            let mut owners = Owners::default();
            let prefix = Self::page_prefix(n, "");
            let (version_id, dropped) = self.replace_base(
                &mut batch,
                &mut owners,
                &mut delta,
                &protection,
                n,
                current.as_ref(),
                raw,
                &[],
            )?;
            let mut pieces = content.adopt_into(&mut batch);
            if let Some(from) = page_source {
                pieces.extend(self.copy_page_runs(&mut batch, &mut delta, from, &prefix)?);
            }
            let record = BlobRecord {
                blob_type: new.blob_type,
                pieces: if new.blob_type == BlobType::Page {
                    Vec::new()
                } else {
                    pieces.clone()
                },
                blocks: new.blocks,
                properties: new.properties,
                metadata: new.metadata,
                tags: new.tags,
                append_blocks: new.append_blocks,
                tier: NewBlob::tier_state(new.tier, now),
                copy: new.copy.map(|(id, source)| CopyInfo {
                    id,
                    source,
                    length: if new.blob_type == BlobType::Page {
                        new.page_size
                    } else {
                        length
                    },
                    completed_ms: now,
                }),
                page_size: new.page_size,
                sequence_number: new.sequence_number,
                version_id,
                ..BlobRecord::successor(current.as_ref(), now, etag)
            };
            batch.insert(
                keys::blob(n.account, n.container, n.blob, ""),
                encode(&record),
            );
            let write = self
                .index_tags(n, &record.tags)
                .and_then(|()| {
                    let mut freed = self.apply_refs(&mut batch, delta)?;
                    freed.extend(self.apply_owners(&mut batch, owners)?);
                    Ok(freed)
                })
                .and_then(|freed| {
                    self.core.data.apply_batch(batch).map_err(internal)?;
                    Ok(freed)
                });
            let mut freed = match write {
                Ok(f) => f,
                Err(e) => {
                    self.free(&pieces);
                    return Err(e);
                }
            };
            if let Some(c) = current.as_ref().or(dropped.as_ref()) {
                self.unindex_tags(n, &c.tags, Some(&record.tags))?;
            }
            // A Put Blob also discards the blob's staged blocks, as Azure does.
            freed.extend(self.drop_staged(n)?);
            (record, freed)
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(record)
    }

    /// Applies `f` to the base blob (or a snapshot) after checking `pre`, under the blob's
    /// lock; `touch` gives it a new ETag and Last-Modified.
    pub(super) async fn change_blob(
        &self,
        n: BlobName<'_>,
        snapshot: &str,
        pre: &Preconditions,
        touch: bool,
        want: Option<BlobType>,
        f: impl FnOnce(&mut BlobRecord) -> Result<()>,
    ) -> Result<BlobRecord> {
        self.change_blob_with(n, snapshot, pre, touch, false, want, f)
            .await
    }

    /// `change_blob`; `new_version`: with versioning on, the record as it was stays as a
    /// previous version (sharing its bytes) and the change is a new current version.
    #[allow(clippy::too_many_arguments)]
    async fn change_blob_with(
        &self,
        n: BlobName<'_>,
        snapshot: &str,
        pre: &Preconditions,
        touch: bool,
        new_version: bool,
        want: Option<BlobType>,
        f: impl FnOnce(&mut BlobRecord) -> Result<()>,
    ) -> Result<BlobRecord> {
        let (record, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let mut record = self
                .blob(n.account, n.container, n.blob, snapshot)?
                .ok_or_else(blob_not_found)?;
            if want.is_some_and(|t| t != record.blob_type) {
                return Err(StorageError::new(ErrorCode::InvalidBlobType));
            }
            pre.check(Some(record.current()), self.now())?;
            let before = record.clone();
            f(&mut record)?;
            if touch {
                let (now, etag) = self.bump()?;
                record.etag = etag;
                record.last_modified_ms = now;
            }
            let mut batch = sled::Batch::default();
            let mut freed = Vec::new();
            let protection = self.protection_of(n.account)?;
            if new_version && snapshot.is_empty() {
                let mut owners = Owners::default();
                let mut delta = RefDelta::default();
                if let Some(id) = self.keep_previous_version(
                    &mut batch,
                    &mut owners,
                    &mut delta,
                    &protection,
                    n,
                    &before,
                )? {
                    record.version_id = Some(id);
                }
                freed.extend(self.apply_refs(&mut batch, delta)?);
                freed.extend(self.apply_owners(&mut batch, owners)?);
            }
            batch.insert(
                keys::blob(n.account, n.container, n.blob, snapshot),
                encode(&record),
            );
            self.core.data.apply_batch(batch).map_err(internal)?;
            (record, freed)
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(record)
    }

    pub async fn set_blob_metadata(
        &self,
        n: BlobName<'_>,
        metadata: Metadata,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        let now = self.now();
        self.change_blob_with(n, "", pre, true, true, None, |r| {
            r.refuse_if_incremental()?;
            if r.tier.is_offline(now) {
                return Err(archived());
            }
            r.metadata = metadata;
            Ok(())
        })
        .await
    }

    /// Set Blob Properties replaces every content header at once; `page` resizes a page
    /// blob or changes its sequence number.
    pub async fn set_blob_properties(
        &self,
        n: BlobName<'_>,
        properties: ContentProperties,
        page: Option<PageChange>,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        if let Some(change) = page {
            return self.change_page_blob(n, properties, change, pre).await;
        }
        let now = self.now();
        self.change_blob(n, "", pre, true, None, |r| {
            r.refuse_if_incremental()?;
            if r.tier.is_offline(now) {
                return Err(archived());
            }
            r.properties = properties;
            Ok(())
        })
        .await
    }

    /// Replaces a blob's (or snapshot's) tags; ETag and Last-Modified stay.
    pub async fn set_blob_tags(
        &self,
        n: BlobName<'_>,
        snapshot: &str,
        tags: Vec<(String, String)>,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        let indexed = snapshot.is_empty();
        self.change_blob(n, snapshot, pre, false, None, |r| {
            if indexed {
                self.index_tags(n, &tags)?;
            }
            let old = std::mem::replace(&mut r.tags, tags);
            if indexed {
                // Removed just before the record is written: the entry is missing only
                // for that moment, and the new tags' entries are already there.
                self.unindex_tags(n, &old, Some(&r.tags))?;
            }
            Ok(())
        })
        .await
    }

    pub async fn seal_blob(
        &self,
        n: BlobName<'_>,
        append_pos: Option<u64>,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        self.change_blob(n, "", pre, true, Some(BlobType::Append), |r| {
            if append_pos.is_some_and(|p| p != r.len()) {
                return Err(StorageError::new(ErrorCode::AppendPositionConditionNotMet));
            }
            r.sealed = true;
            Ok(())
        })
        .await
    }

    /// Appends received bytes to an append blob. Returns the new record and the offset
    /// the block landed at.
    pub async fn append_block(
        &self,
        n: BlobName<'_>,
        content: Received,
        limits: AppendLimits,
        pre: &Preconditions,
    ) -> Result<(BlobRecord, u64)> {
        let record = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let mut record = self
                .blob(n.account, n.container, n.blob, "")?
                .ok_or_else(blob_not_found)?;
            if record.blob_type != BlobType::Append {
                return Err(StorageError::new(ErrorCode::InvalidBlobType));
            }
            if record.sealed {
                return Err(StorageError::new(ErrorCode::BlobIsSealed));
            }
            pre.check(Some(record.current()), self.now())?;
            let offset = record.len();
            if limits.append_pos.is_some_and(|p| p != offset) {
                return Err(StorageError::new(ErrorCode::AppendPositionConditionNotMet));
            }
            if limits.max_size.is_some_and(|m| offset + content.len() > m) {
                return Err(StorageError::new(ErrorCode::MaxBlobSizeConditionNotMet));
            }
            if record.append_blocks >= 50_000 {
                return Err(StorageError::new(ErrorCode::BlockCountExceedsLimit));
            }
            let pieces = content.adopt(&self.core.data)?;
            record.pieces.extend(pieces.iter().copied());
            record.append_blocks += 1;
            let (now, etag) = self.bump()?;
            record.etag = etag;
            record.last_modified_ms = now;
            self.insert_record(
                keys::blob(n.account, n.container, n.blob, ""),
                &record,
                &pieces,
            )?;
            (record, offset)
        };
        self.core.durable().await?;
        Ok(record)
    }

    /// Applies a lease action to a blob. Leases leave the ETag and Last-Modified alone.
    pub async fn lease_blob(
        &self,
        n: BlobName<'_>,
        action: lease::Action,
        pre: &Preconditions,
    ) -> Result<(BlobRecord, lease::Outcome)> {
        let now = self.now();
        let mut outcome = None;
        let record = self
            .change_blob(n, "", pre, false, None, |r| {
                let (lease, o) = r.lease.apply(action, now)?;
                r.lease = lease;
                outcome = Some(o);
                Ok(())
            })
            .await?;
        let outcome = outcome.ok_or_else(|| internal("lease outcome missing"))?;
        Ok((record, outcome))
    }

    /// Deletes a blob, one of its snapshots or versions, or its snapshots, per `mode`:
    /// the records and page runs go in one batch. With versioning on, the base blob
    /// becomes a previous version; with soft delete on, what is deleted is kept (marked)
    /// until the retention passes. Returns whether the delete was permanent.
    pub async fn delete_blob(
        &self,
        n: BlobName<'_>,
        mode: DeleteMode,
        pre: &Preconditions,
    ) -> Result<bool> {
        let (permanent, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let protection = self.protection_of(n.account)?;
            let now = self.now();
            let mut batch = sled::Batch::default();
            let mut delta = RefDelta::default();
            let mut owners = Owners::default();
            let mut base_tags = None;
            let mut permanent = true;
            // A snapshot or version: soft-deleted where it is, or removed.
            let remove = |batch: &mut sled::Batch,
                          owners: &mut Owners,
                          delta: &mut RefDelta,
                          slot: &str,
                          record: BlobRecord|
             -> Result<bool> {
                match protection.blob_deletion(now) {
                    Some(d) => {
                        self.keep(batch, n, slot, slot, record, Some(d))?;
                        Ok(false)
                    }
                    None => {
                        self.purge_record(batch, owners, delta, n, slot, &record)?;
                        Ok(true)
                    }
                }
            };
            match &mode {
                DeleteMode::Permanent(slot) => {
                    if !protection.allow_permanent_delete {
                        return Err(StorageError::new(ErrorCode::PermanentDeleteNotEnabled));
                    }
                    let record = self.blob_raw(n, slot)?.ok_or_else(blob_not_found)?;
                    if record.deleted.is_none() {
                        return Err(StorageError::new(ErrorCode::BlobSnapshotNotSoftDeleted));
                    }
                    self.purge_record(&mut batch, &mut owners, &mut delta, n, slot, &record)?;
                }
                DeleteMode::Snapshot(slot) => {
                    let record = self
                        .blob(n.account, n.container, n.blob, slot)?
                        .ok_or_else(blob_not_found)?;
                    pre.check(Some(record.current()), now)?;
                    permanent = remove(&mut batch, &mut owners, &mut delta, slot, record)?;
                }
                _ => {
                    let record = self
                        .blob(n.account, n.container, n.blob, "")?
                        .ok_or_else(blob_not_found)?;
                    pre.check(Some(record.current()), now)?;
                    let snapshots = self.snapshot_ids(n)?;
                    if mode == DeleteMode::Base && !snapshots.is_empty() {
                        return Err(StorageError::new(ErrorCode::SnapshotsPresent));
                    }
                    for id in snapshots {
                        if let Some(s) = self.blob(n.account, n.container, n.blob, &id)? {
                            permanent &= remove(&mut batch, &mut owners, &mut delta, &id, s)?;
                        }
                    }
                    if mode != DeleteMode::OnlySnapshots {
                        base_tags = Some(record.tags.clone());
                        match self.retire(&protection, n, &record, Why::Delete)? {
                            Retire::Keep { slot, deleted } => {
                                permanent = false;
                                if !slot.is_empty() {
                                    batch.remove(keys::blob(n.account, n.container, n.blob, ""));
                                }
                                self.keep(&mut batch, n, "", &slot, record, deleted)?;
                            }
                            Retire::Drop => {
                                self.purge_record(
                                    &mut batch,
                                    &mut owners,
                                    &mut delta,
                                    n,
                                    "",
                                    &record,
                                )?;
                            }
                        }
                    }
                }
            }
            let mut freed = self.apply_refs(&mut batch, delta)?;
            freed.extend(self.apply_owners(&mut batch, owners)?);
            self.core.data.apply_batch(batch).map_err(internal)?;
            if let Some(tags) = base_tags {
                self.unindex_tags(n, &tags, None)?;
                freed.extend(self.drop_staged(n)?);
            }
            (permanent, freed)
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(permanent)
    }

    /// Ids of a blob's live snapshots, oldest first.
    pub(super) fn snapshot_ids(&self, n: BlobName<'_>) -> Result<Vec<String>> {
        let now = self.now();
        Ok(self
            .all_slots(n)?
            .into_iter()
            .filter(|(slot, r)| {
                !slot.is_empty()
                    && keys::slot_version(slot).is_none()
                    && Self::is_live(r, slot, now)
            })
            .map(|(slot, _)| slot)
            .collect())
    }

    /// A snapshot id the blob does not have yet (call under its lock): 100 ns ticks after
    /// the current millisecond.
    pub(super) fn fresh_snapshot_id(&self, n: BlobName<'_>) -> Result<String> {
        let now = self.now();
        let mut tick = 0;
        loop {
            let id = snapshot_id(now, tick);
            if self.blob_raw(n, &id)?.is_none() {
                return Ok(id);
            }
            tick += 1;
        }
    }

    /// Takes a read-only snapshot, sharing the base's bytes (`R` counts the owners).
    /// `metadata`, when given, replaces the base's metadata on the snapshot. With
    /// versioning on, the base as it was also stays as a previous version and the base
    /// gets a new version id. Returns the snapshot id and the base.
    pub async fn snapshot_blob(
        &self,
        n: BlobName<'_>,
        metadata: Option<Metadata>,
        pre: &Preconditions,
    ) -> Result<(String, BlobRecord)> {
        let (result, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let mut base = self
                .blob(n.account, n.container, n.blob, "")?
                .ok_or_else(blob_not_found)?;
            pre.check(Some(base.current()), self.now())?;
            base.refuse_if_incremental()?;
            if base.tier.is_offline(self.now()) {
                return Err(archived());
            }
            let protection = self.protection_of(n.account)?;
            let id = self.fresh_snapshot_id(n)?;
            let mut snap = base.clone();
            snap.lease = Lease::Available;
            snap.version_id = None;
            if let Some(m) = metadata {
                snap.metadata = m;
            }
            let mut batch = sled::Batch::default();
            let mut delta = RefDelta::default();
            let mut owners = Owners::default();
            owners.add(&base.pieces, 1);
            if base.blob_type == BlobType::Page {
                // Sharing costs one key per run, and lets Get Page Ranges Diff compare
                // without reading.
                let (from, to) = (Self::page_prefix(n, ""), Self::page_prefix(n, &id));
                self.share_page_runs(&mut batch, &mut delta, &from, &to)?;
            }
            batch.insert(
                keys::blob(n.account, n.container, n.blob, &id),
                encode(&snap),
            );
            if let Some(v) = self.keep_previous_version(
                &mut batch,
                &mut owners,
                &mut delta,
                &protection,
                n,
                &base,
            )? {
                base.version_id = Some(v);
                batch.insert(
                    keys::blob(n.account, n.container, n.blob, ""),
                    encode(&base),
                );
            }
            let mut freed = self.apply_refs(&mut batch, delta)?;
            freed.extend(self.apply_owners(&mut batch, owners)?);
            self.core.data.apply_batch(batch).map_err(internal)?;
            ((id, base), freed)
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(result)
    }

    /// Set Blob Tier on a block blob (or one of its snapshots). From Archive to an online
    /// tier the blob rehydrates: it stays Archive, `rehydrate-pending-to-*`, until
    /// `rehydrate_after` has passed on the clock. Returns the record and whether the change
    /// is pending (Azure answers 202 then, 200 otherwise). ETag and Last-Modified stay.
    pub async fn set_blob_tier(
        &self,
        n: BlobName<'_>,
        snapshot: &str,
        tier: Tier,
        priority: Priority,
        rehydrate_after: std::time::Duration,
        pre: &Preconditions,
    ) -> Result<(BlobRecord, bool)> {
        let now = self.now();
        let mut pending = false;
        let record = self
            .change_blob(n, snapshot, pre, false, None, |r| {
                // A standard account tiers block blobs only (premium P tiers need a
                // premium account).
                if r.blob_type != BlobType::Block || !tier.is_block_tier() {
                    return Err(StorageError::new(
                        ErrorCode::AccessTierNotSupportedForBlobType,
                    ));
                }
                let state = r.tier.at(now);
                if let Some(reh) = state.rehydration {
                    if tier != reh.to {
                        return Err(StorageError::new(ErrorCode::BlobBeingRehydrated));
                    }
                    pending = true;
                    r.tier = state;
                    return Ok(());
                }
                if state.tier == Some(Tier::Archive) && tier != Tier::Archive {
                    pending = true;
                    r.tier = TierState {
                        rehydration: Some(Rehydration {
                            to: tier,
                            priority,
                            done_ms: now + rehydrate_after.as_millis() as i64,
                        }),
                        ..state
                    };
                } else if state.tier != Some(tier) {
                    r.tier = TierState {
                        tier: Some(tier),
                        changed_ms: Some(now),
                        rehydration: None,
                    };
                }
                Ok(())
            })
            .await?;
        Ok((record, pending))
    }

    /// Pieces in `candidates` that `keep` does not reference.
    pub(super) fn not_kept(
        keep: &[super::extents::Piece],
        candidates: Vec<super::extents::Piece>,
    ) -> Vec<super::extents::Piece> {
        let keep: HashSet<_> = keep.iter().map(|p| (p.storage, p.id)).collect();
        candidates
            .into_iter()
            .filter(|p| !keep.contains(&(p.storage, p.id)))
            .collect()
    }
}
