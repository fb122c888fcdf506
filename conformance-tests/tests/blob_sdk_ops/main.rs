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

mod blobs;
mod blocks;
mod containers;
mod copy;
mod leases;
mod pages;
mod tags;

pub(crate) use azure_core::http::{RequestContent, StatusCode};
pub(crate) use azure_storage_blob::models::*;
pub(crate) use azure_storage_blob::{
    format_filter_expression, BlobClient, BlobContainerClient, BlobServiceClient,
};
pub(crate) use conformance_tests::clients::{self, status_code};
pub(crate) use conformance_tests::{unique_name, EmulatorProcess};
pub(crate) use futures::TryStreamExt;
pub(crate) use std::collections::HashMap;

pub(crate) fn client(e: &EmulatorProcess) -> BlobServiceClient {
    let endpoint = format!("{}/{}", e.blob_base, e.creds.account);
    clients::blob_service(&endpoint, &e.creds.account, &e.creds.key)
}

pub(crate) fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) async fn new_container(svc: &BlobServiceClient) -> BlobContainerClient {
    let c = svc.blob_container_client(&unique_name("rb"));
    c.create(None).await.unwrap();
    c
}

pub(crate) async fn put(blob: &BlobClient, body: &[u8]) {
    blob.upload(RequestContent::from(body.to_vec()), None)
        .await
        .unwrap();
}

pub(crate) async fn read(blob: &BlobClient) -> Vec<u8> {
    blob.download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}
