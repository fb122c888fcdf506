//! Queue resources: create, delete, metadata, ACL.

use crate::http::response::Reply;
use crate::protocol::error::Result;
use crate::protocol::model::{parse_signed_identifiers, write_signed_identifiers};
use crate::protocol::validate;
use crate::state::Ctx;
use crate::store::CreateOutcome;
use http::StatusCode;

pub async fn create(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    let metadata = validate::metadata(ctx.req)?;
    let status = match ctx
        .app
        .store
        .queues
        .create_queue(&ctx.route.account, queue, metadata)
        .await?
    {
        CreateOutcome::Created => StatusCode::CREATED,
        CreateOutcome::AlreadyIdentical => StatusCode::NO_CONTENT,
    };
    Ok(Reply::empty(status))
}

pub async fn delete(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    ctx.app
        .store
        .queues
        .delete_queue(&ctx.route.account, queue)
        .await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

pub fn get_metadata(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    let info = ctx.app.store.queues.queue_info(&ctx.route.account, queue)?;
    let mut reply = Reply::empty(StatusCode::OK);
    reply.set(
        "x-ms-approximate-messages-count",
        info.approximate_count.to_string(),
    );
    reply.set_metadata(&info.metadata);
    Ok(reply)
}

pub async fn set_metadata(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    let metadata = validate::metadata(ctx.req)?;
    ctx.app
        .store
        .queues
        .set_queue_metadata(&ctx.route.account, queue, metadata)
        .await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

pub fn get_acl(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    let acl = ctx.app.store.queues.queue_acl(&ctx.route.account, queue)?;
    Ok(Reply::xml(StatusCode::OK, write_signed_identifiers(&acl)))
}

pub async fn set_acl(ctx: &Ctx<'_>, queue: &str, body: &[u8]) -> Result<Reply> {
    let acl = parse_signed_identifiers(body, "raup")?;
    ctx.app
        .store
        .queues
        .set_queue_acl(&ctx.route.account, queue, acl)
        .await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}
