//! Block blobs built from blocks: staging (Put Block and Put Block From URL), Put Block
//! List, and the staged list Get Block List shows.

use super::blobs::NewBlob;
use super::extents;
use super::pages::RefDelta;
use super::records::{BlobRecord, BlobType, CommittedBlock, StagedBlock};
use super::upload::Received;
use super::versions::Owners;
use super::{internal, keys, BlobName, BlobStore};
use crate::protocol::conditions::Preconditions;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::store::codec::{decode, encode};

/// Where a committed block's bytes come from in a Put Block List.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSource {
    Committed,
    Uncommitted,
    Latest,
}

impl BlobStore {
    /// Removes every staged block of a blob; returns their pieces.
    pub(super) fn drop_staged(&self, n: BlobName<'_>) -> Result<Vec<extents::Piece>> {
        let mut freed = Vec::new();
        for item in self
            .core
            .data
            .scan_prefix(keys::block_prefix(n.account, n.container, n.blob))
        {
            let (k, v) = item.map_err(internal)?;
            freed.extend(decode::<StagedBlock>(&v).map_err(internal)?.pieces);
            self.core.data.remove(k).map_err(internal)?;
        }
        Ok(freed)
    }

    /// Staged blocks of a blob, in staging order.
    pub fn staged_blocks(&self, n: BlobName<'_>) -> Result<Vec<(Vec<u8>, StagedBlock)>> {
        let prefix = keys::block_prefix(n.account, n.container, n.blob);
        let mut out = Vec::new();
        for item in self.core.data.scan_prefix(&prefix) {
            let (k, v) = item.map_err(internal)?;
            out.push((
                k[prefix.len()..].to_vec(),
                decode::<StagedBlock>(&v).map_err(internal)?,
            ));
        }
        out.sort_by_key(|(_, b)| b.order);
        Ok(out)
    }

    /// Stages received bytes as block `block_id` (replacing a staged block of that id).
    /// `pre` carries the lease and a create-only SAS, checked against the committed blob.
    pub async fn stage_block(
        &self,
        n: BlobName<'_>,
        block_id: &[u8],
        content: Received,
        max_staged: usize,
        pre: &Preconditions,
    ) -> Result<()> {
        let freed = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let current = self.blob(n.account, n.container, n.blob, "")?;
            if let Some(existing) = &current {
                if existing.blob_type != BlobType::Block {
                    return Err(StorageError::new(ErrorCode::InvalidBlobType));
                }
            }
            pre.check(current.as_ref().map(|c| c.current()), self.now())?;
            let staged = self.staged_blocks(n)?;
            // Block ids must have one length among the blob's uncommitted blocks (Put Block:
            // "a different length than the block IDs for any existing uncommitted blocks").
            if staged
                .first()
                .is_some_and(|(id, _)| id.len() != block_id.len())
            {
                return Err(StorageError::new(ErrorCode::InvalidBlobOrBlock)
                    .with_message("The specified blob or block content is invalid: all uncommitted block ids of a blob must have the same length."));
            }
            if staged.len() >= max_staged && !staged.iter().any(|(id, _)| id == block_id) {
                return Err(StorageError::new(ErrorCode::BlockCountExceedsLimit));
            }
            let order = self.core.next_id().map_err(internal)?;
            let size = content.len();
            let pieces = content.adopt(&self.core.data)?;
            let block = StagedBlock {
                size,
                pieces: pieces.clone(),
                order,
            };
            let key = keys::block(n.account, n.container, n.blob, block_id);
            match self.core.data.insert(key, encode(&block)) {
                Ok(Some(v)) => decode::<StagedBlock>(&v).map_err(internal)?.pieces,
                Ok(None) => Vec::new(),
                Err(e) => {
                    self.free(&pieces);
                    return Err(internal(e));
                }
            }
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(())
    }

    /// Commits a block list. Blocks come from the committed list, the staged ones, or
    /// either (`Latest`); afterwards every staged block is gone. The committed blocks'
    /// pieces move into the new record (no copy); what no block reuses is freed.
    pub async fn commit_block_list(
        &self,
        n: BlobName<'_>,
        list: &[(BlockSource, Vec<u8>)],
        new: NewBlob,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        let (record, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let current = self.blob(n.account, n.container, n.blob, "")?;
            if current
                .as_ref()
                .is_some_and(|c| c.blob_type != BlobType::Block)
            {
                return Err(StorageError::new(ErrorCode::InvalidBlobType));
            }
            pre.check(current.as_ref().map(|c| c.current()), self.now())?;
            let staged = self.staged_blocks(n)?;
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
            let protection = self.protection_of(n.account)?;
            let mut batch = sled::Batch::default();
            let mut owners = Owners::default();
            let mut delta = RefDelta::default();
            let raw = self.blob_raw(n, "")?;
            let (version_id, dropped) = self.replace_base(
                &mut batch,
                &mut owners,
                &mut delta,
                &protection,
                n,
                current.as_ref(),
                raw,
                &pieces,
            )?;
            let record = BlobRecord {
                blob_type: BlobType::Block,
                pieces,
                blocks,
                properties: new.properties,
                metadata: new.metadata,
                tags: new.tags,
                tier: NewBlob::tier_state(new.tier, now),
                version_id,
                ..BlobRecord::successor(current.as_ref(), now, etag)
            };
            self.index_tags(n, &record.tags)?;
            batch.insert(
                keys::blob(n.account, n.container, n.blob, ""),
                encode(&record),
            );
            let mut freed = self.apply_refs(&mut batch, delta)?;
            freed.extend(self.apply_owners(&mut batch, owners)?);
            self.core.data.apply_batch(batch).map_err(internal)?;
            // Staged blocks own their bytes alone: what the list did not take goes.
            let staged_left = self.drop_staged(n)?;
            freed.extend(Self::not_kept(&record.pieces, staged_left));
            if let Some(c) = current.as_ref().or(dropped.as_ref()) {
                self.unindex_tags(n, &c.tags, Some(&record.tags))?;
            }
            (record, freed)
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(record)
    }
}
