//! Lease Blob and Lease Container, and the lease checks of data operations.

use crate::clock::rfc1123;
use crate::http::response::Reply;
use crate::protocol::error::Result;
use crate::protocol::lease::{self, Lease, Target};
use crate::state::Ctx;

fn action(ctx: &Ctx<'_>) -> Result<lease::Action> {
    lease::parse_action(&|name: &str| ctx.req.header(name).map(str::to_string))
}

/// The lease check of a write: an active lease needs its id in `x-ms-lease-id`.
pub fn check_write(ctx: &Ctx<'_>, lease: &Lease, target: Target) -> Result<()> {
    lease.check(
        ctx.req.header("x-ms-lease-id"),
        ctx.app.clock.now_ms(),
        target,
        true,
    )
}

/// Reads only check an id when one is given.
pub fn check_read(ctx: &Ctx<'_>, lease: &Lease, target: Target) -> Result<()> {
    lease.check(
        ctx.req.header("x-ms-lease-id"),
        ctx.app.clock.now_ms(),
        target,
        false,
    )
}

fn reply(ctx: &Ctx<'_>, etag: &str, last_modified_ms: i64, outcome: lease::Outcome) -> Reply {
    let mut r = Reply::empty(outcome.status);
    r.set("etag", etag)
        .set("last-modified", rfc1123(last_modified_ms));
    if let Some(id) = outcome.id {
        r.set("x-ms-lease-id", id);
    }
    if let Some(t) = outcome.time_s {
        r.set("x-ms-lease-time", t.to_string());
    }
    let _ = ctx;
    r
}

pub async fn lease_blob(ctx: &Ctx<'_>, container: &str, blob: &str) -> Result<Reply> {
    let action = action(ctx)?;
    let (record, outcome) = ctx
        .app
        .store
        .lease_blob(&ctx.route.account, container, blob, action, |r| {
            crate::protocol::conditions::check(ctx.req, Some((&r.etag, r.last_modified_ms)), false)
        })
        .await?;
    Ok(reply(ctx, &record.etag, record.last_modified_ms, outcome))
}

pub async fn lease_container(ctx: &Ctx<'_>, container: &str) -> Result<Reply> {
    let action = action(ctx)?;
    let (record, outcome) = ctx
        .app
        .store
        .lease_container(&ctx.route.account, container, action, |c| {
            crate::protocol::conditions::check(ctx.req, Some((&c.etag, c.last_modified_ms)), false)
        })
        .await?;
    Ok(reply(ctx, &record.etag, record.last_modified_ms, outcome))
}
