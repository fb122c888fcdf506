//! Versions and soft delete: what a write does with the record it replaces, and a delete
//! with the record it removes, when the account keeps versions or deleted data; who owns
//! the bytes then; Undelete Blob. Layout and byte ownership are in docs/design.md.

use super::extents::Piece;
use super::pages::RefDelta;
use super::records::{snapshot_id, BlobRecord, BlobType, Deletion};
use super::{internal, keys, BlobName, BlobStore};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::store::codec::{decode, encode, Record};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The settings Azure keeps in the management plane, which this emulator takes as flags
/// (`--blobVersioning`, `--containerSoftDeleteDays`) or per account from the admin
/// endpoint (stored, so they survive restarts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    pub versioning: bool,
    /// Container soft delete: days a deleted container stays restorable (None: off).
    pub container_retention_days: Option<u32>,
}

impl Record for Features {}

/// An account's data protection as its settings stand now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protection {
    pub versioning: bool,
    /// Blob soft delete (`DeleteRetentionPolicy`): days deleted data is kept.
    pub blob_retention_days: Option<u32>,
    pub allow_permanent_delete: bool,
    pub container_retention_days: Option<u32>,
}

impl Protection {
    /// The deletion mark of something deleted now, if soft delete keeps it.
    pub fn blob_deletion(&self, now_ms: i64) -> Option<Deletion> {
        self.blob_retention_days
            .map(|d| Deletion::after_days(now_ms, d))
    }
}

/// Who else owns the bytes of record pieces. A piece named by one record (or one staged
/// block) has no `R` key; once versions or snapshots share it, `R id` counts the records
/// naming it (at least 2). Changes are collected per operation and applied in its batch.
#[derive(Default)]
pub(super) struct Owners(HashMap<u64, (i64, Piece)>);

impl Owners {
    /// One more (`d` = 1) or one less (`d` = -1) record owns each distinct piece.
    pub(super) fn add(&mut self, pieces: &[Piece], d: i64) {
        let mut seen = HashSet::new();
        for p in pieces {
            if seen.insert(p.id) {
                self.0.entry(p.id).or_insert((0, *p)).0 += d;
            }
        }
    }
}

/// Pieces of `a` whose bytes `b` also names.
fn common(a: &[Piece], b: &[Piece]) -> Vec<Piece> {
    let in_b: HashSet<_> = b.iter().map(|p| p.id).collect();
    a.iter().filter(|p| in_b.contains(&p.id)).copied().collect()
}

/// What becomes of a live record that a write replaces or a delete removes.
#[derive(Debug)]
pub(super) enum Retire {
    /// Gone (its bytes released).
    Drop,
    /// Kept at `slot`: a previous version, or a soft-deleted snapshot or blob.
    Keep {
        slot: String,
        deleted: Option<Deletion>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    Overwrite,
    Delete,
}

impl BlobStore {
    /// The default features (from the flags), for accounts the admin endpoint never set.
    pub fn set_default_features(&self, f: Features) {
        *self.default_features.write() = f;
        self.protection.write().clear();
    }

    pub fn features(&self, account: &str) -> Result<Features> {
        match self
            .core
            .data
            .get(crate::store::keys::service(account, "emulator-features"))
            .map_err(internal)?
        {
            Some(v) => decode(&v).map_err(internal),
            None => Ok(*self.default_features.read()),
        }
    }

    pub async fn set_features(&self, account: &str, f: Features) -> Result<()> {
        self.core
            .data
            .insert(
                crate::store::keys::service(account, "emulator-features"),
                encode(&f),
            )
            .map_err(internal)?;
        self.forget_protection(account);
        self.core.durable().await
    }

    pub fn forget_protection(&self, account: &str) {
        self.protection.write().remove(account);
    }

    pub fn protection_of(&self, account: &str) -> Result<Protection> {
        if let Some(p) = self.protection.read().get(account) {
            return Ok(*p);
        }
        let f = self.features(account)?;
        let props = crate::store::load_service_properties(&self.core.data, account, "blob")?;
        let p = Protection {
            versioning: f.versioning,
            blob_retention_days: props
                .delete_retention
                .days
                .filter(|_| props.delete_retention.enabled),
            allow_permanent_delete: props.allow_permanent_delete,
            container_retention_days: f.container_retention_days,
        };
        self.protection.write().insert(account.to_string(), p);
        Ok(p)
    }

    /// Any record at `slot`, soft-deleted or expired ones included.
    pub(super) fn blob_raw(&self, n: BlobName<'_>, slot: &str) -> Result<Option<BlobRecord>> {
        match self
            .core
            .data
            .get(keys::blob(n.account, n.container, n.blob, slot))
            .map_err(internal)?
        {
            Some(v) => Ok(Some(decode(&v).map_err(internal)?)),
            None => Ok(None),
        }
    }

    /// A record the service shows: not soft-deleted, and (a base blob) not expired.
    pub(super) fn is_live(record: &BlobRecord, slot: &str, now_ms: i64) -> bool {
        record.deleted.is_none()
            && !(slot.is_empty() && record.expiry_ms.is_some_and(|e| e <= now_ms))
    }

    /// A version id no record of the blob has yet (call under its lock), not in `taken`.
    pub(super) fn fresh_version_id(&self, n: BlobName<'_>, taken: &[&str]) -> Result<String> {
        let now = self.now();
        let mut tick = 0;
        loop {
            let id = snapshot_id(now, tick);
            if !taken.contains(&id.as_str())
                && self.blob_raw(n, &keys::version_slot(&id))?.is_none()
            {
                return Ok(id);
            }
            tick += 1;
        }
    }

    /// Where a live base record goes when replaced or deleted: with versioning, it
    /// becomes a previous version; with soft delete, an overwrite keeps it as a
    /// soft-deleted snapshot and a delete marks it where it is.
    pub(super) fn retire(
        &self,
        p: &Protection,
        n: BlobName<'_>,
        old: &BlobRecord,
        why: Why,
    ) -> Result<Retire> {
        let now = self.now();
        if p.versioning {
            let id = match &old.version_id {
                Some(id) => id.clone(),
                // Written before versioning was on: its version is named after its last
                // write.
                None => {
                    let id = snapshot_id(old.last_modified_ms, 0);
                    if self.blob_raw(n, &keys::version_slot(&id))?.is_none() {
                        id
                    } else {
                        self.fresh_version_id(n, &[])?
                    }
                }
            };
            return Ok(Retire::Keep {
                slot: keys::version_slot(&id),
                deleted: None,
            });
        }
        match (p.blob_deletion(now), why) {
            (None, _) => Ok(Retire::Drop),
            (Some(d), Why::Overwrite) => Ok(Retire::Keep {
                slot: self.fresh_snapshot_id(n)?,
                deleted: Some(d),
            }),
            (Some(d), Why::Delete) => Ok(Retire::Keep {
                slot: String::new(),
                deleted: Some(d),
            }),
        }
    }

    /// What a write that replaces the base blob does, in `batch`, with what is at the base
    /// key (`raw`; `current` when it is live): keeps it (`retire`; soft-deleted data is
    /// moved aside as a soft-deleted snapshot) or drops it (its page runs, and its share of
    /// every piece `reused` does not take over; `reused`: the new record's pieces that come
    /// from it). Returns the new record's version id (with versioning) and what was dropped.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn replace_base(
        &self,
        batch: &mut sled::Batch,
        owners: &mut Owners,
        delta: &mut RefDelta,
        p: &Protection,
        n: BlobName<'_>,
        current: Option<&BlobRecord>,
        raw: Option<BlobRecord>,
        reused: &[Piece],
    ) -> Result<(Option<String>, Option<BlobRecord>)> {
        let mut kept_version = None;
        let dropped = match (current, raw) {
            (Some(c), _) => match self.retire(p, n, c, Why::Overwrite)? {
                Retire::Keep { slot, deleted } => {
                    // The kept record still owns its bytes: what the new one reuses is
                    // shared.
                    owners.add(&common(reused, &c.pieces), 1);
                    kept_version = keys::slot_version(&slot).map(str::to_string);
                    self.keep(batch, n, "", &slot, c.clone(), deleted)?;
                    None
                }
                Retire::Drop => Some(c.clone()),
            },
            (None, Some(old)) if old.deleted.is_some() => {
                let slot = self.fresh_snapshot_id(n)?;
                self.keep(batch, n, "", &slot, old, None)?;
                None
            }
            // Expired: gone now.
            (None, old) => old,
        };
        if let Some(d) = &dropped {
            if d.blob_type == BlobType::Page {
                self.drop_page_runs(batch, delta, &Self::page_prefix(n, ""))?;
            }
            owners.add(&Self::not_kept(reused, d.pieces.clone()), -1);
        }
        let version_id = if p.versioning {
            let taken: Vec<&str> = kept_version.iter().map(String::as_str).collect();
            Some(self.fresh_version_id(n, &taken)?)
        } else {
            None
        };
        Ok((version_id, dropped))
    }

    /// With versioning on, a change that makes a new version of the base blob in place
    /// (Set Blob Metadata, Snapshot Blob): `before` stays, in `batch`, as a previous version
    /// sharing every byte. Returns the new current version's id.
    pub(super) fn keep_previous_version(
        &self,
        batch: &mut sled::Batch,
        owners: &mut Owners,
        delta: &mut RefDelta,
        p: &Protection,
        n: BlobName<'_>,
        before: &BlobRecord,
    ) -> Result<Option<String>> {
        if !p.versioning {
            return Ok(None);
        }
        let Retire::Keep { slot, .. } = self.retire(p, n, before, Why::Overwrite)? else {
            return Ok(None);
        };
        self.keep_shared(batch, owners, delta, n, before, &slot)?;
        let old_id = keys::slot_version(&slot).unwrap_or_default().to_string();
        Ok(Some(self.fresh_version_id(n, &[&old_id])?))
    }

    /// Puts into `batch` what stores `record` (which was at `from`) at `to`, marked
    /// `deleted`: a page blob's runs move with it; a record kept as a version or snapshot
    /// holds no lease. The caller removes or replaces what is at `from`.
    pub(super) fn keep(
        &self,
        batch: &mut sled::Batch,
        n: BlobName<'_>,
        from: &str,
        to: &str,
        mut record: BlobRecord,
        deleted: Option<Deletion>,
    ) -> Result<()> {
        if let Some(id) = keys::slot_version(to) {
            record.version_id = Some(id.to_string());
        }
        if !to.is_empty() {
            record.lease = crate::protocol::lease::Lease::Available;
        }
        if deleted.is_some() {
            record.deleted = deleted;
        }
        let key = keys::blob(n.account, n.container, n.blob, to);
        if let Some(d) = record.deleted {
            batch.insert(keys::deadline(d.purge_ms, &key), &[]);
        }
        if from != to && record.blob_type == BlobType::Page {
            let (src, dst) = (Self::page_prefix(n, from), Self::page_prefix(n, to));
            for (start, run) in self.all_runs(&src)? {
                batch.remove(keys::page_run(&src, start));
                batch.insert(keys::page_run(&dst, start), encode(&run));
            }
        }
        batch.insert(key, encode(&record));
        Ok(())
    }

    /// Puts into `batch` a copy of the base record kept at `to` (a version) that shares
    /// every byte with the base, which stays.
    pub(super) fn keep_shared(
        &self,
        batch: &mut sled::Batch,
        owners: &mut Owners,
        delta: &mut RefDelta,
        n: BlobName<'_>,
        base: &BlobRecord,
        to: &str,
    ) -> Result<()> {
        let mut copy = base.clone();
        if let Some(id) = keys::slot_version(to) {
            copy.version_id = Some(id.to_string());
        }
        copy.lease = crate::protocol::lease::Lease::Available;
        owners.add(&base.pieces, 1);
        if base.blob_type == BlobType::Page {
            let (from, to_prefix) = (Self::page_prefix(n, ""), Self::page_prefix(n, to));
            self.share_page_runs(batch, delta, &from, &to_prefix)?;
        }
        batch.insert(
            keys::blob(n.account, n.container, n.blob, to),
            encode(&copy),
        );
        Ok(())
    }

    /// Puts into `batch` what removes the record at `slot` for good: its page runs, its
    /// share of its bytes.
    pub(super) fn purge_record(
        &self,
        batch: &mut sled::Batch,
        owners: &mut Owners,
        delta: &mut RefDelta,
        n: BlobName<'_>,
        slot: &str,
        record: &BlobRecord,
    ) -> Result<()> {
        batch.remove(keys::blob(n.account, n.container, n.blob, slot));
        if record.blob_type == BlobType::Page {
            self.drop_page_runs(batch, delta, &Self::page_prefix(n, slot))?;
        }
        owners.add(&record.pieces, -1);
        Ok(())
    }

    /// Applies the owner changes to `R` in `batch`; returns the pieces no record owns any
    /// more (free them once the batch is durable).
    pub(super) fn apply_owners(
        &self,
        batch: &mut sled::Batch,
        owners: Owners,
    ) -> Result<Vec<Piece>> {
        let mut freed = Vec::new();
        for (id, (d, piece)) in owners.0 {
            if d == 0 {
                continue;
            }
            let key = keys::refcount(id);
            // No key: the one record that names it.
            let current = self.refcount(id)?.map_or(1, |c| c as i64);
            match current + d {
                n if n <= 0 => {
                    batch.remove(key);
                    freed.push(piece);
                }
                1 => batch.remove(key),
                n => batch.insert(key, &(n as u64).to_be_bytes()),
            }
        }
        Ok(freed)
    }

    /// Every slot of a blob with its record (snapshots, versions, the base), raw.
    pub(super) fn all_slots(&self, n: BlobName<'_>) -> Result<Vec<(String, BlobRecord)>> {
        let scope = keys::blob_scope(crate::store::keys::BLOB, n.account, n.container);
        let mut out = Vec::new();
        for item in self
            .core
            .data
            .scan_prefix(keys::blob_versions(n.account, n.container, n.blob))
        {
            let (k, v) = item.map_err(internal)?;
            if let Some((_, slot)) = keys::parse_blob_tail(&k[scope.len()..]) {
                out.push((slot, decode(&v).map_err(internal)?));
            }
        }
        Ok(out)
    }

    /// The slot `versionid=` names: the base blob when it is the current version.
    pub fn version_slot(&self, n: BlobName<'_>, version: &str) -> Result<String> {
        let now = self.now();
        match self.blob_raw(n, "")? {
            Some(base)
                if base.version_id.as_deref() == Some(version) && Self::is_live(&base, "", now) =>
            {
                Ok(String::new())
            }
            _ => Ok(keys::version_slot(version)),
        }
    }

    /// Whether a read that found nothing at `slot` met soft-deleted data there (Azure
    /// adds `x-ms-is-soft-deleted: true` to that 404).
    pub fn is_soft_deleted(&self, n: BlobName<'_>, slot: &str) -> bool {
        matches!(self.blob_raw(n, slot), Ok(Some(r)) if r.deleted.is_some())
    }

    /// Undelete Blob: the blob, its snapshots and versions soft-deleted and not yet
    /// purged come back (a version is not made current). A blob with nothing deleted is
    /// left as it is; one that never existed is 404.
    pub async fn undelete_blob(&self, n: BlobName<'_>) -> Result<()> {
        {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let now = self.now();
            let slots = self.all_slots(n)?;
            if slots.is_empty() {
                return Err(super::blob_not_found());
            }
            let mut batch = sled::Batch::default();
            let mut restored_base = None;
            for (slot, mut record) in slots {
                match record.deleted {
                    Some(d) if d.purge_ms > now => {
                        record.deleted = None;
                        if slot.is_empty() {
                            restored_base = Some(record.tags.clone());
                        }
                        batch.insert(
                            keys::blob(n.account, n.container, n.blob, &slot),
                            encode(&record),
                        );
                    }
                    _ => {}
                }
            }
            if let Some(tags) = &restored_base {
                self.index_tags(n, tags)?;
            }
            self.core.data.apply_batch(batch).map_err(internal)?;
        }
        self.core.durable().await
    }
}

/// `OperationNotAllowedOnRootBlob`: a version that is current cannot be deleted by id.
pub fn root_blob() -> StorageError {
    StorageError::new(ErrorCode::OperationNotAllowedOnRootBlob)
}
