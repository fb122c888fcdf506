//! What each operation needs from a SAS.

use crate::router::{BlobOp, Operation, QueueOp};

/// Account SAS requirement: one of `resource_types` in `srt` and one of `any_of` in `sp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountNeed {
    pub resource_types: &'static str,
    pub any_of: &'static str,
}

const fn need(resource_types: &'static str, any_of: &'static str) -> AccountNeed {
    AccountNeed {
        resource_types,
        any_of,
    }
}

/// None: no SAS may perform the operation (ACLs are owner-only).
pub fn account_sas_needs(op: &Operation) -> Option<AccountNeed> {
    let op = match op {
        Operation::Queue(op) => op,
        Operation::Blob(op) => return blob_account_sas_needs(*op),
        Operation::Preflight => return None,
    };
    Some(match op {
        QueueOp::ListQueues => need("s", "l"),
        QueueOp::GetServiceProperties | QueueOp::GetServiceStats => need("s", "r"),
        QueueOp::SetServiceProperties => need("s", "w"),
        QueueOp::CreateQueue => need("c", "cw"),
        QueueOp::DeleteQueue => need("c", "d"),
        QueueOp::GetQueueMetadata => need("c", "r"),
        QueueOp::SetQueueMetadata => need("c", "w"),
        QueueOp::GetQueueAcl | QueueOp::SetQueueAcl => return None,
        // `d` is not valid for queue messages, so clearing them is a container-level grant.
        QueueOp::ClearMessages => need("c", "d"),
        QueueOp::PutMessage => need("o", "a"),
        QueueOp::GetMessages | QueueOp::DeleteMessage => need("o", "p"),
        QueueOp::PeekMessages => need("o", "r"),
        QueueOp::UpdateMessage => need("o", "u"),
    })
}

fn blob_account_sas_needs(op: BlobOp) -> Option<AccountNeed> {
    use BlobOp::*;
    Some(match op {
        ListContainers => need("s", "l"),
        GetServiceProperties | GetServiceStats => need("s", "r"),
        SetServiceProperties => need("s", "w"),
        GetAccountInfo => need("sco", "rwdxylacuptfi"),
        FindBlobsByTags => need("s", "f"),
        // Each subrequest is authorized on its own; the batch needs a valid SAS.
        SubmitBatch => need("s", "rwdxylacuptfi"),
        SubmitBatchInContainer => need("c", "rwdxylacuptfi"),
        CreateContainer => need("c", "cw"),
        GetContainerProperties | GetContainerMetadata => need("c", "r"),
        SetContainerMetadata | LeaseContainer => need("c", "w"),
        DeleteContainer => need("c", "d"),
        // Container ACLs need the account key; a user delegation key needs a token.
        GetContainerAcl | SetContainerAcl | GetUserDelegationKey => return None,
        ListBlobs => need("c", "l"),
        FindBlobsByTagsInContainer => need("c", "f"),
        // `c` creates new blobs only; the handlers refuse it for existing ones.
        PutBlob | CopyBlob | CopyBlobFromUrl | PutBlobFromUrl | PutBlock | PutBlockFromUrl
        | PutBlockList | SnapshotBlob | IncrementalCopyBlob => need("o", "cw"),
        UndeleteBlob => need("o", "w"),
        SetBlobExpiry => need("o", "w"),
        RestoreContainer => need("c", "w"),
        GetBlob | GetBlobProperties | GetBlobMetadata | GetBlockList | GetPageRanges => {
            need("o", "r")
        }
        DeleteBlob => need("o", "d"),
        SetBlobProperties | SetBlobMetadata | LeaseBlob | AbortCopyBlob | SealBlob
        | SetBlobTier | PutPage | PutPageFromUrl => need("o", "w"),
        AppendBlock | AppendBlockFromUrl => need("o", "aw"),
        GetBlobTags | SetBlobTags => need("o", "t"),
        Unsupported => return None,
    })
}

/// Blob service SAS letters; `blob_level` is false for a container SAS (`sr=c`) used on
/// a container operation. None: no service SAS may do it.
pub fn blob_sas_needs(op: &Operation, _blob_level: bool) -> Option<&'static str> {
    use BlobOp::*;
    let Operation::Blob(op) = op else {
        return None;
    };
    Some(match op {
        GetBlob | GetBlobProperties | GetBlobMetadata | GetBlockList | GetPageRanges => "r",
        // `c` creates new blobs only; the handlers refuse it for existing ones.
        PutBlob | CopyBlob | CopyBlobFromUrl | PutBlobFromUrl | PutBlock | PutBlockFromUrl
        | PutBlockList | SnapshotBlob | IncrementalCopyBlob => "cw",
        AppendBlock | AppendBlockFromUrl => "aw",
        DeleteBlob => "d",
        SetBlobProperties | SetBlobMetadata | LeaseBlob | AbortCopyBlob | SealBlob
        | SetBlobTier | PutPage | PutPageFromUrl | UndeleteBlob | SetBlobExpiry => "w",
        GetBlobTags | SetBlobTags => "t",
        ListBlobs => "l",
        FindBlobsByTagsInContainer => "f",
        SubmitBatchInContainer => "racwdxyltfmei",
        GetAccountInfo => "racwdxyltfmei",
        _ => return None,
    })
}

/// Delete Blob of a version needs `x` (delete version), a permanent delete `y`, instead
/// of `d`.
pub fn delete_need(
    op: &Operation,
    req: &crate::http::request::RequestParts,
) -> Option<&'static str> {
    if *op != Operation::Blob(BlobOp::DeleteBlob) {
        return None;
    }
    if req
        .query
        .get("deletetype")
        .is_some_and(|v| v.eq_ignore_ascii_case("permanent"))
    {
        return Some("y");
    }
    req.query.get("versionid").map(|_| "x")
}

/// Blob reads a `blob`-level public container allows anonymously.
pub fn anonymous_blob_op(op: BlobOp) -> bool {
    matches!(
        op,
        BlobOp::GetBlob
            | BlobOp::GetBlobProperties
            | BlobOp::GetBlobMetadata
            | BlobOp::GetBlockList
            | BlobOp::GetPageRanges
    )
}

/// What a `container`-level public container adds.
pub fn anonymous_container_op(op: BlobOp) -> bool {
    matches!(
        op,
        BlobOp::GetContainerProperties | BlobOp::GetContainerMetadata | BlobOp::ListBlobs
    )
}

/// Queue service SAS letters (`raup`); None for what a service SAS can never do.
pub fn queue_sas_needs(op: &Operation) -> Option<&'static str> {
    let Operation::Queue(op) = op else {
        return None;
    };
    match op {
        QueueOp::GetQueueMetadata | QueueOp::PeekMessages => Some("r"),
        QueueOp::PutMessage => Some("a"),
        QueueOp::UpdateMessage => Some("u"),
        QueueOp::GetMessages | QueueOp::DeleteMessage => Some("p"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let q = |op| Operation::Queue(op);
        assert_eq!(
            account_sas_needs(&q(QueueOp::PutMessage)),
            Some(need("o", "a"))
        );
        assert_eq!(account_sas_needs(&q(QueueOp::SetQueueAcl)), None);
        assert_eq!(queue_sas_needs(&q(QueueOp::GetMessages)), Some("p"));
        assert_eq!(queue_sas_needs(&q(QueueOp::CreateQueue)), None);
        assert_eq!(queue_sas_needs(&q(QueueOp::ListQueues)), None);
    }
}
