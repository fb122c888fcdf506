//! Group commit. A write is acknowledged only after a flush that started after the write
//! finished. There is no flusher thread: the first waiter that finds no flush running
//! becomes the leader and flushes on its own thread, and everyone who arrives meanwhile
//! waits for the next flush, led by one of them. Under load one flush covers many
//! requests; a lone writer pays one flush and no thread hand-off. By default a flush only
//! puts sled's log into the kernel (`sync_log_writes(false)`, vendor/sled/PATCHED.md);
//! with `--durability power` it also waits for the disk.
use parking_lot::Mutex;
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
}

struct Inner {
    db: sled::Db,
    /// Power mode: the store's folder, whose files each flush also fdatasyncs.
    power: Option<PowerSync>,
    /// Generation of the newest write that asked to become durable.
    written: AtomicU64,
    /// Generation covered by the last completed flush.
    durable: watch::Sender<u64>,
    /// The leader's seat, and what the last flush covered (for the commit delay).
    leader: Mutex<Leader>,
    failed: AtomicBool,
    /// Group commits done, and the writes they covered (for the metrics endpoint).
    flushes: AtomicU64,
    flushed_writes: AtomicU64,
}

#[derive(Default)]
struct Leader {
    flushing: bool,
    last_target: u64,
    last_batch: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("the store could not flush to disk")]
pub struct FlushFailed;

impl Durability {
    /// `enabled == false` (in-memory store): writes are "durable" once applied. `power`:
    /// the store's folder, when every flush must also reach the disk itself.
    pub fn new(db: sled::Db, enabled: bool, power: Option<std::path::PathBuf>) -> Self {
        if !enabled {
            return Durability { inner: None };
        }
        let (durable, _) = watch::channel(0);
        Durability {
            inner: Some(Arc::new(Inner {
                db,
                power: power.map(PowerSync::new),
                written: AtomicU64::new(0),
                durable,
                leader: Mutex::new(Leader::default()),
                failed: AtomicBool::new(false),
                flushes: AtomicU64::new(0),
                flushed_writes: AtomicU64::new(0),
            })),
        }
    }

    /// Waits until everything written before this call is on disk.
    pub async fn wait(&self) -> Result<(), FlushFailed> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        // Subscribed before the generation is taken, so no completed flush is missed.
        let mut rx = inner.durable.subscribe();
        let generation = inner.written.fetch_add(1, Ordering::SeqCst) + 1;
        let mut yielded = false;
        loop {
            if *rx.borrow_and_update() >= generation {
                break;
            }
            if inner.failed.load(Ordering::SeqCst) {
                return Err(FlushFailed);
            }
            if !yielded {
                // Writes ready to run on this thread register first, so one flush covers
                // them: other tasks, and the sub-requests of a batch, which share this task
                // (without it each of a batch's 256 deletes led a flush of its own).
                yielded = true;
                tokio::task::yield_now().await;
                continue;
            }
            if inner.take_lead() {
                lead(inner).await;
                continue;
            }
            if rx.changed().await.is_err() {
                return Err(FlushFailed);
            }
        }
        if inner.failed.load(Ordering::SeqCst) {
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

    /// Flushes once more (at shutdown), after any flush already running.
    pub fn shutdown(&self) {
        if let Some(inner) = &self.inner {
            loop {
                if inner.take_lead() {
                    inner.flush();
                    return;
                }
                std::thread::yield_now();
            }
        }
    }
}

impl Drop for Durability {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs one flush as the leader. A power-mode flush waits for the disk: on the
/// multi-threaded runtime it blocks this worker in place (tokio moves the worker's other
/// tasks to another thread meanwhile); elsewhere (a current-thread runtime in a test) it
/// goes to the blocking pool.
async fn lead(inner: &Arc<Inner>) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if inner.power.is_none() {
        // Process durability: the flush only copies log buffers into the kernel (tens of
        // microseconds), less than what handing this worker's tasks to another thread and
        // taking them back costs (block_in_place).
        inner.flush();
        return;
    }
    let multi = Handle::try_current()
        .map(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
        .unwrap_or(false);
    if multi {
        tokio::task::block_in_place(|| inner.flush());
    } else {
        let inner = inner.clone();
        // `flush` frees the seat itself, panic or not.
        let _ = tokio::task::spawn_blocking(move || inner.flush()).await;
    }
}

impl Inner {
    /// Takes the leader's seat if no flush runs.
    fn take_lead(&self) -> bool {
        let mut leader = self.leader.lock();
        if leader.flushing {
            return false;
        }
        leader.flushing = true;
        true
    }

    /// One group commit covering every write up to the generation read at its start; then
    /// the seat is given up and the waiters told.
    fn flush(&self) {
        let (last_target, last_batch) = {
            let l = self.leader.lock();
            (l.last_target, l.last_batch)
        };
        if last_batch >= COALESCE_MIN_BATCH {
            std::thread::sleep(COALESCE_DELAY);
        }
        let target = self.written.load(Ordering::SeqCst);
        // A panic in the flush must still free the seat, or every later write would wait
        // for ever: it counts as a failed flush.
        let synced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.db.flush().map(|_| ()).map_err(|e| e.to_string())?;
            match &self.power {
                Some(p) => p.sync().map_err(|e| e.to_string()),
                None => Ok(()),
            }
        }))
        .unwrap_or_else(|_| Err("the flush panicked".to_string()));
        if let Err(e) = synced {
            tracing::error!(error = %e, "flush failed; refusing to acknowledge writes");
            self.failed.store(true, Ordering::SeqCst);
        }
        let batch = target.saturating_sub(last_target);
        if batch > 0 {
            self.flushes.fetch_add(1, Ordering::Relaxed);
            self.flushed_writes.fetch_add(batch, Ordering::Relaxed);
        }
        {
            let mut l = self.leader.lock();
            l.flushing = false;
            l.last_target = l.last_target.max(target);
            l.last_batch = batch;
        }
        // After the seat is free: a waiter this flush did not cover wakes and leads next.
        self.durable.send_if_modified(|d| {
            let advanced = target > *d;
            *d = (*d).max(target);
            advanced || self.failed.load(Ordering::SeqCst)
        });
    }
}

/// What power mode adds to a flush. sled fdatasyncs each log buffer it writes in power
/// mode (`sync_log_data`, vendor/sled/PATCHED.md), but writes the files of its large
/// values (`blobs/`) without syncing them. So each flush also syncs the large-value files
/// it has not synced yet, and their folder.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn durability(dir: &std::path::Path) -> Durability {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .sync_log_writes(false)
            .open()
            .expect("open");
        Durability::new(db, true, None)
    }

    /// The sub-requests of a batch wait in one task: each yields before it may lead, so
    /// all of them register before the first flush, which covers them all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_in_one_task_share_one_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = durability(dir.path());
        let results = futures_util::future::join_all((0..64).map(|_| d.wait())).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(d.stats(), (1, 64), "one flush covered all 64 writes");
    }

    /// Writes one after another each get a flush of their own, none acknowledged early.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_wait_is_covered_by_a_flush_that_started_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = durability(dir.path());
        for _ in 0..3 {
            d.wait().await.expect("durable");
        }
        assert_eq!(d.stats(), (3, 3));
    }
}
