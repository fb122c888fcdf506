//! Azure Storage protocol rules that do not depend on a service: error codes, XML,
//! versions, conditional headers, leases, name and metadata validation, and the shared
//! models (service properties, access policies).

pub mod conditions;
pub mod error;
pub mod lease;
pub mod model;
pub mod tags;
pub mod tiers;
pub mod validate;
pub mod version;
pub mod xml;
