//! Stage 5, schedule: when to visit the instance again. Soon after progress; after a jittered,
//! persisted backoff after an error (or when Fly said to come back); the resync interval when
//! converged, blocked or paused; the time a waited-for thing is expected; no later than a proxy
//! token's rotation; within seconds while a channel is starting. Pure. A device pairing never brings a reconcile sooner: the pairing
//! subscription (`crate::pairing`) follows the gateway instead.

use chrono::{DateTime, Utc};
use std::time::Duration;

use openclaws_model::suspended;
use openclaws_model::Phase;

use openclaws_model::conditions::Reason;

use super::report::{Failure, Next, Report, Streak};
use super::{backoff, jitter};

/// How long an instance held while Fly is unavailable waits if nothing wakes it sooner.
const HELD_FOR_FLY: Duration = Duration::from_secs(60);

/// How soon a converged instance is looked at again while a channel has just started and has
/// not connected yet: its `Connected` (or, after its grace, `Unreachable`) is expected within
/// seconds, and nothing else would look before the resync.
const CHANNEL_LOOK: Duration = Duration::from_secs(5);

/// How long after the spec last changed (or the instance first became ready) a channel that is
/// starting or not reported yet brings these looks: longer than the channel's own start grace
/// (`openclaws_gateway::channels::START_GRACE_MS`), so its `Unreachable` is seen too, and
/// bounded, so a channel the gateway never reports costs no look every few seconds for ever.
const CHANNEL_SETTLE: Duration = Duration::from_secs(180);

/// Whether to look again soon for a channel: one is starting (`Pending`) or not reported yet
/// (`NotChecked`: OpenClaw applies a channel config moments after the `config.patch`), and the
/// spec changed (or the instance became ready) less than [`CHANNEL_SETTLE`] before `now`.
fn channel_look_due(
    status: &openclaws_model::InstanceStatus,
    changed: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let waiting = |c: &openclaws_model::ChannelStatus| {
        matches!(c.reason, Reason::Pending | Reason::NotChecked)
    };
    status.channels.iter().any(waiting) && until(changed, now) < CHANNEL_SETTLE
}

/// How often instances are visited when nothing is expected of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Interval between visits of a converged instance.
    pub resync: Duration,
    /// How long a pairing window stays open after the gateway first becomes ready.
    pub pairing_window: Duration,
}

/// Decides `report.next` and the status's `nextReconcileAt`.
pub(super) fn schedule(report: &mut Report, timing: &Timing) {
    let now = report.loaded.now;
    let next = if suspended(report.loaded.spec.paused, report.desired.deleting) {
        Next {
            after: jitter(timing.resync, 0.1),
            reason: "Paused",
            ..Next::default()
        }
    } else {
        visit(report, timing)
    };
    report.judged.status.next_reconcile_at = Some(now + chrono_duration(next.after));
    report.next = next;
}

fn visit(report: &Report, timing: &Timing) -> Next {
    let converged = &report.converged;
    let plan = &converged.plan;
    let mut next = match &converged.failure {
        Some(f) if f.error.is_terminal() => failed(jitter(timing.resync, 0.1), f),
        Some(f) if f.error.is_wait() => held(f),
        Some(f) => {
            // Fly (or our own limiter) said when to come back: trust it over our backoff, and
            // be back on time (a slot reserved by our limiter is kept only briefly).
            let after = f
                .error
                .retry_after()
                .map_or_else(|| backoff(report.loaded.attempts), on_time);
            failed(after, f)
        }
        None => match (&plan.wait, &plan.blocked) {
            (Some(wait), _) => settled(wait.after, "Waiting"),
            (None, Some(_)) => settled(jitter(timing.resync, 0.1), "Blocked"),
            _ if plan.is_converged() => settled(jitter(timing.resync, 0.1), "Converged"),
            _ => settled(Duration::from_millis(100), "Progressing"),
        },
    };
    let record = &report.loaded.record;
    let changed = record
        .first_ready_at
        .map_or(record.updated_at, |r| r.max(record.updated_at));
    if next.streak == Streak::Reset
        && channel_look_due(&report.judged.status, changed, report.loaded.now)
    {
        next.after = next.after.min(CHANNEL_LOOK);
        next.reason = "ChannelPending";
    }
    let now = report.loaded.now;
    if let Some(at) = report
        .resolved
        .proxy_token_rotate_at
        .filter(|_| next.streak == Streak::Reset)
    {
        next.after = next.after.min(until(now, at) + Duration::from_secs(1));
    }
    let became_ready =
        report.judged.status.phase == Phase::Ready && report.loaded.previous.phase != Phase::Ready;
    if became_ready && !timing.pairing_window.is_zero() {
        next.pairing_window_until = Some(now + chrono_duration(timing.pairing_window));
    }
    next
}

fn failed(after: Duration, failure: &Failure) -> Next {
    Next {
        after,
        streak: Streak::Extend,
        reason: failure.error.reason().as_str(),
        pairing_window_until: None,
    }
}

/// Held back, not failed: come back when our turn is (a kept slot in the organization's line,
/// our share of the rate limit), or when Fly answers again (the engine wakes held instances
/// as soon as the circuit closes; [`HELD_FOR_FLY`] is only the fallback).
fn held(failure: &Failure) -> Next {
    let after = match failure.error.retry_after() {
        _ if failure.error.reason() == Reason::FlyUnavailable => jitter(HELD_FOR_FLY, 0.2),
        Some(r) => on_time(r),
        None => jitter(Duration::from_secs(1), 0.5),
    };
    Next {
        after,
        streak: Streak::Keep,
        reason: failure.error.reason().as_str(),
        pairing_window_until: None,
    }
}

/// Back just after `retry_after` (a kept slot is held only briefly), spread a little.
fn on_time(retry_after: Duration) -> Duration {
    retry_after + jitter(retry_after.min(Duration::from_millis(2500)) / 10, 1.0)
}

fn settled(after: Duration, reason: &'static str) -> Next {
    Next {
        after,
        streak: Streak::Reset,
        reason,
        pairing_window_until: None,
    }
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default()
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::errors::StepError;
    use openclaws_fly::FlyError;

    fn failure(error: FlyError) -> Failure {
        Failure {
            step: "CreateApp",
            error: StepError::Fly(error),
        }
    }

    #[test]
    fn waiting_in_line_keeps_the_streak_and_comes_back_on_time() {
        let next = held(&failure(FlyError::Throttled {
            message: "waiting in line".into(),
            retry_after: Duration::from_secs(3),
        }));
        assert_eq!(next.streak, Streak::Keep);
        assert_eq!(next.reason, "FlyThrottled");
        assert!(next.after >= Duration::from_secs(3) && next.after <= Duration::from_millis(3600));
        assert_eq!(next.streak.apply(4), 4);
    }

    #[test]
    fn instances_held_for_fly_wait_to_be_woken() {
        let next = held(&failure(FlyError::Unavailable {
            retry_after: Duration::from_secs(2),
        }));
        assert_eq!(next.streak, Streak::Keep);
        assert_eq!(next.reason, "FlyUnavailable");
        assert!(next.after >= HELD_FOR_FLY.mul_f64(0.8) && next.after <= HELD_FOR_FLY.mul_f64(1.2));
    }

    #[test]
    fn a_starting_channel_is_looked_at_soon_but_not_for_ever() {
        use openclaws_model::{ChannelKind, ChannelState, ChannelStatus, InstanceStatus};
        let channel = |reason| ChannelStatus {
            channel: ChannelKind::Telegram,
            state: ChannelState::Pending,
            reason,
            message: String::new(),
            last_checked_at: None,
        };
        let with = |reason| InstanceStatus {
            channels: vec![channel(reason)],
            ..InstanceStatus::default()
        };
        let changed = Utc::now();
        let soon = changed + chrono::Duration::seconds(20);
        let later = changed + chrono_duration(CHANNEL_SETTLE);
        for reason in [Reason::Pending, Reason::NotChecked] {
            assert!(channel_look_due(&with(reason), changed, soon));
            assert!(!channel_look_due(&with(reason), changed, later));
        }
        for settled in [
            Reason::Connected,
            Reason::InvalidToken,
            Reason::Unreachable,
            Reason::Disabled,
        ] {
            assert!(!channel_look_due(&with(settled), changed, soon));
        }
        assert!(!channel_look_due(&InstanceStatus::default(), changed, soon));
    }

    #[test]
    fn streaks() {
        assert_eq!(Streak::Reset.apply(7), 0);
        assert_eq!(Streak::Extend.apply(7), 8);
        assert_eq!(Streak::Extend.apply(i32::MAX), i32::MAX);
        assert_eq!(Streak::Keep.apply(7), 7);
        assert!(Streak::Extend.failed() && !Streak::Keep.failed() && !Streak::Reset.failed());
    }
}
