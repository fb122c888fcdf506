//! A real browser against the real system: headless Chromium (Debian's `chromium`), driven
//! by `playwright-core` (`conformance-tests/browser/upload.cjs`), uploads an image through
//! the app's form and waits in the gallery, without reloading, for its thumbnail: pushed by
//! Server-Sent Events, and in a tab without EventSource by the polling fallback. Runs
//! against our emulator and against Azurite; screenshots land in `target/e2e-logs/`.
#![allow(clippy::unwrap_used)]

use conformance_tests::system::{start_app, start_worker, Browser, Storage};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

fn run(storage: Storage) {
    let browser = Browser::find();
    let root = browser.root.clone();

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

    let out = browser
        .script("upload.cjs")
        .arg(&base)
        .arg(&file)
        .arg(&shot)
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
    assert_eq!(
        report["modes"],
        serde_json::json!({"sse": "sse", "poll": "poll"}),
        "{report}"
    );
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
