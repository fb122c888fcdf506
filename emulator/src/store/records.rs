//! Stored values. Each is one version byte followed by the postcard encoding of the
//! struct, so the format can change: a reader sees the version and migrates.

use crate::protocol::model::{Metadata, ServiceProperties, SignedIdentifier};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub const V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("unknown record version {0}")]
    Version(u8),
    #[error("corrupt record: {0}")]
    Corrupt(#[from] postcard::Error),
    #[error("empty record")]
    Empty,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![V1];
    // Serializing plain structs into a Vec cannot fail.
    out.extend(postcard::to_allocvec(value).unwrap_or_default());
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    decode_borrowed(bytes)
}

/// `decode` for records that borrow from the stored bytes (no copies of large fields).
pub fn decode_borrowed<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        Some((&V1, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(RecordError::Version(v)),
        None => Err(RecordError::Empty),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueueRecord {
    /// Internal id: message keys use it, so Clear and Delete can swap it in O(1).
    pub id: u64,
    pub metadata: Metadata,
    pub acl: Vec<SignedIdentifier>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageRecord {
    /// The random half of the message id (the other half is the key's seq).
    pub nonce: u64,
    pub text: String,
    pub inserted_ms: i64,
    /// `NEVER` for messages that do not expire.
    pub expires_ms: i64,
    pub visible_ms: i64,
    pub dequeue_count: u64,
    pub pop_receipt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceRecord {
    pub properties: ServiceProperties,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let m = MessageRecord {
            nonce: 1,
            text: "hi".into(),
            inserted_ms: 2,
            expires_ms: 3,
            visible_ms: 4,
            dequeue_count: 5,
            pop_receipt: "r".into(),
        };
        let bytes = encode(&m);
        assert_eq!(bytes[0], V1);
        assert_eq!(decode::<MessageRecord>(&bytes).expect("decode"), m);
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(
            decode::<MessageRecord>(&future),
            Err(RecordError::Version(9))
        ));
        assert!(decode::<MessageRecord>(&[]).is_err());
        assert!(decode::<MessageRecord>(&[V1, 0xff]).is_err());
    }
}
