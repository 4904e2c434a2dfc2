//! Running reconciles: claiming due work from the queue, holding leases while a reconcile runs,
//! and scheduling the next visit.
//!
//! # Guarantees
//! - An instance is reconciled by at most one worker at a time across every replica sharing the
//!   database, as long as a worker's lease renewals succeed (see [`openclaws_store::work`]). A worker
//!   that fails to renew abandons its reconcile at the next await point.
//! - A write through the API wakes an idle worker at once through `LISTEN/NOTIFY`; without a
//!   working listener (a transaction pooler), polling every `poll` finds the same work.
//! - After SIGTERM/SIGINT no new work is claimed; in-flight reconciles get `grace` to finish, then
//!   are abandoned and their leases released, so another replica may take them over at once.
//!
//! # Caveats
//! - A reconcile abandoned mid-way stops between two Fly calls; every step is idempotent and the
//!   next visit observes what happened, so this is the same as a crash.

mod dispatcher;
mod listener;
pub mod watch;

pub use dispatcher::{run, ControllerConfig, ControllerError, Reconcile};
