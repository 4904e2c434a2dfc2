//! The `/_sim` control plane: not part of Fly. Tests use it to inspect the world, count calls,
//! move the clock, register names owned by another org, and inject drift (crashes, boot
//! failures). No token required. Later fault/rate-limit controls belong here too.

use super::clock::rfc3339;
use super::errors::{SimError, SimResult};
use super::extract::{JsonBody, OptionalJson};
use super::Simulator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// The `/_sim` routes.
pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/_sim/state", get(state))
        .route("/_sim/calls", get(calls))
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/foreign-apps", post(foreign_app))
        .route("/_sim/machines/{id}/crash", post(crash))
        .route("/_sim/machines/{id}/fail", post(fail))
        .with_state(sim)
}

/// `GET /_sim/state`: every app, volume and machine, destroyed ones included.
async fn state(State(sim): State<Simulator>) -> SimResult<Json<Value>> {
    sim.read(|w, ctx| {
        let names: Vec<String> = w.apps.keys().cloned().collect();
        for name in &names {
            w.settle_app(name, ctx);
        }
        let ids: Vec<String> = w.machines.keys().cloned().collect();
        for id in &ids {
            w.settle_machine(id, ctx);
        }
        let vol_ids: Vec<String> = w.volumes.keys().cloned().collect();
        for id in &vol_ids {
            w.settle_volume(id, ctx);
        }
        let mut apps: Vec<_> = w.apps.values().collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        let mut volumes: Vec<_> = w.volumes.values().collect();
        volumes.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut machines: Vec<_> = w.machines.values().collect();
        machines.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(Json(json!({
            "now": rfc3339(ctx.now),
            "apps": apps,
            "deleted_apps": w.deleted_apps,
            "volumes": volumes,
            "machines": machines,
        })))
    })
}

/// `GET /_sim/calls`: counts per `"METHOD /route/{template}"`.
async fn calls(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!(sim.inner.stats.snapshot()))
}

/// `GET /_sim/clock`.
async fn clock(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!({"now": rfc3339(sim.clock().now())}))
}

#[derive(Debug, Deserialize)]
struct Advance {
    seconds: f64,
}

/// `POST /_sim/clock/advance {"seconds":N}`: jumps simulated time; waiters re-evaluate.
async fn advance(
    State(sim): State<Simulator>,
    JsonBody(body): JsonBody<Advance>,
) -> SimResult<Json<Value>> {
    if !body.seconds.is_finite() || body.seconds < 0.0 {
        return Err(SimError::invalid("seconds must be a non-negative number"));
    }
    let now = sim.clock().advance(super::clock::secs_f64(body.seconds));
    sim.notify();
    Ok(Json(json!({"now": rfc3339(now)})))
}

#[derive(Debug, Deserialize)]
struct ForeignApp {
    name: String,
}

/// `POST /_sim/foreign-apps {"name"}`: an app owned by `foreign_org` (403 on GET, 422 on create).
async fn foreign_app(
    State(sim): State<Simulator>,
    JsonBody(body): JsonBody<ForeignApp>,
) -> SimResult<(StatusCode, Json<Value>)> {
    if !super::apps::valid_app_name(&body.name) {
        return Err(SimError::invalid("invalid app name"));
    }
    sim.write(|w, ctx| {
        let org = ctx.config.foreign_org.clone();
        let app = w.insert_app(&body.name, &org, None, None, ctx)?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"name": app.name, "org": app.org, "id": app.id})),
        ))
    })
}

#[derive(Debug, Default, Deserialize)]
struct Crash {
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    oom_killed: bool,
}

/// `POST /_sim/machines/{id}/crash {"exit_code"?,"oom_killed"?}`: the process exits; the
/// machine's restart policy decides what follows.
async fn crash(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<Crash>,
) -> SimResult<Json<Value>> {
    sim.write(|w, ctx| {
        let m = w
            .machines
            .get_mut(&id)
            .ok_or_else(SimError::machine_not_found)?;
        m.settle(ctx);
        m.crash(body.exit_code.unwrap_or(1), body.oom_killed, ctx)?;
        Ok(Json(
            json!({"id": m.id, "state": m.state, "restart_count": m.restart_count}),
        ))
    })
}

/// `POST /_sim/machines/{id}/fail`: a boot failure; the machine ends `failed`.
async fn fail(State(sim): State<Simulator>, Path(id): Path<String>) -> SimResult<Json<Value>> {
    sim.write(|w, ctx| {
        let m = w
            .machines
            .get_mut(&id)
            .ok_or_else(SimError::machine_not_found)?;
        m.settle(ctx);
        if matches!(m.state.as_str(), "destroying" | "destroyed") {
            return Err(SimError::machine_not_found());
        }
        m.fail(ctx);
        Ok(Json(json!({"id": m.id, "state": m.state})))
    })
}
