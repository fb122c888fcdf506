//! What the Blob service stores: containers, blobs (base and snapshots) and staged blocks.
//! Values are encoded by `store::codec` (a version byte, then postcard).

use super::extents::{self, Piece};
use crate::protocol::conditions::Current;
use crate::protocol::lease::Lease;
use crate::protocol::model::{Metadata, SignedIdentifier};
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobType {
    Block,
    Append,
}

impl BlobType {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobType::Block => "BlockBlob",
            BlobType::Append => "AppendBlob",
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

    pub fn len(&self) -> u64 {
        extents::total_len(&self.pieces)
    }
}

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
