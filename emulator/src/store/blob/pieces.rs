//! Piece I/O: reading a blob's bytes (blocking, in chunks), copying them for a snapshot,
//! and freeing them once no record references them.

use super::extents::{Piece, Storage, READ_CHUNK};
use super::records::BlobRecord;
use super::{internal, keys, BlobStore};
use crate::protocol::error::Result;
use crate::store::codec::{decode, encode};
use bytes::Bytes;
use std::collections::HashSet;

impl BlobStore {
    /// Frees the bytes of pieces nobody references any more (after the change is durable).
    pub(super) fn free(&self, pieces: &[Piece]) {
        let mut seen = HashSet::new();
        for p in pieces {
            if !seen.insert((p.storage, p.id)) {
                continue;
            }
            match p.storage {
                Storage::Inline => {
                    // Packed (the bytes become dead space in their pack) or, in a store
                    // from before packs, inline in sled.
                    for k in [keys::packed(p.id), keys::inline(p.id)] {
                        if let Err(e) = self.core.data.remove(k) {
                            tracing::warn!(error = %e, "could not free inline data");
                        }
                    }
                }
                Storage::File => self.extents.remove(p.id),
            }
        }
    }

    /// Copies bytes into new pieces (one per source piece) that the caller will own.
    pub(super) fn copy_pieces(&self, pieces: &[Piece]) -> Result<Vec<Piece>> {
        let mut out = Vec::with_capacity(pieces.len());
        for p in pieces {
            let id = self.core.next_id().map_err(internal)?;
            match p.storage {
                Storage::Inline => {
                    let bytes = self.read_piece(p, 0, p.len as usize)?;
                    let loc = self.extents.packs.append(&bytes, id).map_err(internal)?;
                    self.core
                        .data
                        .insert(keys::packed(id), encode(&loc))
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

    fn reader(&self) -> PieceReader {
        PieceReader {
            data: self.core.data.clone(),
            extents: self.extents.clone(),
        }
    }

    /// Reads a piece's bytes (blocking for files).
    fn read_piece(&self, p: &Piece, offset: u64, len: usize) -> Result<Bytes> {
        self.reader().read(p, offset, len)
    }

    /// Reads `len` bytes of a blob from `start` whole (blocking; for small ranges).
    pub fn read_small(&self, record: &BlobRecord, start: u64, len: u64) -> Result<Bytes> {
        let reader = self.reader();
        let mut out = Vec::with_capacity(len as usize);
        for p in super::extents::slice(&record.pieces, start, len) {
            out.extend_from_slice(&reader.read(&p, 0, p.len as usize)?);
        }
        Ok(Bytes::from(out))
    }

    /// Streams `len` bytes of a blob from `start`, read on the blocking pool into a
    /// two-slot channel (bounded memory at any size); the reader stops when the receiver
    /// goes away.
    pub fn read_range(
        &self,
        record: &BlobRecord,
        start: u64,
        len: u64,
    ) -> tokio::sync::mpsc::Receiver<std::io::Result<Bytes>> {
        let segments = super::extents::slice(&record.pieces, start, len)
            .into_iter()
            .map(super::pages::Segment::Data)
            .collect();
        self.read_segments(segments)
    }
}

/// Zeros to stream for pages never written.
static ZEROS: [u8; READ_CHUNK] = [0; READ_CHUNK];

impl BlobStore {
    /// Streams segments: bytes from their pieces, zeros for what a page blob never had
    /// written (nothing stored, nothing read).
    fn read_segments(
        &self,
        segments: Vec<super::pages::Segment>,
    ) -> tokio::sync::mpsc::Receiver<std::io::Result<Bytes>> {
        use super::pages::Segment;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let reader = self.reader();
        tokio::task::spawn_blocking(move || {
            for segment in &segments {
                let mut gone = false;
                match segment {
                    Segment::Zeros(n) => {
                        let mut left = *n;
                        while left > 0 && !gone {
                            let k = left.min(READ_CHUNK as u64) as usize;
                            gone = tx
                                .blocking_send(Ok(Bytes::from_static(&ZEROS[..k])))
                                .is_err();
                            left -= k as u64;
                        }
                    }
                    Segment::Data(p) => {
                        let read = reader.chunks(p, READ_CHUNK, |chunk| {
                            gone = tx.blocking_send(Ok(chunk)).is_err();
                            !gone
                        });
                        if let Err(e) = read {
                            let _ = tx.blocking_send(Err(std::io::Error::other(e.message)));
                            return;
                        }
                    }
                }
                if gone {
                    return;
                }
            }
        });
        rx
    }

    /// Streams `len` bytes of the blob (or snapshot) `record` is, from `start`: a page blob
    /// reads its runs and zeros, any other its pieces.
    pub fn read_blob_range(
        &self,
        n: super::BlobName<'_>,
        snapshot: &str,
        record: &BlobRecord,
        start: u64,
        len: u64,
    ) -> Result<tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>> {
        if record.blob_type == super::BlobType::Page {
            return Ok(self.read_segments(self.page_segments(n, snapshot, start, len)?));
        }
        Ok(self.read_range(record, start, len))
    }

    /// `read_blob_range` whole (blocking; for small ranges).
    pub fn read_blob_small(
        &self,
        n: super::BlobName<'_>,
        snapshot: &str,
        record: &BlobRecord,
        start: u64,
        len: u64,
    ) -> Result<Bytes> {
        if record.blob_type == super::BlobType::Page {
            return self.read_segments_small(&self.page_segments(n, snapshot, start, len)?);
        }
        self.read_small(record, start, len)
    }

    /// Reads page blob segments whole (blocking; for small ranges).
    fn read_segments_small(&self, segments: &[super::pages::Segment]) -> Result<Bytes> {
        use super::pages::Segment;
        let reader = self.reader();
        let mut out = Vec::new();
        for segment in segments {
            match segment {
                Segment::Zeros(n) => out.resize(out.len() + *n as usize, 0),
                Segment::Data(p) => out.extend_from_slice(&reader.read(p, 0, p.len as usize)?),
            }
        }
        Ok(Bytes::from(out))
    }
}

/// What reading pieces needs, detached from the store so a blocking task can own it.
struct PieceReader {
    data: sled::Tree,
    extents: std::sync::Arc<super::extents::Extents>,
}

impl PieceReader {
    fn read(&self, p: &Piece, offset: u64, len: usize) -> Result<Bytes> {
        match p.storage {
            Storage::Inline => {
                if let Some(v) = self.data.get(keys::packed(p.id)).map_err(internal)? {
                    let loc: super::packs::Loc = decode(&v).map_err(internal)?;
                    if p.offset + offset + len as u64 > loc.len {
                        return Err(internal("packed data too short"));
                    }
                    return self
                        .extents
                        .packs
                        .read(loc.pack, loc.offset + p.offset + offset, len)
                        .map_err(internal);
                }
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

    /// Calls `each` with the bytes of `p` in order, in chunks of at most `max`; stops
    /// early when `each` returns false.
    fn chunks(&self, p: &Piece, max: usize, mut each: impl FnMut(Bytes) -> bool) -> Result<()> {
        match p.storage {
            Storage::Inline => {
                each(self.read(p, 0, p.len as usize)?);
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
}
