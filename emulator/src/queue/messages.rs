//! Messages: put, get, peek, delete, update, clear.

use crate::clock::rfc1123;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::validate::int_param;
use crate::protocol::xml::Writer;
use crate::state::Ctx;
use crate::store::MessageView;
use http::StatusCode;

const SEVEN_DAYS: i64 = 7 * 24 * 3600;
/// Largest message text, in bytes of UTF-8 after XML decoding.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Extracts `MessageText` from a `QueueMessage` document.
pub(crate) fn message_text(body: &[u8]) -> Result<String> {
    let root = crate::protocol::xml::parse(body)?;
    if root.name != "QueueMessage" {
        return Err(StorageError::xml("The root element must be QueueMessage."));
    }
    let text = root
        .child("MessageText")
        .map(|t| t.text.clone())
        .ok_or_else(|| {
            StorageError::new(ErrorCode::InvalidXmlDocument)
                .with_detail("Reason", "MessageText is missing.")
        })?;
    let limit = MAX_MESSAGE_BYTES;
    if text.len() > limit {
        return Err(StorageError::new(ErrorCode::RequestBodyTooLarge)
            .with_message(
                "The request body is too large and exceeds the maximum permissible limit.",
            )
            .with_detail("MaxLimit", limit.to_string()));
    }
    Ok(text)
}

fn write_messages(messages: &[MessageView], peek: bool) -> String {
    let mut w = Writer::new();
    if messages.is_empty() {
        return w.empty("QueueMessagesList").finish();
    }
    w.open("QueueMessagesList");
    for m in messages {
        w.open("QueueMessage")
            .elem("MessageId", &m.id)
            .elem("InsertionTime", &rfc1123(m.inserted_ms))
            .elem("ExpirationTime", &rfc1123(m.expires_ms));
        if !peek {
            w.elem("PopReceipt", &m.pop_receipt)
                .elem("TimeNextVisible", &rfc1123(m.visible_ms));
        }
        w.elem("DequeueCount", &m.dequeue_count.to_string())
            .elem("MessageText", &m.text)
            .close("QueueMessage");
    }
    w.close("QueueMessagesList").finish()
}

pub async fn put(ctx: &Ctx<'_>, queue: &str, body: &[u8]) -> Result<Reply> {
    let visibility = int_param(ctx.req, "visibilitytimeout", Some(0), 0, SEVEN_DAYS)?.unwrap_or(0);
    // Unlimited TTL (-1) and TTLs over 7 days arrived with 2017-07-29.
    let modern = ctx.version >= "2017-07-29";
    let ttl = match ctx.req.query.get("messagettl") {
        None => Some(SEVEN_DAYS),
        Some(raw) => {
            let v: i64 = raw
                .trim()
                .parse()
                .map_err(|_| StorageError::invalid_query("messagettl", raw))?;
            match v {
                -1 if modern => None,
                v if v >= 1 && (modern || v <= SEVEN_DAYS) => Some(v),
                _ if modern => return Err(StorageError::invalid_query("messagettl", raw)),
                _ => {
                    return Err(StorageError::out_of_range_query(
                        "messagettl",
                        raw,
                        1,
                        SEVEN_DAYS,
                    ))
                }
            }
        }
    };
    if let Some(t) = ttl {
        if visibility >= t {
            return Err(
                StorageError::invalid_query("visibilitytimeout", &visibility.to_string())
                    .with_message(
                        "The visibility timeout must be smaller than the message time-to-live.",
                    ),
            );
        }
    }
    let text = message_text(body)?;
    let m = ctx
        .app
        .store
        .queues
        .put_message(
            &ctx.route.account,
            queue,
            text,
            visibility * 1000,
            ttl.map(|t| t * 1000),
        )
        .await?;
    let mut w = Writer::new();
    w.open("QueueMessagesList")
        .open("QueueMessage")
        .elem("MessageId", &m.id)
        .elem("InsertionTime", &rfc1123(m.inserted_ms))
        .elem("ExpirationTime", &rfc1123(m.expires_ms))
        .elem("PopReceipt", &m.pop_receipt)
        .elem("TimeNextVisible", &rfc1123(m.visible_ms))
        .close("QueueMessage")
        .close("QueueMessagesList");
    Ok(Reply::xml(StatusCode::CREATED, w.finish()))
}

pub async fn get(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    let n = int_param(ctx.req, "numofmessages", Some(1), 1, 32)?.unwrap_or(1);
    let visibility =
        int_param(ctx.req, "visibilitytimeout", Some(30), 1, SEVEN_DAYS)?.unwrap_or(30);
    let messages = ctx
        .app
        .store
        .queues
        .get_messages(&ctx.route.account, queue, n as usize, visibility * 1000)
        .await?;
    Ok(Reply::xml(StatusCode::OK, write_messages(&messages, false)))
}

pub async fn peek(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    let n = int_param(ctx.req, "numofmessages", Some(1), 1, 32)?.unwrap_or(1);
    let messages = ctx
        .app
        .store
        .queues
        .peek_messages(&ctx.route.account, queue, n as usize)
        .await?;
    Ok(Reply::xml(StatusCode::OK, write_messages(&messages, true)))
}

pub async fn clear(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    ctx.app
        .store
        .queues
        .clear_messages(&ctx.route.account, queue)
        .await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

fn pop_receipt<'a>(ctx: &'a Ctx<'_>) -> Result<&'a str> {
    ctx.req
        .query
        .get("popreceipt")
        .ok_or_else(|| StorageError::missing_query("popreceipt"))
}

pub async fn delete(ctx: &Ctx<'_>, queue: &str) -> Result<Reply> {
    let receipt = pop_receipt(ctx)?;
    let id = ctx.route.message_id.as_deref().unwrap_or_default();
    ctx.app
        .store
        .queues
        .delete_message(&ctx.route.account, queue, id, receipt)
        .await?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

pub async fn update(ctx: &Ctx<'_>, queue: &str, body: &[u8]) -> Result<Reply> {
    let receipt = pop_receipt(ctx)?;
    let visibility = int_param(ctx.req, "visibilitytimeout", None, 0, SEVEN_DAYS)?
        .ok_or_else(|| StorageError::missing_query("visibilitytimeout"))?;
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(message_text(body)?)
    };
    let id = ctx.route.message_id.as_deref().unwrap_or_default();
    let (receipt, visible) = ctx
        .app
        .store
        .queues
        .update_message(
            &ctx.route.account,
            queue,
            id,
            receipt,
            visibility * 1000,
            text,
        )
        .await?;
    let mut reply = Reply::empty(StatusCode::NO_CONTENT);
    reply
        .set("x-ms-popreceipt", receipt)
        .set("x-ms-time-next-visible", rfc1123(visible));
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_bodies() {
        assert_eq!(
            message_text(b"<QueueMessage><MessageText>a&amp;b</MessageText></QueueMessage>")
                .ok()
                .as_deref(),
            Some("a&b")
        );
        assert_eq!(
            message_text(b"<QueueMessage><MessageText/></QueueMessage>")
                .ok()
                .as_deref(),
            Some("")
        );
        assert_eq!(
            message_text(b"<QueueMessage></QueueMessage>").map_err(|e| e.code),
            Err(ErrorCode::InvalidXmlDocument)
        );
        assert_eq!(
            message_text(b"<Other><MessageText>x</MessageText></Other>").map_err(|e| e.code),
            Err(ErrorCode::InvalidXmlDocument)
        );
        assert_eq!(
            message_text(b"garbage").map_err(|e| e.code),
            Err(ErrorCode::InvalidXmlDocument)
        );
        let exact = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(message_text(exact.as_bytes()).is_ok());
        let over = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            "x".repeat(MAX_MESSAGE_BYTES + 1)
        );
        let e = message_text(over.as_bytes()).expect_err("too big");
        assert_eq!(
            (e.code, e.status),
            (
                ErrorCode::RequestBodyTooLarge,
                StatusCode::PAYLOAD_TOO_LARGE
            )
        );
    }

    #[test]
    fn message_list_xml() {
        let m = MessageView {
            id: "id".into(),
            text: "<t>".into(),
            inserted_ms: 0,
            expires_ms: 1000,
            visible_ms: 0,
            dequeue_count: 2,
            pop_receipt: "r".into(),
        };
        let get = write_messages(std::slice::from_ref(&m), false);
        assert!(
            get.contains("<PopReceipt>r</PopReceipt>")
                && get.contains("<MessageText>&lt;t&gt;</MessageText>")
        );
        let peek = write_messages(&[m], true);
        assert!(!peek.contains("PopReceipt") && peek.contains("<DequeueCount>2</DequeueCount>"));
        assert!(write_messages(&[], true).ends_with("<QueueMessagesList />"));
    }
}
