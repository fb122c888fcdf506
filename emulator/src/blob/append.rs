//! Append blobs: Append Block (with append-position and max-size conditions) and Seal.

use super::ingest::{self, upload};
use super::source;
use crate::clock::rfc1123;
use crate::http::body::Body;
use crate::http::response::Reply;
use crate::protocol::conditions;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::state::Ctx;
use crate::store::extents::Uploaded;
use http::StatusCode;

/// 100 MiB from 2022-11-02, 4 MiB before.
fn max_block(version: &str) -> u64 {
    if version >= "2022-11-02" {
        100 * 1024 * 1024
    } else {
        4 * 1024 * 1024
    }
}

fn u64_header(ctx: &Ctx<'_>, name: &str) -> Result<Option<u64>> {
    match ctx.req.header(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| StorageError::invalid_header(name, v)),
    }
}

/// The blob an append needs, checked before any bytes are read.
fn check_appendable(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<()> {
    let store = &ctx.app.store;
    let account = &ctx.route.account;
    store.require_container(account, container)?;
    let current = store
        .blob(account, container, blob, "")?
        .ok_or_else(|| StorageError::new(ErrorCode::BlobNotFound))?;
    if current.blob_type != crate::store::BlobType::Append {
        return Err(StorageError::new(ErrorCode::InvalidBlobType));
    }
    Ok(())
}

pub async fn append_block(ctx: &Ctx<'_>, container: &str, blob: &str, body: Body) -> Result<Reply> {
    if ctx.req.header("content-length").map(str::trim) == Some("0") {
        return Err(StorageError::invalid_header("Content-Length", "0"));
    }
    let max_size = u64_header(ctx, "x-ms-blob-condition-maxsize")?;
    let append_pos = u64_header(ctx, "x-ms-blob-condition-appendpos")?;
    check_appendable(ctx, container, blob)?;
    let uploaded = upload(ctx, body, max_block(ctx.version), true).await?;
    let sent_md5 = ctx.req.header("content-md5").is_some();
    commit(
        ctx, container, blob, uploaded, max_size, append_pos, sent_md5,
    )
    .await
}

/// Append Block From URL: the block's bytes are the copy source's range.
pub async fn append_block_from_url(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    if let Some(len) = ingest::declared_length(ctx)?.filter(|l| *l != 0) {
        return Err(StorageError::invalid_header(
            "Content-Length",
            &len.to_string(),
        ));
    }
    let max_size = u64_header(ctx, "x-ms-blob-condition-maxsize")?;
    let append_pos = u64_header(ctx, "x-ms-blob-condition-appendpos")?;
    let range = source::source_range(ctx)?;
    let expect = ingest::source_checks(ctx)?;
    check_appendable(ctx, container, blob)?;
    let max = max_block(ctx.version);
    let mut src = source::open(ctx, source::Mode::FromUrl, range).await?;
    if src.len > max {
        return Err(StorageError::new(ErrorCode::RequestBodyTooLarge)
            .with_detail("MaxLimit", max.to_string()));
    }
    let uploaded = ingest::receive(
        ctx,
        &mut src.stream,
        max,
        ingest::block_checksums(&expect),
        &expect,
    )
    .await?;
    let sent_md5 = expect.md5.is_some();
    commit(
        ctx, container, blob, uploaded, max_size, append_pos, sent_md5,
    )
    .await
}

/// Appends received bytes under the blob's lock, with the conditions checked there.
async fn commit(
    ctx: &Ctx<'_>,
    container: &str,
    blob: &str,
    uploaded: Uploaded,
    max_size: Option<u64>,
    append_pos: Option<u64>,
    sent_md5: bool,
) -> Result<Reply> {
    let store = &ctx.app.store;
    let account = &ctx.route.account;
    if uploaded.len == 0 {
        store.discard(&uploaded);
        return Err(StorageError::invalid_header("Content-Length", "0"));
    }
    let result = store
        .append_block(account, container, blob, &uploaded, |r, len| {
            conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), false)?;
            super::leases::check_write(ctx, &r.lease, crate::protocol::lease::Target::Blob)?;
            if append_pos.is_some_and(|p| p != r.len()) {
                return Err(StorageError::new(ErrorCode::AppendPositionConditionNotMet));
            }
            if max_size.is_some_and(|m| r.len() + len > m) {
                return Err(StorageError::new(ErrorCode::MaxBlobSizeConditionNotMet));
            }
            Ok(())
        })
        .await;
    let (record, offset) = match result {
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
        .set("x-ms-blob-append-offset", offset.to_string())
        .set(
            "x-ms-blob-committed-block-count",
            record.append_blocks.to_string(),
        )
        .set("x-ms-request-server-encrypted", "true");
    super::blobs::checksum_header(&mut reply, &uploaded, sent_md5);
    Ok(reply)
}

pub async fn seal(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let append_pos = u64_header(ctx, "x-ms-blob-condition-appendpos")?;
    let r = ctx
        .app
        .store
        .update_blob(&ctx.route.account, container, blob, |r| {
            if r.blob_type != crate::store::BlobType::Append {
                return Err(StorageError::new(ErrorCode::InvalidBlobType));
            }
            conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), false)?;
            super::leases::check_write(ctx, &r.lease, crate::protocol::lease::Target::Blob)?;
            if append_pos.is_some_and(|p| p != r.len()) {
                return Err(StorageError::new(ErrorCode::AppendPositionConditionNotMet));
            }
            r.sealed = true;
            Ok(())
        })
        .await?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms))
        .set("x-ms-blob-sealed", "true");
    Ok(reply)
}
