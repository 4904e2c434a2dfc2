//! What the engine reports to Prometheus besides reconcile results: what kind of drift it found
//! and repaired, pairing approvals, time to first `Ready` and deletion time. Label values come
//! from fixed lists here, never from instance names.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::BTreeSet;

use super::plan::Action;
use super::status;
use openclaws_model::{Condition, ConditionStatus, InstanceStatus, Phase};
use openclaws_store::events::EventType;
use openclaws_store::stats;
use openclaws_store::status::ControllerEvent;
use openclaws_store::InstanceRecord;

pub use openclaws_model::outcomes::{DriftKind, PAIRING_OUTCOMES};

/// The kind a repair step (an [`Action::step`] name, as recorded in events) puts right;
/// `None` for steps that are not repairs (approving a device's pairing request).
pub fn drift_of_step(step: &str) -> Option<DriftKind> {
    Some(match step {
        "CreateApp" | "DeleteApp" => DriftKind::App,
        "CreateVolume" | "ExtendVolume" | "DeleteVolume" => DriftKind::Volume,
        "CreateMachine"
        | "StartMachine"
        | "StopMachine"
        | "DestroyMachine"
        | "RecoverStuckMachine" => DriftKind::MachineState,
        "UpdateMachine" => DriftKind::MachineConfig,
        "SetSecrets" => DriftKind::Secrets,
        "AssignIp" | "ReleaseIp" => DriftKind::Ips,
        "AddCertificate" | "DeleteCertificate" => DriftKind::Certificate,
        "CreateDnsRecord" | "UpdateDnsRecord" | "DeleteDnsRecord" => DriftKind::Dns,
        "RestartMachine" => DriftKind::GatewayConfig,
        "PairController" => DriftKind::Pairing,
        _ => return None,
    })
}

/// The kind a condition that stopped holding stands for.
pub fn drift_of_condition(type_: &str) -> Option<DriftKind> {
    Some(match type_ {
        status::APP_READY => DriftKind::App,
        status::VOLUME_READY => DriftKind::Volume,
        status::MACHINE_READY => DriftKind::MachineState,
        status::SECRETS_READY => DriftKind::Secrets,
        status::DNS_READY => DriftKind::Dns,
        status::CERTIFICATE_READY => DriftKind::Certificate,
        status::GATEWAY_HEALTHY => DriftKind::GatewayHealth,
        status::CONFIG_SEEDED => DriftKind::GatewayConfig,
        status::PAIRING_READY => DriftKind::Pairing,
        _ => return None,
    })
}

/// Whether a step taken on a converged instance means the world had drifted (approving a
/// device's pairing request does not).
pub fn is_repair_step(step: &str) -> bool {
    drift_of_step(step).is_some()
}

/// The kinds of a drift: those of the repair steps taken; without any, those of the conditions
/// that are not `True` in `conditions`; without any, [`DriftKind::Other`].
pub fn drift_kinds<'a>(
    steps: impl IntoIterator<Item = &'a str>,
    conditions: &[Condition],
) -> BTreeSet<DriftKind> {
    let mut kinds: BTreeSet<DriftKind> = steps.into_iter().filter_map(drift_of_step).collect();
    if kinds.is_empty() {
        kinds = conditions
            .iter()
            .filter(|c| c.status != ConditionStatus::True)
            .filter_map(|c| drift_of_condition(&c.type_))
            .collect();
    }
    if kinds.is_empty() {
        kinds.insert(DriftKind::Other);
    }
    kinds
}

/// The `(policy, result)` of a gateway step that approves (or gives up on) a pairing request;
/// `None` for every other action. `controller` is the controller's own device, paired once.
pub fn pairing_outcome(action: &Action, ok: bool) -> Option<(&'static str, &'static str)> {
    let result = if ok { "approved" } else { "failed" };
    match action {
        Action::ApprovePairing { approval_id, .. } => Some((
            if approval_id.is_some() {
                "manual"
            } else {
                "auto"
            },
            result,
        )),
        Action::ExpireApproval { .. } => Some(("manual", "expired")),
        Action::PairController { .. } => Some(("controller", result)),
        _ => None,
    }
}

/// What one reconcile has to report besides its result, gathered before its status is recorded
/// (the history lookups must not see this reconcile's own events) and reported after, so a
/// reconcile whose record failed reports nothing and its retry reports once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// Kinds of drift found on a converged instance.
    pub drift_detected: BTreeSet<DriftKind>,
    /// Kinds of drift put right (now, or over the reconciles since it was found).
    pub drift_repaired: BTreeSet<DriftKind>,
    /// Seconds from creation when this is the instance's first `Ready`.
    pub first_ready_seconds: Option<f64>,
}

/// What [`Signals::gather`] looks at.
pub struct SignalInput<'a> {
    /// The instance row as this reconcile read it.
    pub record: &'a InstanceRecord,
    /// The status before this reconcile.
    pub previous: &'a InstanceStatus,
    /// The status this reconcile records.
    pub status: &'a InstanceStatus,
    /// The events this reconcile records (its steps are the `Normal` ones).
    pub events: &'a [ControllerEvent],
    /// A converged instance no longer matched the spec (the `DriftDetected` event).
    pub drifted: bool,
    /// Nothing is left to do or wait for.
    pub converged: bool,
    /// This reconcile's clock.
    pub now: DateTime<Utc>,
}

impl Signals {
    /// Works out the signals; a failed history lookup is logged and leaves its signal out, since
    /// metrics never fail a reconcile.
    pub async fn gather(pool: &PgPool, input: SignalInput<'_>) -> Signals {
        let SignalInput {
            record,
            previous,
            status,
            events,
            drifted,
            converged,
            now,
        } = input;
        let uid = record.uid;
        let steps: Vec<&str> = events
            .iter()
            .filter(|e| e.type_ == EventType::Normal)
            .map(|e| e.reason.as_str())
            .collect();
        let mut signals = Signals::default();
        if drifted {
            signals.drift_detected = drift_kinds(steps.iter().copied(), &status.conditions);
            if converged && matches!(status.phase, Phase::Ready | Phase::Stopped) {
                signals.drift_repaired = signals.drift_detected.clone();
            }
        }
        if previous.phase == Phase::Degraded && status.phase == Phase::Ready {
            // Repaired over several reconciles: the steps since the drift was found say what.
            let earlier = stats::steps_since_drift(pool, uid)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(instance_uid = %uid, error = %e, "drift repair kind unknown");
                    Vec::new()
                });
            let all = earlier
                .iter()
                .map(String::as_str)
                .chain(steps.iter().copied());
            signals.drift_repaired = drift_kinds(all, &previous.conditions);
        }
        if status.phase == Phase::Ready && previous.phase != Phase::Ready {
            match stats::was_ever_ready(pool, uid).await {
                Ok(false) => {
                    signals.first_ready_seconds = Some(seconds_between(record.created_at, now))
                }
                Ok(true) => {}
                Err(e) => {
                    tracing::warn!(instance_uid = %uid, error = %e, "time to first Ready not recorded")
                }
            }
        }
        signals
    }
}

/// Seconds from `from` to `to` (0 when `to` is earlier, as with clock skew between hosts).
pub fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, ok: bool) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: if ok {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            reason: "R".to_owned(),
            message: String::new(),
            last_transition_time: Utc::now(),
            observed_generation: 1,
        }
    }

    #[test]
    fn every_step_is_a_repair_of_one_kind_except_device_approvals() {
        for step in [
            "CreateApp",
            "SetSecrets",
            "AssignIp",
            "AddCertificate",
            "UpdateDnsRecord",
            "CreateMachine",
            "UpdateMachine",
            "StartMachine",
            "RecoverStuckMachine",
            "RestartMachine",
            "PairController",
        ] {
            assert!(is_repair_step(step), "{step}");
        }
        assert!(!is_repair_step("ApprovePairing"));
        assert!(!is_repair_step("ExpireApproval"));
        assert_eq!(
            drift_of_step("UpdateMachine"),
            Some(DriftKind::MachineConfig)
        );
        assert_eq!(drift_of_step("StartMachine"), Some(DriftKind::MachineState));
    }

    #[test]
    fn kinds_come_from_steps_then_conditions_then_other() {
        let degraded = [
            cond(status::MACHINE_READY, false),
            cond(status::DNS_READY, true),
        ];
        assert_eq!(
            drift_kinds(["UpdateMachine", "SetSecrets", "ApprovePairing"], &degraded)
                .into_iter()
                .collect::<Vec<_>>(),
            vec![DriftKind::MachineConfig, DriftKind::Secrets]
        );
        assert_eq!(
            drift_kinds(["ApprovePairing"], &degraded)
                .into_iter()
                .collect::<Vec<_>>(),
            vec![DriftKind::MachineState]
        );
        assert_eq!(
            drift_kinds([], &[cond(status::READY, false)])
                .into_iter()
                .collect::<Vec<_>>(),
            vec![DriftKind::Other]
        );
    }

    #[test]
    fn label_values_are_unique_snake_case() {
        let names: BTreeSet<&str> = DriftKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), DriftKind::ALL.len());
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }

    #[test]
    fn pairing_outcomes_by_policy() {
        let approve = |approval: Option<&str>| Action::ApprovePairing {
            request_id: "r".into(),
            approval_id: approval.map(str::to_owned),
            device_name: None,
        };
        assert_eq!(
            pairing_outcome(&approve(None), true),
            Some(("auto", "approved"))
        );
        assert_eq!(
            pairing_outcome(&approve(Some("a")), false),
            Some(("manual", "failed"))
        );
        let expire = Action::ExpireApproval {
            approval_id: "a".into(),
            request_id: None,
            message: String::new(),
        };
        assert_eq!(pairing_outcome(&expire, true), Some(("manual", "expired")));
        let bootstrap = Action::PairController {
            machine_id: "m".into(),
            request_id: "r".into(),
        };
        assert_eq!(
            pairing_outcome(&bootstrap, true),
            Some(("controller", "approved"))
        );
        for action in [approve(None), approve(Some("a")), expire, bootstrap] {
            for ok in [true, false] {
                let outcome = pairing_outcome(&action, ok).unwrap();
                assert!(PAIRING_OUTCOMES.contains(&outcome), "{outcome:?}");
            }
        }
        assert_eq!(
            pairing_outcome(&Action::StartMachine { id: "m".into() }, true),
            None
        );
    }
}
