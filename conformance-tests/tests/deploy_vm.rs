//! The Linux VM deployment (`deploy/`): `install.sh --root DIR` lays out exactly the files
//! it promises, again without changing anything, keeps an edited settings file, and
//! installs one side alone for the two-VM layout; `systemd-analyze verify` passes on the
//! installed units with no warning at all, and `systemd-analyze security` rates them; the
//! installed binaries, started as systemd would (a clean environment holding only the
//! example settings file, its connection string pointed at our emulator), answer
//! `/healthz` and complete a job.
#![allow(clippy::unwrap_used)]

use conformance_tests::system::{upload_image, wait_for_job, workspace_bin, Service, Storage};
use conformance_tests::target::free_port;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Runs the install script into `root` with the workspace's binaries; returns its stdout.
fn install(root: &Path, extra: &[&str]) -> String {
    let bin_dir = workspace_bin("app").parent().unwrap().to_path_buf();
    let out = Command::new("bash")
        .arg(deploy().join("install.sh"))
        .arg("--root")
        .arg(root)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "install.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Every path under `root` (relative, `/`-rooted) with its mode, or its link target.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else if meta.is_dir() {
                walk(root, &p, out);
            } else {
                let mode = meta.permissions().mode() & 0o7777;
                out.insert(rel, format!("{mode:04o} {} bytes", meta.len()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// What systemd-sysusers writes for the user (the account databases and their lock).
const ACCOUNT_FILES: [&str; 5] = [
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/.pwd.lock",
];

fn promised(app: bool, worker: bool) -> Vec<String> {
    let mut want = vec![
        "/etc/thumbnailer/thumbnailer.env".to_string(),
        "/etc/thumbnailer/thumbnailer.env.example".to_string(),
        "/usr/lib/sysusers.d/thumbnailer.conf".to_string(),
    ];
    for (on, side) in [(app, "app"), (worker, "worker")] {
        if on {
            want.push(format!("/usr/local/bin/thumbnailer-{side}"));
            want.push(format!("/etc/systemd/system/thumbnailer-{side}.service"));
            want.push(format!(
                "/etc/systemd/system/multi-user.target.wants/thumbnailer-{side}.service"
            ));
        }
    }
    want.extend(ACCOUNT_FILES.iter().map(|s| s.to_string()));
    want.sort();
    want
}

#[test]
fn install_lays_out_exactly_the_promised_files_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let first = install(root, &[]);
    assert!(first.contains("next: put your storage account's connection string"));
    let t = tree(root);
    assert_eq!(t.keys().cloned().collect::<Vec<_>>(), promised(true, true));
    for bin in ["app", "worker"] {
        let path = format!("/usr/local/bin/thumbnailer-{bin}");
        assert!(t[&path].starts_with("0755 "), "{path}: {}", t[&path]);
        assert_eq!(
            std::fs::read(root.join(&path[1..])).unwrap(),
            std::fs::read(workspace_bin(bin)).unwrap(),
            "{path} is the build's binary"
        );
        let wants =
            format!("/etc/systemd/system/multi-user.target.wants/thumbnailer-{bin}.service");
        assert_eq!(
            t[&wants],
            format!("-> /etc/systemd/system/thumbnailer-{bin}.service"),
            "enabled"
        );
    }
    // It holds the account key: root only, and systemd reads it before dropping privileges.
    assert!(t["/etc/thumbnailer/thumbnailer.env"].starts_with("0600 "));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("thumbnailer:"))
        .expect("the thumbnailer user");
    let fields: Vec<&str> = user.split(':').collect();
    assert!(
        fields[2].parse::<u32>().unwrap() < 1000,
        "a system uid: {user}"
    );
    assert_eq!(fields[6], "/usr/sbin/nologin", "{user}");

    // Again: nothing changes.
    let second = install(root, &[]);
    assert!(second.contains("installed: nothing changed"), "{second}");
    assert_eq!(tree(root), t);

    // Edited settings survive a reinstall (an upgrade).
    let env = root.join("etc/thumbnailer/thumbnailer.env");
    let mine =
        "AZURE_STORAGE_CONNECTION_STRING=UseDevelopmentStorage=true\nAPP_LISTEN=127.0.0.1:3000\n";
    std::fs::write(&env, mine).unwrap();
    let third = install(root, &[]);
    assert!(!third.contains("next: put"), "{third}");
    assert_eq!(std::fs::read_to_string(&env).unwrap(), mine);

    // The two-VM layout: each side alone.
    for (flag, app, worker) in [("--app-only", true, false), ("--worker-only", false, true)] {
        let dir = tempfile::tempdir().unwrap();
        install(dir.path(), &[flag]);
        assert_eq!(
            tree(dir.path()).keys().cloned().collect::<Vec<_>>(),
            promised(app, worker),
            "{flag}"
        );
    }
    let out = Command::new("bash")
        .arg(deploy().join("install.sh"))
        .args(["--app-only", "--worker-only", "--root"])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "both -only flags install nothing"
    );
}

/// The installed root plus systemd's own units, which `verify` resolves targets against.
fn verify_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), &[]);
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect("systemd's units (Debian's systemd package; scripts/setup.sh installs it)");
    let to = dir.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(units).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn units_pass_systemd_analyze_verify_and_are_hardened() {
    let root = verify_root();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .args(["thumbnailer-app.service", "thumbnailer-worker.service"])
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Unknown keys and bad values are only warnings to systemd: any output fails here.
    assert!(out.status.success() && said.trim().is_empty(), "{said}");

    for unit in ["thumbnailer-app.service", "thumbnailer-worker.service"] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("--root={}", root.path().display()))
            .arg(unit)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let level: f64 = text
            .lines()
            .find_map(|l| l.split(&format!("{unit}: ")).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level:\n{text}"));
        assert!(level <= 2.0, "{unit} exposure {level}:\n{text}");
        println!("{unit}: systemd-analyze security exposure {level}");
    }

    // SIGTERM must get the worker's whole grace before systemd's SIGKILL.
    let unit = std::fs::read_to_string(deploy().join("thumbnailer-worker.service")).unwrap();
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim_end_matches('s').parse().ok())
        .unwrap();
    let example = std::fs::read_to_string(deploy().join("thumbnailer.env.example")).unwrap();
    let grace: u64 = example
        .lines()
        .find_map(|l| l.strip_prefix("#WORKER_SHUTDOWN_GRACE="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        stop >= grace + 15,
        "TimeoutStopSec {stop} s, grace {grace} s"
    );
    for unit in ["thumbnailer-app.service", "thumbnailer-worker.service"] {
        let text = std::fs::read_to_string(deploy().join(unit)).unwrap();
        for line in [
            "User=thumbnailer",
            "EnvironmentFile=/etc/thumbnailer/thumbnailer.env",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "WantedBy=multi-user.target",
        ] {
            assert!(text.lines().any(|l| l == line), "{unit}: no {line}");
        }
    }
}

/// Reads an EnvironmentFile the way systemd does for these simple lines: `KEY=value`,
/// comments and blank lines skipped.
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_binaries_run_with_the_example_settings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    install(root, &[]);
    let storage = Storage::emulator();
    let port = free_port();
    // What a person does: fill in the connection string; here also a free port.
    let example = std::fs::read_to_string(root.join("etc/thumbnailer/thumbnailer.env")).unwrap();
    let edited: String = example
        .lines()
        .map(|l| {
            if l.starts_with("AZURE_STORAGE_CONNECTION_STRING=") {
                format!(
                    "AZURE_STORAGE_CONNECTION_STRING={}",
                    storage.connection_string()
                )
            } else if l.starts_with("APP_LISTEN=") {
                format!("APP_LISTEN=127.0.0.1:{port}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let env = environment_file(&edited);
    assert!(env.iter().any(|(k, _)| k == "RUST_LOG"));
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();

    let bin = |side: &str| root.join(format!("usr/local/bin/thumbnailer-{side}"));
    let mut app = Service::start_path(&bin("app"), "deploy-vm-app", &[], &env, true);
    let base = app.wait_for_line("App listening at ", Duration::from_secs(60));
    assert_eq!(base, format!("http://127.0.0.1:{port}"));
    let mut worker = Service::start_path(&bin("worker"), "deploy-vm-worker", &[], &env, true);
    worker.wait_for_line_containing("worker started", Duration::from_secs(60));

    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);

    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x / 3) as u8, (y / 2) as u8, 90])
    }))
    .write_to(&mut jpeg, image::ImageFormat::Jpeg)
    .unwrap();
    let id = upload_image(&http, &base, "vm.jpg", jpeg.into_inner()).await;
    let job = wait_for_job(&http, &base, &id, "done").await;
    assert_eq!(job["thumbnail"]["width"], 256, "{job}");
    // systemd stops with SIGTERM: both exit 0.
    assert!(worker.terminate(Duration::from_secs(30)).success());
    assert!(app.terminate(Duration::from_secs(30)).success());
}
