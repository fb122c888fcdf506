//! The web console (`/_emulator/console`): one page, its script and its style sheet, built
//! into the binary. They are public (they hold nothing secret); everything the page shows
//! it fetches with the account key the user signs in with, which stays in the browser's
//! session storage. Storage calls go through `/_emulator/blob/` and `/_emulator/queue/`
//! (see `admin::through_prefix`) signed with an account SAS the page makes from the key.

use crate::http::request::RequestParts;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use http::{Method, StatusCode};

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

pub fn serve(req: &RequestParts, path: &str) -> Result<Reply> {
    if req.method != Method::GET && req.method != Method::HEAD {
        return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb));
    }
    let (body, content_type) = match path {
        "/_emulator/console" | "/_emulator/console/index.html" => {
            (INDEX, "text/html; charset=utf-8")
        }
        "/_emulator/console/console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/_emulator/console/console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return Err(StorageError::new(ErrorCode::ResourceNotFound)),
    };
    let mut r = Reply::empty(StatusCode::OK);
    r.body = crate::http::response::bytes_body(bytes::Bytes::from_static(body.as_bytes()));
    r.set("content-type", content_type)
        .set("cache-control", "no-cache")
        .set("x-content-type-options", "nosniff")
        .set("referrer-policy", "no-referrer")
        .set(
            "content-security-policy",
            "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
        );
    Ok(r)
}
