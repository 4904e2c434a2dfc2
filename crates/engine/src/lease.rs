//! The work lease a claimed reconcile runs under, as the [`Fence`] its Fly and DNS clients pass
//! before every mutation. Each admission checks the lease against the database's clock (and
//! extends it), so a replica that was paused or cut off past its lease sends nothing once it is
//! back; what an abandoned reconcile did send is kept here for its events.

use openclaws_store::Db;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

use openclaws_model::fence::{Fence, FenceFuture, Fenced};
use openclaws_store::work;

/// Lease left, at least, when a mutation is admitted: the admission's own round trip.
const MARGIN: Duration = Duration::from_millis(500);

/// One claimed key's lease.
#[derive(Debug)]
pub struct WorkLease {
    pool: Db,
    uid: Uuid,
    owner: String,
    ttl: Duration,
    /// Mutations admitted so far, as `action target`.
    sent: Mutex<Vec<String>>,
}

impl WorkLease {
    /// The lease `owner` took on `uid` for `ttl` (renewed by the dispatcher every third of it).
    pub fn new(pool: Db, uid: Uuid, owner: &str, ttl: Duration) -> Self {
        Self {
            pool,
            uid,
            owner: owner.to_owned(),
            ttl,
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Who holds the lease (for fencing the recording transaction).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The mutations admitted under this lease, in order (each may or may not have reached
    /// its destination).
    pub fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Fence for WorkLease {
    fn admit<'a>(&'a self, action: &'static str, target: &'a str) -> FenceFuture<'a> {
        Box::pin(async move {
            let asked = Instant::now();
            match work::admit(&self.pool, self.uid, &self.owner, self.ttl, MARGIN).await {
                Ok(true) => {
                    self.sent
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{action} {target}"));
                    // The database set the expiry from a clock reading taken after `asked`.
                    Ok(asked + self.ttl)
                }
                Ok(false) => Err(Fenced(format!(
                    "{action} was not sent: the lease lapsed or another replica holds it now"
                ))),
                Err(e) => Err(Fenced(format!(
                    "{action} was not sent: the lease could not be checked ({e})"
                ))),
            }
        })
    }
}
