//! Metrics registry (Prometheus text at `/metrics`) and tracing set-up.
//!
//! Label values are bounded: endpoints and results are fixed names, never instance names.

mod exposition;
pub mod process;

pub use exposition::openmetrics_to_text;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, Weak};
use std::time::Duration;

/// The Git commit the binary was built from, when the build said (`OPENCLAWS_GIT_SHA`).
pub const GIT_SHA: &str = match option_env!("OPENCLAWS_GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

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

/// Something holding Fly machine leases, asked at scrape time how many it holds now (a lease
/// that expired without being released no longer counts).
pub trait LeaseHolder: Send + Sync + std::fmt::Debug {
    /// Leases held and not yet expired.
    fn held_leases(&self) -> usize;
}

/// Process-wide metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    fly_requests: Family<FlyRequestLabels, Counter>,
    fly_request_duration: Family<EndpointLabels, Histogram>,
    fly_throttle_wait: Family<EndpointLabels, Histogram>,
    fly_rate_limited: Family<EndpointLabels, Counter>,
    fly_leases_held: Gauge,
    lease_holders: Mutex<Vec<Weak<dyn LeaseHolder>>>,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Histogram,
    active_workers: Gauge,
    queue_depth: Gauge,
    queue_oldest_due_age: Gauge<f64, AtomicU64>,
    watch_passes: Family<ResultLabels, Counter>,
    watch_machines_listed: Counter,
    watch_wakeups: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("openclaws");
        let fly_requests = Family::<FlyRequestLabels, Counter>::default();
        registry.register(
            "fly_requests",
            "Fly API requests by endpoint and HTTP status (0 = no response)",
            fly_requests.clone(),
        );
        let fly_request_duration =
            Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            });
        registry.register(
            "fly_request_duration_seconds",
            "Fly API request latency",
            fly_request_duration.clone(),
        );
        let fly_throttle_wait = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0])
        });
        registry.register(
            "fly_throttle_wait_seconds",
            "Time Fly calls waited for a client-side rate-limit token (a refusal counts its retry-after)",
            fly_throttle_wait.clone(),
        );
        let fly_rate_limited = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "fly_rate_limited",
            "Fly API answers 429 Too Many Requests, by endpoint",
            fly_rate_limited.clone(),
        );
        let fly_leases_held = Gauge::default();
        registry.register(
            "fly_leases_held",
            "Fly machine leases this process holds now",
            fly_leases_held.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by result and reason",
            reconciles.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            reconcile_duration.clone(),
        );
        let active_workers = Gauge::default();
        registry.register(
            "active_workers",
            "Reconciles running now in this process",
            active_workers.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Instances due and not leased",
            queue_depth.clone(),
        );
        let queue_oldest_due_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "queue_oldest_due_age_seconds",
            "How long the oldest due instance has waited",
            queue_oldest_due_age.clone(),
        );
        let watch_passes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "fleet_watch_passes",
            "Passes of the fleet watch over Fly's org-wide machine listing, by result",
            watch_passes.clone(),
        );
        let watch_machines_listed = Counter::default();
        registry.register(
            "fleet_watch_machines_listed",
            "Machines returned by the fleet watch's listings",
            watch_machines_listed.clone(),
        );
        let watch_wakeups = Counter::default();
        registry.register(
            "fleet_watch_wakeups",
            "Instances made due because their machine changed at Fly",
            watch_wakeups.clone(),
        );
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
            fly_requests,
            fly_request_duration,
            fly_throttle_wait,
            fly_rate_limited,
            fly_leases_held,
            lease_holders: Mutex::new(Vec::new()),
            reconciles,
            reconcile_duration,
            active_workers,
            queue_depth,
            queue_oldest_due_age,
            watch_passes,
            watch_machines_listed,
            watch_wakeups,
        }
    }

    /// Every metric in the Prometheus text format (0.0.4), which `promtool check metrics` and
    /// every Prometheus version read.
    pub fn encode(&self) -> String {
        let held: usize = {
            let mut holders = self.lease_holders.lock().unwrap_or_else(|e| e.into_inner());
            holders.retain(|h| h.strong_count() > 0);
            holders
                .iter()
                .filter_map(Weak::upgrade)
                .map(|h| h.held_leases())
                .sum()
        };
        self.fly_leases_held.set(held as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        openmetrics_to_text(&out)
    }

    /// Records one Fly API call.
    pub fn observe_fly_request(&self, endpoint: &'static str, status: u16, elapsed: Duration) {
        self.fly_requests
            .get_or_create(&FlyRequestLabels { endpoint, status })
            .inc();
        if status == 429 {
            self.fly_rate_limited
                .get_or_create(&EndpointLabels { endpoint })
                .inc();
        }
        self.fly_request_duration
            .get_or_create(&EndpointLabels { endpoint })
            .observe(elapsed.as_secs_f64());
    }

    /// Records how long a Fly call waited for a client-side rate-limit token.
    pub fn observe_throttle(&self, endpoint: &'static str, waited: Duration) {
        self.fly_throttle_wait
            .get_or_create(&EndpointLabels { endpoint })
            .observe(waited.as_secs_f64());
    }

    /// Makes `holder`'s leases count in `openclaws_fly_leases_held` for as long as it lives.
    pub fn track_leases(&self, holder: Weak<dyn LeaseHolder>) {
        self.lease_holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(holder);
    }

    /// Records one finished reconcile.
    pub fn observe_reconcile(&self, result: &'static str, reason: &'static str, elapsed: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels { result, reason })
            .inc();
        self.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    /// Tracks reconciles in flight.
    pub fn worker_started(&self) {
        self.active_workers.inc();
    }

    /// Tracks reconciles in flight.
    pub fn worker_finished(&self) {
        self.active_workers.dec();
    }

    /// Updates the queue gauges.
    pub fn set_queue(&self, depth: i64, oldest_due_age_seconds: f64) {
        self.queue_depth.set(depth);
        self.queue_oldest_due_age.set(oldest_due_age_seconds);
    }
}

impl Metrics {
    /// Counts one fleet watch pass.
    pub fn observe_watch_pass(&self, ok: bool) {
        self.watch_passes
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Counts machines a fleet watch listing returned.
    pub fn observe_watch_listed(&self, machines: u64) {
        self.watch_machines_listed.inc_by(machines);
    }

    /// Counts instances the fleet watch woke.
    pub fn observe_watch_wakeups(&self, woken: u64) {
        self.watch_wakeups.inc_by(woken);
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
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
