//! Resource state shared by services and stored by the store: metadata, access policies,
//! service properties. Stored with serde; rendered to and parsed from Azure's XML here.

mod acl;
mod service_properties;
#[cfg(test)]
mod tests;

pub use acl::{parse_signed_identifiers, write_signed_identifiers, AccessPolicy, SignedIdentifier};
#[cfg(test)]
pub use service_properties::RetentionPolicy;
pub use service_properties::{CorsRule, ServiceProperties};

/// User metadata in the order given, names with their original case.
pub type Metadata = Vec<(String, String)>;

/// Same names (case-insensitively) with exactly equal values.
pub fn metadata_equal(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.iter()
                .any(|(k2, v2)| k.eq_ignore_ascii_case(k2) && v == v2)
        })
}
