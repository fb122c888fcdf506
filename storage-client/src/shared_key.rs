//! Shared Key signing for the Azure SDK for Rust: a per-try pipeline policy (the SDK itself
//! only ships Entra ID and SAS-URL support).

use async_trait::async_trait;
use azure_core::http::headers::{HeaderName, AUTHORIZATION};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use azure_core::time::{to_rfc7231, OffsetDateTime};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) fn hmac_b64(key: &[u8], data: &str) -> String {
    // HMAC-SHA256 accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[derive(Clone)]
pub struct SharedKeyPolicy {
    account: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for SharedKeyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKeyPolicy")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl SharedKeyPolicy {
    /// `key` is the decoded account key.
    pub fn new(account: impl Into<String>, key: Vec<u8>) -> Self {
        Self {
            account: account.into(),
            key,
        }
    }

    /// From a base64 account key, as connection strings carry it.
    pub fn from_base64(
        account: impl Into<String>,
        base64_key: &str,
    ) -> Result<Self, base64::DecodeError> {
        Ok(Self::new(account, STANDARD.decode(base64_key)?))
    }

    /// The `Authorization` value for a request that already carries its `x-ms-date` (tests
    /// sign hand-made requests with it).
    pub fn authorization(&self, req: &Request) -> String {
        let sig = hmac_b64(&self.key, &self.string_to_sign(req));
        format!("SharedKey {}:{}", self.account, sig)
    }

    /// The Shared Key string-to-sign for versions >= 2015-02-21.
    pub fn string_to_sign(&self, req: &Request) -> String {
        let h = req.headers();
        let get = |name: &'static str| {
            h.get_optional_str(&HeaderName::from_static(name))
                .unwrap_or("")
                .to_owned()
        };
        // Content-Length is added by the transport after this policy: derive it from the body.
        let content_length = match req.body().len() {
            Some(n) if n > 0 => n.to_string(),
            _ => String::new(),
        };
        let mut s = String::with_capacity(512);
        s.push_str(req.method().as_ref());
        s.push('\n');
        for part in [
            get("content-encoding"),
            get("content-language"),
            content_length,
            get("content-md5"),
            get("content-type"),
            get("date"),
            get("if-modified-since"),
            get("if-match"),
            get("if-none-match"),
            get("if-unmodified-since"),
            get("range"),
        ] {
            s.push_str(&part);
            s.push('\n');
        }
        let mut xms: Vec<(String, String)> = h
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("x-ms-"))
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    v.as_str().trim().to_owned(),
                )
            })
            .collect();
        xms.sort();
        for (n, v) in xms {
            s.push_str(&n);
            s.push(':');
            s.push_str(&v);
            s.push('\n');
        }
        s.push('/');
        s.push_str(&self.account);
        s.push_str(req.url().path());
        let mut q: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in req.url().query_pairs() {
            q.entry(k.to_lowercase()).or_default().push(v.into_owned());
        }
        for (k, mut vs) in q {
            vs.sort();
            s.push('\n');
            s.push_str(&k);
            s.push(':');
            s.push_str(&vs.join(","));
        }
        s
    }
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        request.insert_header("x-ms-date", to_rfc7231(&OffsetDateTime::now_utc()));
        let authorization = self.authorization(request);
        request.insert_header(AUTHORIZATION, authorization);
        next[0].send(ctx, request, &next[1..]).await
    }
}
