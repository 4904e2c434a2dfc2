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
use super::records::machine::MachRec;
use super::wire::WaitMachineResponse;
use super::Simulator;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::watch;

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

/// The states waited for: `state`, repeated or comma-separated; `started` when absent.
fn states_of(query: &QueryPairs) -> SimResult<Vec<String>> {
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
    Ok(states)
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
    let states = states_of(&query)?;
    let timeout = timeout_of(&query)?;
    let target = Target::new(states, &query)?;
    let deadline = sim.clock().now() + delta(timeout);
    loop {
        let changes = sim.subscribe();
        let progress = sim.read(|w, ctx| {
            let app_ref = w.app_ref(&app, &caller, ctx)?;
            match w.machine_any(&app_ref, &id, ctx) {
                Ok(m) => target.progress(m),
                Err(_) if target.wants("destroyed") => Ok(Progress::Reached(WaitMachineResponse {
                    ok: Some(true),
                    state: Some("destroyed".into()),
                    ..WaitMachineResponse::default()
                })),
                Err(e) => Err(e),
            }
        })?;
        let next = match progress {
            Progress::Reached(body) => return Ok(Json(body)),
            Progress::Pending(next) => next,
        };
        if sim.clock().now() >= deadline {
            return Err(SimError::Timeout(format!(
                "deadline_exceeded: machine did not reach {} within {}s",
                target.states.join(","),
                timeout.as_secs()
            )));
        }
        sleep_until(&sim, changes, next.map_or(deadline, |n| n.min(deadline))).await;
    }
}

/// What a wait waits for.
struct Target {
    /// States any of which ends the wait (`settled`: any stable state but `created`).
    states: Vec<String>,
    /// The version the wait is about, if named.
    version: Option<String>,
    /// Only a state reached after this event counts.
    from_event: Option<String>,
}

impl Target {
    /// The target of a wait for `states`: `version` (or `instance_id`, required for
    /// `stopped`) and `from_event_id` come from the query.
    fn new(states: Vec<String>, query: &QueryPairs) -> SimResult<Self> {
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
        Ok(Self {
            states,
            version,
            from_event: query.get("from_event_id").map(str::to_string),
        })
    }

    fn wants(&self, state: &str) -> bool {
        self.states.iter().any(|s| s == state)
    }

    /// Whether machine `m` is there yet; an error when it is on another version or can no
    /// longer get there.
    fn progress(&self, m: &MachRec) -> SimResult<Progress> {
        self.check_version(m)?;
        let after_event = self.from_event.as_ref().is_none_or(|e| {
            m.events
                .iter()
                .position(|x| x.id.as_deref() == Some(e.as_str()))
                .is_none_or(|i| i + 1 < m.events.len())
        });
        let matched = self.states.iter().any(|s| match s.as_str() {
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
    }

    /// A wait about another version than the current one: `400` when that version was
    /// replaced, `404` when it never existed (a destroyed machine answers a wait for
    /// `destroyed` whatever the version).
    fn check_version(&self, m: &MachRec) -> SimResult<()> {
        let Some(v) = &self.version else {
            return Ok(());
        };
        let destroyed_ok = m.state == "destroyed" && self.wants("destroyed");
        if *v == m.instance_id || destroyed_ok {
            return Ok(());
        }
        if m.versions.iter().any(|x| x.version == *v) {
            return Err(SimError::invalid(format!(
                "machine {} version {v} currently replaced",
                m.id
            )));
        }
        Err(SimError::NotFound(format!(
            "not_found: machine version {v} not found"
        )))
    }
}

/// Sleeps until simulated time `until` or the next mutation, whichever comes first.
async fn sleep_until(sim: &Simulator, mut changes: watch::Receiver<u64>, until: DateTime<Utc>) {
    let sleep = sim.clock().real_until(until).max(Duration::from_millis(1));
    tokio::select! {
        _ = changes.changed() => {}
        _ = tokio::time::sleep(sleep) => {}
    }
}
