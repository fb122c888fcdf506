//! Group commit. A write is acknowledged only after a flush that started after the write
//! finished. One flusher thread runs flushes back to back, so every request that arrives
//! while a flush is in progress shares the next one: under load one fsync covers many
//! requests, and an idle emulator pays one fsync per write.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Commit delay (PostgreSQL's `commit_delay`/`commit_siblings`): when the last flush covered
/// at least this many writes, many clients are waiting, so the next flush waits
/// `COALESCE_DELAY` for more of them to join it. Fewer, larger flushes leave the two cores
/// to the requests (Put Message at concurrency 64: about 18,000/s without, 20,000 to
/// 22,000/s with; docs/benchmarks.md). A lone writer never waits: its batch is 1.
const COALESCE_MIN_BATCH: u64 = 16;
const COALESCE_DELAY: std::time::Duration = std::time::Duration::from_micros(500);

pub struct Durability {
    inner: Option<Arc<Inner>>,
    /// The flusher; joined at shutdown so the store's files are released when it returns.
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct Inner {
    db: sled::Db,
    /// Power mode: the store's folder, whose files each flush also fdatasyncs.
    power: Option<PowerSync>,
    /// Generation of the newest write that asked to become durable.
    written: AtomicU64,
    /// Generation covered by the last completed flush.
    durable: watch::Sender<u64>,
    pending: Mutex<bool>,
    wake: Condvar,
    failed: AtomicBool,
    stop: AtomicBool,
    /// Group commits done, and the writes they covered (for the metrics endpoint).
    flushes: AtomicU64,
    flushed_writes: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
#[error("the store could not flush to disk")]
pub struct FlushFailed;

impl Durability {
    /// `enabled == false` (in-memory store): writes are "durable" once applied. `power`:
    /// the store's folder, when every flush must also reach the disk itself.
    pub fn new(db: sled::Db, enabled: bool, power: Option<std::path::PathBuf>) -> Self {
        if !enabled {
            return Durability {
                inner: None,
                flusher: Mutex::new(None),
            };
        }
        let (durable, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            db,
            power: power.map(PowerSync::new),
            written: AtomicU64::new(0),
            durable,
            pending: Mutex::new(false),
            wake: Condvar::new(),
            failed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            flushes: AtomicU64::new(0),
            flushed_writes: AtomicU64::new(0),
        });
        let worker = inner.clone();
        let flusher = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || worker.run())
            .expect("spawning the group-commit thread");
        Durability {
            inner: Some(inner),
            flusher: Mutex::new(Some(flusher)),
        }
    }

    /// Waits until everything written before this call is on disk.
    pub async fn wait(&self) -> Result<(), FlushFailed> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let mut rx = inner.durable.subscribe();
        let generation = inner.written.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let mut pending = inner.pending.lock();
            *pending = true;
            inner.wake.notify_one();
        }
        let ok = rx.wait_for(|d| *d >= generation).await.is_ok();
        if !ok || inner.failed.load(Ordering::SeqCst) {
            return Err(FlushFailed);
        }
        Ok(())
    }

    /// Group commits so far and the writes they made durable (zero for in-memory stores).
    pub fn stats(&self) -> (u64, u64) {
        self.inner.as_ref().map_or((0, 0), |i| {
            (
                i.flushes.load(Ordering::Relaxed),
                i.flushed_writes.load(Ordering::Relaxed),
            )
        })
    }

    /// Flushes once more and stops the flusher (at shutdown).
    pub fn shutdown(&self) {
        if let Some(inner) = &self.inner {
            inner.stop.store(true, Ordering::SeqCst);
            {
                let _guard = inner.pending.lock();
                inner.wake.notify_one();
            }
            if let Some(flusher) = self.flusher.lock().take() {
                let _ = flusher.join();
            }
        }
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Inner {
    fn run(&self) {
        let mut last_target = 0u64;
        let mut last_batch = 0u64;
        loop {
            {
                let mut pending = self.pending.lock();
                while !*pending && !self.stop.load(Ordering::SeqCst) {
                    self.wake.wait(&mut pending);
                }
                *pending = false;
            }
            if last_batch >= COALESCE_MIN_BATCH {
                std::thread::sleep(COALESCE_DELAY);
            }
            let target = self.written.load(Ordering::SeqCst);
            last_batch = target - last_target;
            last_target = target;
            let flushed = self.db.flush().map(|_| ()).map_err(|e| e.to_string());
            let synced = flushed.and_then(|()| match &self.power {
                Some(p) => p.sync().map_err(|e| e.to_string()),
                None => Ok(()),
            });
            if let Err(e) = synced {
                tracing::error!(error = %e, "flush failed; refusing to acknowledge writes");
                self.failed.store(true, Ordering::SeqCst);
            }
            if last_batch > 0 {
                self.flushes.fetch_add(1, Ordering::Relaxed);
                self.flushed_writes.fetch_add(last_batch, Ordering::Relaxed);
            }
            self.durable.send_replace(target);
            if self.stop.load(Ordering::SeqCst) && !*self.pending.lock() {
                return;
            }
        }
    }
}

/// What power mode adds to a flush. sled makes its log durable with `sync_file_range`,
/// which neither flushes the device's write cache nor the file's metadata, and writes the
/// files of its large values (`blobs/`) without syncing them: enough for a killed process
/// (the page cache survives it), not for a power cut. So each flush also fdatasyncs the log
/// file, syncs the large-value files it has not synced yet, and their folder.
struct PowerSync {
    dir: std::path::PathBuf,
    synced: Mutex<std::collections::HashSet<std::ffi::OsString>>,
}

impl PowerSync {
    fn new(dir: std::path::PathBuf) -> PowerSync {
        PowerSync {
            dir,
            synced: Mutex::new(Default::default()),
        }
    }

    fn sync(&self) -> std::io::Result<()> {
        std::fs::File::open(self.dir.join("db"))?.sync_data()?;
        let blobs = self.dir.join("blobs");
        let Ok(entries) = std::fs::read_dir(&blobs) else {
            return Ok(());
        };
        let mut synced = self.synced.lock();
        let mut new = false;
        let mut present = std::collections::HashSet::new();
        for entry in entries {
            let name = entry?.file_name();
            if !synced.contains(&name) {
                // A file sled removed meanwhile needs no sync.
                match std::fs::File::open(blobs.join(&name)) {
                    Ok(f) => f.sync_data()?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            std::fs::File::open(&blobs)?.sync_all()?;
        }
        *synced = present;
        Ok(())
    }
}
