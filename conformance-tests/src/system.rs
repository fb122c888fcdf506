//! The whole system under test: storage (our emulator or Azurite), the `app` and `worker`
//! binaries started as real processes on free loopback ports, logs kept in
//! `target/e2e-logs/` for post-mortems.

use crate::target::{azurite_bin, free_port, AzuriteProcess, EmulatorProcess};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Storage the app and worker are pointed at.
pub enum Storage {
    Emulator(EmulatorProcess),
    Azurite {
        blob: AzuriteProcess,
        queue: AzuriteProcess,
    },
}

impl Storage {
    pub fn emulator() -> Storage {
        Storage::Emulator(EmulatorProcess::in_memory())
    }

    pub fn azurite() -> Storage {
        let blob = AzuriteProcess::start(&azurite_bin("blob"), "blob", true).expect("Azurite blob");
        let queue =
            AzuriteProcess::start(&azurite_bin("queue"), "queue", true).expect("Azurite queue");
        Storage::Azurite { blob, queue }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Storage::Emulator(_) => "emulator",
            Storage::Azurite { .. } => "azurite",
        }
    }

    pub fn connection_string(&self) -> String {
        let (blob, queue) = match self {
            Storage::Emulator(e) => (e.blob_base.clone(), e.queue_base.clone()),
            Storage::Azurite { blob, queue } => (
                format!("http://127.0.0.1:{}", blob.port),
                format!("http://127.0.0.1:{}", queue.port),
            ),
        };
        format!(
            "DefaultEndpointsProtocol=http;AccountName={a};AccountKey={k};BlobEndpoint={blob}/{a};QueueEndpoint={queue}/{a};",
            a = crate::DEV_ACCOUNT,
            k = crate::DEV_KEY
        )
    }

    /// Lets `seconds` of storage time pass: our emulator's clock is moved; Azurite's clock
    /// is the wall clock, so there is nothing to do but wait (callers poll anyway).
    pub fn let_time_pass(&self, seconds: u64) {
        if let Storage::Emulator(e) = self {
            e.advance_clock(seconds);
        }
    }
}

/// Where a workspace binary is: `<NAME>_BIN`, else the debug build.
pub fn workspace_bin(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("{}_BIN", name.to_ascii_uppercase())) {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` first (or set {}_BIN)",
        bin.display(),
        name.to_ascii_uppercase()
    );
    bin
}

fn log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A running `app` or `worker`. Killed when dropped.
pub struct Service {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Service {
    /// Starts `bin` with `args` and `env`, stdout and stderr to a log file named `label`.
    pub fn start(bin: &str, label: &str, args: &[&str], env: &[(&str, String)]) -> Service {
        Service::start_path(&workspace_bin(bin), label, args, env, false)
    }

    /// Starts the binary at `bin`; with `clean`, in an environment of only `PATH` and
    /// `env`, as systemd starts a service.
    pub fn start_path(
        bin: &Path,
        label: &str,
        args: &[&str],
        env: &[(&str, String)],
        clean: bool,
    ) -> Service {
        let log = log_dir().join(format!("{label}-{}.log", std::process::id()));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(bin);
        if clean {
            cmd.env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin");
        } else {
            cmd.env("RUST_LOG", "info");
        }
        cmd.args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting a service");
        Service {
            child: Some(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a line starting with `prefix` in the log; returns the rest of that line.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(rest) = self
                .log_text()
                .lines()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
            {
                return rest.trim().to_string();
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "service exited ({status}) before printing {prefix:?}:\n{}",
                        self.log_text()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {prefix:?} within {timeout:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The exit status if the process has ended (it stays reaped).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten();
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("service is running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("no exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts the app on a free port; returns it and its base URL once it serves.
pub fn start_app(
    connection_string: &str,
    label: &str,
    env: &[(&str, String)],
) -> (Service, String) {
    let port = free_port();
    let mut all = vec![
        (
            "AZURE_STORAGE_CONNECTION_STRING",
            connection_string.to_string(),
        ),
        ("APP_LISTEN", format!("127.0.0.1:{port}")),
    ];
    all.extend(env.iter().cloned());
    let mut app = Service::start("app", label, &[], &all);
    let url = app.wait_for_line("App listening at ", Duration::from_secs(60));
    (app, url)
}

/// Starts a worker with extra flags; returns once it has created its queues.
pub fn start_worker(connection_string: &str, label: &str, args: &[&str]) -> Service {
    let mut w = Service::start(
        "worker",
        label,
        args,
        &[(
            "AZURE_STORAGE_CONNECTION_STRING",
            connection_string.to_string(),
        )],
    );
    let _ = w.wait_for_line_containing("worker started", Duration::from_secs(60));
    w
}

impl Service {
    /// Like [`Service::wait_for_line`] but matches anywhere in a line (tracing prefixes lines).
    pub fn wait_for_line_containing(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_text().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {timeout:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Every blob name in `container`, uncommitted ones included (what "nothing left" checks
/// need).
pub async fn blob_names(s: &storage_client::Storage, container: &str) -> Vec<String> {
    use azure_storage_blob::models::{BlobContainerClientListBlobsOptions, ListBlobsIncludeItem};
    use futures::TryStreamExt;
    let mut pages = s
        .container(container)
        .list_blobs(Some(BlobContainerClientListBlobsOptions {
            include: Some(vec![ListBlobsIncludeItem::UncommittedBlobs]),
            ..Default::default()
        }))
        .expect("list blobs")
        .into_pages();
    let mut names = Vec::new();
    while let Some(page) = pages.try_next().await.expect("a listing page") {
        for b in page.into_model().expect("a listing").blob_items {
            names.push(b.name.unwrap_or_default());
        }
    }
    names
}

/// What the browser tests need: `playwright-core` (installed by scripts/setup.sh into
/// `tools/browser`) and Debian's Chromium (or `$CHROMIUM`).
pub struct Browser {
    pub root: PathBuf,
    pub modules: PathBuf,
    pub chromium: String,
}

impl Browser {
    /// Finds both, or fails the test saying what to install.
    pub fn find() -> Browser {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let modules = root.join("tools/browser/node_modules");
        assert!(
            modules.join("playwright-core").exists(),
            "playwright-core is missing: run scripts/setup.sh"
        );
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "{chromium} is missing: run scripts/setup.sh (installs Debian's chromium)"
        );
        Browser {
            root,
            modules,
            chromium,
        }
    }

    /// `node conformance-tests/browser/<script>` with the modules and browser it needs.
    pub fn script(&self, script: &str) -> Command {
        let mut c = Command::new("node");
        c.arg(self.root.join("conformance-tests/browser").join(script))
            .env("NODE_PATH", &self.modules)
            .env("CHROMIUM", &self.chromium);
        c
    }
}

/// Asks the app for job `id` until it is in state `want` (at most two minutes); returns the
/// job as the app's JSON gives it.
pub async fn wait_for_job(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    want: &str,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j: serde_json::Value = http
            .get(format!("{base}/api/jobs/{id}"))
            .send()
            .await
            .expect("asking the app for the job")
            .json()
            .await
            .expect("the job's JSON");
        if j["state"] == want {
            return j;
        }
        assert!(
            Instant::now() < deadline,
            "the job never got to {want}: {j}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Uploads one image through the app's form (as JSON, like the page's script); returns the
/// new job's id.
pub async fn upload_image(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    bytes: Vec<u8>,
) -> String {
    let form = reqwest::multipart::Form::new().part(
        "images",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    let r = http
        .post(format!("{base}/upload"))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await
        .expect("uploading through the app");
    assert_eq!(r.status().as_u16(), 201, "the upload was refused");
    let v: serde_json::Value = r.json().await.expect("the upload's JSON");
    v["jobs"][0].as_str().expect("a job id").to_string()
}
