//! HTTP routes: pages, the upload form's target, the JSON the pages poll, the image proxy
//! and the health check.

use crate::state::{AppState, JobView};
use crate::upload::{self, UploadError};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use futures::TryStreamExt;
use minijinja::context;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use storage_client::job::{poison_queue, JobId, THUMBNAILS, UPLOADS};
use storage_client::job_store::queue_depth;
use tracing::warn;

type Shared = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    let files = u64::try_from(state.config.max_files.max(1)).unwrap_or(1);
    // Room for every file at the limit plus the form's own bytes; each file is still cut
    // off at its own limit while streaming.
    let body_limit = state
        .config
        .max_upload_bytes
        .saturating_mul(files)
        .saturating_add(1024 * 1024);
    Router::new()
        .route("/", get(index))
        .route(
            "/upload",
            post(upload).layer(DefaultBodyLimit::max(
                usize::try_from(body_limit).unwrap_or(usize::MAX),
            )),
        )
        .route("/gallery", get(gallery))
        .route("/jobs/{id}", get(job_page))
        .route("/api/jobs", get(api_jobs))
        .route("/api/jobs/stream", get(api_jobs_stream))
        .route("/api/jobs/{id}/stream", get(api_job_stream))
        .route("/api/jobs/{id}", get(api_job).delete(api_delete))
        .route("/api/jobs/{id}/retry", post(api_retry))
        // The same for the job page's buttons, which work without JavaScript.
        .route("/jobs/{id}/retry", post(form_retry))
        .route("/jobs/{id}/delete", post(form_delete))
        .route("/media/{container}/{*blob}", get(media))
        .route("/healthz", get(healthz))
        .route("/static/app.js", get(app_js))
        .route("/static/app.css", get(app_css))
        .with_state(state)
}

fn page(state: &AppState, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    match state.templates.render(name, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            warn!(template = name, error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

fn error_page(state: &AppState, status: StatusCode, title: &str, message: &str) -> Response {
    page(
        state,
        status,
        "error.html",
        context! { status => status.as_u16(), title => title, message => message },
    )
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

#[derive(Serialize)]
pub(crate) struct Overview {
    queue: String,
    queue_depth: Option<u64>,
    poison_count: Option<u64>,
    jobs: Vec<JobView>,
    /// Where the next (older) page starts; absent on the last page.
    next: Option<String>,
    /// When the listing was asked for (Unix ms): a page ignores live updates older than
    /// its own listing, which may predate a delete it already shows.
    listed_at: i64,
}

/// One page of jobs, newest first, with the queue counts.
pub(crate) async fn overview(
    state: &AppState,
    limit: usize,
    marker: Option<&str>,
) -> Result<Overview, azure_core::Error> {
    let now = Utc::now();
    let poison_name = poison_queue(&state.config.queue);
    let (page, depth, poison) = tokio::join!(
        state.jobs.page(limit, marker),
        queue_depth(&state.storage, &state.config.queue),
        queue_depth(&state.storage, &poison_name),
    );
    let page = page?;
    Ok(Overview {
        queue: state.config.queue.clone(),
        queue_depth: depth.ok(),
        poison_count: poison.ok(),
        jobs: page.records.iter().map(|r| state.view(r, now)).collect(),
        next: page.next,
        listed_at: now.timestamp_millis(),
    })
}

/// `?page=` (a listing marker from `next`) and `?limit=` for the gallery and its JSON.
#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    page: Option<String>,
    limit: Option<usize>,
}

impl PageQuery {
    fn limit(&self, state: &AppState) -> usize {
        self.limit
            .unwrap_or(state.config.gallery_size)
            .clamp(1, MAX_PAGE)
    }

    fn marker(&self) -> Option<&str> {
        self.page.as_deref().filter(|m| !m.is_empty())
    }
}

/// The most jobs one page may ask for.
const MAX_PAGE: usize = 500;

fn page_href(marker: &str) -> String {
    format!(
        "/gallery?page={}",
        percent_encoding::utf8_percent_encode(marker, percent_encoding::NON_ALPHANUMERIC)
    )
}

async fn index(State(state): Shared) -> Response {
    let recent = overview(&state, 8, None).await;
    let (jobs, error) = match recent {
        Ok(o) => (o.jobs, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    page(
        &state,
        StatusCode::OK,
        "index.html",
        context! {
            jobs => jobs,
            storage_error => error,
            max_mib => state.config.max_upload_bytes.div_ceil(1024 * 1024),
            max_bytes => state.config.max_upload_bytes,
            max_files => state.config.max_files,
        },
    )
}

async fn upload(State(state): Shared, headers: HeaderMap, form: Multipart) -> Response {
    let json = wants_json(&headers);
    match upload::accept(&state, form).await {
        Ok(records) => {
            state.live.nudge();
            let now = Utc::now();
            let jobs: Vec<_> = records.iter().map(|r| state.view(r, now)).collect();
            if json {
                let ids: Vec<String> = records.iter().map(|r| r.id.to_string()).collect();
                return (
                    StatusCode::CREATED,
                    Json(serde_json::json!({ "jobs": ids })),
                )
                    .into_response();
            }
            page(
                &state,
                StatusCode::CREATED,
                "upload_success.html",
                context! { jobs => jobs },
            )
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            if matches!(e, UploadError::Storage(_)) {
                warn!(error = %e, "upload failed");
            }
            if json {
                return (
                    status,
                    Json(serde_json::json!({ "error": e.to_string(), "title": e.title() })),
                )
                    .into_response();
            }
            error_page(&state, status, e.title(), &e.to_string())
        }
    }
}

async fn gallery(State(state): Shared, Query(q): Query<PageQuery>) -> Response {
    match overview(&state, q.limit(&state), q.marker()).await {
        Ok(o) => {
            let more = o.next.as_deref().map(page_href);
            page(
                &state,
                StatusCode::OK,
                "gallery.html",
                context! { overview => o, more => more, first_page => q.marker().is_none() },
            )
        }
        Err(e) => error_page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable",
            &e.to_string(),
        ),
    }
}

pub(crate) async fn find(state: &AppState, id: &str) -> Result<Option<JobView>, azure_core::Error> {
    let Ok(id) = JobId::parse(id) else {
        return Ok(None);
    };
    Ok(state
        .jobs
        .get(&id)
        .await?
        .map(|r| state.view(&r, Utc::now())))
}

async fn job_page(State(state): Shared, Path(id): Path<String>) -> Response {
    match find(&state, &id).await {
        Ok(Some(job)) => page(&state, StatusCode::OK, "job.html", context! { job => job }),
        Ok(None) => error_page(
            &state,
            StatusCode::NOT_FOUND,
            "No such upload",
            "There is no upload with this id.",
        ),
        Err(e) => error_page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable",
            &e.to_string(),
        ),
    }
}

async fn api_jobs(State(state): Shared, Query(q): Query<PageQuery>) -> Response {
    match overview(&state, q.limit(&state), q.marker()).await {
        Ok(o) => no_store(Json(o).into_response()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn api_job(State(state): Shared, Path(id): Path<String>) -> Response {
    match find(&state, &id).await {
        Ok(Some(job)) => no_store(Json(job).into_response()),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": "no such job" })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn api_jobs_stream(State(state): Shared) -> Response {
    event_stream(crate::live::gallery(&state).into_response())
}

async fn api_job_stream(State(state): Shared, Path(id): Path<String>) -> Response {
    event_stream(crate::live::job(&state, id).into_response())
}

/// Not cached, and not buffered by a reverse proxy in front (nginx holds a response back
/// unless told), so each event reaches the browser when it is sent.
fn event_stream(r: Response) -> Response {
    let mut r = no_store(r);
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

fn manage_failure(e: &crate::manage::ManageError) -> Response {
    use crate::manage::ManageError;
    let status = match e {
        ManageError::NotFound => StatusCode::NOT_FOUND,
        ManageError::NotFailed(_) => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
}

/// `POST /api/jobs/{id}/retry`: a failed job queued again (202).
async fn api_retry(State(state): Shared, Path(id): Path<String>) -> Response {
    let Ok(id) = JobId::parse(&id) else {
        return manage_failure(&crate::manage::ManageError::NotFound);
    };
    match crate::manage::retry(&state, &id).await {
        Ok(()) => {
            state.live.nudge();
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "state": "queued" })),
            )
                .into_response()
        }
        Err(e) => manage_failure(&e),
    }
}

/// `DELETE /api/jobs/{id}`: the upload and everything made from it gone (204, also when
/// there was nothing).
async fn api_delete(State(state): Shared, Path(id): Path<String>) -> Response {
    let Ok(id) = JobId::parse(&id) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    match crate::manage::delete(&state, &id).await {
        Ok(()) => {
            state.live.nudge();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => manage_failure(&e),
    }
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

async fn form_retry(State(state): Shared, Path(id): Path<String>) -> Response {
    let r = api_retry(State(state), Path(id.clone())).await;
    if r.status().is_success() {
        see_other(&format!("/jobs/{id}"))
    } else {
        r
    }
}

async fn form_delete(State(state): Shared, Path(id): Path<String>) -> Response {
    let r = api_delete(State(state), Path(id)).await;
    if r.status().is_success() {
        see_other("/gallery")
    } else {
        r
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Streams an image through the app (when SAS URLs cannot be used).
async fn media(State(state): Shared, Path((container, blob)): Path<(String, String)>) -> Response {
    if container != UPLOADS && container != THUMBNAILS {
        return StatusCode::NOT_FOUND.into_response();
    }
    let client = state.storage.container(&container).blob_client(&blob);
    match client.download(None).await {
        Ok(d) => {
            let content_type = d
                .properties
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into());
            let mut builder = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::CACHE_CONTROL, "private, max-age=300")
                .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
            if let Some(len) = d.properties.content_length {
                builder = builder.header(header::CONTENT_LENGTH, len);
            }
            let body = Body::from_stream(d.body.map_err(std::io::Error::other));
            builder
                .body(body)
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(e) => {
            warn!(error = %e, "media proxy failed");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}

/// Ready when storage answers (orchestrators restart or hold traffic otherwise).
async fn healthz(State(state): Shared) -> Response {
    let probe = tokio::time::timeout(
        Duration::from_secs(3),
        queue_depth(&state.storage, &state.config.queue),
    )
    .await;
    match probe {
        Ok(Ok(_)) => no_store(Json(serde_json::json!({ "status": "ok" })).into_response()),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable", "error": e.to_string() })),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unavailable", "error": "storage timed out" })),
        )
            .into_response(),
    }
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/app.js"),
    )
        .into_response()
}

async fn app_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/app.css"),
    )
        .into_response()
}
