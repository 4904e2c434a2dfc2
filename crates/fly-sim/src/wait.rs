//! `GET …/wait` (spec §3): long-polls on the simulated clock. A waiter sleeps until the
//! machine's next scheduled transition, its deadline, or any mutation (including a clock
//! jump), whichever comes first; it never busy-loops.
//!
//! As on Fly: `timeout` is whole seconds (default 60, at most 60) and a timeout is `408`;
//! waiting for `stopped` needs the version it is about (`version`, or the older `instance_id`),
//! else `400`, since a machine stops once per version.

use super::auth::Caller;
use super::clock::delta;
use super::errors::{SimError, SimResult};
use super::extract::QueryPairs;
use super::wire::WaitMachineResponse;
use super::Simulator;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use std::time::Duration;

const WAITABLE: [&str; 7] = [
    "started",
    "stopped",
    "suspended",
    "destroyed",
    "failed",
    "settled",
    "created",
];

enum Progress {
    Reached(WaitMachineResponse),
    Pending(Option<DateTime<Utc>>),
}

/// The wait's timeout: whole seconds, default 60, clamped to 1–60.
fn timeout_of(query: &QueryPairs) -> SimResult<Duration> {
    let secs = match query.get("timeout") {
        Some(t) => t
            .trim()
            .parse::<u64>()
            .map_err(|_| SimError::invalid(format!("invalid timeout {t:?}: whole seconds")))?,
        None => 60,
    };
    Ok(Duration::from_secs(secs.clamp(1, 60)))
}

/// `GET /v1/apps/{app}/machines/{id}/wait?state=&timeout=&version=&from_event_id=`.
pub async fn wait(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): Path<(String, String)>,
    query: QueryPairs,
) -> SimResult<Json<WaitMachineResponse>> {
    let mut states: Vec<String> = query
        .all("state")
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if states.is_empty() {
        states.push("started".into());
    }
    if let Some(bad) = states.iter().find(|s| !WAITABLE.contains(&s.as_str())) {
        return Err(SimError::invalid(format!("invalid state {bad:?}")));
    }
    let timeout = timeout_of(&query)?;
    let version = query
        .get("version")
        .or_else(|| query.get("instance_id"))
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    if version.is_none() && states.iter().any(|s| s == "stopped") {
        return Err(SimError::invalid(
            "instance_id (or version) is required when waiting for the stopped state",
        ));
    }
    let from_event = query.get("from_event_id").map(str::to_string);
    let deadline = sim.clock().now() + delta(timeout);

    loop {
        let mut changes = sim.subscribe();
        let progress = sim.read(|w, ctx| {
            let app_ref = w.app_ref(&app, &caller, ctx)?;
            let m = match w.machine_any(&app_ref, &id, ctx) {
                Ok(m) => m,
                Err(_) if states.iter().any(|s| s == "destroyed") => {
                    return Ok(Progress::Reached(WaitMachineResponse {
                        ok: Some(true),
                        state: Some("destroyed".into()),
                        ..WaitMachineResponse::default()
                    }))
                }
                Err(e) => return Err(e),
            };
            let destroyed_ok = m.state == "destroyed" && states.iter().any(|s| s == "destroyed");
            if let Some(v) = &version {
                if *v != m.instance_id && !destroyed_ok {
                    if m.versions.iter().any(|x| x.version == *v) {
                        return Err(SimError::invalid(format!(
                            "machine {} version {v} currently replaced",
                            m.id
                        )));
                    }
                    return Err(SimError::NotFound(format!(
                        "not_found: machine version {v} not found"
                    )));
                }
            }
            let after_event = from_event.as_ref().is_none_or(|e| {
                m.events
                    .iter()
                    .position(|x| x.id.as_deref() == Some(e.as_str()))
                    .is_none_or(|i| i + 1 < m.events.len())
            });
            let matched = states.iter().any(|s| match s.as_str() {
                "settled" => !m.is_transient() && m.state != "created",
                s => s == m.state,
            });
            if matched && after_event {
                return Ok(Progress::Reached(WaitMachineResponse {
                    ok: Some(true),
                    state: Some(m.state.clone()),
                    version: Some(m.instance_id.clone()),
                    event_id: m.last_event_id(),
                }));
            }
            if !m.is_transient() && matches!(m.state.as_str(), "failed" | "destroyed") {
                return Err(SimError::BadRequest(
                    "machine failed to reach desired state".into(),
                ));
            }
            Ok(Progress::Pending(m.next_step_at()))
        })?;
        let next = match progress {
            Progress::Reached(body) => return Ok(Json(body)),
            Progress::Pending(next) => next,
        };
        if sim.clock().now() >= deadline {
            return Err(SimError::Timeout(format!(
                "deadline_exceeded: machine did not reach {} within {}s",
                states.join(","),
                timeout.as_secs()
            )));
        }
        let until = next.map_or(deadline, |n| n.min(deadline));
        let sleep = sim.clock().real_until(until).max(Duration::from_millis(1));
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}
