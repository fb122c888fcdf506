//! Copies within the account and Put Blob From URL.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_within_the_account() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let dest_container = new_container(&svc).await;
    let source = container.blob_client("source dir/src #1.bin");
    let body: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    source
        .upload(
            RequestContent::from(body.clone()),
            Some(BlobClientUploadOptions {
                metadata: Some(map(&[("origin", "source")])),
                blob_content_type: Some("application/x-src".into()),
                ..Default::default()
            }),
        )
        .await
        .unwrap();

    // Copy Blob (asynchronous in the protocol; an emulator may finish at once).
    let dest = dest_container.blob_client("copied.bin");
    let r = dest
        .start_copy_from_url(source.url().as_str().into(), None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::Accepted);
    let copy_id = r.copy_id().unwrap().unwrap();
    assert!(matches!(
        r.copy_status().unwrap(),
        Some(CopyStatus::Pending | CopyStatus::Success)
    ));
    let mut status = None;
    for _ in 0..50 {
        status = dest
            .get_properties(None)
            .await
            .unwrap()
            .copy_status()
            .unwrap();
        if status != Some(CopyStatus::Pending) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, Some(CopyStatus::Success));
    let p = dest.get_properties(None).await.unwrap();
    assert_eq!(p.copy_id().unwrap().as_deref(), Some(copy_id.as_str()));
    assert!(p.copy_source().unwrap().is_some());
    assert_eq!(
        p.copy_progress().unwrap(),
        Some(format!("{0}/{0}", body.len()))
    );
    assert_eq!(p.metadata().unwrap(), map(&[("origin", "source")]));
    assert_eq!(
        p.content_type().unwrap().as_deref(),
        Some("application/x-src")
    );
    assert!(read(&dest).await == body, "copied content differs");

    // Copy refused on an existing destination with if_none_match=*.
    let e = dest
        .start_copy_from_url(
            source.url().as_str().into(),
            Some(BlobClientStartCopyFromUrlOptions {
                if_none_match: Some("*".into()),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 409);

    // Copy from a snapshot source.
    let snap = source
        .create_snapshot(None)
        .await
        .unwrap()
        .snapshot()
        .unwrap()
        .unwrap();
    put(&source, b"changed after snapshot").await;
    let from_snap = dest_container.blob_client("from-snapshot.bin");
    from_snap
        .start_copy_from_url(
            source.with_snapshot(&snap).unwrap().url().as_str().into(),
            None,
        )
        .await
        .unwrap();
    assert!(read(&from_snap).await == body, "snapshot copy differs");

    // Missing source.
    let e = dest_container
        .blob_client("never.bin")
        .start_copy_from_url(container.blob_client("missing").url().as_str().into(), None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 404);
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_blob_from_url_within_the_account() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let source = container.blob_client("source dir/src #2.bin");
    put(&source, b"put blob from url").await;
    let dest_container = new_container(&svc).await;

    // Put Blob From URL (synchronous, block blob). Its source must authorize itself: the
    // destination's credentials do not reach it (https://learn.microsoft.com/rest/api/storageservices/put-blob-from-url,
    // x-ms-copy-source: "must either be public or must be authorized via a shared access signature").
    let synced = dest_container.blob_client("synced.bin");
    let e = synced
        .block_blob_client()
        .upload_blob_from_url(source.url().as_str().into(), None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (404, "CannotVerifyCopySource".into()));
    let sas = conformance_tests::account_sas_query(
        conformance_tests::DEV_ACCOUNT,
        conformance_tests::DEV_KEY,
        "b",
        "o",
        "r",
        "2099-01-01T00:00:00Z",
    );
    synced
        .block_blob_client()
        .upload_blob_from_url(format!("{}?{sas}", source.url()), None)
        .await
        .unwrap();
    assert_eq!(read(&synced).await, b"put blob from url");
}
