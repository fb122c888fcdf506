//! Small bodies, packed. A body of at most `INLINE_MAX` bytes is appended to the current
//! pack file (`packs/<id>`, a new one every 64 MiB) when it has been received, and the
//! commit that adopts it writes `E id → Loc` (where its bytes are) with the record. sled
//! keeps KiB-sized values at about 2.5 times their size; a pack keeps them at theirs.
//!
//! Freeing a small piece removes its `E` key; its bytes stay in the pack as dead space
//! until the store is opened again: then packs with no live piece are deleted and packs
//! mostly dead are rewritten (`BlobStore::compact_packs`).
//!
//! Durability: an append is a `write` into the kernel before the request is answered, so
//! it survives the process being killed like sled's own log; with `--durability power`
//! the pack is also fdatasynced before the commit that references it.

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// A pack is closed (a new one started) past this size.
const PACK_MAX: u64 = 64 * 1024 * 1024;

/// Where a packed piece's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub pack: u64,
    pub offset: u64,
    pub len: u64,
}

impl crate::store::codec::Record for Loc {}

struct Writer {
    id: u64,
    file: Arc<File>,
    len: u64,
}

pub struct Packs {
    dir: PathBuf,
    /// fdatasync every append (`--durability power`).
    sync: bool,
    current: Mutex<Option<Writer>>,
    /// Open packs for reads.
    open: RwLock<HashMap<u64, Arc<File>>>,
}

impl Packs {
    pub fn open(dir: PathBuf, sync: bool) -> std::io::Result<Packs> {
        std::fs::create_dir_all(&dir)?;
        Ok(Packs {
            dir,
            sync,
            current: Mutex::new(None),
            open: RwLock::new(HashMap::new()),
        })
    }

    /// Whether appends are fdatasynced (`--durability power`).
    pub fn syncs(&self) -> bool {
        self.sync
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}"))
    }

    /// Appends `bytes`; `fresh` names the pack to start if one must be (a new unique id).
    pub fn append(&self, bytes: &[u8], fresh: u64) -> std::io::Result<Loc> {
        let mut current = self.current.lock();
        if current.as_ref().is_none_or(|w| w.len >= PACK_MAX) {
            let file = File::options()
                .read(true)
                .append(true)
                .create_new(true)
                .open(self.path(fresh))?;
            let file = Arc::new(file);
            self.open.write().insert(fresh, file.clone());
            *current = Some(Writer {
                id: fresh,
                file,
                len: 0,
            });
        }
        let w = current
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no pack"))?;
        // Appended with the lock held, so offsets follow the order of the writes.
        w.file.write_all_at(bytes, w.len)?;
        if self.sync {
            w.file.sync_data()?;
        }
        let loc = Loc {
            pack: w.id,
            offset: w.len,
            len: bytes.len() as u64,
        };
        w.len += bytes.len() as u64;
        Ok(loc)
    }

    fn file(&self, id: u64) -> std::io::Result<Arc<File>> {
        if let Some(f) = self.open.read().get(&id) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(self.path(id))?);
        self.open.write().insert(id, f.clone());
        Ok(f)
    }

    /// `len` bytes at `offset` of pack `id` (blocking).
    pub fn read(&self, id: u64, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let mut buf = vec![0u8; len];
        self.file(id)?.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    }

    /// Every pack file with its size.
    pub fn list(&self) -> Vec<(u64, u64)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let id = u64::from_str_radix(&e.file_name().to_string_lossy(), 16).ok()?;
                Some((id, e.metadata().ok()?.len()))
            })
            .collect()
    }

    /// Removes a pack that holds no live piece (never the one being appended to).
    pub fn remove(&self, id: u64) {
        if self.current.lock().as_ref().is_some_and(|w| w.id == id) {
            return;
        }
        self.open.write().remove(&id);
        if let Err(e) = std::fs::remove_file(self.path(id)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(id, error = %e, "could not remove a pack");
            }
        }
    }

    /// Makes every append so far durable (before a rewrite's new locations are written).
    pub fn sync_current(&self) -> std::io::Result<()> {
        if let Some(w) = self.current.lock().as_ref() {
            w.file.sync_all()?;
        }
        File::open(&self.dir)?.sync_all()
    }

    /// Closes every pack opened for reads (their files may have been replaced).
    pub fn forget_open(&self) {
        self.open.write().clear();
    }

    /// Starts a new pack at the next append (a rewrite's copies go to a pack of their own).
    pub fn close_current(&self) {
        *self.current.lock() = None;
    }
}
