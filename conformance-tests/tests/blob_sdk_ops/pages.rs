//! Page blobs through the Rust SDK's `PageBlobClient`: create, upload and clear pages, list
//! page ranges (paged by `maxresults`), resize, sequence numbers and their conditions.

use super::*;
use azure_storage_blob::models::HttpRange;

fn ranges(list: &PageList) -> Vec<(i64, i64)> {
    list.page_ranges
        .iter()
        .map(|r| (r.start.unwrap(), r.end.unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_blobs_through_the_rust_sdk() {
    let emu = EmulatorProcess::in_memory();
    let svc = client(&emu);
    let container = new_container(&svc).await;
    let blob = container.blob_client("disk.vhd");
    let pages = blob.page_blob_client();
    pages
        .create(
            16 * 1024,
            Some(PageBlobClientCreateOptions {
                blob_sequence_number: Some(4),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let p = blob.get_properties(None).await.unwrap();
    assert_eq!(p.blob_type().unwrap(), Some(BlobType::PageBlob));
    assert_eq!(p.content_length().unwrap(), Some(16 * 1024));

    // Three separate written ranges, one of them then cut by a clear.
    for (offset, fill) in [(0u64, 1u8), (4096, 2), (8192, 3)] {
        let r = pages
            .upload_pages(
                RequestContent::from(vec![fill; 2048]),
                2048,
                HttpRange::new(offset, 2048),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.blob_sequence_number().unwrap(), Some(4));
    }
    pages
        .clear_pages(HttpRange::new(8192, 1024), None)
        .await
        .unwrap();
    let body = read(&blob).await;
    assert_eq!(body.len(), 16 * 1024);
    assert!(body[..2048].iter().all(|b| *b == 1));
    assert!(body[2048..4096].iter().all(|b| *b == 0));
    assert!(body[8192..9216].iter().all(|b| *b == 0));
    assert!(body[9216..10240].iter().all(|b| *b == 3));

    // Page ranges, two per page of results.
    let mut pager = pages
        .list_page_ranges(Some(PageBlobClientListPageRangesOptions {
            maxresults: Some(2),
            ..Default::default()
        }))
        .unwrap();
    let mut all = Vec::new();
    let mut pages_seen = 0;
    while let Some(page) = pager.try_next().await.unwrap() {
        all.extend(ranges(&page.into_model().unwrap()));
        pages_seen += 1;
    }
    assert_eq!(all, vec![(0, 2047), (4096, 6143), (9216, 10239)]);
    assert_eq!(pages_seen, 2);

    // Sequence numbers: the actions, then a write whose condition fails.
    let r = pages
        .set_sequence_number(
            SequenceNumberActionType::Max,
            Some(PageBlobClientSetSequenceNumberOptions {
                blob_sequence_number: Some(10),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.blob_sequence_number().unwrap(), Some(10));
    let r = pages
        .set_sequence_number(SequenceNumberActionType::Increment, None)
        .await
        .unwrap();
    assert_eq!(r.blob_sequence_number().unwrap(), Some(11));
    let e = pages
        .upload_pages(
            RequestContent::from(vec![9u8; 512]),
            512,
            HttpRange::new(0, 512),
            Some(PageBlobClientUploadPagesOptions {
                if_sequence_number_less_than: Some(11),
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (412, "SequenceNumberConditionNotMet".to_string())
    );

    // Shrinking drops the pages past the new end.
    pages.resize(4096, None).await.unwrap();
    let list = pages
        .list_page_ranges(None)
        .unwrap()
        .try_next()
        .await
        .unwrap()
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(ranges(&list), vec![(0, 2047)]);
    assert_eq!(read(&blob).await.len(), 4096);
}
