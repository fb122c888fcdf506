//! Shared Key and Shared Key Lite: string-to-sign builders (pure functions) and verification.

use crate::http::request::RequestParts;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[cfg(test)]
pub fn sign(key: &[u8], string_to_sign: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time check of a base64 signature against `key` and `string_to_sign`.
pub fn verify(key: &[u8], string_to_sign: &str, signature_b64: &str) -> bool {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// Collapses runs of whitespace to one space, outside quoted strings, and trims.
fn canonical_header_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut in_quotes = false;
    let mut prev_space = false;
    for c in v.trim().chars() {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if c.is_whitespace() && !in_quotes {
            if !prev_space {
                out.push(' ');
            }
            prev_space = true;
        } else {
            out.push(c);
            prev_space = false;
        }
    }
    out
}

pub fn canonicalized_headers(req: &RequestParts, version: &str) -> String {
    let mut headers: Vec<(String, String)> = Vec::new();
    for name in req.headers.keys() {
        let n = name.as_str();
        if !n.starts_with("x-ms-") {
            continue;
        }
        let value = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| canonical_header_value(&String::from_utf8_lossy(v.as_bytes())))
            .collect::<Vec<_>>()
            .join(",");
        headers.push((n.to_string(), value));
    }
    headers.sort();
    let mut out = String::new();
    for (n, v) in headers {
        // Before 2016-05-31 headers with empty values were left out.
        if v.is_empty() && version < "2016-05-31" {
            continue;
        }
        out.push_str(&n);
        out.push(':');
        out.push_str(&v);
        out.push('\n');
    }
    out
}

/// `/account/raw/path` plus each query parameter as `\nname:value` (names lowercased and
/// sorted, values decoded, repeats sorted and comma-joined).
pub fn canonicalized_resource(req: &RequestParts, account: &str, path: &str) -> String {
    let mut out = format!("/{account}{path}");
    let mut names: Vec<&str> = req.query.pairs().iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let mut values: Vec<&str> = req
            .query
            .pairs()
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        values.sort_unstable();
        out.push('\n');
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

fn header<'a>(req: &'a RequestParts, name: &str) -> &'a str {
    req.header(name).unwrap_or("")
}

/// The Shared Key string-to-sign. `date` is the Date line (empty when x-ms-date is used).
pub fn string_to_sign(
    req: &RequestParts,
    account: &str,
    path: &str,
    version: &str,
    date: &str,
) -> String {
    let mut content_length = header(req, "content-length");
    if content_length == "0" && version >= "2015-02-21" {
        content_length = "";
    }
    let mut s = String::with_capacity(256);
    s.push_str(req.method.as_str());
    s.push('\n');
    for value in [
        header(req, "content-encoding"),
        header(req, "content-language"),
        content_length,
        header(req, "content-md5"),
        header(req, "content-type"),
        date,
        header(req, "if-modified-since"),
        header(req, "if-match"),
        header(req, "if-none-match"),
        header(req, "if-unmodified-since"),
        header(req, "range"),
    ] {
        s.push_str(value);
        s.push('\n');
    }
    s.push_str(&canonicalized_headers(req, version));
    s.push_str(&canonicalized_resource(req, account, path));
    s
}

/// The Shared Key Lite string-to-sign.
pub fn lite_string_to_sign(
    req: &RequestParts,
    account: &str,
    path: &str,
    version: &str,
    date: &str,
) -> String {
    let mut s = format!(
        "{}\n{}\n{}\n{}\n",
        req.method.as_str(),
        header(req, "content-md5"),
        header(req, "content-type"),
        date
    );
    s.push_str(&canonicalized_headers(req, version));
    s.push('/');
    s.push_str(account);
    s.push_str(path);
    if let Some(comp) = req.query.get("comp") {
        s.push_str("?comp=");
        s.push_str(comp);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::Service;

    fn req(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
    ) -> RequestParts {
        let target = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        RequestParts::for_test(Service::Queue, method, &target, headers)
    }

    /// The example of Microsoft's "Authorize with Shared Key" page.
    #[test]
    fn documented_vector() {
        let r = req(
            "GET",
            "/mycontainer",
            Some("restype=container&comp=metadata&timeout=20"),
            &[
                ("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT"),
                ("x-ms-version", "2009-09-19"),
            ],
        );
        assert_eq!(
            string_to_sign(&r, "myaccount", "/mycontainer", "2009-09-19", ""),
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2009-09-19\n/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20"
        );
    }

    #[test]
    fn path_style_zero_length_and_repeats() {
        let r = req(
            "PUT",
            "/devstoreaccount1/q%20x",
            Some("include=snapshots&include=metadata&Timeout=5"),
            &[
                ("content-length", "0"),
                ("x-ms-version", "2025-11-05"),
                ("x-ms-date", "Tue, 05 Aug 2025 12:28:53 GMT"),
                ("x-ms-meta-Empty", ""),
                ("x-ms-client-request-id", "  a   b  "),
            ],
        );
        let sts = string_to_sign(
            &r,
            "devstoreaccount1",
            "/devstoreaccount1/q%20x",
            "2025-11-05",
            "",
        );
        assert_eq!(
            sts,
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-client-request-id:a b\nx-ms-date:Tue, 05 Aug 2025 12:28:53 GMT\nx-ms-meta-empty:\nx-ms-version:2025-11-05\n/devstoreaccount1/devstoreaccount1/q%20x\ninclude:metadata,snapshots\ntimeout:5"
        );
        // Old versions keep the explicit zero and drop empty headers.
        let old = string_to_sign(
            &r,
            "devstoreaccount1",
            "/devstoreaccount1/q%20x",
            "2015-02-20",
            "",
        );
        assert!(old.starts_with("PUT\n\n\n0\n"));
        assert!(!old.contains("x-ms-meta-empty"));
    }

    #[test]
    fn lite_vector() {
        let r = req(
            "GET",
            "/devstoreaccount1/q1",
            Some("comp=metadata&timeout=3"),
            &[("x-ms-date", "d"), ("content-type", "text/plain")],
        );
        assert_eq!(
            lite_string_to_sign(
                &r,
                "devstoreaccount1",
                "/devstoreaccount1/q1",
                "2025-11-05",
                ""
            ),
            "GET\n\ntext/plain\n\nx-ms-date:d\n/devstoreaccount1/devstoreaccount1/q1?comp=metadata"
        );
    }

    #[test]
    fn sign_and_verify() {
        let key = b"secret";
        let sig = sign(key, "hello");
        assert!(verify(key, "hello", &sig));
        assert!(!verify(key, "hello!", &sig));
        assert!(!verify(b"other", "hello", &sig));
        assert!(!verify(key, "hello", "not base64 at all"));
    }
}
