//! The loop every watch runs once its starting point is known: wait for the horizon to pass the
//! cursor, send what lies between, and in between send bookmarks (or heartbeats), until the
//! timeout, the server's shutdown, the client leaving, or an error that ends the stream.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::options::WatchOptions;
use super::stream::{Sink, Stop};
use super::WatchHub;
use openclaws_store::changes::Horizons;

/// Changes read from the database at once.
pub const BATCH: i64 = 500;

/// What a watch follows: a log read up to one of the horizons.
pub(crate) trait Source {
    /// The horizon this source's log is read up to.
    fn horizon(&self, horizons: &Horizons) -> i64;

    /// Sends what lies in `(cursor, horizon]`; the cursor reached, or `None` when the watch
    /// ended with a final error (already queued on the sink).
    async fn catch_up(
        &mut self,
        sink: &Sink,
        cursor: i64,
        horizon: i64,
    ) -> Result<Option<i64>, Stop>;

    /// A bookmark's object at `cursor`, or `None` when none may be sent yet (one now could
    /// make a resume repeat a change).
    fn bookmark(&self, cursor: i64) -> Option<Value>;
}

/// Where a watch's events go and what ends it.
#[derive(Debug)]
pub struct Follow {
    /// Where events go.
    pub sink: Sink,
    /// The hub's horizons.
    pub horizons: watch::Receiver<Horizons>,
    /// The server's shutdown.
    pub closing: CancellationToken,
    /// When the stream ends by itself (`timeoutSeconds`).
    pub deadline: Instant,
    /// Whether bookmarks are sent (heartbeats otherwise).
    pub bookmarks: bool,
    /// Between two bookmarks or heartbeats.
    pub interval: Duration,
}

impl Follow {
    /// A watch of `hub` with `options`, its deadline counted from now.
    pub fn new(hub: &WatchHub, sink: Sink, options: &WatchOptions) -> Self {
        Self {
            sink,
            horizons: hub.subscribe(),
            closing: hub.closing().clone(),
            deadline: Instant::now() + options.timeout,
            bookmarks: options.bookmarks,
            interval: hub.settings().bookmark_interval,
        }
    }
}

/// Follows `source` from `cursor` until the watch ends.
pub(crate) async fn follow<S: Source>(mut source: S, mut f: Follow, mut cursor: i64) {
    let mut beat = tokio::time::interval_at(Instant::now() + f.interval, f.interval);
    loop {
        if f.closing.is_cancelled() || Instant::now() >= f.deadline {
            return;
        }
        let horizon = source.horizon(&f.horizons.borrow_and_update());
        if horizon > cursor {
            match source.catch_up(&f.sink, cursor, horizon).await {
                Ok(Some(reached)) => cursor = cursor.max(reached),
                Ok(None) | Err(_) => return,
            }
            continue;
        }
        let step = tokio::select! {
            changed = f.horizons.changed() => changed.map_err(|_| Stop::ClientGone),
            _ = beat.tick() => beat_once(&source, &f, cursor).await,
            () = tokio::time::sleep_until(f.deadline) => return,
            () = f.closing.cancelled() => return,
        };
        if step.is_err() {
            return;
        }
    }
}

async fn beat_once<S: Source>(source: &S, f: &Follow, cursor: i64) -> Result<(), Stop> {
    match source.bookmark(cursor).filter(|_| f.bookmarks) {
        Some(object) => f.sink.event("BOOKMARK", Some(cursor), &object).await,
        None => f.sink.heartbeat().await,
    }
}

/// The streaming response: never cached, never buffered by a proxy.
pub fn response(content_type: &'static str, body: axum::body::Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Ends a watch that cannot read the database; the client resumes from its last version.
pub fn unavailable(sink: &Sink, cursor: i64, detail: &str) -> Result<Option<i64>, Stop> {
    tracing::warn!(error = %detail, "a watch cannot read the database; it ends");
    sink.finish_with(
        "unavailable",
        &format!("the database is unavailable; watch again from resourceVersion {cursor} shortly"),
        None,
    );
    Ok(None)
}
