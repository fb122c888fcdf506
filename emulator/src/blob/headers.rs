//! How a blob's stored state is rendered as response headers (Get Blob, Get Blob
//! Properties), including the copy properties of a copy destination and a SAS's response
//! header overrides.

use crate::clock::rfc1123;
use crate::http::response::Reply;
use crate::state::Ctx;
use crate::store::blob::{BlobRecord, BlobType};

/// `slot` is what the request named (see `snapshot_param`): a previous version reports
/// its id and no lease; the current version its id and `x-ms-is-current-version`.
pub fn blob_headers(reply: &mut Reply, r: &BlobRecord, now_ms: i64, slot: &str) {
    let p = &r.properties;
    match crate::store::blob::keys::slot_version(slot) {
        Some(v) => {
            reply.set("x-ms-version-id", v);
        }
        None => {
            if slot.is_empty() {
                if let Some(v) = &r.version_id {
                    reply
                        .set("x-ms-version-id", v)
                        .set("x-ms-is-current-version", "true");
                }
            }
            for (name, value) in r.lease.headers(now_ms) {
                reply.set(name, value);
            }
        }
    }
    if let Some(e) = r.expiry_ms {
        reply.set("x-ms-expiry-time", rfc1123(e));
    }
    reply
        .set("etag", &r.etag)
        .set("last-modified", rfc1123(r.last_modified_ms))
        .set("x-ms-creation-time", rfc1123(r.created_ms))
        .set("x-ms-blob-type", r.blob_type.as_str())
        .set("x-ms-server-encrypted", "true")
        .set("accept-ranges", "bytes");
    if let Some(t) = p.reported_content_type() {
        reply.set("content-type", t);
    }
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
        // Azure reports the seal state of every append blob, `false` included.
        reply.set("x-ms-blob-sealed", if r.sealed { "true" } else { "false" });
    }
    if r.blob_type == BlobType::Page {
        reply.set("x-ms-blob-sequence-number", r.sequence_number.to_string());
    }
    reply.set_metadata(&r.metadata);
}

/// The tier headers of Get Blob Properties (only block blobs have a tier on a standard
/// account).
pub fn tier_headers(reply: &mut Reply, r: &BlobRecord, now_ms: i64) {
    if r.blob_type != BlobType::Block {
        return;
    }
    let t = r.tier.at(now_ms);
    reply.set("x-ms-access-tier", t.effective(now_ms).as_str());
    match t.changed_ms {
        None => {
            reply.set("x-ms-access-tier-inferred", "true");
        }
        Some(ms) => {
            reply.set("x-ms-access-tier-change-time", rfc1123(ms));
        }
    }
    if let Some(status) = t.archive_status(now_ms) {
        reply.set("x-ms-archive-status", status);
    }
    if let Some(p) = t.rehydrate_priority(now_ms) {
        reply.set("x-ms-rehydrate-priority", p.as_str());
    }
}

/// A SAS may name response headers (`rscc`, `rscd`, `rsce`, `rscl`, `rsct`) that replace
/// the blob's own on reads.
pub fn sas_overrides(ctx: &Ctx<'_>, reply: &mut Reply) {
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

/// Copy properties on Get Blob / Get Blob Properties of a copy destination.
pub fn copy_headers(reply: &mut Reply, r: &BlobRecord) {
    if let Some(c) = &r.copy {
        reply
            .set("x-ms-copy-id", &c.id)
            .set("x-ms-copy-source", &c.source)
            .set("x-ms-copy-status", "success")
            .set("x-ms-copy-progress", format!("{}/{}", c.length, c.length))
            .set("x-ms-copy-completion-time", rfc1123(c.completed_ms));
    }
    if let Some(i) = &r.incremental {
        reply
            .set("x-ms-incremental-copy", "true")
            .set("x-ms-copy-destination-snapshot", &i.destination_snapshot);
    }
}
