//! Client-side rate limits that keep every Fly action under Fly's published limits, so a healthy
//! run sees no 429: 1 request/s with a burst of 3 per action and scope for mutations, 5/s with a
//! burst of 10 for reads, 100 app deletions per minute. We stay a little below each (clock skew
//! between us and Fly would otherwise turn a full burst into a 429).
//!
//! A call waits for its token only briefly; when the wait would be longer, it fails fast with a
//! client-side `RateLimited` so the reconcile is requeued instead of holding a worker.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// How long a call may wait for a token before giving up and requeueing.
pub const MAX_WAIT: Duration = Duration::from_millis(1500);

/// Which limit applies to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitClass {
    /// Create/update/start/stop/delete/lease/exec/metadata writes: per action and scope.
    Mutation,
    /// GETs and lists: per action and scope.
    Read,
    /// App deletion: per org.
    AppDelete,
}

/// The limiters of one client.
#[derive(Debug)]
pub struct FlyRateLimits {
    mutation: DefaultKeyedRateLimiter<(&'static str, String)>,
    read: DefaultKeyedRateLimiter<(&'static str, String)>,
    app_delete: DefaultDirectRateLimiter,
}

impl Default for FlyRateLimits {
    fn default() -> Self {
        Self::new()
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

impl FlyRateLimits {
    /// Limits just under Fly's published ones.
    pub fn new() -> Self {
        let mutation = Quota::with_period(Duration::from_millis(1100))
            .expect("non-zero period")
            .allow_burst(nz(2));
        let read = Quota::with_period(Duration::from_millis(250))
            .expect("non-zero period")
            .allow_burst(nz(8));
        let app_delete = Quota::per_minute(nz(90)).allow_burst(nz(10));
        Self {
            mutation: RateLimiter::keyed(mutation),
            read: RateLimiter::keyed(read),
            app_delete: RateLimiter::direct(app_delete),
        }
    }

    /// Takes a token for `action` on `scope`, waiting at most [`MAX_WAIT`]. `Err` carries how long
    /// until a token would be available; `Ok` carries how long the call waited.
    pub async fn acquire(
        &self,
        class: LimitClass,
        action: &'static str,
        scope: &str,
    ) -> Result<Duration, Duration> {
        let clock = DefaultClock::default();
        let mut waited = Duration::ZERO;
        loop {
            let checked = match class {
                LimitClass::Mutation => self.mutation.check_key(&(action, scope.to_owned())),
                LimitClass::Read => self.read.check_key(&(action, scope.to_owned())),
                LimitClass::AppDelete => self.app_delete.check(),
            };
            match checked {
                Ok(()) => return Ok(waited),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(clock.now());
                    if waited + wait > MAX_WAIT {
                        return Err(wait);
                    }
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
            }
        }
    }

    /// Forgets idle keys so memory stays bounded on a large fleet.
    pub fn shrink(&self) {
        self.mutation.retain_recent();
        self.read.retain_recent();
        self.mutation.shrink_to_fit();
        self.read.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mutations_are_spaced_per_scope() {
        let limits = FlyRateLimits::new();
        let started = std::time::Instant::now();
        // A burst of two, then the third waits about a period.
        for _ in 0..3 {
            limits
                .acquire(LimitClass::Mutation, "machines.start", "m1")
                .await
                .unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(900));
        // Another scope has its own bucket.
        let other = limits
            .acquire(LimitClass::Mutation, "machines.start", "m2")
            .await
            .unwrap();
        assert_eq!(other, Duration::ZERO);
    }

    #[tokio::test]
    async fn contended_scope_fails_fast_instead_of_queueing() {
        let limits = std::sync::Arc::new(FlyRateLimits::new());
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let limits = limits.clone();
            calls.spawn(async move {
                limits
                    .acquire(LimitClass::Mutation, "apps.create", "org")
                    .await
            });
        }
        let results: Vec<_> = calls.join_all().await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let refused = results.iter().filter(|r| r.is_err()).count();
        assert!(ok <= 4, "{ok} calls got through in ~1.5 s");
        assert!(refused >= 1, "nobody was told to come back later");
        assert!(results.iter().flatten().all(|w| *w <= MAX_WAIT));
    }

    #[tokio::test]
    async fn reads_allow_a_larger_burst() {
        let limits = FlyRateLimits::new();
        for _ in 0..8 {
            let waited = limits
                .acquire(LimitClass::Read, "machines.get", "m1")
                .await
                .unwrap();
            assert_eq!(waited, Duration::ZERO);
        }
    }
}
