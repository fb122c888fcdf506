//! The kind tags of every key, in one place so that two services can never collide, and
//! what both share. Every key starts with its tag; integers are big-endian so byte order is
//! numeric order. Each service builds its own keys (`queue/keys.rs`, `blob/keys.rs`); the
//! layout is in docs/design.md.

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
/// Where a packed small body is (`E id → Loc`).
pub const PACKED: u8 = b'E';
pub const TAG: u8 = b'T';
pub const PAGE: u8 = b'G';
pub const REFCOUNT: u8 = b'R';
/// Deadlines: soft-deleted data to purge, blobs to expire.
pub const DEADLINE: u8 = b'X';
/// Blob event subscriptions (`N name`) and events waiting for delivery (`O seq`).
pub const SUBSCRIPTION: u8 = b'N';
pub const OUTBOX: u8 = b'O';

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
}

/// `S account 0x00 service`
pub fn service(account: &str, service: &str) -> Vec<u8> {
    let mut k = vec![SERVICE];
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k.extend_from_slice(service.as_bytes());
    k
}

/// The id after a one-byte kind tag (`P qid`, `D id`).
pub fn parse_qid_tail(k: &[u8]) -> Option<u64> {
    u64_at(k, 1)
}
