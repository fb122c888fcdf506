//! Retrying a failed job and deleting an upload. Both are idempotent, since a browser may
//! send them twice and a message may be delivered twice.
//!
//! Queue messages of a job are found by receiving and looking: messages cannot be deleted
//! by content. A received message that belongs to another job is made visible again at
//! once; the scan is bounded (`SCAN_ROUNDS` batches of 32), so a huge queue is not read
//! whole: a message it misses is harmless, since a worker finding no record or no original
//! ends that job as failed.

use crate::config::JobDispatch;
use crate::state::AppState;
use azure_storage_queue::models::{QueueClientReceiveMessagesOptions, QueueMessage};
use azure_storage_queue::QueueClient;
use base64::Engine;
use chrono::Utc;
use storage_client::job::{
    now_rfc3339, poison_queue, EventJob, JobId, JobMessage, JobState, PoisonMessage, THUMBNAILS,
    UPLOADS,
};
use tracing::warn;

/// Batches of 32 a scan receives at most.
const SCAN_ROUNDS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("no such job")]
    NotFound,
    #[error("only a failed job can be retried; this one is {0}")]
    NotFailed(&'static str),
    #[error(transparent)]
    Storage(#[from] azure_core::Error),
    #[error(transparent)]
    Client(#[from] storage_client::ClientError),
}

/// The job a work or poison message is about, whichever form it has.
fn job_of(text: &str) -> Option<JobId> {
    if let Ok(p) = serde_json::from_str::<PoisonMessage>(text) {
        return job_of(&p.message);
    }
    if let Ok(m) = JobMessage::parse(text) {
        return Some(m.id);
    }
    match JobMessage::from_blob_event(text) {
        Ok(EventJob::Job(m)) => Some(m.id),
        _ => None,
    }
}

/// Deletes every message of `queue` about job `id` it finds; returns how many.
async fn remove_messages(queue: &QueueClient, id: &JobId) -> Result<usize, azure_core::Error> {
    let mut removed = 0;
    let mut others = Vec::new();
    for _ in 0..SCAN_ROUNDS {
        let batch = queue
            .receive_messages(Some(QueueClientReceiveMessagesOptions {
                number_of_messages: Some(32),
                // Long enough to look at them; the others are released right after.
                visibility_timeout: Some(30),
                ..Default::default()
            }))
            .await?
            .into_model()?
            .items
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let (Some(mid), Some(receipt)) = (m.message_id, m.pop_receipt) else {
                continue;
            };
            if job_of(m.message_text.as_deref().unwrap_or_default()).as_ref() == Some(id) {
                queue.delete_message(&mid, &receipt, None).await?;
                removed += 1;
            } else {
                others.push((mid, receipt));
            }
        }
    }
    for (mid, receipt) in others {
        if let Err(e) = queue.update_message(&mid, &receipt, 0, None).await {
            warn!(msg_id = %mid, error = %e, "could not release a message after a scan");
        }
    }
    Ok(removed)
}

fn poison(state: &AppState) -> Result<QueueClient, storage_client::ClientError> {
    state.storage.queue(&poison_queue(&state.config.queue))
}

/// The work message for a job, in the form the worker reads.
fn work_message(state: &AppState, m: &JobMessage) -> String {
    match state.config.job_dispatch {
        JobDispatch::Messages => m.to_json(),
        // The worker reads storage events: hand it one as Event Grid would.
        JobDispatch::Events => base64::engine::general_purpose::STANDARD.encode(
            serde_json::json!({
                "topic": "",
                "subject": format!("/blobServices/default/containers/{}/blobs/{}", m.container, m.blob),
                "eventType": "Microsoft.Storage.BlobCreated",
                "eventTime": now_rfc3339(Utc::now()),
                "id": format!("retry-{}", m.id),
                "data": {"api": "Retry"},
                "dataVersion": "",
                "metadataVersion": "1"
            })
            .to_string(),
        ),
    }
}

/// Re-queues a failed job: its poison messages are removed, its record says queued again
/// (attempts from zero), and a new work message is sent.
pub async fn retry(state: &AppState, id: &JobId) -> Result<(), ManageError> {
    let mut record = state.jobs.get(id).await?.ok_or(ManageError::NotFound)?;
    match record.state {
        JobState::Failed => {}
        // Asked twice: the first already re-queued it.
        JobState::Queued => return Ok(()),
        other => return Err(ManageError::NotFailed(other.as_str())),
    }
    let poison = poison(state)?;
    remove_messages(&poison, id).await?;
    record.state = JobState::Queued;
    record.reason = None;
    record.attempts = 0;
    record.updated = now_rfc3339(Utc::now());
    state.jobs.put(&record).await?;
    let m = JobMessage::new(id.clone(), record.original.clone());
    state
        .queue
        .send_message(
            QueueMessage {
                message_text: Some(work_message(state, &m)),
            }
            .try_into()?,
            None,
        )
        .await?;
    Ok(())
}

/// Deletes an upload: its work and poison messages, renditions, original and record (the
/// record last, so a failure part-way can be retried from the page). Deleting what is gone
/// is no error.
pub async fn delete(state: &AppState, id: &JobId) -> Result<(), ManageError> {
    let record = state.jobs.get(id).await?;
    remove_messages(&state.queue, id).await?;
    let poison = poison(state)?;
    remove_messages(&poison, id).await?;
    let mut blobs: Vec<(&str, String)> = Vec::new();
    if let Some(r) = &record {
        for o in [&r.thumbnail, &r.web].into_iter().flatten() {
            blobs.push((THUMBNAILS, o.blob.clone()));
        }
        blobs.push((UPLOADS, r.original.clone()));
    }
    for (container, name) in blobs {
        match state
            .storage
            .container(container)
            .blob_client(&name)
            .delete(None)
            .await
        {
            Ok(_) => {}
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    state.jobs.delete(id).await?;
    Ok(())
}
