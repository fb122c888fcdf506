//! Reading and writing job records (`jobs/<id>` blobs) and creating the containers and
//! queues the pipeline needs.

use crate::clients::Storage;
use crate::job::{self, JobId, JobRecord};
use azure_core::http::{RequestContent, StatusCode};
use azure_storage_blob::models::{
    BlobClientGetPropertiesResultHeaders, BlobClientUploadOptions,
    BlobContainerClientListBlobsOptions, ListBlobsIncludeItem,
};
use azure_storage_blob::BlobContainerClient;
use azure_storage_queue::models::QueueClientGetPropertiesResultHeaders;
use futures::TryStreamExt;

pub struct JobStore {
    container: BlobContainerClient,
}

impl JobStore {
    pub fn new(storage: &Storage) -> JobStore {
        JobStore {
            container: storage.container(job::JOBS),
        }
    }

    /// Writes the whole record (last writer wins; every writer writes a complete record).
    pub async fn put(&self, record: &JobRecord) -> azure_core::Result<()> {
        self.container
            .blob_client(record.id.as_str())
            .upload(
                RequestContent::from(record.to_json().into_bytes()),
                Some(BlobClientUploadOptions {
                    metadata: Some(record.to_metadata()),
                    blob_content_type: Some("application/json".into()),
                    ..Default::default()
                }),
            )
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: &JobId) -> azure_core::Result<Option<JobRecord>> {
        match self
            .container
            .blob_client(id.as_str())
            .get_properties(None)
            .await
        {
            Ok(p) => Ok(JobRecord::from_metadata(id.clone(), &p.metadata()?).ok()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, id: &JobId) -> azure_core::Result<()> {
        match self.container.blob_client(id.as_str()).delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The newest `limit` records (ids sort newest first), in one listing call.
    pub async fn recent(&self, limit: usize) -> azure_core::Result<Vec<JobRecord>> {
        Ok(self.page(limit, None).await?.records)
    }

    /// One page of records, newest first: `limit` of them from `marker` (the previous
    /// page's `next`), in one listing call. Uploads made meanwhile sort before the marker,
    /// so paging on never repeats or skips a record.
    pub async fn page(&self, limit: usize, marker: Option<&str>) -> azure_core::Result<JobPage> {
        let mut pages = self
            .container
            .list_blobs(Some(BlobContainerClientListBlobsOptions {
                include: Some(vec![ListBlobsIncludeItem::Metadata]),
                maxresults: Some(i32::try_from(limit.clamp(1, 5000)).unwrap_or(5000)),
                marker: marker.filter(|m| !m.is_empty()).map(str::to_string),
                ..Default::default()
            }))?
            .into_pages();
        let mut out = JobPage::default();
        if let Some(page) = pages.try_next().await? {
            let page = page.into_model()?;
            out.next = page.next_marker.filter(|m| !m.is_empty());
            for item in page.blob_items {
                let Some(id) = item.name.as_deref().and_then(|n| JobId::parse(n).ok()) else {
                    continue;
                };
                let meta = item.metadata.and_then(|m| m.values).unwrap_or_default();
                if let Ok(r) = JobRecord::from_metadata(id, &meta) {
                    out.records.push(r);
                }
            }
        }
        Ok(out)
    }
}

/// A page of job records and where the next one starts (`None`: this was the last).
#[derive(Debug, Default)]
pub struct JobPage {
    pub records: Vec<JobRecord>,
    pub next: Option<String>,
}

/// Creates the containers and queues, leaving existing ones alone.
pub async fn ensure_resources(storage: &Storage, queue: &str) -> azure_core::Result<()> {
    for name in [job::UPLOADS, job::THUMBNAILS, job::JOBS] {
        match storage.container(name).create(None).await {
            Ok(_) => {}
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    for name in [queue.to_string(), job::poison_queue(queue)] {
        let q = storage.queues.queue_client(&name)?;
        match q.create(None).await {
            Ok(_) => {}
            Err(e) if e.http_status() == Some(StatusCode::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Approximate message count of a queue (Get Queue Metadata).
pub async fn queue_depth(storage: &Storage, queue: &str) -> azure_core::Result<u64> {
    let props = storage
        .queues
        .queue_client(queue)?
        .get_properties(None)
        .await?;
    Ok(props
        .approximate_messages_count()?
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0))
}
