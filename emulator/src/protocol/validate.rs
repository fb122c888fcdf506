//! Input checks shared by the services: names, metadata headers, numeric query parameters.

use crate::http::request::RequestParts;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::model::Metadata;

/// Queue and container names: 3-63 chars of `a-z 0-9 -`, alphanumeric at both ends, no
/// `--`. Length errors are OutOfRangeInput, the rest InvalidResourceName (as Azurite answers).
/// A name of the control plane (a state snapshot, an event subscription): 1-64 letters,
/// digits, `-`, `_` and `.`, not starting with `.`; safe as a file name.
pub fn control_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub fn resource_name(name: &str) -> Result<()> {
    let n = name.len();
    if !(3..=63).contains(&n) {
        return Err(StorageError::new(ErrorCode::OutOfRangeInput).with_message(
            "The specified resource name length is not within the permissible limits.",
        ));
    }
    let b = name.as_bytes();
    let ok_chars = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    let ok_ends = b[0].is_ascii_alphanumeric() && b[n - 1].is_ascii_alphanumeric();
    if !ok_chars || !ok_ends || name.contains("--") {
        return Err(StorageError::new(ErrorCode::InvalidResourceName));
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Collects `x-ms-meta-*` headers. Names must be C# identifiers and unique regardless of
/// case; names and values together are at most 8 KiB.
pub fn metadata(req: &RequestParts) -> Result<Metadata> {
    let mut out: Metadata = Vec::new();
    let mut size = 0;
    for name in req.headers.keys() {
        let Some(meta) = name.as_str().strip_prefix("x-ms-meta-") else {
            continue;
        };
        if meta.is_empty() {
            return Err(StorageError::new(ErrorCode::EmptyMetadataKey));
        }
        if !is_identifier(meta) {
            return Err(
                StorageError::new(ErrorCode::InvalidMetadata).with_detail("MetadataName", meta)
            );
        }
        let mut values = req.headers.get_all(name).iter();
        let value = values
            .next()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .unwrap_or_default();
        if values.next().is_some() {
            return Err(StorageError::new(ErrorCode::InvalidMetadata)
                .with_message("The metadata specified is invalid. It has duplicate names.")
                .with_detail("MetadataName", meta));
        }
        size += meta.len() + value.len();
        let original = req
            .meta_case
            .iter()
            .find(|n| n.eq_ignore_ascii_case(meta))
            .map_or(meta, String::as_str);
        out.push((original.to_string(), value));
    }
    if size > MAX_METADATA_BYTES {
        return Err(StorageError::new(ErrorCode::MetadataTooLarge));
    }
    Ok(out)
}

/// An integer query parameter within `[min, max]`; absent → `default`.
pub fn int_param(
    req: &RequestParts,
    name: &str,
    default: Option<i64>,
    min: i64,
    max: i64,
) -> Result<Option<i64>> {
    match req.query.get(name) {
        None => Ok(default),
        Some(raw) => {
            let v: i64 = raw
                .trim()
                .parse()
                .map_err(|_| StorageError::invalid_query(name, raw))?;
            if v < min || v > max {
                return Err(StorageError::out_of_range_query(name, raw, min, max));
            }
            Ok(Some(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::Service;

    fn req(query: &str, headers: &[(&str, &str)]) -> RequestParts {
        RequestParts::for_test(Service::Queue, "GET", &format!("/?{query}"), headers)
    }

    #[test]
    fn queue_names() {
        for ok in ["abc", "a-b-c", "q01", &"a".repeat(63), "123"] {
            assert!(resource_name(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("ab", ErrorCode::OutOfRangeInput),
            (&"a".repeat(64) as &str, ErrorCode::OutOfRangeInput),
            ("Abc", ErrorCode::InvalidResourceName),
            ("-abc", ErrorCode::InvalidResourceName),
            ("abc-", ErrorCode::InvalidResourceName),
            ("a--b", ErrorCode::InvalidResourceName),
            ("a_bc", ErrorCode::InvalidResourceName),
            ("a bc", ErrorCode::InvalidResourceName),
        ];
        for (name, code) in cases {
            assert_eq!(resource_name(name).map_err(|e| e.code), Err(code), "{name}");
        }
    }

    #[test]
    fn metadata_rules() {
        let m = metadata(&req(
            "",
            &[("x-ms-meta-color", " red "), ("x-ms-meta-_x1", "")],
        ))
        .expect("valid");
        assert_eq!(
            m,
            vec![
                ("color".to_string(), "red".to_string()),
                ("_x1".to_string(), String::new())
            ]
        );
        assert_eq!(
            metadata(&req("", &[("x-ms-meta-1abc", "v")])).map_err(|e| e.code),
            Err(ErrorCode::InvalidMetadata)
        );
        assert_eq!(
            metadata(&req("", &[("x-ms-meta-a-b", "v")])).map_err(|e| e.code),
            Err(ErrorCode::InvalidMetadata)
        );
        assert_eq!(
            metadata(&req("", &[("x-ms-meta-", "v")])).map_err(|e| e.code),
            Err(ErrorCode::EmptyMetadataKey)
        );
        assert_eq!(
            metadata(&req("", &[("x-ms-meta-a", "1"), ("X-Ms-Meta-A", "2")])).map_err(|e| e.code),
            Err(ErrorCode::InvalidMetadata)
        );
        let big = "v".repeat(MAX_METADATA_BYTES);
        assert_eq!(
            metadata(&req("", &[("x-ms-meta-a", &big)])).map_err(|e| e.code),
            Err(ErrorCode::MetadataTooLarge)
        );
    }

    #[test]
    fn integer_bounds() {
        let r = req("numofmessages=32&visibilitytimeout=0&bad=x1", &[]);
        assert_eq!(
            int_param(&r, "numofmessages", Some(1), 1, 32).ok(),
            Some(Some(32))
        );
        assert_eq!(int_param(&r, "missing", Some(7), 1, 32).ok(), Some(Some(7)));
        let e = int_param(&r, "visibilitytimeout", None, 1, 604800).expect_err("below");
        assert_eq!(e.code, ErrorCode::OutOfRangeQueryParameterValue);
        assert!(e.details.contains(&("MinimumAllowed", "1".to_string())));
        assert!(e
            .details
            .contains(&("MaximumAllowed", "604800".to_string())));
        assert_eq!(
            int_param(&r, "bad", None, 0, 1).map_err(|e| e.code),
            Err(ErrorCode::InvalidQueryParameterValue)
        );
    }
}
