//! Emulator-only endpoints under `/_emulator/` (a path no account name can take):
//! health (anonymous); the controllable clock, per-account features, fault rules and the
//! request log, metrics, reset and state snapshots (all need an account key).

use crate::auth::shared_key;
use crate::http::request::RequestParts;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::state::AppState;
use base64::Engine;
use http::{Method, StatusCode};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "/_emulator";

pub fn is_admin_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/_emulator/")
}

/// `/_emulator/queue/<path>` and `/_emulator/blob/<path>`: a request of that service at
/// `<path>`, whichever port it came to, authorized as any other (the web console uses them
/// to reach both services from one origin without CORS rules).
pub fn through_prefix(target: &str) -> Option<(crate::http::request::Service, &str)> {
    use crate::http::request::Service;
    for (prefix, service) in [
        ("/_emulator/queue/", Service::Queue),
        ("/_emulator/blob/", Service::Blob),
    ] {
        if target.starts_with(prefix) {
            // Keeps the `/` the path starts with.
            return Some((service, &target[prefix.len() - 1..]));
        }
    }
    None
}

/// Accepts `x-ms-emulator-key: <account key>` or a Shared Key signature by any account.
fn authenticate(app: &AppState, req: &RequestParts) -> Result<()> {
    if let Some(key) = req.header("x-ms-emulator-key") {
        let given = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .unwrap_or_default();
        if app.config.accounts.iter().any(|a| {
            a.keys
                .iter()
                .any(|k| bool::from(k.as_slice().ct_eq(&given)))
        }) {
            return Ok(());
        }
        return Err(StorageError::auth_failed(
            "The x-ms-emulator-key header does not match any account key.",
        ));
    }
    if let Some(auth) = req.header("authorization") {
        if let Some((account, sig)) = auth
            .strip_prefix("SharedKey ")
            .and_then(|r| r.trim().split_once(':'))
        {
            if let Some(acct) = app.config.accounts.get(account) {
                let version = req
                    .header("x-ms-version")
                    .unwrap_or(crate::config::LATEST_VERSION);
                let sts = shared_key::string_to_sign(req, &acct.name, &req.raw_path, version, "");
                if acct.keys.iter().any(|k| shared_key::verify(k, &sts, sig)) {
                    return Ok(());
                }
                return Err(StorageError::auth_failed(format!(
                    "Server used following string to sign: '{sts}'."
                )));
            }
        }
        return Err(StorageError::auth_failed(
            "The Authorization header is not a valid Shared Key signature.",
        ));
    }
    Err(StorageError::auth_failed(
        "The control endpoints need an account key: send x-ms-emulator-key or sign with Shared Key.",
    ))
}

fn clock_json(app: &AppState) -> String {
    format!(
        "{{\"now\":\"{}\",\"nowMs\":{},\"offsetSeconds\":{}}}",
        crate::clock::iso8601_7(app.clock.now_ms()),
        app.clock.now_ms(),
        app.clock.offset_ms() as f64 / 1000.0
    )
}

/// `account=` of a features request (default: the first account).
fn feature_account(app: &AppState, req: &RequestParts) -> Result<String> {
    match req.query.get("account") {
        Some(a) if app.config.accounts.get(a).is_some() => Ok(a.to_string()),
        Some(a) => Err(StorageError::invalid_query("account", a)),
        None => app
            .config
            .accounts
            .first()
            .map(|a| a.name.clone())
            .ok_or_else(|| StorageError::internal("no accounts")),
    }
}

fn features_json(account: &str, f: crate::store::blob::Features) -> String {
    format!(
        "{{\"account\":\"{account}\",\"blobVersioning\":{},\"containerSoftDeleteDays\":{}}}",
        f.versioning,
        f.container_retention_days.unwrap_or(0)
    )
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Reply> {
    serde_json::to_string(value)
        .map(|s| Reply::json(status, s))
        .map_err(StorageError::internal)
}

/// `GET /_emulator/requests`: the newest `limit` (default 100) entries, filtered by
/// `status` (a code, or `errors` for 400 and up) and `operation`; `stream=true` (or
/// `Accept: text/event-stream`) follows new ones live as server-sent events.
fn requests(app: &AppState, req: &RequestParts) -> Result<Reply> {
    let limit = match req.query.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| StorageError::invalid_query("limit", v))?,
    };
    let status = req.query.get("status").map(str::to_string);
    let exact: Option<u16> = match status.as_deref() {
        None | Some("errors") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| StorageError::invalid_query("status", v))?,
        ),
    };
    let errors_only = status.as_deref() == Some("errors");
    let operation = req.query.get("operation").map(str::to_string);
    let keep = move |e: &crate::request_log::Entry| {
        exact.is_none_or(|s| e.status == s)
            && (!errors_only || e.status >= 400 || e.status == 0)
            && operation
                .as_deref()
                .is_none_or(|o| e.operation.eq_ignore_ascii_case(o))
    };
    let stream = req
        .query
        .get("stream")
        .is_some_and(|v| v == "true" || v == "1")
        || req
            .header("accept")
            .is_some_and(|a| a.contains("text/event-stream"));
    if !stream {
        #[derive(serde::Serialize)]
        struct List {
            requests: Vec<crate::request_log::Entry>,
        }
        return json(
            StatusCode::OK,
            &List {
                requests: app.requests.recent(limit, keep),
            },
        );
    }
    let mut live = app.requests.subscribe();
    let mut shutdown = app.shutdown.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        if tx
            .send(Ok(bytes::Bytes::from_static(b": live\n\n")))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let entry = tokio::select! {
                e = live.recv() => e,
                _ = shutdown.changed() => return,
            };
            let chunk = match entry {
                Ok(e) if keep(&e) => match serde_json::to_string(&e) {
                    Ok(j) => format!("event: request\ndata: {j}\n\n"),
                    Err(_) => continue,
                },
                Ok(_) => continue,
                // A slow reader missed some: say so rather than pretend.
                Err(RecvError::Lagged(n)) => format!("event: lagged\ndata: {n}\n\n"),
                Err(RecvError::Closed) => return,
            };
            if tx.send(Ok(bytes::Bytes::from(chunk))).await.is_err() {
                return;
            }
        }
    });
    let mut r = Reply::empty(StatusCode::OK);
    r.body = crate::http::response::channel_body(rx);
    r.set("content-type", "text/event-stream")
        .set("cache-control", "no-cache");
    Ok(r)
}

fn faults(app: &AppState, req: &RequestParts, path: &str, body: &[u8]) -> Result<Reply> {
    authenticate(app, req)?;
    #[derive(serde::Serialize)]
    struct List {
        rules: Vec<crate::faults::RuleView>,
    }
    let id = path
        .strip_prefix("/_emulator/faults/")
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| StorageError::new(ErrorCode::ResourceNotFound))
        })
        .transpose()?;
    match (&req.method, id) {
        (&Method::GET, None) => json(
            StatusCode::OK,
            &List {
                rules: app.faults.list(),
            },
        ),
        (&Method::GET, Some(id)) => {
            let rule = app
                .faults
                .list()
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| StorageError::new(ErrorCode::ResourceNotFound))?;
            json(StatusCode::OK, &rule)
        }
        (&Method::POST, None) => {
            let spec: crate::faults::RuleSpec = serde_json::from_slice(body).map_err(|e| {
                StorageError::new(ErrorCode::InvalidInput)
                    .with_message(format!("The fault rule is not valid JSON for a rule: {e}"))
            })?;
            let rule = app.faults.add(spec)?;
            json(StatusCode::CREATED, &rule)
        }
        (&Method::DELETE, id) => {
            if !app.faults.remove(id) {
                return Err(StorageError::new(ErrorCode::ResourceNotFound));
            }
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        _ => Err(StorageError::new(ErrorCode::UnsupportedHttpVerb)),
    }
}

/// `/_emulator/events[/{name}]`: blob event subscriptions (see `crate::events`).
async fn events(
    app: &std::sync::Arc<AppState>,
    req: &RequestParts,
    path: &str,
    body: &[u8],
) -> Result<Reply> {
    let name = path
        .strip_prefix("/_emulator/events")
        .unwrap_or_default()
        .trim_start_matches('/');
    match (&req.method, name) {
        (&Method::GET, "") => {
            #[derive(serde::Serialize)]
            struct List {
                subscriptions: Vec<crate::store::events::Subscription>,
                waiting: usize,
            }
            json(
                StatusCode::OK,
                &List {
                    subscriptions: app.store.events.subscriptions().to_vec(),
                    waiting: app.store.events.waiting_count(),
                },
            )
        }
        (&Method::POST, "") => {
            let sub: crate::store::events::Subscription =
                serde_json::from_slice(body).map_err(|e| {
                    StorageError::new(ErrorCode::InvalidInput).with_message(format!(
                        "The subscription is not valid JSON for a subscription: {e}"
                    ))
                })?;
            let sub = subscribe(app, sub).await?;
            json(StatusCode::CREATED, &sub)
        }
        (&Method::GET, n) => {
            let subs = app.store.events.subscriptions();
            let sub = subs
                .iter()
                .find(|s| s.name == n)
                .ok_or_else(|| StorageError::new(ErrorCode::ResourceNotFound))?;
            json(StatusCode::OK, sub)
        }
        (&Method::DELETE, n) => {
            let name = (!n.is_empty()).then_some(n);
            if !app.store.events.delete_subscription(name).await? {
                return Err(StorageError::new(ErrorCode::ResourceNotFound));
            }
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        _ => Err(StorageError::new(ErrorCode::UnsupportedHttpVerb)),
    }
}

/// Checks a subscription, creates its queue if missing and stores it (replacing one of
/// its name).
pub async fn subscribe(
    app: &AppState,
    sub: crate::store::events::Subscription,
) -> Result<crate::store::events::Subscription> {
    let sub = crate::events::validate(sub, &app.config)?;
    subscribe_in(&app.store, sub.clone()).await?;
    Ok(sub)
}

/// `subscribe` on a store (at start, before the listeners are up).
pub async fn subscribe_in(
    store: &crate::store::Store,
    sub: crate::store::events::Subscription,
) -> Result<()> {
    match store
        .queues
        .create_queue(&sub.queue_account, &sub.queue, Default::default())
        .await
    {
        // Exists (with metadata of its own): it is used as it is.
        Err(e) if e.status == StatusCode::CONFLICT => {}
        r => {
            r?;
        }
    }
    store.events.put_subscription(sub).await
}

/// The Prometheus text of `GET /_emulator/metrics`.
pub fn metrics_text(app: &AppState) -> Result<String> {
    let mut queues = Vec::new();
    let mut blobs = Vec::new();
    for account in app.config.accounts.iter() {
        let (n, bytes) = app.store.blobs.usage(&account.name, METRICS_SCAN_LIMIT)?;
        blobs.push((account.name.clone(), n, bytes));
        let list = app
            .store
            .queues
            .list_queues(&account.name, "", None, usize::MAX);
        for (name, _) in list.queues {
            if let Ok(info) = app.store.queues.queue_info(&account.name, &name) {
                queues.push((account.name.clone(), name, info.approximate_count));
            }
        }
    }
    let disk = app
        .config
        .location
        .as_deref()
        .map_or(0, crate::metrics::folder_bytes);
    Ok(app.metrics.render(
        &queues,
        &blobs,
        app.store.flush_stats(),
        disk,
        app.store.events.waiting_count(),
    ))
}

/// How long a snapshot or restore waits for the requests in flight to finish.
const GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `work` on the store with every request and background task excluded.
pub async fn exclusive<T: Send + 'static>(
    app: &std::sync::Arc<AppState>,
    work: impl FnOnce(&crate::store::Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let Ok(guard) = tokio::time::timeout(GATE_WAIT, app.gate.write()).await else {
        return Err(StorageError::new(ErrorCode::ServerBusy).with_message(
            "Requests in flight did not finish within 30 seconds; nothing was changed.",
        ));
    };
    let owned = app.clone();
    let result = tokio::task::spawn_blocking(move || work(&owned.store))
        .await
        .map_err(StorageError::internal)?;
    drop(guard);
    result
}

/// `/_emulator/snapshots[/{name}[/restore]]`: named snapshots of the whole state.
async fn snapshots(
    app: &std::sync::Arc<AppState>,
    req: &RequestParts,
    path: &str,
) -> Result<Reply> {
    let rest = path
        .strip_prefix("/_emulator/snapshots")
        .unwrap_or_default()
        .trim_start_matches('/');
    let (name, action) = match rest.split_once('/') {
        Some((n, a)) => (n, Some(a)),
        None => (rest, None),
    };
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .into_owned();
    // Names are checked by the store, where they become folder names.
    match (&req.method, name.as_str(), action) {
        (&Method::GET, "", None) => {
            #[derive(serde::Serialize)]
            struct List {
                snapshots: Vec<crate::store::SnapshotInfo>,
            }
            json(
                StatusCode::OK,
                &List {
                    snapshots: app.store.list_snapshots()?,
                },
            )
        }
        (&Method::GET, n, None) if !n.is_empty() => json(StatusCode::OK, &app.store.snapshot(n)?),
        (&Method::POST | &Method::PUT, n, None) if !n.is_empty() => {
            let n = n.to_string();
            let info = exclusive(app, move |store| store.create_snapshot(&n)).await?;
            json(StatusCode::CREATED, &info)
        }
        (&Method::POST, n, Some("restore")) if !n.is_empty() => {
            let n = n.to_string();
            let info = exclusive(app, move |store| store.restore_snapshot(&n)).await?;
            json(StatusCode::OK, &info)
        }
        (&Method::DELETE, n, None) if !n.is_empty() => {
            if app.store.delete_snapshot(n)? {
                Ok(Reply::empty(StatusCode::NO_CONTENT))
            } else {
                Err(StorageError::new(ErrorCode::ResourceNotFound))
            }
        }
        (_, _, None | Some("restore")) => Err(StorageError::new(ErrorCode::UnsupportedHttpVerb)),
        _ => Err(StorageError::new(ErrorCode::ResourceNotFound)),
    }
}

/// Records a metrics scrape reads per account to count blobs (a scrape stays fast; the
/// counts stop growing past it).
const METRICS_SCAN_LIMIT: usize = 1_000_000;

/// `POST /_emulator/reset[?account=NAME]`: every queue and container (soft-deleted ones
/// too) of the account, or of all accounts, with everything in them, gone; each account's
/// removal durable before the answer. Settings (features, service properties) stay.
async fn reset(app: &AppState, req: &RequestParts) -> Result<Reply> {
    let accounts: Vec<String> = match req.query.get("account") {
        Some(a) if app.config.accounts.get(a).is_some() => vec![a.to_string()],
        Some(a) => return Err(StorageError::invalid_query("account", a)),
        None => app.config.accounts.iter().map(|a| a.name.clone()).collect(),
    };
    let (queues, containers) = reset_accounts(app, &accounts).await?;
    Ok(Reply::json(
        StatusCode::OK,
        format!(
            "{{\"accounts\":{},\"queues\":{queues},\"containers\":{containers}}}",
            accounts.len()
        ),
    ))
}

/// Empties `accounts`; returns how many queues and containers went.
pub async fn reset_accounts(app: &AppState, accounts: &[String]) -> Result<(usize, usize)> {
    let (mut queues, mut containers) = (0usize, 0usize);
    for account in accounts {
        // Bounded: clients creating queues meanwhile cannot keep it going forever.
        for _ in 0..1000 {
            let page = app.store.queues.list_queues(account, "", None, 5000);
            if page.queues.is_empty() {
                break;
            }
            for (name, _) in page.queues {
                match app.store.queues.delete_queue(account, &name).await {
                    Ok(()) => queues += 1,
                    // Deleted meanwhile by a request: gone either way.
                    Err(e) if e.status == StatusCode::NOT_FOUND => {}
                    Err(e) => return Err(e),
                }
            }
        }
        containers += app.store.blobs.reset_account(account).await?;
    }
    Ok((queues, containers))
}

pub async fn handle(
    app: &std::sync::Arc<AppState>,
    req: &RequestParts,
    body: bytes::Bytes,
) -> Result<Reply> {
    let path = req.raw_path.trim_end_matches('/');
    if path == "/_emulator/faults" || path.starts_with("/_emulator/faults/") {
        return faults(app, req, path, &body);
    }
    if path == "/_emulator/events" || path.starts_with("/_emulator/events/") {
        authenticate(app, req)?;
        return events(app, req, path, &body).await;
    }
    if path == "/_emulator/snapshots" || path.starts_with("/_emulator/snapshots/") {
        authenticate(app, req)?;
        return snapshots(app, req, path).await;
    }
    if path == "/_emulator/console" || path.starts_with("/_emulator/console/") {
        return crate::console::serve(req, path);
    }
    match (&req.method, path) {
        (&Method::GET, "/_emulator/accounts") => {
            authenticate(app, req)?;
            #[derive(serde::Serialize)]
            struct Accounts {
                accounts: Vec<String>,
            }
            json(
                StatusCode::OK,
                &Accounts {
                    accounts: app.config.accounts.iter().map(|a| a.name.clone()).collect(),
                },
            )
        }
        (&Method::POST, "/_emulator/reset") => {
            authenticate(app, req)?;
            reset(app, req).await
        }
        (&Method::GET, "/_emulator/metrics") => {
            authenticate(app, req)?;
            let mut r = Reply::empty(StatusCode::OK);
            r.body = crate::http::response::bytes_body(bytes::Bytes::from(metrics_text(app)?));
            r.set("content-type", "text/plain; version=0.0.4; charset=utf-8");
            Ok(r)
        }
        (&Method::GET, "/_emulator/requests") => {
            authenticate(app, req)?;
            requests(app, req)
        }
        (&Method::GET | &Method::HEAD, "/_emulator/health") => {
            Ok(Reply::json(StatusCode::OK, "{\"status\":\"ok\"}".into()))
        }
        (&Method::GET, "/_emulator/clock") => {
            authenticate(app, req)?;
            Ok(Reply::json(StatusCode::OK, clock_json(app)))
        }
        (&Method::POST, "/_emulator/clock/advance") => {
            authenticate(app, req)?;
            let raw = req
                .query
                .get("seconds")
                .ok_or_else(|| StorageError::missing_query("seconds"))?;
            let seconds: f64 = raw
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= 100.0 * 365.0 * 86400.0)
                .ok_or_else(|| StorageError::invalid_query("seconds", raw))?;
            app.clock.advance_ms((seconds * 1000.0).round() as i64);
            // Expired messages leave at once, so counts are right when this returns; so do
            // soft-deleted blobs past their retention and expired blobs.
            app.store.queues.sweep_expired(true)?;
            while app.store.blobs.sweep_deadlines().await? > 0 {}
            Ok(Reply::json(StatusCode::OK, clock_json(app)))
        }
        (&Method::GET, "/_emulator/features") => {
            authenticate(app, req)?;
            let account = feature_account(app, req)?;
            Ok(Reply::json(
                StatusCode::OK,
                features_json(&account, app.store.blobs.features(&account)?),
            ))
        }
        (&Method::PUT, "/_emulator/features") => {
            authenticate(app, req)?;
            let account = feature_account(app, req)?;
            let mut f = app.store.blobs.features(&account)?;
            if let Some(v) = req.query.get("blobversioning") {
                f.versioning = v
                    .parse()
                    .map_err(|_| StorageError::invalid_query("blobVersioning", v))?;
            }
            if let Some(v) = req.query.get("containersoftdeletedays") {
                f.container_retention_days = match v.parse::<u32>() {
                    Ok(0) => None,
                    Ok(d) if d <= 365 => Some(d),
                    _ => return Err(StorageError::invalid_query("containerSoftDeleteDays", v)),
                };
            }
            app.store.blobs.set_features(&account, f).await?;
            Ok(Reply::json(StatusCode::OK, features_json(&account, f)))
        }
        (
            _,
            "/_emulator/health"
            | "/_emulator/clock"
            | "/_emulator/clock/advance"
            | "/_emulator/features"
            | "/_emulator/requests"
            | "/_emulator/metrics"
            | "/_emulator/accounts"
            | "/_emulator/reset",
        ) => Err(StorageError::new(ErrorCode::UnsupportedHttpVerb)),
        _ => Err(StorageError::new(ErrorCode::ResourceNotFound)),
    }
}
