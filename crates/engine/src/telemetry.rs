//! The engine's side of telemetry: what it tells the outside about its work. The telemetry crate
//! implements [`Telemetry`] with Prometheus metrics and Sentry. Keeping the interface here makes
//! the dependency point one way: telemetry knows the engine, the engine knows only this trait.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use uuid::Uuid;

use crate::reconcile::{Outcome, ReconcileError, Report};

/// A reconcile running in its own task, as the dispatcher spawns it.
pub type ReconcileFuture = Pin<Box<dyn Future<Output = Result<Outcome, ReconcileError>> + Send>>;

/// One pass of the fleet watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchPass {
    /// The org listing answered (every page).
    pub ok: bool,
    /// Machines the listing returned.
    pub machines_listed: u64,
    /// Instances woken because their machine changed.
    pub woken: u64,
}

/// Receives what the engine reports. Every method is cheap and never fails: reporting never
/// slows or fails a reconcile.
pub trait Telemetry: Send + Sync + std::fmt::Debug + 'static {
    /// A reconcile recorded its result; `report` says what it found and did.
    fn reconciled(&self, report: &Report);
    /// A worker finished one claimed reconcile: `result` is `success`, `error`, `gone` or
    /// `abandoned`, `reason` a fixed class name.
    fn reconcile_finished(&self, result: &'static str, reason: &'static str, elapsed: Duration);
    /// A reconcile stopped before it could record anything (a store error, say).
    fn reconcile_error(&self, uid: Uuid, kind: &'static str, error: &dyn std::error::Error);
    /// A worker took a claimed reconcile.
    fn worker_started(&self);
    /// A worker is free again.
    fn worker_finished(&self);
    /// Due work waiting, and how long the oldest due item has waited.
    fn queue(&self, depth: i64, oldest_due_age_seconds: f64);
    /// One pass of the fleet watch finished.
    fn watch_pass(&self, pass: WatchPass);
    /// Wraps one reconcile's task, so reports made while it runs (a panic, say) name the
    /// instance. The default runs it as it is.
    fn bind_reconcile(&self, uid: Uuid, reconcile: ReconcileFuture) -> ReconcileFuture {
        let _ = uid;
        reconcile
    }
}
