//! Fault injection from Rust: rules added through the in-process handle make Microsoft's
//! Rust SDK retry, and the app and the worker get through injected 503s: the upload is
//! retried by the SDK, the worker's job fails its tries, its message comes back, and the
//! outputs are byte for byte those of an undisturbed run.
#![allow(clippy::unwrap_used)]

use conformance_tests::system::{upload_image, Service};
use emulator::faults::RuleSpec;
use emulator::Emulator;
use std::time::{Duration, Instant};

fn rule(json: &str) -> RuleSpec {
    serde_json::from_str(json).unwrap()
}

#[tokio::test]
async fn rust_sdk_retries_through_two_503s() {
    let emu = Emulator::in_memory().start().await.unwrap();
    let storage = storage_client::Storage::connect(&emu.connection_string()).unwrap();
    let container = storage.container("retries");
    container.create(None).await.unwrap();
    let blob = container.blob_client("a.txt");
    blob.upload(
        azure_core::http::RequestContent::from(b"hello".to_vec()),
        None,
    )
    .await
    .unwrap();
    let added = emu
        .faults()
        .add(rule(
            r#"{"operation":"GetBlobProperties","status":503,"errorCode":"ServerBusy","retryAfterSeconds":0,"count":2}"#,
        ))
        .unwrap();
    blob.get_properties(None).await.unwrap();
    let listed = emu.faults().list();
    assert_eq!(listed[0].id, added.id);
    assert_eq!((listed[0].hits, listed[0].remaining), (2, Some(0)));
    let log = emu
        .requests()
        .recent(3, |e| e.operation == "GetBlobProperties");
    let statuses: Vec<u16> = log.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    // And a reset from the handle leaves nothing.
    assert_eq!(emu.reset(None).await.unwrap(), (0, 1));
    let again = storage.container("retries");
    assert!(again.get_properties(None).await.is_err());
    emu.shutdown().await;
}

/// A test's known starting point from the in-process handle: snapshot, change, restore.
#[tokio::test]
async fn rust_sdk_sees_a_restored_snapshot() {
    let emu = Emulator::in_memory().start().await.unwrap();
    let storage = storage_client::Storage::connect(&emu.connection_string()).unwrap();
    let container = storage.container("fixtures");
    container.create(None).await.unwrap();
    let blob = container.blob_client("a.txt");
    blob.upload(
        azure_core::http::RequestContent::from(b"original".to_vec()),
        None,
    )
    .await
    .unwrap();
    let info = emu.snapshot("start").await.unwrap();
    assert!(info.records > 0);
    blob.upload(
        azure_core::http::RequestContent::from(b"changed".to_vec()),
        None,
    )
    .await
    .unwrap();
    storage.container("more").create(None).await.unwrap();
    emu.restore("start").await.unwrap();
    let body = blob
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(&body[..], b"original");
    assert!(storage
        .container("more")
        .get_properties(None)
        .await
        .is_err());
    assert!(emu.restore("missing").await.is_err());
    assert!(emu.snapshot("../escape").await.is_err());
    emu.shutdown().await;
}

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

async fn job(http: &reqwest::Client, base: &str, id: &str) -> serde_json::Value {
    http.get(format!("{base}/api/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn bytes(http: &reqwest::Client, url: &str) -> Vec<u8> {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn app_and_worker_get_through_injected_503s() {
    let emu = Emulator::in_memory().start().await.unwrap();
    let conn = emu.connection_string();
    let port = conformance_tests::target::free_port();
    let env = vec![
        ("AZURE_STORAGE_CONNECTION_STRING", conn.clone()),
        ("APP_LISTEN", format!("127.0.0.1:{port}")),
    ];
    let mut app = Service::start("app", "faults-app", &[], &env);
    let base = app.wait_for_line("App listening at ", Duration::from_secs(60));
    // Two tries per storage call: a delivery fails in well under a second.
    let mut worker = Service::start(
        "worker",
        "faults-worker",
        &["--storage-retries", "1"],
        &[("AZURE_STORAGE_CONNECTION_STRING", conn.clone())],
    );
    worker.wait_for_line_containing("worker started", Duration::from_secs(60));
    let http = reqwest::Client::new();
    let image = jpeg();

    // An undisturbed run, for the outputs to compare with.
    let clean = upload_image(&http, &base, "photo.jpg", image.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let clean_job = loop {
        let j = job(&http, &base, &clean).await;
        if j["state"] == "done" {
            break j;
        }
        assert!(Instant::now() < deadline, "clean job: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The upload's writes fail twice (the SDK retries them); the worker's outputs fail
    // more often than the SDK retries in one delivery, so the job must come back.
    let upload_rule = emu
        .faults()
        .add(rule(r#"{"resource":"uploads/","method":"PUT","status":503,"errorCode":"ServerBusy","retryAfterSeconds":0,"count":2}"#))
        .unwrap();
    let output_rule = emu
        .faults()
        .add(rule(r#"{"resource":"thumbnails/","method":"PUT","status":503,"errorCode":"ServerBusy","count":4}"#))
        .unwrap();
    let faulted = upload_image(&http, &base, "photo.jpg", image).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut retries_seen = 0;
    let faulted_job = loop {
        let j = job(&http, &base, &faulted).await;
        if j["state"] == "done" {
            break j;
        }
        // A failed delivery is requeued with a delay (2^n s): skip it on the clock.
        let retries = worker.log_text().matches("will retry").count();
        if retries > retries_seen {
            emu.clock().advance_ms(70_000);
            retries_seen = retries;
        }
        assert!(Instant::now() < deadline, "faulted job: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rules = emu.faults().list();
    let hits = |id: u64| rules.iter().find(|r| r.id == id).unwrap().hits;
    assert_eq!(hits(upload_rule.id), 2);
    assert_eq!(hits(output_rule.id), 4);
    assert!(
        retries_seen >= 1,
        "the worker never had to retry:\n{}",
        worker.log_text()
    );
    assert!(
        faulted_job["attempts"].as_u64().unwrap() >= 2,
        "{faulted_job}"
    );
    for kind in ["thumbnail", "web"] {
        let a = bytes(&http, clean_job[kind]["url"].as_str().unwrap()).await;
        let b = bytes(&http, faulted_job[kind]["url"].as_str().unwrap()).await;
        assert!(a == b, "{kind} differs after the retried job");
    }
    worker.terminate(Duration::from_secs(30));
    app.terminate(Duration::from_secs(30));
    emu.shutdown().await;
}
