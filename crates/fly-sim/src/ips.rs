//! IP assignments (api doc §7): `v6`, `shared_v4`, `v4`, `private_v6` and the egress kinds
//! (`egress_v4`, `egress_v6`, `egress_pair`). Every allocation is a new address (not idempotent,
//! as on Fly) except `shared_v4`, which is the same address for every app. Answers carry no
//! `type`, as on Fly: a client tells the kind from the address family and the `shared`,
//! `egress` and `network` fields. An app with no address lists `"ips": null`, as Fly's Go
//! encodes an empty list.

use super::auth::Caller;
use super::errors::{SimError, SimResult};
use super::extract::JsonBody;
use super::records::ip::IpRec;
use super::wire::ListIPAssignmentsResponse;
use super::wire::{AssignIPRequest, AssignIPResponse, IPAssignment, IPPair};
use super::Simulator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

/// The one shared IPv4 address every app gets for `shared_v4`.
pub const SHARED_V4: &str = "66.241.124.10";

/// `GET /v1/apps/{app}/ip_assignments` → `{"ips":[…]}` (`null` when there are none).
pub async fn list(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
) -> SimResult<Json<ListIPAssignmentsResponse>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let ips: Vec<IPAssignment> = w
            .apps
            .get(&app_ref.name)
            .map(|a| a.ips.iter().map(|i| i.to_wire(&app_ref.org)).collect())
            .unwrap_or_default();
        Ok(Json(ListIPAssignmentsResponse {
            ips: (!ips.is_empty()).then_some(ips),
        }))
    })
}

/// A new address of `kind` (the `n`th allocation).
fn new_address(kind: &str, n: u64) -> SimResult<String> {
    Ok(match kind {
        "v6" => format!("2a09:8280:1::{:x}:{:x}", n >> 16, n & 0xffff),
        "shared_v4" => SHARED_V4.to_string(),
        "v4" => format!("137.66.{}.{}", (n >> 8) & 0xff, n & 0xff),
        "private_v6" => format!("fdaa:0:{:x}::{:x}", n >> 16, n & 0xffff),
        "egress_v4" => format!("209.38.{}.{}", (n >> 8) & 0xff, n & 0xff),
        "egress_v6" => format!("2605:4c40:1::{:x}:{:x}", n >> 16, n & 0xffff),
        other => {
            return Err(SimError::invalid(format!(
                "unsupported ip type {other:?}: use v4, v6, shared_v4, private_v6, egress_v4, egress_v6 or egress_pair"
            )))
        }
    })
}

/// `POST /v1/apps/{app}/ip_assignments {"type",…}` → `200 AssignIPResponse`; `egress_pair`
/// allocates an egress v4 and v6 at once and answers them in `ip_pair` (with no `ip`).
pub async fn assign(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    JsonBody(body): JsonBody<AssignIPRequest>,
) -> SimResult<Json<AssignIPResponse>> {
    let kind = body.r#type.clone().unwrap_or_default();
    let kinds: &[&str] = match kind.as_str() {
        "egress_pair" => &["egress_v4", "egress_v6"],
        k => &[k],
    };
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let mut recs = Vec::new();
        for kind in kinds {
            w.next_ip += 1;
            recs.push(IpRec {
                ip: new_address(kind, w.next_ip)?,
                type_: (*kind).to_owned(),
                region: body
                    .region
                    .clone()
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "global".into()),
                service_name: body.service_name.clone().unwrap_or_default(),
                created_at: ctx.now,
                network: body.network.clone().unwrap_or_default(),
            });
        }
        let answer = assign_answer(&recs, &app_ref.org);
        if let Some(a) = w.apps.get_mut(&app_ref.name) {
            a.ips.extend(recs);
        }
        Ok(Json(answer))
    })
}

/// The answer to an allocation of `recs` (one address, or an egress pair).
fn assign_answer(recs: &[IpRec], org: &str) -> AssignIPResponse {
    let first = recs[0].to_wire(org);
    let pair = (recs.len() == 2).then(|| IPPair {
        v4: Some(recs[0].ip.clone()),
        v6: Some(recs[1].ip.clone()),
    });
    AssignIPResponse {
        ip: if pair.is_some() { None } else { first.ip },
        ip_pair: pair,
        region: first.region,
        service_name: first.service_name,
        shared: first.shared,
        egress: first.egress,
        created_at: first.created_at,
        network: first.network,
    }
}

/// `DELETE /v1/apps/{app}/ip_assignments/{ip}` → `204`; `404` when not assigned.
pub async fn release(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, ip)): Path<(String, String)>,
) -> SimResult<StatusCode> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let a = w
            .apps
            .get_mut(&app_ref.name)
            .ok_or_else(SimError::app_not_found)?;
        let before = a.ips.len();
        a.ips.retain(|i| i.ip != ip);
        if a.ips.len() == before {
            return Err(SimError::NotFound("ip assignment not found".into()));
        }
        Ok(StatusCode::NO_CONTENT)
    })
}
