//! Every Azure error the emulator can answer, with its HTTP status and `x-ms-error-code`.
//!
//! Handlers return `StorageError`; the listener renders it exactly once (see `response.rs`),
//! so the code in the header and in the XML body can never disagree.

use http::StatusCode;

macro_rules! error_codes {
    ($($name:ident => $status:ident, $msg:literal;)*) => {
        /// Azure's error codes, spelled as on the wire. The whole table is kept, used or
        /// not yet, so a new answer picks its code from Azure's list rather than inventing one.
        #[allow(dead_code)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($name,)* }

        impl ErrorCode {
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$name => StatusCode::$status,)* }
            }
            pub fn default_message(self) -> &'static str {
                match self { $(ErrorCode::$name => $msg,)* }
            }
            /// The code spelled `s` on the wire.
            pub fn from_name(s: &str) -> Option<ErrorCode> {
                match s { $(stringify!($name) => Some(ErrorCode::$name),)* _ => None }
            }
        }
    };
}

error_codes! {
    // 400
    MissingRequiredHeader => BAD_REQUEST, "An HTTP header that's mandatory for this request is not specified.";
    MissingRequiredQueryParameter => BAD_REQUEST, "A query parameter that's mandatory for this request is not specified.";
    MissingRequiredXmlNode => BAD_REQUEST, "An XML node that's mandatory for this request is not specified.";
    InvalidHeaderValue => BAD_REQUEST, "The value for one of the HTTP headers is not in the correct format.";
    InvalidQueryParameterValue => BAD_REQUEST, "Value for one of the query parameters specified in the request URI is invalid.";
    OutOfRangeQueryParameterValue => BAD_REQUEST, "One of the query parameters specified in the request URI is outside the permissible range.";
    OutOfRangeInput => BAD_REQUEST, "One of the request inputs is out of range.";
    InvalidInput => BAD_REQUEST, "One of the request inputs is not valid.";
    InvalidXmlDocument => BAD_REQUEST, "XML specified is not syntactically valid.";
    InvalidXmlNodeValue => BAD_REQUEST, "The value for one of the XML nodes is not in the correct format.";
    InvalidUri => BAD_REQUEST, "The requested URI does not represent any resource on the server.";
    InvalidResourceName => BAD_REQUEST, "The specifed resource name contains invalid characters.";
    InvalidMetadata => BAD_REQUEST, "The metadata specified is invalid. It has characters that are not permitted.";
    EmptyMetadataKey => BAD_REQUEST, "The key for one of the metadata key-value pairs is empty.";
    MetadataTooLarge => BAD_REQUEST, "The size of the specified metadata exceeds the maximum size permitted.";
    InvalidAuthenticationInfo => BAD_REQUEST, "Authentication information is not given in the correct format. Check the value of Authorization header.";
    UnsupportedHeader => BAD_REQUEST, "One of the HTTP headers specified in the request is not supported.";
    UnsupportedQueryParameter => BAD_REQUEST, "One of the query parameters specified in the request URI is not supported.";
    PopReceiptMismatch => BAD_REQUEST, "The specified pop receipt did not match the pop receipt for a dequeued message.";
    MessageTooLarge => BAD_REQUEST, "The message exceeds the maximum allowed size.";
    InvalidMarker => BAD_REQUEST, "The specified marker is invalid.";
    InvalidTag => BAD_REQUEST, "The tags specified are invalid. It contains characters that are not permitted.";
    TagsTooLarge => BAD_REQUEST, "The tags specified exceed the maximum permissible limit.";
    EmptyTagName => BAD_REQUEST, "The name of one of the tag key-value pairs is empty.";
    DuplicateTagNames => BAD_REQUEST, "The tags specified contain duplicate names.";
    Crc64Mismatch => BAD_REQUEST, "The CRC64 value specified in the request did not match with the CRC64 value calculated by the server.";
    Md5Mismatch => BAD_REQUEST, "The MD5 value specified in the request did not match with the MD5 value calculated by the server.";
    InvalidMd5 => BAD_REQUEST, "The MD5 value specified in the request is invalid. The MD5 value must be 128 bits and Base64-encoded.";
    InvalidBlockList => BAD_REQUEST, "The specified block list is invalid.";
    ExceedsMaxBatchRequestCount => BAD_REQUEST, "The batch operation exceeds maximum number of allowed subrequests.";
    AllBatchSubRequestsShouldBeSameApi => BAD_REQUEST, "All batch subrequests should be the same api.";
    AccessTierNotSupportedForBlobType => BAD_REQUEST, "The access tier is not supported for this blob type.";
    InvalidBlockId => BAD_REQUEST, "The specified block ID is invalid. The block ID must be Base64-encoded.";
    InvalidBlobOrBlock => BAD_REQUEST, "The specified blob or block content is invalid.";
    BlockListTooLong => BAD_REQUEST, "The block list may not contain more than 50,000 blocks.";
    ConditionHeadersNotSupported => BAD_REQUEST, "Condition headers are not supported.";
    // 401 / 403
    NoAuthenticationInformation => UNAUTHORIZED, "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.";
    AuthenticationFailed => FORBIDDEN, "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.";
    AuthorizationFailure => FORBIDDEN, "This request is not authorized to perform this operation.";
    AuthorizationPermissionMismatch => FORBIDDEN, "This request is not authorized to perform this operation using this permission.";
    AuthorizationServiceMismatch => FORBIDDEN, "This request is not authorized to perform this operation using this service.";
    AuthorizationResourceTypeMismatch => FORBIDDEN, "This request is not authorized to perform this operation using this resource type.";
    AuthorizationProtocolMismatch => FORBIDDEN, "This request is not authorized to perform this operation using this protocol.";
    AuthorizationSourceIPMismatch => FORBIDDEN, "This request is not authorized to perform this operation using this source IP.";
    CorsPreflightFailure => FORBIDDEN, "CORS not enabled or no matching rule found for this request.";
    // 404
    CannotVerifyCopySource => NOT_FOUND, "Could not verify the copy source within the specified time.";
    ResourceNotFound => NOT_FOUND, "The specified resource does not exist.";
    QueueNotFound => NOT_FOUND, "The specified queue does not exist.";
    MessageNotFound => NOT_FOUND, "The specified message does not exist.";
    ContainerNotFound => NOT_FOUND, "The specified container does not exist.";
    BlobNotFound => NOT_FOUND, "The specified blob does not exist.";
    OperationNotAllowedOnRootBlob => FORBIDDEN, "The specified operation is not allowed on root blob.";
    MutuallyExclusiveQueryParameters => BAD_REQUEST, "The query parameters snapshot and versionid are mutually exclusive.";
    // 405
    UnsupportedHttpVerb => METHOD_NOT_ALLOWED, "The resource doesn't support the specified HTTP verb.";
    // 409
    ResourceAlreadyExists => CONFLICT, "The specified resource already exists.";
    QueueAlreadyExists => CONFLICT, "The specified queue already exists.";
    QueueBeingDeleted => CONFLICT, "The specified queue is being deleted.";
    ContainerAlreadyExists => CONFLICT, "The specified container already exists.";
    BlobAlreadyExists => CONFLICT, "The specified blob already exists.";
    InvalidBlobType => CONFLICT, "The blob type is invalid for this operation.";
    BlobArchived => CONFLICT, "This operation is not permitted on an archived blob.";
    BlobBeingRehydrated => CONFLICT, "This operation is not permitted because the blob is being rehydrated.";
    LeaseAlreadyPresent => CONFLICT, "There is already a lease present.";
    LeaseIdMismatchWithLeaseOperation => CONFLICT, "The lease ID specified did not match the lease ID for the blob/container.";
    LeaseNotPresentWithLeaseOperation => CONFLICT, "There is currently no lease on the blob/container.";
    LeaseIsBreakingAndCannotBeAcquired => CONFLICT, "There is already a lease present, and it is being broken.";
    LeaseIsBreakingAndCannotBeChanged => CONFLICT, "The lease is being broken and cannot be changed.";
    LeaseIsBrokenAndCannotBeRenewed => CONFLICT, "The lease has been broken and cannot be renewed.";
    CopyIdMismatch => CONFLICT, "The specified copy ID did not match the copy ID for the pending copy operation.";
    NoPendingCopyOperation => CONFLICT, "There is currently no pending copy operation.";
    SnapshotsPresent => CONFLICT, "This operation is not permitted because the blob has snapshots.";
    BlobIsSealed => CONFLICT, "The specified blob is sealed, and its contents can't be modified unless the blob is re-created after a delete.";
    IncrementalCopyBlobMismatch => CONFLICT, "The specified source blob is different than the copy source of the existing incremental copy blob.";
    IncrementalCopyOfEarlierSnapshotNotAllowed => CONFLICT, "The specified snapshot is earlier than the last snapshot copied into the incremental copy blob.";
    IncrementalCopySourceMustBeSnapshot => CONFLICT, "The source for incremental copy request must be a snapshot.";
    InvalidSourceBlobType => CONFLICT, "The copy source blob type is invalid for this operation.";
    OperationNotAllowedOnIncrementalCopyBlob => CONFLICT, "The specified operation is not allowed on an incremental copy blob.";
    BlobSnapshotNotSoftDeleted => CONFLICT, "The specified blob snapshot or version is not soft-deleted.";
    PermanentDeleteNotEnabled => CONFLICT, "Permanent delete is not enabled on this account (DeleteRetentionPolicy/AllowPermanentDelete).";
    PreviousSnapshotNotFound => CONFLICT, "The previous snapshot is not found.";
    PreviousSnapshotCannotBeNewer => BAD_REQUEST, "The prevsnapshot query parameter value cannot be newer than snapshot query parameter value.";
    SequenceNumberIncrementTooLarge => CONFLICT, "The sequence number increment cannot be performed because it would result in overflow of the sequence number.";
    BlockCountExceedsLimit => CONFLICT, "The uncommitted block count cannot exceed the maximum limit of 100,000 blocks.";
    // 412 / 416
    ConditionNotMet => PRECONDITION_FAILED, "The condition specified using HTTP conditional header(s) is not met.";
    SourceConditionNotMet => PRECONDITION_FAILED, "The source condition specified using HTTP conditional header(s) is not met.";
    LeaseIdMissing => PRECONDITION_FAILED, "There is currently a lease on the blob/container and no lease ID was specified in the request.";
    LeaseIdMismatchWithBlobOperation => PRECONDITION_FAILED, "The lease ID specified did not match the lease ID for the blob.";
    LeaseIdMismatchWithContainerOperation => PRECONDITION_FAILED, "The lease ID specified did not match the lease ID for the container.";
    LeaseNotPresentWithBlobOperation => PRECONDITION_FAILED, "There is currently no lease on the blob.";
    LeaseNotPresentWithContainerOperation => PRECONDITION_FAILED, "There is currently no lease on the container.";
    LeaseLost => PRECONDITION_FAILED, "A lease ID was specified, but the lease for the blob/container has expired.";
    AppendPositionConditionNotMet => PRECONDITION_FAILED, "The append position condition specified was not met.";
    MaxBlobSizeConditionNotMet => PRECONDITION_FAILED, "The max blob size condition specified was not met.";
    SequenceNumberConditionNotMet => PRECONDITION_FAILED, "The sequence number condition specified was not met.";
    InvalidPageRange => RANGE_NOT_SATISFIABLE, "The page range specified is invalid.";
    InvalidRange => RANGE_NOT_SATISFIABLE, "The range specified is invalid for the current size of the resource.";
    // 411 / 413
    MissingContentLengthHeader => LENGTH_REQUIRED, "The Content-Length header was not specified.";
    RequestBodyTooLarge => PAYLOAD_TOO_LARGE, "The request body is too large and exceeds the maximum permissible limit.";
    // 500 / 501 / 503
    InternalError => INTERNAL_SERVER_ERROR, "The server encountered an internal error. Please retry the request.";
    OperationTimedOut => INTERNAL_SERVER_ERROR, "The operation could not be completed within the permitted time.";
    NotImplemented => NOT_IMPLEMENTED, "The requested operation is not implemented on this emulator yet.";
    ServerBusy => SERVICE_UNAVAILABLE, "The server is currently unable to receive requests. Please retry your request.";
}

/// One error answer: the code, an optional more specific message, and the detail elements
/// that Azure adds to the XML body (QueryParameterName, MinimumAllowed, ...).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct StorageError {
    pub code: ErrorCode,
    pub status: StatusCode,
    pub message: String,
    pub details: Vec<(&'static str, String)>,
    /// Headers the error response carries besides the standard ones.
    pub headers: Vec<(&'static str, String)>,
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    pub fn new(code: ErrorCode) -> Self {
        StorageError {
            code,
            status: code.status(),
            message: code.default_message().to_string(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_detail(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.details.push((name, value.into()));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn invalid_header(name: &str, value: &str) -> Self {
        Self::new(ErrorCode::InvalidHeaderValue)
            .with_detail("HeaderName", name)
            .with_detail("HeaderValue", value)
    }

    pub fn missing_header(name: &str) -> Self {
        Self::new(ErrorCode::MissingRequiredHeader).with_detail("HeaderName", name)
    }

    pub fn invalid_query(name: &str, value: &str) -> Self {
        Self::new(ErrorCode::InvalidQueryParameterValue)
            .with_detail("QueryParameterName", name)
            .with_detail("QueryParameterValue", value)
    }

    pub fn missing_query(name: &str) -> Self {
        Self::new(ErrorCode::MissingRequiredQueryParameter).with_detail("QueryParameterName", name)
    }

    pub fn out_of_range_query(name: &str, value: &str, min: i64, max: i64) -> Self {
        Self::new(ErrorCode::OutOfRangeQueryParameterValue)
            .with_detail("QueryParameterName", name)
            .with_detail("QueryParameterValue", value)
            .with_detail("MinimumAllowed", min.to_string())
            .with_detail("MaximumAllowed", max.to_string())
    }

    pub fn xml(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidXmlDocument).with_detail("Reason", reason)
    }

    pub fn auth_failed(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::AuthenticationFailed).with_detail("AuthenticationErrorDetail", detail)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        // The cause goes to the log, never to the client.
        tracing::error!(error = %err, "internal error");
        Self::new(ErrorCode::InternalError)
    }
}

impl From<ErrorCode> for StorageError {
    fn from(code: ErrorCode) -> Self {
        StorageError::new(code)
    }
}
