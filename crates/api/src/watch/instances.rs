//! The watch of the instance list (`GET /v1/instances?watch=true`). Without a
//! `resourceVersion` it first sends every instance that matches as `ADDED` (from one snapshot),
//! then follows the change log from the snapshot's version; with one it follows the log from
//! there, or answers 410 Gone when the log no longer reaches back that far.

use axum::response::Response;
use serde_json::{json, Value};
use std::collections::BTreeSet;

use super::filter::{self, Filter, Selectable};
use super::follow::{self, unavailable, Follow, Source, BATCH};
use super::options::{Start, WatchOptions};
use super::stream::{self, Sink, Stop};
use crate::error::ApiError;
use crate::ApiState;
use openclaws_model::{API_VERSION, KIND};
use openclaws_store::changes::{self, Change, Horizons, Read, Snapshot};
use openclaws_store::InstanceRecord;

/// Answers a watch of the instances `filter` lets through.
pub async fn respond(
    state: &ApiState,
    filter: Filter,
    options: WatchOptions,
) -> Result<Response, ApiError> {
    let begin = begin(state, options.start).await?;
    let settings = state.watch.settings();
    let (sink, body) = stream::channel(options.format, settings.buffer, settings.slow_client);
    let f = Follow::new(&state.watch, sink, &options);
    let source = Instances {
        state: state.clone(),
        filter,
        skip: BTreeSet::new(),
    };
    tokio::spawn(run(source, f, begin));
    Ok(follow::response(options.format.content_type(), body))
}

/// Where a watch begins.
enum Begin {
    Snapshot(Snapshot),
    After(i64),
}

async fn begin(state: &ApiState, start: Start) -> Result<Begin, ApiError> {
    let mut conn = state.db().await?;
    let after = match start {
        Start::Now => return Ok(Begin::Snapshot(changes::snapshot(&mut conn).await?)),
        Start::After(n) => n,
    };
    let retained = changes::retained(&mut conn).await?;
    let problem = if after < retained.compacted_through {
        "is older than the changes this server keeps"
    } else if after > retained.issued {
        "was never issued by this server"
    } else {
        return Ok(Begin::After(after));
    };
    Err(ApiError::Gone {
        message: format!(
            "resourceVersion {after} {problem}; list again and watch from the list's \
             metadata.resourceVersion"
        ),
        current: changes::list_version(&mut conn).await?,
    })
}

async fn run(mut source: Instances, f: Follow, begin: Begin) {
    let cursor = match begin {
        Begin::After(n) => n,
        Begin::Snapshot(snapshot) => match source.initial(&f, snapshot).await {
            Ok(cursor) => cursor,
            Err(_) => return,
        },
    };
    follow::follow(source, f, cursor).await;
}

/// The instance log as a watch's source.
struct Instances {
    state: ApiState,
    filter: Filter,
    /// Versions above the snapshot's that its objects already show.
    skip: BTreeSet<i64>,
}

impl Instances {
    /// Sends the snapshot's matching instances as `ADDED` (without ids: resuming from an
    /// object's version could pass a change still in flight), then a bookmark where one is
    /// safe; returns the cursor.
    async fn initial(&mut self, f: &Follow, snapshot: Snapshot) -> Result<i64, Stop> {
        for record in &snapshot.records {
            if self.filter.matches(&selectable(record)) {
                if let Some(object) = self.render(record) {
                    f.sink.event("ADDED", None, &object).await?;
                }
            }
        }
        self.skip = snapshot.already_seen.into_iter().collect();
        if let Some(object) = self.bookmark(snapshot.version).filter(|_| f.bookmarks) {
            f.sink
                .event("BOOKMARK", Some(snapshot.version), &object)
                .await?;
        }
        Ok(snapshot.version)
    }

    /// The object as GET shows it; `None` (logged) for a row that does not parse.
    fn render(&self, record: &InstanceRecord) -> Option<Value> {
        let rendered = record
            .to_resource(&self.state.cipher)
            .map_err(|e| e.to_string())
            .and_then(|o| serde_json::to_value(o).map_err(|e| e.to_string()));
        match rendered {
            Ok(object) => Some(object),
            Err(e) => {
                tracing::warn!(error = %e, instance = %record.name, "a watched instance does not render; skipped");
                None
            }
        }
    }

    async fn send(&mut self, sink: &Sink, change: &Change) -> Result<(), Stop> {
        let version = change.record.resource_version;
        if self.skip.remove(&version) {
            return Ok(());
        }
        let Some(seen) = filter::classify(&self.filter, change) else {
            return Ok(());
        };
        match self.render(&change.record) {
            Some(object) => sink.event(seen.as_str(), Some(version), &object).await,
            None => Ok(()),
        }
    }
}

fn selectable(record: &InstanceRecord) -> Selectable<'_> {
    Selectable {
        name: &record.name,
        labels: &record.labels.0,
        phase: &record.phase,
        customer_id: &record.customer_id,
    }
}

impl Source for Instances {
    fn horizon(&self, horizons: &Horizons) -> i64 {
        horizons.instances
    }

    async fn catch_up(
        &mut self,
        sink: &Sink,
        mut cursor: i64,
        horizon: i64,
    ) -> Result<Option<i64>, Stop> {
        loop {
            let read = match self.state.db().await {
                Ok(mut conn) => changes::read(&mut conn, cursor, horizon, BATCH).await,
                Err(e) => return unavailable(sink, cursor, &e.to_string()),
            };
            let batch = match read {
                Ok(Read::Changes(batch)) => batch,
                Ok(Read::Expired(_)) => return expired(sink, cursor, horizon),
                Err(e) => return unavailable(sink, cursor, &e.to_string()),
            };
            let full = batch.len() as i64 == BATCH;
            for change in &batch {
                self.send(sink, change).await?;
                cursor = change.record.resource_version;
            }
            if !full {
                self.skip.retain(|v| *v > horizon);
                return Ok(Some(horizon));
            }
        }
    }

    fn bookmark(&self, cursor: i64) -> Option<Value> {
        self.skip.is_empty().then(|| {
            json!({
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {"resourceVersion": cursor.to_string()},
            })
        })
    }
}

/// Ends a watch whose next changes were pruned before it read them.
fn expired(sink: &Sink, cursor: i64, current: i64) -> Result<Option<i64>, Stop> {
    sink.finish_with(
        "gone",
        &format!(
            "changes after resourceVersion {cursor} are no longer kept (the watch fell too far \
             behind); list again and watch from the list's metadata.resourceVersion"
        ),
        Some(current),
    );
    Ok(None)
}
