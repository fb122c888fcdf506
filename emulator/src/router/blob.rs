//! Blob service routing: container and blob names from the path, the operation from method,
//! `restype`, `comp` and a few headers.

use crate::http::request::RequestParts;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use http::Method;
use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOp {
    // Service (account) level.
    ListContainers,
    GetServiceProperties,
    SetServiceProperties,
    GetServiceStats,
    GetAccountInfo,
    GetUserDelegationKey,
    FindBlobsByTags,
    SubmitBatch,
    // Containers.
    CreateContainer,
    GetContainerProperties,
    DeleteContainer,
    GetContainerMetadata,
    SetContainerMetadata,
    GetContainerAcl,
    SetContainerAcl,
    LeaseContainer,
    ListBlobs,
    FindBlobsByTagsInContainer,
    SubmitBatchInContainer,
    // Blobs.
    PutBlob,
    CopyBlob,
    CopyBlobFromUrl,
    PutBlobFromUrl,
    GetBlob,
    GetBlobProperties,
    DeleteBlob,
    SetBlobProperties,
    GetBlobMetadata,
    SetBlobMetadata,
    LeaseBlob,
    SnapshotBlob,
    AbortCopyBlob,
    PutBlock,
    PutBlockFromUrl,
    PutBlockList,
    GetBlockList,
    AppendBlock,
    AppendBlockFromUrl,
    SealBlob,
    GetBlobTags,
    SetBlobTags,
    SetBlobTier,
    PutPage,
    PutPageFromUrl,
    GetPageRanges,
    IncrementalCopyBlob,
    UndeleteBlob,
    SetBlobExpiry,
    RestoreContainer,
    /// Operations this emulator does not offer.
    Unsupported,
}

impl BlobOp {
    pub fn name(self) -> &'static str {
        match self {
            BlobOp::ListContainers => "ListContainers",
            BlobOp::GetServiceProperties => "GetBlobServiceProperties",
            BlobOp::SetServiceProperties => "SetBlobServiceProperties",
            BlobOp::GetServiceStats => "GetBlobServiceStats",
            BlobOp::GetAccountInfo => "GetAccountInfo",
            BlobOp::GetUserDelegationKey => "GetUserDelegationKey",
            BlobOp::FindBlobsByTags => "FindBlobsByTags",
            BlobOp::SubmitBatch => "SubmitBatch",
            BlobOp::SubmitBatchInContainer => "SubmitBatchInContainer",
            BlobOp::CreateContainer => "CreateContainer",
            BlobOp::GetContainerProperties => "GetContainerProperties",
            BlobOp::DeleteContainer => "DeleteContainer",
            BlobOp::GetContainerMetadata => "GetContainerMetadata",
            BlobOp::SetContainerMetadata => "SetContainerMetadata",
            BlobOp::GetContainerAcl => "GetContainerAcl",
            BlobOp::SetContainerAcl => "SetContainerAcl",
            BlobOp::LeaseContainer => "LeaseContainer",
            BlobOp::ListBlobs => "ListBlobs",
            BlobOp::FindBlobsByTagsInContainer => "FindBlobsByTagsInContainer",
            BlobOp::PutBlob => "PutBlob",
            BlobOp::CopyBlob => "CopyBlob",
            BlobOp::CopyBlobFromUrl => "CopyBlobFromUrl",
            BlobOp::PutBlobFromUrl => "PutBlobFromUrl",
            BlobOp::GetBlob => "GetBlob",
            BlobOp::GetBlobProperties => "GetBlobProperties",
            BlobOp::DeleteBlob => "DeleteBlob",
            BlobOp::SetBlobProperties => "SetBlobProperties",
            BlobOp::GetBlobMetadata => "GetBlobMetadata",
            BlobOp::SetBlobMetadata => "SetBlobMetadata",
            BlobOp::LeaseBlob => "LeaseBlob",
            BlobOp::SnapshotBlob => "SnapshotBlob",
            BlobOp::AbortCopyBlob => "AbortCopyBlob",
            BlobOp::PutBlock => "PutBlock",
            BlobOp::PutBlockFromUrl => "PutBlockFromUrl",
            BlobOp::PutBlockList => "PutBlockList",
            BlobOp::GetBlockList => "GetBlockList",
            BlobOp::AppendBlock => "AppendBlock",
            BlobOp::AppendBlockFromUrl => "AppendBlockFromUrl",
            BlobOp::SealBlob => "SealBlob",
            BlobOp::GetBlobTags => "GetBlobTags",
            BlobOp::SetBlobTags => "SetBlobTags",
            BlobOp::SetBlobTier => "SetBlobTier",
            BlobOp::PutPage => "PutPage",
            BlobOp::PutPageFromUrl => "PutPageFromUrl",
            BlobOp::GetPageRanges => "GetPageRanges",
            BlobOp::IncrementalCopyBlob => "IncrementalCopyBlob",
            BlobOp::UndeleteBlob => "UndeleteBlob",
            BlobOp::SetBlobExpiry => "SetBlobExpiry",
            BlobOp::RestoreContainer => "RestoreContainer",
            BlobOp::Unsupported => "Unsupported",
        }
    }
}

impl BlobOp {
    /// Changes a blob (refused on a snapshot: snapshots are read-only).
    pub fn is_blob_write(self) -> bool {
        use BlobOp::*;
        matches!(
            self,
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
                | PutPage
                | PutPageFromUrl
                | IncrementalCopyBlob
                | UndeleteBlob
                | SetBlobExpiry
        )
    }

    /// Creates or replaces a blob's content: what a create-only SAS (`c` without `w`) may
    /// do to a blob that does not exist yet, and only then.
    pub fn creates_blob(self) -> bool {
        use BlobOp::*;
        matches!(
            self,
            PutBlob
                | CopyBlob
                | CopyBlobFromUrl
                | PutBlobFromUrl
                | PutBlock
                | PutBlockFromUrl
                | PutBlockList
                | IncrementalCopyBlob
        )
    }
}

/// The container every single-segment path without `restype=container` addresses.
pub const ROOT_CONTAINER: &str = "$root";

/// Routes a Blob request. `rest` is the raw (encoded) path after the account, starting
/// with `/` or empty. Returns (container, blob, operation).
pub fn route(req: &RequestParts, rest: &str) -> Result<(Option<String>, Option<String>, BlobOp)> {
    let m = &req.method;
    let q = &req.query;
    let comp = q.get("comp");
    let restype = q.get("restype");
    let is_get = m == Method::GET || m == Method::HEAD;
    let account_info = restype == Some("account") && comp == Some("properties");
    if account_info && !is_get {
        return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb));
    }
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (container_raw, blob_raw) = match rest.split_once('/') {
        Some((c, b)) => (c, b),
        None => (rest, ""),
    };
    // `\` is `/` (as Azure's front end and Azurite treat it); bytes that are not UTF-8 make
    // the URI invalid.
    let decode = |s: &str| -> Result<String> {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.replace('\\', "/"))
            .map_err(|_| StorageError::new(ErrorCode::InvalidUri))
    };
    // Get Account Information may name a container or blob (from 2018-03-28), so that a
    // service SAS for it can authorize the call.
    if account_info {
        let container = (!container_raw.is_empty())
            .then(|| decode(container_raw))
            .transpose()?;
        let blob = (!blob_raw.is_empty())
            .then(|| decode(blob_raw))
            .transpose()?;
        return Ok((container, blob, BlobOp::GetAccountInfo));
    }
    if container_raw.is_empty() {
        let op = match (restype, comp) {
            (_, Some("list")) if is_get => BlobOp::ListContainers,
            (Some("service"), Some("properties")) if is_get => BlobOp::GetServiceProperties,
            (Some("service"), Some("properties")) if m == Method::PUT => {
                BlobOp::SetServiceProperties
            }
            (Some("service"), Some("stats")) if is_get => BlobOp::GetServiceStats,
            (Some("service"), Some("userdelegationkey")) if m == Method::POST => {
                BlobOp::GetUserDelegationKey
            }
            (_, Some("blobs")) if is_get => BlobOp::FindBlobsByTags,
            (_, Some("batch")) if m == Method::POST => BlobOp::SubmitBatch,
            (_, Some("list" | "blobs" | "batch"))
            | (Some("service"), Some("properties" | "stats" | "userdelegationkey")) => {
                return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb))
            }
            (_, Some(c)) => return Err(StorageError::invalid_query("comp", c)),
            (_, None) => return Err(StorageError::missing_query("comp")),
        };
        return Ok((None, None, op));
    }
    let container = decode(container_raw)?;
    if blob_raw.is_empty() && restype == Some("container") {
        let op = match comp {
            None if m == Method::PUT => BlobOp::CreateContainer,
            None if is_get => BlobOp::GetContainerProperties,
            None if m == Method::DELETE => BlobOp::DeleteContainer,
            Some("metadata") if is_get => BlobOp::GetContainerMetadata,
            Some("metadata") if m == Method::PUT => BlobOp::SetContainerMetadata,
            Some("acl") if is_get => BlobOp::GetContainerAcl,
            Some("acl") if m == Method::PUT => BlobOp::SetContainerAcl,
            Some("lease") if m == Method::PUT => BlobOp::LeaseContainer,
            Some("list") if is_get => BlobOp::ListBlobs,
            Some("blobs") if is_get => BlobOp::FindBlobsByTagsInContainer,
            Some("batch") if m == Method::POST => BlobOp::SubmitBatchInContainer,
            Some("undelete") if m == Method::PUT => BlobOp::RestoreContainer,
            None | Some("metadata" | "acl" | "lease" | "list" | "blobs" | "batch" | "undelete") => {
                return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb))
            }
            Some(c) => return Err(StorageError::invalid_query("comp", c)),
        };
        return Ok((Some(container), None, op));
    }
    // A single segment without restype=container names a blob in $root.
    let (container, blob) = if blob_raw.is_empty() {
        (ROOT_CONTAINER.to_string(), container)
    } else {
        (container, decode(blob_raw)?)
    };
    let header = |n: &str| req.header(n);
    let op = match comp {
        None => match *m {
            // Put Blob From URL is a Put Blob (it names a blob type) whose bytes come from a URL.
            Method::PUT
                if header("x-ms-copy-source").is_some() && header("x-ms-blob-type").is_some() =>
            {
                BlobOp::PutBlobFromUrl
            }
            Method::PUT if header("x-ms-copy-source").is_some() => {
                if header("x-ms-requires-sync").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                    BlobOp::CopyBlobFromUrl
                } else {
                    BlobOp::CopyBlob
                }
            }
            Method::PUT => BlobOp::PutBlob,
            Method::GET => BlobOp::GetBlob,
            Method::HEAD => BlobOp::GetBlobProperties,
            Method::DELETE => BlobOp::DeleteBlob,
            _ => return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb)),
        },
        Some(c) => match (c, m) {
            ("properties", &Method::PUT) => BlobOp::SetBlobProperties,
            ("metadata", &Method::GET | &Method::HEAD) => BlobOp::GetBlobMetadata,
            ("metadata", &Method::PUT) => BlobOp::SetBlobMetadata,
            ("lease", &Method::PUT) => BlobOp::LeaseBlob,
            ("snapshot", &Method::PUT) => BlobOp::SnapshotBlob,
            ("copy", &Method::PUT) => BlobOp::AbortCopyBlob,
            ("block", &Method::PUT) if header("x-ms-copy-source").is_some() => {
                BlobOp::PutBlockFromUrl
            }
            ("block", &Method::PUT) => BlobOp::PutBlock,
            ("blocklist", &Method::PUT) => BlobOp::PutBlockList,
            ("blocklist", &Method::GET | &Method::HEAD) => BlobOp::GetBlockList,
            ("appendblock", &Method::PUT) if header("x-ms-copy-source").is_some() => {
                BlobOp::AppendBlockFromUrl
            }
            ("appendblock", &Method::PUT) => BlobOp::AppendBlock,
            ("seal", &Method::PUT) => BlobOp::SealBlob,
            ("tags", &Method::GET | &Method::HEAD) => BlobOp::GetBlobTags,
            ("tags", &Method::PUT) => BlobOp::SetBlobTags,
            ("tier", &Method::PUT) => BlobOp::SetBlobTier,
            ("page", &Method::PUT) if header("x-ms-copy-source").is_some() => {
                BlobOp::PutPageFromUrl
            }
            ("page", &Method::PUT) => BlobOp::PutPage,
            ("pagelist", &Method::GET | &Method::HEAD) => BlobOp::GetPageRanges,
            ("incrementalcopy", &Method::PUT) => BlobOp::IncrementalCopyBlob,
            ("undelete", &Method::PUT) => BlobOp::UndeleteBlob,
            ("expiry", &Method::PUT) => BlobOp::SetBlobExpiry,
            ("immutabilityPolicies" | "legalhold", _) => BlobOp::Unsupported,
            (
                "properties" | "metadata" | "lease" | "snapshot" | "copy" | "block" | "blocklist"
                | "appendblock" | "seal" | "tags" | "tier" | "page" | "pagelist"
                | "incrementalcopy" | "undelete" | "expiry",
                _,
            ) => return Err(StorageError::new(ErrorCode::UnsupportedHttpVerb)),
            (c, _) => return Err(StorageError::invalid_query("comp", c)),
        },
    };
    refuse_unimplemented(req, op)?;
    Ok((Some(container), Some(blob), op))
}

/// A request whose headers ask for a feature this emulator does not have is refused with
/// 501, never served as if the header were absent (that would acknowledge a write done
/// differently from what was asked, or answer a read the condition should have stopped).
fn refuse_unimplemented(req: &RequestParts, op: BlobOp) -> Result<()> {
    let header = |n: &str| req.header(n).map(str::trim).filter(|v| !v.is_empty());
    let not_implemented = |what: &str| {
        Err(StorageError::new(ErrorCode::NotImplemented)
            .with_message(format!("{what} is not supported by this emulator yet.")))
    };
    for (name, what) in [
        (
            "x-ms-encryption-key",
            "A customer-provided encryption key (x-ms-encryption-key)",
        ),
        (
            "x-ms-encryption-scope",
            "An encryption scope (x-ms-encryption-scope)",
        ),
        (
            "x-ms-immutability-policy-until-date",
            "An immutability policy (x-ms-immutability-policy-until-date)",
        ),
        ("x-ms-legal-hold", "A legal hold (x-ms-legal-hold)"),
        (
            "x-ms-expiry-option",
            "Blob expiry on a write (x-ms-expiry-option)",
        ),
    ] {
        if header(name).is_some() && !(op == BlobOp::SetBlobExpiry && name == "x-ms-expiry-option")
        {
            return not_implemented(what);
        }
    }
    if header("x-ms-seal-blob").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return not_implemented("Sealing the destination of a copy (x-ms-seal-blob)");
    }
    if op == BlobOp::PutBlobFromUrl
        && header("x-ms-copy-source-blob-properties")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    {
        return not_implemented(
            "Put Blob From URL without the source's properties (x-ms-copy-source-blob-properties: false)",
        );
    }
    Ok(())
}
