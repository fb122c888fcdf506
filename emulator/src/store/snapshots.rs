//! Named snapshots of the whole state (`/_emulator/snapshots`), for tests that want a known
//! starting point. A snapshot is a folder `state-snapshots/<name>/` beside the store:
//! `records` (every record of both services, checksummed), `extents/` and `packs/` (hard
//! links to the body files, see `blob::files`) and `manifest.json`.
//!
//! The caller excludes every request and background task while either runs (the gate in
//! `AppState`), so a snapshot is one instant of the state and a restore is never seen half
//! done by a request.
//!
//! Crashes: a snapshot is built in a `.tmp-*` folder and renamed into place once synced, so
//! it exists whole or not at all. A restore first writes `restoring → name` in sled's
//! default tree and removes it last; a store opened with the marker present redoes the
//! restore (every step is idempotent) before it serves.

use super::Store;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const DIR: &str = "state-snapshots";
const MAGIC: &[u8; 10] = b"AZEMSNAP1\n";
/// Marks the end of the records (no key is this long).
const END: u32 = u32::MAX;
/// Present while a restore is in progress: its value is the snapshot's name.
pub(super) const RESTORING_KEY: &[u8] = b"restoring";
/// Records per sled batch when clearing and importing.
const CHUNK: usize = 4096;

/// What `GET /_emulator/snapshots` lists for one snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    pub name: String,
    /// When it was taken, by the emulator's clock (ISO 8601).
    pub created: String,
    pub records: u64,
    /// Bytes of the body files it holds (shared with the live store while both have them).
    pub body_bytes: u64,
}

/// Snapshot names become folder names: refused unless they are control-plane names.
fn checked(name: &str) -> Result<()> {
    if crate::protocol::validate::control_name(name) {
        return Ok(());
    }
    Err(
        StorageError::new(ErrorCode::InvalidResourceName).with_message(
            "A snapshot name is 1-64 letters, digits, '-', '_' or '.', not starting with '.'.",
        ),
    )
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::internal(e)
}

fn not_found(name: &str) -> StorageError {
    StorageError::new(ErrorCode::ResourceNotFound)
        .with_message(format!("There is no state snapshot named '{name}'."))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes every record of `tree` to `path`; returns how many.
fn write_records(tree: &sled::Tree, path: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut out = BufWriter::new(&file);
    let mut hash = Sha256::new();
    let mut put = |out: &mut BufWriter<&std::fs::File>, bytes: &[u8]| {
        hash.update(bytes);
        out.write_all(bytes)
    };
    put(&mut out, MAGIC)?;
    let mut count = 0u64;
    for item in tree.iter() {
        let (k, v) = item.map_err(std::io::Error::other)?;
        put(&mut out, &(k.len() as u32).to_le_bytes())?;
        put(&mut out, &k)?;
        put(&mut out, &(v.len() as u32).to_le_bytes())?;
        put(&mut out, &v)?;
        count += 1;
    }
    put(&mut out, &END.to_le_bytes())?;
    put(&mut out, &count.to_le_bytes())?;
    let digest = hash.finalize();
    out.write_all(&digest)?;
    out.flush()?;
    drop(out);
    file.sync_all()?;
    Ok(count)
}

/// Reads the records of `path`, handing them to `each` (in order); fails on any damage,
/// checksum included, only after the last record: run it once with a no-op `each` to
/// check a file before acting on it.
fn read_records(
    path: &Path,
    mut each: impl FnMut(Vec<u8>, Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut input = BufReader::new(std::fs::File::open(path)?);
    let mut hash = Sha256::new();
    let mut take = |input: &mut BufReader<std::fs::File>, n: usize| -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        input.read_exact(&mut buf)?;
        hash.update(&buf);
        Ok(buf)
    };
    let u32_of = |b: Vec<u8>| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if take(&mut input, MAGIC.len())? != MAGIC {
        return Err(bad("not a state snapshot"));
    }
    let mut count = 0u64;
    loop {
        let klen = u32_of(take(&mut input, 4)?);
        if klen == END {
            break;
        }
        let k = take(&mut input, klen as usize)?;
        let vlen = u32_of(take(&mut input, 4)?);
        let v = take(&mut input, vlen as usize)?;
        each(k, v)?;
        count += 1;
    }
    let stated = take(&mut input, 8)?;
    let digest = hash.finalize();
    let mut stored = [0u8; 32];
    input.read_exact(&mut stored)?;
    if stored[..] != digest[..]
        || u64::from_le_bytes(stated.try_into().unwrap_or_default()) != count
    {
        return Err(bad("the records' checksum does not match"));
    }
    Ok(count)
}

impl Store {
    fn snapshots_dir(&self) -> PathBuf {
        self.blobs.root().join(DIR)
    }

    /// Takes snapshot `name` of the whole state, replacing one of that name. Blocking;
    /// every request must be excluded.
    pub fn create_snapshot(&self, name: &str) -> Result<SnapshotInfo> {
        checked(name)?;
        let dir = self.snapshots_dir();
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let unique = self.core.next_id().map_err(internal)?;
        let temp = dir.join(format!(".tmp-{unique:x}"));
        let result = (|| -> std::io::Result<SnapshotInfo> {
            std::fs::create_dir_all(&temp)?;
            let records = write_records(&self.core.data, &temp.join("records"))?;
            let body_bytes = self.blobs.link_files(&temp)?;
            let info = SnapshotInfo {
                name: name.to_string(),
                created: crate::clock::iso8601_7(self.core.clock.now_ms()),
                records,
                body_bytes,
            };
            let manifest = temp.join("manifest.json");
            std::fs::write(&manifest, serde_json::to_vec_pretty(&info)?)?;
            std::fs::File::open(&manifest)?.sync_all()?;
            sync_dir(&temp)?;
            let target = dir.join(name);
            if target.exists() {
                let old = dir.join(format!(".old-{unique:x}"));
                std::fs::rename(&target, &old)?;
                std::fs::rename(&temp, &target)?;
                sync_dir(&dir)?;
                std::fs::remove_dir_all(&old)?;
            } else {
                std::fs::rename(&temp, &target)?;
            }
            sync_dir(&dir)?;
            Ok(info)
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&temp);
        }
        result.map_err(internal)
    }

    /// Every snapshot, by name.
    pub fn list_snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let dir = self.snapshots_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(internal(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !crate::protocol::validate::control_name(&name) {
                continue;
            }
            if let Ok(bytes) = std::fs::read(entry.path().join("manifest.json")) {
                if let Ok(info) = serde_json::from_slice::<SnapshotInfo>(&bytes) {
                    out.push(info);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One snapshot's manifest.
    pub fn snapshot(&self, name: &str) -> Result<SnapshotInfo> {
        checked(name)?;
        let bytes = std::fs::read(self.snapshots_dir().join(name).join("manifest.json"))
            .map_err(|_| not_found(name))?;
        serde_json::from_slice(&bytes).map_err(internal)
    }

    /// Deletes a snapshot; false if there was none of that name.
    pub fn delete_snapshot(&self, name: &str) -> Result<bool> {
        checked(name)?;
        let path = self.snapshots_dir().join(name);
        if !path.join("manifest.json").exists() {
            return Ok(false);
        }
        let unique = self.core.next_id().map_err(internal)?;
        let trash = self.snapshots_dir().join(format!(".old-{unique:x}"));
        std::fs::rename(&path, &trash).map_err(internal)?;
        std::fs::remove_dir_all(&trash).map_err(internal)?;
        Ok(true)
    }

    /// Makes the whole state what snapshot `name` holds. Blocking; every request and
    /// background task must be excluded. The snapshot is checked whole before anything
    /// changes, so a damaged one is refused with the state untouched.
    pub fn restore_snapshot(&self, name: &str) -> Result<SnapshotInfo> {
        let info = self.snapshot(name)?;
        let folder = self.snapshots_dir().join(name);
        read_records(&folder.join("records"), |_, _| Ok(())).map_err(internal)?;
        self.core
            .db
            .insert(RESTORING_KEY, name.as_bytes())
            .map_err(internal)?;
        self.core.db.flush().map_err(internal)?;
        self.redo_restore(&folder).map_err(internal)?;
        Ok(info)
    }

    /// The restore itself, idempotent: records replaced, files matched, caches rebuilt,
    /// the marker removed last.
    fn redo_restore(&self, folder: &Path) -> std::io::Result<()> {
        let data = &self.core.data;
        loop {
            let keys: Vec<sled::IVec> = data
                .iter()
                .keys()
                .take(CHUNK)
                .collect::<sled::Result<_>>()
                .map_err(std::io::Error::other)?;
            if keys.is_empty() {
                break;
            }
            let mut batch = sled::Batch::default();
            for k in keys {
                batch.remove(k);
            }
            data.apply_batch(batch).map_err(std::io::Error::other)?;
        }
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        read_records(&folder.join("records"), |k, v| {
            batch.insert(k, v);
            pending += 1;
            if pending == CHUNK {
                data.apply_batch(std::mem::take(&mut batch))
                    .map_err(std::io::Error::other)?;
                pending = 0;
            }
            Ok(())
        })?;
        data.apply_batch(batch).map_err(std::io::Error::other)?;
        self.blobs.restore_files(folder)?;
        self.core.db.flush().map_err(std::io::Error::other)?;
        self.forget_cached().map_err(std::io::Error::other)?;
        self.core
            .db
            .remove(RESTORING_KEY)
            .map_err(std::io::Error::other)?;
        self.core.db.flush().map_err(std::io::Error::other)?;
        Ok(())
    }

    /// Everything kept in memory from records, rebuilt from them.
    fn forget_cached(&self) -> std::result::Result<(), String> {
        self.services.write().clear();
        self.blobs.forget_cached();
        self.events.reload().map_err(|e| e.to_string())?;
        self.queues.reload()
    }

    /// At open: finishes a restore a crash interrupted, and removes snapshots a crash left
    /// half-built.
    pub(super) fn recover_snapshots(&self) -> std::result::Result<(), String> {
        let dir = self.snapshots_dir();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") || name.starts_with(".old-") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let restoring = self.core.db.get(RESTORING_KEY).map_err(|e| e.to_string())?;
        if let Some(name) = restoring {
            let name = String::from_utf8_lossy(&name).into_owned();
            tracing::warn!(snapshot = %name, "finishing a restore a stop interrupted");
            self.redo_restore(&dir.join(&name))
                .map_err(|e| format!("restoring snapshot {name}: {e}"))?;
        }
        Ok(())
    }
}
