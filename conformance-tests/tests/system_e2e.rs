//! End to end: the real `app` and `worker` binaries against our emulator and against
//! Azurite, driven the way a person would, through the app's HTTP form. Proves the two are
//! tied to no particular storage implementation, only to the connection string.
//!
//! One flow per storage: JPEG + PNG upload and their renditions; rejected uploads leave
//! nothing behind; a corrupt image ends in the poison queue and shows as failed; a
//! redelivered message gives the same outputs; SIGTERM releases a running job; a worker
//! killed mid-job is replaced by another that finishes it after the visibility timeout.
#![allow(clippy::unwrap_used)]

use azure_storage_blob::models::BlobClientGetPropertiesResultHeaders;
use azure_storage_queue::models::QueueMessage;
use conformance_tests::system::{blob_names, start_app, start_worker, Storage};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::Value;
use std::io::Cursor;
use std::time::{Duration, Instant};
use storage_client::job::{self, JobMessage};

fn picture(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

/// A phone's portrait shot: 1200 x 800 pixels stored sideways, with EXIF Orientation 6
/// (rotate 90 degrees clockwise to view) and a GPS block, as phones save them.
fn phone_portrait() -> Vec<u8> {
    let plain = picture(1200, 800, ImageFormat::Jpeg);
    let mut tiff: Vec<u8> = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 38]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&plain[2..]);
    out
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn upload(&self, files: &[(&str, Vec<u8>)]) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part(
                "images",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        let r = self
            .http
            .post(format!("{}/upload", self.base))
            .header("accept", "application/json")
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    async fn upload_html(&self, name: &str, bytes: Vec<u8>) -> (u16, String) {
        let form = reqwest::multipart::Form::new().part(
            "images",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
        let r = self
            .http
            .post(format!("{}/upload", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn job(&self, id: &str) -> Value {
        self.get_json(&format!("/api/jobs/{id}")).await
    }

    /// Polls the job until `pred` holds (bounded).
    async fn wait_job(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let j = self.job(id).await;
            if pred(&j) {
                return j;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never became {what}: {j}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fetches an image URL from the API (absolute SAS URL or the app's proxy path).
    async fn raw(&self, url: &str) -> Vec<u8> {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        };
        let r = self.http.get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        r.bytes().await.unwrap().to_vec()
    }

    async fn image(&self, url: &str) -> DynamicImage {
        image::load_from_memory(&self.raw(url).await).unwrap()
    }
}

/// The blob name at the end of an image URL (SAS or proxy), without its query.
fn blob_name(url: &str) -> &str {
    let last = url.rsplit('/').next().unwrap_or(url);
    last.split('?').next().unwrap_or(last)
}

fn state(j: &Value) -> &str {
    j["state"].as_str().unwrap_or("")
}

fn job_ids(v: &Value) -> Vec<String> {
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

async fn flow(storage: Storage) {
    let cs = storage.connection_string();
    let name = storage.name();
    let sdk = storage_client::Storage::connect(&cs).unwrap();
    let (_app, base) = start_app(
        &cs,
        &format!("{name}-app"),
        &[("APP_MAX_UPLOAD_BYTES", (5 * 1024 * 1024).to_string())],
    );
    let client = Client {
        http: reqwest::Client::new(),
        base,
    };
    let health = client.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    let fast = ["--idle-max-ms", "100", "--concurrency", "2"];
    let mut worker_a = start_worker(&cs, &format!("{name}-worker-a"), &fast);

    // 1. A JPEG and a PNG in one form: both processed, sizes right, outputs linked.
    let (status, body) = client
        .upload(&[
            ("landscape.jpg", picture(2000, 1500, ImageFormat::Jpeg)),
            ("portrait été.png", picture(800, 1200, ImageFormat::Png)),
            ("phone.jpg", phone_portrait()),
        ])
        .await;
    assert_eq!(status, 201, "{body}");
    let ids = job_ids(&body);
    assert_eq!(ids.len(), 3);
    // The phone's sideways pixels come out upright: portrait, as the PNG.
    let expected = [
        ((256, 192), (1024, 768)),
        ((171, 256), (683, 1024)),
        ((171, 256), (683, 1024)),
    ];
    for (id, (thumb, web)) in ids.iter().zip(expected) {
        let j = client.wait_job(id, "done", |j| state(j) == "done").await;
        assert_eq!(j["attempts"], 1);
        for (kind, (w, h)) in [("thumbnail", thumb), ("web", web)] {
            assert_eq!(
                (j[kind]["width"].as_u64(), j[kind]["height"].as_u64()),
                (Some(w), Some(h)),
                "{j}"
            );
            let raw = client.raw(j[kind]["url"].as_str().unwrap()).await;
            assert!(
                !raw.windows(4).any(|w| w == b"Exif"),
                "the {kind} of {j} carries EXIF"
            );
            let img = image::load_from_memory(&raw).unwrap();
            assert_eq!(
                (img.width(), img.height()),
                (w as u32, h as u32),
                "{kind} of {j}"
            );
        }
        let thumb_blob = format!("{id}/thumbnail-256.jpg");
        let props = sdk
            .container(job::THUMBNAILS)
            .blob_client(&thumb_blob)
            .get_properties(None)
            .await
            .unwrap();
        let meta = props.metadata().unwrap();
        assert_eq!(meta.get("job").map(String::as_str), Some(id.as_str()));
        assert!(meta["original"].starts_with("uploads/"), "{meta:?}");
        assert_eq!(props.content_type().unwrap().as_deref(), Some("image/jpeg"));
        // The original keeps its name, size and type in metadata.
        let orig = client.image(j["original_url"].as_str().unwrap()).await;
        assert!(orig.width() >= 800);
        let original_blob = blob_name(j["original_url"].as_str().unwrap());
        let props = sdk
            .container(job::UPLOADS)
            .blob_client(original_blob)
            .get_properties(None)
            .await
            .unwrap();
        let meta = props.metadata().unwrap();
        assert_eq!(meta["size"], j["size"].to_string(), "{meta:?}");
        assert_eq!(meta["contenttype"], j["content_type"].as_str().unwrap());
        assert_eq!(
            props.content_type().unwrap().as_deref(),
            j["content_type"].as_str()
        );
        assert!(!meta["filename"].is_empty());
        if j["file_name"] == "phone.jpg" {
            // The original stays as uploaded, EXIF and all.
            let bytes = client.raw(j["original_url"].as_str().unwrap()).await;
            assert!(bytes == phone_portrait(), "the original was changed");
        }
    }
    let names: Vec<Value> = client.get_json("/api/jobs").await["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["file_name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![
            Value::from("phone.jpg"),
            Value::from("portrait été.png"),
            Value::from("landscape.jpg")
        ]
    );
    assert!(
        worker_a.log_text().contains(&format!("job={}", ids[0])),
        "one log line per job"
    );

    // 2. Rejected uploads: the right status, a clear page, nothing stored.
    let uploads_before = blob_names(&sdk, job::UPLOADS).await;
    let jobs_before = blob_names(&sdk, job::JOBS).await;
    let (status, html) = client
        .upload_html("notes.txt", b"just some text".to_vec())
        .await;
    assert_eq!(status, 415);
    assert!(
        html.contains("is not a JPEG, PNG, WebP or GIF image"),
        "{html}"
    );
    let mut huge = picture(64, 64, ImageFormat::Jpeg);
    huge.resize(6 * 1024 * 1024, 0xAB); // JPEG magic, 6 MiB: staged blocks, then cut off
    let (status, html) = client.upload_html("huge.jpg", huge).await;
    assert_eq!(status, 413);
    assert!(html.contains("larger than the 5 MiB limit"), "{html}");
    let (status, body) = client
        .upload(&[
            ("fine.png", picture(300, 200, ImageFormat::Png)),
            ("bad.gif", b"plain text pretending".to_vec()),
        ])
        .await;
    assert_eq!(status, 415, "one bad file rejects the whole form: {body}");
    let (status, _) = client.upload(&[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        blob_names(&sdk, job::UPLOADS).await,
        uploads_before,
        "no half-written uploads"
    );
    assert_eq!(blob_names(&sdk, job::JOBS).await, jobs_before);

    // 3. A corrupt image (right magic, garbage after) fails to decode: poison queue, failed.
    let mut corrupt = b"\xFF\xD8\xFF\xE0".to_vec();
    corrupt.extend(std::iter::repeat_n(0x42u8, 5000));
    let (status, body) = client.upload(&[("corrupt.jpg", corrupt)]).await;
    assert_eq!(status, 201);
    let bad = job_ids(&body).remove(0);
    let j = client
        .wait_job(&bad, "failed", |j| state(j) == "failed")
        .await;
    assert!(
        j["reason"]
            .as_str()
            .unwrap()
            .contains("cannot decode image"),
        "{j}"
    );
    let overview = client.get_json("/api/jobs").await;
    assert_eq!(overview["poison_count"], 1, "{overview}");
    let poison = sdk
        .queue(&job::poison_queue(job::DEFAULT_QUEUE))
        .unwrap()
        .peek_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    let p: Value = serde_json::from_str(poison[0].message_text.as_deref().unwrap()).unwrap();
    assert!(
        p["reason"].as_str().unwrap().contains("cannot decode"),
        "{p}"
    );
    assert_eq!(
        JobMessage::parse(p["message"].as_str().unwrap())
            .unwrap()
            .id
            .as_str(),
        bad
    );

    // 4. At least once: the same message again gives the same outputs and state.
    let first = &ids[0];
    let before = client.job(first).await;
    let thumb_name = format!("{first}/thumbnail-256.jpg");
    let thumb_client = sdk.container(job::THUMBNAILS).blob_client(&thumb_name);
    let bytes_before = thumb_client
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    let blob = blob_name(before["original_url"].as_str().unwrap());
    let again = JobMessage::new(
        storage_client::job::JobId::parse(first).unwrap(),
        blob.to_string(),
    );
    sdk.queue(job::DEFAULT_QUEUE)
        .unwrap()
        .send_message(
            QueueMessage {
                message_text: Some(again.to_json()),
            }
            .try_into()
            .unwrap(),
            None,
        )
        .await
        .unwrap();
    let after = client
        .wait_job(first, "reprocessed", |j| {
            state(j) == "done" && j["updated"] != before["updated"]
        })
        .await;
    for key in ["state", "file_name", "size", "attempts"] {
        assert_eq!(after[key], before[key], "{key}");
    }
    for kind in ["thumbnail", "web"] {
        assert_eq!(after[kind]["width"], before[kind]["width"]);
        assert_eq!(after[kind]["height"], before[kind]["height"]);
    }
    let bytes_after = thumb_client
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(bytes_after, bytes_before, "deterministic outputs");
    assert_eq!(worker_a.terminate(Duration::from_secs(30)).code(), Some(0));

    // 5. SIGTERM mid-job: the worker releases the message at once and exits 0.
    let slow = [
        "--idle-max-ms",
        "100",
        "--job-delay-ms",
        "600000",
        "--visibility-timeout",
        "4",
        "--shutdown-grace",
        "1",
    ];
    let mut worker_d = start_worker(&cs, &format!("{name}-worker-d"), &slow);
    let (_, body) = client
        .upload(&[("slow.png", picture(640, 480, ImageFormat::Png))])
        .await;
    let slow_id = job_ids(&body).remove(0);
    client
        .wait_job(&slow_id, "processing", |j| state(j) == "processing")
        .await;
    assert_eq!(worker_d.terminate(Duration::from_secs(30)).code(), Some(0));
    let j = client.job(&slow_id).await;
    assert_eq!(state(&j), "queued");
    assert!(j["reason"].as_str().unwrap().contains("released"), "{j}");

    // 6. kill -9 mid-job: the message reappears after the visibility timeout and another
    //    worker finishes it.
    let mut worker_b = start_worker(&cs, &format!("{name}-worker-b"), &slow);
    client
        .wait_job(&slow_id, "processing again", |j| {
            state(j) == "processing" && j["attempts"] == 2
        })
        .await;
    worker_b.kill9();
    storage.let_time_pass(30);
    let worker_c = start_worker(&cs, &format!("{name}-worker-c"), &fast);
    let j = client
        .wait_job(&slow_id, "done", |j| state(j) == "done")
        .await;
    assert_eq!(j["attempts"], 3, "third delivery: {j}");
    assert_eq!(
        (
            j["thumbnail"]["width"].as_u64(),
            j["thumbnail"]["height"].as_u64()
        ),
        (Some(256), Some(192))
    );
    drop(worker_c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_pipeline_against_our_emulator() {
    flow(Storage::emulator()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_pipeline_against_azurite() {
    flow(Storage::azurite()).await;
}
