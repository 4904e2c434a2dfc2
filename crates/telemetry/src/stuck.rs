//! Stuck instances (`openclaws_engine::stuck`): the gauge of stuck instances by reason, a Sentry
//! event per stuck spell (fingerprint: instance and reason, so one issue however long it lasts),
//! and, when Sentry's web API is configured, the resolution of that issue once the instance
//! recovers. Reports carry the instance's conditions and newest events; like every event they
//! pass the scrubber on their way out.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sentry::protocol::{Event, Level};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openclaws_engine::stuck::StuckTelemetry;
use openclaws_model::conditions::Reason;
use openclaws_store::stuck::{Recovered, StuckInstance};

use crate::reporting::SentryIssues;
use crate::{register, Metrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// `openclaws_instances_stuck{reason}`.
#[derive(Debug)]
pub(crate) struct StuckMetrics {
    stuck: Family<ReasonLabels, Gauge>,
}

impl StuckMetrics {
    pub(crate) fn new(r: &mut Registry) -> Self {
        Self {
            stuck: register(
                r,
                "instances_stuck",
                "Instances whose current generation has not been Ready for longer than \
                 OPENCLAWS_STUCK_AFTER (reported to Sentry), by the Ready condition's reason",
                Family::default(),
            ),
        }
    }
}

/// The Sentry tag a stuck report carries and its resolution searches for.
pub const STUCK_TAG: &str = "stuck_id";

/// The value of [`STUCK_TAG`]: one per instance and reason (`{uid}/{reason}`: the slash keeps
/// the scrubber from taking it for a random token).
pub fn stuck_id(uid: &uuid::Uuid, reason: &str) -> String {
    format!("{uid}/{reason}")
}

/// Reports stuck instances: the gauge to `metrics`, the reports to Sentry, resolutions through
/// Sentry's web API when `issues` is configured.
#[derive(Debug)]
pub struct StuckReporter {
    pub metrics: Arc<Metrics>,
    pub issues: Option<SentryIssues>,
}

impl StuckTelemetry for StuckReporter {
    fn stuck(&self, instance: &StuckInstance, limit: Duration) {
        report_stuck(instance, limit);
        if let (Some(old), Some(issues)) = (&instance.replaces, self.issues.clone()) {
            let id = stuck_id(&instance.uid, old);
            tokio::spawn(async move { issues.resolve_tagged(STUCK_TAG, &id).await });
        }
    }

    fn recovered(&self, instance: &Recovered) {
        tracing::info!(reason = %instance.reason, instance = %instance.name, "stuck instance recovered");
        if let Some(issues) = self.issues.clone() {
            let id = stuck_id(&instance.uid, &instance.reason);
            tokio::spawn(async move { issues.resolve_tagged(STUCK_TAG, &id).await });
        }
    }

    fn stuck_counts(&self, counts: &[(String, i64)]) {
        for reason in Reason::ALL.iter().chain([&Reason::Unknown]) {
            let n = counts
                .iter()
                .filter(|(r, _)| Reason::parse(r) == *reason)
                .map(|(_, n)| n)
                .sum();
            self.metrics
                .stuck
                .stuck
                .get_or_create(&ReasonLabels {
                    reason: reason.as_str(),
                })
                .set(n);
        }
    }
}

/// One Sentry event for a stuck instance: a warning in the log too.
pub fn report_stuck(instance: &StuckInstance, limit: Duration) {
    let waited = (chrono::Utc::now() - instance.since).num_minutes();
    tracing::warn!(
        reason = %instance.reason,
        instance = %instance.name,
        minutes = waited,
        "instance stuck: not Ready for longer than the limit"
    );
    let uid = instance.uid.to_string();
    let message = ready_message(&instance.conditions);
    let event = Event {
        level: Level::Error,
        logger: Some("stuck".to_owned()),
        message: Some(format!(
            "instance {} not Ready for {waited} min (limit {} min): {}: {message}",
            instance.name,
            limit.as_secs() / 60,
            instance.reason
        )),
        fingerprint: Cow::Owned(vec![
            "stuck".into(),
            uid.clone().into(),
            instance.reason.clone().into(),
        ]),
        tags: BTreeMap::from([
            ("instance_uid".to_owned(), uid),
            ("reason".to_owned(), instance.reason.clone()),
            ("phase".to_owned(), instance.phase.clone()),
            (
                STUCK_TAG.to_owned(),
                stuck_id(&instance.uid, &instance.reason),
            ),
        ]),
        extra: BTreeMap::from([
            ("instance".to_owned(), Value::from(instance.name.as_str())),
            ("generation".to_owned(), Value::from(instance.generation)),
            ("since".to_owned(), Value::from(instance.since.to_rfc3339())),
            ("conditions".to_owned(), instance.conditions.clone()),
            ("last_events".to_owned(), instance.last_events.clone()),
        ]),
        ..Default::default()
    };
    sentry::capture_event(event);
}

/// The `Ready` condition's message, for the event's title.
fn ready_message(conditions: &Value) -> String {
    conditions
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_ids_survive_the_scrubber() {
        let id = stuck_id(&uuid::Uuid::now_v7(), "CrashLooping");
        assert_eq!(crate::reporting::scrub_text(&id), id.as_str());
    }
}
