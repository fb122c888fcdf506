//! `x-ms-version` handling. Any syntactically valid date from 2009-09-19 on is accepted,
//! future ones included (SDK upgrades must not break the emulator); unknown-newer versions
//! get the newest behaviour we know.

use crate::config::LATEST_VERSION;
use crate::protocol::error::{Result, StorageError};

pub const OLDEST_VERSION: &str = "2009-09-19";

pub fn is_valid(v: &str) -> bool {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() && v.len() == 10 && v >= OLDEST_VERSION
}

/// The version a request is served with: the header's, else the latest.
pub fn resolve(header: Option<&str>, strict: bool) -> Result<String> {
    match header {
        None => Ok(LATEST_VERSION.to_string()),
        Some(v) if is_valid(v) && (!strict || v <= LATEST_VERSION) => Ok(v.to_string()),
        Some(v) => Err(StorageError::invalid_header("x-ms-version", v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["2009-09-19", "2021-10-04", "2026-06-06", "2099-12-31"] {
            assert_eq!(resolve(Some(ok), false).ok().as_deref(), Some(ok));
        }
        for bad in [
            "2009-09-18",
            "2009-04-14",
            "2025-13-01",
            "2025-1-01",
            "latest",
            "",
            "2025-02-30",
        ] {
            assert!(resolve(Some(bad), false).is_err(), "{bad}");
        }
        assert!(resolve(Some("2099-12-31"), true).is_err());
        assert_eq!(resolve(None, false).ok().as_deref(), Some(LATEST_VERSION));
    }
}
