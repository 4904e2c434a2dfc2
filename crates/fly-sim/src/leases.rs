//! Machine leases (spec §3): the `{status,data}` envelope, refresh with the same nonce, expiry
//! on the simulated clock.

use super::auth::Caller;
use super::clock::delta;
use super::errors::{SimError, SimResult};
use super::extract::{lease_nonce, OptionalJson, QueryPairs};
use super::machine_state::LeaseRec;
use super::Simulator;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// TTL when the client names none.
const DEFAULT_TTL_SECS: u64 = 30;

/// `POST …/lease` body (fly-go puts `ttl` in the query instead).
#[derive(Debug, Default, Deserialize)]
pub struct LeaseBody {
    #[serde(default)]
    ttl: Option<u64>,
    #[serde(default)]
    description: Option<String>,
}

fn envelope(lease: &LeaseRec) -> Json<Value> {
    Json(json!({"status": "success", "data": lease.to_json()}))
}

fn lease_not_found() -> SimError {
    SimError::NotFound("lease not found".into())
}

/// `POST …/lease`: acquire (201) or, with the holder's nonce, refresh.
pub async fn acquire(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    query: QueryPairs,
    OptionalJson(body): OptionalJson<LeaseBody>,
) -> SimResult<(StatusCode, Json<Value>)> {
    let ttl = body
        .ttl
        .or(query.u64("ttl")?)
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_TTL_SECS);
    let nonce = lease_nonce(&headers);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let m = w.machine(&app_ref, &id, ctx)?;
        let expires_at = ctx.now + delta(Duration::from_secs(ttl));
        let refreshed = match m.active_lease(ctx.now) {
            Some(held) if nonce.as_deref() == Some(held.nonce.as_str()) => LeaseRec {
                expires_at,
                description: body
                    .description
                    .clone()
                    .unwrap_or_else(|| held.description.clone()),
                version: m.instance_id.clone(),
                ..held.clone()
            },
            Some(held) => return Err(m.lease_held_error(held)),
            None => LeaseRec {
                nonce: super::ids::nonce(),
                owner: ctx.config.lease_owner.clone(),
                description: body.description.clone().unwrap_or_default(),
                expires_at,
                version: m.instance_id.clone(),
            },
        };
        let out = envelope(&refreshed);
        m.lease = Some(refreshed);
        Ok((StatusCode::CREATED, out))
    })
}

/// `GET …/lease`: the envelope, or 404 `lease not found`.
pub async fn get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): Path<(String, String)>,
) -> SimResult<Json<Value>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let m = w.machine(&app_ref, &id, ctx)?;
        m.active_lease(ctx.now)
            .map(envelope)
            .ok_or_else(lease_not_found)
    })
}

/// `DELETE …/lease`: requires the holder's nonce.
pub async fn release(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    let nonce = lease_nonce(&headers)
        .ok_or_else(|| SimError::invalid("fly-machine-lease-nonce header is required"))?;
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let m = w.machine(&app_ref, &id, ctx)?;
        match m.active_lease(ctx.now) {
            None => Err(lease_not_found()),
            Some(held) if held.nonce != nonce => Err(m.lease_held_error(held)),
            Some(_) => {
                m.lease = None;
                Ok(Json(json!({"status": "success"})))
            }
        }
    })
}
