//! User delegation keys and the SAS they sign.
//!
//! Azure keeps no record of a key it hands out: the SAS carries the key's fields
//! (`skoid`, `sktid`, `skt`, `ske`, `sks`, `skv`) and the service derives the key again. So
//! does this emulator: the key is an HMAC of those fields under the account key, so a key
//! stops working when the account key changes, as in Azure, and nothing is stored. The
//! times enter the derivation as instants, not as text, so a client that reformats them
//! (the SDKs do) still gets the same key.

use super::sas::SasToken;
use crate::clock::parse_iso8601;
use crate::http::request::RequestParts;
use crate::protocol::error::{Result, StorageError};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The longest a key may live, counted from now (Azure: 7 days).
pub const MAX_KEY_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// What a key is derived from.
pub struct KeyFields<'a> {
    pub oid: &'a str,
    pub tid: &'a str,
    pub start_ms: i64,
    pub expiry_ms: i64,
    pub service: &'a str,
    pub version: &'a str,
    pub delegated_tid: &'a str,
}

/// The key's 32 bytes under one account key.
pub fn key(account_key: &[u8], f: &KeyFields<'_>) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(account_key) else {
        return Vec::new();
    };
    let text = format!(
        "user-delegation-key\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        f.oid, f.tid, f.start_ms, f.expiry_ms, f.service, f.version, f.delegated_tid
    );
    mac.update(text.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The key fields of a SAS, checked: the key's own window must include `now_ms`.
pub fn key_fields<'a>(t: &'a SasToken, now_ms: i64) -> Result<KeyFields<'a>> {
    let time = |name: &str, v: &str| {
        parse_iso8601(v).ok_or_else(|| {
            StorageError::auth_failed(format!("The signed key {name} '{v}' is not a valid date."))
        })
    };
    let start_ms = time("start", &t.skt)?;
    let expiry_ms = time("expiry", &t.ske)?;
    if t.sks != "b" {
        return Err(StorageError::auth_failed(format!(
            "The signed key service '{}' is not the Blob service.",
            t.sks
        )));
    }
    if now_ms < start_ms {
        return Err(StorageError::auth_failed(
            "The user delegation key is not yet valid (skt is in the future).",
        ));
    }
    if now_ms > expiry_ms {
        return Err(StorageError::auth_failed(
            "The user delegation key has expired (ske has passed).",
        ));
    }
    Ok(KeyFields {
        oid: &t.skoid,
        tid: &t.sktid,
        start_ms,
        expiry_ms,
        service: &t.sks,
        version: &t.skv,
        delegated_tid: &t.skdutid,
    })
}

/// `k1:v1\nk2:v2\n` of the signed request headers, values from the request.
fn signed_headers(names: &str, req: &RequestParts) -> String {
    names
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| format!("{n}:{}\n", req.header(n).unwrap_or("")))
        .collect()
}

/// `\nk1:v1\nk2:v2` of the signed query parameters, values from the request.
fn signed_query(names: &str, req: &RequestParts) -> String {
    names
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| format!("\n{n}:{}", req.query.get(n).unwrap_or("")))
        .collect()
}

/// A blob user delegation SAS's string-to-sign, by version.
pub fn blob_string_to_sign(
    resource: &str,
    snapshot: &str,
    t: &SasToken,
    req: &RequestParts,
) -> String {
    let v = t.sv.as_str();
    let mut s = format!(
        "{}\n{}\n{}\n{resource}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        t.sp, t.st, t.se, t.skoid, t.sktid, t.skt, t.ske, t.sks, t.skv
    );
    if v >= "2020-02-10" {
        s.push_str(&format!("{}\n{}\n{}\n", t.saoid, t.suoid, t.scid));
    }
    if v >= "2025-07-05" {
        s.push_str(&format!("{}\n{}\n", t.skdutid, t.sduoid));
    }
    s.push_str(&format!(
        "{}\n{}\n{}\n{}\n{snapshot}\n",
        t.sip, t.spr, t.sv, t.sr
    ));
    if v >= "2020-12-06" {
        s.push_str(&t.ses);
        s.push('\n');
    }
    if v >= "2026-04-06" {
        s.push_str(&signed_headers(&t.srh, req));
        s.push('\n');
        s.push_str(&signed_query(&t.srq, req));
        s.push('\n');
    }
    s.push_str(&format!(
        "{}\n{}\n{}\n{}\n{}",
        t.rscc, t.rscd, t.rsce, t.rscl, t.rsct
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_to_sign_follows_the_version() {
        let t = SasToken {
            sv: "2020-02-10".into(),
            sp: "r".into(),
            se: "2030-01-01T00:00:00Z".into(),
            sr: "b".into(),
            skoid: "o".into(),
            sktid: "t".into(),
            skt: "2029-01-01T00:00:00Z".into(),
            ske: "2029-01-02T00:00:00Z".into(),
            sks: "b".into(),
            skv: "2020-02-10".into(),
            ..Default::default()
        };
        let req = RequestParts::new(
            crate::http::request::Service::Blob,
            http::Method::GET,
            "/a/c/b",
            http::HeaderMap::new(),
            [127, 0, 0, 1].into(),
        );
        assert_eq!(
            blob_string_to_sign("/blob/a/c/b", "", &t, &req),
            "r\n\n2030-01-01T00:00:00Z\n/blob/a/c/b\no\nt\n2029-01-01T00:00:00Z\n2029-01-02T00:00:00Z\nb\n2020-02-10\n\n\n\n\n\n2020-02-10\nb\n\n\n\n\n\n"
        );
        let newest = SasToken {
            sv: "2026-04-06".into(),
            ..t
        };
        // saoid, suoid, scid, skdutid, sduoid, then ses and the two signed-request lines.
        let s = blob_string_to_sign("/blob/a/c/b", "", &newest, &req);
        assert_eq!(s.matches('\n').count(), 27, "{s:?}");
    }

    #[test]
    fn keys_depend_on_every_field_and_the_account_key() {
        let f = |oid| KeyFields {
            oid,
            tid: "t",
            start_ms: 1,
            expiry_ms: 2,
            service: "b",
            version: "v",
            delegated_tid: "",
        };
        assert_eq!(key(b"k", &f("o")), key(b"k", &f("o")));
        assert_ne!(key(b"k", &f("o")), key(b"k", &f("p")));
        assert_ne!(key(b"k", &f("o")), key(b"l", &f("o")));
        assert_eq!(key(b"k", &f("o")).len(), 32);
    }
}
