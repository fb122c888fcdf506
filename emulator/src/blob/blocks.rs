//! Block blobs built from blocks: Put Block, Put Block From URL, Put Block List, Get Block
//! List.

use super::ingest::{self, upload};
use super::{name, pre, source};
use crate::clock::rfc1123;
use crate::http::body::Body;
use crate::http::response::Reply;
use crate::protocol::conditions::{Access, Preconditions};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::validate;
use crate::protocol::xml::Writer;
use crate::state::Ctx;
use crate::store::blob::{BlobType, BlockSource, NewBlob, Received};
use base64::Engine;
use http::StatusCode;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Largest block (4000 MiB from 2019-12-12).
const MAX_BLOCK: u64 = 4000 * 1024 * 1024;
const MAX_STAGED: usize = 100_000;
const MAX_COMMITTED: usize = 50_000;

/// Block ids are base64 of at most 64 bytes; they arrive URL-encoded (decoded by now).
fn decode_block_id(raw: &str) -> Result<Vec<u8>> {
    let id = B64
        .decode(raw.trim())
        .map_err(|_| StorageError::invalid_query("blockid", raw))?;
    if id.is_empty() || id.len() > 64 {
        return Err(StorageError::new(ErrorCode::OutOfRangeInput)
            .with_detail("QueryParameterName", "blockid")
            .with_detail("QueryParameterValue", raw));
    }
    Ok(id)
}

fn block_id_param(ctx: &Ctx<'_>) -> Result<Vec<u8>> {
    let raw = ctx
        .req
        .query
        .get("blockid")
        .ok_or_else(|| StorageError::missing_query("blockid"))?;
    decode_block_id(raw)
}

/// A block write checks only the lease (and a create-only SAS), against the committed blob.
fn block_pre(ctx: &Ctx<'_>) -> Result<Preconditions> {
    Ok(pre(ctx, Access::Replace)?.lease_only())
}

/// Stages received bytes as block `id` and answers like Put Block.
async fn stage(
    ctx: &Ctx<'_>,
    id: &[u8],
    received: Received,
    sent_md5: bool,
    pre: &Preconditions,
) -> Result<Reply> {
    let mut reply = Reply::empty(StatusCode::CREATED);
    ingest::checksum_header(&mut reply, &received, sent_md5);
    ctx.app
        .store
        .blobs
        .stage_block(name(ctx), id, received, MAX_STAGED, pre)
        .await?;
    reply.set("x-ms-request-server-encrypted", "true");
    Ok(reply)
}

pub async fn put_block(ctx: &Ctx<'_>, body: Body) -> Result<Reply> {
    let id = block_id_param(ctx)?;
    let pre = block_pre(ctx)?;
    // Refused before the body is read, in Azure's order: the blob type, then the lease.
    ctx.app
        .store
        .blobs
        .precheck(name(ctx), &pre, false, Some(BlobType::Block))?;
    let received = upload(ctx, body, MAX_BLOCK, true).await?;
    let sent_md5 = ctx.req.header("content-md5").is_some();
    stage(ctx, &id, received, sent_md5, &pre).await
}

/// Put Block From URL: the block's bytes are the copy source's range.
pub async fn put_block_from_url(ctx: &Ctx<'_>) -> Result<Reply> {
    let id = block_id_param(ctx)?;
    ingest::refuse_body(ctx)?;
    let range = source::source_range(ctx)?;
    let expect = ingest::source_checks(ctx)?;
    let pre = block_pre(ctx)?;
    let store = &ctx.app.store.blobs;
    store.precheck(name(ctx), &pre, false, Some(BlobType::Block))?;
    let mut src = source::open(ctx, source::Mode::FromUrl, range).await?;
    if src.len > MAX_BLOCK {
        return Err(ingest::too_large(MAX_BLOCK));
    }
    let received = store
        .receive(
            &mut src.stream,
            MAX_BLOCK,
            ingest::block_checksums(&expect),
            &expect,
        )
        .await?;
    stage(ctx, &id, received, expect.md5.is_some(), &pre).await
}

pub(crate) fn parse_block_list(body: &[u8]) -> Result<Vec<(BlockSource, Vec<u8>)>> {
    let root = crate::protocol::xml::parse(body)?;
    if root.name != "BlockList" {
        return Err(StorageError::xml("The root element must be BlockList."));
    }
    let mut out = Vec::with_capacity(root.children.len());
    for el in &root.children {
        let source = match el.name.as_str() {
            "Latest" => BlockSource::Latest,
            "Committed" => BlockSource::Committed,
            "Uncommitted" => BlockSource::Uncommitted,
            _ => return Err(StorageError::new(ErrorCode::InvalidBlockList)),
        };
        let id = B64
            .decode(el.text.trim())
            .map_err(|_| StorageError::new(ErrorCode::InvalidBlockList))?;
        out.push((source, id));
    }
    if out.len() > MAX_COMMITTED {
        return Err(StorageError::new(ErrorCode::BlockListTooLong));
    }
    Ok(out)
}

pub async fn put_block_list(ctx: &Ctx<'_>, body: &[u8]) -> Result<Reply> {
    let list = parse_block_list(body)?;
    let mut new = NewBlob::new(BlobType::Block);
    new.tier = super::tier_header(ctx, BlobType::Block)?;
    new.metadata = validate::metadata(ctx.req)?;
    new.tags = super::tags::from_header(ctx)?.unwrap_or_default();
    // Anything not supplied is reset, as Azure does.
    new.properties = super::blobs::content_properties(ctx, false)?;
    let pre = pre(ctx, Access::Replace)?;
    let record = ctx
        .app
        .store
        .blobs
        .commit_block_list(name(ctx), &list, new, &pre)
        .await?;
    let mut reply = Reply::empty(StatusCode::CREATED);
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-request-server-encrypted", "true");
    super::blobs::set_version_id(&mut reply, &record);
    Ok(reply)
}

pub fn get_block_list(ctx: &Ctx<'_>) -> Result<Reply> {
    let which = ctx
        .req
        .query
        .get("blocklisttype")
        .unwrap_or("committed")
        .to_ascii_lowercase();
    let (committed, uncommitted) = match which.as_str() {
        "committed" => (true, false),
        "uncommitted" => (false, true),
        "all" => (true, true),
        other => return Err(StorageError::invalid_query("blocklisttype", other)),
    };
    let store = &ctx.app.store.blobs;
    let n = name(ctx);
    store.require_container(n.account, n.container)?;
    // A snapshot's list is its committed one; it has no staged blocks.
    let snapshot = &super::snapshot_param(ctx);
    let record = store.blob(n.account, n.container, n.blob, snapshot)?;
    let staged = if snapshot.is_empty() {
        store.staged_blocks(n)?
    } else {
        Vec::new()
    };
    if record.is_none() && staged.is_empty() {
        return Err(StorageError::new(ErrorCode::BlobNotFound));
    }
    if let Some(r) = &record {
        pre(ctx, Access::Read)?.check(Some(r.current()), ctx.app.clock.now_ms())?;
    }
    if record
        .as_ref()
        .is_some_and(|r| r.blob_type != BlobType::Block)
    {
        return Err(StorageError::new(ErrorCode::InvalidBlobType));
    }
    let mut w = Writer::new();
    w.open("BlockList");
    let block = |w: &mut Writer, id: &[u8], size: u64| {
        w.open("Block")
            .elem("Name", &B64.encode(id))
            .elem("Size", &size.to_string())
            .close("Block");
    };
    if committed {
        let blocks = record
            .as_ref()
            .map(|r| r.blocks.as_slice())
            .unwrap_or_default();
        if blocks.is_empty() {
            w.empty("CommittedBlocks");
        } else {
            w.open("CommittedBlocks");
            for b in blocks {
                block(&mut w, &b.id, b.size);
            }
            w.close("CommittedBlocks");
        }
    }
    if uncommitted {
        if staged.is_empty() {
            w.empty("UncommittedBlocks");
        } else {
            w.open("UncommittedBlocks");
            for (id, b) in &staged {
                block(&mut w, id, b.size);
            }
            w.close("UncommittedBlocks");
        }
    }
    w.close("BlockList");
    let mut reply = Reply::xml(StatusCode::OK, w.finish());
    reply.set(
        "x-ms-blob-content-length",
        record.as_ref().map_or(0, |r| r.len()).to_string(),
    );
    if let Some(r) = &record {
        reply
            .set("etag", &r.etag)
            .set("last-modified", rfc1123(r.last_modified_ms));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lists() {
        let body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>AAAA</Latest><Committed>AAAB</Committed><Uncommitted>AAAC</Uncommitted></BlockList>";
        let list = parse_block_list(body).expect("parse");
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].0, BlockSource::Latest);
        assert_eq!(list[2], (BlockSource::Uncommitted, vec![0, 0, 2]));
        assert!(parse_block_list(b"<BlockList />")
            .expect("empty")
            .is_empty());
        assert_eq!(
            parse_block_list(b"<BlockList><Other>AAAA</Other></BlockList>").map_err(|e| e.code),
            Err(ErrorCode::InvalidBlockList)
        );
        assert_eq!(
            parse_block_list(b"<BlockList><Latest>!!</Latest></BlockList>").map_err(|e| e.code),
            Err(ErrorCode::InvalidBlockList)
        );
        assert_eq!(
            parse_block_list(b"<BlockList>").map_err(|e| e.code),
            Err(ErrorCode::InvalidXmlDocument)
        );
        assert_eq!(
            decode_block_id("not base64!").map_err(|e| e.code),
            Err(ErrorCode::InvalidQueryParameterValue)
        );
        assert_eq!(
            decode_block_id(&B64.encode([0u8; 65])).map_err(|e| e.code),
            Err(ErrorCode::OutOfRangeInput)
        );
        assert_eq!(decode_block_id("AAAA").ok(), Some(vec![0, 0, 0]));
    }
}
