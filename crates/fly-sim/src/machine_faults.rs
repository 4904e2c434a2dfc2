//! Machine-level faults (spec §6 items 7–9, 11, 12, 15) under `/_sim/machines/{id}/…`: crash
//! loops, out-of-memory kills, stuck transitions, launch failures, an unreachable host and a lease held by someone
//! else. One-shot crashes and boot failures live in [`super::control`].

use super::clock::delta;
use super::errors::{SimError, SimResult};
use super::extract::OptionalJson;
use super::records::machine::{LeaseRec, LoopExit};
use super::Simulator;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// The machine-fault routes.
pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route(
            "/_sim/machines/{id}/crash-loop",
            post(crash_loop).delete(stop_crash_loop),
        )
        .route(
            "/_sim/machines/{id}/oom-kill",
            post(oom_kill).delete(stop_crash_loop),
        )
        .route("/_sim/machines/{id}/stuck", post(stuck).delete(release))
        .route(
            "/_sim/machines/{id}/unreachable",
            post(unreachable).delete(reachable),
        )
        .route("/_sim/machines/{id}/foreign-lease", post(foreign_lease))
        .route("/_sim/machines/{id}/migrate", post(migrate))
        .with_state(sim)
}

/// Runs `f` on a settled machine (destroyed ones included).
fn with_machine(
    sim: &Simulator,
    id: &str,
    f: impl FnOnce(&mut super::records::machine::MachRec, &super::Ctx) -> SimResult<Value>,
) -> SimResult<Json<Value>> {
    sim.write(|w, ctx| {
        let m = w
            .machines
            .get_mut(id)
            .ok_or_else(SimError::machine_not_found)?;
        m.settle(ctx);
        f(m, ctx).map(Json)
    })
}

#[derive(Debug, Default, Deserialize)]
struct CrashLoop {
    #[serde(default)]
    exit_code: Option<i32>,
}

/// `POST /_sim/machines/{id}/crash-loop {"exit_code"?}`: the process exits every time the
/// machine reaches `started` (now too, if it is started); restart policy and backoff apply, so
/// `restart_count` grows.
async fn crash_loop(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CrashLoop>,
) -> SimResult<Json<Value>> {
    with_machine(&sim, &id, |m, ctx| {
        let code = body.exit_code.unwrap_or(1);
        m.crash_loop = Some(LoopExit {
            exit_code: code,
            oom_killed: false,
        });
        if m.state == "started" {
            m.crash(code, false, ctx)?;
        }
        Ok(json!({"id": m.id, "state": m.state, "restart_count": m.restart_count}))
    })
}

/// Exit code of a process the kernel's out-of-memory killer ended (128 + SIGKILL).
const OOM_EXIT_CODE: i32 = 137;

#[derive(Debug, Default, Deserialize)]
struct OomKill {
    #[serde(default, rename = "loop")]
    repeat: bool,
}

/// `POST /_sim/machines/{id}/oom-kill {"loop"?}`: the kernel's out-of-memory killer ends the
/// started machine's process (an `exit` event with `oom_killed: true`, exit code 137); with
/// `loop`, again every time it starts (a gateway too big for its machine). The restart policy
/// applies. `DELETE` (or `DELETE …/crash-loop`) stops the loop.
async fn oom_kill(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<OomKill>,
) -> SimResult<Json<Value>> {
    with_machine(&sim, &id, |m, ctx| {
        if body.repeat {
            m.crash_loop = Some(LoopExit {
                exit_code: OOM_EXIT_CODE,
                oom_killed: true,
            });
        }
        m.crash(OOM_EXIT_CODE, true, ctx)?;
        Ok(json!({"id": m.id, "state": m.state, "restart_count": m.restart_count}))
    })
}

/// `DELETE /_sim/machines/{id}/crash-loop`: the process stays up again.
async fn stop_crash_loop(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
) -> SimResult<Json<Value>> {
    with_machine(&sim, &id, |m, _| {
        m.crash_loop = None;
        Ok(json!({"id": m.id, "state": m.state, "restart_count": m.restart_count}))
    })
}

#[derive(Debug, Default, Deserialize)]
struct Stuck {
    #[serde(default)]
    state: Option<String>,
}

/// `POST /_sim/machines/{id}/stuck {"state"?}`: transitions stop while the machine is in
/// `state` (e.g. `created`, `starting`, `replacing`, `destroying`; default: where it is now)
/// until released.
async fn stuck(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<Stuck>,
) -> SimResult<Json<Value>> {
    with_machine(&sim, &id, |m, _| {
        let state = body
            .state
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| m.state.clone());
        m.stuck_in = Some(state.clone());
        Ok(json!({"id": m.id, "state": m.state, "stuck_in": state}))
    })
}

/// `DELETE /_sim/machines/{id}/stuck`: overdue transitions happen at once.
async fn release(State(sim): State<Simulator>, Path(id): Path<String>) -> SimResult<Json<Value>> {
    with_machine(&sim, &id, |m, ctx| {
        m.stuck_in = None;
        m.settle(ctx);
        Ok(json!({"id": m.id, "state": m.state}))
    })
}

/// Marks the machine's host (and every machine and volume on it) reachable or not.
fn set_host(sim: &Simulator, id: &str, unreachable: bool) -> SimResult<Json<Value>> {
    sim.write(|w, _| {
        let host = w
            .machines
            .get(id)
            .map(|m| m.host.clone())
            .ok_or_else(SimError::machine_not_found)?;
        for m in w.machines.values_mut().filter(|m| m.host == host) {
            m.host_unreachable = unreachable;
        }
        for v in w.volumes.values_mut().filter(|v| v.zone == host) {
            v.host_unreachable = unreachable;
        }
        if unreachable {
            w.unreachable_hosts.insert(host.clone());
        } else {
            w.unreachable_hosts.remove(&host);
        }
        let status = if unreachable { "unreachable" } else { "ok" };
        Ok(Json(json!({"host": host, "host_status": status})))
    })
}

/// `POST /_sim/machines/{id}/unreachable`: its host goes dark (spec §6 item 11).
async fn unreachable(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
) -> SimResult<Json<Value>> {
    set_host(&sim, &id, true)
}

/// `DELETE /_sim/machines/{id}/unreachable`: the host comes back.
async fn reachable(State(sim): State<Simulator>, Path(id): Path<String>) -> SimResult<Json<Value>> {
    set_host(&sim, &id, false)
}

#[derive(Debug, Default, Deserialize)]
struct ForeignLease {
    #[serde(default)]
    seconds: Option<u64>,
    #[serde(default)]
    owner: Option<String>,
}

/// `POST /_sim/machines/{id}/foreign-lease {"seconds"?: 60, "owner"?}`: someone else (a human
/// running `fly deploy`) holds the lease; its nonce is never revealed.
async fn foreign_lease(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ForeignLease>,
) -> SimResult<Json<Value>> {
    with_machine(&sim, &id, |m, ctx| {
        let seconds = body.seconds.unwrap_or(60).min(86_400 * 365);
        let lease = LeaseRec {
            nonce: super::ids::nonce(),
            owner: body
                .owner
                .unwrap_or_else(|| "someone-else@example.com".into()),
            description: "fly deploy".into(),
            expires_at: ctx.now + delta(std::time::Duration::from_secs(seconds)),
            version: m.instance_id.clone(),
        };
        let out =
            json!({"id": m.id, "owner": lease.owner, "expires_at": lease.expires_at.timestamp()});
        m.lease = Some(lease);
        Ok(out)
    })
}

/// `POST /_sim/machines/{id}/migrate`: Fly moves the machine to another host in its region; its
/// volume is forked to a **new volume id** there (the old one goes `pending_destroy`) and the
/// machine restarts mounting the fork. Answers the old and new host and volume ids.
async fn migrate(State(sim): State<Simulator>, Path(id): Path<String>) -> SimResult<Json<Value>> {
    sim.write(|w, ctx| {
        w.settle_machine(&id, ctx);
        let m = w
            .machines
            .get(&id)
            .filter(|m| !matches!(m.state.as_str(), "destroying" | "destroyed"))
            .ok_or_else(SimError::machine_not_found)?;
        let (region, old_host, app_name) = (m.region.clone(), m.host.clone(), m.app_name.clone());
        let old_vol = super::machines::mounted_volume(&m.config);
        let new_host = w
            .hosts_of(&region, ctx)
            .iter()
            .find(|h| **h != old_host)
            .cloned()
            .unwrap_or_else(|| old_host.clone());
        let mut new_vol = None;
        if let Some(old) = old_vol.as_deref().and_then(|v| w.volumes.get(v)).cloned() {
            let mut fork = old.clone();
            fork.id = super::ids::volume_id();
            fork.zone = new_host.clone();
            fork.created_at = ctx.now;
            fork.attached_machine_id = Some(id.clone());
            fork.host_unreachable = w.unreachable_hosts.contains(&new_host);
            if let Some(v) = w.volumes.get_mut(&old.id) {
                v.state = "pending_destroy".into();
                v.destroyed_at = Some(ctx.now);
                v.attached_machine_id = None;
            }
            if let Some(a) = w.apps.get_mut(&app_name) {
                a.volumes.push(fork.id.clone());
            }
            new_vol = Some(fork.id.clone());
            w.volumes.insert(fork.id.clone(), fork);
        }
        let m = w
            .machines
            .get_mut(&id)
            .ok_or_else(SimError::machine_not_found)?;
        m.host_unreachable = w.unreachable_hosts.contains(&new_host);
        m.migrate(new_host.clone(), new_vol.clone(), ctx);
        Ok(Json(json!({
            "id": id, "state": m.state,
            "old_host": old_host, "new_host": new_host,
            "old_volume": old_vol, "new_volume": new_vol,
        })))
    })
}
