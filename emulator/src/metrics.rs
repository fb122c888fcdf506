//! `GET /_emulator/metrics`: Prometheus text exposition of what the emulator has served
//! (requests by service, operation and status; latency histograms; bytes in and out), of
//! what it holds (messages per queue) and of its store (group commits and the writes they
//! carried, bytes on disk).

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_micros: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Metrics {
    pub fn record(
        &self,
        service: &'static str,
        operation: &'static str,
        status: u16,
        micros: u64,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        *self
            .requests
            .lock()
            .entry((service, operation, status))
            .or_default() += 1;
        {
            let mut l = self.latency.lock();
            let h = l.entry((service, operation)).or_default();
            let secs = micros as f64 / 1e6;
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum_micros += micros;
        }
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }

    /// The exposition text; `queues` are (account, queue, approximate messages), `flushes`
    /// (group commits, writes they covered), `disk` the store's bytes on disk.
    pub fn render(
        &self,
        queues: &[(String, String, u64)],
        blobs: &[(String, u64, u64)],
        flushes: (u64, u64),
        disk: u64,
        events_waiting: usize,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP azure_emulator_requests_total Requests served, by service, operation and status.\n# TYPE azure_emulator_requests_total counter"
        );
        for ((service, op, status), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "azure_emulator_requests_total{{service=\"{service}\",operation=\"{op}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP azure_emulator_request_duration_seconds Time from a request's head to its answer.\n# TYPE azure_emulator_request_duration_seconds histogram"
        );
        for ((service, op), h) in self.latency.lock().iter() {
            let labels = format!("service=\"{service}\",operation=\"{op}\"");
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "azure_emulator_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "azure_emulator_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nazure_emulator_request_duration_seconds_sum{{{labels}}} {}\nazure_emulator_request_duration_seconds_count{{{labels}}} {}",
                h.count,
                h.sum_micros as f64 / 1e6,
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP azure_emulator_request_bytes_total Request body bytes (as Content-Length declared them).\n# TYPE azure_emulator_request_bytes_total counter\nazure_emulator_request_bytes_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP azure_emulator_response_bytes_total Response body bytes.\n# TYPE azure_emulator_response_bytes_total counter\nazure_emulator_response_bytes_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP azure_emulator_queue_messages Approximate messages in each queue.\n# TYPE azure_emulator_queue_messages gauge"
        );
        for (account, queue, n) in queues {
            let _ = writeln!(
                out,
                "azure_emulator_queue_messages{{account=\"{account}\",queue=\"{queue}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP azure_emulator_blobs Current blobs in live containers, per account.\n# TYPE azure_emulator_blobs gauge"
        );
        for (account, n, _) in blobs {
            let _ = writeln!(out, "azure_emulator_blobs{{account=\"{account}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP azure_emulator_blob_bytes Bytes of those blobs (their content lengths), per account.\n# TYPE azure_emulator_blob_bytes gauge"
        );
        for (account, _, b) in blobs {
            let _ = writeln!(
                out,
                "azure_emulator_blob_bytes{{account=\"{account}\"}} {b}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP azure_emulator_group_commits_total Flushes of the store, each making a batch of writes durable.\n# TYPE azure_emulator_group_commits_total counter\nazure_emulator_group_commits_total {}",
            flushes.0
        );
        let _ = writeln!(
            out,
            "# HELP azure_emulator_group_commit_writes_total Writes made durable by those flushes (their sum of batch sizes).\n# TYPE azure_emulator_group_commit_writes_total counter\nazure_emulator_group_commit_writes_total {}",
            flushes.1
        );
        let _ = writeln!(
            out,
            "# HELP azure_emulator_store_disk_bytes Bytes the store's folder takes on disk.\n# TYPE azure_emulator_store_disk_bytes gauge\nazure_emulator_store_disk_bytes {disk}"
        );
        let _ = writeln!(
            out,
            "# HELP azure_emulator_events_waiting Blob events published and not yet in their queue.\n# TYPE azure_emulator_events_waiting gauge\nazure_emulator_events_waiting {events_waiting}"
        );
        out
    }
}

/// Bytes of every file under `dir` (0 when there is none).
pub fn folder_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    // Bounded: a store folder is a few levels deep.
    let mut budget = 100_000;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            budget -= 1;
            if budget == 0 {
                return total;
            }
            match e.metadata() {
                // State snapshots hard-link the store's files: counting them would count
                // those bytes twice.
                Ok(m) if m.is_dir() && e.file_name() != "state-snapshots" => stack.push(e.path()),
                Ok(m) if m.is_dir() => {}
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("queue", "PutMessage", 201, 300, 100, 0);
        m.record("queue", "PutMessage", 201, 30_000, 100, 0);
        m.record("blob", "GetBlob", 404, 200, 0, 215);
        let text = m.render(
            &[("a".into(), "q".into(), 7)],
            &[("a".into(), 2, 300)],
            (3, 5),
            4096,
            1,
        );
        for line in [
            "azure_emulator_requests_total{service=\"queue\",operation=\"PutMessage\",status=\"201\"} 2",
            "azure_emulator_requests_total{service=\"blob\",operation=\"GetBlob\",status=\"404\"} 1",
            "azure_emulator_request_duration_seconds_bucket{service=\"queue\",operation=\"PutMessage\",le=\"0.0005\"} 1",
            "azure_emulator_request_duration_seconds_bucket{service=\"queue\",operation=\"PutMessage\",le=\"0.05\"} 2",
            "azure_emulator_request_duration_seconds_count{service=\"queue\",operation=\"PutMessage\"} 2",
            "azure_emulator_request_bytes_total 200",
            "azure_emulator_response_bytes_total 215",
            "azure_emulator_queue_messages{account=\"a\",queue=\"q\"} 7",
            "azure_emulator_group_commits_total 3",
            "azure_emulator_blobs{account=\"a\"} 2",
            "azure_emulator_blob_bytes{account=\"a\"} 300",
            "azure_emulator_store_disk_bytes 4096",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
