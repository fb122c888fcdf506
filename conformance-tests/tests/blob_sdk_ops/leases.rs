//! Blob leases.

use super::*;

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
