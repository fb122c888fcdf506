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
    /// Generation of the newest write that asked to become durable.
    written: AtomicU64,
    /// Generation covered by the last completed flush.
    durable: watch::Sender<u64>,
    pending: Mutex<bool>,
    wake: Condvar,
    failed: AtomicBool,
    stop: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("the store could not flush to disk")]
pub struct FlushFailed;

impl Durability {
    /// `enabled == false` (in-memory store): writes are "durable" once applied.
    pub fn new(db: sled::Db, enabled: bool) -> Self {
        if !enabled {
            return Durability {
                inner: None,
                flusher: Mutex::new(None),
            };
        }
        let (durable, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            db,
            written: AtomicU64::new(0),
            durable,
            pending: Mutex::new(false),
            wake: Condvar::new(),
            failed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
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
            if let Err(e) = self.db.flush() {
                tracing::error!(error = %e, "flush failed; refusing to acknowledge writes");
                self.failed.store(true, Ordering::SeqCst);
            }
            self.durable.send_replace(target);
            if self.stop.load(Ordering::SeqCst) && !*self.pending.lock() {
                return;
            }
        }
    }
}
