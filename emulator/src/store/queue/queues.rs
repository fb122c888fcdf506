//! Queues: create, delete, list, metadata and access policies.

use super::*;

impl QueueStore {
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
                let inner = existing.inner.read();
                return if metadata_equal(&inner.record.metadata, &metadata) {
                    Ok(CreateOutcome::AlreadyIdentical)
                } else {
                    Err(StorageError::new(ErrorCode::QueueAlreadyExists))
                };
            }
            let id = self.core.next_id().map_err(internal)?;
            let record = QueueRecord {
                id,
                metadata,
                acl: Vec::new(),
                created_ms: self.core.clock.now_ms(),
            };
            self.insert(keys::queue(account, name), encode(&record))?;
            catalog
                .by_name
                .insert(key, QueueState::new(record, BTreeSet::new()));
        }
        self.core.durable().await?;
        Ok(CreateOutcome::Created)
    }

    pub async fn delete_queue(&self, account: &str, name: &str) -> Result<()> {
        {
            let mut catalog = self.catalog.write();
            let key = (account.to_string(), name.to_string());
            let state = catalog.by_name.get(&key).cloned().ok_or_else(not_found)?;
            let mut inner = state.inner.write();
            // The messages go in the background (purger); the queue is gone at once.
            let mut batch = sled::Batch::default();
            batch.remove(keys::queue(account, name));
            batch.insert(keys::purge(inner.record.id), &[]);
            self.core.data.apply_batch(batch).map_err(internal)?;
            inner.deleted = true;
            state.index.lock().clear();
            catalog.by_name.remove(&key);
        }
        self.core.durable().await
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
            if acct != account || !name.starts_with(prefix) {
                break;
            }
            if queues.len() == max {
                next = Some(name.clone());
                break;
            }
            queues.push((name.clone(), state.inner.read().record.metadata.clone()));
        }
        QueueList { queues, next }
    }

    pub(super) fn read_queue<T>(
        &self,
        account: &str,
        name: &str,
        f: impl FnOnce(&QueueState, &QueueRecord) -> T,
    ) -> Result<T> {
        let state = self.queue_state(account, name)?;
        let inner = state.inner.read();
        if inner.deleted {
            return Err(not_found());
        }
        Ok(f(&state, &inner.record))
    }

    pub fn queue_info(&self, account: &str, name: &str) -> Result<QueueInfo> {
        self.read_queue(account, name, |s, r| QueueInfo {
            metadata: r.metadata.clone(),
            approximate_count: s.count(),
        })
    }

    pub fn queue_acl(&self, account: &str, name: &str) -> Result<Vec<SignedIdentifier>> {
        self.read_queue(account, name, |_, r| r.acl.clone())
    }

    pub fn queue_policy(
        &self,
        account: &str,
        name: &str,
        id: &str,
    ) -> Result<Option<AccessPolicy>> {
        self.read_queue(account, name, |_, r| {
            r.acl.iter().find(|s| s.id == id).map(|s| s.policy.clone())
        })
    }

    /// Runs `f` with the queue locked exclusively.
    pub(super) fn write_queue<T>(
        &self,
        account: &str,
        name: &str,
        f: impl FnOnce(&QueueState, &mut QueueInner) -> Result<T>,
    ) -> Result<T> {
        let state = self.queue_state(account, name)?;
        let mut inner = state.inner.write();
        if inner.deleted {
            return Err(not_found());
        }
        f(&state, &mut inner)
    }

    pub(super) fn update_record(
        &self,
        account: &str,
        name: &str,
        f: impl FnOnce(&mut QueueRecord),
    ) -> Result<()> {
        self.write_queue(account, name, |_, q| {
            let mut record = q.record.clone();
            f(&mut record);
            self.insert(keys::queue(account, name), encode(&record))?;
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
        self.core.durable().await
    }

    pub async fn set_queue_acl(
        &self,
        account: &str,
        name: &str,
        acl: Vec<SignedIdentifier>,
    ) -> Result<()> {
        self.update_record(account, name, |r| r.acl = acl)?;
        self.core.durable().await
    }
}
