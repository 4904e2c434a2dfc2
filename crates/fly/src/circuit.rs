//! The circuit of a replica's Fly client: when Fly keeps failing (5xx, timeouts, no answer),
//! calls stop going out and fail at once with [`FlyError::Unavailable`](crate::FlyError), so a
//! fleet of reconciles does not hammer an API that is down and does not pile up backoff. A
//! probe ([`crate::FlyClient::probe`]) checks for recovery; when it succeeds the circuit closes
//! and subscribers (the engine) bring the held instances back at once.
//!
//! The engine makes it one circuit for the organization: a circuit that trips here is
//! published to the other replicas ([`Circuit::take_tripped`]), one opened elsewhere is held
//! here too ([`crate::FlyClient::hold_calls`]), and only one replica probes.
//!
//! The state machine is pure ([`Breaker`]); [`Circuit`] shares it between clones of a client and
//! announces changes on a watch channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Consecutive outage-class failures that open the circuit...
pub const OPEN_AFTER_FAILURES: u32 = 5;
/// ...provided they span at least this long (one blip of parallel failures is not an outage).
pub const OPEN_AFTER_SPAN: Duration = Duration::from_secs(1);
/// How often the probe asks Fly while the circuit is open.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// The pure state of the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// Calls go out; `failures` consecutive outage-class failures so far, the first at `since`.
    Closed {
        failures: u32,
        since: Option<Instant>,
    },
    /// Calls are held since `since`.
    Open { since: Instant },
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::Closed {
            failures: 0,
            since: None,
        }
    }
}

impl Breaker {
    /// The state after a call ended: `outage` when Fly did not answer usefully (transport
    /// failure, 408, 5xx); any other answer (2xx, 4xx, 429) shows Fly is up.
    pub fn after_call(self, outage: bool, now: Instant) -> Breaker {
        match (self, outage) {
            (Breaker::Open { .. }, _) => self,
            (Breaker::Closed { .. }, false) => Breaker::default(),
            (Breaker::Closed { failures, since }, true) => {
                let since = since.unwrap_or(now);
                let failures = failures + 1;
                if failures >= OPEN_AFTER_FAILURES && now.duration_since(since) >= OPEN_AFTER_SPAN {
                    Breaker::Open { since: now }
                } else {
                    Breaker::Closed {
                        failures,
                        since: Some(since),
                    }
                }
            }
        }
    }

    /// Whether calls are held.
    pub fn is_open(self) -> bool {
        matches!(self, Breaker::Open { .. })
    }
}

/// The circuit shared by every clone of a client.
#[derive(Debug)]
pub struct Circuit {
    state: Mutex<Breaker>,
    open: watch::Sender<bool>,
    /// Set when this replica's own failures opened the circuit, until the engine publishes it.
    tripped: AtomicBool,
}

impl Default for Circuit {
    fn default() -> Self {
        Self {
            state: Mutex::new(Breaker::default()),
            open: watch::Sender::new(false),
            tripped: AtomicBool::new(false),
        }
    }
}

impl Circuit {
    /// `Err` with how long to stay away when calls are held.
    pub fn admit(&self) -> Result<(), Duration> {
        if self.lock().is_open() {
            Err(PROBE_EVERY)
        } else {
            Ok(())
        }
    }

    /// Folds a call's result in; announces when the circuit opens (and returns `true` then).
    pub fn record(&self, outage: bool) -> bool {
        let mut state = self.lock();
        let next = state.after_call(outage, Instant::now());
        let opened = next.is_open() && !state.is_open();
        if opened {
            tracing::warn!("Fly keeps failing: holding calls until a probe sees it answer again");
            self.tripped.store(true, Ordering::SeqCst);
            self.open.send_replace(true);
        }
        *state = next;
        opened
    }

    /// Holds calls because the circuit is open elsewhere (another replica saw the outage);
    /// returns `true` when it was closed here.
    pub fn hold(&self) -> bool {
        let mut state = self.lock();
        if state.is_open() {
            return false;
        }
        tracing::warn!("Fly is unavailable (seen by another replica): holding calls");
        *state = Breaker::Open {
            since: Instant::now(),
        };
        self.open.send_replace(true);
        true
    }

    /// Whether this replica's own failures opened the circuit since the last call (to publish
    /// it once to the other replicas).
    pub fn take_tripped(&self) -> bool {
        self.tripped.swap(false, Ordering::SeqCst)
    }

    /// Closes the circuit (the probe got an answer); announces it and returns `true` when it
    /// was open.
    pub fn close(&self) -> bool {
        let mut state = self.lock();
        let was_open = state.is_open();
        if was_open {
            tracing::info!("Fly answers again: calls resume");
        }
        *state = Breaker::default();
        self.open.send_replace(false);
        was_open
    }

    /// Whether calls are held now.
    pub fn is_open(&self) -> bool {
        self.lock().is_open()
    }

    /// Follows the circuit: `true` while calls are held.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.open.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(mut b: Breaker, outages: &[(bool, u64)], start: Instant) -> Breaker {
        for (outage, at_ms) in outages {
            b = b.after_call(*outage, start + Duration::from_millis(*at_ms));
        }
        b
    }

    #[test]
    fn opens_only_after_enough_failures_over_a_span() {
        let t0 = Instant::now();
        // Five failures in one instant are a blip.
        let blip = after(Breaker::default(), &[(true, 0); 5], t0);
        assert!(!blip.is_open());
        // Five failures over more than a second are an outage.
        let spread: Vec<(bool, u64)> = (0..5).map(|i| (true, i * 300)).collect();
        assert!(after(Breaker::default(), &spread, t0).is_open());
    }

    #[test]
    fn any_answer_resets_the_count() {
        let t0 = Instant::now();
        let mut calls: Vec<(bool, u64)> = (0..4).map(|i| (true, i * 400)).collect();
        calls.push((false, 1700));
        calls.extend((0..4).map(|i| (true, 1800 + i * 400)));
        assert!(!after(Breaker::default(), &calls, t0).is_open());
    }

    #[test]
    fn the_circuit_announces_when_it_opens_and_closes() {
        let circuit = Circuit::default();
        let mut seen = circuit.subscribe();
        *circuit.lock() = Breaker::Closed {
            failures: OPEN_AFTER_FAILURES - 1,
            since: Some(Instant::now() - Duration::from_secs(5)),
        };
        assert!(circuit.record(true));
        assert_eq!(circuit.admit(), Err(PROBE_EVERY));
        assert!(*seen.borrow_and_update());
        // Only the probe closes it: a late answer of a call sent before does not.
        assert!(!circuit.record(false));
        assert!(circuit.is_open());
        assert!(circuit.close());
        assert_eq!(circuit.admit(), Ok(()));
        assert!(!*seen.borrow_and_update());
    }

    #[test]
    fn only_own_failures_trip_the_circuit_for_publishing() {
        let circuit = Circuit::default();
        let mut seen = circuit.subscribe();
        assert!(circuit.hold());
        assert!(!circuit.hold(), "holding twice announces once");
        assert!(*seen.borrow_and_update());
        assert_eq!(circuit.admit(), Err(PROBE_EVERY));
        assert!(
            !circuit.take_tripped(),
            "held for another replica, not tripped here"
        );
        assert!(circuit.close());
        *circuit.lock() = Breaker::Closed {
            failures: OPEN_AFTER_FAILURES - 1,
            since: Some(Instant::now() - Duration::from_secs(5)),
        };
        assert!(circuit.record(true));
        assert!(circuit.take_tripped());
        assert!(!circuit.take_tripped(), "published once");
    }
}
