//! Retry and delete through the app, against our emulator and Azurite: an upload whose
//! bytes cannot be decoded is poisoned; once its original is replaced, `POST
//! /api/jobs/{id}/retry` re-queues it, the poison message goes and the job finishes. Then
//! `DELETE /api/jobs/{id}` leaves nothing behind in the three containers and the two
//! queues, and saying it again is no error.
#![allow(clippy::unwrap_used)]

use conformance_tests::system::{
    blob_names, start_app, start_worker, upload_image, wait_for_job, Storage,
};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use std::io::Cursor;
use storage_client::job::{self, poison_queue};
use storage_client::job_store::queue_depth;

fn jpeg() -> Vec<u8> {
    let img = RgbImage::from_fn(900, 600, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 77]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

async fn flow(storage: Storage) {
    let cs = storage.connection_string();
    let name = storage.name();
    let sdk = storage_client::Storage::connect(&cs).unwrap();
    let (_app, base) = start_app(&cs, &format!("manage-{name}-app"), &[]);
    let _worker = start_worker(
        &cs,
        &format!("manage-{name}-worker"),
        &["--idle-max-ms", "100"],
    );
    let http = reqwest::Client::new();

    // A JPEG's magic and garbage after: it passes the app's sniffing, the worker cannot
    // decode it.
    let good = jpeg();
    let mut broken = b"\xFF\xD8\xFF\xE0".to_vec();
    broken.extend(std::iter::repeat_n(0x42u8, 5000));
    let id = upload_image(&http, &base, "broken.jpg", broken).await;
    let failed = wait_for_job(&http, &base, &id, "failed").await;
    let poison = poison_queue(job::DEFAULT_QUEUE);
    assert_eq!(queue_depth(&sdk, &poison).await.unwrap(), 1);

    // Retrying a job that is not failed is refused; a missing one is 404.
    let retry = |id: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.post(format!("{base}/api/jobs/{id}/retry"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(retry("ffffffffffffffffffff".into()).await, 404);

    // The cause fixed (the original replaced), the retry succeeds and the poison goes.
    assert!(failed["original_url"]
        .as_str()
        .unwrap()
        .contains(&format!("{id}.jpg")));
    let original = format!("{id}.jpg");
    sdk.container(job::UPLOADS)
        .blob_client(&original)
        .upload(azure_core::http::RequestContent::from(good.clone()), None)
        .await
        .unwrap();
    assert_eq!(retry(id.clone()).await, 202);
    let done = wait_for_job(&http, &base, &id, "done").await;
    assert_eq!(done["thumbnail"]["width"], 256, "{done}");
    assert_eq!(queue_depth(&sdk, &poison).await.unwrap(), 0);
    assert_eq!(retry(id.clone()).await, 409, "a done job is not retried");

    // Delete: nothing of it is left anywhere; twice is fine.
    for _ in 0..2 {
        let r = http
            .delete(format!("{base}/api/jobs/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }
    for container in [job::UPLOADS, job::THUMBNAILS, job::JOBS] {
        let left: Vec<String> = blob_names(&sdk, container)
            .await
            .into_iter()
            .filter(|n| n.starts_with(&id))
            .collect();
        assert!(left.is_empty(), "{container}: {left:?}");
    }
    for queue in [job::DEFAULT_QUEUE.to_string(), poison] {
        assert_eq!(queue_depth(&sdk, &queue).await.unwrap(), 0, "{queue}");
    }
    let r = http
        .get(format!("{base}/api/jobs/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(retry(id).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_and_delete_against_our_emulator() {
    flow(Storage::emulator()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_and_delete_against_azurite() {
    flow(Storage::azurite()).await;
}
