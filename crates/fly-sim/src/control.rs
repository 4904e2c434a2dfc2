//! The `/_sim` control plane: not part of Fly. Tests use it to inspect the world, count calls,
//! move the clock, register names owned by another org, and inject drift (crashes, boot
//! failures), switch rate limits and install request fault rules. No token required.

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
        .route("/_sim/stats", get(stats))
        .route("/_sim/rate-limits", get(rate_limits).post(set_rate_limits))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/faults/{id}", axum::routing::delete(delete_fault))
        .route("/_sim/regions/{region}", post(set_region))
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

/// `GET /_sim/stats`: call counts plus the 429s the rate limiter answered, per endpoint.
async fn stats(State(sim): State<Simulator>) -> Json<Value> {
    let limited = sim.inner.limiter.limited();
    Json(json!({
        "calls": sim.inner.stats.snapshot(),
        "rate_limited": limited,
        "rate_limited_total": limited.values().sum::<u64>(),
    }))
}

/// `GET /_sim/rate-limits`: the settings in force.
async fn rate_limits(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!(sim.inner.limiter.settings()))
}

/// Partial rate-limit settings; absent fields keep their value.
#[derive(Debug, Default, Deserialize)]
struct RateLimitPatch {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    retry_after: Option<super::ratelimit::RetryAfter>,
    #[serde(default)]
    mutating: Option<super::ratelimit::BucketSpec>,
    #[serde(default)]
    get: Option<super::ratelimit::BucketSpec>,
    #[serde(default)]
    app_delete: Option<super::ratelimit::BucketSpec>,
    /// `{"per_second","burst"}` caps every request of a token; `null` removes the cap.
    #[serde(default, deserialize_with = "present")]
    per_token: Option<Option<super::ratelimit::BucketSpec>>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /_sim/rate-limits {"enabled"?,"retry_after"?: "absent"|N|0.5,"mutating"?,"get"?,
/// "app_delete"?,"per_token"?: {"per_second","burst"}|null}`: changes the limits and refills
/// every bucket.
async fn set_rate_limits(
    State(sim): State<Simulator>,
    JsonBody(patch): JsonBody<RateLimitPatch>,
) -> SimResult<Json<Value>> {
    let mut settings = sim.inner.limiter.settings();
    let per_token = patch.per_token.flatten();
    for spec in [&patch.mutating, &patch.get, &patch.app_delete, &per_token]
        .into_iter()
        .flatten()
    {
        if !(spec.per_second.is_finite() && spec.per_second > 0.0 && spec.burst >= 1.0) {
            return Err(SimError::invalid("per_second must be > 0 and burst >= 1"));
        }
    }
    settings.enabled = patch.enabled.unwrap_or(settings.enabled);
    settings.retry_after = patch.retry_after.unwrap_or(settings.retry_after);
    settings.mutating = patch.mutating.unwrap_or(settings.mutating);
    settings.get = patch.get.unwrap_or(settings.get);
    settings.app_delete = patch.app_delete.unwrap_or(settings.app_delete);
    if let Some(cap) = patch.per_token {
        settings.per_token = cap;
    }
    sim.inner.limiter.set(settings.clone());
    Ok(Json(json!(settings)))
}

/// `GET /_sim/faults`: every rule with `remaining` and `hits`.
async fn list_faults(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!({"faults": sim.inner.faults.list()}))
}

/// `POST /_sim/faults` with a [`super::faults::FaultSpec`]; answers the stored rule.
async fn add_fault(
    State(sim): State<Simulator>,
    JsonBody(spec): JsonBody<super::faults::FaultSpec>,
) -> SimResult<(StatusCode, Json<Value>)> {
    let rule = sim.inner.faults.add(spec)?;
    Ok((StatusCode::CREATED, Json(json!(rule))))
}

/// `DELETE /_sim/faults`: removes every rule.
async fn clear_faults(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!({"removed": sim.inner.faults.clear(None)}))
}

/// `DELETE /_sim/faults/{id}`: removes one rule.
async fn delete_fault(State(sim): State<Simulator>, Path(id): Path<u64>) -> SimResult<Json<Value>> {
    match sim.inner.faults.clear(Some(id)) {
        0 => Err(SimError::NotFound("fault rule not found".into())),
        n => Ok(Json(json!({"removed": n}))),
    }
}

#[derive(Debug, Deserialize)]
struct RegionCapacity {
    full: bool,
}

/// `POST /_sim/regions/{region} {"full":true|false}`: machine creates/starts and volume creates
/// in the region fail with a capacity error while full, and so do updates that grow a machine
/// (409, as when its host has no room).
async fn set_region(
    State(sim): State<Simulator>,
    Path(region): Path<String>,
    JsonBody(body): JsonBody<RegionCapacity>,
) -> SimResult<Json<Value>> {
    sim.write(|w, _| {
        if body.full {
            w.full_regions.insert(region.clone());
        } else {
            w.full_regions.remove(&region);
        }
        Ok(Json(json!({"region": region, "full": body.full})))
    })
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

#[derive(Debug, Default, Deserialize)]
struct Fail {
    #[serde(default)]
    launch_failed: bool,
}

/// `POST /_sim/machines/{id}/fail {"launch_failed"?}`: a boot failure; the machine ends
/// `failed`, or with `launch_failed` goes `launch_failed` → `destroyed` on its own.
async fn fail(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<Fail>,
) -> SimResult<Json<Value>> {
    sim.write(|w, ctx| {
        let m = w
            .machines
            .get_mut(&id)
            .ok_or_else(SimError::machine_not_found)?;
        m.settle(ctx);
        if matches!(m.state.as_str(), "destroying" | "destroyed") {
            return Err(SimError::machine_not_found());
        }
        if body.launch_failed {
            m.launch_fail(ctx);
        } else {
            m.fail(ctx);
        }
        Ok(Json(json!({"id": m.id, "state": m.state})))
    })
}
