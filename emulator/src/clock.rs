//! The one source of "now". Tests and users move it forward through the admin endpoint, so
//! visibility timeouts and TTLs can be exercised without sleeping.

use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Milliseconds added to the system clock.
    offset_ms: AtomicI64,
    /// Woken when time jumps, so background sweepers can run at once.
    advanced: Notify,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Milliseconds since the Unix epoch, as the emulator sees it.
    pub fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis() + self.inner.offset_ms.load(Ordering::Relaxed)
    }

    pub fn now(&self) -> DateTime<Utc> {
        ms_to_datetime(self.now_ms())
    }

    pub fn offset_ms(&self) -> i64 {
        self.inner.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves time forward. Time never goes backwards: stored visibility and expiry times
    /// would otherwise stop meaning what clients were told.
    pub fn advance_ms(&self, ms: i64) {
        if ms > 0 {
            self.inner.offset_ms.fetch_add(ms, Ordering::Relaxed);
            self.inner.advanced.notify_waiters();
        }
    }

    pub async fn advanced(&self) {
        self.inner.advanced.notified().await
    }
}

pub fn ms_to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `Tue, 05 Aug 2025 12:28:53 GMT`. Every response carries a few of these, so the common
/// range (1970 to 9999) goes through `httpdate`, several times cheaper than chrono's
/// format strings.
pub fn rfc1123(ms: i64) -> String {
    if (0..=NEVER_MS).contains(&ms) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
        return httpdate::fmt_http_date(t);
    }
    ms_to_datetime(ms)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// `Fri, 31 Dec 9999 23:59:59 GMT`, the last second `httpdate` can write.
const NEVER_MS: i64 = 253_402_300_799_999;

/// `2011-03-09T01:42:34.9360000Z` (7 fractional digits, as Azure writes ACL times).
pub fn iso8601_7(ms: i64) -> String {
    let dt = ms_to_datetime(ms);
    format!(
        "{}.{:07}Z",
        dt.format("%Y-%m-%dT%H:%M:%S"),
        dt.timestamp_subsec_nanos() / 100
    )
}

/// Parses the date forms Azure accepts in SAS tokens and ACLs: `YYYY-MM-DD`,
/// `YYYY-MM-DDThh:mmZ`, `YYYY-MM-DDThh:mm:ssZ`, fractional seconds, or an offset.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    let formats = [
        "%Y-%m-%dT%H:%MZ",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ];
    for f in formats {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|dt| dt.and_utc().timestamp_millis());
    }
    None
}

/// Parses an RFC 1123 date header value.
pub fn parse_rfc1123(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc1123(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(iso8601_7(1_500), "1970-01-01T00:00:01.5000000Z");
        assert_eq!(parse_iso8601("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_iso8601("1970-01-01T00:01Z"), Some(60_000));
        assert_eq!(parse_iso8601("1970-01-01T00:00:01Z"), Some(1_000));
        assert_eq!(parse_iso8601("1970-01-01T00:00:01.2500000Z"), Some(1_250));
        assert_eq!(parse_iso8601("yesterday"), None);
        assert_eq!(parse_rfc1123("Thu, 01 Jan 1970 00:00:10 GMT"), Some(10_000));
    }

    #[test]
    fn fast_rfc1123_matches_chrono() {
        let chrono = |ms: i64| {
            ms_to_datetime(ms)
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
        };
        let mut ms = 1i64;
        while ms < NEVER_MS {
            for v in [ms, ms + 999, ms * 7 / 3, NEVER_MS - ms] {
                assert_eq!(rfc1123(v), chrono(v), "{v}");
            }
            ms = ms * 3 + 17;
        }
        assert_eq!(rfc1123(NEVER_MS), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(rfc1123(NEVER_MS + 1), chrono(NEVER_MS + 1));
        assert_eq!(rfc1123(-1), chrono(-1));
    }

    #[test]
    fn advance_only_forward() {
        let c = Clock::new();
        let before = c.now_ms();
        c.advance_ms(-10_000);
        assert!(c.now_ms() >= before);
        c.advance_ms(3_600_000);
        assert!(c.now_ms() >= before + 3_600_000);
        assert_eq!(c.offset_ms(), 3_600_000);
    }
}
