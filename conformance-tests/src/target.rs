//! What the tests run against: our `emulator` binary, started on free loopback ports, or
//! any endpoint given by `AZURE_STORAGE_CONNECTION_STRING` (Azurite, real Azure).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Credentials {
    pub account: String,
    pub key: String,
    /// `http://host:port/account` (no trailing slash).
    pub queue_endpoint: String,
}

impl Credentials {
    /// Reads AccountName, AccountKey and QueueEndpoint from a connection string.
    pub fn from_connection_string(s: &str) -> anyhow::Result<Credentials> {
        let mut account = None;
        let mut key = None;
        let mut queue = None;
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("connection string part without '='"))?;
            match k.trim().to_ascii_lowercase().as_str() {
                "accountname" => account = Some(v.to_string()),
                "accountkey" => key = Some(v.to_string()),
                "queueendpoint" => queue = Some(v.trim_end_matches('/').to_string()),
                _ => {}
            }
        }
        let account = account.ok_or_else(|| anyhow::anyhow!("AccountName missing"))?;
        let queue_endpoint =
            queue.unwrap_or_else(|| format!("https://{account}.queue.core.windows.net"));
        Ok(Credentials {
            account,
            key: key.ok_or_else(|| anyhow::anyhow!("AccountKey missing"))?,
            queue_endpoint,
        })
    }
}

/// Where the binary is: `EMULATOR_BIN`, else the workspace's debug build.
pub fn emulator_bin() -> PathBuf {
    if let Ok(p) = std::env::var("EMULATOR_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("emulator");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p emulator` first (or set EMULATOR_BIN)",
        bin.display()
    );
    bin
}

/// A running `emulator` process. Killed when dropped.
pub struct EmulatorProcess {
    child: Child,
    pub creds: Credentials,
    /// `http://127.0.0.1:<queue port>`
    pub queue_base: String,
    pub blob_base: String,
}

impl EmulatorProcess {
    /// Starts the binary on free ports with `extra` arguments and waits for its address lines.
    pub fn start(extra: &[&str]) -> EmulatorProcess {
        Self::start_bin(&emulator_bin(), extra)
    }

    /// Starts a given `emulator` binary (a release build for benchmarks, say).
    pub fn start_bin(bin: &Path, extra: &[&str]) -> EmulatorProcess {
        let mut child = Command::new(bin)
            .args(["--queuePort", "0", "--blobPort", "0", "--silent"])
            .args(extra)
            .env_remove("AZURITE_ACCOUNTS")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the emulator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut queue_base, mut blob_base) = (None, None);
        while queue_base.is_none() || blob_base.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("the emulator printed its addresses");
            if let Some(url) = line.strip_prefix("Queue service listening at ") {
                queue_base = Some(url.trim().to_string());
            } else if let Some(url) = line.strip_prefix("Blob service listening at ") {
                blob_base = Some(url.trim().to_string());
            }
        }
        let queue_base = queue_base.unwrap();
        let creds = Credentials {
            account: crate::DEV_ACCOUNT.into(),
            key: crate::DEV_KEY.into(),
            queue_endpoint: format!("{queue_base}/{}", crate::DEV_ACCOUNT),
        };
        EmulatorProcess {
            child,
            creds,
            queue_base,
            blob_base: blob_base.unwrap(),
        }
    }

    pub fn in_memory() -> EmulatorProcess {
        Self::start(&["--inMemoryPersistence"])
    }

    pub fn at(location: &Path) -> EmulatorProcess {
        Self::start(&["--location", &location.display().to_string()])
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("waiting for the emulator")
    }

    /// Moves the emulator's clock forward (admin endpoint).
    pub fn advance_clock(&self, seconds: u64) {
        let (status, body) = http(
            &self.queue_base,
            "POST",
            &format!("/_emulator/clock/advance?seconds={seconds}"),
            &[("x-ms-emulator-key", crate::DEV_KEY)],
        );
        assert_eq!(status, 200, "advancing the clock: {body}");
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP/1.1 client for the emulator's admin endpoints (no SDK involved).
pub fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, body) = http_bytes(base, method, path, headers, &[]);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The same with a request body; returns the status and the raw response body.
pub fn http_bytes(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let addr = base.trim_start_matches("http://");
    let bytes = crate::raw::request_bytes(method, addr, path, headers, body);
    let r = crate::raw::exchange(addr, &bytes, std::time::Duration::from_secs(60))
        .expect("an HTTP answer");
    (r.status, r.body)
}

/// The endpoint under test.
pub enum Target {
    Emulator(EmulatorProcess),
    External(Credentials),
}

impl Target {
    /// `AZURE_STORAGE_CONNECTION_STRING` if set, else a fresh in-memory emulator.
    pub fn from_env() -> Target {
        match std::env::var("AZURE_STORAGE_CONNECTION_STRING") {
            Ok(cs) if !cs.trim().is_empty() => Target::External(
                Credentials::from_connection_string(&cs).expect("a valid connection string"),
            ),
            _ => Target::Emulator(EmulatorProcess::in_memory()),
        }
    }

    pub fn creds(&self) -> &Credentials {
        match self {
            Target::Emulator(e) => &e.creds,
            Target::External(c) => c,
        }
    }

    pub fn emulator(&self) -> Option<&EmulatorProcess> {
        match self {
            Target::Emulator(e) => Some(e),
            Target::External(_) => None,
        }
    }
}

/// A free loopback port (racy in theory; the OS rarely hands the same one out twice soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Where an Azurite binary is: the env var if set, else the repository's pinned install.
pub fn azurite_bin(kind: &str) -> PathBuf {
    let var = if kind == "blob" {
        "AZURITE_BLOB_BIN"
    } else {
        "AZURITE_BIN"
    };
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/azurite/node_modules/.bin")
        .join(format!("azurite-{kind}"));
    assert!(
        bin.exists(),
        "{} is missing: run scripts/setup.sh (or set {var})",
        bin.display()
    );
    bin
}

/// One Azurite service (`queue` or `blob`) on a free loopback port. Killed when dropped.
pub struct AzuriteProcess {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl AzuriteProcess {
    /// Starts `bin` for `kind`, on disk in a temporary folder (or in memory), and waits
    /// until it accepts connections.
    pub fn start(bin: &Path, kind: &str, in_memory: bool) -> anyhow::Result<AzuriteProcess> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args([
            &format!("--{kind}Host"),
            "127.0.0.1",
            &format!("--{kind}Port"),
            &port.to_string(),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if in_memory {
            cmd.arg("--inMemoryPersistence");
        } else {
            cmd.arg("--location").arg(dir.path());
        }
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", bin.display()))?;
        let mut az = AzuriteProcess {
            child,
            port,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = az.child.try_wait() {
                anyhow::bail!("Azurite {kind} exited: {status}");
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("Azurite {kind} did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(az)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The data folder (empty when in memory).
    pub fn location(&self) -> &Path {
        self._dir.path()
    }
}

impl Drop for AzuriteProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
