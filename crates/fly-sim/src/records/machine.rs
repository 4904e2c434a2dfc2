//! A simulated machine and its state machine (spec §3): guards answer synchronously, timed
//! transitions are queued as steps and applied lazily by [`MachRec::settle`].

use crate::clock::{delta, rfc3339};
use crate::errors::{SimError, SimResult};
use crate::wire::{CheckStatus, ImageRef, Lease, Machine, MachineConfig, MachineEvent};
use crate::{Ctx, LatencyModel};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;

type Time = DateTime<Utc>;

/// States from which a delete without `force` is allowed.
const DESTROYABLE: [&str; 4] = ["stopped", "suspended", "failed", "created"];

/// A scheduled transition.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// When it happens (simulated time).
    pub at: Time,
    /// The state entered.
    pub state: &'static str,
    /// Event `type` recorded.
    pub event_type: &'static str,
    /// Event `source` recorded.
    pub source: &'static str,
    /// Entering `stopped` opens the reap-lag window.
    pub reap: bool,
}

/// One config version of a machine.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRec {
    /// The instance id of this version.
    pub version: String,
    /// The config it ran.
    pub config: MachineConfig,
    /// When it was created.
    pub created_at: Time,
}

/// A lease on a machine.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseRec {
    /// Secret the holder presents in `fly-machine-lease-nonce`.
    pub nonce: String,
    /// Who holds it.
    pub owner: String,
    /// Free text from the acquirer.
    pub description: String,
    /// Expiry (simulated time).
    pub expires_at: Time,
    /// Machine version when acquired.
    pub version: String,
}

impl LeaseRec {
    /// The lease as Fly answers it.
    pub fn to_wire(&self) -> Lease {
        Lease {
            nonce: Some(self.nonce.clone()),
            expires_at: Some(self.expires_at.timestamp()),
            owner: Some(self.owner.clone()),
            description: Some(self.description.clone()),
            version: Some(self.version.clone()),
        }
    }
}

/// How an injected crash loop's process exits each time it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoopExit {
    /// The exit code.
    pub exit_code: i32,
    /// Whether the kernel's out-of-memory killer ended it (Fly's `exit_event.oom_killed`).
    pub oom_killed: bool,
}

/// A simulated machine.
#[derive(Debug, Clone, Serialize)]
pub struct MachRec {
    /// 14-hex id.
    pub id: String,
    /// Owning app id.
    pub app_id: String,
    /// Owning app name.
    pub app_name: String,
    /// Machine name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Host id (equals the zone of its volume).
    pub host: String,
    /// Current state.
    pub state: String,
    /// Current version (ULID).
    pub instance_id: String,
    /// 6PN address.
    pub private_ip: String,
    /// Current config.
    pub config: MachineConfig,
    /// Versions, oldest first.
    pub versions: Vec<VersionRec>,
    /// Events, oldest first.
    pub events: Vec<MachineEvent>,
    /// Whether the proxy routes to it.
    pub cordoned: bool,
    /// Current lease, possibly expired.
    pub lease: Option<LeaseRec>,
    /// Creation time.
    pub created_at: Time,
    /// Last change.
    pub updated_at: Time,
    /// When it last became `started`.
    pub started_at: Option<Time>,
    /// When it became `destroyed`.
    pub destroyed_at: Option<Time>,
    /// Until when a start is refused with "machine still active".
    pub reap_until: Option<Time>,
    /// Restarts applied by the restart policy.
    pub restart_count: u32,
    /// Pending transitions, in order.
    pub steps: VecDeque<Step>,
    /// Injected "stuck transition": transitions stop while the machine is in this state
    /// (`*` freezes whatever state it is in) until released through `/_sim`.
    pub stuck_in: Option<String>,
    /// Injected crash loop: the process exits this way every time it reaches `started`.
    pub crash_loop: Option<LoopExit>,
    /// Its host is unreachable: GET answers from cache, host-touching operations get 503.
    pub host_unreachable: bool,
    /// App secrets version it booted with (None when booted with `skip_secrets`).
    pub secrets_version: Option<u64>,
}

impl MachRec {
    /// A machine just accepted by a create: `created`, with a `launch` event.
    pub fn new(
        app_id: String,
        app_name: String,
        name: String,
        region: String,
        host: String,
        config: MachineConfig,
        now: Time,
    ) -> Self {
        let instance_id = crate::ids::ulid();
        let mut m = Self {
            id: crate::ids::machine_id(),
            app_id,
            app_name,
            name,
            region,
            host,
            state: "created".into(),
            instance_id: instance_id.clone(),
            private_ip: crate::ids::private_ip(),
            config: config.clone(),
            versions: vec![VersionRec {
                version: instance_id,
                config,
                created_at: now,
            }],
            events: Vec::new(),
            cordoned: false,
            lease: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            destroyed_at: None,
            reap_until: None,
            restart_count: 0,
            steps: VecDeque::new(),
            stuck_in: None,
            crash_loop: None,
            host_unreachable: false,
            secrets_version: None,
        };
        m.push_event(now, "launch", "created", "user", None);
        m
    }

    fn push_event(
        &mut self,
        at: Time,
        type_: &str,
        status: &str,
        source: &str,
        request: Option<Value>,
    ) {
        self.events.push(MachineEvent {
            id: Some(crate::ids::ulid()),
            r#type: Some(type_.into()),
            status: Some(status.into()),
            source: Some(source.into()),
            timestamp: Some(at.timestamp_millis()),
            request: request.and_then(|r| match r {
                Value::Object(map) => Some(map),
                _ => None,
            }),
        });
    }

    fn enter(
        &mut self,
        at: Time,
        state: &'static str,
        event_type: &'static str,
        source: &'static str,
    ) {
        self.state = state.into();
        self.updated_at = at;
        match state {
            "started" => {
                self.started_at = Some(at);
                self.reap_until = None;
            }
            "destroyed" => self.destroyed_at = Some(at),
            _ => {}
        }
        self.push_event(at, event_type, state, source, None);
    }

    fn schedule(
        &mut self,
        at: Time,
        state: &'static str,
        event_type: &'static str,
        source: &'static str,
    ) {
        self.steps.push_back(Step {
            at,
            state,
            event_type,
            source,
            reap: false,
        });
    }

    /// Applies every step due at `ctx.now`; true when anything changed.
    pub fn settle(&mut self, ctx: &Ctx) -> bool {
        let mut changed = false;
        while !self.is_frozen() && self.steps.front().is_some_and(|s| s.at <= ctx.now) {
            let Some(step) = self.steps.pop_front() else {
                break;
            };
            self.enter(step.at, step.state, step.event_type, step.source);
            if step.reap {
                self.reap_until = Some(step.at + delta(ctx.config.latency.reap_lag));
            }
            if step.state == "started" {
                if let Some(exit) = self.crash_loop {
                    if self
                        .crash_at(step.at, exit.exit_code, exit.oom_killed, ctx)
                        .is_err()
                    {
                        break;
                    }
                }
            }
            changed = true;
        }
        changed
    }

    /// Whether an injected stuck transition holds the machine where it is.
    pub fn is_frozen(&self) -> bool {
        self.stuck_in
            .as_deref()
            .is_some_and(|s| s == "*" || s == self.state)
    }

    /// When the next scheduled transition happens (never, while stuck).
    pub fn next_step_at(&self) -> Option<Time> {
        if self.is_frozen() {
            return None;
        }
        self.steps.front().map(|s| s.at)
    }

    /// 503 when the machine's host is unreachable (for operations that need the host).
    pub fn require_host(&self) -> SimResult<()> {
        if self.host_unreachable {
            return Err(SimError::Other {
                code: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                message: "unavailable: host unreachable".into(),
                status: None,
            });
        }
        Ok(())
    }

    /// Whether the machine is between stable states.
    pub fn is_transient(&self) -> bool {
        !self.steps.is_empty()
            || matches!(
                self.state.as_str(),
                "creating"
                    | "starting"
                    | "stopping"
                    | "restarting"
                    | "suspending"
                    | "destroying"
                    | "updating"
                    | "replacing"
                    | "launch_failed"
            )
    }

    /// The newest event's id.
    pub fn last_event_id(&self) -> Option<String> {
        self.events.last().and_then(|e| e.id.clone())
    }

    /// The lease in force at `now`.
    pub fn active_lease(&self, now: Time) -> Option<&LeaseRec> {
        self.lease.as_ref().filter(|l| l.expires_at > now)
    }

    /// The 409 a mutation gets when someone else holds the lease.
    pub fn lease_held_error(&self, lease: &LeaseRec) -> SimError {
        SimError::LeaseHeld(format!(
            "machine ID {} lease currently held by {}, expires at {}",
            self.id,
            lease.owner,
            lease
                .expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
    }

    /// Refuses a mutation unless the lease (if any) is presented.
    pub fn check_lease(&self, nonce: Option<&str>, now: Time) -> SimResult<()> {
        match self.active_lease(now) {
            Some(lease) if nonce != Some(lease.nonce.as_str()) => Err(self.lease_held_error(lease)),
            _ => Ok(()),
        }
    }

    /// Queues the boot of a fresh or replaced machine starting at `from`.
    pub fn schedule_boot(&mut self, from: Time, pull: Duration, lat: &LatencyModel) {
        let starting = from + delta(lat.create_to_starting.saturating_add(pull));
        self.schedule(starting, "starting", "start", "flyd");
        self.schedule(
            starting + delta(lat.starting_to_started),
            "started",
            "start",
            "flyd",
        );
    }

    /// Queues the "prepare" of a `skip_launch` create: `created` → `stopped`.
    pub fn schedule_prepare(&mut self, from: Time, lat: &LatencyModel) {
        self.schedule(from + delta(lat.prepare), "stopped", "launch", "flyd");
    }

    /// `POST …/start`; returns the previous state.
    pub fn start(&mut self, ctx: &Ctx) -> SimResult<String> {
        let previous = self.state.clone();
        match previous.as_str() {
            "stopped" | "suspended" | "failed" => {
                if self.reap_until.is_some_and(|r| ctx.now < r) {
                    return Err(SimError::precondition(
                        "machine still active, refusing to start",
                    ));
                }
                let lat = &ctx.config.latency;
                let took = if previous == "suspended" {
                    lat.resume
                } else {
                    lat.start
                };
                self.steps.clear();
                self.enter(ctx.now, "starting", "start", "user");
                self.schedule(ctx.now + delta(took), "started", "start", "flyd");
                Ok(previous)
            }
            "started" | "starting" if ctx.config.start_running_is_noop => Ok(previous),
            other => Err(SimError::precondition(format!(
                "unable to start machine from current state: '{other}'"
            ))),
        }
    }

    /// `POST …/stop` with the requested stop timeout.
    pub fn stop(&mut self, timeout: Option<Duration>, ctx: &Ctx) -> SimResult<()> {
        let lat = &ctx.config.latency;
        match self.state.as_str() {
            "started" | "starting" | "restarting" | "replacing" | "suspending" => {}
            "created" if !self.steps.is_empty() => {}
            "suspended" => {
                self.steps.clear();
                self.enter(ctx.now, "stopped", "stop", "user");
                return Ok(());
            }
            "stopped" | "stopping" | "created" | "failed" => return Ok(()),
            other => {
                return Err(SimError::precondition(format!(
                    "unable to stop machine from current state: '{other}'"
                )))
            }
        }
        let took = timeout.map_or(lat.stop, |t| t.min(lat.stop));
        self.steps.clear();
        self.enter(ctx.now, "stopping", "stop", "user");
        self.steps.push_back(Step {
            at: ctx.now + delta(took),
            state: "stopped",
            event_type: "stop",
            source: "user",
            reap: true,
        });
        Ok(())
    }

    /// `POST …/restart`.
    pub fn restart(&mut self, ctx: &Ctx) -> SimResult<()> {
        if self.state != "started" {
            return Err(SimError::precondition(format!(
                "unable to restart machine from current state: '{}'",
                self.state
            )));
        }
        self.steps.clear();
        self.enter(ctx.now, "restarting", "restart", "user");
        self.schedule(
            ctx.now + delta(ctx.config.latency.restart),
            "started",
            "start",
            "flyd",
        );
        Ok(())
    }

    /// `POST …/suspend`.
    pub fn suspend(&mut self, ctx: &Ctx) -> SimResult<()> {
        if self.state != "started" {
            return Err(SimError::precondition(format!(
                "unable to suspend machine from current state: '{}'",
                self.state
            )));
        }
        self.steps.clear();
        self.enter(ctx.now, "suspending", "suspend", "user");
        self.schedule(
            ctx.now + delta(ctx.config.latency.suspend),
            "suspended",
            "suspend",
            "flyd",
        );
        Ok(())
    }

    /// `POST …/{id}` (full config replace): new version, `replacing`, then boot or stop.
    pub fn update(&mut self, config: MachineConfig, skip_launch: bool, ctx: &Ctx) -> SimResult<()> {
        if matches!(self.state.as_str(), "destroying" | "destroyed") {
            return Err(SimError::precondition(format!(
                "unable to update machine from current state: '{}'",
                self.state
            )));
        }
        let lat = &ctx.config.latency;
        self.instance_id = crate::ids::ulid();
        self.config = config.clone();
        self.versions.push(VersionRec {
            version: self.instance_id.clone(),
            config,
            created_at: ctx.now,
        });
        self.steps.clear();
        self.reap_until = None;
        self.enter(ctx.now, "replacing", "update", "user");
        let half = ctx.now + delta(lat.update / 2);
        if skip_launch {
            self.schedule(half, "stopped", "update", "flyd");
        } else {
            self.schedule(half, "starting", "start", "flyd");
            self.schedule(ctx.now + delta(lat.update), "started", "start", "flyd");
        }
        Ok(())
    }

    /// `DELETE …/{id}`: `destroying`, then `destroyed` after the destroy latency.
    pub fn destroy(&mut self, force: bool, ctx: &Ctx) -> SimResult<()> {
        if self.state == "destroying" {
            return Ok(());
        }
        if !force && !DESTROYABLE.contains(&self.state.as_str()) {
            return Err(if ctx.config.destroy_guard_conflict {
                SimError::Conflict("unable to destroy machine, not currently stopped".into())
            } else {
                SimError::precondition(
                    "unable to destroy machine, not currently stopped, suspended, failed or created",
                )
            });
        }
        self.steps.clear();
        self.enter(ctx.now, "destroying", "destroy", "user");
        self.schedule(
            ctx.now + delta(ctx.config.latency.destroy),
            "destroyed",
            "destroy",
            "user",
        );
        Ok(())
    }

    /// An injected process exit; applies the restart policy (default `on-failure`, 10 retries).
    pub fn crash(&mut self, exit_code: i32, oom_killed: bool, ctx: &Ctx) -> SimResult<()> {
        self.crash_at(ctx.now, exit_code, oom_killed, ctx)
    }

    /// Whether the restart policy (default `on-failure` with 10 retries) restarts the machine
    /// after an exit with `exit_code`.
    fn restarts_after(&self, exit_code: i32) -> bool {
        let (policy, max_retries) = self
            .config
            .restart
            .as_ref()
            .map(|r| {
                let retries = r.max_retries.and_then(|n| u32::try_from(n).ok());
                (
                    r.policy.as_deref().unwrap_or("on-failure"),
                    retries.unwrap_or(10),
                )
            })
            .unwrap_or(("on-failure", 10));
        match policy {
            "always" => true,
            "no" => false,
            _ => exit_code != 0 && self.restart_count < max_retries,
        }
    }

    /// A process exit at `at`. A crash-looping machine restarts with a growing backoff
    /// (1 s doubling up to 5 min) so long clock jumps stay cheap.
    fn crash_at(&mut self, at: Time, exit_code: i32, oom_killed: bool, ctx: &Ctx) -> SimResult<()> {
        if self.state != "started" {
            return Err(SimError::precondition(format!(
                "machine is not started (state '{}')",
                self.state
            )));
        }
        let restarting = self.restarts_after(exit_code);
        if restarting {
            self.restart_count += 1;
        }
        self.steps.clear();
        self.state = "stopped".into();
        self.updated_at = at;
        self.push_event(
            at,
            "exit",
            "stopped",
            "flyd",
            Some(json!({
                "exit_event": {
                    "exit_code": exit_code,
                    "guest_exit_code": exit_code,
                    "guest_signal": -1,
                    "oom_killed": oom_killed,
                    "requested_stop": false,
                    "restarting": restarting,
                    "signal": -1,
                    "exited_at": rfc3339(at),
                },
                "restart_count": self.restart_count,
            })),
        );
        if restarting {
            self.enter(at, "starting", "start", "flyd");
            let backoff = if self.crash_loop.is_some() {
                Duration::from_secs(1u64 << self.restart_count.min(8)).min(Duration::from_secs(300))
            } else {
                Duration::ZERO
            };
            self.schedule(
                at + delta(ctx.config.latency.start.max(backoff)),
                "started",
                "start",
                "flyd",
            );
        }
        Ok(())
    }

    /// An injected boot failure: the machine ends `failed`.
    pub fn fail(&mut self, ctx: &Ctx) {
        self.steps.clear();
        self.enter(ctx.now, "failed", "exit", "flyd");
    }

    /// An injected host migration (spec §6 item 12): a new version (old one `migrated`) on
    /// `host`, mounting `volume` (the fork) if any, stopped and booted again when it was running.
    pub fn migrate(&mut self, host: String, volume: Option<String>, ctx: &Ctx) {
        let was_running = matches!(self.state.as_str(), "started" | "starting" | "replacing");
        self.host = host;
        if let (Some(vol), Some(mount)) = (volume, self.config.mounts.first_mut()) {
            mount.volume = Some(vol);
        }
        self.instance_id = crate::ids::ulid();
        self.versions.push(VersionRec {
            version: self.instance_id.clone(),
            config: self.config.clone(),
            created_at: ctx.now,
        });
        self.steps.clear();
        self.reap_until = None;
        self.push_event(
            ctx.now,
            "migrate",
            "migrated",
            "flyd",
            Some(json!({"new_host": self.host, "volume": self.config.mounts.first().and_then(|m| m.volume.clone())})),
        );
        if was_running {
            self.enter(ctx.now, "stopped", "stop", "flyd");
            self.enter(ctx.now, "starting", "start", "flyd");
            self.schedule(
                ctx.now + delta(ctx.config.latency.start),
                "started",
                "start",
                "flyd",
            );
        }
    }

    /// An injected launch failure: `launch_failed`, then `destroyed` on its own.
    pub fn launch_fail(&mut self, ctx: &Ctx) {
        self.steps.clear();
        self.enter(ctx.now, "launch_failed", "launch", "flyd");
        self.schedule(
            ctx.now + delta(ctx.config.latency.destroy),
            "destroyed",
            "destroy",
            "flyd",
        );
    }

    fn checks(&self, ctx: &Ctx) -> Vec<CheckStatus> {
        self.config
            .checks
            .iter()
            .map(|(name, check)| {
                let grace = check
                    .grace_period
                    .as_deref()
                    .and_then(crate::extract::parse_duration)
                    .unwrap_or_default();
                let passing = ctx.config.checks_pass
                    && self.state == "started"
                    && self
                        .started_at
                        .is_some_and(|at| at + delta(grace) <= ctx.now);
                CheckStatus {
                    name: Some(name.clone()),
                    status: Some(if passing { "passing" } else { "critical" }.into()),
                    output: Some(
                        if passing {
                            "Success"
                        } else {
                            "waiting for first check"
                        }
                        .into(),
                    ),
                    updated_at: Some(rfc3339(ctx.now)),
                }
            })
            .collect()
    }

    /// A config with only the fields `summary=true` keeps.
    pub fn summary_config(&self) -> MachineConfig {
        MachineConfig {
            image: self.config.image.clone(),
            guest: self.config.guest.clone(),
            metadata: self.config.metadata.clone(),
            ..MachineConfig::default()
        }
    }

    /// The machine as Fly returns it (`autostop` read back in Fly's boolean form).
    pub fn to_wire(&self, ctx: &Ctx, summary: bool) -> Machine {
        let config = if summary {
            self.summary_config()
        } else {
            answered_config(&self.config)
        };
        Machine {
            id: Some(self.id.clone()),
            name: Some(self.name.clone()),
            state: Some(self.state.clone()),
            region: Some(self.region.clone()),
            instance_id: Some(self.instance_id.clone()),
            private_ip: Some(self.private_ip.clone()),
            created_at: Some(rfc3339(self.created_at)),
            updated_at: Some(rfc3339(self.updated_at)),
            image_ref: Some(image_ref(self.config.image.as_deref().unwrap_or_default())),
            config: (!self.host_unreachable).then_some(config),
            incomplete_config: self.host_unreachable.then(|| self.summary_config()),
            events: if summary {
                Vec::new()
            } else {
                self.events.iter().rev().take(20).cloned().collect()
            },
            checks: if summary {
                Vec::new()
            } else {
                self.checks(ctx)
            },
            cordoned: Some(self.cordoned),
            host_status: Some(
                if self.host_unreachable {
                    "unreachable"
                } else {
                    "ok"
                }
                .into(),
            ),
            lease: self
                .active_lease(ctx.now)
                .map(|l| crate::wire::StrippedLease {
                    description: Some(l.description.clone()),
                    expires_at: Some(l.expires_at.timestamp()),
                    owner: Some(l.owner.clone()),
                }),
            ..Machine::default()
        }
    }
}

/// The config as Fly reads it back: `autostop` `"off"`/`"stop"` become `false`/`true`.
fn answered_config(config: &MachineConfig) -> MachineConfig {
    let mut config = config.clone();
    for service in &mut config.services {
        service.autostop = service.autostop.as_ref().map(|a| a.as_answered());
    }
    config
}

/// Docker Hub, as Fly reports images pulled from it.
const DOCKER_HUB: &str = "docker-hub-mirror.fly.io";

/// The `image_ref` Fly reports for an image reference: registry, repository, tag and a digest
/// (the one pinned in the reference, else a stable stand-in derived from the reference, since
/// the simulator pulls nothing).
pub fn image_ref(image: &str) -> ImageRef {
    use sha2::Digest;
    let (name, pinned) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest.to_owned())),
        None => (image, None),
    };
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let explicit = first.contains(['.', ':']) || first == "localhost";
    let (registry, path) = match (explicit, first.is_empty()) {
        (true, _) => (first.to_owned(), rest.to_owned()),
        (false, true) => (DOCKER_HUB.to_owned(), format!("library/{rest}")),
        (false, false) => (DOCKER_HUB.to_owned(), name.to_owned()),
    };
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
        _ => (path.clone(), "latest".to_owned()),
    };
    let digest = pinned.unwrap_or_else(|| {
        let hash = sha2::Sha256::digest(image.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    });
    ImageRef {
        registry: Some(registry),
        repository: Some(repository),
        tag: Some(tag),
        digest: Some(digest),
        labels: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::image_ref;

    #[test]
    fn image_refs_name_registry_repository_tag_and_a_stable_digest() {
        let r = image_ref("ghcr.io/openclaw/openclaw:2026.9.6");
        assert_eq!(r.registry.as_deref(), Some("ghcr.io"));
        assert_eq!(r.repository.as_deref(), Some("openclaw/openclaw"));
        assert_eq!(r.tag.as_deref(), Some("2026.9.6"));
        let digest = r.digest.clone().unwrap();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        assert_eq!(
            image_ref("ghcr.io/openclaw/openclaw:2026.9.6"),
            r,
            "deterministic"
        );
        assert_ne!(image_ref("ghcr.io/openclaw/openclaw:main").digest, r.digest);

        let hub = image_ref("nginx");
        assert_eq!(hub.registry.as_deref(), Some("docker-hub-mirror.fly.io"));
        assert_eq!(hub.repository.as_deref(), Some("library/nginx"));
        assert_eq!(hub.tag.as_deref(), Some("latest"));
        let pinned = image_ref("localhost:5000/app@sha256:abc");
        assert_eq!(pinned.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(pinned.digest.as_deref(), Some("sha256:abc"));
    }
}
