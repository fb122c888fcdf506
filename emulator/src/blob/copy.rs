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

pub async fn copy(ctx: &Ctx<'_>, container: &str, blob: &str, sync: bool) -> Result<Reply> {
    let source_url = ctx
        .req
        .header("x-ms-copy-source")
        .unwrap_or_default()
        .to_string();
    let (s_account, s_container, s_blob, s_snapshot) = parse_source(&source_url)
        .ok_or_else(|| StorageError::invalid_header("x-ms-copy-source", &source_url))?;
    let store = &ctx.app.store;
    store.require_container(&ctx.route.account, container)?;
    if ctx.app.config.accounts.get(&s_account).is_none() {
        return Err(StorageError::new(ErrorCode::CannotVerifyCopySource)
            .with_message("The copy source account is not served by this emulator."));
    }
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
    let metadata = validate::metadata(ctx.req)?;
    let tags = super::tags::from_header(ctx)?;
    let pieces = store.copy_pieces(&source.pieces)?;
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
                etag,
                last_modified_ms: now,
                created_ms: cur.map_or(now, |c| c.created_ms),
                append_blocks: source.append_blocks,
                sealed: false,
                lease: cur.map(|c| c.lease.clone()).unwrap_or_default(),
                tags: tags.unwrap_or_default(),
                copy: Some(CopyInfo {
                    id: copy_id.clone(),
                    source: source_url.clone(),
                    length,
                    completed_ms: now,
                }),
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
    let _ = sync;
    let mut reply = Reply::empty(StatusCode::ACCEPTED);
    reply
        .set("etag", &record.etag)
        .set("last-modified", rfc1123(record.last_modified_ms))
        .set("x-ms-copy-id", copy_id)
        .set("x-ms-copy-status", "success");
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
