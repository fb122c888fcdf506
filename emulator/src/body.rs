//! Request bodies as handlers see them: a stream of byte chunks, read as they arrive so an
//! upload never sits whole in memory. Wraps hyper's body type so handlers don't name it.

use crate::error::{ErrorCode, Result, StorageError};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

pub struct Body(Option<Incoming>);

fn read_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::new(ErrorCode::InvalidInput)
        .with_message(format!("The request body could not be read: {e}"))
}

impl Body {
    pub fn new(inner: Incoming) -> Body {
        Body(Some(inner))
    }

    /// The next chunk of data, or None at the end.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        let Some(inner) = self.0.as_mut() else {
            return Ok(None);
        };
        loop {
            match inner.frame().await {
                None => {
                    self.0 = None;
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
        let Some(inner) = self.0.take() else {
            return Ok(Bytes::new());
        };
        match Limited::new(inner, max).collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(StorageError::new(ErrorCode::RequestBodyTooLarge)
                    .with_detail("MaxLimit", max.to_string()))
            }
            Err(e) => Err(read_error(e)),
        }
    }
}
