//! Blob events to a queue, as Azure Event Grid delivers `Microsoft.Storage.BlobCreated`,
//! `BlobDeleted` and `BlobTierChanged` to a Storage Queue subscriber: one message per
//! event, its text the event's JSON in the Event Grid schema, base64-encoded.
//!
//! A blob write that a subscription matches publishes its events into the store's outbox
//! (durable before the write is answered); `dispatcher` moves them into their queues. The
//! store keeps subscriptions and the outbox (`store::events`).

use crate::config::Config;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::router::BlobOp;
use crate::state::{AppState, Ctx};
use crate::store::blob::BlobRecord;
use crate::store::events::{Pending, Subscription};
use base64::Engine;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub const CREATED: &str = "Microsoft.Storage.BlobCreated";
pub const DELETED: &str = "Microsoft.Storage.BlobDeleted";
pub const TIER_CHANGED: &str = "Microsoft.Storage.BlobTierChanged";
const TYPES: [&str; 3] = [CREATED, DELETED, TIER_CHANGED];

/// Event Grid's default message time-to-live for a Storage Queue destination.
const MESSAGE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// Event Grid retries a delivery for a day (its default event time-to-live), then drops it.
const RETRY_FOR_MS: i64 = 24 * 3600 * 1000;

/// The event a successful operation produces, if any. Deletes and tier changes of a
/// snapshot or version produce none.
pub fn event_type(op: &BlobOp, ctx: &Ctx<'_>) -> Option<&'static str> {
    let base = ctx.req.query.get("snapshot").is_none() && ctx.req.query.get("versionid").is_none();
    match op {
        BlobOp::PutBlob
        | BlobOp::PutBlockList
        | BlobOp::CopyBlob
        | BlobOp::CopyBlobFromUrl
        | BlobOp::PutBlobFromUrl => Some(CREATED),
        BlobOp::DeleteBlob if base => Some(DELETED),
        BlobOp::SetBlobTier if base => Some(TIER_CHANGED),
        _ => None,
    }
}

/// What a blob name keeps unescaped in its URL (its `/` separate virtual folders).
const BLOB_PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn subject(container: &str, blob: &str) -> String {
    format!("/blobServices/default/containers/{container}/blobs/{blob}")
}

fn matches(sub: &Subscription, account: &str, container: &str, subject: &str, ty: &str) -> bool {
    sub.account == account
        && sub.container.as_deref().is_none_or(|c| c == container)
        && sub
            .subject_begins_with
            .as_deref()
            .is_none_or(|p| subject.starts_with(p))
        && sub
            .subject_ends_with
            .as_deref()
            .is_none_or(|p| subject.ends_with(p))
        && (sub.included_event_types.is_empty() || sub.included_event_types.iter().any(|t| t == ty))
}

/// The subscriptions an event of type `ty` on this request's blob goes to.
pub fn subscribers(ctx: &Ctx<'_>, ty: &str) -> Vec<Subscription> {
    let (Some(container), Some(blob)) = (&ctx.route.container, &ctx.route.blob) else {
        return Vec::new();
    };
    let subject = subject(container, blob);
    ctx.app
        .store
        .events
        .subscriptions()
        .iter()
        .filter(|s| matches(s, &ctx.route.account, container, &subject, ty))
        .cloned()
        .collect()
}

/// Checks and completes a subscription (defaults filled in, short type names made full).
pub fn validate(mut sub: Subscription, config: &Config) -> Result<Subscription> {
    let bad = |m: String| StorageError::new(ErrorCode::InvalidInput).with_message(m);
    if !crate::protocol::validate::control_name(&sub.name) {
        return Err(bad(
            "A subscription name is 1-64 letters, digits, '-', '_' or '.'.".into(),
        ));
    }
    if sub.account.is_empty() {
        sub.account = config
            .accounts
            .iter()
            .next()
            .map(|a| a.name.clone())
            .unwrap_or_default();
    }
    if sub.queue_account.is_empty() {
        sub.queue_account = sub.account.clone();
    }
    for a in [&sub.account, &sub.queue_account] {
        if config.accounts.get(a).is_none() {
            return Err(bad(format!("There is no account '{a}'.")));
        }
    }
    crate::protocol::validate::resource_name(&sub.queue)
        .map_err(|_| bad(format!("'{}' is not a valid queue name.", sub.queue)))?;
    if let Some(c) = &sub.container {
        crate::blob::validate_container_name(c)
            .map_err(|_| bad(format!("'{c}' is not a valid container name.")))?;
    }
    for t in sub.included_event_types.iter_mut() {
        let full = if t.contains('.') {
            t.clone()
        } else {
            format!("Microsoft.Storage.{t}")
        };
        if !TYPES.contains(&full.as_str()) {
            return Err(bad(format!(
                "'{t}' is not an event type the emulator publishes: {}.",
                TYPES.join(", ")
            )));
        }
        *t = full;
    }
    Ok(sub)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    topic: String,
    subject: String,
    event_type: &'a str,
    event_time: String,
    id: String,
    data: Data<'a>,
    data_version: &'a str,
    metadata_version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    api: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_request_id: Option<&'a str>,
    request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    e_tag: Option<String>,
    content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_length: Option<u64>,
    blob_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_tier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_tier: Option<&'a str>,
    url: String,
    sequencer: String,
    storage_diagnostics: Diagnostics,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Diagnostics {
    batch_id: String,
}

fn tier_name(r: &BlobRecord) -> &'static str {
    r.tier.tier.map_or("Default", |t| t.as_str())
}

/// Publishes the event of a successful operation to `subs`: `before` is the blob's record
/// before it (deletes and tier changes), `after` its record after (creations, tier changes).
pub async fn publish(
    ctx: &Ctx<'_>,
    ty: &str,
    subs: &[Subscription],
    reply: &Reply,
    before: Option<&BlobRecord>,
    after: Option<&BlobRecord>,
) -> Result<()> {
    let (Some(container), Some(blob)) = (&ctx.route.container, &ctx.route.blob) else {
        return Ok(());
    };
    let Some(record) = after.or(before) else {
        return Ok(());
    };
    if ty == TIER_CHANGED && before.map(tier_name) == after.map(tier_name) {
        return Ok(());
    }
    let store = &ctx.app.store;
    let encoded = percent_encoding::utf8_percent_encode(blob, BLOB_PATH);
    let request_id = if ctx.req.request_id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        ctx.req.request_id.clone()
    };
    let event = Event {
        topic: format!(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.Storage/storageAccounts/{}",
            ctx.route.account
        ),
        subject: subject(container, blob),
        event_type: ty,
        event_time: crate::clock::iso8601_7(ctx.app.clock.now_ms()),
        id: uuid::Uuid::new_v4().to_string(),
        data: Data {
            api: ctx.route.op.name(),
            client_request_id: ctx.req.header("x-ms-client-request-id"),
            request_id,
            e_tag: if ty == DELETED {
                None
            } else {
                reply
                    .headers
                    .iter()
                    .find(|(n, _)| n.as_str() == "etag")
                    .and_then(|(_, v)| v.to_str().ok())
                    .map(str::to_string)
                    .or_else(|| Some(record.etag.clone()))
            },
            content_type: record
                .properties
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            content_length: (ty != DELETED).then(|| record.len()),
            blob_type: record.blob_type.as_str(),
            access_tier: (ty != DELETED).then(|| tier_name(record)),
            previous_tier: (ty == TIER_CHANGED).then(|| before.map_or("Default", tier_name)),
            url: format!("{}{container}/{encoded}", ctx.service_endpoint()),
            sequencer: format!("{:032x}", store.events.sequence()?),
            storage_diagnostics: Diagnostics {
                batch_id: uuid::Uuid::new_v4().to_string(),
            },
        },
        data_version: "",
        metadata_version: "1",
    };
    let json = serde_json::to_string(&event).map_err(StorageError::internal)?;
    let text = base64::engine::general_purpose::STANDARD.encode(json);
    let now = ctx.app.clock.now_ms();
    store
        .events
        .publish(
            subs.iter()
                .map(|s| Pending {
                    account: s.queue_account.clone(),
                    queue: s.queue.clone(),
                    text: text.clone(),
                    created_ms: now,
                })
                .collect(),
        )
        .await
}

/// Delivers what waits in the outbox, oldest first. A queue that cannot take an event yet
/// (deleted, say) keeps it and every later one of its own for the next round, so each
/// queue gets its events in order and one missing queue holds up no other. Returns how
/// many went.
pub async fn deliver(app: &AppState) -> Result<usize> {
    let mut sent = 0;
    let mut blocked: std::collections::HashSet<(String, String)> = Default::default();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = app.store.events.waiting(after.as_deref(), 256)?;
        if batch.is_empty() {
            return Ok(sent);
        }
        for (key, p) in batch {
            after = Some(key.clone());
            let target = (p.account.clone(), p.queue.clone());
            if blocked.contains(&target) {
                continue;
            }
            match app
                .store
                .queues
                .put_message(&p.account, &p.queue, p.text, 0, Some(MESSAGE_TTL_MS))
                .await
            {
                Ok(_) => {
                    app.store.events.done(&key)?;
                    sent += 1;
                }
                Err(e) if app.clock.now_ms() - p.created_ms > RETRY_FOR_MS => {
                    tracing::warn!(queue = %p.queue, error = %e, "a blob event could not be delivered for a day: dropped");
                    app.store.events.done(&key)?;
                }
                Err(e) => {
                    tracing::debug!(queue = %p.queue, error = %e, "a blob event waits for its queue");
                    blocked.insert(target);
                }
            }
        }
    }
}

/// Delivers events as they are published, and retries every second.
pub async fn dispatcher(app: Arc<AppState>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        {
            let _gate = app.gate.read().await;
            if let Err(e) = deliver(&app).await {
                tracing::warn!(error = %e, "delivering blob events failed");
            }
        }
        tokio::select! {
            _ = app.store.events.published() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = app.clock.advanced() => {}
            _ = shutdown.changed() => return,
        }
    }
}
