//! The one way bytes enter the store. `BlobStore::receive` streams any `ChunkSource` (a
//! request body, a copy source) into an inline buffer or an extent file, computing the
//! checksums asked for and checking the ones the client sent; it returns `Received`, which
//! owns those bytes until a store operation hands them to a record. Whatever happens
//! before that (a refused precondition, an error, a client that goes away and drops the
//! request's future), dropping an `Upload` or a `Received` frees its bytes: "a refused or
//! failed write leaves nothing behind" lives here and nowhere else.

use super::extents::{ExtentWriter, Extents, Piece, Storage, CRC64, INLINE_MAX};
use super::{internal, keys, BlobStore};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::store::codec::encode;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};
use std::future::Future;
use std::sync::Arc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Received bytes are buffered up to this much before a file write. Above `INLINE_MAX`, so
/// a body that reaches it goes to a file; small, so 16 concurrent uploads hold 4 MiB.
const SPILL_AT: usize = 256 * 1024;

/// Where received bytes come from, chunk by chunk (None at the end).
pub trait ChunkSource {
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>>> + Send;
}

/// Which checksums of the bytes to compute.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checksums {
    pub md5: bool,
    /// Azure's CRC64 (CRC-64/NVME).
    pub crc64: bool,
}

/// Checksums the client sent for the bytes; a mismatch refuses them.
#[derive(Debug, Default)]
pub struct Expect {
    pub md5: Option<Vec<u8>>,
    pub crc64: Option<Vec<u8>>,
}

/// Bytes no record references yet. Dropping it frees them; a store operation that commits
/// them takes them over (`adopt`).
pub struct Received {
    pieces: Vec<Piece>,
    /// Small bodies: where they were packed, written as `E id` by the commit that adopts
    /// them (unadopted, they are dead space in the pack until the next compaction).
    inline: Option<(u64, super::packs::Loc)>,
    md5: Option<[u8; 16]>,
    crc64: Option<[u8; 8]>,
    len: u64,
    extents: Arc<Extents>,
    owned: bool,
}

impl Received {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn md5(&self) -> Option<[u8; 16]> {
        self.md5
    }

    /// Little-endian CRC64, when it was computed.
    pub fn crc64(&self) -> Option<[u8; 8]> {
        self.crc64
    }

    /// Called inside the locked step that writes the record referencing these bytes:
    /// stores the inline part and gives up ownership. From here the record owns them.
    pub(super) fn adopt(mut self, data: &sled::Tree) -> Result<Vec<Piece>> {
        if let Some((id, loc)) = &self.inline {
            data.insert(keys::packed(*id), encode(loc))
                .map_err(internal)?;
        }
        self.owned = false;
        Ok(std::mem::take(&mut self.pieces))
    }

    /// `adopt` within a batch: the inline part is written with the rest of the change.
    pub(super) fn adopt_into(mut self, batch: &mut sled::Batch) -> Vec<Piece> {
        if let Some((id, loc)) = &self.inline {
            batch.insert(keys::packed(*id), encode(loc));
        }
        self.owned = false;
        std::mem::take(&mut self.pieces)
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        if self.owned {
            for p in &self.pieces {
                if p.storage == Storage::File {
                    self.extents.remove(p.id);
                }
            }
        }
    }
}

/// Bytes being received: small bodies stay in memory, larger ones go to an extent file
/// in writes off the async threads. Dropped unfinished, it removes its file.
struct Upload {
    id: u64,
    extents: Arc<Extents>,
    crc: Option<crc::Digest<'static, u64, crc::Table<16>>>,
    /// Received chunks not yet written, kept as they came (no copy into one buffer).
    pending: Vec<Bytes>,
    pending_len: usize,
    writer: Option<ExtentWriter>,
    md5: Option<Md5>,
    len: u64,
    file_created: bool,
    finished: bool,
}

impl Upload {
    fn new(id: u64, extents: Arc<Extents>, checksums: Checksums) -> Upload {
        Upload {
            id,
            extents,
            crc: checksums.crc64.then(|| CRC64.digest()),
            pending: Vec::new(),
            pending_len: 0,
            writer: None,
            md5: checksums.md5.then(Md5::new),
            len: 0,
            file_created: false,
            finished: false,
        }
    }

    async fn push(&mut self, data: Bytes) -> Result<()> {
        if let Some(m) = self.md5.as_mut() {
            m.update(&data);
        }
        if let Some(c) = self.crc.as_mut() {
            c.update(&data);
        }
        self.len += data.len() as u64;
        self.pending_len += data.len();
        self.pending.push(data);
        if self.pending_len >= SPILL_AT {
            self.spill().await?;
        }
        Ok(())
    }

    async fn spill(&mut self) -> Result<()> {
        let chunks = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let writer = match self.writer.take() {
            Some(w) => w,
            None => {
                self.file_created = true;
                self.extents.create(self.id).map_err(internal)?
            }
        };
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<ExtentWriter> {
            let mut writer = writer;
            for chunk in &chunks {
                writer.write(chunk)?;
            }
            Ok(writer)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        self.writer = Some(writer);
        Ok(())
    }

    /// Finishes the upload: the bytes of a file are durable when this returns.
    async fn finish(mut self) -> Result<Received> {
        let md5 = self.md5.take().map(|m| m.finalize().into());
        let crc64 = self.crc.take().map(|c| c.finalize().to_le_bytes());
        let len = self.len;
        let received = |pieces, inline, extents| Received {
            pieces,
            inline,
            md5,
            crc64,
            len,
            extents,
            owned: true,
        };
        if self.writer.is_none() && self.pending_len <= INLINE_MAX {
            let pieces = if self.len == 0 {
                Vec::new()
            } else {
                vec![Piece {
                    storage: Storage::Inline,
                    id: self.id,
                    offset: 0,
                    len: self.len,
                }]
            };
            let inline = if self.len > 0 {
                let (bytes, extents, id) = (concat(&self.pending), self.extents.clone(), self.id);
                // A write of at most 64 KiB into the page cache takes microseconds: done
                // here; an fdatasync (`--durability power`) goes to the blocking pool.
                let loc = if extents.packs.syncs() {
                    tokio::task::spawn_blocking(move || extents.packs.append(&bytes, id))
                        .await
                        .map_err(internal)?
                } else {
                    extents.packs.append(&bytes, id)
                }
                .map_err(internal)?;
                Some((self.id, loc))
            } else {
                None
            };
            self.finished = true;
            return Ok(received(pieces, inline, self.extents.clone()));
        }
        if !self.pending.is_empty() || self.writer.is_none() {
            self.spill().await?;
        }
        if let Some(writer) = self.writer.take() {
            tokio::task::spawn_blocking(move || writer.finish())
                .await
                .map_err(internal)?
                .map_err(internal)?;
        }
        let pieces = vec![Piece {
            storage: Storage::File,
            id: self.id,
            offset: 0,
            len: self.len,
        }];
        // The file now belongs to the Received (which frees it if never adopted).
        self.finished = true;
        Ok(received(pieces, None, self.extents.clone()))
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.file_created && !self.finished {
            self.extents.remove(self.id);
        }
    }
}

fn concat(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [one] => one.clone(),
        _ => {
            let mut out = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in chunks {
                out.extend_from_slice(c);
            }
            out.freeze()
        }
    }
}

fn too_large(max: u64) -> StorageError {
    StorageError::new(ErrorCode::RequestBodyTooLarge).with_detail("MaxLimit", max.to_string())
}

impl BlobStore {
    /// No bytes (what a page blob is created with, and a copy that brings its own).
    pub(super) fn receive_empty(&self) -> Received {
        Received {
            pieces: Vec::new(),
            inline: None,
            md5: None,
            crc64: None,
            len: 0,
            extents: self.extents.clone(),
            owned: true,
        }
    }

    /// Streams `src` into the store: at most `max` bytes (413 beyond), computing `checksums`
    /// and whatever `expect` needs, and refusing bytes whose checksum differs from the one
    /// the client sent (400 `Md5Mismatch` / `Crc64Mismatch`).
    pub async fn receive<S: ChunkSource + Send>(
        &self,
        src: &mut S,
        max: u64,
        checksums: Checksums,
        expect: &Expect,
    ) -> Result<Received> {
        let checksums = Checksums {
            md5: checksums.md5 || expect.md5.is_some(),
            crc64: checksums.crc64 || expect.crc64.is_some(),
        };
        let id = self.core.next_id().map_err(internal)?;
        let mut up = Upload::new(id, self.extents.clone(), checksums);
        let mut total = 0u64;
        while let Some(chunk) = src.next_chunk().await? {
            total += chunk.len() as u64;
            if total > max {
                return Err(too_large(max));
            }
            up.push(chunk).await?;
        }
        let received = up.finish().await?;
        if let (Some(expected), Some(got)) = (&expect.crc64, received.crc64) {
            if expected.as_slice() != got {
                return Err(StorageError::new(ErrorCode::Crc64Mismatch)
                    .with_detail("UserSpecifiedCrc64", B64.encode(expected))
                    .with_detail("ServerCalculatedCrc64", B64.encode(got)));
            }
        }
        if let Some(expected) = &expect.md5 {
            let got = received.md5.unwrap_or_default();
            if expected.as_slice() != got {
                return Err(StorageError::new(ErrorCode::Md5Mismatch)
                    .with_detail("UserSpecifiedMd5", B64.encode(expected))
                    .with_detail("ServerCalculatedMd5", B64.encode(got)));
            }
        }
        Ok(received)
    }
}
