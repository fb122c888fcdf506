//! Queue benchmark: our emulator and Microsoft's Azurite side by side, in one run, on the
//! same machine, both on disk. Requests carry an account SAS so the load generator does not
//! spend its CPU signing (Shared Key costs 45-110 us per request here).
//!
//! Every loop is bounded in time and count and stops by itself; only loopback is used.

use anyhow::{bail, Result};
use bytes::Bytes;
use clap::Parser;
use conformance_tests::xml::texts;
use conformance_tests::{account_sas_query, EmulatorProcess, DEV_ACCOUNT, DEV_KEY};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(about = "Queue benchmark: our emulator vs Azurite, side by side")]
struct Args {
    /// Seconds per scenario and concurrency level.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Messages pre-filled for the Get+Delete scenario.
    #[arg(long, default_value_t = 5000)]
    depth: usize,
    /// Deep queue for the flat-latency check (ours only; Azurite would need hours to fill it).
    #[arg(long, default_value_t = 1_000_000)]
    deep: usize,
    /// Our emulator binary (a release build).
    #[arg(long, default_value = "target/release/emulator")]
    emulator: PathBuf,
    /// Azurite's queue binary.
    #[arg(long, default_value = "tools/azurite/node_modules/.bin/azurite-queue")]
    azurite: PathBuf,
    /// Skip Azurite (ours only).
    #[arg(long)]
    no_azurite: bool,
    /// Run ours with --inMemoryPersistence (to separate fsync cost from the rest).
    #[arg(long)]
    in_memory: bool,
    /// Extra argument for our emulator (repeatable), e.g. `--emulator-arg=--cacheMiB=16`.
    #[arg(long = "emulator-arg", allow_hyphen_values = true)]
    emulator_args: Vec<String>,
    /// Which scenario groups to run.
    #[arg(long, value_delimiter = ',', default_value = "queue,blob")]
    only: Vec<String>,
    /// Blob sizes for Put/Get Blob, in KiB.
    #[arg(long, value_delimiter = ',', default_value = "1,4096,262144")]
    blob_kib: Vec<usize>,
    /// Concurrency levels for the blob scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    blob_concurrency: Vec<usize>,
    /// Soak instead of benchmarking: mixed queue and blob load at --soak-concurrency against
    /// our emulator for this many minutes, a report line every 10 s, RSS trend checked.
    #[arg(long)]
    soak_minutes: Option<f64>,
    #[arg(long, default_value_t = 64)]
    soak_concurrency: usize,
    /// Keep our emulator's data here instead of a fresh temporary folder (to see space reuse
    /// across runs).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Start-up measurements (spawn to first answered request) per server.
    #[arg(long, default_value_t = 5)]
    startup_runs: usize,
    /// Azurite's blob binary.
    #[arg(long, default_value = "tools/azurite/node_modules/.bin/azurite-blob")]
    azurite_blob: PathBuf,
    /// Instead of benchmarking: fill a queue with this many messages, kill -9 our emulator,
    /// restart it on the same data, and report the time to listen, RSS through the start-up
    /// expiry sweep, and Get Messages latency (ours only).
    #[arg(long)]
    reopen_deep: Option<usize>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone)]
struct Endpoint {
    name: &'static str,
    base: String, // http://127.0.0.1:port/account
    sas: String,
    client: HttpClient,
}

#[derive(Default, Clone, Copy)]
struct Stats {
    ops: u64,
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    errors: u64,
}

impl Endpoint {
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<(u16, Bytes)> {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let uri = format!("{}{}{}{}", self.base, path_and_query, sep, self.sas);
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-ms-version", "2025-11-05")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let resp = self.client.request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// A raw request with a byte body and extra headers; returns (status, body length).
    async fn call_bytes(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, u64)> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{}{}{}", self.base, path, sep, self.sas))
            .header("x-ms-version", "2025-11-05");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.client.request(req.body(Full::new(body))?).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut len = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(d) = frame?.into_data() {
                len += d.len() as u64;
            }
        }
        Ok((status, len))
    }

    async fn create_queue(&self, q: &str) -> Result<()> {
        let (s, b) = self.call(Method::PUT, &format!("/{q}"), None).await?;
        if s != 201 && s != 204 {
            bail!(
                "{}: create queue {q}: {s} {}",
                self.name,
                String::from_utf8_lossy(&b)
            );
        }
        Ok(())
    }

    /// Each scenario cleans up after itself, so later ones start from an empty account.
    async fn delete_queue(&self, q: &str) -> Result<()> {
        self.call(Method::DELETE, &format!("/{q}"), None).await?;
        Ok(())
    }

    async fn put(&self, q: &str, text: &str) -> Result<bool> {
        let body = format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
        let (s, _) = self
            .call(Method::POST, &format!("/{q}/messages"), Some(body))
            .await?;
        Ok(s == 201)
    }

    /// Returns (id, pop receipt) pairs.
    async fn get(&self, q: &str, n: usize) -> Result<Vec<(String, String)>> {
        let (s, b) = self
            .call(
                Method::GET,
                &format!("/{q}/messages?numofmessages={n}&visibilitytimeout=60"),
                None,
            )
            .await?;
        if s != 200 {
            bail!("get: {s}");
        }
        let text = String::from_utf8_lossy(&b);
        let ids = texts(&text, "MessageId");
        let receipts = texts(&text, "PopReceipt");
        Ok(ids
            .into_iter()
            .zip(receipts)
            .map(|(i, r)| (i.to_string(), r.to_string()))
            .collect())
    }

    async fn delete(&self, q: &str, id: &str, receipt: &str) -> Result<bool> {
        let receipt = receipt
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let (s, _) = self
            .call(
                Method::DELETE,
                &format!("/{q}/messages/{id}?popreceipt={receipt}"),
                None,
            )
            .await?;
        Ok(s == 204)
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `op` from `concurrency` tasks until `secs` pass or `max_ops` complete; each call
/// returns how many messages it handled.
async fn run_load<F, Fut>(concurrency: usize, secs: u64, max_ops: u64, op: F) -> Stats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u64>> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, counter, errors) = (op.clone(), counter.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut handled = 0u64;
            loop {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= max_ops || Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                match op(i).await {
                    Ok(0) => break, // nothing left to do
                    Ok(n) => {
                        handled += n;
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (handled, lat)
        }));
    }
    let mut all = Vec::new();
    let mut handled = 0;
    for t in tasks {
        if let Ok((h, l)) = t.await {
            handled += h;
            all.extend(l);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Stats {
        ops: handled,
        per_sec: handled as f64 / elapsed,
        p50_us: percentile(&all, 0.50),
        p99_us: percentile(&all, 0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}

async fn fill(ep: &Endpoint, q: &str, n: usize) -> Result<()> {
    let ep2 = ep.clone();
    let q2 = q.to_string();
    let done = run_load(64, 3600, n as u64, move |i| {
        let (ep, q) = (ep2.clone(), q2.clone());
        async move { Ok(u64::from(ep.put(&q, &format!("fill-{i}")).await?)) }
    })
    .await;
    if done.ops < n as u64 {
        bail!("{}: filled only {} of {n}", ep.name, done.ops);
    }
    Ok(())
}

/// The port of an `http://127.0.0.1:<port>` base address.
fn port_of(base: &str) -> Result<u16> {
    Ok(base.rsplit(':').next().unwrap_or("0").parse()?)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

type Azurite = conformance_tests::target::AzuriteProcess;

/// Samples the RSS of the server under test every 20 ms, so a scenario's peak is its real
/// peak and not the value after it ended.
struct RssSampler {
    pid: std::sync::atomic::AtomicU32,
    /// Highest sample since the last `take`.
    peak: std::sync::atomic::AtomicU64,
}

static RSS: RssSampler = RssSampler {
    pid: std::sync::atomic::AtomicU32::new(0),
    peak: std::sync::atomic::AtomicU64::new(0),
};

impl RssSampler {
    /// Starts (once) the sampling thread; it ends with the process.
    fn watch(&'static self, pid: u32) {
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
    fn take(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let pid = self.pid.load(Relaxed);
        let now = rss_kib(pid);
        self.peak.swap(now, Relaxed).max(now)
    }
}

/// Bytes under `dir`, recursively.
fn dir_size(dir: &std::path::Path) -> u64 {
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
fn settled_size(dir: &std::path::Path, max: Duration) -> u64 {
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
fn time_to_first_answer(mut cmd: std::process::Command, port: u16, path: &str) -> Result<f64> {
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

fn free_port() -> u16 {
    conformance_tests::target::free_port()
}

/// Median start-up time (spawn to first answered request) over `runs`, on a fresh data
/// folder each time.
fn startup_ms(
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

fn start_azurite(bin: &std::path::Path, kind: &str) -> Result<Azurite> {
    Azurite::start(bin, kind, false)
}

/// Put Blob and Get Blob at each size and concurrency. Small blobs count operations;
/// large ones count MiB, so the row reads in MiB/s.
async fn blob_scenarios(ep: &Endpoint, args: &Args, rows: &mut Vec<Row>, ours: bool) -> Result<()> {
    let (s, _) = ep
        .call_bytes(Method::PUT, "/bench?restype=container", &[], Bytes::new())
        .await?;
    if s != 201 && s != 409 {
        bail!("{}: create container: {s}", ep.name);
    }
    for &kib in &args.blob_kib {
        let body = Bytes::from(vec![0x5Au8; kib * 1024]);
        let (unit, per_op) = if kib >= 1024 {
            ("MiB/s", (kib / 1024) as u64)
        } else {
            ("ops/s", 1)
        };
        let label = if kib >= 1024 {
            format!("{} MiB", kib / 1024)
        } else {
            format!("{kib} KiB")
        };
        // Big bodies: a few rounds only (bounded disk use and time).
        let max_ops = if kib >= 65536 { 1 } else { u64::MAX };
        for &c in &args.blob_concurrency {
            let (e, b) = (ep.clone(), body.clone());
            let s = run_load(
                c,
                args.seconds,
                max_ops.saturating_mul(c as u64),
                move |i| {
                    let (e, b) = (e.clone(), b.clone());
                    async move {
                        let (status, _) = e
                            .call_bytes(
                                Method::PUT,
                                &format!("/bench/b{kib}-{}", i % 64),
                                &[("x-ms-blob-type", "BlockBlob")],
                                b,
                            )
                            .await?;
                        if status != 201 {
                            bail!("put blob: {status}");
                        }
                        Ok(per_op)
                    }
                },
            )
            .await;
            record_row(
                rows,
                ep.name,
                format!("Put Blob {label}, c={c} ({unit})"),
                s,
                ours,
            );
            let e = ep.clone();
            let s = run_load(
                c,
                args.seconds,
                max_ops.saturating_mul(c as u64),
                move |i| {
                    let e = e.clone();
                    async move {
                        let (status, len) = e
                            .call_bytes(
                                Method::GET,
                                &format!("/bench/b{kib}-{}", i % c.max(1) as u64),
                                &[],
                                Bytes::new(),
                            )
                            .await?;
                        if status != 200 || len != (kib * 1024) as u64 {
                            bail!("get blob: {status} {len}");
                        }
                        Ok(per_op)
                    }
                },
            )
            .await;
            record_row(
                rows,
                ep.name,
                format!("Get Blob {label}, c={c} ({unit})"),
                s,
                ours,
            );
        }
    }
    ep.call_bytes(
        Method::DELETE,
        "/bench?restype=container",
        &[],
        Bytes::new(),
    )
    .await?;
    Ok(())
}

fn record_row(rows: &mut Vec<Row>, who: &str, name: String, s: Stats, ours: bool) {
    eprintln!(
        "  {who:<9} {name:<40} {:>10.0}/s p50 {:>7} us p99 {:>7} us errors {}",
        s.per_sec, s.p50_us, s.p99_us, s.errors
    );
    let rss = RSS.take();
    match rows.iter_mut().find(|r| r.scenario == name) {
        Some(r) if ours => (r.ours, r.ours_rss) = (Some(s), Some(rss)),
        Some(r) => (r.theirs, r.theirs_rss) = (Some(s), Some(rss)),
        None => rows.push(Row {
            scenario: name,
            ours: ours.then_some(s),
            theirs: (!ours).then_some(s),
            ours_rss: ours.then_some(rss),
            theirs_rss: (!ours).then_some(rss),
        }),
    }
}

/// `services`: the account SAS `ss` letter (`q` or `b`).
fn endpoint(name: &'static str, port: u16, services: &str) -> Endpoint {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    Endpoint {
        name,
        base: format!("http://127.0.0.1:{port}/{DEV_ACCOUNT}"),
        sas: account_sas_query(
            DEV_ACCOUNT,
            DEV_KEY,
            services,
            "sco",
            "rwdlacup",
            "2099-01-01T00:00:00Z",
        ),
        client,
    }
}

#[derive(Default)]
struct Row {
    scenario: String,
    ours: Option<Stats>,
    theirs: Option<Stats>,
    /// Peak RSS during the scenario, KiB.
    ours_rss: Option<u64>,
    theirs_rss: Option<u64>,
}

async fn scenarios(ep: &Endpoint, args: &Args, rows: &mut Vec<Row>, ours: bool) -> Result<()> {
    let secs = args.seconds;
    let record = |rows: &mut Vec<Row>, name: String, s: Stats| {
        record_row(rows, ep.name, name, s, ours);
    };
    for &c in &args.concurrency {
        let q = format!("put-{c}");
        ep.create_queue(&q).await?;
        let (e, qq) = (ep.clone(), q.clone());
        let s = run_load(c, secs, u64::MAX, move |i| {
            let (e, q) = (e.clone(), qq.clone());
            async move { Ok(u64::from(e.put(&q, &format!("message-{i}")).await?)) }
        })
        .await;
        record(rows, format!("Put Message, c={c}"), s);
        ep.delete_queue(&q).await?;
    }
    for &c in &args.concurrency {
        let q = format!("getdel-{c}");
        ep.create_queue(&q).await?;
        fill(ep, &q, args.depth).await?;
        let (e, qq) = (ep.clone(), q.clone());
        let s = run_load(c, secs, u64::MAX, move |_| {
            let (e, q) = (e.clone(), qq.clone());
            async move {
                let got = e.get(&q, 32).await?;
                let n = got.len() as u64;
                for (id, r) in got {
                    e.delete(&q, &id, &r).await?;
                }
                Ok(n)
            }
        })
        .await;
        record(
            rows,
            format!("Get(32)+Delete msgs, depth {}, c={c}", args.depth),
            s,
        );
        ep.delete_queue(&q).await?;
    }
    for &c in &args.concurrency {
        let q = format!("rt-{c}");
        ep.create_queue(&q).await?;
        let (e, qq) = (ep.clone(), q.clone());
        let s = run_load(c, secs, u64::MAX, move |i| {
            let (e, q) = (e.clone(), qq.clone());
            async move {
                e.put(&q, &format!("rt-{i}")).await?;
                let got = e.get(&q, 1).await?;
                for (id, r) in &got {
                    e.delete(&q, id, r).await?;
                }
                Ok(1)
            }
        })
        .await;
        record(rows, format!("Put→Get→Delete round trips, c={c}"), s);
        ep.delete_queue(&q).await?;
    }
    if ours && args.deep > 0 {
        // Get latency from a shallow and a deep queue (peek+get at concurrency 1).
        for depth in [1_000usize, args.deep] {
            let q = format!("deep-{depth}");
            ep.create_queue(&q).await?;
            let t = Instant::now();
            fill(ep, &q, depth).await?;
            eprintln!(
                "  filled {depth} messages in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            let (e, qq) = (ep.clone(), q.clone());
            let s = run_load(1, secs, 2_000, move |_| {
                let (e, q) = (e.clone(), qq.clone());
                async move { Ok(e.get(&q, 1).await?.len() as u64) }
            })
            .await;
            record(rows, format!("Get Messages latency, depth {depth}, c=1"), s);
            let (e, qq) = (ep.clone(), q.clone());
            let s = run_load(1, secs, 2_000, move |i| {
                let (e, q) = (e.clone(), qq.clone());
                async move { Ok(u64::from(e.put(&q, &format!("x{i}")).await?)) }
            })
            .await;
            record(rows, format!("Put Message latency, depth {depth}, c=1"), s);
            ep.delete_queue(&q).await?;
        }
    }
    Ok(())
}

/// A store holding `n` queued messages, reopened after kill -9: how soon it listens, what
/// it holds in memory once the start-up expiry sweep (which reads every message) is done,
/// and whether Get Messages is still as fast.
async fn reopen_deep(args: &Args, n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let location = args
        .data
        .clone()
        .unwrap_or_else(|| dir.path().to_path_buf())
        .display()
        .to_string();
    let mut emu_args = vec!["--location", location.as_str()];
    emu_args.extend(args.emulator_args.iter().map(String::as_str));

    let emu = EmulatorProcess::start_bin(&args.emulator, &emu_args);
    RSS.watch(emu.pid());
    let ep = endpoint("emulator", port_of(&emu.queue_base)?, "q");
    ep.create_queue("deep").await?;
    let t = Instant::now();
    fill(&ep, "deep", n).await?;
    println!(
        "filled {n} messages in {:.1} s; RSS {:.1} MiB, peak {:.1} MiB",
        t.elapsed().as_secs_f64(),
        rss_kib(emu.pid()) as f64 / 1024.0,
        RSS.take() as f64 / 1024.0
    );
    emu.kill9();

    let t = Instant::now();
    let emu = EmulatorProcess::start_bin(&args.emulator, &emu_args);
    let listen_ms = t.elapsed().as_secs_f64() * 1000.0;
    let pid = emu.pid();
    let at_listen = rss_kib(pid);
    RSS.watch(pid);
    // The full sweep starts with the first housekeeping tick; give it time to finish.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let settled = rss_kib(pid);
    let peak = RSS.take();
    println!(
        "reopened after kill -9: listening in {listen_ms:.0} ms at {:.1} MiB; \
         peak {:.1} MiB through the start-up sweep, {:.1} MiB 10 s after start",
        at_listen as f64 / 1024.0,
        peak as f64 / 1024.0,
        settled as f64 / 1024.0
    );
    let ep = endpoint("emulator", port_of(&emu.queue_base)?, "q");
    let e = ep.clone();
    let s = run_load(1, args.seconds, 2_000, move |_| {
        let e = e.clone();
        async move { Ok(e.get("deep", 1).await?.len() as u64) }
    })
    .await;
    println!(
        "Get Messages, depth {n}, c=1: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, errors {}; peak RSS {:.1} MiB",
        s.per_sec,
        s.p50_us as f64 / 1000.0,
        s.p99_us as f64 / 1000.0,
        s.errors,
        RSS.take() as f64 / 1024.0
    );
    if s.errors > 0 || s.ops == 0 {
        bail!("Get Messages failed on the reopened store");
    }
    emu.terminate();
    let t = Instant::now();
    let emu = EmulatorProcess::start_bin(&args.emulator, &emu_args);
    println!(
        "reopened after a clean stop: listening in {:.0} ms at {:.1} MiB",
        t.elapsed().as_secs_f64() * 1000.0,
        rss_kib(emu.pid()) as f64 / 1024.0
    );
    drop(emu);
    Ok(())
}

/// One 10-second window of the soak.
#[derive(Default)]
struct Window {
    ops: u64,
    errors: u64,
    lat_us: Vec<u64>,
}

/// Mixed load for `minutes`: each task loops Put Message, Get+Delete, Put Blob (4 or 128 KiB,
/// names reused so stored data stays bounded), Get Blob, Delete Blob. Fails on any error or on RSS
/// growth after warm-up.
async fn soak(args: &Args, minutes: f64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let location = dir.path().display().to_string();
    let emu = EmulatorProcess::start_bin(&args.emulator, &["--location", &location]);
    let pid = emu.pid();
    let q = endpoint("emulator", port_of(&emu.queue_base)?, "q");
    let b = endpoint("emulator", port_of(&emu.blob_base)?, "b");
    let queues: Vec<String> = (0..8).map(|i| format!("soak{i}")).collect();
    for name in &queues {
        q.create_queue(name).await?;
    }
    let (st, _) = b
        .call_bytes(Method::PUT, "/soak?restype=container", &[], Bytes::new())
        .await?;
    if st != 201 && st != 409 {
        bail!("create container: {st}");
    }
    let total = Duration::from_secs_f64(minutes * 60.0);
    let started = Instant::now();
    let deadline = started + total;
    let window = Arc::new(std::sync::Mutex::new(Window::default()));
    let mut tasks = Vec::new();
    for t in 0..args.soak_concurrency {
        let (q, b, window, queues) = (q.clone(), b.clone(), window.clone(), queues.clone());
        tasks.push(tokio::spawn(async move {
            // A quarter of the tasks write 128 KiB blobs (extent files), the rest 4 KiB (inline).
            let size = if t % 4 == 0 { 128 * 1024 } else { 4096 };
            let payload = Bytes::from(vec![b's'; size]);
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let queue = &queues[(t + i as usize) % queues.len()];
                let blob = format!("/soak/t{t}-{}", i % 16);
                let t0 = Instant::now();
                let ok = match i % 5 {
                    0 => q.put(queue, &format!("m{t}-{i}")).await.unwrap_or(false),
                    1 => match q.get(queue, 1).await {
                        Ok(got) => {
                            let mut ok = true;
                            for (id, receipt) in got {
                                ok &= q.delete(queue, &id, &receipt).await.unwrap_or(false);
                            }
                            ok
                        }
                        Err(_) => false,
                    },
                    2 => matches!(
                        b.call_bytes(
                            Method::PUT,
                            &blob,
                            &[("x-ms-blob-type", "BlockBlob")],
                            payload.clone()
                        )
                        .await,
                        Ok((201, _))
                    ),
                    3 => matches!(
                        b.call_bytes(Method::GET, &blob, &[], Bytes::new()).await,
                        Ok((200 | 404, _))
                    ),
                    _ => matches!(
                        b.call_bytes(Method::DELETE, &blob, &[], Bytes::new()).await,
                        Ok((202 | 404, _))
                    ),
                };
                let us = t0.elapsed().as_micros() as u64;
                if let Ok(mut w) = window.lock() {
                    w.ops += 1;
                    if ok {
                        w.lat_us.push(us);
                    } else {
                        w.errors += 1;
                    }
                }
            }
        }));
    }
    println!(
        "soak: {minutes} min, concurrency {}, pid {pid}",
        args.soak_concurrency
    );
    println!("| t (s) | ops/s | errors | p99 ms | RSS MiB |");
    println!("|---:|---:|---:|---:|---:|");
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut errors_total = 0u64;
    let mut ops_total = 0u64;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(10))).await;
        let w = match window.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => bail!("load task panicked"),
        };
        let mut lat = w.lat_us;
        lat.sort_unstable();
        let rss = rss_kib(pid);
        let t = started.elapsed().as_secs_f64();
        let secs = 10f64
            .min(t - samples.last().map_or(0.0, |s| s.0))
            .max(0.001);
        println!(
            "| {t:.0} | {:.0} | {} | {:.2} | {:.1} |",
            w.ops as f64 / secs,
            w.errors,
            percentile(&lat, 0.99) as f64 / 1000.0,
            rss as f64 / 1024.0
        );
        samples.push((t, rss));
        errors_total += w.errors;
        ops_total += w.ops;
    }
    for t in tasks {
        let _ = t.await;
    }
    // Trend after warm-up (the first fifth): the last third's peak against the first
    // third's, with 8 MiB of slack for allocator noise.
    let warm: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= total.as_secs_f64() / 5.0)
        .map(|(_, r)| *r)
        .collect();
    let third = (warm.len() / 3).max(1);
    let early = warm.iter().take(third).copied().max().unwrap_or(0);
    let late = warm.iter().rev().take(third).copied().max().unwrap_or(0);
    println!(
        "soak: {ops_total} operations, {errors_total} errors; RSS after warm-up: early peak {:.1} MiB, late peak {:.1} MiB",
        early as f64 / 1024.0,
        late as f64 / 1024.0
    );
    if errors_total > 0 {
        bail!("soak: {errors_total} errors");
    }
    if warm.len() >= 3 && late > early + 8 * 1024 {
        bail!("soak: RSS grew after warm-up");
    }
    println!("soak: OK");
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(minutes) = args.soak_minutes {
        return soak(&args, minutes).await;
    }
    if let Some(n) = args.reopen_deep {
        return reopen_deep(&args, n).await;
    }
    let mut rows = Vec::new();

    let tmp = tempfile::tempdir()?;
    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let location = data_dir.display().to_string();
    let mut emu_args: Vec<&str> = if args.in_memory {
        vec!["--inMemoryPersistence"]
    } else {
        vec!["--location", &location]
    };
    emu_args.extend(args.emulator_args.iter().map(String::as_str));
    let ours = EmulatorProcess::start_bin(&args.emulator, &emu_args);
    let ours_pid = ours.pid();
    let idle_ours = rss_kib(ours_pid);
    RSS.watch(ours_pid);
    let ep = endpoint("emulator", port_of(&ours.queue_base)?, "q");
    eprintln!("our emulator (on disk, durable), pid {ours_pid}");
    let mut peak_ours = idle_ours;
    let run_queue = args.only.iter().any(|o| o == "queue");
    let run_blob = args.only.iter().any(|o| o == "blob");
    if run_queue {
        scenarios(&ep, &args, &mut rows, true).await?;
    }
    if run_blob {
        let blob_ep = endpoint("emulator", port_of(&ours.blob_base)?, "b");
        blob_scenarios(&blob_ep, &args, &mut rows, true).await?;
    }
    // Rows carry each scenario's sampled peak; this adds the tail after the last one.
    peak_ours = peak_ours.max(RSS.take());
    // Every scenario deleted what it made: what is left is the store's own overhead.
    let folder_ours = (!args.in_memory).then(|| settled_size(&data_dir, Duration::from_secs(60)));
    drop(ours);

    let mut idle_az = 0;
    let mut peak_az = 0;
    let mut folder_az: Option<u64> = None;
    if !args.no_azurite && run_queue {
        let az = start_azurite(&args.azurite, "queue")?;
        let pid = az.pid();
        idle_az = rss_kib(pid);
        peak_az = idle_az;
        RSS.watch(pid);
        eprintln!("Azurite queue (on disk), pid {pid}");
        let ep = endpoint("azurite", az.port, "q");
        scenarios(&ep, &args, &mut rows, false).await?;
        peak_az = peak_az.max(RSS.take());
    }
    if !args.no_azurite && run_blob {
        let az = start_azurite(&args.azurite_blob, "blob")?;
        let pid = az.pid();
        idle_az = idle_az.max(rss_kib(pid));
        peak_az = peak_az.max(idle_az);
        RSS.watch(pid);
        eprintln!("Azurite blob (on disk), pid {pid}");
        let ep = endpoint("azurite", az.port, "b");
        blob_scenarios(&ep, &args, &mut rows, false).await?;
        peak_az = peak_az.max(RSS.take());
        folder_az = Some(settled_size(az.location(), Duration::from_secs(60)));
    }
    let startup = startup_ms(
        args.startup_runs,
        &args.emulator,
        (!args.no_azurite).then_some(args.azurite.as_path()),
    )?;

    println!();
    println!(
        "| scenario | ours msg/s | ours p50/p99 ms | Azurite msg/s | Azurite p50/p99 ms | ratio | peak RSS MiB ours / Azurite |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let ms = |us: u64| us as f64 / 1000.0;
    for r in &rows {
        let fmt = |s: &Option<Stats>| match s {
            Some(s) => (
                format!("{:.0}", s.per_sec),
                format!("{:.2} / {:.2}", ms(s.p50_us), ms(s.p99_us)),
            ),
            None => ("n/a".into(), "n/a".into()),
        };
        let (o, ol) = fmt(&r.ours);
        let (a, al) = fmt(&r.theirs);
        let ratio = match (r.ours, r.theirs) {
            (Some(o), Some(a)) if a.per_sec > 0.0 => format!("{:.1}x", o.per_sec / a.per_sec),
            _ => "-".into(),
        };
        let mib =
            |k: Option<u64>| k.map_or("n/a".to_string(), |k| format!("{:.0}", k as f64 / 1024.0));
        let rss = format!("{} / {}", mib(r.ours_rss), mib(r.theirs_rss));
        println!(
            "| {} | {o} | {ol} | {a} | {al} | {ratio} | {rss} |",
            r.scenario
        );
        if let Some(k) = r.ours_rss {
            peak_ours = peak_ours.max(k);
        }
        if let Some(k) = r.theirs_rss {
            peak_az = peak_az.max(k);
        }
    }
    println!();
    println!(
        "RSS: ours idle {:.1} MiB, peak {:.1} MiB; Azurite idle {:.1} MiB, peak {:.1} MiB",
        idle_ours as f64 / 1024.0,
        peak_ours as f64 / 1024.0,
        idle_az as f64 / 1024.0,
        peak_az as f64 / 1024.0
    );
    let show =
        |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.1} {unit}"));
    println!(
        "Start-up to first answered request (median of {}): ours {}, Azurite {}",
        args.startup_runs,
        show(Some(startup.0), "ms"),
        show(startup.1, "ms")
    );
    println!(
        "Data folder after deleting everything: ours {}, Azurite {}",
        show(folder_ours.map(|b| b as f64 / 1024.0), "KiB"),
        show(folder_az.map(|b| b as f64 / 1024.0), "KiB")
    );
    Ok(())
}
