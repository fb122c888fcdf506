//! What the Blob service stores: containers, blobs (base and snapshots) and staged blocks.
//! Values are encoded by `store::codec` (a version byte, then postcard).

use super::extents::{self, Piece};
use crate::protocol::conditions::Current;
use crate::protocol::lease::Lease;
use crate::protocol::model::{Metadata, SignedIdentifier};
use crate::protocol::tiers::TierState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub metadata: Metadata,
    /// `container`, `blob`, or None (private).
    pub public_access: Option<String>,
    pub acl: Vec<SignedIdentifier>,
    pub etag: String,
    pub last_modified_ms: i64,
    pub created_ms: i64,
    pub lease: Lease,
    // Version 2 (2026-12-01) added what follows.
    /// Soft-deleted (stored under a hidden name until `purge_ms`).
    pub deleted: Option<Deletion>,
}

/// When a soft-deleted container, blob, snapshot or version was deleted, and when the
/// retention in force then lets it go for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub deleted_ms: i64,
    pub purge_ms: i64,
}

impl Deletion {
    /// Deleted at `now_ms`, kept for `days`.
    pub fn after_days(now_ms: i64, days: u32) -> Deletion {
        Deletion {
            deleted_ms: now_ms,
            purge_ms: now_ms + i64::from(days) * 86_400_000,
        }
    }

    /// Whole days of retention left, as List Blobs reports them (a day begun counts).
    pub fn remaining_days(&self, now_ms: i64) -> i64 {
        let left = (self.purge_ms - now_ms).max(0);
        (left + 86_399_999) / 86_400_000
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobType {
    Block,
    Append,
    // New variants go last: postcard stores the variant's index.
    Page,
}

impl BlobType {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobType::Block => "BlockBlob",
            BlobType::Append => "AppendBlob",
            BlobType::Page => "PageBlob",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentProperties {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_md5: Option<Vec<u8>>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBlock {
    pub id: Vec<u8>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub blob_type: BlobType,
    pub pieces: Vec<Piece>,
    pub blocks: Vec<CommittedBlock>,
    pub properties: ContentProperties,
    pub metadata: Metadata,
    pub etag: String,
    pub last_modified_ms: i64,
    pub created_ms: i64,
    /// Append blobs: blocks appended so far, and whether the blob is sealed.
    pub append_blocks: u64,
    pub sealed: bool,
    pub lease: Lease,
    /// Set on the destination of a Copy Blob.
    pub copy: Option<CopyInfo>,
    pub tags: Vec<(String, String)>,
    // Version 2 (2026-12-01) added what follows.
    pub tier: TierState,
    /// Page blobs: the sequence number and the declared size.
    pub sequence_number: u64,
    pub page_size: u64,
    // Version 3 (2026-12-01) added what follows.
    /// The destination of an Incremental Copy Blob: the snapshot its last copy made.
    pub incremental: Option<IncrementalCopy>,
    // Version 4 (2026-12-01) added what follows.
    /// The version this record is, when it was written with versioning on.
    pub version_id: Option<String>,
    /// Soft-deleted: hidden from everything but listings with `include=deleted` and
    /// Undelete Blob until `purge_ms`.
    pub deleted: Option<Deletion>,
    /// Set Blob Expiry: the base blob (and its snapshots) go at this time.
    pub expiry_ms: Option<i64>,
}

/// What an incremental copy destination remembers: the snapshot of itself the last copy
/// made, and the source snapshot it copied (a later copy must not be older).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalCopy {
    pub destination_snapshot: String,
    /// `account/container/blob` of the source, and the snapshot copied.
    pub source_blob: String,
    pub source_snapshot: String,
}

/// Version 1 of `BlobRecord`, before tiers and page blobs (version 2), and incremental
/// copies (version 3): read and upgraded.
#[derive(Deserialize)]
struct BlobRecordV1 {
    blob_type: BlobType,
    pieces: Vec<Piece>,
    blocks: Vec<CommittedBlock>,
    properties: ContentProperties,
    metadata: Metadata,
    etag: String,
    last_modified_ms: i64,
    created_ms: i64,
    append_blocks: u64,
    sealed: bool,
    lease: Lease,
    copy: Option<CopyInfo>,
    tags: Vec<(String, String)>,
}

impl crate::store::codec::Record for BlobRecord {
    const VERSION: u8 = 4;

    fn upgrade(version: u8, body: &[u8]) -> Result<Self, crate::store::codec::RecordError> {
        // Postcard is positional: a later version's body is the earlier one's fields
        // followed by the fields it added, so it reads as a tuple.
        let (v, tier, sequence_number, page_size, incremental) = match version {
            1 => (
                postcard::from_bytes::<BlobRecordV1>(body)?,
                TierState::default(),
                0,
                0,
                None,
            ),
            2 => {
                let (v, t, s, p) =
                    postcard::from_bytes::<(BlobRecordV1, TierState, u64, u64)>(body)?;
                (v, t, s, p, None)
            }
            3 => {
                postcard::from_bytes::<(BlobRecordV1, TierState, u64, u64, Option<IncrementalCopy>)>(
                    body,
                )?
            }
            _ => return Err(crate::store::codec::RecordError::Version(version)),
        };
        Ok(BlobRecord {
            blob_type: v.blob_type,
            pieces: v.pieces,
            blocks: v.blocks,
            properties: v.properties,
            metadata: v.metadata,
            etag: v.etag,
            last_modified_ms: v.last_modified_ms,
            created_ms: v.created_ms,
            append_blocks: v.append_blocks,
            sealed: v.sealed,
            lease: v.lease,
            copy: v.copy,
            tags: v.tags,
            tier,
            sequence_number,
            page_size,
            incremental,
            version_id: None,
            deleted: None,
            expiry_ms: None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyInfo {
    pub id: String,
    pub source: String,
    pub length: u64,
    pub completed_ms: i64,
}

impl BlobRecord {
    /// What List Blobs shows for a blob that has only staged blocks.
    pub fn uncommitted() -> BlobRecord {
        BlobRecord {
            blob_type: BlobType::Block,
            pieces: Vec::new(),
            blocks: Vec::new(),
            properties: ContentProperties::default(),
            metadata: Vec::new(),
            etag: String::new(),
            last_modified_ms: 0,
            created_ms: 0,
            append_blocks: 0,
            sealed: false,
            lease: Lease::Available,
            copy: None,
            tags: Vec::new(),
            tier: TierState::default(),
            sequence_number: 0,
            page_size: 0,
            incremental: None,
            version_id: None,
            deleted: None,
            expiry_ms: None,
        }
    }

    /// The fields a new version of a blob starts from: fresh ETag and times, creation time
    /// and lease carried over from the version it replaces; callers fill in the content.
    pub fn successor(current: Option<&BlobRecord>, now_ms: i64, etag: String) -> BlobRecord {
        BlobRecord {
            etag,
            last_modified_ms: now_ms,
            created_ms: current.map_or(now_ms, |c| c.created_ms),
            lease: current.map(|c| c.lease.clone()).unwrap_or_default(),
            ..BlobRecord::uncommitted()
        }
    }

    /// An incremental copy destination is read through its snapshots and changed only by
    /// the next incremental copy (or deleted): everything else is refused.
    pub fn refuse_if_incremental(&self) -> crate::protocol::error::Result<()> {
        if self.incremental.is_some() {
            return Err(crate::protocol::error::StorageError::new(
                crate::protocol::error::ErrorCode::OperationNotAllowedOnIncrementalCopyBlob,
            ));
        }
        Ok(())
    }

    /// The content length: a page blob's declared size, else its bytes.
    pub fn len(&self) -> u64 {
        match self.blob_type {
            BlobType::Page => self.page_size,
            _ => extents::total_len(&self.pieces),
        }
    }
}

/// Written bytes of a page blob: `len` bytes from the run's start, stored in `piece`
/// (which other runs of the same blob and its snapshots may share; see `R` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRun {
    pub len: u64,
    pub piece: Piece,
}

impl crate::store::codec::Record for PageRun {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedBlock {
    pub size: u64,
    pub pieces: Vec<Piece>,
    /// Staging order, for Get Block List.
    pub order: u64,
}

impl ContentProperties {
    /// The content type a read reports: the stored one, `application/octet-stream` when
    /// the blob was written without one, and none after Set Blob Properties cleared it
    /// (stored as the empty string, so older records keep their default).
    pub fn reported_content_type(&self) -> Option<&str> {
        match self.content_type.as_deref() {
            None => Some("application/octet-stream"),
            Some("") => None,
            Some(t) => Some(t),
        }
    }
}

impl BlobRecord {
    /// The state preconditions are checked against.
    pub fn current(&self) -> Current<'_> {
        Current {
            etag: &self.etag,
            last_modified_ms: self.last_modified_ms,
            lease: &self.lease,
            tags: &self.tags,
        }
    }
}

impl ContainerRecord {
    pub fn current(&self) -> Current<'_> {
        Current {
            etag: &self.etag,
            last_modified_ms: self.last_modified_ms,
            lease: &self.lease,
            tags: &[],
        }
    }
}

/// `2025-08-05T12:28:53.1234567Z`: the millisecond, then `tick` 100 ns units.
pub fn snapshot_id(now_ms: i64, tick: u32) -> String {
    let base = crate::clock::iso8601_7(now_ms);
    // iso8601_7 ends in `.mmm0000Z`; the last four digits are free for ticks.
    format!("{}{:04}Z", &base[..base.len() - 5], tick.min(9999))
}

/// Azure-style ETag: `"0x` + 15 uppercase hex digits`"`, new on every write.
pub fn new_etag(now_ms: i64, unique: u64) -> String {
    format!(
        "\"0x{:015X}\"",
        ((now_ms as u64) << 16 | (unique & 0xFFFF)) & 0x0FFF_FFFF_FFFF_FFFF
    )
}

impl crate::store::codec::Record for ContainerRecord {
    const VERSION: u8 = 2;

    fn upgrade(version: u8, body: &[u8]) -> Result<Self, crate::store::codec::RecordError> {
        #[derive(Deserialize)]
        struct V1 {
            metadata: Metadata,
            public_access: Option<String>,
            acl: Vec<SignedIdentifier>,
            etag: String,
            last_modified_ms: i64,
            created_ms: i64,
            lease: Lease,
        }
        if version != 1 {
            return Err(crate::store::codec::RecordError::Version(version));
        }
        let v: V1 = postcard::from_bytes(body)?;
        Ok(ContainerRecord {
            metadata: v.metadata,
            public_access: v.public_access,
            acl: v.acl,
            etag: v.etag,
            last_modified_ms: v.last_modified_ms,
            created_ms: v.created_ms,
            lease: v.lease,
            deleted: None,
        })
    }
}
impl crate::store::codec::Record for StagedBlock {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::{decode, encode};

    /// Version-1 records (as stores written before tiers hold) and version-2 records
    /// (before incremental copies) read as the current version.
    #[test]
    fn older_blob_records_upgrade() {
        #[derive(Serialize)]
        struct V1<'a> {
            blob_type: BlobType,
            pieces: Vec<Piece>,
            blocks: Vec<CommittedBlock>,
            properties: ContentProperties,
            metadata: Metadata,
            etag: &'a str,
            last_modified_ms: i64,
            created_ms: i64,
            append_blocks: u64,
            sealed: bool,
            lease: Lease,
            copy: Option<CopyInfo>,
            tags: Vec<(String, String)>,
        }
        let old = V1 {
            blob_type: BlobType::Append,
            pieces: vec![],
            blocks: vec![],
            properties: ContentProperties::default(),
            metadata: vec![("k".into(), "v".into())],
            etag: "\"0x1\"",
            last_modified_ms: 5,
            created_ms: 4,
            append_blocks: 3,
            sealed: true,
            lease: Lease::Available,
            copy: None,
            tags: vec![("t".into(), "1".into())],
        };
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_allocvec(&old).expect("encode"));
        let r: BlobRecord = decode(&bytes).expect("upgrade");
        assert_eq!(
            (r.blob_type, r.append_blocks, r.sealed),
            (BlobType::Append, 3, true)
        );
        assert_eq!(r.tags, vec![("t".to_string(), "1".to_string())]);
        assert_eq!(r.tier, TierState::default());
        let again = encode(&r);
        assert_eq!(again[0], 4);
        assert_eq!(decode::<BlobRecord>(&again).expect("v4"), r);
        // Version 2: version 1's fields, then the tier and the page blob fields.
        let tier = TierState {
            tier: Some(crate::protocol::tiers::Tier::Cool),
            changed_ms: Some(9),
            rehydration: None,
        };
        let mut v2 = vec![2u8];
        v2.extend(postcard::to_allocvec(&(&old, &tier, 7u64, 1024u64)).expect("encode"));
        let r: BlobRecord = decode(&v2).expect("upgrade v2");
        assert_eq!((r.tier, r.sequence_number, r.page_size), (tier, 7, 1024));
        assert_eq!(r.incremental, None);
        assert_eq!(r.metadata, vec![("k".to_string(), "v".to_string())]);
        // Version 3: version 2's fields, then the incremental copy.
        let inc = IncrementalCopy {
            destination_snapshot: "s".into(),
            source_blob: "a/c/b".into(),
            source_snapshot: "t".into(),
        };
        let mut v3 = vec![3u8];
        v3.extend(
            postcard::to_allocvec(&(&old, &tier, 7u64, 1024u64, Some(&inc))).expect("encode"),
        );
        let r: BlobRecord = decode(&v3).expect("upgrade v3");
        assert_eq!(
            (r.incremental, r.version_id, r.deleted),
            (Some(inc), None, None)
        );
    }
}
