//! Blob Batch (`POST ?comp=batch`, account or container): a `multipart/mixed` body of up to
//! 256 Delete Blob or Set Blob Tier subrequests, all of one kind. Each subrequest is an
//! HTTP request of its own: routed, authorized (its own Shared Key or SAS, else the
//! batch's SAS) and dispatched like any other, and answered in its own part with its own
//! status, headers and error. They run concurrently, so they share the store's group
//! commit. A batch that cannot be read is answered, as Azure does, by a 202 whose single
//! part (without a Content-ID) carries the error.
//!
//! https://learn.microsoft.com/rest/api/storageservices/blob-batch

use crate::auth::{self, AuthContext, Principal};
use crate::http::body::Body;
use crate::http::request::{RequestParts, Service};
use crate::http::response::{error_reply, Reply};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::router::{self, BlobOp, Operation};
use crate::state::Ctx;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;

/// Most subrequests one batch may hold.
const MAX_SUBREQUESTS: usize = 256;
/// Largest batch body (256 subrequests with their headers fit with room to spare).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// The SAS fields a subrequest without credentials of its own takes from the batch.
const SAS_FIELDS: [&str; 12] = [
    "sv", "ss", "srt", "sp", "st", "se", "sip", "spr", "si", "sr", "ses", "sig",
];

/// One subrequest as read from the body.
struct Sub {
    content_id: Option<String>,
    method: Method,
    target: String,
    headers: HeaderMap,
}

fn invalid(message: &str) -> StorageError {
    StorageError::new(ErrorCode::InvalidInput)
        .with_message(format!("One of the request inputs is not valid. {message}"))
}

/// The boundary of `multipart/mixed; boundary=...`.
fn boundary(ctx: &Ctx<'_>) -> Result<String> {
    let ct = ctx.req.header("content-type").unwrap_or_default();
    let bad = || StorageError::invalid_header("Content-Type", ct);
    let (kind, params) = ct.split_once(';').ok_or_else(bad)?;
    if !kind.trim().eq_ignore_ascii_case("multipart/mixed") {
        return Err(bad());
    }
    params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or_else(bad)
}

/// Lines of `text`, CRLF or LF ended.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l))
}

fn parse(body: &[u8], boundary: &str) -> Result<Vec<Sub>> {
    let text = std::str::from_utf8(body).map_err(|_| invalid("The body is not UTF-8."))?;
    let delimiter = format!("--{boundary}");
    let end = format!("--{boundary}--");
    let mut parts: Vec<Vec<&str>> = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let mut closed = false;
    for line in lines(text) {
        if line == end {
            if let Some(p) = current.take() {
                parts.push(p);
            }
            closed = true;
            break;
        }
        if line == delimiter {
            if let Some(p) = current.take() {
                parts.push(p);
            }
            current = Some(Vec::new());
            continue;
        }
        if let Some(p) = current.as_mut() {
            p.push(line);
        }
    }
    if !closed {
        return Err(invalid("The batch body has no closing boundary."));
    }
    let mut subs = Vec::with_capacity(parts.len());
    for part in parts {
        let mut it = part.into_iter();
        // The part's own headers, up to the blank line.
        let mut content_id = None;
        for line in it.by_ref() {
            if line.is_empty() {
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| invalid("A part header is malformed."))?;
            if k.trim().eq_ignore_ascii_case("content-id") {
                content_id = Some(v.trim().to_string());
            }
        }
        let request_line = it
            .by_ref()
            .find(|l| !l.is_empty())
            .ok_or_else(|| invalid("A part holds no request."))?;
        let mut words = request_line.split_whitespace();
        let (Some(method), Some(target), Some(_version)) =
            (words.next(), words.next(), words.next())
        else {
            return Err(invalid("A subrequest line is malformed."));
        };
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| invalid("A subrequest method is malformed."))?;
        let mut headers = HeaderMap::new();
        for line in it {
            if line.is_empty() {
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| invalid("A subrequest header is malformed."))?;
            let name = HeaderName::from_bytes(k.trim().as_bytes())
                .map_err(|_| invalid("A subrequest header name is malformed."))?;
            let value = HeaderValue::from_str(v.trim())
                .map_err(|_| invalid("A subrequest header value is malformed."))?;
            headers.append(name, value);
        }
        let target = if target.starts_with('/') {
            target.to_string()
        } else {
            // An absolute URL: its path and query.
            let uri: http::Uri = target
                .parse()
                .map_err(|_| invalid("A subrequest URL is malformed."))?;
            uri.path_and_query()
                .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string())
        };
        subs.push(Sub {
            content_id,
            method,
            target,
            headers,
        });
    }
    if subs.is_empty() {
        return Err(invalid("The batch holds no subrequests."));
    }
    Ok(subs)
}

/// A subrequest as a request of its own: the batch's Host where it sends none, and the
/// batch's SAS where it carries no credentials. (Its version is the batch's, but it is not
/// added to its headers: the SDKs sign subrequests without one.)
fn sub_parts(ctx: &Ctx<'_>, sub: &Sub) -> RequestParts {
    let mut headers = sub.headers.clone();
    if !headers.contains_key("host") {
        if let Some(v) = ctx.req.headers.get("host") {
            headers.insert(http::header::HOST, v.clone());
        }
    }
    let mut target = sub.target.clone();
    let has_own = headers.contains_key("authorization") || target.contains("sig=");
    if !has_own && matches!(ctx.principal, Principal::Sas { .. }) {
        let sas: Vec<String> = ctx
            .req
            .query
            .pairs()
            .iter()
            .filter(|(k, _)| SAS_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={}", storage_encode(v)))
            .collect();
        if !sas.is_empty() {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(&sas.join("&"));
        }
    }
    let mut parts = RequestParts::new(
        Service::Blob,
        sub.method.clone(),
        &target,
        headers,
        ctx.req.peer_ip,
    );
    // A subrequest arrives over the batch's connection.
    parts.tls = ctx.req.tls;
    parts
}

fn storage_encode(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Runs one subrequest through routing, authorization and dispatch.
async fn run(ctx: &Ctx<'_>, parts: &RequestParts) -> (Reply, String) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let now = ctx.app.clock.now_ms();
    let result = async {
        let route = router::route(parts)?;
        let op = match route.op {
            Operation::Blob(op @ (BlobOp::DeleteBlob | BlobOp::SetBlobTier)) => op,
            _ => {
                return Err(invalid(
                    "Only Delete Blob and Set Blob Tier may be batched.",
                ))
            }
        };
        let auth_ctx = AuthContext {
            accounts: &ctx.app.config.accounts,
            clock: &ctx.app.clock,
            policies: ctx.app.as_ref(),
            oauth: ctx.app.config.oauth,
        };
        let principal = auth::authorize(&auth_ctx, parts, &route, ctx.version)?;
        let sub_ctx = Ctx {
            app: ctx.app,
            req: parts,
            route: &route,
            version: ctx.version,
            principal,
        };
        Box::pin(super::dispatch(&sub_ctx, op, Body::empty())).await
    }
    .await;
    let reply = match result {
        Ok(r) => r,
        Err(e) => error_reply(&e, &request_id, now, false),
    };
    (reply, request_id)
}

/// The kind of operation a subrequest is (for the one-kind rule), or why it is refused.
fn kind(parts: &RequestParts, container: Option<&str>) -> Result<BlobOp> {
    let route = router::route(parts).map_err(|_| invalid("A subrequest URL is not a blob."))?;
    if let Some(c) = container {
        if route.container.as_deref() != Some(c) {
            return Err(invalid("A subrequest names a blob of another container."));
        }
    }
    match route.op {
        Operation::Blob(op @ (BlobOp::DeleteBlob | BlobOp::SetBlobTier)) => Ok(op),
        _ => Err(invalid(
            "Only Delete Blob and Set Blob Tier may be batched.",
        )),
    }
}

fn status_line(status: StatusCode) -> String {
    format!(
        "HTTP/1.1 {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

async fn render(
    out: &mut String,
    content_id: Option<&str>,
    reply: Reply,
    request_id: &str,
    version: &str,
) {
    out.push_str("Content-Type: application/http\r\n");
    if let Some(id) = content_id {
        out.push_str(&format!("Content-ID: {id}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&status_line(reply.status));
    out.push_str("\r\n");
    for (name, value) in &reply.headers {
        if let Ok(v) = value.to_str() {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    out.push_str(&format!(
        "x-ms-request-id: {request_id}\r\nx-ms-version: {version}\r\n"
    ));
    let body = reply
        .body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    out.push_str(&String::from_utf8_lossy(&body));
    if !body.is_empty() {
        out.push_str("\r\n");
    }
}

pub async fn submit(ctx: &Ctx<'_>, container: Option<&str>, body: Body) -> Result<Reply> {
    let boundary = boundary(ctx)?;
    let bytes = body.collect(MAX_BODY).await?;
    let subs = parse(&bytes, &boundary).and_then(|subs| {
        if subs.len() > MAX_SUBREQUESTS {
            return Err(StorageError::new(ErrorCode::ExceedsMaxBatchRequestCount));
        }
        let parts: Vec<RequestParts> = subs.iter().map(|s| sub_parts(ctx, s)).collect();
        let mut first = None;
        for p in &parts {
            let op = kind(p, container)?;
            if first.is_some_and(|f| f != op) {
                return Err(StorageError::new(
                    ErrorCode::AllBatchSubRequestsShouldBeSameApi,
                ));
            }
            first = Some(op);
        }
        Ok((subs, parts))
    });
    let response_boundary = format!("batchresponse_{}", uuid::Uuid::new_v4());
    let mut out = String::new();
    match subs {
        Err(e) => {
            out.push_str(&format!("--{response_boundary}\r\n"));
            let id = uuid::Uuid::new_v4().to_string();
            let reply = error_reply(&e, &id, ctx.app.clock.now_ms(), false);
            render(&mut out, None, reply, &id, ctx.version).await;
        }
        Ok((subs, parts)) => {
            let results = futures_util::future::join_all(parts.iter().map(|p| run(ctx, p))).await;
            for (sub, (reply, id)) in subs.iter().zip(results) {
                out.push_str(&format!("--{response_boundary}\r\n"));
                render(&mut out, sub.content_id.as_deref(), reply, &id, ctx.version).await;
            }
        }
    }
    out.push_str(&format!("--{response_boundary}--\r\n"));
    let mut reply = Reply::empty(StatusCode::ACCEPTED);
    reply.body = crate::http::response::bytes_body(out.into());
    reply.set(
        "content-type",
        format!("multipart/mixed; boundary={response_boundary}"),
    );
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_sdks_send() {
        let body = "--batch_b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 0\r\n\r\nDELETE /devstoreaccount1/c/a%20b HTTP/1.1\r\nx-ms-date: Tue, 01 Dec 2026 00:00:00 GMT\r\nAuthorization: SharedKey devstoreaccount1:abc=\r\nContent-Length: 0\r\n\r\n\r\n--batch_b\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nPUT /devstoreaccount1/c/x?comp=tier HTTP/1.1\r\nx-ms-access-tier: Cool\r\n\r\n\r\n--batch_b--\r\n";
        let subs = parse(body.as_bytes(), "batch_b").expect("parse");
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].content_id.as_deref(), Some("0"));
        assert_eq!(subs[0].method, Method::DELETE);
        assert_eq!(subs[0].target, "/devstoreaccount1/c/a%20b");
        assert!(subs[0].headers.contains_key("authorization"));
        assert_eq!(
            subs[1]
                .headers
                .get("x-ms-access-tier")
                .map(|v| v.as_bytes()),
            Some(&b"Cool"[..])
        );
        assert!(
            parse(b"--batch_b\r\n", "batch_b").is_err(),
            "no closing boundary"
        );
        assert!(parse(b"--batch_b--\r\n", "batch_b").is_err(), "no parts");
    }
}
