//! The last N requests, as `GET /_emulator/requests` lists them and streams them live
//! (server-sent events): what each was, who sent it, how it ended and, for an
//! authentication failure, the string-to-sign the server computed.

use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// A sequence number, growing by one per request.
    pub seq: u64,
    /// When it arrived, on the emulator's clock (ISO 8601).
    pub time: String,
    pub service: &'static str,
    pub method: String,
    pub account: String,
    /// The operation's name (`PutMessage`, `GetBlob`...), `-` when routing failed.
    pub operation: &'static str,
    /// `queue`, `container` or `container/blob`.
    pub resource: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub latency_micros: u64,
    /// `key`, `sas`, `token`, `anonymous`, or `none` when authorization did not finish.
    pub principal: &'static str,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// The fault rule that acted on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<u64>,
    /// For an authentication failure: what the server signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_to_sign: Option<String>,
}

pub struct RequestLog {
    capacity: usize,
    inner: Mutex<(u64, VecDeque<Entry>)>,
    live: broadcast::Sender<Entry>,
}

impl RequestLog {
    pub fn new(capacity: usize) -> Self {
        RequestLog {
            capacity,
            inner: Mutex::new((0, VecDeque::with_capacity(capacity.min(4096)))),
            live: broadcast::channel(1024).0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Numbers and keeps `e`; hands it to live subscribers.
    pub fn push(&self, mut e: Entry) {
        if self.capacity == 0 {
            return;
        }
        {
            let mut g = self.inner.lock();
            g.0 += 1;
            e.seq = g.0;
            if g.1.len() == self.capacity {
                g.1.pop_front();
            }
            // No live reader is the common case: then the entry is not copied.
            if self.live.receiver_count() == 0 {
                g.1.push_back(e);
                return;
            }
            g.1.push_back(e.clone());
        }
        let _ = self.live.send(e);
    }

    /// Newest last; at most `limit`, filtered.
    pub fn recent(&self, limit: usize, keep: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        let g = self.inner.lock();
        let mut out: Vec<Entry> =
            g.1.iter()
                .rev()
                .filter(|e| keep(e))
                .take(limit)
                .cloned()
                .collect();
        out.reverse();
        out
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.live.subscribe()
    }
}

/// The string-to-sign an authentication failure's detail quotes (Shared Key and SAS).
pub fn string_to_sign_of(detail: &str) -> Option<String> {
    if let Some(rest) = detail.split("string to sign: '").nth(1) {
        return Some(rest.trim_end_matches("'.").to_string());
    }
    detail
        .split("String to sign used was ")
        .nth(1)
        .map(|s| s.replace("\\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: u16) -> Entry {
        Entry {
            seq: 0,
            time: String::new(),
            service: "blob",
            method: "GET".into(),
            account: "a".into(),
            operation: "GetBlob",
            resource: "c/b".into(),
            status,
            error_code: None,
            latency_micros: 1,
            principal: "key",
            request_id: "r".into(),
            client_request_id: None,
            fault: None,
            string_to_sign: None,
        }
    }

    #[test]
    fn keeps_the_newest_n() {
        let log = RequestLog::new(3);
        for s in [200, 201, 404, 503, 200] {
            log.push(entry(s));
        }
        let all = log.recent(10, |_| true);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        let errors = log.recent(10, |e| e.status >= 400);
        assert_eq!(
            errors.iter().map(|e| e.status).collect::<Vec<_>>(),
            [404, 503]
        );
        assert_eq!(log.recent(1, |_| true)[0].seq, 5);
    }

    #[test]
    fn finds_the_string_to_sign() {
        assert_eq!(
            string_to_sign_of(
                "The MAC signature ... Server used following string to sign: 'GET\n\nx'."
            )
            .as_deref(),
            Some("GET\n\nx")
        );
        assert_eq!(
            string_to_sign_of("Signature did not match. String to sign used was r\\n\\nx")
                .as_deref(),
            Some("r\n\nx")
        );
        assert_eq!(string_to_sign_of("Signed expiry time has passed."), None);
    }
}
