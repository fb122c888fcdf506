//! Handling one delivered message, from claim check to deleted message. Every step is safe
//! to repeat: outputs have fixed names and deterministic bytes, and records are rewritten
//! whole, so a redelivered message ends in the same outputs and state.

use crate::config::{Config, JobSource};
use crate::pipeline::{self, PipelineError};
use azure_core::http::headers::HeaderName;
use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::BlobClientUploadOptions;
use azure_storage_queue::models::{QueueMessage, ReceivedMessage};
use azure_storage_queue::QueueClient;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage_client::job::{
    self, now_rfc3339, EventJob, JobMessage, JobRecord, JobState, Output, PoisonMessage,
};
use storage_client::job_store::JobStore;
use storage_client::Storage;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Originals larger than this are refused without downloading them whole.
const MAX_ORIGINAL_BYTES: u64 = 256 * 1024 * 1024;

/// What the consumer shares with every job.
pub struct Shared {
    pub config: Config,
    pub storage: Storage,
    pub queue: QueueClient,
    pub poison: QueueClient,
    pub jobs: JobStore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Poisoned,
    /// A transient failure: the message becomes visible again for another try.
    Retry,
    /// Stopped by shutdown: the message was made visible again at once.
    Released,
    /// The message vanished under us (deleted, or redelivered to another consumer).
    Lost,
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    /// Retrying cannot help: the job goes to the poison queue.
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

impl From<azure_core::Error> for Failure {
    fn from(e: azure_core::Error) -> Failure {
        Failure::Transient(e.to_string())
    }
}

impl From<PipelineError> for Failure {
    fn from(e: PipelineError) -> Failure {
        if e.is_permanent() {
            Failure::Permanent(e.to_string())
        } else {
            Failure::Transient(e.to_string())
        }
    }
}

struct Timings {
    download: Duration,
    process: Duration,
    upload: Duration,
}

/// Processes one message; `stop` fires when a shutdown's grace period is over.
pub async fn handle(shared: Arc<Shared>, msg: ReceivedMessage, stop: CancellationToken) -> Outcome {
    let started = Instant::now();
    let (Some(message_id), Some(receipt)) = (msg.message_id.clone(), msg.pop_receipt.clone())
    else {
        warn!("received a message without id or pop receipt; skipping");
        return Outcome::Lost;
    };
    let dequeue_count = u64::try_from(msg.dequeue_count.unwrap_or(1)).unwrap_or(1);
    let text = msg.message_text.clone().unwrap_or_default();
    let receipt = Arc::new(Mutex::new(receipt));

    let give_up = |reason: String, record: Option<JobRecord>| {
        let (shared, message_id, receipt, text) = (&shared, &message_id, &receipt, &text);
        async move {
            poison(
                shared,
                message_id,
                receipt,
                text,
                &reason,
                dequeue_count,
                record,
            )
            .await
        }
    };
    let parsed = match shared.config.job_source {
        JobSource::Messages => JobMessage::parse(&text),
        JobSource::Events => match JobMessage::from_blob_event(&text) {
            Ok(EventJob::Job(m)) => Ok(m),
            Ok(EventJob::Skip(why)) => {
                // Not work: acknowledged and forgotten.
                info!(msg_id = %message_id, %why, "skipped an event");
                return if delete_message(&shared, &message_id, &receipt).await {
                    Outcome::Done
                } else {
                    Outcome::Lost
                };
            }
            Err(e) => Err(e),
        },
    };
    let job_id = parsed.as_ref().ok().map(|m| m.id.clone());
    let outcome = match parsed {
        Err(e) => give_up(format!("malformed job message: {e}"), None).await,
        Ok(m) if dequeue_count > u64::from(shared.config.max_dequeue) => {
            let delivered = dequeue_count - 1;
            let plural = if delivered == 1 {
                "delivery"
            } else {
                "deliveries"
            };
            let record = load_record(&shared, &m).await;
            give_up(format!("gave up after {delivered} {plural}"), Some(record)).await
        }
        Ok(m) => {
            let renewal = spawn_renewal(shared.clone(), message_id.clone(), receipt.clone());
            let result = tokio::select! {
                r = run(&shared, &m, dequeue_count) => Some(r),
                _ = stop.cancelled() => None,
            };
            renewal.abort();
            match result {
                Some(Ok((record, timings))) => {
                    let r = delete_message(&shared, &message_id, &receipt).await;
                    info!(
                        job = %m.id,
                        msg_id = %message_id,
                        dequeue = dequeue_count,
                        download_ms = timings.download.as_millis() as u64,
                        process_ms = timings.process.as_millis() as u64,
                        upload_ms = timings.upload.as_millis() as u64,
                        total_ms = started.elapsed().as_millis() as u64,
                        thumb = %format!("{}x{}", record.thumbnail.as_ref().map_or(0, |o| o.width), record.thumbnail.as_ref().map_or(0, |o| o.height)),
                        outcome = "done",
                        "job finished"
                    );
                    return if r { Outcome::Done } else { Outcome::Lost };
                }
                Some(Err(Failure::Permanent(reason))) => {
                    let record = load_record(&shared, &m).await;
                    give_up(reason, Some(record)).await
                }
                Some(Err(Failure::Transient(reason))) => {
                    // Back off a little more on each delivery before the next try.
                    let delay =
                        2i32.saturating_pow(u32::try_from(dequeue_count).unwrap_or(6).min(6));
                    requeue(
                        &shared,
                        &m,
                        format!("attempt {dequeue_count} failed, will retry: {reason}"),
                        &message_id,
                        &receipt,
                        delay,
                    )
                    .await;
                    warn!(job = %m.id, msg_id = %message_id, dequeue = dequeue_count, total_ms = started.elapsed().as_millis() as u64, outcome = "retry", %reason, "job failed, will retry");
                    return Outcome::Retry;
                }
                None => {
                    requeue(
                        &shared,
                        &m,
                        "released by a stopping worker".into(),
                        &message_id,
                        &receipt,
                        0,
                    )
                    .await;
                    info!(job = %m.id, msg_id = %message_id, dequeue = dequeue_count, total_ms = started.elapsed().as_millis() as u64, outcome = "released", "job released on shutdown");
                    return Outcome::Released;
                }
            }
        }
    };
    let id = job_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
    warn!(job = %id, msg_id = %message_id, dequeue = dequeue_count, total_ms = started.elapsed().as_millis() as u64, outcome = "poisoned", "job moved to the poison queue");
    outcome
}

/// The record as stored, or one rebuilt from the message when it is missing.
async fn load_record(shared: &Shared, m: &JobMessage) -> JobRecord {
    match shared.jobs.get(&m.id).await {
        Ok(Some(r)) => r,
        _ => JobRecord::queued(
            m.id.clone(),
            m.blob.clone(),
            m.blob.clone(),
            String::new(),
            0,
            Utc::now(),
        ),
    }
}

async fn run(
    shared: &Shared,
    m: &JobMessage,
    dequeue_count: u64,
) -> Result<(JobRecord, Timings), Failure> {
    let t0 = Instant::now();
    let mut record = load_record(shared, m).await;
    record.state = JobState::Processing;
    record.reason = None;
    record.attempts = dequeue_count;
    record.updated = now_rfc3339(Utc::now());
    shared.jobs.put(&record).await?;

    if shared.config.job_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.config.job_delay_ms)).await;
    }

    let source = shared.storage.container(&m.container).blob_client(&m.blob);
    let download = match source.download(None).await {
        Ok(d) => d,
        Err(e) if e.http_status() == Some(StatusCode::NotFound) => {
            return Err(Failure::Permanent(format!(
                "the original {}/{} does not exist",
                m.container, m.blob
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if download.properties.content_length.unwrap_or(0) > MAX_ORIGINAL_BYTES {
        return Err(Failure::Permanent("the original is too large".into()));
    }
    let bytes = download.body.collect().await?;
    let t1 = Instant::now();

    let watermark = shared.config.watermark.clone();
    let renditions = tokio::task::spawn_blocking(move || pipeline::process(&bytes, &watermark))
        .await
        .map_err(|e| Failure::Transient(format!("image task failed: {e}")))??;
    let t2 = Instant::now();

    let thumbnails = shared.storage.container(job::THUMBNAILS);
    let original_ref = format!("{}/{}", m.container, m.blob);
    let mut outputs = Vec::new();
    for (kind, r) in [
        ("thumbnail", &renditions.thumbnail),
        ("web", &renditions.web),
    ] {
        let name = format!("{}/{kind}-{}.jpg", m.id, r.width.max(r.height));
        let meta = HashMap::from([
            ("original".to_string(), sanitize(&original_ref)),
            ("job".to_string(), m.id.to_string()),
            ("kind".to_string(), kind.to_string()),
            ("width".to_string(), r.width.to_string()),
            ("height".to_string(), r.height.to_string()),
        ]);
        thumbnails
            .blob_client(&name)
            .upload(
                RequestContent::from(r.jpeg.clone()),
                Some(BlobClientUploadOptions {
                    metadata: Some(meta),
                    blob_content_type: Some("image/jpeg".into()),
                    blob_cache_control: Some("public, max-age=31536000, immutable".into()),
                    ..Default::default()
                }),
            )
            .await?;
        outputs.push(Output {
            blob: name,
            width: r.width,
            height: r.height,
        });
    }
    let t3 = Instant::now();
    let mut outputs = outputs.into_iter();
    record.state = JobState::Done;
    record.reason = None;
    record.thumbnail = outputs.next();
    record.web = outputs.next();
    record.took_ms = Some(u64::try_from(t3.duration_since(t0).as_millis()).unwrap_or(u64::MAX));
    record.updated = now_rfc3339(Utc::now());
    shared.jobs.put(&record).await?;
    Ok((
        record,
        Timings {
            download: t1 - t0,
            process: t2 - t1,
            upload: t3 - t2,
        },
    ))
}

/// Metadata values must be ASCII.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Keeps the message invisible while the job runs: renews at a third of the timeout.
fn spawn_renewal(
    shared: Arc<Shared>,
    message_id: String,
    receipt: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let visibility = shared.config.visibility();
        let timeout = i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX);
        loop {
            tokio::time::sleep(visibility / 3).await;
            let mut current = receipt.lock().await;
            match shared
                .queue
                .update_message(&message_id, &current, timeout, None)
                .await
            {
                Ok(r) => {
                    let header = HeaderName::from_static("x-ms-popreceipt");
                    if let Some(new) = r.headers().get_optional_str(&header) {
                        *current = new.to_string();
                    }
                }
                Err(e) => {
                    warn!(msg_id = %message_id, error = %e, "visibility renewal failed");
                    if e.http_status() == Some(StatusCode::NotFound) {
                        return;
                    }
                }
            }
        }
    })
}

async fn delete_message(shared: &Shared, message_id: &str, receipt: &Mutex<String>) -> bool {
    let receipt = receipt.lock().await;
    match shared
        .queue
        .delete_message(message_id, &receipt, None)
        .await
    {
        Ok(_) => true,
        Err(e) => {
            // 404: the visibility timeout passed and someone else holds it now; their run
            // writes the same outputs.
            warn!(msg_id = %message_id, error = %e, "could not delete the finished message");
            false
        }
    }
}

/// Puts the job back to `queued` with `reason` and makes the message visible again after
/// `after_secs`.
async fn requeue(
    shared: &Shared,
    m: &JobMessage,
    reason: String,
    message_id: &str,
    receipt: &Mutex<String>,
    after_secs: i32,
) {
    let mut record = load_record(shared, m).await;
    record.state = JobState::Queued;
    record.reason = Some(reason);
    record.updated = now_rfc3339(Utc::now());
    let _ = shared.jobs.put(&record).await;
    release(shared, message_id, receipt, after_secs).await;
}

async fn release(shared: &Shared, message_id: &str, receipt: &Mutex<String>, after_secs: i32) {
    let receipt = receipt.lock().await;
    if let Err(e) = shared
        .queue
        .update_message(message_id, &receipt, after_secs, None)
        .await
    {
        warn!(msg_id = %message_id, error = %e, "could not release the message");
    }
}

/// Records the failure, copies the message to the poison queue with the reason, deletes it.
async fn poison(
    shared: &Shared,
    message_id: &str,
    receipt: &Mutex<String>,
    text: &str,
    reason: &str,
    dequeue_count: u64,
    record: Option<JobRecord>,
) -> Outcome {
    if let Some(mut record) = record {
        record.state = JobState::Failed;
        record.reason = Some(reason.to_string());
        record.attempts = dequeue_count;
        record.updated = now_rfc3339(Utc::now());
        if let Err(e) = shared.jobs.put(&record).await {
            warn!(job = %record.id, error = %e, "could not record the failure");
            return Outcome::Retry;
        }
    }
    let body = PoisonMessage {
        message: text.to_string(),
        reason: reason.to_string(),
        dequeue_count,
        failed_at: now_rfc3339(Utc::now()),
    };
    let content = match (QueueMessage {
        message_text: Some(body.to_json()),
    })
    .try_into()
    {
        Ok(c) => c,
        Err(_) => return Outcome::Retry,
    };
    if let Err(e) = shared.poison.send_message(content, None).await {
        warn!(msg_id = %message_id, error = %e, "could not write to the poison queue");
        return Outcome::Retry;
    }
    if delete_message(shared, message_id, receipt).await {
        Outcome::Poisoned
    } else {
        Outcome::Lost
    }
}
