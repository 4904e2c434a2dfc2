//! Machine leases (spec §3): answers in fly-go's `{status,data}` envelope or as the document's
//! bare `Lease` ([`crate::SimConfig::lease_envelope`]), refresh with the same nonce, expiry on
//! the simulated clock.

use super::auth::Caller;
use super::clock::delta;
use super::errors::{SimError, SimResult};
use super::extract::{lease_nonce, OptionalJson, QueryPairs};
use super::records::machine::LeaseRec;
use super::wire::{CreateLeaseRequest, LeaseEnvelope};
use super::Simulator;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use std::time::Duration;

/// TTL when the client names none.
const DEFAULT_TTL_SECS: u64 = 30;

/// A lease as the simulator is set to answer it: fly-go's envelope or the bare `Lease`.
fn answer(sim: &Simulator, lease: &LeaseRec) -> Response {
    if sim.config().lease_envelope {
        Json(LeaseEnvelope {
            status: "success".into(),
            data: lease.to_wire(),
        })
        .into_response()
    } else {
        Json(lease.to_wire()).into_response()
    }
}

fn lease_not_found() -> SimError {
    SimError::NotFound("lease not found".into())
}

/// `POST …/lease`: acquire (201) or, with the holder's nonce, refresh. The TTL comes from the
/// body (the document's `CreateLeaseRequest`), or from a `ttl` query as older fly-go sent it.
pub async fn acquire(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    query: QueryPairs,
    OptionalJson(body): OptionalJson<CreateLeaseRequest>,
) -> SimResult<(StatusCode, Response)> {
    let ttl = body
        .ttl
        .and_then(|t| u64::try_from(t).ok())
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
        let out = answer(&sim, &refreshed);
        m.lease = Some(refreshed);
        Ok((StatusCode::CREATED, out))
    })
}

/// `GET …/lease`: the envelope, or 404 `lease not found`.
pub async fn get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): Path<(String, String)>,
) -> SimResult<Response> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let m = w.machine(&app_ref, &id, ctx)?;
        m.active_lease(ctx.now)
            .map(|l| answer(&sim, l))
            .ok_or_else(lease_not_found)
    })
}

/// `DELETE …/lease`: requires the holder's nonce.
pub async fn release(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> SimResult<Json<serde_json::Value>> {
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
