//! Containers: create, metadata and access policy, lease, delete (with everything in it).

use super::records::{BlobRecord, ContainerRecord, StagedBlock};
use super::{internal, keys, BlobStore};
use crate::protocol::conditions::Preconditions;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::lease::{self, Lease};
use crate::protocol::model::{Metadata, SignedIdentifier};
use crate::store::codec::{decode, encode};

pub(super) fn container_not_found() -> StorageError {
    StorageError::new(ErrorCode::ContainerNotFound)
}

impl BlobStore {
    pub fn container(&self, account: &str, container: &str) -> Result<Option<ContainerRecord>> {
        match self
            .core
            .data
            .get(keys::container(account, container))
            .map_err(internal)?
        {
            Some(v) => Ok(Some(decode(&v).map_err(internal)?)),
            None => Ok(None),
        }
    }

    pub fn require_container(&self, account: &str, container: &str) -> Result<ContainerRecord> {
        self.container(account, container)?
            .ok_or_else(container_not_found)
    }

    pub async fn create_container(
        &self,
        account: &str,
        container: &str,
        metadata: Metadata,
        public_access: Option<String>,
    ) -> Result<ContainerRecord> {
        let record = {
            let _guard = self.containers_lock.write();
            if self.container(account, container)?.is_some() {
                return Err(StorageError::new(ErrorCode::ContainerAlreadyExists));
            }
            let (now, etag) = self.bump()?;
            let record = ContainerRecord {
                metadata,
                public_access,
                acl: Vec::new(),
                etag,
                last_modified_ms: now,
                created_ms: now,
                lease: Lease::Available,
                deleted: None,
            };
            self.put_container(account, container, &record)?;
            record
        };
        self.core.durable().await?;
        Ok(record)
    }

    fn put_container(&self, account: &str, container: &str, r: &ContainerRecord) -> Result<()> {
        self.core
            .data
            .insert(keys::container(account, container), encode(r))
            .map(|_| ())
            .map_err(internal)
    }

    /// Checks `pre` on the container and applies `f` (new ETag and Last-Modified when
    /// `touch`), all under the containers lock.
    async fn change_container(
        &self,
        account: &str,
        container: &str,
        pre: &Preconditions,
        touch: bool,
        f: impl FnOnce(&mut ContainerRecord) -> Result<()>,
    ) -> Result<ContainerRecord> {
        let record = {
            let _guard = self.containers_lock.write();
            let mut record = self.require_container(account, container)?;
            pre.check(Some(record.current()), self.now())?;
            f(&mut record)?;
            if touch {
                let (now, etag) = self.bump()?;
                record.etag = etag;
                record.last_modified_ms = now;
            }
            self.put_container(account, container, &record)?;
            record
        };
        self.core.durable().await?;
        Ok(record)
    }

    pub async fn set_container_metadata(
        &self,
        account: &str,
        container: &str,
        metadata: Metadata,
        pre: &Preconditions,
    ) -> Result<ContainerRecord> {
        self.change_container(account, container, pre, true, |c| {
            c.metadata = metadata;
            Ok(())
        })
        .await
    }

    /// Replaces the public access level (None: private) and the stored access policies.
    pub async fn set_container_acl(
        &self,
        account: &str,
        container: &str,
        public_access: Option<String>,
        acl: Vec<SignedIdentifier>,
        pre: &Preconditions,
    ) -> Result<ContainerRecord> {
        self.change_container(account, container, pre, true, |c| {
            c.public_access = public_access;
            c.acl = acl;
            Ok(())
        })
        .await
    }

    /// Applies a lease action to a container (ETag unchanged).
    pub async fn lease_container(
        &self,
        account: &str,
        container: &str,
        action: lease::Action,
        pre: &Preconditions,
    ) -> Result<(ContainerRecord, lease::Outcome)> {
        let now = self.now();
        let mut outcome = None;
        let record = self
            .change_container(account, container, pre, false, |c| {
                let (lease, o) = c.lease.apply(action, now)?;
                c.lease = lease;
                outcome = Some(o);
                Ok(())
            })
            .await?;
        let outcome = outcome.ok_or_else(|| internal("lease outcome missing"))?;
        Ok((record, outcome))
    }

    /// Deletes a container and everything in it (with container soft delete on, keeps
    /// it restorable until the retention passes).
    pub async fn delete_container(
        &self,
        account: &str,
        container: &str,
        pre: &Preconditions,
    ) -> Result<()> {
        if let Some(days) = self.protection_of(account)?.container_retention_days {
            return self
                .soft_delete_container(account, container, pre, days)
                .await;
        }
        let freed = {
            let _guard = self.containers_lock.write();
            let record = self.require_container(account, container)?;
            pre.check(Some(record.current()), self.now())?;
            self.purge_container(account, container)?
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(())
    }

    /// Live blobs of `account` (current versions in live containers) and their bytes, for
    /// the metrics endpoint; a scan, stopped after `limit` records.
    pub fn usage(&self, account: &str, limit: usize) -> Result<(u64, u64)> {
        let mut scope = vec![crate::store::keys::BLOB];
        scope.extend_from_slice(account.as_bytes());
        scope.push(0);
        let (mut blobs, mut bytes) = (0u64, 0u64);
        for item in self.core.data.scan_prefix(&scope).take(limit) {
            let (k, v) = item.map_err(internal)?;
            if k.last() != Some(&0xFF) {
                continue; // a snapshot or a previous version
            }
            let in_live_container = k[scope.len()..]
                .split(|b| *b == 0)
                .next()
                .is_some_and(|c| !c.contains(&(keys::DELETED_CONTAINER as u8)));
            if !in_live_container {
                continue;
            }
            let record = decode::<BlobRecord>(&v).map_err(internal)?;
            if record.deleted.is_none() {
                blobs += 1;
                bytes += record.len();
            }
        }
        Ok((blobs, bytes))
    }

    /// Removes every container of `account`, live or soft-deleted, with all it holds (the
    /// control plane's reset; no soft delete applies). Returns how many went.
    pub async fn reset_account(&self, account: &str) -> Result<usize> {
        let (count, freed) = {
            let _guard = self.containers_lock.write();
            let scope = keys::container_prefix(account);
            let mut names = Vec::new();
            for k in self.core.data.scan_prefix(&scope).keys() {
                let k = k.map_err(internal)?;
                names.push(String::from_utf8_lossy(&k[scope.len()..]).into_owned());
            }
            let mut freed = Vec::new();
            for name in &names {
                freed.extend(self.purge_container(account, name)?);
            }
            (names.len(), freed)
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(count)
    }

    /// Removes a container (live or soft-deleted, by its stored name) and everything in
    /// it; returns the pieces to free once that is durable. Call under the containers
    /// lock, held exclusively.
    pub(super) fn purge_container(
        &self,
        account: &str,
        container: &str,
    ) -> Result<Vec<super::extents::Piece>> {
        let mut freed = Vec::new();
        let data = &self.core.data;
        data.remove(keys::container(account, container))
            .map_err(internal)?;
        for kind in [crate::store::keys::BLOB, crate::store::keys::BLOCK] {
            for item in data.scan_prefix(keys::blob_scope(kind, account, container)) {
                let (k, v) = item.map_err(internal)?;
                if kind == crate::store::keys::BLOB {
                    let record = decode::<BlobRecord>(&v).map_err(internal)?;
                    if let Some((_, _, blob, snapshot)) = keys::parse_blob_key(&k) {
                        if snapshot.is_empty() {
                            let n = super::BlobName {
                                account,
                                container,
                                blob: &blob,
                            };
                            self.unindex_tags(n, &record.tags, None)?;
                        }
                    }
                    // Bytes are shared only among the records of one blob, so every
                    // owner goes with the container, and so do the counts.
                    for p in &record.pieces {
                        data.remove(keys::refcount(p.id)).map_err(internal)?;
                    }
                    freed.extend(record.pieces);
                } else {
                    freed.extend(decode::<StagedBlock>(&v).map_err(internal)?.pieces);
                }
                data.remove(k).map_err(internal)?;
            }
        }
        for item in data.scan_prefix(keys::page_scope(account, container)) {
            let (k, v) = item.map_err(internal)?;
            let run = decode::<super::records::PageRun>(&v).map_err(internal)?;
            data.remove(keys::refcount(run.piece.id))
                .map_err(internal)?;
            freed.push(run.piece);
            data.remove(k).map_err(internal)?;
        }
        Ok(freed)
    }
}
