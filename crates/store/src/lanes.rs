//! Read lanes: a few connections kept out of the pool for the API's single-statement reads, so
//! a read costs PostgreSQL one round trip instead of two.
//!
//! sqlx 0.8's pool pings every connection when it goes back (`PoolConnection::return_to_pool`
//! always does, and no option turns it off): on a GET that is one round trip of two. A lane is a
//! plain connection behind a lock: a read takes a free lane, runs its statement and marks the
//! lane clean (`ReadConn::done`); the next read on it sends nothing else. A lane whose last
//! read did not end clean (an error, a request that went away mid-statement) is pinged before
//! its next read, which also drains whatever the cut-off statement left on the wire, and is
//! reconnected if the ping fails; so is one idle for [`PING_AFTER_IDLE`](super::PING_AFTER_IDLE),
//! as the pool does. When every lane is busy the read takes a pooled connection, so lanes never
//! make a read wait. Lanes are only used on a session (direct connection or session pooler):
//! behind a transaction pooler every read goes through the pool as before.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The lanes a [`Db`](super::Db) on a session keeps, connected as reads first need them, on top
/// of its pool: two carry the reads of a busy API on two cores (a read holds its lane only for
/// its statements); when both are busy a read takes a pooled connection.
pub const LANES: usize = 2;

/// One lane's connection and whether its last read ended clean.
#[derive(Default)]
pub(crate) struct Slot {
    conn: Option<PgConnection>,
    clean: bool,
    last_used: Option<Instant>,
}

/// The lanes of one [`Db`](super::Db).
pub(crate) struct Lanes {
    slots: Vec<Arc<Mutex<Slot>>>,
}

impl Lanes {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            slots: (0..count).map(|_| Arc::default()).collect(),
        }
    }

    /// The first free lane, ready for a statement, or `None` when all are busy. Lanes are tried
    /// in order, so a quiet API opens one connection and a busy one only as many as its reads
    /// overlap.
    pub(crate) async fn take(
        &self,
        options: &PgConnectOptions,
    ) -> Result<Option<OwnedMutexGuard<Slot>>, sqlx::Error> {
        for slot in &self.slots {
            let Ok(mut guard) = slot.clone().try_lock_owned() else {
                continue;
            };
            ready(&mut guard, options).await?;
            return Ok(Some(guard));
        }
        Ok(None)
    }
}

/// Makes `slot` ready for a statement: connected, and pinged first unless its last read ended
/// clean and recently.
async fn ready(slot: &mut Slot, options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let fresh = slot
        .last_used
        .is_some_and(|t| t.elapsed() < super::PING_AFTER_IDLE);
    if let Some(conn) = slot.conn.as_mut() {
        if !(slot.clean && fresh) && conn.ping().await.is_err() {
            slot.conn = None;
        }
    }
    if slot.conn.is_none() {
        slot.conn = Some(PgConnection::connect_with(options).await?);
    }
    slot.clean = false;
    Ok(())
}

/// A lane locked for one read.
pub struct LaneConn(OwnedMutexGuard<Slot>);

impl LaneConn {
    pub(crate) fn new(slot: OwnedMutexGuard<Slot>) -> Self {
        Self(slot)
    }

    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.0
            .conn
            .as_mut()
            .expect("a taken lane is connected (`ready`)")
    }

    /// Marks the lane's read as ended clean: its next read needs no ping.
    pub(crate) fn done(mut self) {
        self.0.clean = true;
        self.0.last_used = Some(Instant::now());
    }
}
