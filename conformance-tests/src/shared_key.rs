//! Shared Key signing and SAS minting come from the `storage-client` crate (the same code
//! the app and worker use); these wrappers take base64 keys as tests hold them.

pub use storage_client::SharedKeyPolicy;

/// A Shared Key policy from an account name and base64 key.
pub fn policy(account: &str, key_b64: &str) -> SharedKeyPolicy {
    SharedKeyPolicy::from_base64(account, key_b64).expect("account key is base64")
}

/// An account SAS query string (without `?`).
pub fn account_sas_query(
    account: &str,
    key_b64: &str,
    services: &str,
    resource_types: &str,
    permissions: &str,
    expiry: &str,
) -> String {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .expect("account key is base64");
    storage_client::sas::account_sas_query(
        account,
        &key,
        services,
        resource_types,
        permissions,
        expiry,
    )
}
