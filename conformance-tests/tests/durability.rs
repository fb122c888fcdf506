//! A 2xx means durable: acknowledged messages survive SIGKILL, and SIGTERM exits cleanly.
#![allow(clippy::unwrap_used)]

use azure_storage_queue::models::*;
use azure_storage_queue::QueueServiceClient;
use conformance_tests::clients::{self};
use conformance_tests::EmulatorProcess;
use std::collections::HashSet;

fn client(e: &EmulatorProcess) -> QueueServiceClient {
    clients::queue_service(&e.creds.queue_endpoint, &e.creds.account, &e.creds.key)
}

fn msg(
    text: String,
) -> azure_core::http::RequestContent<QueueMessage, azure_core::http::XmlFormat> {
    QueueMessage {
        message_text: Some(text),
    }
    .try_into()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_survive_sigkill() {
    survive_sigkill(&[]).await;
}

/// `--durability power` adds a disk flush to each group commit; what it acknowledges
/// survives a kill as well (a power cut cannot be staged here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_messages_survive_sigkill_in_power_mode() {
    survive_sigkill(&["--durability", "power"]).await;
}

async fn survive_sigkill(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().display().to_string();
    let mut args = vec!["--location", location.as_str()];
    args.extend_from_slice(extra);
    let emu = EmulatorProcess::start(&args);
    let svc = client(&emu);
    let q = svc.queue_client("durable").unwrap();
    q.create(None).await.unwrap();
    // Concurrent writers, so acknowledgements come from shared (group) flushes.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let qc = svc.queue_client("durable").unwrap();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                let sent = qc
                    .send_message(msg(format!("w{w}-{i}")), None)
                    .await
                    .unwrap()
                    .into_model()
                    .unwrap()
                    .into_message()
                    .unwrap();
                ids.push(sent.message_id.unwrap());
            }
            ids
        }));
    }
    let mut acked = HashSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    // One dequeue and one delete, acknowledged too.
    let got = q
        .receive_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    let deleted = got[0].message_id.clone().unwrap();
    q.delete_message(&deleted, got[0].pop_receipt.as_deref().unwrap(), None)
        .await
        .unwrap();
    emu.kill9();

    let emu = EmulatorProcess::start(&args);
    let svc = client(&emu);
    let q = svc.queue_client("durable").unwrap();
    let props = q.get_properties(None).await.unwrap();
    assert_eq!(
        props.approximate_messages_count().unwrap(),
        Some(acked.len() as i64 - 1)
    );
    emu.advance_clock(3600); // make the dequeued one visible again, were it not deleted
    let mut found = HashSet::new();
    loop {
        let batch = q
            .receive_messages(Some(QueueClientReceiveMessagesOptions {
                number_of_messages: Some(32),
                visibility_timeout: Some(600),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_model()
            .unwrap()
            .items
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            assert!(
                found.insert(m.message_id.unwrap()),
                "a message came back twice"
            );
        }
    }
    assert!(
        !found.contains(&deleted),
        "an acknowledged delete came back"
    );
    acked.remove(&deleted);
    assert_eq!(
        found, acked,
        "every acknowledged message is back after kill -9"
    );
}

#[tokio::test]
async fn sigterm_exits_cleanly_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let emu = EmulatorProcess::at(dir.path());
    let q = client(&emu).queue_client("graceful").unwrap();
    q.create(None).await.unwrap();
    q.send_message(msg("kept".into()), None).await.unwrap();
    let status = emu.terminate();
    assert!(status.success(), "SIGTERM gives exit 0, got {status:?}");
    let emu = EmulatorProcess::at(dir.path());
    let q = client(&emu).queue_client("graceful").unwrap();
    let peeked = q
        .peek_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(peeked[0].message_text.as_deref(), Some("kept"));
}

#[tokio::test]
async fn location_can_only_be_opened_once() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmulatorProcess::at(dir.path());
    let second = std::process::Command::new(conformance_tests::target::emulator_bin())
        .args(["--queuePort", "0", "--blobPort", "0", "--location"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        !second.status.success(),
        "a second emulator on the same folder must refuse to start"
    );
}
