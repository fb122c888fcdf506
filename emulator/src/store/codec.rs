//! Stored values. Each is one version byte followed by the postcard encoding of the
//! struct, so the format can change: a reader sees the version and migrates.

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

/// A stored value. `VERSION` is what `encode` writes; a record whose layout changed bumps
/// it and reads the older layouts in `upgrade` (postcard is positional: a field added is
/// a new version; an enum variant added at the end is not).
pub trait Record: Serialize + DeserializeOwned {
    const VERSION: u8 = V1;

    /// Reads the body of an older version.
    fn upgrade(version: u8, _body: &[u8]) -> Result<Self, RecordError> {
        Err(RecordError::Version(version))
    }
}

pub fn encode<T: Record>(value: &T) -> Vec<u8> {
    let mut out = vec![T::VERSION];
    // Serializing plain structs into a Vec cannot fail.
    out.extend(postcard::to_allocvec(value).unwrap_or_default());
    out
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        Some((&v, rest)) if v == T::VERSION => Ok(postcard::from_bytes(rest)?),
        Some((&v, rest)) => T::upgrade(v, rest),
        None => Err(RecordError::Empty),
    }
}

impl Record for Vec<(String, String)> {}

/// `decode` for records that borrow from the stored bytes (no copies of large fields).
pub fn decode_borrowed<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, RecordError> {
    match bytes.split_first() {
        Some((&V1, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(RecordError::Version(v)),
        None => Err(RecordError::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::records::MessageRecord;

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
