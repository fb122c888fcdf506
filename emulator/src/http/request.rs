//! The parts of an HTTP request that routing, auth and handlers read. No hyper types leak
//! past this point: the listener converts once.

use http::{HeaderMap, Method};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Blob,
    Queue,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Blob => "blob",
            Service::Queue => "queue",
        }
    }
}

/// Query string, decoded. Names are lowercased (Azure treats them case-insensitively);
/// values are percent-decoded with `+` read as a space, as Azure's front end does.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[derive(Debug, Clone)]
pub struct RequestParts {
    pub method: Method,
    /// The path exactly as sent (still percent-encoded): Shared Key signs it this way.
    pub raw_path: String,
    pub query: Query,
    pub headers: HeaderMap,
    pub peer_ip: IpAddr,
    pub service: Service,
    /// `x-ms-meta-*` names with the case the client sent (see `header_case`).
    pub meta_case: Vec<String>,
    /// Arrived over TLS (`spr=https` and Bearer tokens need it).
    pub tls: bool,
    /// The `x-ms-request-id` the answer will carry (empty for subrequests and tests).
    pub request_id: String,
}

impl RequestParts {
    /// The one way a request is built, by the listener, copy sources, tests and fuzzing:
    /// `target` is the request target as sent (`/path` and `?query` if any).
    pub fn new(
        service: Service,
        method: Method,
        target: &str,
        headers: HeaderMap,
        peer_ip: IpAddr,
    ) -> RequestParts {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        RequestParts {
            method,
            raw_path: path.to_string(),
            query: Query::parse(query),
            headers,
            peer_ip,
            service,
            meta_case: Vec::new(),
            tls: false,
            request_id: String::new(),
        }
    }

    /// A request from loopback with these headers (tests; header pairs must be valid).
    #[cfg(test)]
    pub fn for_test(
        service: Service,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Self {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        let method = method.parse().expect("method");
        RequestParts::new(service, method, target, map, [127, 0, 0, 1].into())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn host(&self) -> Option<&str> {
        self.header("host")
    }
}
