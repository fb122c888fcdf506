//! Shared Key signing for the Azure SDK for Rust (a per-try pipeline policy), and account
//! SAS generation. The SDK only ships Entra ID and SAS-URL support.

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

fn hmac_b64(key: &[u8], data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[derive(Debug, Clone)]
pub struct SharedKeyPolicy {
    account: String,
    key: Vec<u8>,
}

impl SharedKeyPolicy {
    pub fn new(account: impl Into<String>, base64_key: &str) -> Self {
        Self {
            account: account.into(),
            key: STANDARD.decode(base64_key).expect("account key is base64"),
        }
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
        let sig = hmac_b64(&self.key, &self.string_to_sign(request));
        request.insert_header(AUTHORIZATION, format!("SharedKey {}:{}", self.account, sig));
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// An account SAS query string (without `?`), version 2021-12-02.
pub fn account_sas_query(
    account: &str,
    key_b64: &str,
    services: &str,
    resource_types: &str,
    permissions: &str,
    expiry: &str,
) -> String {
    let sv = "2021-12-02";
    let spr = "https,http";
    let sts = format!(
        "{account}\n{permissions}\n{services}\n{resource_types}\n\n{expiry}\n\n{spr}\n{sv}\n\n"
    );
    let key = STANDARD.decode(key_b64).expect("account key is base64");
    let sig = hmac_b64(&key, &sts);
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "sv={sv}&ss={services}&srt={resource_types}&sp={permissions}&se={}&spr={}&sig={}",
        enc(expiry),
        enc(spr),
        enc(&sig)
    )
}
