//! The Blob service: one handler per operation, grouped by what it acts on. A handler
//! parses and bounds the request, builds its `Preconditions`, makes one store call (two
//! when bytes arrive: `receive`, then the commit that takes them) and renders the reply.

mod append;
mod batch;
mod blobs;
mod blocks;
mod containers;
mod copy;
mod headers;
mod ingest;
mod leases;
mod pages;
mod service;
pub(crate) mod source;
pub(crate) mod tags;

use crate::http::body::Body;
use crate::http::response::Reply;
use crate::protocol::conditions::{Access, Preconditions};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::tiers::{self, Tier};
use crate::router::BlobOp;
use crate::state::Ctx;
use crate::store::blob::{BlobName, BlobType};

#[cfg(feature = "fuzz")]
pub(crate) use blobs::parse_range;
#[cfg(feature = "fuzz")]
pub(crate) use blocks::parse_block_list;

/// Largest XML body a blob operation takes (block lists of 50,000 ids, tags, ACLs...).
pub const MAX_XML_BODY: usize = 4 * 1024 * 1024;

/// The blob the request addresses.
fn name<'a>(ctx: &'a Ctx<'_>) -> BlobName<'a> {
    BlobName {
        account: &ctx.route.account,
        container: ctx.route.container.as_deref().unwrap_or_default(),
        blob: ctx.route.blob.as_deref().unwrap_or_default(),
    }
}

/// The request's preconditions for an operation of this kind; a write that creates a
/// blob carries the create-only limit of its SAS.
fn pre(ctx: &Ctx<'_>, access: Access) -> Result<Preconditions> {
    let create_only = ctx.create_only()
        && matches!(ctx.route.op, crate::router::Operation::Blob(op) if op.creates_blob());
    Ok(Preconditions::from_request(ctx.req, access)?.create_only(create_only))
}

/// The record the request's `snapshot=` or `versionid=` names, as a store slot: a
/// snapshot id, a previous version's slot, or empty for the base blob (which is also
/// what the current version's id names).
fn snapshot_param(ctx: &Ctx<'_>) -> String {
    if let Some(v) = ctx.req.query.get("versionid").filter(|v| !v.is_empty()) {
        return ctx
            .app
            .store
            .blobs
            .version_slot(name(ctx), v)
            .unwrap_or_else(|_| crate::store::blob::version_slot_of(v));
    }
    ctx.req.query.get("snapshot").unwrap_or("").to_string()
}

/// `snapshot=` and `versionid=` must be timestamps, and not both.
fn check_snapshot_params(ctx: &Ctx<'_>) -> Result<()> {
    let q = &ctx.req.query;
    let (snapshot, version) = (q.get("snapshot"), q.get("versionid"));
    if snapshot.is_some() && version.is_some() {
        return Err(StorageError::new(
            ErrorCode::MutuallyExclusiveQueryParameters,
        ));
    }
    for (param, v) in [("snapshot", snapshot), ("versionid", version)] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            if chrono::DateTime::parse_from_rfc3339(v).is_err() {
                return Err(StorageError::invalid_query(param, v)
                    .with_message(format!("The value for {param} must be a DateTime.")));
            }
        }
    }
    Ok(())
}

/// `x-ms-access-tier` of a write creating a blob of `blob_type`. The emulated account is
/// a standard general-purpose v2 one: block blobs take Hot, Cool, Cold and Archive; any
/// other tier, or a tier for another blob type, is Azure's 400
/// `AccessTierNotSupportedForBlobType` (the premium P tiers need a premium account).
fn tier_header(ctx: &Ctx<'_>, blob_type: BlobType) -> Result<Option<Tier>> {
    let Some(v) = ctx
        .req
        .header("x-ms-access-tier")
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let tier = tiers::parse_header(v)?;
    if blob_type != BlobType::Block || !tier.is_block_tier() {
        return Err(StorageError::new(
            ErrorCode::AccessTierNotSupportedForBlobType,
        ));
    }
    Ok(Some(tier))
}

fn not_implemented(op: BlobOp) -> Result<Reply> {
    Err(
        StorageError::new(ErrorCode::NotImplemented).with_message(format!(
            "{} is not implemented by this emulator yet.",
            op.name()
        )),
    )
}

pub async fn dispatch(ctx: &Ctx<'_>, op: BlobOp, body: Body) -> Result<Reply> {
    let container = ctx.route.container.as_deref().unwrap_or_default();
    if ctx.route.container.is_some() {
        validate_container_name(container)?;
    }
    if let Some(blob) = &ctx.route.blob {
        validate_blob_name(blob)?;
    }
    check_snapshot_params(ctx)?;
    for param in ["snapshot", "versionid"] {
        if let Some(v) = ctx.req.query.get(param) {
            if op.is_blob_write() {
                return Err(StorageError::invalid_query(param, v).with_message(format!(
                    "Cannot perform this operation on a blob {}.",
                    if param == "snapshot" {
                        "snapshot"
                    } else {
                        "version"
                    }
                )));
            }
        }
    }
    if ctx.app.store.events.any() {
        if let Some(ty) = crate::events::event_type(&op, ctx) {
            let subs = crate::events::subscribers(ctx, ty);
            if !subs.is_empty() {
                return with_event(ctx, op, body, ty, &subs).await;
            }
        }
    }
    run(ctx, op, body).await
}

/// The live base record of the request's blob, if any.
fn current(ctx: &Ctx<'_>) -> Option<crate::store::blob::BlobRecord> {
    let container = ctx.route.container.as_deref()?;
    let blob = ctx.route.blob.as_deref()?;
    ctx.app
        .store
        .blobs
        .blob(&ctx.route.account, container, blob, "")
        .ok()
        .flatten()
}

/// Runs an operation a subscription watches and publishes its event once it succeeded
/// (a copy only once complete); the answer waits until the event is durable.
async fn with_event(
    ctx: &Ctx<'_>,
    op: BlobOp,
    body: Body,
    ty: &'static str,
    subs: &[crate::store::events::Subscription],
) -> Result<Reply> {
    let before = if ty == crate::events::CREATED {
        None
    } else {
        current(ctx)
    };
    let reply = run(ctx, op, body).await?;
    let pending_copy = reply
        .headers
        .iter()
        .any(|(n, v)| n.as_str() == "x-ms-copy-status" && v.as_bytes() != b"success");
    if !reply.status.is_success() || pending_copy {
        return Ok(reply);
    }
    let after = if ty == crate::events::DELETED {
        None
    } else {
        current(ctx)
    };
    crate::events::publish(ctx, ty, subs, &reply, before.as_ref(), after.as_ref()).await?;
    Ok(reply)
}

/// Runs one operation.
async fn run(ctx: &Ctx<'_>, op: BlobOp, body: Body) -> Result<Reply> {
    let container = ctx.route.container.as_deref().unwrap_or_default();
    let xml = |body: Body| body.collect(MAX_XML_BODY);
    match op {
        BlobOp::GetAccountInfo => service::account_info(ctx),
        BlobOp::GetServiceProperties => crate::account::get_properties(ctx),
        BlobOp::SetServiceProperties => {
            crate::account::set_properties(ctx, &xml(body).await?).await
        }
        BlobOp::GetServiceStats => crate::account::get_stats(ctx),
        BlobOp::GetUserDelegationKey => service::user_delegation_key(ctx, &xml(body).await?),
        BlobOp::FindBlobsByTags => tags::find(ctx, None),
        BlobOp::SubmitBatch => batch::submit(ctx, None, body).await,
        BlobOp::SubmitBatchInContainer => batch::submit(ctx, Some(container), body).await,
        BlobOp::ListContainers => containers::list(ctx),
        BlobOp::CreateContainer => containers::create(ctx, container).await,
        BlobOp::GetContainerProperties | BlobOp::GetContainerMetadata => {
            containers::get_properties(ctx, container)
        }
        BlobOp::SetContainerMetadata => containers::set_metadata(ctx, container).await,
        BlobOp::DeleteContainer => containers::delete(ctx, container).await,
        BlobOp::GetContainerAcl => containers::get_acl(ctx, container),
        BlobOp::SetContainerAcl => containers::set_acl(ctx, container, &xml(body).await?).await,
        BlobOp::LeaseContainer => leases::lease_container(ctx, container).await,
        BlobOp::ListBlobs => containers::list_blobs(ctx, container),
        BlobOp::FindBlobsByTagsInContainer => tags::find(ctx, Some(container)),
        BlobOp::PutBlob => blobs::put(ctx, body).await,
        BlobOp::GetBlob => blobs::get(ctx, false).await,
        BlobOp::GetBlobProperties => blobs::get(ctx, true).await,
        BlobOp::GetBlobMetadata => blobs::get_metadata(ctx),
        BlobOp::SetBlobMetadata => blobs::set_metadata(ctx).await,
        BlobOp::SetBlobProperties => blobs::set_properties(ctx).await,
        BlobOp::DeleteBlob => blobs::delete(ctx).await,
        BlobOp::SnapshotBlob => blobs::snapshot(ctx).await,
        BlobOp::LeaseBlob => leases::lease_blob(ctx).await,
        BlobOp::PutBlock => blocks::put_block(ctx, body).await,
        BlobOp::PutBlockFromUrl => blocks::put_block_from_url(ctx).await,
        BlobOp::PutBlockList => blocks::put_block_list(ctx, &xml(body).await?).await,
        BlobOp::GetBlockList => blocks::get_block_list(ctx),
        BlobOp::AppendBlock => append::append_block(ctx, body).await,
        BlobOp::AppendBlockFromUrl => append::append_block_from_url(ctx).await,
        BlobOp::SealBlob => append::seal(ctx).await,
        BlobOp::CopyBlob => copy::copy(ctx, source::Mode::Copy).await,
        BlobOp::CopyBlobFromUrl => copy::copy(ctx, source::Mode::FromUrl).await,
        BlobOp::PutBlobFromUrl => copy::put_from_url(ctx).await,
        BlobOp::AbortCopyBlob => copy::abort(ctx),
        BlobOp::IncrementalCopyBlob => copy::incremental(ctx).await,
        BlobOp::GetBlobTags => tags::get(ctx),
        BlobOp::SetBlobTags => tags::set(ctx, &xml(body).await?).await,
        BlobOp::SetBlobTier => blobs::set_tier(ctx).await,
        BlobOp::PutPage => pages::put_page(ctx, body).await,
        BlobOp::PutPageFromUrl => pages::put_page_from_url(ctx).await,
        BlobOp::GetPageRanges => pages::get_page_ranges(ctx),
        BlobOp::UndeleteBlob => blobs::undelete(ctx).await,
        BlobOp::SetBlobExpiry => blobs::set_expiry(ctx).await,
        BlobOp::RestoreContainer => containers::restore(ctx, container).await,
        BlobOp::Unsupported => not_implemented(op),
    }
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
