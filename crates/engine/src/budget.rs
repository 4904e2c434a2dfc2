//! Fly's rate limits shared by every replica through PostgreSQL: the Fly client takes its tokens
//! and app-creation slots here, so N replicas together stay under Fly's limits (one replica
//! alone behaves as with its in-process limits). The turn logic of the organization's lines is
//! the Fly crate's, run on the database's clock under the line's row lock.

use openclaws_store::Db;
use std::time::Duration;

use openclaws_fly::limits::{secs, take_turn, BudgetFuture, Line, Turn, MAX_WAIT, SLOT_GRACE};
use openclaws_fly::{Budget, FlyRateLimits, LimitClass};
use openclaws_store::budget::{self as store, LineRow, LineUpdate, Rate};
use openclaws_store::StoreError;

/// The organization's Fly budget in PostgreSQL.
#[derive(Debug)]
pub struct SharedBudget {
    pool: Db,
    org: String,
    /// Used while the database cannot be reached (this replica's share only).
    fallback: FlyRateLimits,
    /// Fly's limits times this (1 in production; see [`LimitClass::scaled_quota`]).
    scale: f64,
}

impl SharedBudget {
    /// The budget of `org`, kept in `pool`'s database.
    pub fn new(pool: Db, org: &str) -> Self {
        Self {
            pool,
            org: org.to_owned(),
            fallback: FlyRateLimits::new(),
            scale: 1.0,
        }
    }

    /// The same budget at `scale` times Fly's limits: only for a bench whose simulator's limits
    /// are scaled alike.
    pub fn scaled(mut self, scale: f64) -> Self {
        self.fallback = FlyRateLimits::scaled(scale);
        self.scale = scale;
        self
    }

    async fn rate(
        &self,
        class: LimitClass,
        action: &str,
        scope: &str,
    ) -> Result<Result<Duration, Duration>, StoreError> {
        let (period, burst) = class.scaled_quota(self.scale);
        let key = format!("{}/{action}/{scope}", self.org);
        let rate = store::take_rate(
            &self.pool,
            &key,
            period.as_secs_f64(),
            burst,
            MAX_WAIT.as_secs_f64(),
        )
        .await?;
        Ok(match rate {
            Rate::Granted { wait } => Ok(sleep(secs(wait)).await),
            Rate::Refused { retry_after } => Err(secs(retry_after)),
        })
    }

    async fn line(
        &self,
        class: LimitClass,
        action: &str,
        holder: &str,
    ) -> Result<Result<Duration, Duration>, StoreError> {
        let period = class.scaled_quota(self.scale).0.as_secs_f64();
        let line = format!("{}/{action}", self.org);
        let (turn, now) = store::line_turn(
            &self.pool,
            &line,
            holder,
            SLOT_GRACE.as_secs_f64(),
            |row, reserved, now| {
                let mut state = Line {
                    next: row.next,
                    last_sent: row.last_sent,
                };
                let turn = take_turn(&mut state, reserved, now, period);
                let keep = match turn {
                    Turn::Later { at } => Some(at),
                    Turn::Go { .. } => None,
                };
                let row = LineRow {
                    next: state.next,
                    last_sent: state.last_sent,
                };
                (LineUpdate { row, keep }, (turn, now))
            },
        )
        .await?;
        Ok(match turn {
            Turn::Go { wait } => Ok(sleep(secs(wait)).await),
            Turn::Later { at } => Err(secs(at - now)),
        })
    }
}

async fn sleep(wait: Duration) -> Duration {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    wait
}

impl Budget for SharedBudget {
    fn acquire<'a>(
        &'a self,
        class: LimitClass,
        action: &'static str,
        scope: &'a str,
    ) -> BudgetFuture<'a> {
        Box::pin(async move {
            let shared = match class {
                LimitClass::Mutation | LimitClass::Read => self.rate(class, action, scope).await,
                LimitClass::AppCreate | LimitClass::AppDelete => {
                    self.line(class, action, scope).await
                }
            };
            match shared {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(error = %e, "the shared Fly budget is unreachable: using this replica's own limits");
                    self.fallback.acquire(class, action, scope).await
                }
            }
        })
    }
}
