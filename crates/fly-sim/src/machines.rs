//! Machine routes (spec §2, §3): create/get/list/update/delete, lifecycle operations, metadata,
//! events and versions. The state machine itself lives in [`super::records::machine`].

use super::auth::Caller;
use super::clock::delta;
use super::errors::{SimError, SimResult};
use super::extract::{lease_nonce, parse_duration, JsonBody, OptionalJson, QueryPairs};
use super::records::machine::{LeaseRec, MachRec};
use super::state::{AppRef, World};
use super::wire::{
    CreateMachineRequest, Machine, MachineConfig, MachineEvent, MachineVersion,
    MetadataValueResponse, StopRequest, UpdateMachineRequest,
};
use super::{Ctx, Simulator};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Path of a machine route.
type MachinePath = Path<(String, String)>;

fn ok_body() -> Json<Value> {
    Json(json!({"ok": true}))
}

impl World {
    /// Checks that `volume` may be mounted by a new machine; returns its region and host.
    fn claimable_volume(
        &mut self,
        app: &AppRef,
        volume: &str,
        ctx: &Ctx,
    ) -> SimResult<(String, String)> {
        if !self
            .volumes
            .get(volume)
            .is_some_and(|v| v.app_id == app.id && !v.is_destroyed())
        {
            return Err(SimError::precondition(format!("volume {volume} not found")));
        }
        self.settle_volume(volume, ctx);
        let v = self
            .volumes
            .get(volume)
            .ok_or_else(SimError::volume_not_found)?;
        if let Some(holder) = &v.attached_machine_id {
            return Err(SimError::precondition(format!(
                "volume already claimed by machine {holder}"
            )));
        }
        Ok((v.region.clone(), v.zone.clone()))
    }

    /// Places and records a new machine, its boot (or prepare) scheduled; the answer carries
    /// the lease nonce when the create asked for a lease.
    fn create_machine(
        &mut self,
        app: &AppRef,
        req: CreateMachineRequest,
        ctx: &Ctx,
    ) -> SimResult<Machine> {
        let config = required_config(req.config)?;
        if config.mounts.len() > 1 {
            return Err(SimError::invalid("a machine can mount at most one volume"));
        }
        self.check_min_secrets_version(app, req.min_secrets_version, ctx)?;
        let secrets_version =
            (!req.skip_secrets.unwrap_or(false)).then(|| self.secrets_version(app));
        let volume = mounted_volume(&config);
        let (region, host) = self.place_machine(app, req.region.clone(), volume.as_deref(), ctx)?;
        let lat = &ctx.config.latency;
        let pull = self.image_pull(&host, &config, ctx);
        let name = req
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(super::ids::machine_name);
        let mut m = MachRec::new(
            app.id.clone(),
            app.name.clone(),
            name,
            region,
            host,
            config,
            ctx.now,
        );
        m.secrets_version = secrets_version;
        if req.skip_launch.unwrap_or(false) {
            m.schedule_prepare(ctx.now, lat);
        } else {
            m.schedule_boot(ctx.now, pull, lat);
        }
        m.lease = create_lease(req.lease_ttl, &m, ctx);
        let nonce = m.lease.as_ref().map(|l| l.nonce.clone());
        if let Some(vol) = &volume {
            if let Some(v) = self.volumes.get_mut(vol) {
                v.attached_machine_id = Some(m.id.clone());
            }
        }
        let mut wire = m.to_wire(ctx, false);
        wire.nonce = nonce;
        if let Some(a) = self.apps.get_mut(&app.name) {
            a.machines.push(m.id.clone());
        }
        self.machines.insert(m.id.clone(), m);
        Ok(wire)
    }

    /// The region and host of a new machine: its volume's when it mounts one (a different
    /// requested region is refused), else the requested or default region and a random host
    /// there; a full region is refused.
    fn place_machine(
        &mut self,
        app: &AppRef,
        requested: Option<String>,
        volume: Option<&str>,
        ctx: &Ctx,
    ) -> SimResult<(String, String)> {
        let mut region = requested.filter(|r| !r.is_empty());
        let mut host = None;
        if let Some(vol) = volume {
            let (vol_region, zone) = self.claimable_volume(app, vol, ctx)?;
            if let Some(r) = &region {
                if *r != vol_region {
                    return Err(SimError::precondition(format!(
                        "volume {vol} is in region {vol_region}, machine requested region {r}"
                    )));
                }
            }
            region = Some(vol_region);
            host = Some(zone);
        }
        let region = region.unwrap_or_else(|| ctx.config.default_region.clone());
        self.check_capacity(&region, "machine", ctx)?;
        let host = match host {
            Some(h) => h,
            None => self.random_host(&region, ctx),
        };
        Ok((region, host))
    }

    /// The image pull a boot on `host` waits for: only with `cold_host_pull`, the first time
    /// the image lands there.
    fn image_pull(&mut self, host: &str, config: &MachineConfig, ctx: &Ctx) -> Duration {
        let cold = ctx.config.cold_host_pull
            && self
                .pulled
                .insert((host.to_owned(), config.image.clone().unwrap_or_default()));
        if cold {
            ctx.config.latency.image_pull
        } else {
            Duration::ZERO
        }
    }

    fn update_machine(
        &mut self,
        app: &AppRef,
        id: &str,
        req: UpdateMachineRequest,
        nonce: Option<&str>,
        ctx: &Ctx,
    ) -> SimResult<Machine> {
        let config = required_config(req.config)?;
        let m = self.machine(app, id, ctx)?;
        m.require_host()?;
        m.check_lease(nonce, ctx.now)?;
        if let Some(v) = req.current_version.as_deref().filter(|v| !v.is_empty()) {
            if v != m.instance_id {
                return Err(SimError::Conflict(format!(
                    "failed_precondition: machine {id} version mismatch: current version is {}, request was based on {v}",
                    m.instance_id
                )));
            }
        }
        let old = mounted_volume(&m.config);
        let new = mounted_volume(&config);
        if new != old {
            if let Some(vol) = &new {
                self.claimable_volume(app, vol, ctx)?;
            }
            return Err(SimError::precondition(format!(
                "machine {id} cannot change its mounted volume; destroy and recreate it"
            )));
        }
        let (region, guest) = {
            let m = self.machine(app, id, ctx)?;
            (m.region.clone(), m.config.guest.clone())
        };
        self.check_upscale(&region, guest.as_ref(), config.guest.as_ref())?;
        self.check_min_secrets_version(app, req.min_secrets_version, ctx)?;
        let secrets_version =
            (!req.skip_secrets.unwrap_or(false)).then(|| self.secrets_version(app));
        let m = self.machine(app, id, ctx)?;
        m.update(config, req.skip_launch.unwrap_or(false), ctx)?;
        m.secrets_version = secrets_version;
        Ok(m.to_wire(ctx, false))
    }

    /// Runs a lease-gated mutation on a live machine.
    fn mutate_machine<T>(
        &mut self,
        app: &AppRef,
        id: &str,
        nonce: Option<&str>,
        ctx: &Ctx,
        f: impl FnOnce(&mut MachRec, &Ctx) -> SimResult<T>,
    ) -> SimResult<T> {
        let m = self.machine(app, id, ctx)?;
        m.require_host()?;
        m.check_lease(nonce, ctx.now)?;
        f(m, ctx)
    }
}

/// The lease a create asks for with a positive `lease_ttl` (seconds), held by the simulator's
/// lease owner on the machine's first version.
fn create_lease(ttl: Option<i64>, m: &MachRec, ctx: &Ctx) -> Option<LeaseRec> {
    let ttl = ttl.and_then(|t| u64::try_from(t).ok()).filter(|t| *t > 0)?;
    Some(LeaseRec {
        nonce: super::ids::nonce(),
        owner: ctx.config.lease_owner.clone(),
        description: String::new(),
        expires_at: ctx.now + delta(Duration::from_secs(ttl)),
        version: m.instance_id.clone(),
    })
}

/// The config of a create or update; an image is required.
fn required_config(config: Option<MachineConfig>) -> SimResult<MachineConfig> {
    config
        .filter(|c| c.image.as_deref().is_some_and(|i| !i.trim().is_empty()))
        .ok_or_else(|| SimError::invalid("config.image is required"))
}

/// The volume a config mounts, if any.
pub fn mounted_volume(config: &MachineConfig) -> Option<String> {
    config.mounts.first().and_then(|m| m.volume.clone())
}

/// `GET /v1/apps/{app}/machines` with `include_deleted`, `region`, `state`, `summary` and
/// repeated `metadata.<k>=<v>` (AND-ed).
pub async fn list(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    query: QueryPairs,
) -> SimResult<Json<Vec<Machine>>> {
    let include_deleted = query.flag("include_deleted");
    let summary = query.flag("summary");
    let region = query.get("region").map(str::to_string);
    let states: Vec<String> = query
        .all("state")
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let metadata: Vec<(String, String)> = query
        .0
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata.")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let ids = w
            .apps
            .get(&app)
            .map(|a| a.machines.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in &ids {
            let m = w.machine_any(&app_ref, id, ctx)?;
            let keep = (include_deleted || m.state != "destroyed")
                && region.as_ref().is_none_or(|r| *r == m.region)
                && (states.is_empty() || states.contains(&m.state))
                && metadata
                    .iter()
                    .all(|(k, v)| m.config.metadata.get(k) == Some(v));
            if keep {
                out.push(m.to_wire(ctx, summary));
            }
        }
        Ok(Json(out))
    })
}

/// `POST /v1/apps/{app}/machines`.
pub async fn create(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path(app): Path<String>,
    JsonBody(body): JsonBody<CreateMachineRequest>,
) -> SimResult<Json<Machine>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.create_machine(&app_ref, body, ctx).map(Json)
    })
}

/// `GET /v1/apps/{app}/machines/{id}`.
pub async fn get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
) -> SimResult<Json<Machine>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        Ok(Json(w.machine(&app_ref, &id, ctx)?.to_wire(ctx, false)))
    })
}

/// `POST /v1/apps/{app}/machines/{id}`: full config replace.
pub async fn update(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    JsonBody(body): JsonBody<UpdateMachineRequest>,
) -> SimResult<Json<Machine>> {
    let nonce = lease_nonce(&headers);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.update_machine(&app_ref, &id, body, nonce.as_deref(), ctx)
            .map(Json)
    })
}

/// `DELETE /v1/apps/{app}/machines/{id}[?force=true|kill=true]`.
pub async fn delete(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    query: QueryPairs,
) -> SimResult<Json<Value>> {
    let force = query.flag("force") || query.flag("kill");
    let nonce = lease_nonce(&headers);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.mutate_machine(&app_ref, &id, nonce.as_deref(), ctx, |m, ctx| {
            m.destroy(force, ctx)
        })?;
        Ok(ok_body())
    })
}

/// `POST …/start`: `{"previous_state","migrated","new_host"}`.
pub async fn start(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    let nonce = lease_nonce(&headers);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        if let Some(region) = w.machines.get(&id).map(|m| m.region.clone()) {
            w.check_capacity(&region, "machine", ctx)?;
        }
        let previous =
            w.mutate_machine(&app_ref, &id, nonce.as_deref(), ctx, |m, ctx| m.start(ctx))?;
        Ok(Json(
            json!({"previous_state": previous, "migrated": false, "new_host": ""}),
        ))
    })
}

/// `POST …/stop` with optional `{"signal","timeout"}`.
pub async fn stop(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<StopRequest>,
) -> SimResult<Json<Value>> {
    let timeout = match body.timeout.as_deref() {
        Some(t) => Some(
            parse_duration(t)
                .ok_or_else(|| SimError::invalid(format!("invalid stop timeout {t:?}")))?,
        ),
        None => None,
    };
    let nonce = lease_nonce(&headers);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.mutate_machine(&app_ref, &id, nonce.as_deref(), ctx, |m, ctx| {
            m.stop(timeout, ctx)
        })?;
        Ok(ok_body())
    })
}

/// `POST …/restart`.
pub async fn restart(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    let nonce = lease_nonce(&headers);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.mutate_machine(&app_ref, &id, nonce.as_deref(), ctx, |m, ctx| {
            m.restart(ctx)
        })?;
        Ok(ok_body())
    })
}

/// `POST …/suspend`.
pub async fn suspend(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    let nonce = lease_nonce(&headers);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.mutate_machine(&app_ref, &id, nonce.as_deref(), ctx, |m, ctx| {
            m.suspend(ctx)
        })?;
        Ok(ok_body())
    })
}

const SIGNALS: [&str; 16] = [
    "SIGABRT", "SIGALRM", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGKILL", "SIGPIPE", "SIGQUIT",
    "SIGSEGV", "SIGTERM", "SIGTRAP", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT",
];

/// `POST …/signal` `{"signal":"SIGTERM"|9}`: validated and recorded; the inert machine ignores it.
pub async fn signal(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> SimResult<Json<Value>> {
    let valid = match body.get("signal") {
        Some(Value::String(s)) => SIGNALS.contains(&s.as_str()),
        Some(Value::Number(n)) => n.as_u64().is_some_and(|n| (1..=31).contains(&n)),
        _ => false,
    };
    if !valid {
        return Err(SimError::invalid(
            "signal must be a known signal name or number",
        ));
    }
    let nonce = lease_nonce(&headers);
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        w.mutate_machine(&app_ref, &id, nonce.as_deref(), ctx, |m, _| {
            if m.state != "started" {
                return Err(SimError::precondition(format!(
                    "machine is not started (state '{}')",
                    m.state
                )));
            }
            Ok(())
        })?;
        Ok(ok_body())
    })
}

fn set_cordon(
    sim: &Simulator,
    caller: &Caller,
    app: &str,
    id: &str,
    nonce: Option<&str>,
    cordoned: bool,
) -> SimResult<Json<Value>> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(app, caller, ctx)?;
        w.mutate_machine(&app_ref, id, nonce, ctx, |m, ctx| {
            m.cordoned = cordoned;
            m.updated_at = ctx.now;
            Ok(())
        })?;
        Ok(ok_body())
    })
}

/// `POST …/cordon`.
pub async fn cordon(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    set_cordon(
        &sim,
        &caller,
        &app,
        &id,
        lease_nonce(&headers).as_deref(),
        true,
    )
}

/// `POST …/uncordon`.
pub async fn uncordon(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> SimResult<Json<Value>> {
    set_cordon(
        &sim,
        &caller,
        &app,
        &id,
        lease_nonce(&headers).as_deref(),
        false,
    )
}

/// Bulk metadata body: `null` or `""` removes a key; `machine_version` guards against staleness.
#[derive(Debug, Default, Deserialize)]
pub struct MetadataBody {
    #[serde(default)]
    metadata: BTreeMap<String, Option<String>>,
    #[serde(default)]
    machine_version: Option<String>,
}

/// Per-key metadata body.
#[derive(Debug, Default, Deserialize)]
pub struct MetadataValue {
    #[serde(default)]
    value: Option<String>,
}

/// Applies a metadata change to the machine (not lease-gated, no new version).
fn edit_metadata(
    sim: &Simulator,
    caller: &Caller,
    app: &str,
    id: &str,
    f: impl FnOnce(&mut BTreeMap<String, String>, &str) -> SimResult<()>,
) -> SimResult<StatusCode> {
    sim.write(|w, ctx| {
        let app_ref = w.app_ref(app, caller, ctx)?;
        let m = w.machine(&app_ref, id, ctx)?;
        let version = m.instance_id.clone();
        f(&mut m.config.metadata, &version)?;
        if let Some(v) = m.versions.last_mut() {
            v.config.metadata = m.config.metadata.clone();
        }
        m.updated_at = ctx.now;
        Ok(StatusCode::NO_CONTENT)
    })
}

fn apply_bulk(
    meta: &mut BTreeMap<String, String>,
    version: &str,
    body: MetadataBody,
    replace: bool,
) -> SimResult<()> {
    if let Some(v) = body.machine_version.filter(|v| !v.is_empty()) {
        if v != version {
            return Err(SimError::precondition(format!(
                "machine version mismatch: current version is {version}"
            )));
        }
    }
    if replace {
        meta.clear();
    }
    for (k, v) in body.metadata {
        match v.filter(|v| !v.is_empty()) {
            Some(v) => {
                meta.insert(k, v);
            }
            None => {
                meta.remove(&k);
            }
        }
    }
    Ok(())
}

/// `GET …/metadata`.
pub async fn metadata_get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
) -> SimResult<Json<BTreeMap<String, String>>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        Ok(Json(w.machine(&app_ref, &id, ctx)?.config.metadata.clone()))
    })
}

/// `PUT …/metadata`: replace the whole map.
pub async fn metadata_put(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    JsonBody(body): JsonBody<MetadataBody>,
) -> SimResult<StatusCode> {
    edit_metadata(&sim, &caller, &app, &id, |meta, version| {
        apply_bulk(meta, version, body, true)
    })
}

/// `PATCH …/metadata`: merge.
pub async fn metadata_patch(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    JsonBody(body): JsonBody<MetadataBody>,
) -> SimResult<StatusCode> {
    edit_metadata(&sim, &caller, &app, &id, |meta, version| {
        apply_bulk(meta, version, body, false)
    })
}

/// `GET …/metadata/{key}` → `{"value"}`.
pub async fn metadata_key_get(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id, key)): Path<(String, String, String)>,
) -> SimResult<Json<MetadataValueResponse>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let m = w.machine(&app_ref, &id, ctx)?;
        m.config
            .metadata
            .get(&key)
            .map(|v| {
                Json(MetadataValueResponse {
                    value: Some(v.clone()),
                })
            })
            .ok_or_else(|| SimError::NotFound(format!("not_found: metadata key {key} not found")))
    })
}

/// `POST …/metadata/{key}` `{"value"}`.
pub async fn metadata_key_set(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id, key)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<MetadataValue>,
) -> SimResult<StatusCode> {
    let value = body
        .value
        .ok_or_else(|| SimError::invalid("value is required"))?;
    edit_metadata(&sim, &caller, &app, &id, |meta, _| {
        meta.insert(key, value);
        Ok(())
    })
}

/// `DELETE …/metadata/{key}`.
pub async fn metadata_key_delete(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id, key)): Path<(String, String, String)>,
) -> SimResult<StatusCode> {
    edit_metadata(&sim, &caller, &app, &id, |meta, _| {
        meta.remove(&key);
        Ok(())
    })
}

/// `GET …/events?limit=N` (default 20, max 50), newest first.
pub async fn events(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
    query: QueryPairs,
) -> SimResult<Json<Vec<MachineEvent>>> {
    let limit = query.u64("limit")?.unwrap_or(20).clamp(1, 50) as usize;
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let m = w.machine(&app_ref, &id, ctx)?;
        Ok(Json(m.events.iter().rev().take(limit).cloned().collect()))
    })
}

/// `GET …/versions`, newest first.
pub async fn versions(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): MachinePath,
) -> SimResult<Json<Vec<MachineVersion>>> {
    sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let m = w.machine(&app_ref, &id, ctx)?;
        let versions = m
            .versions
            .iter()
            .rev()
            .map(|v| MachineVersion {
                version: Some(v.version.clone()),
                user_config: Some(v.config.clone()),
            })
            .collect();
        Ok(Json(versions))
    })
}
