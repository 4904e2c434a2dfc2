//! The fence every outside mutation passes: a reconcile may change Fly or DNS only while it
//! still holds its work lease. The clients (Fly, DNS) ask a [`Fence`] before each mutation;
//! the engine answers from the lease row in PostgreSQL. A paused or partitioned replica that
//! lost its lease is refused before it sends anything.
//!
//! This lives at the bottom of the workspace so the clients and the engine share it without
//! depending on each other.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Why a fence refused a mutation: the lease was lost (expired, taken over, or could not be
/// checked). The caller must stop at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the work lease was lost: {0}")]
pub struct Fenced(pub String);

/// A boxed future, so [`Fence`] stays object-safe.
pub type FenceFuture<'a> = Pin<Box<dyn Future<Output = Result<Duration, Fenced>> + Send + 'a>>;

/// Admits mutations while the caller still holds its lease.
pub trait Fence: Send + Sync + std::fmt::Debug {
    /// Checks the lease before `action` on `target` is sent and notes that it is about to be.
    /// `Ok` carries how long the lease is guaranteed from now: the request must be bounded
    /// below it, so it cannot land after another holder took over.
    fn admit<'a>(&'a self, action: &'static str, target: &'a str) -> FenceFuture<'a>;
}
