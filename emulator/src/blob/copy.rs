//! Copy Blob and Copy Blob From URL (both complete synchronously here), and Abort Copy.
//! Sources are read through `source`: blobs of this emulator or any http:// URL.

use super::blobs::check_write;
use super::ingest;
use super::source::{self, Mode};
use crate::clock::rfc1123;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::validate;
use crate::state::Ctx;
use crate::store::extents::{Checksums, Uploaded};
use crate::store::{BlobRecord, CopyInfo};
use http::StatusCode;

/// Copy Blob, Copy Blob From URL and the copy half of Put Blob From URL: the source is
/// read in full and committed as the destination's content.
pub async fn copy(ctx: &Ctx<'_>, container: &str, blob: &str, mode: Mode) -> Result<Reply> {
    let store = &ctx.app.store;
    store.require_container(&ctx.route.account, container)?;
    let source_url = ctx
        .req
        .header("x-ms-copy-source")
        .unwrap_or_default()
        .to_string();
    let mut source = source::open(ctx, mode, None).await?;
    // A remote source that sends no Content-MD5 gets the one computed on the way.
    let checksums = Checksums {
        md5: source.record.properties.content_md5.is_none()
            && matches!(source.stream, crate::http::body::ByteStream::Remote(_)),
        crc64: false,
    };
    let uploaded = ingest::receive(
        ctx,
        &mut source.stream,
        u64::MAX,
        checksums,
        &ingest::Expect::default(),
    )
    .await?;
    let mut record = source.record;
    if record.properties.content_md5.is_none() {
        record.properties.content_md5 = uploaded.md5.map(|m| m.to_vec());
    }
    finish(ctx, container, blob, &source_url, record, uploaded).await
}

/// Commits the destination from a source record and the copied bytes.
async fn finish(
    ctx: &Ctx<'_>,
    container: &str,
    blob: &str,
    source_url: &str,
    source: BlobRecord,
    uploaded: Uploaded,
) -> Result<Reply> {
    let store = &ctx.app.store;
    let source_url = source_url.to_string();
    let checked = validate::metadata(ctx.req)
        .and_then(|m| Ok((m, super::tags::from_header(ctx)?)))
        .and_then(|mt| {
            store.store_inline(&uploaded)?;
            Ok(mt)
        });
    let (metadata, tags) = match checked {
        Ok(mt) => mt,
        Err(e) => {
            store.discard(&uploaded);
            return Err(e);
        }
    };
    let pieces = uploaded.pieces.clone();
    let copy_id = uuid::Uuid::new_v4().to_string();
    let length = uploaded.len;
    let result = store
        .put_blob_record(
            &ctx.route.account,
            container,
            blob,
            |cur| check_write(ctx, cur),
            |cur, now, etag| BlobRecord {
                blob_type: source.blob_type,
                pieces,
                blocks: source.blocks.clone(),
                properties: source.properties.clone(),
                metadata: if metadata.is_empty() {
                    source.metadata.clone()
                } else {
                    metadata
                },
                append_blocks: source.append_blocks,
                tags: tags.unwrap_or_default(),
                copy: Some(CopyInfo {
                    id: copy_id.clone(),
                    source: source_url.clone(),
                    length,
                    completed_ms: now,
                }),
                ..BlobRecord::successor(cur, now, etag)
            },
        )
        .await;
    let record = match result {
        Ok(r) => r,
        Err(e) => {
            store.discard(&uploaded);
            return Err(e);
        }
    };
    let mut reply = Reply::empty(StatusCode::ACCEPTED);
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-copy-id", copy_id)
        .set("x-ms-copy-status", "success");
    Ok(reply)
}

/// Put Blob From URL: a block blob whose bytes come from the source; answered like a Put
/// Blob (201 with the content MD5), not like a copy.
pub async fn put_from_url(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    match ctx.req.header("x-ms-blob-type") {
        Some("BlockBlob") => {}
        Some(v) => return Err(StorageError::invalid_header("x-ms-blob-type", v)),
        None => return Err(StorageError::missing_header("x-ms-blob-type")),
    }
    let copied = copy(ctx, container, blob, Mode::FromUrl).await?;
    let record = ctx
        .app
        .store
        .blob(&ctx.route.account, container, blob, "")?
        .ok_or_else(|| StorageError::new(ErrorCode::BlobNotFound))?;
    let mut reply = Reply::empty(StatusCode::CREATED);
    reply.headers = copied
        .headers
        .into_iter()
        .filter(|(n, _)| !n.as_str().starts_with("x-ms-copy"))
        .collect();
    if let Some(md5) = &record.properties.content_md5 {
        reply.set(
            "content-md5",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, md5),
        );
    }
    reply.set("x-ms-request-server-encrypted", "true");
    Ok(reply)
}

pub async fn abort(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let id = ctx
        .req
        .query
        .get("copyid")
        .ok_or_else(|| StorageError::missing_query("copyid"))?;
    let store = &ctx.app.store;
    store.require_container(&ctx.route.account, container)?;
    let r = store
        .blob(&ctx.route.account, container, blob, "")?
        .ok_or_else(|| StorageError::new(ErrorCode::BlobNotFound))?;
    match &r.copy {
        Some(c) if c.id != id => Err(StorageError::new(ErrorCode::CopyIdMismatch)),
        // Copies here complete before they are acknowledged: nothing is ever pending.
        _ => Err(StorageError::new(ErrorCode::NoPendingCopyOperation)),
    }
}

/// Copy properties on Get Blob / Get Blob Properties of a copy destination.
pub fn headers(reply: &mut Reply, r: &BlobRecord) {
    if let Some(c) = &r.copy {
        reply
            .set("x-ms-copy-id", &c.id)
            .set("x-ms-copy-source", &c.source)
            .set("x-ms-copy-status", "success")
            .set("x-ms-copy-progress", format!("{}/{}", c.length, c.length))
            .set("x-ms-copy-completion-time", rfc1123(c.completed_ms));
    }
}
