//! Blob event subscriptions and the outbox of events not yet delivered (see `crate::events`
//! for what an event is). Both are records, so they survive restarts and belong to state
//! snapshots.
//!
//! At-least-once: a write that produces events puts them into the outbox (`O seq`) and
//! waits for that to be durable before it is answered; the dispatcher puts each into its
//! queue as a message, waits for that to be durable and only then removes it from the
//! outbox. A crash in between delivers it again, never loses it.

use super::codec::{decode, encode, Record};
use super::keys::{OUTBOX, SUBSCRIPTION};
use super::Core;
use crate::protocol::error::{Result, StorageError};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where events go and which: Event Grid's subscription fields, with the destination a
/// queue of this emulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    pub name: String,
    /// The account whose blobs are watched (the first account when left out).
    #[serde(default)]
    pub account: String,
    /// Only this container's blobs (Event Grid would say
    /// `subjectBeginsWith: /blobServices/default/containers/<name>/`).
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub subject_begins_with: Option<String>,
    #[serde(default)]
    pub subject_ends_with: Option<String>,
    /// `Microsoft.Storage.BlobCreated`, `...BlobDeleted`, `...BlobTierChanged` (all when
    /// left out).
    #[serde(default)]
    pub included_event_types: Vec<String>,
    /// The queue events are put into, created when the subscription is.
    pub queue: String,
    /// The queue's account (the watched account when left out).
    #[serde(default)]
    pub queue_account: String,
}

// Stored with postcard, which needs every field present: no `skip_serializing_if` here.
impl Record for Subscription {}

/// One event on its way to one queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub account: String,
    pub queue: String,
    /// The message text (the event's JSON, base64-encoded as Event Grid delivers it).
    pub text: String,
    pub created_ms: i64,
}

impl Record for Pending {}

pub struct EventStore {
    core: Core,
    subscriptions: RwLock<Arc<Vec<Subscription>>>,
    /// Whether any subscription exists: the one check a write pays without them.
    any: AtomicBool,
    /// Wakes the dispatcher when events are published.
    published: tokio::sync::Notify,
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::internal(e)
}

fn subscription_key(name: &str) -> Vec<u8> {
    let mut k = vec![SUBSCRIPTION];
    k.extend_from_slice(name.as_bytes());
    k
}

impl EventStore {
    pub(super) fn open(core: Core) -> std::result::Result<EventStore, String> {
        let store = EventStore {
            core,
            subscriptions: RwLock::new(Arc::new(Vec::new())),
            any: AtomicBool::new(false),
            published: tokio::sync::Notify::new(),
        };
        store.reload().map_err(|e| e.to_string())?;
        Ok(store)
    }

    /// Reads the subscriptions from their records (at open and after a restore).
    pub(super) fn reload(&self) -> Result<()> {
        let mut subs = Vec::new();
        for item in self.core.data.scan_prefix([SUBSCRIPTION]) {
            let (_, v) = item.map_err(internal)?;
            subs.push(decode::<Subscription>(&v).map_err(internal)?);
        }
        self.any.store(!subs.is_empty(), Ordering::Release);
        *self.subscriptions.write() = Arc::new(subs);
        Ok(())
    }

    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    pub fn subscriptions(&self) -> Arc<Vec<Subscription>> {
        self.subscriptions.read().clone()
    }

    /// Adds or replaces (by name) a subscription, durably.
    pub async fn put_subscription(&self, sub: Subscription) -> Result<()> {
        {
            let mut subs = self.subscriptions.write();
            self.core
                .data
                .insert(subscription_key(&sub.name), encode(&sub))
                .map_err(internal)?;
            let mut next: Vec<Subscription> = subs
                .iter()
                .filter(|s| s.name != sub.name)
                .cloned()
                .collect();
            next.push(sub);
            next.sort_by(|a, b| a.name.cmp(&b.name));
            self.any.store(true, Ordering::Release);
            *subs = Arc::new(next);
        }
        self.core.durable().await
    }

    /// Removes a subscription (or all, with None); false if there was none of that name.
    /// Events already in the outbox are still delivered.
    pub async fn delete_subscription(&self, name: Option<&str>) -> Result<bool> {
        let found = {
            let mut subs = self.subscriptions.write();
            let (gone, kept): (Vec<Subscription>, Vec<Subscription>) = subs
                .iter()
                .cloned()
                .partition(|s| name.is_none_or(|n| s.name == n));
            for s in &gone {
                self.core
                    .data
                    .remove(subscription_key(&s.name))
                    .map_err(internal)?;
            }
            self.any.store(!kept.is_empty(), Ordering::Release);
            *subs = Arc::new(kept);
            !gone.is_empty()
        };
        self.core.durable().await?;
        Ok(found || name.is_none())
    }

    /// Puts events into the outbox; returns once they are durable.
    pub async fn publish(&self, events: Vec<Pending>) -> Result<()> {
        for e in events {
            let seq = self.core.next_id().map_err(internal)?;
            let mut k = vec![OUTBOX];
            k.extend_from_slice(&seq.to_be_bytes());
            self.core.data.insert(k, encode(&e)).map_err(internal)?;
        }
        self.core.durable().await?;
        self.published.notify_one();
        Ok(())
    }

    /// Resolves once events have been published (since the last call).
    pub async fn published(&self) {
        self.published.notified().await
    }

    /// The oldest `n` events waiting after key `after` (from the first with None), with
    /// their keys.
    pub fn waiting(&self, after: Option<&[u8]>, n: usize) -> Result<Vec<(Vec<u8>, Pending)>> {
        // The smallest key greater than `after`.
        let start = after.map_or_else(|| vec![OUTBOX], |k| [k, &[0]].concat());
        let mut out = Vec::new();
        for item in self.core.data.range(start..).take(n) {
            let (k, v) = item.map_err(internal)?;
            if k.first() != Some(&OUTBOX) {
                break;
            }
            out.push((k.to_vec(), decode::<Pending>(&v).map_err(internal)?));
        }
        Ok(out)
    }

    /// How many events wait for delivery (for metrics).
    pub fn waiting_count(&self) -> usize {
        self.core.data.scan_prefix([OUTBOX]).count()
    }

    /// Removes a delivered (or given up) event. Its removal need not be durable: a crash
    /// before it only delivers the event again.
    pub fn done(&self, key: &[u8]) -> Result<()> {
        self.core.data.remove(key).map_err(internal)?;
        Ok(())
    }

    /// A fresh, increasing id (an event's `sequencer`).
    pub fn sequence(&self) -> Result<u64> {
        self.core.next_id().map_err(internal)
    }
}
