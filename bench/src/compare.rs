//! The side-by-side run: every queue and blob scenario against our emulator, then against
//! Azurite, then start-up and data-folder size, printed as one table of ratios.

use crate::endpoint::*;
use crate::load::*;
use crate::process::*;
use anyhow::{bail, Result};
use bytes::Bytes;
use conformance_tests::EmulatorProcess;
use hyper::Method;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Seconds per scenario and concurrency level.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub concurrency: Vec<usize>,
    /// Messages pre-filled for the Get+Delete scenario.
    #[arg(long, default_value_t = 5000)]
    pub depth: usize,
    /// Deep queue for the flat-latency check (ours only; Azurite would need hours to fill it).
    #[arg(long, default_value_t = 1_000_000)]
    pub deep: usize,
    /// Azurite's queue binary.
    #[arg(long, default_value = "tools/azurite/node_modules/.bin/azurite-queue")]
    pub azurite: PathBuf,
    /// Skip Azurite (ours only).
    #[arg(long)]
    pub no_azurite: bool,
    /// Run ours with --inMemoryPersistence (to separate fsync cost from the rest).
    #[arg(long)]
    pub in_memory: bool,
    /// Which scenario groups to run.
    #[arg(long, value_delimiter = ',', default_value = "queue,blob,page")]
    pub only: Vec<String>,
    /// Blob sizes for Put/Get Blob, in KiB.
    #[arg(long, value_delimiter = ',', default_value = "1,4096,262144")]
    pub blob_kib: Vec<usize>,
    /// Concurrency levels for the blob scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub blob_concurrency: Vec<usize>,
    /// Start-up measurements (spawn to first answered request) per server.
    #[arg(long, default_value_t = 5)]
    pub startup_runs: usize,
    /// Azurite's blob binary.
    #[arg(long, default_value = "tools/azurite/node_modules/.bin/azurite-blob")]
    pub azurite_blob: PathBuf,
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
                        e.put_block_blob(&format!("/bench/b{kib}-{}", i % 64), b)
                            .await?;
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

/// The c=1 writes again with `--durability power`, where each group commit waits for the
/// disk: these are the rows to read against the flush rate (the default durability only
/// waits for the kernel).
async fn power_rows(
    ours_cfg: &crate::Ours,
    args: &Args,
    data_dir: &std::path::Path,
    rows: &mut Vec<Row>,
    queue: bool,
    blob: bool,
) -> Result<()> {
    let dir = data_dir.join("power");
    let location = dir.display().to_string();
    let mut emu_args = vec!["--location", &location, "--durability", "power"];
    emu_args.extend(ours_cfg.emulator_args.iter().map(String::as_str));
    let ours = EmulatorProcess::start_bin(&ours_cfg.emulator, &emu_args);
    RSS.watch(ours.pid());
    eprintln!(
        "our emulator (on disk, --durability power), pid {}",
        ours.pid()
    );
    if queue {
        let ep = endpoint("emulator", port_of(&ours.queue_base)?, "q");
        ep.create_queue("power").await?;
        let e = ep.clone();
        let s = run_load(1, args.seconds, u64::MAX, move |i| {
            let e = e.clone();
            async move { Ok(u64::from(e.put("power", &format!("message-{i}")).await?)) }
        })
        .await;
        record_row(
            rows,
            "emulator",
            format!("Put Message, c=1, {POWER}"),
            s,
            true,
        );
    }
    if blob {
        let ep = endpoint("emulator", port_of(&ours.blob_base)?, "b");
        let (s, _) = ep
            .call_bytes(Method::PUT, "/power?restype=container", &[], Bytes::new())
            .await?;
        if s != 201 {
            bail!("create container: {s}");
        }
        let body = Bytes::from(vec![0x5Au8; 1024]);
        let e = ep.clone();
        let s = run_load(1, args.seconds, u64::MAX, move |i| {
            let (e, b) = (e.clone(), body.clone());
            async move {
                e.put_block_blob(&format!("/power/b-{}", i % 64), b).await?;
                Ok(1)
            }
        })
        .await;
        record_row(
            rows,
            "emulator",
            format!("Put Blob 1 KiB, c=1, {POWER} (ops/s)"),
            s,
            true,
        );
    }
    drop(ours);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

use crate::limits::POWER;

pub async fn run(ours_cfg: &crate::Ours, args: &Args) -> Result<()> {
    let mut rows = Vec::new();

    let tmp = tempfile::tempdir()?;
    let data_dir = ours_cfg
        .data
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let location = data_dir.display().to_string();
    // The disk's own rates, measured where the store will be, before it starts.
    let mut limits = crate::limits::Limits::default();
    if !args.in_memory {
        let f = crate::limits::flush_probe(&data_dir, args.seconds)?;
        eprintln!(
            "  disk      4 KiB append + fdatasync                   {:>10.0}/s p50 {:>7} us",
            f.per_sec, f.p50_us
        );
        limits.flush = Some(f);
        let mib = crate::limits::disk_write_probe(&data_dir, args.seconds)?;
        eprintln!("  disk      4 MiB write + fdatasync                    {mib:>10.0} MiB/s");
        limits.disk_mib = Some(mib);
    }
    let mib = crate::limits::loopback_probe(args.seconds)?;
    eprintln!("  loopback  TCP, 1 MiB writes                          {mib:>10.0} MiB/s");
    limits.loopback_mib = Some(mib);
    let mut emu_args: Vec<&str> = if args.in_memory {
        vec!["--inMemoryPersistence"]
    } else {
        vec!["--location", &location]
    };
    emu_args.extend(ours_cfg.emulator_args.iter().map(String::as_str));
    let mut ours = EmulatorProcess::start_bin(&ours_cfg.emulator, &emu_args);
    let ours_pid = ours.pid();
    let idle_ours = rss_kib(ours_pid);
    RSS.watch(ours_pid);
    let ep = endpoint("emulator", port_of(&ours.queue_base)?, "q");
    eprintln!("our emulator (on disk, durable), pid {ours_pid}");
    let mut peak_ours = idle_ours;
    for &c in &args.concurrency {
        let s = crate::limits::http_floor(&ep, c, args.seconds).await;
        limits.floor.push((c, s.per_sec));
        record_row(
            &mut rows,
            "emulator",
            format!("Health (no auth, no store), c={c}"),
            s,
            true,
        );
    }
    let run_queue = args.only.iter().any(|o| o == "queue");
    let run_blob = args.only.iter().any(|o| o == "blob");
    if run_queue {
        scenarios(&ep, args, &mut rows, true).await?;
    }
    let run_page = args.only.iter().any(|o| o == "page");
    if run_blob {
        let blob_ep = endpoint("emulator", port_of(&ours.blob_base)?, "b");
        blob_scenarios(&blob_ep, args, &mut rows, true).await?;
    }
    // Every scenario deleted what it made: what is left is the store's own overhead
    // (measured before the page rows, on both servers).
    let folder_ours = (!args.in_memory).then(|| settled_size(&data_dir, Duration::from_secs(60)));
    // A restart compacts the store (its files never shrink while it runs).
    let folder_restarted = if args.in_memory {
        None
    } else {
        peak_ours = peak_ours.max(RSS.take());
        drop(ours);
        ours = EmulatorProcess::start_bin(&ours_cfg.emulator, &emu_args);
        RSS.watch(ours.pid());
        Some(settled_size(&data_dir, Duration::from_secs(60)))
    };
    let mut sparse_ours = None;
    if run_page {
        let blob_ep = endpoint("emulator", port_of(&ours.blob_base)?, "b");
        let folder = (!args.in_memory).then_some(data_dir.as_path());
        sparse_ours = crate::pages::scenarios(
            &blob_ep,
            args.seconds,
            &args.blob_concurrency,
            folder,
            |name, s| record_row(&mut rows, "emulator", name, s, true),
        )
        .await?;
        peak_ours = peak_ours.max(RSS.take());
    }
    // Rows carry each scenario's sampled peak; this adds the tail after the last one.
    peak_ours = peak_ours.max(RSS.take());
    drop(ours);
    if !args.in_memory && (run_queue || run_blob) {
        power_rows(ours_cfg, args, &data_dir, &mut rows, run_queue, run_blob).await?;
    }

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
        scenarios(&ep, args, &mut rows, false).await?;
        peak_az = peak_az.max(RSS.take());
    }
    let mut sparse_az = None;
    if !args.no_azurite && (run_blob || run_page) {
        let az = start_azurite(&args.azurite_blob, "blob")?;
        let pid = az.pid();
        idle_az = idle_az.max(rss_kib(pid));
        peak_az = peak_az.max(idle_az);
        RSS.watch(pid);
        eprintln!("Azurite blob (on disk), pid {pid}");
        let ep = endpoint("azurite", az.port, "b");
        if run_blob {
            blob_scenarios(&ep, args, &mut rows, false).await?;
        }
        // Measured before the page rows, so both folders are the emptied store's.
        folder_az = Some(settled_size(az.location(), Duration::from_secs(60)));
        if run_page {
            sparse_az = crate::pages::scenarios(
                &ep,
                args.seconds,
                &args.blob_concurrency,
                Some(az.location()),
                |name, s| record_row(&mut rows, "azurite", name, s, false),
            )
            .await?;
        }
        peak_az = peak_az.max(RSS.take());
    }
    let startup = startup_ms(
        args.startup_runs,
        &ours_cfg.emulator,
        (!args.no_azurite).then_some(args.azurite.as_path()),
    )?;

    println!();
    println!(
        "| scenario | ours msg/s | ours p50/p99 ms | Azurite msg/s | Azurite p50/p99 ms | ratio | ours against the limit | peak RSS MiB ours / Azurite |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
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
        let limit = r
            .ours
            .map_or("-".to_string(), |s| limits.share(&r.scenario, s.per_sec));
        println!(
            "| {} | {o} | {ol} | {a} | {al} | {ratio} | {limit} | {rss} |",
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
    let floor = limits
        .floor
        .iter()
        .map(|(c, r)| format!("c={c} {r:.0}/s"))
        .collect::<Vec<_>>()
        .join(", ");
    if let (Some(f), Some(mib)) = (&limits.flush, limits.disk_mib) {
        println!(
            "Limits in this run: the disk does {:.0} 4 KiB append+fdatasync a second (p50 {} us), which a write with {POWER} at c=1 waits for at least once (so at most 1/(1/flush + 1/HTTP at c=1) a second: the flush ceiling); by default a write waits only for the kernel. The disk writes and fdatasyncs {mib:.0} MiB/s in 4 MiB steps (a large upload's limit).",
            f.per_sec, f.p50_us,
        );
    }
    println!(
        "Loopback TCP moves {:.0} MiB/s between two threads (a large download's limit). HTTP floor (our health request): {floor}.",
        limits.loopback_mib.unwrap_or(0.0)
    );
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
        "Data folder after deleting everything: ours {} (after a restart, which compacts: {}), Azurite {}",
        show(folder_ours.map(|b| b as f64 / 1024.0), "KiB"),
        show(folder_restarted.map(|b| b as f64 / 1024.0), "KiB"),
        show(folder_az.map(|b| b as f64 / 1024.0), "KiB")
    );
    if run_page {
        let mib = |s: Option<crate::pages::Sparse>| s.map(|s| s.folder_growth as f64 / 1048576.0);
        println!(
            "A 1 TiB page blob with 1 MiB written adds to the data folder: ours {}, Azurite {}",
            show(mib(sparse_ours), "MiB"),
            show(mib(sparse_az), "MiB")
        );
    }
    Ok(())
}
