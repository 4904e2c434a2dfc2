//! The rollout planner: from a release's stored state and what its members' instances show,
//! the next step. Pure (no I/O, the clock passed in), so a controller restart that reads the
//! same rows plans the same step, and the property tests below can drive it through whole
//! releases.
//!
//! Rules (`docs/releases.md`):
//! - At most `maxUnavailable` members are down because of the release at any time: being
//!   updated, being rolled back, failed or failed to roll back ([`MemberState::is_unavailable`]).
//! - A wave starts only when every member of the wave before is settled (healthy, failed or
//!   skipped); the canary is wave 0.
//! - The release halts when `failureThreshold` members failed, or when failures alone use up
//!   `maxUnavailable` (it could not go on without exceeding it); a halt rolls the updated
//!   members back (`onHalt: Rollback`: failed ones first, healthy ones within
//!   `maxUnavailable`) or leaves them (`Stop`).

use chrono::{DateTime, Duration, Utc};
use openclaws_model::release::{MemberState, OnHalt, ReleasePhase, Strategy};

/// The release as stored: what the planner needs of it.
#[derive(Debug, Clone)]
pub struct Rollout<'a> {
    pub phase: ReleasePhase,
    pub wave: u32,
    pub paused: bool,
    /// An operator's abort, with what to do with the updated members.
    pub abort: Option<OnHalt>,
    pub strategy: &'a Strategy,
    pub image: &'a str,
    pub now: DateTime<Utc>,
}

/// One member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub wave: u32,
    pub state: MemberState,
    /// The image a rollback restores.
    pub previous_image: String,
    /// The instance generation our last image write produced.
    pub generation: Option<i64>,
    pub deadline: Option<DateTime<Utc>>,
}

/// What the member's instance shows now, as far as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not read this step (the planner leaves such a member as it is).
    NotLoaded,
    /// The instance is gone or being deleted.
    Gone,
    Found(InstanceView),
}

/// The parts of an instance's row a health gate looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub spec_image: String,
    pub generation: i64,
    pub observed_generation: i64,
    /// `Ready` is `True`, or the instance is converged and stopped as its spec asks.
    pub ready: bool,
    /// `spec.paused`: support holds the instance; a release leaves it alone.
    pub paused: bool,
    /// The image Fly reports the machine runs.
    pub running_image: Option<String>,
    /// Why the instance is failing (crash loop, `Failed` phase), if it is.
    pub failing: Option<String>,
}

/// A health gate's verdict on one instance for one image write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Failing(String),
    Waiting,
}

/// Judges `view` for the write of `image` that produced `generation`: nothing counts until
/// the controller has reconciled that generation.
pub fn judge(view: &InstanceView, image: &str, generation: i64) -> Health {
    if view.observed_generation < generation {
        return Health::Waiting;
    }
    if let Some(reason) = &view.failing {
        return Health::Failing(reason.clone());
    }
    if view.ready && view.running_image.as_deref() == Some(image) {
        Health::Healthy
    } else {
        Health::Waiting
    }
}

/// A change to one member (by index), with the image to write to its instance's `spec.image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub index: usize,
    pub to: MemberState,
    pub message: String,
    /// Set `spec.image` to this (a start or a rollback) and record the generation it makes.
    pub write_image: Option<String>,
    /// A start's previous image (what the instance ran when it was started).
    pub previous_image: Option<String>,
    pub deadline: Option<DateTime<Utc>>,
}

/// The next step of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub changes: Vec<Change>,
    pub phase: ReleasePhase,
    pub wave: u32,
    pub message: String,
}

/// Which members' instances a step needs read: those in flight or failed, and the next few
/// that could start or be rolled back. Bounded by about four times `maxUnavailable`, so a
/// step costs the same at 10 members or 10,000.
pub fn wanted(rollout: &Rollout<'_>, members: &[Member]) -> Vec<usize> {
    let budget = rollout.strategy.max_unavailable as usize;
    let mut out = Vec::new();
    let (mut pending_now, mut pending_next, mut healthy) = (0, 0, 0);
    for (i, m) in members.iter().enumerate() {
        let take = match m.state {
            MemberState::Updating | MemberState::RollingBack | MemberState::Failed => true,
            MemberState::Pending if m.wave == rollout.wave => bump(&mut pending_now, budget),
            MemberState::Pending if m.wave == rollout.wave + 1 => bump(&mut pending_next, budget),
            MemberState::Healthy if rollout.phase == ReleasePhase::RollingBack => {
                bump(&mut healthy, budget)
            }
            _ => false,
        };
        if take {
            out.push(i);
        }
    }
    out
}

fn bump(count: &mut usize, budget: usize) -> bool {
    *count += 1;
    *count <= budget
}

/// Plans the next step; `seen[i]` is what member `i`'s instance shows.
pub fn plan(rollout: &Rollout<'_>, members: &[Member], seen: &[Seen]) -> Step {
    let mut step = Step {
        changes: Vec::new(),
        phase: rollout.phase,
        wave: rollout.wave,
        message: String::new(),
    };
    if rollout.phase.is_finished() {
        return step;
    }
    let mut states: Vec<MemberState> = members.iter().map(|m| m.state).collect();
    judge_in_flight(rollout, members, seen, &mut states, &mut step);
    let active = matches!(
        rollout.phase,
        ReleasePhase::Pending | ReleasePhase::Progressing | ReleasePhase::Paused
    );
    if active && !halt_if_needed(rollout, &mut states, &mut step) {
        progress(rollout, members, seen, &mut states, &mut step);
    } else if rollout.phase == ReleasePhase::RollingBack {
        roll_back(rollout, members, seen, &mut states, &mut step);
    }
    step
}

/// Why a member whose instance went away is skipped.
const DELETED: &str = "the instance was deleted";
/// Why a member whose image someone else changed is skipped.
const TAKEN_OVER: &str = "its spec.image was changed by another writer; left to it";

fn set(states: &mut [MemberState], step: &mut Step, change: Change) {
    states[change.index] = change.to;
    step.changes.push(change);
}

fn skip(states: &mut [MemberState], step: &mut Step, index: usize, why: &str) {
    set(states, step, settle(index, MemberState::Skipped, why));
}

/// When a member started or rolled back now counts as failed.
fn deadline(rollout: &Rollout<'_>) -> DateTime<Utc> {
    rollout.now + Duration::seconds(rollout.strategy.health_deadline_seconds.into())
}

fn settle(index: usize, to: MemberState, message: impl Into<String>) -> Change {
    Change {
        index,
        to,
        message: message.into(),
        write_image: None,
        previous_image: None,
        deadline: None,
    }
}

/// Members being updated or rolled back become healthy, failed or skipped.
fn judge_in_flight(
    rollout: &Rollout<'_>,
    members: &[Member],
    seen: &[Seen],
    states: &mut [MemberState],
    step: &mut Step,
) {
    for (i, m) in members.iter().enumerate() {
        let (image, ok, bad) = match m.state {
            MemberState::Updating => (rollout.image, MemberState::Healthy, MemberState::Failed),
            MemberState::RollingBack => (
                m.previous_image.as_str(),
                MemberState::RolledBack,
                MemberState::RollbackFailed,
            ),
            _ => continue,
        };
        let view = match &seen[i] {
            Seen::NotLoaded => continue,
            Seen::Gone => {
                skip(states, step, i, DELETED);
                continue;
            }
            Seen::Found(view) => view,
        };
        if view.spec_image != image {
            skip(states, step, i, TAKEN_OVER);
            continue;
        }
        if view.paused {
            let why = "support paused it (spec.paused) while the release waited for it";
            set(states, step, settle(i, MemberState::Skipped, why));
            continue;
        }
        let generation = m.generation.unwrap_or(view.generation);
        match judge(view, image, generation) {
            Health::Healthy => set(states, step, settle(i, ok, format!("healthy on {image}"))),
            Health::Failing(why) => set(states, step, settle(i, bad, why)),
            Health::Waiting if m.deadline.is_some_and(|d| rollout.now >= d) => {
                let secs = rollout.strategy.health_deadline_seconds;
                let why = format!("not Ready on {image} with a healthy gateway within {secs} s");
                set(states, step, settle(i, bad, why));
            }
            Health::Waiting => {}
        }
    }
}

/// Halts on an abort or on failures; true when it did.
fn halt_if_needed(rollout: &Rollout<'_>, states: &mut [MemberState], step: &mut Step) -> bool {
    let failed = states.iter().filter(|s| **s == MemberState::Failed).count() as u32;
    let s = rollout.strategy;
    let limit = s.failure_threshold.min(s.max_unavailable);
    let (action, message) = match rollout.abort {
        Some(action) => (action, "aborted by an operator".to_owned()),
        None if failed >= limit => (
            s.on_halt,
            format!("halted: {failed} instance(s) failed the health gate (threshold {limit})"),
        ),
        None => return false,
    };
    step.message = message;
    match action {
        OnHalt::Rollback => step.phase = ReleasePhase::RollingBack,
        OnHalt::Stop => {
            step.phase = if rollout.abort.is_some() {
                ReleasePhase::Aborted
            } else {
                ReleasePhase::Halted
            };
            for i in 0..states.len() {
                if states[i] == MemberState::Updating {
                    let why = "the release stopped while this instance was being updated";
                    set(states, step, settle(i, MemberState::Unfinished, why));
                }
            }
        }
    }
    true
}

/// Moves through the waves and starts members within `maxUnavailable`.
fn progress(
    rollout: &Rollout<'_>,
    members: &[Member],
    seen: &[Seen],
    states: &mut [MemberState],
    step: &mut Step,
) {
    step.phase = if rollout.paused {
        ReleasePhase::Paused
    } else {
        ReleasePhase::Progressing
    };
    if rollout.paused {
        step.message = "paused by an operator".to_owned();
        return;
    }
    let last = members.iter().map(|m| m.wave).max().unwrap_or(0);
    while step.wave < last && wave_settled(members, states, step.wave) {
        step.wave += 1;
    }
    if wave_settled(members, states, step.wave) && step.wave >= last {
        step.phase = ReleasePhase::Completed;
        step.message = "every instance is on the new image or was skipped".to_owned();
        return;
    }
    start_members(rollout, members, seen, states, step);
}

fn wave_settled(members: &[Member], states: &[MemberState], wave: u32) -> bool {
    members
        .iter()
        .zip(states)
        .filter(|(m, _)| m.wave == wave)
        .all(|(_, s)| s.is_settled())
}

fn unavailable(states: &[MemberState]) -> usize {
    states.iter().filter(|s| s.is_unavailable()).count()
}

fn start_members(
    rollout: &Rollout<'_>,
    members: &[Member],
    seen: &[Seen],
    states: &mut [MemberState],
    step: &mut Step,
) {
    let deadline = deadline(rollout);
    for (i, m) in members.iter().enumerate() {
        if unavailable(states) >= rollout.strategy.max_unavailable as usize {
            break;
        }
        if m.wave != step.wave || states[i] != MemberState::Pending {
            continue;
        }
        match &seen[i] {
            Seen::NotLoaded => {}
            Seen::Gone => skip(states, step, i, DELETED),
            Seen::Found(view) if view.spec_image == rollout.image => {
                let why = "it already had the release's image";
                set(states, step, settle(i, MemberState::Skipped, why));
            }
            Seen::Found(view) if view.paused => {
                let why = "support paused it (spec.paused); left alone";
                set(states, step, settle(i, MemberState::Skipped, why));
            }
            Seen::Found(view) => set(
                states,
                step,
                Change {
                    index: i,
                    to: MemberState::Updating,
                    message: format!("updating from {}", view.spec_image),
                    write_image: Some(rollout.image.to_owned()),
                    previous_image: Some(view.spec_image.clone()),
                    deadline: Some(deadline),
                },
            ),
        }
    }
}

/// Puts updated members back on their previous image: failed and in-flight ones at once
/// (they are down already), healthy ones within `maxUnavailable`; done when none is left.
fn roll_back(
    rollout: &Rollout<'_>,
    members: &[Member],
    seen: &[Seen],
    states: &mut [MemberState],
    step: &mut Step,
) {
    let deadline = deadline(rollout);
    let order = [
        MemberState::Failed,
        MemberState::Updating,
        MemberState::Healthy,
    ];
    for wanted_state in order {
        for (i, m) in members.iter().enumerate() {
            if states[i] != wanted_state {
                continue;
            }
            let adds_one = wanted_state == MemberState::Healthy;
            if adds_one && unavailable(states) >= rollout.strategy.max_unavailable as usize {
                break;
            }
            match &seen[i] {
                Seen::NotLoaded => {}
                Seen::Gone => skip(states, step, i, DELETED),
                Seen::Found(view) if view.spec_image != rollout.image => {
                    skip(states, step, i, TAKEN_OVER);
                }
                Seen::Found(_) => set(
                    states,
                    step,
                    Change {
                        index: i,
                        to: MemberState::RollingBack,
                        message: format!("rolling back to {}", m.previous_image),
                        write_image: Some(m.previous_image.clone()),
                        previous_image: None,
                        deadline: Some(deadline),
                    },
                ),
            }
        }
    }
    finish_rollback(rollout, states, step);
}

/// Ends a rollback when no member is left to roll back or judge; members that failed to roll
/// back use up the budget for good, so the healthy rest is then left on the new image.
fn finish_rollback(rollout: &Rollout<'_>, states: &mut [MemberState], step: &mut Step) {
    let in_flight = states.iter().any(|s| {
        matches!(
            s,
            MemberState::Failed | MemberState::Updating | MemberState::RollingBack
        )
    });
    if !in_flight && unavailable(states) >= rollout.strategy.max_unavailable as usize {
        for i in 0..states.len() {
            if states[i] == MemberState::Healthy {
                let why = "left on the new image: rolling it back would exceed maxUnavailable";
                set(states, step, settle(i, MemberState::Unfinished, why));
            }
        }
    }
    let left = in_flight || states.contains(&MemberState::Healthy);
    if !left {
        step.phase = ReleasePhase::RolledBack;
        step.message = "the updated instances are back on their previous image".to_owned();
    }
}

#[cfg(test)]
mod tests;
