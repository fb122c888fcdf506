//! Lease Blob and Lease Container. The lease checks of data operations are part of their
//! `Preconditions`.

use super::{name, pre};
use crate::clock::rfc1123;
use crate::http::response::Reply;
use crate::protocol::conditions::{Access, Preconditions};
use crate::protocol::error::Result;
use crate::protocol::lease::{self, Outcome};
use crate::state::Ctx;

fn action(ctx: &Ctx<'_>) -> Result<lease::Action> {
    lease::parse_action(&|name: &str| ctx.req.header(name).map(str::to_string))
}

/// A lease operation's conditions; its `x-ms-lease-id` is the action's, not a check.
fn lease_pre(ctx: &Ctx<'_>) -> Result<Preconditions> {
    let mut p = pre(ctx, Access::Passive)?;
    p.lease_id = None;
    Ok(p)
}

fn reply(etag: &str, last_modified_ms: i64, outcome: Outcome) -> Reply {
    let mut r = Reply::empty(outcome.status);
    r.set("etag", etag)
        .set("last-modified", rfc1123(last_modified_ms));
    if let Some(id) = outcome.id {
        r.set("x-ms-lease-id", id);
    }
    if let Some(t) = outcome.time_s {
        r.set("x-ms-lease-time", t.to_string());
    }
    r
}

pub async fn lease_blob(ctx: &Ctx<'_>) -> Result<Reply> {
    let action = action(ctx)?;
    let pre = lease_pre(ctx)?;
    let (record, outcome) = ctx
        .app
        .store
        .blobs
        .lease_blob(name(ctx), action, &pre)
        .await?;
    Ok(reply(&record.etag, record.last_modified_ms, outcome))
}

pub async fn lease_container(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let action = action(ctx)?;
    let pre = lease_pre(ctx)?.for_container();
    let (record, outcome) = ctx
        .app
        .store
        .blobs
        .lease_container(&ctx.route.account, container, action, &pre)
        .await?;
    Ok(reply(&record.etag, record.last_modified_ms, outcome))
}
