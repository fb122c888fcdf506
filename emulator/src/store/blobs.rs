//! Containers and blobs: metadata records in sled, bytes as pieces (see `extents`).
//!
//! Writes that replace or remove bytes first commit the new metadata, wait until it is
//! durable, and only then free the old bytes, so a crash never leaves a record pointing at
//! freed data. Bytes orphaned by a crash are collected at the next start (`collect_garbage`).

use super::extents::{self, Piece, Storage, Uploaded};
use super::keys;
use super::records::{decode, encode};
use super::Store;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::lease::{self, Lease};
use crate::protocol::model::{Metadata, SignedIdentifier};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub metadata: Metadata,
    /// `container`, `blob`, or None (private).
    pub public_access: Option<String>,
    pub acl: Vec<SignedIdentifier>,
    pub etag: String,
    pub last_modified_ms: i64,
    pub created_ms: i64,
    pub lease: Lease,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobType {
    Block,
    Append,
}

impl BlobType {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobType::Block => "BlockBlob",
            BlobType::Append => "AppendBlob",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentProperties {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_md5: Option<Vec<u8>>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBlock {
    pub id: Vec<u8>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub blob_type: BlobType,
    pub pieces: Vec<Piece>,
    pub blocks: Vec<CommittedBlock>,
    pub properties: ContentProperties,
    pub metadata: Metadata,
    pub etag: String,
    pub last_modified_ms: i64,
    pub created_ms: i64,
    /// Append blobs: blocks appended so far, and whether the blob is sealed.
    pub append_blocks: u64,
    pub sealed: bool,
    pub lease: Lease,
    /// Set on the destination of a Copy Blob.
    pub copy: Option<CopyInfo>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyInfo {
    pub id: String,
    pub source: String,
    pub length: u64,
    pub completed_ms: i64,
}

impl BlobRecord {
    /// What List Blobs shows for a blob that has only staged blocks.
    pub fn uncommitted() -> BlobRecord {
        BlobRecord {
            blob_type: BlobType::Block,
            pieces: Vec::new(),
            blocks: Vec::new(),
            properties: ContentProperties::default(),
            metadata: Vec::new(),
            etag: String::new(),
            last_modified_ms: 0,
            created_ms: 0,
            append_blocks: 0,
            sealed: false,
            lease: Lease::Available,
            copy: None,
            tags: Vec::new(),
        }
    }

    /// The fields a new version of a blob starts from: fresh ETag and times, creation time
    /// and lease carried over from the version it replaces; callers fill in the content.
    pub fn successor(current: Option<&BlobRecord>, now_ms: i64, etag: String) -> BlobRecord {
        BlobRecord {
            etag,
            last_modified_ms: now_ms,
            created_ms: current.map_or(now_ms, |c| c.created_ms),
            lease: current.map(|c| c.lease.clone()).unwrap_or_default(),
            ..BlobRecord::uncommitted()
        }
    }

    pub fn len(&self) -> u64 {
        extents::total_len(&self.pieces)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedBlock {
    pub size: u64,
    pub pieces: Vec<Piece>,
    /// Staging order, for Get Block List.
    pub order: u64,
}

/// What a List Blobs call asks for.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub marker: Option<&'a str>,
    pub max: usize,
    pub include_snapshots: bool,
    pub include_uncommitted: bool,
}

const SNAPSHOT_MARKER_SEP: char = '\u{1}';

/// What Delete Blob removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteMode {
    /// The base blob; refused while it has snapshots.
    Base,
    Snapshot(String),
    IncludeSnapshots,
    OnlySnapshots,
}

/// `2025-08-05T12:28:53.1234567Z`: the millisecond, then `tick` 100 ns units.
pub fn snapshot_id(now_ms: i64, tick: u32) -> String {
    let base = crate::clock::iso8601_7(now_ms);
    // iso8601_7 ends in `.mmm0000Z`; the last four digits are free for ticks.
    format!("{}{:04}Z", &base[..base.len() - 5], tick.min(9999))
}

/// Where a new blob's bytes come from in a Put Block List.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSource {
    Committed,
    Uncommitted,
    Latest,
}

/// (container, blob, tags) of a tagged blob.
pub type TaggedBlob = (String, String, Vec<(String, String)>);

/// One page of List Containers: (name, record) pairs and the next marker.
pub type ContainerPage = (Vec<(String, ContainerRecord)>, Option<String>);

#[derive(Debug, Clone)]
pub struct BlobEntry {
    pub name: String,
    /// Empty for the base blob.
    pub snapshot: String,
    pub record: BlobRecord,
}

#[derive(Debug, Clone)]
pub enum ListItem {
    Blob(Box<BlobEntry>),
    Prefix(String),
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::internal(e)
}

fn container_not_found() -> StorageError {
    StorageError::new(ErrorCode::ContainerNotFound)
}

/// Azure-style ETag: `"0x` + 15 uppercase hex digits`"`, new on every write.
pub fn new_etag(now_ms: i64, unique: u64) -> String {
    format!(
        "\"0x{:015X}\"",
        ((now_ms as u64) << 16 | (unique & 0xFFFF)) & 0x0FFF_FFFF_FFFF_FFFF
    )
}

impl Store {
    fn bump(&self) -> Result<(i64, String)> {
        let now = self.clock.now_ms();
        let unique = self.db.generate_id().map_err(internal)?;
        Ok((now, new_etag(now, unique)))
    }

    pub fn container(&self, account: &str, container: &str) -> Result<Option<ContainerRecord>> {
        match self
            .data
            .get(keys::container(account, container))
            .map_err(internal)?
        {
            Some(v) => Ok(Some(decode(&v).map_err(internal)?)),
            None => Ok(None),
        }
    }

    pub fn require_container(&self, account: &str, container: &str) -> Result<ContainerRecord> {
        self.container(account, container)?
            .ok_or_else(container_not_found)
    }

    pub async fn create_container(
        &self,
        account: &str,
        container: &str,
        metadata: Metadata,
        public_access: Option<String>,
    ) -> Result<ContainerRecord> {
        let record = {
            let _guard = self.containers_lock.write();
            if self.container(account, container)?.is_some() {
                return Err(StorageError::new(ErrorCode::ContainerAlreadyExists));
            }
            let (now, etag) = self.bump()?;
            let record = ContainerRecord {
                metadata,
                public_access,
                acl: Vec::new(),
                etag,
                last_modified_ms: now,
                created_ms: now,
                lease: Lease::Available,
            };
            self.data
                .insert(keys::container(account, container), encode(&record))
                .map_err(internal)?;
            record
        };
        self.durable().await?;
        Ok(record)
    }

    pub async fn update_container(
        &self,
        account: &str,
        container: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let record = {
            let _guard = self.containers_lock.write();
            let mut record = self.require_container(account, container)?;
            f(&mut record);
            let (now, etag) = self.bump()?;
            record.etag = etag;
            record.last_modified_ms = now;
            self.data
                .insert(keys::container(account, container), encode(&record))
                .map_err(internal)?;
            record
        };
        self.durable().await?;
        Ok(record)
    }

    pub fn list_containers(
        &self,
        account: &str,
        prefix: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<ContainerPage> {
        let from = marker.unwrap_or("").max(prefix);
        let start = keys::container(account, from);
        let scope = keys::container_prefix(account);
        let mut out = Vec::new();
        for item in self.data.range(start..) {
            let (k, v) = item.map_err(internal)?;
            if !k.starts_with(&scope) {
                break;
            }
            let name = String::from_utf8_lossy(&k[scope.len()..]).into_owned();
            if !name.starts_with(prefix) {
                break;
            }
            if out.len() == max {
                return Ok((out, Some(name)));
            }
            out.push((name, decode(&v).map_err(internal)?));
        }
        Ok((out, None))
    }

    /// Deletes a container and everything in it.
    pub async fn delete_container(
        &self,
        account: &str,
        container: &str,
        check: impl FnOnce(&ContainerRecord) -> Result<()>,
    ) -> Result<()> {
        let mut freed = Vec::new();
        {
            let _guard = self.containers_lock.write();
            check(&self.require_container(account, container)?)?;
            self.data
                .remove(keys::container(account, container))
                .map_err(internal)?;
            for kind in [keys::BLOB, keys::BLOCK] {
                for item in self
                    .data
                    .scan_prefix(keys::blob_scope(kind, account, container))
                {
                    let (k, v) = item.map_err(internal)?;
                    if kind == keys::BLOB {
                        freed.extend(decode::<BlobRecord>(&v).map_err(internal)?.pieces);
                    } else {
                        freed.extend(decode::<StagedBlock>(&v).map_err(internal)?.pieces);
                    }
                    self.data.remove(k).map_err(internal)?;
                }
            }
        }
        self.durable().await?;
        self.free(&freed);
        Ok(())
    }

    pub fn blob(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        snapshot: &str,
    ) -> Result<Option<BlobRecord>> {
        match self
            .data
            .get(keys::blob(account, container, blob, snapshot))
            .map_err(internal)?
        {
            Some(v) => Ok(Some(decode(&v).map_err(internal)?)),
            None => Ok(None),
        }
    }

    /// Frees the bytes of pieces nobody references any more (after the change is durable).
    pub(super) fn free(&self, pieces: &[Piece]) {
        let mut seen = HashSet::new();
        for p in pieces {
            if !seen.insert((p.storage, p.id)) {
                continue;
            }
            match p.storage {
                Storage::Inline => {
                    if let Err(e) = self.data.remove(keys::inline(p.id)) {
                        tracing::warn!(error = %e, "could not free inline data");
                    }
                }
                Storage::File => self.extents.remove(p.id),
            }
        }
    }

    /// Stores the inline part of an upload (durable with the next commit).
    pub fn store_inline(&self, uploaded: &Uploaded) -> Result<()> {
        if let Some((id, bytes)) = &uploaded.inline {
            self.data
                .insert(keys::inline(*id), bytes.as_ref())
                .map_err(internal)?;
        }
        Ok(())
    }

    /// Frees the bytes of an upload that was refused before any record referenced it.
    pub fn discard(&self, uploaded: &Uploaded) {
        self.free(&uploaded.pieces);
    }

    /// A new id for an upload's bytes.
    pub fn new_data_id(&self) -> Result<u64> {
        self.db.generate_id().map_err(internal)
    }

    pub fn extents(&self) -> &std::sync::Arc<extents::Extents> {
        &self.extents
    }

    /// Commits a blob record. `check` sees the current record (None if absent) and may
    /// refuse; it runs under the blob's lock. Old bytes not reused are freed afterwards.
    pub async fn put_blob_record(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        check: impl FnOnce(Option<&BlobRecord>) -> Result<()>,
        build: impl FnOnce(Option<&BlobRecord>, i64, String) -> BlobRecord,
    ) -> Result<BlobRecord> {
        let (record, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(account, container)?;
            let _b = self.blob_lock(account, container, blob).lock();
            let current = self.blob(account, container, blob, "")?;
            check(current.as_ref())?;
            let (now, etag) = self.bump()?;
            let record = build(current.as_ref(), now, etag);
            self.data
                .insert(keys::blob(account, container, blob, ""), encode(&record))
                .map_err(internal)?;
            let keep: HashSet<(Storage, u64)> =
                record.pieces.iter().map(|p| (p.storage, p.id)).collect();
            // A Put Blob also discards the blob's staged blocks, as Azure does.
            let mut candidates = self.drop_staged(account, container, blob)?;
            candidates.extend(current.map(|c| c.pieces).unwrap_or_default());
            let freed: Vec<Piece> = candidates
                .into_iter()
                .filter(|p| !keep.contains(&(p.storage, p.id)))
                .collect();
            (record, freed)
        };
        self.durable().await?;
        self.free(&freed);
        Ok(record)
    }

    /// (container, blob, tags) of every tagged base blob of an account (or one container),
    /// in container and name order. A scan: there is no tag index yet.
    pub fn all_tagged_blobs(
        &self,
        account: &str,
        container: Option<&str>,
    ) -> Result<Vec<TaggedBlob>> {
        let scope = match container {
            Some(c) => keys::blob_scope(keys::BLOB, account, c),
            None => {
                let mut k = vec![keys::BLOB];
                k.extend_from_slice(account.as_bytes());
                k.push(0);
                k
            }
        };
        let account_scope_len = 1 + account.len() + 1;
        let mut out = Vec::new();
        for item in self.data.scan_prefix(&scope) {
            let (k, v) = item.map_err(internal)?;
            let tail = &k[account_scope_len..];
            let Some(nul) = tail.iter().position(|b| *b == 0) else {
                continue;
            };
            let cname = String::from_utf8_lossy(&tail[..nul]).into_owned();
            let Some((name, snapshot)) = keys::parse_blob_tail(&tail[nul + 1..]) else {
                continue;
            };
            if !snapshot.is_empty() {
                continue;
            }
            let record: BlobRecord = decode(&v).map_err(internal)?;
            if !record.tags.is_empty() {
                out.push((cname, name, record.tags));
            }
        }
        Ok(out)
    }

    /// Changes properties or metadata of an existing blob (no byte changes).
    pub async fn update_blob(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        f: impl FnOnce(&mut BlobRecord) -> Result<()>,
    ) -> Result<BlobRecord> {
        self.change_blob(account, container, blob, true, f).await
    }

    /// Changes a blob without a new ETag or Last-Modified (tags).
    pub async fn update_blob_keep_etag(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        f: impl FnOnce(&mut BlobRecord) -> Result<()>,
    ) -> Result<BlobRecord> {
        self.change_blob(account, container, blob, false, f).await
    }

    async fn change_blob(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        new_etag: bool,
        f: impl FnOnce(&mut BlobRecord) -> Result<()>,
    ) -> Result<BlobRecord> {
        let record = {
            let _c = self.containers_lock.read();
            self.require_container(account, container)?;
            let _b = self.blob_lock(account, container, blob).lock();
            let mut record = self
                .blob(account, container, blob, "")?
                .ok_or_else(|| StorageError::new(ErrorCode::BlobNotFound))?;
            f(&mut record)?;
            if new_etag {
                let (now, etag) = self.bump()?;
                record.etag = etag;
                record.last_modified_ms = now;
            }
            self.data
                .insert(keys::blob(account, container, blob, ""), encode(&record))
                .map_err(internal)?;
            record
        };
        self.durable().await?;
        Ok(record)
    }

    /// Deletes a blob, one of its snapshots, or its snapshots, per `mode`.
    pub async fn delete_blob(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        mode: DeleteMode,
        check: impl FnOnce(&BlobRecord) -> Result<()>,
    ) -> Result<()> {
        let freed = {
            let _c = self.containers_lock.read();
            self.require_container(account, container)?;
            let _b = self.blob_lock(account, container, blob).lock();
            let not_found = || StorageError::new(ErrorCode::BlobNotFound);
            let mut freed = Vec::new();
            if let DeleteMode::Snapshot(id) = &mode {
                let record = self
                    .blob(account, container, blob, id)?
                    .ok_or_else(not_found)?;
                check(&record)?;
                self.data
                    .remove(keys::blob(account, container, blob, id))
                    .map_err(internal)?;
                freed.extend(record.pieces);
            } else {
                let record = self
                    .blob(account, container, blob, "")?
                    .ok_or_else(not_found)?;
                check(&record)?;
                let snapshots = self.snapshot_ids(account, container, blob)?;
                if mode == DeleteMode::Base && !snapshots.is_empty() {
                    return Err(StorageError::new(ErrorCode::SnapshotsPresent));
                }
                for id in snapshots {
                    if let Some(s) = self.blob(account, container, blob, &id)? {
                        freed.extend(s.pieces);
                    }
                    self.data
                        .remove(keys::blob(account, container, blob, &id))
                        .map_err(internal)?;
                }
                if mode != DeleteMode::OnlySnapshots {
                    self.data
                        .remove(keys::blob(account, container, blob, ""))
                        .map_err(internal)?;
                    freed.extend(record.pieces);
                    freed.extend(self.drop_staged(account, container, blob)?);
                }
            }
            freed
        };
        self.durable().await?;
        self.free(&freed);
        Ok(())
    }

    /// Snapshot ids of a blob, oldest first.
    pub fn snapshot_ids(&self, account: &str, container: &str, blob: &str) -> Result<Vec<String>> {
        let scope = keys::blob_scope(keys::BLOB, account, container);
        let mut out = Vec::new();
        for item in self
            .data
            .scan_prefix(keys::blob_versions(account, container, blob))
            .keys()
        {
            let k = item.map_err(internal)?;
            if let Some((_, snapshot)) = keys::parse_blob_tail(&k[scope.len()..]) {
                if !snapshot.is_empty() {
                    out.push(snapshot);
                }
            }
        }
        Ok(out)
    }

    /// Takes a read-only snapshot: the bytes are copied, so the snapshot owns its own.
    /// `metadata`, when given, replaces the base's metadata on the snapshot.
    pub async fn snapshot_blob(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        metadata: Option<Metadata>,
        check: impl FnOnce(&BlobRecord) -> Result<()>,
    ) -> Result<(String, BlobRecord)> {
        let result = {
            let _c = self.containers_lock.read();
            self.require_container(account, container)?;
            let _b = self.blob_lock(account, container, blob).lock();
            let base = self
                .blob(account, container, blob, "")?
                .ok_or_else(|| StorageError::new(ErrorCode::BlobNotFound))?;
            check(&base)?;
            // Unique per blob: 100 ns ticks after the current millisecond.
            let now = self.clock.now_ms();
            let mut tick = 0;
            let id = loop {
                let id = snapshot_id(now, tick);
                if self.blob(account, container, blob, &id)?.is_none() {
                    break id;
                }
                tick += 1;
            };
            let mut snap = base.clone();
            snap.pieces = self.copy_pieces(&base.pieces)?;
            snap.lease = Lease::Available;
            if let Some(m) = metadata {
                snap.metadata = m;
            }
            self.data
                .insert(keys::blob(account, container, blob, &id), encode(&snap))
                .map_err(internal)?;
            (id, snap)
        };
        self.durable().await?;
        Ok(result)
    }

    /// Copies bytes into new pieces (one per source piece) that the caller will own.
    pub fn copy_pieces(&self, pieces: &[Piece]) -> Result<Vec<Piece>> {
        let mut out = Vec::with_capacity(pieces.len());
        for p in pieces {
            let id = self.db.generate_id().map_err(internal)?;
            match p.storage {
                Storage::Inline => {
                    let bytes = self.read_piece(p, 0, p.len as usize)?;
                    self.data
                        .insert(keys::inline(id), bytes.as_ref())
                        .map_err(internal)?;
                }
                Storage::File => self
                    .extents
                    .copy_range(p.id, p.offset, p.len, id)
                    .map_err(internal)?,
            }
            out.push(Piece {
                storage: p.storage,
                id,
                offset: 0,
                len: p.len,
            });
        }
        Ok(out)
    }

    /// Removes every staged block of a blob; returns their pieces.
    fn drop_staged(&self, account: &str, container: &str, blob: &str) -> Result<Vec<Piece>> {
        let mut freed = Vec::new();
        for item in self
            .data
            .scan_prefix(keys::block_prefix(account, container, blob))
        {
            let (k, v) = item.map_err(internal)?;
            freed.extend(decode::<StagedBlock>(&v).map_err(internal)?.pieces);
            self.data.remove(k).map_err(internal)?;
        }
        Ok(freed)
    }

    /// Staged blocks of a blob, in staging order.
    pub fn staged_blocks(
        &self,
        account: &str,
        container: &str,
        blob: &str,
    ) -> Result<Vec<(Vec<u8>, StagedBlock)>> {
        let prefix = keys::block_prefix(account, container, blob);
        let mut out = Vec::new();
        for item in self.data.scan_prefix(&prefix) {
            let (k, v) = item.map_err(internal)?;
            out.push((
                k[prefix.len()..].to_vec(),
                decode::<StagedBlock>(&v).map_err(internal)?,
            ));
        }
        out.sort_by_key(|(_, b)| b.order);
        Ok(out)
    }

    pub async fn stage_block(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        block_id: &[u8],
        uploaded: Uploaded,
        max_staged: usize,
    ) -> Result<()> {
        let freed = {
            let _c = self.containers_lock.read();
            self.require_container(account, container)?;
            let _b = self.blob_lock(account, container, blob).lock();
            if let Some(existing) = self.blob(account, container, blob, "")? {
                if existing.blob_type != BlobType::Block {
                    return Err(StorageError::new(ErrorCode::InvalidBlobType));
                }
            }
            let staged = self.staged_blocks(account, container, blob)?;
            let committed_len = self
                .blob(account, container, blob, "")?
                .and_then(|b| b.blocks.first().map(|c| c.id.len()));
            let staged_len = staged.first().map(|(id, _)| id.len());
            if committed_len
                .or(staged_len)
                .is_some_and(|l| l != block_id.len())
            {
                return Err(StorageError::new(ErrorCode::InvalidBlobOrBlock)
                    .with_message("The specified blob or block content is invalid: all block ids of a blob must have the same length."));
            }
            if staged.len() >= max_staged && !staged.iter().any(|(id, _)| id == block_id) {
                return Err(StorageError::new(ErrorCode::BlockCountExceedsLimit));
            }
            self.store_inline(&uploaded)?;
            let order = self.db.generate_id().map_err(internal)?;
            let key = keys::block(account, container, blob, block_id);
            let block = StagedBlock {
                size: uploaded.len,
                pieces: uploaded.pieces,
                order,
            };
            let old = self.data.insert(key, encode(&block)).map_err(internal)?;
            match old {
                Some(v) => decode::<StagedBlock>(&v).map_err(internal)?.pieces,
                None => Vec::new(),
            }
        };
        self.durable().await?;
        self.free(&freed);
        Ok(())
    }

    /// Commits a block list. Blocks come from the committed list, the staged ones, or
    /// either (`Latest`); afterwards every staged block is gone.
    pub async fn commit_block_list(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        list: &[(BlockSource, Vec<u8>)],
        check: impl FnOnce(Option<&BlobRecord>) -> Result<()>,
        build: impl FnOnce(
            Option<&BlobRecord>,
            Vec<Piece>,
            Vec<CommittedBlock>,
            i64,
            String,
        ) -> BlobRecord,
    ) -> Result<BlobRecord> {
        let (record, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(account, container)?;
            let _b = self.blob_lock(account, container, blob).lock();
            let current = self.blob(account, container, blob, "")?;
            if current
                .as_ref()
                .is_some_and(|c| c.blob_type != BlobType::Block)
            {
                return Err(StorageError::new(ErrorCode::InvalidBlobType));
            }
            check(current.as_ref())?;
            let staged = self.staged_blocks(account, container, blob)?;
            // Committed blocks and where their bytes are in the current content.
            let mut committed: Vec<(&[u8], u64, u64)> = Vec::new();
            if let Some(c) = &current {
                let mut off = 0;
                for b in &c.blocks {
                    committed.push((&b.id, off, b.size));
                    off += b.size;
                }
            }
            let mut pieces = Vec::new();
            let mut blocks = Vec::new();
            for (source, id) in list {
                let from_staged = || {
                    staged
                        .iter()
                        .find(|(sid, _)| sid == id)
                        .map(|(_, b)| (b.pieces.clone(), b.size))
                };
                let from_committed = || {
                    committed
                        .iter()
                        .find(|(cid, _, _)| *cid == id.as_slice())
                        .and_then(|(_, off, size)| {
                            current
                                .as_ref()
                                .map(|c| (extents::slice(&c.pieces, *off, *size), *size))
                        })
                };
                let found = match source {
                    BlockSource::Uncommitted => from_staged(),
                    BlockSource::Committed => from_committed(),
                    BlockSource::Latest => from_staged().or_else(from_committed),
                };
                let (p, size) =
                    found.ok_or_else(|| StorageError::new(ErrorCode::InvalidBlockList))?;
                pieces.extend(p);
                blocks.push(CommittedBlock {
                    id: id.clone(),
                    size,
                });
            }
            let (now, etag) = self.bump()?;
            let record = build(current.as_ref(), pieces, blocks, now, etag);
            self.data
                .insert(keys::blob(account, container, blob, ""), encode(&record))
                .map_err(internal)?;
            let mut candidates: Vec<Piece> = self.drop_staged(account, container, blob)?;
            if let Some(c) = current {
                candidates.extend(c.pieces);
            }
            let keep: HashSet<(Storage, u64)> =
                record.pieces.iter().map(|p| (p.storage, p.id)).collect();
            let freed: Vec<Piece> = candidates
                .into_iter()
                .filter(|p| !keep.contains(&(p.storage, p.id)))
                .collect();
            (record, freed)
        };
        self.durable().await?;
        self.free(&freed);
        Ok(record)
    }

    /// Appends an upload to an append blob. `check` sees the blob before the append and the
    /// block's length. Returns the new record and the offset the block landed at.
    pub async fn append_block(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        uploaded: &Uploaded,
        check: impl FnOnce(&BlobRecord, u64) -> Result<()>,
    ) -> Result<(BlobRecord, u64)> {
        let mut offset = 0;
        let record = self
            .change_blob(account, container, blob, true, |record| {
                if record.blob_type != BlobType::Append {
                    return Err(StorageError::new(ErrorCode::InvalidBlobType));
                }
                if record.sealed {
                    return Err(StorageError::new(ErrorCode::BlobIsSealed));
                }
                check(record, uploaded.len)?;
                if record.append_blocks >= 50_000 {
                    return Err(StorageError::new(ErrorCode::BlockCountExceedsLimit));
                }
                offset = record.len();
                self.store_inline(uploaded)?;
                record.pieces.extend(uploaded.pieces.iter().copied());
                record.append_blocks += 1;
                Ok(())
            })
            .await?;
        Ok((record, offset))
    }

    /// Applies a lease action to a blob. Leases leave the ETag and Last-Modified alone.
    pub async fn lease_blob(
        &self,
        account: &str,
        container: &str,
        blob: &str,
        action: lease::Action,
        check: impl FnOnce(&BlobRecord) -> Result<()>,
    ) -> Result<(BlobRecord, lease::Outcome)> {
        let now = self.clock.now_ms();
        let mut outcome = None;
        let record = self
            .change_blob(account, container, blob, false, |record| {
                check(record)?;
                let (lease, o) = record.lease.apply(action, now)?;
                record.lease = lease;
                outcome = Some(o);
                Ok(())
            })
            .await?;
        let outcome = outcome.ok_or_else(|| internal("lease outcome missing"))?;
        Ok((record, outcome))
    }

    /// Applies a lease action to a container (ETag unchanged).
    pub async fn lease_container(
        &self,
        account: &str,
        container: &str,
        action: lease::Action,
        check: impl FnOnce(&ContainerRecord) -> Result<()>,
    ) -> Result<(ContainerRecord, lease::Outcome)> {
        let result = {
            let _guard = self.containers_lock.write();
            let mut record = self.require_container(account, container)?;
            check(&record)?;
            let (lease, outcome) = record.lease.apply(action, self.clock.now_ms())?;
            record.lease = lease;
            self.data
                .insert(keys::container(account, container), encode(&record))
                .map_err(internal)?;
            (record, outcome)
        };
        self.durable().await?;
        Ok(result)
    }

    /// Lists blobs in name order. With a delimiter, names that continue past it after the
    /// prefix collapse into one prefix entry.
    pub fn list_blobs(
        &self,
        account: &str,
        container: &str,
        q: &ListQuery<'_>,
    ) -> Result<(Vec<ListItem>, Option<String>)> {
        let ListQuery {
            prefix,
            delimiter,
            marker,
            max,
            include_snapshots,
            include_uncommitted: _,
        } = *q;
        let scope = keys::blob_scope(keys::BLOB, account, container);
        // Markers are a blob name, or `name SEP snapshot` when a page ends inside a blob's
        // snapshots.
        let (marker_name, marker_snapshot) =
            match marker.and_then(|m| m.split_once(SNAPSHOT_MARKER_SEP)) {
                Some((n, s)) => (Some(n), Some(s)),
                None => (marker, None),
            };
        let from = marker_name.unwrap_or("").max(prefix);
        let mut start = scope.clone();
        start.extend_from_slice(from.as_bytes());
        if let (Some(snap), Some(name)) = (marker_snapshot, marker_name) {
            if name == from {
                start = keys::blob(account, container, name, snap);
            }
        }
        let mut out: Vec<ListItem> = Vec::new();
        // The marker names the first entry of this page (a blob or a prefix not yet listed).
        let mut last_prefix: Option<String> = None;
        // Adds one entry; Some(next marker) when the page is already full.
        let emit = |name: String,
                    snapshot: String,
                    record: BlobRecord,
                    out: &mut Vec<ListItem>,
                    last_prefix: &mut Option<String>|
         -> Option<String> {
            let collapsed = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                name[prefix.len()..]
                    .find(d)
                    .map(|i| name[..prefix.len() + i + d.len()].to_string())
            });
            if collapsed.is_some() && *last_prefix == collapsed {
                return None;
            }
            if out.len() == max {
                return Some(match collapsed {
                    Some(p) => p,
                    None if snapshot.is_empty() => name,
                    None => format!("{name}{SNAPSHOT_MARKER_SEP}{snapshot}"),
                });
            }
            match collapsed {
                Some(p) => {
                    *last_prefix = Some(p.clone());
                    out.push(ListItem::Prefix(p));
                }
                None => out.push(ListItem::Blob(Box::new(BlobEntry {
                    name,
                    snapshot,
                    record,
                }))),
            }
            None
        };
        // Blobs with staged blocks but nothing committed (include=uncommittedblobs).
        let staged = if q.include_uncommitted {
            self.staged_only_names(account, container, from, prefix)?
        } else {
            Vec::new()
        };
        let mut staged = staged.into_iter().peekable();
        for item in self.data.range(start..) {
            let (k, v) = item.map_err(internal)?;
            if !k.starts_with(&scope) {
                break;
            }
            let Some((name, snapshot)) = keys::parse_blob_tail(&k[scope.len()..]) else {
                continue;
            };
            if !snapshot.is_empty() && !include_snapshots {
                continue;
            }
            if !name.starts_with(prefix) {
                if name.as_str() > prefix {
                    break;
                }
                continue;
            }
            while let Some(s) = staged.next_if(|s| s.as_str() < name.as_str()) {
                if let Some(next) = emit(
                    s,
                    String::new(),
                    BlobRecord::uncommitted(),
                    &mut out,
                    &mut last_prefix,
                ) {
                    return Ok((out, Some(next)));
                }
            }
            let record: BlobRecord = decode(&v).map_err(internal)?;
            if let Some(next) = emit(name, snapshot, record, &mut out, &mut last_prefix) {
                return Ok((out, Some(next)));
            }
        }
        for s in staged {
            if let Some(next) = emit(
                s,
                String::new(),
                BlobRecord::uncommitted(),
                &mut out,
                &mut last_prefix,
            ) {
                return Ok((out, Some(next)));
            }
        }
        Ok((out, None))
    }

    /// Names (≥ `from`, starting with `prefix`) that have staged blocks but no committed blob.
    fn staged_only_names(
        &self,
        account: &str,
        container: &str,
        from: &str,
        prefix: &str,
    ) -> Result<Vec<String>> {
        let scope = keys::blob_scope(keys::BLOCK, account, container);
        let mut start = scope.clone();
        start.extend_from_slice(from.as_bytes());
        let mut names: Vec<String> = Vec::new();
        for item in self.data.range(start..).keys() {
            let k = item.map_err(internal)?;
            if !k.starts_with(&scope) {
                break;
            }
            let tail = &k[scope.len()..];
            let Some(nul) = tail.iter().position(|b| *b == 0) else {
                continue;
            };
            let name = String::from_utf8_lossy(&tail[..nul]).into_owned();
            if !name.starts_with(prefix) {
                if name.as_str() > prefix {
                    break;
                }
                continue;
            }
            if names.last() != Some(&name) && self.blob(account, container, &name, "")?.is_none() {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Reads a piece's bytes (blocking for files).
    pub fn read_piece(&self, p: &Piece, offset: u64, len: usize) -> Result<Bytes> {
        match p.storage {
            Storage::Inline => {
                let v = self
                    .data
                    .get(keys::inline(p.id))
                    .map_err(internal)?
                    .ok_or_else(|| internal("inline data missing"))?;
                let start = (p.offset + offset) as usize;
                v.get(start..start + len)
                    .map(Bytes::copy_from_slice)
                    .ok_or_else(|| internal("inline data too short"))
            }
            Storage::File => self
                .extents
                .read(p.id, p.offset + offset, len)
                .map_err(internal),
        }
    }

    /// Calls `each` with the bytes of `p` in order, in chunks of at most `max` (blocking);
    /// stops early when `each` returns false.
    pub fn read_piece_chunks(
        &self,
        p: &Piece,
        max: usize,
        mut each: impl FnMut(Bytes) -> bool,
    ) -> Result<()> {
        match p.storage {
            Storage::Inline => {
                let bytes = self.read_piece(p, 0, p.len as usize)?;
                each(bytes);
            }
            Storage::File => {
                let mut reader = self
                    .extents
                    .reader(p.id, p.offset, p.len)
                    .map_err(internal)?;
                while let Some(chunk) = reader.next_chunk(max).map_err(internal)? {
                    if !each(chunk) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// After an unclean stop: frees bytes no record references (uploads cut short, frees
    /// that did not happen). O(blobs), so it runs only then.
    pub(super) fn collect_garbage(&self) -> Result<()> {
        let mut live: HashSet<(Storage, u64)> = HashSet::new();
        for kind in [keys::BLOB, keys::BLOCK] {
            for item in self.data.scan_prefix([kind]) {
                let (_, v) = item.map_err(internal)?;
                let pieces = if kind == keys::BLOB {
                    decode::<BlobRecord>(&v).map(|b| b.pieces)
                } else {
                    decode::<StagedBlock>(&v).map(|b| b.pieces)
                };
                live.extend(pieces.map_err(internal)?.iter().map(|p| (p.storage, p.id)));
            }
        }
        for item in self.data.scan_prefix([keys::INLINE]) {
            let (k, _) = item.map_err(internal)?;
            if let Some(id) = keys::parse_qid_tail(&k) {
                if !live.contains(&(Storage::Inline, id)) {
                    self.data.remove(k).map_err(internal)?;
                }
            }
        }
        for id in self.extents.list() {
            if !live.contains(&(Storage::File, id)) {
                self.extents.remove(id);
            }
        }
        Ok(())
    }
}
