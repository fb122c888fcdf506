//! Garbage collection after an unclean stop: bytes no record references (uploads cut
//! short, frees that did not happen) are removed. O(blobs), so it runs only then.

use super::extents::Storage;
use super::records::{BlobRecord, StagedBlock};
use super::{internal, BlobStore};
use crate::protocol::error::Result;
use crate::store::codec::decode;
use crate::store::keys::{self, BLOB, BLOCK, INLINE};
use std::collections::HashSet;

impl BlobStore {
    /// After an unclean stop: frees bytes no record references (uploads cut short, frees
    /// that did not happen). O(blobs), so it runs only then.
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        let mut live: HashSet<(Storage, u64)> = HashSet::new();
        for kind in [BLOB, BLOCK] {
            for item in self.core.data.scan_prefix([kind]) {
                let (_, v) = item.map_err(internal)?;
                let pieces = if kind == BLOB {
                    decode::<BlobRecord>(&v).map(|b| b.pieces)
                } else {
                    decode::<StagedBlock>(&v).map(|b| b.pieces)
                };
                live.extend(pieces.map_err(internal)?.iter().map(|p| (p.storage, p.id)));
            }
        }
        for item in self.core.data.scan_prefix([INLINE]) {
            let (k, _) = item.map_err(internal)?;
            if let Some(id) = keys::parse_qid_tail(&k) {
                if !live.contains(&(Storage::Inline, id)) {
                    self.core.data.remove(k).map_err(internal)?;
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
