//! Blobs: Put Blob (streamed), Get Blob and its properties (ranges, conditions), metadata,
//! properties, snapshots and delete.

use super::headers::{blob_headers, copy_headers, sas_overrides};
use super::ingest::{decode_md5, upload};
use super::{name, pre, snapshot_param};
use crate::clock::rfc1123;
use crate::http::body::Body;
use crate::http::response::{channel_body, Reply};
use crate::protocol::conditions::Access;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::validate;
use crate::state::Ctx;
use crate::store::blob::{BlobType, ContentProperties, DeleteMode, NewBlob};
use base64::Engine;
use http::StatusCode;
use md5::{Digest, Md5};

/// Reads up to this long are answered from one buffer read on the request's own thread.
const SMALL_READ: u64 = crate::store::blob::extents::INLINE_MAX as u64;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Largest blob a single Put Blob takes (5000 MiB).
const MAX_PUT_BLOB: u64 = 5000 * 1024 * 1024;
/// Largest range `x-ms-range-get-content-md5` may cover.
const MAX_RANGE_MD5: u64 = 4 * 1024 * 1024;

fn header<'a>(ctx: &'a Ctx<'_>, name: &str) -> Option<&'a str> {
    ctx.req.header(name).filter(|v| !v.is_empty())
}

/// The content headers of Set Blob Properties, MD5 aside (see `stored_md5`).
fn content_properties_without_md5(ctx: &Ctx<'_>) -> ContentProperties {
    let pick = |ms: &str| header(ctx, ms).map(str::to_string);
    ContentProperties {
        content_type: pick("x-ms-blob-content-type"),
        content_encoding: pick("x-ms-blob-content-encoding"),
        content_language: pick("x-ms-blob-content-language"),
        cache_control: pick("x-ms-blob-cache-control"),
        content_disposition: pick("x-ms-blob-content-disposition"),
        content_md5: None,
    }
}

/// Content properties from `x-ms-blob-*` headers (Put Blob also reads the plain ones).
pub(super) fn content_properties(ctx: &Ctx<'_>, plain_fallback: bool) -> Result<ContentProperties> {
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

/// `x-ms-blob-content-md5` of Set Blob Properties: a property, stored as given, so any
/// base64 value is taken (the SDKs' own recorded tests set a 4-byte one).
fn stored_md5(ctx: &Ctx<'_>) -> Result<Option<Vec<u8>>> {
    match header(ctx, "x-ms-blob-content-md5") {
        None => Ok(None),
        Some(v) => B64.decode(v.trim()).map(Some).map_err(|_| {
            StorageError::new(ErrorCode::InvalidMd5)
                .with_detail("HeaderName", "x-ms-blob-content-md5")
                .with_detail("HeaderValue", v)
        }),
    }
}

fn blob_type(ctx: &Ctx<'_>) -> Result<BlobType> {
    match ctx.req.header("x-ms-blob-type") {
        Some("BlockBlob") => Ok(BlobType::Block),
        Some("AppendBlob") => Ok(BlobType::Append),
        Some("PageBlob") => Ok(BlobType::Page),
        Some(v) => Err(StorageError::invalid_header("x-ms-blob-type", v)),
        None => Err(StorageError::missing_header("x-ms-blob-type")),
    }
}

pub async fn put(ctx: &Ctx<'_>, body: Body) -> Result<Reply> {
    let blob_type = blob_type(ctx)?;
    let mut new = NewBlob::new(blob_type);
    new.tier = super::tier_header(ctx, blob_type)?;
    new.metadata = validate::metadata(ctx.req)?;
    new.tags = super::tags::from_header(ctx)?.unwrap_or_default();
    new.properties = content_properties(ctx, true)?;
    if blob_type == BlobType::Page {
        (new.page_size, new.sequence_number) = super::pages::create_params(ctx)?;
    }
    let pre = pre(ctx, Access::Replace)?;
    let store = &ctx.app.store.blobs;
    // Fail fast before reading a large body.
    store.precheck(name(ctx), &pre, false, None)?;
    // Append and page blobs are created empty; their bytes come through Append Block and
    // Put Page.
    let declared_len = ctx
        .req
        .header("content-length")
        .map(str::trim)
        .unwrap_or("0");
    if blob_type != BlobType::Block && declared_len != "0" {
        return Err(StorageError::invalid_header("Content-Length", declared_len));
    }
    let max = match blob_type {
        BlobType::Append | BlobType::Page => 0,
        BlobType::Block => MAX_PUT_BLOB,
    };
    let received = upload(ctx, body, max, false).await?;
    let md5 = received.md5();
    if blob_type == BlobType::Block && new.properties.content_md5.is_none() {
        new.properties.content_md5 = md5.map(|m| m.to_vec());
    }
    let record = store.put_blob(name(ctx), received, new, &pre).await?;
    let mut reply = Reply::empty(StatusCode::CREATED);
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-request-server-encrypted", "true");
    set_version_id(&mut reply, &record);
    if let (BlobType::Block, Some(md5)) = (blob_type, md5) {
        reply.set("content-md5", B64.encode(md5));
    }
    Ok(reply)
}

pub async fn snapshot(ctx: &Ctx<'_>) -> Result<Reply> {
    let metadata = validate::metadata(ctx.req)?;
    let metadata = (!metadata.is_empty()).then_some(metadata);
    let pre = pre(ctx, Access::Passive)?;
    let (id, r) = ctx
        .app
        .store
        .blobs
        .snapshot_blob(name(ctx), metadata, &pre)
        .await?;
    let mut reply = Reply::empty(StatusCode::CREATED);
    reply
        .set("x-ms-snapshot", id)
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms))
        .set("x-ms-request-server-encrypted", "true");
    set_version_id(&mut reply, &r);
    Ok(reply)
}

/// Parses `bytes=a-b` / `bytes=a-`; None when absent or malformed.
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

pub async fn get(ctx: &Ctx<'_>, head: bool) -> Result<Reply> {
    let store = &ctx.app.store.blobs;
    let pre = pre(ctx, Access::Read)?;
    let slot = snapshot_param(ctx);
    let r = match store.read_blob(name(ctx), &slot, &pre) {
        Ok(r) => r,
        Err(e) if e.status == StatusCode::NOT_MODIFIED => {
            // A 304 still names the current version.
            let current = store.blob(
                &ctx.route.account,
                name(ctx).container,
                name(ctx).blob,
                &slot,
            )?;
            return Err(match current {
                Some(c) => e
                    .with_header("etag", c.etag.clone())
                    .with_header("last-modified", rfc1123(c.last_modified_ms)),
                None => e,
            });
        }
        Err(e) => return Err(e),
    };
    if !head && slot.is_empty() {
        r.refuse_if_incremental()?;
    }
    if !head && r.tier.is_offline(ctx.app.clock.now_ms()) {
        return Err(crate::protocol::tiers::archived());
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
    blob_headers(&mut reply, &r, ctx.app.clock.now_ms(), &slot);
    copy_headers(&mut reply, &r);
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
        super::headers::tier_headers(&mut reply, &r, ctx.app.clock.now_ms());
        reply.head_length = Some(size);
        return Ok(reply);
    }
    reply.set("content-length", len.to_string());
    if want_range_md5 {
        // Small by the check above: read it whole to hash it.
        let app = ctx.app.clone();
        let (account, container, blob) = (
            ctx.route.account.clone(),
            name(ctx).container.to_string(),
            name(ctx).blob.to_string(),
        );
        let snapshot = slot.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let n = crate::store::blob::BlobName {
                account: &account,
                container: &container,
                blob: &blob,
            };
            app.store
                .blobs
                .read_blob_small(n, &snapshot, &r, start, len)
        })
        .await
        .map_err(StorageError::internal)??;
        reply.set("content-md5", B64.encode(Md5::digest(&bytes)));
        reply.body = crate::http::response::bytes_body(bytes);
        return Ok(reply);
    }
    reply.body = if len <= SMALL_READ {
        // Read here, on this worker: a page-cache read of a few KiB costs less than the
        // hand-off to the blocking pool and the channel (sled reads its pages this way
        // too), and a whole body goes out in one write with the headers.
        crate::http::response::bytes_body(store.read_blob_small(
            name(ctx),
            &slot,
            &r,
            start,
            len,
        )?)
    } else {
        channel_body(store.read_blob_range(name(ctx), &slot, &r, start, len)?)
    };
    Ok(reply)
}

pub fn get_metadata(ctx: &Ctx<'_>) -> Result<Reply> {
    let pre = pre(ctx, Access::Read)?;
    let r = ctx
        .app
        .store
        .blobs
        .read_blob(name(ctx), &snapshot_param(ctx), &pre)?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms));
    reply.set_metadata(&r.metadata);
    Ok(reply)
}

pub async fn set_metadata(ctx: &Ctx<'_>) -> Result<Reply> {
    let metadata = validate::metadata(ctx.req)?;
    let pre = pre(ctx, Access::Modify)?;
    let r = ctx
        .app
        .store
        .blobs
        .set_blob_metadata(name(ctx), metadata, &pre)
        .await?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms))
        .set("x-ms-request-server-encrypted", "true");
    set_version_id(&mut reply, &r);
    Ok(reply)
}

/// Set Blob Properties replaces every content header (those not sent are cleared; a
/// cleared content type is reported as none, not as the default).
pub async fn set_properties(ctx: &Ctx<'_>) -> Result<Reply> {
    let md5 = stored_md5(ctx)?;
    let mut properties = ContentProperties {
        content_md5: None,
        ..content_properties_without_md5(ctx)
    };
    properties.content_md5 = md5;
    properties.content_type.get_or_insert_with(String::new);
    let page = super::pages::property_change(ctx)?;
    let pre = pre(ctx, Access::Modify)?;
    let r = ctx
        .app
        .store
        .blobs
        .set_blob_properties(name(ctx), properties, page, &pre)
        .await
        .map_err(|e| match e.code {
            // Size and sequence number are page blob properties: Azure answers 400 for
            // them on another blob type.
            ErrorCode::InvalidBlobType => {
                let header = if ctx.req.header("x-ms-blob-content-length").is_some() {
                    "x-ms-blob-content-length"
                } else {
                    "x-ms-sequence-number-action"
                };
                StorageError::invalid_header(header, ctx.req.header(header).unwrap_or_default())
                    .with_message(format!("{header} applies to page blobs only."))
            }
            _ => e,
        })?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms));
    if r.blob_type == BlobType::Page {
        reply.set("x-ms-blob-sequence-number", r.sequence_number.to_string());
    }
    Ok(reply)
}

/// Set Blob Tier: 200 when the tier changed, 202 when an archived blob starts to rehydrate.
pub async fn set_tier(ctx: &Ctx<'_>) -> Result<Reply> {
    let raw = ctx
        .req
        .header("x-ms-access-tier")
        .ok_or_else(|| StorageError::missing_header("x-ms-access-tier"))?;
    let tier = crate::protocol::tiers::parse_header(raw)?;
    let priority = match ctx.req.header("x-ms-rehydrate-priority") {
        Some(v) => crate::protocol::tiers::Priority::parse(v)?,
        None => crate::protocol::tiers::Priority::Standard,
    };
    // Set Blob Tier takes the lease and the tag condition, not the HTTP conditions.
    let pre = pre(ctx, Access::Modify)?.lease_only();
    let (_, pending) = ctx
        .app
        .store
        .blobs
        .set_blob_tier(
            name(ctx),
            &snapshot_param(ctx),
            tier,
            priority,
            ctx.app.config.rehydrate_delay,
            &pre,
        )
        .await?;
    Ok(Reply::empty(if pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    }))
}

/// `x-ms-version-id` of a write that made a new current version.
pub(super) fn set_version_id(reply: &mut Reply, r: &crate::store::blob::BlobRecord) {
    if let Some(v) = &r.version_id {
        reply.set("x-ms-version-id", v);
    }
}

pub async fn delete(ctx: &Ctx<'_>) -> Result<Reply> {
    let q = &ctx.req.query;
    let slot = snapshot_param(ctx);
    let by_id = q
        .get("snapshot")
        .or(q.get("versionid"))
        .filter(|s| !s.is_empty());
    let permanent = match q.get("deletetype") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("permanent") => true,
        Some(v) => return Err(StorageError::invalid_query("deletetype", v)),
    };
    let mode = match (by_id, ctx.req.header("x-ms-delete-snapshots")) {
        (Some(_), Some(v)) => {
            let param = if q.has("versionid") { "versionid" } else { "x-ms-delete-snapshots" };
            let err = if q.has("versionid") {
                StorageError::invalid_query(param, q.get("versionid").unwrap_or_default())
            } else {
                StorageError::invalid_header("x-ms-delete-snapshots", v)
            };
            return Err(err.with_message(
                "x-ms-delete-snapshots cannot be used when deleting a snapshot or version.",
            ));
        }
        (Some(_), None) if permanent => DeleteMode::Permanent(slot.clone()),
        // The current version cannot be deleted by its id (delete the base blob).
        (Some(_), None) if slot.is_empty() => return Err(crate::store::blob::root_blob()),
        (Some(_), None) => DeleteMode::Snapshot(slot.clone()),
        (None, _) if permanent => {
            return Err(StorageError::new(ErrorCode::BlobSnapshotNotSoftDeleted).with_message(
                "A permanent delete names a soft-deleted snapshot or version (snapshot= or versionid=).",
            ))
        }
        (None, None) => DeleteMode::Base,
        (None, Some("include")) => DeleteMode::IncludeSnapshots,
        (None, Some("only")) => DeleteMode::OnlySnapshots,
        (None, Some(v)) => return Err(StorageError::invalid_header("x-ms-delete-snapshots", v)),
    };
    let pre = pre(ctx, Access::Modify)?;
    let permanent = ctx
        .app
        .store
        .blobs
        .delete_blob(name(ctx), mode, &pre)
        .await?;
    let mut reply = Reply::empty(StatusCode::ACCEPTED);
    reply.set(
        "x-ms-delete-type-permanent",
        if permanent { "true" } else { "false" },
    );
    Ok(reply)
}

/// Undelete Blob: 200, whether or not anything was deleted.
pub async fn undelete(ctx: &Ctx<'_>) -> Result<Reply> {
    ctx.app.store.blobs.undelete_blob(name(ctx)).await?;
    Ok(Reply::empty(StatusCode::OK))
}

/// Set Blob Expiry (`x-ms-expiry-option`, `x-ms-expiry-time`).
pub async fn set_expiry(ctx: &Ctx<'_>) -> Result<Reply> {
    use crate::store::blob::Expiry;
    let option = ctx
        .req
        .header("x-ms-expiry-option")
        .ok_or_else(|| StorageError::missing_header("x-ms-expiry-option"))?;
    let time = ctx.req.header("x-ms-expiry-time").map(str::trim);
    let millis = |t: Option<&str>| -> Result<i64> {
        let t = t.ok_or_else(|| StorageError::missing_header("x-ms-expiry-time"))?;
        t.parse::<u64>()
            .ok()
            .and_then(|ms| i64::try_from(ms).ok())
            .ok_or_else(|| StorageError::invalid_header("x-ms-expiry-time", t))
    };
    let expiry = match option.to_ascii_lowercase().as_str() {
        "neverexpire" => {
            if let Some(t) = time {
                return Err(StorageError::invalid_header("x-ms-expiry-time", t)
                    .with_message("x-ms-expiry-time must not be given with NeverExpire."));
            }
            Expiry::Never
        }
        "relativetocreation" => Expiry::RelativeToCreation(millis(time)?),
        "relativetonow" => Expiry::RelativeToNow(millis(time)?),
        "absolute" => {
            let t = time.ok_or_else(|| StorageError::missing_header("x-ms-expiry-time"))?;
            let at = chrono::DateTime::parse_from_rfc2822(t)
                .map_err(|_| StorageError::invalid_header("x-ms-expiry-time", t))?;
            Expiry::Absolute(at.timestamp_millis())
        }
        _ => return Err(StorageError::invalid_header("x-ms-expiry-option", option)),
    };
    let pre = pre(ctx, Access::Modify)?.lease_only();
    let r = ctx
        .app
        .store
        .blobs
        .set_blob_expiry(name(ctx), expiry, &pre)
        .await?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms));
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
