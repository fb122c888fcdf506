//! Blob index tags and Find Blobs by Tags.

use super::*;

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
