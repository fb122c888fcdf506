//! Microsoft Entra ID bearer tokens at Azurite's `basic` level: the JWT must be well formed,
//! issued by an Entra ID issuer, addressed to storage, and inside its lifetime on the
//! emulator's clock. The signature is **not** verified (there is no key to verify it with
//! offline): this level is for local development, never a security boundary.
//!
//! Failures answer as Azure does: 401 `InvalidAuthenticationInfo` with a `WWW-Authenticate`
//! challenge naming the authority and the storage resource.

use crate::http::request::Service;
use crate::protocol::error::{ErrorCode, StorageError};
use base64::Engine;
use http::StatusCode;

/// Longer tokens are refused before they are decoded (Entra ID tokens are 1-3 KiB).
pub const MAX_TOKEN: usize = 16 * 1024;

/// The Azure Storage resource's application id, an audience Entra ID may issue.
const STORAGE_APP_ID: &str = "e406a681-f3d4-42a8-90b6-c2b029497af1";

/// Issuers of Entra ID tokens in the public and sovereign clouds (v1 `sts` and v2
/// `login` authorities).
const ISSUERS: &[&str] = &[
    "https://sts.windows.net/",
    "https://sts.microsoftonline.de/",
    "https://sts.chinacloudapi.cn/",
    "https://sts.windows-ppe.net",
    "https://login.microsoftonline.com/",
    "https://login.microsoftonline.us/",
    "https://login.chinacloudapi.cn/",
    "https://login.partner.microsoftonline.cn/",
];

/// Endpoint suffixes of the clouds.
const SUFFIXES: &[&str] = &[
    "core.windows.net",
    "core.chinacloudapi.cn",
    "core.usgovcloudapi.net",
    "core.cloudapi.de",
];

/// Who a valid token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPrincipal {
    /// The object id (`oid`) of the user, group member or service principal.
    pub oid: String,
    /// The tenant (`tid`).
    pub tid: String,
}

/// The 401 Azure answers for a token it does not accept.
pub fn rejected(detail: impl Into<String>, tenant: Option<&str>) -> StorageError {
    let tenant = tenant
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or("common");
    StorageError::new(ErrorCode::InvalidAuthenticationInfo)
        .with_status(StatusCode::UNAUTHORIZED)
        .with_message(
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        )
        .with_detail("AuthenticationErrorDetail", detail)
        .with_header(
            "www-authenticate",
            format!(
                "Bearer authorization_uri=https://login.microsoftonline.com/{tenant}/oauth2/authorize resource_id=https://storage.azure.com"
            ),
        )
}

fn decode_part(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    // base64url without padding, as JWTs are; padded input is tolerated.
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The claims of a JWT, undecoded beyond JSON; None when it is not a JWT at all.
pub fn claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header = decode_part(header)?;
    // An unsigned token is never an Entra ID token.
    match header.get("alg").and_then(|v| v.as_str()) {
        Some(alg) if !alg.is_empty() && !alg.eq_ignore_ascii_case("none") => {}
        _ => return None,
    }
    decode_part(payload)
}

fn audience_ok(aud: &str, account: &str, service: Service, own_endpoints: &[String]) -> bool {
    let aud = aud.strip_suffix('/').unwrap_or(aud);
    if aud == "https://storage.azure.com" || aud == STORAGE_APP_ID {
        return true;
    }
    if own_endpoints
        .iter()
        .any(|e| e.trim_end_matches('/').eq_ignore_ascii_case(aud))
    {
        return true;
    }
    let service = match service {
        Service::Blob => "blob",
        Service::Queue => "queue",
    };
    aud.strip_prefix("https://")
        .and_then(|host| host.split_once('.'))
        .is_some_and(|(acct, rest)| {
            acct == account
                && rest
                    .strip_prefix(service)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|suffix| SUFFIXES.contains(&suffix))
        })
}

fn seconds(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<i64> {
    let v = claims.get(name)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// Checks a bearer token for `account` on `service` at `now_ms`. `own_endpoints` are this
/// emulator's account URLs, also accepted as audiences.
pub fn validate(
    token: &str,
    account: &str,
    service: Service,
    now_ms: i64,
    own_endpoints: &[String],
) -> Result<TokenPrincipal, StorageError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN {
        return Err(rejected(
            "The token is longer than any Entra ID token.",
            None,
        ));
    }
    let claims = claims(token).ok_or_else(|| {
        rejected(
            "The token is not a well-formed signed JWT (header.payload.signature, base64url JSON).",
            None,
        )
    })?;
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).unwrap_or("");
    let tid = text("tid").to_string();
    let (Some(nbf), Some(exp)) = (seconds(&claims, "nbf"), seconds(&claims, "exp")) else {
        return Err(rejected(
            "The token has no lifetime (nbf and exp claims).",
            Some(&tid),
        ));
    };
    if now_ms < nbf.saturating_mul(1000) {
        return Err(rejected(
            "Lifetime validation failed. The token is not yet valid.",
            Some(&tid),
        ));
    }
    if now_ms >= exp.saturating_mul(1000) {
        return Err(rejected(
            "Lifetime validation failed. The token is expired.",
            Some(&tid),
        ));
    }
    let iss = text("iss");
    if !ISSUERS.iter().any(|p| iss.starts_with(p)) {
        return Err(rejected(
            "Issuer validation failed. Issuer did not match.",
            Some(&tid),
        ));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    if !audiences
        .iter()
        .any(|a| audience_ok(a, account, service, own_endpoints))
    {
        return Err(rejected(
            "Audience validation failed. Audience did not match.",
            Some(&tid),
        ));
    }
    Ok(TokenPrincipal {
        oid: text("oid").to_string(),
        tid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, payload: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.c2ln", e(header), e(payload))
    }

    fn token(aud: &str, iss: &str, nbf: i64, exp: i64) -> String {
        jwt(
            r#"{"alg":"RS256","typ":"JWT"}"#,
            &format!(
                r#"{{"aud":"{aud}","iss":"{iss}","iat":{nbf},"nbf":{nbf},"exp":{exp},"oid":"o1","tid":"t1"}}"#
            ),
        )
    }

    const NOW: i64 = 1_800_000_000_000;
    const ISS: &str = "https://sts.windows.net/t1/";

    fn check(t: &str) -> Result<TokenPrincipal, String> {
        validate(
            t,
            "acct",
            Service::Blob,
            NOW,
            &["https://127.0.0.1:10000/acct".into()],
        )
        .map_err(|e| {
            assert_eq!(e.status, StatusCode::UNAUTHORIZED);
            assert_eq!(e.code, ErrorCode::InvalidAuthenticationInfo);
            assert!(e.headers.iter().any(|(n, _)| *n == "www-authenticate"));
            e.details[0].1.clone()
        })
    }

    #[test]
    fn accepts_storage_audiences() {
        let s = NOW / 1000;
        for aud in [
            "https://storage.azure.com",
            "https://storage.azure.com/",
            STORAGE_APP_ID,
            "https://acct.blob.core.windows.net",
            "https://acct.blob.core.chinacloudapi.cn/",
            "https://127.0.0.1:10000/acct",
        ] {
            let p = check(&token(aud, ISS, s - 10, s + 10)).expect(aud);
            assert_eq!((p.oid.as_str(), p.tid.as_str()), ("o1", "t1"));
        }
        let v2 = token(
            "https://storage.azure.com",
            "https://login.microsoftonline.com/t1/v2.0",
            s - 1,
            s + 1,
        );
        assert!(check(&v2).is_ok());
    }

    #[test]
    fn refuses_what_azure_refuses() {
        let s = NOW / 1000;
        let refused = |t: &str, why: &str| {
            let detail = check(t).expect_err(why);
            assert!(detail.contains(why), "{detail} lacks {why}");
        };
        refused(
            &token("https://other.azure.com", ISS, s - 1, s + 1),
            "Audience",
        );
        refused(
            &token("https://other.blob.core.windows.net", ISS, s - 1, s + 1),
            "Audience",
        );
        refused(
            &token("https://acct.queue.core.windows.net", ISS, s - 1, s + 1),
            "Audience",
        );
        refused(
            &token(
                "https://storage.azure.com",
                "https://evil.example/",
                s - 1,
                s + 1,
            ),
            "Issuer",
        );
        refused(
            &token("https://storage.azure.com", ISS, s - 20, s - 10),
            "expired",
        );
        refused(
            &token("https://storage.azure.com", ISS, s + 10, s + 20),
            "not yet valid",
        );
        refused("abc", "well-formed");
        refused("a.b.c", "well-formed");
        refused("a.b.c.d", "well-formed");
        refused(&jwt(r#"{"alg":"none"}"#, r#"{"aud":"x"}"#), "well-formed");
        refused(&jwt(r#"{"typ":"JWT"}"#, r#"{"aud":"x"}"#), "well-formed");
        refused(&jwt(r#"{"alg":"RS256"}"#, "[1,2]"), "well-formed");
        refused(
            &jwt(
                r#"{"alg":"RS256"}"#,
                r#"{"aud":"https://storage.azure.com"}"#,
            ),
            "lifetime",
        );
        refused(&"a".repeat(MAX_TOKEN + 1), "longer");
    }
}
