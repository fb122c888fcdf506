//! The listener: accept loop, HTTP/1.1 connections, and the one-way flow of each request
//! (router → auth → handler → response). The only module besides `response` that sees
//! hyper types.

use crate::auth::{self, AuthContext};
use crate::faults::{self, Act};
use crate::http::body::Body;
use crate::http::cors;
use crate::http::header_case::{MetaNames, Watched};
use crate::http::request::{RequestParts, Service};
use crate::http::response::{date_header, error_reply, Reply, ResBody};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::version;
use crate::router::{self, Operation, Route};
use crate::state::{AppState, Ctx};
use crate::{admin, blob, queue};
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::Instrument;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves one port until `shutdown` flips, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    app: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    match app.tls.clone() {
                        None => connection(stream, false, service, peer, app, watcher).await,
                        Some(acceptor) => {
                            // A client that never finishes its handshake is dropped like one
                            // that never sends a request head.
                            let timeout = app.config.header_timeout;
                            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => connection(tls, true, service, peer, app, watcher).await,
                                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!("TLS handshake timed out"),
                            }
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish in time");
    }
}

/// One HTTP/1.1 connection, plain or decrypted.
async fn connection<S>(
    stream: S,
    tls: bool,
    service: Service,
    peer: SocketAddr,
    app: Arc<AppState>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = app.config.header_timeout;
    let names = MetaNames::default();
    let stream = Watched::new(stream, names.clone());
    let svc = service_fn(move |req| {
        let app = app.clone();
        let names = names.clone();
        async move { handle(&app, service, peer, tls, &names, req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A fault rule's reset: the connection is closed without an answer.
#[derive(Debug)]
pub struct FaultReset;

impl std::fmt::Display for FaultReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injection: connection reset")
    }
}

impl std::error::Error for FaultReset {}

/// How far a request got: its route, who it turned out to be, and a fault rule's part.
struct Outcome {
    route: Option<Route>,
    principal: &'static str,
    fault: Option<(u64, Act)>,
    result: Result<Reply>,
}

impl Outcome {
    fn early(route: Option<Route>, result: Result<Reply>) -> Outcome {
        Outcome {
            route,
            principal: "none",
            fault: None,
            result,
        }
    }
}

async fn handle(
    app: &Arc<AppState>,
    service: Service,
    peer: SocketAddr,
    tls: bool,
    names: &MetaNames,
    req: Request<Incoming>,
) -> std::result::Result<Response<ResBody>, FaultReset> {
    let started = Instant::now();
    let (head, body) = req.into_parts();
    let lower_meta: Vec<String> = head
        .headers
        .keys()
        .filter_map(|k| k.as_str().strip_prefix("x-ms-meta-"))
        .map(str::to_string)
        .collect();
    let meta_case = if lower_meta.is_empty() {
        Vec::new()
    } else {
        names.take_matching(&lower_meta).unwrap_or_default()
    };
    let target = head
        .uri
        .path_and_query()
        .map_or(head.uri.path(), |pq| pq.as_str());
    // Either service through either port (the console reaches both from one origin).
    let (service, target) = admin::through_prefix(target).unwrap_or((service, target));
    let mut parts = RequestParts::new(service, head.method, target, head.headers, peer.ip());
    parts.meta_case = meta_case;
    parts.tls = tls;
    let request_id = uuid::Uuid::new_v4().to_string();
    parts.request_id = request_id.clone();
    let head_request = parts.method == http::Method::HEAD;
    let span = tracing::debug_span!("request", id = %request_id, method = %parts.method, path = %parts.raw_path);
    let admin = admin::is_admin_path(&parts.raw_path);
    let arrived = app.clock.now_ms();

    let (version, outcome) = async {
        let version = version::resolve(parts.header("x-ms-version"), app.config.strict_version);
        let outcome = match &version {
            Ok(v) => process(app, &parts, v, body).await,
            Err(e) => Outcome::early(None, Err(e.clone())),
        };
        (
            version.unwrap_or_else(|_| crate::config::LATEST_VERSION.to_string()),
            outcome,
        )
    }
    .instrument(span.clone())
    .await;
    let Outcome {
        route,
        principal,
        fault,
        result,
    } = outcome;

    let now = app.clock.now_ms();
    let mut string_to_sign = None;
    let mut reply = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() && fault.is_none() {
                tracing::warn!(parent: &span, code = e.code.as_str(), "request failed");
            }
            if app.requests.enabled() {
                string_to_sign = e
                    .details
                    .iter()
                    .find(|(n, _)| *n == "AuthenticationErrorDetail")
                    .and_then(|(_, d)| crate::request_log::string_to_sign_of(d));
            }
            error_reply(&e, &request_id, now, head_request)
        }
    };
    if let Some(route) = &route {
        if route.op != Operation::Preflight {
            if let Ok(props) = app
                .store
                .service_properties(&route.account, route.service.name())
            {
                cors::response_headers(&parts, &props.cors, &mut reply);
            }
        }
    }
    if !reply.meta_case.is_empty() {
        names.set_response(std::mem::take(&mut reply.meta_case));
    }
    let op = route.as_ref().map(|r| r.op.name()).unwrap_or("-");
    let micros = started.elapsed().as_micros() as u64;
    tracing::debug!(parent: &span, op, status = reply.status.as_u16(), micros, "served");
    let reset = matches!(fault, Some((_, Act::Reset)));
    if !admin {
        let bytes_in = parts
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let bytes_out = http_body::Body::size_hint(&reply.body)
            .exact()
            .filter(|n| *n > 0)
            .or(reply.head_length.map(|_| 0))
            .unwrap_or(0);
        let status = if reset { 0 } else { reply.status.as_u16() };
        app.metrics
            .record(service.name(), op, status, micros, bytes_in, bytes_out);
    }
    if app.requests.enabled() && !admin {
        let error_code = reply
            .headers
            .iter()
            .find(|(n, _)| n.as_str() == "x-ms-error-code")
            .and_then(|(_, v)| v.to_str().ok())
            .map(str::to_string);
        app.requests.push(crate::request_log::Entry {
            seq: 0,
            time: crate::clock::iso8601_7(arrived),
            service: service.name(),
            method: parts.method.to_string(),
            account: route
                .as_ref()
                .map(|r| r.account.clone())
                .unwrap_or_default(),
            operation: op,
            resource: route.as_ref().map(resource_of).unwrap_or_default(),
            status: if reset { 0 } else { reply.status.as_u16() },
            error_code: if reset {
                Some("ConnectionReset".into())
            } else {
                error_code
            },
            latency_micros: micros,
            principal,
            request_id: request_id.clone(),
            client_request_id: parts.header("x-ms-client-request-id").map(str::to_string),
            fault: fault.as_ref().map(|(id, _)| *id),
            string_to_sign,
        });
    }
    if reset {
        return Err(FaultReset);
    }
    if let Some((_, Act::Cut(after))) = fault {
        reply.body = crate::http::response::cut_body(reply.body, after);
    }
    Ok(finish(
        reply,
        &request_id,
        &version,
        parts.header("x-ms-client-request-id"),
        now,
    ))
}

/// `queue`, `container` or `container/blob`.
fn resource_of(route: &Route) -> String {
    match (&route.queue, &route.container, &route.blob) {
        (Some(q), _, _) => q.clone(),
        (None, Some(c), Some(b)) => format!("{c}/{b}"),
        (None, Some(c), None) => c.clone(),
        _ => String::new(),
    }
}

/// The largest body a control request may carry (a fault rule is a few hundred bytes).
const ADMIN_MAX_BODY: usize = 64 * 1024;

/// Route, apply fault rules, authenticate and run one request.
async fn process(
    app: &Arc<AppState>,
    parts: &RequestParts,
    version: &str,
    body: Incoming,
) -> Outcome {
    if admin::is_admin_path(&parts.raw_path) {
        let body = match collect(
            parts,
            Body::new(body, app.config.body_timeout),
            ADMIN_MAX_BODY,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => return Outcome::early(None, Err(e)),
        };
        return Outcome::early(None, admin::handle(app, parts, body).await);
    }
    let route = match router::route(parts) {
        Ok(r) => r,
        Err(e) => return Outcome::early(None, Err(e)),
    };
    let decision = if route.op == Operation::Preflight || app.faults.is_empty() {
        None
    } else {
        let method = parts.method.as_str();
        let resource = resource_of(&route);
        app.faults.decide(&faults::Target {
            service: route.service,
            account: &route.account,
            operation: route.op.name(),
            method,
            resource: &resource,
        })
    };
    let mut fault = None;
    if let Some(d) = decision {
        if let Some(latency) = d.latency {
            tokio::time::sleep(latency).await;
        }
        match d.act {
            // Refused before anything is read or written: state stays as it was.
            Act::Error(e) => {
                return Outcome {
                    route: Some(route),
                    principal: "none",
                    fault: Some((d.rule, Act::Pass)),
                    result: Err(*e),
                }
            }
            Act::Reset => {
                return Outcome {
                    route: Some(route),
                    principal: "none",
                    fault: Some((d.rule, Act::Reset)),
                    result: Ok(Reply::empty(http::StatusCode::OK)),
                }
            }
            act => fault = Some((d.rule, act)),
        }
    }
    let (principal, result) = run(app, parts, &route, version, body).await;
    Outcome {
        route: Some(route),
        principal,
        fault,
        result,
    }
}

async fn run(
    app: &Arc<AppState>,
    parts: &RequestParts,
    route: &Route,
    version: &str,
    body: Incoming,
) -> (&'static str, Result<Reply>) {
    // Shared with every other request; a state snapshot or restore waits for it.
    let _gate = app.gate.read().await;
    if route.op == Operation::Preflight {
        let result = app
            .store
            .service_properties(&route.account, route.service.name())
            .and_then(|props| cors::preflight(parts, &props.cors));
        return ("anonymous", result);
    }
    let auth_ctx = AuthContext {
        accounts: &app.config.accounts,
        clock: &app.clock,
        policies: app.as_ref(),
        oauth: app.config.oauth,
    };
    let principal = match auth::authorize(&auth_ctx, parts, route, version) {
        Ok(p) => p,
        Err(e) => return ("none", Err(e)),
    };
    let kind = match &principal {
        auth::Principal::Owner => "key",
        auth::Principal::Sas { .. } => "sas",
        auth::Principal::Token(_) => "token",
        auth::Principal::Anonymous => "anonymous",
    };
    let ctx = Ctx {
        app,
        req: parts,
        route,
        version,
        principal,
    };
    let result = match &route.op {
        Operation::Queue(op) => {
            match collect(
                parts,
                Body::new(body, app.config.body_timeout),
                queue::MAX_BODY,
            )
            .await
            {
                Ok(body) => queue::dispatch(&ctx, op, body).await,
                Err(e) => Err(e),
            }
        }
        Operation::Blob(op) => {
            blob::dispatch(&ctx, *op, Body::new(body, app.config.body_timeout)).await
        }
        Operation::Preflight => Err(StorageError::new(ErrorCode::InternalError)),
    };
    (kind, result)
}

/// Reads a small request body, refusing more than `max` bytes before reading them.
async fn collect(parts: &RequestParts, body: Body, max: usize) -> Result<Bytes> {
    if let Some(len) = parts.header("content-length") {
        let len: u64 = len
            .trim()
            .parse()
            .map_err(|_| StorageError::invalid_header("Content-Length", len))?;
        if len > max as u64 {
            return Err(StorageError::new(ErrorCode::RequestBodyTooLarge)
                .with_detail("MaxLimit", max.to_string()));
        }
    }
    body.collect(max).await
}

/// Adds what every response carries and converts to hyper's type.
fn finish(
    reply: Reply,
    request_id: &str,
    version: &str,
    client_request_id: Option<&str>,
    now: i64,
) -> Response<ResBody> {
    let mut resp = Response::new(reply.body);
    *resp.status_mut() = reply.status;
    let h = resp.headers_mut();
    for (name, value) in reply.headers {
        h.append(name, value);
    }
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put("x-ms-request-id", request_id);
    put("x-ms-version", version);
    put("date", &date_header(now));
    put("server", "Azure-Storage-Emulator-Rust/0.1");
    if let Some(id) = client_request_id.filter(|id| id.len() <= 1024) {
        put("x-ms-client-request-id", id);
    }
    if let Some(len) = reply.head_length {
        put("content-length", &len.to_string());
    }
    resp
}
