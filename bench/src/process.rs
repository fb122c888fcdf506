//! The servers under test as processes: start-up time, resident memory (sampled), data
//! folder size, Azurite.

use anyhow::Result;
use std::time::{Duration, Instant};

pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) type Azurite = conformance_tests::target::AzuriteProcess;

/// Samples the RSS of the server under test every 20 ms, so a scenario's peak is its real
/// peak and not the value after it ended.
pub(crate) struct RssSampler {
    pub(crate) pid: std::sync::atomic::AtomicU32,
    /// Highest sample since the last `take`.
    pub(crate) peak: std::sync::atomic::AtomicU64,
}

pub(crate) static RSS: RssSampler = RssSampler {
    pid: std::sync::atomic::AtomicU32::new(0),
    peak: std::sync::atomic::AtomicU64::new(0),
};

impl RssSampler {
    /// Starts (once) the sampling thread; it ends with the process.
    pub(crate) fn watch(&'static self, pid: u32) {
        use std::sync::atomic::Ordering::Relaxed;
        static STARTED: std::sync::Once = std::sync::Once::new();
        self.pid.store(pid, Relaxed);
        self.peak.store(rss_kib(pid), Relaxed);
        STARTED.call_once(|| {
            std::thread::spawn(|| loop {
                let pid = RSS.pid.load(Relaxed);
                if pid != 0 {
                    RSS.peak.fetch_max(rss_kib(pid), Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            });
        });
    }

    /// The peak since the last call (KiB), restarting from the current RSS.
    pub(crate) fn take(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let pid = self.pid.load(Relaxed);
        let now = rss_kib(pid);
        self.peak.swap(now, Relaxed).max(now)
    }
}

/// Bytes under `dir`, recursively.
pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The data folder's size once background cleanup has settled: polled every 500 ms until
/// it stops shrinking for 3 s, at most `max` long.
pub(crate) fn settled_size(dir: &std::path::Path, max: Duration) -> u64 {
    let started = Instant::now();
    let mut last = dir_size(dir);
    let mut stable_since = Instant::now();
    while started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(500));
        let now = dir_size(dir);
        if now < last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_secs(3) {
            break;
        }
    }
    last
}

/// Milliseconds from spawning `cmd` until `port` answers an HTTP request (any status).
pub(crate) fn time_to_first_answer(
    mut cmd: std::process::Command,
    port: u16,
    path: &str,
) -> Result<f64> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = started + Duration::from_secs(30);
    let answered = loop {
        if Instant::now() > deadline {
            break None;
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            let mut head = [0u8; 12];
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_exact(&mut head).is_ok()
                && head.starts_with(b"HTTP/1.1 ")
            {
                break Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let _ = child.kill();
    let _ = child.wait();
    answered
        .map(|d| d.as_secs_f64() * 1000.0)
        .ok_or_else(|| anyhow::anyhow!("no answer within 30 s"))
}

pub(crate) fn free_port() -> u16 {
    conformance_tests::target::free_port()
}

/// Median start-up time (spawn to first answered request) over `runs`, on a fresh data
/// folder each time.
pub(crate) fn startup_ms(
    runs: usize,
    ours: &std::path::Path,
    azurite: Option<&std::path::Path>,
) -> Result<(f64, Option<f64>)> {
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let mut o = Vec::new();
    let mut a = Vec::new();
    for _ in 0..runs.max(1) {
        let dir = tempfile::tempdir()?;
        let (qp, bp) = (free_port(), free_port());
        let mut cmd = std::process::Command::new(ours);
        cmd.args([
            "--queuePort",
            &qp.to_string(),
            "--blobPort",
            &bp.to_string(),
            "--silent",
            "--location",
        ])
        .arg(dir.path());
        o.push(time_to_first_answer(cmd, qp, "/_emulator/health")?);
        if let Some(bin) = azurite {
            let dir = tempfile::tempdir()?;
            let port = free_port();
            let mut cmd = std::process::Command::new(bin);
            cmd.args([
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                &port.to_string(),
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
                "--location",
            ])
            .arg(dir.path());
            a.push(time_to_first_answer(
                cmd,
                port,
                "/devstoreaccount1?comp=list",
            )?);
        }
    }
    Ok((median(o), (!a.is_empty()).then(|| median(a))))
}

pub(crate) fn start_azurite(bin: &std::path::Path, kind: &str) -> Result<Azurite> {
    Azurite::start(bin, kind, false)
}
