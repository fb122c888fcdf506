//! What the machine allows, measured in the same run as the scenarios, so each row can be
//! read against it: the disk's flush rate (4 KiB appended, then `fdatasync`, which a write
//! with `--durability power` at concurrency 1 must wait for at least once) and the
//! bare-HTTP floor (our unauthenticated health request: no auth, no routing to a service,
//! no store).

use crate::endpoint::Endpoint;
use crate::load::{percentile, run_load, Stats};
use anyhow::Result;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) struct Flush {
    pub(crate) per_sec: f64,
    pub(crate) p50_us: u64,
}

/// Appends 4 KiB and `fdatasync`s, back to back, for `secs` (at most a million times) in
/// `dir`, on the same file system as the store.
pub(crate) fn flush_probe(dir: &Path, secs: u64) -> Result<Flush> {
    let path = dir.join("flush-probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let block = [0xA5u8; 4096];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs.max(1));
    let mut lat = Vec::new();
    while Instant::now() < deadline && lat.len() < 1_000_000 {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        lat.push(t.elapsed().as_micros() as u64);
        // Kept at 16 MiB: rewritten from the start, as a log segment is reused.
        if lat.len() % 4096 == 0 {
            f.seek(SeekFrom::Start(0))?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    let n = lat.len();
    lat.sort_unstable();
    Ok(Flush {
        per_sec: n as f64 / elapsed,
        p50_us: percentile(&lat, 0.5),
    })
}

/// What a large Put Blob asks of the disk: 4 MiB in 1 MiB writes, then `fdatasync`, back
/// to back for `secs` (one 64 MiB file rewritten from its start) in `dir`; MiB/s.
pub(crate) fn disk_write_probe(dir: &Path, secs: u64) -> Result<f64> {
    let path = dir.join("bandwidth-probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let chunk = vec![0xA5u8; 1 << 20];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs.max(1));
    let mut mib = 0u64;
    while Instant::now() < deadline && mib < 1 << 20 {
        for _ in 0..4 {
            f.write_all(&chunk)?;
        }
        f.sync_data()?;
        mib += 4;
        if mib.is_multiple_of(64) {
            f.seek(SeekFrom::Start(0))?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(mib as f64 / elapsed)
}

/// Loopback TCP between two threads of this process, one writing 1 MiB buffers and the
/// other reading and dropping them, for `secs`: moving a large body with no HTTP, no
/// store and no hashing; MiB/s.
pub(crate) fn loopback_probe(secs: u64) -> Result<f64> {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let mut w = std::net::TcpStream::connect(addr)?;
    let chunk = vec![0x5Au8; 1 << 20];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs.max(1));
    let mut sent = 0u64;
    while Instant::now() < deadline && sent < 1 << 40 {
        w.write_all(&chunk)?;
        sent += chunk.len() as u64;
    }
    drop(w);
    let received = reader
        .join()
        .map_err(|_| anyhow::anyhow!("loopback reader panicked"))??;
    Ok(received as f64 / (1u64 << 20) as f64 / started.elapsed().as_secs_f64())
}

/// What the machine allows, as measured in one run.
#[derive(Default)]
pub(crate) struct Limits {
    pub(crate) flush: Option<Flush>,
    /// Health requests a second, by concurrency.
    pub(crate) floor: Vec<(usize, f64)>,
    /// `disk_write_probe`, MiB/s.
    pub(crate) disk_mib: Option<f64>,
    /// `loopback_probe`, MiB/s.
    pub(crate) loopback_mib: Option<f64>,
}

/// `GET /_emulator/health` from `concurrency` clients for `secs`.
pub(crate) async fn http_floor(ep: &Endpoint, concurrency: usize, secs: u64) -> Stats {
    let e = ep.clone();
    run_load(concurrency, secs, u64::MAX, move |_| {
        let e = e.clone();
        async move {
            let status = e.health().await?;
            if status != 200 {
                anyhow::bail!("health: {status}");
            }
            Ok(1)
        }
    })
    .await
}

/// HTTP requests and durable writes one counted operation of a scenario costs, by the
/// row's name (`None`: a throughput row in MiB/s, or one with no simple cost).
pub(crate) fn cost(scenario: &str) -> Option<(f64, f64)> {
    let per = |requests: f64, writes: f64| Some((requests, writes));
    if scenario.starts_with("Health") {
        per(1.0, 0.0)
    } else if scenario.starts_with("Put Message")
        || scenario.starts_with("Get Messages latency")
        || (scenario.ends_with("(ops/s)") && scenario.starts_with("Put Blob"))
    {
        // Get Messages writes too: the messages' new visibility.
        per(1.0, 1.0)
    } else if scenario.starts_with("Get(32)+Delete") {
        // Per message: its delete, and a 32nd of the Get that took it (which writes the
        // new visibility of all 32).
        per(33.0 / 32.0, 33.0 / 32.0)
    } else if scenario.starts_with("Put→Get→Delete") {
        per(3.0, 3.0)
    } else if scenario.ends_with("(ops/s)") && scenario.starts_with("Get Blob") {
        per(1.0, 0.0)
    } else {
        None
    }
}

/// The concurrency in a row's name (`..., c=16 ...`).
pub(crate) fn concurrency_of(scenario: &str) -> Option<usize> {
    let rest = scenario.split("c=").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Marks the rows run with `--durability power`.
pub(crate) const POWER: &str = "--durability power";

impl Limits {
    /// How close a row of ours comes to what the machine allows.
    /// - A write with `--durability power` at c=1 waits for the disk after its request: its
    ///   share of the flush ceiling, one flush and one bare HTTP round trip after another.
    /// - A large write (MiB/s) writes and fdatasyncs its body: its share of the disk's
    ///   bandwidth for that; a large read, its share of loopback TCP.
    /// - Any other row (the default durability waits only for the kernel): its requests'
    ///   share of the HTTP floor at the same concurrency.
    pub(crate) fn share(&self, scenario: &str, per_sec: f64) -> String {
        if scenario.ends_with("(MiB/s)") {
            let (limit, what) = if scenario.starts_with("Get") {
                (self.loopback_mib, "loopback TCP")
            } else {
                (self.disk_mib, "disk write+fdatasync")
            };
            return match limit {
                Some(l) if l > 0.0 => format!("{:.0}% of {what}", 100.0 * per_sec / l),
                _ => "-".into(),
            };
        }
        let Some((requests, writes)) = cost(scenario) else {
            return "-".into();
        };
        let c = concurrency_of(scenario).unwrap_or(1);
        if c == 1 && writes > 0.0 && scenario.contains(POWER) {
            let http = self.floor.iter().find(|(fc, _)| *fc == 1).map(|(_, r)| *r);
            if let (Some(f), Some(h)) = (&self.flush, http) {
                if f.per_sec > 0.0 && h > 0.0 {
                    let ceiling = 1.0 / (writes / f.per_sec + requests / h);
                    return format!(
                        "{:.0}% of flush ceiling ({ceiling:.0}/s)",
                        100.0 * per_sec / ceiling
                    );
                }
            }
        }
        match self.floor.iter().find(|(fc, _)| *fc == c) {
            Some((_, rate)) if *rate > 0.0 => {
                format!("{:.0}% of HTTP", 100.0 * per_sec * requests / rate)
            }
            _ => "-".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_against_the_right_limit() {
        let limits = Limits {
            flush: Some(Flush {
                per_sec: 8000.0,
                p50_us: 125,
            }),
            floor: vec![(1, 10_000.0), (16, 40_000.0)],
            disk_mib: Some(400.0),
            loopback_mib: Some(4000.0),
        };
        assert_eq!(limits.share("Put Message, c=1", 6000.0), "60% of HTTP");
        // 1 / (1/8000 + 1/10000) = 4444 a second.
        assert_eq!(
            limits.share("Put Message, c=1, --durability power", 4000.0),
            "90% of flush ceiling (4444/s)"
        );
        assert_eq!(
            limits.share("Put→Get→Delete round trips, c=16", 10_000.0),
            "75% of HTTP"
        );
        assert_eq!(
            limits.share("Get Blob 1 KiB, c=1 (ops/s)", 5000.0),
            "50% of HTTP"
        );
        assert_eq!(
            limits.share("Put Blob 4 MiB, c=1 (MiB/s)", 300.0),
            "75% of disk write+fdatasync"
        );
        assert_eq!(
            limits.share("Get Blob 4 MiB, c=16 (MiB/s)", 2000.0),
            "50% of loopback TCP"
        );
        assert_eq!(limits.share("Batch of 256 deletes", 50.0), "-");
        assert_eq!(
            concurrency_of("Get(32)+Delete msgs, depth 5000, c=64"),
            Some(64)
        );
    }
}
