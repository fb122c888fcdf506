//! Listings: List Containers, List Blobs (prefix, delimiter, snapshots, uncommitted blobs,
//! markers).

use super::records::{BlobRecord, ContainerRecord};
use super::{internal, keys, BlobStore};
use crate::protocol::error::Result;
use crate::store::codec::decode;

/// What a List Blobs call asks for.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub marker: Option<&'a str>,
    pub max: usize,
    pub include_snapshots: bool,
    pub include_uncommitted: bool,
    pub include_versions: bool,
    /// Soft-deleted blobs, and with the above, soft-deleted snapshots and versions.
    pub include_deleted: bool,
    /// `include=deletedwithversions`: a name whose base blob is gone (or soft-deleted)
    /// but which has versions is listed once, `HasVersionsOnly`, with its latest version's
    /// properties (unless the versions are listed themselves).
    pub include_deleted_with_versions: bool,
}

/// The slot a `HasVersionsOnly` entry is emitted with (sorts before every snapshot and
/// version slot, so a marker naming it resumes at the blob's first record).
const VERSIONS_ONLY: &str = "!";

const SNAPSHOT_MARKER_SEP: char = '\u{1}';

/// One page of List Containers: (name, record) pairs and the next marker.
pub type ContainerPage = (Vec<(String, ContainerRecord)>, Option<String>);

#[derive(Debug, Clone)]
pub struct BlobEntry {
    pub name: String,
    /// Empty for the base blob and for versions.
    pub snapshot: String,
    /// A previous version's id, or the current version's (the base blob's).
    pub version_id: Option<String>,
    /// The base blob of an account with versions: its current version.
    pub is_current: bool,
    /// `include=deletedwithversions`: a deleted blob that still has versions.
    pub has_versions_only: bool,
    pub record: BlobRecord,
}

#[derive(Debug, Clone)]
pub enum ListItem {
    Blob(Box<BlobEntry>),
    Prefix(String),
}

impl BlobStore {
    /// Containers in name order; soft-deleted ones (named by their stored name, see
    /// `split_hidden`) only with `include_deleted`, each beside any live one of its name.
    pub fn list_containers(
        &self,
        account: &str,
        prefix: &str,
        marker: Option<&str>,
        max: usize,
        include_deleted: bool,
    ) -> Result<ContainerPage> {
        // A marker naming a soft-deleted container carries `!` for the separator (XML
        // cannot carry it; container names cannot hold `!`).
        let marker = marker.map(|m| m.replace('!', &keys::DELETED_CONTAINER.to_string()));
        let from = marker.as_deref().unwrap_or("").max(prefix);
        let start = keys::container(account, from);
        let now = self.now();
        let scope = keys::container_prefix(account);
        let mut out = Vec::new();
        for item in self.core.data.range(start..) {
            let (k, v) = item.map_err(internal)?;
            if !k.starts_with(&scope) {
                break;
            }
            let name = String::from_utf8_lossy(&k[scope.len()..]).into_owned();
            if !name.starts_with(prefix) {
                break;
            }
            let record: ContainerRecord = decode(&v).map_err(internal)?;
            if let Some(d) = record.deleted {
                if !include_deleted || d.purge_ms <= now {
                    continue;
                }
            }
            if out.len() == max {
                let marker = name.replace(keys::DELETED_CONTAINER, "!");
                return Ok((out, Some(marker)));
            }
            out.push((name, record));
        }
        Ok((out, None))
    }

    /// Lists blobs in name order. With a delimiter, names that continue past it after the
    /// prefix collapse into one prefix entry.
    pub fn list_blobs(
        &self,
        account: &str,
        container: &str,
        q: &ListQuery<'_>,
    ) -> Result<(Vec<ListItem>, Option<String>)> {
        let ListQuery {
            prefix,
            delimiter,
            marker,
            max,
            include_snapshots,
            include_uncommitted: _,
            include_versions,
            include_deleted,
            include_deleted_with_versions,
        } = *q;
        let versions_only = include_deleted_with_versions && !include_versions;
        let now = self.now();
        let scope = keys::blob_scope(crate::store::keys::BLOB, account, container);
        // Markers are a blob name, or `name SEP snapshot` when a page ends inside a blob's
        // snapshots.
        let (marker_name, marker_snapshot) =
            match marker.and_then(|m| m.split_once(SNAPSHOT_MARKER_SEP)) {
                Some((n, s)) => (Some(n), Some(s)),
                None => (marker, None),
            };
        let from = marker_name.unwrap_or("").max(prefix);
        let mut start = scope.clone();
        start.extend_from_slice(from.as_bytes());
        if let (Some(snap), Some(name)) = (marker_snapshot, marker_name) {
            if name == from {
                start = keys::blob(account, container, name, snap);
            }
        }
        let mut out: Vec<ListItem> = Vec::new();
        // The marker names the first entry of this page (a blob or a prefix not yet listed).
        let mut last_prefix: Option<String> = None;
        // Adds one entry; Some(next marker) when the page is already full.
        let emit = |name: String,
                    slot: String,
                    record: BlobRecord,
                    out: &mut Vec<ListItem>,
                    last_prefix: &mut Option<String>|
         -> Option<String> {
            let snapshot = slot;
            let collapsed = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                name[prefix.len()..]
                    .find(d)
                    .map(|i| name[..prefix.len() + i + d.len()].to_string())
            });
            if collapsed.is_some() && *last_prefix == collapsed {
                return None;
            }
            if out.len() == max {
                return Some(match collapsed {
                    Some(p) => p,
                    None if snapshot.is_empty() => name,
                    None => format!("{name}{SNAPSHOT_MARKER_SEP}{snapshot}"),
                });
            }
            match collapsed {
                Some(p) => {
                    *last_prefix = Some(p.clone());
                    out.push(ListItem::Prefix(p));
                }
                None if snapshot == VERSIONS_ONLY => {
                    out.push(ListItem::Blob(Box::new(BlobEntry {
                        name,
                        snapshot: String::new(),
                        version_id: None,
                        is_current: false,
                        has_versions_only: true,
                        record,
                    })))
                }
                None => {
                    let (snapshot, version_id, is_current) = match keys::slot_version(&snapshot) {
                        Some(v) => (String::new(), Some(v.to_string()), false),
                        None if snapshot.is_empty() => (
                            snapshot,
                            record.version_id.clone(),
                            record.version_id.is_some() && record.deleted.is_none(),
                        ),
                        None => (snapshot, None, false),
                    };
                    out.push(ListItem::Blob(Box::new(BlobEntry {
                        name,
                        snapshot,
                        version_id,
                        is_current,
                        has_versions_only: false,
                        record,
                    })))
                }
            }
            None
        };
        // Blobs with staged blocks but nothing committed (include=uncommittedblobs).
        let staged = if q.include_uncommitted {
            self.staged_only_names(account, container, from, prefix)?
        } else {
            Vec::new()
        };
        let mut staged = staged.into_iter().peekable();
        // deletedwithversions: the latest version of the name being scanned, until its
        // base blob shows it has a current version.
        let mut pending: Option<(String, BlobRecord)> = None;
        for item in self.core.data.range(start..) {
            let (k, v) = item.map_err(internal)?;
            if !k.starts_with(&scope) {
                break;
            }
            let Some((name, snapshot)) = keys::parse_blob_tail(&k[scope.len()..]) else {
                continue;
            };
            if pending.as_ref().is_some_and(|(n, _)| *n != name) {
                if let Some((n, r)) = pending.take() {
                    if let Some(next) = emit(n, VERSIONS_ONLY.into(), r, &mut out, &mut last_prefix)
                    {
                        return Ok((out, Some(next)));
                    }
                }
            }
            let is_version = keys::slot_version(&snapshot).is_some();
            if versions_only && is_version && name.starts_with(prefix) {
                let record: BlobRecord = decode(&v).map_err(internal)?;
                if record.deleted.is_none_or(|d| d.purge_ms > now) {
                    pending = Some((name, record));
                }
                continue;
            }
            if snapshot.is_empty() && pending.as_ref().is_some_and(|(n, _)| *n == name) {
                let base: BlobRecord = decode(&v).map_err(internal)?;
                if Self::is_live(&base, "", now) {
                    pending = None;
                }
            }
            if is_version && !include_versions
                || !is_version && !snapshot.is_empty() && !include_snapshots
            {
                continue;
            }
            if !name.starts_with(prefix) {
                if name.as_str() > prefix {
                    break;
                }
                continue;
            }
            while let Some(s) = staged.next_if(|s| s.as_str() < name.as_str()) {
                if let Some(next) = emit(
                    s,
                    String::new(),
                    BlobRecord::uncommitted(),
                    &mut out,
                    &mut last_prefix,
                ) {
                    return Ok((out, Some(next)));
                }
            }
            let record: BlobRecord = decode(&v).map_err(internal)?;
            match record.deleted {
                Some(d) if !include_deleted || d.purge_ms <= now => continue,
                None if !Self::is_live(&record, &snapshot, now) => continue,
                _ => {}
            }
            if let Some(next) = emit(name, snapshot, record, &mut out, &mut last_prefix) {
                return Ok((out, Some(next)));
            }
        }
        if let Some((n, r)) = pending.take() {
            if let Some(next) = emit(n, VERSIONS_ONLY.into(), r, &mut out, &mut last_prefix) {
                return Ok((out, Some(next)));
            }
        }
        for s in staged {
            if let Some(next) = emit(
                s,
                String::new(),
                BlobRecord::uncommitted(),
                &mut out,
                &mut last_prefix,
            ) {
                return Ok((out, Some(next)));
            }
        }
        Ok((out, None))
    }

    /// Names (≥ `from`, starting with `prefix`) that have staged blocks but no committed blob.
    fn staged_only_names(
        &self,
        account: &str,
        container: &str,
        from: &str,
        prefix: &str,
    ) -> Result<Vec<String>> {
        let scope = keys::blob_scope(crate::store::keys::BLOCK, account, container);
        let mut start = scope.clone();
        start.extend_from_slice(from.as_bytes());
        let mut names: Vec<String> = Vec::new();
        for item in self.core.data.range(start..).keys() {
            let k = item.map_err(internal)?;
            if !k.starts_with(&scope) {
                break;
            }
            let tail = &k[scope.len()..];
            let Some(nul) = tail.iter().position(|b| *b == 0) else {
                continue;
            };
            let name = String::from_utf8_lossy(&tail[..nul]).into_owned();
            if !name.starts_with(prefix) {
                if name.as_str() > prefix {
                    break;
                }
                continue;
            }
            if names.last() != Some(&name) && self.blob(account, container, &name, "")?.is_none() {
                names.push(name);
            }
        }
        Ok(names)
    }
}
