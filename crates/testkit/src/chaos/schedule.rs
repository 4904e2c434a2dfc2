//! The schedule of one seed: which faults happen when and to whom, and what the API client
//! asks of each instance when. It is made from the seed alone, before anything runs, so the same
//! seed always gives the same schedule (the processes' interleaving around it still varies).
//!
//! The run's timeline is cut into slots; each slot holds one fault near its start and ends
//! quiet, so the run alternates trouble and calm and the calm parts measure how long an
//! instance waits when nothing is wrong. The first slots hold one of each major fault (a
//! replica killed, a replica frozen past its lease, PostgreSQL stopped, a Fly outage), so even
//! a short run sees all of them.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::time::Duration;

use crate::postgres::StopMode;

/// What a schedule is made for.
#[derive(Debug, Clone)]
pub struct ScheduleParams {
    /// The seed.
    pub seed: u64,
    /// Instances created through the API.
    pub instances: usize,
    /// Controller replicas.
    pub replicas: usize,
    /// How long faults and API traffic last.
    pub duration: Duration,
    /// The controllers' work lease (a freeze lasts longer than this).
    pub lease: Duration,
}

/// Something that happens at an offset from the start of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed<T> {
    /// Offset from the start of the run.
    pub at: Duration,
    /// What happens.
    pub what: T,
}

/// A fault the harness injects.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `kill -9` of a replica, started again (a new process, a new lease owner) after `down`.
    Kill {
        /// Index of the replica.
        replica: usize,
        /// How long it stays dead.
        down: Duration,
    },
    /// SIGSTOP of a replica, SIGCONT after `frozen` (longer than the lease).
    Freeze {
        /// Index of the replica.
        replica: usize,
        /// How long it stays stopped.
        frozen: Duration,
    },
    /// PostgreSQL stopped, started again on the same port and data after `down`.
    PostgresDown {
        /// How long it stays down.
        down: Duration,
        /// Fast or immediate (crash-like) shutdown.
        mode: StopMode,
    },
    /// Every Fly API call answers 503 for `lasting`.
    FlyOutage {
        /// How long.
        lasting: Duration,
    },
    /// The region is full (creates and starts fail with a capacity error) for `lasting`.
    RegionFull {
        /// How long.
        lasting: Duration,
    },
    /// A rule of the simulator's fault catalogue (`POST /_sim/faults`) for `lasting`.
    SimRule {
        /// What the catalogue entry is, for reports.
        label: String,
        /// The rule as posted.
        rule: Value,
        /// How long it stays installed.
        lasting: Duration,
    },
}

impl Fault {
    /// How long the fault lasts from its start.
    pub fn lasting(&self) -> Duration {
        match self {
            Fault::Kill { down, .. } => *down,
            Fault::Freeze { frozen, .. } => *frozen,
            Fault::PostgresDown { down, .. } => *down,
            Fault::FlyOutage { lasting }
            | Fault::RegionFull { lasting }
            | Fault::SimRule { lasting, .. } => *lasting,
        }
    }

    /// A short description for reports.
    pub fn label(&self) -> String {
        match self {
            Fault::Kill { replica, down } => {
                format!(
                    "kill -9 replica {replica}, restarted after {:.1}s",
                    secs(*down)
                )
            }
            Fault::Freeze { replica, frozen } => {
                format!("SIGSTOP replica {replica} for {:.1}s", secs(*frozen))
            }
            Fault::PostgresDown { down, mode } => {
                format!("PostgreSQL down ({mode:?}) for {:.1}s", secs(*down))
            }
            Fault::FlyOutage { lasting } => {
                format!("Fly outage (all 503) for {:.1}s", secs(*lasting))
            }
            Fault::RegionFull { lasting } => format!("region iad full for {:.1}s", secs(*lasting)),
            Fault::SimRule { label, lasting, .. } => format!("{label} for {:.1}s", secs(*lasting)),
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// What the API client asks of an instance after creating it.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A JSON merge patch of spec fields (`{"spec": …}`).
    Update(Value),
    /// `spec.paused: true`.
    Pause,
    /// `spec.paused: false`.
    Resume,
    /// `DELETE`.
    Delete,
}

impl Op {
    /// A short name for reports.
    pub fn label(&self) -> String {
        match self {
            Op::Update(patch) => format!("update {}", patch["spec"]),
            Op::Pause => "pause".to_owned(),
            Op::Resume => "resume".to_owned(),
            Op::Delete => "delete".to_owned(),
        }
    }
}

/// One instance's life as the API client drives it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePlan {
    /// Instance name (never reused within a run).
    pub name: String,
    /// When it is created.
    pub create_at: Duration,
    /// The spec of the create (`PUT`).
    pub spec: Value,
    /// Later writes, in time order.
    pub ops: Vec<Timed<Op>>,
    /// Its app name is taken by a resource that is not ours: it must end `Failed`
    /// (`AppNameTaken`) and the resource must stay untouched.
    pub name_taken: bool,
}

/// Resources that are not the controller's, made before the run and compared after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignPlan {
    /// An app another organization owns (`/_sim/foreign-apps`), whose name an instance asks for.
    pub foreign_org_app: String,
    /// An app in our organization without our ownership mark, with a volume and a machine,
    /// whose name an instance asks for.
    pub unmarked_app: String,
    /// An app in our organization, not ours, with a volume and a machine, that no instance
    /// names (the fleet watch sees its machine).
    pub bystander_app: String,
}

/// The whole schedule of a seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The seed it was made from.
    pub seed: u64,
    /// Faults in time order.
    pub faults: Vec<Timed<Fault>>,
    /// Every instance the client creates.
    pub instances: Vec<InstancePlan>,
    /// The resources that are not ours.
    pub foreign: ForeignPlan,
}

/// Time before the first fault: replicas settle, the first creates go through.
const WARMUP: Duration = Duration::from_secs(5);
/// Memory sizes a shared 2-CPU machine accepts.
const MEMORY: [u64; 4] = [1024, 2048, 3072, 4096];
/// Images the instances switch between.
const IMAGES: [&str; 2] = [
    "ghcr.io/openclaw/openclaw:main",
    "ghcr.io/openclaw/openclaw:2026.9.6",
];

impl Schedule {
    /// The schedule of `params.seed`.
    pub fn generate(params: &ScheduleParams) -> Schedule {
        let mut rng = StdRng::seed_from_u64(params.seed);
        let faults = faults(&mut rng, params);
        let foreign = ForeignPlan {
            foreign_org_app: "oc-chaos-taken-elsewhere".to_owned(),
            unmarked_app: "oc-chaos-taken-here".to_owned(),
            bystander_app: "bystander".to_owned(),
        };
        let mut instances: Vec<InstancePlan> = (0..params.instances)
            .map(|i| instance(&mut rng, params, format!("chaos-{i:03}")))
            .collect();
        // Two of them ask for a name that is taken; one of those is deleted later.
        for (slot, app) in [&foreign.foreign_org_app, &foreign.unmarked_app]
            .into_iter()
            .enumerate()
        {
            if let Some(plan) = instances.get_mut(slot * 2 + 1) {
                plan.name = app.trim_start_matches("oc-").to_owned();
                plan.name_taken = true;
                plan.ops.retain(|op| op.what == Op::Delete);
                if slot == 0 && plan.ops.is_empty() {
                    let at = plan.create_at + (params.duration - plan.create_at) / 2;
                    plan.ops.push(Timed {
                        at,
                        what: Op::Delete,
                    });
                }
            }
        }
        Schedule {
            seed: params.seed,
            faults,
            instances,
            foreign,
        }
    }

    /// The time the last fault ends.
    pub fn faults_end(&self) -> Duration {
        self.faults
            .iter()
            .map(|f| f.at + f.what.lasting())
            .max()
            .unwrap_or_default()
    }
}

/// Slots of the timeline, each with one fault near its start and a quiet end.
fn faults(rng: &mut StdRng, params: &ScheduleParams) -> Vec<Timed<Fault>> {
    let span = params.duration.saturating_sub(WARMUP);
    let slot = Duration::from_secs(10).max(params.lease * 3);
    let count = ((span.as_secs_f64() / slot.as_secs_f64()).floor() as usize).max(4);
    let slot = span / count as u32;
    let mut kinds: Vec<Kind> = vec![Kind::Kill, Kind::Freeze, Kind::Postgres, Kind::Outage];
    while kinds.len() < count {
        kinds.push(
            *[
                Kind::Freeze,
                Kind::Freeze,
                Kind::Kill,
                Kind::Kill,
                Kind::Postgres,
                Kind::Outage,
                Kind::Region,
                Kind::Rule,
                Kind::Rule,
                Kind::Rule,
                Kind::Rule,
            ]
            .choose(rng)
            .unwrap_or(&Kind::Rule),
        );
    }
    // The four majors land in random slots among the first ones, the rest after them.
    kinds[..4].shuffle(rng);
    let mut out = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let start = WARMUP + slot * i as u32;
        let at = start + slot.mul_f64(rng.gen_range(0.0..0.15));
        // Leave at least a third of the slot quiet.
        let room = slot.mul_f64(0.55);
        out.push(Timed {
            at,
            what: fault(rng, kind, params, room),
        });
        // A rule of the catalogue runs alongside most slots' fault, within its trouble part.
        if rng.gen_bool(0.7) {
            let at = start + slot.mul_f64(rng.gen_range(0.0..0.2));
            out.push(Timed {
                at,
                what: sim_rule(rng, room.mul_f64(0.8)),
            });
        }
    }
    out.sort_by_key(|f| f.at);
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Kill,
    Freeze,
    Postgres,
    Outage,
    Region,
    Rule,
}

fn between(rng: &mut StdRng, low: f64, high: f64, room: Duration) -> Duration {
    let high = high
        .min(room.as_secs_f64())
        .max(low.min(room.as_secs_f64()));
    let low = low.min(high);
    Duration::from_secs_f64(if high > low {
        rng.gen_range(low..high)
    } else {
        low
    })
}

fn fault(rng: &mut StdRng, kind: Kind, params: &ScheduleParams, room: Duration) -> Fault {
    let replica = rng.gen_range(0..params.replicas.max(1));
    let lease = params.lease.as_secs_f64();
    match kind {
        Kind::Kill => Fault::Kill {
            replica,
            down: between(rng, 0.5, 5.0, room),
        },
        Kind::Freeze => Fault::Freeze {
            replica,
            // Longer than the lease, so another replica takes its instances over.
            frozen: Duration::from_secs_f64(rng.gen_range(lease * 1.5..lease * 2.5)),
        },
        Kind::Postgres => Fault::PostgresDown {
            down: between(rng, 2.0, 8.0, room),
            mode: if rng.gen_bool(0.5) {
                StopMode::Fast
            } else {
                StopMode::Immediate
            },
        },
        Kind::Outage => Fault::FlyOutage {
            lasting: between(rng, 4.0, 12.0, room),
        },
        Kind::Region => Fault::RegionFull {
            lasting: between(rng, 3.0, 8.0, room),
        },
        Kind::Rule => sim_rule(rng, room),
    }
}

/// Fly routes the catalogue's rules aim at.
const CREATES: &str =
    r"^/v1/apps(/[^/]+/(volumes|machines|ip_assignments|secrets|certificates/acme))?$";
const MACHINE_CHANGES: &str = r"^/v1/apps/[^/]+/machines/[^/]+(/(start|stop|lease))?$";
const LISTS: &str = r"^/v1/apps/[^/]+/(volumes|machines)$";
const ANY_APP: &str = r"^/v1/apps";

/// One entry of the simulator's fault catalogue with seeded parameters.
fn sim_rule(rng: &mut StdRng, room: Duration) -> Fault {
    let lasting = between(rng, 3.0, 15.0, room);
    let probability = (rng.gen_range(0.15..0.5) * 100.0_f64).round() / 100.0;
    let (label, rule) = match rng.gen_range(0..12) {
        0 | 1 => {
            let status = *[500, 502, 503, 504].choose(rng).unwrap_or(&503);
            let html = rng.gen_bool(0.3);
            (
                format!(
                    "5xx {status}{} p={probability}",
                    if html { " html" } else { "" }
                ),
                json!({"kind": "error", "status": status, "html": html, "path": ANY_APP, "probability": probability}),
            )
        }
        2 | 3 => {
            let drop = rng.gen_bool(0.3);
            let status = *[502, 504].choose(rng).unwrap_or(&502);
            let delay_ms = rng.gen_range(0..1500u64);
            (
                format!(
                    "lost after commit ({}) on creates and machine changes p={probability}",
                    if drop {
                        "dropped".to_owned()
                    } else {
                        status.to_string()
                    }
                ),
                json!({"kind": "lost_after_commit", "method": "POST", "status": status, "drop": drop,
                       "delay_ms": delay_ms, "path": format!("{CREATES}|{MACHINE_CHANGES}"), "probability": probability}),
            )
        }
        4 => {
            let commit = rng.gen_bool(0.5);
            (
                format!("408 (commit {commit}) on machine changes p={probability}"),
                json!({"kind": "timeout408", "commit": commit, "method": "POST", "path": MACHINE_CHANGES, "probability": probability}),
            )
        }
        5 => (
            format!("429 p={probability}"),
            json!({"kind": "rate_limit", "path": ANY_APP, "probability": probability}),
        ),
        6 | 7 => {
            let delay_ms = rng.gen_range(200..2500u64);
            (
                format!("latency {delay_ms} ms"),
                json!({"kind": "latency", "delay_ms": delay_ms, "jitter_ms": delay_ms / 2, "path": ANY_APP, "probability": 0.5}),
            )
        }
        8 => (
            format!("region full on creates p={probability}"),
            json!({"kind": "region_full", "method": "POST", "path": r"^/v1/apps/[^/]+/(volumes|machines)$", "probability": probability}),
        ),
        9 => {
            let seconds = (rng.gen_range(1.0..5.0_f64) * 10.0).round() / 10.0;
            (
                format!("list lag {seconds}s"),
                json!({"kind": "list_lag", "method": "GET", "seconds": seconds, "path": r"^/v1/apps/[^/]+/(volumes|machines)(/[0-9a-f]+)?$"}),
            )
        }
        10 => (
            format!("empty lists p={probability}"),
            json!({"kind": "empty_list", "method": "GET", "path": LISTS, "probability": probability}),
        ),
        _ => {
            let delay_ms = rng.gen_range(500..2500u64);
            (
                format!("slow wait {delay_ms} ms"),
                json!({"kind": "slow_wait", "delay_ms": delay_ms, "probability": 0.5}),
            )
        }
    };
    Fault::SimRule {
        label,
        rule,
        lasting,
    }
}

/// An instance's create and later writes.
fn instance(rng: &mut StdRng, params: &ScheduleParams, name: String) -> InstancePlan {
    let d = params.duration.as_secs_f64();
    let create_at = Duration::from_secs_f64(rng.gen_range(0.0..d * 0.6));
    let mut size = 1u64;
    let exposure = if rng.gen_bool(0.5) {
        "public"
    } else {
        "private"
    };
    let spec = json!({
        "customerId": format!("cust-{}", rng.gen_range(0..20)),
        "region": "iad",
        "exposure": exposure,
        "guest": {"memoryMb": *MEMORY.choose(rng).unwrap_or(&2048)},
    });
    let first = create_at.as_secs_f64() + 2.0;
    let last = d.max(first + 0.5);
    let times = |rng: &mut StdRng| Duration::from_secs_f64(rng.gen_range(first..last));
    let mut update_times: Vec<Duration> = (0..rng.gen_range(0..=3)).map(|_| times(rng)).collect();
    update_times.sort();
    // Made in time order, so the volume only grows.
    let mut ops: Vec<Timed<Op>> = update_times
        .into_iter()
        .map(|at| Timed {
            at,
            what: Op::Update(update(rng, &mut size)),
        })
        .collect();
    if rng.gen_bool(0.2) {
        let pause = times(rng);
        ops.push(Timed {
            at: pause,
            what: Op::Pause,
        });
        if rng.gen_bool(0.7) {
            let resume = pause + Duration::from_secs_f64(rng.gen_range(2.0..15.0));
            ops.push(Timed {
                at: resume.min(Duration::from_secs_f64(last)),
                what: Op::Resume,
            });
        }
    }
    ops.sort_by_key(|o| o.at);
    if rng.gen_bool(0.2) {
        let at = times(rng);
        ops.retain(|o| o.at < at);
        // A paused instance is never torn down: resume it first, as the dashboard would.
        if ends_paused(&ops) {
            let last_op = ops.last().map_or(at, |o| o.at);
            ops.push(Timed {
                at: at.saturating_sub(Duration::from_millis(500)).max(last_op),
                what: Op::Resume,
            });
        }
        ops.push(Timed {
            at,
            what: Op::Delete,
        });
    }
    InstancePlan {
        name,
        create_at,
        spec,
        ops,
        name_taken: false,
    }
}

/// Whether the last pause among `ops` is not followed by a resume.
pub fn ends_paused(ops: &[Timed<Op>]) -> bool {
    ops.iter().fold(false, |paused, op| match op.what {
        Op::Pause => true,
        Op::Resume => false,
        _ => paused,
    })
}

/// A merge patch of one or two spec fields; the volume only grows.
fn update(rng: &mut StdRng, size: &mut u64) -> Value {
    let mut spec = serde_json::Map::new();
    for _ in 0..rng.gen_range(1..=2) {
        match rng.gen_range(0..5) {
            0 => {
                spec.insert(
                    "guest".into(),
                    json!({"memoryMb": *MEMORY.choose(rng).unwrap_or(&2048)}),
                );
            }
            1 => {
                spec.insert(
                    "image".into(),
                    json!(*IMAGES.choose(rng).unwrap_or(&IMAGES[0])),
                );
            }
            2 => {
                let state = if rng.gen_bool(0.3) {
                    "stopped"
                } else {
                    "running"
                };
                spec.insert("runState".into(), json!(state));
            }
            3 => {
                *size = (*size + 1).min(3);
                spec.insert("volumeSizeGb".into(), json!(*size));
            }
            _ => {
                let exposure = if rng.gen_bool(0.5) {
                    "public"
                } else {
                    "private"
                };
                spec.insert("exposure".into(), json!(exposure));
            }
        }
    }
    json!({ "spec": spec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(seed: u64) -> ScheduleParams {
        ScheduleParams {
            seed,
            instances: 15,
            replicas: 3,
            duration: Duration::from_secs(45),
            lease: Duration::from_secs(4),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let a = Schedule::generate(&params(7));
        assert_eq!(a, Schedule::generate(&params(7)));
        assert_ne!(a, Schedule::generate(&params(8)));
    }

    #[test]
    fn every_seed_has_each_major_fault_within_the_run() {
        for seed in 0..50 {
            let p = params(seed);
            let s = Schedule::generate(&p);
            let has = |f: fn(&Fault) -> bool| s.faults.iter().any(|t| f(&t.what));
            assert!(has(|f| matches!(f, Fault::Kill { .. })), "seed {seed}");
            assert!(
                has(|f| matches!(f, Fault::PostgresDown { .. })),
                "seed {seed}"
            );
            assert!(has(|f| matches!(f, Fault::FlyOutage { .. })), "seed {seed}");
            let freezes: Vec<_> = s
                .faults
                .iter()
                .filter_map(|t| match t.what {
                    Fault::Freeze { frozen, .. } => Some(frozen),
                    _ => None,
                })
                .collect();
            assert!(!freezes.is_empty(), "seed {seed}");
            assert!(
                freezes.iter().all(|f| *f > p.lease),
                "seed {seed}: {freezes:?}"
            );
            assert!(s.faults_end() <= p.duration + p.lease * 3, "seed {seed}");
        }
    }

    #[test]
    fn writes_are_consistent_per_instance() {
        for seed in 0..50 {
            for plan in Schedule::generate(&params(seed)).instances {
                assert!(plan.ops.windows(2).all(|w| w[0].at <= w[1].at), "{plan:?}");
                let deletes = plan.ops.iter().filter(|o| o.what == Op::Delete).count();
                assert!(deletes <= 1);
                if deletes == 1 {
                    assert_eq!(plan.ops.last().map(|o| &o.what), Some(&Op::Delete));
                    let before = &plan.ops[..plan.ops.len() - 1];
                    assert!(
                        !ends_paused(before),
                        "a paused instance is never deleted: {plan:?}"
                    );
                }
                assert!(plan.ops.iter().all(|o| o.at > plan.create_at));
                let sizes: Vec<u64> = plan
                    .ops
                    .iter()
                    .filter_map(|o| match &o.what {
                        Op::Update(p) => p["spec"]["volumeSizeGb"].as_u64(),
                        _ => None,
                    })
                    .collect();
                assert!(
                    sizes.windows(2).all(|w| w[0] <= w[1]),
                    "volumes only grow: {plan:?}"
                );
            }
        }
    }
}
