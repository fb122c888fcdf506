//! The consumer loop: receive as many messages as there are free job slots, back off while
//! the queue is empty, and on shutdown stop receiving, give running jobs a grace period,
//! then release what is left.

use crate::config::Config;
use crate::job::{self, Outcome, Shared};
use azure_core::http::RetryOptions;
use azure_storage_queue::models::QueueClientReceiveMessagesOptions;
use std::sync::Arc;
use std::time::Duration;
use storage_client::job_store::{ensure_resources, JobStore};
use storage_client::{job as jobfmt, Storage};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Get Messages returns at most 32.
const MAX_BATCH: usize = 32;

/// Runs until `shutdown` fires, then drains; returns once every job is finished or released.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let storage = Storage::connect_urls(
        &config.connection_string,
        config.blob_url.as_deref(),
        config.queue_url.as_deref(),
        RetryOptions::exponential(azure_core::http::ExponentialRetryOptions {
            max_retries: config.storage_retries,
            ..Default::default()
        }),
    )?;
    // Storage may still be starting (compose, launcher): retry creation for a while.
    let mut wait = Duration::from_millis(100);
    loop {
        match ensure_resources(&storage, &config.queue).await {
            Ok(()) => break,
            Err(e) if wait < Duration::from_secs(10) && !shutdown.is_cancelled() => {
                warn!(error = %e, "storage not ready; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let shared = Arc::new(Shared {
        queue: storage.queue(&config.queue)?,
        poison: storage.queue(&jobfmt::poison_queue(&config.queue))?,
        jobs: JobStore::new(&storage),
        storage,
        config: config.clone(),
    });
    let concurrency = config.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let stop_jobs = CancellationToken::new();
    let mut running = JoinSet::new();
    let idle_max = Duration::from_millis(config.idle_max_ms.max(10));
    let mut idle = Duration::from_millis(25);
    info!(queue = %config.queue, concurrency, visibility_s = config.visibility_timeout, "worker started");

    while !shutdown.is_cancelled() {
        // Reap finished jobs so the set stays small.
        while running.try_join_next().is_some() {}
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.cancelled() => break,
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let received = shared
            .queue
            .receive_messages(Some(QueueClientReceiveMessagesOptions {
                number_of_messages: Some(i32::try_from(permits.len()).unwrap_or(1)),
                visibility_timeout: Some(
                    i32::try_from(config.visibility_timeout.max(1)).unwrap_or(30),
                ),
                ..Default::default()
            }))
            .await
            .and_then(|r| r.into_model());
        let messages = match received {
            Ok(list) => list.items.unwrap_or_default(),
            Err(e) => {
                warn!(error = %e, "receiving messages failed");
                Vec::new()
            }
        };
        if messages.is_empty() {
            drop(permits);
            tokio::select! {
                _ = tokio::time::sleep(idle) => {},
                _ = shutdown.cancelled() => break,
            }
            idle = (idle * 2).min(idle_max);
            continue;
        }
        idle = Duration::from_millis(25);
        for msg in messages {
            let Some(permit) = permits.pop() else { break };
            let shared = shared.clone();
            let stop = stop_jobs.clone();
            running.spawn(async move {
                let outcome = job::handle(shared, msg, stop).await;
                drop(permit);
                outcome
            });
        }
    }

    info!(in_flight = running.len(), "stopping: no new jobs");
    let grace = Duration::from_secs(config.shutdown_grace);
    let drained = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        info!(
            in_flight = running.len(),
            "grace period over: releasing running jobs"
        );
        stop_jobs.cancel();
        let mut released = 0;
        while let Some(r) = running.join_next().await {
            if matches!(r, Ok(Outcome::Released)) {
                released += 1;
            }
        }
        info!(released, "released");
    }
    info!("worker stopped");
    Ok(())
}
