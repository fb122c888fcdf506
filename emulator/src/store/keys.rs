//! Key encodings, all in one place. Every key starts with a one-byte kind tag; integers are
//! big-endian so byte order is numeric order. See docs/design.md for the layout.

pub const QUEUE: u8 = b'Q';
pub const SERVICE: u8 = b'S';
pub const MESSAGE: u8 = b'M';
/// Format 1 only (a durable visibility index and message counts); removed at open.
pub const LEGACY_VISIBLE: u8 = b'V';
pub const LEGACY_COUNT: u8 = b'C';
pub const PURGE: u8 = b'P';
pub const CONTAINER: u8 = b'K';
pub const BLOB: u8 = b'B';
pub const BLOCK: u8 = b'U';
pub const INLINE: u8 = b'D';

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
}

/// `Q account 0x00 name`
pub fn queue(account: &str, name: &str) -> Vec<u8> {
    let mut k = queue_prefix(account);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn queue_prefix(account: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + account.len() + 16);
    k.push(QUEUE);
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k
}

/// Splits a queue key into (account, name).
pub fn parse_queue(k: &[u8]) -> Option<(String, String)> {
    let rest = k.strip_prefix(&[QUEUE])?;
    let nul = rest.iter().position(|b| *b == 0)?;
    Some((
        String::from_utf8(rest[..nul].to_vec()).ok()?,
        String::from_utf8(rest[nul + 1..].to_vec()).ok()?,
    ))
}

/// `S account 0x00 service`
pub fn service(account: &str, service: &str) -> Vec<u8> {
    let mut k = vec![SERVICE];
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k.extend_from_slice(service.as_bytes());
    k
}

/// `M qid seq` → MessageRecord. `seq` is global and increasing, so a queue's messages are
/// in insertion order (the sweeper's order).
pub fn message(qid: u64, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(MESSAGE);
    k.extend_from_slice(&qid.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn parse_message(k: &[u8]) -> Option<u64> {
    u64_at(k, 9)
}

/// `P qid` → (): a queue id whose messages are still to be removed.
pub fn purge(qid: u64) -> Vec<u8> {
    let mut k = vec![PURGE];
    k.extend_from_slice(&qid.to_be_bytes());
    k
}

pub fn parse_qid_tail(k: &[u8]) -> Option<u64> {
    u64_at(k, 1)
}

/// All keys of one kind for one queue id (`M qid`).
pub fn qid_prefix(kind: u8, qid: u64) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(&qid.to_be_bytes());
    k
}

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

/// `D id` → inline bytes of a small body.
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
        assert!(message(1, 2) < message(1, 3) && message(1, u64::MAX) < message(2, 0));
        assert_eq!(parse_message(&message(4, 77)), Some(77));
        assert_eq!(
            parse_queue(&queue("acct", "q-1")),
            Some(("acct".into(), "q-1".into()))
        );
        assert!(queue("a", "b").starts_with(&queue_prefix("a")));
        assert!(!queue("ab", "c").starts_with(&queue_prefix("a")));
        assert_eq!(parse_qid_tail(&purge(42)), Some(42));
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
