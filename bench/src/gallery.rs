//! `bench gallery --jobs 10000`: the app's gallery with that many uploads behind it, on our
//! emulator and on Azurite (both on disk), side by side. The job records are written as
//! the worker leaves them (done, with both renditions), then the release `app` is started
//! on each and asked, one request at a time, for the first gallery page, its JSON, and
//! the last page (reached by following `next` through every page, which is timed too).

use crate::process::start_azurite;
use anyhow::{bail, Result};
use bytes::Bytes;
use chrono::{Duration as Span, Utc};
use conformance_tests::system::Service;
use conformance_tests::{EmulatorProcess, DEV_ACCOUNT, DEV_KEY};
use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use storage_client::job::{JobId, JobRecord, JobState, Output};
use storage_client::job_store::{ensure_resources, JobStore};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Job records behind the gallery.
    #[arg(long, default_value_t = 10_000)]
    pub jobs: usize,
    /// Requests timed per page kind.
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// The app binary (a release build).
    #[arg(long, default_value = "target/release/app")]
    pub app: PathBuf,
    #[arg(long, default_value = "tools/azurite/node_modules/.bin/azurite-blob")]
    pub azurite_blob: PathBuf,
    #[arg(long, default_value = "tools/azurite/node_modules/.bin/azurite-queue")]
    pub azurite_queue: PathBuf,
    #[arg(long)]
    pub no_azurite: bool,
}

fn connection_string(blob: &str, queue: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};BlobEndpoint={blob};QueueEndpoint={queue};"
    )
}

async fn seed(cs: &str, jobs: usize) -> Result<f64> {
    let storage = storage_client::Storage::connect(cs)?;
    ensure_resources(&storage, storage_client::job::DEFAULT_QUEUE).await?;
    let store = JobStore::new(&storage);
    let start = Utc::now();
    let t = Instant::now();
    let mut results = futures::stream::iter(0..jobs)
        .map(|i| {
            let id = JobId::new(start - Span::seconds(i as i64));
            let mut r = JobRecord::queued(
                id.clone(),
                format!("{id}.jpg"),
                format!("photo-{i:05}.jpg"),
                "image/jpeg".into(),
                2_400_000,
                start,
            );
            r.state = JobState::Done;
            r.attempts = 1;
            r.took_ms = Some(180);
            r.thumbnail = Some(Output {
                blob: format!("{id}/thumbnail-256.jpg"),
                width: 256,
                height: 192,
            });
            r.web = Some(Output {
                blob: format!("{id}/web-1024.jpg"),
                width: 1024,
                height: 768,
            });
            let store = &store;
            async move { store.put(&r).await }
        })
        .buffer_unordered(32);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(t.elapsed().as_secs_f64())
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

async fn get(client: &Http, url: &str) -> Result<Bytes> {
    let resp = client.get(url.parse()?).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{url}: {status}");
    }
    Ok(body)
}

/// p50 and slowest of `n` sequential GETs, in ms, and the body size.
async fn time(client: &Http, url: &str, n: usize) -> Result<(f64, f64, usize)> {
    let mut ms = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n.max(1) {
        let t = Instant::now();
        size = get(client, url).await?.len();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[ms.len() - 1], size))
}

async fn measure(name: &str, args: &Args, cs: &str) -> Result<()> {
    let secs = seed(cs, args.jobs).await?;
    println!(
        "{name}: {} job records written in {secs:.1} s ({:.0}/s, 32 at once)",
        args.jobs,
        args.jobs as f64 / secs
    );
    let mut app = Service::start_path(
        &args.app,
        &format!("bench-gallery-{name}-app"),
        &[],
        &[
            ("AZURE_STORAGE_CONNECTION_STRING", cs.to_string()),
            ("APP_LISTEN", "127.0.0.1:0".to_string()),
            ("RUST_LOG", "warn".to_string()),
        ],
        false,
    );
    let base = app.wait_for_line("App listening at ", Duration::from_secs(60));
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    // Warm: the first request opens the app's connections to storage.
    get(&client, &format!("{base}/gallery")).await?;

    let t = Instant::now();
    let mut marker: Option<String> = None;
    let mut last_marker: Option<String> = None;
    let mut pages = 0usize;
    let mut seen = 0usize;
    loop {
        let url = match &marker {
            Some(m) => format!("{base}/api/jobs?page={}", urlencode(m)),
            None => format!("{base}/api/jobs"),
        };
        let page: serde_json::Value = serde_json::from_slice(&get(&client, &url).await?)?;
        pages += 1;
        seen += page["jobs"].as_array().map_or(0, Vec::len);
        match page["next"].as_str() {
            Some(next) if pages < 100_000 => {
                last_marker = Some(next.to_string());
                marker = Some(next.to_string());
            }
            _ => break,
        }
    }
    let walk = t.elapsed().as_secs_f64();
    if seen != args.jobs {
        bail!("{name}: the pages held {seen} jobs, not {}", args.jobs);
    }
    println!("{name}: all {pages} pages followed by `next` in {walk:.2} s ({seen} jobs)");
    let mut rows = vec![
        ("first gallery page (HTML)", format!("{base}/gallery")),
        ("first page as JSON (/api/jobs)", format!("{base}/api/jobs")),
    ];
    if let Some(m) = &last_marker {
        rows.push((
            "last gallery page (HTML)",
            format!("{base}/gallery?page={}", urlencode(m)),
        ));
    }
    for (what, url) in rows {
        let (p50, max, size) = time(&client, &url, args.requests).await?;
        println!(
            "{name}: {what}: p50 {p50:.1} ms, slowest {max:.1} ms, {:.1} KiB",
            size as f64 / 1024.0
        );
    }
    Ok(())
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub async fn run(ours: &crate::Ours, args: &Args) -> Result<()> {
    if !args.app.exists() {
        bail!(
            "{} is missing: cargo build --release -p app",
            args.app.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let location = ours
        .data
        .clone()
        .unwrap_or_else(|| dir.path().to_path_buf())
        .display()
        .to_string();
    {
        let emu = EmulatorProcess::start_bin(&ours.emulator, &["--location", &location]);
        let cs = connection_string(
            &format!("{}/{DEV_ACCOUNT}", emu.blob_base),
            &format!("{}/{DEV_ACCOUNT}", emu.queue_base),
        );
        measure("ours", args, &cs).await?;
    }
    if !args.no_azurite {
        let blob = start_azurite(&args.azurite_blob, "blob")?;
        let queue = start_azurite(&args.azurite_queue, "queue")?;
        let cs = connection_string(
            &format!("http://127.0.0.1:{}/{DEV_ACCOUNT}", blob.port),
            &format!("http://127.0.0.1:{}/{DEV_ACCOUNT}", queue.port),
        );
        measure("Azurite", args, &cs).await?;
    }
    Ok(())
}
