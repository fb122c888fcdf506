//! Recovers the original case of `x-ms-meta-*` header names.
//!
//! Azure keeps metadata names as sent (`x-ms-meta-MyKey` reads back as `MyKey`) and SDKs
//! show them to users, but hyper lowercases header names and keeps the original case only
//! in a private extension. So the connection's byte stream is watched on its way to hyper:
//! each HTTP/1 request head is parsed (httparse), the metadata names of heads that have any
//! are queued, and bodies are skipped by their framing. Handlers take the queued names in
//! request order and use them only when they match the request's own headers, so a
//! misparse can cost case, never correctness.
//!
//! The way out is the same problem: hyper writes header names in lowercase. A handler that
//! returns metadata headers leaves their original names here; the next response head that
//! leaves the connection gets those names rewritten in place (same length, same bytes but
//! for case), and nothing else is touched.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const MAX_HEAD: usize = 256 * 1024;
const MAX_HEADERS: usize = 256;

/// Original-case metadata names: one entry per request head that carried any, and the
/// names the next response head should carry.
#[derive(Clone, Default)]
pub struct MetaNames(Arc<Mutex<Shared>>);

#[derive(Default)]
struct Shared {
    requests: VecDeque<Vec<String>>,
    response: Vec<String>,
}

impl MetaNames {
    /// Takes the names of the oldest head, if their lowercase forms are exactly `lower`.
    pub fn take_matching(&self, lower: &[String]) -> Option<Vec<String>> {
        let entry = self.0.lock().requests.pop_front()?;
        let mut a: Vec<String> = entry.iter().map(|n| n.to_ascii_lowercase()).collect();
        let mut b = lower.to_vec();
        a.sort();
        b.sort();
        (a == b).then_some(entry)
    }

    /// Names (without the `x-ms-meta-` prefix) to restore in the next response head.
    pub fn set_response(&self, names: Vec<String>) {
        self.0.lock().response = names;
    }

    /// Rewrites the metadata header names of a response head in place, if any are pending.
    fn fix_head(&self, out: &[u8]) -> Option<Vec<u8>> {
        let names = {
            let mut shared = self.0.lock();
            if shared.response.is_empty() {
                return None;
            }
            std::mem::take(&mut shared.response)
        };
        let head_end = find(out, b"\r\n\r\n").map_or(out.len(), |i| i + 4);
        let mut fixed = out.to_vec();
        for name in names {
            let needle = format!("\r\nx-ms-meta-{}:", name.to_ascii_lowercase());
            let mut from = 0;
            while let Some(i) = find(&fixed[from..head_end], needle.as_bytes()) {
                let at = from + i + "\r\nx-ms-meta-".len();
                fixed[at..at + name.len()].copy_from_slice(name.as_bytes());
                from = at;
            }
        }
        Some(fixed)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd(u8),
    Trailer,
    /// Something we do not understand: stop watching (names fall back to lowercase).
    Off,
}

pub struct Tracker {
    state: State,
    line: Vec<u8>,
    names: MetaNames,
}

impl Tracker {
    pub fn new(names: MetaNames) -> Self {
        Tracker {
            state: State::Head,
            line: Vec::new(),
            names,
        }
    }

    fn head_done(&mut self) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&self.line) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => {
                self.state = State::Off;
                return;
            }
        }
        let mut meta = Vec::new();
        let mut length = 0u64;
        let mut chunked = false;
        for h in req.headers.iter() {
            let lower = h.name.to_ascii_lowercase();
            if lower.starts_with("x-ms-meta-") {
                meta.push(h.name["x-ms-meta-".len()..].to_string());
            } else if lower == "content-length" {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
            } else if lower == "transfer-encoding" {
                chunked = String::from_utf8_lossy(h.value)
                    .to_ascii_lowercase()
                    .contains("chunked");
            }
        }
        if !meta.is_empty() {
            self.names.0.lock().requests.push_back(meta);
        }
        self.line.clear();
        self.state = if chunked {
            State::ChunkSize
        } else if length > 0 {
            State::Body(length)
        } else {
            State::Head
        };
    }

    /// Feeds bytes read from the client.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return,
                State::Head | State::ChunkSize | State::Trailer => {
                    let (b, rest) = (bytes[0], &bytes[1..]);
                    bytes = rest;
                    // Blank lines between requests are allowed and skipped.
                    if self.state == State::Head
                        && self.line.is_empty()
                        && (b == b'\r' || b == b'\n')
                    {
                        continue;
                    }
                    self.line.push(b);
                    if b != b'\n' {
                        // Copy up to the next line end in one go.
                        let n = bytes
                            .iter()
                            .position(|&c| c == b'\n')
                            .unwrap_or(bytes.len());
                        self.line.extend_from_slice(&bytes[..n]);
                        bytes = &bytes[n..];
                        if self.line.len() > MAX_HEAD {
                            self.state = State::Off;
                        }
                        continue;
                    }
                    if self.line.len() > MAX_HEAD {
                        self.state = State::Off;
                        return;
                    }
                    match self.state {
                        State::Head
                            if self.line.ends_with(b"\r\n\r\n") || self.line.ends_with(b"\n\n") =>
                        {
                            self.head_done()
                        }
                        State::ChunkSize => {
                            let text = String::from_utf8_lossy(&self.line);
                            let hex = text.split(';').next().unwrap_or("").trim();
                            match u64::from_str_radix(hex, 16) {
                                Ok(0) => self.state = State::Trailer,
                                Ok(n) => self.state = State::ChunkData(n),
                                Err(_) => self.state = State::Off,
                            }
                            self.line.clear();
                        }
                        State::Trailer => {
                            if self.line == b"\r\n" || self.line == b"\n" {
                                self.state = State::Head;
                            }
                            self.line.clear();
                        }
                        _ => {}
                    }
                }
                State::Body(n) | State::ChunkData(n) => {
                    let take = (bytes.len() as u64).min(n);
                    bytes = &bytes[take as usize..];
                    let left = n - take;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkEnd(2),
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::ChunkEnd(k) => {
                    let take = bytes.len().min(k as usize);
                    bytes = &bytes[take..];
                    let left = k - take as u8;
                    self.state = if left == 0 {
                        State::ChunkSize
                    } else {
                        State::ChunkEnd(left)
                    };
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A stream whose incoming bytes pass through a `Tracker`.
    pub struct Watched<S> {
        #[pin]
        inner: S,
        tracker: Tracker,
    }
}

impl<S> Watched<S> {
    pub fn new(inner: S, names: MetaNames) -> Self {
        Watched {
            inner,
            tracker: Tracker::new(names),
        }
    }
}

/// Response heads are written before their bodies and are in the first buffer hyper hands
/// over, so only that buffer is ever rewritten.
fn fixed_first(names: &MetaNames, buf: &[u8]) -> Option<Vec<u8>> {
    if buf.starts_with(b"HTTP/1.") {
        names.fix_head(buf)
    } else {
        None
    }
}

impl<S: AsyncRead> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &res {
            this.tracker.feed(&buf.filled()[before..]);
        }
        res
    }
}

impl<S: AsyncWrite> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        match fixed_first(&this.tracker.names, buf) {
            Some(fixed) => this.inner.poll_write(cx, &fixed),
            None => this.inner.poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let fixed = bufs
            .first()
            .and_then(|first| fixed_first(&this.tracker.names, first));
        match fixed {
            Some(first) => {
                let mut all: Vec<io::IoSlice<'_>> = Vec::with_capacity(bufs.len());
                all.push(io::IoSlice::new(&first));
                all.extend(bufs[1..].iter().map(|b| io::IoSlice::new(b)));
                this.inner.poll_write_vectored(cx, &all)
            }
            None => this.inner.poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_ascii_lowercase()).collect()
    }

    #[test]
    fn follows_framing_across_requests_in_any_split() {
        let stream =
            b"PUT /a/q HTTP/1.1\r\nHost: x\r\nx-ms-meta-MyKey: 1\r\nContent-Length: 5\r\n\r\nx-ms-\
POST /a/q/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab\r\n\r\n0\r\nT: v\r\n\r\n\
PUT /a/q?comp=metadata HTTP/1.1\r\nX-Ms-Meta-Other_One: 2\r\nx-ms-meta-lower: 3\r\n\r\n";
        for split in [1usize, 2, 3, 7, 64, stream.len()] {
            let names = MetaNames::default();
            let mut t = Tracker::new(names.clone());
            for chunk in stream.chunks(split) {
                t.feed(chunk);
            }
            assert_eq!(
                names.take_matching(&lower(&["mykey"])),
                Some(vec!["MyKey".to_string()]),
                "split {split}"
            );
            assert_eq!(
                names.take_matching(&lower(&["Other_One", "lower"])),
                Some(vec!["Other_One".to_string(), "lower".to_string()]),
                "split {split}"
            );
            assert_eq!(names.take_matching(&[]), None);
        }
    }

    #[test]
    fn response_names_restored_in_head_only() {
        let names = MetaNames::default();
        names.set_response(vec!["MyKey".into()]);
        let out = b"HTTP/1.1 200 OK\r\nx-ms-meta-mykey: v\r\nx-ms-meta-other: w\r\n\r\n\r\nx-ms-meta-mykey:body";
        let fixed = fixed_first(&names, out).expect("fixed");
        assert_eq!(
            fixed,
            b"HTTP/1.1 200 OK\r\nx-ms-meta-MyKey: v\r\nx-ms-meta-other: w\r\n\r\n\r\nx-ms-meta-mykey:body".to_vec()
        );
        assert!(fixed_first(&names, out).is_none(), "applies once");
    }

    #[test]
    fn mismatch_is_not_used() {
        let names = MetaNames::default();
        let mut t = Tracker::new(names.clone());
        t.feed(b"PUT / HTTP/1.1\r\nx-ms-meta-A: 1\r\n\r\n");
        assert_eq!(names.take_matching(&lower(&["b"])), None);
    }

    #[test]
    fn garbage_turns_it_off() {
        let names = MetaNames::default();
        let mut t = Tracker::new(names.clone());
        t.feed(b"\x00\x01 not http\r\n\r\nPUT / HTTP/1.1\r\nx-ms-meta-A: 1\r\n\r\n");
        assert_eq!(names.take_matching(&lower(&["a"])), None);
    }
}
