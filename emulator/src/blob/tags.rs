//! Blob index tags: Set/Get Blob Tags, `x-ms-tags` on writes, and Find Blobs by Tags.

use crate::clock::rfc1123;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::lease::Target;
use crate::protocol::xml::Writer;
use crate::state::Ctx;
use http::StatusCode;

pub type Tags = Vec<(String, String)>;

const MAX_TAGS: usize = 10;

fn valid_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " +-./:=_".contains(c))
}

/// The rules of Azure's blob index tags.
pub fn validate(tags: &Tags) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(StorageError::new(ErrorCode::TagsTooLarge));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() {
            return Err(StorageError::new(ErrorCode::EmptyTagName));
        }
        if k.chars().count() > 128 || v.chars().count() > 256 || !valid_chars(k) || !valid_chars(v)
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

pub async fn set(ctx: &Ctx<'_>, container: &str, blob: &str, body: &[u8]) -> Result<Reply> {
    let tags = parse_body(body)?;
    ctx.app
        .store
        .update_blob_keep_etag(&ctx.route.account, container, blob, |r| {
            super::leases::check_write(ctx, &r.lease, Target::Blob)?;
            r.tags = tags;
            Ok(())
        })
        .await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

pub fn get(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let store = &ctx.app.store;
    store.require_container(&ctx.route.account, container)?;
    let snapshot = ctx.req.query.get("snapshot").unwrap_or("");
    let r = store
        .blob(&ctx.route.account, container, blob, snapshot)?
        .ok_or_else(|| StorageError::new(ErrorCode::BlobNotFound))?;
    let mut w = Writer::new();
    write(&mut w, &r.tags);
    let mut reply = Reply::xml(StatusCode::OK, w.finish());
    reply.set("last-modified", rfc1123(r.last_modified_ms));
    Ok(reply)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    key: String,
    op: &'static str,
    value: String,
}

/// `"key" op 'value' AND ...`; `@container` is allowed at account level only.
pub(crate) fn parse_where(expr: &str, account_level: bool) -> Option<Vec<Condition>> {
    let mut out = Vec::new();
    let mut rest = expr.trim();
    loop {
        let (key, after) = if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"')?;
            (r[..end].to_string(), r[end + 1..].trim_start())
        } else if let Some(r) = rest.strip_prefix("@container") {
            if !account_level {
                return None;
            }
            ("@container".to_string(), r.trim_start())
        } else {
            let end = rest.find(|c: char| c.is_whitespace() || "=<>".contains(c))?;
            (rest[..end].to_string(), rest[end..].trim_start())
        };
        let op = [">=", "<=", "=", ">", "<"]
            .into_iter()
            .find(|o| after.starts_with(o))?;
        if key == "@container" && op != "=" {
            return None;
        }
        let after = after[op.len()..].trim_start().strip_prefix('\'')?;
        let end = after.find('\'')?;
        out.push(Condition {
            key,
            op,
            value: after[..end].to_string(),
        });
        rest = after[end + 1..].trim_start();
        if rest.is_empty() {
            break;
        }
        let upper = rest.get(..3)?.to_ascii_uppercase();
        if upper != "AND" {
            return None;
        }
        rest = rest[3..].trim_start();
    }
    (!out.is_empty() && out.len() <= MAX_TAGS + 1).then_some(out)
}

fn matches(conds: &[Condition], container: &str, tags: &[(String, String)]) -> bool {
    conds.iter().all(|c| {
        if c.key == "@container" {
            return container == c.value;
        }
        tags.iter()
            .find(|(k, _)| *k == c.key)
            .is_some_and(|(_, v)| match c.op {
                "=" => *v == c.value,
                ">" => *v > c.value,
                ">=" => *v >= c.value,
                "<" => *v < c.value,
                _ => *v <= c.value,
            })
    })
}

pub fn find(ctx: &Ctx<'_>, container: Option<&str>) -> Result<Reply> {
    let expr = ctx.req.query.get("where").unwrap_or("");
    let conds = parse_where(expr, container.is_none())
        .ok_or_else(|| StorageError::invalid_query("where", expr))?;
    let max = crate::protocol::validate::int_param(ctx.req, "maxresults", None, 1, i64::MAX)?
        .unwrap_or(5000)
        .min(5000) as usize;
    let marker = ctx.req.query.get("marker").filter(|m| !m.is_empty());
    let store = &ctx.app.store;
    if let Some(c) = container {
        store.require_container(&ctx.route.account, c)?;
    }
    let mut found = Vec::new();
    let mut next = None;
    for (cname, name, tags) in store.all_tagged_blobs(&ctx.route.account, container)? {
        let key = format!("{cname}/{name}");
        if marker.is_some_and(|m| key.as_str() < m) || !matches(&conds, &cname, &tags) {
            continue;
        }
        if found.len() == max {
            next = Some(key);
            break;
        }
        found.push((cname, name, tags));
    }
    let mut w = Writer::new();
    w.open_attr(
        "EnumerationResults",
        "ServiceEndpoint",
        &ctx.service_endpoint(),
    );
    w.elem("Where", expr);
    if found.is_empty() {
        w.empty("Blobs");
    } else {
        w.open("Blobs");
        for (cname, name, tags) in &found {
            // Only the tags the expression names are returned.
            let shown: Vec<(String, String)> = tags
                .iter()
                .filter(|(k, _)| conds.iter().any(|c| c.key == *k))
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

    #[test]
    fn expressions() {
        let c = parse_where("\"project\" = 'alpha' AND \"n\" >= '5'", false).expect("parse");
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].op, ">=");
        let tags = vec![
            ("project".to_string(), "alpha".to_string()),
            ("n".to_string(), "7".to_string()),
        ];
        assert!(matches(&c, "c1", &tags));
        assert!(!matches(
            &parse_where("\"n\" < '5'", false).expect("parse"),
            "c1",
            &tags
        ));
        assert!(parse_where("@container = 'c1' AND \"n\" = '7'", true).is_some());
        assert!(
            parse_where("@container = 'c1'", false).is_none(),
            "no @container inside a container"
        );
        assert!(parse_where("\"n\" ~ '5'", false).is_none());
        assert!(parse_where("\"n\" = '5' OR \"m\" = '1'", false).is_none());
        assert!(parse_where("", false).is_none());
    }
}
