//! Worker settings: flags, each also readable from the environment (for containers).

use clap::{Parser, ValueEnum};

/// What the work queue carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum JobSource {
    /// The app's job messages.
    Messages,
    /// Storage events: each BlobCreated of `uploads` is a job.
    Events,
}
use std::time::Duration;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "worker",
    version,
    about = "Makes thumbnails and watermarked copies of uploaded images"
)]
pub struct Config {
    /// Storage account to use (Azure, Azurite or this repository's emulator).
    #[arg(
        long,
        env = "AZURE_STORAGE_CONNECTION_STRING",
        default_value = storage_client::DEFAULT_CONNECTION_STRING,
        hide_env_values = true
    )]
    pub connection_string: String,

    /// Blob endpoint URL, used with --queue-url instead of the connection string: the
    /// requests then carry a Microsoft Entra ID token (AZURE_STORAGE_CREDENTIAL picks how
    /// it is obtained; see the README).
    #[arg(long, env = "AZURE_STORAGE_BLOB_URL")]
    pub blob_url: Option<String>,

    /// Queue endpoint URL (with --blob-url).
    #[arg(long, env = "AZURE_STORAGE_QUEUE_URL")]
    pub queue_url: Option<String>,

    /// Work queue; failures go to `<queue>-poison`.
    #[arg(long, env = "IMAGE_QUEUE", default_value = storage_client::job::DEFAULT_QUEUE)]
    pub queue: String,

    /// Jobs processed at the same time.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,

    /// Seconds a received message stays invisible; renewed while a job runs.
    #[arg(long, env = "WORKER_VISIBILITY_TIMEOUT", default_value_t = 30)]
    pub visibility_timeout: u32,

    /// Deliveries after which a message is moved to the poison queue.
    #[arg(long, env = "WORKER_MAX_DEQUEUE", default_value_t = 5)]
    pub max_dequeue: u32,

    /// Longest pause between polls of an empty queue, in milliseconds.
    #[arg(long, env = "WORKER_IDLE_MAX_MS", default_value_t = 2000)]
    pub idle_max_ms: u64,

    /// On SIGTERM, seconds to let running jobs finish before releasing them to the queue.
    #[arg(long, env = "WORKER_SHUTDOWN_GRACE", default_value_t = 20)]
    pub shutdown_grace: u64,

    /// Text stamped on the web-size copy.
    #[arg(long, env = "WORKER_WATERMARK", default_value = "PREVIEW")]
    pub watermark: String,

    /// Where jobs come from: the app's job messages, or BlobCreated events of the uploads
    /// container (Event Grid schema, as Event Grid or the emulator's --eventSubscription
    /// put them into --queue).
    #[arg(long, env = "WORKER_JOB_SOURCE", value_enum, default_value_t = JobSource::Messages)]
    pub job_source: JobSource,

    /// Times the SDK retries a failed storage call (exponential back-off from 200 ms)
    /// before the job's delivery fails and its message comes back later.
    #[arg(long, env = "WORKER_STORAGE_RETRIES", default_value_t = 8)]
    pub storage_retries: u32,

    /// Holds every job this long after it starts (demos and crash tests: a job to kill).
    #[arg(long, env = "WORKER_JOB_DELAY_MS", default_value_t = 0)]
    pub job_delay_ms: u64,
}

impl Config {
    pub fn visibility(&self) -> Duration {
        Duration::from_secs(u64::from(self.visibility_timeout.max(1)))
    }

    /// Defaults, as if run with no flags and no environment.
    pub fn defaults(connection_string: &str) -> Config {
        Config {
            connection_string: connection_string.to_string(),
            blob_url: None,
            queue_url: None,
            queue: storage_client::job::DEFAULT_QUEUE.to_string(),
            concurrency: 4,
            visibility_timeout: 30,
            storage_retries: 8,
            max_dequeue: 5,
            idle_max_ms: 2000,
            shutdown_grace: 20,
            watermark: "PREVIEW".to_string(),
            job_delay_ms: 0,
            job_source: JobSource::Messages,
        }
    }
}
