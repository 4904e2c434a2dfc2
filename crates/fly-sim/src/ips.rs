//! IP assignments (api doc §7): `v6`, `shared_v4`, `v4`, `private_v6`. Every allocation is a
//! new address (not idempotent, as on Fly) except `shared_v4`, which is the same address for
//! every app.

use super::auth::Caller;
use super::clock::rfc3339;
use super::errors::{SimError, SimResult};
use super::extract::JsonBody;
use super::Simulator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use openclaws_fly::types::{AssignIpRequest, IpAssignment};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The one shared IPv4 address every app gets for `shared_v4`.
pub const SHARED_V4: &str = "66.241.124.10";

/// One assigned address.
#[derive(Debug, Clone, Serialize)]
pub struct IpRec {
    /// The address.
    pub ip: String,
    /// `v6`, `shared_v4`, `v4` or `private_v6`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Region (`global` for anycast addresses).
    pub region: String,
    /// Service it is bound to (empty: the whole app).
    pub service_name: String,
    /// Allocation time.
    pub created_at: DateTime<Utc>,
}

impl IpRec {
    /// Whether this is a public address (`<app>.fly.dev` resolves only with one).
    pub fn is_public(&self) -> bool {
        self.type_ != "private_v6"
    }

    /// The address as Fly lists it.
    pub fn to_wire(&self, org: &str) -> IpAssignment {
        let mut extra = Map::new();
        extra.insert("type".into(), json!(self.type_));
        if self.type_ == "private_v6" {
            extra.insert(
                "network".into(),
                json!({"name": "default", "org_slug": org}),
            );
        }
        IpAssignment {
            ip: self.ip.clone(),
            region: self.region.clone(),
            service_name: self.service_name.clone(),
            shared: self.type_ == "shared_v4",
            egress: false,
            created_at: rfc3339(self.created_at),
            extra,
        }
    }
}

/// `GET /v1/apps/{app}/ip_assignments` → `{"ips":[…]}`.
pub async fn list(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
) -> SimResult<Json<Value>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let ips: Vec<IpAssignment> = w
            .apps
            .get(&app_ref.name)
            .map(|a| a.ips.iter().map(|i| i.to_wire(&app_ref.org)).collect())
            .unwrap_or_default();
        Ok(Json(json!({"ips": ips})))
    })
}

/// `POST /v1/apps/{app}/ip_assignments {"type",…}` → `200` with the new address.
pub async fn assign(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    JsonBody(body): JsonBody<AssignIpRequest>,
) -> SimResult<Json<IpAssignment>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.next_ip += 1;
        let n = w.next_ip;
        let ip = match body.type_.as_str() {
            "v6" => format!("2a09:8280:1::{:x}:{:x}", n >> 16, n & 0xffff),
            "shared_v4" => SHARED_V4.to_string(),
            "v4" => format!("137.66.{}.{}", (n >> 8) & 0xff, n & 0xff),
            "private_v6" => format!("fdaa:0:{:x}::{:x}", n >> 16, n & 0xffff),
            other => {
                return Err(SimError::invalid(format!(
                    "unsupported ip type {other:?}: use v6, shared_v4, v4 or private_v6"
                )))
            }
        };
        let rec = IpRec {
            ip,
            type_: body.type_.clone(),
            region: body
                .region
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "global".into()),
            service_name: body.service_name.clone().unwrap_or_default(),
            created_at: ctx.now,
        };
        let wire = rec.to_wire(&app_ref.org);
        if let Some(a) = w.apps.get_mut(&app_ref.name) {
            a.ips.push(rec);
        }
        Ok(Json(wire))
    })
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
