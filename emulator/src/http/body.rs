//! Request bodies as handlers see them: a stream of byte chunks, read as they arrive so an
//! upload never sits whole in memory. Wraps hyper's body type so handlers don't name it.

use crate::protocol::error::{ErrorCode, Result, StorageError};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Duration;

pub struct Body {
    inner: Option<Incoming>,
    /// Longest wait for the next chunk.
    idle: Duration,
}

fn read_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::new(ErrorCode::InvalidInput)
        .with_message(format!("The request body could not be read: {e}"))
}

impl Body {
    pub fn new(inner: Incoming, idle: Duration) -> Body {
        Body {
            inner: Some(inner),
            idle,
        }
    }

    /// A body with nothing in it (a batch's subrequests).
    pub fn empty() -> Body {
        Body {
            inner: None,
            idle: Duration::from_secs(1),
        }
    }

    /// The next chunk of data, or None at the end. A client that sends nothing for the
    /// idle timeout gets OperationTimedOut and the connection is dropped with the request.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(None);
        };
        loop {
            let frame = match tokio::time::timeout(self.idle, inner.frame()).await {
                Ok(f) => f,
                Err(_) => {
                    self.inner = None;
                    return Err(
                        StorageError::new(ErrorCode::OperationTimedOut).with_message(format!(
                            "No request body bytes arrived for {} s.",
                            self.idle.as_secs()
                        )),
                    );
                }
            };
            match frame {
                None => {
                    self.inner = None;
                    return Ok(None);
                }
                Some(Err(e)) => return Err(read_error(e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    /// Reads a small body whole, refusing more than `max` bytes.
    pub async fn collect(mut self, max: usize) -> Result<Bytes> {
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = self.next().await? {
            if out.len() + chunk.len() > max {
                return Err(StorageError::new(ErrorCode::RequestBodyTooLarge)
                    .with_detail("MaxLimit", max.to_string()));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// Bytes on their way into the store, from wherever they come: the request body, a copy
/// source fetched over HTTP, or a blob of this emulator read from disk. One loop
/// (`blob::ingest::receive`) takes them all.
pub enum ByteStream {
    Request(Body),
    /// A copy source's response body (another host).
    Remote(Incoming),
    /// A blob of this emulator, read by a blocking task into a small channel.
    Local(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>),
}

impl ByteStream {
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        match self {
            ByteStream::Request(b) => b.next().await,
            ByteStream::Remote(inner) => loop {
                match inner.frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => {
                        return Err(StorageError::new(ErrorCode::CannotVerifyCopySource)
                            .with_status(http::StatusCode::BAD_GATEWAY)
                            .with_message(format!("The copy source failed mid-body: {e}")))
                    }
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            if !data.is_empty() {
                                return Ok(Some(data));
                            }
                        }
                    }
                }
            },
            ByteStream::Local(rx) => match rx.recv().await {
                None => Ok(None),
                Some(Ok(b)) => Ok(Some(b)),
                Some(Err(e)) => Err(StorageError::internal(e)),
            },
        }
    }
}
