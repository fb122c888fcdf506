//! Queue benchmark: our emulator and Microsoft's Azurite side by side, in one run, on the
//! same machine, both on disk. Requests carry an account SAS so the load generator does not
//! spend its CPU signing (Shared Key costs 45-110 us per request here).
//!
//! Every loop is bounded in time and count and stops by itself; only loopback is used.

use anyhow::{bail, Result};
use bytes::Bytes;
use clap::Parser;
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
    /// Which scenario groups to run.
    #[arg(long, value_delimiter = ',', default_value = "queue,blob")]
    only: Vec<String>,
    /// Blob sizes for Put/Get Blob, in KiB.
    #[arg(long, value_delimiter = ',', default_value = "1,4096,262144")]
    blob_kib: Vec<usize>,
    /// Concurrency levels for the blob scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    blob_concurrency: Vec<usize>,
    /// Azurite's blob binary.
    #[arg(long, default_value = "tools/azurite/node_modules/.bin/azurite-blob")]
    azurite_blob: PathBuf,
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
        let ids = between_all(&text, "<MessageId>", "</MessageId>");
        let receipts = between_all(&text, "<PopReceipt>", "</PopReceipt>");
        Ok(ids.into_iter().zip(receipts).collect())
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

fn between_all(text: &str, open: &str, close: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(close) else { break };
        out.push(rest[..j].to_string());
        rest = &rest[j..];
    }
    out
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

fn start_azurite(bin: &std::path::Path, kind: &str) -> Result<Azurite> {
    Azurite::start(bin, kind, false)
}

/// Put Blob and Get Blob at each size and concurrency. Small blobs count operations;
/// large ones count MiB, so the row reads in MiB/s.
async fn blob_scenarios(
    ep: &Endpoint,
    args: &Args,
    pid: u32,
    rows: &mut Vec<Row>,
    ours: bool,
    peak_rss: &mut u64,
) -> Result<()> {
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
            *peak_rss = (*peak_rss).max(rss_kib(pid));
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
            *peak_rss = (*peak_rss).max(rss_kib(pid));
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
    match rows.iter_mut().find(|r| r.scenario == name) {
        Some(r) if ours => r.ours = Some(s),
        Some(r) => r.theirs = Some(s),
        None => rows.push(Row {
            scenario: name,
            ours: ours.then_some(s),
            theirs: (!ours).then_some(s),
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
}

async fn scenarios(
    ep: &Endpoint,
    args: &Args,
    pid: u32,
    rows: &mut Vec<Row>,
    ours: bool,
    peak_rss: &mut u64,
) -> Result<()> {
    let secs = args.seconds;
    let record = |rows: &mut Vec<Row>, name: String, s: Stats| {
        eprintln!(
            "  {:<9} {:<40} {:>10.0}/s p50 {:>7} us p99 {:>7} us errors {}",
            ep.name, name, s.per_sec, s.p50_us, s.p99_us, s.errors
        );
        match rows.iter_mut().find(|r| r.scenario == name) {
            Some(r) => {
                if ours {
                    r.ours = Some(s)
                } else {
                    r.theirs = Some(s)
                }
            }
            None => rows.push(Row {
                scenario: name,
                ours: ours.then_some(s),
                theirs: (!ours).then_some(s),
            }),
        }
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
        *peak_rss = (*peak_rss).max(rss_kib(pid));
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
        *peak_rss = (*peak_rss).max(rss_kib(pid));
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
        *peak_rss = (*peak_rss).max(rss_kib(pid));
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
            *peak_rss = (*peak_rss).max(rss_kib(pid));
        }
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut rows = Vec::new();

    let dir = tempfile::tempdir()?;
    let location = dir.path().display().to_string();
    let ours = if args.in_memory {
        EmulatorProcess::start_bin(&args.emulator, &["--inMemoryPersistence"])
    } else {
        EmulatorProcess::start_bin(&args.emulator, &["--location", &location])
    };
    let ours_pid = ours.pid();
    let idle_ours = rss_kib(ours_pid);
    let ep = endpoint(
        "emulator",
        ours.queue_base.rsplit(':').next().unwrap_or("0").parse()?,
        "q",
    );
    eprintln!("our emulator (on disk, durable), pid {ours_pid}");
    let mut peak_ours = idle_ours;
    let run_queue = args.only.iter().any(|o| o == "queue");
    let run_blob = args.only.iter().any(|o| o == "blob");
    if run_queue {
        scenarios(&ep, &args, ours_pid, &mut rows, true, &mut peak_ours).await?;
    }
    if run_blob {
        let blob_ep = endpoint(
            "emulator",
            ours.blob_base.rsplit(':').next().unwrap_or("0").parse()?,
            "b",
        );
        blob_scenarios(&blob_ep, &args, ours_pid, &mut rows, true, &mut peak_ours).await?;
    }
    drop(ours);

    let mut idle_az = 0;
    let mut peak_az = 0;
    if !args.no_azurite && run_queue {
        let az = start_azurite(&args.azurite, "queue")?;
        let pid = az.pid();
        idle_az = rss_kib(pid);
        peak_az = idle_az;
        eprintln!("Azurite queue (on disk), pid {pid}");
        let ep = endpoint("azurite", az.port, "q");
        scenarios(&ep, &args, pid, &mut rows, false, &mut peak_az).await?;
    }
    if !args.no_azurite && run_blob {
        let az = start_azurite(&args.azurite_blob, "blob")?;
        let pid = az.pid();
        idle_az = idle_az.max(rss_kib(pid));
        peak_az = peak_az.max(idle_az);
        eprintln!("Azurite blob (on disk), pid {pid}");
        let ep = endpoint("azurite", az.port, "b");
        blob_scenarios(&ep, &args, pid, &mut rows, false, &mut peak_az).await?;
    }

    println!();
    println!(
        "| scenario | ours msg/s | ours p50/p99 ms | Azurite msg/s | Azurite p50/p99 ms | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
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
        println!("| {} | {o} | {ol} | {a} | {al} | {ratio} |", r.scenario);
    }
    println!();
    println!(
        "RSS: ours idle {:.1} MiB, peak {:.1} MiB; Azurite idle {:.1} MiB, peak {:.1} MiB",
        idle_ours as f64 / 1024.0,
        peak_ours as f64 / 1024.0,
        idle_az as f64 / 1024.0,
        peak_az as f64 / 1024.0
    );
    Ok(())
}
