//! The Blob service: one handler per operation, grouped by what it acts on.

mod append;
pub(crate) mod blobs;
pub(crate) mod blocks;
mod containers;
mod copy;
pub(crate) mod ingest;
mod leases;
mod service;
mod source;
pub(crate) mod tags;

use crate::http::body::Body;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::router::BlobOp;
use crate::state::Ctx;

/// Largest XML body a blob operation takes (block lists of 50,000 ids, tags, ACLs...).
pub const MAX_XML_BODY: usize = 4 * 1024 * 1024;

pub async fn dispatch(ctx: &Ctx<'_>, op: BlobOp, body: Body) -> Result<Reply> {
    let container = ctx.route.container.as_deref().unwrap_or_default();
    let blob = ctx.route.blob.as_deref().unwrap_or_default();
    if ctx.route.container.is_some() {
        validate_container_name(container)?;
    }
    if ctx.route.blob.is_some() {
        validate_blob_name(blob)?;
    }
    // Snapshots are read-only.
    if ctx.req.query.has("snapshot") && is_write(op) {
        return Err(StorageError::invalid_query(
            "snapshot",
            ctx.req.query.get("snapshot").unwrap_or_default(),
        )
        .with_message("Cannot perform this operation on a blob snapshot."));
    }
    // A SAS with `c` but not `w` writes new blobs only.
    if ctx.create_only
        && matches!(
            op,
            BlobOp::PutBlob
                | BlobOp::PutBlock
                | BlobOp::PutBlockFromUrl
                | BlobOp::PutBlockList
                | BlobOp::CopyBlob
                | BlobOp::CopyBlobFromUrl
                | BlobOp::PutBlobFromUrl
        )
        && ctx
            .app
            .store
            .blob(&ctx.route.account, container, blob, "")?
            .is_some()
    {
        return Err(
            StorageError::new(ErrorCode::AuthorizationPermissionMismatch).with_message(
                "A SAS with create but not write permission cannot overwrite an existing blob.",
            ),
        );
    }
    match op {
        BlobOp::GetAccountInfo => service::account_info(ctx),
        BlobOp::GetServiceProperties => crate::account::get_properties(ctx),
        BlobOp::SetServiceProperties => {
            crate::account::set_properties(ctx, &body.collect(MAX_XML_BODY).await?).await
        }
        BlobOp::GetServiceStats => crate::account::get_stats(ctx),
        BlobOp::ListContainers => containers::list(ctx),
        BlobOp::CreateContainer => containers::create(ctx, container).await,
        BlobOp::GetContainerProperties | BlobOp::GetContainerMetadata => {
            containers::get_properties(ctx, container)
        }
        BlobOp::SetContainerMetadata => containers::set_metadata(ctx, container).await,
        BlobOp::DeleteContainer => containers::delete(ctx, container).await,
        BlobOp::GetContainerAcl => containers::get_acl(ctx, container),
        BlobOp::SetContainerAcl => {
            containers::set_acl(ctx, container, &body.collect(MAX_XML_BODY).await?).await
        }
        BlobOp::ListBlobs => containers::list_blobs(ctx, container),
        BlobOp::PutBlob => blobs::put(ctx, container, blob, body).await,
        BlobOp::GetBlob => blobs::get(ctx, container, blob, false).await,
        BlobOp::GetBlobProperties => blobs::get(ctx, container, blob, true).await,
        BlobOp::GetBlobMetadata => blobs::get_metadata(ctx, container, blob),
        BlobOp::SetBlobMetadata => blobs::set_metadata(ctx, container, blob).await,
        BlobOp::SetBlobProperties => blobs::set_properties(ctx, container, blob).await,
        BlobOp::DeleteBlob => blobs::delete(ctx, container, blob).await,
        BlobOp::PutBlock => blocks::put_block(ctx, container, blob, body).await,
        BlobOp::PutBlockFromUrl => blocks::put_block_from_url(ctx, container, blob).await,
        BlobOp::PutBlockList => {
            blocks::put_block_list(ctx, container, blob, &body.collect(MAX_XML_BODY).await?).await
        }
        BlobOp::GetBlockList => blocks::get_block_list(ctx, container, blob),
        BlobOp::AppendBlock => append::append_block(ctx, container, blob, body).await,
        BlobOp::AppendBlockFromUrl => append::append_block_from_url(ctx, container, blob).await,
        BlobOp::SealBlob => append::seal(ctx, container, blob).await,
        BlobOp::SnapshotBlob => blobs::snapshot(ctx, container, blob).await,
        BlobOp::LeaseBlob => leases::lease_blob(ctx, container, blob).await,
        BlobOp::CopyBlob => copy::copy(ctx, container, blob, source::Mode::Copy).await,
        BlobOp::CopyBlobFromUrl => copy::copy(ctx, container, blob, source::Mode::FromUrl).await,
        BlobOp::PutBlobFromUrl => copy::put_from_url(ctx, container, blob).await,
        BlobOp::AbortCopyBlob => copy::abort(ctx, container, blob).await,
        BlobOp::GetBlobTags => tags::get(ctx, container, blob),
        BlobOp::SetBlobTags => {
            tags::set(ctx, container, blob, &body.collect(MAX_XML_BODY).await?).await
        }
        BlobOp::FindBlobsByTags => tags::find(ctx, None),
        BlobOp::FindBlobsByTagsInContainer => tags::find(ctx, Some(container)),
        BlobOp::LeaseContainer => leases::lease_container(ctx, container).await,
        _ => Err(
            StorageError::new(ErrorCode::NotImplemented).with_message(format!(
                "{} is not implemented by this emulator yet.",
                op.name()
            )),
        ),
    }
}

fn is_write(op: BlobOp) -> bool {
    use BlobOp::*;
    matches!(
        op,
        PutBlob
            | CopyBlob
            | CopyBlobFromUrl
            | PutBlobFromUrl
            | SetBlobProperties
            | SetBlobMetadata
            | LeaseBlob
            | SnapshotBlob
            | PutBlock
            | PutBlockFromUrl
            | PutBlockList
            | AppendBlock
            | AppendBlockFromUrl
            | SealBlob
            | SetBlobTags
            | SetBlobTier
    )
}

/// Container names follow the queue name rules; the special containers `$root`, `$logs`
/// and `$web` are allowed too.
pub fn validate_container_name(name: &str) -> Result<()> {
    if matches!(name, "$root" | "$logs" | "$web") {
        return Ok(());
    }
    crate::protocol::validate::resource_name(name)
}

/// Blob names: 1-1024 characters, no NUL (our keys use it as a separator).
pub fn validate_blob_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0 || n > 1024 {
        return Err(StorageError::new(ErrorCode::OutOfRangeInput).with_message(
            "The specified resource name length is not within the permissible limits.",
        ));
    }
    if name.contains('\0') {
        return Err(StorageError::new(ErrorCode::InvalidResourceName));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["abc", "a-b-c", "$root", "$logs", "$web", &"a".repeat(63)] {
            assert!(validate_container_name(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            validate_container_name("ab").map_err(|e| e.code),
            Err(ErrorCode::OutOfRangeInput)
        );
        for bad in ["Abc", "-ab", "ab-", "a--b", "a_b", "$other"] {
            assert!(validate_container_name(bad).is_err(), "{bad}");
        }
        assert!(validate_blob_name("dir/a b+%.txt").is_ok());
        assert!(validate_blob_name(&"x".repeat(1024)).is_ok());
        assert_eq!(
            validate_blob_name(&"x".repeat(1025)).map_err(|e| e.code),
            Err(ErrorCode::OutOfRangeInput)
        );
        assert_eq!(
            validate_blob_name("a\0b").map_err(|e| e.code),
            Err(ErrorCode::InvalidResourceName)
        );
    }
}
