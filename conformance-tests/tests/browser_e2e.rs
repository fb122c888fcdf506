//! A real browser against the real system: headless Chromium (Debian's `chromium`), driven
//! by `playwright-core` (`conformance-tests/browser/upload.cjs`), uploads an image through
//! the app's form and waits in the gallery, without reloading, for its thumbnail. Runs
//! against our emulator and against Azurite; screenshots land in `target/e2e-logs/`.
#![allow(clippy::unwrap_used)]

use conformance_tests::system::{start_app, start_worker, Storage};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use std::path::Path;
use std::process::Command;

fn run(storage: Storage) {
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

    let cs = storage.connection_string();
    let name = storage.name();
    let (_app, base) = start_app(&cs, &format!("browser-{name}-app"), &[]);
    // A short hold per job, so the gallery is open before the job is done and the
    // thumbnail has to arrive by live update.
    let _worker = start_worker(
        &cs,
        &format!("browser-{name}-worker"),
        &["--idle-max-ms", "100", "--job-delay-ms", "2500"],
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sunset.jpg");
    let img = RgbImage::from_fn(1200, 900, |x, y| Rgb([(x / 5) as u8, (y / 4) as u8, 160]));
    DynamicImage::ImageRgb8(img)
        .save_with_format(&file, ImageFormat::Jpeg)
        .unwrap();
    let shot = root.join(format!("target/e2e-logs/gallery-{name}.png"));
    let _ = std::fs::remove_file(&shot);

    let out = Command::new("node")
        .arg(root.join("conformance-tests/browser/upload.cjs"))
        .arg(&base)
        .arg(&file)
        .arg(&shot)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        report["thumbnail"],
        serde_json::json!([256, 192]),
        "{report}"
    );
    assert_ne!(report["initial"], "done");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot was saved");
}

#[test]
fn browser_upload_against_our_emulator() {
    run(Storage::emulator());
}

#[test]
fn browser_upload_against_azurite() {
    run(Storage::azurite());
}
