//! Metrics registry (Prometheus text at `/metrics`), tracing set-up, and error reporting to
//! Sentry ([`reporting`]).
//!
//! Every name starts with `openclaws_` and carries its unit; counters end in `_total`. Label
//! values are bounded: endpoints, results, reasons, phases, condition types and drift kinds are
//! fixed names from the code, never instance names or uids, and no metric carries a secret.

mod exposition;
mod feeds;
mod pairing;
pub mod process;
mod release;
pub mod stuck;

pub use exposition::openmetrics_to_text;

pub mod reporting;

pub use reporting::{
    init_sentry, report_reconcile_outcome, sentry_bind_reconcile, sentry_report_reconcile_error,
    SentrySettings,
};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use openclaws_model::conditions::ConditionType;
use openclaws_model::outcomes::{DriftKind, PAIRING_OUTCOMES};
use openclaws_model::Phase;

/// The Git commit the binary was built from, when the build said (`OPENCLAWS_GIT_SHA`).
pub const GIT_SHA: &str = match option_env!("OPENCLAWS_GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

/// Condition types reported in `openclaws_instance_conditions` (every one this controller
/// knows); anything else stored is ignored.
const CONDITION_TYPES: &[ConditionType] = ConditionType::ALL;

/// Every `(channel, state)` pair of `openclaws_instance_channels`.
fn channel_labels() -> impl Iterator<Item = (&'static str, &'static str)> {
    openclaws_model::ChannelKind::ALL.into_iter().flat_map(|c| {
        openclaws_model::ChannelState::ALL
            .into_iter()
            .map(move |s| (c.as_str(), s.as_str()))
    })
}

/// Condition statuses reported in `openclaws_instance_conditions`.
const CONDITION_STATUSES: [&str; 3] = ["True", "False", "Unknown"];

/// Least time between two fleet counts from PostgreSQL, however often `/metrics` is scraped.
const FLEET_REFRESH: Duration = Duration::from_secs(5);
/// The version label of instances whose OpenClaw version is not known.
const UNKNOWN_VERSION: &str = "unknown";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlyRequestLabels {
    endpoint: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// Only the version: the gauge says what runs across the fleet, never whose instances.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    r#type: &'static str,
    status: &'static str,
}

/// A channel and its state, from fixed lists: never whose channel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PairingLabels {
    policy: &'static str,
    result: &'static str,
}

/// Something holding Fly machine leases, asked at scrape time how many it holds now (a lease
/// that expired without being released no longer counts).
pub trait LeaseHolder: Send + Sync + std::fmt::Debug {
    /// Leases held and not yet expired.
    fn held_leases(&self) -> usize;
}

/// Process-wide metrics, by what they describe.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    fly: FlyMetrics,
    work: WorkMetrics,
    fleet: FleetMetrics,
    lifecycle: LifecycleMetrics,
    webhooks: WebhookMetrics,
    release: release::ReleaseMetrics,
    pairing: pairing::PairingMetrics,
    stuck: stuck::StuckMetrics,
}

/// Webhook deliveries of this process, and the outbox (counted in PostgreSQL).
#[derive(Debug)]
struct WebhookMetrics {
    attempts: Family<ResultLabels, Counter>,
    latency: Histogram,
    pending: Gauge,
    failed: Gauge,
}

/// Results of a webhook attempt, as counted.
const WEBHOOK_RESULTS: [&str; 4] = ["delivered", "retried", "failed", "skipped"];

/// Calls to Fly.
#[derive(Debug)]
struct FlyMetrics {
    requests: Family<FlyRequestLabels, Counter>,
    request_duration: Family<EndpointLabels, Histogram>,
    throttle_wait: Family<EndpointLabels, Histogram>,
    rate_limited: Family<EndpointLabels, Counter>,
    leases_held: Gauge,
    lease_holders: Mutex<Vec<Weak<dyn LeaseHolder>>>,
    circuit_open: Gauge,
}

/// Reconciles, the queue and the fleet watch of this process.
#[derive(Debug)]
struct WorkMetrics {
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Histogram,
    active_workers: Gauge,
    queue_depth: Gauge,
    queue_oldest_due_age: Gauge<f64, AtomicU64>,
    watch_passes: Family<ResultLabels, Counter>,
    watch_machines_listed: Counter,
    watch_wakeups: Counter,
    events_pruned: Counter,
}

/// The whole fleet, counted in PostgreSQL at scrape time.
#[derive(Debug)]
struct FleetMetrics {
    instances: Family<PhaseLabels, Gauge>,
    conditions: Family<ConditionLabels, Gauge>,
    versions: Family<VersionLabels, Gauge>,
    channels: Family<ChannelLabels, Gauge>,
    /// Versions ever reported, so one no instance runs any more reads 0 rather than its last
    /// count.
    seen_versions: Mutex<BTreeSet<String>>,
    refreshed: Mutex<Option<Instant>>,
}

/// What happens to instances over their life: first Ready, deletion, drift, pairing.
#[derive(Debug)]
struct LifecycleMetrics {
    time_to_first_ready: Histogram,
    deletion_duration: Histogram,
    drift_detected: Family<KindLabels, Counter>,
    drift_repaired: Family<KindLabels, Counter>,
    pairing_approvals: Family<PairingLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets for durations of a few seconds to an hour (provisioning, teardown).
fn lifecycle_buckets() -> impl Iterator<Item = f64> {
    [
        1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0,
        1200.0, 1800.0, 3600.0,
    ]
    .into_iter()
}

/// Registers `metric` under `name` and hands it back.
pub(crate) fn register<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
    metric
}

impl FlyMetrics {
    fn new(r: &mut Registry) -> Self {
        Self {
            requests: register(
                r,
                "fly_requests",
                "Fly API requests by endpoint and HTTP status (0 = no response)",
                Family::default(),
            ),
            request_duration: register(
                r,
                "fly_request_duration_seconds",
                "Fly API request latency",
                Family::new_with_constructor(|| {
                    Histogram::new(exponential_buckets(0.005, 2.0, 14))
                }),
            ),
            throttle_wait: register(
                r,
                "fly_throttle_wait_seconds",
                "Time Fly calls waited for a client-side rate-limit token (a refusal counts its retry-after)",
                Family::new_with_constructor(|| {
                    Histogram::new([0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0])
                }),
            ),
            rate_limited: register(
                r,
                "fly_rate_limited",
                "Fly API answers 429 Too Many Requests, by endpoint",
                Family::default(),
            ),
            leases_held: register(
                r,
                "fly_leases_held",
                "Fly machine leases this process holds now",
                Gauge::default(),
            ),
            lease_holders: Mutex::new(Vec::new()),
            circuit_open: register(
                r,
                "fly_circuit_open",
                "1 while Fly kept failing and calls are held until a probe sees it answer again",
                Gauge::default(),
            ),
        }
    }
}

impl WorkMetrics {
    fn new(r: &mut Registry) -> Self {
        let watch_passes: Family<ResultLabels, Counter> = register(
            r,
            "fleet_watch_passes",
            "Passes of the fleet watch over Fly's org-wide machine listing, by result",
            Family::default(),
        );
        for result in ["ok", "error"] {
            drop(watch_passes.get_or_create(&ResultLabels { result }));
        }
        Self {
            reconciles: register(
                r,
                "reconciles",
                "Reconciles by result (success, error, gone, abandoned) and reason (the outcome, or the error's class)",
                Family::default(),
            ),
            reconcile_duration: register(
                r,
                "reconcile_duration_seconds",
                "Time one reconcile took",
                Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            ),
            active_workers: register(
                r,
                "active_workers",
                "Reconciles running now in this process",
                Gauge::default(),
            ),
            queue_depth: register(
                r,
                "queue_depth",
                "Instances due and not leased",
                Gauge::default(),
            ),
            queue_oldest_due_age: register(
                r,
                "queue_oldest_due_age_seconds",
                "How long the oldest due instance has waited",
                Gauge::default(),
            ),
            watch_passes,
            watch_machines_listed: register(
                r,
                "fleet_watch_machines_listed",
                "Machines returned by the fleet watch's listings",
                Counter::default(),
            ),
            watch_wakeups: register(
                r,
                "fleet_watch_wakeups",
                "Instances made due because their machine changed at Fly",
                Counter::default(),
            ),
            events_pruned: register(
                r,
                "events_pruned",
                "Events deleted by this process because they were older than OPENCLAWS_EVENT_RETENTION",
                Counter::default(),
            ),
        }
    }
}

impl FleetMetrics {
    fn new(r: &mut Registry) -> Self {
        let instances: Family<PhaseLabels, Gauge> = register(
            r,
            "instances",
            "Instances by phase (counted in PostgreSQL at scrape time, every replica reports the whole fleet)",
            Family::default(),
        );
        let conditions: Family<ConditionLabels, Gauge> = register(
            r,
            "instance_conditions",
            "Instances by condition type and status (counted in PostgreSQL at scrape time)",
            Family::default(),
        );
        let versions: Family<VersionLabels, Gauge> = register(
            r,
            "instances_by_openclaw_version",
            "Instances by the OpenClaw version their machine runs, from its image tag (`unknown`: none known; counted in PostgreSQL at scrape time)",
            Family::default(),
        );
        drop(versions.get_or_create(&VersionLabels {
            version: UNKNOWN_VERSION.to_owned(),
        }));
        let channels: Family<ChannelLabels, Gauge> = register(
            r,
            "instance_channels",
            "Instances by messaging channel and its state (counted in PostgreSQL at scrape time)",
            Family::default(),
        );
        for (channel, state) in channel_labels() {
            drop(channels.get_or_create(&ChannelLabels { channel, state }));
        }
        for phase in Phase::ALL {
            drop(instances.get_or_create(&PhaseLabels {
                phase: phase.as_str(),
            }));
        }
        for type_ in CONDITION_TYPES {
            for status in CONDITION_STATUSES {
                let r#type = type_.as_str();
                drop(conditions.get_or_create(&ConditionLabels { r#type, status }));
            }
        }
        Self {
            instances,
            conditions,
            versions,
            channels,
            seen_versions: Mutex::new(BTreeSet::from([UNKNOWN_VERSION.to_owned()])),
            refreshed: Mutex::new(None),
        }
    }
}

impl LifecycleMetrics {
    fn new(r: &mut Registry) -> Self {
        let drift_detected: Family<KindLabels, Counter> = register(
            r,
            "drift_detected",
            "Drift found on converged instances (DriftDetected events), by kind",
            Family::default(),
        );
        let drift_repaired: Family<KindLabels, Counter> = register(
            r,
            "drift_repaired",
            "Drift put right (the instance converged again), by kind",
            Family::default(),
        );
        for kind in DriftKind::ALL {
            let kind = kind.as_str();
            drop(drift_detected.get_or_create(&KindLabels { kind }));
            drop(drift_repaired.get_or_create(&KindLabels { kind }));
        }
        let pairing_approvals: Family<PairingLabels, Counter> = register(
            r,
            "pairing_approvals",
            "Device pairing approvals by policy (auto, manual, controller) and result (approved, failed, expired)",
            Family::default(),
        );
        for (policy, result) in PAIRING_OUTCOMES {
            drop(pairing_approvals.get_or_create(&PairingLabels { policy, result }));
        }
        Self {
            time_to_first_ready: register(
                r,
                "instance_time_to_first_ready_seconds",
                "From an instance's creation to its first Ready",
                Histogram::new(lifecycle_buckets()),
            ),
            deletion_duration: register(
                r,
                "instance_deletion_duration_seconds",
                "From an instance's deletion request to its row being finalized",
                Histogram::new(lifecycle_buckets()),
            ),
            drift_detected,
            drift_repaired,
            pairing_approvals,
        }
    }
}

impl WebhookMetrics {
    fn new(r: &mut Registry) -> Self {
        let attempts: Family<ResultLabels, Counter> = register(
            r,
            "webhook_deliveries",
            "Webhook delivery attempts by result (delivered, retried, failed: given up on, skipped: the endpoint's selector excludes the instance)",
            Family::default(),
        );
        for result in WEBHOOK_RESULTS {
            drop(attempts.get_or_create(&ResultLabels { result }));
        }
        Self {
            attempts,
            latency: register(
                r,
                "webhook_delivery_latency_seconds",
                "From an instance change's commit to the endpoint's 2xx (retries included)",
                Histogram::new(exponential_buckets(0.01, 2.5, 16)),
            ),
            pending: register(
                r,
                "webhook_outbox_pending",
                "Webhook deliveries waiting to be sent (counted in PostgreSQL, whole fleet)",
                Gauge::default(),
            ),
            failed: register(
                r,
                "webhook_outbox_failed",
                "Webhook deliveries given up on after the retry window (counted in PostgreSQL, until pruned)",
                Gauge::default(),
            ),
        }
    }
}

impl Metrics {
    /// Registers every metric; label sets known in advance start at zero, so a dashboard shows
    /// 0 rather than no data and the first event already counts in a rate.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("openclaws");
        let fly = FlyMetrics::new(&mut registry);
        let work = WorkMetrics::new(&mut registry);
        let fleet = FleetMetrics::new(&mut registry);
        let lifecycle = LifecycleMetrics::new(&mut registry);
        let webhooks = WebhookMetrics::new(&mut registry);
        let release = release::ReleaseMetrics::new(&mut registry);
        let pairing = pairing::PairingMetrics::new(&mut registry);
        let stuck = stuck::StuckMetrics::new(&mut registry);
        registry.register(
            "build",
            "Build information",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("git_sha", GIT_SHA),
            ]),
        );
        registry.register_collector(Box::new(process::ProcessCollector));
        Self {
            registry,
            fly,
            work,
            fleet,
            lifecycle,
            webhooks,
            release,
            pairing,
            stuck,
        }
    }

    /// Counts one webhook attempt by result, and a delivery's latency from commit to 2xx.
    pub fn observe_webhook_attempt(&self, result: &'static str, latency: Option<Duration>) {
        self.webhooks
            .attempts
            .get_or_create(&ResultLabels { result })
            .inc();
        if let Some(latency) = latency {
            self.webhooks.latency.observe(latency.as_secs_f64());
        }
    }

    /// Sets the outbox gauges.
    pub fn set_webhook_backlog(&self, pending: i64, failed: i64) {
        self.webhooks.pending.set(pending);
        self.webhooks.failed.set(failed);
    }

    /// Every metric in the Prometheus text format (0.0.4), which `promtool check metrics` and
    /// every Prometheus version read.
    pub fn encode(&self) -> String {
        let held: usize = {
            let mut holders = self
                .fly
                .lease_holders
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            holders.retain(|h| h.strong_count() > 0);
            holders
                .iter()
                .filter_map(Weak::upgrade)
                .map(|h| h.held_leases())
                .sum()
        };
        self.fly.leases_held.set(held as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        openmetrics_to_text(&out)
    }

    /// Records one Fly API call.
    pub fn observe_fly_request(&self, endpoint: &'static str, status: u16, elapsed: Duration) {
        self.fly
            .requests
            .get_or_create(&FlyRequestLabels { endpoint, status })
            .inc();
        if status == 429 {
            self.fly
                .rate_limited
                .get_or_create(&EndpointLabels { endpoint })
                .inc();
        }
        self.fly
            .request_duration
            .get_or_create(&EndpointLabels { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// Records whether the organization's Fly circuit holds calls now.
    pub fn observe_circuit(&self, open: bool) {
        self.fly.circuit_open.set(i64::from(open));
    }

    /// Records how long a Fly call waited for a client-side rate-limit token.
    pub fn observe_throttle(&self, endpoint: &'static str, waited: Duration) {
        self.fly
            .throttle_wait
            .get_or_create(&EndpointLabels { endpoint })
            .observe(waited.as_secs_f64());
    }

    /// Makes `holder`'s leases count in `openclaws_fly_leases_held` for as long as it lives.
    pub fn track_leases(&self, holder: Weak<dyn LeaseHolder>) {
        self.fly
            .lease_holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(holder);
    }

    /// Records one finished reconcile.
    pub fn observe_reconcile(&self, result: &'static str, reason: &'static str, elapsed: Duration) {
        self.work
            .reconciles
            .get_or_create(&ReconcileLabels { result, reason })
            .inc();
        self.work.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// Tracks reconciles in flight.
    pub fn worker_started(&self) {
        self.work.active_workers.inc();
    }

    /// Tracks reconciles in flight.
    pub fn worker_finished(&self) {
        self.work.active_workers.dec();
    }

    /// Updates the queue gauges.
    pub fn set_queue(&self, depth: i64, oldest_due_age_seconds: f64) {
        self.work.queue_depth.set(depth);
        self.work.queue_oldest_due_age.set(oldest_due_age_seconds);
    }

    /// Whether the fleet counts are old enough to be counted again (and claims the refresh, so
    /// concurrent scrapes do not all query PostgreSQL).
    pub fn fleet_refresh_due(&self) -> bool {
        let mut last = self
            .fleet
            .refreshed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < FLEET_REFRESH) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Sets the instance gauges from counts of PostgreSQL; a phase, condition type or status
    /// not among the known ones is ignored, and known ones absent from `counts` are zero.
    pub fn set_fleet(&self, counts: &openclaws_store::stats::FleetCounts) {
        for phase in Phase::ALL {
            let n = counts
                .phases
                .iter()
                .filter(|(p, _)| p == phase.as_str())
                .map(|(_, n)| n)
                .sum();
            self.fleet
                .instances
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str(),
                })
                .set(n);
        }
        for type_ in CONDITION_TYPES {
            let r#type = type_.as_str();
            for status in CONDITION_STATUSES {
                let n = counts
                    .conditions
                    .iter()
                    .filter(|(t, s, _)| t == r#type && s == status)
                    .map(|(_, _, n)| n)
                    .sum();
                self.fleet
                    .conditions
                    .get_or_create(&ConditionLabels { r#type, status })
                    .set(n);
            }
        }
        self.set_versions(&counts.versions);
        for (channel, state) in channel_labels() {
            let n = counts
                .channels
                .iter()
                .filter(|(c, s, _)| c == channel && s == state)
                .map(|(_, _, n)| n)
                .sum();
            self.fleet
                .channels
                .get_or_create(&ChannelLabels { channel, state })
                .set(n);
        }
    }

    /// Sets the version gauge: each counted version (`unknown` for none), and 0 for versions
    /// seen before that no instance runs now.
    fn set_versions(&self, versions: &[(Option<String>, i64)]) {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for (version, n) in versions {
            let label = version.as_deref().unwrap_or(UNKNOWN_VERSION).to_owned();
            *counts.entry(label).or_default() += n;
        }
        let mut seen = self
            .fleet
            .seen_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        seen.extend(counts.keys().cloned());
        for version in seen.iter() {
            let n = counts.get(version).copied().unwrap_or(0);
            self.fleet
                .versions
                .get_or_create(&VersionLabels {
                    version: version.clone(),
                })
                .set(n);
        }
    }

    /// Records the time from an instance's creation to its first `Ready`.
    pub fn observe_time_to_first_ready(&self, seconds: f64) {
        self.lifecycle.time_to_first_ready.observe(seconds);
    }

    /// Records the time from an instance's deletion request to its row being finalized.
    pub fn observe_deletion(&self, seconds: f64) {
        self.lifecycle.deletion_duration.observe(seconds);
    }

    /// Counts drift of one kind found on a converged instance.
    pub fn observe_drift_detected(&self, kind: &'static str) {
        self.lifecycle
            .drift_detected
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// Counts drift of one kind put right.
    pub fn observe_drift_repaired(&self, kind: &'static str) {
        self.lifecycle
            .drift_repaired
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    /// Counts one pairing approval (or an approval given up on).
    pub fn observe_pairing(&self, policy: &'static str, result: &'static str) {
        self.lifecycle
            .pairing_approvals
            .get_or_create(&PairingLabels { policy, result })
            .inc();
    }
}

impl Metrics {
    /// Counts one fleet watch pass.
    pub fn observe_watch_pass(&self, ok: bool) {
        self.work
            .watch_passes
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Counts machines a fleet watch listing returned.
    pub fn observe_watch_listed(&self, machines: u64) {
        self.work.watch_machines_listed.inc_by(machines);
    }

    /// Counts instances the fleet watch woke.
    pub fn observe_watch_wakeups(&self, woken: u64) {
        self.work.watch_wakeups.inc_by(woken);
    }

    /// Counts events deleted by the retention pruner.
    pub fn observe_events_pruned(&self, deleted: u64) {
        self.work.events_pruned.inc_by(deleted);
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable (development).
    Pretty,
}

/// Installs the global tracing subscriber (`RUST_LOG` filters; default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    // A subscriber installed earlier (tests) stays; that is fine.
    if format == LogFormat::Json && result.is_ok() {
        // A panic is one JSON line like everything else (the default hook prints plain text),
        // inside the span it hit (a reconcile's carries the instance), its text scrubbed.
        // Sentry's hook, when installed later, reports it first and then calls this one.
        std::panic::set_hook(Box::new(|info| {
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let location = info.location().map(ToString::to_string).unwrap_or_default();
            tracing::error!(
                panic = %reporting::scrub_text(&payload),
                %location,
                "panicked"
            );
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaws_store::stats::FleetCounts;
    use std::sync::Arc;

    #[derive(Debug)]
    struct Holding(usize);

    impl LeaseHolder for Holding {
        fn held_leases(&self) -> usize {
            self.0
        }
    }

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn names_are_prefixed_and_known_label_sets_start_at_zero() {
        let m = Metrics::new();
        let text = m.encode();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("openclaws_"), "{line}");
        }
        assert_eq!(
            sample(
                &text,
                "openclaws_drift_detected_total{kind=\"machine_config\"}"
            ),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                "openclaws_pairing_approvals_total{policy=\"manual\",result=\"expired\"}"
            ),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                "openclaws_instance_conditions{type=\"Ready\",status=\"Unknown\"}"
            ),
            Some("0")
        );
        assert!(text.contains("# TYPE openclaws_reconciles_total counter"));
        assert!(text.contains("# TYPE openclaws_build_info gauge"));
        assert!(text.contains(&format!("git_sha=\"{GIT_SHA}\"")));
        if cfg!(target_os = "linux") {
            assert!(text.contains("# TYPE openclaws_process_cpu_seconds_total counter"));
            assert!(text.contains("openclaws_process_resident_memory_bytes "));
        }
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn fleet_counts_keep_to_known_labels() {
        let m = Metrics::new();
        m.set_fleet(&FleetCounts {
            phases: vec![("Ready".into(), 3), ("Bogus".into(), 9)],
            conditions: vec![
                ("Ready".into(), "True".into(), 3),
                ("SomeoneElses".into(), "True".into(), 1),
            ],
            versions: Vec::new(),
            channels: vec![
                ("telegram".into(), "Connected".into(), 2),
                ("telegram".into(), "Weird".into(), 5),
            ],
        });
        let text = m.encode();
        assert_eq!(
            sample(&text, "openclaws_instances{phase=\"Ready\"}"),
            Some("3")
        );
        assert_eq!(
            sample(&text, "openclaws_instances{phase=\"Failed\"}"),
            Some("0")
        );
        assert!(!text.contains("Bogus") && !text.contains("SomeoneElses"));
        assert!(!text.contains("Weird"));
        assert_eq!(
            sample(
                &text,
                "openclaws_instance_channels{channel=\"telegram\",state=\"Connected\"}"
            ),
            Some("2")
        );
        assert_eq!(
            sample(
                &text,
                "openclaws_instance_channels{channel=\"slack\",state=\"Failing\"}"
            ),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                "openclaws_instance_conditions{type=\"Ready\",status=\"True\"}"
            ),
            Some("3")
        );
        m.set_fleet(&FleetCounts::default());
        let text = m.encode();
        assert_eq!(
            sample(&text, "openclaws_instances{phase=\"Ready\"}"),
            Some("0")
        );
    }

    #[test]
    fn rate_limits_and_leases_are_counted() {
        let m = Metrics::new();
        m.observe_fly_request("apps.create", 429, Duration::from_millis(5));
        m.observe_fly_request("apps.create", 201, Duration::from_millis(5));
        let a: Arc<dyn LeaseHolder> = Arc::new(Holding(2));
        let b: Arc<dyn LeaseHolder> = Arc::new(Holding(1));
        m.track_leases(Arc::downgrade(&a));
        m.track_leases(Arc::downgrade(&b));
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                "openclaws_fly_rate_limited_total{endpoint=\"apps.create\"}"
            ),
            Some("1")
        );
        assert_eq!(sample(&text, "openclaws_fly_leases_held"), Some("3"));
        drop(b);
        assert_eq!(sample(&m.encode(), "openclaws_fly_leases_held"), Some("2"));
    }

    #[test]
    fn instances_by_version_carry_only_the_version_and_fall_to_zero() {
        let m = Metrics::new();
        let series =
            |v: &str| format!("openclaws_instances_by_openclaw_version{{version=\"{v}\"}}");
        assert_eq!(sample(&m.encode(), &series("unknown")), Some("0"));
        m.set_fleet(&FleetCounts {
            versions: vec![
                (Some("2026.9.6".into()), 812),
                (Some("2026.9.5".into()), 3),
                (None, 4),
            ],
            ..FleetCounts::default()
        });
        let text = m.encode();
        assert_eq!(sample(&text, &series("2026.9.6")), Some("812"));
        assert_eq!(sample(&text, &series("2026.9.5")), Some("3"));
        assert_eq!(sample(&text, &series("unknown")), Some("4"));
        m.set_fleet(&FleetCounts {
            versions: vec![(Some("2026.9.6".into()), 815)],
            ..FleetCounts::default()
        });
        let text = m.encode();
        assert_eq!(sample(&text, &series("2026.9.6")), Some("815"));
        assert_eq!(sample(&text, &series("2026.9.5")), Some("0"));
        assert_eq!(sample(&text, &series("unknown")), Some("0"));
    }

    #[test]
    fn fleet_refresh_is_claimed_once_per_interval() {
        let m = Metrics::new();
        assert!(m.fleet_refresh_due());
        assert!(!m.fleet_refresh_due());
    }
}
