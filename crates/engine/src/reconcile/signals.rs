//! What a reconcile reports besides its status, for metrics: what kind of drift it found and
//! repaired, pairing approvals, time to first `Ready`. Worked out from what the reconcile
//! already holds (its steps, conditions and the row's bookkeeping), never from extra queries.
//! Label values come from fixed lists ([`openclaws_model::outcomes`]), never from instance names.

use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

use openclaws_model::conditions::ConditionType;
use openclaws_model::outcomes::DriftKind;
use openclaws_model::{Condition, ConditionStatus};

use super::plan::Action;

impl Action {
    /// The kind of drift this step puts right; `None` for steps that are not repairs
    /// (approving a device's pairing request, giving up on an approval).
    pub fn drift_kind(&self) -> Option<DriftKind> {
        Some(match self {
            Action::CreateApp { .. } | Action::DeleteApp { .. } => DriftKind::App,
            Action::CreateVolume { .. }
            | Action::ExtendVolume { .. }
            | Action::DeleteVolume { .. } => DriftKind::Volume,
            Action::CreateMachine { .. }
            | Action::StartMachine { .. }
            | Action::StopMachine { .. }
            | Action::DestroyMachine { .. }
            | Action::RecoverStuckMachine { .. } => DriftKind::MachineState,
            Action::UpdateMachine { .. } => DriftKind::MachineConfig,
            Action::SetSecrets { .. }
            | Action::DeliverProxyToken { .. }
            | Action::DeliverChannelSecret { .. } => DriftKind::Secrets,
            Action::AssignIp { .. } | Action::ReleaseIp { .. } => DriftKind::Ips,
            Action::AddCertificate { .. } | Action::DeleteCertificate { .. } => {
                DriftKind::Certificate
            }
            Action::CreateDnsRecord { .. }
            | Action::UpdateDnsRecord { .. }
            | Action::DeleteDnsRecord { .. } => DriftKind::Dns,
            Action::RestartMachine { .. }
            | Action::PatchGatewayConfig { .. }
            | Action::ConfigureChannels { .. }
            | Action::RemoveChannel { .. } => DriftKind::GatewayConfig,
            Action::PairController { .. } => DriftKind::Pairing,
            Action::ApprovePairing { .. }
            | Action::ExpireApproval { .. }
            | Action::DecideChannelPairing(_) => return None,
        })
    }

    /// The `(policy, result)` of a gateway step that approves (or gives up on) a pairing
    /// request; `None` for every other action. `controller` is the controller's own device,
    /// paired once.
    pub fn pairing_outcome(&self, ok: bool) -> Option<(&'static str, &'static str)> {
        let result = if ok { "approved" } else { "failed" };
        match self {
            Action::ApprovePairing { approval_id, .. } => Some((
                if approval_id.is_some() {
                    "manual"
                } else {
                    "auto"
                },
                result,
            )),
            Action::ExpireApproval { .. } => Some(("manual", "expired")),
            Action::DecideChannelPairing(step) => Some((
                if step.decision_id.is_some() {
                    "dm-manual"
                } else {
                    "dm-auto"
                },
                match (ok, step.approve) {
                    (true, true) => "approved",
                    (true, false) => "dismissed",
                    (false, _) => "failed",
                },
            )),
            Action::PairController { .. } => Some(("controller", result)),
            _ => None,
        }
    }
}

/// The kind a condition that stopped holding stands for.
pub fn drift_of_condition(type_: ConditionType) -> Option<DriftKind> {
    Some(match type_ {
        ConditionType::AppReady => DriftKind::App,
        ConditionType::VolumeReady => DriftKind::Volume,
        ConditionType::MachineReady => DriftKind::MachineState,
        ConditionType::SecretsReady => DriftKind::Secrets,
        ConditionType::DnsReady => DriftKind::Dns,
        ConditionType::CertificateReady => DriftKind::Certificate,
        ConditionType::GatewayHealthy => DriftKind::GatewayHealth,
        ConditionType::ConfigSeeded => DriftKind::GatewayConfig,
        ConditionType::PairingReady => DriftKind::Pairing,
        _ => return None,
    })
}

/// The kinds of a drift: those of the repairs made; without any, those of the conditions
/// that are not `True` in `conditions`; without any, [`DriftKind::Other`].
pub fn drift_kinds(repairs: &BTreeSet<DriftKind>, conditions: &[Condition]) -> BTreeSet<DriftKind> {
    let mut kinds = repairs.clone();
    if kinds.is_empty() {
        kinds = conditions
            .iter()
            .filter(|c| c.status != ConditionStatus::True)
            .filter_map(|c| drift_of_condition(c.type_))
            .collect();
    }
    if kinds.is_empty() {
        kinds.insert(DriftKind::Other);
    }
    kinds
}

/// What one reconcile has to report besides its result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// Kinds of drift found on a converged instance.
    pub drift_detected: BTreeSet<DriftKind>,
    /// Kinds of drift put right (now, or over the reconciles since it was found).
    pub drift_repaired: BTreeSet<DriftKind>,
    /// Seconds from creation when this is the instance's first `Ready`.
    pub first_ready_seconds: Option<f64>,
}

/// Seconds from `from` to `to` (0 when `to` is earlier, as with clock skew between hosts).
pub fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaws_model::conditions::Reason;
    use openclaws_model::outcomes::PAIRING_OUTCOMES;

    fn cond(type_: ConditionType, ok: bool) -> Condition {
        Condition {
            type_,
            status: if ok {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            reason: Reason::Unknown,
            message: String::new(),
            last_transition_time: Utc::now(),
            observed_generation: 1,
        }
    }

    fn approve(approval: Option<&str>) -> Action {
        Action::ApprovePairing {
            request_id: "r".into(),
            approval_id: approval.map(str::to_owned),
            device_name: None,
        }
    }

    #[test]
    fn every_step_is_a_repair_of_one_kind_except_device_approvals() {
        let start = Action::StartMachine { id: "m".into() };
        let restart = Action::RestartMachine {
            id: "m".into(),
            paths: Vec::new(),
        };
        assert_eq!(start.drift_kind(), Some(DriftKind::MachineState));
        assert_eq!(restart.drift_kind(), Some(DriftKind::GatewayConfig));
        assert_eq!(approve(None).drift_kind(), None);
        let expire = Action::ExpireApproval {
            approval_id: "a".into(),
            request_id: None,
            message: String::new(),
        };
        assert_eq!(expire.drift_kind(), None);
    }

    #[test]
    fn kinds_come_from_repairs_then_conditions_then_other() {
        let degraded = [
            cond(ConditionType::MachineReady, false),
            cond(ConditionType::DnsReady, true),
        ];
        let repairs = BTreeSet::from([DriftKind::MachineConfig, DriftKind::Secrets]);
        assert_eq!(drift_kinds(&repairs, &degraded), repairs);
        assert_eq!(
            drift_kinds(&BTreeSet::new(), &degraded),
            BTreeSet::from([DriftKind::MachineState])
        );
        assert_eq!(
            drift_kinds(&BTreeSet::new(), &[cond(ConditionType::Ready, false)]),
            BTreeSet::from([DriftKind::Other])
        );
    }

    #[test]
    fn label_values_are_unique_snake_case() {
        let names: BTreeSet<&str> = DriftKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), DriftKind::ALL.len());
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        for kind in DriftKind::ALL {
            assert_eq!(DriftKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn pairing_outcomes_by_policy() {
        assert_eq!(
            approve(None).pairing_outcome(true),
            Some(("auto", "approved"))
        );
        assert_eq!(
            approve(Some("a")).pairing_outcome(false),
            Some(("manual", "failed"))
        );
        let expire = Action::ExpireApproval {
            approval_id: "a".into(),
            request_id: None,
            message: String::new(),
        };
        assert_eq!(expire.pairing_outcome(true), Some(("manual", "expired")));
        let bootstrap = Action::PairController {
            machine_id: "m".into(),
            request_id: "r".into(),
        };
        assert_eq!(
            bootstrap.pairing_outcome(true),
            Some(("controller", "approved"))
        );
        for action in [approve(None), approve(Some("a")), expire, bootstrap] {
            for ok in [true, false] {
                let outcome = action.pairing_outcome(ok).unwrap();
                assert!(PAIRING_OUTCOMES.contains(&outcome), "{outcome:?}");
            }
        }
        let start = Action::StartMachine { id: "m".into() };
        assert_eq!(start.pairing_outcome(true), None);
    }
}
