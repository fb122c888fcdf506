//! Blob index tags: Set/Get Blob Tags, `x-ms-tags` on writes, and Find Blobs by Tags.

use super::{name, pre, snapshot_param};
use crate::clock::rfc1123;
use crate::http::response::Reply;
use crate::protocol::conditions::Access;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::tags::{self as expr, valid_tag_chars, Dialect};
use crate::protocol::xml::Writer;
use crate::state::Ctx;
use http::StatusCode;

pub type Tags = Vec<(String, String)>;

const MAX_TAGS: usize = 10;

/// The rules of Azure's blob index tags.
pub fn validate(tags: &Tags) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(StorageError::new(ErrorCode::TagsTooLarge));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() {
            return Err(StorageError::new(ErrorCode::EmptyTagName));
        }
        if k.chars().count() > 128
            || v.chars().count() > 256
            || !valid_tag_chars(k)
            || !valid_tag_chars(v)
        {
            return Err(StorageError::new(ErrorCode::InvalidTag));
        }
        if tags[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(StorageError::new(ErrorCode::DuplicateTagNames));
        }
    }
    Ok(())
}

/// `x-ms-tags: k=v&k2=v2` (URL-encoded).
pub fn from_header(ctx: &Ctx<'_>) -> Result<Option<Tags>> {
    let Some(raw) = ctx.req.header("x-ms-tags") else {
        return Ok(None);
    };
    let tags: Tags = form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    validate(&tags).map_err(|e| e.with_detail("HeaderName", "x-ms-tags"))?;
    Ok(Some(tags))
}

pub(crate) fn parse_body(body: &[u8]) -> Result<Tags> {
    let root = crate::protocol::xml::parse(body)?;
    if root.name != "Tags" {
        return Err(StorageError::xml("The root element must be Tags."));
    }
    let mut tags = Tags::new();
    if let Some(set) = root.child("TagSet") {
        for t in set.children_named("Tag") {
            let key = t.child_text("Key").unwrap_or("").to_string();
            let value = t.child_text("Value").unwrap_or("").to_string();
            tags.push((key, value));
        }
    }
    validate(&tags)?;
    Ok(tags)
}

pub fn write(w: &mut Writer, tags: &[(String, String)]) {
    w.open("Tags");
    if tags.is_empty() {
        w.empty("TagSet");
    } else {
        w.open("TagSet");
        for (k, v) in tags {
            w.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
        }
        w.close("TagSet");
    }
    w.close("Tags");
}

/// Tags on snapshots (and versions) arrived with 2020-08-04.
fn check_snapshot(ctx: &Ctx<'_>) -> Result<()> {
    let q = &ctx.req.query;
    for param in ["snapshot", "versionid"] {
        if let Some(v) = q.get(param).filter(|v| !v.is_empty()) {
            if ctx.version < "2020-08-04" {
                return Err(StorageError::invalid_query(param, v)
                    .with_message("Blob tags on a snapshot need version 2020-08-04 or later."));
            }
        }
    }
    Ok(())
}

pub async fn set(ctx: &Ctx<'_>, body: &[u8]) -> Result<Reply> {
    check_snapshot(ctx)?;
    let tags = parse_body(body)?;
    // Set Blob Tags takes the lease and the tag condition, not the HTTP conditions.
    let pre = pre(ctx, Access::Modify)?.lease_only();
    ctx.app
        .store
        .blobs
        .set_blob_tags(name(ctx), &snapshot_param(ctx), tags, &pre)
        .await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

pub fn get(ctx: &Ctx<'_>) -> Result<Reply> {
    check_snapshot(ctx)?;
    let pre = pre(ctx, Access::Read)?.lease_only();
    let r = ctx
        .app
        .store
        .blobs
        .read_blob(name(ctx), &snapshot_param(ctx), &pre)?;
    let mut w = Writer::new();
    write(&mut w, &r.tags);
    let mut reply = Reply::xml(StatusCode::OK, w.finish());
    reply.set("last-modified", rfc1123(r.last_modified_ms));
    Ok(reply)
}

pub fn find(ctx: &Ctx<'_>, container: Option<&str>) -> Result<Reply> {
    let raw = ctx.req.query.get("where").unwrap_or("");
    let dialect = Dialect::Find {
        account_level: container.is_none(),
    };
    let expr = expr::parse(raw, dialect)
        .map_err(|e| StorageError::invalid_query("where", raw).with_message(e.to_string()))?;
    let max = crate::protocol::validate::int_param(ctx.req, "maxresults", None, 1, i64::MAX)?
        .unwrap_or(5000)
        .min(5000) as usize;
    let marker = ctx.req.query.get("marker").filter(|m| !m.is_empty());
    let store = &ctx.app.store.blobs;
    if let Some(c) = container {
        store.require_container(&ctx.route.account, c)?;
    }
    let (found, next) = store.find_by_tags(&ctx.route.account, container, &expr, marker, max)?;
    let keys = expr.keys();
    let mut w = Writer::new();
    w.open_attr(
        "EnumerationResults",
        "ServiceEndpoint",
        &ctx.service_endpoint(),
    );
    w.elem("Where", raw);
    if found.is_empty() {
        w.empty("Blobs");
    } else {
        w.open("Blobs");
        for (cname, name, tags) in &found {
            // Only the tags the expression names are returned.
            let shown: Vec<(String, String)> = tags
                .iter()
                .filter(|(k, _)| keys.contains(&k.as_str()))
                .cloned()
                .collect();
            w.open("Blob")
                .elem("Name", name)
                .elem("ContainerName", cname);
            write(&mut w, &shown);
            w.close("Blob");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        let t = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Tags>()
        };
        assert!(validate(&t(&[("project", "alpha"), ("a b+-./:=_", "")])).is_ok());
        assert_eq!(
            validate(&t(&[("", "x")])).map_err(|e| e.code),
            Err(ErrorCode::EmptyTagName)
        );
        assert_eq!(
            validate(&t(&[("a", "1"), ("a", "2")])).map_err(|e| e.code),
            Err(ErrorCode::DuplicateTagNames)
        );
        assert_eq!(
            validate(&t(&[("bad!", "x")])).map_err(|e| e.code),
            Err(ErrorCode::InvalidTag)
        );
        assert_eq!(
            validate(&t(&[(&"k".repeat(129), "x")])).map_err(|e| e.code),
            Err(ErrorCode::InvalidTag)
        );
        let eleven: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(
            validate(&eleven).map_err(|e| e.code),
            Err(ErrorCode::TagsTooLarge)
        );
    }
}
