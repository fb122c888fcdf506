//! Page blobs: Put Page (update and clear), Put Page From URL, Get Page Ranges (and its
//! diff against a snapshot), and the page-blob parts of Put Blob and Set Blob Properties.
//! The bytes live sparsely in the store (`store::blob::pages`).

use super::ingest::{self, upload};
use super::{name, pre, snapshot_param, source};
use crate::clock::rfc1123;
use crate::http::body::Body;
use crate::http::response::Reply;
use crate::protocol::conditions::{Access, Preconditions};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::xml::Writer;
use crate::state::Ctx;
use crate::store::blob::{
    BlobRecord, BlobType, PageChange, PageRange, Received, SequenceAction, SequenceCondition,
    MAX_PAGE_BLOB, MAX_SEQUENCE_NUMBER, PAGE,
};
use http::StatusCode;

/// Largest Put Page update (and Put Page From URL) range: 4 MiB.
const MAX_PAGE_WRITE: u64 = 4 * 1024 * 1024;

fn u64_header(ctx: &Ctx<'_>, name: &str) -> Result<Option<u64>> {
    match ctx.req.header(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| StorageError::invalid_header(name, v)),
    }
}

/// `x-ms-blob-content-length` of a page blob: a multiple of 512, at most 8 TiB.
fn declared_size(ctx: &Ctx<'_>) -> Result<Option<u64>> {
    let name = "x-ms-blob-content-length";
    let Some(size) = u64_header(ctx, name)? else {
        return Ok(None);
    };
    if size % PAGE != 0 || size > MAX_PAGE_BLOB {
        return Err(StorageError::invalid_header(name, &size.to_string()));
    }
    Ok(Some(size))
}

/// `x-ms-blob-sequence-number`: 0 to 2^63 - 1.
fn sequence_number(ctx: &Ctx<'_>) -> Result<Option<u64>> {
    let name = "x-ms-blob-sequence-number";
    match u64_header(ctx, name)? {
        Some(v) if v > MAX_SEQUENCE_NUMBER => {
            Err(StorageError::invalid_header(name, &v.to_string()))
        }
        v => Ok(v),
    }
}

/// What Put Blob of a page blob declares: the size (required) and the sequence number.
pub fn create_params(ctx: &Ctx<'_>) -> Result<(u64, u64)> {
    let size = declared_size(ctx)?
        .ok_or_else(|| StorageError::missing_header("x-ms-blob-content-length"))?;
    Ok((size, sequence_number(ctx)?.unwrap_or(0)))
}

/// The page-blob half of Set Blob Properties: a resize and a sequence number action.
/// None when the request names neither.
pub fn property_change(ctx: &Ctx<'_>) -> Result<Option<PageChange>> {
    let size = declared_size(ctx)?;
    let number = sequence_number(ctx)?;
    let action = match ctx.req.header("x-ms-sequence-number-action") {
        None => None,
        Some(v) => {
            let action = match v.trim().to_ascii_lowercase().as_str() {
                "max" => number.map(SequenceAction::Max),
                "update" => number.map(SequenceAction::Update),
                "increment" => {
                    if let Some(n) = number {
                        return Err(StorageError::invalid_header(
                            "x-ms-blob-sequence-number",
                            &n.to_string(),
                        ));
                    }
                    Some(SequenceAction::Increment)
                }
                _ => {
                    return Err(StorageError::invalid_header(
                        "x-ms-sequence-number-action",
                        v,
                    ))
                }
            };
            Some(action.ok_or_else(|| StorageError::missing_header("x-ms-blob-sequence-number"))?)
        }
    };
    Ok((size.is_some() || action.is_some()).then_some(PageChange { size, action }))
}

/// `x-ms-if-sequence-number-*`: a negative number is Azure's 400 `InvalidInput` (as its
/// recorded responses show), anything else unreadable `InvalidHeaderValue`.
fn sequence_condition(ctx: &Ctx<'_>) -> Result<SequenceCondition> {
    let one = |name: &str| -> Result<Option<u64>> {
        match ctx.req.header(name).map(str::trim) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n < 0 => Err(StorageError::new(ErrorCode::InvalidInput)),
                Ok(n) => Ok(Some(n as u64)),
                Err(_) => Err(StorageError::invalid_header(name, v)),
            },
        }
    };
    Ok(SequenceCondition {
        le: one("x-ms-if-sequence-number-le")?,
        lt: one("x-ms-if-sequence-number-lt")?,
        eq: one("x-ms-if-sequence-number-eq")?,
    })
}

/// The page range a write names (`x-ms-range` over `Range`): both ends given, the start a
/// multiple of 512 and the end one less than a multiple. Returns `[start, end)`.
fn page_range(ctx: &Ctx<'_>, header: &str) -> Result<(u64, u64)> {
    let (name, raw) = match ctx.req.header("x-ms-range") {
        Some(v) => ("x-ms-range", v),
        None => match ctx.req.header(header) {
            Some(v) => (header, v),
            None => return Err(StorageError::missing_header("Range")),
        },
    };
    match super::blobs::parse_range(raw) {
        Some((start, Some(end))) if start % PAGE == 0 && (end + 1) % PAGE == 0 => {
            Ok((start, end + 1))
        }
        _ => Err(StorageError::invalid_header(name, raw)),
    }
}

/// Page writes check the HTTP conditions, the lease and the tag condition like any write.
fn write_pre(ctx: &Ctx<'_>) -> Result<Preconditions> {
    pre(ctx, Access::Modify)
}

fn answer(reply: &mut Reply, record: &BlobRecord) {
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set(
            "x-ms-blob-sequence-number",
            record.sequence_number.to_string(),
        );
}

/// Put Page: `x-ms-page-write: update` writes the body, `clear` zeros the range.
pub async fn put_page(ctx: &Ctx<'_>, body: Body) -> Result<Reply> {
    let write = ctx
        .req
        .header("x-ms-page-write")
        .ok_or_else(|| StorageError::missing_header("x-ms-page-write"))?;
    let clear = match write.trim().to_ascii_lowercase().as_str() {
        "update" => false,
        "clear" => true,
        _ => return Err(StorageError::invalid_header("x-ms-page-write", write)),
    };
    let (start, end) = page_range(ctx, "range")?;
    let seq = sequence_condition(ctx)?;
    let pre = write_pre(ctx)?;
    let store = &ctx.app.store.blobs;
    let declared = ingest::declared_length(ctx)?;
    if clear {
        if declared.is_some_and(|l| l != 0) {
            return Err(StorageError::invalid_header(
                "Content-Length",
                &declared.unwrap_or_default().to_string(),
            ));
        }
        let record = store.clear_pages(name(ctx), start, end, seq, &pre).await?;
        let mut reply = Reply::empty(StatusCode::CREATED);
        answer(&mut reply, &record);
        return Ok(reply);
    }
    let len = end - start;
    if len > MAX_PAGE_WRITE {
        return Err(ingest::too_large(MAX_PAGE_WRITE));
    }
    match declared {
        Some(l) if l == len => {}
        Some(l) => {
            return Err(StorageError::invalid_header(
                "Content-Length",
                &l.to_string(),
            ))
        }
        None => return Err(StorageError::new(ErrorCode::MissingContentLengthHeader)),
    }
    // Refused before the body is read: the type, the conditions, the lease.
    store.precheck(name(ctx), &pre, true, Some(BlobType::Page))?;
    let received = upload(ctx, body, len, true).await?;
    let sent_md5 = ctx.req.header("content-md5").is_some();
    commit(ctx, start, received, seq, &pre, sent_md5).await
}

async fn commit(
    ctx: &Ctx<'_>,
    start: u64,
    received: Received,
    seq: SequenceCondition,
    pre: &Preconditions,
    sent_md5: bool,
) -> Result<Reply> {
    let mut reply = Reply::empty(StatusCode::CREATED);
    ingest::checksum_header(&mut reply, &received, sent_md5);
    let record = ctx
        .app
        .store
        .blobs
        .put_pages(name(ctx), start, received, seq, pre)
        .await?;
    answer(&mut reply, &record);
    reply.set("x-ms-request-server-encrypted", "true");
    Ok(reply)
}

/// Put Page From URL: the pages are the source's range (`x-ms-source-range`, as long as
/// the destination range).
pub async fn put_page_from_url(ctx: &Ctx<'_>) -> Result<Reply> {
    ingest::refuse_body(ctx)?;
    if let Some(v) = ctx.req.header("x-ms-page-write") {
        if !v.trim().eq_ignore_ascii_case("update") {
            return Err(StorageError::invalid_header("x-ms-page-write", v));
        }
    }
    let (start, end) = page_range(ctx, "range")?;
    let len = end - start;
    if len > MAX_PAGE_WRITE {
        return Err(ingest::too_large(MAX_PAGE_WRITE));
    }
    let raw_source = ctx
        .req
        .header("x-ms-source-range")
        .ok_or_else(|| StorageError::missing_header("x-ms-source-range"))?;
    let source_range = match source::source_range(ctx)? {
        Some((s, Some(e))) if e - s + 1 == len => (s, Some(e)),
        _ => {
            return Err(StorageError::invalid_header(
                "x-ms-source-range",
                raw_source,
            ))
        }
    };
    let expect = ingest::source_checks(ctx)?;
    let seq = sequence_condition(ctx)?;
    let pre = write_pre(ctx)?;
    let store = &ctx.app.store.blobs;
    store.precheck(name(ctx), &pre, true, Some(BlobType::Page))?;
    let mut src = source::open(ctx, source::Mode::FromUrl, Some(source_range)).await?;
    if src.len != len {
        return Err(StorageError::invalid_header(
            "x-ms-source-range",
            raw_source,
        ));
    }
    let received = store
        .receive(
            &mut src.stream,
            len,
            ingest::block_checksums(&expect),
            &expect,
        )
        .await?;
    commit(ctx, start, received, seq, &pre, expect.md5.is_some()).await
}

/// The range Get Page Ranges covers: `x-ms-range` / `Range`, widened to whole pages (the
/// ranges it reports are pages), else the whole blob. A start at or past the end is
/// Azure's 416 `InvalidRange`.
fn list_range(ctx: &Ctx<'_>, size: u64) -> Result<(u64, u64)> {
    let (name, raw) = match (ctx.req.header("x-ms-range"), ctx.req.header("range")) {
        (Some(v), _) => ("x-ms-range", v),
        (None, Some(v)) => ("Range", v),
        (None, None) => return Ok((0, size)),
    };
    let (start, end) =
        super::blobs::parse_range(raw).ok_or_else(|| StorageError::invalid_header(name, raw))?;
    if start >= size {
        return Err(StorageError::new(ErrorCode::InvalidRange));
    }
    let end = end.map_or(size, |e| e.saturating_add(1).min(size));
    Ok((start - start % PAGE, end.div_ceil(PAGE) * PAGE))
}

fn max_results(ctx: &Ctx<'_>) -> Result<Option<usize>> {
    match ctx.req.query.get("maxresults") {
        None => Ok(None),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(StorageError::invalid_query("maxresults", v)),
        },
    }
}

/// Get Page Ranges, and with `prevsnapshot` (or `prevsnapshoturl`) the diff against that
/// snapshot.
pub fn get_page_ranges(ctx: &Ctx<'_>) -> Result<Reply> {
    let store = &ctx.app.store.blobs;
    let n = name(ctx);
    let snapshot = &snapshot_param(ctx);
    let pre = pre(ctx, Access::Read)?;
    let record = store.read_blob(n, snapshot, &pre)?;
    if record.blob_type != BlobType::Page {
        return Err(StorageError::new(ErrorCode::InvalidBlobType));
    }
    if snapshot.is_empty() {
        record.refuse_if_incremental()?;
    }
    let (from, to) = list_range(ctx, record.page_size)?;
    let prev = previous_snapshot(ctx)?;
    let limit = max_results(ctx)?;
    let marker = match ctx.req.query.get("marker").filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(
            m.parse::<u64>()
                .map_err(|_| StorageError::invalid_query("marker", m))?,
        ),
    };
    let from = marker.map_or(from, |m| m.max(from));
    let (ranges, next) = match &prev {
        None => store.page_ranges(n, snapshot, from, to, limit)?,
        Some(prev) => {
            let prev_record = store.blob(n.account, n.container, n.blob, prev)?;
            if prev_record.is_none() {
                return Err(StorageError::new(ErrorCode::PreviousSnapshotNotFound));
            }
            if !snapshot.is_empty() && prev.as_str() > snapshot.as_str() {
                return Err(StorageError::new(ErrorCode::PreviousSnapshotCannotBeNewer));
            }
            let all = store.page_diff(n, snapshot, prev, from, to)?;
            paginate(all, limit)
        }
    };
    let mut w = Writer::new();
    w.open("PageList");
    for r in &ranges {
        let tag = if r.cleared { "ClearRange" } else { "PageRange" };
        w.open(tag)
            .elem("Start", &r.start.to_string())
            .elem("End", &r.end.to_string())
            .close(tag);
    }
    // NextMarker is part of the list from 2020-10-02, when marker and maxresults came.
    if ctx.version >= "2020-10-02" {
        match next {
            Some(m) => {
                w.elem("NextMarker", &m.to_string());
            }
            None => {
                w.empty("NextMarker");
            }
        }
    }
    w.close("PageList");
    let mut reply = Reply::xml(StatusCode::OK, w.finish());
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-blob-content-length", record.page_size.to_string());
    Ok(reply)
}

fn paginate(all: Vec<PageRange>, limit: Option<usize>) -> (Vec<PageRange>, Option<u64>) {
    match limit {
        Some(l) if all.len() > l => {
            let next = all[l].start;
            (all.into_iter().take(l).collect(), Some(next))
        }
        _ => (all, None),
    }
}

/// `prevsnapshot=`, or the `snapshot` of `x-ms-previous-snapshot-url` (which must name
/// this blob).
fn previous_snapshot(ctx: &Ctx<'_>) -> Result<Option<String>> {
    if let Some(p) = ctx.req.query.get("prevsnapshot") {
        return Ok(Some(p.to_string()));
    }
    let Some(url) = ctx.req.header("x-ms-previous-snapshot-url") else {
        return Ok(None);
    };
    let bad = || StorageError::invalid_header("x-ms-previous-snapshot-url", url);
    let uri: http::Uri = url.trim().parse().map_err(|_| bad())?;
    let query = uri.query().unwrap_or_default();
    let snapshot = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "snapshot")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(bad)?;
    Ok(Some(snapshot))
}
