//! Where the engine's and the Fly client's reports land: [`Metrics`] implements their observer
//! interfaces ([`Telemetry`], [`FlyObserver`]), turning each report into metrics and, for
//! failures, Sentry events.

use std::time::Duration;
use uuid::Uuid;

use openclaws_engine::reconcile::Report;
use openclaws_engine::{ReconcileFuture, Telemetry, WatchPass};
use openclaws_fly::client::LeaseBook;
use openclaws_fly::FlyObserver;

use crate::reporting::{report_reconcile_outcome, sentry_bind_reconcile};
use crate::{LeaseHolder, Metrics};

impl FlyObserver for Metrics {
    fn request(&self, endpoint: &'static str, status: u16, elapsed: Duration) {
        self.observe_fly_request(endpoint, status, elapsed);
    }

    fn throttled(&self, endpoint: &'static str, waited: Duration) {
        self.observe_throttle(endpoint, waited);
    }

    fn circuit(&self, open: bool) {
        self.observe_circuit(open);
    }
}

impl openclaws_engine::webhooks::WebhookTelemetry for Metrics {
    fn webhook_attempt(&self, result: &'static str, latency: Option<Duration>) {
        self.observe_webhook_attempt(result, latency);
    }

    fn webhook_backlog(&self, pending: i64, failed: i64) {
        self.set_webhook_backlog(pending, failed);
    }
}

impl LeaseHolder for LeaseBook {
    fn held_leases(&self) -> usize {
        self.held()
    }
}

impl Telemetry for Metrics {
    fn reconciled(&self, report: &Report) {
        if let Some(status) = report.status() {
            report_reconcile_outcome(report.uid(), report.name(), report.previous(), status);
        }
        let signals = report.signals();
        for kind in &signals.drift_detected {
            self.observe_drift_detected(kind.as_str());
        }
        for kind in &signals.drift_repaired {
            self.observe_drift_repaired(kind.as_str());
        }
        if let Some(seconds) = signals.first_ready_seconds {
            self.observe_time_to_first_ready(seconds);
        }
        for (policy, result) in report.pairing_outcomes() {
            self.observe_pairing(policy, result);
        }
        if let Some(seconds) = report.deletion_seconds() {
            self.observe_deletion(seconds);
        }
    }

    fn reconcile_finished(&self, result: &'static str, reason: &'static str, elapsed: Duration) {
        self.observe_reconcile(result, reason, elapsed);
    }

    fn reconcile_error(&self, uid: Uuid, kind: &'static str, error: &dyn std::error::Error) {
        crate::reporting::sentry_report_reconcile_error(uid, kind, error);
    }

    fn worker_started(&self) {
        Metrics::worker_started(self);
    }

    fn worker_finished(&self) {
        Metrics::worker_finished(self);
    }

    fn queue(&self, depth: i64, oldest_due_age_seconds: f64) {
        self.set_queue(depth, oldest_due_age_seconds);
    }

    fn watch_pass(&self, pass: WatchPass) {
        self.observe_watch_pass(pass.ok);
        self.observe_watch_listed(pass.machines_listed);
        self.observe_watch_wakeups(pass.woken);
    }

    fn bind_reconcile(&self, uid: Uuid, reconcile: ReconcileFuture) -> ReconcileFuture {
        Box::pin(sentry_bind_reconcile(uid, reconcile))
    }
}
