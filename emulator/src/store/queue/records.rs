//! What the Queue service stores: one record per queue, one per message.

use crate::protocol::model::{Metadata, SignedIdentifier};
use serde::{Deserialize, Serialize};

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

impl crate::store::codec::Record for QueueRecord {}
impl crate::store::codec::Record for MessageRecord {}
