//! Conditional headers (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since).
//! ETags compare without quotes; times compare at whole seconds, as Azure does.

use crate::clock::parse_rfc1123;
use crate::http::request::RequestParts;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use http::StatusCode;

fn strip(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

fn matches_any(list: &str, etag: &str) -> bool {
    list.split(',').any(|e| {
        let e = e.trim();
        e == "*" || strip(e) == strip(etag)
    })
}

fn not_met(status: StatusCode) -> StorageError {
    StorageError::new(ErrorCode::ConditionNotMet).with_status(status)
}

fn date(req: &RequestParts, name: &str) -> Result<Option<i64>> {
    match req.header(name) {
        None => Ok(None),
        Some(v) => parse_rfc1123(v)
            .map(|ms| Some(ms.div_euclid(1000)))
            .ok_or_else(|| StorageError::invalid_header(name, v)),
    }
}

/// Checks the conditions against a resource (None: it doesn't exist). Reads answer 304
/// where the resource is unchanged; everything else that fails is 412.
pub fn check(req: &RequestParts, current: Option<(&str, i64)>, read: bool) -> Result<()> {
    let if_match = req.header("if-match");
    let if_none_match = req.header("if-none-match");
    let modified_since = date(req, "if-modified-since")?;
    let unmodified_since = date(req, "if-unmodified-since")?;
    let Some((etag, last_modified_ms)) = current else {
        if if_match.is_some() {
            return Err(not_met(StatusCode::PRECONDITION_FAILED));
        }
        return Ok(());
    };
    let last_modified = last_modified_ms.div_euclid(1000);
    if let Some(m) = if_match {
        if !matches_any(m, etag) {
            return Err(not_met(StatusCode::PRECONDITION_FAILED));
        }
    }
    if let Some(t) = unmodified_since {
        if last_modified > t {
            return Err(not_met(StatusCode::PRECONDITION_FAILED));
        }
    }
    let unchanged_status = if read {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::PRECONDITION_FAILED
    };
    match (if_none_match, modified_since) {
        (Some(n), Some(t)) if matches_any(n, etag) && last_modified <= t => {
            Err(not_met(unchanged_status))
        }
        (Some(n), None) if matches_any(n, etag) => Err(not_met(unchanged_status)),
        (None, Some(t)) if last_modified <= t => Err(not_met(unchanged_status)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::Service;

    fn req(headers: &[(&str, &str)]) -> RequestParts {
        RequestParts::for_test(Service::Blob, "GET", "/", headers)
    }

    fn status(r: Result<()>) -> Option<u16> {
        r.err().map(|e| e.status.as_u16())
    }

    #[test]
    fn table() {
        let etag = "\"0x8DBF6F9F4A5B2C1\"";
        let lm = 10_500; // 10.5 s: compared as 10 s
        let cur = Some((etag, lm));
        assert_eq!(
            status(check(&req(&[("if-match", "0x8DBF6F9F4A5B2C1")]), cur, true)),
            None
        );
        assert_eq!(
            status(check(&req(&[("if-match", "\"other\"")]), cur, true)),
            Some(412)
        );
        assert_eq!(
            status(check(&req(&[("if-match", "*")]), None, false)),
            Some(412)
        );
        assert_eq!(
            status(check(&req(&[("if-none-match", etag)]), cur, true)),
            Some(304)
        );
        assert_eq!(
            status(check(&req(&[("if-none-match", etag)]), cur, false)),
            Some(412)
        );
        assert_eq!(
            status(check(&req(&[("if-none-match", "*")]), None, false)),
            None
        );
        assert_eq!(
            status(check(
                &req(&[("if-modified-since", "Thu, 01 Jan 1970 00:00:10 GMT")]),
                cur,
                true
            )),
            Some(304)
        );
        assert_eq!(
            status(check(
                &req(&[("if-modified-since", "Thu, 01 Jan 1970 00:00:09 GMT")]),
                cur,
                true
            )),
            None
        );
        assert_eq!(
            status(check(
                &req(&[("if-unmodified-since", "Thu, 01 Jan 1970 00:00:09 GMT")]),
                cur,
                false
            )),
            Some(412)
        );
        assert_eq!(
            status(check(
                &req(&[("if-unmodified-since", "Thu, 01 Jan 1970 00:00:10 GMT")]),
                cur,
                false
            )),
            None
        );
        // Both: 304 only when both say unchanged.
        assert_eq!(
            status(check(
                &req(&[
                    ("if-none-match", "\"x\""),
                    ("if-modified-since", "Thu, 01 Jan 1970 00:00:10 GMT")
                ]),
                cur,
                true
            )),
            None
        );
        assert_eq!(
            status(check(&req(&[("if-modified-since", "garbage")]), cur, true)),
            Some(400)
        );
    }
}
