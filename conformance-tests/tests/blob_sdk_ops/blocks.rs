//! Block and append blobs: staging, block lists, appends, seal.

use super::*;

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
