//! Containers: create, properties and metadata, delete, and listing (of containers and of
//! the blobs in one).

use crate::clock::rfc1123;
use crate::http::response::Reply;
use crate::protocol::conditions::{Access, Preconditions};
use crate::protocol::error::{Result, StorageError};
use crate::protocol::validate::{self, int_param};
use crate::protocol::xml::Writer;
use crate::state::Ctx;
use crate::store::blob::{ContainerRecord, ListItem};
use base64::Engine;
use http::StatusCode;

const MAX_RESULTS: i64 = 5000;

fn public_access(ctx: &Ctx<'_>) -> Result<Option<String>> {
    match ctx.req.header("x-ms-blob-public-access") {
        None | Some("") => Ok(None),
        Some(v @ ("container" | "blob")) => Ok(Some(v.to_string())),
        Some(v) => Err(StorageError::invalid_header("x-ms-blob-public-access", v)),
    }
}

fn container_headers(reply: &mut Reply, c: &ContainerRecord) {
    reply
        .set("etag", &c.etag)
        .set("last-modified", rfc1123(c.last_modified_ms));
}

pub async fn create(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let metadata = validate::metadata(ctx.req)?;
    let access = public_access(ctx)?;
    let c = ctx
        .app
        .store
        .blobs
        .create_container(&ctx.route.account, container, metadata, access)
        .await?;
    let mut reply = Reply::empty(StatusCode::CREATED);
    container_headers(&mut reply, &c);
    Ok(reply)
}

pub fn get_properties(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let c = ctx
        .app
        .store
        .blobs
        .require_container(&ctx.route.account, container)?;
    let mut reply = Reply::empty(StatusCode::OK);
    container_headers(&mut reply, &c);
    reply.set_metadata(&c.metadata);
    for (name, value) in c.lease.headers(ctx.app.clock.now_ms()) {
        reply.set(name, value);
    }
    reply
        .set("x-ms-has-immutability-policy", "false")
        .set("x-ms-has-legal-hold", "false")
        .set("x-ms-default-encryption-scope", "$account-encryption-key")
        .set("x-ms-deny-encryption-scope-override", "false");
    if let Some(a) = &c.public_access {
        reply.set("x-ms-blob-public-access", a);
    }
    Ok(reply)
}

pub async fn set_metadata(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let metadata = validate::metadata(ctx.req)?;
    let pre = Preconditions::from_request(ctx.req, Access::Passive)?.for_container();
    let c = ctx
        .app
        .store
        .blobs
        .set_container_metadata(&ctx.route.account, container, metadata, &pre)
        .await?;
    let mut reply = Reply::empty(StatusCode::OK);
    container_headers(&mut reply, &c);
    Ok(reply)
}

pub fn get_acl(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let c = ctx
        .app
        .store
        .blobs
        .require_container(&ctx.route.account, container)?;
    let mut reply = Reply::xml(
        StatusCode::OK,
        crate::protocol::model::write_signed_identifiers(&c.acl),
    );
    container_headers(&mut reply, &c);
    if let Some(a) = &c.public_access {
        reply.set("x-ms-blob-public-access", a);
    }
    Ok(reply)
}

/// Replaces the public access level (absent header: private) and the stored policies.
pub async fn set_acl(ctx: &Ctx<'_>, container: &str, body: &[u8]) -> Result<Reply> {
    let access = public_access(ctx)?;
    let acl = crate::protocol::model::parse_signed_identifiers(body, "racwdxyltfmeiop")?;
    let pre = Preconditions::from_request(ctx.req, Access::Passive)?.for_container();
    let c = ctx
        .app
        .store
        .blobs
        .set_container_acl(&ctx.route.account, container, access, acl, &pre)
        .await?;
    let mut reply = Reply::empty(StatusCode::OK);
    container_headers(&mut reply, &c);
    Ok(reply)
}

pub async fn delete(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let pre = Preconditions::from_request(ctx.req, Access::Modify)?.for_container();
    ctx.app
        .store
        .blobs
        .delete_container(&ctx.route.account, container, &pre)
        .await?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// Restore Container: `x-ms-deleted-container-name` and `-version` name the soft-deleted
/// container; 201 once it is back under the request's name.
pub async fn restore(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let header = |n: &'static str| {
        ctx.req
            .header(n)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StorageError::missing_header(n))
    };
    let deleted_name = header("x-ms-deleted-container-name")?;
    let version = header("x-ms-deleted-container-version")?;
    super::validate_container_name(deleted_name)?;
    ctx.app
        .store
        .blobs
        .restore_container(&ctx.route.account, container, deleted_name, version)
        .await?;
    Ok(Reply::empty(StatusCode::CREATED))
}

fn includes(ctx: &Ctx<'_>, allowed: &[&str]) -> Result<Vec<String>> {
    let Some(raw) = ctx.req.query.get("include") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    // Azure reads the values case-insensitively (`include=Snapshots`).
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let part = part.to_ascii_lowercase();
        if !allowed.contains(&part.as_str()) {
            return Err(StorageError::invalid_query("include", raw));
        }
        out.push(part);
    }
    Ok(out)
}

/// `LeaseStatus`, `LeaseState` and, while leased, `LeaseDuration` in listings.
fn write_lease(w: &mut Writer, lease: &crate::protocol::lease::Lease, now_ms: i64) {
    for (name, value) in lease.headers(now_ms) {
        let el = match name {
            "x-ms-lease-status" => "LeaseStatus",
            "x-ms-lease-state" => "LeaseState",
            _ => "LeaseDuration",
        };
        w.elem(el, value);
    }
}

fn write_metadata(w: &mut Writer, metadata: &[(String, String)]) {
    if metadata.is_empty() {
        w.empty("Metadata");
        return;
    }
    w.open("Metadata");
    for (k, v) in metadata {
        w.elem(k, v);
    }
    w.close("Metadata");
}

pub fn list(ctx: &Ctx<'_>) -> Result<Reply> {
    let q = &ctx.req.query;
    let prefix = q.get("prefix").unwrap_or("");
    let max = int_param(ctx.req, "maxresults", None, 1, i64::MAX)?;
    let include = includes(ctx, &["metadata", "deleted", "system"])?;
    let marker = q.get("marker").filter(|m| !m.is_empty());
    let limit = max.unwrap_or(MAX_RESULTS).min(MAX_RESULTS) as usize;
    let include_deleted = include.iter().any(|i| i == "deleted");
    let (items, next) = ctx.app.store.blobs.list_containers(
        &ctx.route.account,
        prefix,
        marker,
        limit,
        include_deleted,
    )?;
    let now = ctx.app.clock.now_ms();
    let mut w = Writer::new();
    w.open_attr(
        "EnumerationResults",
        "ServiceEndpoint",
        &ctx.service_endpoint(),
    );
    if q.has("prefix") {
        w.elem("Prefix", prefix);
    }
    if let Some(m) = marker {
        w.elem("Marker", m);
    }
    if let Some(m) = max {
        w.elem("MaxResults", &m.to_string());
    }
    if items.is_empty() {
        w.empty("Containers");
    } else {
        w.open("Containers");
        for (stored, c) in &items {
            let (name, version) = crate::store::blob::split_hidden(stored);
            w.open("Container").elem("Name", name);
            if let Some(v) = version {
                w.elem("Deleted", "true").elem("Version", v);
            }
            w.open("Properties");
            w.elem("Last-Modified", &rfc1123(c.last_modified_ms))
                .elem("Etag", &c.etag);
            write_lease(&mut w, &c.lease, ctx.app.clock.now_ms());
            if let Some(a) = &c.public_access {
                w.elem("PublicAccess", a);
            }
            w.elem("DefaultEncryptionScope", "$account-encryption-key")
                .elem("DenyEncryptionScopeOverride", "false")
                .elem("HasImmutabilityPolicy", "false")
                .elem("HasLegalHold", "false");
            if let Some(d) = c.deleted {
                w.elem("DeletedTime", &rfc1123(d.deleted_ms))
                    .elem("RemainingRetentionDays", &d.remaining_days(now).to_string());
            }
            w.close("Properties");
            if include.iter().any(|i| i == "metadata") {
                write_metadata(&mut w, &c.metadata);
            }
            w.close("Container");
        }
        w.close("Containers");
    }
    match &next {
        Some(n) => w.elem("NextMarker", n),
        None => w.empty("NextMarker"),
    };
    w.close("EnumerationResults");
    Ok(Reply::xml(StatusCode::OK, w.finish()))
}

pub fn list_blobs(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let store = &ctx.app.store.blobs;
    store.require_container(&ctx.route.account, container)?;
    let q = &ctx.req.query;
    let prefix = q.get("prefix").unwrap_or("");
    let delimiter = q.get("delimiter").filter(|d| !d.is_empty());
    let max = int_param(ctx.req, "maxresults", None, 1, i64::MAX)?;
    let include = includes(
        ctx,
        &[
            "metadata",
            "snapshots",
            "uncommittedblobs",
            "copy",
            "tags",
            "deleted",
            "versions",
            "immutabilitypolicy",
            "legalhold",
            "deletedwithversions",
            "permissions",
        ],
    )?;
    let marker = q.get("marker").filter(|m| !m.is_empty());
    let limit = max.unwrap_or(MAX_RESULTS).min(MAX_RESULTS) as usize;
    let query = crate::store::blob::ListQuery {
        prefix,
        delimiter,
        marker,
        max: limit,
        include_snapshots: include.iter().any(|i| i == "snapshots"),
        include_uncommitted: include.iter().any(|i| i == "uncommittedblobs"),
        include_versions: include.iter().any(|i| i == "versions"),
        include_deleted: include.iter().any(|i| i == "deleted"),
        include_deleted_with_versions: include.iter().any(|i| i == "deletedwithversions"),
    };
    let (items, next) = store.list_blobs(&ctx.route.account, container, &query)?;
    let mut w = Writer::new();
    let endpoint = ctx.service_endpoint();
    w.raw(&format!(
        "<EnumerationResults ServiceEndpoint=\"{}\" ContainerName=\"{}\">",
        crate::protocol::xml::escape(&endpoint),
        crate::protocol::xml::escape(container)
    ));
    if q.has("prefix") {
        w.elem("Prefix", prefix);
    }
    if let Some(m) = marker {
        w.elem("Marker", m);
    }
    if let Some(m) = max {
        w.elem("MaxResults", &m.to_string());
    }
    if let Some(d) = delimiter {
        w.elem("Delimiter", d);
    }
    if items.is_empty() {
        w.empty("Blobs");
    } else {
        w.open("Blobs");
        let b64 = base64::engine::general_purpose::STANDARD;
        for item in &items {
            match item {
                ListItem::Prefix(p) => {
                    w.open("BlobPrefix").elem("Name", p).close("BlobPrefix");
                }
                ListItem::Blob(b) => {
                    let r = &b.record;
                    let p = &r.properties;
                    w.open("Blob").elem("Name", &b.name);
                    if b.has_versions_only {
                        w.elem("HasVersionsOnly", "true");
                    } else if r.deleted.is_some() {
                        w.elem("Deleted", "true");
                    }
                    if !b.snapshot.is_empty() {
                        w.elem("Snapshot", &b.snapshot);
                    }
                    if let Some(v) = &b.version_id {
                        w.elem("VersionId", v);
                    }
                    if b.is_current {
                        w.elem("IsCurrentVersion", "true");
                    }
                    w.open("Properties");
                    w.elem("Creation-Time", &rfc1123(r.created_ms))
                        .elem("Last-Modified", &rfc1123(r.last_modified_ms));
                    if let Some(e) = r.expiry_ms {
                        w.elem("Expiry-Time", &rfc1123(e));
                    }
                    w.elem("Etag", r.etag.trim_matches('"'))
                        .elem("Content-Length", &r.len().to_string())
                        .elem("Content-Type", p.reported_content_type().unwrap_or(""))
                        .elem(
                            "Content-Encoding",
                            p.content_encoding.as_deref().unwrap_or(""),
                        )
                        .elem(
                            "Content-Language",
                            p.content_language.as_deref().unwrap_or(""),
                        )
                        .elem("Content-CRC64", "")
                        .elem(
                            "Content-MD5",
                            &p.content_md5
                                .as_ref()
                                .map(|m| b64.encode(m))
                                .unwrap_or_default(),
                        )
                        .elem("Cache-Control", p.cache_control.as_deref().unwrap_or(""))
                        .elem(
                            "Content-Disposition",
                            p.content_disposition.as_deref().unwrap_or(""),
                        );
                    if r.blob_type == crate::store::blob::BlobType::Page {
                        w.elem("x-ms-blob-sequence-number", &r.sequence_number.to_string());
                    }
                    w.elem("BlobType", r.blob_type.as_str());
                    let now = ctx.app.clock.now_ms();
                    // The emulated account is a standard one: only block blobs have tiers.
                    if r.blob_type == crate::store::blob::BlobType::Block {
                        let t = r.tier.at(now);
                        w.elem("AccessTier", t.effective(now).as_str());
                        match t.changed_ms {
                            None => {
                                w.elem("AccessTierInferred", "true");
                            }
                            Some(ms) => {
                                w.elem("AccessTierChangeTime", &rfc1123(ms));
                            }
                        }
                        if let Some(status) = t.archive_status(now) {
                            w.elem("ArchiveStatus", &status);
                        }
                        if let Some(p) = t.rehydrate_priority(now) {
                            w.elem("RehydratePriority", p.as_str());
                        }
                    }
                    // Previous versions, snapshots and deleted blobs hold no lease.
                    if b.snapshot.is_empty()
                        && r.deleted.is_none()
                        && (b.is_current || b.version_id.is_none())
                    {
                        write_lease(&mut w, &r.lease, ctx.app.clock.now_ms());
                    }
                    w.elem("ServerEncrypted", "true");
                    if r.blob_type == crate::store::blob::BlobType::Append {
                        w.elem("Sealed", if r.sealed { "true" } else { "false" });
                    }
                    if !r.tags.is_empty() {
                        w.elem("TagCount", &r.tags.len().to_string());
                    }
                    if let Some(c) = &r.copy {
                        if include.iter().any(|i| i == "copy") {
                            w.elem("CopyId", &c.id)
                                .elem("CopyStatus", "success")
                                .elem("CopySource", &c.source)
                                .elem("CopyProgress", &format!("{}/{}", c.length, c.length))
                                .elem("CopyCompletionTime", &rfc1123(c.completed_ms));
                        }
                    }
                    if let Some(i) = &r.incremental {
                        w.elem("IncrementalCopy", "true");
                        if include.iter().any(|i| i == "copy") {
                            w.elem("CopyDestinationSnapshot", &i.destination_snapshot);
                        }
                    }
                    if let Some(d) = r.deleted {
                        w.elem("DeletedTime", &rfc1123(d.deleted_ms)).elem(
                            "RemainingRetentionDays",
                            &d.remaining_days(ctx.app.clock.now_ms()).to_string(),
                        );
                    }
                    w.close("Properties");
                    if include.iter().any(|i| i == "metadata") {
                        write_metadata(&mut w, &r.metadata);
                    }
                    if include.iter().any(|i| i == "tags") && !r.tags.is_empty() {
                        super::tags::write(&mut w, &r.tags);
                    }
                    w.close("Blob");
                }
            }
        }
        w.close("Blobs");
    }
    match &next {
        Some(n) => w.elem("NextMarker", n),
        None => w.empty("NextMarker"),
    };
    w.close("EnumerationResults");
    Ok(Reply::xml(StatusCode::OK, w.finish()))
}
