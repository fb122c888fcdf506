//! The Queue service: one handler per operation, grouped by the resource it acts on.

pub(crate) mod messages;
mod queues;
mod service;

use crate::http::response::Reply;
use crate::protocol::error::Result;
use crate::protocol::validate;
use crate::router::QueueOp;
use crate::state::Ctx;
use bytes::Bytes;

/// Largest request body any queue operation takes (a 64 KiB message, XML-escaped).
pub const MAX_BODY: usize = 1024 * 1024;

pub async fn dispatch(ctx: &Ctx<'_>, op: &QueueOp, body: Bytes) -> Result<Reply> {
    let queue = ctx.route.queue.as_deref().unwrap_or_default();
    if !op.is_service_level() {
        validate::resource_name(queue)?;
    }
    match op {
        QueueOp::ListQueues => service::list_queues(ctx),
        QueueOp::GetServiceProperties => crate::account::get_properties(ctx),
        QueueOp::SetServiceProperties => crate::account::set_properties(ctx, &body).await,
        QueueOp::GetServiceStats => crate::account::get_stats(ctx),
        QueueOp::CreateQueue => queues::create(ctx, queue).await,
        QueueOp::DeleteQueue => queues::delete(ctx, queue).await,
        QueueOp::GetQueueMetadata => queues::get_metadata(ctx, queue),
        QueueOp::SetQueueMetadata => queues::set_metadata(ctx, queue).await,
        QueueOp::GetQueueAcl => queues::get_acl(ctx, queue),
        QueueOp::SetQueueAcl => queues::set_acl(ctx, queue, &body).await,
        QueueOp::PutMessage => messages::put(ctx, queue, &body).await,
        QueueOp::GetMessages => messages::get(ctx, queue).await,
        QueueOp::PeekMessages => messages::peek(ctx, queue).await,
        QueueOp::ClearMessages => messages::clear(ctx, queue).await,
        QueueOp::DeleteMessage => messages::delete(ctx, queue).await,
        QueueOp::UpdateMessage => messages::update(ctx, queue, &body).await,
    }
}
