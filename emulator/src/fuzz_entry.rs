//! Entry points for the fuzz targets (`fuzz/`) and for the test that replays their corpus:
//! every parser of untrusted input, fed the same bytes. Nothing here may panic, whatever
//! the input; errors are the expected outcome.

use crate::auth::{self, sas, shared_key, AuthContext, PolicySource};
use crate::clock::Clock;
use crate::config::Accounts;
use crate::http::request::{RequestParts, Service};
use crate::protocol::error::Result;
use crate::protocol::model::{AccessPolicy, ServiceProperties};
use crate::protocol::{conditions, lease, tags, validate, version, xml};
use crate::{blob, queue, router};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::net::IpAddr;

/// Stored policies and container access as a store with one public container would answer.
struct NoPolicies;

impl PolicySource for NoPolicies {
    fn queue_policy(&self, _: &str, _: &str, _: &str) -> Result<Option<AccessPolicy>> {
        Ok(None)
    }
    fn container_policy(&self, _: &str, _: &str, _: &str) -> Result<Option<AccessPolicy>> {
        Ok(None)
    }
    fn container_access(&self, _: &str, container: &str) -> Result<Option<Option<String>>> {
        Ok(match container {
            "public" => Some(Some("container".to_string())),
            "private" => Some(None),
            _ => None,
        })
    }
}

/// A raw HTTP/1.1 request head (and anything after it): routing, version, metadata,
/// conditional and range headers, lease headers, tag filters, Shared Key and SAS parsing
/// and verification, for both services.
pub fn request(data: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else {
        return;
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let raw_path = target.split_once('?').map_or(target, |(p, _)| p);
    let mut map = HeaderMap::new();
    for h in req.headers.iter() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            map.append(n, v);
        }
    }
    let peer = IpAddr::from([127, 0, 0, 1]);
    let accounts = Accounts::dev();
    let clock = Clock::new();
    let ctx = AuthContext {
        accounts: &accounts,
        clock: &clock,
        policies: &NoPolicies,
        oauth: true,
    };
    for service in [Service::Blob, Service::Queue] {
        let mut parts = RequestParts::new(service, method.clone(), target, map.clone(), peer);
        parts.tls = true;
        let version = version::resolve(parts.header("x-ms-version"), false)
            .unwrap_or_else(|_| "2025-11-05".to_string());
        let _ = validate::metadata(&parts);
        let _ = conditions::check(
            &parts,
            Some(("\"0x8D0000000000001\"", 1_700_000_000_000)),
            true,
        );
        let _ = conditions::check(&parts, None, false);
        let _ = lease::parse_action(&|n| parts.header(n).map(str::to_string));
        for name in ["x-ms-range", "range"] {
            if let Some(r) = parts.header(name) {
                let _ = blob::parse_range(r);
            }
        }
        if let Some(w) = parts.query.get("where") {
            for account_level in [true, false] {
                let _ = tags::parse(w, tags::Dialect::Find { account_level });
            }
        }
        for name in ["x-ms-if-tags", "x-ms-source-if-tags"] {
            if let Some(expr) = parts.header(name) {
                if let Ok(e) = tags::parse(expr, tags::Dialect::Condition) {
                    let _ = e.matches("c", &[("k".into(), "v".into())]);
                }
            }
        }
        let _ = crate::protocol::conditions::Preconditions::from_request(
            &parts,
            crate::protocol::conditions::Access::Replace,
        );
        let _ = shared_key::string_to_sign(&parts, "devstoreaccount1", raw_path, &version, "");
        let _ = shared_key::lite_string_to_sign(&parts, "devstoreaccount1", raw_path, &version, "");
        if let Some(t) = sas::SasToken::from_query(&parts.query) {
            let _ = sas::account_string_to_sign("devstoreaccount1", &t);
            let _ = sas::queue_string_to_sign("devstoreaccount1", "q", &t);
            let resource = sas::blob_resource("devstoreaccount1", "c", Some("b"), &t.sv);
            let _ = sas::blob_string_to_sign(&resource, "", &t);
            let _ = auth::delegation::blob_string_to_sign(&resource, "", &t, &parts);
            let _ = auth::delegation::key_fields(&t, clock.now_ms());
            let _ = sas::check_window(&t, &t.st, &t.se, clock.now_ms(), peer, false);
            let _ = sas::ip_allowed(&t.sip, peer);
        }
        if let Ok(route) = router::route(&parts) {
            let _ = auth::authorize(&ctx, &parts, &route, &version);
        }
    }
}

/// Every XML request body: QueueMessage, BlockList, SignedIdentifiers, service properties
/// (both services), Tags.
pub fn xml_bodies(data: &[u8]) {
    let _ = xml::parse(data);
    let _ = queue::messages::message_text(data);
    let _ = blob::parse_block_list(data);
    let _ = blob::tags::parse_body(data);
    let _ = crate::protocol::model::parse_signed_identifiers(data, "raup");
    let _ = crate::protocol::model::parse_signed_identifiers(data, "racwdl");
    let _ = ServiceProperties::default().apply_xml(data);
}

/// A bearer token, as the Authorization header's value after `Bearer `: JWT decoding and
/// the basic-level claim checks.
pub fn bearer_token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = auth::token::claims(text);
    let now = Clock::new().now_ms();
    for service in [Service::Blob, Service::Queue] {
        let _ = auth::token::validate(
            text,
            "devstoreaccount1",
            service,
            now,
            &["https://127.0.0.1:10000/devstoreaccount1".to_string()],
        );
    }
}
