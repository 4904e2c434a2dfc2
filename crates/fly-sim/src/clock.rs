//! The simulator's clock: real time plus an offset that tests move forward, so transitions that
//! would take seconds on Fly can be skipped without sleeping.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::sync::Mutex;
use std::time::Duration;

/// Wall-clock time shifted by an offset that only grows (`POST /_sim/clock/advance`).
#[derive(Debug, Default)]
pub struct SimClock {
    offset: Mutex<TimeDelta>,
}

impl SimClock {
    /// A clock that starts at real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// The simulated now, truncated to milliseconds so every timestamp we emit round-trips.
    pub fn now(&self) -> DateTime<Utc> {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let now = Utc::now() + offset;
        now.duration_trunc(TimeDelta::milliseconds(1))
            .unwrap_or(now)
    }

    /// Moves simulated time forward by `by`; returns the new now.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let by = delta(by);
        {
            let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
            *offset = offset
                .checked_add(&by)
                .unwrap_or(*offset)
                .min(max_span() * 10);
        }
        self.now()
    }

    /// How long to really sleep until simulated time reaches `at` (zero if already past).
    pub fn real_until(&self, at: DateTime<Utc>) -> Duration {
        (at - self.now()).to_std().unwrap_or(Duration::ZERO)
    }
}

/// The longest span the simulator schedules or jumps: a century, so adding it to any
/// simulated time can never overflow.
pub fn max_span() -> TimeDelta {
    TimeDelta::days(36_500)
}

/// Converts a (scaled) latency into a chrono delta for scheduling, capped at [`max_span`].
pub fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d)
        .unwrap_or(TimeDelta::MAX)
        .min(max_span())
}

/// Seconds as a `Duration`, saturating instead of panicking on huge or invalid input.
pub fn secs_f64(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

/// RFC 3339 with milliseconds and a `Z`, the format every simulated timestamp uses.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let clock = SimClock::new();
        let before = clock.now();
        let after = clock.advance(Duration::from_secs(3600));
        assert!(after - before >= TimeDelta::seconds(3600));
    }

    #[test]
    fn huge_inputs_saturate_instead_of_panicking() {
        let clock = SimClock::new();
        clock.advance(secs_f64(f64::MAX));
        clock.advance(Duration::MAX);
        let later = clock.now() + delta(Duration::MAX);
        assert!(later > clock.now());
        assert_eq!(secs_f64(f64::NAN), Duration::ZERO);
    }
}
