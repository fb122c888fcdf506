//! Queue keys (layout in docs/design.md).

use crate::store::keys::u64_at;
pub(crate) use crate::store::keys::{parse_qid_tail, MESSAGE, PURGE, QUEUE};

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

/// All keys of one kind for one queue id (`M qid`).
pub fn qid_prefix(kind: u8, qid: u64) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(&qid.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::parse_qid_tail;

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
    }
}
