//! The simulated Fly account: every app, volume and machine, in one struct behind the
//! simulator's mutex. Lookups are map lookups; transitions are applied lazily on access.

use super::auth::Caller;
use super::errors::{SimError, SimResult};
use super::records::app::AppRec;
use super::records::dns::{DnsRecord, Zone};
use super::records::machine::MachRec;
use super::records::volume::VolRec;
use super::Ctx;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The app a request addresses, resolved and authorised.
#[derive(Debug, Clone)]
pub struct AppRef {
    /// App id (machines and volumes point at this, so a reused name never sees old resources).
    pub id: String,
    /// App name.
    pub name: String,
    /// Owning org.
    pub org: String,
}

/// All simulated resources.
#[derive(Debug, Default, Serialize)]
pub struct World {
    /// Live apps (including ones whose delete is still in progress), by name.
    pub apps: HashMap<String, AppRec>,
    /// Apps whose delete completed, kept for `/_sim/state`.
    pub deleted_apps: Vec<AppRec>,
    /// Every volume ever created, by id.
    pub volumes: HashMap<String, VolRec>,
    /// Every machine ever created, by id (destroyed ones included).
    pub machines: HashMap<String, MachRec>,
    /// Host ids per region; a volume's zone is one of these.
    pub hosts: HashMap<String, Vec<String>>,
    /// `(host, image)` pairs already pulled, for the cold-host option.
    #[serde(skip)]
    pub pulled: HashSet<(String, String)>,
    /// Hosted DNS zones.
    pub zones: Vec<Zone>,
    /// The DNS table.
    pub dns: Vec<DnsRecord>,
    /// Regions marked full through `/_sim/regions/{region}`.
    pub full_regions: HashSet<String>,
    /// Hosts marked unreachable through `/_sim`.
    pub unreachable_hosts: HashSet<String>,
    /// Addresses handed out so far (each allocation is new).
    #[serde(skip)]
    pub next_ip: u64,
    /// Next `internal_numeric_id`.
    #[serde(skip)]
    pub next_numeric_id: u64,
}

impl World {
    /// Finishes an app delete whose latency has passed.
    pub fn settle_app(&mut self, name: &str, ctx: &Ctx) {
        let due = self
            .apps
            .get(name)
            .and_then(|a| a.deleting_at)
            .is_some_and(|at| at <= ctx.now);
        if due {
            if let Some(app) = self.apps.remove(name) {
                self.deleted_apps.push(app);
            }
        }
    }

    /// Resolves an app name for a caller: 404 when absent, 403 when another org owns it.
    pub fn app_ref(&mut self, name: &str, caller: &Caller, ctx: &Ctx) -> SimResult<AppRef> {
        self.settle_app(name, ctx);
        let app = self.apps.get(name).ok_or_else(SimError::app_not_found)?;
        if app.org != caller.org {
            return Err(SimError::Forbidden("unauthorized".into()));
        }
        Ok(AppRef {
            id: app.id.clone(),
            name: app.name.clone(),
            org: app.org.clone(),
        })
    }

    /// Applies a machine's due transitions.
    pub fn settle_machine(&mut self, id: &str, ctx: &Ctx) {
        if let Some(m) = self.machines.get_mut(id) {
            m.settle(ctx);
        }
    }

    /// A machine of `app`, settled, including destroyed ones (for `wait` and `include_deleted`).
    pub fn machine_any(&mut self, app: &AppRef, id: &str, ctx: &Ctx) -> SimResult<&mut MachRec> {
        match self.machines.get_mut(id) {
            Some(m) if m.app_id == app.id => {
                m.settle(ctx);
                Ok(m)
            }
            _ => Err(SimError::machine_not_found()),
        }
    }

    /// A live machine of `app`, settled; destroyed or unknown is `404 not_found: machine not found`.
    pub fn machine(&mut self, app: &AppRef, id: &str, ctx: &Ctx) -> SimResult<&mut MachRec> {
        let m = self.machine_any(app, id, ctx)?;
        if m.state == "destroyed" {
            return Err(SimError::machine_not_found());
        }
        Ok(m)
    }

    /// Settles a volume: releases it once its machine is destroyed and the release lag passed.
    pub fn settle_volume(&mut self, id: &str, ctx: &Ctx) {
        let Some(holder) = self
            .volumes
            .get(id)
            .and_then(|v| v.attached_machine_id.clone())
        else {
            return;
        };
        self.settle_machine(&holder, ctx);
        let released = match self.machines.get(&holder) {
            None => true,
            Some(m) => m.destroyed_at.is_some_and(|at| {
                at + super::clock::delta(ctx.config.latency.volume_release) <= ctx.now
            }),
        };
        if released {
            if let Some(v) = self.volumes.get_mut(id) {
                v.attached_machine_id = None;
            }
        }
    }

    /// A volume of `app`, settled.
    pub fn volume(&mut self, app: &AppRef, id: &str, ctx: &Ctx) -> SimResult<&mut VolRec> {
        if self.volumes.get(id).is_none_or(|v| v.app_id != app.id) {
            return Err(SimError::volume_not_found());
        }
        self.settle_volume(id, ctx);
        self.volumes
            .get_mut(id)
            .ok_or_else(SimError::volume_not_found)
    }

    /// The host pool of a region, created on first use.
    pub fn hosts_of(&mut self, region: &str, ctx: &Ctx) -> &Vec<String> {
        let want = ctx.config.hosts_per_region.clamp(1, 4096);
        self.hosts.entry(region.to_string()).or_insert_with(|| {
            let mut hosts: Vec<String> = Vec::with_capacity(want);
            while hosts.len() < want {
                let h = super::ids::host_id();
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
            hosts
        })
    }

    /// A random host of `region`.
    pub fn random_host(&mut self, region: &str, ctx: &Ctx) -> String {
        self.hosts_of(region, ctx)
            .choose(&mut rand::thread_rng())
            .cloned()
            .unwrap_or_default()
    }

    /// Refuses placing a `kind` (`machine` or `volume`) in a region marked full (spec §6 item 6):
    /// `insufficient_capacity` for machines, `volume_placement_capacity` for volumes.
    pub fn check_capacity(&self, region: &str, kind: &str, ctx: &Ctx) -> SimResult<()> {
        if !self.full_regions.contains(region) {
            return Ok(());
        }
        let (message, status) = if kind == "volume" {
            (
                format!("insufficient resources to create new volume in region {region}"),
                "volume_placement_capacity",
            )
        } else {
            (
                format!("aborted: could not reserve resource for machine in region {region}: insufficient capacity"),
                "insufficient_capacity",
            )
        };
        Err(SimError::Other {
            code: ctx.config.capacity_status,
            message,
            status: Some(status),
        })
    }

    /// Refuses an update that needs more CPU or memory than the machine has while its region is
    /// full: the host cannot grow it (a 409 with `insufficient_capacity`, spec §6 item 6).
    pub fn check_upscale(
        &self,
        region: &str,
        from: Option<&super::wire::MachineGuest>,
        to: Option<&super::wire::MachineGuest>,
    ) -> SimResult<()> {
        let grows = match (from, to) {
            (Some(a), Some(b)) => b.cpus > a.cpus || b.memory_mb > a.memory_mb,
            (None, Some(_)) => true,
            _ => false,
        };
        if !grows || !self.full_regions.contains(region) {
            return Ok(());
        }
        Err(SimError::Other {
            code: axum::http::StatusCode::CONFLICT,
            message: format!(
                "aborted: could not reserve resource for machine: insufficient capacity on its host in region {region} to grow it"
            ),
            status: Some("insufficient_capacity"),
        })
    }

    /// A fresh `internal_numeric_id`.
    pub fn numeric_id(&mut self) -> u64 {
        self.next_numeric_id += 1;
        100_000 + self.next_numeric_id
    }
}
