//! Copy Blob and Copy Blob From URL (both complete synchronously here), Put Blob From URL,
//! and Abort Copy. Sources are read through `source`: blobs of this emulator or any
//! http:// URL.

use super::ingest;
use super::source::{self, Mode};
use super::{name, pre};
use crate::clock::rfc1123;
use crate::http::body::ByteStream;
use crate::http::response::Reply;
use crate::protocol::conditions::Access;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::validate;
use crate::router::{BlobOp, Operation};
use crate::state::Ctx;
use crate::store::blob::{BlobRecord, BlobType, Checksums, Expect, NewBlob};
use base64::Engine;
use http::StatusCode;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `x-ms-copy-source-tag-option: COPY`: the destination takes the source's tags.
fn copies_tags(ctx: &Ctx<'_>) -> Result<bool> {
    match ctx.req.header("x-ms-copy-source-tag-option") {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("replace") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("copy") => {
            if ctx.req.header("x-ms-tags").is_some() {
                return Err(StorageError::invalid_header("x-ms-tags", "").with_message(
                    "x-ms-tags cannot be given with x-ms-copy-source-tag-option: COPY.",
                ));
            }
            Ok(true)
        }
        Some(v) => Err(StorageError::invalid_header(
            "x-ms-copy-source-tag-option",
            v,
        )),
    }
}

/// The destination's metadata (the request's, else the source's) and tags (the source's
/// with `x-ms-copy-source-tag-option: COPY`, else the request's).
fn carried(
    from: &BlobRecord,
    metadata: crate::protocol::model::Metadata,
    copy_tags: bool,
    header_tags: Option<Vec<(String, String)>>,
) -> (crate::protocol::model::Metadata, Vec<(String, String)>) {
    let metadata = if metadata.is_empty() {
        from.metadata.clone()
    } else {
        metadata
    };
    let tags = if copy_tags {
        from.tags.clone()
    } else {
        header_tags.unwrap_or_default()
    };
    (metadata, tags)
}

/// Reads the source in full and commits it as the destination's content. `as_copy`
/// records the copy properties (Copy Blob, Copy Blob From URL), which Put Blob From URL
/// does not. Returns the new record and, for copies, the copy id.
async fn copy_into(
    ctx: &Ctx<'_>,
    mode: Mode,
    as_copy: bool,
) -> Result<(BlobRecord, Option<String>)> {
    let store = &ctx.app.store.blobs;
    let metadata = validate::metadata(ctx.req)?;
    let header_tags = super::tags::from_header(ctx)?;
    let copy_tags = copies_tags(ctx)?;
    let tier = super::tier_header(ctx, BlobType::Block)?;
    let expect = match mode {
        Mode::Copy => Expect::default(),
        Mode::FromUrl => ingest::source_checks(ctx)?,
    };
    let pre = pre(ctx, Access::Replace)?;
    store.precheck(name(ctx), &pre, false, None)?;
    let source_url = ctx
        .req
        .header("x-ms-copy-source")
        .unwrap_or_default()
        .to_string();
    let mut source = source::open(ctx, mode, None).await?;
    let remote = matches!(source.stream, ByteStream::Remote(_));
    if copy_tags && remote {
        return Err(StorageError::new(ErrorCode::NotImplemented).with_message(
            "Copying the tags of a source on another host is not supported by this emulator yet.",
        ));
    }
    // The From-URL operations answer with the copied content's MD5; a remote source that
    // sends none gets the one computed on the way.
    let checksums = Checksums {
        md5: mode == Mode::FromUrl || (remote && source.record.properties.content_md5.is_none()),
        crc64: false,
    };
    // A page blob copies sparsely: its runs, not a stream of its zeros.
    if as_copy && source.record.blob_type == BlobType::Page {
        if let Some((account, container, blob, snapshot)) = source.local.take() {
            let from = source.record;
            let copy_id = uuid::Uuid::new_v4().to_string();
            let (metadata, tags) = carried(&from, metadata, copy_tags, header_tags);
            let new = NewBlob {
                properties: from.properties,
                metadata,
                tags,
                copy: Some((copy_id.clone(), source_url)),
                page_size: from.page_size,
                sequence_number: from.sequence_number,
                ..NewBlob::new(BlobType::Page)
            };
            let src = crate::store::blob::BlobName {
                account: &account,
                container: &container,
                blob: &blob,
            };
            let record = store
                .copy_page_blob(name(ctx), src, &snapshot, new, &pre)
                .await?;
            return Ok((record, Some(copy_id)));
        }
    }
    let received = store
        .receive(&mut source.stream, u64::MAX, checksums, &expect)
        .await?;
    let from = source.record;
    let (metadata, tags) = carried(&from, metadata, copy_tags, header_tags);
    let mut properties = from.properties;
    if properties.content_md5.is_none() {
        properties.content_md5 = received.md5().map(|m| m.to_vec());
    }
    let copy_id = as_copy.then(|| uuid::Uuid::new_v4().to_string());
    let new = NewBlob {
        // Put Blob From URL makes a block blob of any source.
        blob_type: if as_copy {
            from.blob_type
        } else {
            BlobType::Block
        },
        properties,
        metadata,
        tags,
        blocks: if as_copy && from.blob_type == BlobType::Block {
            from.blocks
        } else {
            Vec::new()
        },
        append_blocks: if as_copy { from.append_blocks } else { 0 },
        copy: copy_id.clone().map(|id| (id, source_url)),
        tier,
        page_size: 0,
        sequence_number: 0,
    };
    let record = store.put_blob(name(ctx), received, new, &pre).await?;
    Ok((record, copy_id))
}

/// Copy Blob and Copy Blob From URL: 202 with the copy id, the copy already complete.
pub async fn copy(ctx: &Ctx<'_>, mode: Mode) -> Result<Reply> {
    let (record, copy_id) = copy_into(ctx, mode, true).await?;
    let mut reply = Reply::empty(StatusCode::ACCEPTED);
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-copy-id", copy_id.unwrap_or_default())
        .set("x-ms-copy-status", "success");
    super::blobs::set_version_id(&mut reply, &record);
    if ctx.route.op == Operation::Blob(BlobOp::CopyBlobFromUrl) {
        if let Some(md5) = &record.properties.content_md5 {
            reply.set("content-md5", B64.encode(md5));
        }
    }
    Ok(reply)
}

/// Put Blob From URL: a block blob whose bytes come from the source; answered like a Put
/// Blob (201 with the content MD5), not like a copy.
pub async fn put_from_url(ctx: &Ctx<'_>) -> Result<Reply> {
    match ctx.req.header("x-ms-blob-type") {
        Some("BlockBlob") => {}
        Some(v) => return Err(StorageError::invalid_header("x-ms-blob-type", v)),
        None => return Err(StorageError::missing_header("x-ms-blob-type")),
    }
    let (record, _) = copy_into(ctx, Mode::FromUrl, false).await?;
    let mut reply = Reply::empty(StatusCode::CREATED);
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms));
    if let Some(md5) = &record.properties.content_md5 {
        reply.set("content-md5", B64.encode(md5));
    }
    reply.set("x-ms-request-server-encrypted", "true");
    super::blobs::set_version_id(&mut reply, &record);
    Ok(reply)
}

/// Incremental Copy Blob: from a snapshot of a page blob of this emulator; complete when
/// answered (202, `success`), the destination's new snapshot named in its properties.
pub async fn incremental(ctx: &Ctx<'_>) -> Result<Reply> {
    ingest::refuse_body(ctx)?;
    let pre = pre(ctx, Access::Replace)?;
    let store = &ctx.app.store.blobs;
    store.require_container(&ctx.route.account, name(ctx).container)?;
    // The source must authorize itself (a SAS) or be public, as the REST page says.
    let source = source::resolve(ctx, Mode::FromUrl)?;
    if source.snapshot.is_empty() {
        return Err(StorageError::new(
            ErrorCode::IncrementalCopySourceMustBeSnapshot,
        ));
    }
    if source.record.blob_type != BlobType::Page {
        return Err(StorageError::new(ErrorCode::InvalidSourceBlobType));
    }
    let copy_id = uuid::Uuid::new_v4().to_string();
    let url = ctx
        .req
        .header("x-ms-copy-source")
        .unwrap_or_default()
        .to_string();
    let record = store
        .incremental_copy(
            name(ctx),
            source.name(),
            &source.snapshot,
            (copy_id.clone(), url),
            &pre,
        )
        .await?;
    let mut reply = Reply::empty(StatusCode::ACCEPTED);
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-copy-id", copy_id)
        .set("x-ms-copy-status", "success");
    Ok(reply)
}

pub fn abort(ctx: &Ctx<'_>) -> Result<Reply> {
    let id = ctx
        .req
        .query
        .get("copyid")
        .ok_or_else(|| StorageError::missing_query("copyid"))?;
    let n = name(ctx);
    let store = &ctx.app.store.blobs;
    store.require_container(n.account, n.container)?;
    let r = store
        .blob(n.account, n.container, n.blob, "")?
        .ok_or_else(|| StorageError::new(ErrorCode::BlobNotFound))?;
    match &r.copy {
        Some(c) if c.id != id => Err(StorageError::new(ErrorCode::CopyIdMismatch)),
        // Copies here complete before they are acknowledged: nothing is ever pending.
        _ => Err(StorageError::new(ErrorCode::NoPendingCopyOperation)),
    }
}
