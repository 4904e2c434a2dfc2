//! Pairing by subscription (`docs/pairing.md`): while an instance's pairing window is open, or
//! requests are pending, or approvals are outstanding, or a channel account uses DM pairing
//! (strangers' DM requests come without an event), one replica holds a WebSocket to its
//! gateway with the controller's own device, follows its `device.pair.requested` /
//! `device.pair.resolved` events, approves (policy `auto`) or shows (policy `manual`) requests
//! as they come, and carries out approvals recorded through the API within about a second.
//! Nothing here calls Fly or runs a reconcile.
//!
//! # Guarantees
//! - At most one replica holds an instance's subscription ([`openclaws_store::pairing`]); a
//!   replica whose hold lapsed or passed on stops acting on it at its next write.
//! - At most `slots` subscriptions per replica, shared as [`pool`] says when more instances
//!   want one.
//! - A subscription closes when its instance no longer wants one (window over, nothing pending
//!   or outstanding, stopped, paused, deleted, not `Ready`).

pub mod pool;
mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use openclaws_store::pairing as store;
use openclaws_store::StoreError;

use crate::reconcile::plan::outstanding_decisions;
use crate::reconcile::Reconciler;
use pool::{Candidate, Held};
use session::{Session, Wanted};

/// What the subscriptions report; the telemetry crate turns it into metrics. Never fails.
pub trait PairingTelemetry: Send + Sync + std::fmt::Debug + 'static {
    /// Subscriptions this replica holds now.
    fn pairing_subscriptions(&self, held: usize);
    /// One approval carried out (or given up on) by a subscription, as
    /// [`crate::reconcile::plan::Action::pairing_outcome`] names it.
    fn pairing_outcome(&self, policy: &'static str, result: &'static str);
}

/// The pool's settings.
#[derive(Debug, Clone)]
pub struct PairingConfig {
    /// This replica's name in subscription rows (the work lease owner).
    pub owner: String,
    /// Most subscriptions this replica holds at once.
    pub slots: usize,
    /// Time between passes over the candidates (a work notification starts one sooner).
    pub tick: Duration,
    /// How long a subscription row lasts without renewal (renewed every pass).
    pub ttl: Duration,
    /// How long an idle subscription keeps its slot while others wait for one.
    pub slice: Duration,
    /// Where to `LISTEN` for work notifications (an approval recorded through the API).
    pub listen_url: Option<String>,
}

impl PairingConfig {
    /// Defaults for `owner` with `slots` subscriptions.
    pub fn new(owner: &str, slots: usize) -> Self {
        Self {
            owner: owner.to_owned(),
            slots,
            tick: Duration::from_secs(1),
            ttl: Duration::from_secs(10),
            slice: Duration::from_secs(30),
            listen_url: None,
        }
    }
}

/// One open subscription.
struct Open {
    since: Instant,
    wanted: watch::Sender<Wanted>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The replica's pool between passes.
struct Pool {
    reconciler: Reconciler,
    telemetry: Arc<dyn PairingTelemetry>,
    config: PairingConfig,
    open: HashMap<Uuid, Open>,
    waiting_since: HashMap<Uuid, Instant>,
}

/// Between two passes while no subscription is open and notifications arrive: bounds how late
/// pending requests a reconcile recorded (it does not notify) get their subscription.
pub const IDLE_TICK: Duration = Duration::from_secs(10);

/// Runs the pool until `shutdown`, then closes every subscription and gives up their rows.
pub async fn run(
    reconciler: Reconciler,
    telemetry: Arc<dyn PairingTelemetry>,
    config: PairingConfig,
    shutdown: CancellationToken,
) {
    let wake = crate::controller::listener::Wakeup::listen(
        config.listen_url.clone(),
        openclaws_store::WORK_CHANNEL,
        shutdown.clone(),
    );
    let mut pool = Pool {
        reconciler,
        telemetry,
        config,
        open: HashMap::new(),
        waiting_since: HashMap::new(),
    };
    while !shutdown.is_cancelled() {
        if let Err(e) = pool.pass().await {
            tracing::warn!(error = %e, "pairing pass failed; retrying");
        }
        // Nothing subscribed: a new candidate comes from a write that notifies (a spec write,
        // a pairing window opened), so look rarely unless notifications cannot arrive.
        let pause = if pool.open.is_empty() {
            wake.pause(pool.config.tick, IDLE_TICK)
        } else {
            pool.config.tick
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    pool.close_all().await;
}

impl Pool {
    /// Reads the candidates, renews and takes rows, opens and closes subscriptions.
    async fn pass(&mut self) -> Result<(), StoreError> {
        let db = self.reconciler.pool.clone();
        let rows = store::candidates(&db).await?;
        let now = Utc::now();
        self.open.retain(|_, o| !o.task.is_finished());
        let mut wanted: HashMap<Uuid, (Wanted, bool)> = HashMap::new();
        for row in rows {
            let owner = &self.config.owner;
            if row.holder.as_ref().is_some_and(|h| h != owner) {
                continue;
            }
            let (Ok(spec), Ok(status)) = (row.record.spec(), row.record.status()) else {
                continue;
            };
            let pairing = status.pairing.unwrap_or_default();
            let outstanding = pool::outstanding(&spec.pairing, &pairing.recent)
                + outstanding_decisions(&spec.pairing, &pairing.recent);
            let pending = pairing.pending_count + pairing.channel_pending_count;
            let window = row.record.pairing_window_until;
            let dm = !pairing.channel_accounts.is_empty();
            if let Some(busy) = pool::need(window, pending, outstanding, dm, now) {
                let w = Wanted {
                    pairing: spec.pairing,
                    recent: pairing.recent,
                    dm_accounts: pairing.channel_accounts,
                };
                wanted.insert(row.record.uid, (w, busy));
            }
        }
        let choice = self.choose(&wanted);
        for uid in &choice.stop {
            self.close(*uid);
        }
        if !choice.stop.is_empty() {
            store::release(&db, &self.config.owner, &choice.stop).await?;
        }
        let mut asked: Vec<Uuid> = self.open.keys().copied().collect();
        asked.extend(&choice.start);
        let held = store::hold(&db, &self.config.owner, &asked, self.config.ttl).await?;
        self.open.retain(|uid, o| {
            let keep = held.contains(uid);
            if !keep {
                o.stop.cancel();
            }
            keep
        });
        for (uid, open) in &self.open {
            if let Some((w, _)) = wanted.get(uid) {
                open.wanted.send_if_modified(|old| {
                    let changed = old != w;
                    if changed {
                        *old = w.clone();
                    }
                    changed
                });
            }
        }
        for uid in choice.start.iter().filter(|u| held.contains(u)) {
            if let Some((w, _)) = wanted.get(uid) {
                self.start(*uid, w.clone()).await;
            }
        }
        self.telemetry.pairing_subscriptions(self.open.len());
        Ok(())
    }

    /// The pool's changes for these wants (tracks how long each has waited).
    fn choose(&mut self, wanted: &HashMap<Uuid, (Wanted, bool)>) -> pool::Choice {
        let now = Instant::now();
        self.waiting_since
            .retain(|uid, _| wanted.contains_key(uid) && !self.open.contains_key(uid));
        let candidates: Vec<Candidate> = wanted
            .iter()
            .map(|(uid, (_, busy))| {
                let waiting = if self.open.contains_key(uid) {
                    Duration::ZERO
                } else {
                    now - *self.waiting_since.entry(*uid).or_insert(now)
                };
                Candidate {
                    uid: *uid,
                    busy: *busy,
                    waiting,
                }
            })
            .collect();
        let held: Vec<Held> = self
            .open
            .iter()
            .map(|(uid, o)| Held {
                uid: *uid,
                held_for: now - o.since,
            })
            .collect();
        pool::choose(&candidates, &held, self.config.slots, self.config.slice)
    }

    /// Opens a subscription whose row this replica holds now.
    async fn start(&mut self, uid: Uuid, wanted: Wanted) {
        let access = match self.reconciler.gateway_access(uid).await {
            Ok(Some(access)) => access,
            Ok(None) => return self.give_up(uid).await,
            Err(e) => {
                tracing::warn!(%uid, error = %e, "cannot load the gateway access for pairing");
                return self.give_up(uid).await;
            }
        };
        self.waiting_since.remove(&uid);
        let (tx, rx) = watch::channel(wanted);
        let stop = CancellationToken::new();
        let session = Session {
            uid,
            owner: self.config.owner.clone(),
            pool: self.reconciler.pool.clone(),
            access,
            telemetry: self.telemetry.clone(),
        };
        let task = tokio::spawn(session.run(rx, stop.clone()));
        self.open.insert(
            uid,
            Open {
                since: Instant::now(),
                wanted: tx,
                stop,
                task,
            },
        );
    }

    async fn give_up(&self, uid: Uuid) {
        if let Err(e) = store::release(&self.reconciler.pool, &self.config.owner, &[uid]).await {
            tracing::debug!(%uid, error = %e, "releasing a pairing subscription failed");
        }
    }

    fn close(&mut self, uid: Uuid) {
        if let Some(open) = self.open.remove(&uid) {
            open.stop.cancel();
        }
    }

    async fn close_all(&mut self) {
        let uids: Vec<Uuid> = self.open.keys().copied().collect();
        for uid in &uids {
            self.close(*uid);
        }
        self.telemetry.pairing_subscriptions(0);
        if let Err(e) = store::release(&self.reconciler.pool, &self.config.owner, &uids).await {
            tracing::debug!(error = %e, "releasing pairing subscriptions at shutdown failed");
        }
    }
}
