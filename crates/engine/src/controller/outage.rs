//! Recovery from Fly outages, one circuit for the organization across replicas: a replica whose
//! calls keep failing opens it for all (through PostgreSQL), every replica then holds its calls,
//! one replica at a time probes Fly every couple of seconds, and when the probe gets an answer the
//! circuit closes for all and every instance held for Fly is made due at once, oldest wait first,
//! under the rate limits. While the database is unreachable a replica falls back to its own
//! circuit and probe.

use openclaws_store::Db;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use openclaws_fly::circuit::PROBE_EVERY;
use openclaws_fly::FlyClient;
use openclaws_store::circuit::{self as shared, Shared};
use openclaws_store::work;

use super::listener::Wakeup;

/// How often a replica whose calls go out looks whether another replica opened the circuit
/// when it cannot be told (no listener).
pub const WATCH_EVERY: Duration = Duration::from_secs(2);
/// The same while `NOTIFY openclaws_circuit` announces every opening and closing: a look only
/// in case a notification was lost.
pub const IDLE_WATCH_EVERY: Duration = Duration::from_secs(30);
/// How long a probe's turn lasts without renewal: a prober that died passes it on this soon.
pub const PROBE_TURN: Duration = Duration::from_secs(6);

/// What a replica does after looking at the shared circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to change.
    Idle,
    /// Open elsewhere: hold this replica's calls.
    Hold,
    /// Closed elsewhere (another replica's probe succeeded): let calls go out again.
    Resume,
    /// Open, and this replica's turn to ask Fly.
    Probe,
}

/// The step for a replica whose own circuit is `local_open`, given the shared circuit (`None`
/// when the database cannot be reached: the replica then probes its own open circuit).
pub fn step(local_open: bool, shared: Option<Shared>) -> Step {
    match shared {
        None if local_open => Step::Probe,
        None => Step::Idle,
        Some(Shared { open: true, .. }) if !local_open => Step::Hold,
        Some(Shared {
            open: true,
            probing: true,
        }) => Step::Probe,
        Some(Shared { open: true, .. }) => Step::Idle,
        Some(Shared { open: false, .. }) if local_open => Step::Resume,
        Some(Shared { open: false, .. }) => Step::Idle,
    }
}

/// Runs until `stop`: keeps this replica's circuit and the organization's in step, probes on
/// its turn, wakes the held instances when its probe sees Fly answer. `wakeup` is fed by
/// `NOTIFY openclaws_circuit` (another replica opened or closed the circuit).
pub async fn recover(
    fly: FlyClient,
    pool: Db,
    replica: String,
    wakeup: Wakeup,
    stop: CancellationToken,
) {
    let circuit = fly.circuit().clone();
    let mut changed = circuit.subscribe();
    loop {
        let pause = if circuit.is_open() {
            PROBE_EVERY
        } else {
            wakeup.pause(WATCH_EVERY, IDLE_WATCH_EVERY)
        };
        let woken_by_change = tokio::select! {
            _ = stop.cancelled() => return,
            seen = changed.changed() => if seen.is_err() { return } else { true },
            // The circuit changed in the database (maybe our own opening): no probe this look.
            _ = wakeup.notified() => true,
            _ = tokio::time::sleep(pause) => false,
        };
        if circuit.take_tripped() {
            if let Err(e) = shared::open(&pool, fly.org()).await {
                tracing::warn!(error = %e, "could not tell the other replicas that Fly is down");
            }
        }
        let turn = PROBE_TURN.as_secs_f64();
        let seen = shared::sync(&pool, fly.org(), &replica, turn).await;
        let seen = seen
            .inspect_err(|e| tracing::debug!(error = %e, "the shared Fly circuit is unreachable"))
            .ok();
        match step(circuit.is_open(), seen) {
            Step::Idle => {}
            Step::Hold => _ = fly.hold_calls(),
            Step::Resume => _ = fly.resume_calls(),
            // A probe right after the circuit opened would only see the same outage.
            Step::Probe if woken_by_change => {}
            Step::Probe => probe(&fly, &pool).await,
        }
    }
}

/// Asks Fly once; on an answer, closes the circuit for every replica and wakes the held.
async fn probe(fly: &FlyClient, pool: &Db) {
    if let Err(e) = fly.probe().await {
        tracing::debug!(error = %e, "Fly is still unavailable");
        return;
    }
    if let Err(e) = shared::close(pool, fly.org()).await {
        tracing::warn!(error = %e, "could not tell the other replicas that Fly answers again");
    }
    match work::wake_held(pool).await {
        Ok(woken) => tracing::info!(woken, "Fly answers again: held instances resume"),
        Err(e) => {
            tracing::warn!(error = %e, "waking instances held for Fly failed; they come back on their own")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(open: bool, probing: bool) -> Option<Shared> {
        Some(Shared { open, probing })
    }

    #[test]
    fn every_combination_has_one_step() {
        let cases = [
            (false, None, Step::Idle),
            (true, None, Step::Probe),
            (false, shared(false, false), Step::Idle),
            (true, shared(false, false), Step::Resume),
            (false, shared(true, false), Step::Hold),
            (false, shared(true, true), Step::Hold),
            (true, shared(true, false), Step::Idle),
            (true, shared(true, true), Step::Probe),
        ];
        for (local_open, seen, expected) in cases {
            assert_eq!(step(local_open, seen), expected, "{local_open} {seen:?}");
        }
    }
}
