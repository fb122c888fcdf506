//! What the app and the worker share: connection strings, SDK clients signed with Shared
//! Key (or a SAS), SAS minting, and the format of image jobs as they travel through queue
//! and blob storage.

pub mod clients;
pub mod connection_string;
pub mod delegation;
pub mod identity;
pub mod job;
pub mod job_store;
pub mod sas;
pub mod shared_key;
pub mod transport;

pub use clients::{ClientError, Storage};
pub use connection_string::{
    ConnectionStringError, Credential, StorageAccount, DEFAULT_CONNECTION_STRING, DEV_ACCOUNT,
    DEV_KEY,
};
pub use shared_key::SharedKeyPolicy;
