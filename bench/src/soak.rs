//! `bench soak`: mixed queue and blob load against our emulator for minutes, a report line
//! every 10 s, and the RSS trend checked.

use crate::endpoint::*;
use crate::load::*;
use crate::process::*;
use anyhow::{bail, Result};
use bytes::Bytes;
use conformance_tests::EmulatorProcess;
use hyper::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
pub async fn run(args: &crate::Ours, minutes: f64, concurrency: usize) -> Result<()> {
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
    for t in 0..concurrency {
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
        concurrency
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
