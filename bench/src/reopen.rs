//! `bench reopen-deep N`: fill a queue, kill -9 our emulator, reopen it on the same data;
//! time to listen, memory through the start-up sweep, Get Messages latency.

use crate::endpoint::*;
use crate::load::*;
use crate::process::*;
use anyhow::{bail, Result};
use conformance_tests::EmulatorProcess;
use std::time::{Duration, Instant};

pub async fn run(args: &crate::Ours, n: usize, seconds: u64) -> Result<()> {
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
    let s = run_load(1, seconds, 2_000, move |_| {
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
