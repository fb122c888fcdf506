//! Blobs: Put Blob (streamed), Get Blob and its properties (ranges, conditions), metadata,
//! properties and delete.

use super::ingest::{decode_md5, upload};
use crate::clock::rfc1123;
use crate::http::body::Body;
use crate::http::response::{channel_body, Reply};
use crate::protocol::conditions;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::lease::Target;
use crate::protocol::validate;
use crate::state::AppState;
use crate::state::Ctx;
use crate::store::extents::{self, Uploaded, READ_CHUNK};
use crate::store::{BlobRecord, BlobType, ContentProperties, DeleteMode};
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use md5::{Digest, Md5};
use std::sync::Arc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Largest blob a single Put Blob takes (5000 MiB).
const MAX_PUT_BLOB: u64 = 5000 * 1024 * 1024;
/// Largest range `x-ms-range-get-content-md5` may cover.
const MAX_RANGE_MD5: u64 = 4 * 1024 * 1024;

fn header<'a>(ctx: &'a Ctx<'_>, name: &str) -> Option<&'a str> {
    ctx.req.header(name).filter(|v| !v.is_empty())
}

/// The transactional checksum a block write answers with: the MD5 when the client sent
/// one (`sent_md5`), else Azure's CRC64.
pub fn checksum_header(reply: &mut Reply, uploaded: &Uploaded, sent_md5: bool) {
    if sent_md5 || uploaded.crc64.is_none() {
        if let Some(md5) = uploaded.md5 {
            reply.set("content-md5", B64.encode(md5));
        }
    }
    if let Some(crc) = uploaded.crc64 {
        if !sent_md5 {
            reply.set("x-ms-content-crc64", B64.encode(crc));
        }
    }
}

/// Content properties from `x-ms-blob-*` headers (Put Blob also reads the plain ones).
fn content_properties(ctx: &Ctx<'_>, plain_fallback: bool) -> Result<ContentProperties> {
    let pick = |ms: &str, plain: &str| -> Option<String> {
        header(ctx, ms)
            .or(if plain_fallback {
                header(ctx, plain)
            } else {
                None
            })
            .map(str::to_string)
    };
    Ok(ContentProperties {
        content_type: pick("x-ms-blob-content-type", "content-type"),
        content_encoding: pick("x-ms-blob-content-encoding", "content-encoding"),
        content_language: pick("x-ms-blob-content-language", "content-language"),
        cache_control: pick("x-ms-blob-cache-control", "cache-control"),
        content_disposition: pick("x-ms-blob-content-disposition", "content-disposition"),
        content_md5: header(ctx, "x-ms-blob-content-md5")
            .map(|v| decode_md5("x-ms-blob-content-md5", v))
            .transpose()?,
    })
}

/// Write conditions on an existing blob: `If-None-Match: *` on an existing blob is 409
/// BlobAlreadyExists (what SDKs' overwrite=false relies on), anything else failing is 412.
pub fn check_write(ctx: &Ctx<'_>, current: Option<&BlobRecord>) -> Result<()> {
    if current.is_some() && ctx.req.header("if-none-match").map(str::trim) == Some("*") {
        return Err(StorageError::new(ErrorCode::BlobAlreadyExists));
    }
    conditions::check(
        ctx.req,
        current.map(|c| (c.etag.as_str(), c.last_modified_ms)),
        false,
    )?;
    let lease = current.map(|c| &c.lease).cloned().unwrap_or_default();
    super::leases::check_write(ctx, &lease, Target::Blob)
}

pub async fn put(ctx: &Ctx<'_>, container: &str, blob: &str, body: Body) -> Result<Reply> {
    let blob_type = match ctx.req.header("x-ms-blob-type") {
        Some("BlockBlob") => BlobType::Block,
        Some("AppendBlob") => BlobType::Append,
        Some("PageBlob") => {
            return Err(StorageError::new(ErrorCode::NotImplemented)
                .with_message("Page blobs are not supported by this emulator."))
        }
        Some(v) => return Err(StorageError::invalid_header("x-ms-blob-type", v)),
        None => return Err(StorageError::missing_header("x-ms-blob-type")),
    };
    let metadata = validate::metadata(ctx.req)?;
    let tags = super::tags::from_header(ctx)?;
    let mut properties = content_properties(ctx, true)?;
    let store = &ctx.app.store;
    // Fail fast before reading a large body.
    store.require_container(&ctx.route.account, container)?;
    check_write(
        ctx,
        store
            .blob(&ctx.route.account, container, blob, "")?
            .as_ref(),
    )?;
    // An append blob is created empty; its bytes come through Append Block.
    let declared_len = ctx
        .req
        .header("content-length")
        .map(str::trim)
        .unwrap_or("0");
    if blob_type == BlobType::Append && declared_len != "0" {
        return Err(StorageError::invalid_header("Content-Length", declared_len));
    }
    let max = if blob_type == BlobType::Append {
        0
    } else {
        MAX_PUT_BLOB
    };
    let uploaded = upload(ctx, body, max, false).await?;
    if blob_type == BlobType::Block && properties.content_md5.is_none() {
        properties.content_md5 = uploaded.md5.map(|m| m.to_vec());
    }
    store.store_inline(&uploaded)?;
    let pieces = uploaded.pieces.clone();
    let result = store
        .put_blob_record(
            &ctx.route.account,
            container,
            blob,
            |cur| check_write(ctx, cur),
            |cur, now, etag| BlobRecord {
                blob_type,
                pieces,
                blocks: Vec::new(),
                properties,
                metadata,
                tags: tags.unwrap_or_default(),
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
    let mut reply = Reply::empty(StatusCode::CREATED);
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-request-server-encrypted", "true");
    if let (BlobType::Block, Some(md5)) = (blob_type, uploaded.md5) {
        reply.set("content-md5", B64.encode(md5));
    }
    Ok(reply)
}

/// The blob a read addresses: the base, or the snapshot named by `snapshot=`.
fn require_blob(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<BlobRecord> {
    let store = &ctx.app.store;
    store.require_container(&ctx.route.account, container)?;
    let snapshot = ctx.req.query.get("snapshot").unwrap_or("");
    store
        .blob(&ctx.route.account, container, blob, snapshot)?
        .ok_or_else(|| StorageError::new(ErrorCode::BlobNotFound))
}

pub async fn snapshot(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let metadata = validate::metadata(ctx.req)?;
    let metadata = if metadata.is_empty() {
        None
    } else {
        Some(metadata)
    };
    let (id, r) = ctx
        .app
        .store
        .snapshot_blob(&ctx.route.account, container, blob, metadata, |r| {
            conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), false)
        })
        .await?;
    let mut reply = Reply::empty(StatusCode::CREATED);
    reply
        .set("x-ms-snapshot", id)
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms))
        .set("x-ms-request-server-encrypted", "true");
    Ok(reply)
}

fn blob_headers(reply: &mut Reply, r: &BlobRecord, now_ms: i64) {
    let p = &r.properties;
    for (name, value) in r.lease.headers(now_ms) {
        reply.set(name, value);
    }
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms))
        .set("x-ms-creation-time", rfc1123(r.created_ms))
        .set("x-ms-blob-type", r.blob_type.as_str())
        .set("x-ms-server-encrypted", "true")
        .set("accept-ranges", "bytes")
        .set(
            "content-type",
            p.content_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
        );
    for (name, v) in [
        ("content-encoding", &p.content_encoding),
        ("content-language", &p.content_language),
        ("cache-control", &p.cache_control),
        ("content-disposition", &p.content_disposition),
    ] {
        if let Some(v) = v {
            reply.set(name, v);
        }
    }
    if r.blob_type == BlobType::Append {
        reply.set(
            "x-ms-blob-committed-block-count",
            r.append_blocks.to_string(),
        );
        if r.sealed {
            reply.set("x-ms-blob-sealed", "true");
        }
    }
    reply.set_metadata(&r.metadata);
}

/// A SAS may name response headers (`rscc`, `rscd`, `rsce`, `rscl`, `rsct`) that replace
/// the blob's own on reads.
fn sas_overrides(ctx: &Ctx<'_>, reply: &mut Reply) {
    if !ctx.req.query.has("sig") {
        return;
    }
    for (param, name) in [
        ("rscc", "cache-control"),
        ("rscd", "content-disposition"),
        ("rsce", "content-encoding"),
        ("rscl", "content-language"),
        ("rsct", "content-type"),
    ] {
        if let Some(v) = ctx.req.query.get(param).filter(|v| !v.is_empty()) {
            reply.headers.retain(|(n, _)| n.as_str() != name);
            reply.set(name, v);
        }
    }
}

/// Parses `bytes=a-b` / `bytes=a-`; None when absent. Errors when malformed.
pub(crate) fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some((start, end))
}

pub async fn get(ctx: &Ctx<'_>, container: &str, blob: &str, head: bool) -> Result<Reply> {
    let r = require_blob(ctx, container, blob)?;
    super::leases::check_read(ctx, &r.lease, Target::Blob)?;
    if let Err(e) = conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), true) {
        // A 304 still names the current version.
        return Err(e
            .with_header("etag", r.etag.clone())
            .with_header("last-modified", rfc1123(r.last_modified_ms)));
    }
    let size = r.len();
    let range_header = if head {
        None
    } else {
        ctx.req.header("x-ms-range").or(ctx.req.header("range"))
    };
    let range = match range_header {
        None => None,
        Some(v) => match parse_range(v) {
            // Azure ignores a Range header it cannot parse and returns the whole blob.
            None => None,
            Some((start, _)) if start >= size => {
                return Err(StorageError::new(ErrorCode::InvalidRange)
                    .with_header("content-range", format!("bytes */{size}")));
            }
            Some((start, end)) => Some((start, end.map_or(size - 1, |e| e.min(size - 1)))),
        },
    };
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut reply = Reply::empty(status);
    blob_headers(&mut reply, &r, ctx.app.clock.now_ms());
    super::copy::headers(&mut reply, &r);
    if !r.tags.is_empty() {
        reply.set("x-ms-tag-count", r.tags.len().to_string());
    }
    sas_overrides(ctx, &mut reply);
    if let Some((s, e)) = range {
        reply.set("content-range", format!("bytes {s}-{e}/{size}"));
    }
    let want_range_md5 = range.is_some()
        && ctx
            .req
            .header("x-ms-range-get-content-md5")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if want_range_md5 && len > MAX_RANGE_MD5 {
        return Err(
            StorageError::invalid_header("x-ms-range-get-content-md5", "true")
                .with_message("The range for x-ms-range-get-content-md5 must be 4 MiB or less."),
        );
    }
    if range.is_none() {
        if let Some(md5) = &r.properties.content_md5 {
            reply.set("content-md5", B64.encode(md5));
        }
    } else if let Some(md5) = &r.properties.content_md5 {
        reply.set("x-ms-blob-content-md5", B64.encode(md5));
    }
    if head {
        reply.head_length = Some(size);
        return Ok(reply);
    }
    reply.set("content-length", len.to_string());
    let pieces = extents::slice(&r.pieces, start, len);
    if want_range_md5 {
        // Small by the check above: read it whole to hash it.
        let bytes = read_all(ctx, pieces).await?;
        reply.set("content-md5", B64.encode(Md5::digest(&bytes)));
        reply.body = crate::http::response::bytes_body(bytes);
        return Ok(reply);
    }
    reply.body = stream(ctx, pieces);
    Ok(reply)
}

async fn read_all(ctx: &Ctx<'_>, pieces: Vec<extents::Piece>) -> Result<Bytes> {
    let app = ctx.app.clone();
    tokio::task::spawn_blocking(move || -> Result<Bytes> {
        let mut out = Vec::new();
        for p in &pieces {
            out.extend_from_slice(&app.store.read_piece(p, 0, p.len as usize)?);
        }
        Ok(Bytes::from(out))
    })
    .await
    .map_err(StorageError::internal)?
}

/// Streams pieces from a blocking reader through a small channel (bounded memory: a
/// download holds at most about four chunks, the one being read, two queued and the one
/// hyper is writing).
fn stream(ctx: &Ctx<'_>, pieces: Vec<extents::Piece>) -> crate::http::response::ResBody {
    channel_body(read_pieces(ctx.app, pieces))
}

/// Reads pieces in order on the blocking pool into a two-slot channel; the reader stops
/// when the receiver goes away.
pub fn read_pieces(
    app: &Arc<AppState>,
    pieces: Vec<extents::Piece>,
) -> tokio::sync::mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        for p in &pieces {
            let mut gone = false;
            let read = app.store.read_piece_chunks(p, READ_CHUNK, |chunk| {
                gone = tx.blocking_send(Ok(chunk)).is_err();
                !gone
            });
            if let Err(e) = read {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.message)));
                return;
            }
            if gone {
                return;
            }
        }
    });
    rx
}

pub fn get_metadata(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let r = require_blob(ctx, container, blob)?;
    conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), true)?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms));
    reply.set_metadata(&r.metadata);
    Ok(reply)
}

pub async fn set_metadata(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let metadata = validate::metadata(ctx.req)?;
    let r = ctx
        .app
        .store
        .update_blob(&ctx.route.account, container, blob, |r| {
            conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), false)?;
            super::leases::check_write(ctx, &r.lease, Target::Blob)?;
            r.metadata = metadata;
            Ok(())
        })
        .await?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms))
        .set("x-ms-request-server-encrypted", "true");
    Ok(reply)
}

/// Set Blob Properties replaces every content header (those not sent are cleared).
pub async fn set_properties(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let properties = content_properties(ctx, false)?;
    let r = ctx
        .app
        .store
        .update_blob(&ctx.route.account, container, blob, |r| {
            conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), false)?;
            super::leases::check_write(ctx, &r.lease, Target::Blob)?;
            r.properties = properties;
            Ok(())
        })
        .await?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms));
    Ok(reply)
}

pub async fn delete(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let snapshot = ctx.req.query.get("snapshot").filter(|s| !s.is_empty());
    let mode = match (snapshot, ctx.req.header("x-ms-delete-snapshots")) {
        (Some(_), Some(v)) => {
            return Err(StorageError::invalid_header("x-ms-delete-snapshots", v)
                .with_message("x-ms-delete-snapshots cannot be used when deleting a snapshot."))
        }
        (Some(s), None) => DeleteMode::Snapshot(s.to_string()),
        (None, None) => DeleteMode::Base,
        (None, Some("include")) => DeleteMode::IncludeSnapshots,
        (None, Some("only")) => DeleteMode::OnlySnapshots,
        (None, Some(v)) => return Err(StorageError::invalid_header("x-ms-delete-snapshots", v)),
    };
    ctx.app
        .store
        .delete_blob(
            &ctx.route.account,
            container,
            blob,
            mode,
            |r: &BlobRecord| {
                conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), false)?;
                super::leases::check_write(ctx, &r.lease, Target::Blob)
            },
        )
        .await?;
    let mut reply = Reply::empty(StatusCode::ACCEPTED);
    reply.set("x-ms-delete-type-permanent", "true");
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99"), Some((0, Some(99))));
        assert_eq!(parse_range("bytes=100-"), Some((100, None)));
        assert_eq!(parse_range("bytes=5-4"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=-5"), None);
    }
}
