//! Watches (`?watch=true`, `docs/watch.md`): a list, or one instance's events, followed as a
//! stream of `ADDED` / `MODIFIED` / `DELETED` events with periodic `BOOKMARK`s, as
//! newline-delimited JSON or as Server-Sent Events.
//!
//! One [`WatchHub`] per process follows the database: every poll interval it reads the newest
//! version handed out (one trivial query) and, when that moved past what it published, the
//! horizons up to which the change log and the event log are settled
//! ([`openclaws_store::changes`]), and publishes them; each watch reads its own changes from its
//! cursor up to the horizon. Writes do not NOTIFY for watches (PostgreSQL serializes the commits
//! of notifying transactions: concurrent status writes were three times slower); the hub also
//! wakes on the work queue's notifications, which every API write already sends. It prunes the
//! change log after the retention window.

pub mod events;
pub mod filter;
pub mod follow;
pub mod instances;
pub mod options;
pub mod stream;

use openclaws_store::Db;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use openclaws_store::changes::{self, Horizons};
use openclaws_store::{StoreError, WORK_CHANNEL};

/// How watches behave; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Between two bookmarks (or heartbeats when bookmarks are off): short enough that proxies
    /// keep an idle stream open.
    pub bookmark_interval: Duration,
    /// How often the newest version is read (the horizons only when it moved): the latency of
    /// a change the controller writes, and of every change behind a pooler where LISTEN does not
    /// work.
    pub poll_interval: Duration,
    /// How long changes are kept for resuming; older ones are pruned.
    pub retention: Duration,
    /// A watch's length when `timeoutSeconds` is not given.
    pub default_timeout: Duration,
    /// The longest `timeoutSeconds` accepted.
    pub max_timeout: Duration,
    /// Events a watch may hold for a client that reads slowly.
    pub buffer: usize,
    /// How long a full buffer may stay full before the watch is dropped (with a final error).
    pub slow_client: Duration,
    /// Direct (non-pooled) URL to LISTEN on for the work queue's notifications (API writes);
    /// `None`: polling only.
    pub listen_url: Option<String>,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            bookmark_interval: Duration::from_secs(15),
            poll_interval: Duration::from_millis(50),
            retention: Duration::from_secs(15 * 60),
            default_timeout: Duration::from_secs(30 * 60),
            max_timeout: Duration::from_secs(MAX_TIMEOUT_SECONDS),
            buffer: 256,
            slow_client: Duration::from_secs(10),
            listen_url: None,
        }
    }
}

/// The largest `timeoutSeconds` (one hour), also what the OpenAPI document states.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// How often the change log is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The process's follower of the database's horizons, shared by every watch.
#[derive(Clone, Debug)]
pub struct WatchHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    horizons: watch::Sender<Horizons>,
    settings: WatchSettings,
    closing: CancellationToken,
    wake: Arc<Notify>,
}

impl WatchHub {
    /// Starts following the database behind `pool` until `shutdown`, which also ends every
    /// watch (their streams close cleanly, so a graceful shutdown is not held up).
    pub fn start(pool: Db, settings: WatchSettings, shutdown: CancellationToken) -> Self {
        let (sender, _) = watch::channel(Horizons::default());
        let wake = Arc::new(Notify::new());
        let hub = Self {
            inner: Arc::new(Inner {
                horizons: sender,
                settings,
                closing: shutdown,
                wake: wake.clone(),
            }),
        };
        if let Some(url) = hub.inner.settings.listen_url.clone() {
            tokio::spawn(listen(url, wake.clone(), hub.inner.closing.clone()));
        }
        tokio::spawn(follow(pool, hub.clone(), wake));
        hub
    }

    /// The settings watches run with.
    pub fn settings(&self) -> &WatchSettings {
        &self.inner.settings
    }

    /// The horizons as they move (read afresh now: they are not read while nobody watches).
    pub fn subscribe(&self) -> watch::Receiver<Horizons> {
        let receiver = self.inner.horizons.subscribe();
        self.inner.wake.notify_one();
        receiver
    }

    /// Cancelled when the server shuts down.
    pub fn closing(&self) -> &CancellationToken {
        &self.inner.closing
    }
}

/// Publishes the horizons while anyone watches (read on every wake-up, and every poll interval
/// when the newest version moved past them), and prunes the change log every minute.
async fn follow(pool: Db, hub: WatchHub, wake: Arc<Notify>) {
    let settings = hub.settings().clone();
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let woken = tokio::select! {
            () = hub.closing().cancelled() => return,
            () = wake.notified() => true,
            () = tokio::time::sleep(settings.poll_interval) => false,
            _ = prune.tick() => {
                prune_log(&pool, settings.retention).await;
                false
            }
        };
        if hub.inner.horizons.receiver_count() == 0 {
            continue;
        }
        if let Err(e) = publish(&pool, &hub, woken).await {
            tracing::warn!(error = %e, "reading the watch horizons failed");
        }
    }
}

/// Reads and publishes the horizons; unless `woken`, only when the newest version handed out
/// is past what was published (a change committed, or still in flight).
async fn publish(pool: &Db, hub: &WatchHub, woken: bool) -> Result<(), StoreError> {
    let published = *hub.inner.horizons.borrow();
    if !woken && changes::issued(pool).await? == published {
        return Ok(());
    }
    let now = changes::horizons(pool).await?;
    hub.inner.horizons.send_if_modified(|held| {
        let moved = now != *held;
        *held = now;
        moved
    });
    Ok(())
}

async fn prune_log(pool: &Db, retention: Duration) {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let pruned = match pool.acquire().await {
        Ok(mut conn) => changes::prune(&mut conn, cutoff).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = pruned {
        tracing::warn!(error = %e, "pruning the change log failed; it is retried in a minute");
    }
}

/// Wakes the hub on every notification of the work queue (every API write sends one);
/// reconnects after failures, and polling covers the gaps.
async fn listen(url: String, wake: Arc<Notify>, shutdown: CancellationToken) {
    let mut warned = false;
    while !shutdown.is_cancelled() {
        match connect(&url).await {
            Ok(mut listener) => {
                warned = false;
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        n = listener.try_recv() => match n {
                            Ok(_) => wake.notify_one(),
                            Err(e) => {
                                tracing::warn!(error = %e, "watch notification listener failed; polling continues");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e, "cannot LISTEN for work notifications (set DATABASE_LISTEN_URL to a direct connection); watches poll");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(WORK_CHANNEL).await?;
    Ok(listener)
}
