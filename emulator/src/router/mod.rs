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
mod tests;
