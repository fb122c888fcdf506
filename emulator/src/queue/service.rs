//! Account-level queue operations of the Queue service alone: List Queues (properties and
//! stats are in `account`).

use crate::http::response::Reply;
use crate::protocol::error::{Result, StorageError};
use crate::protocol::validate::int_param;
use crate::protocol::xml::Writer;
use crate::state::Ctx;
use http::StatusCode;

const MAX_RESULTS: i64 = 5000;

pub fn list_queues(ctx: &Ctx<'_>) -> Result<Reply> {
    let q = &ctx.req.query;
    let prefix = q.get("prefix").unwrap_or("");
    let max = int_param(ctx.req, "maxresults", None, 1, i64::MAX)?;
    let include_metadata = match q.get("include") {
        None | Some("") => false,
        Some(v) if v.split(',').all(|i| i == "metadata") => true,
        Some(v) => return Err(StorageError::invalid_query("include", v)),
    };
    let account = &ctx.route.account;
    // Markers are `/account/name`; a bare name is accepted too.
    let marker = q.get("marker").filter(|m| !m.is_empty());
    let resume = marker.map(|m| m.strip_prefix(&format!("/{account}/")).unwrap_or(m));
    let limit = max.unwrap_or(MAX_RESULTS).min(MAX_RESULTS) as usize;
    let list = ctx
        .app
        .store
        .queues
        .list_queues(account, prefix, resume, limit);

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
    if list.queues.is_empty() {
        w.empty("Queues");
    } else {
        w.open("Queues");
        for (name, metadata) in &list.queues {
            w.open("Queue").elem("Name", name);
            if include_metadata {
                if metadata.is_empty() {
                    w.empty("Metadata");
                } else {
                    w.open("Metadata");
                    for (k, v) in metadata {
                        w.elem(k, v);
                    }
                    w.close("Metadata");
                }
            }
            w.close("Queue");
        }
        w.close("Queues");
    }
    match &list.next {
        Some(next) => w.elem("NextMarker", &format!("/{account}/{next}")),
        None => w.empty("NextMarker"),
    };
    w.close("EnumerationResults");
    Ok(Reply::xml(StatusCode::OK, w.finish()))
}
