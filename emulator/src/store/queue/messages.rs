//! Messages: put, get, peek, delete, update, clear.

use super::*;

impl QueueStore {
    /// `ttl_ms == None`: never expires.
    pub async fn put_message(
        &self,
        account: &str,
        name: &str,
        text: String,
        visibility_ms: i64,
        ttl_ms: Option<i64>,
    ) -> Result<MessageView> {
        let now = self.core.clock.now_ms();
        let record = MessageRecord {
            nonce: random_u64(),
            text,
            inserted_ms: now,
            expires_ms: ttl_ms.map_or(NEVER_EXPIRES_MS, |t| {
                now.saturating_add(t).min(NEVER_EXPIRES_MS)
            }),
            visible_ms: now + visibility_ms,
            dequeue_count: 0,
            pop_receipt: new_receipt(),
        };
        let view = {
            let state = self.queue_state(account, name)?;
            // Shared: puts only add keys. Clear and Delete Queue wait for them.
            let inner = state.inner.read();
            if inner.deleted {
                return Err(not_found());
            }
            let qid = inner.record.id;
            let seq = self.core.next_id().map_err(internal)?;
            self.insert(keys::message(qid, seq), encode(&record))?;
            state.index.lock().insert((record.visible_ms, seq));
            MessageView::new(seq, &record)
        };
        self.core.durable().await?;
        Ok(view)
    }

    /// Walks the messages visible at `now` in visibility order, removing expired ones on
    /// the way; `take` gets each live one and returns false to stop. The caller holds the
    /// queue exclusively, so only `take` changes the index meanwhile.
    pub(super) fn scan_visible(
        &self,
        state: &QueueState,
        qid: u64,
        now: i64,
        mut take: impl FnMut(u64, MessageRecord) -> Result<bool>,
    ) -> Result<()> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let mut expired = 0usize;
        let mut after = None;
        // `take` may move a message to a time still visible (a zero timeout); each one is
        // handed out once per call all the same.
        let mut seen = std::collections::HashSet::new();
        loop {
            let from = after.map_or(Unbounded, Excluded);
            let batch: Vec<(i64, u64)> = state
                .index
                .lock()
                .range((from, Included((now, u64::MAX))))
                .take(SCAN_BATCH)
                .copied()
                .collect();
            let Some(&last) = batch.last() else {
                return Ok(());
            };
            after = Some(last);
            for (visible, seq) in batch {
                if !seen.insert(seq) {
                    continue;
                }
                let m = match self.message(qid, seq)? {
                    Some(m) if m.visible_ms == visible => m,
                    // Cannot happen while the index follows every write; heal it anyway.
                    _ => {
                        state.index.lock().remove(&(visible, seq));
                        continue;
                    }
                };
                if m.expires_ms <= now {
                    self.remove_message(state, qid, seq, visible)?;
                    expired += 1;
                    if expired >= MAX_EXPIRED_PER_READ {
                        return Ok(());
                    }
                    continue;
                }
                if !take(seq, m)? {
                    return Ok(());
                }
            }
        }
    }

    pub async fn get_messages(
        &self,
        account: &str,
        name: &str,
        n: usize,
        visibility_ms: i64,
    ) -> Result<Vec<MessageView>> {
        let now = self.core.clock.now_ms();
        let out = self.write_queue(account, name, |state, q| {
            let qid = q.record.id;
            let mut out = Vec::with_capacity(n);
            self.scan_visible(state, qid, now, |seq, mut m| {
                let old = m.visible_ms;
                m.dequeue_count += 1;
                m.pop_receipt = new_receipt();
                m.visible_ms = now + visibility_ms;
                self.move_message(state, qid, seq, old, &m)?;
                out.push(MessageView::new(seq, &m));
                Ok(out.len() < n)
            })?;
            Ok(out)
        })?;
        if !out.is_empty() {
            self.core.durable().await?;
        }
        Ok(out)
    }

    pub async fn peek_messages(
        &self,
        account: &str,
        name: &str,
        n: usize,
    ) -> Result<Vec<MessageView>> {
        let now = self.core.clock.now_ms();
        self.write_queue(account, name, |state, q| {
            let mut out = Vec::with_capacity(n);
            self.scan_visible(state, q.record.id, now, |seq, m| {
                out.push(MessageView::new(seq, &m));
                Ok(out.len() < n)
            })?;
            Ok(out)
        })
    }

    /// Looks a message up and checks its receipt: unknown or expired → 404, stale receipt → 400.
    pub(super) fn check_receipt(
        &self,
        state: &QueueState,
        qid: u64,
        id: &str,
        receipt: &str,
        now: i64,
    ) -> Result<(u64, MessageRecord)> {
        let (seq, nonce) = parse_message_id(id)?;
        let m = match self.message(qid, seq)? {
            Some(m) if m.nonce == nonce => m,
            _ => return Err(StorageError::new(ErrorCode::MessageNotFound)),
        };
        if m.expires_ms <= now {
            self.remove_message(state, qid, seq, m.visible_ms)?;
            return Err(StorageError::new(ErrorCode::MessageNotFound));
        }
        if m.pop_receipt != receipt {
            return Err(StorageError::new(ErrorCode::PopReceiptMismatch));
        }
        Ok((seq, m))
    }

    pub async fn delete_message(
        &self,
        account: &str,
        name: &str,
        id: &str,
        receipt: &str,
    ) -> Result<()> {
        let now = self.core.clock.now_ms();
        self.write_queue(account, name, |state, q| {
            let qid = q.record.id;
            let (seq, m) = self.check_receipt(state, qid, id, receipt, now)?;
            self.remove_message(state, qid, seq, m.visible_ms)
        })?;
        self.core.durable().await
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
        let now = self.core.clock.now_ms();
        let result = self.write_queue(account, name, |state, q| {
            let qid = q.record.id;
            let (seq, mut m) = self.check_receipt(state, qid, id, receipt, now)?;
            // Visibility may end after expiry: the SDKs' spec and the service allow it (the
            // REST page says otherwise; see test_update_visibility_beyond_expiry_accepted).
            let old = m.visible_ms;
            m.visible_ms = now + visibility_ms;
            m.pop_receipt = new_receipt();
            if let Some(t) = text {
                m.text = t;
            }
            self.move_message(state, qid, seq, old, &m)?;
            Ok((m.pop_receipt, m.visible_ms))
        })?;
        self.core.durable().await?;
        Ok(result)
    }

    /// Clear is O(1): the queue gets a new internal id and the old one is purged later.
    pub async fn clear_messages(&self, account: &str, name: &str) -> Result<()> {
        self.write_queue(account, name, |state, q| {
            let old = q.record.id;
            let new = self.core.next_id().map_err(internal)?;
            let mut record = q.record.clone();
            record.id = new;
            let mut batch = sled::Batch::default();
            batch.insert(keys::queue(account, name), encode(&record));
            batch.insert(keys::purge(old), &[]);
            self.core.data.apply_batch(batch).map_err(internal)?;
            q.record = record;
            state.index.lock().clear();
            Ok(())
        })?;
        self.core.durable().await
    }
}
