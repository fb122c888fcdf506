//! Group commit. A write is acknowledged only after a flush that started after the write
//! finished. One flusher thread runs flushes back to back, so every request that arrives
//! while a flush is in progress shares the next one: under load one fsync covers many
//! requests, and an idle emulator pays one fsync per write.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

pub struct Durability {
    inner: Option<Arc<Inner>>,
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
            return Durability { inner: None };
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
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || worker.run())
            .expect("spawning the group-commit thread");
        Durability { inner: Some(inner) }
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
            let _guard = inner.pending.lock();
            inner.wake.notify_one();
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
        loop {
            {
                let mut pending = self.pending.lock();
                while !*pending && !self.stop.load(Ordering::SeqCst) {
                    self.wake.wait(&mut pending);
                }
                *pending = false;
            }
            let target = self.written.load(Ordering::SeqCst);
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
