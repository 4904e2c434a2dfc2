//! The watch of one instance's events (`GET /v1/instances/{name}/events?watch=true`). Events
//! are append-only and their ids are taken with tickets like resource versions, so a watch's
//! cursor is an event id: without a `resourceVersion` it first sends the events the list would
//! show (up to the events horizon) as `ADDED`, then each new one; with one it sends the events
//! with greater ids. Events older than `OPENCLAWS_EVENT_RETENTION` are pruned; a watch resuming
//! from an id whose successors were pruned since gets the ones still kept, not 410 (with a
//! retention of days, a client that far behind lists again anyway).

use axum::response::Response;
use serde_json::{json, Value};

use super::follow::{self, unavailable, Follow, Source, BATCH};
use super::options::{Start, WatchOptions};
use super::stream::{self, Sink, Stop};
use crate::error::ApiError;
use crate::ApiState;
use openclaws_store::changes::{self, Horizons};
use openclaws_store::events::{self, Event, EventFilter};

/// What an event watch shows: the name's events of `type_` (any when `None`); `list` bounds
/// the initial ones like the event list's parameters do.
#[derive(Debug, Clone)]
pub struct EventWatch {
    /// The instance name whose events are watched.
    pub name: String,
    /// Only events of this type (`Normal`, `Warning`).
    pub type_: Option<String>,
    /// Bounds of the initial events (`since`, `limit`).
    pub list: EventFilter,
}

/// Answers a watch of `watch`'s events.
pub async fn respond(
    state: &ApiState,
    watch: EventWatch,
    options: WatchOptions,
) -> Result<Response, ApiError> {
    let (initial, cursor) = match options.start {
        Start::After(n) => (Vec::new(), n),
        Start::Now => {
            let mut conn = state.db().await?;
            let horizon = changes::horizons(&mut conn).await?.events;
            let filter = EventFilter {
                type_: watch.type_.clone(),
                through_id: Some(horizon),
                ..watch.list.clone()
            };
            let listed = events::list_by_name(&mut conn, &watch.name, &filter).await?;
            (listed, horizon)
        }
    };
    let settings = state.watch.settings();
    let (sink, body) = stream::channel(options.format, settings.buffer, settings.slow_client);
    let f = Follow::new(&state.watch, sink, &options);
    let source = Events {
        state: state.clone(),
        watch,
    };
    tokio::spawn(async move {
        for event in &initial {
            if send(&f.sink, event).await.is_err() {
                return;
            }
        }
        follow::follow(source, f, cursor).await;
    });
    Ok(follow::response(options.format.content_type(), body))
}

async fn send(sink: &Sink, event: &Event) -> Result<(), Stop> {
    let object = serde_json::to_value(event).unwrap_or(Value::Null);
    sink.event("ADDED", Some(event.id), &object).await
}

/// One name's event log as a watch's source.
struct Events {
    state: ApiState,
    watch: EventWatch,
}

impl Source for Events {
    fn horizon(&self, horizons: &Horizons) -> i64 {
        horizons.events
    }

    async fn catch_up(
        &mut self,
        sink: &Sink,
        mut cursor: i64,
        horizon: i64,
    ) -> Result<Option<i64>, Stop> {
        loop {
            let read = match self.state.db().await {
                Ok(mut conn) => {
                    let type_ = self.watch.type_.as_deref();
                    events::after(&mut conn, &self.watch.name, type_, cursor, horizon, BATCH).await
                }
                Err(e) => return unavailable(sink, cursor, &e.to_string()),
            };
            let batch = match read {
                Ok(batch) => batch,
                Err(e) => return unavailable(sink, cursor, &e.to_string()),
            };
            for event in &batch {
                send(sink, event).await?;
                cursor = event.id;
            }
            if (batch.len() as i64) < BATCH {
                return Ok(Some(horizon));
            }
        }
    }

    fn bookmark(&self, cursor: i64) -> Option<Value> {
        Some(json!({"metadata": {"resourceVersion": cursor.to_string()}}))
    }
}
