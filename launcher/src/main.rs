//! `cargo run --release -p launcher`: the emulator, the upload app and the image worker
//! together, on this machine, without Docker. Ctrl-C stops all three (the emulator last, so
//! the others finish their requests against it).

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(
    name = "launcher",
    version,
    about = "Runs the emulator, the upload app and the image worker together"
)]
struct Args {
    /// Emulator data folder (kept between runs).
    #[arg(long, default_value = "./emulator-data", conflicts_with_all = ["in_memory", "storage"])]
    location: PathBuf,
    /// Keep emulator data in memory only.
    #[arg(long)]
    in_memory: bool,
    /// Use this storage account instead of starting the emulator (Azurite, real Azure).
    #[arg(long, env = "AZURE_STORAGE_CONNECTION_STRING", hide_env_values = true)]
    storage: Option<String>,
    /// Emulator Blob endpoint.
    #[arg(long, default_value = "127.0.0.1:10000")]
    blob_addr: SocketAddr,
    /// Emulator Queue endpoint.
    #[arg(long, default_value = "127.0.0.1:10001")]
    queue_addr: SocketAddr,
    /// Where the app listens.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: String,
    /// Jobs the worker runs at once.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,emulator=warn")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("launcher: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (emulator, connection_string) = match &args.storage {
        Some(cs) => {
            println!("Storage: the account in AZURE_STORAGE_CONNECTION_STRING / --storage");
            (None, cs.clone())
        }
        None => {
            let mut e = emulator::Emulator::in_memory();
            {
                let c = e.config_mut();
                c.blob_addr = args.blob_addr;
                c.queue_addr = args.queue_addr;
            }
            if !args.in_memory {
                e = e.location(&args.location);
            }
            let running = e.start().await.map_err(|err| {
                anyhow::anyhow!(
                    "{err} (is Azurite or another emulator using these ports? pick others with --blob-addr/--queue-addr, or pass --storage)"
                )
            })?;
            println!(
                "Emulator: blob {} queue {} ({})",
                running.blob_endpoint(),
                running.queue_endpoint(),
                if args.in_memory {
                    "in memory".to_string()
                } else {
                    format!("data in {}", args.location.display())
                }
            );
            let cs = running.connection_string();
            (Some(running), cs)
        }
    };

    let shutdown = CancellationToken::new();
    let mut app_config = app::Config::defaults(&connection_string);
    app_config.listen = args.listen.clone();
    let listener = tokio::net::TcpListener::bind(&app_config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e} (use --listen)", args.listen))?;
    let state = app::prepare(app_config).await?;
    let mut worker_config = worker::Config::defaults(&connection_string);
    worker_config.concurrency = args.concurrency;
    let worker = tokio::spawn(worker::run(worker_config, shutdown.clone()));
    let url = format!("http://{}", listener.local_addr()?);
    let app = tokio::spawn(app::serve(state, listener, shutdown.clone()));
    println!("Worker: {} concurrent jobs", args.concurrency);
    println!();
    println!("  Open {url} to upload images (Ctrl-C stops everything)");
    println!();

    stop_signal().await;
    println!("Stopping…");
    shutdown.cancel();
    let (app_result, worker_result) = tokio::join!(app, worker);
    if let Some(e) = emulator {
        e.shutdown().await;
    }
    app_result??;
    worker_result??;
    Ok(())
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
