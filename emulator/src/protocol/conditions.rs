//! Preconditions: the conditional headers (If-Match, If-None-Match, If-Modified-Since,
//! If-Unmodified-Since), the lease id, the tag condition and a create-only SAS, as one value
//! the store checks under its lock. ETags compare without quotes; times compare at whole
//! seconds, as Azure does.

use crate::clock::parse_rfc1123;
use crate::http::request::RequestParts;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::lease::{Lease, Target};
use crate::protocol::tags::{self, Dialect, TagExpr};
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

/// The four HTTP conditional headers of a request, parsed (a malformed date is refused
/// here, before anything else happens).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    /// Whole seconds, as Azure compares them.
    pub if_modified_since: Option<i64>,
    pub if_unmodified_since: Option<i64>,
}

impl Conditions {
    pub fn from_request(req: &RequestParts) -> Result<Conditions> {
        Ok(Conditions {
            if_match: req.header("if-match").map(str::to_string),
            if_none_match: req.header("if-none-match").map(str::to_string),
            if_modified_since: date(req, "if-modified-since")?,
            if_unmodified_since: date(req, "if-unmodified-since")?,
        })
    }

    /// `If-None-Match: *`: the write must create the resource.
    pub fn requires_absent(&self) -> bool {
        self.if_none_match.as_deref().map(str::trim) == Some("*")
    }

    /// Checks the conditions against a resource (None: it doesn't exist). Reads answer 304
    /// where the resource is unchanged; everything else that fails is 412.
    pub fn evaluate(&self, current: Option<(&str, i64)>, read: bool) -> Result<()> {
        let Some((etag, last_modified_ms)) = current else {
            if self.if_match.is_some() {
                return Err(not_met(StatusCode::PRECONDITION_FAILED));
            }
            return Ok(());
        };
        let last_modified = last_modified_ms.div_euclid(1000);
        if let Some(m) = &self.if_match {
            if !matches_any(m, etag) {
                return Err(not_met(StatusCode::PRECONDITION_FAILED));
            }
        }
        if let Some(t) = self.if_unmodified_since {
            if last_modified > t {
                return Err(not_met(StatusCode::PRECONDITION_FAILED));
            }
        }
        let unchanged_status = if read {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::PRECONDITION_FAILED
        };
        match (&self.if_none_match, self.if_modified_since) {
            (Some(n), Some(t)) if matches_any(n, etag) && last_modified <= t => {
                Err(not_met(unchanged_status))
            }
            (Some(n), None) if matches_any(n, etag) => Err(not_met(unchanged_status)),
            (None, Some(t)) if last_modified <= t => Err(not_met(unchanged_status)),
            _ => Ok(()),
        }
    }
}

/// Checks the request's conditions against a resource; see `Conditions::evaluate`.
pub fn check(req: &RequestParts, current: Option<(&str, i64)>, read: bool) -> Result<()> {
    Conditions::from_request(req)?.evaluate(current, read)
}

/// What an operation does to the resource its preconditions are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A read: unchanged answers 304, a lease id is checked only when given.
    Read,
    /// A write to an existing resource: failures are 412, an active lease needs its id.
    Modify,
    /// A write that creates or replaces the resource: as `Modify`, and `If-None-Match: *`
    /// on an existing one is 409 `BlobAlreadyExists`.
    Replace,
    /// An operation that checks the lease only when an id is given (Snapshot Blob), or
    /// manages the lease itself (Lease Blob: `lease_id` stays None).
    Passive,
}

/// The state a precondition is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    pub etag: &'a str,
    pub last_modified_ms: i64,
    pub lease: &'a Lease,
    pub tags: &'a [(String, String)],
}

/// Everything a request makes its operation depend on, as data: built by the handler from
/// the headers and the principal, evaluated by the store inside the locked step that
/// applies the operation, so nothing can change between the check and the act.
#[derive(Debug, Clone)]
pub struct Preconditions {
    pub access: Access,
    pub conditions: Conditions,
    pub lease_id: Option<String>,
    pub lease_target: Target,
    pub if_tags: Option<TagExpr>,
    /// The request's SAS may create but not overwrite (`c` without `w`).
    pub create_only: bool,
}

impl Preconditions {
    /// None of the request's headers: what an internal step uses.
    pub fn none(access: Access) -> Preconditions {
        Preconditions {
            access,
            conditions: Conditions::default(),
            lease_id: None,
            lease_target: Target::Blob,
            if_tags: None,
            create_only: false,
        }
    }

    /// The request's conditional headers, `x-ms-lease-id` and `x-ms-if-tags`.
    pub fn from_request(req: &RequestParts, access: Access) -> Result<Preconditions> {
        let if_tags = match req.header("x-ms-if-tags") {
            None => None,
            Some(v) => Some(tags::parse(v, Dialect::Condition).map_err(|e| {
                StorageError::invalid_header("x-ms-if-tags", v).with_message(e.to_string())
            })?),
        };
        Ok(Preconditions {
            access,
            conditions: Conditions::from_request(req)?,
            lease_id: req.header("x-ms-lease-id").map(str::to_string),
            lease_target: Target::Blob,
            if_tags,
            create_only: false,
        })
    }

    pub fn create_only(mut self, create_only: bool) -> Self {
        self.create_only = create_only;
        self
    }

    /// Container operations: the lease is the container's, and tags do not apply.
    pub fn for_container(mut self) -> Self {
        self.lease_target = Target::Container;
        self.if_tags = None;
        self
    }

    /// Keeps only the lease part (operations that take no conditional headers).
    pub fn lease_only(mut self) -> Self {
        self.conditions = Conditions::default();
        self
    }

    /// Checks the preconditions against the resource (None: it does not exist).
    pub fn check(&self, current: Option<Current<'_>>, now_ms: i64) -> Result<()> {
        if let (Some(_), Access::Replace) = (&current, self.access) {
            if self.conditions.requires_absent() {
                return Err(StorageError::new(ErrorCode::BlobAlreadyExists));
            }
            if self.create_only {
                return Err(
                    StorageError::new(ErrorCode::AuthorizationPermissionMismatch).with_message(
                        "A SAS with create but not write permission cannot overwrite an existing blob.",
                    ),
                );
            }
        }
        self.conditions.evaluate(
            current.map(|c| (c.etag, c.last_modified_ms)),
            self.access == Access::Read,
        )?;
        let lease = current.map(|c| c.lease).cloned().unwrap_or_default();
        match self.access {
            Access::Modify | Access::Replace => {
                lease.check(self.lease_id.as_deref(), now_ms, self.lease_target, true)?
            }
            Access::Read | Access::Passive => {
                lease.check(self.lease_id.as_deref(), now_ms, self.lease_target, false)?
            }
        }
        if let Some(expr) = &self.if_tags {
            let tags = current.map(|c| c.tags).unwrap_or_default();
            if !expr.matches("", tags) {
                return Err(not_met(StatusCode::PRECONDITION_FAILED));
            }
        }
        Ok(())
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
