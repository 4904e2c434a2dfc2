//! Pairing subscription metrics: how many subscriptions this replica holds (no instance in any
//! label); approvals a subscription carries out count in `openclaws_pairing_approvals_total`
//! like a reconcile's.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{register, Metrics};
use openclaws_engine::pairing::PairingTelemetry;

/// The replica's subscription pool.
#[derive(Debug)]
pub(crate) struct PairingMetrics {
    subscriptions: Gauge,
}

impl PairingMetrics {
    pub(crate) fn new(r: &mut Registry) -> Self {
        Self {
            subscriptions: register(
                r,
                "pairing_subscriptions",
                "Gateway pairing subscriptions (WebSockets following pairing events) this replica holds",
                Gauge::default(),
            ),
        }
    }
}

impl PairingTelemetry for Metrics {
    fn pairing_subscriptions(&self, held: usize) {
        self.pairing
            .subscriptions
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    fn pairing_outcome(&self, policy: &'static str, result: &'static str) {
        self.observe_pairing(policy, result);
    }
}
