//! `GET /_sim/orphans` (spec §7): leftovers a controller should never leave behind, so tests can
//! assert zero after provisioning, repair or teardown, plus per-app counts of what is live.
//!
//! Reported: volumes neither destroyed nor attached in apps without a live machine; machines,
//! volumes, IPs and certificates of apps being deleted; machines beyond one per app and volumes
//! beyond one per app (the older one is kept, the rest reported); DNS records that point at an
//! app that no longer exists or challenge a hostname no live app has a certificate for.

use super::records::app::AppRec;
use super::records::dns::normalize;
use super::records::machine::MachRec;
use super::records::volume::VolRec;
use super::state::World;
use super::{Ctx, Simulator};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The orphan route.
pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/_sim/orphans", get(orphans))
        .with_state(sim)
}

fn orphan(kind: &str, app: &str, id: &str, reason: &str) -> Value {
    json!({"kind": kind, "app": app, "id": id, "reason": reason})
}

/// Computes the report (settling everything first).
pub fn report(w: &mut World, ctx: &Ctx) -> Value {
    settle_everything(w, ctx);
    let mut found = Vec::new();
    let mut per_app = BTreeMap::new();
    let mut apps: Vec<_> = w.apps.values().collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    for app in apps {
        let live = Live::of(w, app);
        per_app.insert(app.name.clone(), live.counts(w, app));
        found.extend(live.orphans(app));
    }
    found.extend(dns_orphans(w));
    json!({
        "count": found.len(),
        "orphans": found,
        "live_apps": w.apps.values().filter(|a| a.deleting_at.is_none()).count(),
        "apps": per_app,
    })
}

/// Applies every due transition: app deletes, machine steps, volume releases.
fn settle_everything(w: &mut World, ctx: &Ctx) {
    let names: Vec<String> = w.apps.keys().cloned().collect();
    for name in &names {
        w.settle_app(name, ctx);
    }
    let ids: Vec<String> = w.machines.keys().cloned().collect();
    for id in &ids {
        w.settle_machine(id, ctx);
    }
    let vols: Vec<String> = w.volumes.keys().cloned().collect();
    for id in &vols {
        w.settle_volume(id, ctx);
    }
}

/// An app's machines and volumes that are neither destroyed nor being destroyed, oldest first.
struct Live<'w> {
    machines: Vec<&'w MachRec>,
    volumes: Vec<&'w VolRec>,
}

impl<'w> Live<'w> {
    fn of(w: &'w World, app: &AppRec) -> Self {
        Self {
            machines: app
                .machines
                .iter()
                .filter_map(|id| w.machines.get(id))
                .filter(|m| !matches!(m.state.as_str(), "destroyed" | "destroying"))
                .collect(),
            volumes: app
                .volumes
                .iter()
                .filter_map(|id| w.volumes.get(id))
                .filter(|v| !v.is_destroyed())
                .collect(),
        }
    }

    /// The app's entry in `apps`: what is live, and how many DNS records point at it.
    fn counts(&self, w: &World, app: &AppRec) -> Value {
        json!({
            "deleting": app.deleting_at.is_some(),
            "machines": self.machines.len(),
            "volumes": self.volumes.len(),
            "ips": app.ips.len(),
            "certificates": app.certificates.len(),
            "dns_records": dns_records_of(w, app),
        })
    }

    /// What the app should not have: everything while it is being deleted; else unattached
    /// volumes without a machine, and every machine and volume beyond the first.
    fn orphans(&self, app: &AppRec) -> Vec<Value> {
        let name = app.name.as_str();
        let mut found = Vec::new();
        if app.deleting_at.is_some() {
            let why = "app is being deleted";
            found.extend(
                self.machines
                    .iter()
                    .map(|m| orphan("machine", name, &m.id, why)),
            );
            found.extend(
                self.volumes
                    .iter()
                    .map(|v| orphan("volume", name, &v.id, why)),
            );
            found.extend(app.ips.iter().map(|i| orphan("ip", name, &i.ip, why)));
            found.extend(
                app.certificates
                    .keys()
                    .map(|h| orphan("certificate", name, h, why)),
            );
            return found;
        }
        if self.machines.is_empty() {
            let why = "unattached volume in an app without machines";
            found.extend(
                self.volumes
                    .iter()
                    .filter(|v| v.attached_machine_id.is_none())
                    .map(|v| orphan("volume", name, &v.id, why)),
            );
        }
        let why = "more than one machine in the app";
        found.extend(
            self.machines
                .iter()
                .skip(1)
                .map(|m| orphan("machine", name, &m.id, why)),
        );
        let why = "more than one volume in the app";
        found.extend(
            self.volumes
                .iter()
                .skip(1)
                .map(|v| orphan("volume", name, &v.id, why)),
        );
        found
    }
}

/// DNS records pointing at `app`: a CNAME to `<app>.fly.dev`, an AAAA to one of its v6
/// addresses, or the `_acme-challenge` of one of its certificates.
fn dns_records_of(w: &World, app: &AppRec) -> usize {
    let v6: Vec<&str> = app
        .ips
        .iter()
        .filter(|i| i.type_ == "v6")
        .map(|i| i.ip.as_str())
        .collect();
    let fly_dev = format!("{}.fly.dev", app.name);
    w.dns
        .iter()
        .filter(|r| {
            (r.type_ == "CNAME" && normalize(&r.content) == fly_dev)
                || (r.type_ == "AAAA" && v6.contains(&r.content.as_str()))
                || app.certificates.values().any(|c| {
                    r.name == format!("_acme-challenge.{}", c.hostname)
                        && normalize(&r.content) == c.acme_target
                })
        })
        .count()
}

/// DNS records left behind: a CNAME to the `fly.dev` name of an app that is gone, or a
/// challenge for a certificate no app has.
fn dns_orphans(w: &World) -> Vec<Value> {
    let mut found = Vec::new();
    for r in &w.dns {
        let target = normalize(&r.content);
        let dead_app = r.type_ == "CNAME"
            && target
                .strip_suffix(".fly.dev")
                .is_some_and(|app| !app.contains('.') && !w.apps.contains_key(app));
        let dead_challenge = r.name.starts_with("_acme-challenge.")
            && target.ends_with(".flydns.net")
            && !w
                .apps
                .values()
                .any(|a| a.certificates.values().any(|c| c.acme_target == target));
        if dead_app || dead_challenge {
            let reason = if dead_app {
                "points at an app that no longer exists"
            } else {
                "challenge for a certificate that no longer exists"
            };
            found.push(json!({"kind": "dns_record", "app": Value::Null, "id": r.id, "name": r.name, "reason": reason}));
        }
    }
    found
}

/// `GET /_sim/orphans`.
async fn orphans(State(sim): State<Simulator>) -> Json<Value> {
    Json(sim.read(|w, ctx| Ok(report(w, ctx))).unwrap_or(Value::Null))
}
