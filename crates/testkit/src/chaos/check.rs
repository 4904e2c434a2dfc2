//! The invariants of a chaos run, checked on what the run left behind: the ledger of API
//! writes, the controllers' database (rows, events, the lease log), the simulator's request log
//! and state, and what the samplers saw along the way. Each check yields a figure for the
//! report and a violation for everything that breaks it, with the replica, request, instance
//! and times needed to find it in the logs.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;
use uuid::Uuid;

use super::leases::{LeaseLog, TenureEnd};
use super::recorder::Entry;
use super::replicas::Incarnation;
use super::sampler::Samples;
use super::schedule::{Fault, ForeignPlan};
use super::workload::{fields, Answer, Known, Ledger};

/// How long after a kill or a freeze a request of that process may still arrive: it was on
/// the wire when the signal landed and the simulator reads it a little later.
const IN_FLIGHT_SLACK: chrono::Duration = chrono::Duration::milliseconds(1000);

/// A fault as it was applied.
#[derive(Debug, Clone)]
pub struct AppliedFault {
    /// The scheduled fault.
    pub fault: Fault,
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it was undone (a restart, SIGCONT, the database back, the rule removed).
    pub end: Option<DateTime<Utc>>,
    /// Whether it was applied (a freeze of a replica that was down is skipped).
    pub applied: bool,
    /// Hits of a simulator rule, read before it was removed.
    pub hits: u64,
    /// From reading a rule's hits to its removal: a hit then is not in `hits`.
    pub removal: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl AppliedFault {
    /// The window in which trouble can follow from it: until the lease of a killed or frozen
    /// replica has lapsed, until reconnects and probes have happened.
    pub fn window(&self, lease: Duration) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = self.end.unwrap_or(self.start);
        let extra = match self.fault {
            Fault::Kill { .. } | Fault::Freeze { .. } => lease + Duration::from_secs(1),
            Fault::PostgresDown { .. } => Duration::from_secs(5),
            Fault::FlyOutage { .. } => Duration::from_secs(5),
            Fault::RegionFull { .. } | Fault::SimRule { .. } => Duration::from_secs(1),
        };
        (
            self.start,
            end + chrono::Duration::from_std(extra).unwrap_or_default(),
        )
    }
}

/// A controller event, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// The instance.
    pub instance_uid: Uuid,
    /// Its name.
    pub instance_name: String,
    /// `Created`, `CreateApp`, `ReconcileAbandoned`, ….
    pub reason: String,
    /// The text.
    pub message: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An instance's row at the end.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FinalRow {
    /// Uid.
    pub uid: Uuid,
    /// Name.
    pub name: String,
    /// Desired state.
    pub spec: Value,
    /// `generation`.
    pub generation: i64,
    /// `observed_generation`.
    pub observed_generation: i64,
    /// `phase`.
    pub phase: String,
    /// `status`.
    pub status: Value,
    /// Deletion requested.
    pub deleting: bool,
}

/// The instances' rows and what Fly and DNS hold, read together.
#[derive(Debug, Clone, Default)]
pub struct FinalWorld {
    /// The instances' rows, by name.
    pub rows: HashMap<String, FinalRow>,
    /// `/_sim/state`.
    pub sim_state: Value,
    /// The DNS records (`/_sim/dns`).
    pub dns_records: Vec<Value>,
}

/// Everything the checks read.
pub struct Evidence {
    /// The work lease.
    pub lease: Duration,
    /// When the run (the schedule's zero) started.
    pub t0: DateTime<Utc>,
    /// The API client's ledgers.
    pub ledgers: Vec<Ledger>,
    /// The instances and Fly at the end.
    pub world: FinalWorld,
    /// Every event.
    pub events: Vec<EventRow>,
    /// The lease log.
    pub lease_log: LeaseLog,
    /// When the lease log was read.
    pub read_at: DateTime<Utc>,
    /// Every request the simulator received.
    pub requests: Vec<Entry>,
    /// Every replica process.
    pub incarnations: Vec<Incarnation>,
    /// What the samplers saw.
    pub samples: Samples,
    /// The faults as applied.
    pub faults: Vec<AppliedFault>,
    /// `/_sim/orphans` at the end.
    pub orphans: Value,
    /// `/_sim/stats` at the end.
    pub stats: Value,
    /// The resources that are not ours.
    pub foreign: ForeignPlan,
    /// Their snapshot before the replicas started and at the end.
    pub foreign_before: Value,
    /// See `foreign_before`.
    pub foreign_after: Value,
    /// The longest a clean write may wait for its generation to be observed.
    pub max_wait: Duration,
}

/// One broken invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What happened, with who, what, which instance and when.
    pub detail: String,
}

/// The figures of a run, one or more per invariant.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Instances that ended as asked (converged, paused, failed on a taken name, or gone).
    pub converged: usize,
    /// Instances the client created or tried to.
    pub instances: usize,
    /// Of which gone at the end (deleted).
    pub gone: usize,
    /// Of which paused at the end.
    pub paused: usize,
    /// Duplicates seen (sampled throughout, and at the end).
    pub duplicates: usize,
    /// `/_sim/orphans` at the end (not counting a paused instance's half-made resources).
    pub orphans: usize,
    /// Changes to resources that are not ours (state differences and requests).
    pub foreign_touched: usize,
    /// Mutations sent by a replica without the instance's lease (or while frozen or dead).
    pub unfenced: usize,
    /// Mutations checked against the lease log.
    pub mutations_checked: usize,
    /// Mutations by a replica that could not be traced to an instance.
    pub mutations_unattributed: usize,
    /// Acknowledged writes not reflected at the end.
    pub lost_acks: usize,
    /// Writes acknowledged / in doubt / refused as stale / skipped.
    pub writes: (usize, usize, usize, usize),
    /// 429s from the simulator's rate limits.
    pub limiter_429: u64,
    /// 429s in the call counts beyond those the fault rules injected.
    pub unexplained_429: i64,
    /// 429s the fault rules injected (not a controller's doing).
    pub injected_429: u64,
    /// Abandoned tenures whose mutations are missing from the events.
    pub events_missing: usize,
    /// Abandoned tenures with mutations whose `ReconcileAbandoned` event was found.
    pub abandoned_listed: usize,
    /// Mutations no event can show: the replica was killed, or the database was down when it
    /// would have recorded them (an abandoned reconcile's record is best effort; a finished
    /// reconcile's record fails with the database); what each had sent.
    pub unrecordable: Vec<String>,
    /// Successful steps of finished reconciles missing from the events.
    pub steps_missing: usize,
    /// Longest wait of a write made outside fault windows for its generation to be observed
    /// (and the instance Ready or Stopped), with the instance.
    pub max_clean_wait: Option<(Duration, String)>,
    /// Median of those waits and how many there were.
    pub clean_waits: (usize, Option<Duration>),
    /// Longest wait of any acknowledged write.
    pub max_any_wait: Option<(Duration, String)>,
    /// Requests the simulator received.
    pub requests: usize,
}

/// Runs every check.
pub fn check(ev: &Evidence) -> (Figures, Vec<Violation>) {
    let mut f = Figures {
        requests: ev.requests.len(),
        ..Figures::default()
    };
    let mut v = Vec::new();
    let names = NameIndex::new(ev);
    converged(ev, &mut f, &mut v);
    duplicates(ev, &mut f, &mut v);
    orphans(ev, &mut f, &mut v);
    foreign(ev, &mut f, &mut v);
    fencing(ev, &names, &mut f, &mut v);
    acknowledged(ev, &mut f, &mut v);
    rate_limits(ev, &mut f, &mut v);
    abandoned_events(ev, &names, &mut f, &mut v);
    step_events(ev, &names, &mut f, &mut v);
    waits(ev, &mut f, &mut v);
    (f, v)
}

fn rel(ev: &Evidence, t: DateTime<Utc>) -> String {
    format!("t+{:.2}s", (t - ev.t0).num_milliseconds() as f64 / 1000.0)
}

/// What the final state of an instance must be, given what the client knows.
fn expectation_met(
    ev: &FinalWorld,
    ledger: &Ledger,
    known: &Known,
) -> Result<&'static str, String> {
    let name = &ledger.plan.name;
    let row = ev.rows.get(name);
    match known {
        Known::Absent | Known::Deleting { .. } => {
            if let Some(row) = row {
                return Err(format!(
                    "should be gone but its row is there (phase {}, deleting {})",
                    row.phase, row.deleting
                ));
            }
            if !ledger.plan.name_taken {
                if let Some(left) = fly_leftovers(ev, name) {
                    return Err(format!("deleted, but left at Fly: {left}"));
                }
            }
            Ok("gone")
        }
        Known::OneOf(options) => {
            let mut why = Vec::new();
            for option in options {
                match expectation_met(ev, ledger, option) {
                    Ok(what) => return Ok(what),
                    Err(e) => why.push(e),
                }
            }
            Err(format!("none of the possible outcomes: {}", why.join("; ")))
        }
        Known::Present { fields: want, .. } => {
            let Some(row) = row else {
                return Err("its row is gone".to_owned());
            };
            if row.deleting {
                return Err("is being deleted".to_owned());
            }
            if ledger.plan.name_taken {
                let ready = condition(&row.status, "Ready");
                return if row.phase == "Failed" && ready["reason"] == "AppNameTaken" {
                    Ok("failed on a taken name")
                } else {
                    Err(format!(
                        "should be Failed (AppNameTaken): phase {}, Ready {}",
                        row.phase, ready
                    ))
                };
            }
            if want["paused"] == true {
                let paused = condition(&row.status, "Paused");
                return if paused["status"] == "True" {
                    Ok("paused")
                } else {
                    Err(format!("should be paused: Paused condition {paused}"))
                };
            }
            let phase = if want["runState"] == "stopped" {
                "Stopped"
            } else {
                "Ready"
            };
            if row.phase != phase || row.observed_generation != row.generation {
                return Err(format!(
                    "phase {} (want {phase}), generation {} observed {}, Ready {}, lastError {}",
                    row.phase,
                    row.generation,
                    row.observed_generation,
                    condition(&row.status, "Ready"),
                    row.status["lastError"]
                ));
            }
            fly_matches(ev, name, want).map(|_| "converged")
        }
    }
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn live_machines<'a>(state: &'a Value, app: &str) -> Vec<&'a Value> {
    state["machines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["app_name"] == app && !matches!(m["state"].as_str(), Some("destroyed" | "destroying"))
        })
        .collect()
}

fn live_volumes<'a>(state: &'a Value, app: &str) -> Vec<&'a Value> {
    let app_id = state["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == app)
        .map(|a| a["id"].clone());
    state["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            Some(&v["app_id"]) == app_id.as_ref()
                && !matches!(
                    v["state"].as_str(),
                    Some("destroyed" | "pending_destroy" | "scheduling_destroy" | "destroying")
                )
        })
        .collect()
}

/// What a deleted instance left at Fly or in DNS.
fn fly_leftovers(ev: &FinalWorld, name: &str) -> Option<String> {
    let app = format!("oc-{name}");
    let mut left = Vec::new();
    if ev.sim_state["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["name"] == app.as_str())
    {
        left.push(format!("app {app}"));
    }
    left.extend(
        live_machines(&ev.sim_state, &app)
            .iter()
            .map(|m| format!("machine {}", m["id"])),
    );
    let host = format!("{name}.{}", super::DOMAIN);
    left.extend(
        ev.dns_records
            .iter()
            .filter(|r| r["name"].as_str().is_some_and(|n| n.ends_with(&host)))
            .map(|r| format!("DNS record {} {}", r["id"], r["name"])),
    );
    (!left.is_empty()).then(|| left.join(", "))
}

/// Whether Fly holds exactly one app, volume and machine matching the fields.
fn fly_matches(ev: &FinalWorld, name: &str, want: &Value) -> Result<(), String> {
    let app = format!("oc-{name}");
    let machines = live_machines(&ev.sim_state, &app);
    let volumes = live_volumes(&ev.sim_state, &app);
    if machines.len() != 1 || volumes.len() != 1 {
        return Err(format!(
            "Fly has {} machines and {} volumes in {app}",
            machines.len(),
            volumes.len()
        ));
    }
    let m = machines[0];
    let state = if want["runState"] == "stopped" {
        "stopped"
    } else {
        "started"
    };
    let mut wrong = Vec::new();
    if m["state"] != state {
        wrong.push(format!("machine state {} (want {state})", m["state"]));
    }
    if m["config"]["guest"]["memory_mb"] != want["memoryMb"] {
        wrong.push(format!(
            "memory {} (want {})",
            m["config"]["guest"]["memory_mb"], want["memoryMb"]
        ));
    }
    if m["config"]["image"] != want["image"] {
        wrong.push(format!(
            "image {} (want {})",
            m["config"]["image"], want["image"]
        ));
    }
    if volumes[0]["size_gb"].as_u64() < want["volumeSizeGb"].as_u64() {
        wrong.push(format!(
            "volume {} GB (want {})",
            volumes[0]["size_gb"], want["volumeSizeGb"]
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("Fly disagrees in {app}: {}", wrong.join(", ")))
    }
}

/// Every instance ended as asked: converged at its generation (Ready, or Stopped when asked),
/// paused, failed on a name that is not ours, or gone with nothing left at Fly.
pub fn unconverged(world: &FinalWorld, ledgers: &[Ledger]) -> Vec<(String, String)> {
    ledgers
        .iter()
        .filter_map(|l| {
            expectation_met(world, l, &l.known)
                .err()
                .map(|e| (l.plan.name.clone(), e))
        })
        .collect()
}

fn converged(ev: &Evidence, f: &mut Figures, v: &mut Vec<Violation>) {
    f.instances = ev.ledgers.len();
    for ledger in &ev.ledgers {
        match expectation_met(&ev.world, ledger, &ledger.known) {
            Ok(what) => {
                f.converged += 1;
                f.gone += usize::from(what == "gone");
                f.paused += usize::from(what == "paused");
            }
            Err(why) => v.push(Violation {
                invariant: "converged",
                detail: format!("{}: {why}", ledger.plan.name),
            }),
        }
    }
}

fn duplicates(ev: &Evidence, f: &mut Figures, v: &mut Vec<Violation>) {
    for (at, d) in &ev.samples.duplicates {
        if super::foreign::is_foreign(&ev.foreign, &d.app) {
            continue;
        }
        f.duplicates += 1;
        v.push(Violation {
            invariant: "duplicates",
            detail: format!(
                "{} {} beyond the first in {} seen at {}",
                d.kind,
                d.id,
                d.app,
                rel(ev, *at)
            ),
        });
    }
    let mut by_network: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for app in ev.world.sim_state["apps"].as_array().into_iter().flatten() {
        if let (Some(net), Some(name)) = (app["network"].as_str(), app["name"].as_str()) {
            if app["org"] == crate::stack::ORG && !super::foreign::is_foreign(&ev.foreign, name) {
                by_network
                    .entry(net.to_owned())
                    .or_default()
                    .push(name.to_owned());
            }
        }
    }
    for (net, apps) in by_network.into_iter().filter(|(_, a)| a.len() > 1) {
        f.duplicates += 1;
        v.push(Violation {
            invariant: "duplicates",
            detail: format!("apps {apps:?} share the network {net} of one instance"),
        });
    }
}

fn orphans(ev: &Evidence, f: &mut Figures, v: &mut Vec<Violation>) {
    let paused_apps: HashSet<String> = ev
        .ledgers
        .iter()
        .filter(|l| matches!(&l.known, Known::Present { fields, .. } if fields["paused"] == true))
        .map(|l| format!("oc-{}", l.plan.name))
        .collect();
    for o in ev.orphans["orphans"].as_array().into_iter().flatten() {
        let app = o["app"].as_str().unwrap_or_default();
        if paused_apps.contains(app)
            && o["reason"] == "unattached volume in an app without machines"
        {
            continue;
        }
        f.orphans += 1;
        v.push(Violation {
            invariant: "orphans",
            detail: format!("{o}"),
        });
    }
}

fn foreign(ev: &Evidence, f: &mut Figures, v: &mut Vec<Violation>) {
    if ev.foreign_before != ev.foreign_after {
        f.foreign_touched += 1;
        v.push(Violation {
            invariant: "foreign",
            detail: format!(
                "resources that are not ours changed: before {} after {}",
                ev.foreign_before, ev.foreign_after
            ),
        });
    }
    for e in &ev.requests {
        let foreign = e
            .app
            .as_deref()
            .is_some_and(|a| super::foreign::is_foreign(&ev.foreign, a));
        if foreign && e.is_mutation() && !e.harness {
            f.foreign_touched += 1;
            v.push(Violation {
                invariant: "foreign",
                detail: format!(
                    "{} {} by {} at {} (answered {:?})",
                    e.method,
                    e.path,
                    sender(e, ev),
                    rel(ev, e.at),
                    e.status
                ),
            });
        }
    }
}

/// The lease owner that sent a request: from its `User-Agent`, or its connection's process.
fn owner_of(e: &Entry, ev: &Evidence) -> Option<String> {
    e.owner.clone().or_else(|| {
        e.pid.and_then(|pid| {
            ev.incarnations
                .iter()
                .rev()
                .find(|i| i.pid == pid && i.started <= e.at)
                .map(|i| i.owner.clone())
        })
    })
}

fn sender(e: &Entry, ev: &Evidence) -> String {
    match owner_of(e, ev) {
        Some(owner) => {
            let replica = ev
                .incarnations
                .iter()
                .find(|i| i.owner == owner)
                .map_or("?".to_owned(), |i| i.replica.to_string());
            format!("replica {replica} ({owner})")
        }
        None if e.harness => "the harness".to_owned(),
        None => "an unknown sender".to_owned(),
    }
}

/// Instance names and uids, from the ledgers and the events (which outlive deleted rows).
struct NameIndex {
    by_name: HashMap<String, Uuid>,
}

impl NameIndex {
    fn new(ev: &Evidence) -> Self {
        let mut by_name = HashMap::new();
        for e in &ev.events {
            by_name
                .entry(e.instance_name.clone())
                .or_insert(e.instance_uid);
        }
        for l in &ev.ledgers {
            if let Some(uid) = l.uids.first() {
                by_name.entry(l.plan.name.clone()).or_insert(*uid);
            }
        }
        Self { by_name }
    }

    /// The instance a request is about: its app, its DNS record's name, or the name of the
    /// DNS record its id named.
    fn instance_of(&self, e: &Entry, ev: &Evidence) -> Option<(String, Uuid)> {
        let name = if let Some(app) = &e.app {
            app.strip_prefix("oc-")?.to_owned()
        } else {
            let dns = e.dns.as_deref()?;
            let record = if dns.contains('.') {
                dns.to_owned()
            } else {
                ev.samples.dns_ids.get(dns)?.0.clone()
            };
            let host = record.trim_start_matches("_acme-challenge.");
            host.strip_suffix(&format!(".{}", super::DOMAIN))?
                .to_owned()
        };
        let uid = *self.by_name.get(&name)?;
        Some((name, uid))
    }
}

fn fencing(ev: &Evidence, names: &NameIndex, f: &mut Figures, v: &mut Vec<Violation>) {
    for e in &ev.requests {
        let Some(owner) = owner_of(e, ev) else {
            continue;
        };
        let Some(inc) = ev.incarnations.iter().find(|i| i.owner == owner) else {
            continue;
        };
        // Nothing may come from a process after it was killed, or while it was stopped.
        if let Some(ended) = inc.ended.filter(|_| inc.killed) {
            if e.at > ended + IN_FLIGHT_SLACK {
                f.unfenced += 1;
                v.push(Violation {
                    invariant: "fencing",
                    detail: format!(
                        "{} {} from replica {} ({owner}) at {}, after it was killed at {}",
                        e.method,
                        e.path,
                        inc.replica,
                        rel(ev, e.at),
                        rel(ev, ended)
                    ),
                });
            }
        }
        for (stopped, resumed) in &inc.freezes {
            let resumed = resumed.unwrap_or(ev.read_at);
            if e.at > *stopped + IN_FLIGHT_SLACK && e.at < resumed {
                f.unfenced += 1;
                v.push(Violation {
                    invariant: "fencing",
                    detail: format!(
                        "{} {} from replica {} ({owner}) at {} while it was stopped ({} to {})",
                        e.method,
                        e.path,
                        inc.replica,
                        rel(ev, e.at),
                        rel(ev, *stopped),
                        rel(ev, resumed)
                    ),
                });
            }
        }
        if !e.is_mutation() {
            continue;
        }
        let Some((name, uid)) = names.instance_of(e, ev) else {
            f.mutations_unattributed += 1;
            continue;
        };
        f.mutations_checked += 1;
        let holder = ev.lease_log.holder_at(uid, e.at);
        let held = holder
            .as_ref()
            .is_some_and(|(h, until)| *h == owner && *until > e.at);
        if !held {
            f.unfenced += 1;
            let lease = match &holder {
                Some((h, until)) => format!("the lease was {h}'s until {}", rel(ev, *until)),
                None => "nobody held the lease".to_owned(),
            };
            let context = nearby_faults(ev, inc.replica, e.at);
            v.push(Violation {
                invariant: "fencing",
                detail: format!(
                    "{} {} ({}) for {name} from replica {} ({owner}) at {}, answered {:?}: \
                     {lease}{context}",
                    e.method,
                    e.path,
                    e.call.as_ref().map_or("?", |c| c.0),
                    inc.replica,
                    rel(ev, e.at),
                    e.status
                ),
            });
        }
    }
}

/// The faults around `at` that concern `replica` or everyone, for a violation's context.
fn nearby_faults(ev: &Evidence, replica: usize, at: DateTime<Utc>) -> String {
    let mut out = String::new();
    for a in &ev.faults {
        let concerns = match a.fault {
            Fault::Kill { replica: r, .. } | Fault::Freeze { replica: r, .. } => r == replica,
            Fault::PostgresDown { .. } | Fault::FlyOutage { .. } => true,
            _ => false,
        };
        let end = a.end.unwrap_or(a.start);
        let near = a.start - chrono::Duration::seconds(15) <= at
            && at <= end + chrono::Duration::seconds(15);
        if concerns && near && a.applied {
            let _ = write!(
                out,
                "; {} from {} to {}",
                a.fault.label(),
                rel(ev, a.start),
                rel(ev, end)
            );
        }
    }
    out
}

fn acknowledged(ev: &Evidence, f: &mut Figures, v: &mut Vec<Violation>) {
    for ledger in &ev.ledgers {
        for w in &ledger.writes {
            match w.answer {
                Answer::Acked => f.writes.0 += 1,
                Answer::InDoubt => f.writes.1 += 1,
                Answer::Conflict => f.writes.2 += 1,
                Answer::Skipped => f.writes.3 += 1,
                Answer::NotFound | Answer::Rejected => {
                    v.push(Violation {
                        invariant: "acknowledged writes",
                        detail: format!(
                            "{}: {} was refused ({:?}): {}",
                            ledger.plan.name, w.op, w.answer, w.detail
                        ),
                    });
                }
            }
        }
        let row = ev.world.rows.get(&ledger.plan.name);
        let lost = match (&ledger.known, row) {
            (
                Known::Present {
                    fields: want,
                    generation,
                    ..
                },
                Some(row),
            ) => {
                let have = fields(&row.spec);
                (have != *want || row.generation != *generation || row.deleting).then(|| {
                    format!(
                        "expected {want} at generation {generation}, found {have} at generation {}{}",
                        row.generation,
                        if row.deleting { " being deleted" } else { "" }
                    )
                })
            }
            (Known::Present { .. }, None) => Some("acknowledged, but the instance is gone".into()),
            (Known::Deleting { .. }, Some(row)) if !row.deleting => {
                Some("its deletion was acknowledged, but it is not being deleted".into())
            }
            (Known::Absent, Some(row)) => Some(format!(
                "should not exist, but it does (generation {})",
                row.generation
            )),
            (Known::OneOf(options), Some(row)) => {
                let have = fields(&row.spec);
                let matches = options.iter().any(|o| match o {
                    Known::Present { fields, .. } => *fields == have && !row.deleting,
                    Known::Deleting { .. } => row.deleting,
                    Known::Absent => false,
                    Known::OneOf(_) => false,
                });
                (!matches).then(|| format!("{have} is none of the possible outcomes {options:?}"))
            }
            _ => None,
        };
        if let Some(detail) = lost {
            f.lost_acks += 1;
            let last_ack = ledger
                .writes
                .iter()
                .rev()
                .find(|w| w.answer == Answer::Acked)
                .map_or("none".to_owned(), |w| {
                    format!("{} at {}", w.op, rel(ev, w.answered))
                });
            v.push(Violation {
                invariant: "acknowledged writes",
                detail: format!(
                    "{}: {detail} (last acknowledged: {last_ack})",
                    ledger.plan.name
                ),
            });
        }
    }
}

fn rate_limits(ev: &Evidence, f: &mut Figures, v: &mut Vec<Violation>) {
    f.limiter_429 = ev.stats["rate_limited_total"].as_u64().unwrap_or(0);
    let in_calls: u64 = ev.stats["calls"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, c)| c["statuses"]["429"].as_u64().unwrap_or(0))
        .sum();
    let rules: Vec<&AppliedFault> = ev
        .faults
        .iter()
        .filter(|a| matches!(&a.fault, Fault::SimRule { rule, .. } if rule["kind"] == "rate_limit"))
        .collect();
    // A 429 that arrived while a rule was being removed may be the rule's, after its hits
    // were read.
    let while_removed = ev
        .requests
        .iter()
        .filter(|e| e.status == Some(429))
        .filter(|e| {
            rules
                .iter()
                .filter_map(|a| a.removal)
                .any(|(from, to)| e.at >= from && e.at <= to)
        })
        .count() as u64;
    f.injected_429 = rules.iter().map(|a| a.hits).sum::<u64>() + while_removed;
    // Fewer 429s than the rules injected is no violation: another rule replaced or dropped the
    // answer (a "lost after commit" 504 over an injected 429) or its caller was gone. Only 429s
    // beyond the injected and the limiters' own are unexplained.
    f.unexplained_429 = (in_calls as i64 - f.injected_429 as i64 - f.limiter_429 as i64).max(0);
    if f.limiter_429 > 0 {
        v.push(Violation {
            invariant: "429s",
            detail: format!(
                "Fly's rate limits answered 429 {} times: {}",
                f.limiter_429, ev.stats["rate_limited"]
            ),
        });
    }
    if f.unexplained_429 != 0 {
        v.push(Violation {
            invariant: "429s",
            detail: format!(
                "{in_calls} 429s in the call counts, {} injected, {} from the limits",
                f.injected_429, f.limiter_429
            ),
        });
    }
}

/// The calls a `ReconcileAbandoned` message lists (`… after sending: a x, b y. The next …`).
pub fn listed_calls(message: &str) -> Vec<String> {
    let Some((_, rest)) = message.split_once("after sending: ") else {
        return Vec::new();
    };
    let list = rest.split(". The next reconcile").next().unwrap_or(rest);
    list.split(", ").map(|s| s.trim().to_owned()).collect()
}

fn abandoned_events(ev: &Evidence, names: &NameIndex, f: &mut Figures, v: &mut Vec<Violation>) {
    let tenures = ev.lease_log.tenures(ev.read_at);
    let db_down = database_down(ev);
    let lease = chrono::Duration::from_std(ev.lease).unwrap_or_default();
    for t in tenures.iter().filter(|t| t.how == TenureEnd::Lost) {
        let next_claim = tenures
            .iter()
            .filter(|n| n.instance_uid == t.instance_uid && n.owner == t.owner && n.start > t.start)
            .map(|n| n.start)
            .min();
        let sent: Vec<String> = ev
            .requests
            .iter()
            .filter(|e| e.is_mutation() && e.at >= t.start && next_claim.is_none_or(|n| e.at < n))
            .filter(|e| owner_of(e, ev).as_deref() == Some(t.owner.as_str()))
            .filter(|e| {
                names
                    .instance_of(e, ev)
                    .is_some_and(|(_, uid)| uid == t.instance_uid)
            })
            .filter_map(|e| e.call.as_ref().map(|(c, target)| format!("{c} {target}")))
            .collect();
        if sent.is_empty() {
            continue;
        }
        let inc = ev.incarnations.iter().find(|i| i.owner == t.owner);
        let killed = inc.is_some_and(|i| i.killed && i.ended.is_some_and(|k| k <= t.end + lease));
        let recorded = ev.events.iter().find(|e| {
            e.instance_uid == t.instance_uid
                && e.reason == "ReconcileAbandoned"
                && e.created_at >= t.start
                && {
                    let listed = listed_calls(&e.message);
                    sent.iter().all(|s| listed.contains(s))
                }
        });
        if recorded.is_some() {
            f.abandoned_listed += 1;
            continue;
        }
        // The replica finds out when its lease lapses, or when it resumes if it was stopped.
        let noticed = inc
            .and_then(|i| {
                i.freezes
                    .iter()
                    .find(|(stopped, resumed)| {
                        *stopped <= t.end && resumed.is_none_or(|r| r >= t.end)
                    })
                    .map(|(_, resumed)| resumed.unwrap_or(ev.read_at))
            })
            .unwrap_or(t.end);
        let db_was_down = db_down
            .iter()
            .any(|(from, to)| noticed + lease >= *from && noticed - lease <= *to);
        if killed || db_was_down {
            f.unrecordable.push(format!(
                "{}: {} ({}) sent {sent:?} and lost the lease at {}",
                instance_name(ev, t.instance_uid),
                t.owner,
                if killed {
                    "killed"
                } else {
                    "database down when it found out"
                },
                rel(ev, t.end)
            ));
            continue;
        }
        f.events_missing += 1;
        let name = instance_name(ev, t.instance_uid);
        let listed: Vec<String> = ev
            .events
            .iter()
            .filter(|e| e.instance_uid == t.instance_uid && e.reason == "ReconcileAbandoned")
            .map(|e| format!("[{}] {}", rel(ev, e.created_at), e.message))
            .collect();
        let gone = match ev.lease_log.deleted_at(t.instance_uid) {
            Some(deleted) if deleted <= noticed + lease => format!(
                "; the instance's row was deleted (teardown finished) at {}, before {} found out \
                 at {}",
                rel(ev, deleted),
                t.owner,
                rel(ev, noticed)
            ),
            _ => String::new(),
        };
        v.push(Violation {
            invariant: "events",
            detail: format!(
                "{name}: {} lost the lease (held {} to {}) after sending {sent:?}, which no \
                 ReconcileAbandoned event lists (events: {listed:?}){gone}",
                t.owner,
                rel(ev, t.start),
                rel(ev, t.end)
            ),
        });
    }
}

/// When the database was down (and reconnecting).
fn database_down(ev: &Evidence) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    ev.faults
        .iter()
        .filter(|a| a.applied && matches!(a.fault, Fault::PostgresDown { .. }))
        .map(|a| a.window(ev.lease))
        .collect()
}

fn instance_name(ev: &Evidence, uid: Uuid) -> String {
    ev.events
        .iter()
        .find(|e| e.instance_uid == uid)
        .map_or(uid.to_string(), |e| e.instance_name.clone())
}

/// The step event a successful call of a finished reconcile shows as.
fn step_of(call: &str) -> Option<&'static [&'static str]> {
    Some(match call {
        "apps.create" => &["CreateApp"],
        "apps.delete" => &["DeleteApp"],
        "secrets.set" => &["SetSecrets"],
        "ips.assign" => &["AssignIp"],
        "ips.release" => &["ReleaseIp"],
        "certificates.create" => &["AddCertificate"],
        "certificates.delete" => &["DeleteCertificate"],
        "dns.create" => &["CreateDnsRecord"],
        "dns.update" => &["UpdateDnsRecord"],
        "dns.delete" => &["DeleteDnsRecord"],
        "volumes.create" => &["CreateVolume"],
        "volumes.extend" => &["ExtendVolume"],
        "volumes.delete" => &["DeleteVolume"],
        "machines.create" => &["CreateMachine"],
        "machines.update" => &["UpdateMachine"],
        "machines.start" => &["StartMachine"],
        "machines.stop" => &["StopMachine"],
        "machines.restart" => &["RestartMachine"],
        "machines.delete" => &["DestroyMachine", "RecoverStuckMachine"],
        _ => return None,
    })
}

fn step_events(ev: &Evidence, names: &NameIndex, f: &mut Figures, v: &mut Vec<Violation>) {
    let tenures = ev.lease_log.tenures(ev.read_at);
    let margin = chrono::Duration::seconds(1);
    let lease = chrono::Duration::from_std(ev.lease).unwrap_or_default();
    let db_down = database_down(ev);
    for t in tenures.iter().filter(|t| t.how == TenureEnd::Released) {
        let mut missing: Vec<String> = Vec::new();
        for e in ev
            .requests
            .iter()
            .filter(|e| e.is_mutation() && e.succeeded() && e.at >= t.start && e.at <= t.end)
        {
            if owner_of(e, ev).as_deref() != Some(t.owner.as_str()) {
                continue;
            }
            if names
                .instance_of(e, ev)
                .is_none_or(|(_, uid)| uid != t.instance_uid)
            {
                continue;
            }
            let Some((call, target)) = &e.call else {
                continue;
            };
            let Some(steps) = step_of(call) else {
                continue;
            };
            // The step shows as done, or as failed when a later call of the same step failed;
            // a reconcile stopped by a shutdown lists what it sent instead.
            let listed = format!("{call} {target}");
            let shown = ev.events.iter().any(|x| {
                let step = x.reason.strip_suffix("Failed").unwrap_or(&x.reason);
                x.instance_uid == t.instance_uid
                    && x.created_at >= t.start - margin
                    && ((steps.contains(&step) && x.created_at <= t.end + margin)
                        || (x.reason == "ReconcileAbandoned"
                            && listed_calls(&x.message).contains(&listed)))
            });
            if !shown {
                missing.push(format!("{call} {target} at {}", rel(ev, e.at)));
            }
        }
        if missing.is_empty() {
            continue;
        }
        let name = instance_name(ev, t.instance_uid);
        if db_down
            .iter()
            .any(|(from, to)| t.end + lease >= *from && t.end - lease <= *to)
        {
            f.unrecordable.push(format!(
                "{name}: the reconcile of {} ({} to {}) made {missing:?}, then could not record \
                 (database down)",
                t.owner,
                rel(ev, t.start),
                rel(ev, t.end)
            ));
            continue;
        }
        f.steps_missing += missing.len();
        v.push(Violation {
            invariant: "events",
            detail: format!(
                "{name}: the reconcile of {} ({} to {}) made {missing:?} with success, but its \
                 events do not show the step (a reconcile that failed to record: see the \
                 replica's log for `reconcile failed before recording`)",
                t.owner,
                rel(ev, t.start),
                rel(ev, t.end)
            ),
        });
    }
}

fn waits(ev: &Evidence, f: &mut Figures, v: &mut Vec<Violation>) {
    let windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = ev
        .faults
        .iter()
        .filter(|a| a.applied)
        .map(|a| a.window(ev.lease))
        .collect();
    let mut clean = Vec::new();
    for ledger in ev.ledgers.iter().filter(|l| !l.plan.name_taken) {
        let Some(uid) = ledger.uids.first() else {
            continue;
        };
        let Some(history) = ev.samples.rows.get(uid) else {
            continue;
        };
        let mut paused = false;
        for w in &ledger.writes {
            paused = match w.op.as_str() {
                "pause" => w.answer == Answer::Acked || paused,
                "resume" => !(w.answer == Answer::Acked) && paused,
                _ => paused,
            };
            let (Some(generation), true, false) = (w.generation, w.converges, paused) else {
                continue;
            };
            if w.answer != Answer::Acked {
                continue;
            }
            let caught = history.iter().find(|(at, row)| {
                *at >= w.answered
                    && row.as_ref().is_some_and(|r| {
                        r.observed_generation >= generation
                            && matches!(r.phase.as_str(), "Ready" | "Stopped")
                    })
            });
            let Some((at, _)) = caught else {
                continue;
            };
            let waited = (*at - w.answered).to_std().unwrap_or_default();
            let what = format!("{} ({} at {})", ledger.plan.name, w.op, rel(ev, w.answered));
            if f.max_any_wait.as_ref().is_none_or(|(m, _)| waited > *m) {
                f.max_any_wait = Some((waited, what.clone()));
            }
            let quiet = !windows
                .iter()
                .any(|(from, to)| w.answered <= *to && *at >= *from);
            if quiet && w.op != "create" {
                clean.push((waited, what));
            }
        }
    }
    clean.sort_by_key(|(d, _)| *d);
    f.clean_waits = (clean.len(), clean.get(clean.len() / 2).map(|(d, _)| *d));
    f.max_clean_wait = clean.last().cloned();
    if let Some((waited, what)) = &f.max_clean_wait {
        if *waited > ev.max_wait {
            v.push(Violation {
                invariant: "wait",
                detail: format!(
                    "{what} waited {:.1}s for its generation with no fault around (bound {:.0}s)",
                    waited.as_secs_f64(),
                    ev.max_wait.as_secs_f64()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::leases::LeaseRow;
    use crate::chaos::schedule::InstancePlan;
    use crate::chaos::workload::Write;
    use serde_json::json;

    #[test]
    fn abandoned_messages_are_parsed() {
        let m = "A reconcile was abandoned (LeaseLost) after sending: apps.create oc-a, \
                 machines.lease.acquire 3d8d. The next reconcile observes what they did.";
        assert_eq!(
            listed_calls(m),
            vec![
                "apps.create oc-a".to_owned(),
                "machines.lease.acquire 3d8d".to_owned()
            ]
        );
        assert!(listed_calls("nothing here").is_empty());
    }

    fn at(t0: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
        t0 + chrono::Duration::milliseconds(ms)
    }

    /// A run with one instance `a` (uid 1) held by `r0-x` from 0 to 4 s and, after `r0-x`
    /// lapsed, by `r1-y` from 5 s; one request each way at the given times.
    fn evidence(t0: DateTime<Utc>, requests: Vec<Entry>) -> Evidence {
        let uid = Uuid::from_u128(1);
        let lease_row = |ms, owner: Option<&str>, claimed: i64, expires: Option<i64>| LeaseRow {
            at: at(t0, ms),
            instance_uid: uid,
            op: "UPDATE".into(),
            lease_owner: owner.map(str::to_owned),
            lease_expires_at: expires.map(|e| at(t0, e)),
            claimed_at: Some(at(t0, claimed)),
        };
        let incarnation = |replica, owner: &str| Incarnation {
            replica,
            pid: 100 + replica as u32,
            owner: owner.to_owned(),
            started: t0,
            ended: None,
            killed: false,
            freezes: Vec::new(),
            log: Default::default(),
        };
        let spec = json!({"image": "i", "guest": {"memoryMb": 2048}, "runState": "running",
                          "volumeSizeGb": 1, "exposure": "private", "paused": false});
        Evidence {
            lease: Duration::from_secs(4),
            t0,
            ledgers: vec![Ledger {
                plan: InstancePlan {
                    name: "a".into(),
                    create_at: Duration::ZERO,
                    spec: spec.clone(),
                    ops: Vec::new(),
                    name_taken: false,
                },
                writes: vec![Write {
                    op: "create".into(),
                    sent: t0,
                    answered: t0,
                    answer: Answer::Acked,
                    attempts: 1,
                    generation: Some(1),
                    converges: true,
                    detail: String::new(),
                }],
                known: Known::Present {
                    uid,
                    fields: fields(&spec),
                    generation: 1,
                    resource_version: "1".into(),
                },
                uids: vec![uid],
            }],
            world: FinalWorld {
                rows: HashMap::from([(
                    "a".to_owned(),
                    FinalRow {
                        uid,
                        name: "a".into(),
                        spec,
                        generation: 1,
                        observed_generation: 1,
                        phase: "Ready".into(),
                        status: json!({}),
                        deleting: false,
                    },
                )]),
                sim_state: json!({
                    "apps": [{"name": "oc-a", "id": "app1", "org": "personal", "network": "n1"}],
                    "machines": [{"id": "m1", "app_name": "oc-a", "state": "started",
                                  "config": {"image": "i", "guest": {"memory_mb": 2048}}}],
                    "volumes": [{"id": "v1", "app_id": "app1", "state": "created", "size_gb": 1}],
                }),
                dns_records: Vec::new(),
            },
            events: vec![EventRow {
                instance_uid: uid,
                instance_name: "a".into(),
                reason: "Created".into(),
                message: String::new(),
                created_at: t0,
            }],
            lease_log: LeaseLog::from_rows(vec![
                lease_row(0, Some("r0-x"), 0, Some(4000)),
                lease_row(5000, Some("r1-y"), 5000, Some(9000)),
                lease_row(6000, None, 5000, None),
            ]),
            read_at: at(t0, 20_000),
            requests,
            incarnations: vec![incarnation(0, "r0-x"), incarnation(1, "r1-y")],
            samples: Samples::default(),
            faults: Vec::new(),
            orphans: json!({"orphans": []}),
            stats: json!({"rate_limited_total": 0, "calls": {}}),
            foreign: ForeignPlan {
                foreign_org_app: "f".into(),
                unmarked_app: "u".into(),
                bystander_app: "b".into(),
            },
            foreign_before: Value::Null,
            foreign_after: Value::Null,
            max_wait: Duration::from_secs(60),
        }
    }

    fn mutation(t0: DateTime<Utc>, ms: i64, owner: &str) -> Entry {
        Entry {
            at: at(t0, ms),
            method: "POST".into(),
            path: "/v1/apps/oc-a/machines".into(),
            owner: Some(owner.to_owned()),
            pid: None,
            harness: false,
            status: Some(200),
            broken: false,
            call: Some(("machines.create", "oc-a".into())),
            app: Some("oc-a".into()),
            dns: None,
        }
    }

    fn invariants(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn a_mutation_within_the_lease_passes_and_one_after_it_lapsed_is_reported() {
        let t0 = Utc::now();
        let (f, v) = check(&evidence(t0, vec![mutation(t0, 1000, "r0-x")]));
        assert_eq!(f.unfenced, 0);
        assert_eq!(f.mutations_checked, 1);
        assert!(!invariants(&v).contains(&"fencing"), "{v:?}");
        // r0-x sends after its lease lapsed (4 s), while r1-y holds it.
        let (f, v) = check(&evidence(t0, vec![mutation(t0, 5500, "r0-x")]));
        assert_eq!(f.unfenced, 1);
        assert!(v[0].detail.contains("r1-y's until"), "{v:?}");
        // The lapsed holder's mutation is also missing from the events: nothing lists it.
        assert_eq!(f.events_missing, 1, "{v:?}");
    }

    #[test]
    fn an_abandoned_reconcile_must_list_what_it_sent() {
        let t0 = Utc::now();
        let mut ev = evidence(t0, vec![mutation(t0, 1000, "r0-x")]);
        let (f, _) = check(&ev);
        assert_eq!(f.events_missing, 1);
        ev.events.push(EventRow {
            instance_uid: Uuid::from_u128(1),
            instance_name: "a".into(),
            reason: "ReconcileAbandoned".into(),
            message: "A reconcile was abandoned (LeaseLost) after sending: machines.create \
                      oc-a. The next reconcile observes what they did."
                .into(),
            created_at: at(t0, 8000),
        });
        let (f, v) = check(&ev);
        assert_eq!((f.events_missing, f.abandoned_listed), (0, 1), "{v:?}");
    }

    #[test]
    fn an_acknowledged_write_not_in_the_final_spec_is_lost() {
        let t0 = Utc::now();
        let mut ev = evidence(t0, Vec::new());
        let (f, _) = check(&ev);
        assert_eq!(f.lost_acks, 0);
        if let Some(row) = ev.world.rows.get_mut("a") {
            row.spec["guest"]["memoryMb"] = json!(4096);
        }
        let (f, v) = check(&ev);
        assert_eq!(f.lost_acks, 1);
        assert!(invariants(&v).contains(&"acknowledged writes"));
    }

    #[test]
    fn a_clean_run_passes_and_each_broken_world_is_reported() {
        let t0 = Utc::now();
        let mut clean = evidence(t0, vec![mutation(t0, 5500, "r1-y")]);
        clean.events.push(EventRow {
            instance_uid: Uuid::from_u128(1),
            instance_name: "a".into(),
            reason: "CreateMachine".into(),
            message: String::new(),
            created_at: at(t0, 5800),
        });
        let (f, v) = check(&clean);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!((f.converged, f.instances, f.mutations_checked), (1, 1, 1));

        let mut ev = evidence(t0, Vec::new());
        ev.world.sim_state["machines"][0]["state"] = json!("stopped");
        assert_eq!(invariants(&check(&ev).1), vec!["converged"]);

        let mut ev = evidence(t0, Vec::new());
        ev.samples.duplicates.push((
            at(t0, 3000),
            crate::chaos::sampler::Duplicate {
                app: "oc-a".into(),
                kind: "machine".into(),
                id: "m2".into(),
            },
        ));
        assert_eq!(invariants(&check(&ev).1), vec!["duplicates"]);

        let mut ev = evidence(t0, Vec::new());
        ev.orphans = json!({"orphans": [{"kind": "volume", "app": "oc-a", "id": "v9",
                                         "reason": "more than one volume in the app"}]});
        assert_eq!(invariants(&check(&ev).1), vec!["orphans"]);

        let mut ev = evidence(t0, Vec::new());
        ev.foreign_after = json!({"apps": []});
        let mut touch = mutation(t0, 1000, "r0-x");
        touch.app = Some("u".into());
        touch.path = "/v1/apps/u/machines".into();
        ev.requests.push(touch);
        let (f, v) = check(&ev);
        assert_eq!(f.foreign_touched, 2, "{v:?}");
    }

    #[test]
    fn the_rate_limiters_429s_and_unexplained_ones_are_reported() {
        let t0 = Utc::now();
        let mut ev = evidence(t0, Vec::new());
        ev.stats = json!({"rate_limited_total": 2, "rate_limited": {"POST /v1/apps": 2},
                          "calls": {"POST /v1/apps": {"total": 5, "statuses": {"429": 3}}}});
        let (f, v) = check(&ev);
        assert_eq!((f.limiter_429, f.unexplained_429), (2, 1));
        assert_eq!(invariants(&v), vec!["429s", "429s"]);
    }

    #[test]
    fn injected_429s_that_never_reached_a_client_are_no_violation() {
        let t0 = Utc::now();
        let mut ev = evidence(t0, Vec::new());
        ev.stats = json!({"rate_limited_total": 0, "rate_limited": {},
                          "calls": {"POST /v1/apps": {"total": 5, "statuses": {"429": 1}}}});
        ev.faults.push(AppliedFault {
            fault: Fault::SimRule {
                label: "429".into(),
                rule: json!({"kind": "rate_limit"}),
                lasting: Duration::from_secs(3),
            },
            start: t0,
            end: Some(at(t0, 3000)),
            applied: true,
            hits: 3,
            removal: None,
        });
        let (f, v) = check(&ev);
        assert_eq!(f.unexplained_429, 0, "{v:?}");
        assert!(!invariants(&v).contains(&"429s"), "{v:?}");
    }
}
