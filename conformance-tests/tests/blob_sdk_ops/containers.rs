//! Containers: create, properties, metadata, list, delete; List Blobs.

use super::*;

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
