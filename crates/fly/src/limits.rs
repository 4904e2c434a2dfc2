//! Client-side rate limits that keep every Fly action under Fly's published limits, so a healthy
//! run sees no 429: 1 request/s with a burst of 3 per action and scope for mutations, 5/s with a
//! burst of 10 for reads, 100 app deletions per minute. We stay a little below each (clock skew
//! between us and Fly would otherwise turn a full burst into a 429).
//!
//! A call waits for its token only briefly; when the wait would be longer, it fails fast with a
//! client-side `RateLimited` so the reconcile is requeued instead of holding a worker.
//!
//! App creation and deletion are limited per organisation, so a whole fleet queues for them.
//! Those two use [`SlotQueue`]: a caller that cannot go now gets a reserved slot in line and is
//! told exactly when to come back, instead of every waiting instance retrying at each free token.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long a call may wait for a token before giving up and requeueing.
pub const MAX_WAIT: Duration = Duration::from_millis(1500);

/// Which limit applies to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitClass {
    /// Create/update/start/stop/delete/lease/exec/metadata writes: per action and scope.
    Mutation,
    /// GETs and lists: per action and scope.
    Read,
    /// App creation: per org, in reserved slots; the scope names the app (the slot's holder).
    AppCreate,
    /// App deletion: per org, in reserved slots; the scope names the app (the slot's holder).
    AppDelete,
}

impl LimitClass {
    /// Our share of Fly's limit for this class, a little under Fly's own: the period between
    /// calls and the burst allowed.
    pub fn quota(self) -> (Duration, u32) {
        match self {
            LimitClass::Mutation => (Duration::from_millis(1100), 2),
            LimitClass::Read => (Duration::from_millis(250), 8),
            LimitClass::AppCreate => (Duration::from_millis(1100), 1),
            // 100 per minute at Fly; 90 here.
            LimitClass::AppDelete => (Duration::from_millis(667), 1),
        }
    }

    /// [`quota`](Self::quota) with the period divided by `scale` (at least 1 ms; a scale that
    /// is not a positive number counts as 1): a bench against a simulator whose limits are
    /// scaled by the same factor.
    pub fn scaled_quota(self, scale: f64) -> (Duration, u32) {
        let (period, burst) = self.quota();
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let scaled = period.div_f64(scale).max(Duration::from_millis(1));
        (scaled, burst)
    }

    /// Whether the call changes something at Fly (and so must pass the work lease's fence).
    pub fn is_mutation(self) -> bool {
        self != LimitClass::Read
    }
}

/// Where an organization's line stands, in seconds on any one clock (a process's monotonic
/// clock, or the database's for a line shared by replicas).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// The next slot not yet handed out.
    pub next: f64,
    /// When the last holder was let through (or will be, after its short wait).
    pub last_sent: Option<f64>,
}

/// What a holder asking for its turn is told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Turn {
    /// Go after waiting this many seconds (at most [`MAX_WAIT`]); its reservation is used up.
    Go { wait: f64 },
    /// Come back at this time; the slot is kept for the holder until then.
    Later { at: f64 },
}

/// One holder's turn in an organization's line, pure so both backends share it: evenly spaced
/// slots, first come first served, a slot kept for its holder (`reserved`) until it comes back.
///
/// Slots say when a holder may come back; sends are also kept a full `period` apart. A holder
/// that returns late (a busy worker, a slow database) would otherwise go at once, next to the
/// on-time holders of the following slots, and a few of those together exceed Fly's burst
/// (seen as 429s on `POST /v1/apps` in a 1,000-instance bench). Instead it goes a period after
/// the last send, and the line behind it moves back by one slot.
pub fn take_turn(line: &mut Line, reserved: Option<f64>, now: f64, period: f64) -> Turn {
    let slot = reserved.unwrap_or_else(|| {
        let at = line.next.max(now);
        line.next = at + period;
        at
    });
    // Never closer than a period to the previous send, however late this holder is.
    let slot = line.last_sent.map_or(slot, |last| slot.max(last + period));
    if slot > now + MAX_WAIT.as_secs_f64() {
        return Turn::Later { at: slot };
    }
    let sent = slot.max(now);
    line.last_sent = Some(sent);
    line.next = line.next.max(sent + period);
    Turn::Go { wait: sent - now }
}

/// How long after its slot a reservation is kept for a holder that has not come back.
pub const SLOT_GRACE: Duration = Duration::from_secs(30);

/// An organization's line in this process's memory ([`take_turn`] on the monotonic clock).
#[derive(Debug)]
pub struct SlotQueue {
    period: Duration,
    origin: Instant,
    state: Mutex<SlotState>,
}

#[derive(Debug)]
struct SlotState {
    line: Line,
    /// Kept slots by holder, in seconds since `origin`.
    reserved: HashMap<String, f64>,
}

impl SlotQueue {
    /// One slot every `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            origin: Instant::now(),
            state: Mutex::new(SlotState {
                line: Line {
                    next: 0.0,
                    last_sent: None,
                },
                reserved: HashMap::new(),
            }),
        }
    }

    /// Takes `holder`'s slot when it is due within [`MAX_WAIT`] (`Ok` with the wait), else keeps
    /// a slot for it and says how long until then (`Err`).
    pub async fn reserve(&self, holder: &str) -> Result<Duration, Duration> {
        let now = self.origin.elapsed().as_secs_f64();
        let turn = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.reserved
                .retain(|_, at| *at + SLOT_GRACE.as_secs_f64() > now);
            let reserved = st.reserved.remove(holder);
            let turn = take_turn(&mut st.line, reserved, now, self.period.as_secs_f64());
            if let Turn::Later { at } = turn {
                st.reserved.insert(holder.to_owned(), at);
            }
            turn
        };
        match turn {
            Turn::Go { wait } => {
                let wait = secs(wait);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(wait)
            }
            Turn::Later { at } => Err(secs(at - now)),
        }
    }

    /// Reservations currently held (for tests and metrics).
    pub fn reserved(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserved
            .len()
    }
}

/// Seconds as a duration, rounded to the millisecond (so waits compare exactly in tests).
pub fn secs(s: f64) -> Duration {
    Duration::from_millis((s.max(0.0) * 1000.0).round() as u64)
}

/// A boxed future, so [`Budget`] stays object-safe.
pub type BudgetFuture<'a> = Pin<Box<dyn Future<Output = Result<Duration, Duration>> + Send + 'a>>;

/// Where a client takes its rate-limit tokens and app-creation slots. In one process,
/// [`FlyRateLimits`]; across replicas, a budget kept in PostgreSQL (the engine's), so any number
/// of replicas together stay under Fly's limits.
pub trait Budget: Send + Sync + std::fmt::Debug {
    /// Takes a token for `action` on `scope`, waiting at most [`MAX_WAIT`]: `Ok` with how long
    /// it waited, `Err` with how long until the caller's turn (its slot is kept for it).
    fn acquire<'a>(
        &'a self,
        class: LimitClass,
        action: &'static str,
        scope: &'a str,
    ) -> BudgetFuture<'a>;
}

impl Budget for FlyRateLimits {
    fn acquire<'a>(
        &'a self,
        class: LimitClass,
        action: &'static str,
        scope: &'a str,
    ) -> BudgetFuture<'a> {
        Box::pin(FlyRateLimits::acquire(self, class, action, scope))
    }
}

/// The limiters of one process.
#[derive(Debug)]
pub struct FlyRateLimits {
    mutation: DefaultKeyedRateLimiter<(&'static str, String)>,
    read: DefaultKeyedRateLimiter<(&'static str, String)>,
    app_create: SlotQueue,
    app_delete: SlotQueue,
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
    /// Limits just under Fly's published ones ([`LimitClass::quota`]).
    pub fn new() -> Self {
        Self::scaled(1.0)
    }

    /// Limits `scale` times Fly's ([`LimitClass::scaled_quota`]): only for a bench whose
    /// simulator's limits are scaled alike, so a large fleet provisions in minutes.
    pub fn scaled(scale: f64) -> Self {
        let quota = |class: LimitClass| {
            let (period, burst) = class.scaled_quota(scale);
            Quota::with_period(period)
                .expect("non-zero period")
                .allow_burst(nz(burst))
        };
        Self {
            mutation: RateLimiter::keyed(quota(LimitClass::Mutation)),
            read: RateLimiter::keyed(quota(LimitClass::Read)),
            app_create: SlotQueue::new(LimitClass::AppCreate.scaled_quota(scale).0),
            app_delete: SlotQueue::new(LimitClass::AppDelete.scaled_quota(scale).0),
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
                LimitClass::AppCreate => return self.app_create.reserve(scope).await,
                LimitClass::AppDelete => return self.app_delete.reserve(scope).await,
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

    #[tokio::test(start_paused = true)]
    async fn an_org_wide_queue_hands_out_kept_slots_in_order() {
        let q = SlotQueue::new(Duration::from_millis(1100));
        let holders = ["a", "b", "c", "d", "e"];
        let results = futures_util::future::join_all(holders.iter().map(|h| q.reserve(h))).await;
        // The first two go (the second after a short wait); the rest get their place in line,
        // each a period after the one before.
        assert_eq!(results[0], Ok(Duration::ZERO));
        assert_eq!(results[1], Ok(Duration::from_millis(1100)));
        let waits: Vec<Duration> = results[2..].iter().map(|r| r.unwrap_err()).collect();
        assert_eq!(
            waits,
            vec![
                Duration::from_millis(2200),
                Duration::from_millis(3300),
                Duration::from_millis(4400)
            ]
        );
        assert_eq!(q.reserved(), 3);
        // Asking again before its time keeps the same slot instead of queueing anew.
        assert_eq!(q.reserve("e").await, Err(Duration::from_millis(3300)));
        // At its time the holder goes, and its reservation is used up; a newcomer queues
        // behind every slot handed out, kept or not.
        tokio::time::advance(Duration::from_millis(3300)).await;
        assert_eq!(q.reserve("e").await, Ok(Duration::ZERO));
        assert_eq!(q.reserved(), 2);
        assert_eq!(q.reserve("f").await, Ok(Duration::from_millis(1100)));
        // A reservation not claimed within the grace period is given up.
        tokio::time::advance(SLOT_GRACE * 2).await;
        assert!(q.reserve("g").await.is_ok());
        assert_eq!(q.reserved(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn holders_back_late_are_still_sent_a_period_apart() {
        let period = Duration::from_secs(2);
        let q = SlotQueue::new(period);
        assert_eq!(q.reserve("a").await, Ok(Duration::ZERO));
        // b, c and d get slots at 2, 4 and 6 s, and none comes back on time.
        for (holder, secs) in [("b", 2), ("c", 4), ("d", 6)] {
            assert_eq!(q.reserve(holder).await, Err(Duration::from_secs(secs)));
        }
        tokio::time::advance(Duration::from_secs(7)).await;
        // All three return at once: the first goes, the others are told to come back a period
        // after the previous send, not let through together.
        assert_eq!(q.reserve("b").await, Ok(Duration::ZERO));
        assert_eq!(q.reserve("c").await, Err(period));
        assert_eq!(q.reserve("d").await, Err(period));
        tokio::time::advance(period).await;
        assert_eq!(q.reserve("c").await, Ok(Duration::ZERO));
        assert_eq!(q.reserve("d").await, Err(period));
        // A newcomer is not let in between either.
        assert_eq!(q.reserve("e").await, Err(period));
        tokio::time::advance(period).await;
        assert_eq!(q.reserve("d").await, Ok(Duration::ZERO));
        assert_eq!(q.reserve("e").await, Err(period));
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
