//! Blob bytes. Small bodies live in sled next to their metadata; larger ones are written,
//! as they stream in, to one file per upload ("extent") under `<location>/extents/`. A blob
//! (or staged block) is a list of pieces: (storage, offset, length). Every piece is owned
//! by exactly one blob version or staged block, so deleting it gives the space back at once.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bodies up to this size are packed (`packs`), larger ones get a file of their own.
pub const INLINE_MAX: usize = 64 * 1024;
/// Buffer size for copies between extents.
const COPY_CHUNK: usize = 1024 * 1024;
/// Download chunk size.
pub const READ_CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Storage {
    /// `D id` in sled.
    Inline,
    /// `extents/<id>` on disk.
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub storage: Storage,
    pub id: u64,
    pub offset: u64,
    pub len: u64,
}

/// Total length of a piece list.
pub fn total_len(pieces: &[Piece]) -> u64 {
    pieces.iter().map(|p| p.len).sum()
}

/// The sub-list of `pieces` covering `[start, start + len)`.
pub fn slice(pieces: &[Piece], start: u64, len: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let end = start + len;
    let mut pos = 0u64;
    for p in pieces {
        let (p_start, p_end) = (pos, pos + p.len);
        pos = p_end;
        if p_end <= start || p_start >= end {
            continue;
        }
        let from = start.max(p_start);
        let to = end.min(p_end);
        out.push(Piece {
            offset: p.offset + (from - p_start),
            len: to - from,
            ..*p
        });
    }
    out
}

pub struct Extents {
    dir: PathBuf,
    /// Whether to fsync (off for the in-memory store).
    durable: bool,
    /// Small bodies (see `packs`).
    pub packs: super::packs::Packs,
    /// Kept so a temporary directory lives as long as the store.
    _temp: Option<tempfile::TempDir>,
}

impl Extents {
    /// `power`: packs are fdatasynced on every append (`--durability power`).
    pub fn open(location: Option<&Path>, power: bool) -> std::io::Result<Extents> {
        match location {
            Some(dir) => {
                let packs = super::packs::Packs::open(dir.join("packs"), power)?;
                let dir = dir.join("extents");
                std::fs::create_dir_all(&dir)?;
                Ok(Extents {
                    dir,
                    durable: true,
                    packs,
                    _temp: None,
                })
            }
            None => {
                let temp = tempfile::tempdir()?;
                let packs = super::packs::Packs::open(temp.path().join("packs"), false)?;
                let dir = temp.path().join("extents");
                std::fs::create_dir_all(&dir)?;
                Ok(Extents {
                    dir,
                    durable: false,
                    packs,
                    _temp: Some(temp),
                })
            }
        }
    }

    pub fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}"))
    }

    /// The folder holding `extents/` and `packs/`.
    pub fn root(&self) -> PathBuf {
        self.dir.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// Ids of every extent file present (for garbage collection after a crash).
    pub fn list(&self) -> Vec<u64> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| u64::from_str_radix(&e.file_name().to_string_lossy(), 16).ok())
            .collect()
    }

    pub fn remove(&self, id: u64) {
        if let Err(e) = std::fs::remove_file(self.path(id)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(id, error = %e, "could not remove an extent");
            }
        }
    }

    pub fn create(&self, id: u64) -> std::io::Result<ExtentWriter> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(self.path(id))?;
        Ok(ExtentWriter {
            file,
            written: 0,
            durable: self.durable,
            dir: self.dir.clone(),
        })
    }

    /// Reads `len` bytes at `offset` of extent `id` (blocking).
    pub fn read(&self, id: u64, offset: u64, len: usize) -> std::io::Result<Bytes> {
        Ok(self
            .reader(id, offset, len as u64)?
            .next_chunk(len)?
            .unwrap_or_default())
    }

    /// A sequential reader over `len` bytes at `offset` of extent `id` (blocking).
    pub fn reader(&self, id: u64, offset: u64, len: u64) -> std::io::Result<ExtentReader> {
        let mut file = File::open(self.path(id))?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(ExtentReader { file, left: len })
    }

    /// Copies a byte range of one extent into a new one (blocking); for snapshots and copies.
    pub fn copy_range(&self, from: u64, offset: u64, len: u64, to: u64) -> std::io::Result<()> {
        let mut src = File::open(self.path(from))?;
        src.seek(SeekFrom::Start(offset))?;
        let mut w = self.create(to)?;
        let mut left = len;
        let mut buf = vec![0u8; COPY_CHUNK];
        while left > 0 {
            let n = (left as usize).min(buf.len());
            src.read_exact(&mut buf[..n])?;
            w.write(&buf[..n])?;
            left -= n as u64;
        }
        w.finish()
    }
}

/// Reads an extent range in chunks, each into a buffer of its own that is never zeroed
/// first (`read_to_end` fills spare capacity), and with one open for the whole range.
pub struct ExtentReader {
    file: File,
    left: u64,
}

impl ExtentReader {
    /// The next chunk of at most `max` bytes, or None at the end of the range.
    pub fn next_chunk(&mut self, max: usize) -> std::io::Result<Option<Bytes>> {
        if self.left == 0 {
            return Ok(None);
        }
        let n = self.left.min(max as u64);
        let mut buf = Vec::with_capacity(n as usize);
        (&mut self.file).take(n).read_to_end(&mut buf)?;
        if buf.len() as u64 != n {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "extent shorter than its record",
            ));
        }
        self.left -= n;
        Ok(Some(Bytes::from(buf)))
    }
}

pub struct ExtentWriter {
    file: File,
    written: u64,
    durable: bool,
    dir: PathBuf,
}

impl ExtentWriter {
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Makes the file and its directory entry durable.
    pub fn finish(self) -> std::io::Result<()> {
        if self.durable {
            self.file.sync_data()?;
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Azure Storage's CRC64 is CRC-64/NVME (polynomial 0x9A6C9329AC4BC9B5 reflected, all-ones
/// init and xorout), sent as the base64 of its little-endian bytes.
/// Slice-by-16 tables: several times the throughput of the default byte-wise table.
pub static CRC64: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_NVME);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u64, offset: u64, len: u64) -> Piece {
        Piece {
            storage: Storage::File,
            id,
            offset,
            len,
        }
    }

    #[test]
    fn azure_crc64_is_crc64_nvme() {
        // The catalogued check value of CRC-64/NVME, the polynomial Azure Storage uses.
        assert_eq!(CRC64.checksum(b"123456789"), 0xAE8B_1486_0A79_9888);
        assert_eq!(CRC64.checksum(b""), 0);
    }

    #[test]
    fn slicing() {
        let pieces = vec![p(1, 0, 10), p(2, 5, 10), p(3, 0, 10)];
        assert_eq!(total_len(&pieces), 30);
        assert_eq!(slice(&pieces, 0, 30), pieces);
        assert_eq!(slice(&pieces, 8, 4), vec![p(1, 8, 2), p(2, 5, 2)]);
        assert_eq!(slice(&pieces, 10, 10), vec![p(2, 5, 10)]);
        assert_eq!(slice(&pieces, 25, 5), vec![p(3, 5, 5)]);
        assert!(slice(&pieces, 30, 5).is_empty());
    }
}
