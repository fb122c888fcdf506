//! Blobs: properties, metadata, HTTP headers, delete, snapshots, conditional reads and writes.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_properties_metadata_http_headers_and_delete() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let blob = container.blob_client("docs/read me.txt");
    let body = b"hello properties";

    blob.upload(
        RequestContent::from(body.to_vec()),
        Some(BlobClientUploadOptions {
            metadata: Some(map(&[("author", "ferris"), ("rev", "1")])),
            blob_content_type: Some("text/plain; charset=utf-8".into()),
            blob_cache_control: Some("max-age=60".into()),
            blob_content_language: Some("en-GB".into()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();

    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.content_length().unwrap(), Some(body.len() as u64));
    assert_eq!(
        p.content_type().unwrap().as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(p.cache_control().unwrap().as_deref(), Some("max-age=60"));
    assert_eq!(p.content_language().unwrap().as_deref(), Some("en-GB"));
    assert_eq!(
        p.metadata().unwrap(),
        map(&[("author", "ferris"), ("rev", "1")])
    );
    assert_eq!(p.blob_type().unwrap(), Some(BlobType::BlockBlob));
    assert_eq!(p.lease_state().unwrap(), Some(LeaseState::Available));
    assert!(p.creation_time().unwrap().is_some());
    let etag1 = p.etag().unwrap().unwrap();

    // Download reports the same properties.
    let d = blob.download(None).await.unwrap();
    assert_eq!(
        d.properties.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        d.properties.metadata,
        map(&[("author", "ferris"), ("rev", "1")])
    );
    assert_eq!(d.body.collect().await.unwrap().as_ref(), body);

    // Set Blob Metadata replaces the set and changes the ETag.
    blob.set_metadata(&map(&[("rev", "2")]), None)
        .await
        .unwrap();
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.metadata().unwrap(), map(&[("rev", "2")]));
    let etag2 = p.etag().unwrap().unwrap();
    assert_ne!(etag1.to_string(), etag2.to_string());

    // Set Blob Properties: the HTTP headers are replaced together (unsent ones cleared);
    // metadata and content untouched.
    blob.set_properties(Some(BlobClientSetPropertiesOptions {
        blob_content_type: Some("application/json".into()),
        blob_content_disposition: Some("attachment; filename=x.json".into()),
        ..Default::default()
    }))
    .await
    .unwrap();
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(
        p.content_type().unwrap().as_deref(),
        Some("application/json")
    );
    assert_eq!(
        p.content_disposition().unwrap().as_deref(),
        Some("attachment; filename=x.json")
    );
    assert_eq!(p.cache_control().unwrap(), None, "cache-control cleared");
    assert_eq!(p.content_language().unwrap(), None, "language cleared");
    assert_eq!(p.metadata().unwrap(), map(&[("rev", "2")]));
    assert_eq!(p.content_length().unwrap(), Some(body.len() as u64));
    assert_eq!(read(&blob).await, body);

    // Delete, then everything is BlobNotFound.
    let r = blob.delete(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::Accepted);
    assert!(!blob.exists().await.unwrap());
    let e = blob.download(None).await.unwrap_err();
    assert_eq!(status_code(&e), (404, "BlobNotFound".into()));
    let e = blob.get_properties(None).await.unwrap_err();
    assert_eq!(status_code(&e), (404, "BlobNotFound".into()));
    let e = blob.delete(None).await.unwrap_err();
    assert_eq!(status_code(&e), (404, "BlobNotFound".into()));
    let e = svc
        .blob_client("nosuchcontainer", "x")
        .get_properties(None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (404, "ContainerNotFound".into()));
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_read_back_and_block_base_delete() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let blob = container.blob_client("snap.txt");
    blob.upload(
        RequestContent::from(b"version one".to_vec()),
        Some(BlobClientUploadOptions {
            metadata: Some(map(&[("v", "1")])),
            ..Default::default()
        }),
    )
    .await
    .unwrap();

    let r = blob.create_snapshot(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::Created);
    let snap = r.snapshot().unwrap().unwrap();
    assert!(!snap.is_empty());

    blob.upload(
        RequestContent::from(b"version two!".to_vec()),
        Some(BlobClientUploadOptions {
            metadata: Some(map(&[("v", "2")])),
            ..Default::default()
        }),
    )
    .await
    .unwrap();

    // Snapshot-addressed client, and the snapshot download option, both see version one.
    let snap_client = blob.with_snapshot(&snap).unwrap();
    assert_eq!(read(&snap_client).await, b"version one");
    let p = snap_client.get_properties(None).await.unwrap();
    assert_eq!(p.content_length().unwrap(), Some(11));
    assert_eq!(p.metadata().unwrap(), map(&[("v", "1")]));
    let via_option = blob
        .download(Some(BlobClientDownloadOptions {
            snapshot: Some(snap.clone()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(via_option.as_ref(), b"version one");
    assert_eq!(read(&blob).await, b"version two!");

    // Listing with snapshots shows both.
    let mut pages = container
        .list_blobs(Some(BlobContainerClientListBlobsOptions {
            include: Some(vec![ListBlobsIncludeItem::Snapshots]),
            ..Default::default()
        }))
        .unwrap()
        .into_pages();
    let page = pages
        .try_next()
        .await
        .unwrap()
        .unwrap()
        .into_model()
        .unwrap();
    let entries: Vec<(String, Option<String>)> = page
        .blob_items
        .iter()
        .map(|b| (b.name.clone().unwrap(), b.snapshot.clone()))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("snap.txt".to_string(), Some(snap.clone())),
            ("snap.txt".to_string(), None)
        ]
    );

    // A base blob with snapshots can't be deleted alone.
    let e = blob.delete(None).await.unwrap_err();
    assert_eq!(status_code(&e), (409, "SnapshotsPresent".into()));
    assert!(blob.exists().await.unwrap());

    // delete_snapshots=only keeps the base.
    blob.delete(Some(BlobClientDeleteOptions {
        delete_snapshots: Some(DeleteSnapshotsOptionType::Only),
        ..Default::default()
    }))
    .await
    .unwrap();
    assert!(blob.exists().await.unwrap());
    assert!(!snap_client.exists().await.unwrap());

    // A snapshot deleted by its own address; then include deletes base + snapshots.
    let s2 = blob
        .create_snapshot(None)
        .await
        .unwrap()
        .snapshot()
        .unwrap()
        .unwrap();
    let s2_client = blob.with_snapshot(&s2).unwrap();
    assert_eq!(read(&s2_client).await, b"version two!");
    s2_client.delete(None).await.unwrap();
    assert!(!s2_client.exists().await.unwrap());
    blob.create_snapshot(None).await.unwrap();
    blob.delete(Some(BlobClientDeleteOptions {
        delete_snapshots: Some(DeleteSnapshotsOptionType::Include),
        ..Default::default()
    }))
    .await
    .unwrap();
    assert!(!blob.exists().await.unwrap());
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_reads_and_writes() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let blob = container.blob_client("cond.txt");
    put(&blob, b"conditional").await;
    let etag = blob
        .get_properties(None)
        .await
        .unwrap()
        .etag()
        .unwrap()
        .unwrap();
    let wrong: azure_core::http::Etag = "\"0x8D000000BADBAD0\"".to_string().into();

    // Download.
    let e = blob
        .download(Some(BlobClientDownloadOptions {
            if_match: Some(wrong.clone()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (412, "ConditionNotMet".into()));
    let e = blob
        .download(Some(BlobClientDownloadOptions {
            if_none_match: Some(etag.clone()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), Some(StatusCode::NotModified));
    let got = blob
        .download(Some(BlobClientDownloadOptions {
            if_match: Some(etag.clone()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), b"conditional");
    let got = blob
        .download(Some(BlobClientDownloadOptions {
            if_none_match: Some(wrong.clone()),
            ..Default::default()
        }))
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), b"conditional");

    // Get Properties (HEAD).
    let e = blob
        .get_properties(Some(BlobClientGetPropertiesOptions {
            if_match: Some(wrong.clone()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (412, "ConditionNotMet".into()));
    let e = blob
        .get_properties(Some(BlobClientGetPropertiesOptions {
            if_none_match: Some(etag.clone()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), Some(StatusCode::NotModified));

    // Time conditions at second precision.
    let last_modified = blob
        .get_properties(None)
        .await
        .unwrap()
        .last_modified()
        .unwrap()
        .unwrap();
    let e = blob
        .download(Some(BlobClientDownloadOptions {
            if_modified_since: Some(last_modified),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), Some(StatusCode::NotModified));
    let e = blob
        .download(Some(BlobClientDownloadOptions {
            if_unmodified_since: Some(last_modified - std::time::Duration::from_secs(60)),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (412, "ConditionNotMet".into()));

    // Writes.
    let e = blob
        .upload(
            RequestContent::from(b"nope".to_vec()),
            Some(BlobClientUploadOptions {
                if_match: Some(wrong.clone()),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (412, "ConditionNotMet".into()));
    let e = blob
        .set_metadata(
            &map(&[("k", "v")]),
            Some(BlobClientSetMetadataOptions {
                if_match: Some(wrong.clone()),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (412, "ConditionNotMet".into()));
    assert_eq!(read(&blob).await, b"conditional");
    blob.upload(
        RequestContent::from(b"replaced".to_vec()),
        Some(BlobClientUploadOptions {
            if_match: Some(etag.clone()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(read(&blob).await, b"replaced");
    // The old ETag no longer matches.
    let e = blob
        .delete(Some(BlobClientDeleteOptions {
            if_match: Some(etag.clone()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (412, "ConditionNotMet".into()));
    assert!(blob.exists().await.unwrap());
}
