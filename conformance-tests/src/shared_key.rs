//! Shared Key signing and SAS minting come from the `storage-client` crate (the same code
//! the app and worker use); these wrappers take base64 keys as tests hold them.

pub use storage_client::SharedKeyPolicy;

/// A Shared Key policy from an account name and base64 key.
pub fn policy(account: &str, key_b64: &str) -> SharedKeyPolicy {
    SharedKeyPolicy::from_base64(account, key_b64).expect("account key is base64")
}

/// The `x-ms-date` and `Authorization` headers that sign a request with Shared Key: `url`
/// is the full URL, `headers` the request's other headers, `body_len` its length.
pub fn sign(
    account: &str,
    key_b64: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body_len: usize,
) -> [(&'static str, String); 2] {
    use azure_core::http::{Method, Request, Url};
    let date = azure_core::time::to_rfc7231(&azure_core::time::OffsetDateTime::now_utc());
    let method = match method {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        other => panic!("no Shared Key request uses {other}"),
    };
    let mut req = Request::new(Url::parse(url).expect("request URL"), method);
    req.insert_header("x-ms-date", date.clone());
    for (k, v) in headers {
        req.insert_header(k.to_ascii_lowercase(), v.to_string());
    }
    req.set_body(vec![0u8; body_len]);
    let auth = policy(account, key_b64).authorization(&req);
    [("x-ms-date", date), ("Authorization", auth)]
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
