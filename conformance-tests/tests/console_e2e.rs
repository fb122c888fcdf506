//! The web console in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `playwright-core` (`conformance-tests/browser/console.cjs`) signs in with the account
//! key, browses a seeded container and its folder, peeks a queue, adds a fault rule and
//! sees its error and its request in the live log, and is checked at a phone's width.
//! What the page showed is then compared with what the emulator holds, through the SDK and
//! the in-process handle. Screenshots land in `target/e2e-logs/`. Emulator only.
#![allow(clippy::unwrap_used)]

use azure_storage_queue::models::QueueClientGetPropertiesResultHeaders;
use conformance_tests::system::Browser;
use emulator::Emulator;

#[tokio::test(flavor = "multi_thread")]
async fn the_console_browses_peeks_and_shows_faults() {
    let browser = Browser::find();
    let root = browser.root.clone();

    let seed = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(seed.path().join("photos/dir")).unwrap();
    std::fs::write(seed.path().join("photos/a.txt"), "hello\n").unwrap();
    std::fs::write(seed.path().join("photos/dir/b.json"), "{\"k\":1}\n").unwrap();
    std::fs::write(
        seed.path().join("seed.json"),
        r#"{"queues": {"jobs": ["plain text", "eyJpZCI6NDIsImtpbmQiOiJ0aHVtYiJ9"]}}"#,
    )
    .unwrap();
    let mut builder = Emulator::in_memory();
    builder.config_mut().seed = Some(seed.path().to_path_buf());
    let emu = builder.start().await.unwrap();

    let shots = root.join("target/e2e-logs");
    std::fs::create_dir_all(&shots).unwrap();
    for name in ["containers", "queues", "activity", "phone"] {
        let _ = std::fs::remove_file(shots.join(format!("console-{name}.png")));
    }
    let base = format!("http://{}", emu.blob_addr());
    let shots_dir = shots.clone();
    let out = tokio::task::spawn_blocking(move || {
        browser
            .script("console.cjs")
            .arg(&base)
            .arg(emulator::DEV_KEY)
            .arg(&shots_dir)
            .output()
            .expect("running node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "console test failed:\n{stdout}\n{stderr}"
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();

    assert_eq!(r["top"], serde_json::json!(["dir/", "a.txt"]), "{r}");
    assert!(
        r["props"].as_str().unwrap().contains("content-length\n8\n"),
        "{r}"
    );
    assert!(
        r["props"].as_str().unwrap().contains("application/json"),
        "{r}"
    );
    assert_eq!(
        r["messages"],
        serde_json::json!(["plain text", "eyJpZCI6NDIsImtpbmQiOiJ0aHVtYiJ9"])
    );
    assert!(
        r["decoded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains("\"kind\": \"thumb\"")),
        "{r}"
    );
    assert_eq!(
        (r["depthBefore"].as_u64(), r["depthAfter"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(
        r["error"].as_str().unwrap().starts_with("ServerBusy (503)"),
        "{r}"
    );
    let row = r["logRow"].as_str().unwrap();
    assert!(
        row.contains("ListBlobs") && row.contains("503") && row.contains("ServerBusy"),
        "{row}"
    );
    assert_eq!(r["afterArrow"], "tab-faults");
    assert_eq!(r["faultsShown"], true);
    assert!(r["phoneOverflow"].as_i64().unwrap() <= 0, "{r}");

    // What the page did is what the emulator saw: one hit of the rule, the peeked queue
    // still holding both messages, neither dequeued.
    let rules = emu.faults().list();
    assert_eq!(rules.len(), 1);
    assert_eq!((rules[0].hits, rules[0].remaining), (1, Some(0)));
    let storage = storage_client::Storage::connect(&emu.connection_string()).unwrap();
    let jobs = storage.queue("jobs").unwrap();
    let count = jobs
        .get_properties(None)
        .await
        .unwrap()
        .approximate_messages_count()
        .unwrap();
    assert_eq!(count, Some(2));
    let peeked = jobs
        .peek_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert!(peeked
        .items
        .unwrap_or_default()
        .iter()
        .all(|m| m.dequeue_count == Some(0)));
    for name in ["containers", "queues", "activity", "phone"] {
        let png = std::fs::read(shots.join(format!("console-{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "screenshot {name}");
    }
    emu.shutdown().await;
}
