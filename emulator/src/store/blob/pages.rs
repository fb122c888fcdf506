//! Page blobs, sparse: a page blob's written bytes are runs, `G blob start → PageRun`, one
//! sled key each, so Put Page, Clear Pages and Get Page Ranges are O(log n + runs touched)
//! and unwritten pages cost nothing (they read as zeros). A write replaces what it
//! overlaps: the runs it covers go, the ones it cuts keep their outer parts (sharing the
//! same bytes). A snapshot takes its runs by sharing their bytes too, so Get Page Ranges
//! Diff compares runs by the bytes they point at. Shared bytes are counted (`R id`), and
//! freed when the last run lets go, after the change is durable.
//!
//! Every page write is one atomic sled batch (runs, counts and the record's new ETag), so
//! a crash never leaves runs that overlap or counts that disagree with them.

use super::extents::Piece;
use super::records::{BlobRecord, BlobType, PageRun};
use super::upload::Received;
use super::{blob_not_found, internal, keys, BlobName, BlobStore};
use crate::protocol::conditions::Preconditions;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::store::codec::{decode, encode};
use std::collections::HashMap;

/// 512-byte pages.
pub const PAGE: u64 = 512;
/// Largest page blob: 8 TiB.
pub const MAX_PAGE_BLOB: u64 = 8 << 40;
/// Sequence numbers are 0 to 2^63 - 1.
pub const MAX_SEQUENCE_NUMBER: u64 = (1 << 63) - 1;

/// `x-ms-if-sequence-number-le/lt/eq` of a page write.
#[derive(Debug, Clone, Copy, Default)]
pub struct SequenceCondition {
    pub le: Option<u64>,
    pub lt: Option<u64>,
    pub eq: Option<u64>,
}

impl SequenceCondition {
    fn check(&self, n: u64) -> Result<()> {
        let ok = self.le.is_none_or(|v| n <= v)
            && self.lt.is_none_or(|v| n < v)
            && self.eq.is_none_or(|v| n == v);
        if ok {
            Ok(())
        } else {
            Err(StorageError::new(ErrorCode::SequenceNumberConditionNotMet))
        }
    }
}

/// `x-ms-sequence-number-action` of Set Blob Properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceAction {
    Max(u64),
    Update(u64),
    Increment,
}

/// What Set Blob Properties changes of a page blob besides its content headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageChange {
    /// `x-ms-blob-content-length`: the new size.
    pub size: Option<u64>,
    pub action: Option<SequenceAction>,
}

/// What reading a page blob yields, in order.
#[derive(Debug, Clone, Copy)]
pub enum Segment {
    Data(Piece),
    Zeros(u64),
}

/// One range of Get Page Ranges (inclusive ends); `cleared` in a diff: pages written in
/// the older snapshot and cleared since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRange {
    pub start: u64,
    pub end: u64,
    pub cleared: bool,
}

/// Count changes of shared bytes within one write.
#[derive(Default)]
pub(super) struct RefDelta(HashMap<u64, (i64, Piece)>);

impl RefDelta {
    fn add(&mut self, p: &Piece, d: i64) {
        let e = self.0.entry(p.id).or_insert((0, *p));
        e.0 += d;
    }
}

fn slice(p: &Piece, skip: u64, len: u64) -> Piece {
    Piece {
        offset: p.offset + skip,
        len,
        ..*p
    }
}

fn page_record(r: Option<BlobRecord>) -> Result<BlobRecord> {
    let r = r.ok_or_else(blob_not_found)?;
    if r.blob_type != BlobType::Page {
        return Err(StorageError::new(ErrorCode::InvalidBlobType));
    }
    r.refuse_if_incremental()?;
    Ok(r)
}

impl BlobStore {
    pub(super) fn page_prefix(n: BlobName<'_>, snapshot: &str) -> Vec<u8> {
        keys::page_prefix(n.account, n.container, n.blob, snapshot)
    }

    /// The runs of `prefix` overlapping `[from, to)`, in order, read lazily (a caller that
    /// wants a few of many stops early).
    fn runs_iter<'a>(
        &'a self,
        prefix: &'a [u8],
        from: u64,
        to: u64,
    ) -> Result<impl Iterator<Item = Result<(u64, PageRun)>> + 'a> {
        let data = &self.core.data;
        // The run that starts before `from` may reach into the range.
        let mut first = None;
        if let Some(item) = data
            .range(prefix.to_vec()..keys::page_run(prefix, from))
            .next_back()
        {
            let (k, v) = item.map_err(internal)?;
            if let Some(start) = keys::parse_page_run(prefix, &k) {
                let run: PageRun = decode(&v).map_err(internal)?;
                if start + run.len > from {
                    first = Some(Ok((start, run)));
                }
            }
        }
        let rest = data
            .range(keys::page_run(prefix, from)..keys::page_run(prefix, to))
            .filter_map(move |item| {
                let (k, v) = match item {
                    Ok(kv) => kv,
                    Err(e) => return Some(Err(internal(e))),
                };
                let start = keys::parse_page_run(prefix, &k)?;
                Some(decode(&v).map(|run| (start, run)).map_err(internal))
            });
        Ok(first.into_iter().chain(rest))
    }

    /// The runs of `prefix` overlapping `[from, to)`, in order.
    fn runs_in(&self, prefix: &[u8], from: u64, to: u64) -> Result<Vec<(u64, PageRun)>> {
        self.runs_iter(prefix, from, to)?.collect()
    }

    /// Every run of `prefix`.
    pub(super) fn all_runs(&self, prefix: &[u8]) -> Result<Vec<(u64, PageRun)>> {
        self.runs_in(prefix, 0, u64::MAX)
    }

    /// The stored `R` count of piece `id`, if it has one.
    pub(super) fn refcount(&self, id: u64) -> Result<Option<u64>> {
        self.core
            .data
            .get(keys::refcount(id))
            .map_err(internal)?
            .map(|v| {
                v.as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| internal("bad refcount"))
            })
            .transpose()
    }

    /// Writes the counts changed by `delta` into `batch`; returns the pieces no run
    /// references any more (to free once the batch is durable).
    pub(super) fn apply_refs(
        &self,
        batch: &mut sled::Batch,
        delta: RefDelta,
    ) -> Result<Vec<Piece>> {
        let mut freed = Vec::new();
        for (id, (d, piece)) in delta.0 {
            if d == 0 {
                continue;
            }
            let key = keys::refcount(id);
            let current = self.refcount(id)?.unwrap_or(0);
            let next = current as i64 + d;
            if next <= 0 {
                batch.remove(key);
                freed.push(Piece {
                    offset: 0,
                    len: 0,
                    ..piece
                });
            } else {
                batch.insert(key, &(next as u64).to_be_bytes());
            }
        }
        Ok(freed)
    }

    /// Puts into `batch` what removes `[from, to)` from the runs of `prefix`: the runs it
    /// covers go, the ones it cuts keep their outer parts.
    fn cut(
        &self,
        batch: &mut sled::Batch,
        delta: &mut RefDelta,
        prefix: &[u8],
        from: u64,
        to: u64,
    ) -> Result<()> {
        for (start, run) in self.runs_in(prefix, from, to)? {
            let end = start + run.len;
            batch.remove(keys::page_run(prefix, start));
            delta.add(&run.piece, -1);
            if start < from {
                let left = PageRun {
                    len: from - start,
                    piece: slice(&run.piece, 0, from - start),
                };
                batch.insert(keys::page_run(prefix, start), encode(&left));
                delta.add(&run.piece, 1);
            }
            if end > to {
                let right = PageRun {
                    len: end - to,
                    piece: slice(&run.piece, to - start, end - to),
                };
                batch.insert(keys::page_run(prefix, to), encode(&right));
                delta.add(&run.piece, 1);
            }
        }
        Ok(())
    }

    /// Puts into `batch` what removes every run of `prefix` (a page blob or snapshot
    /// deleted or replaced).
    pub(super) fn drop_page_runs(
        &self,
        batch: &mut sled::Batch,
        delta: &mut RefDelta,
        prefix: &[u8],
    ) -> Result<()> {
        for (start, run) in self.all_runs(prefix)? {
            batch.remove(keys::page_run(prefix, start));
            delta.add(&run.piece, -1);
        }
        Ok(())
    }

    /// Puts into `batch` what gives snapshot `to` the runs of `from`, sharing their bytes.
    pub(super) fn share_page_runs(
        &self,
        batch: &mut sled::Batch,
        delta: &mut RefDelta,
        from: &[u8],
        to: &[u8],
    ) -> Result<()> {
        for (start, run) in self.all_runs(from)? {
            batch.insert(keys::page_run(to, start), encode(&run));
            delta.add(&run.piece, 1);
        }
        Ok(())
    }

    /// Puts into `batch` fresh copies of the runs of `from` for another blob `to` (bytes are
    /// shared only within one blob and its snapshots, so one blob lock guards their
    /// counts). The copies are owned by the batch: freed by the caller if it fails.
    pub(super) fn copy_page_runs(
        &self,
        batch: &mut sled::Batch,
        delta: &mut RefDelta,
        from: &[u8],
        to: &[u8],
    ) -> Result<Vec<Piece>> {
        let mut fresh = Vec::new();
        for (start, run) in self.all_runs(from)? {
            let copied = match self.copy_pieces(std::slice::from_ref(&run.piece)) {
                Ok(c) => c,
                Err(e) => {
                    self.free(&fresh);
                    return Err(e);
                }
            };
            for piece in copied {
                batch.insert(
                    keys::page_run(to, start),
                    encode(&PageRun {
                        len: run.len,
                        piece,
                    }),
                );
                delta.add(&piece, 1);
                fresh.push(piece);
            }
        }
        Ok(fresh)
    }

    /// A page write under the blob's lock: the record is checked (`pre`, the sequence
    /// condition), `change` fills the batch, and the record gets a new ETag in the same
    /// batch.
    async fn page_write(
        &self,
        n: BlobName<'_>,
        pre: &Preconditions,
        seq: SequenceCondition,
        change: impl FnOnce(&mut BlobRecord, &mut sled::Batch, &mut RefDelta, &[u8]) -> Result<()>,
    ) -> Result<BlobRecord> {
        let (record, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let mut record = page_record(self.blob(n.account, n.container, n.blob, "")?)?;
            pre.check(Some(record.current()), self.now())?;
            seq.check(record.sequence_number)?;
            let prefix = Self::page_prefix(n, "");
            let mut batch = sled::Batch::default();
            let mut delta = RefDelta::default();
            change(&mut record, &mut batch, &mut delta, &prefix)?;
            let (now, etag) = self.bump()?;
            record.etag = etag;
            record.last_modified_ms = now;
            batch.insert(
                keys::blob(n.account, n.container, n.blob, ""),
                encode(&record),
            );
            let freed = self.apply_refs(&mut batch, delta)?;
            self.core.data.apply_batch(batch).map_err(internal)?;
            (record, freed)
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(record)
    }

    /// Put Page: `content` becomes bytes `[start, start + len)`.
    pub async fn put_pages(
        &self,
        n: BlobName<'_>,
        start: u64,
        content: Received,
        seq: SequenceCondition,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        let len = content.len();
        let mut content = Some(content);
        let mut adopted = Vec::new();
        let result = self
            .page_write(n, pre, seq, |record, batch, delta, prefix| {
                if start + len > record.page_size {
                    return Err(StorageError::new(ErrorCode::InvalidPageRange));
                }
                self.cut(batch, delta, prefix, start, start + len)?;
                let received = content
                    .take()
                    .ok_or_else(|| internal("content taken twice"))?;
                // A received body is one piece (inline or one file).
                adopted = received.adopt_into(batch);
                for piece in &adopted {
                    batch.insert(
                        keys::page_run(prefix, start),
                        encode(&PageRun { len, piece: *piece }),
                    );
                    delta.add(piece, 1);
                }
                Ok(())
            })
            .await;
        if result.is_err() {
            // Adopted but never written, or written and refused after: nothing references
            // the new bytes unless the batch landed, and a landed batch returns Ok.
            self.free(&adopted);
        }
        result
    }

    /// Clear Pages: `[start, end)` reads as zeros again and costs nothing.
    pub async fn clear_pages(
        &self,
        n: BlobName<'_>,
        start: u64,
        end: u64,
        seq: SequenceCondition,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        self.page_write(n, pre, seq, |record, batch, delta, prefix| {
            if end > record.page_size {
                return Err(StorageError::new(ErrorCode::InvalidPageRange));
            }
            self.cut(batch, delta, prefix, start, end)
        })
        .await
    }

    /// Set Blob Properties on a page blob: the content headers, a new size (pages beyond
    /// it are dropped) and a sequence number action.
    pub(super) async fn change_page_blob(
        &self,
        n: BlobName<'_>,
        properties: super::ContentProperties,
        change: PageChange,
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        let PageChange { size, action } = change;
        self.page_write(
            n,
            pre,
            SequenceCondition::default(),
            |record, batch, delta, prefix| {
                if let Some(size) = size {
                    if size < record.page_size {
                        self.cut(batch, delta, prefix, size, record.page_size)?;
                    }
                    record.page_size = size;
                }
                record.properties = properties;
                record.sequence_number = match action {
                    Some(SequenceAction::Max(v)) => record.sequence_number.max(v),
                    Some(SequenceAction::Update(v)) => v,
                    Some(SequenceAction::Increment) => record
                        .sequence_number
                        .checked_add(1)
                        .filter(|v| *v <= MAX_SEQUENCE_NUMBER)
                        .ok_or_else(|| {
                            StorageError::new(ErrorCode::SequenceNumberIncrementTooLarge)
                        })?,
                    None => record.sequence_number,
                };
                Ok(())
            },
        )
        .await
    }

    /// The written ranges of a page blob (or snapshot) within `[from, to)`, adjacent runs
    /// merged, at most `limit` of them; and where the next call should start when more
    /// remain. Reads only the runs it returns (and one more).
    pub fn page_ranges(
        &self,
        n: BlobName<'_>,
        snapshot: &str,
        from: u64,
        to: u64,
        limit: Option<usize>,
    ) -> Result<(Vec<PageRange>, Option<u64>)> {
        let prefix = Self::page_prefix(n, snapshot);
        let mut out: Vec<PageRange> = Vec::new();
        for item in self.runs_iter(&prefix, from, to)? {
            let (start, run) = item?;
            let s = start.max(from);
            let e = (start + run.len).min(to);
            if s >= e {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.end + 1 == s => last.end = e - 1,
                _ => {
                    if limit.is_some_and(|l| out.len() >= l) {
                        return Ok((out, Some(s)));
                    }
                    out.push(PageRange {
                        start: s,
                        end: e - 1,
                        cleared: false,
                    })
                }
            }
        }
        Ok((out, None))
    }

    /// Get Page Ranges Diff: pages of `snapshot` (the base when empty) that differ from
    /// those of `prev`: written (or rewritten) since, and cleared since. Two runs that
    /// point at the same stored bytes are the same pages (a snapshot shares its base's
    /// bytes until the base is written), so unchanged pages are found without reading.
    pub fn page_diff(
        &self,
        n: BlobName<'_>,
        snapshot: &str,
        prev: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<PageRange>> {
        let now_runs = self.runs_in(&Self::page_prefix(n, snapshot), from, to)?;
        let old_runs = self.runs_in(&Self::page_prefix(n, prev), from, to)?;
        let mut cuts: Vec<u64> = vec![from, to];
        for (s, r) in now_runs.iter().chain(old_runs.iter()) {
            cuts.push((*s).clamp(from, to));
            cuts.push((s + r.len).clamp(from, to));
        }
        cuts.sort_unstable();
        cuts.dedup();
        // Which stored byte a run list says is at `x` (both lists are sorted: walk them).
        fn at(runs: &[(u64, PageRun)], i: &mut usize, x: u64) -> Option<(u64, u64)> {
            while *i < runs.len() && runs[*i].0 + runs[*i].1.len <= x {
                *i += 1;
            }
            let (s, r) = runs.get(*i)?;
            (*s <= x).then(|| (r.piece.id, r.piece.offset + (x - s)))
        }
        let (mut i, mut j) = (0, 0);
        let mut out: Vec<PageRange> = Vec::new();
        for w in cuts.windows(2) {
            let (s, e) = (w[0], w[1]);
            let (now, old) = (at(&now_runs, &mut i, s), at(&old_runs, &mut j, s));
            let cleared = match (now, old) {
                (Some(a), Some(b)) if a == b => continue,
                (None, None) => continue,
                (None, Some(_)) => true,
                _ => false,
            };
            match out.last_mut() {
                Some(last) if last.end + 1 == s && last.cleared == cleared => last.end = e - 1,
                _ => out.push(PageRange {
                    start: s,
                    end: e - 1,
                    cleared,
                }),
            }
        }
        Ok(out)
    }

    /// What reading `[start, start + len)` of a page blob yields: its runs and the zeros
    /// between them.
    pub fn page_segments(
        &self,
        n: BlobName<'_>,
        snapshot: &str,
        start: u64,
        len: u64,
    ) -> Result<Vec<Segment>> {
        let end = start + len;
        let mut out = Vec::new();
        let mut at = start;
        for item in self.runs_iter(&Self::page_prefix(n, snapshot), start, end)? {
            let (s, run) = item?;
            let (a, b) = (s.max(start), (s + run.len).min(end));
            if a > at {
                out.push(Segment::Zeros(a - at));
            }
            out.push(Segment::Data(slice(&run.piece, a - s, b - a)));
            at = b;
        }
        if end > at {
            out.push(Segment::Zeros(end - at));
        }
        Ok(out)
    }
}

impl BlobStore {
    /// Incremental Copy Blob: the destination becomes a page blob with the pages of the
    /// source snapshot, and a snapshot of it is taken in the same batch (the one
    /// `x-ms-copy-destination-snapshot` names). A later copy must come from the same
    /// blob and a snapshot no older than the last one copied.
    pub async fn incremental_copy(
        &self,
        n: BlobName<'_>,
        source: BlobName<'_>,
        source_snapshot: &str,
        copy: (String, String),
        pre: &Preconditions,
    ) -> Result<BlobRecord> {
        let source_blob = format!("{}/{}/{}", source.account, source.container, source.blob);
        let (record, freed) = {
            let _c = self.containers_lock.read();
            self.require_container(n.account, n.container)?;
            let _b = self.blob_lock(n).lock();
            let current = self.blob(n.account, n.container, n.blob, "")?;
            if let Some(c) = &current {
                let Some(last) = &c.incremental else {
                    return Err(StorageError::new(ErrorCode::InvalidBlobType).with_message(
                        "The destination of an incremental copy must be an incremental copy blob.",
                    ));
                };
                if last.source_blob != source_blob {
                    return Err(StorageError::new(ErrorCode::IncrementalCopyBlobMismatch));
                }
                if source_snapshot < last.source_snapshot.as_str() {
                    return Err(StorageError::new(
                        ErrorCode::IncrementalCopyOfEarlierSnapshotNotAllowed,
                    ));
                }
            }
            pre.check(current.as_ref().map(|c| c.current()), self.now())?;
            let from = self
                .blob(
                    source.account,
                    source.container,
                    source.blob,
                    source_snapshot,
                )?
                .ok_or_else(|| {
                    StorageError::new(ErrorCode::CannotVerifyCopySource)
                        .with_message("The specified blob does not exist.")
                })?;
            if from.blob_type != BlobType::Page {
                return Err(StorageError::new(ErrorCode::InvalidSourceBlobType));
            }
            let snapshot = self.fresh_snapshot_id(n)?;
            let (base, snap) = (Self::page_prefix(n, ""), Self::page_prefix(n, &snapshot));
            let mut batch = sled::Batch::default();
            let mut delta = RefDelta::default();
            if current.is_some() {
                self.drop_page_runs(&mut batch, &mut delta, &base)?;
            }
            // Fresh bytes, shared by the destination and its new snapshot.
            let source_prefix = Self::page_prefix(source, source_snapshot);
            let fresh = self.copy_page_runs(&mut batch, &mut delta, &source_prefix, &base)?;
            if let Err(e) =
                self.share_fresh_runs(&mut batch, &mut delta, &source_prefix, &snap, &fresh)
            {
                self.free(&fresh);
                return Err(e);
            }
            let (now, etag) = self.bump()?;
            let (id, url) = copy;
            let record = BlobRecord {
                blob_type: BlobType::Page,
                properties: from.properties.clone(),
                metadata: from.metadata.clone(),
                page_size: from.page_size,
                sequence_number: from.sequence_number,
                copy: Some(super::records::CopyInfo {
                    id,
                    source: url,
                    length: from.page_size,
                    completed_ms: now,
                }),
                incremental: Some(super::records::IncrementalCopy {
                    destination_snapshot: snapshot.clone(),
                    source_blob,
                    source_snapshot: source_snapshot.to_string(),
                }),
                tags: current.as_ref().map(|c| c.tags.clone()).unwrap_or_default(),
                ..BlobRecord::successor(current.as_ref(), now, etag)
            };
            let mut snap_record = record.clone();
            snap_record.lease = crate::protocol::lease::Lease::Available;
            batch.insert(
                keys::blob(n.account, n.container, n.blob, ""),
                encode(&record),
            );
            batch.insert(
                keys::blob(n.account, n.container, n.blob, &snapshot),
                encode(&snap_record),
            );
            let write = self.apply_refs(&mut batch, delta).and_then(|freed| {
                self.core.data.apply_batch(batch).map_err(internal)?;
                Ok(freed)
            });
            match write {
                Ok(freed) => (record, freed),
                Err(e) => {
                    self.free(&fresh);
                    return Err(e);
                }
            }
        };
        self.core.durable().await?;
        self.free(&freed);
        Ok(record)
    }

    /// Puts into `batch` runs for `to` at the starts of `from`'s runs, pointing at `fresh`
    /// (the copies `copy_page_runs` just made, in the same order).
    fn share_fresh_runs(
        &self,
        batch: &mut sled::Batch,
        delta: &mut RefDelta,
        from: &[u8],
        to: &[u8],
        fresh: &[Piece],
    ) -> Result<()> {
        for ((start, run), piece) in self.all_runs(from)?.into_iter().zip(fresh) {
            batch.insert(
                keys::page_run(to, start),
                encode(&PageRun {
                    len: run.len,
                    piece: *piece,
                }),
            );
            delta.add(piece, 1);
        }
        Ok(())
    }
}
