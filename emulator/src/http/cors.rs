//! CORS: preflight answers and the headers added to actual cross-origin requests, from the
//! rules stored with the service properties.

use crate::http::request::RequestParts;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::model::CorsRule;
use http::StatusCode;

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

fn origin_allowed(rule: &CorsRule, origin: &str) -> bool {
    list(&rule.allowed_origins).any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
}

fn method_allowed(rule: &CorsRule, method: &str) -> bool {
    list(&rule.allowed_methods).any(|m| m.eq_ignore_ascii_case(method))
}

/// Allowed headers are exact names or prefixes ending in `*`.
fn header_allowed(rule: &CorsRule, header: &str) -> bool {
    let h = header.to_ascii_lowercase();
    list(&rule.allowed_headers).any(|a| {
        let a = a.to_ascii_lowercase();
        match a.strip_suffix('*') {
            Some(prefix) => h.starts_with(prefix),
            None => a == h,
        }
    })
}

fn allows_any_origin(rule: &CorsRule) -> bool {
    list(&rule.allowed_origins).any(|o| o == "*")
}

/// A preflight lacking `Origin` or `Access-Control-Request-Method` (Azure: 400).
fn missing_cors_header(name: &str) -> StorageError {
    StorageError::new(ErrorCode::InvalidHeaderValue)
        .with_message("A required CORS header is not present.")
        .with_detail("HeaderName", name)
}

/// Answers an `OPTIONS` preflight. Never authenticated.
pub fn preflight(req: &RequestParts, rules: &[CorsRule]) -> Result<Reply> {
    let origin = req
        .header("origin")
        .ok_or_else(|| missing_cors_header("Origin"))?;
    let method = req
        .header("access-control-request-method")
        .ok_or_else(|| missing_cors_header("Access-Control-Request-Method"))?;
    let requested: Vec<&str> = req
        .header("access-control-request-headers")
        .map(|h| list(h).collect())
        .unwrap_or_default();
    let rule = rules
        .iter()
        .find(|r| {
            origin_allowed(r, origin)
                && method_allowed(r, method)
                && requested.iter().all(|h| header_allowed(r, h))
        })
        .ok_or_else(|| StorageError::new(ErrorCode::CorsPreflightFailure))?;
    let mut reply = Reply::empty(StatusCode::OK);
    // The preflight names the origin even for `*` rules; the actual response then says `*`.
    reply
        .set("access-control-allow-origin", origin)
        .set("access-control-allow-credentials", "true")
        .set("access-control-allow-methods", method)
        .set("access-control-max-age", rule.max_age.to_string())
        .set("vary", "Origin");
    if !requested.is_empty() {
        reply.set("access-control-allow-headers", requested.join(","));
    }
    Ok(reply)
}

fn allow_any(rule: &CorsRule, reply: &mut Reply) {
    reply.set("access-control-allow-origin", "*");
    if !rule.exposed_headers.is_empty() {
        reply.set("access-control-expose-headers", &rule.exposed_headers);
    }
}

/// The CORS headers of an actual request, as the table under "Understanding the Vary
/// header" on Azure's CORS page has them. With an `Origin`: a specific-origin rule that
/// matches gives the origin back with `Vary: Origin`; a `*` rule gives `*` and no `Vary`;
/// no matching rule gives `Vary: Origin` alone. Without one (GET and HEAD): a `*` rule
/// still gives `*`, and otherwise `Vary: Origin`. No rules at all: nothing.
pub fn response_headers(req: &RequestParts, rules: &[CorsRule], reply: &mut Reply) {
    if rules.is_empty() {
        return;
    }
    let method = req.method.as_str();
    match req.header("origin") {
        Some(origin) => {
            match rules
                .iter()
                .find(|r| origin_allowed(r, origin) && method_allowed(r, method))
            {
                Some(rule) if allows_any_origin(rule) => allow_any(rule, reply),
                Some(rule) => {
                    reply
                        .set("access-control-allow-origin", origin)
                        .set("access-control-allow-credentials", "true")
                        .set("vary", "Origin");
                    if !rule.exposed_headers.is_empty() {
                        reply.set("access-control-expose-headers", &rule.exposed_headers);
                    }
                }
                None => {
                    reply.set("vary", "Origin");
                }
            }
        }
        None if matches!(req.method, http::Method::GET | http::Method::HEAD) => {
            match rules
                .iter()
                .find(|r| allows_any_origin(r) && method_allowed(r, method))
            {
                Some(rule) => allow_any(rule, reply),
                None => {
                    reply.set("vary", "Origin");
                }
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> CorsRule {
        CorsRule {
            allowed_origins: "http://a.com, http://b.com".into(),
            allowed_methods: "GET,PUT".into(),
            allowed_headers: "x-ms-meta-abc,x-ms-meta-data*".into(),
            exposed_headers: "x-ms-meta-*".into(),
            max_age: 500,
        }
    }

    #[test]
    fn matching() {
        let r = rule();
        assert!(origin_allowed(&r, "http://B.com"));
        assert!(!origin_allowed(&r, "http://c.com"));
        assert!(method_allowed(&r, "put") && !method_allowed(&r, "DELETE"));
        assert!(header_allowed(&r, "x-ms-meta-abc") && header_allowed(&r, "X-Ms-Meta-Data42"));
        assert!(!header_allowed(&r, "x-ms-meta-ab"));
    }
}
