//! The `emulator` command: Azurite's command line, our engine.

use clap::Parser;
use emulator::Emulator;
use emulator::{Accounts, Config};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

// The store allocates and frees many small buffers per request; jemalloc does that far
// cheaper than glibc's allocator (measured: docs/design.md, Memory).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(
    name = "emulator",
    version,
    about = "A local, durable, fast Azure Storage (Queue, Blob) emulator"
)]
struct Cli {
    /// Address the Blob service listens on.
    #[arg(long = "blobHost", default_value = "127.0.0.1")]
    blob_host: IpAddr,
    /// Blob port (0 picks a free one).
    #[arg(long = "blobPort", default_value_t = 10000)]
    blob_port: u16,
    /// Address the Queue service listens on.
    #[arg(long = "queueHost", default_value = "127.0.0.1")]
    queue_host: IpAddr,
    /// Queue port (0 picks a free one).
    #[arg(long = "queuePort", default_value_t = 10001)]
    queue_port: u16,
    /// Data folder (default: the current directory's `emulator-data`).
    #[arg(short = 'l', long = "location")]
    location: Option<PathBuf>,
    /// Keep everything in a temporary store that is gone on exit.
    #[arg(long = "inMemoryPersistence")]
    in_memory: bool,
    /// No request log.
    #[arg(short = 's', long = "silent")]
    silent: bool,
    /// Write a debug log to FILE.
    #[arg(short = 'd', long = "debug", value_name = "FILE")]
    debug: Option<PathBuf>,
    /// Relax checks (accepted for Azurite compatibility).
    #[arg(long = "loose")]
    loose: bool,
    /// Accepted for Azurite compatibility: every valid version is accepted anyway.
    #[arg(long = "skipApiVersionCheck")]
    skip_api_version_check: bool,
    /// Accepted for Azurite compatibility: there is no telemetry.
    #[arg(long = "disableTelemetry")]
    disable_telemetry: bool,
    /// Reject x-ms-version values newer than the newest this emulator knows.
    #[arg(long = "strictApiVersion")]
    strict_api_version: bool,
    /// Store cache size in MiB.
    // sled's own accounting: the memory it really holds is several times this. 8 is as fast
    // as 32 in the benchmarks and peaks 50 MiB lower with 1,000,000 queued messages.
    #[arg(long = "cacheMiB", default_value_t = 8)]
    cache_mib: u64,
    /// Seconds a connection may take to send a request head (idle keep-alive included).
    #[arg(long = "headerTimeoutSecs", default_value_t = 30)]
    header_timeout_secs: u64,
    /// Seconds a request body may go without sending a byte before it is abandoned.
    #[arg(long = "bodyTimeoutSecs", default_value_t = 60)]
    body_timeout_secs: u64,
    /// Seconds, on the emulator's clock, an archived blob takes to rehydrate after Set Blob
    /// Tier (Azure: hours; advance the admin clock to skip the wait).
    #[arg(long = "rehydrateSecs", default_value_t = 5)]
    rehydrate_secs: u64,
    /// What a 2xx survives: `process` (the emulator killed; the default) or `power` (a power
    /// cut too: every group commit also flushes the disk's cache).
    #[arg(long, default_value = "process", value_parser = ["process", "power"])]
    durability: String,
    /// Blob versioning on for every account (Azure: an account setting; per account:
    /// PUT /_emulator/features).
    #[arg(long = "blobVersioning")]
    blob_versioning: bool,
    /// Container soft delete for every account: days a deleted container stays
    /// restorable (1-365; per account: PUT /_emulator/features).
    #[arg(long = "containerSoftDeleteDays", value_parser = clap::value_parser!(u32).range(1..=365))]
    container_soft_delete_days: Option<u32>,
    /// Serve HTTPS with this certificate: a PEM chain (with --key) or a PFX/PKCS#12
    /// archive (with --pwd).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The password of a PFX --cert.
    #[arg(long)]
    pwd: Option<String>,
    /// Accept Microsoft Entra ID bearer tokens: `basic` checks audience, issuer and
    /// lifetime (on the emulator's clock) but not the signature. Needs --cert.
    #[arg(long, value_parser = ["basic"])]
    oauth: Option<String>,
    /// Also trust these CA certificates (PEM) when fetching https:// copy sources.
    #[arg(long = "copySourceCa", value_name = "FILE")]
    copy_source_ca: Option<PathBuf>,
    /// Load containers and blobs from a folder's subfolders, queues and messages from its
    /// seed.json (or a JSON manifest file); what exists is left alone.
    #[arg(long, value_name = "FILE_OR_DIR")]
    seed: Option<PathBuf>,
    /// Put blob events (Event Grid schema, base64) into a queue: a JSON subscription as
    /// POST /_emulator/events takes, e.g. '{"name":"images","container":"uploads",
    /// "includedEventTypes":["BlobCreated"],"queue":"image-events"}'. Repeatable.
    #[arg(long = "eventSubscription", value_name = "JSON", value_parser = parse_subscription)]
    event_subscription: Vec<emulator::EventSubscription>,
    /// Requests kept for GET /_emulator/requests (0 keeps none).
    #[arg(long = "requestLog", default_value_t = 1000)]
    request_log: usize,
    /// Instead of serving, ask the emulator running on --blobHost/--blobPort whether it is
    /// healthy; exit 0 if so (container health checks need no curl).
    #[arg(long)]
    healthcheck: bool,
    // Azurite's flags for what this emulator does not have or does differently: accepted,
    // with a warning, so Azurite's command lines start it unchanged.
    #[arg(long = "tableHost", hide = true)]
    table_host: Option<String>,
    #[arg(long = "tablePort", hide = true)]
    table_port: Option<String>,
    #[arg(long = "blobKeepAliveTimeout", hide = true)]
    blob_keep_alive: Option<String>,
    #[arg(long = "queueKeepAliveTimeout", hide = true)]
    queue_keep_alive: Option<String>,
    #[arg(long = "tableKeepAliveTimeout", hide = true)]
    table_keep_alive: Option<String>,
    #[arg(long = "extentMemoryLimit", hide = true)]
    extent_memory_limit: Option<String>,
    #[arg(long = "disableProductStyleUrl", hide = true)]
    disable_product_style_url: bool,
}

/// Which command this is: the binary is also installed as Azurite's three commands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Personality {
    Emulator,
    /// `azurite`: both services, Azurite's start-up lines.
    Azurite,
    AzuriteBlob,
    AzuriteQueue,
}

impl Personality {
    fn of(argv0: &str) -> Personality {
        let name = std::path::Path::new(argv0)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match name.strip_suffix(".exe").unwrap_or(name) {
            "azurite" => Personality::Azurite,
            "azurite-blob" => Personality::AzuriteBlob,
            "azurite-queue" => Personality::AzuriteQueue,
            _ => Personality::Emulator,
        }
    }

    fn azurite(self) -> bool {
        self != Personality::Emulator
    }
}

/// Warnings for the Azurite flags and variables that do not apply here; an error for what
/// cannot be honoured.
fn compatibility(cli: &Cli, who: Personality) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    if cli.table_host.is_some() || cli.table_port.is_some() || cli.table_keep_alive.is_some() {
        warnings.push(
            "there is no Table service here: --tableHost/--tablePort/--tableKeepAliveTimeout are ignored"
                .to_string(),
        );
    }
    if cli.blob_keep_alive.is_some() || cli.queue_keep_alive.is_some() {
        warnings.push(
            "--blobKeepAliveTimeout/--queueKeepAliveTimeout are ignored: idle connections close after --headerTimeoutSecs"
                .to_string(),
        );
    }
    if cli.extent_memory_limit.is_some() {
        warnings.push(
            "--extentMemoryLimit is ignored: --inMemoryPersistence keeps bodies in a temporary folder, not in memory"
                .to_string(),
        );
    }
    if cli.disable_product_style_url {
        warnings.push(
            "--disableProductStyleUrl is ignored: the account comes from the first path segment unless the host is <account>.blob|queue.<domain>"
                .to_string(),
        );
    }
    if std::env::var_os("AZURITE_DB").is_some_and(|v| !v.is_empty()) {
        return Err(
            "AZURITE_DB (Azurite's external SQL metadata store) is not supported: this emulator keeps everything in its own store under --location; unset it"
                .to_string(),
        );
    }
    if who == Personality::AzuriteBlob && cli.queue_port != 10001 {
        warnings.push("azurite-blob serves no Queue service: --queuePort is ignored".into());
    }
    if who == Personality::AzuriteQueue && cli.blob_port != 10000 {
        warnings.push("azurite-queue serves no Blob service: --blobPort is ignored".into());
    }
    Ok(warnings)
}

/// GET /_emulator/health on the Blob port (over TLS when `tls`); true on 200.
fn healthcheck(host: IpAddr, port: u16, tls: bool) -> bool {
    use std::io::{Read, Write};
    let host = if host.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host
    };
    let timeout = std::time::Duration::from_secs(3);
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&SocketAddr::new(host, port), timeout)
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let request = format!(
        "GET /_emulator/health HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    );
    let mut head = [0u8; 12];
    if tls {
        let Some(mut conn) = emulator::health_probe_tls(host) else {
            return false;
        };
        let mut stream = emulator::rustls::Stream::new(&mut conn, &mut s);
        return stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut head).is_ok()
            && head.starts_with(b"HTTP/1.1 200");
    }
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn init_logging(cli: &Cli) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let level = if cli.silent { "warn" } else { "info" };
    match &cli.debug {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open debug log {}: {e}", path.display()))?;
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug")),
                )
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .init();
        }
        None => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level)),
                )
                .with_writer(std::io::stderr)
                .init();
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let who = Personality::of(&std::env::args().next().unwrap_or_default());
    let cli = Cli::parse();
    if cli.healthcheck {
        // Plain first, then TLS: the image's health check works whether or not --cert is
        // among the server's flags.
        // Either port answers health (`azurite-queue` has only the one).
        let ports = [
            (cli.blob_host, cli.blob_port),
            (cli.queue_host, cli.queue_port),
        ];
        return if ports.iter().any(|&(host, port)| {
            healthcheck(host, port, cli.cert.is_some())
                || healthcheck(host, port, cli.cert.is_none())
        }) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if let Err(e) = init_logging(&cli) {
        eprintln!("emulator: {e}");
        return ExitCode::from(2);
    }
    match compatibility(&cli, who) {
        Ok(warnings) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
        }
        Err(e) => {
            eprintln!("emulator: {e}");
            return ExitCode::from(2);
        }
    }
    let accounts = match std::env::var("AZURITE_ACCOUNTS") {
        Ok(spec) if !spec.trim().is_empty() => match Accounts::parse(&spec) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("emulator: AZURITE_ACCOUNTS: {e}");
                return ExitCode::from(2);
            }
        },
        _ => Accounts::dev(),
    };
    let config = Config {
        blob_addr: SocketAddr::new(cli.blob_host, cli.blob_port),
        queue_addr: SocketAddr::new(cli.queue_host, cli.queue_port),
        serve_blob: who != Personality::AzuriteQueue,
        serve_queue: who != Personality::AzuriteBlob,
        location: if cli.in_memory {
            None
        } else {
            Some(
                cli.location
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("emulator-data")),
            )
        },
        accounts,
        loose: cli.loose,
        strict_version: cli.strict_api_version,
        cache_bytes: cli.cache_mib.max(1) * 1024 * 1024,
        header_timeout: std::time::Duration::from_secs(cli.header_timeout_secs.max(1)),
        body_timeout: std::time::Duration::from_secs(cli.body_timeout_secs.max(1)),
        rehydrate_delay: std::time::Duration::from_secs(cli.rehydrate_secs),
        durability: if cli.durability == "power" {
            emulator::DurabilityMode::Power
        } else {
            emulator::DurabilityMode::Process
        },
        blob_versioning: cli.blob_versioning,
        container_soft_delete_days: cli.container_soft_delete_days,
        tls: cli.cert.clone().map(|cert| emulator::TlsFiles {
            cert,
            key: cli.key.clone(),
            password: cli.pwd.clone(),
        }),
        oauth: cli.oauth.is_some(),
        copy_source_ca: cli.copy_source_ca.clone(),
        request_log: cli.request_log,
        seed: cli.seed.clone(),
        event_subscriptions: cli.event_subscription.clone(),
    };
    if cli.key.is_some() && cli.cert.is_none() {
        eprintln!("emulator: --key needs --cert");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match Emulator::new(config).start().await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("emulator: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Scripts that start us on port 0 read these lines to find the real ports; as
        // Azurite, its own lines too, which Testcontainers modules and scripts wait for.
        let scheme = running.scheme();
        let served = [
            (
                "Blob",
                who != Personality::AzuriteQueue,
                running.blob_addr(),
            ),
            (
                "Queue",
                who != Personality::AzuriteBlob,
                running.queue_addr(),
            ),
        ];
        for (name, on, addr) in served {
            if on {
                println!("{name} service listening at {scheme}://{addr}");
                if who.azurite() {
                    // Azurite names the host it was given (0.0.0.0 in containers).
                    let host = if name == "Blob" {
                        cli.blob_host
                    } else {
                        cli.queue_host
                    };
                    let shown = SocketAddr::new(host, addr.port());
                    println!("Azurite {name} service is starting at {scheme}://{shown}");
                    println!(
                        "Azurite {name} service is successfully listening at {scheme}://{shown}"
                    );
                }
            }
        }
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn parse_subscription(s: &str) -> Result<emulator::EventSubscription, String> {
    serde_json::from_str(s).map_err(|e| format!("not a subscription: {e}"))
}
