//! The subscription pool: which instances need a subscription, and which of them hold one of
//! this replica's slots. Pure.
//!
//! Sharing when there are more candidates than slots: a candidate with work (requests pending,
//! approvals outstanding) goes before one that only has its window open; among equals the one
//! that has waited longest goes first. A subscription that has been held for a slice and has no
//! work is given up for a waiting candidate (the longest-held first), so idle windows take turns
//! round-robin; a subscription with work is never given up.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use openclaws_model::{PairingOutcome, PairingPolicy, PairingResult, PairingSpec};

/// An instance that wants a subscription now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub uid: Uuid,
    /// Requests pending or approvals outstanding (not only a window open).
    pub busy: bool,
    /// How long it has waited without a slot on this replica (zero when it holds one).
    pub waiting: Duration,
}

/// A subscription this replica holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub uid: Uuid,
    pub held_for: Duration,
}

/// What to change in the pool.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Candidates to subscribe to, in order.
    pub start: Vec<Uuid>,
    /// Subscriptions to close (no longer wanted, or giving their slot to a waiting candidate).
    pub stop: Vec<Uuid>,
}

/// Chooses the pool's changes for this pass (see the module's rules).
pub fn choose(candidates: &[Candidate], held: &[Held], slots: usize, slice: Duration) -> Choice {
    let held_ids: HashSet<Uuid> = held.iter().map(|h| h.uid).collect();
    let wanted: HashSet<Uuid> = candidates.iter().map(|c| c.uid).collect();
    let mut stop: Vec<Uuid> = held
        .iter()
        .filter(|h| !wanted.contains(&h.uid))
        .map(|h| h.uid)
        .collect();
    let kept = held.len() - stop.len();
    let mut waiting: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !held_ids.contains(&c.uid))
        .collect();
    waiting.sort_by(|a, b| b.busy.cmp(&a.busy).then(b.waiting.cmp(&a.waiting)));
    let mut free = slots.saturating_sub(kept);
    if waiting.len() > free {
        let idle: HashSet<Uuid> = candidates
            .iter()
            .filter(|c| !c.busy)
            .map(|c| c.uid)
            .collect();
        let mut turns: Vec<&Held> = held
            .iter()
            .filter(|h| idle.contains(&h.uid) && h.held_for >= slice)
            .collect();
        turns.sort_by_key(|h| std::cmp::Reverse(h.held_for));
        let yielded: Vec<Uuid> = turns
            .iter()
            .take(waiting.len() - free)
            .map(|h| h.uid)
            .collect();
        free += yielded.len();
        stop.extend(yielded);
    }
    Choice {
        start: waiting.iter().take(free).map(|c| c.uid).collect(),
        stop,
    }
}

/// Approvals recorded under the `manual` policy not carried out yet (no outcome, or a failed
/// one, which the planner tries again).
pub fn outstanding(pairing: &PairingSpec, recent: &[PairingResult]) -> usize {
    if pairing.policy != PairingPolicy::Manual {
        return 0;
    }
    pairing
        .approvals
        .iter()
        .filter(|a| {
            let key = a.key();
            !recent.iter().any(|r| {
                r.approval_id.as_deref() == Some(key.as_str()) && r.result != PairingOutcome::Failed
            })
        })
        .count()
}

/// Whether an instance wants a subscription, and whether it has work: its window is open,
/// a channel account uses DM pairing (`dm`: a stranger may write at any time), requests are
/// pending, or approvals are outstanding.
pub fn need(
    window_until: Option<DateTime<Utc>>,
    pending: u32,
    outstanding: usize,
    dm: bool,
    now: DateTime<Utc>,
) -> Option<bool> {
    let busy = pending > 0 || outstanding > 0;
    let open = dm || window_until.is_some_and(|until| until > now);
    (busy || open).then_some(busy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaws_model::PairingApproval;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn cand(n: u128, busy: bool, waiting: u64) -> Candidate {
        Candidate {
            uid: id(n),
            busy,
            waiting: Duration::from_secs(waiting),
        }
    }

    fn held(n: u128, secs: u64) -> Held {
        Held {
            uid: id(n),
            held_for: Duration::from_secs(secs),
        }
    }

    const SLICE: Duration = Duration::from_secs(30);

    #[test]
    fn free_slots_go_to_waiting_candidates_busy_and_oldest_first() {
        let c = [cand(1, false, 9), cand(2, true, 1), cand(3, false, 20)];
        let choice = choose(&c, &[], 2, SLICE);
        assert_eq!(choice.start, vec![id(2), id(3)]);
        assert!(choice.stop.is_empty());
    }

    #[test]
    fn subscriptions_no_longer_wanted_are_closed() {
        let choice = choose(&[cand(1, false, 0)], &[held(1, 5), held(2, 5)], 5, SLICE);
        assert_eq!(choice.stop, vec![id(2)]);
        assert!(choice.start.is_empty());
    }

    #[test]
    fn idle_subscriptions_past_their_slice_yield_to_waiting_ones() {
        let c = [
            cand(1, false, 0),
            cand(2, true, 0),
            cand(3, false, 0),
            cand(4, false, 7),
        ];
        // 1 idle and past its slice, 2 busy, 3 idle but within its slice: only 1 yields.
        let choice = choose(&c, &[held(1, 60), held(2, 600), held(3, 10)], 3, SLICE);
        assert_eq!(choice.stop, vec![id(1)]);
        assert_eq!(choice.start, vec![id(4)]);
    }

    #[test]
    fn a_full_pool_of_busy_subscriptions_keeps_them() {
        let c = [cand(1, true, 0), cand(2, true, 0), cand(3, true, 50)];
        let choice = choose(&c, &[held(1, 600), held(2, 600)], 2, SLICE);
        assert_eq!(choice, Choice::default());
    }

    #[test]
    fn the_pool_never_exceeds_its_slots() {
        let c: Vec<Candidate> = (0..50).map(|n| cand(n, n % 2 == 0, n as u64)).collect();
        let h: Vec<Held> = (0..10).map(|n| held(n, 100)).collect();
        let choice = choose(&c, &h, 10, SLICE);
        assert_eq!(h.len() - choice.stop.len() + choice.start.len(), 10);
    }

    #[test]
    fn need_and_outstanding() {
        let now = Utc::now();
        assert_eq!(need(None, 0, 0, false, now), None);
        assert_eq!(
            need(Some(now + chrono::Duration::seconds(5)), 0, 0, false, now),
            Some(false)
        );
        assert_eq!(
            need(Some(now - chrono::Duration::seconds(5)), 1, 0, false, now),
            Some(true)
        );
        assert_eq!(
            need(None, 0, 0, true, now),
            Some(false),
            "DM pairing follows, idle"
        );
        assert_eq!(need(None, 0, 1, true, now), Some(true));
        let approval = PairingApproval {
            id: Some("a1".into()),
            request_id: Some("r1".into()),
            latest: None,
            requested_at: None,
        };
        let mut spec = PairingSpec {
            policy: PairingPolicy::Manual,
            approvals: vec![approval],
            ..PairingSpec::default()
        };
        assert_eq!(outstanding(&spec, &[]), 1);
        let done = PairingResult {
            approval_id: Some("a1".into()),
            request_id: Some("r1".into()),
            device_name: None,
            channel: None,
            sender_id: None,
            result: PairingOutcome::Approved,
            message: String::new(),
            at: now,
        };
        assert_eq!(outstanding(&spec, &[done]), 0);
        spec.policy = PairingPolicy::Auto;
        assert_eq!(outstanding(&spec, &[]), 0);
    }
}
