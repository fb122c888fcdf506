//! Giving space back. sled's files never shrink: what deletes, purges and overwrites free
//! stays allocated inside them. At open, when the database's folder holds much more than
//! its live data, the live trees are copied into a fresh database beside it and the store
//! switches to it.
//!
//! Which database is live is named by the `CURRENT` file (written by rename, so a crash
//! leaves the old name or the new one, never half of either). A store written before
//! compaction existed has no `CURRENT`: its database is the data folder itself. Anything
//! else that looks like a database is the leftover of a compaction cut short and is
//! removed at the next open.

use std::path::{Path, PathBuf};

const CURRENT: &str = "CURRENT";
/// Compacted databases are `sled-1`, `sled-2`, ...
const PREFIX: &str = "sled-";
/// What sled keeps in its folder (the data folder itself for a pre-compaction store).
const SLED_FILES: &[&str] = &["conf", "db", "blobs"];
/// Rows copied per batch.
const COPY_BATCH: usize = 4096;

/// When to compact: the database's folder is larger than `RATIO` times its live bytes
/// plus `SLACK` (sled's own segments and cache of a few MiB make a floor).
pub const RATIO: f64 = 1.3;
pub const SLACK: u64 = 4 * 1024 * 1024;

/// The folder of the live database under the data folder `dir`, after removing what a
/// compaction cut short left behind.
pub fn live_dir(dir: &Path) -> std::io::Result<PathBuf> {
    let current = match std::fs::read_to_string(dir.join(CURRENT)) {
        Ok(name) => Some(name.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(PREFIX) && current.as_deref() != Some(name.as_str()) {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    match current {
        Some(name) => {
            // A compacted store: the pre-compaction files in the data folder are stale.
            remove_root_files(dir)?;
            Ok(dir.join(name))
        }
        None => Ok(dir.to_path_buf()),
    }
}

fn remove_root_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if SLED_FILES.contains(&name.as_str()) || name.starts_with("snap.") {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(path)?;
            } else {
                std::fs::remove_file(path)?;
            }
        }
    }
    Ok(())
}

/// Bytes of sled's files in `sled_dir` (not the extents folder, not other databases).
pub fn disk_bytes(sled_dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    SLED_FILES
        .iter()
        .map(|f| walk(&sled_dir.join(f)))
        .sum::<u64>()
        + std::fs::read_dir(sled_dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("snap."))
                    .map(|e| walk(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
}

/// Keys and values of every tree: what a fresh copy must hold.
pub fn live_bytes(db: &sled::Db) -> sled::Result<u64> {
    let mut total = 0u64;
    for name in db.tree_names() {
        let tree = db.open_tree(&name)?;
        for item in tree.iter() {
            let (k, v) = item?;
            total += (k.len() + v.len()) as u64;
        }
    }
    Ok(total)
}

/// What the last copy took per live byte (sled's log keeps small values at about 2.5
/// times their size even freshly written), so an open copies only when that would give
/// space back.
const HINT: &str = "COMPACT_RATIO";

/// Whether a database of `disk` bytes holding `live` bytes is worth rewriting.
pub fn worth_it(dir: &Path, disk: u64, live: u64) -> bool {
    let fresh = std::fs::read_to_string(dir.join(HINT))
        .ok()
        .and_then(|h| h.trim().parse::<f64>().ok())
        .unwrap_or(1.0);
    disk as f64 > live as f64 * RATIO.max(fresh * 1.1) + SLACK as f64
}

/// Copies `db` (the live database in `from`, under data folder `dir`) into a fresh one,
/// switches `CURRENT` to it and removes the old. Returns the new database's folder. `db`
/// must be the only handle on the old database; it is flushed and dropped here. A copy
/// that is not at least a tenth smaller (sled's log can take as much for small values
/// freshly written) is thrown away and the old database kept.
pub fn compact(
    dir: &Path,
    from: &Path,
    db: sled::Db,
    live: u64,
    config: impl Fn(&Path) -> sled::Config,
) -> Result<PathBuf, String> {
    let next = (1..)
        .map(|i| format!("{PREFIX}{i}"))
        .find(|n| !dir.join(n).exists() && from != dir.join(n))
        .unwrap_or_else(|| format!("{PREFIX}x"));
    let to = dir.join(&next);
    let fresh = config(&to)
        .open()
        .map_err(|e| format!("open {}: {e}", to.display()))?;
    for name in db.tree_names() {
        let src = db.open_tree(&name).map_err(|e| e.to_string())?;
        let dst = fresh.open_tree(&name).map_err(|e| e.to_string())?;
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for item in src.iter() {
            let (k, v) = item.map_err(|e| e.to_string())?;
            batch.insert(k, v);
            n += 1;
            if n == COPY_BATCH {
                dst.apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| e.to_string())?;
                n = 0;
            }
        }
        dst.apply_batch(batch).map_err(|e| e.to_string())?;
    }
    // The copy's sled counter starts at zero: its ids go above the old database's.
    let floor = super::ids::floor_after(&db).map_err(|e| e.to_string())?;
    fresh
        .insert(super::ids::FLOOR_KEY, &floor.to_be_bytes())
        .map_err(|e| e.to_string())?;
    fresh.flush().map_err(|e| e.to_string())?;
    drop(fresh);
    drop(db);
    let (before, after) = (disk_bytes(from), disk_bytes(&to));
    if live > SLACK {
        std::fs::write(dir.join(HINT), format!("{:.3}", after as f64 / live as f64))
            .map_err(|e| e.to_string())?;
    }
    if after as f64 > before as f64 * 0.9 {
        std::fs::remove_dir_all(&to).map_err(|e| e.to_string())?;
        return Ok(from.to_path_buf());
    }
    sync_tree(&to).map_err(|e| format!("sync {}: {e}", to.display()))?;
    // The switch: one rename.
    let tmp = dir.join("CURRENT.tmp");
    std::fs::write(&tmp, &next).map_err(|e| e.to_string())?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join(CURRENT)).map_err(|e| e.to_string())?;
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    // The old database is garbage now; `live_dir` removes it (also after a crash here).
    live_dir(dir).map_err(|e| e.to_string())
}

/// fsyncs every file under `p` and the folders themselves.
fn sync_tree(p: &Path) -> std::io::Result<()> {
    if p.is_dir() {
        for entry in std::fs::read_dir(p)? {
            sync_tree(&entry?.path())?;
        }
    }
    std::fs::File::open(p)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_short_compaction_is_cleaned_up_and_the_switch_is_atomic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = |p: &Path| sled::Config::new().path(p);
        // A pre-compaction store: sled's files in the data folder.
        let db = cfg(dir.path()).open().expect("open");
        let t = db.open_tree("data").expect("tree");
        for i in 0..2000u32 {
            t.insert(i.to_be_bytes(), vec![7u8; 1000]).expect("insert");
        }
        for i in 0..1900u32 {
            t.remove(i.to_be_bytes()).expect("remove");
        }
        let floor = super::super::ids::open(&db, true).expect("floor");
        let mut last_id = 0;
        for _ in 0..10 {
            last_id = super::super::ids::next(&db, floor).expect("id");
        }
        db.flush().expect("flush");
        std::fs::create_dir_all(dir.path().join("extents")).expect("extents");
        // A leftover of an earlier compaction cut short before its switch.
        std::fs::create_dir_all(dir.path().join("sled-7")).expect("leftover");
        assert_eq!(live_dir(dir.path()).expect("live"), dir.path());
        assert!(!dir.path().join("sled-7").exists());
        let to = compact(dir.path(), dir.path(), db, 0, cfg).expect("compact");
        assert_eq!(to, dir.path().join("sled-1"));
        assert!(!dir.path().join("db").exists(), "the old database is gone");
        assert!(
            dir.path().join("extents").exists(),
            "blob files are not sled's"
        );
        assert_eq!(live_dir(dir.path()).expect("live"), to);
        let db = cfg(&to).open().expect("reopen");
        let t = db.open_tree("data").expect("tree");
        assert_eq!(t.len(), 100);
        assert_eq!(
            t.get(1999u32.to_be_bytes()).expect("get").map(|v| v.len()),
            Some(1000)
        );
        assert!(live_bytes(&db).expect("live") >= 100 * 1000);
        // Ids in the copy stay above every id the old database gave (sled's own counter
        // starts again at zero in a new database).
        let floor = super::super::ids::open(&db, false).expect("floor");
        assert!(super::super::ids::next(&db, floor).expect("id") > last_id);
        // Compacting again moves to the next name and removes the first.
        let again = compact(dir.path(), &to, db, 0, cfg).expect("compact again");
        assert_eq!(again, dir.path().join("sled-2"));
        assert!(!to.exists());
    }
}
