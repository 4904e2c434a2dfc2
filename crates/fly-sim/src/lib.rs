//! A Fly Machines API simulator, speaking the same HTTP API as `api.machines.dev`.
//!
//! The controller's tests point `FLY_API_BASE` here. Everything lives in one `World` behind a
//! mutex; machine transitions are scheduled as timed steps and applied lazily whenever a machine
//! is read or waited on, against a [`clock::SimClock`] that tests can move forward. The `/_sim`
//! routes ([`control`]) are the simulator's own control plane and need no token.
//!
//! Layout, with dependencies running one way: [`records`] holds one record type per resource
//! (an app, a volume, a machine with its transition engine, a secret, an IP, a certificate, DNS
//! zones and records) and names no other part of the world; [`state`] is the `World` made of
//! those records, with the lookups every route shares; `apps`, `volumes`, `machines`, `leases`,
//! `wait`, `org`, `secrets`, `ips`, `certificates` hold the Fly routes by resource kind and `dns`
//! the simulated DNS table's lookups and its Cloudflare-compatible API, each building on `state`
//! and `records` and never the other way.
//!
//! Every Fly request passes, in order: call counting (`stats`), the token check (`auth`), Fly's
//! rate limits (`ratelimit`), injected faults (`faults`, async so delays never block a thread)
//! and the embedder's synchronous `hooks`. The control plane is split by purpose: `control`
//! (state, clock, stats, rate limits, fault rules), `machine_faults` (crash loops, stuck
//! transitions, unreachable hosts, foreign leases), `orphans`.
//!
//! Machines are inert records by default. In process mode ([`process`]) a started machine runs
//! its command as a real process with its volume as a directory, and [`proxy`] serves apps'
//! hostnames like Fly's edge.

pub mod apps;
pub mod auth;
pub mod certificates;
pub mod clock;
pub mod contract;
pub mod control;
pub mod dns;
pub mod errors;
pub mod exec;
pub mod extract;
pub mod faults;
pub mod hooks;
pub mod ids;
pub mod images;
pub mod ips;
pub mod leases;
pub mod machine_faults;
pub mod machines;
pub mod org;
pub mod orphans;
pub mod process;
pub mod proxy;
pub mod ratelimit;
pub mod records;
pub mod secrets;
pub mod state;
pub mod stats;
pub mod volumes;
pub mod wait;
pub mod wire;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::Router;
use errors::SimResult;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use exec::{ExecCall, ExecHandler, ExecOutcome, ExitZero};
pub use hooks::{RequestHook, RequestInfo};
pub use process::{MachineMode, ProcessSettings};

/// Command-line / environment settings of the `sim` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(
        long = "listen",
        env = "FLY_SIM_LISTEN",
        default_value = "127.0.0.1:4280"
    )]
    pub listen: std::net::SocketAddr,
    /// Token clients must present (as `Bearer <t>` or `FlyV1 <t>`).
    #[arg(long, env = "FLY_SIM_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Org slug the token belongs to.
    #[arg(long, env = "FLY_SIM_ORG", default_value = "personal")]
    pub org: String,
    /// Multiplies every simulated latency (0 = instant transitions, 1 = the spec's defaults).
    #[arg(long, env = "FLY_SIM_LATENCY_SCALE", default_value_t = 1.0)]
    pub latency_scale: f64,
    /// Region used when a machine or volume create names none.
    #[arg(long, env = "FLY_SIM_DEFAULT_REGION", default_value = "iad")]
    pub default_region: String,
    /// Seconds a volume stays bound after its machine is destroyed (before scaling).
    #[arg(long, env = "FLY_SIM_VOLUME_RELEASE_SECS", default_value_t = 5.0)]
    pub volume_release_secs: f64,
    /// Simulate an image pull the first time an image lands on a host.
    #[arg(long, env = "FLY_SIM_COLD_HOST_PULL", default_value_t = false)]
    pub cold_host_pull: bool,
    /// Enforce Fly's per-action rate limits (`--rate-limits false` to switch them off).
    #[arg(long = "rate-limits", env = "FLY_SIM_RATE_LIMITS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rate_limits: bool,
    /// Cap on every request of one token, `RATE` or `RATE/BURST` per second (off when unset).
    #[arg(long, env = "FLY_SIM_TOKEN_RATE_LIMIT", value_parser = parse_token_cap)]
    pub token_rate_limit: Option<ratelimit::BucketSpec>,
    /// `Retry-After` of a 429: `absent`, whole seconds, or fractional seconds.
    #[arg(long, env = "FLY_SIM_RETRY_AFTER", default_value = "1", value_parser = parse_retry_after)]
    pub retry_after: ratelimit::RetryAfter,
    /// Multiplies the per-action rate limits (mutating, get, app deletes). Not Fly: for benches
    /// that scale the controller's pacing by as much (`make bench`'s `--rate-scale`).
    #[arg(long, env = "FLY_SIM_RATE_SCALE", default_value_t = 1.0)]
    pub rate_scale: f64,
    /// Zone the Cloudflare-compatible DNS API hosts.
    #[arg(long, env = "FLY_SIM_DNS_ZONE", default_value = "openclaws.biz")]
    pub dns_zone: String,
    /// Token of the Cloudflare-compatible DNS API (default: the Fly token).
    #[arg(long, env = "FLY_SIM_DNS_TOKEN", hide_env_values = true)]
    pub dns_token: Option<String>,
    /// What a started machine is: `inert` (a record) or `process` (its command runs as a real
    /// local process, the volume a directory).
    #[arg(long, env = "FLY_SIM_MACHINES", value_enum, default_value = "inert")]
    pub machines: MachineModeArg,
    /// Process mode: directory for volumes and machines (default: a new directory under the
    /// system temp dir).
    #[arg(long, env = "FLY_SIM_PROCESS_ROOT")]
    pub process_root: Option<std::path::PathBuf>,
    /// Process mode: the default install's `openclaw` wrapper (`scripts/install-openclaw.sh`;
    /// default: the installer's cache path); an image tagged with a version runs that
    /// version's install from the same cache instead.
    #[arg(long, env = "OPENCLAWS_OPENCLAW_BIN")]
    pub openclaw_bin: Option<std::path::PathBuf>,
    /// Serve a Fly-like reverse proxy on this address (routes by `Host` to started machines'
    /// processes; process mode).
    #[arg(long, env = "FLY_SIM_PROXY_LISTEN")]
    pub proxy_listen: Option<std::net::SocketAddr>,
    /// Address the proxy reports in `X-Forwarded-For` for clients on loopback.
    #[arg(long, env = "FLY_SIM_PROXY_CLIENT_IP", default_value_t = proxy::DEFAULT_LOOPBACK_CLIENT_IP)]
    pub proxy_client_ip: std::net::IpAddr,
    /// Serve the proxy of Fly's private network on this address: routes `{app}.flycast` to apps
    /// with a Flycast address (process mode; `docs/private-instances.md`).
    #[arg(long, env = "FLY_SIM_PRIVATE_PROXY_LISTEN")]
    pub private_proxy_listen: Option<std::net::SocketAddr>,
}

/// `--machines` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MachineModeArg {
    /// Records only.
    Inert,
    /// Real processes.
    Process,
}

fn parse_retry_after(s: &str) -> Result<ratelimit::RetryAfter, String> {
    ratelimit::RetryAfter::parse(s)
        .ok_or_else(|| format!("{s:?} is not `absent` or a number of seconds"))
}

fn parse_token_cap(s: &str) -> Result<ratelimit::BucketSpec, String> {
    let (rate, burst) = s.split_once('/').unwrap_or((s, s));
    let number = |v: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n > 0.0)
    };
    match (number(rate), number(burst)) {
        (Some(per_second), Some(burst)) if burst >= 1.0 => {
            Ok(ratelimit::BucketSpec { per_second, burst })
        }
        _ => Err(format!(
            "{s:?} is not RATE or RATE/BURST (positive numbers, burst >= 1)"
        )),
    }
}

impl SimArgs {
    /// The simulator configuration these settings describe.
    pub fn to_config(&self) -> SimConfig {
        let mut latency = LatencyModel::spec_defaults();
        latency.volume_release = secs(self.volume_release_secs);
        let mut config = SimConfig::new(self.token.clone(), self.org.clone());
        config.latency = latency.scaled(self.latency_scale);
        config.default_region = self.default_region.clone();
        config.cold_host_pull = self.cold_host_pull;
        config.rate_limits.enabled = self.rate_limits;
        config.rate_limits.retry_after = self.retry_after;
        config.rate_limits.per_token = self.token_rate_limit;
        config.rate_limits.scale(self.rate_scale);
        config.dns_zone = self.dns_zone.clone();
        config.dns_token = self.dns_token.clone();
        if self.machines == MachineModeArg::Process {
            config.machines = MachineMode::Process(ProcessSettings {
                root: self.process_root.clone().unwrap_or_else(|| {
                    std::env::temp_dir().join(format!("openclaws-sim-{}", std::process::id()))
                }),
                openclaw_bin: self
                    .openclaw_bin
                    .clone()
                    .unwrap_or_else(process::OpenclawInstall::default_wrapper),
            });
        }
        config
    }
}

fn secs(s: f64) -> Duration {
    clock::secs_f64(s)
}

/// Simulated latencies of every timed transition (spec §3), already scaled.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyModel {
    /// `created` → `starting` after a create.
    pub create_to_starting: Duration,
    /// `starting` → `started` after a create.
    pub starting_to_started: Duration,
    /// Image pull on a cold host (only with `cold_host_pull`).
    pub image_pull: Duration,
    /// `created` → `stopped` for `skip_launch` creates.
    pub prepare: Duration,
    /// `starting` → `started` after a start.
    pub start: Duration,
    /// `starting` → `started` when resuming a suspended machine.
    pub resume: Duration,
    /// `stopping` → `stopped` (the app's shutdown time, capped by the stop timeout).
    pub stop: Duration,
    /// After `stopped`, how long a start is still refused with "machine still active".
    pub reap_lag: Duration,
    /// `restarting` → `started`.
    pub restart: Duration,
    /// `suspending` → `suspended`.
    pub suspend: Duration,
    /// `replacing` → `started` after an update.
    pub update: Duration,
    /// `destroying` → `destroyed`.
    pub destroy: Duration,
    /// After `destroyed`, how long the machine's volume stays bound.
    pub volume_release: Duration,
    /// After an app delete is accepted, how long until the app is gone.
    pub app_delete: Duration,
    /// Mean certificate issuance time once DNS validates (each issuance takes 1/3 to 5/3 of it,
    /// so 2–10 s at the default 6 s).
    pub cert_issue: Duration,
}

impl LatencyModel {
    /// The defaults of the spec's transition table.
    pub fn spec_defaults() -> Self {
        let ms = Duration::from_millis;
        Self {
            create_to_starting: ms(500),
            starting_to_started: ms(1000),
            image_pull: ms(8000),
            prepare: ms(2000),
            start: ms(800),
            resume: ms(300),
            stop: ms(1000),
            reap_lag: ms(500),
            restart: ms(1500),
            suspend: ms(1000),
            update: ms(2000),
            destroy: ms(2000),
            volume_release: ms(5000),
            app_delete: ms(1000),
            cert_issue: ms(6000),
        }
    }

    /// Every latency multiplied by `factor` (negative or NaN counts as 0).
    pub fn scaled(&self, factor: f64) -> Self {
        let f = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            0.0
        };
        let s = |d: Duration| clock::secs_f64(d.as_secs_f64() * f);
        Self {
            create_to_starting: s(self.create_to_starting),
            starting_to_started: s(self.starting_to_started),
            image_pull: s(self.image_pull),
            prepare: s(self.prepare),
            start: s(self.start),
            resume: s(self.resume),
            stop: s(self.stop),
            reap_lag: s(self.reap_lag),
            restart: s(self.restart),
            suspend: s(self.suspend),
            update: s(self.update),
            destroy: s(self.destroy),
            volume_release: s(self.volume_release),
            app_delete: s(self.app_delete),
            cert_issue: s(self.cert_issue),
        }
    }
}

/// Everything that shapes the simulator's behaviour; build with [`SimConfig::new`] and adjust.
#[derive(Clone)]
pub struct SimConfig {
    /// The token of the main org.
    pub token: String,
    /// The main org's slug.
    pub org: String,
    /// More tokens and the orgs they belong to, for cross-org (403) tests.
    pub other_tokens: HashMap<String, String>,
    /// Org that owns names registered through `POST /_sim/foreign-apps`.
    pub foreign_org: String,
    /// Transition latencies.
    pub latency: LatencyModel,
    /// Region used when a create names none.
    pub default_region: String,
    /// Hosts (volume zones) per region.
    pub hosts_per_region: usize,
    /// Add `latency.image_pull` the first time an image boots on a host.
    pub cold_host_pull: bool,
    /// Starting a `started`/`starting` machine is a 200 no-op (else 412).
    pub start_running_is_noop: bool,
    /// Destroying a running machine without force answers the old 409 text instead of 412.
    pub destroy_guard_conflict: bool,
    /// Status for deleting an app with running machines without force; `None` allows it.
    pub app_delete_guard: Option<StatusCode>,
    /// Owner recorded on leases.
    pub lease_owner: String,
    /// Health checks turn `passing` after their grace period (false: stay `critical`).
    pub checks_pass: bool,
    /// What `exec` runs.
    pub exec: Arc<dyn ExecHandler>,
    /// Per-request hooks (rate limiting, faults), run in order after auth.
    pub hooks: Vec<Arc<dyn RequestHook>>,
    /// Fly's rate limits at start-up (changeable at runtime through `/_sim/rate-limits`).
    pub rate_limits: ratelimit::RateLimitSettings,
    /// Status of an `insufficient_capacity` answer in a full region (412 or 503; unverified).
    pub capacity_status: StatusCode,
    /// Zone seeded into the simulated DNS (served through the Cloudflare-compatible API).
    pub dns_zone: String,
    /// Token the Cloudflare-compatible API accepts; `None` means the Fly token.
    pub dns_token: Option<String>,
    /// Status for a create/update whose `min_secrets_version` the app has not reached (`412
    /// min_secrets_version N is not yet available on this app`, as a public fixture of Fly's
    /// answer shows); `None` ignores the field.
    pub min_secrets_version_status: Option<StatusCode>,
    /// Lease answers come in fly-go's `{"status","data"}` envelope (true, as Fly answers) or as
    /// the bare `Lease` the OpenAPI document declares (false).
    pub lease_envelope: bool,
    /// Exec answers are sent as `application/octet-stream` (the document allows it besides
    /// JSON, with the same body).
    pub exec_octet_stream: bool,
    /// Whether machines are records or real processes.
    pub machines: MachineMode,
}

impl SimConfig {
    /// A configuration with the spec's defaults for one token and org.
    pub fn new(token: impl Into<String>, org: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            org: org.into(),
            other_tokens: HashMap::new(),
            foreign_org: "foreign-org".into(),
            latency: LatencyModel::spec_defaults(),
            default_region: "iad".into(),
            hosts_per_region: 4,
            cold_host_pull: false,
            start_running_is_noop: true,
            destroy_guard_conflict: false,
            app_delete_guard: Some(StatusCode::PRECONDITION_FAILED),
            lease_owner: "sim@openclaws.test".into(),
            checks_pass: true,
            exec: Arc::new(ExitZero),
            hooks: Vec::new(),
            rate_limits: ratelimit::RateLimitSettings::default(),
            min_secrets_version_status: Some(StatusCode::PRECONDITION_FAILED),
            lease_envelope: true,
            exec_octet_stream: false,
            capacity_status: StatusCode::PRECONDITION_FAILED,
            dns_zone: "openclaws.biz".into(),
            dns_token: None,
            machines: MachineMode::Inert,
        }
    }

    /// The org a presented token belongs to.
    pub fn org_for_token(&self, token: &str) -> Option<&str> {
        use subtle::ConstantTimeEq;
        if bool::from(token.as_bytes().ct_eq(self.token.as_bytes())) {
            return Some(&self.org);
        }
        self.other_tokens.get(token).map(String::as_str)
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("org", &self.org)
            .field("latency", &self.latency)
            .field("default_region", &self.default_region)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) clock: clock::SimClock,
    world: Mutex<state::World>,
    changes: watch::Sender<u64>,
    pub(crate) stats: stats::CallStats,
    pub(crate) limiter: ratelimit::RateLimiter,
    pub(crate) faults: faults::FaultTable,
    processes: Option<Arc<process::ProcessHost>>,
}

/// A running simulator's shared state; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

/// What a state operation sees: the simulated now and the configuration.
pub struct Ctx<'a> {
    /// Simulated time of this request.
    pub now: chrono::DateTime<chrono::Utc>,
    /// The simulator configuration.
    pub config: &'a SimConfig,
}

impl Simulator {
    /// A simulator with an empty world.
    ///
    /// # Panics
    /// In process mode, when the installed gateway cannot be found (use [`Simulator::try_new`]).
    pub fn new(config: SimConfig) -> Self {
        Self::try_new(config).unwrap_or_else(|err| panic!("process mode: {err}"))
    }

    /// A simulator with an empty world; fails when process mode cannot find the gateway.
    pub fn try_new(config: SimConfig) -> Result<Self, process::ProcessError> {
        let processes = match &config.machines {
            MachineMode::Inert => None,
            MachineMode::Process(settings) => {
                Some(Arc::new(process::ProcessHost::new(settings.clone())?))
            }
        };
        let (changes, _) = watch::channel(0);
        let clock = clock::SimClock::new();
        let mut world = state::World::default();
        world.seed_zone(&config.dns_zone, clock.now());
        Ok(Self {
            inner: Arc::new(Inner {
                clock,
                world: Mutex::new(world),
                changes,
                stats: stats::CallStats::default(),
                limiter: ratelimit::RateLimiter::new(config.rate_limits.clone()),
                faults: faults::FaultTable::default(),
                config,
                processes,
            }),
        })
    }

    /// The process host in process mode.
    pub fn process_host(&self) -> Option<&Arc<process::ProcessHost>> {
        self.inner.processes.as_ref()
    }

    /// The simulator's clock.
    pub fn clock(&self) -> &clock::SimClock {
        &self.inner.clock
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, state::World> {
        self.inner.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a read against the world (lazy transitions may still be applied).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&mut state::World, &Ctx) -> SimResult<T>,
    ) -> SimResult<T> {
        let ctx = Ctx {
            now: self.inner.clock.now(),
            config: &self.inner.config,
        };
        f(&mut self.lock(), &ctx)
    }

    /// Runs a mutation against the world and wakes every waiter.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut state::World, &Ctx) -> SimResult<T>,
    ) -> SimResult<T> {
        let result = self.read(f);
        self.notify();
        result
    }

    /// Wakes waiters so they re-evaluate (after a mutation or a clock jump).
    pub(crate) fn notify(&self) {
        self.inner.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that fires on the next mutation.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// The full HTTP surface: Fly's `/v1` routes (authenticated) and the `/_sim` control plane.
    pub fn router(&self) -> Router {
        let fly = Router::new()
            .merge(app_routes())
            .merge(volume_routes())
            .merge(machine_routes())
            .merge(machine_detail_routes())
            .merge(certificate_routes());
        self.behind_fly_checks(fly)
            .merge(control::router(self.clone()))
            .merge(machine_faults::router(self.clone()))
            .merge(dns::cloudflare_router(self.clone()))
            .merge(dns::control_router(self.clone()))
            .merge(orphans::router(self.clone()))
            .merge(process::router(self.clone()))
            .merge(images::router(self.clone()))
            .fallback(not_found)
            .layer(axum::middleware::from_fn(stats::request_id))
    }

    /// Fly's routes behind what every Fly request passes, outermost first: call counting
    /// (`stats`), the token check (`auth`), Fly's rate limits, injected faults and the
    /// embedder's hooks.
    fn behind_fly_checks(&self, routes: Router<Simulator>) -> Router {
        use axum::middleware::from_fn_with_state;
        routes
            .route_layer(from_fn_with_state(self.clone(), hooks::run_hooks))
            .route_layer(from_fn_with_state(self.clone(), faults::inject))
            .route_layer(from_fn_with_state(self.clone(), ratelimit::limit))
            .route_layer(from_fn_with_state(self.clone(), auth::require_token))
            .route_layer(from_fn_with_state(self.clone(), stats::count_calls))
            .with_state(self.clone())
    }
}

/// Apps and what is stored per app: secrets and IP assignments.
fn app_routes() -> Router<Simulator> {
    Router::new()
        .route("/v1/apps", get(apps::list).post(apps::create))
        .route("/v1/apps/{app}", get(apps::get).delete(apps::delete))
        .route(
            "/v1/apps/{app}/secrets",
            get(secrets::list).post(secrets::set_many),
        )
        .route(
            "/v1/apps/{app}/secrets/{name}",
            get(secrets::get)
                .post(secrets::set_one)
                .delete(secrets::delete),
        )
        .route(
            "/v1/apps/{app}/ip_assignments",
            get(ips::list).post(ips::assign),
        )
        .route(
            "/v1/apps/{app}/ip_assignments/{ip}",
            axum::routing::delete(ips::release),
        )
}

/// Volumes.
fn volume_routes() -> Router<Simulator> {
    Router::new()
        .route(
            "/v1/apps/{app}/volumes",
            get(volumes::list).post(volumes::create),
        )
        .route(
            "/v1/apps/{app}/volumes/{vol}",
            get(volumes::get)
                .put(volumes::update)
                .delete(volumes::delete),
        )
        .route("/v1/apps/{app}/volumes/{vol}/extend", put(volumes::extend))
        .route(
            "/v1/apps/{app}/volumes/{vol}/snapshots",
            get(volumes::list_snapshots),
        )
}

/// Machines: create, read, update, delete, the lifecycle operations, `wait`, and the org-wide
/// listing.
fn machine_routes() -> Router<Simulator> {
    Router::new()
        .route(
            "/v1/apps/{app}/machines",
            get(machines::list).post(machines::create),
        )
        .route(
            "/v1/apps/{app}/machines/{id}",
            get(machines::get)
                .post(machines::update)
                .delete(machines::delete),
        )
        .route("/v1/apps/{app}/machines/{id}/start", post(machines::start))
        .route("/v1/apps/{app}/machines/{id}/stop", post(machines::stop))
        .route(
            "/v1/apps/{app}/machines/{id}/restart",
            post(machines::restart),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/suspend",
            post(machines::suspend),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/signal",
            post(machines::signal),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/cordon",
            post(machines::cordon),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/uncordon",
            post(machines::uncordon),
        )
        .route("/v1/apps/{app}/machines/{id}/wait", get(wait::wait))
        .route("/v1/orgs/{org}/machines", get(org::machines))
}

/// What hangs off one machine: its lease, metadata, exec, events and versions.
fn machine_detail_routes() -> Router<Simulator> {
    Router::new()
        .route(
            "/v1/apps/{app}/machines/{id}/lease",
            get(leases::get)
                .post(leases::acquire)
                .delete(leases::release),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/metadata",
            get(machines::metadata_get)
                .put(machines::metadata_put)
                .patch(machines::metadata_patch),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/metadata/{key}",
            get(machines::metadata_key_get)
                .post(machines::metadata_key_set)
                .delete(machines::metadata_key_delete),
        )
        .route("/v1/apps/{app}/machines/{id}/exec", post(exec::exec))
        .route("/v1/apps/{app}/machines/{id}/events", get(machines::events))
        .route(
            "/v1/apps/{app}/machines/{id}/versions",
            get(machines::versions),
        )
}

/// Certificates for custom hostnames. A bare `POST …/certificates`, which Fly's document does
/// not have, answers 404 like an unknown route rather than 405.
fn certificate_routes() -> Router<Simulator> {
    Router::new()
        .route(
            "/v1/apps/{app}/certificates",
            get(certificates::list).post(not_found),
        )
        .route(
            "/v1/apps/{app}/certificates/acme",
            post(certificates::create_acme),
        )
        .route(
            "/v1/apps/{app}/certificates/custom",
            post(certificates::create_custom),
        )
        .route(
            "/v1/apps/{app}/certificates/{hostname}",
            get(certificates::get).delete(certificates::delete),
        )
        .route(
            "/v1/apps/{app}/certificates/{hostname}/check",
            post(certificates::check),
        )
        .route(
            "/v1/apps/{app}/certificates/{hostname}/acme",
            axum::routing::delete(certificates::delete_acme),
        )
        .route(
            "/v1/apps/{app}/certificates/{hostname}/custom",
            axum::routing::delete(certificates::delete_custom),
        )
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "404 page not found\n")
}

/// Serves until `shutdown` is cancelled. In process mode it also runs the machines'
/// processes, and stops them all before returning.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let driver = sim.process_host().map(|host| {
        tokio::spawn(process::drive(
            sim.clone(),
            host.clone(),
            shutdown.child_token(),
        ))
    });
    let stop = shutdown.clone();
    let served = axum::serve(listener, sim.router())
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Some(driver) = driver {
        shutdown.cancel();
        let _ = driver.await;
    }
    served
}

/// Entry point of the `sim` CLI subcommand: bind args.listen, log the address, serve until SIGINT/SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let sim = Simulator::try_new(args.to_config())?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, org = %args.org, "fly simulator listening");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
    });
    if let Some(addr) = args.proxy_listen {
        let proxy_listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %proxy_listener.local_addr()?, "fly proxy listening");
        let settings = proxy::ProxySettings {
            loopback_client_ip: args.proxy_client_ip,
            ..proxy::ProxySettings::default()
        };
        tokio::spawn(proxy::serve_proxy(
            proxy_listener,
            sim.clone(),
            settings,
            shutdown.clone(),
        ));
    }
    if let Some(addr) = args.private_proxy_listen {
        let proxy_listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %proxy_listener.local_addr()?, "fly private network proxy listening");
        tokio::spawn(proxy::serve_proxy(
            proxy_listener,
            sim.clone(),
            proxy::ProxySettings::private(),
            shutdown.clone(),
        ));
    }
    serve(listener, sim, shutdown).await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn args_build_a_scaled_config() {
        let cli = Cli::try_parse_from([
            "sim",
            "--token",
            "t0k",
            "--latency-scale",
            "0.5",
            "--listen",
            "127.0.0.1:0",
        ])
        .expect("parse");
        let config = cli.sim.to_config();
        assert_eq!(config.org_for_token("t0k"), Some("personal"));
        assert_eq!(config.org_for_token("nope"), None);
        assert_eq!(config.latency.start, Duration::from_millis(400));
        assert_eq!(config.latency.volume_release, Duration::from_millis(2500));
        assert!(!config.cold_host_pull);
        assert!(config.rate_limits.enabled, "rate limits default on");
        assert_eq!(
            config.rate_limits.per_token, None,
            "no per-token cap by default"
        );
        assert_eq!(config.dns_zone, "openclaws.biz");
    }

    #[test]
    fn args_switch_rate_limits_and_dns() {
        let cli = Cli::try_parse_from([
            "sim",
            "--token",
            "t0k",
            "--rate-limits",
            "false",
            "--retry-after",
            "absent",
            "--dns-zone",
            "example.org",
            "--dns-token",
            "cf",
            "--token-rate-limit",
            "20/40",
        ])
        .expect("parse");
        let config = cli.sim.to_config();
        assert!(!config.rate_limits.enabled);
        assert_eq!(
            config.rate_limits.retry_after,
            ratelimit::RetryAfter::ABSENT
        );
        assert_eq!(config.dns_zone, "example.org");
        assert_eq!(config.dns_token.as_deref(), Some("cf"));
        assert_eq!(
            config.rate_limits.per_token,
            Some(ratelimit::BucketSpec {
                per_second: 20.0,
                burst: 40.0
            })
        );
        assert!(parse_token_cap("0").is_err());
    }

    #[test]
    fn zero_scale_makes_transitions_instant() {
        let lat = LatencyModel::spec_defaults().scaled(0.0);
        assert_eq!(lat.update, Duration::ZERO);
        assert_eq!(lat.volume_release, Duration::ZERO);
    }
}
