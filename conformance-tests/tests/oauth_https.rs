//! HTTPS and Microsoft Entra ID tokens from Rust: Microsoft's Rust SDK with a token
//! credential and no Shared Key policy (how it talks to Azure), then the app and the
//! worker configured by endpoint URLs alone, against the emulator serving HTTPS with
//! `--oauth basic`. The certificate is made here and trusted by path
//! (`AZURE_STORAGE_CA_FILE`), never installed.
#![allow(clippy::unwrap_used)]

use azure_core::http::{ClientOptions, RequestContent, Transport};
use azure_storage_blob::{BlobServiceClient, BlobServiceClientOptions};
use azure_storage_queue::{QueueServiceClient, QueueServiceClientOptions};
use conformance_tests::system::{upload_image, wait_for_job, Service};
use emulator::{Emulator, RunningEmulator, TlsFiles};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage_client::identity::DevTokenCredential;

/// A self-signed leaf certificate for 127.0.0.1 and localhost, as PEM files in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

async fn https_emulator(dir: &Path) -> (RunningEmulator, PathBuf) {
    let (cert, key) = certificate(dir);
    let mut e = Emulator::in_memory();
    let c = e.config_mut();
    c.tls = Some(TlsFiles {
        cert: cert.clone(),
        key: Some(key),
        password: None,
    });
    c.oauth = true;
    (e.start().await.unwrap(), cert)
}

fn transport(ca: &Path) -> Transport {
    let client = storage_client::transport::client(&["https://127.0.0.1"], Some(ca)).unwrap();
    Transport::new(Arc::new(client))
}

#[tokio::test]
async fn rust_sdk_with_a_token_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, ca) = https_emulator(dir.path()).await;
    assert!(emu.blob_endpoint().starts_with("https://"));
    assert!(emu
        .connection_string()
        .starts_with("DefaultEndpointsProtocol=https;"));
    let options = || ClientOptions {
        transport: Some(transport(&ca)),
        ..Default::default()
    };
    let credential = DevTokenCredential::new();

    // No Shared Key policy anywhere: the SDK's own bearer token policy authorizes.
    let blobs = BlobServiceClient::new(
        emu.blob_endpoint().parse().unwrap(),
        Some(credential.clone()),
        Some(BlobServiceClientOptions {
            client_options: options(),
            ..Default::default()
        }),
    )
    .unwrap();
    let container = blobs.blob_container_client("tokens");
    container.create(None).await.unwrap();
    let blob = container.blob_client("a/b.txt");
    blob.upload(
        RequestContent::from(b"uploaded with a token".to_vec()),
        None,
    )
    .await
    .unwrap();
    let body = blob
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(&body[..], b"uploaded with a token");

    let queues = QueueServiceClient::new(
        emu.queue_endpoint().parse().unwrap(),
        Some(credential.clone()),
        Some(QueueServiceClientOptions {
            client_options: options(),
            ..Default::default()
        }),
    )
    .unwrap();
    let queue = queues.queue_client("tokens").unwrap();
    queue.create(None).await.unwrap();
    queue
        .send_message(
            azure_storage_queue::models::QueueMessage {
                message_text: Some("hello".into()),
            }
            .try_into()
            .unwrap(),
            None,
        )
        .await
        .unwrap();
    let got = queue
        .receive_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let texts: Vec<_> = got
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.message_text)
        .collect();
    assert_eq!(texts, ["hello"]);

    // A user delegation key signs a read-only link that works without any credential.
    let key = storage_client::delegation::fetch(&blobs, chrono::Duration::hours(1))
        .await
        .unwrap();
    let sas = storage_client::delegation::blob_sas_query(
        emulator::DEV_ACCOUNT,
        &key,
        "tokens",
        "a/b.txt",
        "r",
        chrono::Utc::now() + chrono::Duration::minutes(10),
    );
    let http = storage_client::transport::client(&[], Some(&ca)).unwrap();
    let url = format!("{}/tokens/a/b.txt?{sas}", emu.blob_endpoint());
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"uploaded with a token");
    let write = http
        .put(&url)
        .header("x-ms-blob-type", "BlockBlob")
        .body("x");
    assert_eq!(write.send().await.unwrap().status().as_u16(), 403);

    // The token lives an hour on the emulator's clock; after that it is refused with
    // Azure's challenge, and so is the delegation key's link.
    emu.clock().advance_ms(2 * 3600 * 1000);
    let e = container.get_properties(None).await.unwrap_err();
    assert_eq!(
        e.http_status().map(u16::from),
        Some(401),
        "an expired token: {e}"
    );
    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 403);
    emu.shutdown().await;
}

#[tokio::test]
async fn bearer_tokens_are_refused_over_plain_http_and_without_oauth() {
    let emu = Emulator::in_memory().start().await.unwrap();
    let (token, _) = DevTokenCredential::token_at(azure_core::time::OffsetDateTime::now_utc());
    let r = reqwest::Client::new()
        .put(format!("{}/plain?restype=container", emu.blob_endpoint()))
        .header("authorization", format!("Bearer {token}"))
        .header("x-ms-version", "2025-11-05")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        r.headers()["x-ms-error-code"].to_str().unwrap(),
        "AuthenticationFailed"
    );
    emu.shutdown().await;

    // --oauth without TLS is refused at start, as Azurite does.
    let mut e = Emulator::in_memory();
    e.config_mut().oauth = true;
    assert!(e.start().await.is_err());
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn app_and_worker_on_entra_id_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, ca) = https_emulator(dir.path()).await;
    // Endpoints and a credential choice: no connection string, no key.
    let env = vec![
        ("AZURE_STORAGE_CONNECTION_STRING", String::new()),
        ("AZURE_STORAGE_BLOB_URL", emu.blob_endpoint()),
        ("AZURE_STORAGE_QUEUE_URL", emu.queue_endpoint()),
        ("AZURE_STORAGE_CREDENTIAL", "dev".to_string()),
        ("AZURE_STORAGE_CA_FILE", ca.display().to_string()),
    ];
    let port = conformance_tests::target::free_port();
    let mut app_env = env.clone();
    app_env.push(("APP_LISTEN", format!("127.0.0.1:{port}")));
    let mut app = Service::start("app", "oauth-app", &[], &app_env);
    let base = app.wait_for_line("App listening at ", Duration::from_secs(60));
    let mut worker = Service::start("worker", "oauth-worker", &[], &env);
    worker.wait_for_line_containing("worker started", Duration::from_secs(60));

    let http = storage_client::transport::client(&[], Some(&ca)).unwrap();
    let id = upload_image(&http, &base, "photo.jpg", jpeg()).await;
    let job = wait_for_job(&http, &base, &id, "done").await;
    // Image links are user delegation SAS URLs straight to HTTPS blob storage.
    let url = job["thumbnail"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://") && url.contains("skoid="),
        "{url}"
    );
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 192));

    worker.terminate(Duration::from_secs(30));
    app.terminate(Duration::from_secs(30));
    emu.shutdown().await;
}

#[test]
fn without_ca_roots_http_works_and_https_says_why() {
    // An empty CA store, as in a minimal container image.
    let no_roots = [
        ("SSL_CERT_FILE", "/dev/null".to_string()),
        ("SSL_CERT_DIR", "/nonexistent".to_string()),
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(Emulator::in_memory().start()).unwrap();
    let mut env: Vec<(&str, String)> =
        vec![("AZURE_STORAGE_CONNECTION_STRING", emu.connection_string())];
    env.extend(no_roots.iter().cloned());
    let mut w = Service::start("worker", "noroots-http", &[], &env);
    w.wait_for_line_containing("worker started", Duration::from_secs(60));
    w.terminate(Duration::from_secs(30));

    let mut env: Vec<(&str, String)> = vec![(
        "AZURE_STORAGE_CONNECTION_STRING",
        format!(
            "DefaultEndpointsProtocol=https;AccountName={};AccountKey={}",
            emulator::DEV_ACCOUNT,
            emulator::DEV_KEY
        ),
    )];
    env.extend(no_roots.iter().cloned());
    let mut w = Service::start("worker", "noroots-https", &[], &env);
    let mut status = None;
    wait_until("the worker to exit", Duration::from_secs(60), || {
        status = w.try_wait();
        status.is_some()
    });
    let status = status.unwrap();
    assert_ne!(status.code(), Some(101), "a panic: {}", w.log_text());
    assert!(!status.success());
    let log = w.log_text();
    assert!(
        log.contains("no CA certificates") && log.contains("AZURE_STORAGE_CA_FILE"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    rt.block_on(emu.shutdown());
}

#[tokio::test]
async fn malformed_tokens_get_401_and_change_nothing() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let (emu, ca) = https_emulator(dir.path()).await;
    let http = storage_client::transport::client(&[], Some(&ca)).unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = |h: &str, p: &str| format!("{}.{}.c2ln", b64(h), b64(p));
    let now = chrono::Utc::now().timestamp();
    let good_claims = |extra: &str| {
        format!(
            r#"{{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/t/","iat":{now},"nbf":{now},"exp":{}{extra}}}"#,
            now + 3600
        )
    };
    let rs = r#"{"alg":"RS256","typ":"JWT"}"#;
    let rows: Vec<(&str, String)> = vec![
        ("not base64", "!!!.@@@.###".into()),
        (
            "two segments",
            format!("{}.{}", b64(rs), b64(&good_claims(""))),
        ),
        ("four segments", format!("{}.x", jwt(rs, &good_claims("")))),
        ("huge", format!("{}.{}.c2ln", b64(rs), "A".repeat(20_000))),
        ("alg none", jwt(r#"{"alg":"none"}"#, &good_claims(""))),
        ("no alg", jwt(r#"{"typ":"JWT"}"#, &good_claims(""))),
        (
            "header not JSON",
            format!("{}.{}.c2ln", b64("nope"), b64(&good_claims(""))),
        ),
        ("payload an array", jwt(rs, "[1,2,3]")),
        (
            "payload not UTF-8",
            format!(
                "{}.{}.c2ln",
                b64(rs),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xff, 0xfe])
            ),
        ),
        (
            "no exp",
            jwt(
                rs,
                r#"{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/t/","nbf":1}"#,
            ),
        ),
        (
            "exp as a string",
            jwt(
                rs,
                r#"{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/t/","nbf":1,"exp":"tomorrow"}"#,
            ),
        ),
        (
            "no audience",
            jwt(
                rs,
                &format!(
                    r#"{{"iss":"https://sts.windows.net/t/","nbf":{now},"exp":{}}}"#,
                    now + 60
                ),
            ),
        ),
        (
            "audience a number",
            jwt(
                rs,
                &format!(
                    r#"{{"aud":7,"iss":"https://sts.windows.net/t/","nbf":{now},"exp":{}}}"#,
                    now + 60
                ),
            ),
        ),
        (
            "no issuer",
            jwt(
                rs,
                &format!(
                    r#"{{"aud":"https://storage.azure.com","nbf":{now},"exp":{}}}"#,
                    now + 60
                ),
            ),
        ),
        (
            "issuer lookalike",
            jwt(
                rs,
                &format!(
                    r#"{{"aud":"https://storage.azure.com","iss":"https://sts.windows.net.evil.example/","nbf":{now},"exp":{}}}"#,
                    now + 60
                ),
            ),
        ),
        (
            "exp overflows",
            jwt(
                rs,
                r#"{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/t/","nbf":-9223372036854775808,"exp":-9223372036854775808}"#,
            ),
        ),
        ("empty", String::new()),
    ];
    let count = || async {
        let (token, _) = DevTokenCredential::token_at(azure_core::time::OffsetDateTime::now_utc());
        http.get(format!("{}?comp=list", emu.blob_endpoint()))
            .header("authorization", format!("Bearer {token}"))
            .header("x-ms-version", "2025-11-05")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .matches("<Container>")
            .count()
    };
    let before = count().await;
    let mut failures = Vec::new();
    for (name, token) in &rows {
        let r = http
            .put(format!("{}/hostile?restype=container", emu.blob_endpoint()))
            .header("authorization", format!("Bearer {token}"))
            .header("x-ms-version", "2025-11-05")
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let code = r
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let challenge = r.headers().contains_key("www-authenticate");
        let body = r.text().await.unwrap();
        if (status, code.as_str(), challenge) != (401, "InvalidAuthenticationInfo", true)
            || !body.contains("<AuthenticationErrorDetail>")
        {
            failures.push(format!(
                "{name}: {status} {code} challenge={challenge} {body}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(count().await, before, "a refused token created something");
    emu.shutdown().await;
}
