//! Volumes (spec §2): names repeat, a volume lives on one host (its zone), stays bound to a
//! destroyed machine for the release lag, and is soft-deleted to `pending_destroy`.

use super::auth::Caller;
use super::errors::{SimError, SimResult};
use super::extract::{JsonBody, OptionalJson};
use super::records::volume::VolRec;
use super::state::{AppRef, World};
use super::wire::{
    CreateVolumeRequest, ExtendVolumeRequest, ExtendVolumeResponse, UpdateVolumeRequest, Volume,
    VolumeSnapshot,
};
use super::{Ctx, Simulator};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::TimeDelta;
use rand::seq::SliceRandom;

/// Largest volume Fly creates.
pub const MAX_SIZE_GB: u32 = 500;

fn valid_volume_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 30
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// How long a deleted volume stays listed as `pending_destroy`.
fn soft_delete_window() -> TimeDelta {
    TimeDelta::hours(24)
}

/// A create's validated name, size and filesystem.
fn volume_shape(body: &CreateVolumeRequest) -> SimResult<(String, u32, String)> {
    let name = body.name.clone().unwrap_or_default();
    if !valid_volume_name(&name) {
        return Err(SimError::invalid(
            "volume name must be 1-30 lowercase letters, digits or underscores",
        ));
    }
    let size_gb = body.size_gb.unwrap_or(3);
    let size_gb = u32::try_from(size_gb).unwrap_or(0);
    if size_gb == 0 || size_gb > MAX_SIZE_GB {
        return Err(SimError::invalid(format!(
            "size_gb must be between 1 and {MAX_SIZE_GB}"
        )));
    }
    let fstype = body.fstype.clone().unwrap_or_else(|| "ext4".into());
    if fstype != "ext4" && fstype != "raw" {
        return Err(SimError::invalid("fstype must be ext4 or raw"));
    }
    Ok((name, size_gb, fstype))
}

impl World {
    /// Creates a volume of `app` on a host of its region; with `require_unique_zone` (the
    /// default) not on a host that already has a live volume of the same name.
    fn create_volume(
        &mut self,
        app: &AppRef,
        body: CreateVolumeRequest,
        ctx: &Ctx,
    ) -> SimResult<Volume> {
        let (name, size_gb, fstype) = volume_shape(&body)?;
        let region = body
            .region
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| ctx.config.default_region.clone());
        self.check_capacity(&region, "volume", ctx)?;
        let unique = body.require_unique_zone.unwrap_or(true);
        let zone = self.volume_zone(app, &name, &region, unique, ctx)?;
        let vol = VolRec {
            id: super::ids::volume_id(),
            app_id: app.id.clone(),
            name,
            state: "created".into(),
            size_gb,
            region,
            zone,
            encrypted: body.encrypted.unwrap_or(true),
            attached_machine_id: None,
            fstype,
            snapshot_retention: body.snapshot_retention.unwrap_or(5).clamp(1, 60) as u32,
            auto_backup_enabled: body.auto_backup_enabled.unwrap_or(true),
            created_at: ctx.now,
            destroyed_at: None,
            host_unreachable: false,
        };
        let json = vol.to_json();
        if let Some(a) = self.apps.get_mut(&app.name) {
            a.volumes.push(vol.id.clone());
        }
        self.volumes.insert(vol.id.clone(), vol);
        Ok(json)
    }

    /// A random host of `region` for a new volume `name`; with `unique`, one without a live
    /// volume of that name of the app (`422` when there is none).
    fn volume_zone(
        &mut self,
        app: &AppRef,
        name: &str,
        region: &str,
        unique: bool,
        ctx: &Ctx,
    ) -> SimResult<String> {
        let hosts = self.hosts_of(region, ctx).clone();
        let taken: Vec<String> = if unique {
            let ids = self
                .apps
                .get(&app.name)
                .map(|a| a.volumes.clone())
                .unwrap_or_default();
            ids.iter()
                .filter_map(|id| self.volumes.get(id))
                .filter(|v| v.name == name && v.region == region && !v.is_destroyed())
                .map(|v| v.zone.clone())
                .collect()
        } else {
            Vec::new()
        };
        let free: Vec<&String> = hosts.iter().filter(|h| !taken.contains(h)).collect();
        free.choose(&mut rand::thread_rng())
            .map(|h| (*h).clone())
            .ok_or_else(|| SimError::Other {
                code: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!(
                    "failed to create volume: insufficient resources: no zone in {region} without a volume named {name} (require_unique_zone)"
                ),
                status: Some("volume_placement_capacity"),
            })
    }
}

/// `GET /v1/apps/{app}/volumes`: includes volumes in destroy states.
pub async fn list(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
) -> SimResult<Json<Vec<Volume>>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let ids = w
            .apps
            .get(&app)
            .map(|a| a.volumes.clone())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            let v = w.volume(&app_ref, id, ctx)?;
            let expired = v
                .destroyed_at
                .is_some_and(|at| at + soft_delete_window() <= ctx.now);
            if !expired {
                out.push(v.to_json());
            }
        }
        Ok(Json(out))
    })
}

/// `POST /v1/apps/{app}/volumes` (200, like Fly).
pub async fn create(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    JsonBody(body): JsonBody<CreateVolumeRequest>,
) -> SimResult<Json<Volume>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.create_volume(&app_ref, body, ctx).map(Json)
    })
}

/// `GET /v1/apps/{app}/volumes/{vol}`.
pub async fn get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, vol)): Path<(String, String)>,
) -> SimResult<Json<Volume>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        Ok(Json(w.volume(&app_ref, &vol, ctx)?.to_json()))
    })
}

/// `PUT /v1/apps/{app}/volumes/{vol}`: snapshot settings.
pub async fn update(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, vol)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<UpdateVolumeRequest>,
) -> SimResult<Json<Volume>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let v = w.volume(&app_ref, &vol, ctx)?;
        if v.is_destroyed() {
            return Err(SimError::volume_not_found());
        }
        if let Some(r) = body.snapshot_retention {
            if !(1..=60).contains(&r) {
                return Err(SimError::invalid(
                    "snapshot_retention must be between 1 and 60",
                ));
            }
            v.snapshot_retention = r as u32;
        }
        if let Some(b) = body.auto_backup_enabled {
            v.auto_backup_enabled = b;
        }
        Ok(Json(v.to_json()))
    })
}

/// `DELETE /v1/apps/{app}/volumes/{vol}`: refused while a machine (even a destroyed one within
/// the release lag) holds it; answers with `state: destroyed`, lists show `pending_destroy`.
pub async fn delete(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, vol)): Path<(String, String)>,
) -> SimResult<Json<Volume>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let v = w.volume(&app_ref, &vol, ctx)?;
        if v.host_unreachable {
            return Err(SimError::Other {
                code: StatusCode::SERVICE_UNAVAILABLE,
                message: "unavailable: host unreachable".into(),
                status: None,
            });
        }
        if let Some(holder) = &v.attached_machine_id {
            return Err(SimError::precondition(format!(
                "volume is currently bound to machine: {holder}"
            )));
        }
        if !v.is_destroyed() {
            v.state = "pending_destroy".into();
            v.destroyed_at = Some(ctx.now);
        }
        let mut body = v.to_json();
        body.state = Some("destroyed".into());
        Ok(Json(body))
    })
}

/// `PUT /v1/apps/{app}/volumes/{vol}/extend`: grow only.
pub async fn extend(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, vol)): Path<(String, String)>,
    JsonBody(body): JsonBody<ExtendVolumeRequest>,
) -> SimResult<Json<ExtendVolumeResponse>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let v = w.volume(&app_ref, &vol, ctx)?;
        if v.host_unreachable {
            return Err(SimError::Other {
                code: StatusCode::SERVICE_UNAVAILABLE,
                message: "unavailable: host unreachable".into(),
                status: None,
            });
        }
        if v.is_destroyed() {
            return Err(SimError::volume_not_found());
        }
        let size = body
            .size_gb
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(|| SimError::invalid("size_gb is required"))?;
        if size <= v.size_gb {
            return Err(SimError::invalid(format!(
                "new size {size}GB must be larger than the current size {}GB",
                v.size_gb
            )));
        }
        if size > MAX_SIZE_GB {
            return Err(SimError::invalid(format!(
                "size_gb must not exceed {MAX_SIZE_GB}"
            )));
        }
        v.size_gb = size;
        Ok(Json(ExtendVolumeResponse {
            volume: Some(v.to_json()),
            needs_restart: Some(false),
        }))
    })
}

/// `GET /v1/apps/{app}/volumes/{vol}/snapshots`: no snapshots are simulated yet.
pub async fn list_snapshots(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, vol)): Path<(String, String)>,
) -> SimResult<Json<Vec<VolumeSnapshot>>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.volume(&app_ref, &vol, ctx)?;
        Ok(Json(Vec::new()))
    })
}
