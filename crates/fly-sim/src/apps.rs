//! Apps (spec §2): a global name namespace, per-org ownership, asynchronous delete that takes
//! the app's machines and volumes with it.

use super::auth::Caller;
use super::clock::delta;
use super::errors::{SimError, SimResult};
use super::extract::{JsonBody, QueryPairs};
use super::records::app::AppRec;
use super::state::World;
use super::wire::{
    App, AppOrganizationInfo, CreateAppRequest, CreateAppResponse, ListAppsResponse,
};
use super::{Ctx, Simulator};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

/// Fly's app-name rule: lowercase letters, digits and dashes, under 64 characters.
pub fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl World {
    /// Registers a new app; the name must be free in every org.
    pub fn insert_app(
        &mut self,
        name: &str,
        org: &str,
        network: Option<String>,
        idempotency_key: Option<String>,
        ctx: &Ctx,
    ) -> SimResult<&AppRec> {
        self.settle_app(name, ctx);
        if self.apps.contains_key(name) {
            return Err(SimError::Unprocessable {
                message: "Validation failed: Name has already been taken".into(),
                status: Some("name_taken"),
            });
        }
        let internal_numeric_id = self.numeric_id();
        let app = AppRec {
            id: super::ids::app_id(),
            name: name.to_string(),
            org: org.to_string(),
            network,
            internal_numeric_id,
            idempotency_key,
            created_at: ctx.now,
            deleting_at: None,
            machines: Vec::new(),
            volumes: Vec::new(),
            secrets: Default::default(),
            secrets_version: 0,
            ips: Vec::new(),
            certificates: Default::default(),
        };
        Ok(self.apps.entry(name.to_string()).or_insert(app))
    }

    /// The full App object (`None` for an unknown name).
    pub fn app_json(&mut self, name: &str, ctx: &Ctx) -> Option<App> {
        let (ids, vols) = match self.apps.get(name) {
            Some(a) => (a.machines.clone(), a.volumes.clone()),
            None => return None,
        };
        let mut machine_count = 0i64;
        for id in &ids {
            self.settle_machine(id, ctx);
            if self
                .machines
                .get(id)
                .is_some_and(|m| m.state != "destroyed")
            {
                machine_count += 1;
            }
        }
        let volume_count = vols
            .iter()
            .filter(|v| self.volumes.get(*v).is_some_and(|v| !v.is_destroyed()))
            .count();
        let app = self.apps.get(name)?;
        let status = if app.deleting_at.is_some() {
            "suspended"
        } else if machine_count > 0 {
            "deployed"
        } else {
            "pending"
        };
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Some(App {
            id: Some(app.id.clone()),
            name: Some(app.name.clone()),
            status: Some(status.into()),
            network: Some(app.network.clone().unwrap_or_else(|| "default".into())),
            internal_numeric_id: i64::try_from(app.internal_numeric_id).ok(),
            machine_count: Some(machine_count),
            volume_count: Some(count(volume_count)),
            organization: Some(AppOrganizationInfo {
                name: Some(app.org.clone()),
                slug: Some(app.org.clone()),
                internal_numeric_id: None,
            }),
            network_cidr: None,
        })
    }
}

/// `POST /v1/apps` body: the document's `CreateAppRequest`, plus `app_name`, the spelling of
/// Fly's docs page (and of its January 2024 document), still accepted for `name`.
#[derive(Debug, Default, Deserialize)]
pub struct CreateAppBody {
    #[serde(flatten)]
    request: CreateAppRequest,
    #[serde(default)]
    app_name: Option<String>,
}

/// `POST /v1/apps`: `201 {"id","created_at"}` (`CreateAppResponse`, `created_at` in Unix
/// milliseconds), as the document declares. With `?wait=true` (not in the document; fly-go sends
/// it and decodes the answer as an `App`) the whole app.
pub async fn create(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    query: QueryPairs,
    JsonBody(CreateAppBody {
        request: body,
        app_name,
    }): JsonBody<CreateAppBody>,
) -> SimResult<Response> {
    let name = body
        .name
        .clone()
        .or(app_name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| SimError::Unprocessable {
            message: "Validation failed: Name can't be blank".into(),
            status: None,
        })?;
    if !valid_app_name(&name) {
        return Err(SimError::Unprocessable {
            message:
                "Validation failed: Name may only contain lowercase letters, numbers, and dashes"
                    .into(),
            status: None,
        });
    }
    let org = body.org_slug.clone().unwrap_or_else(|| caller.org.clone());
    if org != caller.org {
        return Err(SimError::NotFound("organization not found".into()));
    }
    let wait = query.flag("wait");
    sim.write(|w, ctx| {
        w.settle_app(&name, ctx);
        let replay = w.apps.get(&name).is_some_and(|a| {
            a.org == org && a.idempotency_key.is_some() && a.idempotency_key == body.idempotency_key
        });
        if !replay {
            w.insert_app(
                &name,
                &org,
                body.network.clone(),
                body.idempotency_key.clone(),
                ctx,
            )?;
        }
        if wait {
            let app = w.app_json(&name, ctx).ok_or_else(SimError::app_not_found)?;
            return Ok((StatusCode::CREATED, Json(app)).into_response());
        }
        let app = w.apps.get(&name).ok_or_else(SimError::app_not_found)?;
        let created = CreateAppResponse {
            id: Some(app.id.clone()),
            created_at: Some(app.created_at.timestamp_millis()),
        };
        Ok((StatusCode::CREATED, Json(created)).into_response())
    })
}

/// `GET /v1/apps/{app}`: 200, 404, or 403 when another org owns the name.
pub async fn get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
) -> SimResult<Json<App>> {
    sim.read(|w, ctx| {
        w.app_ref(&app, &caller, ctx)?;
        w.app_json(&app, ctx)
            .map(Json)
            .ok_or_else(SimError::app_not_found)
    })
}

/// `GET /v1/apps?org_slug=`.
pub async fn list(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    query: QueryPairs,
) -> SimResult<Json<ListAppsResponse>> {
    let org = query.get("org_slug").unwrap_or(&caller.org).to_string();
    if org != caller.org {
        return Err(SimError::NotFound("organization not found".into()));
    }
    sim.read(|w, ctx| {
        let mut names: Vec<String> = w
            .apps
            .values()
            .filter(|a| a.org == org)
            .map(|a| a.name.clone())
            .collect();
        names.sort();
        let mut apps = Vec::with_capacity(names.len());
        for name in &names {
            w.settle_app(name, ctx);
            apps.extend(w.app_json(name, ctx));
        }
        Ok(Json(ListAppsResponse {
            total_apps: i64::try_from(apps.len()).ok(),
            apps,
        }))
    })
}

/// `DELETE /v1/apps/{app}[?force=true]`: 202; the app is gone after `latency.app_delete`.
pub async fn delete(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    query: QueryPairs,
) -> SimResult<StatusCode> {
    let force = query.flag("force");
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let ids = w.apps.get(&app).map(|a| a.machines.clone()).unwrap_or_default();
        if !force {
            if let Some(code) = ctx.config.app_delete_guard {
                for id in &ids {
                    w.settle_machine(id, ctx);
                    let running = w.machines.get(id).is_some_and(|m| {
                        matches!(
                            m.state.as_str(),
                            "started" | "starting" | "replacing" | "restarting"
                        )
                    });
                    if running {
                        return Err(SimError::Other {
                            code,
                            message: format!(
                                "failed_precondition: app {} has running machines; stop them or pass force=true",
                                app_ref.name
                            ),
                            status: None,
                        });
                    }
                }
            }
        }
        for id in &ids {
            w.settle_machine(id, ctx);
            if let Some(m) = w.machines.get_mut(id) {
                if !matches!(m.state.as_str(), "destroying" | "destroyed") {
                    m.destroy(true, ctx)?;
                }
            }
        }
        let vols = w.apps.get(&app).map(|a| a.volumes.clone()).unwrap_or_default();
        for id in &vols {
            if let Some(v) = w.volumes.get_mut(id) {
                if !v.is_destroyed() {
                    v.state = "pending_destroy".into();
                    v.destroyed_at = Some(ctx.now);
                }
            }
        }
        if let Some(a) = w.apps.get_mut(&app) {
            if a.deleting_at.is_none() {
                a.deleting_at = Some(ctx.now + delta(ctx.config.latency.app_delete));
            }
        }
        Ok(StatusCode::ACCEPTED)
    })
}
