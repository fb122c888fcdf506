//! Queues and messages.
//!
//! Concurrency: the catalog (`RwLock`) maps names and ids to queue states; each queue has its
//! own mutex that serializes writes to its messages, so read-modify-write (dequeue, update,
//! delete) needs no store transactions: each operation's writes go in one atomic batch.
//! Lock order: catalog, then queue. Durability is awaited after the locks are released.

use super::keys;
use super::records::{decode, encode, MessageRecord, QueueRecord};
use super::Store;
use crate::error::{ErrorCode, Result, StorageError};
use crate::model::{metadata_equal, AccessPolicy, Metadata, SignedIdentifier};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// `Fri, 31 Dec 9999 23:59:59 GMT`: what Azure reports for messages that never expire.
pub const NEVER_EXPIRES_MS: i64 = 253_402_300_799_000;

/// Expired entries removed by one request at most; the sweeper does the rest.
const MAX_EXPIRED_PER_READ: usize = 1024;
/// Keys removed per batch by the sweeper and the purger.
const SWEEP_CHUNK: usize = 1024;

struct QueueState {
    inner: Mutex<QueueInner>,
}

struct QueueInner {
    record: QueueRecord,
    count: u64,
    deleted: bool,
}

#[derive(Default)]
pub(super) struct Catalog {
    by_name: BTreeMap<(String, String), Arc<QueueState>>,
    by_id: HashMap<u64, Arc<QueueState>>,
}

impl Catalog {
    pub(super) fn load(data: &sled::Tree) -> Result<Catalog, String> {
        let mut catalog = Catalog::default();
        for item in data.scan_prefix([keys::QUEUE]) {
            let (k, v) = item.map_err(|e| e.to_string())?;
            let (account, name) = keys::parse_queue(&k).ok_or("bad queue key")?;
            let record: QueueRecord = decode(&v).map_err(|e| e.to_string())?;
            let count = match data
                .get(keys::count(record.id))
                .map_err(|e| e.to_string())?
            {
                Some(c) => c.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0),
                None => 0,
            };
            let id = record.id;
            let state = Arc::new(QueueState {
                inner: Mutex::new(QueueInner {
                    record,
                    count,
                    deleted: false,
                }),
            });
            catalog.by_id.insert(id, state.clone());
            catalog.by_name.insert((account, name), state);
        }
        Ok(catalog)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// Existed with identical metadata.
    AlreadyIdentical,
}

#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub metadata: Metadata,
    pub approximate_count: u64,
}

#[derive(Debug, Clone)]
pub struct QueueList {
    pub queues: Vec<(String, Metadata)>,
    /// Name of the first queue of the next page.
    pub next: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MessageView {
    pub id: String,
    pub text: String,
    pub inserted_ms: i64,
    pub expires_ms: i64,
    pub visible_ms: i64,
    pub dequeue_count: u64,
    pub pop_receipt: String,
}

impl MessageView {
    fn new(id: &[u8; 16], m: &MessageRecord) -> Self {
        MessageView {
            id: uuid::Uuid::from_bytes(*id).hyphenated().to_string(),
            text: m.text.clone(),
            inserted_ms: m.inserted_ms,
            expires_ms: m.expires_ms,
            visible_ms: m.visible_ms,
            dequeue_count: m.dequeue_count,
            pop_receipt: m.pop_receipt.clone(),
        }
    }
}

fn new_receipt() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn not_found() -> StorageError {
    StorageError::new(ErrorCode::QueueNotFound)
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::internal(e)
}

fn msg_id(key_tail: &[u8]) -> Option<[u8; 16]> {
    key_tail.try_into().ok()
}

/// Parses a message id from a URL; anything that isn't one of ours simply doesn't exist.
fn parse_message_id(id: &str) -> Result<[u8; 16]> {
    uuid::Uuid::parse_str(id)
        .map(|u| *u.as_bytes())
        .map_err(|_| StorageError::new(ErrorCode::MessageNotFound))
}

impl Store {
    fn queue_state(&self, account: &str, name: &str) -> Result<Arc<QueueState>> {
        self.catalog
            .read()
            .by_name
            .get(&(account.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(not_found)
    }

    /// Runs `f` under the queue's lock, refusing queues deleted meanwhile.
    fn with_queue<T>(
        &self,
        account: &str,
        name: &str,
        f: impl FnOnce(&mut QueueInner) -> Result<T>,
    ) -> Result<T> {
        let state = self.queue_state(account, name)?;
        let mut inner = state.inner.lock();
        if inner.deleted {
            return Err(not_found());
        }
        f(&mut inner)
    }

    pub async fn create_queue(
        &self,
        account: &str,
        name: &str,
        metadata: Metadata,
    ) -> Result<CreateOutcome> {
        {
            let mut catalog = self.catalog.write();
            let key = (account.to_string(), name.to_string());
            if let Some(existing) = catalog.by_name.get(&key) {
                let inner = existing.inner.lock();
                return if metadata_equal(&inner.record.metadata, &metadata) {
                    Ok(CreateOutcome::AlreadyIdentical)
                } else {
                    Err(StorageError::new(ErrorCode::QueueAlreadyExists))
                };
            }
            let id = self.db.generate_id().map_err(internal)?;
            let record = QueueRecord {
                id,
                metadata,
                acl: Vec::new(),
                created_ms: self.clock.now_ms(),
            };
            let mut batch = sled::Batch::default();
            batch.insert(keys::queue(account, name), encode(&record));
            batch.insert(keys::count(id), &0u64.to_be_bytes());
            self.data.apply_batch(batch).map_err(internal)?;
            let state = Arc::new(QueueState {
                inner: Mutex::new(QueueInner {
                    record,
                    count: 0,
                    deleted: false,
                }),
            });
            catalog.by_id.insert(id, state.clone());
            catalog.by_name.insert(key, state);
        }
        self.durable().await?;
        Ok(CreateOutcome::Created)
    }

    pub async fn delete_queue(&self, account: &str, name: &str) -> Result<()> {
        {
            let mut catalog = self.catalog.write();
            let key = (account.to_string(), name.to_string());
            let state = catalog.by_name.get(&key).cloned().ok_or_else(not_found)?;
            let mut inner = state.inner.lock();
            let id = inner.record.id;
            // The messages go in the background (purger); the queue is gone at once.
            let mut batch = sled::Batch::default();
            batch.remove(keys::queue(account, name));
            batch.remove(keys::count(id));
            batch.insert(keys::purge(id), &[]);
            self.data.apply_batch(batch).map_err(internal)?;
            inner.deleted = true;
            catalog.by_name.remove(&key);
            catalog.by_id.remove(&id);
        }
        self.durable().await
    }

    pub fn list_queues(
        &self,
        account: &str,
        prefix: &str,
        marker: Option<&str>,
        max: usize,
    ) -> QueueList {
        let catalog = self.catalog.read();
        let from = marker.unwrap_or("").max(prefix);
        let start = (account.to_string(), from.to_string());
        let mut queues = Vec::new();
        let mut next = None;
        for ((acct, name), state) in catalog.by_name.range(start..) {
            if acct != account {
                break;
            }
            if !name.starts_with(prefix) {
                if name.as_str() > prefix {
                    break;
                }
                continue;
            }
            if queues.len() == max {
                next = Some(name.clone());
                break;
            }
            queues.push((name.clone(), state.inner.lock().record.metadata.clone()));
        }
        QueueList { queues, next }
    }

    pub fn queue_info(&self, account: &str, name: &str) -> Result<QueueInfo> {
        self.with_queue(account, name, |q| {
            Ok(QueueInfo {
                metadata: q.record.metadata.clone(),
                approximate_count: q.count,
            })
        })
    }

    pub fn queue_acl(&self, account: &str, name: &str) -> Result<Vec<SignedIdentifier>> {
        self.with_queue(account, name, |q| Ok(q.record.acl.clone()))
    }

    pub fn queue_policy(
        &self,
        account: &str,
        name: &str,
        id: &str,
    ) -> Result<Option<AccessPolicy>> {
        self.with_queue(account, name, |q| {
            Ok(q.record
                .acl
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.policy.clone()))
        })
    }

    fn update_record(
        &self,
        account: &str,
        name: &str,
        f: impl FnOnce(&mut QueueRecord),
    ) -> Result<()> {
        self.with_queue(account, name, |q| {
            let mut record = q.record.clone();
            f(&mut record);
            self.data
                .insert(keys::queue(account, name), encode(&record))
                .map_err(internal)?;
            q.record = record;
            Ok(())
        })
    }

    pub async fn set_queue_metadata(
        &self,
        account: &str,
        name: &str,
        metadata: Metadata,
    ) -> Result<()> {
        self.update_record(account, name, |r| r.metadata = metadata)?;
        self.durable().await
    }

    pub async fn set_queue_acl(
        &self,
        account: &str,
        name: &str,
        acl: Vec<SignedIdentifier>,
    ) -> Result<()> {
        self.update_record(account, name, |r| r.acl = acl)?;
        self.durable().await
    }

    /// `ttl_ms == None`: never expires.
    pub async fn put_message(
        &self,
        account: &str,
        name: &str,
        text: String,
        visibility_ms: i64,
        ttl_ms: Option<i64>,
    ) -> Result<MessageView> {
        let now = self.clock.now_ms();
        let id = *uuid::Uuid::new_v4().as_bytes();
        let seq = self.db.generate_id().map_err(internal)?;
        let record = MessageRecord {
            seq,
            text,
            inserted_ms: now,
            expires_ms: ttl_ms.map_or(NEVER_EXPIRES_MS, |t| {
                now.saturating_add(t).min(NEVER_EXPIRES_MS)
            }),
            visible_ms: now + visibility_ms,
            dequeue_count: 0,
            pop_receipt: new_receipt(),
        };
        let view = self.with_queue(account, name, |q| {
            let qid = q.record.id;
            let mut batch = sled::Batch::default();
            batch.insert(keys::message(qid, &id), encode(&record));
            batch.insert(keys::visible(qid, record.visible_ms, seq), &id);
            if record.expires_ms != NEVER_EXPIRES_MS {
                batch.insert(keys::expiry(record.expires_ms, qid, &id), &[]);
            }
            batch.insert(keys::count(qid), &(q.count + 1).to_be_bytes());
            self.data.apply_batch(batch).map_err(internal)?;
            q.count += 1;
            Ok(MessageView::new(&id, &record))
        })?;
        self.durable().await?;
        Ok(view)
    }

    /// Removes an expired message's keys into `batch`.
    fn remove_message(batch: &mut sled::Batch, qid: u64, id: &[u8; 16], m: &MessageRecord) {
        batch.remove(keys::message(qid, id));
        batch.remove(keys::visible(qid, m.visible_ms, m.seq));
        if m.expires_ms != NEVER_EXPIRES_MS {
            batch.remove(keys::expiry(m.expires_ms, qid, id));
        }
    }

    /// Walks the visible messages in visibility order, dropping expired ones on the way.
    /// `take` decides what to do with each live one and returns false to stop.
    fn scan_visible(
        &self,
        q: &mut QueueInner,
        now: i64,
        batch: &mut sled::Batch,
        mut take: impl FnMut(&[u8; 16], MessageRecord, &mut sled::Batch) -> bool,
    ) -> Result<()> {
        let qid = q.record.id;
        let mut expired = 0usize;
        for item in self
            .data
            .range(keys::visible_from(qid)..keys::visible_until(qid, now))
        {
            let (k, v) = item.map_err(internal)?;
            let Some(id) = msg_id(&v) else {
                batch.remove(k);
                continue;
            };
            let Some(raw) = self.data.get(keys::message(qid, &id)).map_err(internal)? else {
                batch.remove(k);
                continue;
            };
            let m: MessageRecord = decode(&raw).map_err(internal)?;
            if m.expires_ms <= now {
                Self::remove_message(batch, qid, &id, &m);
                q.count = q.count.saturating_sub(1);
                expired += 1;
                if expired >= MAX_EXPIRED_PER_READ {
                    break;
                }
                continue;
            }
            if !take(&id, m, batch) {
                break;
            }
        }
        if expired > 0 {
            batch.insert(keys::count(qid), &q.count.to_be_bytes());
        }
        Ok(())
    }

    pub async fn get_messages(
        &self,
        account: &str,
        name: &str,
        n: usize,
        visibility_ms: i64,
    ) -> Result<Vec<MessageView>> {
        let now = self.clock.now_ms();
        let out = self.with_queue(account, name, |q| {
            let qid = q.record.id;
            let mut out = Vec::with_capacity(n);
            let mut batch = sled::Batch::default();
            self.scan_visible(q, now, &mut batch, |id, mut m, batch| {
                batch.remove(keys::visible(qid, m.visible_ms, m.seq));
                m.dequeue_count += 1;
                m.pop_receipt = new_receipt();
                m.visible_ms = now + visibility_ms;
                batch.insert(keys::visible(qid, m.visible_ms, m.seq), id);
                batch.insert(keys::message(qid, id), encode(&m));
                out.push(MessageView::new(id, &m));
                out.len() < n
            })?;
            self.data.apply_batch(batch).map_err(internal)?;
            Ok(out)
        })?;
        if !out.is_empty() {
            self.durable().await?;
        }
        Ok(out)
    }

    pub async fn peek_messages(
        &self,
        account: &str,
        name: &str,
        n: usize,
    ) -> Result<Vec<MessageView>> {
        let now = self.clock.now_ms();
        let mut cleaned = false;
        let out = self.with_queue(account, name, |q| {
            let mut out = Vec::with_capacity(n);
            let mut batch = sled::Batch::default();
            let before = q.count;
            self.scan_visible(q, now, &mut batch, |id, m, _| {
                out.push(MessageView::new(id, &m));
                out.len() < n
            })?;
            cleaned = q.count != before;
            self.data.apply_batch(batch).map_err(internal)?;
            Ok(out)
        })?;
        if cleaned {
            self.durable().await?;
        }
        Ok(out)
    }

    /// Looks a message up and checks its receipt: unknown or expired → 404, stale receipt → 400.
    fn check_receipt(
        &self,
        q: &QueueInner,
        id: &[u8; 16],
        receipt: &str,
        now: i64,
    ) -> Result<MessageRecord> {
        let raw = self
            .data
            .get(keys::message(q.record.id, id))
            .map_err(internal)?
            .ok_or_else(|| StorageError::new(ErrorCode::MessageNotFound))?;
        let m: MessageRecord = decode(&raw).map_err(internal)?;
        if m.expires_ms <= now {
            return Err(StorageError::new(ErrorCode::MessageNotFound));
        }
        if m.pop_receipt != receipt {
            return Err(StorageError::new(ErrorCode::PopReceiptMismatch));
        }
        Ok(m)
    }

    pub async fn delete_message(
        &self,
        account: &str,
        name: &str,
        id: &str,
        receipt: &str,
    ) -> Result<()> {
        let id = parse_message_id(id)?;
        let now = self.clock.now_ms();
        self.with_queue(account, name, |q| {
            let m = self.check_receipt(q, &id, receipt, now)?;
            let mut batch = sled::Batch::default();
            Self::remove_message(&mut batch, q.record.id, &id, &m);
            q.count = q.count.saturating_sub(1);
            batch.insert(keys::count(q.record.id), &q.count.to_be_bytes());
            self.data.apply_batch(batch).map_err(internal)
        })?;
        self.durable().await
    }

    /// Returns the new pop receipt and next-visible time.
    pub async fn update_message(
        &self,
        account: &str,
        name: &str,
        id: &str,
        receipt: &str,
        visibility_ms: i64,
        text: Option<String>,
    ) -> Result<(String, i64)> {
        let id = parse_message_id(id)?;
        let now = self.clock.now_ms();
        let result = self.with_queue(account, name, |q| {
            let qid = q.record.id;
            let mut m = self.check_receipt(q, &id, receipt, now)?;
            let mut batch = sled::Batch::default();
            batch.remove(keys::visible(qid, m.visible_ms, m.seq));
            m.visible_ms = now + visibility_ms;
            m.pop_receipt = new_receipt();
            if let Some(t) = text {
                m.text = t;
            }
            batch.insert(keys::visible(qid, m.visible_ms, m.seq), &id);
            batch.insert(keys::message(qid, &id), encode(&m));
            self.data.apply_batch(batch).map_err(internal)?;
            Ok((m.pop_receipt, m.visible_ms))
        })?;
        self.durable().await?;
        Ok(result)
    }

    /// Clear is O(1): the queue gets a new internal id and the old one is purged later.
    pub async fn clear_messages(&self, account: &str, name: &str) -> Result<()> {
        {
            let mut catalog = self.catalog.write();
            let state = catalog
                .by_name
                .get(&(account.to_string(), name.to_string()))
                .cloned()
                .ok_or_else(not_found)?;
            let mut inner = state.inner.lock();
            let old = inner.record.id;
            let new = self.db.generate_id().map_err(internal)?;
            let mut record = inner.record.clone();
            record.id = new;
            let mut batch = sled::Batch::default();
            batch.insert(keys::queue(account, name), encode(&record));
            batch.remove(keys::count(old));
            batch.insert(keys::count(new), &0u64.to_be_bytes());
            batch.insert(keys::purge(old), &[]);
            self.data.apply_batch(batch).map_err(internal)?;
            inner.record = record;
            inner.count = 0;
            catalog.by_id.remove(&old);
            catalog.by_id.insert(new, state.clone());
        }
        self.durable().await
    }

    /// Removes messages that expired by `now`. Returns how many were removed.
    pub fn sweep_expired(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        let mut removed = 0;
        loop {
            let mut due: Vec<(sled::IVec, u64, [u8; 16])> = Vec::new();
            for item in self
                .data
                .range(vec![keys::EXPIRY]..keys::expiry(now.saturating_add(1), 0, &[0; 16]))
                .take(SWEEP_CHUNK)
            {
                let (k, _) = item.map_err(internal)?;
                if let Some((qid, id)) = keys::parse_expiry(&k) {
                    due.push((k, qid, id));
                }
            }
            if due.is_empty() {
                return Ok(removed);
            }
            let mut by_queue: HashMap<u64, Vec<(sled::IVec, [u8; 16])>> = HashMap::new();
            for (k, qid, id) in due {
                by_queue.entry(qid).or_default().push((k, id));
            }
            for (qid, entries) in by_queue {
                let state = self.catalog.read().by_id.get(&qid).cloned();
                let mut batch = sled::Batch::default();
                match state {
                    Some(state) => {
                        let mut inner = state.inner.lock();
                        let live = !inner.deleted && inner.record.id == qid;
                        for (k, id) in &entries {
                            batch.remove(k.clone());
                            if !live {
                                continue;
                            }
                            if let Some(raw) =
                                self.data.get(keys::message(qid, id)).map_err(internal)?
                            {
                                let m: MessageRecord = decode(&raw).map_err(internal)?;
                                Self::remove_message(&mut batch, qid, id, &m);
                                inner.count = inner.count.saturating_sub(1);
                                removed += 1;
                            }
                        }
                        if live {
                            batch.insert(keys::count(qid), &inner.count.to_be_bytes());
                        }
                        self.data.apply_batch(batch).map_err(internal)?;
                    }
                    // A deleted or cleared queue: the purger owns its messages.
                    None => {
                        for (k, _) in &entries {
                            batch.remove(k.clone());
                        }
                        self.data.apply_batch(batch).map_err(internal)?;
                    }
                }
            }
        }
    }

    /// Removes the messages of deleted and cleared queues, a chunk at a time.
    pub fn purge_orphans(&self) -> Result<usize> {
        let mut removed = 0;
        let pending: Vec<u64> = self
            .data
            .scan_prefix([keys::PURGE])
            .keys()
            .filter_map(|k| k.ok().and_then(|k| keys::parse_qid_tail(&k)))
            .collect();
        for qid in pending {
            for kind in [keys::MESSAGE, keys::VISIBLE] {
                loop {
                    let mut batch = sled::Batch::default();
                    let mut n = 0;
                    for k in self
                        .data
                        .scan_prefix(keys::qid_prefix(kind, qid))
                        .keys()
                        .take(SWEEP_CHUNK)
                    {
                        batch.remove(k.map_err(internal)?);
                        n += 1;
                    }
                    if n == 0 {
                        break;
                    }
                    self.data.apply_batch(batch).map_err(internal)?;
                    if kind == keys::MESSAGE {
                        removed += n;
                    }
                }
            }
            self.data.remove(keys::purge(qid)).map_err(internal)?;
        }
        Ok(removed)
    }

    /// Queue names of an account (for tests and diagnostics).
    pub fn queue_count(&self) -> usize {
        self.catalog.read().by_name.len()
    }
}
