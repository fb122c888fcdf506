//! Copy Blob and Copy Blob From URL (both complete synchronously here), and Abort Copy.
//! Sources are blobs of this emulator, addressed by any URL form.

use super::blobs::check_write;
use crate::clock::rfc1123;
use crate::error::{ErrorCode, Result, StorageError};
use crate::response::Reply;
use crate::router::is_path_style_host;
use crate::state::Ctx;
use crate::store::{BlobRecord, CopyInfo};
use crate::validate;
use http::StatusCode;
use percent_encoding::percent_decode_str;

/// (account, container, blob, snapshot) of a source URL, if it names a blob here.
fn parse_source(url: &str) -> Option<(String, String, String, String)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path_query) = rest.split_once('/').unwrap_or((rest, ""));
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut parts = path.splitn(3, '/');
    let (account, container, blob) = if is_path_style_host(authority) {
        (
            parts.next()?.to_string(),
            parts.next()?.to_string(),
            parts.next()?.to_string(),
        )
    } else {
        let account = authority.split('.').next()?.to_string();
        let container = parts.next()?.to_string();
        let blob = parts.next().map(|b| {
            format!(
                "{b}{}",
                parts.next().map(|x| format!("/{x}")).unwrap_or_default()
            )
        })?;
        (account, container, blob)
    };
    let snapshot = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "snapshot")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if account.is_empty() || container.is_empty() || blob.is_empty() {
        return None;
    }
    Some((
        decode(&account),
        decode(&container),
        decode(&blob),
        snapshot,
    ))
}

pub async fn copy(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let source_url = ctx
        .req
        .header("x-ms-copy-source")
        .unwrap_or_default()
        .to_string();
    let parsed = parse_source(&source_url);
    let store = &ctx.app.store;
    store.require_container(&ctx.route.account, container)?;
    let local = parsed
        .as_ref()
        .filter(|(account, ..)| ctx.app.config.accounts.get(account).is_some());
    let Some((s_account, s_container, s_blob, s_snapshot)) = local.cloned() else {
        // Not a blob of this emulator: fetch it like any other URL.
        let (source, pieces) = fetch_external(ctx, &source_url).await?;
        return finish(ctx, container, blob, &source_url, source, pieces).await;
    };
    // Another account's private blob needs a SAS on the source URL.
    if s_account != ctx.route.account && !source_url.contains("sig=") {
        let public = store
            .container(&s_account, &s_container)?
            .and_then(|c| c.public_access)
            .is_some();
        if !public {
            return Err(StorageError::new(ErrorCode::CannotVerifyCopySource)
                .with_status(StatusCode::FORBIDDEN));
        }
    }
    let source = store
        .blob(&s_account, &s_container, &s_blob, &s_snapshot)?
        .ok_or_else(|| {
            StorageError::new(ErrorCode::BlobNotFound)
                .with_message("The specified copy source blob does not exist.")
        })?;
    let pieces = store.copy_pieces(&source.pieces)?;
    finish(ctx, container, blob, &source_url, source, pieces).await
}

/// Commits the destination from a source record and the copied bytes (owned by the copy).
async fn finish(
    ctx: &Ctx<'_>,
    container: &str,
    blob: &str,
    source_url: &str,
    source: BlobRecord,
    pieces: Vec<crate::store::extents::Piece>,
) -> Result<Reply> {
    let store = &ctx.app.store;
    let source_url = source_url.to_string();
    let metadata = match validate::metadata(ctx.req) {
        Ok(m) => m,
        Err(e) => {
            store.free_pieces(&pieces);
            return Err(e);
        }
    };
    let tags = match super::tags::from_header(ctx) {
        Ok(t) => t,
        Err(e) => {
            store.free_pieces(&pieces);
            return Err(e);
        }
    };
    let copied = pieces.clone();
    let copy_id = uuid::Uuid::new_v4().to_string();
    let length = source.len();
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
            // The copied bytes were never referenced.
            store.free_pieces(&copied);
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

/// GETs an http:// URL (a SAS in it authorizes the read at the other end) and streams the
/// body into new pieces. The source's failure status is mirrored, as Azure does.
async fn fetch_external(
    ctx: &Ctx<'_>,
    url: &str,
) -> Result<(BlobRecord, Vec<crate::store::extents::Piece>)> {
    use http_body_util::BodyExt;
    let cannot = |status: StatusCode, why: String| {
        StorageError::new(ErrorCode::CannotVerifyCopySource)
            .with_status(status)
            .with_message(why)
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|_| StorageError::invalid_header("x-ms-copy-source", url))?;
    if uri.scheme_str() != Some("http") {
        return Err(cannot(
            StatusCode::BAD_REQUEST,
            "Only http:// copy sources are supported by this emulator.".into(),
        ));
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let resp = client.get(uri).await.map_err(|e| {
        cannot(
            StatusCode::NOT_FOUND,
            format!("The copy source could not be reached: {e}"),
        )
    })?;
    if resp.status() != StatusCode::OK {
        return Err(cannot(
            resp.status(),
            format!("The copy source answered {}.", resp.status()),
        ));
    }
    let h = resp.headers().clone();
    let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let store = &ctx.app.store;
    let extents = store.extents().clone();
    let checksums = crate::store::extents::Checksums {
        md5: true,
        crc64: false,
    };
    let mut up = crate::store::extents::Upload::new(store.new_data_id()?, checksums);
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                up.abandon(&extents);
                return Err(cannot(
                    StatusCode::BAD_GATEWAY,
                    format!("The copy source failed mid-body: {e}"),
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            if let Err(e) = up.push(&extents, data).await {
                up.abandon(&extents);
                return Err(e);
            }
        }
    }
    let uploaded = up.finish(&extents).await?;
    store.store_inline(&uploaded)?;
    let md5 = text("content-md5")
        .and_then(|v| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v).ok());
    let source = BlobRecord {
        blob_type: crate::store::BlobType::Block,
        pieces: uploaded.pieces.clone(),
        blocks: Vec::new(),
        properties: crate::store::ContentProperties {
            content_type: text("content-type"),
            content_encoding: text("content-encoding"),
            content_language: text("content-language"),
            content_md5: md5.or(uploaded.md5.map(|m| m.to_vec())),
            cache_control: text("cache-control"),
            content_disposition: text("content-disposition"),
        },
        metadata: h
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().strip_prefix("x-ms-meta-")?.to_string(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect(),
        etag: String::new(),
        last_modified_ms: 0,
        created_ms: 0,
        append_blocks: 0,
        sealed: false,
        lease: Default::default(),
        copy: None,
        tags: Vec::new(),
    };
    Ok((source, uploaded.pieces))
}

/// Put Blob From URL: a block blob whose bytes come from the source; answered like a Put
/// Blob (201 with the content MD5), not like a copy.
pub async fn put_from_url(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    match ctx.req.header("x-ms-blob-type") {
        Some("BlockBlob") => {}
        Some(v) => return Err(StorageError::invalid_header("x-ms-blob-type", v)),
        None => return Err(StorageError::missing_header("x-ms-blob-type")),
    }
    let copied = copy(ctx, container, blob).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let p = |u: &str| parse_source(u);
        assert_eq!(
            p("http://127.0.0.1:10000/devstoreaccount1/c1/dir/a%20b.txt?snapshot=2025-01-01T00:00:00.0000000Z&sig=x"),
            Some(("devstoreaccount1".into(), "c1".into(), "dir/a b.txt".into(), "2025-01-01T00:00:00.0000000Z".into()))
        );
        assert_eq!(
            p("https://acct.blob.core.windows.net/c1/x/y"),
            Some(("acct".into(), "c1".into(), "x/y".into(), String::new()))
        );
        assert_eq!(p("http://127.0.0.1:10000/devstoreaccount1/c1"), None);
        assert_eq!(p("garbage"), None);
    }
}
