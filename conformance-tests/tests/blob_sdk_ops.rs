//! Blob service operations through Microsoft's official Rust SDK (`azure_storage_blob` 1.1.0),
//! signed with our Shared Key per-try policy: containers, blob properties and metadata, block
//! lists, listing, leases, snapshots, append blobs, tags, copies and conditional reads. Every
//! call goes through the SDK's own client methods, so these tests also pin the wire details
//! the SDK's parsers depend on (status codes, `x-ms-error-code`, header and XML shapes).
//!
//! Not covered because SDK 1.1.0 lacks it: hierarchical listing (`list_blobs` has no
//! `delimiter` option) and synchronous Copy Blob From URL (`x-ms-requires-sync`; the SDK
//! only offers `start_copy_from_url` and Put Blob From URL via `upload_blob_from_url`).
#![allow(clippy::unwrap_used)]

use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::*;
use azure_storage_blob::{
    format_filter_expression, BlobClient, BlobContainerClient, BlobServiceClient,
};
use conformance_tests::clients::{self, status_code};
use conformance_tests::{unique_name, EmulatorProcess};
use futures::TryStreamExt;
use std::collections::HashMap;

fn client(e: &EmulatorProcess) -> BlobServiceClient {
    let endpoint = format!("{}/{}", e.blob_base, e.creds.account);
    clients::blob_service(&endpoint, &e.creds.account, &e.creds.key)
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn new_container(svc: &BlobServiceClient) -> BlobContainerClient {
    let c = svc.blob_container_client(&unique_name("rb"));
    c.create(None).await.unwrap();
    c
}

async fn put(blob: &BlobClient, body: &[u8]) {
    blob.upload(RequestContent::from(body.to_vec()), None)
        .await
        .unwrap();
}

async fn read(blob: &BlobClient) -> Vec<u8> {
    blob.download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_create_properties_metadata_list_delete() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let prefix = unique_name("lc");
    let name = format!("{prefix}a");
    let container = svc.blob_container_client(&name);

    let created = container
        .create(Some(BlobContainerClientCreateOptions {
            metadata: Some(map(&[("colour", "blue"), ("size", "3")])),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::Created);

    let e = container.create(None).await.unwrap_err();
    assert_eq!(status_code(&e), (409, "ContainerAlreadyExists".into()));

    let props = container.get_properties(None).await.unwrap();
    assert_eq!(
        props.metadata().unwrap(),
        map(&[("colour", "blue"), ("size", "3")])
    );
    assert_eq!(props.lease_state().unwrap(), Some(LeaseState::Available));
    assert_eq!(props.lease_status().unwrap(), Some(LeaseStatus::Unlocked));
    assert!(props.etag().unwrap().is_some());
    assert!(props.last_modified().unwrap().is_some());

    // Set Container Metadata replaces the whole set.
    container
        .set_metadata(&map(&[("only", "this")]), None)
        .await
        .unwrap();
    let props = container.get_properties(None).await.unwrap();
    assert_eq!(props.metadata().unwrap(), map(&[("only", "this")]));

    // More containers: two under the prefix, one outside it.
    for n in [
        format!("{prefix}b"),
        format!("{prefix}c"),
        unique_name("zz"),
    ] {
        svc.blob_container_client(&n).create(None).await.unwrap();
    }
    let mut pages = svc
        .list_containers(Some(BlobServiceClientListContainersOptions {
            prefix: Some(prefix.clone()),
            include: Some(vec![ListContainersIncludeType::Metadata]),
            maxresults: Some(2),
            ..Default::default()
        }))
        .unwrap()
        .into_pages();
    let mut listed = Vec::new();
    let mut page_count = 0;
    while let Some(page) = pages.try_next().await.unwrap() {
        page_count += 1;
        let page = page.into_model().unwrap();
        for item in page.container_items {
            let n = item.name.clone().unwrap();
            if n == name {
                assert_eq!(item.metadata.clone().unwrap(), map(&[("only", "this")]));
                let p = item.properties.clone().unwrap();
                assert!(p.etag.is_some());
                assert_eq!(p.lease_state, Some(LeaseState::Available));
            }
            listed.push(n);
        }
    }
    assert_eq!(
        listed,
        vec![
            format!("{prefix}a"),
            format!("{prefix}b"),
            format!("{prefix}c")
        ]
    );
    assert_eq!(page_count, 2, "maxresults=2 over 3 containers");

    assert!(container.exists().await.unwrap());
    let deleted = container.delete(None).await.unwrap();
    assert_eq!(deleted.status(), StatusCode::Accepted);
    assert!(!container.exists().await.unwrap());
    let e = container.get_properties(None).await.unwrap_err();
    assert_eq!(status_code(&e), (404, "ContainerNotFound".into()));
    let e = container.delete(None).await.unwrap_err();
    assert_eq!(status_code(&e), (404, "ContainerNotFound".into()));
}

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

fn ids(blocks: &Option<Vec<Block>>) -> Vec<(Vec<u8>, i64)> {
    blocks
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|b| (b.name.unwrap(), b.size.unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_blob_stage_commit_and_block_lists() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let blob = container.blob_client("blocks.bin");
    let bb = blob.block_blob_client();

    let blocks: [(&[u8], &[u8]); 3] = [
        (b"block-00", b"AAAA"),
        (b"block-01", b"BBBBBB"),
        (b"block-02", b"CC"),
    ];
    for (id, data) in blocks {
        let r = bb
            .stage_block(
                id,
                data.len() as u64,
                RequestContent::from(data.to_vec()),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::Created);
    }

    // Staged only: invisible to reads, visible to Get Block List.
    assert!(!blob.exists().await.unwrap());
    let list = bb
        .get_block_list(BlockListType::All, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert!(ids(&list.committed_blocks).is_empty());
    assert_eq!(
        ids(&list.uncommitted_blocks),
        vec![
            (b"block-00".to_vec(), 4),
            (b"block-01".to_vec(), 6),
            (b"block-02".to_vec(), 2)
        ]
    );

    // Commit C then A; B stays uncommitted and must be discarded.
    let r = bb
        .commit_block_list(
            BlockLookupList {
                latest: Some(vec![b"block-02".to_vec(), b"block-00".to_vec()]),
                ..Default::default()
            }
            .try_into()
            .unwrap(),
            Some(BlockBlobClientCommitBlockListOptions {
                blob_content_type: Some("application/x-blocks".into()),
                metadata: Some(map(&[("committed", "yes")])),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::Created);
    assert_eq!(read(&blob).await, b"CCAAAA");
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.content_length().unwrap(), Some(6));
    assert_eq!(
        p.content_type().unwrap().as_deref(),
        Some("application/x-blocks")
    );
    assert_eq!(p.metadata().unwrap(), map(&[("committed", "yes")]));

    let list = bb
        .get_block_list(BlockListType::All, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(
        ids(&list.committed_blocks),
        vec![(b"block-02".to_vec(), 2), (b"block-00".to_vec(), 4)]
    );
    assert!(
        ids(&list.uncommitted_blocks).is_empty(),
        "leftover block B discarded by the commit"
    );
    let committed_only = bb
        .get_block_list(BlockListType::Committed, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(ids(&committed_only.committed_blocks).len(), 2);
    assert!(ids(&committed_only.uncommitted_blocks).is_empty());

    // Second round mixing categories: keep committed A, add a new staged D.
    bb.stage_block(b"block-03", 3, RequestContent::from(b"DDD".to_vec()), None)
        .await
        .unwrap();
    let list = bb
        .get_block_list(BlockListType::Uncommitted, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(
        ids(&list.uncommitted_blocks),
        vec![(b"block-03".to_vec(), 3)]
    );
    assert_eq!(
        read(&blob).await,
        b"CCAAAA",
        "staging doesn't change content"
    );
    bb.commit_block_list(
        BlockLookupList {
            committed: Some(vec![b"block-00".to_vec()]),
            uncommitted: Some(vec![b"block-03".to_vec()]),
            ..Default::default()
        }
        .try_into()
        .unwrap(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(read(&blob).await, b"AAAADDD");
    // Put Block List resets what it isn't given.
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.metadata().unwrap(), HashMap::new());

    // Committing a block that was discarded is an InvalidBlockList.
    let e = bb
        .commit_block_list(
            BlockLookupList {
                uncommitted: Some(vec![b"block-01".to_vec()]),
                ..Default::default()
            }
            .try_into()
            .unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (400, "InvalidBlockList".into()));
    assert_eq!(read(&blob).await, b"AAAADDD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_blobs_flat_with_prefix_and_paging() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    for name in ["dir/a.txt", "dir/b.txt", "dir/sub/c.txt", "other.txt"] {
        container
            .blob_client(name)
            .upload(
                RequestContent::from(name.as_bytes().to_vec()),
                Some(BlobClientUploadOptions {
                    metadata: Some(map(&[("name", &name.replace('/', "_"))])),
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
    }
    // A staged-only blob is not listed.
    container
        .blob_client("dir/staged")
        .block_blob_client()
        .stage_block(b"x", 1, RequestContent::from(b"x".to_vec()), None)
        .await
        .unwrap();

    // Everything, one page.
    let mut pages = container.list_blobs(None).unwrap().into_pages();
    let page = pages
        .try_next()
        .await
        .unwrap()
        .unwrap()
        .into_model()
        .unwrap();
    let names: Vec<String> = page
        .blob_items
        .iter()
        .map(|b| b.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["dir/a.txt", "dir/b.txt", "dir/sub/c.txt", "other.txt"]
    );
    assert!(pages.try_next().await.unwrap().is_none());

    // Prefix, metadata, two per page.
    let mut pages = container
        .list_blobs(Some(BlobContainerClientListBlobsOptions {
            prefix: Some("dir/".into()),
            include: Some(vec![ListBlobsIncludeItem::Metadata]),
            maxresults: Some(2),
            ..Default::default()
        }))
        .unwrap()
        .into_pages();
    let mut seen = Vec::new();
    let mut page_count = 0;
    while let Some(page) = pages.try_next().await.unwrap() {
        page_count += 1;
        let page = page.into_model().unwrap();
        assert_eq!(page.prefix.as_deref(), Some("dir/"));
        for item in page.blob_items {
            let name = item.name.clone().unwrap();
            let props = item.properties.clone().unwrap();
            assert_eq!(props.blob_type, Some(BlobType::BlockBlob));
            assert_eq!(props.content_length, Some(name.len() as u64));
            assert!(props.etag.is_some());
            let meta = item.metadata.clone().unwrap().values.unwrap_or_default();
            assert_eq!(meta, map(&[("name", &name.replace('/', "_"))]), "{name}");
            seen.push(name);
        }
    }
    assert_eq!(seen, vec!["dir/a.txt", "dir/b.txt", "dir/sub/c.txt"]);
    assert_eq!(page_count, 2);

    // Missing container.
    let mut pages = svc
        .blob_container_client("nosuchcontainer")
        .list_blobs(None)
        .unwrap()
        .into_pages();
    let e = pages.try_next().await.unwrap_err();
    assert_eq!(status_code(&e), (404, "ContainerNotFound".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_leases_acquire_write_renew_change_release_break() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let blob = container.blob_client("leased.txt");
    put(&blob, b"v1").await;

    // Infinite lease.
    let r = blob.acquire_lease(-1, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::Created);
    let lease = r.lease_id().unwrap().unwrap();
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.lease_state().unwrap(), Some(LeaseState::Leased));
    assert_eq!(p.lease_status().unwrap(), Some(LeaseStatus::Locked));
    assert_eq!(p.duration().unwrap(), Some(LeaseDuration::Infinite));

    // Writes without the lease id are refused; reads are fine.
    let e = blob
        .upload(RequestContent::from(b"v2".to_vec()), None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (412, "LeaseIdMissing".into()));
    let e = blob
        .set_metadata(&map(&[("a", "b")]), None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (412, "LeaseIdMissing".into()));
    let e = blob.delete(None).await.unwrap_err();
    assert_eq!(status_code(&e), (412, "LeaseIdMissing".into()));
    assert_eq!(read(&blob).await, b"v1");

    // With the lease id they succeed, and Put Blob keeps the lease.
    blob.upload(
        RequestContent::from(b"v2".to_vec()),
        Some(BlobClientUploadOptions {
            lease_id: Some(lease.clone()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    blob.set_metadata(
        &map(&[("a", "b")]),
        Some(BlobClientSetMetadataOptions {
            lease_id: Some(lease.clone()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(read(&blob).await, b"v2");
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.lease_state().unwrap(), Some(LeaseState::Leased));
    assert_eq!(p.metadata().unwrap(), map(&[("a", "b")]));

    // Another acquirer is refused.
    let e = blob
        .acquire_lease(
            15,
            Some(BlobClientAcquireLeaseOptions {
                proposed_lease_id: Some("11111111-2222-3333-4444-555555555555".into()),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (409, "LeaseAlreadyPresent".into()));

    // Renew.
    let r = blob.renew_lease(lease.clone(), None).await.unwrap();
    assert_eq!(r.lease_id().unwrap().as_deref(), Some(lease.as_str()));

    // Change: the old id no longer works for writes.
    let new_id = "00000000-1111-2222-3333-444444444444".to_string();
    let r = blob
        .change_lease(lease.clone(), new_id.clone(), None)
        .await
        .unwrap();
    assert_eq!(r.lease_id().unwrap().as_deref(), Some(new_id.as_str()));
    let e = blob
        .set_metadata(
            &map(&[("c", "d")]),
            Some(BlobClientSetMetadataOptions {
                lease_id: Some(lease.clone()),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (412, "LeaseIdMismatchWithBlobOperation".into())
    );
    let e = blob.renew_lease(lease.clone(), None).await.unwrap_err();
    assert_eq!(
        status_code(&e),
        (409, "LeaseIdMismatchWithLeaseOperation".into())
    );

    // Release: available again, writes need no id.
    blob.release_lease(new_id.clone(), None).await.unwrap();
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.lease_state().unwrap(), Some(LeaseState::Available));
    assert_eq!(p.lease_status().unwrap(), Some(LeaseStatus::Unlocked));
    put(&blob, b"v3").await;

    // Fixed 15 s lease with a proposed id.
    let proposed = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".to_string();
    let r = blob
        .acquire_lease(
            15,
            Some(BlobClientAcquireLeaseOptions {
                proposed_lease_id: Some(proposed.clone()),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.lease_id().unwrap().as_deref(), Some(proposed.as_str()));
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.lease_state().unwrap(), Some(LeaseState::Leased));
    assert_eq!(p.duration().unwrap(), Some(LeaseDuration::Fixed));

    // Break without a period: breaking until the lease would expire.
    let r = blob.break_lease(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::Accepted);
    let t = r.lease_time().unwrap().unwrap();
    assert!((1..=15).contains(&t), "lease time {t}");
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.lease_state().unwrap(), Some(LeaseState::Breaking));
    let e = blob.acquire_lease(-1, None).await.unwrap_err();
    assert_eq!(status_code(&e).0, 409);

    // Break now (period 0): broken, and a new lease can be taken.
    let r = blob
        .break_lease(Some(BlobClientBreakLeaseOptions {
            break_period: Some(0),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(r.lease_time().unwrap(), Some(0));
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.lease_state().unwrap(), Some(LeaseState::Broken));
    assert_eq!(p.lease_status().unwrap(), Some(LeaseStatus::Unlocked));
    put(&blob, b"v4").await;
    let r = blob.acquire_lease(-1, None).await.unwrap();
    assert!(r.lease_id().unwrap().is_some());

    // Break an infinite lease without a period: broken immediately.
    let r = blob.break_lease(None).await.unwrap();
    assert_eq!(r.lease_time().unwrap(), Some(0));
    assert_eq!(
        blob.get_properties(None)
            .await
            .unwrap()
            .lease_state()
            .unwrap(),
        Some(LeaseState::Broken)
    );

    // No lease at all: renew/break refused.
    let fresh = container.blob_client("unleased.txt");
    put(&fresh, b"x").await;
    let e = fresh.break_lease(None).await.unwrap_err();
    assert_eq!(
        status_code(&e),
        (409, "LeaseNotPresentWithLeaseOperation".into())
    );
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
async fn append_blob_create_append_seal() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let blob = container.blob_client("log.txt");
    let ab = blob.append_blob_client();

    let r = ab
        .create(Some(AppendBlobClientCreateOptions {
            blob_content_type: Some("text/plain".into()),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::Created);
    assert_eq!(read(&blob).await, b"");

    let first = b"first line\n";
    let second = b"second line\n";
    let r = ab
        .append_block(
            RequestContent::from(first.to_vec()),
            first.len() as u64,
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::Created);
    assert_eq!(r.blob_append_offset().unwrap().as_deref(), Some("0"));
    assert_eq!(r.blob_committed_block_count().unwrap(), Some(1));
    let r = ab
        .append_block(
            RequestContent::from(second.to_vec()),
            second.len() as u64,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        r.blob_append_offset().unwrap(),
        Some(first.len().to_string())
    );
    assert_eq!(r.blob_committed_block_count().unwrap(), Some(2));

    let expected = [first.as_slice(), second.as_slice()].concat();
    assert_eq!(read(&blob).await, expected);
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.blob_type().unwrap(), Some(BlobType::AppendBlob));
    assert_eq!(p.blob_committed_block_count().unwrap(), Some(2));
    assert_eq!(p.content_length().unwrap(), Some(expected.len() as u64));
    assert_eq!(p.content_type().unwrap().as_deref(), Some("text/plain"));

    // Append position condition.
    let e = ab
        .append_block(
            RequestContent::from(b"x".to_vec()),
            1,
            Some(AppendBlobClientAppendBlockOptions {
                append_position: Some(1),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (412, "AppendPositionConditionNotMet".into())
    );

    // Appending to a block blob is refused.
    let block = container.blob_client("block.txt");
    put(&block, b"b").await;
    let e = block
        .append_blob_client()
        .append_block(RequestContent::from(b"x".to_vec()), 1, None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (409, "InvalidBlobType".into()));

    // Seal: no more appends.
    let r = ab.seal(None).await.unwrap();
    assert_eq!(r.is_sealed().unwrap(), Some(true));
    assert_eq!(
        blob.get_properties(None)
            .await
            .unwrap()
            .is_sealed()
            .unwrap(),
        Some(true)
    );
    let e = ab
        .append_block(RequestContent::from(b"late".to_vec()), 4, None)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (409, "BlobIsSealed".into()));
    assert_eq!(read(&blob).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_set_get_and_find_blobs_by_tags() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let other = new_container(&svc).await;
    let project = unique_name("p");

    // Tags at upload time.
    let a = container.blob_client("a.txt");
    a.upload(
        RequestContent::from(b"a".to_vec()),
        Some(
            BlobClientUploadOptions::default()
                .with_tags(map(&[("project", project.as_str()), ("stage", "draft")])),
        ),
    )
    .await
    .unwrap();
    let tags: HashMap<String, String> =
        a.get_tags(None).await.unwrap().into_model().unwrap().into();
    assert_eq!(
        tags,
        map(&[("project", project.as_str()), ("stage", "draft")])
    );
    assert_eq!(
        a.get_properties(None).await.unwrap().tag_count().unwrap(),
        Some(2)
    );

    // Set Tags replaces the set and leaves the ETag alone.
    let b = container.blob_client("b.txt");
    put(&b, b"b").await;
    let etag = b
        .get_properties(None)
        .await
        .unwrap()
        .etag()
        .unwrap()
        .unwrap();
    let r = b
        .set_tags(
            RequestContent::try_from(BlobTags::from(map(&[
                ("project", project.as_str()),
                ("stage", "final"),
                ("owner", "ferris"),
            ])))
            .unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NoContent);
    let tags: HashMap<String, String> =
        b.get_tags(None).await.unwrap().into_model().unwrap().into();
    assert_eq!(
        tags,
        map(&[
            ("project", project.as_str()),
            ("stage", "final"),
            ("owner", "ferris")
        ])
    );
    let etag_after = b
        .get_properties(None)
        .await
        .unwrap()
        .etag()
        .unwrap()
        .unwrap();
    assert_eq!(etag.to_string(), etag_after.to_string());

    // Same project in another container; and a blob without tags.
    let c = other.blob_client("c.txt");
    c.upload(
        RequestContent::from(b"c".to_vec()),
        Some(
            BlobClientUploadOptions::default()
                .with_tags(map(&[("project", project.as_str()), ("stage", "final")])),
        ),
    )
    .await
    .unwrap();
    put(&container.blob_client("untagged.txt"), b"u").await;

    async fn find(svc: &BlobServiceClient, expr: &str) -> Vec<(String, String)> {
        let mut pages = svc.find_blobs_by_tags(expr, None).unwrap().into_pages();
        let mut found = Vec::new();
        while let Some(page) = pages.try_next().await.unwrap() {
            for item in page.into_model().unwrap().blob_items {
                found.push((item.container_name.unwrap(), item.name.unwrap()));
            }
        }
        found.sort();
        found
    }

    let cname = |c: &BlobContainerClient| c.url().path().rsplit('/').next().unwrap().to_string();
    let mut expected_project = vec![
        (cname(&container), "a.txt".to_string()),
        (cname(&container), "b.txt".to_string()),
        (cname(&other), "c.txt".to_string()),
    ];
    expected_project.sort();
    assert_eq!(
        find(&svc, &format!("\"project\"='{project}'")).await,
        expected_project
    );

    // The SDK's own expression builder (joins with lowercase `and`).
    let expr = format_filter_expression(&map(&[("project", project.as_str()), ("stage", "final")]))
        .unwrap();
    let mut expected_final = vec![
        (cname(&container), "b.txt".to_string()),
        (cname(&other), "c.txt".to_string()),
    ];
    expected_final.sort();
    assert_eq!(find(&svc, &expr).await, expected_final);

    // Container scope.
    assert_eq!(
        find(
            &svc,
            &format!(
                "@container='{}' AND \"project\"='{project}' AND \"stage\"='final'",
                cname(&other)
            )
        )
        .await,
        vec![(cname(&other), "c.txt".to_string())]
    );
    let mut pages = container
        .find_blobs_by_tags(&format!("\"project\"='{project}'"), None)
        .unwrap()
        .into_pages();
    let page = pages
        .try_next()
        .await
        .unwrap()
        .unwrap()
        .into_model()
        .unwrap();
    let mut names: Vec<String> = page
        .blob_items
        .into_iter()
        .map(|i| i.name.unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["a.txt", "b.txt"]);

    // Clearing tags removes the blob from the index.
    b.set_tags(
        RequestContent::try_from(BlobTags::from(HashMap::new())).unwrap(),
        None,
    )
    .await
    .unwrap();
    let tags: HashMap<String, String> =
        b.get_tags(None).await.unwrap().into_model().unwrap().into();
    assert!(tags.is_empty());
    assert_eq!(
        find(&svc, &expr).await,
        vec![(cname(&other), "c.txt".to_string())]
    );
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_blobs_include_uncommitted_blobs() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    put(&container.blob_client("dir/sub/c.txt"), b"c").await;
    container
        .blob_client("dir/staged")
        .block_blob_client()
        .stage_block(b"x", 1, RequestContent::from(b"x".to_vec()), None)
        .await
        .unwrap();
    // Without the include the staged-only blob is invisible.
    let mut pages = container.list_blobs(None).unwrap().into_pages();
    let page = pages
        .try_next()
        .await
        .unwrap()
        .unwrap()
        .into_model()
        .unwrap();
    let names: Vec<String> = page
        .blob_items
        .iter()
        .map(|b| b.name.clone().unwrap())
        .collect();
    assert_eq!(names, vec!["dir/sub/c.txt"]);

    // Uncommitted blobs appear only when asked for.
    let mut pages = container
        .list_blobs(Some(BlobContainerClientListBlobsOptions {
            prefix: Some("dir/s".into()),
            include: Some(vec![ListBlobsIncludeItem::UncommittedBlobs]),
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
    let names: Vec<String> = page
        .blob_items
        .iter()
        .map(|b| b.name.clone().unwrap())
        .collect();
    assert_eq!(names, vec!["dir/staged", "dir/sub/c.txt"]);
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
