//! Append blobs: Append Block and Append Block From URL (with append-position and
//! max-size conditions) and Seal.

use super::ingest::{self, upload};
use super::{name, pre, source};
use crate::clock::rfc1123;
use crate::http::body::Body;
use crate::http::response::Reply;
use crate::protocol::conditions::{Access, Preconditions};
use crate::protocol::error::{Result, StorageError};
use crate::state::Ctx;
use crate::store::blob::{AppendLimits, BlobType, Received};
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

pub async fn append_block(ctx: &Ctx<'_>, body: Body) -> Result<Reply> {
    if ctx.req.header("content-length").map(str::trim) == Some("0") {
        return Err(StorageError::invalid_header("Content-Length", "0"));
    }
    let limits = limits(ctx)?;
    let pre = pre(ctx, Access::Modify)?;
    // Refuse early what the current state already refuses, before reading the body.
    ctx.app.store.blobs.precheck(
        name(ctx),
        &Preconditions::none(Access::Passive),
        true,
        Some(BlobType::Append),
    )?;
    let received = upload(ctx, body, max_block(ctx.version), true).await?;
    let sent_md5 = ctx.req.header("content-md5").is_some();
    commit(ctx, received, limits, &pre, sent_md5).await
}

/// Append Block From URL: the block's bytes are the copy source's range.
pub async fn append_block_from_url(ctx: &Ctx<'_>) -> Result<Reply> {
    ingest::refuse_body(ctx)?;
    let limits = limits(ctx)?;
    let range = source::source_range(ctx)?;
    let expect = ingest::source_checks(ctx)?;
    let pre = pre(ctx, Access::Modify)?;
    let store = &ctx.app.store.blobs;
    store.precheck(
        name(ctx),
        &Preconditions::none(Access::Passive),
        true,
        Some(BlobType::Append),
    )?;
    let max = max_block(ctx.version);
    let mut src = source::open(ctx, source::Mode::FromUrl, range).await?;
    if src.len > max {
        return Err(ingest::too_large(max));
    }
    let received = store
        .receive(
            &mut src.stream,
            max,
            ingest::block_checksums(&expect),
            &expect,
        )
        .await?;
    commit(ctx, received, limits, &pre, expect.md5.is_some()).await
}

fn limits(ctx: &Ctx<'_>) -> Result<AppendLimits> {
    Ok(AppendLimits {
        max_size: u64_header(ctx, "x-ms-blob-condition-maxsize")?,
        append_pos: u64_header(ctx, "x-ms-blob-condition-appendpos")?,
    })
}

/// Appends received bytes; the conditions are checked inside the store's locked step.
async fn commit(
    ctx: &Ctx<'_>,
    received: Received,
    limits: AppendLimits,
    pre: &Preconditions,
    sent_md5: bool,
) -> Result<Reply> {
    if received.is_empty() {
        return Err(StorageError::invalid_header("Content-Length", "0"));
    }
    let mut reply = Reply::empty(StatusCode::CREATED);
    ingest::checksum_header(&mut reply, &received, sent_md5);
    let (record, offset) = ctx
        .app
        .store
        .blobs
        .append_block(name(ctx), received, limits, pre)
        .await?;
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-blob-append-offset", offset.to_string())
        .set(
            "x-ms-blob-committed-block-count",
            record.append_blocks.to_string(),
        )
        .set("x-ms-request-server-encrypted", "true");
    Ok(reply)
}

pub async fn seal(ctx: &Ctx<'_>) -> Result<Reply> {
    let append_pos = u64_header(ctx, "x-ms-blob-condition-appendpos")?;
    let pre = pre(ctx, Access::Modify)?;
    let r = ctx
        .app
        .store
        .blobs
        .seal_blob(name(ctx), append_pos, &pre)
        .await?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms))
        .set("x-ms-blob-sealed", "true");
    Ok(reply)
}
