//! The app's photo features in a real browser (`conformance-tests/browser/photos.cjs`,
//! headless Chromium driven by playwright-core), against our emulator and Azurite: the
//! form without JavaScript; per-file progress of a throttled large upload; gallery paging
//! both ways; a failed upload retried with its button once this driver has replaced the
//! original; every upload deleted with its button, after which the three containers and
//! both queues are empty. Screenshots land in `target/e2e-logs/photos-<backend>-*.png`.
#![allow(clippy::unwrap_used)]

use conformance_tests::system::{blob_names, start_app, start_worker, Browser, Storage};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use storage_client::job::{self, poison_queue};
use storage_client::job_store::queue_depth;

fn save(img: RgbImage, path: &Path, format: ImageFormat) {
    DynamicImage::ImageRgb8(img)
        .save_with_format(path, format)
        .unwrap();
}

fn run(storage: Storage) {
    let browser = Browser::find();
    let root = browser.root.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let cs = storage.connection_string();
    let name = storage.name();
    let sdk = storage_client::Storage::connect(&cs).unwrap();
    let (_app, base) = start_app(
        &cs,
        &format!("photos-{name}-app"),
        &[("APP_GALLERY_SIZE", "2".to_string())],
    );
    let _worker = start_worker(
        &cs,
        &format!("photos-{name}-worker"),
        &["--idle-max-ms", "100"],
    );

    let dir = tempfile::tempdir().unwrap();
    let gradient = |w, h| RgbImage::from_fn(w, h, |x, y| Rgb([(x / 4) as u8, (y / 3) as u8, 120]));
    let no_js = dir.path().join("no-js.jpg");
    save(gradient(800, 600), &no_js, ImageFormat::Jpeg);
    let small = dir.path().join("small.jpg");
    save(gradient(640, 480), &small, ImageFormat::Jpeg);
    // Noise does not compress: about 5.8 MB of PNG, so the throttled upload takes seconds.
    let mut seed = 0x2545_f491_u32;
    let large = dir.path().join("large.png");
    save(
        RgbImage::from_fn(1600, 1200, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let [a, b, c, _] = seed.to_le_bytes();
            Rgb([a, b, c])
        }),
        &large,
        ImageFormat::Png,
    );
    // A JPEG's magic and garbage after: the app takes it, the worker cannot decode it.
    let broken = dir.path().join("broken.jpg");
    let mut bytes = b"\xFF\xD8\xFF\xE0".to_vec();
    bytes.extend(std::iter::repeat_n(0x42u8, 5000));
    std::fs::write(&broken, bytes).unwrap();
    let mut good = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(gradient(900, 600))
        .write_to(&mut good, ImageFormat::Jpeg)
        .unwrap();
    let good = good.into_inner();

    let logs = root.join("target/e2e-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let shots = logs.join(format!("photos-{name}"));
    let mut child = browser
        .script("photos.cjs")
        .arg(&base)
        .arg(&shots)
        .args([&no_js, &large, &broken, &small])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running node");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut report = None;
    let mut fixed = false;
    for line in stdout.lines() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(id) = v["fix"].as_str() {
            // The cause fixed: the original replaced by a good JPEG under the same name.
            rt.block_on(async {
                let originals: Vec<String> = blob_names(&sdk, job::UPLOADS)
                    .await
                    .into_iter()
                    .filter(|n| n.starts_with(id))
                    .collect();
                assert_eq!(originals.len(), 1, "{originals:?}");
                sdk.container(job::UPLOADS)
                    .blob_client(&originals[0])
                    .upload(azure_core::http::RequestContent::from(good.clone()), None)
                    .await
                    .unwrap();
            });
            writeln!(stdin, "fixed").unwrap();
            fixed = true;
        } else {
            report = Some(v);
        }
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser test failed:\n{stderr}");
    assert!(fixed, "the script never asked for the fix");
    let report = report.expect("no report");

    assert!(
        report["progress"]["steps"].as_u64().unwrap() >= 3,
        "{report}"
    );
    assert_eq!(report["paging"]["js"], 4, "{report}");
    assert_eq!(report["paging"]["links"], 4, "{report}");
    assert_eq!(report["retry"]["poison_before"], 1, "{report}");
    assert_eq!(report["retry"]["poison_after"], 0, "{report}");
    assert_eq!(
        report["retry"]["thumbnail"],
        serde_json::json!([256, 171]),
        "{report}"
    );
    assert_eq!(report["deleted"], 4, "{report}");
    assert!(
        report["dialog"].as_str().unwrap().contains("Delete"),
        "{report}"
    );

    // Deleted through the buttons: nothing left anywhere.
    rt.block_on(async {
        for container in [job::UPLOADS, job::THUMBNAILS, job::JOBS] {
            let left = blob_names(&sdk, container).await;
            assert!(left.is_empty(), "{container}: {left:?}");
        }
        for queue in [
            job::DEFAULT_QUEUE.to_string(),
            poison_queue(job::DEFAULT_QUEUE),
        ] {
            assert_eq!(queue_depth(&sdk, &queue).await.unwrap(), 0, "{queue}");
        }
    });
    for step in ["progress", "gallery", "failed", "retried", "deleted"] {
        let png = std::fs::read(logs.join(format!("photos-{name}-{step}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "screenshot {step}");
    }
}

#[test]
fn photos_in_a_browser_against_our_emulator() {
    run(Storage::emulator());
}

#[test]
fn photos_in_a_browser_against_azurite() {
    run(Storage::azurite());
}
