//! (Over 500 lines: one model, one walk and its checks belong together.)
//!
//! The blob store in process against a plain model (`BTreeMap`s of bytes), as redb tests
//! its B-tree: random operations, then after each one the store must hold exactly what
//! the model holds, and own exactly the bytes its records reference: no extent file or
//! inline value without a record, none shared by two records (page runs share counted
//! bytes). Refused operations must leave both unchanged. Crashes (dropping the store unclosed) and clean reopens are
//! among the operations, so garbage collection and durability are in the walk too.

use super::extents::Storage;
use super::records::{BlobRecord, StagedBlock};
use super::{BlobName, BlobType, BlockSource, Checksums, ChunkSource, DeleteMode, Expect, NewBlob};
use crate::clock::Clock;
use crate::protocol::conditions::{Access, Preconditions};
use crate::protocol::error::{ErrorCode, Result};
use crate::store::codec::decode;
use crate::store::keys::{parse_qid_tail, BLOB, BLOCK, INLINE};
use crate::store::Store;
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, VecDeque};

const NAMES: [&str; 3] = ["a", "b", "dir/c"];
const ACCOUNT: &str = "acct";
const CONTAINER: &str = "cont";

/// A body as its chunks.
struct Chunks(VecDeque<Bytes>);

impl ChunkSource for Chunks {
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Result<Option<Bytes>>> + Send {
        std::future::ready(Ok(self.0.pop_front()))
    }
}

/// Small bodies stay inline, large ones (over 64 KiB) go to extent files.
fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        name: usize,
        seed: u8,
        len: usize,
        only_new: bool,
    },
    CreateAppend {
        name: usize,
    },
    Append {
        name: usize,
        seed: u8,
        len: usize,
    },
    Stage {
        name: usize,
        block: u8,
        seed: u8,
        len: usize,
    },
    Commit {
        name: usize,
        blocks: Vec<u8>,
    },
    Snapshot {
        name: usize,
    },
    Delete {
        name: usize,
        mode: u8,
    },
    Metadata {
        name: usize,
    },
    /// Set Blob Tags: `k = value`, or no tags for 3.
    Tag {
        name: usize,
        value: u8,
    },
    /// A page blob of `PAGES` pages of zeros.
    CreatePage {
        name: usize,
    },
    PutPages {
        name: usize,
        first: u64,
        pages: u64,
        seed: u8,
    },
    ClearPages {
        name: usize,
        first: u64,
        pages: u64,
    },
    Resize {
        name: usize,
        pages: u64,
    },
    /// Drop the store without closing it, then open it again.
    Crash,
    Reopen,
    /// With protection on: delete a blob's oldest previous version by id (soft delete
    /// keeps it), invisible to the model.
    DeleteOldestVersion {
        name: usize,
    },
    /// With protection on: move the clock past the retention and sweep (purges).
    Purge,
    /// Take state snapshot "s" (replacing it).
    SaveState,
    /// Restore state snapshot "s".
    RestoreState,
    /// Restore "s", stopped by a crash after `removed` records were cleared: the next
    /// open finishes it.
    CrashMidRestore {
        removed: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    let len = prop_oneof![3 => 0usize..300, 1 => 65_000usize..70_000];
    prop_oneof![
        4 => (name.clone(), any::<u8>(), len.clone(), any::<bool>())
            .prop_map(|(name, seed, len, only_new)| Op::Put { name, seed, len, only_new }),
        1 => name.clone().prop_map(|name| Op::CreateAppend { name }),
        2 => (name.clone(), any::<u8>(), len.clone())
            .prop_map(|(name, seed, len)| Op::Append { name, seed, len }),
        4 => (name.clone(), 0u8..4, any::<u8>(), len)
            .prop_map(|(name, block, seed, len)| Op::Stage { name, block, seed, len }),
        3 => (name.clone(), proptest::collection::vec(0u8..4, 0..4))
            .prop_map(|(name, blocks)| Op::Commit { name, blocks }),
        1 => name.clone().prop_map(|name| Op::Snapshot { name }),
        2 => (name.clone(), 0u8..3).prop_map(|(name, mode)| Op::Delete { name, mode }),
        1 => name.clone().prop_map(|name| Op::Metadata { name }),
        2 => (name.clone(), 0u8..4).prop_map(|(name, value)| Op::Tag { name, value }),
        2 => name.clone().prop_map(|name| Op::CreatePage { name }),
        // Up to 140 pages (70 KiB): writes on both sides of the inline limit, some past
        // the end.
        3 => (name.clone(), 0..PAGES, 1u64..140, any::<u8>())
            .prop_map(|(name, first, pages, seed)| Op::PutPages { name, first, pages, seed }),
        1 => (name.clone(), 0..PAGES, 1u64..PAGES)
            .prop_map(|(name, first, pages)| Op::ClearPages { name, first, pages }),
        1 => (name, 0..PAGES + 8).prop_map(|(name, pages)| Op::Resize { name, pages }),
        1 => Just(Op::Crash),
        1 => Just(Op::Reopen),
        1 => Just(Op::SaveState),
        1 => Just(Op::RestoreState),
        1 => (0usize..20).prop_map(|removed| Op::CrashMidRestore { removed }),
    ]
}

/// The walk's operations with versioning and soft delete on: version deletes and purges
/// too.
fn protected_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => op(),
        1 => (0..NAMES.len()).prop_map(|name| Op::DeleteOldestVersion { name }),
        1 => Just(Op::Purge),
    ]
}

/// Pages of a new page blob in the walk.
const PAGES: u64 = 320;

#[derive(Debug, Clone, PartialEq)]
struct ModelBlob {
    kind: BlobType,
    bytes: Vec<u8>,
    /// Committed blocks (block blobs), in order.
    blocks: Vec<(u8, Vec<u8>)>,
    snapshots: Vec<Vec<u8>>,
    metadata: bool,
    /// The value of tag `k`, if the blob has it.
    tag: Option<u8>,
}

fn tags_of(tag: Option<u8>) -> Vec<(String, String)> {
    tag.map(|v| vec![("k".to_string(), v.to_string())])
        .unwrap_or_default()
}

#[derive(Debug, Default, Clone)]
struct Model {
    blobs: BTreeMap<usize, ModelBlob>,
    staged: BTreeMap<usize, BTreeMap<u8, Vec<u8>>>,
    /// State snapshot "s".
    saved: Option<Box<Model>>,
}

fn name(i: usize) -> BlobName<'static> {
    BlobName {
        account: ACCOUNT,
        container: CONTAINER,
        blob: NAMES[i],
    }
}

struct World {
    dir: tempfile::TempDir,
    store: Option<Store>,
    rt: tokio::runtime::Runtime,
    /// Versioning and a one-day soft delete on.
    protected: bool,
    clock: Clock,
}

impl World {
    fn new(protected: bool) -> World {
        let mut w = World {
            dir: tempfile::tempdir().expect("tempdir"),
            store: None,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            protected,
            clock: Clock::new(),
        };
        w.open();
        w.rt.block_on(
            w.store()
                .blobs
                .create_container(ACCOUNT, CONTAINER, Vec::new(), None),
        )
        .expect("container");
        if protected {
            let props = crate::protocol::model::ServiceProperties {
                delete_retention: crate::protocol::model::RetentionPolicy {
                    enabled: true,
                    days: Some(1),
                },
                ..Default::default()
            };
            w.rt.block_on(w.store().set_service_properties(ACCOUNT, "blob", props))
                .expect("retention");
        }
        w
    }

    fn open(&mut self) {
        let store = Store::open(Some(self.dir.path()), 8 << 20, self.clock.clone()).expect("open");
        if self.protected {
            store.blobs.set_default_features(super::Features {
                versioning: true,
                container_retention_days: None,
            });
        }
        self.store = Some(store);
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("open store")
    }

    fn receive(&self, data: &[u8]) -> super::Received {
        // In 1 KiB chunks, as a body arrives.
        let chunks = data.chunks(1024).map(Bytes::copy_from_slice).collect();
        self.rt
            .block_on(self.store().blobs.receive(
                &mut Chunks(chunks),
                u64::MAX,
                Checksums::default(),
                &Expect::default(),
            ))
            .expect("receive")
    }
}

/// Applies `op` to the store; returns the error code of a refusal.
fn apply(w: &mut World, op: &Op) -> std::result::Result<(), ErrorCode> {
    let code = |r: Result<()>| r.map_err(|e| e.code);
    let replace = Preconditions::none(Access::Replace);
    let modify = Preconditions::none(Access::Modify);
    match op {
        Op::Put {
            name: i,
            seed,
            len,
            only_new,
        } => {
            let content = w.receive(&body(*seed, *len));
            let mut pre = replace.clone();
            if *only_new {
                pre.conditions.if_none_match = Some("*".into());
            }
            let store = w.store();
            let mut new = NewBlob::new(BlobType::Block);
            new.tags = tags_of(Some(seed % 3));
            code(w.rt.block_on(async {
                store
                    .blobs
                    .put_blob(name(*i), content, new, &pre)
                    .await
                    .map(|_| ())
            }))
        }
        Op::CreateAppend { name: i } => {
            let content = w.receive(b"");
            let store = w.store();
            code(w.rt.block_on(async {
                store
                    .blobs
                    .put_blob(name(*i), content, NewBlob::new(BlobType::Append), &replace)
                    .await
                    .map(|_| ())
            }))
        }
        Op::Append { name: i, seed, len } => {
            let content = w.receive(&body(*seed, *len));
            let store = w.store();
            code(w.rt.block_on(async {
                store
                    .blobs
                    .append_block(name(*i), content, Default::default(), &modify)
                    .await
                    .map(|_| ())
            }))
        }
        Op::Stage {
            name: i,
            block,
            seed,
            len,
        } => {
            let content = w.receive(&body(*seed, *len));
            let store = w.store();
            code(w.rt.block_on(store.blobs.stage_block(
                name(*i),
                &[*block],
                content,
                100_000,
                &replace,
            )))
        }
        Op::Commit { name: i, blocks } => {
            let list: Vec<(BlockSource, Vec<u8>)> = blocks
                .iter()
                .map(|b| (BlockSource::Latest, vec![*b]))
                .collect();
            let store = w.store();
            code(w.rt.block_on(async {
                store
                    .blobs
                    .commit_block_list(name(*i), &list, NewBlob::new(BlobType::Block), &replace)
                    .await
                    .map(|_| ())
            }))
        }
        Op::Snapshot { name: i } => {
            let store = w.store();
            let pre = Preconditions::none(Access::Passive);
            code(w.rt.block_on(async {
                store
                    .blobs
                    .snapshot_blob(name(*i), None, &pre)
                    .await
                    .map(|_| ())
            }))
        }
        Op::Delete { name: i, mode } => {
            let mode = match mode {
                0 => DeleteMode::Base,
                1 => DeleteMode::IncludeSnapshots,
                _ => DeleteMode::OnlySnapshots,
            };
            let store = w.store();
            code(
                w.rt.block_on(store.blobs.delete_blob(name(*i), mode, &modify))
                    .map(|_| ()),
            )
        }
        Op::Metadata { name: i } => {
            let store = w.store();
            let metadata = vec![("k".to_string(), "v".to_string())];
            code(w.rt.block_on(async {
                store
                    .blobs
                    .set_blob_metadata(name(*i), metadata, &modify)
                    .await
                    .map(|_| ())
            }))
        }
        Op::Tag { name: i, value } => {
            let store = w.store();
            let tags = tags_of((*value < 3).then_some(*value));
            let pre = Preconditions::none(Access::Modify);
            code(w.rt.block_on(async {
                store
                    .blobs
                    .set_blob_tags(name(*i), "", tags, &pre)
                    .await
                    .map(|_| ())
            }))
        }
        Op::CreatePage { name: i } => {
            let content = w.receive(b"");
            let store = w.store();
            let mut new = NewBlob::new(BlobType::Page);
            new.page_size = PAGES * 512;
            code(w.rt.block_on(async {
                store
                    .blobs
                    .put_blob(name(*i), content, new, &replace)
                    .await
                    .map(|_| ())
            }))
        }
        Op::PutPages {
            name: i,
            first,
            pages,
            seed,
        } => {
            let content = w.receive(&body(*seed, (*pages * 512) as usize));
            let store = w.store();
            code(w.rt.block_on(async {
                store
                    .blobs
                    .put_pages(name(*i), first * 512, content, Default::default(), &modify)
                    .await
                    .map(|_| ())
            }))
        }
        Op::ClearPages {
            name: i,
            first,
            pages,
        } => {
            let store = w.store();
            let (start, end) = (first * 512, (first + pages) * 512);
            code(w.rt.block_on(async {
                store
                    .blobs
                    .clear_pages(name(*i), start, end, Default::default(), &modify)
                    .await
                    .map(|_| ())
            }))
        }
        Op::Resize { name: i, pages } => {
            let store = w.store();
            let change = super::PageChange {
                size: Some(pages * 512),
                action: None,
            };
            code(w.rt.block_on(async {
                store
                    .blobs
                    .set_blob_properties(name(*i), Default::default(), Some(change), &modify)
                    .await
                    .map(|_| ())
            }))
        }
        Op::Crash => {
            w.store = None;
            w.open();
            Ok(())
        }
        Op::SaveState => {
            w.store().create_snapshot("s").expect("snapshot");
            Ok(())
        }
        Op::RestoreState => code(w.store().restore_snapshot("s").map(|_| ())),
        Op::CrashMidRestore { removed } => {
            let store = w.store();
            if store.snapshot("s").is_err() {
                return Err(ErrorCode::ResourceNotFound);
            }
            let db = &store.core.db;
            db.insert(crate::store::snapshots::RESTORING_KEY, "s")
                .expect("marker");
            let keys: Vec<_> = store
                .core
                .data
                .iter()
                .keys()
                .take(*removed)
                .collect::<sled::Result<_>>()
                .expect("keys");
            for k in keys {
                store.core.data.remove(k).expect("remove");
            }
            db.flush().expect("flush");
            w.store = None;
            w.open();
            Ok(())
        }
        Op::Reopen => {
            if let Some(s) = w.store.take() {
                s.close();
            }
            w.open();
            Ok(())
        }
        Op::DeleteOldestVersion { name: i } => {
            let store = w.store();
            let oldest = store
                .blobs
                .all_slots(name(*i))
                .expect("slots")
                .into_iter()
                .find(|(slot, r)| super::keys::slot_version(slot).is_some() && r.deleted.is_none());
            if let Some((slot, _)) = oldest {
                w.rt.block_on(store.blobs.delete_blob(
                    name(*i),
                    DeleteMode::Snapshot(slot),
                    &modify,
                ))
                .expect("delete version");
            }
            Ok(())
        }
        Op::Purge => {
            w.clock.advance_ms(2 * 86_400_000);
            let store = w.store();
            while w.rt.block_on(store.blobs.sweep_deadlines()).expect("sweep") > 0 {}
            Ok(())
        }
    }
}

/// What the model says `op` does; Err is the refusal Azure answers.
fn model(m: &mut Model, op: &Op) -> std::result::Result<(), ErrorCode> {
    match op {
        Op::Put {
            name,
            seed,
            len,
            only_new,
        } => {
            if *only_new && m.blobs.contains_key(name) {
                return Err(ErrorCode::BlobAlreadyExists);
            }
            let snapshots = m
                .blobs
                .get(name)
                .map(|b| b.snapshots.clone())
                .unwrap_or_default();
            m.blobs.insert(
                *name,
                ModelBlob {
                    kind: BlobType::Block,
                    bytes: body(*seed, *len),
                    blocks: Vec::new(),
                    snapshots,
                    metadata: false,
                    tag: Some(seed % 3),
                },
            );
            m.staged.remove(name);
        }
        Op::CreateAppend { name } => {
            let snapshots = m
                .blobs
                .get(name)
                .map(|b| b.snapshots.clone())
                .unwrap_or_default();
            m.blobs.insert(
                *name,
                ModelBlob {
                    kind: BlobType::Append,
                    bytes: Vec::new(),
                    blocks: Vec::new(),
                    snapshots,
                    metadata: false,
                    tag: None,
                },
            );
            m.staged.remove(name);
        }
        Op::Append { name, seed, len } => {
            let b = m.blobs.get_mut(name).ok_or(ErrorCode::BlobNotFound)?;
            if b.kind != BlobType::Append {
                return Err(ErrorCode::InvalidBlobType);
            }
            b.bytes.extend(body(*seed, *len));
        }
        Op::Stage {
            name,
            block,
            seed,
            len,
        } => {
            if m.blobs.get(name).is_some_and(|b| b.kind != BlobType::Block) {
                return Err(ErrorCode::InvalidBlobType);
            }
            m.staged
                .entry(*name)
                .or_default()
                .insert(*block, body(*seed, *len));
        }
        Op::Commit { name, blocks } => {
            if m.blobs.get(name).is_some_and(|b| b.kind != BlobType::Block) {
                return Err(ErrorCode::InvalidBlobType);
            }
            let staged = m.staged.get(name).cloned().unwrap_or_default();
            let committed = m
                .blobs
                .get(name)
                .map(|b| b.blocks.clone())
                .unwrap_or_default();
            let mut new = Vec::new();
            for id in blocks {
                let bytes = staged
                    .get(id)
                    .cloned()
                    .or_else(|| {
                        committed
                            .iter()
                            .find(|(c, _)| c == id)
                            .map(|(_, b)| b.clone())
                    })
                    .ok_or(ErrorCode::InvalidBlockList)?;
                new.push((*id, bytes));
            }
            let snapshots = m
                .blobs
                .get(name)
                .map(|b| b.snapshots.clone())
                .unwrap_or_default();
            m.blobs.insert(
                *name,
                ModelBlob {
                    kind: BlobType::Block,
                    bytes: new.iter().flat_map(|(_, b)| b.clone()).collect(),
                    blocks: new,
                    snapshots,
                    metadata: false,
                    tag: None,
                },
            );
            m.staged.remove(name);
        }
        Op::Snapshot { name } => {
            let b = m.blobs.get_mut(name).ok_or(ErrorCode::BlobNotFound)?;
            b.snapshots.push(b.bytes.clone());
        }
        Op::Delete { name, mode } => {
            let b = m.blobs.get_mut(name).ok_or(ErrorCode::BlobNotFound)?;
            match mode {
                0 if !b.snapshots.is_empty() => return Err(ErrorCode::SnapshotsPresent),
                2 => b.snapshots.clear(),
                _ => {
                    m.blobs.remove(name);
                    m.staged.remove(name);
                }
            }
        }
        Op::Metadata { name } => {
            m.blobs
                .get_mut(name)
                .ok_or(ErrorCode::BlobNotFound)?
                .metadata = true;
        }
        Op::Tag { name, value } => {
            m.blobs.get_mut(name).ok_or(ErrorCode::BlobNotFound)?.tag =
                (*value < 3).then_some(*value);
        }
        Op::CreatePage { name } => {
            let snapshots = m
                .blobs
                .get(name)
                .map(|b| b.snapshots.clone())
                .unwrap_or_default();
            m.blobs.insert(
                *name,
                ModelBlob {
                    kind: BlobType::Page,
                    bytes: vec![0; (PAGES * 512) as usize],
                    blocks: Vec::new(),
                    snapshots,
                    metadata: false,
                    tag: None,
                },
            );
            m.staged.remove(name);
        }
        Op::PutPages {
            name,
            first,
            pages,
            seed,
        } => {
            let b = page_blob(m, *name)?;
            let (start, end) = ((first * 512) as usize, ((first + pages) * 512) as usize);
            if end > b.bytes.len() {
                return Err(ErrorCode::InvalidPageRange);
            }
            b.bytes[start..end].copy_from_slice(&body(*seed, end - start));
        }
        Op::ClearPages { name, first, pages } => {
            let b = page_blob(m, *name)?;
            let (start, end) = ((first * 512) as usize, ((first + pages) * 512) as usize);
            if end > b.bytes.len() {
                return Err(ErrorCode::InvalidPageRange);
            }
            b.bytes[start..end].fill(0);
        }
        Op::Resize { name, pages } => {
            let b = page_blob(m, *name)?;
            b.bytes.resize((pages * 512) as usize, 0);
        }
        Op::SaveState => {
            m.saved = Some(Box::new(Model {
                saved: None,
                ..m.clone()
            }))
        }
        Op::RestoreState | Op::CrashMidRestore { .. } => {
            let saved = m.saved.take().ok_or(ErrorCode::ResourceNotFound)?;
            *m = Model {
                saved: Some(saved.clone()),
                ..*saved
            };
        }
        Op::Crash | Op::Reopen | Op::DeleteOldestVersion { .. } | Op::Purge => {}
    }
    Ok(())
}

fn page_blob(m: &mut Model, name: usize) -> std::result::Result<&mut ModelBlob, ErrorCode> {
    let b = m.blobs.get_mut(&name).ok_or(ErrorCode::BlobNotFound)?;
    if b.kind != BlobType::Page {
        return Err(ErrorCode::InvalidBlobType);
    }
    Ok(b)
}

/// The store holds what the model holds, and owns exactly the bytes it references.
fn check(w: &World, m: &Model) -> std::result::Result<(), TestCaseError> {
    let blobs = &w.store().blobs;
    for (i, blob) in NAMES.iter().enumerate() {
        let n = name(i);
        let got = blobs
            .blob(ACCOUNT, CONTAINER, blob, "")
            .expect("read record");
        match (m.blobs.get(&i), got) {
            (None, None) => {}
            (Some(want), Some(r)) => {
                prop_assert_eq!(r.blob_type, want.kind, "{}", blob);
                let bytes = blobs
                    .read_blob_small(n, "", &r, 0, r.len())
                    .expect("read bytes");
                prop_assert!(bytes.as_ref() == want.bytes.as_slice(), "{} content", blob);
                prop_assert_eq!(r.metadata.is_empty(), !want.metadata, "{} metadata", blob);
                let ids: Vec<Vec<u8>> = want.blocks.iter().map(|(id, _)| vec![*id]).collect();
                let got_ids: Vec<Vec<u8>> = r.blocks.iter().map(|b| b.id.clone()).collect();
                prop_assert_eq!(got_ids, ids, "{} committed blocks", blob);
                let snaps = blobs.snapshot_ids(n).expect("snapshots");
                prop_assert_eq!(snaps.len(), want.snapshots.len(), "{} snapshots", blob);
                for (id, want) in snaps.iter().zip(&want.snapshots) {
                    let s = blobs
                        .blob(ACCOUNT, CONTAINER, blob, id)
                        .expect("snapshot record")
                        .expect("snapshot");
                    let bytes = blobs
                        .read_blob_small(n, id, &s, 0, s.len())
                        .expect("snapshot bytes");
                    prop_assert!(
                        bytes.as_ref() == want.as_slice(),
                        "{} snapshot content",
                        blob
                    );
                }
            }
            (want, got) => {
                return Err(TestCaseError::fail(format!(
                    "{blob}: model {:?}, store {:?}",
                    want.map(|b| b.kind),
                    got.map(|r| r.blob_type)
                )))
            }
        }
        let staged: Vec<(u8, usize)> = blobs
            .staged_blocks(n)
            .expect("staged")
            .into_iter()
            .map(|(id, b)| (id[0], b.size as usize))
            .collect();
        let mut staged_sorted = staged.clone();
        staged_sorted.sort();
        let want: Vec<(u8, usize)> = m
            .staged
            .get(&i)
            .map(|s| s.iter().map(|(id, b)| (*id, b.len())).collect())
            .unwrap_or_default();
        prop_assert_eq!(staged_sorted, want, "{} staged blocks", blob);
    }
    // The tag index finds exactly the base blobs the model has tagged so.
    for v in 0..3u8 {
        let expr = crate::protocol::tags::parse(
            &format!("\"k\" = '{v}'"),
            crate::protocol::tags::Dialect::Find {
                account_level: true,
            },
        )
        .expect("expression");
        let (found, _) = blobs
            .find_by_tags(ACCOUNT, None, &expr, None, 100)
            .expect("find");
        let got: Vec<String> = found.into_iter().map(|(_, b, _)| b).collect();
        let want: Vec<String> = m
            .blobs
            .iter()
            .filter(|(_, b)| b.tag == Some(v))
            .map(|(i, _)| NAMES[*i].to_string())
            .collect();
        let (mut got, mut want) = (got, want);
        got.sort();
        want.sort();
        prop_assert_eq!(got, want, "find k = {}", v);
    }
    let entries = w
        .store()
        .core
        .data
        .scan_prefix([crate::store::keys::TAG])
        .count();
    let tagged = m.blobs.values().filter(|b| b.tag.is_some()).count();
    prop_assert_eq!(entries, tagged, "tag index entries");
    // Ownership: a piece shared by records is shared within one blob (its snapshots and
    // versions) and counted in `R`; every stored byte belongs to a record.
    let data = &w.store().core.data;
    let mut owner: HashMap<(Storage, u64), String> = HashMap::new();
    let mut record_owners: HashMap<u64, u64> = HashMap::new();
    for kind in [BLOB, BLOCK] {
        for item in data.scan_prefix([kind]) {
            let (k, v) = item.expect("scan");
            let pieces = if kind == BLOB {
                decode::<BlobRecord>(&v).expect("record").pieces
            } else {
                decode::<StagedBlock>(&v).expect("block").pieces
            };
            // The blob a record belongs to: its key without the slot.
            let at = k.iter().rposition(|b| *b == 0).unwrap_or(k.len());
            let who = format!("{}:{}", kind as char, String::from_utf8_lossy(&k[1..at]));
            let mut distinct = std::collections::HashSet::new();
            for p in pieces {
                if distinct.insert(p.id) {
                    *record_owners.entry(p.id).or_default() += 1;
                }
                if let Some(other) = owner.insert((p.storage, p.id), who.clone()) {
                    prop_assert_eq!(&other, &who, "piece {:?} shared by two blobs", p);
                }
            }
        }
    }
    // Page runs: each belongs to a page blob, their bytes to no record, and each shared
    // piece's count is the number of runs that reference it.
    let mut runs: HashMap<u64, (Storage, u64)> = HashMap::new();
    for item in data.scan_prefix([crate::store::keys::PAGE]) {
        let (k, v) = item.expect("scan");
        let mut record_key = k[..k.len() - 9].to_vec();
        record_key[0] = BLOB;
        let owner_type = data
            .get(&record_key)
            .expect("get")
            .map(|v| decode::<BlobRecord>(&v).expect("record").blob_type);
        prop_assert_eq!(
            owner_type,
            Some(BlobType::Page),
            "page run without a page blob"
        );
        let run = decode::<super::records::PageRun>(&v).expect("run");
        let e = runs.entry(run.piece.id).or_insert((run.piece.storage, 0));
        e.1 += 1;
    }
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for item in data.scan_prefix([crate::store::keys::REFCOUNT]) {
        let (k, v) = item.expect("scan");
        let id = u64::from_be_bytes(k[1..9].try_into().expect("id"));
        counts.insert(
            id,
            u64::from_be_bytes(v.as_ref().try_into().expect("count")),
        );
    }
    let mut want_counts: HashMap<u64, u64> = runs.iter().map(|(id, (_, n))| (*id, *n)).collect();
    want_counts.extend(record_owners.into_iter().filter(|(_, n)| *n >= 2));
    prop_assert_eq!(counts, want_counts, "shared byte counts");
    for (id, (storage, _)) in &runs {
        if let Some(other) = owner.insert((*storage, *id), "page runs".into()) {
            return Err(TestCaseError::fail(format!(
                "piece {id} of page runs also owned by {other}"
            )));
        }
    }
    let mut files: Vec<u64> = blobs.extents.list();
    files.sort();
    let mut want_files: Vec<u64> = owner
        .keys()
        .filter(|(s, _)| *s == Storage::File)
        .map(|(_, id)| *id)
        .collect();
    want_files.sort();
    prop_assert_eq!(files, want_files, "extent files");
    let mut inline: Vec<u64> = [INLINE, crate::store::keys::PACKED]
        .iter()
        .flat_map(|kind| data.scan_prefix([*kind]).keys())
        .filter_map(|k| parse_qid_tail(&k.expect("key")))
        .collect();
    // Every packed piece's pack is there.
    let packs: std::collections::HashSet<u64> = blobs
        .extents
        .packs
        .list()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for item in data.scan_prefix([crate::store::keys::PACKED]) {
        let (_, v) = item.expect("scan");
        let loc: super::packs::Loc = decode(&v).expect("loc");
        prop_assert!(packs.contains(&loc.pack), "pack {} missing", loc.pack);
    }
    inline.sort();
    let mut want_inline: Vec<u64> = owner
        .keys()
        .filter(|(s, _)| *s == Storage::Inline)
        .map(|(_, id)| *id)
        .collect();
    want_inline.sort();
    prop_assert_eq!(inline, want_inline, "inline values");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 300, ..ProptestConfig::default() })]

    #[test]
    fn blob_store_matches_the_model_and_owns_exactly_its_bytes(ops in proptest::collection::vec(op(), 1..40)) {
        walk(World::new(false), &ops)?;
    }

    /// The same with versioning and soft delete on: what is live is what the model says
    /// (versions and soft-deleted records are invisible to it), and the store still owns
    /// exactly the bytes its records (now many per blob) reference, counted, through
    /// version deletes and retention purges.
    #[test]
    fn with_versions_and_soft_delete_the_store_still_owns_exactly_its_bytes(
        ops in proptest::collection::vec(protected_op(), 1..40)
    ) {
        walk(World::new(true), &ops)?;
    }
}

fn walk(mut w: World, ops: &[Op]) -> std::result::Result<(), TestCaseError> {
    {
        let mut m = Model::default();
        for op in ops {
            let before = m.clone();
            let want = model(&mut m, op);
            let got = apply(&mut w, op);
            prop_assert_eq!(got, want, "{:?}", op);
            if want.is_err() {
                m = before;
            }
            check(&w, &m)?;
        }
    }
    Ok(())
}

/// Bytes received but never committed are freed when dropped.
#[test]
fn received_bytes_dropped_uncommitted_leave_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(Some(dir.path()), 8 << 20, Clock::new()).expect("open");
    let big = Chunks((0..100).map(|_| Bytes::from(vec![7u8; 1024])).collect());
    let received = rt
        .block_on(store.blobs.receive(
            &mut { big },
            u64::MAX,
            Checksums::default(),
            &Expect::default(),
        ))
        .expect("receive");
    assert_eq!(received.len(), 100 * 1024);
    assert_eq!(store.blobs.extents.list().len(), 1, "the body is in a file");
    drop(received);
    assert!(
        store.blobs.extents.list().is_empty(),
        "the file went with it"
    );
    // A body over the limit is refused part-way and leaves nothing either.
    let big = Chunks((0..100).map(|_| Bytes::from(vec![7u8; 4096])).collect());
    let err = rt
        .block_on(store.blobs.receive(
            &mut { big },
            300 * 1024,
            Checksums::default(),
            &Expect::default(),
        ))
        .err()
        .expect("too large");
    assert_eq!(err.code, ErrorCode::RequestBodyTooLarge);
    assert!(store.blobs.extents.list().is_empty());
}

/// A store written before the tag index existed gets it at open.
#[test]
fn the_tag_index_is_built_for_an_older_store() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let expr = crate::protocol::tags::parse(
        "\"k\" = 'v'",
        crate::protocol::tags::Dialect::Find {
            account_level: true,
        },
    )
    .expect("expression");
    {
        let store = Store::open(Some(dir.path()), 8 << 20, Clock::new()).expect("open");
        rt.block_on(
            store
                .blobs
                .create_container(ACCOUNT, CONTAINER, Vec::new(), None),
        )
        .expect("container");
        let received = rt
            .block_on(store.blobs.receive(
                &mut Chunks(VecDeque::from([Bytes::from_static(b"x")])),
                10,
                Checksums::default(),
                &Expect::default(),
            ))
            .expect("receive");
        let mut new = NewBlob::new(BlobType::Block);
        new.tags = vec![("k".into(), "v".into())];
        rt.block_on(store.blobs.put_blob(
            name(0),
            received,
            new,
            &Preconditions::none(Access::Replace),
        ))
        .expect("put");
        // Back to what an older store held: records only.
        let data = &store.core.data;
        for k in data.scan_prefix([crate::store::keys::TAG]).keys() {
            data.remove(k.expect("key")).expect("remove");
        }
        store
            .core
            .db
            .remove(crate::store::TAG_INDEX_KEY)
            .expect("remove");
        let (found, _) = store
            .blobs
            .find_by_tags(ACCOUNT, None, &expr, None, 10)
            .expect("find");
        assert!(found.is_empty(), "no index, nothing found");
        store.close();
    }
    let store = Store::open(Some(dir.path()), 8 << 20, Clock::new()).expect("reopen");
    let (found, _) = store
        .blobs
        .find_by_tags(ACCOUNT, None, &expr, None, 10)
        .expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, NAMES[0]);
}
