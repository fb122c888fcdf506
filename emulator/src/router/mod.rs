//! Pure routing: (method, host, path, query) → the account and a typed operation.
//!
//! Routing runs before auth because SAS permissions and anonymous access depend on the
//! operation. Nothing here touches the store.

pub mod blob;

pub use blob::BlobOp;

use crate::http::request::{RequestParts, Service};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use http::Method;
use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOp {
    ListQueues,
    GetServiceProperties,
    SetServiceProperties,
    GetServiceStats,
    CreateQueue,
    DeleteQueue,
    GetQueueMetadata,
    SetQueueMetadata,
    GetQueueAcl,
    SetQueueAcl,
    PutMessage,
    GetMessages,
    PeekMessages,
    ClearMessages,
    DeleteMessage,
    UpdateMessage,
}

impl QueueOp {
    pub fn name(&self) -> &'static str {
        match self {
            QueueOp::ListQueues => "ListQueues",
            QueueOp::GetServiceProperties => "GetQueueServiceProperties",
            QueueOp::SetServiceProperties => "SetQueueServiceProperties",
            QueueOp::GetServiceStats => "GetQueueServiceStats",
            QueueOp::CreateQueue => "CreateQueue",
            QueueOp::DeleteQueue => "DeleteQueue",
            QueueOp::GetQueueMetadata => "GetQueueMetadata",
            QueueOp::SetQueueMetadata => "SetQueueMetadata",
            QueueOp::GetQueueAcl => "GetQueueAcl",
            QueueOp::SetQueueAcl => "SetQueueAcl",
            QueueOp::PutMessage => "PutMessage",
            QueueOp::GetMessages => "GetMessages",
            QueueOp::PeekMessages => "PeekMessages",
            QueueOp::ClearMessages => "ClearMessages",
            QueueOp::DeleteMessage => "DeleteMessage",
            QueueOp::UpdateMessage => "UpdateMessage",
        }
    }

    /// Account-level operations have no queue name.
    pub fn is_service_level(&self) -> bool {
        matches!(
            self,
            QueueOp::ListQueues
                | QueueOp::GetServiceProperties
                | QueueOp::SetServiceProperties
                | QueueOp::GetServiceStats
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Queue(QueueOp),
    /// CORS preflight (`OPTIONS`); never authenticated.
    Preflight,
    Blob(BlobOp),
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Queue(op) => op.name(),
            Operation::Preflight => "Preflight",
            Operation::Blob(op) => op.name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub service: Service,
    /// The account, with any `-secondary` suffix removed.
    pub account: String,
    pub secondary: bool,
    /// Whether the account came from the first path segment (it then appears twice in the
    /// Shared Key canonicalized resource).
    pub path_style: bool,
    pub queue: Option<String>,
    pub container: Option<String>,
    pub blob: Option<String>,
    pub message_id: Option<String>,
    pub op: Operation,
}

/// Is this Host served path-style (account in the path)? IP literals, dot-less names such
/// as `localhost` or a compose service name, and `host.docker.internal` are; anything else
/// names the account in its first DNS label, as Azure's own hosts do.
pub fn is_path_style_host(host: &str) -> bool {
    let host = strip_port(host);
    if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    !host.contains('.') || host.eq_ignore_ascii_case("host.docker.internal")
}

fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rfind(':') {
        Some(i) => &host[..i],
        None => host,
    }
}

/// Percent-decodes one path segment; bytes that are not UTF-8 make the URI invalid (a lossy
/// decode would let two different URIs name the same resource).
fn decode_segment(s: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| StorageError::new(ErrorCode::InvalidUri))
}

pub fn route(req: &RequestParts) -> Result<Route> {
    let host = req.host().unwrap_or("127.0.0.1");
    let path = req.raw_path.as_str();
    let mut segments: Vec<&str> = path.split('/').skip(1).collect();
    // Account-level requests come with or without a trailing slash; so can queue ones.
    if segments.last() == Some(&"") {
        segments.pop();
    }
    let path_style = is_path_style_host(host);
    let account_raw = if path_style {
        if segments.is_empty() {
            return Err(StorageError::new(ErrorCode::InvalidUri));
        }
        decode_segment(segments.remove(0))?
    } else {
        let h = strip_port(host);
        h.split('.').next().unwrap_or_default().to_ascii_lowercase()
    };
    let (account, secondary) = match account_raw.strip_suffix("-secondary") {
        Some(a) => (a.to_string(), true),
        None => (account_raw, false),
    };

    let mut route = Route {
        service: req.service,
        account,
        secondary,
        path_style,
        queue: None,
        container: None,
        blob: None,
        message_id: None,
        op: Operation::Preflight,
    };

    if req.method == Method::OPTIONS {
        return Ok(route);
    }
    if req.service == Service::Blob {
        // Blob names keep every character after the container, slashes included, so the
        // blob router works on the raw remainder of the path.
        let rest = if path_style {
            let trimmed = path.strip_prefix('/').unwrap_or(path);
            trimmed.find('/').map_or("", |i| &trimmed[i..])
        } else {
            path
        };
        let (container, blob, op) = blob::route(req, rest)?;
        route.container = container;
        route.blob = blob;
        route.op = Operation::Blob(op);
        return Ok(route);
    }

    let m = &req.method;
    let q = &req.query;
    let comp = q.get("comp");
    let restype = q.get("restype");
    let is_get = m == Method::GET || m == Method::HEAD;
    let op = match segments.as_slice() {
        [] => match (restype, comp) {
            (_, Some("list")) if is_get => QueueOp::ListQueues,
            (Some("service"), Some("properties")) if is_get => QueueOp::GetServiceProperties,
            (Some("service"), Some("properties")) if m == Method::PUT => {
                QueueOp::SetServiceProperties
            }
            (Some("service"), Some("stats")) if is_get => QueueOp::GetServiceStats,
            (_, Some("list")) | (Some("service"), Some("properties" | "stats")) => {
                return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb))
            }
            (_, Some(c)) => return Err(StorageError::invalid_query("comp", c)),
            (_, None) => return Err(StorageError::missing_query("comp")),
        },
        [queue] => {
            route.queue = Some(decode_segment(queue)?);
            match comp {
                None if m == Method::PUT => QueueOp::CreateQueue,
                None if m == Method::DELETE => QueueOp::DeleteQueue,
                Some("metadata") if is_get => QueueOp::GetQueueMetadata,
                Some("metadata") if m == Method::PUT => QueueOp::SetQueueMetadata,
                Some("acl") if is_get => QueueOp::GetQueueAcl,
                Some("acl") if m == Method::PUT => QueueOp::SetQueueAcl,
                None | Some("metadata" | "acl") => {
                    return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb))
                }
                Some(c) => return Err(StorageError::invalid_query("comp", c)),
            }
        }
        [queue, "messages"] => {
            route.queue = Some(decode_segment(queue)?);
            match *m {
                Method::POST => QueueOp::PutMessage,
                Method::GET
                    if q.get("peekonly")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true")) =>
                {
                    QueueOp::PeekMessages
                }
                Method::GET => QueueOp::GetMessages,
                Method::DELETE => QueueOp::ClearMessages,
                _ => return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb)),
            }
        }
        [queue, "messages", id] => {
            route.queue = Some(decode_segment(queue)?);
            route.message_id = Some(decode_segment(id)?);
            match *m {
                Method::DELETE => QueueOp::DeleteMessage,
                Method::PUT => QueueOp::UpdateMessage,
                _ => return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb)),
            }
        }
        _ => return Err(StorageError::new(ErrorCode::InvalidUri)),
    };
    route.op = Operation::Queue(op);
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(service: Service, method: &str, host: &str, target: &str) -> RequestParts {
        RequestParts::for_test(service, method, target, &[("host", host)])
    }

    #[test]
    fn queue_routing_table() {
        use QueueOp::*;
        let cases: &[(&str, &str, &str, Result<QueueOp, ErrorCode>)] = &[
            (
                "GET",
                "127.0.0.1:10001",
                "/devstoreaccount1?comp=list",
                Ok(ListQueues),
            ),
            (
                "GET",
                "127.0.0.1:10001",
                "/devstoreaccount1/?comp=list&prefix=a",
                Ok(ListQueues),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/?restype=service&comp=properties",
                Ok(GetServiceProperties),
            ),
            (
                "PUT",
                "localhost",
                "/devstoreaccount1/?restype=service&comp=properties",
                Ok(SetServiceProperties),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1-secondary/?restype=service&comp=stats",
                Ok(GetServiceStats),
            ),
            (
                "DELETE",
                "localhost",
                "/devstoreaccount1/?comp=list",
                Err(ErrorCode::UnsupportedHttpVerb),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/?comp=bogus",
                Err(ErrorCode::InvalidQueryParameterValue),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/",
                Err(ErrorCode::MissingRequiredQueryParameter),
            ),
            ("PUT", "localhost", "/devstoreaccount1/q1", Ok(CreateQueue)),
            (
                "PUT",
                "localhost",
                "/devstoreaccount1/q1?timeout=30",
                Ok(CreateQueue),
            ),
            (
                "DELETE",
                "localhost",
                "/devstoreaccount1/q1",
                Ok(DeleteQueue),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1?comp=metadata",
                Ok(GetQueueMetadata),
            ),
            (
                "HEAD",
                "localhost",
                "/devstoreaccount1/q1?comp=metadata",
                Ok(GetQueueMetadata),
            ),
            (
                "PUT",
                "localhost",
                "/devstoreaccount1/q1?comp=metadata",
                Ok(SetQueueMetadata),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1?comp=acl",
                Ok(GetQueueAcl),
            ),
            (
                "PUT",
                "localhost",
                "/devstoreaccount1/q1?comp=acl",
                Ok(SetQueueAcl),
            ),
            (
                "POST",
                "localhost",
                "/devstoreaccount1/q1?comp=acl",
                Err(ErrorCode::UnsupportedHttpVerb),
            ),
            (
                "PUT",
                "localhost",
                "/devstoreaccount1/q1?comp=weird",
                Err(ErrorCode::InvalidQueryParameterValue),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1",
                Err(ErrorCode::UnsupportedHttpVerb),
            ),
            (
                "POST",
                "localhost",
                "/devstoreaccount1/q1/messages?messagettl=-1",
                Ok(PutMessage),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1/messages?numofmessages=32",
                Ok(GetMessages),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1/messages?peekonly=true",
                Ok(PeekMessages),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1/messages?peekonly=TRUE",
                Ok(PeekMessages),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1/messages?peekonly=false",
                Ok(GetMessages),
            ),
            (
                "DELETE",
                "localhost",
                "/devstoreaccount1/q1/messages",
                Ok(ClearMessages),
            ),
            (
                "PUT",
                "localhost",
                "/devstoreaccount1/q1/messages",
                Err(ErrorCode::UnsupportedHttpVerb),
            ),
            (
                "DELETE",
                "localhost",
                "/devstoreaccount1/q1/messages/abc?popreceipt=x",
                Ok(DeleteMessage),
            ),
            (
                "PUT",
                "localhost",
                "/devstoreaccount1/q1/messages/abc?popreceipt=x&visibilitytimeout=0",
                Ok(UpdateMessage),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1/messages/abc",
                Err(ErrorCode::UnsupportedHttpVerb),
            ),
            (
                "GET",
                "localhost",
                "/devstoreaccount1/q1/other/abc/def",
                Err(ErrorCode::InvalidUri),
            ),
            ("GET", "localhost", "/", Err(ErrorCode::InvalidUri)),
            // Host-style: the account is the first DNS label and not in the path.
            (
                "PUT",
                "devstoreaccount1.queue.localhost:10001",
                "/q1",
                Ok(CreateQueue),
            ),
            (
                "GET",
                "myacct.queue.core.windows.net",
                "/?comp=list",
                Ok(ListQueues),
            ),
            (
                "POST",
                "myacct.queue.core.windows.net",
                "/q1/messages",
                Ok(PutMessage),
            ),
        ];
        for (method, host, target, expected) in cases {
            let got = route(&req(Service::Queue, method, host, target));
            match (got, expected) {
                (Ok(r), Ok(op)) => assert_eq!(
                    r.op,
                    Operation::Queue(op.clone()),
                    "{method} {host}{target}"
                ),
                (Err(e), Err(code)) => assert_eq!(e.code, *code, "{method} {host}{target}"),
                (got, expected) => {
                    panic!("{method} {host}{target}: got {got:?}, expected {expected:?}")
                }
            }
        }
    }

    #[test]
    fn resolves_accounts_and_names() {
        let r = route(&req(
            Service::Queue,
            "GET",
            "127.0.0.1:10001",
            "/devstoreaccount1-secondary/?restype=service&comp=stats",
        ))
        .expect("route");
        assert_eq!(
            (r.account.as_str(), r.secondary, r.path_style),
            ("devstoreaccount1", true, true)
        );
        let r = route(&req(
            Service::Queue,
            "DELETE",
            "acct2.queue.localhost",
            "/my-queue/messages/a%2Fb?popreceipt=1",
        ))
        .expect("route");
        assert_eq!(r.account, "acct2");
        assert!(!r.path_style);
        assert_eq!(r.queue.as_deref(), Some("my-queue"));
        assert_eq!(r.message_id.as_deref(), Some("a/b"));
        let r = route(&req(
            Service::Queue,
            "OPTIONS",
            "localhost",
            "/devstoreaccount1/q1/messages",
        ))
        .expect("route");
        assert_eq!(r.op, Operation::Preflight);
        let r = route(&req(
            Service::Blob,
            "GET",
            "localhost",
            "/devstoreaccount1/c/b",
        ))
        .expect("route");
        assert_eq!(r.op, Operation::Blob(BlobOp::GetBlob));
    }

    #[test]
    fn host_styles() {
        for h in [
            "127.0.0.1",
            "127.0.0.1:10001",
            "localhost",
            "localhost:1",
            "[::1]:10001",
            "emulator:10001",
            "host.docker.internal:10001",
        ] {
            assert!(is_path_style_host(h), "{h}");
        }
        for h in ["acct.queue.localhost", "acct.queue.core.windows.net:443"] {
            assert!(!is_path_style_host(h), "{h}");
        }
    }
}
