//! The emulator as a library: start it in-process in a few lines, as a Rust user's test would.
#![allow(clippy::unwrap_used)]

use azure_storage_queue::models::*;
use conformance_tests::target::Credentials;

#[tokio::test]
async fn start_in_process_use_and_shut_down() {
    let emulator = emulator::Emulator::in_memory().start().await.unwrap();
    let creds = Credentials::from_connection_string(&emulator.connection_string()).unwrap();
    let svc = conformance_tests::clients::queue_service(
        &creds.queue_endpoint,
        &creds.account,
        &creds.key,
    );
    let q = svc.queue_client("embedded").unwrap();
    q.create(None).await.unwrap();
    q.send_message(
        QueueMessage {
            message_text: Some("hi".into()),
        }
        .try_into()
        .unwrap(),
        Some(QueueClientSendMessageOptions {
            message_time_to_live: Some(5),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        q.get_properties(None)
            .await
            .unwrap()
            .approximate_messages_count()
            .unwrap(),
        Some(1)
    );
    emulator.clock().advance_ms(6_000);
    assert!(q
        .peek_messages(None)
        .await
        .unwrap()
        .into_model()
        .unwrap()
        .items
        .unwrap_or_default()
        .is_empty());
    let addr = emulator.queue_addr();
    emulator.shutdown().await;
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the port is closed after shutdown"
    );
}

/// Azurite's own suite configures keys such as `testing_key`, which only a lenient base64
/// decoder reads (Node's, as Azurite and the JavaScript SDK use): the emulator takes them
/// and authenticates requests signed with the bytes Node decodes.
#[tokio::test]
async fn accounts_with_leniently_encoded_keys() {
    let accounts = emulator::Accounts::parse("azurite1:testing_key").unwrap();
    let emulator = emulator::Emulator::in_memory()
        .accounts(accounts)
        .start()
        .await
        .unwrap();
    let creds = Credentials::from_connection_string(&emulator.connection_string()).unwrap();
    // What Node's Buffer.from("testing_key", "base64") gives, re-encoded strictly.
    assert_eq!(creds.key, "testing/kew=");
    let svc = conformance_tests::clients::queue_service(
        &creds.queue_endpoint,
        &creds.account,
        &creds.key,
    );
    svc.queue_client("lenient")
        .unwrap()
        .create(None)
        .await
        .unwrap();
    emulator.shutdown().await;
}
