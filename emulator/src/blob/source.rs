//! Copy sources: the blob an `x-ms-copy-source` URL names, opened for reading with the
//! source range and source conditions applied. One path for Copy Blob, Copy Blob From URL,
//! Put Blob From URL, Put Block From URL and Append Block From URL.
//!
//! A URL that addresses this emulator's Blob endpoint is read from the store, authorized
//! by what the URL itself carries (a SAS, or the container's public access), exactly as a
//! Get Blob of that URL would be; any other host is fetched over HTTP.

use crate::auth::{self, AuthContext};
use crate::http::body::ByteStream;
use crate::http::request::{RequestParts, Service};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::tags::{self, Dialect, TagExpr};
use crate::router::{self, BlobOp, Operation};
use crate::state::Ctx;
use crate::store::blob::{BlobRecord, BlobType, ContentProperties};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use std::net::IpAddr;

/// The client for copy sources of other hosts: http, and https trusting the system's
/// roots plus `--copySourceCa`.
pub type RemoteClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

pub fn remote_client(tls: rustls::ClientConfig) -> RemoteClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

/// How the source must be authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Copy Blob: a source in the caller's own account needs nothing more (the destination
    /// request's credentials cover it, as Azure's Copy Blob page says).
    Copy,
    /// The From-URL operations: the source URL must authorize itself (SAS) or be public.
    FromUrl,
}

/// An opened copy source.
pub struct Source {
    /// What the source says about itself: type, content properties, metadata, and for a
    /// local source its committed block list and append count.
    pub record: BlobRecord,
    /// The bytes of the source (or of its range).
    pub stream: ByteStream,
    /// Bytes the stream will deliver.
    pub len: u64,
    /// A blob of this emulator: (account, container, blob, snapshot).
    pub local: Option<(String, String, String, String)>,
}

/// A refused source read, as Azure reports it: `CannotVerifyCopySource` with the status
/// the source answered.
fn cannot(status: StatusCode, message: impl Into<String>) -> StorageError {
    StorageError::new(ErrorCode::CannotVerifyCopySource)
        .with_status(status)
        .with_message(message)
}

fn mirror(e: StorageError) -> StorageError {
    let mut out = cannot(e.status, e.message);
    out.details = e.details;
    out
}

/// `x-ms-source-range: bytes=start-end` (end inclusive, or open).
pub fn source_range(ctx: &Ctx<'_>) -> Result<Option<(u64, Option<u64>)>> {
    match ctx.req.header("x-ms-source-range") {
        None => Ok(None),
        Some(v) => super::blobs::parse_range(v)
            .map(Some)
            .ok_or_else(|| StorageError::invalid_header("x-ms-source-range", v)),
    }
}

/// The source conditions, renamed to the headers a read of the source answers.
fn source_conditions(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    [
        ("x-ms-source-if-match", "if-match"),
        ("x-ms-source-if-none-match", "if-none-match"),
        ("x-ms-source-if-modified-since", "if-modified-since"),
        ("x-ms-source-if-unmodified-since", "if-unmodified-since"),
    ]
    .into_iter()
    .filter_map(|(from, to)| ctx.req.header(from).map(|v| (to, v.to_string())))
    .collect()
}

/// `x-ms-source-if-tags`, parsed (a malformed expression is refused before any read).
fn source_tag_condition(ctx: &Ctx<'_>) -> Result<Option<TagExpr>> {
    match ctx.req.header("x-ms-source-if-tags") {
        None => Ok(None),
        Some(v) => tags::parse(v, Dialect::Condition).map(Some).map_err(|e| {
            StorageError::invalid_header("x-ms-source-if-tags", v).with_message(e.to_string())
        }),
    }
}

/// `x-ms-copy-source-authorization: Bearer <token>` (the only scheme Azure takes there).
fn source_bearer<'a>(ctx: &'a Ctx<'_>) -> Result<Option<&'a str>> {
    match ctx.req.header("x-ms-copy-source-authorization") {
        None => Ok(None),
        Some(v) => auth::bearer(v).map(Some).ok_or_else(|| {
            StorageError::invalid_header("x-ms-copy-source-authorization", v)
                .with_message("Only the Bearer scheme is supported for the copy source.")
        }),
    }
}

/// Does `authority` address this emulator's Blob endpoint?
fn is_local(ctx: &Ctx<'_>, authority: &http::uri::Authority) -> bool {
    if ctx
        .req
        .host()
        .is_some_and(|h| h.eq_ignore_ascii_case(authority.as_str()))
    {
        return true;
    }
    let ours = ctx.app.blob_addr;
    if authority.port_u16().unwrap_or(80) != ours.port() {
        return false;
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == ours.ip())
}

/// `x-ms-copy-source` parsed; whether it addresses this emulator.
fn source_uri(ctx: &Ctx<'_>) -> Result<(http::Uri, bool)> {
    let url = ctx
        .req
        .header("x-ms-copy-source")
        .ok_or_else(|| StorageError::missing_header("x-ms-copy-source"))?;
    let bad_url = || StorageError::invalid_header("x-ms-copy-source", url);
    let uri: http::Uri = url.trim().parse().map_err(|_| bad_url())?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(bad_url());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(bad_url());
    }
    // This emulator speaks one scheme; the other at its address is not it.
    let ours = if ctx.app.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let local = is_local(ctx, authority) && scheme.eq_ignore_ascii_case(ours);
    Ok((uri, local))
}

/// Opens the source named by `x-ms-copy-source` (its `range`, when given).
pub async fn open(ctx: &Ctx<'_>, mode: Mode, range: Option<(u64, Option<u64>)>) -> Result<Source> {
    let (uri, local) = source_uri(ctx)?;
    if local {
        return open_local(ctx, mode, &uri, range);
    }
    open_remote(ctx, uri, range).await
}

/// A source blob of this emulator, authorized, its conditions met.
pub struct LocalSource {
    pub account: String,
    pub container: String,
    pub blob: String,
    /// Empty: the base blob.
    pub snapshot: String,
    pub record: BlobRecord,
}

impl LocalSource {
    pub fn name(&self) -> crate::store::blob::BlobName<'_> {
        crate::store::blob::BlobName {
            account: &self.account,
            container: &self.container,
            blob: &self.blob,
        }
    }
}

/// The source of `x-ms-copy-source` when it is a blob of this emulator (a copy that only
/// such a source allows: other hosts are refused).
pub fn resolve(ctx: &Ctx<'_>, mode: Mode) -> Result<LocalSource> {
    let (uri, local) = source_uri(ctx)?;
    if !local {
        return Err(StorageError::new(ErrorCode::NotImplemented)
            .with_message("This copy is supported by this emulator only from its own blobs."));
    }
    resolve_local(ctx, mode, &uri)
}

fn open_local(
    ctx: &Ctx<'_>,
    mode: Mode,
    uri: &http::Uri,
    range: Option<(u64, Option<u64>)>,
) -> Result<Source> {
    let LocalSource {
        account,
        container,
        blob,
        snapshot,
        record,
    } = resolve_local(ctx, mode, uri)?;
    let snapshot = snapshot.as_str();
    let store = &ctx.app.store.blobs;
    let size = record.len();
    let (start, len) = match range {
        None => (0, size),
        Some((start, _)) if start >= size => {
            return Err(cannot(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "The range specified is invalid for the current size of the copy source.",
            ))
        }
        Some((start, end)) => {
            let end = end.map_or(size - 1, |e| e.min(size - 1));
            (start, end - start + 1)
        }
    };
    let n = crate::store::blob::BlobName {
        account: &account,
        container: &container,
        blob: &blob,
    };
    let stream = ByteStream::Local(store.read_blob_range(n, snapshot, &record, start, len)?);
    let local = Some((
        account.clone(),
        container.clone(),
        blob.clone(),
        snapshot.to_string(),
    ));
    Ok(Source {
        record,
        stream,
        len,
        local,
    })
}

fn resolve_local(ctx: &Ctx<'_>, mode: Mode, uri: &http::Uri) -> Result<LocalSource> {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    if let Some(a) = uri.authority() {
        put("host", a.as_str());
    }
    put("x-ms-version", ctx.version);
    for (name, value) in source_conditions(ctx) {
        put(name, &value);
    }
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let parts = RequestParts::new(Service::Blob, Method::GET, target, headers, ctx.req.peer_ip);
    let route = router::route(&parts).map_err(mirror)?;
    if route.op != Operation::Blob(BlobOp::GetBlob) {
        return Err(cannot(
            StatusCode::BAD_REQUEST,
            "The copy source URL does not name a blob.",
        ));
    }
    let account = route.account.clone();
    let container = route.container.clone().unwrap_or_default();
    let blob = route.blob.clone().unwrap_or_default();
    let own_account = mode == Mode::Copy && account == ctx.route.account && !parts.query.has("sig");
    let auth_ctx = AuthContext {
        accounts: &ctx.app.config.accounts,
        clock: &ctx.app.clock,
        policies: ctx.app.as_ref(),
        oauth: ctx.app.config.oauth,
    };
    if let Some(token) = source_bearer(ctx)? {
        // The token authorizes the read; it arrived over this request's connection.
        let mut over = RequestParts::new(
            Service::Blob,
            Method::GET,
            target,
            parts.headers.clone(),
            ctx.req.peer_ip,
        );
        over.tls = ctx.req.tls;
        auth::bearer_token(&auth_ctx, &over, &route, token).map_err(mirror)?;
    } else if !own_account {
        auth::authorize(&auth_ctx, &parts, &route, ctx.version).map_err(mirror)?;
    }
    let store = &ctx.app.store.blobs;
    store
        .require_container(&account, &container)
        .map_err(mirror)?;
    let snapshot = match parts.query.get("versionid").filter(|v| !v.is_empty()) {
        Some(v) => {
            let n = crate::store::blob::BlobName {
                account: &account,
                container: &container,
                blob: &blob,
            };
            store.version_slot(n, v)?
        }
        None => parts.query.get("snapshot").unwrap_or("").to_string(),
    };
    let record = store
        .blob(&account, &container, &blob, &snapshot)?
        .ok_or_else(|| match mode {
            Mode::Copy => StorageError::new(ErrorCode::BlobNotFound)
                .with_message("The specified copy source blob does not exist."),
            Mode::FromUrl => cannot(
                StatusCode::NOT_FOUND,
                "The specified copy source blob does not exist.",
            ),
        })?;
    // An archived source is offline (Azure's rehydrating copy is not offered here).
    if record.tier.is_offline(ctx.app.clock.now_ms()) {
        return Err(crate::protocol::tiers::archived());
    }
    crate::protocol::conditions::check(&parts, Some((&record.etag, record.last_modified_ms)), true)
        .map_err(|_| StorageError::new(ErrorCode::SourceConditionNotMet))?;
    if let Some(expr) = source_tag_condition(ctx)? {
        if !expr.matches(&container, &record.tags) {
            return Err(StorageError::new(ErrorCode::SourceConditionNotMet));
        }
    }
    Ok(LocalSource {
        account,
        container,
        blob,
        snapshot,
        record,
    })
}

/// GETs a URL of another host (a SAS in it authorizes the read at the other end) with
/// the range and source conditions as HTTP headers.
async fn open_remote(
    ctx: &Ctx<'_>,
    uri: http::Uri,
    range: Option<(u64, Option<u64>)>,
) -> Result<Source> {
    let mut req = http::Request::get(uri);
    if let Some((start, end)) = range {
        let spec = match end {
            Some(e) => format!("bytes={start}-{e}"),
            None => format!("bytes={start}-"),
        };
        req = req.header("range", spec);
    }
    for (name, value) in source_conditions(ctx) {
        req = req.header(name, value);
    }
    if let Some(v) = ctx.req.header("x-ms-source-if-tags") {
        source_tag_condition(ctx)?;
        req = req.header("x-ms-if-tags", v);
    }
    if let Some(token) = source_bearer(ctx)? {
        req = req
            .header("authorization", format!("Bearer {token}"))
            .header("x-ms-version", ctx.version);
    }
    let req = req
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| cannot(StatusCode::BAD_REQUEST, e.to_string()))?;
    let resp = ctx.app.copy_client()?.request(req).await.map_err(|e| {
        // The innermost cause says why (refused, unknown CA, ...).
        let mut why = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            why = format!("{why}: {c}");
            cause = c.source();
        }
        cannot(
            StatusCode::NOT_FOUND,
            format!("The copy source could not be reached: {why}"),
        )
    })?;
    let status = resp.status();
    if status == StatusCode::NOT_MODIFIED || status == StatusCode::PRECONDITION_FAILED {
        return Err(StorageError::new(ErrorCode::SourceConditionNotMet));
    }
    // A server that ignored the range would hand over the wrong bytes.
    let wanted = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    if status != wanted {
        return Err(cannot(
            status,
            format!("The copy source answered {status}."),
        ));
    }
    let h = resp.headers().clone();
    let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let len = text("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let md5 = text("content-md5")
        .and_then(|v| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v).ok());
    let record = BlobRecord {
        blob_type: BlobType::Block,
        properties: ContentProperties {
            content_type: text("content-type"),
            content_encoding: text("content-encoding"),
            content_language: text("content-language"),
            content_md5: md5,
            cache_control: text("cache-control"),
            content_disposition: text("content-disposition"),
        },
        metadata: h
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().strip_prefix("x-ms-meta-")?.to_string(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect(),
        ..BlobRecord::uncommitted()
    };
    Ok(Source {
        record,
        stream: ByteStream::Remote(resp.into_body()),
        len,
        local: None,
    })
}
