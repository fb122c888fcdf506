//! Receiving uploads: each file is streamed from the multipart body into the `uploads`
//! container in 4 MiB blocks (memory stays bounded whatever the size), checked to be an
//! image from its first bytes, and cut off at the size limit. Only when every file of the
//! request is stored are job records written and messages sent; on any failure everything
//! this request wrote is removed again.

use crate::config::JobDispatch;
use crate::state::AppState;
use axum::extract::multipart::{Field, Multipart};
use azure_core::http::{NoFormat, RequestContent};
use azure_storage_blob::models::{
    BlobClientUploadOptions, BlockBlobClientCommitBlockListOptions, BlockLookupList,
};
use azure_storage_blob::BlobClient;
use azure_storage_queue::models::QueueMessage;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use image::ImageFormat;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::collections::HashMap;
use storage_client::job::{JobId, JobMessage, JobRecord, UPLOADS};
use tracing::{info, warn};

/// Block size for staged uploads; files up to this size go up in one Put Blob.
const BLOCK: usize = 4 * 1024 * 1024;
/// Bytes needed to recognise every accepted format.
const SNIFF: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("No file was chosen.")]
    NoFiles,
    #[error("Too many files: at most {0} per upload.")]
    TooManyFiles(usize),
    #[error("\"{0}\" is empty.")]
    Empty(String),
    #[error("\"{0}\" is not a JPEG, PNG, WebP or GIF image.")]
    NotAnImage(String),
    #[error("\"{file}\" is larger than the {limit_mib} MiB limit.")]
    TooLarge { file: String, limit_mib: u64 },
    #[error("The upload could not be read: {0}")]
    BadForm(String),
    #[error("Storage is unavailable, please try again: {0}")]
    Storage(#[from] azure_core::Error),
}

impl UploadError {
    pub fn status(&self) -> u16 {
        match self {
            UploadError::NoFiles | UploadError::BadForm(_) => 400,
            UploadError::TooManyFiles(_) | UploadError::TooLarge { .. } => 413,
            UploadError::Empty(_) | UploadError::NotAnImage(_) => 415,
            UploadError::Storage(_) => 503,
        }
    }

    pub fn title(&self) -> &'static str {
        match self.status() {
            413 => "Too large",
            415 => "Not an image",
            503 => "Storage unavailable",
            _ => "Bad upload",
        }
    }
}

/// One stored original, not yet announced to the worker.
#[derive(Debug)]
pub struct Stored {
    pub id: JobId,
    pub blob: String,
    pub file_name: String,
    pub content_type: &'static str,
    pub size: u64,
    /// The job record, when it was written before the original was committed
    /// (`--job-dispatch events`).
    pub record: Option<JobRecord>,
}

fn mime(format: ImageFormat) -> Option<(&'static str, &'static str)> {
    Some(match format {
        ImageFormat::Jpeg => ("image/jpeg", "jpg"),
        ImageFormat::Png => ("image/png", "png"),
        ImageFormat::WebP => ("image/webp", "webp"),
        ImageFormat::Gif => ("image/gif", "gif"),
        _ => return None,
    })
}

/// The accepted formats, recognised by magic bytes (the browser's content type is a guess).
pub fn sniff(head: &[u8]) -> Option<(&'static str, &'static str)> {
    mime(image::guess_format(head).ok()?)
}

/// Stores every file of the form, then writes job records and sends one message per file;
/// returns the records written.
pub async fn accept(state: &AppState, mut form: Multipart) -> Result<Vec<JobRecord>, UploadError> {
    let mut stored: Vec<Stored> = Vec::new();
    let result = store_all(state, &mut form, &mut stored).await;
    if let Err(e) = result {
        drain(&mut form).await;
        remove(state, &stored).await;
        return Err(e);
    }
    if stored.is_empty() {
        return Err(UploadError::NoFiles);
    }
    let mut announced: Vec<JobRecord> = Vec::new();
    for s in &stored {
        match announce(state, s).await {
            Ok(record) => announced.push(record),
            Err(e) => {
                remove(state, &stored).await;
                for r in &announced {
                    let _ = state.jobs.delete(&r.id).await;
                }
                return Err(e.into());
            }
        }
        info!(job = %s.id, file = %s.file_name, size = s.size, content_type = s.content_type, "upload accepted");
    }
    Ok(announced)
}

async fn store_all(
    state: &AppState,
    form: &mut Multipart,
    stored: &mut Vec<Stored>,
) -> Result<(), UploadError> {
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| UploadError::BadForm(e.body_text()))?
    {
        if field.file_name().is_none() {
            continue;
        }
        if stored.len() >= state.config.max_files {
            return Err(UploadError::TooManyFiles(state.config.max_files));
        }
        if let Some(s) = store_one(state, field).await? {
            stored.push(s);
        }
    }
    Ok(())
}

async fn next_chunk(field: &mut Field<'_>) -> Result<Option<Bytes>, UploadError> {
    field
        .chunk()
        .await
        .map_err(|e| UploadError::BadForm(e.body_text()))
}

/// Streams one file part into a blob. `None` for the empty part a browser sends when no
/// file was chosen.
async fn store_one(state: &AppState, mut field: Field<'_>) -> Result<Option<Stored>, UploadError> {
    let file_name = field.file_name().unwrap_or_default().trim().to_string();
    let mut buf = BytesMut::new();
    while buf.len() < SNIFF {
        match next_chunk(&mut field).await? {
            Some(c) => buf.extend_from_slice(&c),
            None => break,
        }
    }
    if buf.is_empty() {
        return if file_name.is_empty() {
            Ok(None)
        } else {
            Err(UploadError::Empty(file_name))
        };
    }
    let display_name = if file_name.is_empty() {
        "upload".to_string()
    } else {
        file_name
    };
    let (content_type, ext) =
        sniff(&buf).ok_or_else(|| UploadError::NotAnImage(display_name.clone()))?;
    let limit = state.config.max_upload_bytes;
    let too_large = || UploadError::TooLarge {
        file: display_name.clone(),
        limit_mib: limit.div_ceil(1024 * 1024),
    };
    let id = JobId::new(Utc::now());
    let blob_name = format!("{id}.{ext}");
    let blob = state.storage.container(UPLOADS).blob_client(&blob_name);
    let mut size = buf.len() as u64;
    if size > limit {
        return Err(too_large());
    }
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let outcome: Result<(), UploadError> = async {
        while let Some(chunk) = next_chunk(&mut field).await? {
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
            while buf.len() >= BLOCK {
                let block = buf.split_to(BLOCK).freeze();
                stage(&blob, &mut blocks, block).await?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        discard(&blob, !blocks.is_empty()).await;
        return Err(e);
    }
    let metadata = HashMap::from([
        ("filename".to_string(), meta_enc(&display_name)),
        ("size".to_string(), size.to_string()),
        ("contenttype".to_string(), content_type.to_string()),
        ("job".to_string(), id.to_string()),
    ]);
    // With events, committing the original starts the job: its record must exist first.
    let record = if state.config.job_dispatch == JobDispatch::Events {
        let record = JobRecord::queued(
            id.clone(),
            blob_name.clone(),
            display_name.clone(),
            content_type.to_string(),
            size,
            Utc::now(),
        );
        if let Err(e) = state.jobs.put(&record).await {
            discard(&blob, !blocks.is_empty()).await;
            return Err(e.into());
        }
        Some(record)
    } else {
        None
    };
    let committed = if blocks.is_empty() {
        blob.upload(
            content(buf.freeze()),
            Some(BlobClientUploadOptions {
                metadata: Some(metadata),
                blob_content_type: Some(content_type.into()),
                ..Default::default()
            }),
        )
        .await
        .map(|_| ())
    } else {
        let last = buf.freeze();
        let staged = if last.is_empty() {
            Ok(())
        } else {
            stage(&blob, &mut blocks, last).await
        };
        match staged {
            Err(e) => Err(e),
            Ok(()) => match RequestContent::try_from(BlockLookupList {
                latest: Some(blocks.clone()),
                ..Default::default()
            }) {
                Ok(list) => blob
                    .block_blob_client()
                    .commit_block_list(
                        list,
                        Some(BlockBlobClientCommitBlockListOptions {
                            metadata: Some(metadata),
                            blob_content_type: Some(content_type.into()),
                            ..Default::default()
                        }),
                    )
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            },
        }
    };
    if let Err(e) = committed {
        discard(&blob, !blocks.is_empty()).await;
        if record.is_some() {
            let _ = state.jobs.delete(&id).await;
        }
        return Err(e.into());
    }
    Ok(Some(Stored {
        id,
        blob: blob_name,
        file_name: display_name,
        content_type,
        size,
        record,
    }))
}

async fn stage(
    blob: &BlobClient,
    blocks: &mut Vec<Vec<u8>>,
    data: Bytes,
) -> Result<(), azure_core::Error> {
    // Block ids must all have the same length.
    let block_id = format!("{:08}", blocks.len()).into_bytes();
    blob.block_blob_client()
        .stage_block(&block_id, data.len() as u64, content(data), None)
        .await?;
    blocks.push(block_id);
    Ok(())
}

/// Removes what an aborted upload left: committing an empty block list discards staged
/// blocks (otherwise kept for a week), then the empty blob is deleted.
async fn discard(blob: &BlobClient, staged: bool) {
    if staged {
        if let Ok(list) = (BlockLookupList::default()).try_into() {
            let _ = blob.block_blob_client().commit_block_list(list, None).await;
        }
    }
    match blob.delete(None).await {
        Ok(_) => {}
        Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {}
        Err(e) => warn!(blob = %blob.url(), error = %e, "could not remove a rejected upload"),
    }
}

async fn remove(state: &AppState, stored: &[Stored]) {
    for s in stored {
        discard(
            &state.storage.container(UPLOADS).blob_client(&s.blob),
            false,
        )
        .await;
        let _ = state.jobs.delete(&s.id).await;
    }
}

/// Record first, then message: the worker may pick the job up at once and expects it.
async fn announce(state: &AppState, s: &Stored) -> Result<JobRecord, azure_core::Error> {
    if let Some(record) = &s.record {
        // The storage account's BlobCreated event is the job message.
        return Ok(record.clone());
    }
    let record = JobRecord::queued(
        s.id.clone(),
        s.blob.clone(),
        s.file_name.clone(),
        s.content_type.to_string(),
        s.size,
        Utc::now(),
    );
    state.jobs.put(&record).await?;
    let message = JobMessage::new(s.id.clone(), s.blob.clone());
    state
        .queue
        .send_message(
            QueueMessage {
                message_text: Some(message.to_json()),
            }
            .try_into()?,
            None,
        )
        .await?;
    Ok(record)
}

/// Reads and drops the rest of the body, so the browser sees our answer rather than a
/// connection reset (the body limit bounds how much is read).
async fn drain(form: &mut Multipart) {
    while let Ok(Some(mut f)) = form.next_field().await {
        while let Ok(Some(_)) = f.chunk().await {}
    }
}

fn content(bytes: Bytes) -> RequestContent<Bytes, NoFormat> {
    <RequestContent<Bytes, NoFormat> as From<Bytes>>::from(bytes)
}

const META_VALUE: &AsciiSet = &CONTROLS.add(b'%');

fn meta_enc(s: &str) -> String {
    utf8_percent_encode(s, META_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_accepts_only_the_four_formats() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"),
            Some(("image/jpeg", "jpg"))
        );
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some(("image/png", "png")));
        assert_eq!(sniff(b"GIF89a\x01\0"), Some(("image/gif", "gif")));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(("image/webp", "webp")));
        assert_eq!(sniff(b"BM\0\0\0\0"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
    }
}
