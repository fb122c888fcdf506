//! Blob keys (layout in docs/design.md).

use crate::store::keys::{BLOB, BLOCK, CONTAINER, DEADLINE, INLINE, PACKED, PAGE, REFCOUNT, TAG};

/// `K account \0` (all containers of an account).
pub fn container_prefix(account: &str) -> Vec<u8> {
    let mut k = vec![CONTAINER];
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k
}

/// `K account \0 container`
pub fn container(account: &str, container: &str) -> Vec<u8> {
    let mut k = container_prefix(account);
    k.extend_from_slice(container.as_bytes());
    k
}

/// `B|U account \0 container \0`: everything of one kind in one container.
pub fn blob_scope(kind: u8, account: &str, container: &str) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k.extend_from_slice(container.as_bytes());
    k.push(0);
    k
}

/// What the base blob has in place of a snapshot id: 0xFF sorts after every id (ids are
/// ISO 8601 text), so listings give snapshots oldest first, then the base blob, as Azure does.
const BASE: u8 = 0xFF;

/// `B account \0 container \0 blob \0 snapshot`, snapshot = 0xFF for the base blob.
pub fn blob(account: &str, container: &str, blob: &str, snapshot: &str) -> Vec<u8> {
    let mut k = blob_versions(account, container, blob);
    if snapshot.is_empty() {
        k.push(BASE);
    } else {
        k.extend_from_slice(snapshot.as_bytes());
    }
    k
}

/// `B account \0 container \0 blob \0`: a blob and its snapshots.
pub fn blob_versions(account: &str, container: &str, blob: &str) -> Vec<u8> {
    let mut k = blob_scope(BLOB, account, container);
    k.extend_from_slice(blob.as_bytes());
    k.push(0);
    k
}

/// (blob, snapshot) from what follows a `blob_scope`; snapshot is empty for the base blob.
pub fn parse_blob_tail(tail: &[u8]) -> Option<(String, String)> {
    let nul = tail.iter().position(|b| *b == 0)?;
    let name = String::from_utf8(tail[..nul].to_vec()).ok()?;
    let snapshot = match &tail[nul + 1..] {
        [BASE] => String::new(),
        s => String::from_utf8(s.to_vec()).ok()?,
    };
    Some((name, snapshot))
}

/// (account, container, blob, snapshot) of a whole `B` key.
pub fn parse_blob_key(k: &[u8]) -> Option<(String, String, String, String)> {
    let rest = k.strip_prefix(&[BLOB])?;
    let a = rest.iter().position(|b| *b == 0)?;
    let account = String::from_utf8(rest[..a].to_vec()).ok()?;
    let rest = &rest[a + 1..];
    let c = rest.iter().position(|b| *b == 0)?;
    let container = String::from_utf8(rest[..c].to_vec()).ok()?;
    let (blob, snapshot) = parse_blob_tail(&rest[c + 1..])?;
    Some((account, container, blob, snapshot))
}

/// `U account \0 container \0 blob \0`: a blob's staged blocks.
pub fn block_prefix(account: &str, container: &str, blob: &str) -> Vec<u8> {
    let mut k = blob_scope(BLOCK, account, container);
    k.extend_from_slice(blob.as_bytes());
    k.push(0);
    k
}

/// `U account \0 container \0 blob \0 blockid` → StagedBlock
pub fn block(account: &str, container: &str, blob: &str, id: &[u8]) -> Vec<u8> {
    let mut k = block_prefix(account, container, blob);
    k.extend_from_slice(id);
    k
}

/// `T account \0` (the tag index of an account).
pub fn tag_account(account: &str) -> Vec<u8> {
    let mut k = vec![TAG];
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k
}

/// `T account \0 key \0` and, with a value, `... value \0`: index entries of one tag.
pub fn tag_prefix(account: &str, key: &str, value: Option<&str>) -> Vec<u8> {
    let mut k = tag_account(account);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    if let Some(v) = value {
        k.extend_from_slice(v.as_bytes());
        k.push(0);
    }
    k
}

/// `T account \0 key \0 value \0 container \0 blob` → the blob's tags: one index entry.
pub fn tag_entry(account: &str, key: &str, value: &str, container: &str, blob: &str) -> Vec<u8> {
    let mut k = tag_prefix(account, key, Some(value));
    k.extend_from_slice(container.as_bytes());
    k.push(0);
    k.extend_from_slice(blob.as_bytes());
    k
}

/// (value, container, blob) from what follows a `tag_prefix(account, key, None)`.
pub fn parse_tag_tail(tail: &[u8]) -> Option<(String, String, String)> {
    let mut parts = tail.splitn(3, |b| *b == 0);
    let value = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let container = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let blob = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((value, container, blob))
}

/// `G account \0 container \0 blob \0 snapshot \0` (0xFF for the base blob): the page
/// runs of one page blob or snapshot.
pub fn page_prefix(account: &str, container: &str, name: &str, snapshot: &str) -> Vec<u8> {
    let mut k = blob(account, container, name, snapshot);
    k[0] = PAGE;
    k.push(0);
    k
}

/// `G ... start(8)` → PageRun: the written bytes that start at `start`.
pub fn page_run(prefix: &[u8], start: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&start.to_be_bytes());
    k
}

/// The start of a page run key under `prefix`.
pub fn parse_page_run(prefix: &[u8], k: &[u8]) -> Option<u64> {
    k.strip_prefix(prefix)
        .and_then(|t| t.try_into().ok())
        .map(u64::from_be_bytes)
}

/// `G account \0 container \0`: every page run of a container.
pub fn page_scope(account: &str, container: &str) -> Vec<u8> {
    blob_scope(PAGE, account, container)
}

/// `R id(8)` → u64: how many page runs share the bytes of piece `id`.
pub fn refcount(id: u64) -> Vec<u8> {
    let mut k = vec![REFCOUNT];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// What a previous version has in place of a snapshot id: `v` and the version id (after
/// every snapshot id, before the base blob's 0xFF).
pub const VERSION_SLOT: char = 'v';

/// The slot (the `snapshot` part of a `B` key) of version `id`.
pub fn version_slot(id: &str) -> String {
    format!("{VERSION_SLOT}{id}")
}

/// The version id a slot holds, if it is a version's.
pub fn slot_version(slot: &str) -> Option<&str> {
    slot.strip_prefix(VERSION_SLOT)
}

/// A soft-deleted container is kept under its name, this separator and its version
/// (container names cannot hold it), so a new container can take the name meanwhile.
pub const DELETED_CONTAINER: char = '\u{1}';

/// `X deadline(8) what`: `what` (a `B` or `K` key) has something due at `deadline`
/// (a purge or an expiry); the sweeper walks these in time order.
pub fn deadline(at_ms: i64, what: &[u8]) -> Vec<u8> {
    let mut k = vec![DEADLINE];
    k.extend_from_slice(&(at_ms.max(0) as u64).to_be_bytes());
    k.extend_from_slice(what);
    k
}

/// `E id` → Loc: where the packed bytes of small piece `id` are.
pub fn packed(id: u64) -> Vec<u8> {
    let mut k = vec![PACKED];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// `D id` → inline bytes of a small body (stores from before packs; still read).
pub fn inline(id: u64) -> Vec<u8> {
    let mut k = vec![INLINE];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orderings() {
        let scope = blob_scope(BLOB, "a", "c");
        let k = blob("a", "c", "dir/x y", "2025-01-01T00:00:00.0000000Z");
        assert_eq!(
            parse_blob_tail(&k[scope.len()..]),
            Some(("dir/x y".into(), "2025-01-01T00:00:00.0000000Z".into()))
        );
        assert!(
            blob("a", "c", "a", "2025") < blob("a", "c", "a", ""),
            "snapshots before the base"
        );
        assert!(blob("a", "c", "a", "") < blob("a", "c", "a/b", "2025"));
        assert_eq!(
            parse_blob_tail(&blob("a", "c", "n", "")[scope.len()..]),
            Some(("n".into(), String::new()))
        );
        assert!(block("a", "c", "b", b"id").starts_with(&block_prefix("a", "c", "b")));
        assert!(!block("a", "c", "bb", b"id").starts_with(&block_prefix("a", "c", "b")));
    }
}
