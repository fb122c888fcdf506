//! The Blob service through Microsoft's official Rust SDK (`azure_storage_blob` 1.x), signed
//! with our Shared Key policy: partitioned (multi-block) uploads and parallel ranged downloads.
#![allow(clippy::unwrap_used)]

use azure_core::error::ErrorKind;
use azure_core::http::RequestContent;
use azure_storage_blob::models::{BlobClientDownloadOptions, BlobClientUploadOptions};
use azure_storage_blob::BlobServiceClient;
use conformance_tests::clients::{self};
use conformance_tests::{unique_name, EmulatorProcess};
use std::num::NonZero;

fn client(e: &EmulatorProcess) -> BlobServiceClient {
    let endpoint = format!("{}/{}", e.blob_base, e.creds.account);
    clients::blob_service(&endpoint, &e.creds.account, &e.creds.key)
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_upload_and_parallel_ranged_download() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = svc.blob_container_client(&unique_name("rc"));
    container.create(None).await.unwrap();
    let body = data(3 * 1024 * 1024 + 123);
    for (name, partition) in [
        ("whole.bin", None),
        ("dir/in parts+%.bin", NonZero::new(256 * 1024)),
    ] {
        let blob = container.blob_client(name);
        let options = BlobClientUploadOptions {
            partition_size: partition,
            parallel: NonZero::new(4),
            ..Default::default()
        };
        blob.upload(RequestContent::from(body.clone()), Some(options))
            .await
            .unwrap();
        let download = BlobClientDownloadOptions {
            partition_size: NonZero::new(300 * 1024),
            parallel: NonZero::new(4),
            ..Default::default()
        };
        let got = blob
            .download(Some(download))
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap();
        assert_eq!(got.len(), body.len(), "{name}");
        assert!(got.as_ref() == body.as_slice(), "{name}: content differs");
    }
    // Overwrite refused when asked, with the code SDKs branch on.
    let blob = container.blob_client("whole.bin");
    let e = blob
        .upload(
            RequestContent::from(b"x".to_vec()),
            Some(BlobClientUploadOptions::default().if_not_exists()),
        )
        .await
        .unwrap_err();
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            assert_eq!(
                (u16::from(*status), error_code.as_deref()),
                (409, Some("BlobAlreadyExists"))
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(blob.exists().await.unwrap());
    assert!(!container.blob_client("missing").exists().await.unwrap());
    container.delete(None).await.unwrap();
}
