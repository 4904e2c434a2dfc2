//! Stage 4, judge: what the reconcile amounts to. The status (conditions, phase, last error),
//! the events beyond the steps (a failure, drift found or repaired, a phase change), and the
//! signals for metrics (drift kinds, first `Ready`) with the bookkeeping that lets a repair
//! over several reconciles be counted by what it repaired. Pure.

use std::collections::BTreeSet;

use openclaws_model::conditions::ConditionType;
use openclaws_model::outcomes::DriftKind;
use openclaws_model::{InstanceStatus, LastError, Phase};
use openclaws_store::events::EventType;
use openclaws_store::status::ControllerEvent;

use super::plan::Blocked;
use super::report::Report;
use super::signals::{drift_kinds, seconds_between};
use super::status::{self, StatusInput};
use super::world::Observed;

/// Judges a reconcile that observed and acted (or failed to).
pub(super) fn judge(report: &mut Report) {
    block_on_terminal_failure(report);
    let last_error = last_error(report);
    let mut events = std::mem::take(&mut report.converged.steps);
    if let Some(warning) = failure_event(report, last_error.as_ref()) {
        events.push(warning);
    }
    report.judged.status = status_of(report, last_error);
    drift(report, &mut events);
    first_ready(report);
    events.extend(phase_event(report));
    report.judged.events = events;
}

/// Judges a paused reconcile: the previous status with a `Paused` condition, and an event the
/// first time.
pub(super) fn paused(report: &mut Report) {
    let loaded = &report.loaded;
    report.judged.status = status::paused(&loaded.previous, loaded.record.generation, loaded.now);
    if loaded.previous.condition(ConditionType::Paused).is_none() {
        report.judged.events.push(ControllerEvent {
            type_: EventType::Normal,
            reason: "Paused".into(),
            message: "spec.paused is true: reconciling is suspended".into(),
        });
    }
}

/// A step rejected for good blocks the instance for this generation.
fn block_on_terminal_failure(report: &mut Report) {
    let Some(failure) = report.converged.failure.as_ref() else {
        return;
    };
    if failure.error.is_terminal() {
        report.converged.plan.blocked = Some(Blocked {
            reason: failure.error.reason(),
            message: format!(
                "{} was rejected by {}; retrying cannot help until the spec changes: {}",
                failure.step,
                failure.error.refused_by(),
                failure.error
            ),
        });
    }
}

fn last_error(report: &Report) -> Option<LastError> {
    report.converged.failure.as_ref().map(|f| LastError {
        step: f.step.to_owned(),
        reason: f.error.reason(),
        message: f.error.to_string(),
        time: report.loaded.now,
        attempt: report.loaded.attempts + 1,
    })
}

/// A warning for a failure, unless it repeats the previous one (a retry failing the same way).
fn failure_event(report: &Report, error: Option<&LastError>) -> Option<ControllerEvent> {
    let error = error?;
    let repeated = report
        .loaded
        .previous
        .last_error
        .as_ref()
        .is_some_and(|p| p.step == error.step && p.message == error.message);
    (!repeated).then(|| ControllerEvent {
        type_: EventType::Warning,
        reason: format!("{}Failed", error.step),
        message: error.message.clone(),
    })
}

/// The status; when observing failed, what was known before is kept rather than claiming
/// resources vanished, this generation is not claimed as seen, and `Ready` says why.
fn status_of(report: &Report, last_error: Option<LastError>) -> InstanceStatus {
    let empty = Observed::empty();
    let observed = report.converged.observed.as_ref().unwrap_or(&empty);
    let previous = &report.loaded.previous;
    let mut status = status::compute(StatusInput {
        desired: &report.desired,
        observed,
        plan: &report.converged.plan,
        last_error,
        previous,
        now: report.loaded.now,
    });
    if report.converged.observed.is_none() {
        status.conditions = status::keep_with_ready(&previous.conditions, &status.conditions);
        status.fly = previous.fly.clone();
        status.observed_generation = previous.observed_generation;
        status.phase = match previous.phase {
            Phase::Pending => Phase::Provisioning,
            _ if report.desired.deleting => Phase::Deleting,
            Phase::Ready | Phase::Stopped
                if previous.observed_generation != report.desired.generation =>
            {
                Phase::Provisioning
            }
            phase => phase,
        };
    }
    status
}

/// Drift: a converged instance that needed repairs (approving a device's pairing request is
/// not one) or changed phase. Adds its events, its signals and the bookkeeping of an open
/// drift.
fn drift(report: &mut Report, events: &mut Vec<ControllerEvent>) {
    let previous = &report.loaded.previous;
    let status = &report.judged.status;
    let repairs = &report.converged.repairs;
    let was_converged = previous.observed_generation == report.desired.generation
        && matches!(previous.phase, Phase::Ready | Phase::Stopped);
    let drifted = was_converged
        && !report.desired.deleting
        && (!repairs.is_empty() || status.phase != previous.phase);
    let settled = report.converged.plan.is_converged()
        && matches!(status.phase, Phase::Ready | Phase::Stopped);
    let open = open_drift(&report.loaded.record.drift_repairs);
    let signals = &mut report.judged.signals;
    if drifted {
        let seen = status
            .condition(ConditionType::Ready)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        events.insert(
            0,
            ControllerEvent {
                type_: EventType::Warning,
                reason: "DriftDetected".into(),
                message: format!("the world no longer matches the spec ({seen}); repairing"),
            },
        );
        signals.drift_detected = drift_kinds(repairs, &status.conditions);
        if settled {
            signals.drift_repaired = signals.drift_detected.clone();
        }
        report.judged.drift_repairs = Some((!settled).then(|| names(repairs)));
    } else if previous.phase == Phase::Degraded && status.phase == Phase::Ready {
        events.push(ControllerEvent {
            type_: EventType::Normal,
            reason: "DriftRepaired".into(),
            message: "the world matches the spec again".into(),
        });
        let all: BTreeSet<DriftKind> = open.unwrap_or_default().union(repairs).copied().collect();
        signals.drift_repaired = drift_kinds(&all, &previous.conditions);
        report.judged.drift_repairs = Some(None);
    } else if let (Some(open), false) = (open, repairs.is_empty()) {
        let all: BTreeSet<DriftKind> = open.union(repairs).copied().collect();
        report.judged.drift_repairs = Some(Some(names(&all)));
    }
}

/// The repair kinds of an open drift, as recorded.
fn open_drift(recorded: &Option<Vec<String>>) -> Option<BTreeSet<DriftKind>> {
    recorded
        .as_ref()
        .map(|names| names.iter().filter_map(|n| DriftKind::parse(n)).collect())
}

fn names(kinds: &BTreeSet<DriftKind>) -> Vec<String> {
    kinds.iter().map(|k| k.as_str().to_owned()).collect()
}

/// The first `Ready`: its time since creation for metrics, and the bookkeeping so it counts
/// once.
fn first_ready(report: &mut Report) {
    let record = &report.loaded.record;
    if report.judged.status.phase == Phase::Ready && record.first_ready_at.is_none() {
        let now = report.loaded.now;
        report.judged.signals.first_ready_seconds = Some(seconds_between(record.created_at, now));
        report.judged.first_ready_at = Some(now);
    }
}

/// An event for a change of phase.
fn phase_event(report: &Report) -> Option<ControllerEvent> {
    let (before, after) = (report.loaded.previous.phase, report.judged.status.phase);
    (after != before).then(|| ControllerEvent {
        type_: if matches!(after, Phase::Degraded | Phase::Failed) {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: format!("Phase{}", after.as_str()),
        message: format!("phase {} → {}", before.as_str(), after.as_str()),
    })
}
