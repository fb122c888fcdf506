//! Garbage collection after an unclean stop: bytes no record references (uploads cut
//! short, frees that did not happen) are removed. O(blobs), so it runs only then.

use super::extents::Storage;
use super::packs::Loc;
use super::records::{BlobRecord, PageRun, StagedBlock};
use super::{internal, BlobStore};
use crate::protocol::error::Result;
use crate::store::codec::{decode, encode};
use crate::store::keys::{self, BLOB, BLOCK, INLINE, PACKED, PAGE, REFCOUNT};
use std::collections::{HashMap, HashSet};

impl BlobStore {
    /// After an unclean stop: frees bytes no record references (uploads cut short, frees
    /// that did not happen). O(blobs), so it runs only then.
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let mut live: HashSet<(Storage, u64)> = HashSet::new();
        // Records (and staged blocks) owning each piece: a shared one has an `R` count.
        let mut owners: HashMap<u64, u64> = HashMap::new();
        for kind in [BLOB, BLOCK] {
            for item in self.core.data.scan_prefix([kind]) {
                let (_, v) = item.map_err(internal)?;
                let pieces = if kind == BLOB {
                    decode::<BlobRecord>(&v).map(|b| b.pieces)
                } else {
                    decode::<StagedBlock>(&v).map(|b| b.pieces)
                };
                let pieces = pieces.map_err(internal)?;
                let distinct: HashSet<u64> = pieces.iter().map(|p| p.id).collect();
                for id in distinct {
                    *owners.entry(id).or_default() += 1;
                }
                live.extend(pieces.iter().map(|p| (p.storage, p.id)));
            }
        }
        owners.retain(|_, n| *n >= 2);
        self.repair_page_runs(&mut live, owners)?;
        for kind in [INLINE, PACKED] {
            for item in self.core.data.scan_prefix([kind]) {
                let (k, _) = item.map_err(internal)?;
                if let Some(id) = keys::parse_qid_tail(&k) {
                    if !live.contains(&(Storage::Inline, id)) {
                        self.core.data.remove(k).map_err(internal)?;
                    }
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

    /// Page runs whose blob record is gone (a delete cut short) are removed, and the
    /// shared-byte counts are recounted from the runs that remain (their bytes are live)
    /// plus `counts`, the record pieces more than one record owns.
    fn repair_page_runs(
        &self,
        live: &mut HashSet<(Storage, u64)>,
        mut counts: HashMap<u64, u64>,
    ) -> Result<()> {
        let data = &self.core.data;
        let mut has_record: HashMap<Vec<u8>, bool> = HashMap::new();
        for item in data.scan_prefix([PAGE]) {
            let (k, v) = item.map_err(internal)?;
            // The run's record key: `B` and the key without the run start and its `\0`.
            let Some(head) = k.len().checked_sub(9).map(|at| &k[..at]) else {
                continue;
            };
            let mut record_key = head.to_vec();
            record_key[0] = BLOB;
            let exists = match has_record.get(&record_key) {
                Some(e) => *e,
                None => {
                    let e = data.contains_key(&record_key).map_err(internal)?;
                    has_record.insert(record_key, e);
                    e
                }
            };
            if !exists {
                data.remove(k).map_err(internal)?;
                continue;
            }
            let run: PageRun = decode(&v).map_err(internal)?;
            *counts.entry(run.piece.id).or_default() += 1;
            live.insert((run.piece.storage, run.piece.id));
        }
        for item in data.scan_prefix([REFCOUNT]) {
            let (k, _) = item.map_err(internal)?;
            let id = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            if id.is_none_or(|id| !counts.contains_key(&id)) {
                data.remove(k).map_err(internal)?;
            }
        }
        for (id, n) in counts {
            data.insert(super::keys::refcount(id), &n.to_be_bytes())
                .map_err(internal)?;
        }
        Ok(())
    }
}

/// A pack is rewritten when it holds more than this many times its live bytes.
const PACK_REWRITE_RATIO: f64 = 1.3;
/// Locations rewritten per batch.
const PACK_BATCH: usize = 4096;

impl BlobStore {
    /// At open, before serving: packs with no live piece are removed, and packs holding
    /// more than 1.3 times their live bytes are rewritten: their live pieces are copied to
    /// a new pack (synced), the `E` locations switched in batches, the database flushed,
    /// and only then the old packs removed. A crash part-way leaves every location pointing
    /// at a pack that still exists.
    pub(crate) fn compact_packs(&self) -> Result<()> {
        let packs = &self.extents.packs;
        let files = packs.list();
        // The scan of every location is the cost of an open: not worth it for a few MiB.
        if files.iter().map(|(_, size)| size).sum::<u64>() <= crate::store::compact::SLACK {
            return Ok(());
        }
        let data = &self.core.data;
        let mut live: HashMap<u64, u64> = HashMap::new();
        for item in data.scan_prefix([PACKED]) {
            let (_, v) = item.map_err(internal)?;
            let loc: Loc = decode(&v).map_err(internal)?;
            *live.entry(loc.pack).or_default() += loc.len;
        }
        let mut rewrite: HashSet<u64> = HashSet::new();
        let mut gone = Vec::new();
        for (id, size) in files {
            match live.get(&id).copied().unwrap_or(0) {
                0 => gone.push(id),
                l if size as f64 > l as f64 * PACK_REWRITE_RATIO => {
                    rewrite.insert(id);
                }
                _ => {}
            }
        }
        if !rewrite.is_empty() {
            packs.close_current();
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for item in data.scan_prefix([PACKED]) {
                let (k, v) = item.map_err(internal)?;
                let loc: Loc = decode(&v).map_err(internal)?;
                if !rewrite.contains(&loc.pack) {
                    continue;
                }
                let bytes = packs
                    .read(loc.pack, loc.offset, loc.len as usize)
                    .map_err(internal)?;
                let fresh = self.core.next_id().map_err(internal)?;
                let moved = packs.append(&bytes, fresh).map_err(internal)?;
                batch.insert(k, encode(&moved));
                n += 1;
                if n == PACK_BATCH {
                    packs.sync_current().map_err(internal)?;
                    data.apply_batch(std::mem::take(&mut batch))
                        .map_err(internal)?;
                    n = 0;
                }
            }
            packs.sync_current().map_err(internal)?;
            data.apply_batch(batch).map_err(internal)?;
            packs.close_current();
            gone.extend(rewrite);
        }
        if !gone.is_empty() {
            self.core.db.flush().map_err(internal)?;
            for id in gone {
                packs.remove(id);
            }
        }
        Ok(())
    }
}
