//! App settings: flags, each also readable from the environment (for containers).

use clap::{Parser, ValueEnum};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImageUrls {
    /// Short-lived read-only SAS URLs straight to Blob storage (needs an account key and a
    /// blob endpoint the browser can reach).
    Sas,
    /// Images are streamed through the app (works wherever the app is reachable).
    Proxy,
}

/// How the worker learns of an upload.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum JobDispatch {
    /// The app sends a job message to the queue after storing the original.
    Messages,
    /// The storage account sends a BlobCreated event (Event Grid to a queue, or the
    /// emulator's `--eventSubscription`); the app only writes the job record, before the
    /// original is committed.
    Events,
}

#[derive(Parser, Clone, Debug)]
#[command(
    name = "app",
    version,
    about = "Upload images; see them resized and watermarked"
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

    /// Address to listen on (port 0 picks a free port and prints it). Without it, `PORT`
    /// means 0.0.0.0:$PORT.
    #[arg(long, env = "APP_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: String,

    /// Work queue the worker reads; its poison queue is `<queue>-poison`.
    #[arg(long, env = "IMAGE_QUEUE", default_value = storage_client::job::DEFAULT_QUEUE)]
    pub queue: String,

    /// Largest accepted image, in bytes.
    #[arg(long, env = "APP_MAX_UPLOAD_BYTES", default_value_t = 20 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Most files in one upload.
    #[arg(long, env = "APP_MAX_FILES", default_value_t = 20)]
    pub max_files: usize,

    /// How the browser gets images.
    #[arg(long, env = "APP_IMAGE_URLS", value_enum, default_value_t = ImageUrls::Sas)]
    pub image_urls: ImageUrls,

    /// Uploads on one gallery page (newest first; "Older uploads" pages on).
    #[arg(long, env = "APP_GALLERY_SIZE", default_value_t = 48)]
    pub gallery_size: usize,

    /// How the worker learns of uploads.
    #[arg(long, env = "APP_JOB_DISPATCH", value_enum, default_value_t = JobDispatch::Messages)]
    pub job_dispatch: JobDispatch,

    /// Instead of serving, ask the app on --listen for /healthz; exit 0 if healthy
    /// (container health checks need no curl).
    #[arg(long)]
    pub healthcheck: bool,
}

/// What to listen on when `PORT` is set (the convention of container platforms: Cloud Run,
/// App Service, Heroku...): `0.0.0.0:$PORT`, unless --listen or APP_LISTEN was given.
pub fn listen_from_port(listen_given: bool, port: Option<&str>) -> Result<Option<String>, String> {
    match port.map(str::trim) {
        None | Some("") => Ok(None),
        Some(_) if listen_given => Ok(None),
        Some(p) => p
            .parse::<u16>()
            .map(|p| Some(format!("0.0.0.0:{p}")))
            .map_err(|_| format!("PORT must be a port number, not '{p}'")),
    }
}

impl Config {
    /// The command line and the environment, `PORT` included.
    pub fn from_args_and_env() -> Result<Config, String> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Config::command().get_matches();
        let mut config = Config::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        let given = matches.value_source("listen") != Some(clap::parser::ValueSource::DefaultValue);
        if let Some(listen) = listen_from_port(given, std::env::var("PORT").ok().as_deref())? {
            config.listen = listen;
        }
        Ok(config)
    }

    pub fn defaults(connection_string: &str) -> Config {
        Config {
            connection_string: connection_string.to_string(),
            blob_url: None,
            queue_url: None,
            listen: "127.0.0.1:3000".to_string(),
            queue: storage_client::job::DEFAULT_QUEUE.to_string(),
            max_upload_bytes: 20 * 1024 * 1024,
            max_files: 20,
            image_urls: ImageUrls::Sas,
            gallery_size: 48,
            job_dispatch: JobDispatch::Messages,
            healthcheck: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::listen_from_port;

    #[test]
    fn port_is_an_alias_unless_listen_is_given() {
        assert_eq!(
            listen_from_port(false, Some("8080")),
            Ok(Some("0.0.0.0:8080".into()))
        );
        assert_eq!(listen_from_port(true, Some("8080")), Ok(None));
        assert_eq!(listen_from_port(false, None), Ok(None));
        assert_eq!(listen_from_port(false, Some("")), Ok(None));
        assert!(listen_from_port(false, Some("http")).is_err());
        assert!(listen_from_port(false, Some("70000")).is_err());
    }
}
