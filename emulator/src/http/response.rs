//! Building responses: the one place errors become XML, and where the headers every
//! response carries are added.

use crate::clock::{iso8601_7, rfc1123};
use crate::protocol::error::StorageError;
use crate::protocol::xml::{escape, DECL};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};

pub type ResBody = BoxBody<Bytes, std::io::Error>;

/// What a handler answers, before the common headers are added.
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ResBody,
    /// A HEAD answer that reports a length without sending the body.
    pub head_length: Option<u64>,
    /// Original-case names of the `x-ms-meta-*` headers set (see `header_case`).
    pub meta_case: Vec<String>,
}

fn full(b: impl Into<Bytes>) -> ResBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A body fed by a channel: a blocking reader sends chunks, at most a few in flight, so a
/// download of any size uses bounded memory.
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }
}

pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>) -> ResBody {
    ChannelBody { rx }.boxed()
}

/// A body that ends in an error after `after` bytes (a fault rule's cut): the connection
/// is dropped mid-body, so the client sees fewer bytes than `Content-Length` promised.
struct CutBody {
    inner: ResBody,
    left: u64,
}

impl http_body::Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        if self.left == 0 {
            return Poll::Ready(Some(Err(std::io::Error::other(
                "fault injection: response body cut",
            ))));
        }
        match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    if data.len() as u64 > self.left {
                        data.truncate(self.left as usize);
                    }
                    self.left -= data.len() as u64;
                    Poll::Ready(Some(Ok(http_body::Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            // Shorter than the cut: the error still ends it, so a cut never goes unnoticed.
            Poll::Ready(None) => {
                self.left = 0;
                Poll::Ready(Some(Err(std::io::Error::other(
                    "fault injection: response body cut",
                ))))
            }
            other => other,
        }
    }
}

pub fn cut_body(inner: ResBody, after: u64) -> ResBody {
    CutBody { inner, left: after }.boxed()
}

pub fn bytes_body(b: Bytes) -> ResBody {
    full(b)
}

pub fn empty_body() -> ResBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

impl Reply {
    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: empty_body(),
            head_length: None,
            meta_case: Vec::new(),
        }
    }

    pub fn xml(status: StatusCode, xml: String) -> Reply {
        let mut r = Reply {
            status,
            headers: Vec::new(),
            body: full(xml),
            head_length: None,
            meta_case: Vec::new(),
        };
        r.set("content-type", "application/xml");
        r
    }

    pub fn json(status: StatusCode, json: String) -> Reply {
        let mut r = Reply {
            status,
            headers: Vec::new(),
            body: full(json),
            head_length: None,
            meta_case: Vec::new(),
        };
        r.set("content-type", "application/json");
        r
    }

    /// Adds a header; values that cannot be header values are dropped (never panics).
    pub fn set(&mut self, name: &'static str, value: impl AsRef<str>) -> &mut Self {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// Adds metadata as `x-ms-meta-<name>` headers, remembering each name's case.
    pub fn set_metadata(&mut self, metadata: &[(String, String)]) -> &mut Self {
        for (k, v) in metadata {
            self.set_dynamic(&format!("x-ms-meta-{k}"), v);
            if k.bytes().any(|b| b.is_ascii_uppercase()) {
                self.meta_case.push(k.clone());
            }
        }
        self
    }

    pub fn set_dynamic(&mut self, name: &str, value: &str) -> &mut Self {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.push((n, v));
        }
        self
    }
}

/// Renders an error: `x-ms-error-code` and the XML body (HEAD gets the header only).
pub fn error_reply(err: &StorageError, request_id: &str, now_ms: i64, head: bool) -> Reply {
    let mut body = String::with_capacity(256);
    body.push_str(DECL);
    body.push_str("<Error><Code>");
    body.push_str(err.code.as_str());
    body.push_str("</Code><Message>");
    body.push_str(&escape(&format!(
        "{}\nRequestId:{request_id}\nTime:{}",
        err.message,
        iso8601_7(now_ms)
    )));
    body.push_str("</Message>");
    for (name, value) in &err.details {
        body.push('<');
        body.push_str(name);
        body.push('>');
        body.push_str(&escape(value));
        body.push_str("</");
        body.push_str(name);
        body.push('>');
    }
    body.push_str("</Error>");
    let mut reply = if head {
        Reply::empty(err.status)
    } else {
        Reply::xml(err.status, body)
    };
    reply.set("x-ms-error-code", err.code.as_str());
    for (name, value) in &err.headers {
        reply.set(name, value);
    }
    reply
}

/// The `Date` header, formatted once per second per thread (formatting is not free).
pub fn date_header(now_ms: i64) -> String {
    thread_local! {
        static CACHE: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let second = now_ms.div_euclid(1000);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != second {
            *c = (second, rfc1123(now_ms));
        }
        c.1.clone()
    })
}
