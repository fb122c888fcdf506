//! Blob events end to end: the emulator puts a BlobCreated event (Event Grid schema,
//! base64) into a queue when the app commits an original, and the worker, run from those
//! events instead of the app's job messages, makes the outputs. A duplicate delivery (events
//! are at-least-once) changes nothing.
#![allow(clippy::unwrap_used)]

use azure_storage_queue::models::QueueClientGetPropertiesResultHeaders;
use base64::Engine;
use conformance_tests::system::{upload_image, wait_for_job, Service};
use emulator::{Emulator, EventSubscription};
use std::time::{Duration, Instant};

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

async fn bytes(http: &reqwest::Client, url: &str) -> Vec<u8> {
    http.get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

async fn count(queue: &azure_storage_queue::QueueClient) -> i64 {
    queue
        .get_properties(None)
        .await
        .unwrap()
        .approximate_messages_count()
        .unwrap()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_runs_from_blob_created_events() {
    let emu = Emulator::in_memory().start().await.unwrap();
    let sub: EventSubscription = serde_json::from_str(
        r#"{"name":"uploads","container":"uploads","includedEventTypes":["BlobCreated"],"queue":"image-events"}"#,
    )
    .unwrap();
    let sub = emu.subscribe(sub).await.unwrap();
    assert_eq!(sub.account, "devstoreaccount1");
    assert_eq!(sub.included_event_types, ["Microsoft.Storage.BlobCreated"]);
    let conn = emu.connection_string();
    let port = conformance_tests::target::free_port();
    let mut app = Service::start(
        "app",
        "events-app",
        &[],
        &[
            ("AZURE_STORAGE_CONNECTION_STRING", conn.clone()),
            ("APP_LISTEN", format!("127.0.0.1:{port}")),
            ("APP_JOB_DISPATCH", "events".into()),
        ],
    );
    let base = app.wait_for_line("App listening at ", Duration::from_secs(60));
    let mut worker = Service::start(
        "worker",
        "events-worker",
        &[],
        &[
            ("AZURE_STORAGE_CONNECTION_STRING", conn.clone()),
            ("WORKER_JOB_SOURCE", "events".into()),
            ("IMAGE_QUEUE", "image-events".into()),
        ],
    );
    worker.wait_for_line_containing("worker started", Duration::from_secs(60));

    let http = reqwest::Client::new();
    let id = upload_image(&http, &base, "photo.jpg", jpeg()).await;
    let done = wait_for_job(&http, &base, &id, "done").await;
    assert_eq!(done["file_name"], "photo.jpg", "{done}");

    let storage = storage_client::Storage::connect(&conn).unwrap();
    // No job message was sent: the event was the job.
    assert_eq!(count(&storage.queue("images").unwrap()).await, 0);
    let events = storage.queue("image-events").unwrap();
    assert_eq!(count(&events).await, 0, "the worker deleted the event");

    // Deliver the same event again: the job ends the same, outputs byte for byte.
    let outputs = |j: &serde_json::Value| {
        (
            j["thumbnail"]["url"].as_str().unwrap().to_string(),
            j["web"]["url"].as_str().unwrap().to_string(),
        )
    };
    let (thumb_url, web_url) = outputs(&done);
    let before = (bytes(&http, &thumb_url).await, bytes(&http, &web_url).await);
    let blob = format!("{id}.jpg");
    let event = serde_json::json!({
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": format!("/blobServices/default/containers/uploads/blobs/{blob}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2026-12-01T00:00:00.0000000Z",
        "id": "duplicate",
        "data": {"api": "PutBlob", "url": "x"},
        "dataVersion": "",
        "metadataVersion": "1"
    });
    let text = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    events
        .send_message(
            azure_storage_queue::models::QueueMessage {
                message_text: Some(text),
            }
            .try_into()
            .unwrap(),
            None,
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while worker.log_text().matches("job finished").count() < 2 {
        assert!(Instant::now() < deadline, "{}", worker.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = wait_for_job(&http, &base, &id, "done").await;
    assert_eq!(outputs(&again), (thumb_url.clone(), web_url.clone()));
    let after = (bytes(&http, &thumb_url).await, bytes(&http, &web_url).await);
    assert!(before == after, "a duplicate event changed the outputs");
    // The worker's outputs (container thumbnails) are no events of this subscription.
    assert_eq!(count(&events).await, 0);
    // Every event went out; the handle's metrics say so too.
    let metrics = emu.metrics().unwrap();
    assert!(
        metrics.contains("\nazure_emulator_events_waiting 0\n"),
        "{metrics}"
    );
    app.terminate(Duration::from_secs(10));
    worker.terminate(Duration::from_secs(30));
    emu.shutdown().await;
}
