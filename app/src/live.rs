//! Live updates pushed to browsers by Server-Sent Events.
//!
//! The gallery's stream is shared: one background task lists the newest page of jobs once a
//! second while at least one browser listens, and every open gallery gets the same result,
//! so a hundred open tabs cost storage one listing a second, not a hundred. It stops when
//! the last listener goes. A job page's stream follows that one job's record.
//!
//! Streams end when the app shuts down, so a graceful stop is not held up by open pages.

use crate::routes::{find, overview};
use crate::state::AppState;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often storage is asked for changes while someone listens.
const INTERVAL: Duration = Duration::from_secs(1);

/// One SSE message: its event name and JSON data.
type Update = Option<(&'static str, Arc<str>)>;

pub struct Live {
    overview: watch::Sender<Update>,
    /// Whether the gallery poller runs; changed only under this lock, together with
    /// subscribing, so a listener can never be left with no poller.
    running: Mutex<bool>,
    /// Wakes the poller early: something just changed through this app.
    changed: tokio::sync::Notify,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            overview: watch::channel(None).0,
            running: Mutex::new(false),
            changed: tokio::sync::Notify::new(),
        }
    }
}

impl Live {
    /// Lists again now rather than at the next tick (after an upload, retry or delete).
    pub fn nudge(&self) {
        self.changed.notify_one();
    }
}

fn subscribe(state: &Arc<AppState>) -> watch::Receiver<Update> {
    let mut running = state.live.running.lock().unwrap_or_else(|p| p.into_inner());
    let rx = state.live.overview.subscribe();
    if !*running {
        *running = true;
        // What an earlier poller left is stale by now.
        state.live.overview.send_replace(None);
        tokio::spawn(poll_gallery(state.clone()));
    }
    rx
}

/// Ends when the last listener goes or the app stops.
async fn poll_gallery(st: Arc<AppState>) {
    loop {
        {
            let mut running = st.live.running.lock().unwrap_or_else(|p| p.into_inner());
            if st.live.overview.receiver_count() == 0 {
                *running = false;
                return;
            }
        }
        let update = match overview(&st, st.config.gallery_size, None).await {
            Ok(o) => ("overview", serde_json::to_string(&o)),
            Err(e) => (
                "unavailable",
                serde_json::to_string(&serde_json::json!({ "error": e.to_string() })),
            ),
        };
        if let (name, Ok(json)) = update {
            st.live.overview.send_if_modified(|current| {
                let changed = current
                    .as_ref()
                    .is_none_or(|(n, d)| *n != name || **d != *json);
                if changed {
                    *current = Some((name, json.into()));
                }
                changed
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = st.live.changed.notified() => {}
            _ = st.stopping.cancelled() => return,
        }
    }
}

fn event((name, data): (&'static str, Arc<str>)) -> Result<Event, Infallible> {
    Ok(Event::default().event(name).data(&*data))
}

fn respond<S>(state: &AppState, stream: S) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let stop = state.stopping.clone().cancelled_owned();
    Sse::new(stream.take_until(stop)).keep_alive(KeepAlive::default())
}

/// `GET /api/jobs/stream`: the newest page of jobs (as `/api/jobs` gives it) whenever it
/// changes, as `overview` events; `unavailable` while storage does not answer.
pub fn gallery(state: &Arc<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = subscribe(state);
    let stream = futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        loop {
            if !first || rx.borrow().is_none() {
                rx.changed().await.ok()?;
            }
            let current = rx.borrow_and_update().clone();
            if let Some(update) = current {
                return Some((event(update), (rx, false)));
            }
        }
    });
    respond(state, stream)
}

/// `GET /api/jobs/{id}/stream`: the job (as `/api/jobs/{id}` gives it) at once and then
/// whenever it changes, as `job` events; `gone` when it is deleted, which ends the stream.
pub fn job(
    state: &Arc<AppState>,
    id: String,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let weak = Arc::downgrade(state);
    let stream = futures::stream::unfold(
        (weak, id, None::<String>, false),
        |(weak, id, last, gone)| async move {
            if gone {
                return None;
            }
            let mut first = last.is_none();
            loop {
                if !first {
                    tokio::time::sleep(INTERVAL).await;
                }
                first = false;
                let state = weak.upgrade()?;
                match find(&state, &id).await {
                    Ok(Some(job)) => {
                        let Ok(json) = serde_json::to_string(&job) else {
                            continue;
                        };
                        if last.as_deref() != Some(json.as_str()) {
                            let e = event(("job", json.as_str().into()));
                            return Some((e, (weak, id, Some(json), false)));
                        }
                    }
                    Ok(None) => {
                        let e = event(("gone", "{}".into()));
                        return Some((e, (weak, id, last, true)));
                    }
                    // Storage not answering: keep the last state and try again.
                    Err(_) => {}
                }
            }
        },
    );
    respond(state, stream)
}
