//! The Blob service's files as a whole, for state snapshots (`store::snapshots`): extent
//! files are written once and never changed, packs only grow, and compaction writes new
//! files rather than rewriting old ones. So a hard link is a snapshot of a file, and a
//! snapshot of every body costs no copy and no space until the live store lets go of it.

use super::BlobStore;
use std::path::{Path, PathBuf};

/// Hard-links every regular file of `from` into `to` (created), skipping names already
/// there as the same file; returns how many bytes the linked files hold.
fn link_all(from: &Path, to: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let target = to.join(entry.file_name());
        match std::fs::symlink_metadata(&target) {
            Ok(t) if t.ino() == meta.ino() && t.dev() == meta.dev() => {}
            Ok(_) => {
                std::fs::remove_file(&target)?;
                std::fs::hard_link(entry.path(), &target)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::hard_link(entry.path(), &target)?;
            }
            Err(e) => return Err(e),
        }
        bytes += meta.len();
    }
    Ok(bytes)
}

/// Removes the files of `dir` that `keep` has no file of that name for.
fn remove_others(dir: &Path, keep: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.metadata()?.is_file() && !keep.join(entry.file_name()).exists() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl BlobStore {
    /// Where the store keeps its files (snapshots go beside them, on the same file system).
    pub(crate) fn root(&self) -> PathBuf {
        self.extents.root()
    }

    /// Links every body file into `dest/extents` and `dest/packs`; returns their bytes.
    /// Call with every write excluded. The pack being appended to is closed first, so the
    /// snapshot's packs never grow.
    pub(crate) fn link_files(&self, dest: &Path) -> std::io::Result<u64> {
        self.extents.packs.close_current();
        let root = self.root();
        let mut bytes = 0;
        for sub in ["extents", "packs"] {
            bytes += link_all(&root.join(sub), &dest.join(sub))?;
            sync_dir(&dest.join(sub))?;
        }
        Ok(bytes)
    }

    /// Makes the body files exactly those of snapshot folder `src` (links them in, removes
    /// the rest). Call with every write excluded, after the records are restored.
    /// Idempotent, so an interrupted restore is redone at the next start.
    pub(crate) fn restore_files(&self, src: &Path) -> std::io::Result<()> {
        self.extents.packs.close_current();
        self.extents.packs.forget_open();
        let root = self.root();
        for sub in ["extents", "packs"] {
            let (live, saved) = (root.join(sub), src.join(sub));
            std::fs::create_dir_all(&live)?;
            link_all(&saved, &live)?;
            remove_others(&live, &saved)?;
            sync_dir(&live)?;
        }
        Ok(())
    }

    /// Drops what is cached from records (after a restore replaced them).
    pub(crate) fn forget_cached(&self) {
        self.protection.write().clear();
    }
}
